"""Tests for d2l_attn.seq2seq: GRU encoder, Bahdanau attention decoder, masked loss, decoders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from d2l_attn import decoding, losses, translation
from d2l_attn.data import Vocab
from d2l_attn.decoding import beam_search, greedy_decode
from d2l_attn.losses import masked_cross_entropy, seq2seq_loss
from d2l_attn.models.rnn_seq2seq import AttentionDecoder, GRUEncoder, Seq2Seq
from d2l_attn.scoring import AdditiveAttention
from d2l_attn.training import Trainer

PAD, BOS, EOS = 1, 2, 3
V_SRC, V_TGT, E, H = 11, 13, 8, 16


def make_model(num_layers: int = 1, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    enc = GRUEncoder(V_SRC, E, H, num_layers)
    dec = AttentionDecoder(V_TGT, E, H, num_layers)
    return Seq2Seq(enc, dec, bos_id=BOS, eos_id=EOS, pad_id=PAD).eval()


def padded_batch(seed: int = 0, batch_size: int = 4, num_steps: int = 7):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, num_steps + 1, (batch_size,), generator=g)
    lens[0] = num_steps  # at least one full row
    src = torch.randint(4, V_SRC, (batch_size, num_steps), generator=g)
    src[torch.arange(num_steps) >= lens[:, None]] = PAD
    return src, lens


@pytest.mark.parametrize("num_layers", [1, 2])
def test_shapes(num_layers):
    model = make_model(num_layers)
    src, lens = padded_batch()
    enc_out, enc_state = model.encoder(src, lens)
    assert enc_out.shape == (4, 7, H) and enc_state.shape == (num_layers, 4, H)
    tgt_in = torch.randint(0, V_TGT, (4, 5))
    logits, weights = model(src, lens, tgt_in, return_weights=True)
    assert logits.shape == (4, 5, V_TGT) and weights.shape == (4, 5, 7)
    assert model(src, lens, tgt_in).shape == (4, 5, V_TGT)


def test_attention_weights_sum_to_one_over_valid_source_tokens_only():
    model = make_model(2)
    src, lens = padded_batch(seed=3)
    _, weights = model(src, lens, torch.randint(0, V_TGT, (4, 6)), return_weights=True)  # (B, T', T)
    keep = torch.arange(7) < lens[:, None]  # (B, T)
    assert torch.all(weights.masked_select(~keep[:, None, :]) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6))


def test_decoder_attention_is_the_library_additive_attention():
    model = make_model()
    src, lens = padded_batch(seed=1)
    state = model.init_state(src, lens)
    context, weights = model.decoder.attend(state)
    query = state.hidden[-1].unsqueeze(1)
    attention: AdditiveAttention = model.decoder.attention
    ref_context, ref_weights = attention(query, state.enc_outputs, state.enc_outputs, lens, return_weights=True)
    torch.testing.assert_close(context, ref_context)
    torch.testing.assert_close(weights, ref_weights)


def test_padding_does_not_change_a_sentence():
    """Encoder packing + attention masking: a sentence alone == the same sentence padded in a batch."""
    model = make_model(2)
    src, lens = padded_batch(seed=2)
    tgt_in = torch.randint(0, V_TGT, (4, 5))
    logits = model(src, lens, tgt_in)
    for b in range(4):
        alone = model(src[b : b + 1, : lens[b]], lens[b : b + 1], tgt_in[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone, atol=1e-5, rtol=1e-5)
        # the padding token ids themselves do not matter either
    garbage = src.clone()
    garbage[torch.arange(7) >= lens[:, None]] = 7
    torch.testing.assert_close(model(garbage, lens, tgt_in), logits)


def test_masked_loss_ignores_padding_positions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, V_TGT, generator=g, requires_grad=True)
    targets = torch.randint(0, V_TGT, (3, 5), generator=g)
    lens = torch.tensor([5, 2, 3])
    loss = masked_cross_entropy(logits, targets, lens)
    (grad,) = torch.autograd.grad(loss, logits)
    # same as averaging the per-token loss over real tokens by hand
    keep = torch.arange(5) < lens[:, None]
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(loss, per_token[keep].mean())
    # change the logits and targets at padded positions, even to inf/NaN: nothing changes
    changed = logits.detach().clone()
    changed[~keep] = torch.where(torch.rand(changed[~keep].shape, generator=g) < 0.5, float("nan"), 1e4)
    changed.requires_grad_(True)
    other_targets = targets.clone()
    other_targets[~keep] = 0
    loss2 = masked_cross_entropy(changed, other_targets, lens)
    (grad2,) = torch.autograd.grad(loss2, changed)
    assert loss2.item() == loss.item()
    torch.testing.assert_close(grad2, grad)
    assert torch.all(grad2[~keep] == 0)
    # equivalent to cross_entropy with ignore_index when padding carries the pad id
    padded_targets = targets.masked_fill(~keep, PAD)
    ignore = torch.nn.functional.cross_entropy(logits.transpose(1, 2), padded_targets, ignore_index=PAD)
    torch.testing.assert_close(loss, ignore)


def test_greedy_decode_matches_teacher_forcing_on_its_own_output():
    model = make_model(2)
    src, lens = padded_batch(seed=4)
    outputs, mats = greedy_decode(model, src, lens, max_len=6, return_weights=True)
    for b, tokens in enumerate(outputs):
        tgt_in = torch.tensor([[BOS] + tokens])
        logits = model(src[b : b + 1], lens[b : b + 1], tgt_in)
        predicted = logits.argmax(-1)[0].tolist()
        assert predicted[: len(tokens)] == tokens
        assert mats[b].shape[1] == lens[b]
        torch.testing.assert_close(mats[b].sum(-1), torch.ones(mats[b].shape[0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_with_one_beam_is_greedy(seed):
    model = make_model(2, seed=seed)
    src, lens = padded_batch(seed=seed, batch_size=6)
    greedy, gw = greedy_decode(model, src, lens, max_len=8, return_weights=True)
    beam, bw = beam_search(model, src, lens, max_len=8, beam_size=1, return_weights=True)
    assert beam == greedy
    for a, b in zip(gw, bw):
        torch.testing.assert_close(a, b)


def test_beam_search_is_batch_aware_and_finds_likelier_sequences():
    model = make_model(1, seed=5)
    src, lens = padded_batch(seed=5, batch_size=5)
    batched = beam_search(model, src, lens, max_len=6, beam_size=3, length_penalty=0.0)
    for b in range(5):
        alone = beam_search(model, src[b : b + 1], lens[b : b + 1], max_len=6, beam_size=3, length_penalty=0.0)
        assert alone[0] == batched[b]

    def log_prob(b, tokens):
        tgt = tokens + [EOS] if len(tokens) < 6 else tokens
        logits = model(src[b : b + 1], lens[b : b + 1], torch.tensor([[BOS] + tgt[:-1]]))
        lp = torch.log_softmax(logits, -1)[0]
        return lp[torch.arange(len(tgt)), torch.tensor(tgt)].sum().item()

    greedy = greedy_decode(model, src, lens, max_len=6)
    for b in range(5):  # without length normalization, beam search never scores below greedy
        assert log_prob(b, batched[b]) >= log_prob(b, greedy[b]) - 1e-5


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


def test_translate_and_evaluate_bleu_end_to_end():
    src_vocab = Vocab([["go", "."], ["hi", "."]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    tgt_vocab = Vocab([["va", "!"], ["salut", "!"]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    torch.manual_seed(0)
    model = Seq2Seq.from_vocabs(src_vocab, tgt_vocab, embed_size=8, num_hiddens=8)
    out = translation.translate(model, ["Go.", "Hi."], src_vocab, tgt_vocab, num_steps=4, beam_size=2)
    assert [t.source for t in out] == [["go", ".", "<eos>"], ["hi", ".", "<eos>"]]
    assert all(t.weights.shape[1] == 3 for t in out)
    pairs = [(["go", "."], ["va", "!"]), (["go", "."], ["marche", "!"]), (["hi", "."], ["salut", "!"])]
    result = translation.evaluate_bleu(model, pairs, src_vocab, tgt_vocab, num_steps=4)
    assert result["num_sentences"] == 2 and len(result["references"][0]) == 2
    assert 0.0 <= result["corpus_bleu"] <= 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: GRUEncoder(0, 4, 4), "vocab_size must be a positive int"),
        (lambda m: AttentionDecoder(5, 4, 4, dropout=1.0), "dropout must be a number in"),
        (lambda m: Seq2Seq(GRUEncoder(5, 4, 4), AttentionDecoder(5, 4, 8), bos_id=0, eos_id=1, pad_id=2),
         "same num_hiddens"),
        (lambda m: Seq2Seq(GRUEncoder(5, 4, 4), AttentionDecoder(5, 4, 4), bos_id=9, eos_id=1, pad_id=2),
         "bos_id must be a token id"),
        (lambda m: m.encoder(torch.zeros(2, 3), torch.tensor([1, 2])), "int64 tensor of token ids"),
        (lambda m: m.encoder(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 2])), "must be >= 1"),
        (lambda m: m.encoder(torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 4])), r"\[0, 3\]"),
        (lambda m: m.encoder(torch.zeros(2, 3, dtype=torch.long), torch.tensor([1])), r"shape \(B,\)"),
        (lambda m: masked_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), [1, 1]),
         r"logits must have shape \(B, T, V\)"),
        (lambda m: masked_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 2, dtype=torch.long), [1, 1]),
         r"targets must have shape \(B, T\)"),
        (lambda m: masked_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), [0, 0]),
         "no target token"),
        (lambda m: greedy_decode(m, torch.ones(1, 3, dtype=torch.long), [3], max_len=0), "max_len"),
        (lambda m: beam_search(m, torch.ones(1, 3, dtype=torch.long), [3], max_len=3, beam_size=0), "beam_size"),
        (lambda m: beam_search(m, torch.ones(1, 3, dtype=torch.long), [3], 3, 2, length_penalty=-1),
         "length_penalty"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    model = make_model()
    with pytest.raises(ValueError, match=match):
        call(model)


DATA = Path(os.environ.get("D2L_ATTN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.mark.skipif(not (DATA / "fra-eng" / "fra.txt").is_file(), reason="needs the fra-eng sample")
def test_real_batches_flow_through_the_model(monkeypatch):
    from d2l_attn.data import load_data_nmt

    monkeypatch.setenv("D2L_ATTN_DATA", str(DATA))
    data = load_data_nmt(8, 9, num_examples=200)
    model = Seq2Seq.from_vocabs(data.src_vocab, data.tgt_vocab, embed_size=8, num_hiddens=8)
    loss, count = seq2seq_loss(model, next(iter(data.train_loader())))
    # an untrained model is close to uniform: loss ~ log(V)
    assert abs(loss.item() - torch.log(torch.tensor(float(len(data.tgt_vocab)))).item()) < 1.0
    assert count > 8


@pytest.mark.parametrize("bad", [nn.Linear(2, 2), "model", None])
def test_decoding_and_loss_reject_a_model_without_the_encoder_decoder_interface(bad):
    src = torch.zeros(1, 3, dtype=torch.long)
    lens = torch.tensor([3])
    for call in (lambda: decoding.greedy_decode(bad, src, lens, 4),
                 lambda: decoding.beam_search(bad, src, lens, 4),
                 lambda: losses.seq2seq_loss(bad, (src, lens, src, lens))):
        with pytest.raises(ValueError, match=r"model must be an (nn.Module with init_state|encoder-decoder)"):
            call()
