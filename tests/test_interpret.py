"""Tests for d2l_attn.interpret.collect_attention: every map of one pass, by name, in eval mode."""

import pytest
import torch
from torch import nn

from d2l_attn.data import Vocab
from d2l_attn.interpret import collect_attention
from d2l_attn.models.rnn_seq2seq import Seq2Seq
from d2l_attn.models.transformer import Transformer, TransformerEncoder

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
    return Transformer.from_vocabs(
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
    model = Seq2Seq.from_vocabs(SRC_VOCAB, TGT_VOCAB, embed_size=8, num_hiddens=16, dropout=0.2)
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
