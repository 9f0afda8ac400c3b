"""Tests for d2l_attn.blocks: FFN, AddNorm (post-/pre-LN), encoder and decoder blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2l_attn.blocks import (
    AddNorm,
    LayerCache,
    PositionWiseFFN,
    SelfAttentionBlock,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from d2l_attn.masking import Mask
from d2l_attn.multihead import KVCache

D, H, FF = 16, 4, 32


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
    torch.testing.assert_close(post(x, f), ln(x + f(x)))
    torch.testing.assert_close(pre(x, f), x + f(ln(x)))


def test_addnorm_passes_extra_outputs_through():
    x = randn(2, 3, D)
    y, extra = AddNorm(D)(x, lambda h: (h * 2, "weights"))
    assert extra == "weights" and y.shape == x.shape


def test_addnorm_rejects_shape_changes_and_non_callables():
    with pytest.raises(ValueError, match="keep the shape"):
        AddNorm(D)(torch.zeros(2, 3, D), lambda h: h[:, :1])
    with pytest.raises(ValueError, match="callable"):
        AddNorm(D)(torch.zeros(2, 3, D), torch.zeros(2, 3, D))


# -- encoder block --------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_shapes_and_weights(norm_first):
    torch.manual_seed(0)
    block = TransformerEncoderBlock(D, H, FF, norm_first=norm_first).eval()
    x, lens = randn(3, 6, D), torch.tensor([6, 4, 1])
    out, w = block(x, lens, return_weights=True)
    assert out.shape == (3, 6, D) and w.shape == (3, H, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, H, 6))
    pad = torch.arange(6) >= lens[:, None]  # (B, T)
    assert torch.all(w.masked_select(pad[:, None, None, :]) == 0)
    torch.testing.assert_close(block(x, lens), out, atol=1e-5, rtol=1e-5)  # fused path agrees


@pytest.mark.parametrize("fused", [True, False])
def test_encoder_block_ignores_padded_positions(fused):
    torch.manual_seed(0)
    block = TransformerEncoderBlock(D, H, FF, fused=fused).eval()
    x, lens = randn(2, 6, D), torch.tensor([4, 2])
    y = x.clone()
    y[0, 4:] = 50.0
    y[1, 2:] = -7.0
    real = torch.arange(6) < lens[:, None]
    torch.testing.assert_close(block(x, lens)[real], block(y, lens)[real])


def test_blocks_reject_bad_arguments():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TransformerEncoderBlock(10, 4, 8)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TransformerDecoderBlock(10, 3, 8)
    with pytest.raises(ValueError, match="dropout"):
        TransformerEncoderBlock(8, 2, 8, dropout=-0.1)
    with pytest.raises(ValueError, match="num_heads"):
        TransformerDecoderBlock(8, 0, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d_model=16\)"):
        TransformerEncoderBlock(D, H, FF)(torch.zeros(2, 3, 8))
    block = TransformerDecoderBlock(D, H, FF)
    with pytest.raises(ValueError, match="memory must have"):
        block(torch.zeros(2, 3, D), torch.zeros(2, 3, 8))
    with pytest.raises(ValueError, match="batch size"):
        block(torch.zeros(2, 3, D), torch.zeros(3, 4, D))


# -- decoder block --------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_is_causal(fused, norm_first):
    torch.manual_seed(0)
    block = TransformerDecoderBlock(D, H, FF, norm_first=norm_first, fused=fused).eval()
    x, memory, lens = randn(2, 7, D), randn(2, 5, D, seed=1), torch.tensor([5, 3])
    y = x.clone()
    y[:, 4:] = randn(2, 3, D, seed=2)  # change the "future" from position 4 on
    a, b = block(x, memory, lens), block(y, memory, lens)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-3


def test_decoder_block_weights_and_memory_padding():
    torch.manual_seed(0)
    block = TransformerDecoderBlock(D, H, FF).eval()
    x, memory, lens = randn(2, 4, D), randn(2, 5, D, seed=1), torch.tensor([5, 2])
    out, w_self, w_cross = block(x, memory, lens, return_weights=True)
    assert w_self.shape == (2, H, 4, 4) and w_cross.shape == (2, H, 4, 5)
    assert torch.all(w_self.triu(diagonal=1) == 0)  # no weight on the future
    assert torch.all(w_cross[1, :, :, 2:] == 0)  # none on padded memory
    memory2 = memory.clone()
    memory2[1, 2:] = 99.0
    torch.testing.assert_close(block(x, memory2, lens), out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_step_with_kv_cache_equals_full_forward(norm_first):
    torch.manual_seed(0)
    block = TransformerDecoderBlock(D, H, FF, norm_first=norm_first).eval()
    x, memory, lens = randn(3, 6, D), randn(3, 5, D, seed=1), torch.tensor([5, 3, 1])
    full = block(x, memory, lens)
    cache = block.init_cache(memory)
    assert cache.self_attn.k.shape == (3, H, 0, D // H) and cache.memory.k.shape == (3, H, 5, D // H)
    outs = []
    for t in range(6):  # one token at a time
        out, cache = block.step(x[:, t : t + 1], cache, lens)
        outs.append(out)
    assert cache.self_attn.k.shape == (3, H, 6, D // H)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)
    # chunks of several tokens give the same too
    cache = block.init_cache(memory)
    first, cache = block.step(x[:, :2], cache, lens)
    rest, cache, w_self, _ = block.step(x[:, 2:], cache, lens, return_weights=True)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-5)
    assert w_self.shape == (3, H, 4, 6)
    with pytest.raises(ValueError, match="LayerCache"):
        block.step(x[:, :1], (cache.self_attn, cache.memory), lens)


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
    block = SelfAttentionBlock(D, H, FF, norm_first=norm_first, causal=True).eval()
    x = randn(3, 7, D)
    full, weights = block(x, return_weights=True)
    assert torch.all(weights.triu(diagonal=1) == 0)
    # independent reference: the same weights, attention masked with an explicit lower triangle
    plain = SelfAttentionBlock(D, H, FF, norm_first=norm_first).eval()
    plain.load_state_dict(block.state_dict())
    tril = torch.ones(7, 7, dtype=torch.bool).tril()
    h = plain.addnorm1.norm(x) if norm_first else x
    attn = plain.attention(h, mask=Mask.of(attn_mask=tril)).output
    y = x + attn if norm_first else plain.addnorm1.norm(x + attn)
    expected = plain.addnorm2(y, plain.ffn)
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=1e-5)
    # changing a later token never changes an earlier output
    x2 = x.clone()
    x2[:, 4:] += 5.0
    torch.testing.assert_close(block(x2)[:, :4], full[:, :4], atol=1e-5, rtol=1e-5)
    # cached generation: 1 token, then 2, then 4
    out1, cache = block.step(x[:, :1])
    out2, cache = block.step(x[:, 1:3], cache)
    out3, cache, w = block.step(x[:, 3:], cache, return_weights=True)
    assert cache.length == 7 and w.shape == (3, H, 4, 7)
    torch.testing.assert_close(torch.cat([out1, out2, out3], 1), full, atol=1e-5, rtol=1e-5)


def test_step_needs_a_causal_block():
    with pytest.raises(ValueError, match="causal"):
        SelfAttentionBlock(D, H, FF).step(randn(1, 2, D))


def test_encoder_block_is_the_bidirectional_self_attention_block():
    block = TransformerEncoderBlock(D, H, FF)
    assert isinstance(block, SelfAttentionBlock) and not block.causal
    x = randn(1, 5, D)
    x2 = x.clone()
    x2[:, 4] += 5.0
    assert not torch.allclose(block.eval()(x)[:, 0], block(x2)[:, 0])  # position 0 sees position 4


# -- comparison with torch.nn ---------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_torch(norm_first, fused):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        D, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    ours = TransformerEncoderBlock(D, H, FF, norm_first=norm_first, fused=fused).eval()
    ours.load_torch_weights(ref)
    x, lens = randn(3, 6, D), torch.tensor([6, 3, 1])
    key_padding = torch.arange(6) >= lens[:, None]  # True = ignore (torch's convention)
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=key_padding)
        got = ours(x, lens)
    real = ~key_padding
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and without padding, every position
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_matches_torch(norm_first, fused):
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(
        D, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    ours = TransformerDecoderBlock(D, H, FF, norm_first=norm_first, fused=fused).eval()
    ours.load_torch_weights(ref)
    x, memory, lens = randn(3, 5, D), randn(3, 6, D, seed=1), torch.tensor([6, 2, 4])
    causal = nn.Transformer.generate_square_subsequent_mask(5)  # float, -inf above the diagonal
    memory_padding = torch.arange(6) >= lens[:, None]
    with torch.no_grad():
        expected = ref(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_padding)
        got = ours(x, memory, lens)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_load_torch_weights_rejects_mismatches():
    ref = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, norm_first=True)
    with pytest.raises(ValueError, match="norm_first"):
        TransformerEncoderBlock(D, H, FF, norm_first=False).load_torch_weights(ref)
    with pytest.raises(ValueError, match="d_ff"):
        TransformerEncoderBlock(D, H, 2 * FF, norm_first=True).load_torch_weights(ref)
    gelu = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderBlock(D, H, FF).load_torch_weights(gelu)
    with pytest.raises(ValueError, match="TransformerDecoderLayer"):
        TransformerDecoderBlock(D, H, FF).load_torch_weights(ref)


# -- the mask a stack builds once, handed to every block --------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_a_mask_built_once_equals_lengths_given_to_the_block(norm_first):
    torch.manual_seed(0)
    encoder = SelfAttentionBlock(D, H, FF, norm_first=norm_first).eval()
    decoder = TransformerDecoderBlock(D, H, FF, norm_first=norm_first).eval()
    x, memory = randn(3, 5, D, seed=1), randn(3, 6, D, seed=2)
    lens = torch.tensor([5, 2, 1])
    mask = Mask.from_lengths(lens, x)
    assert mask.keep.shape == (3, 1, 1, 5)  # one key mask for every head and query: no (B, h, T, T) tensor
    torch.testing.assert_close(encoder(x, mask=mask), encoder(x, lens))
    out, w = encoder(x, return_weights=True, mask=mask)
    torch.testing.assert_close(w, encoder(x, lens, return_weights=True)[1])
    mem_lens = torch.tensor([6, 3, 1])
    mem_mask = Mask.from_lengths(mem_lens, memory)
    torch.testing.assert_close(decoder(x, memory, memory_mask=mem_mask), decoder(x, memory, mem_lens))


def test_block_forward_ignores_nan_in_padding():
    torch.manual_seed(0)
    block = SelfAttentionBlock(D, H, FF).eval()
    decoder = TransformerDecoderBlock(D, H, FF).eval()
    x, lens = randn(2, 5, D), torch.tensor([5, 3])
    poisoned = x.clone()
    poisoned[1, 3:] = float("inf")
    torch.testing.assert_close(block(poisoned, lens)[1, :3], block(x, lens)[1, :3])
    y = randn(2, 4, D, seed=3)
    torch.testing.assert_close(decoder(y, poisoned, lens), decoder(y, x, lens))


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


def test_block_refuses_valid_lens_and_mask_together():
    block = SelfAttentionBlock(8, 2, 16, 0.0)
    x = torch.randn(1, 3, 8)
    lens = torch.tensor([2])
    with pytest.raises(ValueError, match="valid_lens or mask"):
        block(x, lens, mask=Mask.from_lengths(lens, x))
    with pytest.raises(ValueError, match="mask must be a d2l_attn.masking.Mask"):
        block(x, mask=torch.ones(1, 1, 1, 3, dtype=torch.bool))
    # a Mask and valid_lens describe the same padding: same output
    torch.testing.assert_close(block(x, mask=Mask.from_lengths(lens, x)), block(x, lens))
