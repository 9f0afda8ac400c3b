"""Tests for d2l_attn.multihead (chapter 5): against torch.nn.MultiheadAttention, split/merge, errors."""

import pytest
import torch
from torch import nn

from d2l_attn.masking import Mask, sequence_mask
from d2l_attn.multihead import MultiHeadAttention, MultiHeadOutput, merge_heads, split_heads


def _pair(d_model=12, num_heads=3, kdim=None, vdim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d_model, num_heads, batch_first=True, bias=bias, kdim=kdim, vdim=vdim)
    ours = MultiHeadAttention(d_model, num_heads, bias=bias, key_dim=kdim, value_dim=vdim)
    if bias:  # torch initialises biases to zero: make them non-trivial so that they are tested
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours.load_torch_weights(theirs)
    return ours.eval(), theirs.eval()


def _inputs(batch_size=2, t_q=5, t_k=7, d_q=12, d_k=12, d_v=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch_size, t_q, d_q, generator=g),
        torch.randn(batch_size, t_k, d_k, generator=g),
        torch.randn(batch_size, t_k, d_v, generator=g),
    )


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_matches_torch_without_mask(bias, fused):
    ours, theirs = _pair(bias=bias)
    ours.attention.fused = fused
    q, k, v = _inputs()
    expected, expected_avg = theirs(q, k, v, need_weights=True)
    torch.testing.assert_close(ours(q, (k, v)).output, expected, rtol=1e-5, atol=1e-5)
    out, weights = ours(q, (k, v), need_weights=True)[:2]
    assert weights.shape == (2, 3, 5, 7)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights.mean(1), expected_avg, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_matches_torch_with_key_padding_mask_per_head(fused):
    ours, theirs = _pair()
    ours.attention.fused = fused
    q, k, v = _inputs()
    valid_lens = torch.tensor([3, 6])
    key_padding_mask = ~sequence_mask(valid_lens, 7)  # torch: True = ignore
    expected, expected_heads = theirs(q, k, v, key_padding_mask=key_padding_mask, average_attn_weights=False)
    torch.testing.assert_close(ours(q, (k, v), mask=Mask.of(valid_lens)).output, expected, rtol=1e-5, atol=1e-5)
    out, weights = ours(q, (k, v), mask=Mask.of(valid_lens), need_weights=True)[:2]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights, expected_heads, rtol=1e-5, atol=1e-6)
    assert torch.all(weights[0, :, :, 3:] == 0) and torch.all(weights[1, :, :, 6:] == 0)
    # the same mask given as a boolean attn_mask (True = attend), (B, T_q, T_k)
    keep = ~key_padding_mask[:, None, :].expand(2, 5, 7)
    torch.testing.assert_close(ours(q, (k, v), mask=Mask.of(attn_mask=keep)).output, expected, rtol=1e-5, atol=1e-5)


def test_matches_torch_with_causal_attn_mask():
    ours, theirs = _pair()
    q, _, _ = _inputs(t_q=6, t_k=6)
    causal_keep = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    expected, _ = theirs(q, q, q, attn_mask=~causal_keep)  # torch: True = not allowed
    torch.testing.assert_close(ours(q, mask=Mask.of(attn_mask=causal_keep)).output, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_matches_torch_with_kdim_vdim(fused):
    ours, theirs = _pair(d_model=8, num_heads=2, kdim=5, vdim=3)
    ours.attention.fused = fused
    q, k, v = _inputs(d_q=8, d_k=5, d_v=3)
    valid_lens = torch.tensor([7, 2])
    expected, expected_avg = theirs(q, k, v, key_padding_mask=~sequence_mask(valid_lens, 7))
    out, weights = ours(q, (k, v), mask=Mask.of(valid_lens), need_weights=True)[:2]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights.mean(1), expected_avg, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(q, (k, v), mask=Mask.of(valid_lens)).output, expected, rtol=1e-5, atol=1e-5)


def test_parameter_count_formula_and_independent_of_heads():
    d, dk, dv = 24, 10, 6
    for heads in (1, 2, 3, 4, 6, 8, 12, 24):
        mha = MultiHeadAttention(d, heads, key_dim=dk, value_dim=dv)
        assert sum(p.numel() for p in mha.parameters()) == d * (d + dk + dv + d) + 4 * d
        torch_mha = nn.MultiheadAttention(d, heads, batch_first=True, kdim=dk, vdim=dv)
        assert sum(p.numel() for p in mha.parameters()) == sum(p.numel() for p in torch_mha.parameters())
    no_bias = MultiHeadAttention(d, 4, bias=False)
    assert sum(p.numel() for p in no_bias.parameters()) == 4 * d * d


def test_split_merge_are_inverse_and_split_takes_column_blocks():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])  # head 1 = columns 4..7
    torch.testing.assert_close(merge_heads(heads), x)
    y = torch.randn(2, 3, 5, 4)
    torch.testing.assert_close(split_heads(merge_heads(y), 3), y)


def test_split_merge_errors():
    with pytest.raises(ValueError, match="divisible by num_heads=5"):
        split_heads(torch.randn(2, 3, 12), 5)
    with pytest.raises(ValueError, match=r"shape \(batch_size, num_steps, d\)"):
        split_heads(torch.randn(3, 12), 3)
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        split_heads(torch.randn(2, 3, 12), 0)
    with pytest.raises(ValueError, match="num_heads, num_steps, d_h"):
        merge_heads(torch.randn(2, 3, 12))


def test_d_model_not_divisible_by_heads_is_a_clear_error():
    with pytest.raises(ValueError, match=r"d_model=10 must be divisible by num_heads=3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        MultiHeadAttention(8, 0)
    with pytest.raises(ValueError, match="key_dim must be a positive int"):
        MultiHeadAttention(8, 2, key_dim=0)


def test_bad_input_shapes():
    mha = MultiHeadAttention(8, 2, key_dim=5)
    q, k = torch.randn(2, 3, 8), torch.randn(2, 4, 5)
    with pytest.raises(ValueError, match=r"x \(the queries\) must have shape \(B, T_q, d_model=8\)"):
        mha(torch.randn(2, 3, 7), (k, torch.randn(2, 4, 8)))
    with pytest.raises(ValueError, match=r"keys must have shape \(B, T_k, key_dim=5\)"):
        mha(q, torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="same batch size and steps"):
        mha(q, (k, torch.randn(2, 3, 8)))
    with pytest.raises(ValueError, match="same batch size"):
        mha(q, (torch.randn(3, 4, 5), torch.randn(3, 4, 8)))
    with pytest.raises(ValueError, match="mask must be a d2l_attn.masking.Mask"):
        mha(q, (k, torch.randn(2, 4, 8)), mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="cache is for self-attention"):
        mha(q, (k, torch.randn(2, 4, 8)), cache=mha.project(k, torch.randn(2, 4, 8)))
    with pytest.raises(ValueError, match="sizes differ"):
        mha.load_torch_weights(nn.MultiheadAttention(8, 2, batch_first=True))


def test_fused_and_reference_paths_agree_with_masks_and_grads():
    torch.manual_seed(0)
    fused = MultiHeadAttention(16, 4)
    reference = MultiHeadAttention(16, 4, fused=False)
    reference.load_state_dict(fused.state_dict())
    x = torch.randn(3, 6, 16, requires_grad=True)
    valid_lens = torch.tensor([6, 0, 2])  # a fully masked example must give zeros, not NaN
    out_f = fused(x, mask=Mask.of(valid_lens)).output
    out_r = reference(x, mask=Mask.of(valid_lens)).output
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(out_f).all()
    torch.testing.assert_close(out_f[1], fused.W_o.bias.expand(6, 16))  # zero heads -> only W_o's bias
    (grad_f,) = torch.autograd.grad(out_f.sum(), x)
    (grad_r,) = torch.autograd.grad(out_r.sum(), x)
    torch.testing.assert_close(grad_f, grad_r, rtol=1e-4, atol=1e-5)


def test_per_head_attn_mask_and_dropout_train_eval():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(1, 4, 8)
    keep = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    keep[:, 0, :, 1:] = False  # head 0 may look at key 0 only
    _, w = mha(x, mask=Mask.of(attn_mask=keep), need_weights=True)[:2]
    torch.testing.assert_close(w[0, 0, :, 0], torch.ones(4))
    mha.eval()
    torch.testing.assert_close(mha(x).output, mha(x).output)
    mha.train()
    assert not torch.allclose(mha(x).output, mha(x).output)  # dropout is active in training


def test_self_attention_packs_the_projections_and_equals_three_products():
    """forward(x, x, x) projects Q, K, V with one matrix product: same outputs and gradients as three."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3).eval()
    with torch.no_grad():  # distinct biases, so that a swapped q/k/v block would show
        for layer in (mha.W_q, mha.W_k, mha.W_v, mha.W_o):
            layer.bias.normal_()
    x = torch.randn(2, 5, 12, requires_grad=True)
    lens = torch.tensor([5, 2])
    packed = mha(x, mask=Mask.of(lens)).output  # the same tensor three times: one product
    copies = x.clone()
    separate = mha(x, (copies, copies.clone()), mask=Mask.of(lens)).output  # three tensors: three products
    torch.testing.assert_close(packed, separate, rtol=1e-5, atol=1e-6)
    (grad_packed,) = torch.autograd.grad(packed.square().sum(), x)
    (grad_separate,) = torch.autograd.grad(separate.square().sum(), x)
    torch.testing.assert_close(grad_packed, grad_separate, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mha(x, mask=Mask.from_lengths(lens, x)).output, packed)  # a stack's mask


@pytest.mark.parametrize("fused", [True, False])
def test_nan_in_masked_keys_does_not_reach_the_output(fused):
    """Public forward/attend zero the keys and values no query may see (padding holding NaN or inf)."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, fused=fused).eval()
    x = torch.randn(2, 4, 8)
    lens = torch.tensor([4, 2])
    clean = mha(x, mask=Mask.of(lens)).output
    poisoned = x.clone()
    poisoned[1, 2:] = float("nan")  # the padding of example 1
    out = mha(poisoned, mask=Mask.of(lens)).output
    torch.testing.assert_close(out[:, :2], clean[:, :2])  # real positions (queries 2.. of example 1 are padding)
    torch.testing.assert_close(out[0], clean[0])
    q = torch.randn(2, 3, 8)
    torch.testing.assert_close(mha(q, poisoned, mask=Mask.of(lens)).output, mha(q, x, mask=Mask.of(lens)).output)
    torch.testing.assert_close(
        mha(q, mha.project(poisoned), mask=Mask.of(lens)).output, mha(q, x, mask=Mask.of(lens)).output
    )


def test_a_replacement_attention_runs_through_its_forward_with_the_calls_mask():
    """A replaced kernel (QK-norm, chapter 8's variants) is always called through the one protocol."""
    from d2l_attn.scoring import AttentionOutput, DotProductAttention

    calls = []

    class Recording(DotProductAttention):
        def forward(self, queries, keys, values, mask=None, need_weights=False):
            calls.append(mask)
            out = super().forward(queries, keys, values, mask, need_weights)
            return AttentionOutput(2 * out.output, out.weights)

    torch.manual_seed(0)
    stock = MultiHeadAttention(8, 2).eval()
    replaced = MultiHeadAttention(8, 2).eval()
    replaced.load_state_dict(stock.state_dict())
    replaced.attention = Recording()
    x, lens = torch.randn(2, 3, 8), torch.tensor([3, 1])
    mask = Mask.from_lengths(lens, x)
    out = replaced(x, mask=mask).output
    assert len(calls) == 1 and calls[0] is mask  # its forward ran, with the call's mask
    torch.testing.assert_close(out, replaced(x, mask=Mask.of(lens)).output)
    # twice the heads, then W_o: (2 heads) W_o^T + b_o
    heads_out = stock(x, mask=mask).output - stock.W_o.bias
    torch.testing.assert_close(out - replaced.W_o.bias, 2 * heads_out)


def test_forward_returns_fixed_fields_whatever_the_flags():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 4, 8)
    for kwargs in (
        {},
        {"need_weights": True},
        {"cache": mha.empty_cache(x)},
        {"need_weights": True, "cache": mha.empty_cache(x)},
    ):
        out = mha(x, **kwargs)
        assert isinstance(out, MultiHeadOutput) and len(out) == 3
        assert (out.weights is not None) == kwargs.get("need_weights", False)
        assert (out.cache is not None) == ("cache" in kwargs)


def test_self_attention_stores_one_fused_projection_and_no_cat_per_forward():
    mha = MultiHeadAttention(8, 2)
    names = {name for name, _ in mha.named_parameters()}
    assert names == {"W_qkv.weight", "W_qkv.bias", "W_o.weight", "W_o.bias"}
    assert mha.W_qkv.weight.shape == (24, 8)
    assert mha.W_k.weight.data_ptr() == mha.W_qkv.weight[8:16].data_ptr()  # W_k is a view of rows 8..15
    x = torch.randn(2, 5, 8)
    with torch.profiler.profile() as prof:
        mha(x, mask=Mask.causal())
    ops = [e.key for e in prof.key_averages()]
    assert "aten::cat" not in ops, ops


def test_separately_named_projections_still_load():
    """Checkpoints (and renamed Hugging Face weights) that name W_q, W_k, W_v load into W_qkv."""
    torch.manual_seed(0)
    mha, other = MultiHeadAttention(8, 2), MultiHeadAttention(8, 2)
    old = {
        f"{n}.{p}": getattr(other, n).__getattribute__(p).detach().clone()
        for n in ("W_q", "W_k", "W_v")
        for p in ("weight", "bias")
    }
    old |= {"W_o.weight": other.W_o.weight.detach(), "W_o.bias": other.W_o.bias.detach()}
    mha.load_state_dict(old)
    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(mha(x).output, other(x).output)


@pytest.mark.parametrize("fused", [True, False])
def test_cache_in_cache_out_equals_recomputation(fused):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, fused=fused, num_kv_heads=1).eval()
    x = torch.randn(2, 6, 8)
    full = mha(x, mask=Mask.causal()).output
    cache, pieces = mha.empty_cache(x), []
    for t in range(0, 6, 2):
        out = mha(x[:, t : t + 2], mask=Mask.causal(), cache=cache)
        pieces.append(out.output)
        cache = out.cache
    assert cache.k.shape == (2, 1, 6, 4)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full)


@pytest.mark.parametrize("fused", [True, False])
def test_num_kv_heads_equal_to_num_heads_is_exactly_multi_head_attention(fused):
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 4, fused=fused).eval()
    torch.manual_seed(0)
    same = MultiHeadAttention(12, 4, fused=fused, num_kv_heads=4).eval()
    x = torch.randn(2, 5, 12)
    assert torch.equal(mha.W_qkv.weight, same.W_qkv.weight)
    for mask in (None, Mask.causal(), Mask.of(torch.tensor([5, 2]))):
        assert torch.equal(mha(x, mask=mask).output, same(x, mask=mask).output)


def test_grouped_query_attention_shares_key_value_heads_and_shrinks_the_cache():
    torch.manual_seed(0)
    h, g, d = 4, 2, 16
    gqa = MultiHeadAttention(d, h, num_kv_heads=g).eval()
    assert gqa.W_qkv.weight.shape == (d + 2 * g * (d // h), d)  # the key/value rows shrink by h / g
    x = torch.randn(2, 5, d)
    out = gqa(x, mask=Mask.causal(), cache=gqa.empty_cache(x), need_weights=True)
    assert out.cache.k.shape == (2, g, 5, d // h)  # h / g = 2 times smaller than multi-head's (2, h, 5, d_h)
    # an MHA whose key/value heads are the GQA ones repeated gives the same output
    mha = MultiHeadAttention(d, h).eval()
    with torch.no_grad():
        mha.W_q.weight.copy_(gqa.W_q.weight)
        mha.W_q.bias.copy_(gqa.W_q.bias)
        for name in ("W_k", "W_v"):
            w, b = getattr(gqa, name).weight, getattr(gqa, name).bias  # (g d_h, d)
            getattr(mha, name).weight.copy_(w.view(g, 1, d // h, d).expand(g, h // g, d // h, d).reshape(d, d))
            getattr(mha, name).bias.copy_(b.view(g, 1, d // h).expand(g, h // g, d // h).reshape(d))
        mha.W_o.load_state_dict(gqa.W_o.state_dict())
    want = mha(x, mask=Mask.causal(), need_weights=True)
    torch.testing.assert_close(out.output, want.output)
    torch.testing.assert_close(out.weights, want.weights)
    # multi-query (g = 1): every query head reads the same keys
    mqa = MultiHeadAttention(d, h, num_kv_heads=1)
    assert mqa.project(x).k.shape == (2, 1, 5, d // h)
    with pytest.raises(ValueError, match="divisible by num_kv_heads"):
        MultiHeadAttention(d, h, num_kv_heads=3)
