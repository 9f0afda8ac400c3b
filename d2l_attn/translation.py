r"""Translating with a trained model: sentences in, tokens and attention maps out; BLEU; saving (chapters 4, 7).

* :func:`translate` preprocesses raw sentences like the corpus, decodes them in batches (greedy or
  beam search, :mod:`d2l_attn.decoding`) and returns :class:`Translation` objects with the
  attention weights of every output token;
* :func:`evaluate_bleu` translates every distinct source sentence once and scores it against
  *all* its reference translations (multi-reference corpus BLEU, :mod:`d2l_attn.metrics`);
* :func:`transformer_from_vocabs` / :func:`seq2seq_from_vocabs` build the chapter-7 and chapter-4
  models for a source and a target vocabulary (a model knows sizes, not vocabularies: this is
  where the two meet);
* :func:`save_model` / :func:`load_model` store a Transformer with its configuration and both
  vocabularies in one file, written atomically and read with ``weights_only=True``.

Any :class:`d2l_attn.decoding.StepModel` translates: the GRU model of chapter 4 and the
Transformer of chapter 7.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._checks import config_from, positive_int
from .data.nmt import build_array_nmt, group_references, preprocess_nmt
from .data.vocab import Vocab
from .decoding import StepModel, beam_search, check_step_model, greedy_decode
from .metrics import bleu, corpus_bleu
from .models.rnn_seq2seq import AttentionDecoder, GRUEncoder, Seq2Seq
from .models.transformer import Transformer, TransformerConfig, TransformerDecoder, TransformerEncoder
from .utils import load_weights_only, save_atomic

__all__ = [
    "transformer_from_vocabs",
    "seq2seq_from_vocabs",
    "Translation",
    "encode_sentences",
    "translate",
    "evaluate_bleu",
    "save_model",
    "load_model",
]

#: the format tag :func:`save_model` writes and :func:`load_model` checks
FORMAT = "d2l_attn.transformer/2"


def _special_ids(src_vocab: Vocab, tgt_vocab: Vocab) -> dict[str, int]:
    for name, vocab in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
        if not isinstance(vocab, Vocab):
            raise ValueError(f"{name} must be a d2l_attn.data.Vocab, got {type(vocab).__name__}")
    return tgt_vocab.special_ids("tgt_vocab")  # <bos>, <eos>, <pad>: each must be there


def transformer_from_vocabs(
    src_vocab: Vocab, tgt_vocab: Vocab, config: TransformerConfig | None = None, **sizes: Any
) -> Transformer:
    """A :class:`~d2l_attn.models.Transformer` for these vocabularies (the target one must hold ``<bos>``,
    ``<eos>``, ``<pad>``): a :class:`~d2l_attn.models.TransformerConfig` or its fields as keywords,
    e.g. ``transformer_from_vocabs(src, tgt, d_model=64, num_layers=1)``."""
    special = _special_ids(src_vocab, tgt_vocab)
    config = config_from(TransformerConfig, config, sizes)
    return Transformer(
        TransformerEncoder(len(src_vocab), config), TransformerDecoder(len(tgt_vocab), config), **special
    )


def seq2seq_from_vocabs(
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    embed_size: int = 256,
    num_hiddens: int = 256,
    num_layers: int = 1,
    dropout: float = 0.0,
) -> Seq2Seq:
    """A GRU :class:`~d2l_attn.models.Seq2Seq` with Bahdanau attention for these vocabularies (chapter 4)."""
    special = _special_ids(src_vocab, tgt_vocab)
    encoder = GRUEncoder(len(src_vocab), embed_size, num_hiddens, num_layers, dropout)
    decoder = AttentionDecoder(len(tgt_vocab), embed_size, num_hiddens, num_layers, dropout)
    return Seq2Seq(encoder, decoder, **special)


@dataclass
class Translation:
    """One translated sentence: source tokens (with ``<eos>``), output tokens, attention weights."""

    source: list[str]
    tokens: list[str]
    weights: torch.Tensor  # (len(tokens) + 1 when <eos> was produced, len(source))

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def row_labels(self) -> list[str]:
        """One label per row of :attr:`weights`: the output tokens, and ``<eos>`` when it was produced."""
        return self.tokens + ["<eos>"] if len(self.weights) > len(self.tokens) else list(self.tokens)


def encode_sentences(
    sentences: Sequence[str] | Sequence[Sequence[str]], src_vocab: Vocab, num_steps: int
) -> tuple[list[list[str]], torch.Tensor, torch.Tensor]:
    """Sentences (raw strings, preprocessed like the corpus, or token lists) -> tokens, ``src (N, T)``, ``lens (N,)``."""
    if isinstance(sentences, str):
        raise ValueError("sentences must be a list of sentences, not a single string")
    token_lists = [preprocess_nmt(s).split() if isinstance(s, str) else list(s) for s in sentences]
    for i, tokens in enumerate(token_lists):
        if len(tokens) == 0:
            raise ValueError(f"sentences[{i}] is empty: every sentence must have at least one token")
    src, lens = build_array_nmt(token_lists, src_vocab, num_steps)  # (N, T), (N,)
    return token_lists, src, lens


def translate(
    model: StepModel,
    sentences: Sequence[str] | Sequence[Sequence[str]],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    num_steps: int,
    *,
    beam_size: int = 1,
    max_len: int | None = None,
    batch_size: int = 256,
    length_penalty: float = 0.75,
) -> list[Translation]:
    """Translate raw sentences (strings are preprocessed like the corpus) or token lists.

    ``beam_size=1`` decodes greedily; ``max_len`` (default ``num_steps``) bounds the output length.
    """
    check_step_model(model)
    positive_int("num_steps", num_steps)
    positive_int("batch_size", batch_size)
    positive_int("beam_size", beam_size)
    max_len = num_steps if max_len is None else positive_int("max_len", max_len)
    token_lists, src, lens = encode_sentences(sentences, src_vocab, num_steps)
    device = next(model.parameters()).device
    out: list[Translation] = []
    for start in range(0, len(token_lists), batch_size):
        s = src[start : start + batch_size].to(device)
        n = lens[start : start + batch_size].to(device)
        if beam_size == 1:
            ids, mats = greedy_decode(model, s, n, max_len, return_weights=True)
        else:
            ids, mats = beam_search(model, s, n, max_len, beam_size, length_penalty, return_weights=True)
        for i, (row, mat) in enumerate(zip(ids, mats)):
            source = src_vocab.to_tokens(s[i, : int(n[i])].tolist())
            out.append(Translation(source, tgt_vocab.to_tokens(row), mat))
    return out


def evaluate_bleu(
    model: StepModel,
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    num_steps: int,
    *,
    beam_size: int = 1,
    max_len: int | None = None,
    max_n: int = 4,
) -> dict:
    """Translate every distinct source of ``pairs`` once and score it against all its references.

    Returns ``{"corpus_bleu": standard BLEU-max_n (uniform weights), "mean_d2l_bleu": mean over
    sentences of the best D2L sentence BLEU (k=2) against any reference, "num_sentences": ...,
    "hypotheses": [...], "references": [...], "sources": [...]}``.
    """
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or len(pairs) == 0:
        raise ValueError(f"pairs must be a non-empty list of (source, target) token lists, got {pairs!r:.60}")
    references = group_references(pairs)
    sources = [list(s) for s in references]
    refs = [references[tuple(s)] for s in sources]
    translations = translate(model, sources, src_vocab, tgt_vocab, num_steps, beam_size=beam_size, max_len=max_len)
    hyps = [t.tokens for t in translations]
    sentence_scores = [max(bleu(h, r, k=2) for r in rs) for h, rs in zip(hyps, refs)]
    return {
        "corpus_bleu": corpus_bleu(hyps, refs, max_n=max_n),
        "mean_d2l_bleu": sum(sentence_scores) / len(sentence_scores),
        "num_sentences": len(sources),
        "sources": sources,
        "hypotheses": hyps,
        "references": refs,
    }


def save_model(path: str | os.PathLike[str], model: Transformer, src_vocab: Vocab, tgt_vocab: Vocab, **extra) -> Path:
    """Save weights, configuration and both vocabularies in one file (atomically).

    Everything is plain data, so :func:`load_model` reads it with ``torch.load(..., weights_only=True)``.
    ``extra`` (plain data, e.g. BLEU scores) is stored too.
    """
    if not isinstance(model, Transformer):
        raise ValueError(f"model must be a Transformer, got {type(model).__name__}")
    if len(src_vocab) != model.encoder.vocab_size or len(tgt_vocab) != model.decoder.vocab_size:
        raise ValueError(
            f"vocabulary sizes ({len(src_vocab)}, {len(tgt_vocab)}) do not match the model's "
            f"({model.encoder.vocab_size}, {model.decoder.vocab_size})"
        )
    state = {
        "format": FORMAT,
        "config": dataclasses.asdict(model.config),
        "src_tokens": list(src_vocab.idx_to_token),
        "tgt_tokens": list(tgt_vocab.idx_to_token),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    return save_atomic(state, path)


def _vocab_from_tokens(tokens: Sequence[str]) -> Vocab:
    if not tokens or tokens[0] != Vocab.UNK:
        raise ValueError("a saved vocabulary must start with '<unk>'")
    return Vocab([], reserved_tokens=list(tokens[1:]))  # same indices: <unk>, then the rest in order


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[Transformer, Vocab, Vocab, dict[str, Any]]:
    """Load what :func:`save_model` wrote: returns ``(model (eval mode), src_vocab, tgt_vocab, extra)``."""
    state = load_weights_only(path, map_location, what="saved model")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} was not written by d2l_attn.translation.save_model")
    missing = [key for key in ("src_tokens", "tgt_tokens", "config", "model") if key not in state]
    if missing:
        raise ValueError(
            f"{str(path)!r} is an incomplete saved model: it lacks {missing} (save it again with save_model)"
        )
    src_vocab, tgt_vocab = _vocab_from_tokens(state["src_tokens"]), _vocab_from_tokens(state["tgt_tokens"])
    model = transformer_from_vocabs(src_vocab, tgt_vocab, TransformerConfig(**state["config"]))
    model.load_state_dict(state["model"])
    return model.to(map_location).eval(), src_vocab, tgt_vocab, state.get("extra", {})
