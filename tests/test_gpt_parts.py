"""GPT built from the library's parts: norm_first, num_kv_heads (GQA/MQA), positional (learned,
sinusoidal, RoPE, ALiBi) -- each checked against an independent formula or torch.nn."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from d2l_attn import interop
from d2l_attn.masking import Mask
from d2l_attn.models.gpt import GPT, GPTConfig
from d2l_attn.multihead import MultiHeadAttention
from d2l_attn.positional import ALiBi, RotaryPositionalEncoding, alibi_bias, alibi_slopes
from d2l_attn.scoring import DotProductAttention

V = 23


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, max_len=16, num_layers=2, num_heads=4, d_model=32)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


# -- config validation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(norm_first="yes"), "norm_first"),
        (dict(positional="relative"), "positional"),
        (dict(num_kv_heads=3), "num_kv_heads"),
        (dict(num_kv_heads=0), "num_kv_heads"),
        (dict(num_kv_heads=2.0), "num_kv_heads"),
        (dict(positional="rope", d_model=12, num_heads=4), "rope"),  # head size 3 is odd
        (dict(positional="sinusoidal", d_model=15, num_heads=5), "sinusoidal"),
    ],
)
def test_config_rejects_bad_choices_naming_the_argument(kw, word):
    cfg = dict(vocab_size=V, max_len=16, num_layers=1, num_heads=4, d_model=32)
    cfg.update(kw)
    with pytest.raises(ValueError, match=word):
        GPTConfig(**cfg)


def test_defaults_are_gpt2_and_num_kv_heads_defaults_to_num_heads():
    c = GPTConfig()
    assert (c.norm_first, c.num_kv_heads, c.positional) == (True, c.num_heads, "learned")
    model = tiny()
    assert type(model.blocks[0].attention) is MultiHeadAttention  # the default GPT is unchanged


# -- RoPE -----------------------------------------------------------------------------------------
def rotation_matrix(position: int, dim: int) -> torch.Tensor:
    """R_p built entry by entry: a 2x2 rotation by p * 10000^(-2i/d) on each pair (2i, 2i+1)."""
    R = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        angle = position * 10000 ** (-2 * i / dim)
        c, s = math.cos(angle), math.sin(angle)
        R[2 * i, 2 * i], R[2 * i, 2 * i + 1], R[2 * i + 1, 2 * i], R[2 * i + 1, 2 * i + 1] = c, -s, s, c
    return R


def test_rope_attention_equals_a_rotation_matrix_formula_and_complex_numbers():
    torch.manual_seed(0)
    B, h, T, d = 2, 3, 6, 8
    q, k, v = (torch.randn(B, h, T, d, dtype=torch.float64) for _ in range(3))
    rope = RotaryPositionalEncoding(d)
    out, weights = DotProductAttention()(rope(q), rope(k), v, Mask.of(is_causal=True), need_weights=True)
    Rq = torch.stack([q[..., p, :] @ rotation_matrix(p, d).T for p in range(T)], dim=-2)  # R_p q_p
    Rk = torch.stack([k[..., p, :] @ rotation_matrix(p, d).T for p in range(T)], dim=-2)
    scores = Rq @ Rk.transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)
    torch.testing.assert_close(weights, scores.softmax(-1))
    torch.testing.assert_close(out, scores.softmax(-1) @ v)
    # the same rotation as complex numbers: pair (x_2i, x_2i+1) -> (x_2i + i x_2i+1) e^{i p theta_i}
    theta = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    z = torch.view_as_complex(q.reshape(B, h, T, d // 2, 2).contiguous())  # (B, h, T, d/2)
    rotated = z * torch.polar(torch.ones(T, d // 2, dtype=torch.float64), torch.arange(T)[:, None] * theta)
    torch.testing.assert_close(torch.view_as_real(rotated).flatten(-2), Rq)


def test_rope_scores_are_unchanged_when_both_positions_shift():
    """(R_m q)^T (R_n k) depends on m - n only: shifting every position by the same offset keeps the scores."""
    torch.manual_seed(1)
    d = 16
    rope = RotaryPositionalEncoding(d)
    q, k = torch.randn(1, 5, d, dtype=torch.float64), torch.randn(1, 5, d, dtype=torch.float64)
    pos = torch.tensor([0, 3, 4, 9, 12])
    base = rope(q, pos) @ rope(k, pos).transpose(-2, -1)  # (1, 5, 5): score[m, n]
    for offset in (1, 7, 100):
        shifted = rope(q, pos + offset) @ rope(k, pos + offset).transpose(-2, -1)
        torch.testing.assert_close(shifted, base)
    assert not torch.allclose(rope(q, pos) @ rope(k, pos + 1).transpose(-2, -1), base)  # not invariant alone


def first_block_logit_gap(model: GPT, tokens: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """s_ij - s_ii of block 1 in every head (from its weights: the softmax's normalizer cancels)."""
    block = model.blocks[0]
    h = block.addnorm1.norm(model.embed(tokens))  # (1, T, d)
    w = block.attention(h, mask=Mask.of(is_causal=True), need_weights=True).weights  # (1, h, T, T)
    return (w[0, :, i, j] / w[0, :, i, i]).log()  # (h,)


def test_rope_gpt_scores_depend_on_the_distance_not_on_the_absolute_positions():
    a, b, fill = 3, 7, 11
    early = torch.tensor([[a, fill, fill, b, fill, fill, fill, fill, fill, fill]])  # a at 0, b at 3
    late = torch.tensor([[fill, fill, fill, fill, fill, a, fill, fill, b, fill]])  # a at 5, b at 8
    farther = torch.tensor([[a, fill, fill, fill, b, fill, fill, fill, fill, fill]])  # distance 4
    rope = tiny(positional="rope")
    assert not hasattr(rope, "position_embedding")  # nothing is added to the input
    gap = first_block_logit_gap(rope, early, 3, 0)
    torch.testing.assert_close(first_block_logit_gap(rope, late, 8, 5), gap, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(first_block_logit_gap(rope, farther, 4, 0), gap, atol=1e-3)
    # absolute (learned) positions: the same pair at other positions scores differently
    learned = tiny()
    assert not torch.allclose(
        first_block_logit_gap(learned, late, 8, 5), first_block_logit_gap(learned, early, 3, 0), atol=1e-3
    )


# -- ALiBi ----------------------------------------------------------------------------------------
def test_alibi_slopes_are_the_papers():
    # Press et al. 2022, section 3: 8 heads -> 1/2, 1/4, ..., 1/256
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)], dtype=torch.float64))
    # 16 heads: start and ratio 1/sqrt(2)
    torch.testing.assert_close(
        alibi_slopes(16), torch.tensor([2 ** (-i / 2) for i in range(1, 17)], dtype=torch.float64)
    )
    # 12 heads (reference code's get_slopes): the 8 of 8 heads, then the 1st, 3rd, 5th, 7th of 16 heads
    expected = [2.0**-i for i in range(1, 9)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(alibi_slopes(1), torch.tensor([2.0**-8], dtype=torch.float64))
    with pytest.raises(ValueError, match="num_heads"):
        alibi_slopes(0)


def test_alibi_bias_is_minus_slope_times_distance_on_the_causal_scores():
    slopes = alibi_slopes(4)
    bias = alibi_bias(slopes, 3, 5)  # queries at positions 2, 3, 4
    for head in range(4):
        for r, i in enumerate((2, 3, 4)):
            for j in range(5):
                assert bias[head, r, j].item() == pytest.approx(-slopes[head].item() * (i - j))
    # as a score_mod hook
    alibi = ALiBi(4)
    scores = torch.zeros(4, 3, 5)
    q_idx, k_idx = torch.arange(2, 5)[:, None], torch.arange(5)[None, :]
    head = torch.arange(4)[:, None, None]
    torch.testing.assert_close(alibi.score_mod(scores, q_idx, k_idx, head), bias.float())
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8) for _ in range(3))
    att = DotProductAttention(score_mod=alibi.score_mod)
    causal = Mask.of(is_causal=True)
    out, weights = att(q, k, v, causal, need_weights=True)
    ref = (q @ k.transpose(-2, -1) / math.sqrt(8) + alibi.bias(5, 5)).masked_fill(
        ~torch.ones(5, 5, dtype=torch.bool).tril(), -math.inf
    )
    torch.testing.assert_close(weights, ref.softmax(-1))
    torch.testing.assert_close(att(q, k, v, causal).output, out)  # without weights == with weights


def test_alibi_gpt_runs_longer_than_it_was_built_for_and_learned_refuses():
    model = tiny(positional="alibi", max_len=8)
    long = torch.randint(0, V, (2, 20))
    buffers = dict(model.named_buffers())  # ALiBi is a submodule of each kernel: .to(device) moves its slopes
    assert sorted(buffers) == [f"blocks.{i}.attention.attention.alibi.slopes" for i in range(2)]
    logits = model(long)
    assert logits.shape == (2, 20, V) and torch.isfinite(logits).all()
    torch.testing.assert_close(model(long[:, :8]), logits[:, :8], atol=1e-5, rtol=1e-5)  # causal
    with pytest.raises(ValueError, match="max_len"):
        tiny(max_len=8)(long)
    assert tiny(positional="sinusoidal", max_len=8)(long).shape == (2, 20, V)
    assert tiny(positional="rope", max_len=8)(long).shape == (2, 20, V)


def test_sinusoidal_gpt_adds_the_fixed_table():
    from d2l_attn.positional import sinusoidal_encoding

    model = tiny(positional="sinusoidal")
    tokens = torch.randint(0, V, (2, 7))
    torch.testing.assert_close(model.embed(tokens), model.token_embedding(tokens) + sinusoidal_encoding(7, 32))
    torch.testing.assert_close(
        model.embed(tokens, offset=14), model.token_embedding(tokens) + sinusoidal_encoding(21, 32)[14:]
    )


# -- GQA ------------------------------------------------------------------------------------------
def test_gqa_with_as_many_kv_heads_as_heads_equals_the_mha_gpt():
    mha_gpt = tiny()
    gqa_gpt = tiny()
    for block in gqa_gpt.blocks:  # the GQA module with g = h, on the same weights
        block.attention = MultiHeadAttention(32, 4, num_kv_heads=4)
    gqa_gpt.load_state_dict(mha_gpt.state_dict())
    tokens = torch.randint(0, V, (3, 11))
    lens = torch.tensor([11, 7, 3])
    torch.testing.assert_close(gqa_gpt(tokens, lens), mha_gpt(tokens, lens))
    lg, wg = gqa_gpt(tokens, return_weights=True)
    lm, wm = mha_gpt(tokens, return_weights=True)
    torch.testing.assert_close(lg, lm)
    torch.testing.assert_close(torch.stack(wg), torch.stack(wm))
    # and so does a GPT whose config asks for g = h explicitly (it is the MHA GPT)
    torch.testing.assert_close(tiny(num_kv_heads=4)(tokens), mha_gpt(tokens))


def test_gqa_group_shares_kv_heads_like_repeated_mha_weights():
    """g < h: the GQA layer equals an MHA whose W_k, W_v rows repeat each kv head h/g times."""
    torch.manual_seed(0)
    gqa = MultiHeadAttention(32, 4, num_kv_heads=2).eval()
    mha = MultiHeadAttention(32, 4).eval()
    d_h = 8
    with torch.no_grad():
        for name in ("W_q", "W_o"):
            getattr(mha, name).weight.copy_(getattr(gqa, name).weight)
            getattr(mha, name).bias.copy_(getattr(gqa, name).bias)
        for name in ("W_k", "W_v"):
            w = getattr(gqa, name).weight.view(2, d_h, 32).repeat_interleave(2, dim=0).reshape(32, 32)
            b = getattr(gqa, name).bias.view(2, d_h).repeat_interleave(2, dim=0).reshape(32)
            getattr(mha, name).weight.copy_(w)
            getattr(mha, name).bias.copy_(b)
    x = torch.randn(2, 9, 32)
    causal = Mask.of(is_causal=True)
    torch.testing.assert_close(gqa(x, mask=causal).output, mha(x, mask=causal).output)


@pytest.mark.parametrize("positional", ["learned", "rope", "alibi", "sinusoidal"])
@pytest.mark.parametrize("num_kv_heads", [4, 2, 1])
def test_kv_cache_shrinks_by_the_group_factor_and_decoding_equals_recomputation(positional, num_kv_heads):
    model = tiny(num_kv_heads=num_kv_heads, positional=positional)
    prompt = torch.randint(0, V, (2, 4))
    state = model.init_state(prompt, None)
    assert state.caches[0].k.shape == (2, num_kv_heads, 3, 8)  # (B, g, t, d_h): h/g times smaller
    seq, token = prompt, torch.zeros(2, dtype=torch.long)
    for _ in range(5):
        logits, state, _ = model.step(token, state)
        torch.testing.assert_close(logits, model(seq)[:, -1], atol=1e-5, rtol=1e-5)
        token = logits.argmax(-1)
        seq = torch.cat([seq, token[:, None]], dim=1)
    per_layer = sum(c.k.numel() + c.v.numel() for c in state.caches) / len(state.caches)
    assert per_layer == 2 * 2 * num_kv_heads * (seq.shape[1] - 1) * 8
    params = sum(p.numel() for p in model.blocks[0].attention.parameters())
    assert params == 2 * (32 * 32 + 32) + 2 * (32 * num_kv_heads * 8 + num_kv_heads * 8)


@pytest.mark.parametrize("positional", ["learned", "rope", "alibi", "sinusoidal"])
@pytest.mark.parametrize("num_kv_heads", [4, 1])
def test_right_padding_does_not_change_real_positions_for_every_part(positional, num_kv_heads):
    model = tiny(num_kv_heads=num_kv_heads, positional=positional)
    x = torch.randint(0, V, (2, 6))
    padded = torch.cat([x, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    lens = torch.tensor([6, 6])
    torch.testing.assert_close(model(padded, valid_lens=lens)[:, :6], model(x), atol=1e-5, rtol=1e-5)
    logits, weights = model(padded, valid_lens=lens, return_weights=True)  # the reference path
    torch.testing.assert_close(logits[:, :6], model(x), atol=1e-5, rtol=1e-5)
    assert weights[0].shape == (2, 4, 10, 10) and weights[0][..., 6:].abs().max() == 0


# -- post-LN --------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_norm_first_matches_a_torch_nn_encoder_stack(norm_first):
    model = tiny(norm_first=norm_first, activation="relu", d_ff=48)
    assert isinstance(model.final_norm, nn.LayerNorm if norm_first else nn.Identity)
    layers = nn.ModuleList(
        nn.TransformerEncoderLayer(32, 4, 48, dropout=0.0, batch_first=True, norm_first=norm_first) for _ in range(2)
    ).eval()
    for ours, theirs in zip(model.blocks, layers):
        with torch.no_grad():
            theirs.self_attn.in_proj_weight.copy_(
                torch.cat([ours.attention.W_q.weight, ours.attention.W_k.weight, ours.attention.W_v.weight])
            )
            theirs.self_attn.in_proj_bias.copy_(
                torch.cat([ours.attention.W_q.bias, ours.attention.W_k.bias, ours.attention.W_v.bias])
            )
            theirs.self_attn.out_proj.load_state_dict(ours.attention.W_o.state_dict())
            theirs.linear1.load_state_dict(ours.ffn.dense1.state_dict())
            theirs.linear2.load_state_dict(ours.ffn.dense2.state_dict())
            theirs.norm1.load_state_dict(ours.addnorm1.norm.state_dict())
            theirs.norm2.load_state_dict(ours.addnorm2.norm.state_dict())
    tokens = torch.randint(0, V, (2, 9))
    h = model.token_embedding(tokens) + model.position_embedding(torch.arange(9))
    causal = nn.Transformer.generate_square_subsequent_mask(9)
    for layer in layers:
        h = layer(h, src_mask=causal)
    if norm_first:
        h = model.final_norm(h)
    torch.testing.assert_close(model(tokens), h @ model.token_embedding.weight.T, atol=1e-5, rtol=1e-4)


def test_post_ln_block_output_is_normalized():
    model = tiny(norm_first=False)
    model.blocks[-1].register_forward_hook(lambda m, i, o: setattr(m, "seen", o.x))
    model(torch.randint(0, V, (2, 6)))
    out = model.blocks[-1].seen  # LN(x + FFN(x)) with unit gain, zero shift at initialization
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 6), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 6), atol=1e-3, rtol=0)


def test_hf_checkpoint_parts_cannot_be_overridden():
    with pytest.raises(ValueError, match="positional"):
        interop.from_hf_gpt2(_FakeHF(), positional="rope")


class _FakeHF(nn.Module):
    class config:  # what from_hf_gpt2 reads first
        n_positions, n_layer, n_head, n_embd, vocab_size = 8, 1, 2, 8, 11
        n_inner, layer_norm_epsilon, activation_function = None, 1e-5, "gelu_new"


def test_mha_rotary_hook_rotates_queries_and_keys_at_their_absolute_positions():
    torch.manual_seed(0)
    rope = RotaryPositionalEncoding(8)
    mha = MultiHeadAttention(32, 4, num_kv_heads=2, rotary=rope).eval()
    x = torch.randn(2, 7, 32)
    causal = Mask.of(is_causal=True)
    full = mha(x, mask=causal, need_weights=True)
    q = rope(mha.W_q(x).view(2, 7, 4, 8).transpose(1, 2))  # (B, h, T, d_h): R_p q_p
    k = rope(mha.W_k(x).view(2, 7, 2, 8).transpose(1, 2)).repeat_interleave(2, dim=1)  # (B, h, T, d_h)
    scores = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~torch.ones(7, 7, dtype=torch.bool).tril(), -math.inf)
    torch.testing.assert_close(full.weights, scores.softmax(-1))
    cache, pieces = mha.empty_cache(x), []  # in pieces: the new positions start at cache.length
    for a, b in ((0, 3), (3, 4), (4, 7)):
        out = mha(x[:, a:b], mask=causal, cache=cache)
        cache = out.cache
        pieces.append(out.output)
    torch.testing.assert_close(torch.cat(pieces, 1), full.output)
    with pytest.raises(ValueError, match="rotary must be a callable"):
        MultiHeadAttention(32, 4, rotary=3)
