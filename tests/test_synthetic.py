"""Tests for d2l_attn.data.synthetic: each task's answer is what its definition says."""

from __future__ import annotations

import pytest
import torch

from d2l_attn.data.synthetic import associative_recall, copy_task, neighbor_lookup, sine_regression


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_sine_regression_follows_the_curve_and_the_draw_order():
    x, y = sine_regression(2000, gen(), noise_std=0.0)
    torch.testing.assert_close(y, 2 * torch.sin(x) + x**0.8)
    assert 0 <= float(x.min()) and float(x.max()) <= 5
    # chapter 2 draws x, then the noise, from one generator
    g = gen(3)
    x_ref = torch.rand(50, generator=g) * 5
    noise = torch.randn(50, generator=g)
    x2, y2 = sine_regression(50, gen(3))
    torch.testing.assert_close(x2, x_ref)
    torch.testing.assert_close(y2, 2 * torch.sin(x_ref) + x_ref**0.8 + 0.5 * noise)
    xs, _ = sine_regression(50, gen(3), sort=True)
    assert torch.equal(xs, torch.sort(x_ref).values)


def test_neighbor_lookup_targets_come_from_the_neighbours():
    x, y = neighbor_lookup(3, 5, 2, gen())
    assert x.shape == (3, 5, 2 * 2 + 5) and y.shape == (3, 5, 4)
    for i in range(5):
        torch.testing.assert_close(y[:, i, :2], x[:, (i - 1) % 5, :2])  # a of the left neighbour
        torch.testing.assert_close(y[:, i, 2:], x[:, (i + 1) % 5, 2:4])  # b of the right neighbour
        assert torch.equal(x[:, i, 4:], torch.eye(5)[i].expand(3, 5))  # one-hot position


@pytest.mark.parametrize("separator", [0, 3])
def test_copy_task(separator):
    tokens, targets = copy_task(64, 4, 6, gen(), separator=separator)
    assert tokens.shape == targets.shape == (64, 9)
    assert torch.all(tokens[:, 4] == separator)
    assert not torch.any(tokens[:, :4] == separator)  # the separator is never a symbol
    assert set(tokens[:, :4].unique().tolist()) == set(range(6)) - {separator}  # every other id appears
    assert torch.equal(tokens[:, 5:], tokens[:, :4])
    assert torch.equal(targets[:, 4:8], tokens[:, 5:9])  # next token of the copied half
    assert torch.all(targets[:, :4] == -100) and torch.all(targets[:, 8] == -100)


def test_associative_recall_answer_is_the_value_after_the_query_key():
    batch = associative_recall(200, 4, 10, 7, gen())
    tokens, answer, source = batch
    assert tokens.shape == (200, 9)
    keys, values, query = tokens[:, 0:8:2], tokens[:, 1:8:2], tokens[:, 8]
    assert torch.all(keys < 10) and torch.all((values >= 10) & (values < 17))
    assert all(len(set(row.tolist())) == 4 for row in keys)  # distinct keys
    rows = torch.arange(200)
    assert torch.equal(tokens[rows, source], answer)
    assert torch.equal(tokens[rows, source - 1], query)  # the key before the answer is the query
    assert set(source.tolist()) == {1, 3, 5, 7}


def test_same_generator_state_gives_the_same_data_and_the_global_state_is_untouched():
    state = torch.get_rng_state()
    a = associative_recall(8, 3, 5, 5, gen(1))
    b = associative_recall(8, 3, 5, 5, gen(1))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sine_regression(0, gen()), "n"),
        (lambda: sine_regression(5, 0), "generator"),
        (lambda: sine_regression(5, gen(), noise_std=-1.0), "noise_std"),
        (lambda: neighbor_lookup(2, 0, 2, gen()), "num_tokens"),
        (lambda: copy_task(2, 3, 1, gen()), "vocab_size"),
        (lambda: copy_task(2, 3, 5, gen(), separator=5), "separator"),
        (lambda: associative_recall(2, 6, 5, 3, gen()), "num_pairs"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
