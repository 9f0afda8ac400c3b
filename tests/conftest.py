"""Fixtures shared by the test files: a throw-away HTTP server on 127.0.0.1, an offline environment,
and headless Chromium (``browser``: the site tests and the attention view's page test).

(The repository's root conftest.py sets quick mode and the data directory for every test.)
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """Keep urllib off any configured proxy and keep the default data dir inside tmp_path."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        return super().do_GET()

    def log_message(self, format, *args):
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


def _book_pdf():
    """book/pdf.py (not a package): its Chromium finder, flags and toc walk serve the tests too."""
    spec = importlib.util.spec_from_file_location("book_pdf", ROOT / "book" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def browser():
    book_pdf = _book_pdf()
    if book_pdf.find_chromium() is None:
        reason = "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("D2L_ATTN_BROWSER_TESTS") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = book_pdf.launch(playwright)
        yield chromium
        chromium.close()
