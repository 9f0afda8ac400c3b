"""Text data (chapter 9): WikiText-2 from whichever splits exist, Tiny Shakespeare, downloads via a local server."""

from __future__ import annotations

import pytest
import torch
from net_helpers import closed_port_url, sha1, zip_bytes

from d2l_attn.data import data_dir, sha1_of_file
from d2l_attn.data.text import (
    TINY_SHAKESPEARE_SHA1,
    WIKITEXT2_SHA1,
    bert_batch,
    bert_pair,
    lm_batch,
    load_tiny_shakespeare,
    load_wikitext2,
    nsp_pairs,
    span_corrupt,
    wikitext_paragraphs,
)


def test_local_wikitext2_says_which_splits_it_used():
    if not (data_dir() / "wikitext-2" / "wiki.valid.tokens").is_file():
        pytest.skip("no local WikiText-2 copy")
    wt = load_wikitext2(download_missing=False)
    assert "valid" in wt.splits and "valid" in wt.note
    if "train" not in wt.splits:
        assert "not available here: train" in wt.note
        train, held_out, how = wt.train_valid()
        assert train is wt.texts["valid"] and held_out is wt.texts["test"] and "no train split" in how
        assert sha1_of_file(wt.directory / "wiki.valid.tokens") == "0418625c8b4da6e4b5c7a0b9e78d4ae8f7ee5422"
        assert len(wt.texts["valid"].split()) == 213_886  # the count in ATTRIBUTION.md (<eos> not added)
    paragraphs = wikitext_paragraphs(wt.texts["valid"], min_sentences=2)
    assert paragraphs and all(len(p) >= 2 for p in paragraphs)
    assert not any(s.startswith("=") for p in paragraphs for s in p)


def test_wikitext2_download_from_local_server(http_server, tmp_path, offline_env):
    base, www, server = http_server
    members = {
        f"wikitext-2/wiki.{s}.tokens": f" = T =\n {s} one . two .\n".encode() for s in ("train", "valid", "test")
    }
    payload = zip_bytes(tmp_path, members)
    (www / "wikitext-2-v1.zip").write_bytes(payload)
    cache = tmp_path / "cache"
    wt = load_wikitext2(cache_dir=cache, url=f"{base}/wikitext-2-v1.zip", sha1=sha1(payload))
    assert wt.splits == ("train", "valid", "test") and wt.downloaded and "not available" not in wt.note
    assert wt.train_valid()[2] == "trained on train, evaluated on valid"
    server.stop()  # cached now: no network needed
    again = load_wikitext2(cache_dir=cache, url=f"{base}/wikitext-2-v1.zip", sha1=sha1(payload))
    assert again.texts == wt.texts and not again.downloaded and len(server.requests) == 1


def test_wikitext2_offline_uses_present_splits_or_raises(tmp_path, offline_env):
    with pytest.raises(RuntimeError, match="offline"):
        load_wikitext2(cache_dir=tmp_path, url=closed_port_url())
    (tmp_path / "wikitext-2").mkdir()
    (tmp_path / "wikitext-2" / "wiki.valid.tokens").write_text(" a . b .\n")
    (tmp_path / "wikitext-2" / "wiki.test.tokens").write_text(" c .\n")
    wt = load_wikitext2(cache_dir=tmp_path, url=closed_port_url())
    assert wt.splits == ("valid", "test") and "not available here: train" in wt.note


def test_wikitext2_checksum_mismatch_is_refused(http_server, tmp_path, offline_env):
    base, www, _ = http_server
    (www / "wikitext-2-v1.zip").write_bytes(zip_bytes(tmp_path, {"wikitext-2/wiki.train.tokens": b"x"}))
    with pytest.raises(ValueError, match="SHA-1|sha1|checksum"):
        load_wikitext2(cache_dir=tmp_path / "c", url=f"{base}/wikitext-2-v1.zip", sha1=WIKITEXT2_SHA1)
    assert not (tmp_path / "c" / "wikitext-2").exists()


def test_local_tiny_shakespeare():
    if not (data_dir() / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip("no local Tiny Shakespeare copy")
    text = load_tiny_shakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65


def test_tiny_shakespeare_download_from_local_server(http_server, tmp_path, offline_env):
    base, www, server = http_server
    (www / "input.txt").write_bytes(b"First Citizen:\nBefore we proceed any further, hear me speak.\n")
    url = f"{base}/input.txt"
    text = load_tiny_shakespeare(cache_dir=tmp_path, url=url, sha1=sha1((www / "input.txt").read_bytes()))
    assert text.startswith("First Citizen") and (tmp_path / "tinyshakespeare" / "input.txt").is_file()
    with pytest.raises(ValueError):
        load_tiny_shakespeare(cache_dir=tmp_path / "other", url=url, sha1=TINY_SHAKESPEARE_SHA1)


def test_lm_batch_targets_are_inputs_shifted_by_one():
    data = torch.arange(100)
    x, y = lm_batch(data, 8, 5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="block_size"):
        lm_batch(data, 100, 2)


def test_nsp_pairs_are_balanced_and_true_pairs_are_consecutive():
    paragraphs = [[f"p{p} s{s}" for s in range(5)] for p in range(200)]
    pairs = nsp_pairs(paragraphs, torch.Generator().manual_seed(0))
    assert len(pairs) == 200 * 4
    share = sum(label == 0 for _, _, label in pairs) / len(pairs)
    assert abs(share - 0.5) < 0.05
    for a, b, label in pairs:
        if label == 0:
            pa, sa = a.split()
            assert b == f"{pa} s{int(sa[1:]) + 1}"


def test_bert_pair_layout_and_truncation():
    tokens, segments = bert_pair([5, 6, 7, 8], [9], cls_id=1, sep_id=2, max_len=7)
    assert tokens == [1, 5, 6, 7, 2, 9, 2] and segments == [0, 0, 0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="max_len"):
        bert_pair([1], [2], 1, 2, 4)


def test_span_corruption_reconstructs_the_input():
    gen = torch.Generator().manual_seed(0)
    sentinels = list(range(100, 120))
    for n in (2, 7, 40, 100):
        tokens = list(range(n))
        inputs, targets = span_corrupt(tokens, sentinels, generator=gen)
        # fill every sentinel of the input with the span that follows it in the target
        spans, current = {}, None
        for t in targets:
            if t in sentinels:
                current = t
                spans[t] = []
            else:
                spans[current].append(t)
        rebuilt = [x for t in inputs for x in (spans[t] if t in sentinels else [t])]
        assert rebuilt == tokens
        dropped = sum(len(v) for v in spans.values())
        assert dropped == min(max(1, round(0.15 * n)), n - 1)
    with pytest.raises(ValueError, match="sentinel_ids"):
        span_corrupt(list(range(100)), [100], generator=gen)


def test_bert_batch_pads_and_masks_end_to_end():
    from d2l_attn.losses import IGNORE_INDEX, mask_tokens, mlm_loss, nsp_loss
    from d2l_attn.models.bert import BERT, BERTConfig
    from d2l_attn.tokenizers import BPETokenizer

    text = "the cat sat on the mat . the dog sat on the log . a bird flew over the tree ."
    tok = BPETokenizer.train(text, 10, extra_tokens=["[CLS]", "[SEP]", "[MASK]"])
    cls_id, sep_id, mask_id = (tok.token_to_idx[t] for t in ("[CLS]", "[SEP]", "[MASK]"))
    pairs = nsp_pairs([[s.strip() for s in text.split(" . ")]] * 3, torch.Generator().manual_seed(1))
    batch = bert_batch(pairs, tok.encode, cls_id=cls_id, sep_id=sep_id, pad_id=tok.pad_id, max_len=24)
    B, T = batch.tokens.shape
    assert batch.segments.shape == (B, T) and int(batch.valid_lens.max()) == T
    assert (batch.tokens[:, 0] == cls_id).all()
    for row, n in zip(batch.tokens, batch.valid_lens.tolist()):
        assert row[n - 1] == sep_id and (row[n:] == tok.pad_id).all()
    masked = mask_tokens(
        batch.tokens,
        mask_id=mask_id,
        vocab_size=len(tok),
        special_ids=[cls_id, sep_id],
        valid_lens=batch.valid_lens,
        generator=torch.Generator().manual_seed(0),
    )
    assert ((masked.labels != IGNORE_INDEX) & ((batch.tokens == cls_id) | (batch.tokens == sep_id))).sum() == 0
    torch.manual_seed(0)
    model = BERT(BERTConfig(vocab_size=len(tok), max_len=24, num_layers=1, num_heads=2, d_model=16))
    out = model(masked.inputs, batch.segments, batch.valid_lens)
    loss = mlm_loss(out.mlm_logits, masked.labels) + nsp_loss(out.nsp_logits, batch.is_next)
    loss.backward()
    assert torch.isfinite(loss)
