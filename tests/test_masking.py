"""Tests for d2l_attn.masking."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from d2l_attn.masking import causal_mask, masked_softmax, padding_mask, sequence_mask


def reference_masked_softmax(scores, keep):
    """Row by row, with Python loops: softmax over kept entries, zeros elsewhere."""
    out = torch.zeros_like(scores)
    flat_s = scores.reshape(-1, scores.shape[-1])
    flat_k = keep.expand_as(scores).reshape(-1, scores.shape[-1])
    flat_o = out.view(-1, scores.shape[-1])
    for r in range(flat_s.shape[0]):
        idx = flat_k[r].nonzero().flatten()
        if len(idx):
            e = torch.exp(flat_s[r, idx] - flat_s[r, idx].max())
            flat_o[r, idx] = e / e.sum()
    return out


def test_sequence_mask_values():
    mask = sequence_mask(torch.tensor([0, 2, 4]), 4)
    expected = torch.tensor([[False] * 4, [True, True, False, False], [True] * 4])
    assert torch.equal(mask, expected)


def test_padding_mask_1d_and_2d():
    m1 = padding_mask(torch.tensor([1, 3]), num_queries=2, num_keys=4)
    assert m1.shape == (2, 2, 4)
    assert m1[0].sum().item() == 2 and m1[1].sum().item() == 6
    m2 = padding_mask(torch.tensor([[1, 2], [3, 0]]), num_queries=2, num_keys=4)
    assert m2[0, 1].tolist() == [True, True, False, False]
    assert m2[1, 1].tolist() == [False] * 4


def test_causal_mask_square_and_cached():
    m = causal_mask(3)
    assert torch.equal(m, torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    # one new query attending over 2 cached keys and itself sees all 3
    assert causal_mask(1, 3).tolist() == [[True, True, True]]
    with pytest.raises(ValueError, match="num_keys >= num_queries"):
        causal_mask(3, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_softmax_matches_reference_1d(dtype):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 4, 5, generator=g, dtype=dtype)
    lens = torch.tensor([2, 5, 1])
    got = masked_softmax(scores, lens)
    keep = padding_mask(lens, 4, 5)
    torch.testing.assert_close(got, reference_masked_softmax(scores, keep))


def test_masked_softmax_2d_valid_lens_and_heads():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(2, 3, 4, 5, generator=g)  # (B, h, T_q, T_k)
    lens = torch.tensor([[1, 2, 3, 4], [5, 4, 3, 0]])  # (B, T_q)
    got = masked_softmax(scores, lens)
    keep = padding_mask(lens, 4, 5)[:, None]  # (B, 1, T_q, T_k)
    torch.testing.assert_close(got, reference_masked_softmax(scores, keep))


def test_zero_valid_len_gives_zero_weights_and_finite_grad():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    weights = masked_softmax(scores, torch.tensor([0, 2]))
    assert torch.equal(weights[0], torch.zeros(3, 4))  # not uniform, not NaN
    assert torch.allclose(weights[1].sum(-1), torch.ones(3))
    (weights * torch.randn_like(weights)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[0], torch.zeros(3, 4))


def test_masked_positions_get_exactly_zero_even_for_huge_scores():
    scores = torch.tensor([[[1.0, 2.0, 1e30, -1e30]]])
    weights = masked_softmax(scores, torch.tensor([2]))
    assert weights[0, 0, 2].item() == 0.0 and weights[0, 0, 3].item() == 0.0
    torch.testing.assert_close(weights[0, 0, :2], torch.softmax(torch.tensor([1.0, 2.0]), -1))


def test_boolean_mask_and_combination():
    scores = torch.randn(2, 3, 3)
    causal = causal_mask(3)
    w = masked_softmax(scores, mask=causal)
    assert torch.all(w[:, 0, 1:] == 0)
    w2 = masked_softmax(scores, torch.tensor([1, 3]), mask=causal)
    assert torch.all(w2[0, :, 1:] == 0)  # padding wins for b=0
    torch.testing.assert_close(w2[1], w[1])


def test_no_mask_is_plain_softmax():
    scores = torch.randn(2, 3, 4)
    torch.testing.assert_close(masked_softmax(scores), torch.softmax(scores, -1))


@pytest.mark.parametrize(
    "lens, match",
    [
        (torch.tensor([1, 6]), r"valid_lens must lie in \[0, 5\]"),
        (torch.tensor([-1, 2]), r"valid_lens must lie in \[0, 5\]"),
        (torch.tensor([1.5, 2.0]), "whole numbers"),
        (torch.tensor([1, 2, 3]), r"expected \(2,\) or \(2, 4\)"),
        (torch.ones(2, 3, dtype=torch.long), r"expected \(2,\) or \(2, 4\)"),
        (torch.ones(2, 4, 1, dtype=torch.long), r"valid_lens must have shape"),
        (torch.tensor([True, False]), "integer lengths"),
        ("abc", "valid_lens"),
    ],
)
def test_bad_valid_lens_are_rejected_clearly(lens, match):
    with pytest.raises(ValueError, match=match):
        masked_softmax(torch.randn(2, 4, 5), lens)


def test_whole_float_lengths_are_accepted():
    scores = torch.randn(2, 4, 5)
    torch.testing.assert_close(
        masked_softmax(scores, torch.tensor([2.0, 3.0])), masked_softmax(scores, torch.tensor([2, 3]))
    )


def test_bad_mask_and_scores_rejected():
    with pytest.raises(ValueError, match="boolean tensor"):
        masked_softmax(torch.randn(2, 3, 3), mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_softmax(torch.randn(2, 3, 3), mask=torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="floating-point"):
        masked_softmax(torch.ones(2, 3, 3, dtype=torch.long), torch.tensor([1, 2]))


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    num_queries=st.integers(1, 4),
    num_keys=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    shift=st.floats(-50, 50),
)
def test_property_rows_sum_to_one_zero_beyond_and_shift_invariant(batch, num_queries, num_keys, seed, shift):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, num_queries, num_keys, generator=g, dtype=torch.float64) * 5
    lens = torch.randint(0, num_keys + 1, (batch,), generator=g)
    w = masked_softmax(scores, lens)
    keep = padding_mask(lens, num_queries, num_keys)
    row_sums = w.sum(-1)
    expected = (lens > 0).to(w.dtype)[:, None].expand_as(row_sums)
    torch.testing.assert_close(row_sums, expected)
    assert torch.all(w[~keep] == 0)
    assert torch.all(w >= 0)
    torch.testing.assert_close(masked_softmax(scores + shift, lens), w)


def test_key_padding_mask_broadcasts_over_heads_and_queries():
    from d2l_attn.masking import key_padding_mask

    lens = torch.tensor([1, 3, 0])
    keep = key_padding_mask(lens, 4)  # (B, 1, 1, T_k)
    assert keep.shape == (3, 1, 1, 4)
    assert torch.equal(keep.expand(3, 2, 5, 4), padding_mask(lens, 5, 4)[:, None].expand(3, 2, 5, 4))
    assert key_padding_mask(lens, 4, num_axes=2).shape == (3, 4)


def test_length_values_are_checked_on_the_host_only():
    """Reading lengths that live on an accelerator would synchronize every step: only CPU values are checked."""
    from d2l_attn.masking import as_valid_lens

    with pytest.raises(ValueError, match=r"valid_lens must lie in \[0, 3\]"):
        as_valid_lens(torch.tensor([1, 9]), max_len=3)
    on_device = torch.tensor([1, 9], device="meta")  # no values to read: stands in for a GPU tensor
    assert as_valid_lens(on_device, max_len=3).shape == (2,)
    with pytest.raises(ValueError, match="integer lengths"):  # the dtype is still checked
        as_valid_lens(torch.tensor([True], device="meta"), max_len=3)


def test_mask_constructors_build_the_keep_masks_and_are_frozen():
    """Mask.from_lengths / causal / of give the keep masks that the functions above define."""
    import dataclasses

    from d2l_attn.masking import Mask, key_padding_mask

    x = torch.zeros(2, 5, 3)
    lens = torch.tensor([5, 2])
    m = Mask.from_lengths(lens, x)
    assert m.keep.shape == (2, 1, 1, 5) and not m.is_causal and not m.sanitize
    torch.testing.assert_close(m.keep, key_padding_mask(lens, 5))
    assert m.keep[1, 0, 0].tolist() == [True, True, False, False, False]
    torch.testing.assert_close(m.lengths, lens)
    assert Mask.from_lengths(None, x).keep is None
    with pytest.raises(ValueError, match=r"valid_lens must have shape \(B,\) = \(2,\)"):
        Mask.from_lengths(torch.tensor([1, 2, 3]), x)
    with pytest.raises(ValueError, match=r"src_valid_lens must lie in \[0, 5\]"):
        Mask.from_lengths(torch.tensor([1, 6]), x, "src_valid_lens")
    assert Mask.causal().is_causal and Mask.causal().keep is None
    attn = torch.tensor([[True, False, True, True, True]] * 4)  # (T_q, T_k)
    direct = Mask.of(lens, attn, is_causal=True, scores_shape=(2, 3, 4, 5))
    assert direct.sanitize and direct.is_causal
    expected = key_padding_mask(lens, 5) & attn  # (2, 1, 4, 5)
    torch.testing.assert_close(direct.keep.expand(2, 3, 4, 5), expected.expand(2, 3, 4, 5))
    per_query = Mask.of(torch.tensor([[1, 2, 3, 4], [0, 0, 5, 5]]), scores_shape=(2, 4, 5)).keep
    torch.testing.assert_close(per_query, padding_mask(torch.tensor([[1, 2, 3, 4], [0, 0, 5, 5]]), 4, 5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.is_causal = True
