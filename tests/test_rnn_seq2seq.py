"""Tests for d2l_attn.models.rnn_seq2seq: GRU encoder, Bahdanau attention decoder, Seq2Seq."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny_models import BOS, EOS, PAD, padded_sources, tiny_gru

from d2l_attn.losses import seq2seq_loss
from d2l_attn.masking import Mask
from d2l_attn.models.rnn_seq2seq import AttentionDecoder, GRUEncoder, Seq2Seq
from d2l_attn.scoring import AdditiveAttention
from d2l_attn.training import Trainer
from d2l_attn.translation import seq2seq_from_vocabs

V_SRC, V_TGT, H = 11, 13, 16


@pytest.mark.parametrize("num_layers", [1, 2])
def test_shapes(num_layers):
    model = tiny_gru(num_layers)
    src, lens = padded_sources()
    enc_out, enc_state = model.encoder(src, lens)
    assert enc_out.shape == (4, 7, H) and enc_state.shape == (num_layers, 4, H)
    tgt_in = torch.randint(0, V_TGT, (4, 5))
    logits, weights = model(src, lens, tgt_in, return_weights=True)
    assert logits.shape == (4, 5, V_TGT) and weights.shape == (4, 5, 7)
    assert model(src, lens, tgt_in).shape == (4, 5, V_TGT)


def test_attention_weights_sum_to_one_over_valid_source_tokens_only():
    model = tiny_gru(2)
    src, lens = padded_sources(seed=3)
    _, weights = model(src, lens, torch.randint(0, V_TGT, (4, 6)), return_weights=True)  # (B, T', T)
    keep = torch.arange(7) < lens[:, None]  # (B, T)
    assert torch.all(weights.masked_select(~keep[:, None, :]) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6))


def test_decoder_attention_is_the_library_additive_attention():
    model = tiny_gru()
    src, lens = padded_sources(seed=1)
    state = model.init_state(src, lens)
    context, weights = model.decoder.attend(state)
    query = state.hidden[-1].unsqueeze(1)
    attention: AdditiveAttention = model.decoder.attention
    ref_context, ref_weights = attention(query, state.enc_outputs, state.enc_outputs, Mask.of(lens), need_weights=True)
    torch.testing.assert_close(context, ref_context)
    torch.testing.assert_close(weights, ref_weights)


def test_padding_does_not_change_a_sentence():
    """Encoder packing + attention masking: a sentence alone == the same sentence padded in a batch."""
    model = tiny_gru(2)
    src, lens = padded_sources(seed=2)
    tgt_in = torch.randint(0, V_TGT, (4, 5))
    logits = model(src, lens, tgt_in)
    for b in range(4):
        alone = model(src[b : b + 1, : lens[b]], lens[b : b + 1], tgt_in[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone, atol=1e-5, rtol=1e-5)
    # the padding token ids themselves do not matter either
    garbage = src.clone()
    garbage[torch.arange(7) >= lens[:, None]] = 7
    torch.testing.assert_close(model(garbage, lens, tgt_in), logits)


def test_training_learns_a_tiny_copy_task():
    g = torch.Generator().manual_seed(0)
    n, T = 160, 5
    lens = torch.randint(2, T, (n,), generator=g)
    body = torch.randint(4, V_SRC, (n, T), generator=g)
    src = body.clone()
    src[torch.arange(T) >= lens[:, None]] = PAD
    tgt = body.clone()  # copy the sentence, then <eos>
    tgt[torch.arange(T) == lens[:, None]] = EOS
    tgt[torch.arange(T) > lens[:, None]] = PAD
    tgt_lens = lens + 1
    batches = [(src[i : i + 32], lens[i : i + 32], tgt[i : i + 32], tgt_lens[i : i + 32]) for i in range(0, n, 32)]
    torch.manual_seed(0)
    model = Seq2Seq(GRUEncoder(V_SRC, 16, 24), AttentionDecoder(V_TGT, 16, 24), bos_id=BOS, eos_id=EOS, pad_id=PAD)
    trainer = Trainer(model, seq2seq_loss, lr=0.02, device="cpu", progress=False)
    history = trainer.fit(batches[:-1], batches[-1:], num_epochs=15)
    assert history["val_loss"][-1] < 0.3 * history["val_loss"][0], history["val_loss"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: GRUEncoder(0, 4, 4), "vocab_size must be a positive int"),
        (lambda m: AttentionDecoder(5, 4, 4, dropout=1.0), "dropout must be a number in"),
        (
            lambda m: Seq2Seq(GRUEncoder(5, 4, 4), AttentionDecoder(5, 4, 8), bos_id=0, eos_id=1, pad_id=2),
            "same num_hiddens",
        ),
        (
            lambda m: Seq2Seq(GRUEncoder(5, 4, 4), AttentionDecoder(5, 4, 4), bos_id=9, eos_id=1, pad_id=2),
            "bos_id must be a token id",
        ),
        (lambda m: m.encoder(torch.zeros(2, 3), torch.tensor([1, 2])), "int64 tensor of token ids"),
        (lambda m: m.encoder(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 2])), "must be >= 1"),
        (lambda m: m.encoder(torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 4])), r"\[0, 3\]"),
        (lambda m: m.encoder(torch.zeros(2, 3, dtype=torch.long), torch.tensor([1])), r"shape \(B,\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    model = tiny_gru()
    with pytest.raises(ValueError, match=match):
        call(model)


DATA = Path(os.environ.get("D2L_ATTN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.mark.skipif(not (DATA / "fra-eng" / "fra.txt").is_file(), reason="needs the fra-eng sample")
def test_real_batches_flow_through_the_model(monkeypatch):
    from d2l_attn.data import load_data_nmt

    monkeypatch.setenv("D2L_ATTN_DATA", str(DATA))
    data = load_data_nmt(8, 9, num_examples=200)
    model = seq2seq_from_vocabs(data.src_vocab, data.tgt_vocab, embed_size=8, num_hiddens=8)
    loss, count = seq2seq_loss(model, next(iter(data.train_loader())))
    # an untrained model is close to uniform: loss ~ log(V)
    assert abs(loss.item() - torch.log(torch.tensor(float(len(data.tgt_vocab)))).item()) < 1.0
    assert count > 8
