"""Property tests (hypothesis) of masked_softmax and of the attention modules built on it (chapter 3).

tests/test_masking.py checks 1-D valid lengths; here the properties are checked for per-query
lengths ``(B, T_q)``, boolean masks, extra head axes, per-row constant shifts and float32.
"""

import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from d2l_attn.masking import Mask, masked_softmax
from d2l_attn.scoring import DotProductAttention


@st.composite
def scores_and_mask(draw):
    """Scores ``(B, [h,] T_q, T_k)``, optional lengths ``(B,)``/``(B, T_q)``, optional boolean mask."""
    batch = draw(st.integers(1, 3))
    heads = draw(st.sampled_from([(), (2,)]))
    num_queries, num_keys = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    spread = draw(st.sampled_from([1.0, 10.0, 100.0]))
    g = torch.Generator().manual_seed(seed)
    shape = (batch, *heads, num_queries, num_keys)
    scores = (torch.randn(shape, generator=g, dtype=torch.float64) * spread).to(dtype)
    kind = draw(st.sampled_from(["lens_1d", "lens_2d", "mask", "both"]))
    lens = mask = None
    if kind in ("lens_1d", "both"):
        lens = torch.randint(0, num_keys + 1, (batch,), generator=g)
    if kind == "lens_2d":
        lens = torch.randint(0, num_keys + 1, (batch, num_queries), generator=g)
    if kind in ("mask", "both"):
        mask = torch.rand(shape, generator=g) < 0.6
    return scores, lens, mask, seed


def expected_keep(lens, mask, shape):
    """Which keys each query may attend to, decided entry by entry from the definitions
    (key ``k`` of batch ``b``, query ``q`` is kept iff ``k < lens[b]`` or ``k < lens[b, q]``, and
    ``mask[...]`` is True) -- built without the library's mask code."""
    keep = torch.zeros(shape, dtype=torch.bool)
    for index in itertools.product(*(range(n) for n in shape)):
        b, q, k = index[0], index[-2], index[-1]
        ok = True
        if lens is not None:
            limit = int(lens[b]) if lens.dim() == 1 else int(lens[b, q])
            ok = k < limit
        if mask is not None:
            ok = ok and bool(mask[index])
        keep[index] = ok
    return keep


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(case=scores_and_mask())
def test_rows_sum_to_one_over_kept_keys_and_zero_beyond(case):
    scores, lens, mask, _ = case
    weights = masked_softmax(scores, lens, mask=mask)
    keep = expected_keep(lens, mask, scores.shape)
    assert torch.isfinite(weights).all() and torch.all(weights >= 0)
    assert torch.all(weights[~keep] == 0)  # exactly zero beyond the valid keys
    row_has_key = keep.any(-1)
    torch.testing.assert_close(weights.sum(-1), row_has_key.to(scores.dtype), **tol(scores.dtype))


@settings(max_examples=80, deadline=None)
@given(case=scores_and_mask(), shift=st.floats(-100, 100))
def test_invariant_to_adding_a_constant_to_a_row(case, shift):
    scores, lens, mask, seed = case
    g = torch.Generator().manual_seed(seed + 1)
    # a different constant for every row (every query), broadcast over the keys
    row_shift = (torch.rand(*scores.shape[:-1], 1, generator=g, dtype=torch.float64) * shift).to(scores.dtype)
    weights = masked_softmax(scores, lens, mask=mask)
    shifted = masked_softmax(scores + row_shift, lens, mask=mask)
    torch.testing.assert_close(shifted, weights, **tol(scores.dtype))


@settings(max_examples=40, deadline=None)
@given(case=scores_and_mask())
def test_masked_softmax_equals_softmax_over_kept_keys_only(case):
    scores, lens, mask, _ = case
    weights = masked_softmax(scores, lens, mask=mask)
    keep = expected_keep(lens, mask, scores.shape)
    flat_s, flat_k, flat_w = (t.reshape(-1, scores.shape[-1]) for t in (scores, keep, weights))
    for row in range(flat_s.shape[0]):
        kept = flat_k[row]
        if kept.any():
            torch.testing.assert_close(flat_w[row, kept], torch.softmax(flat_s[row, kept], -1), **tol(scores.dtype))


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    num_queries=st.integers(1, 4),
    num_keys=st.integers(1, 6),
    d=st.sampled_from([1, 2, 8]),
    seed=st.integers(0, 2**16),
)
def test_attention_paths_agree_for_any_lengths(batch, num_queries, num_keys, d, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, num_queries, d, generator=g, dtype=torch.float64)
    k = torch.randn(batch, num_keys, d, generator=g, dtype=torch.float64)
    v = torch.randn(batch, num_keys, 3, generator=g, dtype=torch.float64)
    lens = torch.randint(0, num_keys + 1, (batch, num_queries), generator=g)
    reference, weights = DotProductAttention()(q, k, v, Mask.of(lens), need_weights=True)
    fused = DotProductAttention(fused=True)(q, k, v, Mask.of(lens)).output
    torch.testing.assert_close(fused, reference)
    assert torch.all(fused[lens == 0] == 0)  # queries with no key: zero output, never NaN
    torch.testing.assert_close(weights @ v, reference)
