"""Byte-pair encoding (chapter 9): merges are the most frequent pairs, round trip, shorter sequences."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from d2l_attn.tokenizers import END_OF_WORD, BPETokenizer

TEXT = "low low low low low lower lower newest newest newest newest newest newest widest widest widest"


def brute_force_best_pair(words: Counter) -> tuple[str, str]:
    counts: Counter = Counter()
    for word, c in words.items():
        symbols = list(word) + [END_OF_WORD]
        for a, b in zip(symbols, symbols[1:]):
            counts[(a, b)] += c
    best = max(counts.values())
    return min(p for p, c in counts.items() if c == best)


def test_first_merge_is_most_frequent_pair_and_sennrich_example():
    tok = BPETokenizer.train(TEXT, 10)
    assert tok.merges[0] == brute_force_best_pair(Counter(TEXT.split()))
    # Sennrich et al. (2016), Figure 1's corpus: 'es' and 'est' are learned early
    assert ("e", "s") in tok.merges[:3] and ("es", "t") in tok.merges[:4]
    assert tok.tokenize_word("newest") == ("newest" + END_OF_WORD,)
    assert tok.tokenize_word("lowest")[-1] == "est" + END_OF_WORD  # an unseen word is built from learned pieces


def test_round_trip_and_length_shrinks_with_merges():
    text = Path(__file__).read_text(encoding="utf-8") + " a</w>b </w>"  # the classic marker as text
    lengths = []
    for merges in (0, 50, 300):
        tok = BPETokenizer.train(text, merges, extra_tokens=["[MASK]"])
        ids = tok.encode(text)
        assert tok.decode(ids) == " ".join(text.split())
        assert tok.token_to_idx["[MASK]"] == 4
        lengths.append(len(ids))
    assert lengths[0] == sum(len(w) + 1 for w in text.split())  # characters + end-of-word markers
    assert lengths[0] > lengths[1] > lengths[2]


def test_unknown_characters_and_bad_inputs():
    tok = BPETokenizer.train("abc abc", 2)
    assert tok.encode("abz")[1] == tok.unk_id and tok.decode(tok.encode("ab abc")) == "ab abc"
    with pytest.raises(ValueError, match="non-empty"):
        BPETokenizer.train("   ", 3)
    with pytest.raises(ValueError, match="num_merges"):
        BPETokenizer.train("a b", -1)
    with pytest.raises(ValueError, match="token ids"):
        tok.decode([len(tok)])
