"""Tests for d2l_attn.data: safe download/extraction, preprocessing, vocabularies, the real sample.

Network use is limited to a throw-away HTTP server on 127.0.0.1 and file:// URLs; every file is
written under pytest's ``tmp_path``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib
import http.server
import os
import socket
import stat
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from d2l_attn import data
from d2l_attn.data import (
    NMTData,
    Vocab,
    build_array_nmt,
    data_dir,
    download,
    extract_zip,
    group_references,
    load_data_nmt,
    load_fra_eng_text,
    preprocess_nmt,
    split_by_source,
    tokenize_nmt,
    truncate_pad,
)

FAKE_FRA = (
    "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)\n"
    "Hi.\tSalut !\n"
    "Run!\tCours\u202f!\n"
    "Run!\tCourez\u202f!\n"
    "a line without a tab\n"
    "I won!\tJ'ai gagné !\n"
)


def _sha1(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest()


def _zip_bytes(tmp_path: Path, members: dict[str, bytes], name: str = "archive.zip") -> bytes:
    """Build a zip with the given member names (written verbatim, no sanitizing) and return its bytes."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, payload in members.items():
            archive.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), payload)
    payload = path.read_bytes()
    path.unlink()
    return payload


@pytest.fixture(autouse=True)
def _no_proxy_and_no_user_cache(monkeypatch, tmp_path):
    """Keep urllib off any configured proxy and keep the default data dir inside tmp_path."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        return super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 (silence the per-request log)
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serve ``tmp_path / 'www'`` on 127.0.0.1 (random port); yields (base_url, www_dir, server)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_CountingHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stopped = False

    def stop():
        nonlocal stopped
        if not stopped:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            stopped = True

    server.stop = stop  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", www, server
    finally:
        stop()


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/fra-eng.zip"


def _files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ------------------------------------------------------------------------------------------
# data_dir
# ------------------------------------------------------------------------------------------


def test_data_dir_prefers_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("D2L_ATTN_DATA", str(tmp_path / "explicit"))
    assert data_dir() == tmp_path / "explicit"
    monkeypatch.delenv("D2L_ATTN_DATA")
    assert data_dir() == tmp_path / "xdg-cache" / "d2l_attn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_dir() == tmp_path / "home" / ".cache" / "d2l_attn"
    assert not (tmp_path / "home").exists()  # nothing is created just by asking


# ------------------------------------------------------------------------------------------
# download / extract / load, over HTTP on 127.0.0.1 and over file://
# ------------------------------------------------------------------------------------------


def test_http_download_verifies_extracts_loads_then_uses_cache(http_server, tmp_path):
    base, www, server = http_server
    payload = _zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    (www / "fra-eng.zip").write_bytes(payload)
    cache = tmp_path / "cache"
    url = f"{base}/fra-eng.zip"

    path = download(url, _sha1(payload), cache_dir=cache)
    assert path == cache / "fra-eng.zip" and path.read_bytes() == payload
    assert server.requests == ["/fra-eng.zip"]
    assert _files_under(cache) == ["fra-eng.zip"]  # no temporary file left behind

    # second call: served from the cache even with the server stopped
    server.stop()
    assert download(url, _sha1(payload), cache_dir=cache) == path
    assert len(server.requests) == 1

    text = load_fra_eng_text(cache_dir=cache, url=url, sha1=_sha1(payload))
    assert text == FAKE_FRA
    assert (cache / "fra-eng" / "fra.txt").read_text(encoding="utf-8") == FAKE_FRA


def test_load_fra_eng_text_downloads_when_missing_and_reads_offline_after(http_server, tmp_path):
    base, www, server = http_server
    payload = _zip_bytes(tmp_path, {"fra-eng/": b"", "fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    (www / "fra-eng.zip").write_bytes(payload)
    cache = tmp_path / "cache"
    assert load_fra_eng_text(cache_dir=cache, url=f"{base}/fra-eng.zip", sha1=_sha1(payload)) == FAKE_FRA
    assert server.requests == ["/fra-eng.zip"]
    server.stop()
    # the extracted text is used as-is: a dead URL and a wrong checksum do not matter any more
    assert load_fra_eng_text(cache_dir=cache, url=_closed_port_url(), sha1="0" * 40) == FAKE_FRA


def test_file_url_download_and_load(tmp_path):
    payload = _zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    source = tmp_path / "src" / "fra-eng.zip"
    source.parent.mkdir()
    source.write_bytes(payload)
    cache = tmp_path / "cache"
    path = download(source.as_uri(), _sha1(payload), cache_dir=cache)
    assert path.read_bytes() == payload
    source.unlink()  # the cached copy is used from now on
    assert download(source.as_uri(), _sha1(payload), cache_dir=cache) == path
    assert load_fra_eng_text(cache_dir=cache, url=source.as_uri(), sha1=_sha1(payload)) == FAKE_FRA


def test_default_cache_dir_is_data_dir(monkeypatch, tmp_path):
    payload = b"hello"
    source = tmp_path / "hello.bin"
    source.write_bytes(payload)
    monkeypatch.setenv("D2L_ATTN_DATA", str(tmp_path / "d2l-data"))
    path = download(source.as_uri(), _sha1(payload))
    assert path == tmp_path / "d2l-data" / "hello.bin"


@pytest.mark.parametrize("transport", ["http", "file"])
def test_checksum_mismatch_raises_and_leaves_nothing(http_server, tmp_path, transport):
    base, www, _ = http_server
    payload = _zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    (www / "fra-eng.zip").write_bytes(payload)
    url = f"{base}/fra-eng.zip" if transport == "http" else (www / "fra-eng.zip").as_uri()
    cache = tmp_path / "cache"
    wrong = "1" * 40
    with pytest.raises(ValueError) as info:
        download(url, wrong, cache_dir=cache)
    message = str(info.value)
    assert url in message and wrong in message and _sha1(payload) in message
    assert _files_under(cache) == []


def test_cached_file_with_wrong_checksum_is_downloaded_again(http_server, tmp_path):
    base, www, server = http_server
    payload = b"the real bytes"
    (www / "blob.bin").write_bytes(payload)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"stale or tampered")
    path = download(f"{base}/blob.bin", _sha1(payload), cache_dir=cache)
    assert path.read_bytes() == payload
    assert server.requests == ["/blob.bin"]
    assert _files_under(cache) == ["blob.bin"]


def test_unreachable_url_raises_runtime_error_with_offline_hint(tmp_path):
    cache = tmp_path / "cache"
    url = _closed_port_url()
    with pytest.raises(RuntimeError) as info:
        download(url, "0" * 40, cache_dir=cache, timeout=5, offline_name="fra-eng/fra.txt")
    message = str(info.value)
    assert url in message
    assert "fra-eng/fra.txt" in message and str(cache) in message and "D2L_ATTN_DATA" in message
    assert _files_under(cache) == []
    # the same error reaches users of load_fra_eng_text
    with pytest.raises(RuntimeError, match="D2L_ATTN_DATA"):
        load_fra_eng_text(cache_dir=cache, url=url, sha1="0" * 40)


def test_missing_file_url_raises_runtime_error(tmp_path):
    with pytest.raises(RuntimeError, match="nope.zip"):
        download((tmp_path / "nope.zip").as_uri(), "0" * 40, cache_dir=tmp_path / "cache")


def test_http_404_raises_runtime_error(http_server, tmp_path):
    base, _, _ = http_server
    with pytest.raises(RuntimeError, match="404"):
        download(f"{base}/missing.zip", "0" * 40, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(url="ftp://example.invalid/x.zip", sha1="0" * 40), "url"),
        (dict(url="", sha1="0" * 40), "url"),
        (dict(url="file:///tmp/x.zip", sha1="abc"), "sha1"),
        (dict(url="file:///tmp/x.zip", sha1="0" * 40, timeout=0), "timeout"),
        (dict(url="file:///tmp/x.zip", sha1="0" * 40, filename="../x.zip"), "filename"),
        (dict(url="file:///tmp/", sha1="0" * 40), "filename"),
    ],
)
def test_download_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        download(cache_dir=tmp_path / "cache", **kwargs)
    assert not (tmp_path / "cache").exists()


def test_truncated_zip_with_matching_sha1_is_rejected_on_extraction(http_server, tmp_path):
    base, www, _ = http_server
    payload = _zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8") * 50})
    truncated = payload[: len(payload) // 2]
    (www / "fra-eng.zip").write_bytes(truncated)
    cache = tmp_path / "cache"
    path = download(f"{base}/fra-eng.zip", _sha1(truncated), cache_dir=cache)  # checksum is fine
    with pytest.raises(ValueError, match="not a valid zip archive"):
        extract_zip(path, cache / "out")
    assert not (cache / "out").exists()
    with pytest.raises(ValueError, match="not a valid zip archive"):
        load_fra_eng_text(cache_dir=cache, url=f"{base}/fra-eng.zip", sha1=_sha1(truncated))
    assert not (cache / "fra-eng").exists()


def test_corrupt_member_data_is_rejected_before_writing(tmp_path):
    payload = bytearray(_zip_bytes(tmp_path, {"a.txt": b"A" * 1000, "b.txt": b"hello world " * 100}))
    # flip bytes inside the compressed data of the first member (its local header is 30 + 5 bytes)
    for offset in range(40, 48):
        payload[offset] ^= 0xFF
    archive = tmp_path / "corrupt.zip"
    archive.write_bytes(bytes(payload))
    with pytest.raises(ValueError, match="not a valid zip archive"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_non_zip_file_is_rejected(tmp_path):
    archive = tmp_path / "plain.zip"
    archive.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="not a valid zip archive"):
        extract_zip(archive, tmp_path / "out")


@pytest.mark.parametrize("evil", ["../evil.txt", "fra-eng/../../evil.txt", "/tmp/d2l_attn_evil_abs.txt"])
def test_path_traversal_members_are_refused_before_writing(tmp_path, evil):
    payload = _zip_bytes(tmp_path, {"fra-eng/fra.txt": b"ok\tok\n", evil: b"pwned"})
    archive = tmp_path / "evil.zip"
    archive.write_bytes(payload)
    with zipfile.ZipFile(archive) as check:  # the member name really is stored unsanitized
        assert evil in check.namelist()
    target = tmp_path / "sandbox" / "target"
    target.parent.mkdir()
    before = _files_under(tmp_path)
    with pytest.raises(ValueError) as info:
        extract_zip(archive, target)
    assert evil in str(info.value)
    assert ("absolute path" if evil.startswith("/") else "outside") in str(info.value)
    assert _files_under(tmp_path) == before  # nothing written, not even the harmless member
    assert not Path("/tmp/d2l_attn_evil_abs.txt").exists()


def test_symlink_members_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("fra-eng/link")
        info.create_system = 3  # Unix, so external_attr carries the file mode
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link") as info_:
        extract_zip(archive, tmp_path / "out")
    assert "fra-eng/link" in str(info_.value)
    assert not (tmp_path / "out").exists()


def test_extract_zip_returns_target_and_writes_members(tmp_path):
    archive = tmp_path / "ok.zip"
    archive.write_bytes(_zip_bytes(tmp_path, {"fra-eng/fra.txt": b"Go.\tVa !\n", "top.txt": b"x"}))
    target = tmp_path / "out"
    assert extract_zip(archive, target) == target
    assert (target / "fra-eng" / "fra.txt").read_bytes() == b"Go.\tVa !\n"
    assert (target / "top.txt").read_bytes() == b"x"


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "bomb.zip"
    # 3 MiB of zeros compress to a few KiB: a small archive that expands a lot
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("a.bin", bytes(2 * 2**20))
        out.writestr("b.bin", bytes(2**20))
    assert archive.stat().st_size < 50_000
    with pytest.raises(ValueError, match=r"expand to 3,145,728 bytes, more than max_bytes=2,097,152"):
        extract_zip(archive, tmp_path / "out", max_bytes=2 * 2**20)
    assert not (tmp_path / "out").exists()
    assert extract_zip(archive, tmp_path / "ok", max_bytes=3 * 2**20) == tmp_path / "ok"  # exactly at the limit
    with pytest.raises(ValueError, match="max_bytes"):
        extract_zip(archive, tmp_path / "x", max_bytes=0)


def test_unwritable_data_directory_gives_a_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    module = importlib.import_module("d2l_attn.data.download")  # (data.download is the function)
    monkeypatch.setattr(module.tempfile, "mkstemp", refuse)  # root ignores chmod; simulate it
    with pytest.raises(RuntimeError, match="cannot write to the data directory.*D2L_ATTN_DATA"):
        download((tmp_path / "x.zip").as_uri(), "0" * 40, cache_dir=tmp_path / "cache")


def test_vocab_refuses_a_bare_string():
    with pytest.raises(ValueError, match="not a single string"):
        Vocab("hello world")
    assert len(Vocab("hello world".split())) == 3  # <unk>, hello, world


def test_zip_without_fra_txt_raises(tmp_path):
    payload = _zip_bytes(tmp_path, {"other/readme.txt": b"nothing here"})
    source = tmp_path / "fra-eng.zip"
    source.write_bytes(payload)
    with pytest.raises(ValueError, match="fra-eng/fra.txt"):
        load_fra_eng_text(cache_dir=tmp_path / "cache", url=source.as_uri(), sha1=_sha1(payload))


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


def test_module_exports_exist():
    for name in data.__all__:
        assert hasattr(data, name), name
