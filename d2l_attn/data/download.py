r"""Downloading data safely: checksums, atomic writes, a cache directory, safe zip extraction.

Used by every dataset of the book (:mod:`d2l_attn.data.nmt` for chapters 4 and 7, and the text
and image datasets of chapters 9 and 10).

Where the data lives: :func:`data_dir` is ``$D2L_ATTN_DATA`` if set, else a per-user cache
(``$XDG_CACHE_HOME/d2l_attn`` or ``~/.cache/d2l_attn``). Loaders look there first and use a file
that is already present as-is, so the tests run offline with ``D2L_ATTN_DATA=../shared/data``.

Download safety (:func:`download`, :func:`extract_zip`):

* a cached file is trusted only if its SHA-1 (or, where the maintainers publish only that, its
  MD5) matches; otherwise it is fetched again; a download larger than ``max_bytes`` is refused;
* a download is streamed to a temporary file in the cache directory, its SHA-1 is checked, and
  only then is it moved into place atomically (``os.replace``): an interrupted or corrupted
  download never leaves a file under the final name, and a mismatch removes the temporary file;
* an archive is checked completely before anything is written: members that would land outside
  the target directory (absolute paths, ``..``) and symbolic links are refused, and a corrupt or
  truncated archive raises ``ValueError`` rather than extracting half of itself.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

__all__ = ["data_dir", "sha1_of_file", "download", "extract_zip", "MAX_EXTRACTED_BYTES"]

_ALLOWED_SCHEMES = ("http", "https", "file")
_CHUNK_BYTES = 1 << 20
_SHA1_RE = re.compile(r"[0-9a-f]{40}")
_MD5_RE = re.compile(r"[0-9a-f]{32}")


def data_dir() -> Path:
    """The data directory: ``$D2L_ATTN_DATA`` if set, else ``$XDG_CACHE_HOME/d2l_attn`` or ``~/.cache/d2l_attn``.

    The directory is not created here; :func:`download` creates it when it first writes.
    """
    explicit = os.environ.get("D2L_ATTN_DATA")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "d2l_attn"


def sha1_of_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-1 digest of the file at ``path``, read in 1 MiB chunks."""
    return _digest_of_file(path, "sha1")


def _digest_of_file(path: str | os.PathLike[str], algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _offline_hint(directory: Path, needed: str) -> str:
    return (
        f"To work offline, place {needed} in the data directory {str(directory)!r} "
        f"or set the environment variable D2L_ATTN_DATA to a directory that contains {needed}."
    )


def download(
    url: str,
    sha1: str | None = None,
    *,
    md5: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    timeout: float = 30,
    offline_name: str | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Return the path of ``url``'s file in ``cache_dir``, downloading it if needed.

    A file already in the cache is returned without touching the network if its SHA-1 equals
    ``sha1``; a cached file with another checksum is downloaded again. Downloads (``http://``,
    ``https://`` or ``file://``) stream into a temporary file in ``cache_dir``; the SHA-1 is checked
    and the file is then moved into place atomically.

    Args:
        url: where to fetch the file.
        sha1: expected hex SHA-1 of the file (40 hex digits).
        md5: instead of ``sha1``, the expected hex MD5 (32 hex digits), for datasets whose
            maintainers publish MD5 checksums only (Fashion-MNIST). Exactly one must be given.
        cache_dir: directory to store the file in (default :func:`data_dir`); created if missing.
        filename: name of the file in ``cache_dir`` (default: the last component of the URL path).
        timeout: network timeout in seconds.
        offline_name: what a reader without network should place in the data directory instead
            (named in the error message; default ``filename``), e.g. ``"fra-eng/fra.txt"``.
        max_bytes: refuse (``ValueError``) a download that grows past this many bytes.

    Raises:
        ValueError: bad arguments, or a downloaded file whose SHA-1 is not ``sha1`` (the message
            names the URL, the expected and the actual SHA-1; no partial file is left behind).
        RuntimeError: the URL could not be fetched (the message says how to work offline).
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise ValueError(f"url must be an http://, https:// or file:// URL, got {url!r}")
    if (sha1 is None) == (md5 is None):
        raise ValueError("pass exactly one checksum: sha1 (40 hex digits) or md5 (32 hex digits)")
    if md5 is not None:
        if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5.lower()):
            raise ValueError(f"md5 must be 32 hexadecimal digits, got {md5!r}")
        algorithm, expected = "md5", md5.lower()
    else:
        if not isinstance(sha1, str) or not _SHA1_RE.fullmatch(sha1.lower()):
            raise ValueError(f"sha1 must be 40 hexadecimal digits, got {sha1!r}")
        algorithm, expected = "sha1", sha1.lower()
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive int or None, got {max_bytes!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be a finite positive number of seconds, got {timeout!r}")
    if filename is None:
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename:
            raise ValueError(f"cannot infer a file name from url {url!r}; pass filename=")
    if not filename or filename in (".", "..") or "/" in filename or os.sep in filename or "\x00" in filename:
        raise ValueError(f"filename must be a plain file name (no directories, no null byte), got {filename!r}")

    directory = Path(cache_dir) if cache_dir is not None else data_dir()
    target = directory / filename
    if target.is_file() and _digest_of_file(target, algorithm) == expected:
        return target
    if target.is_dir():
        raise ValueError(
            f"cannot download to {str(target)!r}: it is a directory (pass another filename= or cache_dir=)"
        )

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(f"cannot create the data directory {str(directory)!r}: {exc}") from exc

    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=directory)
    except OSError as exc:  # e.g. a read-only cache directory
        raise RuntimeError(
            f"cannot write to the data directory {str(directory)!r} ({exc}); set D2L_ATTN_DATA to a writable directory"
        ) from exc
    tmp_path = Path(tmp_name)
    digest = hashlib.new(algorithm)
    size = 0
    try:
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ValueError(f"{url} is larger than max_bytes={max_bytes:,}; the download was discarded")
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # HTTP errors, timeouts
            raise RuntimeError(
                f"could not download {url} ({exc}). {_offline_hint(directory, offline_name or filename)}"
            ) from exc
        actual = digest.hexdigest()
        if actual != expected:
            raise ValueError(
                f"checksum mismatch for {url}: expected {algorithm} {expected}, got {actual}; "
                "the download was discarded"
            )
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


#: compression methods zipfile can read (an archive with another one is refused before anything is written)
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)

#: the most an archive may expand to (the largest dataset of the book, WikiText-2, is ~13 MB)
MAX_EXTRACTED_BYTES = 256 * 2**20


def extract_zip(
    zip_path: str | os.PathLike[str], target_dir: str | os.PathLike[str], max_bytes: int = MAX_EXTRACTED_BYTES
) -> Path:
    """Extract the zip archive ``zip_path`` into ``target_dir`` safely and return ``target_dir``.

    Before anything is written, every member is checked: a member whose path resolves outside
    ``target_dir`` (an absolute path, ``..`` components, a drive letter) or that is a symbolic
    link raises ``ValueError`` naming the member; an archive whose members expand to more than
    ``max_bytes`` in all (a "zip bomb") is refused (zipfile never reads past a member's declared
    size, so the declared sizes bound what is written); and the CRC of every member is verified,
    so a corrupt or truncated archive raises ``ValueError`` ("not a valid zip archive") and leaves
    nothing behind.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise ValueError(f"zip_path: no zip archive at {str(zip_path)!r}")
    target = Path(target_dir)
    root = target.resolve()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            for info in members:
                name = info.filename
                if _is_symlink(info):
                    raise ValueError(f"refusing to extract {str(zip_path)!r}: member {name!r} is a symbolic link")
                if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
                    raise ValueError(f"refusing to extract {str(zip_path)!r}: member {name!r} has an absolute path")
                if info.flag_bits & 0x1:
                    raise ValueError(f"refusing to extract {str(zip_path)!r}: member {name!r} is encrypted")
                if info.compress_type not in _ZIP_METHODS:
                    raise ValueError(
                        f"refusing to extract {str(zip_path)!r}: member {name!r} uses compression method "
                        f"{info.compress_type}, which zipfile cannot read (stored, deflate, bzip2 and lzma can be)"
                    )
                destination = (root / name).resolve()
                if destination != root and root not in destination.parents:
                    raise ValueError(
                        f"refusing to extract {str(zip_path)!r}: member {name!r} would be written outside {str(root)!r}"
                    )
            total = sum(info.file_size for info in members)
            if total > max_bytes:
                raise ValueError(
                    f"refusing to extract {str(zip_path)!r}: its members expand to {total:,} bytes, "
                    f"more than max_bytes={max_bytes:,}"
                )
            bad_member = archive.testzip()  # reads every member and checks its CRC
            if bad_member is not None:
                raise zipfile.BadZipFile(f"bad CRC for member {bad_member!r}")
            target.mkdir(parents=True, exist_ok=True)
            archive.extractall(root)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"{str(zip_path)!r} is not a valid zip archive (corrupt or truncated): {exc}") from exc
    return target
