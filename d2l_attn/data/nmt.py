r"""The English–French ("fra-eng") translation corpus: preprocessing, splits, batches (chapters 4, 7).

Chapter 4 (sequence-to-sequence with attention) and chapter 7 (the Transformer) train
English→French translation models on this corpus. It is the Tatoeba-derived bilingual corpus
from manythings.org/anki (CC-BY 2.0) that D2L packages as ``fra-eng.zip``; the archive holds
``fra-eng/fra.txt`` with one ``english<TAB>french`` pair per line, shortest first.

Data facts (measured on the first 18,065 pairs, the sample kept in ``shared/data`` for tests):

* 18,065 pairs but only 10,974 distinct English sentences: many sentences have several French
  translations. Splitting *pairs* at random would put a sentence in training and one of its other
  translations in the "held-out" set, so :func:`split_by_source` splits **by English source
  sentence** and :func:`group_references` collects every translation of a sentence as the
  references for multi-reference BLEU.
* After :func:`preprocess_nmt` and :func:`tokenize_nmt`, English sentences have at most 6 tokens
  and French at most 13; 17,954 pairs fit in ``num_steps = 9`` with ``<eos>`` on both sides.
  Tokens are split on whitespace, so a doubled space yields no empty token (D2L's ``split(' ')``
  produces ``''`` tokens for four French sentences that end in a narrow no-break space + ``" ?"``).
* D2L's full ``fra-eng.zip`` is larger than the local sample; :data:`FULL_NUM_EXAMPLES` fixes how
  many pairs (the first 18,065, shortest first) the chapters' full mode trains on, so the book's
  numbers describe the same run whichever copy a reader has.

If ``<data dir>/fra-eng/fra.txt`` exists (:func:`d2l_attn.data.download.data_dir`) it is used
as-is and nothing is downloaded. Nothing here prints or changes global state; shuffling uses a
seeded ``torch.Generator`` owned by the :class:`NMTData` object.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, TensorDataset

from .._checks import paired_lists, positive_int, unit_interval
from .download import data_dir, download, extract_zip
from .vocab import Vocab, truncate_pad

__all__ = [
    "FRA_ENG_URL",
    "FRA_ENG_SHA1",
    "FULL_NUM_EXAMPLES",
    "load_fra_eng_text",
    "preprocess_nmt",
    "tokenize_nmt",
    "SplitPairs",
    "split_by_source",
    "group_references",
    "build_array_nmt",
    "NMTData",
    "load_data_nmt",
]

FRA_ENG_URL = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
FRA_ENG_SHA1 = "94646ad1522d915e7b0f9296181140edcf86a4f5"
#: pairs the chapters train on in full mode (the first this many, shortest first): the size of the
#: local sample, so a reader with D2L's larger download runs the same experiment as the book.
FULL_NUM_EXAMPLES = 18_065

Tokens = list[str]
Pair = tuple[Sequence[str], Sequence[str]]


def load_fra_eng_text(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str = FRA_ENG_URL,
    sha1: str = FRA_ENG_SHA1,
) -> str:
    """Return the text of ``fra-eng/fra.txt``, downloading and extracting ``fra-eng.zip`` if needed.

    If ``<dir>/fra-eng/fra.txt`` exists (``dir`` = ``cache_dir`` or :func:`data_dir`), it is read
    as-is and the network is not used. Otherwise the archive is downloaded to ``<dir>/fra-eng.zip``
    (checksum-verified, see :func:`download`) and extracted into ``<dir>`` (see :func:`extract_zip`).
    """
    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    text_path = directory / "fra-eng" / "fra.txt"
    if not text_path.is_file():
        archive = download(url, sha1, cache_dir=directory, filename="fra-eng.zip", offline_name="fra-eng/fra.txt")
        extract_zip(archive, directory)
        if not text_path.is_file():
            raise ValueError(f"the archive {str(archive)!r} from {url} does not contain fra-eng/fra.txt")
    return text_path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Preprocessing and tokenization
# --------------------------------------------------------------------------------------------

_NO_SPACE_BEFORE_PUNCT = re.compile(r"(?<=[^ ])([,.!?])")


def preprocess_nmt(text: str) -> str:
    """D2L's preprocessing: no-break spaces to spaces, lowercase, a space before ``, . ! ?``.

    A space is inserted before a punctuation mark unless it is the first character or already
    preceded by a space: ``"Go.\\tVa !"`` -> ``"go .\\tva !"``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return _NO_SPACE_BEFORE_PUNCT.sub(r" \1", text)


def tokenize_nmt(text: str, max_examples: int | None = None) -> tuple[list[Tokens], list[Tokens]]:
    """Split ``english<TAB>french[<TAB>attribution...]`` lines into source and target token lists.

    Tokens are separated by whitespace. Lines without a tab, or with an empty English or French
    side, are skipped. ``max_examples`` keeps only the first that many pairs.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if max_examples is not None:
        positive_int("max_examples", max_examples)
    source: list[Tokens] = []
    target: list[Tokens] = []
    for line in text.split("\n"):
        if max_examples is not None and len(source) >= max_examples:
            break
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        src, tgt = parts[0].split(), parts[1].split()
        if not src or not tgt:
            continue
        source.append(src)
        target.append(tgt)
    return source, target


class SplitPairs(NamedTuple):
    """Train/validation/test lists of ``(source_tokens, target_tokens)`` pairs."""

    train: list[Pair]
    val: list[Pair]
    test: list[Pair]


def split_by_source(
    pairs: Sequence[Pair],
    *,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
) -> SplitPairs:
    """Split pairs into train/val/test **by distinct source sentence**.

    All translations of one English sentence land in the same split, so no held-out source
    sentence is seen in training. The distinct sources are sorted, shuffled with
    ``random.Random(seed)``; the first ``floor(val_frac * n)`` go to validation, the next
    ``floor(test_frac * n)`` to test, the rest to training. Pairs keep their input order within
    a split. Same pairs + same seed => same split.
    """
    val_frac = unit_interval("val_frac", val_frac)
    test_frac = unit_interval("test_frac", test_frac)
    if val_frac + test_frac >= 1.0:
        raise ValueError(f"val_frac + test_frac must be < 1 to leave training data, got {val_frac} + {test_frac}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    keys = [tuple(src) for src, _ in pairs]
    sources = sorted(set(keys))
    random.Random(seed).shuffle(sources)
    n_val = int(val_frac * len(sources))
    n_test = int(test_frac * len(sources))
    val_sources = set(sources[:n_val])
    test_sources = set(sources[n_val : n_val + n_test])
    split = SplitPairs([], [], [])
    for key, pair in zip(keys, pairs):
        if key in val_sources:
            split.val.append(pair)
        elif key in test_sources:
            split.test.append(pair)
        else:
            split.train.append(pair)
    return split


def group_references(pairs: Iterable[Pair]) -> dict[tuple[str, ...], list[list[str]]]:
    """Map each distinct source sentence (a tuple of tokens) to all its target token lists.

    Used for multi-reference BLEU: a translation is scored against every French translation of
    its English sentence. Keys appear in first-seen order.
    """
    references: dict[tuple[str, ...], list[list[str]]] = {}
    for src, tgt in pairs:
        references.setdefault(tuple(src), []).append(list(tgt))
    return references


def build_array_nmt(lines: Sequence[Sequence[str]], vocab: Vocab, num_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ``(array (N, num_steps) int64, valid_len (N,) int64)``.

    Each line gets ``<eos>`` appended, is mapped to indices, and is truncated or padded with
    ``<pad>`` to ``num_steps``; ``valid_len`` counts the non-padding positions. A line longer than
    ``num_steps - 1`` tokens loses its tail, ``<eos>`` included.
    """
    positive_int("num_steps", num_steps)
    for token in ("<pad>", "<eos>"):
        if token not in vocab.token_to_idx:
            raise ValueError(f"vocab must contain the reserved token {token!r}")
    pad, eos = vocab["<pad>"], vocab["<eos>"]
    rows = [truncate_pad(vocab[list(line)] + [eos], num_steps, pad) for line in lines]
    array = torch.tensor(rows, dtype=torch.long).reshape(len(rows), num_steps)
    valid_len = (array != pad).sum(dim=1).to(torch.long)
    return array, valid_len


# --------------------------------------------------------------------------------------------
# The dataset object used by chapters 4 and 7
# --------------------------------------------------------------------------------------------

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class NMTData:
    """The split corpus, its vocabularies and batch iterators.

    Batches are ``(src (B, T), src_valid_len (B,), tgt (B, T), tgt_valid_len (B,))``, all int64,
    with ``T = num_steps``. Shuffling uses a ``torch.Generator`` seeded with ``seed`` and owned by
    this object: successive epochs see different orders, and the whole sequence of epochs is
    reproducible.
    """

    src_vocab: Vocab
    tgt_vocab: Vocab
    train_pairs: list[Pair]
    val_pairs: list[Pair]
    test_pairs: list[Pair]
    batch_size: int
    num_steps: int
    seed: int = 0
    _generator: torch.Generator = field(init=False, repr=False)
    _arrays: dict[str, Batch] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        positive_int("batch_size", self.batch_size)
        positive_int("num_steps", self.num_steps)
        self._generator = torch.Generator().manual_seed(self.seed)

    @property
    def generator(self) -> torch.Generator:
        """The generator that shuffles the training batches. To resume training exactly, save
        ``generator.get_state()`` with the checkpoint and ``set_state`` it after loading."""
        return self._generator

    def arrays(self, pairs: Sequence[Pair]) -> Batch:
        """``(src, src_valid_len, tgt, tgt_valid_len)`` tensors for tokenized pairs."""
        src, src_valid_len = build_array_nmt([p[0] for p in pairs], self.src_vocab, self.num_steps)
        tgt, tgt_valid_len = build_array_nmt([p[1] for p in pairs], self.tgt_vocab, self.num_steps)
        return src, src_valid_len, tgt, tgt_valid_len

    def build(self, src_sentences: Sequence[str], tgt_sentences: Sequence[str]) -> Batch:
        """Raw sentences (e.g. ``["Go.", "I won!"]``) -> preprocessed, tokenized, padded arrays."""
        paired_lists("src_sentences", src_sentences, "tgt_sentences", tgt_sentences)
        pairs = [
            (preprocess_nmt(src).split(), preprocess_nmt(tgt).split()) for src, tgt in zip(src_sentences, tgt_sentences)
        ]
        return self.arrays(pairs)

    def _cached(self, name: str) -> Batch:
        if name not in self._arrays:
            self._arrays[name] = self.arrays(getattr(self, f"{name}_pairs"))
        return self._arrays[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        dataset = TensorDataset(*self._cached(name))
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, generator=self._generator)

    def train_loader(self, shuffle: bool = True) -> DataLoader:
        """Batches of the training split (shuffled by default)."""
        return self._loader("train", shuffle)

    def val_loader(self) -> DataLoader:
        """Batches of the validation split, in order."""
        return self._loader("val", False)

    def test_loader(self) -> DataLoader:
        """Batches of the test split, in order."""
        return self._loader("test", False)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.train_loader())


def load_data_nmt(
    batch_size: int,
    num_steps: int,
    *,
    num_examples: int | None = None,
    min_freq: int = 2,
    seed: int = 0,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    cache_dir: str | os.PathLike[str] | None = None,
) -> NMTData:
    """Load, preprocess, tokenize and split fra-eng; build vocabularies on the training split.

    Args:
        batch_size: examples per batch.
        num_steps: every sequence is truncated/padded to this many tokens (``<eos>`` included).
        num_examples: keep only the first this many pairs (the file is sorted shortest first).
        min_freq: a token enters a vocabulary if seen this often **in the training split**;
            rarer tokens map to ``<unk>``.
        seed: seeds the split and the shuffling.
        val_frac, test_frac: fractions of distinct English sentences held out (see
            :func:`split_by_source`).
        cache_dir: data directory (default :func:`data_dir`).
    """
    positive_int("batch_size", batch_size)
    positive_int("num_steps", num_steps)
    if num_examples is not None:
        positive_int("num_examples", num_examples)
    text = load_fra_eng_text(cache_dir=cache_dir)
    source, target = tokenize_nmt(preprocess_nmt(text), max_examples=num_examples)
    pairs: list[Pair] = list(zip(source, target))
    split = split_by_source(pairs, val_frac=val_frac, test_frac=test_frac, seed=seed)
    reserved = ["<pad>", "<bos>", "<eos>"]
    src_vocab = Vocab([src for src, _ in split.train], min_freq=min_freq, reserved_tokens=reserved)
    tgt_vocab = Vocab([tgt for _, tgt in split.train], min_freq=min_freq, reserved_tokens=reserved)
    return NMTData(
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        train_pairs=split.train,
        val_pairs=split.val,
        test_pairs=split.test,
        batch_size=batch_size,
        num_steps=num_steps,
        seed=seed,
    )
