"""Tests for d2l_attn.pooling (chapter 1's soft lookup)."""

import pytest
import torch

from d2l_attn.pooling import attention_pool, gaussian_scores, hard_lookup, soft_lookup


def test_gaussian_scores_formula_1d_and_nd():
    q = torch.tensor([0.0, 2.0])
    k = torch.tensor([0.0, 1.0, 3.0])
    expected = -((q[:, None] - k[None, :]) ** 2) / (2 * 0.5**2)
    torch.testing.assert_close(gaussian_scores(q, k, 0.5), expected)
    g = torch.Generator().manual_seed(0)
    qs, ks = torch.randn(2, 4, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    expected = -(torch.cdist(qs, ks) ** 2) / 2
    torch.testing.assert_close(gaussian_scores(qs, ks), expected, rtol=1e-5, atol=1e-5)


def test_soft_lookup_weights_are_distributions_and_output_convex():
    g = torch.Generator().manual_seed(1)
    keys, values = torch.rand(10, generator=g), torch.randn(10, generator=g)
    out, w = soft_lookup(torch.linspace(0, 1, 7), keys, values, 0.3)
    assert w.shape == (7, 10) and out.shape == (7,)
    torch.testing.assert_close(w.sum(-1), torch.ones(7))
    assert torch.all(out <= values.max()) and torch.all(out >= values.min())
    torch.testing.assert_close(out, w @ values)


def test_limits_hard_lookup_and_average():
    keys = torch.tensor([0.0, 1.0, 2.5, 4.0])
    values = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0], [4.0, -1.0]])
    queries = torch.tensor([0.2, 1.4, 3.9])
    torch.testing.assert_close(soft_lookup(queries, keys, values, 1e-3)[0], hard_lookup(queries, keys, values))
    torch.testing.assert_close(hard_lookup(queries, keys, values), values[[0, 1, 3]])
    torch.testing.assert_close(soft_lookup(queries, keys, values, 1e4)[0], values.mean(0).expand(3, 2))


def test_attention_pool_with_mask_matches_manual():
    scores = torch.randn(2, 3, 4)
    values = torch.randn(2, 4, 5)
    out, w = attention_pool(scores, values, torch.tensor([2, 4]))
    assert torch.all(w[0, :, 2:] == 0)
    manual = torch.softmax(scores[0, :, :2], -1) @ values[0, :2]
    torch.testing.assert_close(out[0], manual)


def test_batched_hard_lookup():
    keys = torch.tensor([[[0.0], [1.0]], [[5.0], [6.0]]])  # (2, 2, 1)
    values = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])
    queries = torch.tensor([[[0.9]], [[5.1]]])
    torch.testing.assert_close(hard_lookup(queries, keys, values), torch.tensor([[[2.0]], [[3.0]]]))


@pytest.mark.parametrize("sigma", [0, -1.0, "1", float("inf"), float("nan")])
def test_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma must be a positive finite number"):
        gaussian_scores(torch.zeros(2), torch.zeros(3), sigma)


def test_bad_shapes():
    with pytest.raises(ValueError, match="same feature size d"):
        gaussian_scores(torch.zeros(2, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="one row per key"):
        attention_pool(torch.zeros(2, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="scores must have shape"):
        attention_pool(torch.zeros(3), torch.zeros(3))
