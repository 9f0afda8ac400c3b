r"""Real text for pretraining (chapter 9): WikiText-2 and Tiny Shakespeare.

* :func:`load_wikitext2` -- WikiText-2 (Merity et al., 2016), word-level, from Wikipedia's Good and
  Featured articles. It reads whichever of ``wiki.{train,valid,test}.tokens`` are in
  ``<data dir>/wikitext-2/``; if the training split is missing it downloads ``wikitext-2-v1.zip``
  (SHA-1 verified) unless ``download=False``, and the result **says which splits it used**
  (:attr:`WikiText2.note`), because an offline copy may hold only the validation and test splits.
* :func:`load_tiny_shakespeare` -- the 1,115,394-character file of nanoGPT's ``shakespeare_char``
  recipe (from karpathy/char-rnn), SHA-1 verified.
* :func:`lm_batch` -- nanoGPT's random windows ``(x, y)`` of a long token stream, with a private generator;
* :func:`nsp_pairs` and :func:`bert_pair` -- BERT's sentence pairs ``[CLS] A [SEP] B [SEP]`` with segment ids,
  B the true next sentence half of the time;
* :func:`span_corrupt` -- T5's span corruption (Raffel et al., 2020): spans of the input are replaced
  by sentinel tokens and the target lists the dropped spans after their sentinels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from .._checks import positive_int
from .download import data_dir, download, extract_zip

__all__ = [
    "WIKITEXT2_URL",
    "WIKITEXT2_SHA1",
    "TINY_SHAKESPEARE_URL",
    "TINY_SHAKESPEARE_SHA1",
    "WikiText2",
    "load_wikitext2",
    "wikitext_paragraphs",
    "load_tiny_shakespeare",
    "lm_batch",
    "nsp_pairs",
    "bert_pair",
    "BERTBatch",
    "bert_batch",
    "span_corrupt",
]

WIKITEXT2_URL = "https://d2l-data.s3-accelerate.amazonaws.com/wikitext-2-v1.zip"
WIKITEXT2_SHA1 = "3c914d17d80b1459be871a5039ac23e752a53cbe"
TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SHA1 = "04486597058d11dcc2c556b1d0433891eb639d2e"
_SPLITS = ("train", "valid", "test")


@dataclass
class WikiText2:
    """The splits that were found: ``texts[split]`` is the file's text; ``note`` says what was used."""

    texts: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None
    downloaded: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in _SPLITS if s in self.texts)

    @property
    def note(self) -> str:
        missing = [s for s in _SPLITS if s not in self.texts]
        text = f"WikiText-2 splits used: {', '.join(self.splits)} (from {self.directory})"
        if missing:
            text += f"; not available here: {', '.join(missing)}"
        return text

    def train_valid(self) -> tuple[str, str, str]:
        """``(train text, held-out text, description)``: the real splits if the training split is
        present, otherwise the validation split for training and the test split held out."""
        if "train" in self.texts:
            return self.texts["train"], self.texts["valid"], "trained on train, evaluated on valid"
        if {"valid", "test"} <= set(self.texts):
            return self.texts["valid"], self.texts["test"], "no train split here: trained on valid, evaluated on test"
        raise ValueError(f"need train+valid or valid+test splits, found {list(self.splits)}")


def load_wikitext2(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download_missing: bool = True,
    url: str = WIKITEXT2_URL,
    sha1: str = WIKITEXT2_SHA1,
) -> WikiText2:
    """Read the WikiText-2 splits present in ``<dir>/wikitext-2/`` (``dir`` = ``cache_dir`` or :func:`data_dir`).

    If the training split is missing and ``download_missing`` is true, ``wikitext-2-v1.zip`` is
    downloaded (checksum-verified, atomic, cached) and extracted. Without network, the splits
    already present are used if there are any (see :attr:`WikiText2.note`); with none, the error says
    where to put the files.
    """
    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    folder = directory / "wikitext-2"
    downloaded = False
    if download_missing and not (folder / "wiki.train.tokens").is_file():
        try:
            archive = download(
                url,
                sha1,
                cache_dir=directory,
                filename="wikitext-2-v1.zip",
                offline_name="wikitext-2/wiki.train.tokens",
            )
            extract_zip(archive, directory)
            downloaded = True
        except RuntimeError:
            if not any((folder / f"wiki.{s}.tokens").is_file() for s in _SPLITS):
                raise
    texts = {
        s: (folder / f"wiki.{s}.tokens").read_text(encoding="utf-8")
        for s in _SPLITS
        if (folder / f"wiki.{s}.tokens").is_file()
    }
    if not texts:
        raise RuntimeError(
            f"no WikiText-2 split found in {str(folder)!r}; place wiki.*.tokens there, "
            "set D2L_ATTN_DATA, or allow the download"
        )
    return WikiText2(texts, folder, downloaded)


def wikitext_paragraphs(text: str, min_sentences: int = 1) -> list[list[str]]:
    """Paragraphs (non-heading lines) split into sentences on ``" . "``, lowercased, as D2L's BERT data."""
    paragraphs = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("="):  # blank lines and "= Heading =" lines
            continue
        sentences = [s.strip() for s in line.lower().split(" . ") if s.strip()]
        if len(sentences) >= min_sentences:
            paragraphs.append(sentences)
    return paragraphs


def load_tiny_shakespeare(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str = TINY_SHAKESPEARE_URL,
    sha1: str = TINY_SHAKESPEARE_SHA1,
) -> str:
    """The text of ``<dir>/tinyshakespeare/input.txt``, downloaded (SHA-1 verified) if not already there."""
    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    path = download(
        url,
        sha1,
        cache_dir=directory / "tinyshakespeare",
        filename="input.txt",
        offline_name="tinyshakespeare/input.txt",
    )
    return path.read_text(encoding="utf-8")


def lm_batch(
    data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of a 1-D token stream: ``x = data[i : i+T]``, ``y = data[i+1 : i+T+1]``, each ``(B, T)``."""
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got {getattr(data, 'shape', type(data).__name__)}")
    positive_int("block_size", block_size)
    positive_int("batch_size", batch_size)
    if data.numel() <= block_size:
        raise ValueError(f"data has {data.numel()} tokens, need more than block_size={block_size}")
    starts = torch.randint(0, data.numel() - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size)  # (T,)
    x = data[starts.unsqueeze(1) + offsets]  # (B, T)
    y = data[starts.unsqueeze(1) + offsets + 1]  # (B, T)
    return x, y


def nsp_pairs(paragraphs: list[list[str]], generator: torch.Generator | None = None) -> list[tuple[str, str, int]]:
    r"""Next-sentence-prediction examples ``(A, B, label)`` from consecutive sentences of each paragraph.

    With probability 1/2, B is the sentence that follows A (label 0, "is next"), otherwise a
    sentence drawn uniformly from the whole corpus (label 1). The labels are balanced, so a model
    that learns nothing scores an NSP loss of :math:`\ln 2`.
    """
    if not paragraphs or not all(isinstance(p, list) for p in paragraphs):
        raise ValueError("paragraphs must be a non-empty list of lists of sentences (see wikitext_paragraphs)")
    every = [sent for p in paragraphs for sent in p]
    out = []
    for p in paragraphs:
        for a, b in zip(p, p[1:]):
            if float(torch.rand((), generator=generator)) < 0.5:
                out.append((a, b, 0))
            else:
                out.append((a, every[int(torch.randint(0, len(every), (), generator=generator))], 1))
    return out


def bert_pair(
    tokens_a: Sequence[int], tokens_b: Sequence[int], cls_id: int, sep_id: int, max_len: int
) -> tuple[list[int], list[int]]:
    """``[CLS] A [SEP] B [SEP]`` and its segment ids ``0 ... 0 1 ... 1``, the longer of A and B
    truncated from the end until the pair fits in ``max_len`` tokens."""
    positive_int("max_len", max_len)
    if max_len < 5:
        raise ValueError(f"max_len must be at least 5 ([CLS] a [SEP] b [SEP]), got {max_len}")
    a, b = list(tokens_a), list(tokens_b)
    while len(a) + len(b) + 3 > max_len:
        (a if len(a) >= len(b) else b).pop()
    tokens = [cls_id] + a + [sep_id] + b + [sep_id]
    segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    return tokens, segments


class BERTBatch(NamedTuple):
    """A padded batch of sentence pairs: ``tokens``, ``segments`` ``(B, T)``, ``valid_lens`` and ``is_next`` ``(B,)``."""

    tokens: torch.Tensor
    segments: torch.Tensor
    valid_lens: torch.Tensor
    is_next: torch.Tensor


def bert_batch(
    pairs: Sequence[tuple[str, str, int]],
    encode: Callable[[str], list[int]],
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    max_len: int,
) -> BERTBatch:
    """Encode ``(A, B, label)`` pairs with ``encode`` (text -> ids), lay them out with :func:`bert_pair`
    and pad on the right to the longest pair. Masking is applied afterwards (:func:`d2l_attn.losses.mask_tokens`),
    so every epoch can draw new masks."""
    if not pairs:
        raise ValueError("pairs must not be empty")
    rows = [bert_pair(encode(a), encode(b), cls_id, sep_id, max_len) + (label,) for a, b, label in pairs]
    T = max(len(t) for t, _, _ in rows)
    tokens = torch.tensor([t + [pad_id] * (T - len(t)) for t, _, _ in rows])  # (B, T)
    segments = torch.tensor([s + [0] * (T - len(s)) for _, s, _ in rows])  # (B, T)
    valid_lens = torch.tensor([len(t) for t, _, _ in rows])  # (B,)
    is_next = torch.tensor([label for _, _, label in rows])  # (B,)
    return BERTBatch(tokens, segments, valid_lens, is_next)


def _random_partition(total: int, parts: int, generator: torch.Generator | None) -> list[int]:
    """``total`` split into ``parts`` positive integers, uniformly over the cut points."""
    cuts = sorted((torch.randperm(total - 1, generator=generator)[: parts - 1] + 1).tolist())
    bounds = [0] + cuts + [total]
    return [hi - lo for lo, hi in zip(bounds, bounds[1:])]


def span_corrupt(
    tokens: Sequence[int],
    sentinel_ids: Sequence[int],
    rate: float = 0.15,
    mean_span: float = 3.0,
    generator: torch.Generator | None = None,
) -> tuple[list[int], list[int]]:
    r"""T5's span corruption of one token sequence: ``(inputs, targets)``.

    :math:`m = \max(1, \operatorname{round}(\text{rate}\cdot n))` of the :math:`n` tokens are dropped, in
    :math:`k = \max(1, \operatorname{round}(m / \text{mean\_span}))` spans; span lengths and gaps are
    random partitions (as in T5's ``random_spans_noise_mask``). Each dropped span is replaced in the input by
    one sentinel; the target is every sentinel followed by the span it replaced:

    ``"a b c d e f"`` -> inputs ``a <X> d e <Y>``, targets ``<X> b c <Y> f`` (say).
    """
    tokens = list(tokens)
    n = len(tokens)
    if n < 2:
        raise ValueError(f"tokens must hold at least 2 tokens, got {n}")
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate!r}")
    if not mean_span >= 1:
        raise ValueError(f"mean_span must be >= 1, got {mean_span!r}")
    num_noise = min(max(1, round(rate * n)), n - 1)
    num_spans = min(max(1, round(num_noise / mean_span)), n - num_noise)
    if num_spans > len(sentinel_ids):
        raise ValueError(f"{num_spans} spans need as many sentinel_ids, got {len(sentinel_ids)}")
    noise = _random_partition(num_noise, num_spans, generator)
    keep = _random_partition(n - num_noise, num_spans, generator)
    inputs, targets, i = [], [], 0
    for span, (kept, dropped) in enumerate(zip(keep, noise)):
        inputs += tokens[i : i + kept] + [sentinel_ids[span]]
        i += kept
        targets += [sentinel_ids[span]] + tokens[i : i + dropped]
        i += dropped
    return inputs, targets
