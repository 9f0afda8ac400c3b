"""Tests for d2l_attn.translation: translate, evaluate_bleu, save_model / load_model."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from tiny_models import RESERVED, SRC_VOCAB, TGT_VOCAB, ScriptedModel, padded_sources, tiny_transformer

from d2l_attn import translation
from d2l_attn.data import Vocab
from d2l_attn.decoding import greedy_decode
from d2l_attn.translation import seq2seq_from_vocabs

SOURCES = Vocab([["a", "b", "c"]], reserved_tokens=RESERVED)
WORDS = Vocab([["il", "est", "riche", "calme", ".", "elle", "ce", "soir", "non", "ici"]], reserved_tokens=RESERVED)
PAIRS = [  # three source sentences, five references
    (["a"], "il est riche .".split()),
    (["a"], "il est calme .".split()),
    (["b"], "elle est calme ce soir .".split()),
    (["c"], "calme calme calme calme calme calme .".split()),
    (["c"], "non .".split()),
]


def scripted(outputs: dict[str, list[str]]) -> ScriptedModel:
    """A model that translates source word s (one token, then <eos>) into ``outputs[s]``."""
    return ScriptedModel(lambda ids: WORDS[outputs[SOURCES.to_tokens(ids[0])]], WORDS)


# -- translate ------------------------------------------------------------------------------------
def test_translate_returns_tokens_sources_and_one_weight_row_per_output_token():
    model = scripted({"a": ["il", "est", "."], "b": ["non", "."], "c": []})
    out = translation.translate(model, ["A", ["b"], "c"], SOURCES, WORDS, num_steps=4)
    assert [t.source for t in out] == [["a", "<eos>"], ["b", "<eos>"], ["c", "<eos>"]]
    assert [t.text for t in out] == ["il est .", "non .", ""]
    for t in out:  # uniform over the 2 source tokens, one row per output token and <eos>
        torch.testing.assert_close(t.weights, torch.full((len(t.tokens) + 1, 2), 0.5))
    assert [t.row_labels for t in out] == [["il", "est", ".", "<eos>"], ["non", ".", "<eos>"], ["<eos>"]]
    # max_len cuts the output (no <eos> row then); beam search and small batches agree here
    cut = translation.translate(model, ["a"], SOURCES, WORDS, 4, max_len=2)
    assert [t.tokens for t in cut] == [["il", "est"]] and cut[0].row_labels == ["il", "est"]
    assert len(cut[0].weights) == 2
    beams = translation.translate(model, ["a", "b", "c"], SOURCES, WORDS, 4, beam_size=3, batch_size=2)
    assert [t.tokens for t in beams] == [t.tokens for t in out]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: translation.translate(m, "a", SOURCES, WORDS, 4), "not a single string"),
        (lambda m: translation.translate(m, ["a", ""], SOURCES, WORDS, 4), "at least one token"),
        (lambda m: translation.translate(m, ["a"], SOURCES, WORDS, 0), "num_steps must be a positive int"),
        (lambda m: translation.translate(m, ["a"], SOURCES, WORDS, 4, batch_size=0), "batch_size"),
        (lambda m: translation.translate(m, ["a"], SOURCES, WORDS, 4, max_len=0), "max_len"),
        (lambda m: translation.translate(torch.nn.Linear(1, 1), ["a"], SOURCES, WORDS, 4), "model must be"),
        (lambda m: translation.save_model("x.pt", m, SOURCES, WORDS), "model must be a Transformer"),
    ],
)
def test_translate_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(scripted({"a": ["il"]}))


# -- evaluate_bleu --------------------------------------------------------------------------------
def test_a_model_that_emits_a_reference_scores_bleu_1():
    model = scripted(
        {
            "a": "il est calme .".split(),
            "b": "elle est calme ce soir .".split(),
            "c": "calme calme calme calme calme calme .".split(),
        }
    )
    result = translation.evaluate_bleu(model, PAIRS, SOURCES, WORDS, num_steps=4, max_len=8)
    assert result["num_sentences"] == 3 and result["sources"] == [["a"], ["b"], ["c"]]
    assert result["references"][0] == [PAIRS[0][1], PAIRS[1][1]]
    assert result["corpus_bleu"] == pytest.approx(1.0) and result["mean_d2l_bleu"] == pytest.approx(1.0)


def test_a_constant_model_scores_the_bleu_computed_by_hand():
    """Every sentence gets H = "il est calme calme ." (5 tokens, 4 bigrams)."""
    model = scripted(dict.fromkeys("abc", "il est calme calme .".split()))
    result = translation.evaluate_bleu(model, PAIRS, SOURCES, WORDS, num_steps=4, max_len=8, max_n=2)
    # Corpus BLEU-2. Clipped matches of H's n-grams against each sentence's references (the
    # largest count in any one reference clips):
    #   a: unigrams il est calme(2 -> 1) .          = 4/5   bigrams il-est est-calme calme-.   = 3/4
    #   b: unigrams est calme(2 -> 1) .              = 3/5   bigrams est-calme                  = 1/4
    #   c: unigrams calme(2, ref has 6) .            = 3/5   bigrams calme-calme calme-.        = 2/4
    # p1 = 10/15, p2 = 6/12. Reference length closest to 5: a 4 (both 4), b 6, c 7 (7 beats 2):
    # 17 > 15 predicted tokens, so BP = exp(1 - 17/15).
    p1, p2, bp = 10 / 15, 6 / 12, math.exp(1 - 17 / 15)
    assert result["corpus_bleu"] == pytest.approx(bp * math.exp((math.log(p1) + math.log(p2)) / 2), rel=1e-12)
    # D2L's sentence BLEU (k=2) exp(min(0, 1 - len_ref / 5)) p1^(1/2) p2^(1/4), best reference each:
    #   a: "il est calme ." 4/5, 3/4, BP 1 (beats "il est riche ." 3/5, 1/4)
    #   b: 3/5, 1/4, BP exp(1 - 6/5);  c: "calme x6 ." 3/5, 2/4, BP exp(1 - 7/5) ("non ." has no bigram: 0)
    a = (4 / 5) ** 0.5 * (3 / 4) ** 0.25
    b = math.exp(1 - 6 / 5) * (3 / 5) ** 0.5 * (1 / 4) ** 0.25
    c = math.exp(1 - 7 / 5) * (3 / 5) ** 0.5 * (2 / 4) ** 0.25
    assert result["mean_d2l_bleu"] == pytest.approx((a + b + c) / 3, rel=1e-12)
    assert result["hypotheses"] == [["il", "est", "calme", "calme", "."]] * 3


# -- real models end to end -------------------------------------------------------------------------
def test_translate_and_evaluate_bleu_with_the_gru_model():
    src_vocab = Vocab([["go", "."], ["hi", "."]], reserved_tokens=RESERVED)
    tgt_vocab = Vocab([["va", "!"], ["salut", "!"]], reserved_tokens=RESERVED)
    torch.manual_seed(0)
    model = seq2seq_from_vocabs(src_vocab, tgt_vocab, embed_size=8, num_hiddens=8)
    out = translation.translate(model, ["Go.", "Hi."], src_vocab, tgt_vocab, num_steps=4, beam_size=2)
    assert [t.source for t in out] == [["go", ".", "<eos>"], ["hi", ".", "<eos>"]]
    assert all(t.weights.shape[1] == 3 for t in out)
    pairs = [(["go", "."], ["va", "!"]), (["go", "."], ["marche", "!"]), (["hi", "."], ["salut", "!"])]
    result = translation.evaluate_bleu(model, pairs, src_vocab, tgt_vocab, num_steps=4)
    assert result["num_sentences"] == 2 and len(result["references"][0]) == 2
    assert 0.0 <= result["corpus_bleu"] <= 1.0


def test_translate_and_evaluate_bleu_with_the_transformer():
    model = tiny_transformer(seed=4)
    out = translation.translate(model, ["s1 s2 s3", "s4"], SRC_VOCAB, TGT_VOCAB, num_steps=6, beam_size=2)
    assert len(out) == 2 and out[0].weights.shape[1] == 4  # 3 tokens + <eos>
    pairs = [(["s1", "s2"], ["t1", "t2"]), (["s3"], ["t3"])]
    scores = translation.evaluate_bleu(model, pairs, SRC_VOCAB, TGT_VOCAB, num_steps=6)
    assert scores["num_sentences"] == 2 and 0.0 <= scores["corpus_bleu"] <= 1.0


# -- save_model / load_model ------------------------------------------------------------------------
def test_save_model_and_load_model_round_trip(tmp_path):
    model = tiny_transformer(norm_first=True)
    path = translation.save_model(tmp_path / "model.pt", model, SRC_VOCAB, TGT_VOCAB, bleu=0.5)
    loaded, src_vocab, tgt_vocab, extra = translation.load_model(path)
    assert src_vocab.idx_to_token == SRC_VOCAB.idx_to_token and tgt_vocab.idx_to_token == TGT_VOCAB.idx_to_token
    assert extra == {"bleu": 0.5} and loaded.config == model.config and not loaded.training
    src, lens = padded_sources(num_steps=6, vocab_size=13)
    tgt = torch.randint(4, len(TGT_VOCAB), (4, 5), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded(src, lens, tgt), model(src, lens, tgt))
    assert greedy_decode(loaded, src, lens, 6) == greedy_decode(model, src, lens, 6)
    torch.load(path, weights_only=True)  # plain data only
    with pytest.raises(ValueError, match="vocabulary sizes"):
        translation.save_model(tmp_path / "bad.pt", model, TGT_VOCAB, SRC_VOCAB)


def test_load_model_refuses_missing_truncated_foreign_and_pickled_files(tmp_path):
    with pytest.raises(ValueError, match="no saved model"):
        translation.load_model(tmp_path / "missing.pt")
    path = translation.save_model(tmp_path / "model.pt", tiny_transformer(), SRC_VOCAB, TGT_VOCAB)
    data = path.read_bytes()
    for size in (len(data) // 2, 100, 0):
        (tmp_path / "cut.pt").write_bytes(data[:size])
        with pytest.raises(ValueError, match="saved model .* is not a complete torch.save file: it is truncated"):
            translation.load_model(tmp_path / "cut.pt")
    for other in ({"model": {}}, [1, 2], {"format": "d2l_attn.transformer/1"}):
        torch.save(other, tmp_path / "other.pt")
        with pytest.raises(ValueError, match="was not written by d2l_attn.translation.save_model"):
            translation.load_model(tmp_path / "other.pt")
    state = torch.load(path, weights_only=True)
    state["extra"] = {"vocab": SRC_VOCAB}  # a pickled object, not plain data
    torch.save(state, tmp_path / "pickled.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):  # torch refuses the object
        translation.load_model(tmp_path / "pickled.pt")
