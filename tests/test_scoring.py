"""Tests for d2l_attn.scoring: additive and scaled dot-product attention (chapter 3)."""

import math

import pytest
import torch
from torch.nn import functional as F

from d2l_attn import scoring
from d2l_attn.masking import Mask, causal_mask, padding_mask
from d2l_attn.scoring import AdditiveAttention, DotProductAttention


def loop_attention(queries, keys, values, keep, score_fn):
    """Query by query, with Python loops: scores, softmax over kept keys, weighted sum of values.

    ``queries (B, T_q, d_q)``, ``keys (B, T_k, d_k)``, ``values (B, T_k, d_v)``, ``keep`` boolean
    ``(B, T_q, T_k)``. Returns ``(output, weights)``; a query with no kept key gets zeros.
    """
    batch, num_queries, num_keys = queries.shape[0], queries.shape[1], keys.shape[1]
    weights = torch.zeros(batch, num_queries, num_keys, dtype=queries.dtype)
    for b in range(batch):
        for i in range(num_queries):
            idx = keep[b, i].nonzero().flatten().tolist()
            if not idx:
                continue
            s = torch.stack([score_fn(queries[b, i], keys[b, j]) for j in idx])
            e = torch.exp(s - s.max())
            weights[b, i, idx] = e / e.sum()
    return weights @ values, weights


def make_qkv(shape_lead, num_queries, num_keys, d, d_v, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_lead, num_queries, d, generator=g, dtype=dtype)
    k = torch.randn(*shape_lead, num_keys, d, generator=g, dtype=dtype)
    v = torch.randn(*shape_lead, num_keys, d_v, generator=g, dtype=dtype)
    return q, k, v


def tolerances(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------------
# scaled dot-product attention: reference path == fused path == PyTorch's own function
# ------------------------------------------------------------------------------------------
SHAPES = [((2,), 3, 5, 4, 6), ((1,), 1, 1, 1, 1), ((3,), 7, 2, 8, 3), ((2, 4), 5, 6, 8, 8)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lead, T_q, T_k, d, d_v", SHAPES)
def test_dot_product_paths_agree_without_masks(dtype, lead, T_q, T_k, d, d_v):
    q, k, v = make_qkv(lead, T_q, T_k, d, d_v, dtype)
    reference = DotProductAttention(fused=False)(q, k, v).output
    fused = DotProductAttention(fused=True)(q, k, v).output
    out_w, weights = DotProductAttention()(q, k, v, need_weights=True)
    torch_out = F.scaled_dot_product_attention(q, k, v)
    tol = tolerances(dtype)
    torch.testing.assert_close(reference, torch_out, **tol)
    torch.testing.assert_close(fused, torch_out, **tol)
    torch.testing.assert_close(out_w, torch_out, **tol)
    assert reference.shape == (*lead, T_q, d_v) and weights.shape == (*lead, T_q, T_k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(*lead, T_q, dtype=dtype), **tol)
    # the formula itself: softmax(Q K^T / sqrt(d)) V
    manual = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1) @ v
    torch.testing.assert_close(reference, manual, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask_kind", ["lens_1d", "lens_2d", "bool_batch", "causal_2d", "lens_and_causal", "bool_full"])
@pytest.mark.parametrize("lead", [(3,), (3, 2)])
def test_dot_product_paths_agree_with_masks(dtype, mask_kind, lead):
    T_q, T_k, d, d_v = 4, 4, 8, 5
    q, k, v = make_qkv(lead, T_q, T_k, d, d_v, dtype, seed=1)
    g = torch.Generator().manual_seed(2)
    valid_lens = attn_mask = None
    if mask_kind in ("lens_1d", "lens_and_causal"):
        valid_lens = torch.tensor([1, 4, 2])
    if mask_kind == "lens_2d":
        valid_lens = torch.tensor([[1, 2, 3, 4], [4, 4, 1, 1], [2, 3, 2, 3]])
    if mask_kind == "bool_batch":  # (B, T_q, T_k) or (B, 1, T_q, T_k): broadcast over heads
        attn_mask = torch.rand(3, *[1] * (len(lead) - 1), T_q, T_k, generator=g) < 0.7
        attn_mask[..., 0] = True  # no fully masked rows here (tested separately)
    if mask_kind in ("causal_2d", "lens_and_causal"):
        attn_mask = causal_mask(T_q, T_k)
    if mask_kind == "bool_full":  # one mask per (example, head)
        attn_mask = torch.rand(*lead, T_q, T_k, generator=g) < 0.6
        attn_mask[..., -1] = True
    reference, weights = DotProductAttention()(q, k, v, Mask.of(valid_lens, attn_mask), need_weights=True)
    unfused = DotProductAttention(fused=False)(q, k, v, Mask.of(valid_lens, attn_mask)).output
    fused = DotProductAttention()(q, k, v, Mask.of(valid_lens, attn_mask)).output
    keep = Mask.of(valid_lens, attn_mask, scores_shape=(*lead, T_q, T_k)).keep
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    tol = tolerances(dtype)
    torch.testing.assert_close(reference, torch_out, **tol)
    torch.testing.assert_close(unfused, torch_out, **tol)
    torch.testing.assert_close(fused, torch_out, **tol)
    assert torch.all(weights[~keep.expand_as(weights)] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dot_product_matches_python_loops(dtype):
    q, k, v = make_qkv((2,), 3, 5, 4, 2, dtype, seed=3)
    lens = torch.tensor([[5, 2, 1], [3, 3, 4]])
    out, weights = DotProductAttention()(q, k, v, Mask.of(lens), need_weights=True)
    keep = padding_mask(lens, 3, 5)
    want_out, want_w = loop_attention(q, k, v, keep, lambda qi, kj: qi @ kj / math.sqrt(4))
    tol = tolerances(dtype)
    torch.testing.assert_close(weights, want_w, **tol)
    torch.testing.assert_close(out, want_out, **tol)
    torch.testing.assert_close(DotProductAttention()(q, k, v, Mask.of(lens)).output, want_out, **tol)


def test_scale_is_one_over_sqrt_d_not_sequence_length():
    q, k, _ = make_qkv((1,), 2, 7, 16, 1, torch.float64, seed=4)
    scores = DotProductAttention.score(q, k)
    torch.testing.assert_close(scores, q @ k.transpose(-2, -1) / 4.0)  # sqrt(16) = 4
    assert not torch.allclose(scores, q @ k.transpose(-2, -1) / 7)  # not 1 / T_k


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fully_masked_rows_give_zeros_and_finite_gradients(fused, dtype):
    q, k, v = make_qkv((2,), 3, 4, 4, 3, dtype, seed=5)
    q.requires_grad_(True)
    k.requires_grad_(True)
    v.requires_grad_(True)
    attn = DotProductAttention(fused=fused)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False  # query 2 of example 1 sees no key
    out = attn(q, k, v, Mask.of(torch.tensor([0, 4]), mask)).output  # example 0: no key at all
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros(3, 3, dtype=dtype))
    assert torch.equal(out[1, 2], torch.zeros(3, dtype=dtype))
    assert out[1, :2].abs().sum() > 0
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[0], torch.zeros_like(q.grad[0]))
    _, weights = attn(q, k, v, Mask.of(torch.tensor([0, 4]), mask), need_weights=True)
    assert torch.equal(weights[0], torch.zeros(3, 4, dtype=dtype))
    assert torch.equal(weights[1, 2], torch.zeros(4, dtype=dtype))


def test_fused_path_guards_against_nan_from_sdpa(monkeypatch):
    """Some PyTorch versions return NaN for a fully masked row: simulate that and check the guard."""
    real = F.scaled_dot_product_attention
    seen_masks = []

    def nan_on_empty_rows(q, k, v, attn_mask=None, **kwargs):
        out = real(q, k, v, attn_mask=attn_mask, **kwargs)
        if attn_mask is not None:
            seen_masks.append(attn_mask)
            empty = ~attn_mask.any(-1, keepdim=True)
            out = out.masked_fill(empty, float("nan"))
        return out

    monkeypatch.setattr(scoring.F, "scaled_dot_product_attention", nan_on_empty_rows)
    q, k, v = make_qkv((2,), 3, 4, 4, 3, torch.float32, seed=6)
    out = DotProductAttention()(q, k, v, Mask.of(torch.tensor([0, 2]))).output
    assert seen_masks, "the fused path must call F.scaled_dot_product_attention"
    # SDPA is never handed a query without keys (its forward or backward could give NaN)
    assert all(bool(m.any(-1).all()) for m in seen_masks)
    assert torch.isfinite(out).all() and torch.equal(out[0], torch.zeros(3, 3))
    reference = DotProductAttention(fused=False)(q, k, v, Mask.of(torch.tensor([0, 2]))).output
    torch.testing.assert_close(out, reference)


# ------------------------------------------------------------------------------------------
# additive attention
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_additive_matches_formula_and_loops(dtype):
    torch.manual_seed(0)
    attn = AdditiveAttention(query_dim=3, key_dim=5, num_hiddens=7).to(dtype)
    g = torch.Generator().manual_seed(7)
    q = torch.randn(2, 4, 3, generator=g, dtype=dtype)
    k = torch.randn(2, 6, 5, generator=g, dtype=dtype)
    v = torch.randn(2, 6, 2, generator=g, dtype=dtype)
    lens = torch.tensor([2, 6])
    out, weights = attn(q, k, v, Mask.of(lens), need_weights=True)
    W_q, W_k, w_v = attn.W_q.weight, attn.W_k.weight, attn.w_v.weight[0]

    def score(qi, kj):
        return w_v @ torch.tanh(W_q @ qi + W_k @ kj)

    with torch.no_grad():
        want_out, want_w = loop_attention(q, k, v, padding_mask(lens, 4, 6), score)
    tol = tolerances(dtype)
    torch.testing.assert_close(weights, want_w, **tol)
    torch.testing.assert_close(out, want_out, **tol)
    torch.testing.assert_close(attn(q, k, v, Mask.of(lens)).output, out)
    assert sum(p.numel() for p in attn.parameters()) == 7 * (3 + 5 + 1)


def test_additive_masks_and_fully_masked_rows():
    torch.manual_seed(1)
    attn = AdditiveAttention(4, 4, 8)
    q, k, v = make_qkv((2,), 3, 5, 4, 2, torch.float32, seed=8)
    mask = causal_mask(3, 5)
    out, weights = attn(q, k, v, Mask.of(torch.tensor([0, 4]), mask), need_weights=True)
    assert torch.equal(out[0], torch.zeros(3, 2)) and torch.equal(weights[0], torch.zeros(3, 5))
    keep = padding_mask(torch.tensor([4]), 3, 5)[0] & mask
    assert torch.all(weights[1][~keep] == 0)
    torch.testing.assert_close(weights[1].sum(-1), torch.ones(3))


def test_additive_and_dot_product_share_the_interface():
    q, k, v = make_qkv((2,), 3, 5, 4, 6, torch.float32, seed=9)
    for attn in (AdditiveAttention(4, 4, 8), DotProductAttention()):
        out = attn(q, k, v, Mask.of(torch.tensor([2, 5]))).output
        out2, w = attn(q, k, v, Mask.of(torch.tensor([2, 5])), need_weights=True)
        assert out.shape == (2, 3, 6) and w.shape == (2, 3, 5)
        torch.testing.assert_close(out, out2)


# ------------------------------------------------------------------------------------------
# dropout
# ------------------------------------------------------------------------------------------
def make_modules(p):
    torch.manual_seed(0)
    return {
        "additive": AdditiveAttention(8, 8, 16, dropout=p),
        "dot-reference": DotProductAttention(dropout=p, fused=False),
        "dot-fused": DotProductAttention(dropout=p, fused=True),
    }


@pytest.mark.parametrize("name", ["additive", "dot-reference", "dot-fused"])
def test_dropout_eval_is_deterministic_and_equals_no_dropout(name):
    attn, plain = make_modules(0.5)[name], make_modules(0.0)[name]
    attn.eval()
    q, k, v = make_qkv((2,), 4, 6, 8, 3, torch.float32, seed=10)
    first, second = (
        attn(q, k, v, Mask.of(torch.tensor([3, 6]))).output,
        attn(q, k, v, Mask.of(torch.tensor([3, 6]))).output,
    )
    assert torch.equal(first, second)
    torch.testing.assert_close(first, plain.eval()(q, k, v, Mask.of(torch.tensor([3, 6]))).output)


@pytest.mark.parametrize("name", ["additive", "dot-reference", "dot-fused"])
def test_dropout_in_training_drops_and_rescales_weights(name):
    """With values = identity, the output row IS the (dropped-out) weight row."""
    p = 0.5
    attn = make_modules(p)[name].train()
    T_k = 64
    q, k, _ = make_qkv((4,), 8, T_k, 8, 1, torch.float32, seed=11)
    v = torch.eye(T_k).expand(4, T_k, T_k)  # (B, T_k, d_v = T_k)
    torch.manual_seed(123)
    dropped = attn(q, k, v).output  # (B, T_q, T_k): the weights after dropout
    attn.eval()
    weights = attn(q, k, v).output  # the same as the weights without dropout
    zero = dropped == 0
    frac = zero.float().mean().item()
    assert 0.4 < frac < 0.6, frac  # about p of the weights are dropped
    torch.testing.assert_close(dropped[~zero], weights[~zero] / (1 - p))  # the rest rescaled by 1/(1-p)
    attn.train()
    torch.manual_seed(124)
    assert not torch.equal(attn(q, k, v).output, dropped)  # a fresh mask each call


def test_returned_weights_are_before_dropout():
    attn = DotProductAttention(dropout=0.5).train()
    q, k, v = make_qkv((2,), 3, 5, 4, 6, torch.float32, seed=12)
    _, weights = attn(q, k, v, need_weights=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


# ------------------------------------------------------------------------------------------
# bad inputs give clear errors naming the argument and the expected shape
# ------------------------------------------------------------------------------------------
Q, K, V = make_qkv((2,), 3, 5, 4, 6, torch.float32)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(queries=torch.randn(3, 4)), r"queries must have shape \(B, T_q, d_q\)"),
        (dict(keys=torch.randn(5, 4)), r"keys must have shape \(B, T_k, d_k\)"),
        (dict(values=torch.randn(2, 4, 6)), r"values must have one row per key.*T_k=5"),
        (dict(keys=torch.randn(2, 5, 3)), r"same size d.*keys of shape \(\*\(2,\), T_k, d=4\)"),
        (dict(keys=torch.randn(3, 5, 4)), r"share their leading \(batch\) axes"),
        (dict(queries=torch.ones(2, 3, 4, dtype=torch.long)), r"queries must be a floating-point tensor"),
        (dict(values=V.double()), "same dtype"),
        (dict(queries="q"), r"queries must be a tensor"),
        (dict(valid_lens=torch.tensor([1, 2, 3])), r"valid_lens must have shape \(B,\) = \(2,\)"),
        (dict(valid_lens=torch.tensor([1, 6])), r"valid_lens must lie in \[0, 5\]"),
        (dict(valid_lens=torch.ones(2, 4, dtype=torch.long)), r"\(B, T_q\) = \(2, 3\)"),
        (dict(attn_mask=torch.ones(3, 5)), "attn_mask must be a boolean tensor"),
        (dict(attn_mask=torch.ones(4, 5, dtype=torch.bool)), r"attn_mask of shape \(4, 5\) does not broadcast"),
        (dict(attn_mask=torch.ones(2, 2, 3, 5, dtype=torch.bool)), r"attn_mask of shape \(2, 2, 3, 5\)"),
        (dict(attn_mask=torch.ones(3, 3, 5, dtype=torch.bool)), r"expected \(T_q, T_k\) = \(3, 5\)"),
    ],
)
@pytest.mark.parametrize("fused", [True, False])
def test_dot_product_bad_inputs(kwargs, match, fused):
    args = dict(queries=Q, keys=K, values=V, valid_lens=None, attn_mask=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mask = Mask.of(args.pop("valid_lens"), args.pop("attn_mask"))
        DotProductAttention(fused=fused)(**args, mask=mask)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(queries=torch.randn(2, 3, 5)), r"queries must have shape \(B, T_q, query_dim=4\)"),
        (dict(keys=torch.randn(2, 5, 4)), r"keys must have shape \(B, T_k, key_dim=7\)"),
        (dict(values=torch.randn(2, 6, 6)), r"T_k=5"),
        (dict(queries=torch.randn(3, 4)), r"queries must have shape \(B, T_q, d_q\)"),
    ],
)
def test_additive_bad_inputs(kwargs, match):
    attn = AdditiveAttention(query_dim=4, key_dim=7, num_hiddens=8)
    args = dict(queries=Q, keys=torch.randn(2, 5, 7), values=V)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        attn(**args)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: AdditiveAttention(0, 4, 8), "query_dim must be a positive int"),
        (lambda: AdditiveAttention(4, 4.0, 8), "key_dim must be a positive int"),
        (lambda: AdditiveAttention(4, 4, 8, dropout=1.0), r"dropout must be a number in \[0, 1\)"),
        (lambda: DotProductAttention(dropout=-0.1), r"dropout must be a number in \[0, 1\)"),
    ],
)
def test_bad_constructor_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_gradients_flow_through_both_modules():
    q, k, v = make_qkv((2,), 3, 5, 4, 6, torch.float64, seed=13)
    for attn in (AdditiveAttention(4, 4, 8).double(), DotProductAttention(fused=False), DotProductAttention()):
        inputs = [t.clone().requires_grad_(True) for t in (q, k, v)]
        assert torch.autograd.gradcheck(lambda a, b, c: attn(a, b, c, Mask.of(torch.tensor([2, 5]))).output, inputs)  # noqa: B023


# ------------------------------------------------------------------------------------------
# the chapter 3 explorer (d2l_attn.widgets.scaling_explorer_figure)
# ------------------------------------------------------------------------------------------
def test_scaling_explorer_figure_shows_variance_d_and_saturation():
    from d2l_attn import widgets

    small, large = widgets.scaling_explorer_figure(4), widgets.scaling_explorer_figure(1024)
    for fig, d in ((small, 4), (large, 1024)):
        left, right = fig.axes
        labels = [t.get_text() for t in left.get_legend().get_texts()]
        raw_var = float(labels[0].split("variance ")[1])
        scaled_var = float(labels[1].split("variance ")[1])
        assert abs(raw_var / d - 1) < 0.1 and abs(scaled_var - 1) < 0.1
    raw_max = [fig.axes[1].patches[0].get_height() for fig in (small, large)]
    assert raw_max[1] > 0.9 > raw_max[0]  # the unscaled softmax saturates at large d
    scaled_max = large.axes[1].patches[32].get_height()  # first blue bar
    assert scaled_max < 0.5


def test_scaling_explorer_rejects_bad_d_and_builds():
    from d2l_attn import widgets

    with pytest.raises(ValueError, match="d must be a positive int"):
        widgets.scaling_explorer_figure(0)
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match="d must be one of d_values"):
        widgets.scaling_explorer(d=3)
    assert widgets.scaling_explorer(d_values=(1, 4), d=4).children


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("with_lens", [False, True])
def test_is_causal_equals_an_explicit_causal_mask(fused, with_lens):
    g = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))  # (B, h, T, d)
    lens = torch.tensor([5, 2]) if with_lens else None
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    attention = DotProductAttention(fused=fused)
    expected = attention(q, k, v, Mask.of(lens, causal)).output
    torch.testing.assert_close(attention(q, k, v, Mask.of(lens, is_causal=True)).output, expected)
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if not with_lens:
        torch.testing.assert_close(expected, reference)
    _, weights = attention(q, k, v, Mask.causal(), need_weights=True)
    assert torch.all(weights.triu(1) == 0)


def test_is_causal_rejects_more_queries_than_keys():
    q, k = torch.randn(1, 5, 4), torch.randn(1, 3, 4)
    with pytest.raises(ValueError, match="is_causal needs at least as many keys as queries"):
        DotProductAttention()(q, k, k, Mask.causal())


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("num_q", [1, 3])
def test_is_causal_with_cached_keys_sees_the_last_positions(fused, num_q):
    """With T_k > T_q the queries are the last T_q positions: compare with the full computation."""
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 6, 4, generator=g) for _ in range(3))  # (B, T, d)
    attention = DotProductAttention(fused=fused)
    full = attention(q, k, v, Mask.causal()).output  # (B, 6, 4)
    tail = attention(q[:, -num_q:], k, v, Mask.causal()).output  # (B, num_q, 4)
    torch.testing.assert_close(tail, full[:, -num_q:])


# ------------------------------------------------------------------------------------------
# the AttentionFn protocol and the score_mod hook
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_score_mod_adds_a_bias_like_an_additive_sdpa_mask(fused):
    """An ALiBi-style score_mod equals SDPA with the same bias as a float mask, under a causal mask too."""
    q, k, v = make_qkv((2, 3), 4, 6, 8, 5, torch.float64, seed=21)  # (B, h, T, d): three heads
    slopes = torch.tensor([0.5, 0.25, 0.125], dtype=torch.float64)

    def alibi(scores, q_idx, k_idx, head):
        assert q_idx.shape == (4, 1) and k_idx.shape == (1, 6) and head.shape == (3, 1, 1)
        return scores - slopes[head] * (q_idx - k_idx).abs()  # queries are the last 4 of 6 positions

    attention = DotProductAttention(fused=fused, score_mod=alibi)
    positions = torch.arange(6, dtype=torch.float64)
    bias = -slopes[:, None, None] * (positions[2:, None] - positions[None, :]).abs()  # (h, T_q, T_k)
    out, weights = attention(q, k, v, need_weights=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias))
    torch.testing.assert_close(attention(q, k, v).output, out)  # the hook forces the reference path
    causal = bias.masked_fill(~causal_mask(4, 6), -math.inf)
    torch.testing.assert_close(
        attention(q, k, v, Mask.causal()).output, F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
    )
    assert not torch.equal(out, DotProductAttention()(q, k, v).output)


def test_every_kernel_returns_an_attention_output_and_refuses_a_raw_mask():
    from d2l_attn.scoring import AttentionFn, AttentionOutput

    q, k, v = make_qkv((2,), 3, 5, 4, 6, torch.float32, seed=22)
    for attn in (DotProductAttention(), DotProductAttention(fused=False), AdditiveAttention(4, 4, 8)):
        for need in (False, True):
            out = attn(q, k, v, Mask.of(torch.tensor([2, 5])), need_weights=need)
            assert isinstance(out, AttentionOutput) and len(out) == 2 and (out.weights is not None) == need
        with pytest.raises(ValueError, match="mask must be a d2l_attn.masking.Mask"):
            attn(q, k, v, torch.tensor([2, 5]))
    assert AttentionFn.__call__.__annotations__["return"] in ("AttentionOutput", AttentionOutput)
    assert not hasattr(DotProductAttention, "compute")


def test_cpu_training_dropout_path_matches_sdpa_draws_and_gradients(monkeypatch):
    """CPU, training, dropout > 0, a mask: our own path (not SDPA's math path) gives SDPA's output
    and gradients with the same dropout draws, and zeros for a query with no key."""
    q, k, v = (x.requires_grad_() for x in make_qkv((3, 2), 5, 5, 4, 4, torch.float32, seed=11))
    lens = torch.tensor([0, 3, 5])
    attn = DotProductAttention(dropout=0.3).train()
    real, calls = F.scaled_dot_product_attention, []
    monkeypatch.setattr(scoring.F, "scaled_dot_product_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    torch.manual_seed(1)
    ours = attn(q, k, v, Mask.of(lens)).output  # (3, 2, 5, 4)
    assert not calls, "CPU training with dropout takes scoring._cpu_dropout_attention"
    has_key = (torch.arange(5) < lens[:, None])[:, None, None, :].any(-1, keepdim=True)  # (3, 1, 1, 1)
    safe = (torch.arange(5) < lens[:, None])[:, None, None, :] | ~has_key
    torch.manual_seed(1)
    theirs = real(q, k, v, attn_mask=safe, dropout_p=0.3).masked_fill(~has_key, 0.0)
    torch.testing.assert_close(ours, theirs)
    assert torch.equal(ours[0], torch.zeros_like(ours[0]))
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    for g, h in zip(grads, torch.autograd.grad(theirs.square().sum(), (q, k, v))):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, h)
