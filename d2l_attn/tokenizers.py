r"""Byte-pair encoding learned from scratch (chapter 9).

Byte-pair encoding (BPE; Sennrich et al., 2016, after Gage, 1994) starts from characters and
repeatedly **merges the most frequent adjacent pair of symbols** into a new symbol:

1. split every word into characters plus an end-of-word marker (a space, written ``_`` here:
   ``"low"`` -> ``l o w _``), weighted by the word's count in the corpus. Sennrich et al. write the
   marker ``</w>``; a space can never occur inside a whitespace-split word, so decoding is
   unambiguous even for text that contains the characters ``</w>``;
2. count every adjacent pair :math:`(a, b)` over the corpus,
   :math:`c(a, b) = \sum_{w} \operatorname{count}(w)\,\#\{(a, b) \text{ in } w\}`;
3. merge the most frequent pair everywhere (ties: the pair that comes first in sorted order,
   so that training is deterministic) and record it; repeat ``num_merges`` times.

Encoding a new word replays the merges in the order they were learned. Frequent words become a
single token, rare words fall back to pieces, and no word is ever out of vocabulary as long as its
characters were seen (unseen characters map to ``<unk>``). The vocabulary interpolates between
characters (0 merges: long sequences, tiny vocabulary) and words (many merges).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ._checks import nonnegative_int

__all__ = ["BPETokenizer", "END_OF_WORD"]

END_OF_WORD = " "  # ends every word; no word contains whitespace


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


class BPETokenizer:
    """A BPE tokenizer: ``train`` on text, then ``encode`` (text -> ids) and ``decode`` (ids -> text).

    Text is split on whitespace; ``decode(encode(text))`` returns the words joined by single
    spaces. Ids 0..3 are ``<unk>``, ``<pad>``, ``<bos>``, ``<eos>``; then ``extra_tokens`` (e.g.
    ``[CLS]``, ``[SEP]``, ``[MASK]``), then the characters, then one id per merge.
    """

    SPECIALS = ("<unk>", "<pad>", "<bos>", "<eos>")

    def __init__(self, merges: list[tuple[str, str]], alphabet: Iterable[str], extra_tokens: Iterable[str] = ()):
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: i for i, pair in enumerate(self.merges)}
        reserved = list(dict.fromkeys([*self.SPECIALS, *extra_tokens]))  # one id per token, duplicates dropped
        symbols = list(dict.fromkeys([*alphabet, *(a + b for a, b in self.merges)]))
        self.idx_to_token = reserved + symbols
        # text is encoded through the symbols only: a merge that spells "<pad>" or "[MASK]" gets
        # its own id, so ordinary text never turns into a special id
        self.symbol_to_idx = {t: len(reserved) + i for i, t in enumerate(symbols)}
        self.token_to_idx = {**self.symbol_to_idx, **{t: i for i, t in enumerate(reserved)}}
        self._cache: dict[str, tuple[str, ...]] = {}

    @classmethod
    def train(cls, text: str, num_merges: int, extra_tokens: Iterable[str] = ()) -> BPETokenizer:
        """Learn ``num_merges`` merges from ``text`` (stops early if no pair occurs twice)."""
        if not isinstance(text, str) or not text.split():
            raise ValueError("text must be a non-empty string with at least one word")
        nonnegative_int("num_merges", num_merges)
        counter = Counter(text.split())
        words = [tuple(w) + (END_OF_WORD,) for w in counter]
        freqs = list(counter.values())
        alphabet = sorted({ch for symbols in words for ch in symbols})
        # pair counts, kept up to date: only the words that contain the merged pair are recounted
        counts: Counter = Counter()
        where: dict[tuple[str, str], set[int]] = {}
        for i, symbols in enumerate(words):
            for pair in zip(symbols, symbols[1:]):
                counts[pair] += freqs[i]
                where.setdefault(pair, set()).add(i)
        merges = []
        for _ in range(num_merges):
            best = max(counts.values(), default=0)
            if best < 2:
                break
            pair = min(p for p, c in counts.items() if c == best)  # deterministic tie-break
            merges.append(pair)
            for i in where.pop(pair, ()):
                old = words[i]
                for p in zip(old, old[1:]):
                    counts[p] -= freqs[i]
                words[i] = new = _merge(old, pair)
                for p in zip(new, new[1:]):
                    counts[p] += freqs[i]
                    where.setdefault(p, set()).add(i)
            counts = +counts  # drop pairs whose count fell to 0
        return cls(merges, alphabet, extra_tokens)

    def __len__(self) -> int:
        return len(self.idx_to_token)

    @property
    def unk_id(self) -> int:
        return 0

    @property
    def pad_id(self) -> int:
        return 1

    def tokenize_word(self, word: str) -> tuple[str, ...]:
        """The symbols of one word: the learned merges replayed in order (lowest rank first)."""
        if word in self._cache:
            return self._cache[word]
        symbols = tuple(word) + (END_OF_WORD,)
        while len(symbols) > 1:
            pairs = [(self.ranks.get(p, len(self.ranks)), p) for p in zip(symbols, symbols[1:])]
            rank, pair = min(pairs)
            if rank == len(self.ranks):
                break
            symbols = _merge(symbols, pair)
        self._cache[word] = symbols
        return symbols

    def tokenize(self, text: str) -> list[str]:
        return [s for word in text.split() for s in self.tokenize_word(word)]

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        return [self.symbol_to_idx.get(s, self.unk_id) for s in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = []
        for i in ids:
            if not isinstance(i, int) or not 0 <= i < len(self):
                raise ValueError(f"ids must be token ids in [0, {len(self)}), got {i!r}")
            if i < len(self.SPECIALS):  # <unk>, <pad>, <bos>, <eos> (not a symbol that spells one)
                continue
            pieces.append(self.idx_to_token[i])
        return "".join(pieces).strip()  # END_OF_WORD is a space
