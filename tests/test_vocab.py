"""Tests for d2l_attn.data.vocab: Vocab and truncate_pad."""

from __future__ import annotations

import pytest
import torch

from d2l_attn.data import Vocab, truncate_pad


def test_vocab_refuses_a_bare_string():
    with pytest.raises(ValueError, match="not a single string"):
        Vocab("hello world")
    assert len(Vocab("hello world".split())) == 3  # <unk>, hello, world


def test_vocab_order_lookup_and_unknown_tokens():
    # a:3, b:2, then c, d, e once each, first seen in the order e, d, c: ties go alphabetical
    lines = [["b", "a", "e"], ["a", "b", "d"], ["a", "c"]]
    vocab = Vocab(lines, reserved_tokens=["<pad>", "<bos>", "<eos>"])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "a", "b", "c", "d", "e"]
    assert vocab.token_to_idx == {t: i for i, t in enumerate(vocab.idx_to_token)}
    assert len(vocab) == 9 and vocab.unk == 0
    assert vocab["a"] == 4 and vocab["zzz"] == 0
    assert vocab[["a", "zzz", "<eos>"]] == [4, 0, 3]
    assert vocab[("b", "c")] == [5, 6]
    assert vocab.to_tokens(5) == "b"
    assert vocab.to_tokens([4, 0, 3]) == ["a", "<unk>", "<eos>"]
    assert vocab.to_tokens(torch.tensor([6, 7])) == ["c", "d"]
    assert vocab.token_freqs[:2] == [("a", 3), ("b", 2)]

    frequent = Vocab(lines, min_freq=2, reserved_tokens=["<pad>"])
    assert frequent.idx_to_token == ["<unk>", "<pad>", "a", "b"]
    assert frequent[["c", "a"]] == [0, 2]
    # a flat token list works too, and an empty vocabulary still has <unk>
    assert Vocab(["x", "y", "x"]).idx_to_token == ["<unk>", "x", "y"]
    assert Vocab().idx_to_token == ["<unk>"]


def test_vocab_bad_arguments():
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="min_freq"):
            Vocab([["a"]], min_freq=bad)
    with pytest.raises(ValueError, match="reserved_tokens.*duplicates"):
        Vocab([["a"]], reserved_tokens=["<pad>", "<eos>", "<pad>"])
    with pytest.raises(ValueError, match="reserved_tokens"):
        Vocab([["a"]], reserved_tokens=["<unk>"])
    with pytest.raises(IndexError, match="out of range"):
        Vocab([["a"]]).to_tokens(5)
    with pytest.raises(ValueError, match="indices"):
        Vocab([["a"]]).to_tokens("a")  # type: ignore[arg-type]


def test_truncate_pad():
    assert truncate_pad([5, 6], 4, 1) == [5, 6, 1, 1]
    assert truncate_pad([5, 6, 7, 8, 9], 3, 1) == [5, 6, 7]
    assert truncate_pad([5, 6, 7], 3, 0) == [5, 6, 7]
    assert truncate_pad([], 2, 9) == [9, 9]
    line = [1, 2]
    truncate_pad(line, 5, 0)
    assert line == [1, 2]  # input not modified
    for bad in (0, -1, 2.0, None):
        with pytest.raises(ValueError, match="num_steps"):
            truncate_pad([1], bad, 0)  # type: ignore[arg-type]
