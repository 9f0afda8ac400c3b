"""Tests for d2l_attn.multihead (chapter 5): against torch.nn.MultiheadAttention, split/merge, errors."""

import pytest
import torch
from torch import nn

from d2l_attn.masking import sequence_mask
from d2l_attn.multihead import MultiHeadAttention, merge_heads, split_heads


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
    torch.testing.assert_close(ours(q, k, v), expected, rtol=1e-5, atol=1e-5)
    out, weights = ours(q, k, v, return_weights=True)
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
    torch.testing.assert_close(ours(q, k, v, valid_lens=valid_lens), expected, rtol=1e-5, atol=1e-5)
    out, weights = ours(q, k, v, valid_lens=valid_lens, return_weights=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights, expected_heads, rtol=1e-5, atol=1e-6)
    assert torch.all(weights[0, :, :, 3:] == 0) and torch.all(weights[1, :, :, 6:] == 0)
    # the same mask given as a boolean attn_mask (True = attend), (B, T_q, T_k)
    keep = ~key_padding_mask[:, None, :].expand(2, 5, 7)
    torch.testing.assert_close(ours(q, k, v, attn_mask=keep), expected, rtol=1e-5, atol=1e-5)


def test_matches_torch_with_causal_attn_mask():
    ours, theirs = _pair()
    q, _, _ = _inputs(t_q=6, t_k=6)
    causal_keep = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    expected, _ = theirs(q, q, q, attn_mask=~causal_keep)  # torch: True = not allowed
    torch.testing.assert_close(ours(q, q, q, attn_mask=causal_keep), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_matches_torch_with_kdim_vdim(fused):
    ours, theirs = _pair(d_model=8, num_heads=2, kdim=5, vdim=3)
    ours.attention.fused = fused
    q, k, v = _inputs(d_q=8, d_k=5, d_v=3)
    valid_lens = torch.tensor([7, 2])
    expected, expected_avg = theirs(q, k, v, key_padding_mask=~sequence_mask(valid_lens, 7))
    out, weights = ours(q, k, v, valid_lens=valid_lens, return_weights=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights.mean(1), expected_avg, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(q, k, v, valid_lens=valid_lens), expected, rtol=1e-5, atol=1e-5)


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
    with pytest.raises(ValueError, match=r"queries must have shape \(B, T_q, d_model=8\)"):
        mha(torch.randn(2, 3, 7), k, torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match=r"keys must have shape \(B, T_k, key_dim=5\)"):
        mha(q, torch.randn(2, 4, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="same number of steps T_k"):
        mha(q, k, torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="same batch size"):
        mha(q, torch.randn(3, 4, 5), torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match="sizes differ"):
        mha.load_torch_weights(nn.MultiheadAttention(8, 2, batch_first=True))


def test_fused_and_reference_paths_agree_with_masks_and_grads():
    torch.manual_seed(0)
    fused = MultiHeadAttention(16, 4)
    reference = MultiHeadAttention(16, 4, fused=False)
    reference.load_state_dict(fused.state_dict())
    x = torch.randn(3, 6, 16, requires_grad=True)
    valid_lens = torch.tensor([6, 0, 2])  # a fully masked example must give zeros, not NaN
    out_f = fused(x, x, x, valid_lens=valid_lens)
    out_r = reference(x, x, x, valid_lens=valid_lens)
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
    _, w = mha(x, x, x, attn_mask=keep, return_weights=True)
    torch.testing.assert_close(w[0, 0, :, 0], torch.ones(4))
    mha.eval()
    torch.testing.assert_close(mha(x, x, x), mha(x, x, x))
    mha.train()
    assert not torch.allclose(mha(x, x, x), mha(x, x, x))  # dropout is active in training


def test_self_attention_packs_the_projections_and_equals_three_products():
    """forward(x, x, x) projects Q, K, V with one matrix product: same outputs and gradients as three."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3).eval()
    with torch.no_grad():  # distinct biases, so that a swapped q/k/v block would show
        for layer in (mha.W_q, mha.W_k, mha.W_v, mha.W_o):
            layer.bias.normal_()
    x = torch.randn(2, 5, 12, requires_grad=True)
    lens = torch.tensor([5, 2])
    packed = mha(x, x, x, valid_lens=lens)  # the same tensor three times: one product
    copies = x.clone()
    separate = mha(x, copies, copies.clone(), valid_lens=lens)  # three tensors: three products
    torch.testing.assert_close(packed, separate, rtol=1e-5, atol=1e-6)
    (grad_packed,) = torch.autograd.grad(packed.square().sum(), x)
    (grad_separate,) = torch.autograd.grad(separate.square().sum(), x)
    torch.testing.assert_close(grad_packed, grad_separate, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mha.self_attend(x, mha.mask(lens, None, 2, 5, 5)), packed)


@pytest.mark.parametrize("fused", [True, False])
def test_nan_in_masked_keys_does_not_reach_the_output(fused):
    """Public forward/attend zero the keys and values no query may see (padding holding NaN or inf)."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, fused=fused).eval()
    x = torch.randn(2, 4, 8)
    lens = torch.tensor([4, 2])
    clean = mha(x, x, x, valid_lens=lens)
    poisoned = x.clone()
    poisoned[1, 2:] = float("nan")  # the padding of example 1
    out = mha(poisoned, poisoned, poisoned, valid_lens=lens)
    torch.testing.assert_close(out[:, :2], clean[:, :2])  # real positions (queries 2.. of example 1 are padding)
    torch.testing.assert_close(out[0], clean[0])
    q = torch.randn(2, 3, 8)
    torch.testing.assert_close(mha(q, poisoned, poisoned, valid_lens=lens), mha(q, x, x, valid_lens=lens))
    torch.testing.assert_close(
        mha.attend(q, mha.project(poisoned, poisoned), valid_lens=lens), mha(q, x, x, valid_lens=lens)
    )


def test_unchecked_paths_run_a_replacement_attention_through_its_forward():
    """A replaced attention module (QK-norm, chapter 8's variants) is never bypassed by the fast path."""
    from d2l_attn.scoring import DotProductAttention

    calls = []

    class Recording(DotProductAttention):
        def forward(
            self, queries, keys, values, valid_lens=None, attn_mask=None, return_weights=False, is_causal=False
        ):
            calls.append(attn_mask)
            return 2 * super().forward(queries, keys, values, valid_lens, attn_mask, return_weights, is_causal)

    torch.manual_seed(0)
    stock = MultiHeadAttention(8, 2).eval()
    replaced = MultiHeadAttention(8, 2).eval()
    replaced.load_state_dict(stock.state_dict())
    replaced.attention = Recording()
    x, lens = torch.randn(2, 3, 8), torch.tensor([3, 1])
    keep = replaced.mask(lens, None, 2, 3, 3)
    out = replaced.self_attend(x, keep)
    assert len(calls) == 1 and calls[0] is keep  # its forward ran, with the key mask
    torch.testing.assert_close(out, replaced(x, x, x, valid_lens=lens))
    # twice the heads, then W_o: (2 heads) W_o^T + b_o
    heads_out = stock.self_attend(x, keep) - stock.W_o.bias
    torch.testing.assert_close(out - replaced.W_o.bias, 2 * heads_out)
