"""The code style is enforced, not suggested: ruff's lint rules and its formatter (configured in
pyproject.toml) must both pass on the library, the tests, the benchmarks and the book extensions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["d2l_attn", "tests", "benchmarks", "book/_ext", "conftest.py"]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: pip install -r requirements.txt")
    return [exe]


def test_ruff_lint_passes():
    result = subprocess.run([*_ruff(), "check", "--no-cache", *TARGETS], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    result = subprocess.run(
        [*_ruff(), "format", "--check", "--no-cache", *TARGETS], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, "run `ruff format` on:\n" + result.stdout + result.stderr
