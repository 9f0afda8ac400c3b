"""Shared helpers for the data tests: zip builders, checksums, a closed port, a fake corpus. The HTTP
server on 127.0.0.1 and the offline environment are fixtures in tests/conftest.py.

Network use is limited to the local server and file:// URLs; every file is written under ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import socket
import zipfile
from pathlib import Path


def sha1(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest()


def zip_bytes(tmp_path: Path, members: dict[str, bytes], name: str = "archive.zip") -> bytes:
    """Build a zip with the given member names (written verbatim, no sanitizing) and return its bytes."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, payload in members.items():
            archive.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), payload)
    payload = path.read_bytes()
    path.unlink()
    return payload


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/fra-eng.zip"


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


FAKE_FRA = (
    "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)\n"
    "Hi.\tSalut !\n"
    "Run!\tCours\u202f!\n"
    "Run!\tCourez\u202f!\n"
    "a line without a tab\n"
    "I won!\tJ'ai gagné !\n"
)
