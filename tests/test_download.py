"""Tests for d2l_attn.data.download: the data directory, checksum-verified atomic downloads, safe zip extraction."""

from __future__ import annotations

import importlib
import stat
import zipfile
from pathlib import Path

import pytest
from net_helpers import FAKE_FRA, closed_port_url, files_under, sha1, zip_bytes

from d2l_attn.data import data_dir, download, extract_zip, load_fra_eng_text

pytestmark = pytest.mark.usefixtures("offline_env")


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
    payload = zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    (www / "fra-eng.zip").write_bytes(payload)
    cache = tmp_path / "cache"
    url = f"{base}/fra-eng.zip"

    path = download(url, sha1(payload), cache_dir=cache)
    assert path == cache / "fra-eng.zip" and path.read_bytes() == payload
    assert server.requests == ["/fra-eng.zip"]
    assert files_under(cache) == ["fra-eng.zip"]  # no temporary file left behind

    # second call: served from the cache even with the server stopped
    server.stop()
    assert download(url, sha1(payload), cache_dir=cache) == path
    assert len(server.requests) == 1

    text = load_fra_eng_text(cache_dir=cache, url=url, sha1=sha1(payload))
    assert text == FAKE_FRA
    assert (cache / "fra-eng" / "fra.txt").read_text(encoding="utf-8") == FAKE_FRA


def test_default_cache_dir_is_data_dir(monkeypatch, tmp_path):
    payload = b"hello"
    source = tmp_path / "hello.bin"
    source.write_bytes(payload)
    monkeypatch.setenv("D2L_ATTN_DATA", str(tmp_path / "d2l-data"))
    path = download(source.as_uri(), sha1(payload))
    assert path == tmp_path / "d2l-data" / "hello.bin"


@pytest.mark.parametrize("transport", ["http", "file"])
def test_checksum_mismatch_raises_and_leaves_nothing(http_server, tmp_path, transport):
    base, www, _ = http_server
    payload = zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8")})
    (www / "fra-eng.zip").write_bytes(payload)
    url = f"{base}/fra-eng.zip" if transport == "http" else (www / "fra-eng.zip").as_uri()
    cache = tmp_path / "cache"
    wrong = "1" * 40
    with pytest.raises(ValueError) as info:
        download(url, wrong, cache_dir=cache)
    message = str(info.value)
    assert url in message and wrong in message and sha1(payload) in message
    assert files_under(cache) == []


def test_cached_file_with_wrong_checksum_is_downloaded_again(http_server, tmp_path):
    base, www, server = http_server
    payload = b"the real bytes"
    (www / "blob.bin").write_bytes(payload)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"stale or tampered")
    path = download(f"{base}/blob.bin", sha1(payload), cache_dir=cache)
    assert path.read_bytes() == payload
    assert server.requests == ["/blob.bin"]
    assert files_under(cache) == ["blob.bin"]


def test_unreachable_url_raises_runtime_error_with_offline_hint(tmp_path):
    cache = tmp_path / "cache"
    url = closed_port_url()
    with pytest.raises(RuntimeError) as info:
        download(url, "0" * 40, cache_dir=cache, timeout=5, offline_name="fra-eng/fra.txt")
    message = str(info.value)
    assert url in message
    assert "fra-eng/fra.txt" in message and str(cache) in message and "D2L_ATTN_DATA" in message
    assert files_under(cache) == []
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
    payload = zip_bytes(tmp_path, {"fra-eng/fra.txt": FAKE_FRA.encode("utf-8") * 50})
    truncated = payload[: len(payload) // 2]
    (www / "fra-eng.zip").write_bytes(truncated)
    cache = tmp_path / "cache"
    path = download(f"{base}/fra-eng.zip", sha1(truncated), cache_dir=cache)  # checksum is fine
    with pytest.raises(ValueError, match="not a valid zip archive"):
        extract_zip(path, cache / "out")
    assert not (cache / "out").exists()
    with pytest.raises(ValueError, match="not a valid zip archive"):
        load_fra_eng_text(cache_dir=cache, url=f"{base}/fra-eng.zip", sha1=sha1(truncated))
    assert not (cache / "fra-eng").exists()


def test_corrupt_member_data_is_rejected_before_writing(tmp_path):
    payload = bytearray(zip_bytes(tmp_path, {"a.txt": b"A" * 1000, "b.txt": b"hello world " * 100}))
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
    payload = zip_bytes(tmp_path, {"fra-eng/fra.txt": b"ok\tok\n", evil: b"pwned"})
    archive = tmp_path / "evil.zip"
    archive.write_bytes(payload)
    with zipfile.ZipFile(archive) as check:  # the member name really is stored unsanitized
        assert evil in check.namelist()
    target = tmp_path / "sandbox" / "target"
    target.parent.mkdir()
    before = files_under(tmp_path)
    with pytest.raises(ValueError) as info:
        extract_zip(archive, target)
    assert evil in str(info.value)
    assert ("absolute path" if evil.startswith("/") else "outside") in str(info.value)
    assert files_under(tmp_path) == before  # nothing written, not even the harmless member
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
    archive.write_bytes(zip_bytes(tmp_path, {"fra-eng/fra.txt": b"Go.\tVa !\n", "top.txt": b"x"}))
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
