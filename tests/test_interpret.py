"""Tests for d2l_attn.interpret.collect_attention: every map of one pass, by name, in eval mode."""

import math

import pytest
import torch
from torch import nn

from d2l_attn.data import Vocab
from d2l_attn.interpret import collect_attention
from d2l_attn.models.transformer import TransformerEncoder

RESERVED = ["<pad>", "<bos>", "<eos>"]
SRC_VOCAB = Vocab([[f"s{i}" for i in range(9)]], reserved_tokens=RESERVED)  # 13 tokens
TGT_VOCAB = Vocab([[f"t{i}" for i in range(11)]], reserved_tokens=RESERVED)  # 15 tokens
B, T_SRC, T_TGT, LAYERS, HEADS = 3, 6, 4, 2, 4


def batch():
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, len(SRC_VOCAB), (B, T_SRC), generator=g)
    lens = torch.tensor([T_SRC, 3, 1])
    tgt_in = torch.randint(4, len(TGT_VOCAB), (B, T_TGT), generator=g)
    return src, lens, tgt_in


def transformer(dropout=0.3):
    torch.manual_seed(0)
    return transformer_from_vocabs(
        SRC_VOCAB, TGT_VOCAB, d_model=16, num_heads=HEADS, d_ff=32, num_layers=LAYERS, dropout=dropout
    )


@pytest.mark.parametrize("training", [True, False])
def test_transformer_maps_equal_the_weights_of_an_eval_forward(training):
    model = transformer().train(training)
    src, lens, tgt_in = batch()
    maps = collect_attention(model, src, lens, tgt_in)
    assert model.training == training  # the mode is restored
    assert set(maps) == {"encoder", "decoder_self", "decoder_cross"}
    assert maps["encoder"].shape == (B, LAYERS, HEADS, T_SRC, T_SRC)
    assert maps["decoder_self"].shape == (B, LAYERS, HEADS, T_TGT, T_TGT)
    assert maps["decoder_cross"].shape == (B, LAYERS, HEADS, T_TGT, T_SRC)
    # eval mode: no dropout anywhere, so the maps are the weights of a deterministic forward
    with torch.no_grad():
        _, expected = model.eval()(src, lens, tgt_in, return_weights=True)
    for name, weights in maps.items():
        torch.testing.assert_close(weights, getattr(expected, name))
        assert not weights.requires_grad
    assert torch.all(maps["encoder"][1, ..., 3:] == 0)  # padding gets no weight
    assert torch.all(maps["decoder_self"].triu(diagonal=1) == 0)  # nor does the future


def test_encoder_stack_gives_its_self_attention():
    torch.manual_seed(0)
    encoder = TransformerEncoder(len(SRC_VOCAB), d_model=16, num_heads=HEADS, d_ff=32, num_layers=3, dropout=0.2)
    src, lens, _ = batch()
    maps = collect_attention(encoder, src, lens)
    assert set(maps) == {"self"} and maps["self"].shape == (B, 3, HEADS, T_SRC, T_SRC)
    assert encoder.training  # restored
    _, expected = encoder.eval()(src, lens, return_weights=True)
    torch.testing.assert_close(maps["self"], expected)
    torch.testing.assert_close(maps["self"].sum(-1), torch.ones(B, 3, HEADS, T_SRC))


def test_gru_seq2seq_gives_one_layer_and_one_head_of_cross_attention():
    torch.manual_seed(0)
    model = seq2seq_from_vocabs(SRC_VOCAB, TGT_VOCAB, embed_size=8, num_hiddens=16, dropout=0.2)
    src, lens, tgt_in = batch()
    maps = collect_attention(model, src, lens, tgt_in)
    assert set(maps) == {"cross"} and maps["cross"].shape == (B, 1, 1, T_TGT, T_SRC)
    _, expected = model.eval()(src, lens, tgt_in, return_weights=True)  # (B, T', T)
    torch.testing.assert_close(maps["cross"][:, 0, 0], expected)


def test_bad_models_are_rejected_clearly_and_the_mode_is_restored():
    with pytest.raises(ValueError, match="model must be an nn.Module"):
        collect_attention(lambda x: x, torch.zeros(1))
    linear = nn.Linear(3, 3).train()
    with pytest.raises(ValueError, match="does not accept return_weights=True"):
        collect_attention(linear, torch.zeros(1, 3))
    assert linear.training

    class NoWeights(nn.Module):
        def forward(self, x, return_weights=False):
            return x

    with pytest.raises(ValueError, match=r"must return \(output, weights\)"):
        collect_attention(NoWeights(), torch.zeros(1))

    class OddWeights(nn.Module):
        def forward(self, x, return_weights=False):
            return x, torch.zeros(2, 2)

    with pytest.raises(ValueError, match="unexpected attention weights"):
        collect_attention(OddWeights(), torch.zeros(1))


# --------------------------------------------------------------------------------------------
# chapter 11: entropy, value norms, head ablation, replaced attention, induction score
# --------------------------------------------------------------------------------------------
from d2l_attn.interpret import (  # noqa: E402
    ablate_heads,
    attention_entropy,
    attention_modules,
    head_ablation,
    induction_score,
    replace_attention,
    value_weighted_norms,
)
from d2l_attn.masking import Mask  # noqa: E402
from d2l_attn.models.gpt import GPT  # noqa: E402
from d2l_attn.multihead import MultiHeadAttention  # noqa: E402
from d2l_attn.translation import seq2seq_from_vocabs, transformer_from_vocabs  # noqa: E402


def tiny_gpt():
    torch.manual_seed(0)
    return GPT(vocab_size=13, max_len=7, num_layers=2, num_heads=2, d_model=8).eval()


def gpt_tokens():
    return torch.randint(0, 13, (3, 7), generator=torch.Generator().manual_seed(3))


def test_entropy_by_hand():
    w = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    expected = torch.tensor([math.log(4), 0.0, math.log(2)])
    torch.testing.assert_close(attention_entropy(w), expected)
    with pytest.raises(ValueError, match="every row of weights must sum to 1"):
        attention_entropy(torch.ones(2, 3))
    with pytest.raises(ValueError, match="finite and non-negative"):
        attention_entropy(torch.tensor([[1.5, -0.5]]))


def test_value_norms_are_the_size_of_what_each_token_adds():
    model, tokens = tiny_gpt(), gpt_tokens()
    norms = value_weighted_norms(model, tokens)
    assert norms.shape == (3, 2, 2, 7, 7)
    # independently, layer 0: the attention input is LN_1(E[x] + P) (pre-LN)
    block = model.blocks[0]
    mha = block.attention
    x = block.addnorm1.norm(model.token_embedding(tokens) + model.position_embedding(torch.arange(7)))
    out, alpha = mha(x, mask=Mask.causal(), need_weights=True)[:2]  # (B, T, d), (B, h, T, T)
    v = mha.W_v(x).view(3, 7, 2, 4)  # (B, T, h, d_h)
    f = torch.stack([v[:, :, h] @ mha.W_o.weight[:, 4 * h : 4 * h + 4].t() for h in range(2)], 1)  # (B, h, T, d)
    # the decomposition is exact: sum_h sum_j alpha_hij f_h(x_j) + b_o is the attention output
    torch.testing.assert_close(torch.einsum("bhij,bhjd->bid", alpha, f) + mha.W_o.bias, out)
    torch.testing.assert_close(norms[:, 0], alpha * f.norm(dim=-1)[:, :, None, :])
    assert not torch.allclose(norms[:, 0], alpha)  # not the raw weights
    assert not mha._forward_hooks  # nothing stays registered


def test_ablating_a_head_equals_zeroing_its_output_columns():
    model, tokens = tiny_gpt(), gpt_tokens()
    with torch.no_grad():
        before = model(tokens)
        with ablate_heads(model, [(1, 0)]):
            ablated = model(tokens)
        torch.testing.assert_close(model(tokens), before)  # hooks removed
        reference = tiny_gpt()
        reference.blocks[1].attention.W_o.weight[:, 0:4] = 0  # head 0 of layer 1 reads columns 0..3
        torch.testing.assert_close(ablated, reference(tokens))
        assert not torch.allclose(ablated, before)
    calls = []

    def evaluate():
        with torch.no_grad():
            calls.append(1)
            return float(model(tokens)[0, -1, 0])

    scores = head_ablation(model, evaluate)
    assert scores.shape == (2, 2) and len(calls) == 4
    with torch.no_grad(), ablate_heads(model, (0, 1)):
        assert scores[0, 1] == pytest.approx(float(model(tokens)[0, -1, 0]))
    with pytest.raises(ValueError, match=r"\(layer, head\) pairs with 0 <= layer < 2"):
        with ablate_heads(model, [(2, 0)]):
            pass
    with pytest.raises(ValueError, match="evaluate must be a callable"):
        head_ablation(model, 3.0)


def _causal_setup():
    """A 2-head attention (d=8), inputs (B=2, T=5) and the uniform causal weights (T, T)."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 5, 8)
    uniform = torch.ones(5, 5).tril()
    return mha, x, uniform / uniform.sum(-1, keepdim=True)


def test_replaced_attention_is_what_the_output_uses():
    mha, x, uniform = _causal_setup()
    with torch.no_grad():
        with replace_attention(mha, lambda w: uniform.expand_as(w)):
            out, w = mha(x, mask=Mask.causal(), need_weights=True)[:2]
            fused = mha(x, mask=Mask.causal()).output  # the path without weights is replaced too
        v = mha.W_v(x).view(2, 5, 2, 4).transpose(1, 2)  # (B, h, T, d_h)
        expected = mha.W_o((uniform @ v).transpose(1, 2).reshape(2, 5, 8))
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(fused, expected)
        torch.testing.assert_close(w, uniform.expand(2, 2, 5, 5))
        with replace_attention(mha, lambda w: w):  # identity: nothing changes
            torch.testing.assert_close(mha(x, mask=Mask.causal()).output, mha.forward(x, mask=Mask.causal()).output)
        with pytest.raises(ValueError, match="new_weights must return a tensor of shape"):
            with replace_attention(mha, lambda w: w[..., :2]):
                mha(x)
    with pytest.raises(ValueError, match="module must be a MultiHeadAttention"):
        with replace_attention(nn.Linear(2, 2), lambda w: w):
            pass
    assert len(attention_modules(tiny_gpt())) == 2


def test_interventions_nest_and_unwind_in_order():
    """An inner intervention sees the outer one's weights; each exit restores what was there before."""
    mha, x, uniform = _causal_setup()
    own = mha(x, mask=Mask.causal(), need_weights=True).weights
    seen = []
    with torch.no_grad():
        with replace_attention(mha, lambda w: uniform.expand_as(w)):
            replaced = mha(x, mask=Mask.causal()).output
            with replace_attention(mha, lambda w: seen.append(w) or w.flip(-1).tril()):  # inner: sees uniform
                inner = mha(x, mask=Mask.causal(), need_weights=True)
            torch.testing.assert_close(seen[0], uniform.expand(2, 2, 5, 5))
            torch.testing.assert_close(inner.weights, uniform.expand(2, 2, 5, 5).flip(-1).tril())
            torch.testing.assert_close(mha(x, mask=Mask.causal()).output, replaced)  # back to the outer one
        torch.testing.assert_close(mha(x, mask=Mask.causal(), need_weights=True).weights, own)
    assert mha.attention.weights_mod is None
    # the review's trigger: value_weighted_norms (which intercepts every layer) inside replace_attention
    model = GPT(vocab_size=11, max_len=8, num_layers=2, num_heads=2, d_model=8).eval()
    tokens = torch.randint(0, 11, (2, 6))
    first = attention_modules(model)[0]
    with replace_attention(
        first, lambda w: torch.ones_like(w).tril() / torch.ones_like(w).tril().sum(-1, keepdim=True)
    ):
        assert value_weighted_norms(model, tokens).shape == (2, 2, 2, 6, 6)  # (B, L, h, T, T)
        inside = model(tokens)
    assert first.attention.weights_mod is None
    assert not torch.allclose(inside, model(tokens))  # the intervention applied, and is gone


def test_induction_score_by_hand():
    tokens = torch.tensor([[5, 7, 5, 7]])  # query 2 (a 5) should look at 1, query 3 (a 7) at 2
    w = torch.eye(4).repeat(1, 1, 1, 1, 1)  # (B, L, h, T, T) = (1, 1, 1, 4, 4)
    w[0, 0, 0, 2] = torch.tensor([0.4, 0.6, 0.0, 0.0])
    w[0, 0, 0, 3] = torch.tensor([0.0, 0.0, 0.2, 0.8])
    assert induction_score(w, tokens).shape == (1, 1)
    assert float(induction_score(w, tokens)) == pytest.approx((0.6 + 0.2) / 2)
    with pytest.raises(ValueError, match="no token repeats"):
        induction_score(w, torch.tensor([[1, 2, 3, 4]]))
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, T\)"):
        induction_score(w, torch.tensor([1, 2, 3, 4]))


def test_gpt_maps_are_stacked_by_layer():
    model, tokens = tiny_gpt(), gpt_tokens()
    maps = collect_attention(model, tokens)
    assert set(maps) == {"self"} and maps["self"].shape == (3, 2, 2, 7, 7)
    _, expected = model(tokens, return_weights=True)
    torch.testing.assert_close(maps["self"][:, 1], expected[1])


def test_replaced_attention_reaches_the_stacks_unchecked_path():
    """GPT runs its blocks through ``compute`` (no module call into the heads): still intercepted."""
    model, tokens = tiny_gpt(), gpt_tokens()
    mha = attention_modules(model)[0]
    uniform = torch.ones(7, 7).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    with torch.no_grad():
        before, w_before = model(tokens, return_weights=True)
        with replace_attention(mha, lambda w: w):
            torch.testing.assert_close(model(tokens), before)
        with replace_attention(mha, lambda w: uniform.expand_as(w)):
            after, w_after = model(tokens, return_weights=True)
            fused = model(tokens)  # the path without weights too
        torch.testing.assert_close(w_after[0], uniform.expand(3, 2, 7, 7))
        assert w_after[1].shape == w_before[1].shape
        torch.testing.assert_close(fused, after)
        assert not torch.allclose(after, before)
        assert "compute" not in vars(mha.attention) and not mha.attention._forward_hooks  # restored
        torch.testing.assert_close(model(tokens), before)


@pytest.mark.parametrize("positional", ["learned", "rope", "alibi"])
def test_interpretation_tools_work_on_a_grouped_query_gpt(positional):
    """1 < g < h: value norms use each query head's shared key/value head; maps, ablation, replacement run."""
    torch.manual_seed(0)
    model = GPT(vocab_size=13, max_len=7, num_layers=2, num_heads=4, d_model=16, num_kv_heads=2, positional=positional)
    model, tokens = model.eval(), gpt_tokens()
    maps = collect_attention(model, tokens)
    assert [tuple(m.shape) for m in maps.values()] == [(3, 2, 4, 7, 7)]  # (B, L, h, T, T)
    norms = value_weighted_norms(model, tokens)
    assert norms.shape == (3, 2, 4, 7, 7)
    block, mha = model.blocks[0], model.blocks[0].attention
    emb = model.token_embedding(tokens)
    x = block.addnorm1.norm(emb + model.position_embedding(torch.arange(7)) if positional == "learned" else emb)
    alpha = mha(x, mask=Mask.causal(), need_weights=True).weights  # (B, h, T, T)
    v = mha.W_v(x).view(3, 7, 2, 4).repeat_interleave(2, dim=2)  # (B, T, h, d_h): kv head j serves heads 2j, 2j+1
    f = torch.stack([v[:, :, h] @ mha.W_o.weight[:, 4 * h : 4 * h + 4].t() for h in range(4)], 1)  # (B, h, T, d)
    torch.testing.assert_close(norms[:, 0], alpha * f.norm(dim=-1)[:, :, None, :])
    with torch.no_grad():
        before = model(tokens)
        with ablate_heads(model, [(1, 3)]):
            assert not torch.allclose(model(tokens), before)
        with replace_attention(mha, lambda w: w):
            torch.testing.assert_close(model(tokens), before)
    assert head_ablation(model, lambda: float(model(tokens)[0, -1, 0])).shape == (2, 4)
