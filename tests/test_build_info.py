"""book/_ext/build_info.py: the site records the mode its notebooks ran in.

The handler runs at the very end of every build, so a mistake in it fails the whole (30-minute)
full-mode build after every notebook has run; this checks it in milliseconds, in both modes.
"""

import importlib.util
import json
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_extension():
    spec = importlib.util.spec_from_file_location("build_info", ROOT / "book" / "_ext" / "build_info.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_app(outdir: Path, fmt: str = "html"):
    return types.SimpleNamespace(outdir=str(outdir), builder=types.SimpleNamespace(format=fmt))


@pytest.mark.parametrize("value, quick", [("1", True), ("", False), ("0", False)])
def test_build_info_records_the_mode_of_the_environment(tmp_path, monkeypatch, value, quick):
    module = _load_extension()
    monkeypatch.setenv("D2L_ATTN_QUICK", value)
    module._write(_fake_app(tmp_path), None)
    info = json.loads((tmp_path / module.FILE).read_text(encoding="utf-8"))
    assert info["quick_mode"] is quick
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["built_utc"])


def test_build_info_is_not_written_for_failed_or_non_html_builds(tmp_path):
    module = _load_extension()
    module._write(_fake_app(tmp_path), RuntimeError("build failed"))
    module._write(_fake_app(tmp_path, fmt="latex"), None)
    assert not (tmp_path / module.FILE).exists()


def test_build_info_is_registered_in_the_book_config():
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "build_info" in config
