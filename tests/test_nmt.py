"""Tests for d2l_attn.data.nmt: the English-French corpus (loading, preprocessing, splits, batches, the real sample)."""

from __future__ import annotations

import collections
import hashlib
import os
from pathlib import Path

import pytest
import torch
from net_helpers import FAKE_FRA, closed_port_url, sha1, zip_bytes

from d2l_attn.data import (
    NMTData,
    Vocab,
    build_array_nmt,
    download,
    group_references,
    load_data_nmt,
    load_fra_eng_text,
    preprocess_nmt,
    split_by_source,
    tokenize_nmt,
)

pytestmark = pytest.mark.usefixtures("offline_env")


def test_load_fra_eng_text_downloads_when_missing_and_reads_offline_after(http_server, tmp_path):
    base, www, server = http_server
    payload = zip_bytes(tmp_path, {"fra-eng/": b"", "fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    (www / "fra-eng.zip").write_bytes(payload)
    cache = tmp_path / "cache"
    assert load_fra_eng_text(cache_dir=cache, url=f"{base}/fra-eng.zip", sha1=sha1(payload)) == FAKE_FRA
    assert server.requests == ["/fra-eng.zip"]
    server.stop()
    # the extracted text is used as-is: a dead URL and a wrong checksum do not matter any more
    assert load_fra_eng_text(cache_dir=cache, url=closed_port_url(), sha1="0" * 40) == FAKE_FRA


def test_file_url_download_and_load(tmp_path):
    payload = zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    source = tmp_path / "src" / "fra-eng.zip"
    source.parent.mkdir()
    source.write_bytes(payload)
    cache = tmp_path / "cache"
    path = download(source.as_uri(), sha1(payload), cache_dir=cache)
    assert path.read_bytes() == payload
    source.unlink()  # the cached copy is used from now on
    assert download(source.as_uri(), sha1(payload), cache_dir=cache) == path
    assert load_fra_eng_text(cache_dir=cache, url=source.as_uri(), sha1=sha1(payload)) == FAKE_FRA


def test_zip_without_fra_txt_raises(tmp_path):
    payload = zip_bytes(tmp_path, {"other/readme.txt": b"nothing here"})
    source = tmp_path / "fra-eng.zip"
    source.write_bytes(payload)
    with pytest.raises(ValueError, match="fra-eng/fra.txt"):
        load_fra_eng_text(cache_dir=tmp_path / "cache", url=source.as_uri(), sha1=sha1(payload))


# ------------------------------------------------------------------------------------------
# preprocessing, tokenization, vocabulary, padding
# ------------------------------------------------------------------------------------------


def test_preprocess_nmt_hand_computed():
    assert preprocess_nmt("Go.\tVa !") == "go .\tva !"
    assert preprocess_nmt("Run!\tCours\u202f!") == "run !\tcours !"
    assert preprocess_nmt("Hi,\xa0Tom.") == "hi , tom ."
    assert preprocess_nmt("Who?\tQui ?") == "who ?\tqui ?"
    assert preprocess_nmt("...") == ". . ."  # first char gets no leading space; the others do
    assert preprocess_nmt("") == ""
    with pytest.raises(ValueError, match="text"):
        preprocess_nmt(b"bytes")  # type: ignore[arg-type]


def test_tokenize_nmt_takes_first_two_fields_and_skips_malformed_lines():
    source, target = tokenize_nmt(preprocess_nmt(FAKE_FRA))
    assert source == [["go", "."], ["hi", "."], ["run", "!"], ["run", "!"], ["i", "won", "!"]]
    assert target == [["va", "!"], ["salut", "!"], ["cours", "!"], ["courez", "!"], ["j'ai", "gagné", "!"]]
    # whitespace splitting: doubled spaces give no empty tokens; empty sides are skipped
    source, target = tokenize_nmt("who ?\tqui est  cette fille  ?\n\tvide\nseul\t \n")
    assert source == [["who", "?"]] and target == [["qui", "est", "cette", "fille", "?"]]
    source, target = tokenize_nmt(preprocess_nmt(FAKE_FRA), max_examples=2)
    assert source == [["go", "."], ["hi", "."]] and len(target) == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_examples"):
            tokenize_nmt("a\tb", max_examples=bad)


def test_build_array_nmt_hand_computed():
    vocab = Vocab([["a", "b"], ["a"]], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    # indices: <unk>0 <pad>1 <bos>2 <eos>3 a4 b5
    array, valid_len = build_array_nmt([["a", "b"], ["zzz"], ["a", "b", "a", "b"]], vocab, 4)
    assert array.dtype == torch.long and valid_len.dtype == torch.long
    assert array.tolist() == [[4, 5, 3, 1], [0, 3, 1, 1], [4, 5, 4, 5]]
    assert valid_len.tolist() == [3, 2, 4]
    empty, empty_len = build_array_nmt([], vocab, 3)
    assert empty.shape == (0, 3) and empty_len.shape == (0,)
    with pytest.raises(ValueError, match="<pad>"):
        build_array_nmt([["a"]], Vocab([["a"]]), 4)
    with pytest.raises(ValueError, match="num_steps"):
        build_array_nmt([["a"]], vocab, 0)


def test_split_by_source_and_group_references_small():
    pairs = [((f"s{i % 7}",), (f"t{i}",)) for i in range(30)]  # 7 sources, several targets each
    split = split_by_source(pairs, val_frac=0.3, test_frac=0.3, seed=1)
    assert sorted(split.train + split.val + split.test) == sorted(pairs)
    sources = [{p[0] for p in part} for part in split]
    assert len(sources[1]) == 2 and len(sources[2]) == 2 and len(sources[0]) == 3  # floor(0.3 * 7) = 2
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert split == split_by_source(pairs, val_frac=0.3, test_frac=0.3, seed=1)
    refs = group_references(pairs)
    assert refs[("s0",)] == [["t0"], ["t7"], ["t14"], ["t21"], ["t28"]]
    assert list(refs) == [(f"s{i}",) for i in range(7)]
    for kwargs, name in [
        (dict(val_frac=-0.1), "val_frac"),
        (dict(test_frac=1.0), "test_frac"),
        (dict(val_frac=0.5, test_frac=0.5), "val_frac \\+ test_frac"),
        (dict(seed="0"), "seed"),
    ]:
        with pytest.raises(ValueError, match=name):
            split_by_source(pairs, **kwargs)


def test_load_data_nmt_on_fake_corpus_and_argument_checks(tmp_path):
    (tmp_path / "fra-eng").mkdir()
    (tmp_path / "fra-eng" / "fra.txt").write_text(FAKE_FRA, encoding="utf-8")
    nmt = load_data_nmt(2, 5, cache_dir=tmp_path, min_freq=1, val_frac=0.0, test_frac=0.0)
    assert isinstance(nmt, NMTData) and len(nmt.train_pairs) == 5
    src, src_len, tgt, tgt_len = nmt.build(["Run!", "Hi, you."], ["Cours\u202f!", "Salut !"])
    assert nmt.src_vocab.to_tokens(src[0].tolist()) == ["run", "!", "<eos>", "<pad>", "<pad>"]
    assert nmt.src_vocab.to_tokens(src[1].tolist()) == ["hi", "<unk>", "<unk>", ".", "<eos>"]
    assert src_len.tolist() == [3, 5] and tgt_len.tolist() == [3, 3]
    with pytest.raises(ValueError, match="same length"):
        nmt.build(["a"], [])
    for kwargs, name in [
        (dict(batch_size=0, num_steps=5), "batch_size"),
        (dict(batch_size=2, num_steps=0), "num_steps"),
        (dict(batch_size=2.0, num_steps=5), "batch_size"),
        (dict(batch_size=2, num_steps=5, num_examples=0), "num_examples"),
        (dict(batch_size=2, num_steps=5, min_freq=0), "min_freq"),
    ]:
        with pytest.raises(ValueError, match=name):
            load_data_nmt(cache_dir=tmp_path, **kwargs)


# ------------------------------------------------------------------------------------------
# the real 18,065-pair sample in ../shared/data (DESIGN.md, "Data facts")
# ------------------------------------------------------------------------------------------


def _sample_dir() -> Path | None:
    candidates = []
    if os.environ.get("D2L_ATTN_DATA"):
        candidates.append(Path(os.environ["D2L_ATTN_DATA"]))
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for candidate in candidates:
        if (candidate / "fra-eng" / "fra.txt").is_file():
            return candidate
    return None


SAMPLE_DIR = _sample_dir()


needs_sample = pytest.mark.skipif(
    SAMPLE_DIR is None,
    reason="the fra-eng sample is not available: set D2L_ATTN_DATA or provide ../shared/data/fra-eng/fra.txt",
)


@pytest.fixture(scope="module")
def sample_pairs():
    text = load_fra_eng_text(cache_dir=SAMPLE_DIR)
    source, target = tokenize_nmt(preprocess_nmt(text))
    return list(zip(source, target))


@needs_sample
def test_sample_checksum_matches_recorded_sha256():
    recorded = SAMPLE_DIR / "fra-eng" / "fra.txt.sha256"
    if not recorded.is_file():
        pytest.skip("no fra.txt.sha256 beside the sample")
    expected = recorded.read_text().split()[0]
    actual = hashlib.sha256((SAMPLE_DIR / "fra-eng" / "fra.txt").read_bytes()).hexdigest()
    assert actual == expected


@needs_sample
def test_sample_data_facts(sample_pairs):
    assert len(sample_pairs) == 18_065
    assert len({tuple(src) for src, _ in sample_pairs}) == 10_974
    assert max(len(src) for src, _ in sample_pairs) == 6
    assert max(len(tgt) for _, tgt in sample_pairs) == 13
    assert all(tok for src, tgt in sample_pairs for tok in (*src, *tgt))  # no empty tokens
    # "fit in 9 tokens with <eos>": both sides, plus <eos>, have at most 9 tokens
    assert sum(len(src) + 1 <= 9 and len(tgt) + 1 <= 9 for src, tgt in sample_pairs) == 17_954
    src_counts = collections.Counter(t for src, _ in sample_pairs for t in src)
    tgt_counts = collections.Counter(t for _, tgt in sample_pairs for t in tgt)
    assert (len(src_counts), len(tgt_counts)) == (3_316, 6_814)
    assert sum(n >= 2 for n in src_counts.values()) == 2_303
    assert sum(n >= 2 for n in tgt_counts.values()) == 3_561
    assert len(Vocab([src for src, _ in sample_pairs])) == 3_316 + 1  # + <unk>


@needs_sample
def test_sample_fit_count_agrees_with_build_array(sample_pairs):
    vocab_src = Vocab([s for s, _ in sample_pairs], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    vocab_tgt = Vocab([t for _, t in sample_pairs], reserved_tokens=["<pad>", "<bos>", "<eos>"])
    src, _ = build_array_nmt([s for s, _ in sample_pairs], vocab_src, 9)
    tgt, _ = build_array_nmt([t for _, t in sample_pairs], vocab_tgt, 9)
    eos_src, eos_tgt = vocab_src["<eos>"], vocab_tgt["<eos>"]
    kept_eos = (src == eos_src).any(dim=1) & (tgt == eos_tgt).any(dim=1)
    assert int(kept_eos.sum()) == 17_954


@needs_sample
def test_sample_split_by_source(sample_pairs):
    split = split_by_source(sample_pairs, seed=0)
    assert len(split.train) + len(split.val) + len(split.test) == 18_065
    parts = [{tuple(src) for src, _ in part} for part in split]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert len(parts[1]) == len(parts[2]) == 1_097  # floor(0.1 * 10,974)
    assert len(parts[0]) == 10_974 - 2 * 1_097
    assert split == split_by_source(sample_pairs, seed=0)
    other = split_by_source(sample_pairs, seed=1)
    assert {tuple(s) for s, _ in other.test} != parts[2]
    # every translation of a held-out sentence is held out with it
    refs = group_references(sample_pairs)
    test_refs = group_references(split.test)
    assert all(test_refs[src] == refs[src] for src in test_refs)
    assert max(len(r) for r in refs.values()) > 1


@needs_sample
def test_sample_load_data_nmt_batches():
    batch_size, num_steps = 64, 15  # 15 > 13 + 1, so nothing is truncated
    nmt = load_data_nmt(batch_size, num_steps, cache_dir=SAMPLE_DIR, seed=0)
    train_sources = {tuple(s) for s, _ in nmt.train_pairs}
    assert not train_sources & {tuple(s) for s, _ in nmt.val_pairs + nmt.test_pairs}

    # vocabularies come from the training split only, with min_freq=2
    train_src_counts = collections.Counter(t for s, _ in nmt.train_pairs for t in s)
    train_tgt_counts = collections.Counter(t for _, t in nmt.train_pairs for t in t)
    assert nmt.src_vocab.idx_to_token[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert len(nmt.src_vocab) == 4 + sum(n >= 2 for n in train_src_counts.values())
    assert len(nmt.tgt_vocab) == 4 + sum(n >= 2 for n in train_tgt_counts.values())

    pad_src, eos_src = nmt.src_vocab["<pad>"], nmt.src_vocab["<eos>"]
    pad_tgt, eos_tgt = nmt.tgt_vocab["<pad>"], nmt.tgt_vocab["<eos>"]
    seen = 0
    for loader in (nmt.train_loader(), nmt.val_loader()):
        for src, src_len, tgt, tgt_len in loader:
            b = src.shape[0]
            assert 1 <= b <= batch_size
            assert src.shape == tgt.shape == (b, num_steps)
            assert src_len.shape == tgt_len.shape == (b,)
            assert all(x.dtype == torch.long for x in (src, src_len, tgt, tgt_len))
            for array, lens, pad, eos in ((src, src_len, pad_src, eos_src), (tgt, tgt_len, pad_tgt, eos_tgt)):
                assert int(lens.min()) >= 2 and int(lens.max()) <= num_steps
                positions = torch.arange(num_steps)
                is_pad = positions >= lens.unsqueeze(1)
                assert torch.all(array[is_pad] == pad)
                assert torch.all(array[~is_pad] != pad)
                assert torch.all(array.gather(1, (lens - 1).unsqueeze(1)).squeeze(1) == eos)
            seen += b
    assert seen == len(nmt.train_pairs) + len(nmt.val_pairs)

    # shuffling is seeded: a fresh object with the same seed gives the same batches, and
    # successive epochs of one object give different orders
    again = load_data_nmt(batch_size, num_steps, cache_dir=SAMPLE_DIR, seed=0)
    twin = load_data_nmt(batch_size, num_steps, cache_dir=SAMPLE_DIR, seed=0)
    epoch1 = next(iter(again.train_loader()))[0]
    assert torch.equal(epoch1, next(iter(twin.train_loader()))[0])
    assert not torch.equal(epoch1, next(iter(again.train_loader()))[0])
    in_order = next(iter(again.train_loader(shuffle=False)))
    expected = again.arrays(again.train_pairs[:batch_size])
    assert all(torch.equal(a, e) for a, e in zip(in_order, expected))
    assert not torch.equal(epoch1, in_order[0])


@needs_sample
def test_sample_num_examples_takes_first_lines():
    nmt = load_data_nmt(8, 9, cache_dir=SAMPLE_DIR, num_examples=600, seed=0)
    all_pairs = nmt.train_pairs + nmt.val_pairs + nmt.test_pairs
    assert len(all_pairs) == 600
    text = load_fra_eng_text(cache_dir=SAMPLE_DIR)
    first = list(zip(*tokenize_nmt(preprocess_nmt(text), max_examples=600)))
    assert sorted(map(repr, all_pairs)) == sorted(map(repr, first))
    assert ["go", "."] in [list(s) for s, _ in all_pairs]


def test_the_shuffling_generator_can_be_saved_and_restored(tmp_path):
    (tmp_path / "fra-eng").mkdir()
    (tmp_path / "fra-eng" / "fra.txt").write_text(FAKE_FRA * 20, encoding="utf-8")
    nmt = load_data_nmt(batch_size=4, num_steps=5, cache_dir=tmp_path, min_freq=1, val_frac=0.0, test_frac=0.0)
    state = nmt.generator.get_state()
    first = [batch[0].tolist() for batch in nmt.train_loader()]
    nmt.generator.set_state(state)
    again = [batch[0].tolist() for batch in nmt.train_loader()]
    assert first == again
    assert [batch[0].tolist() for batch in nmt.train_loader()] != first  # the generator moved on
