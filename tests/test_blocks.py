"""Tests for d2l_attn.blocks: FFN, AddNorm (post-/pre-LN), and the one Block (encoder, decoder, GPT)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2l_attn.blocks import AddNorm, Block, BlockOutput, LayerCache, PositionWiseFFN
from d2l_attn.masking import Mask
from d2l_attn.multihead import KVCache, MultiHeadAttention

D, H, FF = 16, 4, 32


def enc(d_model=D, num_heads=H, d_ff=FF, **kwargs) -> Block:
    """An encoder block (bidirectional self-attention + FFN)."""
    return Block.build(d_model, num_heads, d_ff, **kwargs)


def dec(d_model=D, num_heads=H, d_ff=FF, **kwargs) -> Block:
    """A decoder block (causal self-attention, cross-attention, FFN)."""
    return Block.build(d_model, num_heads, d_ff, cross=True, **kwargs)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- position-wise FFN ----------------------------------------------------------------------------
def test_ffn_shape_and_formula():
    torch.manual_seed(0)
    ffn = PositionWiseFFN(D, FF).eval()
    x = randn(2, 5, D)
    expected = ffn.dense2(torch.relu(ffn.dense1(x)))
    torch.testing.assert_close(ffn(x), expected)
    assert ffn(x).shape == (2, 5, D)
    assert PositionWiseFFN(D, FF, activation="gelu")(x).shape == (2, 5, D)


def test_ffn_does_not_mix_positions():
    torch.manual_seed(0)
    ffn = PositionWiseFFN(D, FF).eval()
    x = randn(1, 6, D)
    y = x.clone()
    y[:, 3] += 1.0
    changed = (ffn(x) - ffn(y)).abs().sum(-1)[0]  # (6,)
    assert changed[3] > 0 and torch.all(changed[torch.arange(6) != 3] == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d_model=0, d_ff=4), "d_model"),
        (dict(d_model=4, d_ff=-1), "d_ff"),
        (dict(d_model=4, d_ff=4, activation="tanh"), "activation"),
        (dict(d_model=4, d_ff=4, dropout=1.0), "dropout"),
    ],
)
def test_ffn_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PositionWiseFFN(**kwargs)


def test_ffn_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"d_model=16"):
        PositionWiseFFN(D, FF)(torch.zeros(2, 3, D + 1))


# -- AddNorm --------------------------------------------------------------------------------------
def test_addnorm_post_and_pre_ln_formulas():
    x = randn(2, 3, D)
    f = nn.Linear(D, D)
    post, pre = AddNorm(D), AddNorm(D, norm_first=True)
    ln = nn.LayerNorm(D)
    torch.testing.assert_close(post(x, f(post.prenorm(x))), ln(x + f(x)))
    torch.testing.assert_close(pre(x, f(pre.prenorm(x))), x + f(ln(x)))
    assert post.prenorm(x) is x


def test_addnorm_rejects_shape_changes_and_non_tensors():
    with pytest.raises(ValueError, match="sublayer_out must be a tensor of the shape of x"):
        AddNorm(D)(torch.zeros(2, 3, D), torch.zeros(2, 1, D))
    with pytest.raises(ValueError, match="sublayer_out"):
        AddNorm(D)(torch.zeros(2, 3, D), lambda h: h)


# -- the block from its parts ---------------------------------------------------------------------
def test_block_receives_its_parts_and_returns_a_fixed_tuple():
    torch.manual_seed(0)
    attention, ffn = MultiHeadAttention(D, H), PositionWiseFFN(D, FF)
    block = Block(attention, ffn, norm_first=True).eval()
    assert block.attention is attention and block.ffn is ffn and block.cross_attention is None
    x = randn(2, 5, D)
    out = block(x)
    assert isinstance(out, BlockOutput) and out.weights is None and out.cache is None
    expected = x + attention(block.addnorm1.norm(x)).output  # pre-LN by hand
    expected = expected + ffn(block.addnorm2.norm(expected))
    torch.testing.assert_close(out.x, expected)
    out_w = block(x, need_weights=True)
    assert len(out_w) == len(out) == 3 and out_w.weights.shape == (2, H, 5, 5)
    torch.testing.assert_close(out_w.x, out.x, atol=1e-5, rtol=1e-5)  # fused path agrees with the weights path
    with pytest.raises(ValueError, match="attention must be a MultiHeadAttention"):
        Block(ffn, ffn)
    with pytest.raises(ValueError, match="ffn must be a PositionWiseFFN with d_model=16"):
        Block(attention, PositionWiseFFN(8, FF))
    with pytest.raises(ValueError, match="cross_attention must be None or a MultiHeadAttention"):
        Block(attention, ffn, cross_attention=MultiHeadAttention(8, 2))


def test_gqa_and_rope_plug_into_the_block():
    from d2l_attn.positional import RotaryPositionalEncoding

    torch.manual_seed(0)
    rope = RotaryPositionalEncoding(D // H)
    block = Block.build(D, H, FF, causal=True, num_kv_heads=2, rotary=rope).eval()
    assert block.attention.num_kv_heads == 2 and block.attention.rotary is rope
    x = randn(2, 6, D)
    full = block(x).x
    cache = block.attention.empty_cache(x)
    first, _, cache = block(x[:, :4], cache=cache)
    rest, _, cache = block(x[:, 4:], cache=cache)
    assert cache.k.shape == (2, 2, 6, D // H)  # g = 2 key/value heads cached
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-5)


# -- encoder block --------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_shapes_and_weights(norm_first):
    torch.manual_seed(0)
    block = enc(norm_first=norm_first).eval()
    x, lens = randn(3, 6, D), torch.tensor([6, 4, 1])
    out, w, cache = block(x, Mask.of(lens), need_weights=True)
    assert out.shape == (3, 6, D) and w.shape == (3, H, 6, 6) and cache is None
    torch.testing.assert_close(w.sum(-1), torch.ones(3, H, 6))
    pad = torch.arange(6) >= lens[:, None]  # (B, T)
    assert torch.all(w.masked_select(pad[:, None, None, :]) == 0)
    torch.testing.assert_close(block(x, Mask.of(lens)).x, out, atol=1e-5, rtol=1e-5)  # fused path agrees


@pytest.mark.parametrize("fused", [True, False])
def test_encoder_block_ignores_padded_positions(fused):
    torch.manual_seed(0)
    block = enc(fused=fused).eval()
    x, lens = randn(2, 6, D), torch.tensor([4, 2])
    y = x.clone()
    y[0, 4:] = 50.0
    y[1, 2:] = -7.0
    real = torch.arange(6) < lens[:, None]
    torch.testing.assert_close(block(x, Mask.of(lens)).x[real], block(y, Mask.of(lens)).x[real])


def test_blocks_reject_bad_arguments():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        enc(10, 4, 8)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        dec(10, 3, 8)
    with pytest.raises(ValueError, match="dropout"):
        enc(8, 2, 8, dropout=-0.1)
    with pytest.raises(ValueError, match="num_heads"):
        dec(8, 0, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model=16\)"):
        enc()(torch.zeros(2, 3, 8))
    with pytest.raises(ValueError, match="mask must be a d2l_attn.masking.Mask"):
        enc()(torch.zeros(1, 3, D), torch.ones(1, 1, 1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no"):
        enc()(torch.zeros(2, 3, D), memory=torch.zeros(2, 3, D))  # no cross-attention to use it
    block = dec()
    with pytest.raises(ValueError, match="memory must have"):
        block(torch.zeros(2, 3, D), memory=torch.zeros(2, 3, 8))
    with pytest.raises(ValueError, match="memory must have"):
        block(torch.zeros(2, 3, D))  # a decoder block needs its memory
    with pytest.raises(ValueError, match="batch size"):
        block(torch.zeros(2, 3, D), memory=torch.zeros(3, 4, D))


# -- decoder block --------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_is_causal(fused, norm_first):
    torch.manual_seed(0)
    block = dec(norm_first=norm_first, fused=fused).eval()
    x, memory, lens = randn(2, 7, D), randn(2, 5, D, seed=1), torch.tensor([5, 3])
    y = x.clone()
    y[:, 4:] = randn(2, 3, D, seed=2)  # change the "future" from position 4 on
    a = block(x, memory=memory, memory_mask=Mask.of(lens)).x
    b = block(y, memory=memory, memory_mask=Mask.of(lens)).x
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-3


def test_decoder_block_weights_and_memory_padding():
    torch.manual_seed(0)
    block = dec().eval()
    x, memory, lens = randn(2, 4, D), randn(2, 5, D, seed=1), torch.tensor([5, 2])
    out, (w_self, w_cross), _ = block(x, memory=memory, memory_mask=Mask.of(lens), need_weights=True)
    assert w_self.shape == (2, H, 4, 4) and w_cross.shape == (2, H, 4, 5)
    assert torch.all(w_self.triu(diagonal=1) == 0)  # no weight on the future
    assert torch.all(w_cross[1, :, :, 2:] == 0)  # none on padded memory
    memory2 = memory.clone()
    memory2[1, 2:] = 99.0
    again = block(x, memory=memory2, memory_mask=Mask.of(lens)).x
    torch.testing.assert_close(again, out, atol=1e-5, rtol=1e-5)


def _decoder_cache(block: Block, memory: torch.Tensor) -> LayerCache:
    return LayerCache(block.attention.empty_cache(memory), block.cross_attention.project(memory))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_forward_with_kv_cache_equals_full_forward(norm_first):
    torch.manual_seed(0)
    block = dec(norm_first=norm_first).eval()
    x, memory, lens = randn(3, 6, D), randn(3, 5, D, seed=1), torch.tensor([5, 3, 1])
    mask = Mask.of(lens)
    full = block(x, memory=memory, memory_mask=mask).x
    cache = _decoder_cache(block, memory)
    assert cache.self_attn.k.shape == (3, H, 0, D // H) and cache.memory.k.shape == (3, H, 5, D // H)
    outs = []
    for t in range(6):  # one token at a time, through the same forward
        out, _, cache = block(x[:, t : t + 1], memory_mask=mask, cache=cache)
        outs.append(out)
    assert cache.self_attn.k.shape == (3, H, 6, D // H)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)
    # chunks of several tokens give the same too
    cache = _decoder_cache(block, memory)
    first, _, cache = block(x[:, :2], memory_mask=mask, cache=cache)
    rest, (w_self, _), cache = block(x[:, 2:], memory_mask=mask, cache=cache, need_weights=True)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-5)
    assert w_self.shape == (3, H, 4, 6)
    with pytest.raises(ValueError, match="LayerCache"):
        block(x[:, :1], memory_mask=mask, cache=(cache.self_attn, cache.memory))
    with pytest.raises(ValueError, match="not both"):
        block(x[:, :1], memory=memory, memory_mask=mask, cache=cache)


def test_layer_cache_index_select():
    rows = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 4, 2)  # batch row b holds the value b
    cache = LayerCache(KVCache(rows, rows + 10), KVCache(rows + 20, rows + 30))
    picked = cache.index_select(torch.tensor([2, 2, 0]))
    assert picked.self_attn.k[:, 0, 0, 0].tolist() == [2.0, 2.0, 0.0]
    assert picked.memory.v[:, 0, 0, 0].tolist() == [32.0, 32.0, 30.0]


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_self_attention_block_equals_explicit_mask_and_cached_steps(norm_first):
    """causal=True: the same as a bidirectional block whose attention is masked by hand; and
    generating in pieces with the KV cache gives the outputs of the full forward pass."""
    torch.manual_seed(0)
    block = enc(norm_first=norm_first, causal=True).eval()
    x = randn(3, 7, D)
    full, weights, _ = block(x, need_weights=True)
    assert torch.all(weights.triu(diagonal=1) == 0)
    # independent reference: the same weights, attention masked with an explicit lower triangle
    plain = enc(norm_first=norm_first).eval()
    plain.load_state_dict(block.state_dict())
    tril = torch.ones(7, 7, dtype=torch.bool).tril()
    h = plain.addnorm1.norm(x) if norm_first else x
    attn = plain.attention(h, mask=Mask.of(attn_mask=tril)).output
    y = x + attn if norm_first else plain.addnorm1.norm(x + attn)
    expected = plain.addnorm2(y, plain.ffn(plain.addnorm2.prenorm(y)))
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=1e-5)
    # changing a later token never changes an earlier output
    x2 = x.clone()
    x2[:, 4:] += 5.0
    torch.testing.assert_close(block(x2).x[:, :4], full[:, :4], atol=1e-5, rtol=1e-5)
    # cached generation through the same forward: 1 token, then 2, then 4
    out1, _, cache = block(x[:, :1], cache=block.attention.empty_cache(x))
    out2, _, cache = block(x[:, 1:3], cache=cache)
    out3, w, cache = block(x[:, 3:], cache=cache, need_weights=True)
    assert cache.length == 7 and w.shape == (3, H, 4, 7)
    torch.testing.assert_close(torch.cat([out1, out2, out3], 1), full, atol=1e-5, rtol=1e-5)


def test_encoder_block_is_bidirectional():
    block = enc()
    assert not block.causal
    x = randn(1, 5, D)
    x2 = x.clone()
    x2[:, 4] += 5.0
    assert not torch.allclose(block.eval()(x).x[:, 0], block(x2).x[:, 0])  # position 0 sees position 4


# -- comparison with torch.nn ---------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_torch(norm_first, fused):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        D, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    ours = enc(norm_first=norm_first, fused=fused).eval()
    ours.load_torch_weights(ref)
    x, lens = randn(3, 6, D), torch.tensor([6, 3, 1])
    key_padding = torch.arange(6) >= lens[:, None]  # True = ignore (torch's convention)
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=key_padding)
        got = ours(x, Mask.of(lens)).x
    real = ~key_padding
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and without padding, every position
        torch.testing.assert_close(ours(x).x, ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_matches_torch(norm_first, fused):
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(
        D, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    ours = dec(norm_first=norm_first, fused=fused).eval()
    ours.load_torch_weights(ref)
    x, memory, lens = randn(3, 5, D), randn(3, 6, D, seed=1), torch.tensor([6, 2, 4])
    causal = nn.Transformer.generate_square_subsequent_mask(5)  # float, -inf above the diagonal
    memory_padding = torch.arange(6) >= lens[:, None]
    with torch.no_grad():
        expected = ref(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_padding)
        got = ours(x, memory=memory, memory_mask=Mask.of(lens)).x
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_load_torch_weights_rejects_mismatches():
    ref = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, norm_first=True)
    with pytest.raises(ValueError, match="norm_first"):
        enc(norm_first=False).load_torch_weights(ref)
    with pytest.raises(ValueError, match="d_ff"):
        enc(d_ff=2 * FF, norm_first=True).load_torch_weights(ref)
    gelu = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        enc().load_torch_weights(gelu)
    with pytest.raises(ValueError, match="TransformerDecoderLayer"):
        dec().load_torch_weights(ref)


# -- the mask a stack builds once, handed to every block --------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_a_mask_built_once_equals_lengths_given_to_the_block(norm_first):
    torch.manual_seed(0)
    encoder, decoder = enc(norm_first=norm_first).eval(), dec(norm_first=norm_first).eval()
    x, memory = randn(3, 5, D, seed=1), randn(3, 6, D, seed=2)
    lens = torch.tensor([5, 2, 1])
    mask = Mask.from_lengths(lens, x)
    assert mask.keep.shape == (3, 1, 1, 5)  # one key mask for every head and query: no (B, h, T, T) tensor
    torch.testing.assert_close(encoder(x, mask).x, encoder(x, Mask.of(lens)).x)
    w = encoder(x, mask, need_weights=True).weights
    torch.testing.assert_close(w, encoder(x, Mask.of(lens), need_weights=True).weights)
    mem_lens = torch.tensor([6, 3, 1])
    mem_mask = Mask.from_lengths(mem_lens, memory)
    torch.testing.assert_close(
        decoder(x, memory=memory, memory_mask=mem_mask).x, decoder(x, memory=memory, memory_mask=Mask.of(mem_lens)).x
    )


def test_block_forward_ignores_nan_in_padding():
    torch.manual_seed(0)
    block, decoder = enc().eval(), dec().eval()
    x, lens = randn(2, 5, D), torch.tensor([5, 3])
    poisoned = x.clone()
    poisoned[1, 3:] = float("inf")
    torch.testing.assert_close(block(poisoned, Mask.of(lens)).x[1, :3], block(x, Mask.of(lens)).x[1, :3])
    y = randn(2, 4, D, seed=3)
    torch.testing.assert_close(
        decoder(y, memory=poisoned, memory_mask=Mask.of(lens)).x, decoder(y, memory=x, memory_mask=Mask.of(lens)).x
    )


@pytest.mark.parametrize("kind", ["encoder", "decoder", "gpt", "bert", "vit"])
def test_stacks_call_their_blocks_as_modules_so_forward_hooks_fire(kind):
    """A stack checks lengths once, but every block still goes through ``__call__``: hooks see it."""
    from d2l_attn.models import BERT, GPT, ViT
    from d2l_attn.models.transformer import TransformerDecoder, TransformerEncoder

    torch.manual_seed(0)
    tokens, lens = torch.randint(0, 20, (2, 6)), torch.tensor([6, 3])
    sizes = dict(d_model=16, num_heads=2, d_ff=32, num_layers=3)
    if kind == "encoder":
        model, run = TransformerEncoder(20, **sizes), lambda m: m(tokens, lens)
    elif kind == "decoder":
        memory = torch.randn(2, 5, 16)
        model, run = TransformerDecoder(20, **sizes), lambda m: m(tokens, memory, torch.tensor([5, 2]))
    elif kind == "gpt":
        model, run = GPT(vocab_size=20, max_len=8, **sizes), lambda m: m(tokens, lens)
    elif kind == "bert":
        model, run = BERT(vocab_size=20, max_len=8, **sizes), lambda m: m.encode(tokens, None, lens)
    else:
        model = ViT(image_size=8, patch_size=4, in_channels=1, num_classes=3, **sizes)
        run = lambda m: m(torch.randn(2, 1, 8, 8))
    model.eval()
    seen = []
    handles = [b.register_forward_hook(lambda mod, args, out, i=i: seen.append(i)) for i, b in enumerate(model.blocks)]
    run(model)
    for handle in handles:
        handle.remove()
    assert seen == [0, 1, 2]


def test_decoder_block_loads_checkpoints_of_the_former_decoder_block():
    """Before the one Block, a decoder block named its parts self_attention, addnorm1..3."""
    torch.manual_seed(0)
    block = dec().eval()
    renames = {"attention.": "self_attention.", "addnorm2.": "addnorm3.", "cross_addnorm.": "addnorm2."}
    old = {}
    for key, value in block.state_dict().items():
        new_key = next((o + key[len(n) :] for n, o in renames.items() if key.startswith(n)), key)
        old[new_key] = value.clone() + 1.0
    assert "addnorm3.norm.weight" in old and "self_attention.W_qkv.weight" in old
    fresh = dec().eval()
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh.addnorm2.norm.weight, old["addnorm3.norm.weight"])
    torch.testing.assert_close(fresh.cross_addnorm.norm.bias, old["addnorm2.norm.bias"])
    torch.testing.assert_close(fresh.attention.W_o.weight, old["self_attention.W_o.weight"])
