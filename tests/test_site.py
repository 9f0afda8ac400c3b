"""The rendered book, checked in a real browser (headless Debian Chromium driven by Playwright).

One module builds the book once (``-W``, fresh execution cache, quick mode) into a temporary
directory, serves it on 127.0.0.1, and then checks it as a reader's browser sees it:

* the build has no warnings, every page in ``_toc.yml`` is there, chapter figures exist, every
  chapter's Colab and Binder links point at the configured repository, branch and the notebook's
  real path, and the bibliography lists what the chapters cite;
* in Chromium, every page: math typeset by MathJax (no raw TeX left, no TeX errors), every image
  loaded, no failed or ``>= 400`` requests, **no request leaving 127.0.0.1** (the site is
  self-contained: MathJax and the widget manager are served from ``_static/vendor``), no console
  errors (theme noise is allow-listed below, with the reason);
* every chapter has a figure that responds without a kernel (``d2l_attn.widgets.frame_slider``):
  pressing the slider's arrow key switches the frame;
* the search page finds a term.

A screenshot of every page is written to ``.artifacts/screenshots/`` (or ``$D2L_ATTN_ARTIFACTS``)
for a human to look at; CI keeps them as artifacts. The build's log, with each notebook's
execution time, is kept beside them as ``site-build.log`` (to find a notebook that ran slowly).

The browser part needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs
it). Without it the browser tests are *skipped with that reason*, unless
``D2L_ATTN_BROWSER_TESTS=required`` (set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import html as html_lib
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
ARTIFACT_ROOT = Path(os.environ.get("D2L_ATTN_ARTIFACTS", ROOT / ".artifacts"))
ARTIFACTS = ARTIFACT_ROOT / "screenshots"


def _toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


TOC_PAGES = _toc_files(TOC)
# every page a reader can reach: the toc, Sphinx's own pages, and the redirecting index.html
SITE_PAGES = ["index", *TOC_PAGES, "genindex", "search"]

# Console messages that are not our bugs. Each entry: (substring, why it is harmless).
CONSOLE_ALLOW = [
    # pydata-sphinx-theme reads the theme mode from localStorage; a fresh browser profile has
    # none, the theme logs this as an *error* and falls back to "auto" (light/dark from the OS).
    ("Got invalid theme mode", "pydata-sphinx-theme, empty localStorage on first visit"),
]


# --------------------------------------------------------------------------------------------
# The build (shared by every test in this module)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)
    (ARTIFACT_ROOT / "site-build.log").write_text(
        f"{' '.join(command)}\nrc={result.returncode} in {time.monotonic() - started:.0f} s\n\n"
        f"{result.stdout}\n--- stderr ---\n{result.stderr}", encoding="utf-8")
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"jupyter-book build -W failed:\n{log}"
    warnings = [line for line in result.stderr.splitlines() if "warning" in line.lower()
                and "Kernel is running over TCP" not in line]
    assert not warnings, log
    return out / "_build" / "html"


def test_every_page_is_built(built_book):
    for page in ["index", *TOC_PAGES]:
        assert (built_book / f"{page}.html").exists(), page
    for nb in NOTEBOOKS:
        assert f"chapters/{nb.stem}" in TOC_PAGES, f"{nb.name} is not in _toc.yml"


def test_vendored_assets_are_served_by_the_site(built_book):
    vendor = built_book / "_static" / "vendor"
    for path in ["mathjax/tex-mml-chtml.js", "require.js", "require-config.js", "html-manager/embed-amd.js"]:
        assert (vendor / path).is_file(), path
    # browsers ask every site for /favicon.ico (the redirecting index.html has no icon link)
    assert (built_book / "favicon.ico").is_file()
    # and not from a root _static/, whose every script Jupyter Book would inject into every page
    assert not (ROOT / "_static").exists()
    page = (built_book / "chapters" / f"{NOTEBOOKS[0].stem}.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_page_has_figures_and_launch_links(built_book, nb):
    page = (built_book / "chapters" / f"{nb.stem}.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="(\.\./_images/[^"]+)"', page)
    assert len(images) >= 2, "chapter figures are missing"
    for src in images:
        assert (built_book / "chapters" / src).resolve().exists(), src
    # figures are rendered as images, not as their text repr
    without_widget_state = re.sub(
        r'<script type="application/vnd.jupyter.widget-state\+json">.*?</script>', "", page, flags=re.S
    )
    assert "&lt;Figure size" not in without_widget_state
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    path = f"{CONFIG['repository'].get('path_to_book') or ''}chapters/{nb.name}".lstrip("/")
    assert (ROOT / path).exists()
    text = html_lib.unescape(page)
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
    assert colab in text, "Colab link does not point at the configured repository/branch/path"
    binder = f"https://mybinder.org/v2/gh/{repo}/{branch}?urlpath=tree/{path}"
    assert binder in text, "Binder link does not point at the configured repository/branch/path"
    # citations resolved, no raw roles left in the text
    assert "{cite" not in page and "{ref}" not in page and "{term}" not in page


def test_bibliography_lists_cited_works(built_book):
    page = (built_book / "book" / "references.html").read_text(encoding="utf-8").lower()
    for title in ["Neural Machine Translation by Jointly Learning to Align and Translate", "Attention Is All You Need"]:
        assert title.lower() in page


# --------------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------------


def _chromium() -> str | None:
    return os.environ.get("D2L_ATTN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(built_book):
    """The built site served on 127.0.0.1 (a random free port); yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=built_book))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        reason = "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("D2L_ATTN_BROWSER_TESTS") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # The flags keep Chromium from phoning home (component updates, sync, DNS for Google hosts),
    # which on a closed network floods the log with refused connections.
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=flags)
        yield chromium
        chromium.close()


class PageLog:
    """Everything a page did that a reader would notice: errors, failed and external requests."""

    def __init__(self, page, base: str):
        self.console_errors: list[str] = []
        self.failed: list[str] = []
        self.external: list[str] = []
        host = urlparse(base).netloc
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: self.failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
        page.on("request", lambda r: self.external.append(r.url)
                if urlparse(r.url).scheme in ("http", "https", "ws", "wss") and urlparse(r.url).netloc != host
                else None)

    def unexpected_console_errors(self) -> list[str]:
        return [m for m in self.console_errors if not any(allowed in m for allowed, _ in CONSOLE_ALLOW)]


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log = PageLog(page, url)
    page.goto(url, wait_until="networkidle")
    # MathJax 3 typesets after load; wait for it where the page uses it
    page.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    page.wait_for_load_state("networkidle")
    return context, page, log


@pytest.mark.parametrize("name", SITE_PAGES)
def test_page_in_browser(browser, site, name):
    context, page, log = _open(browser, f"{site}/{name}.html")
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name.replace('/', '__')}.png"), full_page=True)
        # math: every MathJax target typeset, none left as TeX, no TeX errors
        math = page.evaluate("""() => {
            const targets = Array.from(document.querySelectorAll('.math'));
            return {
              total: targets.length,
              raw: targets.filter(e => !e.querySelector('mjx-container'))
                          .map(e => e.textContent.slice(0, 80)),
              errors: Array.from(document.querySelectorAll('mjx-merror'))
                          .map(e => e.getAttribute('data-mjx-error') || e.textContent),
            };
        }""")
        assert not math["raw"], f"raw TeX left on {name}: {math['raw'][:5]}"
        assert not math["errors"], f"TeX errors on {name}: {math['errors'][:5]}"
        if name.startswith("chapters/") or name == "book/notation":
            assert math["total"] > 0, f"{name} shows no typeset math"
        # images: each one decoded with a real size (broken images have naturalWidth 0)
        broken = page.evaluate("""() => Array.from(document.images)
            .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120))""")
        assert not broken, f"images that did not load on {name}: {broken}"
        assert not log.failed, f"failed requests on {name}: {log.failed}"
        assert not log.external, f"requests leaving the site on {name} (the book must read offline): {log.external}"
        assert not log.unexpected_console_errors(), f"console errors on {name}: {log.unexpected_console_errors()}"
    finally:
        context.close()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_static_interactive_figure_responds(browser, site, nb):
    """A frame slider (widgets.frame_slider) changes the shown frame with no kernel behind it."""
    context, page, log = _open(browser, f"{site}/chapters/{nb.stem}.html")
    try:
        frame_slider = page.locator(".widget-vbox:has(> .widget-tab):has(> .widget-slider)").first
        frame_slider.wait_for(state="visible", timeout=20_000)
        state = """el => ({
            tab: el.querySelector('.lm-TabBar-tab.lm-mod-current')?.textContent,
            readout: el.querySelector('.widget-readout')?.textContent,
            image: Array.from(el.querySelectorAll('img')).filter(i => i.offsetParent !== null)
                        .map(i => i.src)[0],
        })"""
        before = frame_slider.evaluate(state)
        assert before["tab"] and before["image"], before
        handle = frame_slider.locator(".noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(
            "([el, tab]) => el.querySelector('.lm-TabBar-tab.lm-mod-current')?.textContent !== tab",
            arg=[frame_slider.element_handle(), before["tab"]], timeout=5_000,
        )
        after = frame_slider.evaluate(state)
        assert after["tab"] != before["tab"], (before, after)
        assert after["readout"] == after["tab"], "slider and shown frame disagree"
        assert after["image"] != before["image"], "the shown image did not change"
        page.screenshot(path=str(ARTIFACTS / f"{nb.stem}__frame_slider.png"), full_page=False)
        assert not log.unexpected_console_errors(), log.unexpected_console_errors()
    finally:
        context.close()


def test_search_finds_a_term(browser, site):
    context, page, log = _open(browser, f"{site}/search.html?q=Nadaraya")
    try:
        page.wait_for_selector("#search-results ul.search li", timeout=20_000)
        hits = page.locator("#search-results ul.search li a").all_inner_texts()
        assert hits, "search found nothing"
        assert any("attention" in h.lower() or "glossary" in h.lower() for h in hits), hits
        assert not log.failed and not log.external
    finally:
        context.close()
