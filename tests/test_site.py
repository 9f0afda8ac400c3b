"""The rendered book, checked in a real browser (headless Debian Chromium driven by Playwright).

One module builds the book once (``-W``, fresh execution cache, quick mode) into a temporary
directory -- or, when ``D2L_ATTN_SITE`` names a site built by README command 1 (full mode, as
published; ``.ci/run`` does this), takes that one -- serves it on 127.0.0.1, and then checks it
as a reader's browser sees it:

* the build has no warnings, every page in ``_toc.yml`` is there, chapter figures exist, every
  chapter's Colab and Binder links point at the configured repository, branch and the notebook's
  real path, and the bibliography lists what the chapters cite;
* in Chromium, every page: math typeset by MathJax (no raw TeX left, no TeX errors), every image
  loaded, no failed or ``>= 400`` requests, **no request leaving 127.0.0.1** (the site is
  self-contained: MathJax and the widget manager are served from ``_static/vendor``), no console
  errors (theme noise is allow-listed below, with the reason);
* every chapter has a figure that responds without a kernel (``d2l_attn.widgets.frame_slider``):
  pressing the slider's arrow key switches the frame;
* the interactive attention view (``d2l_attn.plotting.attention_view``) responds on every chapter
  that shows it: hover, click, keyboard, layer and head switches give the readout computed in
  Python from the weights the page embeds (``tests/attention_view_driver.py``);
* each architecture figure drawn for the book (``book/figures/*.svg``) loads on its page, with
  alt text and a caption;
* the search page finds a term;
* every chapter's exercises answer back without a kernel (``book/_ext/exercises.js`` with the
  rules exported from ``d2l_attn.exercises``): a wrong answer gets the first hint, a second one
  the next hint, the right answer *Correct*; the progress count survives a reload (localStorage)
  and the reset button clears it; code exercises link to the chapter in Colab; no request leaves
  the page. The same checks run from ``file://``, and the browser checker gives the Python
  checker's verdicts on the parity answers (``tests/exercise_cases.py``);
* the practice page (``book/practice``, ``book/_ext/practice.py`` and ``practice.js``) has one card
  per entry of the question appendix (counted from ``book/questions/*.md``), each with its
  question, original Chinese, short answer and links that land on existing anchors; a card is
  revealed with Space and rated with 1-4, the Leitner schedule is kept across a reload, a card
  comes back when due (Playwright's fake clock), the filters and the random round choose the
  right cards, the page fits a phone, exercise cards are checked by the exercises' rules, and
  it works from ``file://``.

A screenshot of every page (and of every chapter's exercise section, after answering) is written
to ``.artifacts/screenshots/`` (or ``$D2L_ATTN_ARTIFACTS``) for a human to look at; CI keeps them as artifacts. The build's log, with each notebook's
execution time, is kept beside them as ``site-build.log`` (to find a notebook that ran slowly).

The browser part needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs
it). Without it the browser tests are *skipped with that reason*, unless
``D2L_ATTN_BROWSER_TESTS=required`` (set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import html as html_lib
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
ARTIFACT_ROOT = Path(os.environ.get("D2L_ATTN_ARTIFACTS", ROOT / ".artifacts"))
ARTIFACTS = ARTIFACT_ROOT / "screenshots"


def _book_pdf():
    spec = importlib.util.spec_from_file_location("book_pdf", ROOT / "book" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the book's pages in reading order, as the whole-book PDF (book/pdf.py) prints them
TOC_PAGES = _book_pdf().toc_pages(ROOT / "_toc.yml")
# The architecture figures drawn for the book (book/figures/make_figures.py) and the page that
# embeds each one.
FIGURES = {
    "attention_pooling": "chapters/01_attention_cues",
    "bahdanau": "chapters/04_bahdanau_attention",
    "multihead_attention": "chapters/05_multihead_attention",
    "cnn_rnn_self_attention": "chapters/06_self_attention_positional",
    "transformer": "chapters/07_transformer",
    "tiled_attention": "chapters/08_efficient_attention",
    "pretraining_objectives": "chapters/09_pretraining",
    "vit_pipeline": "chapters/10_vision_transformer",
    "rollout_flow": "chapters/11_interpreting_attention",
    "post_pre_ln": "chapters/12_training_stability",
}
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


def prebuilt_site() -> Path | None:
    """The site named by ``D2L_ATTN_SITE`` (a ``_build/html`` folder), or None to build one here.

    ``.ci/run`` builds the book as it is published (README command 1: full mode, ``-W``, where
    any warning or notebook error fails the build) and points ``D2L_ATTN_SITE`` at it, so the
    browser tests check the pages readers get. The folder must hold a full-mode build
    (``build-info.json``, written by ``book/_ext/build_info.py``).
    """
    value = os.environ.get("D2L_ATTN_SITE", "").strip()
    if not value:
        return None
    site = Path(value) if Path(value).is_absolute() else ROOT / value
    assert (site / "index.html").is_file(), f"D2L_ATTN_SITE={value!r} holds no built site (index.html)"
    info_file = site / "build-info.json"
    assert info_file.is_file(), f"D2L_ATTN_SITE={value!r} has no build-info.json: build it with README command 1"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    if _quick_site_allowed():
        return site
    assert info.get("quick_mode") is False, (
        f"D2L_ATTN_SITE={value!r} was built in quick mode; the published book (README command 1) is full mode"
    )
    return site


def _quick_site_allowed() -> bool:
    """Development only: ``D2L_ATTN_SITE_QUICK_OK=1`` lets the browser tests check a quick-mode
    build made with the execution cache (fast to rebuild while editing a page). CI never sets it."""
    return os.environ.get("D2L_ATTN_SITE_QUICK_OK", "") == "1"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    prebuilt = prebuilt_site()
    if prebuilt is not None:
        return prebuilt
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)
    (ARTIFACT_ROOT / "site-build.log").write_text(
        f"{' '.join(command)}\nrc={result.returncode} in {time.monotonic() - started:.0f} s\n\n"
        f"{result.stdout}\n--- stderr ---\n{result.stderr}",
        encoding="utf-8",
    )
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"jupyter-book build -W failed:\n{log}"
    warnings = [
        line
        for line in result.stderr.splitlines()
        if "warning" in line.lower() and "Kernel is running over TCP" not in line
    ]
    assert not warnings, log
    return out / "_build" / "html"


def test_a_prebuilt_site_must_be_a_full_mode_build(tmp_path, monkeypatch):
    monkeypatch.setenv("D2L_ATTN_SITE", str(tmp_path))
    with pytest.raises(AssertionError, match="holds no built site"):
        prebuilt_site()
    (tmp_path / "index.html").write_text("<html></html>", encoding="utf-8")
    with pytest.raises(AssertionError, match="no build-info.json"):
        prebuilt_site()
    (tmp_path / "build-info.json").write_text(json.dumps({"quick_mode": True}), encoding="utf-8")
    with pytest.raises(AssertionError, match="built in quick mode"):
        prebuilt_site()
    (tmp_path / "build-info.json").write_text(json.dumps({"quick_mode": False}), encoding="utf-8")
    assert prebuilt_site() == tmp_path
    monkeypatch.delenv("D2L_ATTN_SITE")
    assert prebuilt_site() is None


def test_build_info_records_the_run_mode(built_book):
    info = json.loads((built_book / "build-info.json").read_text(encoding="utf-8"))
    # a site built by this module runs the notebooks in quick mode (conftest.py); a prebuilt one
    # (D2L_ATTN_SITE, .ci/run) is the published full-mode build
    if not _quick_site_allowed():
        assert info["quick_mode"] is (prebuilt_site() is None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["built_utc"])


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


def test_architecture_figures_are_current_and_embedded():
    """The committed SVGs are what book/figures/make_figures.py draws, and each is embedded once."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "book" / "figures" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.FIGURES) == {f"{name}.svg" for name in FIGURES}
    for name, draw in module.FIGURES.items():
        committed = (ROOT / "book" / "figures" / name).read_text(encoding="utf-8")
        assert committed == draw().render(), f"{name} is stale: run python book/figures/make_figures.py"
    for name, page in FIGURES.items():
        text = (ROOT / f"{page}.ipynb").read_text(encoding="utf-8")
        assert text.count(f"../book/figures/{name}.svg") == 1, (name, page)


def test_rollout_figure_computes_what_the_library_computes():
    """Chapter 11's figure works rollout and flow by hand (plain Python); the library must agree."""
    import importlib.util

    import torch

    from d2l_attn import attribution

    sys.path.insert(0, str(ROOT / "book" / "figures"))
    spec = importlib.util.spec_from_file_location("figures_8_12", ROOT / "book" / "figures" / "figures_8_12.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    g1, g2 = (module._raw_graph(a) for a in module.HAND_ATTENTION)
    weights = torch.tensor(module.HAND_ATTENTION, dtype=torch.float64)[:, None]  # (L, h=1, T, T)
    rollout = attribution.attention_rollout(weights)
    flow = attribution.attention_flow(weights)
    for j in range(2):
        paths = [(g2[0][m], g1[m][j]) for m in range(2)]  # output 1 -> layer-1 position m -> input j
        assert abs(sum(a * b for a, b in paths) - rollout[0, j].item()) < 1e-12
        assert abs(sum(min(a, b) for a, b in paths) - flow[0, j].item()) < 1e-12


def test_bibliography_lists_cited_works(built_book):
    page = (built_book / "book" / "references.html").read_text(encoding="utf-8").lower()
    for title in ["Neural Machine Translation by Jointly Learning to Align and Translate", "Attention Is All You Need"]:
        assert title.lower() in page


# --------------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------------


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


# (the ``browser`` fixture, headless Chromium, is in tests/conftest.py)


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
        page.on(
            "request",
            lambda r: (
                self.external.append(r.url)
                if urlparse(r.url).scheme in ("http", "https", "ws", "wss") and urlparse(r.url).netloc != host
                else None
            ),
        )

    def unexpected_console_errors(self) -> list[str]:
        return [m for m in self.console_errors if not any(allowed in m for allowed, _ in CONSOLE_ALLOW)]

    def assert_quiet(self) -> None:
        """No request left the site, none failed, and no console error that is not allow-listed."""
        assert not self.external, f"requests leaving the site: {self.external}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.unexpected_console_errors(), self.unexpected_console_errors()


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
            arg=[frame_slider.element_handle(), before["tab"]],
            timeout=5_000,
        )
        after = frame_slider.evaluate(state)
        assert after["tab"] != before["tab"], (before, after)
        assert after["readout"] == after["tab"], "slider and shown frame disagree"
        assert after["image"] != before["image"], "the shown image did not change"
        page.screenshot(path=str(ARTIFACTS / f"{nb.stem}__frame_slider.png"), full_page=False)
        assert not log.unexpected_console_errors(), log.unexpected_console_errors()
    finally:
        context.close()


@pytest.mark.parametrize("name", FIGURES)
def test_architecture_figure_loads_with_alt_text(browser, site, name):
    context, page, log = _open(browser, f"{site}/{FIGURES[name]}.html")
    try:
        found = page.evaluate(
            """(file) => Array.from(document.images)
            .filter(i => (i.getAttribute('src') || '').endsWith(file))
            .map(i => ({loaded: i.complete && i.naturalWidth > 0, alt: i.getAttribute('alt') || '',
                        caption: i.closest('figure')?.querySelector('figcaption')?.textContent || ''}))""",
            f"{name}.svg",
        )
        assert len(found) == 1, f"{name}.svg is not shown once on {FIGURES[name]}: {found}"
        assert found[0]["loaded"], f"{name}.svg did not load"
        assert len(found[0]["alt"].split()) >= 10, f"{name}.svg needs alt text that describes it"
        assert found[0]["caption"].strip(), f"{name}.svg has no caption"
    finally:
        context.close()


# chapters that show d2l_attn.attention_view (found in their code, so a new chapter is tested too)
ATTENTION_VIEW_CHAPTERS = [nb for nb in NOTEBOOKS if "attention_view(" in nb.read_text(encoding="utf-8")]


def test_a_chapter_shows_the_attention_view():
    assert "07_transformer.ipynb" in [nb.name for nb in ATTENTION_VIEW_CHAPTERS]


@pytest.mark.parametrize("nb", ATTENTION_VIEW_CHAPTERS, ids=lambda p: p.name)
def test_attention_view_responds_on_the_page(browser, site, nb):
    """The interactive attention view runs its inline script on the built page: hovering, clicking
    and tabbing to a query token and switching layer and head give the readout that Python computes
    from the weights embedded in the page (tests/attention_view_driver.py); nothing is fetched."""
    from attention_view_driver import exercise_view

    context, page, log = _open(browser, f"{site}/chapters/{nb.stem}.html")
    try:
        roots = page.locator(".d2l-av")
        assert roots.count() >= 1, "no attention view on the page"
        ids = [roots.nth(i).get_attribute("id") for i in range(roots.count())]
        assert len(set(ids)) == len(ids), f"views share an element id: {ids}"
        for i in range(roots.count()):
            root = roots.nth(i)
            assert root.get_attribute("data-mounted") == "true", f"the script of view {ids[i]} did not run"
            assert root.locator(".d2l-av-nojs").count() == 0
            exercise_view(page, root)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        roots.first.screenshot(path=str(ARTIFACTS / f"{nb.stem}__attention_view.png"))
        log.assert_quiet()
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


# (query, page that must be among the results). Chinese needs book/_ext/cjk_search.py: Sphinx's
# English index keeps a run of Chinese characters (什么是查询) as one word, so a query finds only the
# pages where the term stands alone -- without the extension each Chinese query below found the
# glossary and none of the chapters.
SEARCHES = [
    ("多头注意力", "chapters/05_multihead_attention"),
    ("位置编码", "chapters/06_self_attention_positional"),
    ("缩放点积注意力", "chapters/03_attention_scoring"),
    ("查询", "chapters/01_attention_cues"),
    ("Nadaraya", "chapters/02_attention_pooling"),
    ("positional encoding", "chapters/06_self_attention_positional"),
    ("Linformer", "chapters/08_efficient_attention"),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES, ids=[q for q, _ in SEARCHES])
def test_search_finds_the_page_of_a_term(browser, site, query, expected):
    context, page, log = _open(browser, f"{site}/search.html?q={quote(query)}")
    try:
        page.wait_for_function(
            "() => /Search finished/.test(document.querySelector('#search-results')?.innerText || '')",
            timeout=30_000,
        )
        links = page.locator("#search-results ul.search li > a").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        )
        pages = {re.sub(r"\.html.*$", "", link) for link in links}
        assert expected in pages, f"{query!r} did not find {expected}: {sorted(pages)}"
        assert not log.failed and not log.external
    finally:
        context.close()


# the entry pages of the question appendix (its index page links to them without anchors)
APPENDIX_PAGES = sorted(
    p.relative_to(ROOT).with_suffix("").as_posix()
    for p in (ROOT / "book" / "questions").glob("*.md")
    if p.name != "index.md"
)


def _internal_links(built_book: Path, page: str) -> list[tuple[str, str]]:
    """(target page relative to the site, anchor) of every internal link with an anchor."""
    html = (built_book / f"{page}.html").read_text(encoding="utf-8")
    links = []
    for href in re.findall(r'<a class="reference internal" href="([^"]+)"', html):
        target, _, anchor = html_lib.unescape(href).partition("#")
        if anchor:
            path = (built_book / page).parent / target if target else built_book / f"{page}.html"
            links.append((path.resolve().relative_to(built_book.resolve()).as_posix(), anchor))
    return links


def _ids(built_book: Path, target: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', (built_book / target).read_text(encoding="utf-8")))


def test_appendix_links_land_on_anchors_of_the_right_pages(built_book):
    """Each entry's links reach an existing anchor; chNN- labels on chapter NN, q- on the appendix."""
    for page in [*APPENDIX_PAGES, "book/wrong_answers"]:
        links = _internal_links(built_book, page)
        assert links, page
        for target, anchor in links:
            assert (built_book / target).is_file(), (page, target)
            assert anchor in _ids(built_book, target), f"{page} links to {target}#{anchor}, which is not there"
            chapter = re.match(r"ch(\d\d)-", anchor)
            if chapter:
                assert target.startswith(f"chapters/{chapter.group(1)}_"), (page, target, anchor)
            if anchor.startswith("q-"):
                assert target.startswith("book/questions/"), (page, target, anchor)
    for nb in NOTEBOOKS:  # and the chapters' boxes link to the entries
        to_entries = [(t, a) for t, a in _internal_links(built_book, f"chapters/{nb.stem}") if a.startswith("q-")]
        assert to_entries, f"{nb.name}: its box links to no appendix entry"
        for target, anchor in to_entries:
            assert anchor in _ids(built_book, target), (nb.name, target, anchor)


def test_an_appendix_link_opens_its_section_in_the_browser(browser, site):
    context, page, log = _open(browser, f"{site}/book/questions/core.html")
    try:
        # a label is an empty span at the top of its section
        page.locator("section:has(> span#q-core-12) a.reference.internal[href*='chapters/']").first.click()
        page.wait_for_load_state("networkidle")
        assert "/chapters/03_attention_scoring.html#ch03-q12" in page.url, page.url
        assert page.locator("[id='ch03-q12']").count() == 1
        assert not log.failed and not log.external
    finally:
        context.close()


# --------------------------------------------------------------------------------------------
# Exercises that answer back on the static page (book/_ext/exercises.js, web_exercises.py)
# --------------------------------------------------------------------------------------------


def _chapter_exercises(nb):
    from d2l_attn.exercises import all_exercises

    chapter = "ch" + nb.name[:2]
    return {i: e for i, e in sorted(all_exercises().items()) if i.startswith(chapter + "-")}


def test_exercise_rules_are_exported_at_build_time(built_book):
    from d2l_attn.exercises import web

    folder = built_book / "_static" / "d2l-exercises"
    # the data is exactly the export of the exercise definitions; the checker is the committed file
    assert (folder / "data.js").read_text(encoding="utf-8") == web.to_script(web.export())
    assert (folder / "exercises.js").read_bytes() == (ROOT / "book" / "_ext" / "exercises.js").read_bytes()
    assert (folder / "exercises.css").is_file()
    for nb in NOTEBOOKS:
        page = (built_book / "chapters" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert 'src="../_static/d2l-exercises/data.js' in page and 'src="../_static/d2l-exercises/exercises.js' in page
        assert '<meta name="d2l-attn-colab"' in page
        for eid in _chapter_exercises(nb):  # each exercise carries its marker into the page
            assert f"data-exercise-id='{eid}'" in page, eid
    assert "d2l-exercises" not in (built_book / "book" / "intro.html").read_text(encoding="utf-8")


def _enter(view, exercise, text: str) -> None:
    """Type (or click) an answer into an exercise's form on the page and press Check."""
    from d2l_attn.exercises.web import web_kind

    kind = web_kind(exercise)
    if kind == "choice":
        chosen = exercise._normalize(text)
        for box in view.locator("input").all():
            value = box.get_attribute("value")
            if box.get_attribute("type") == "radio":
                if value in chosen:
                    box.check()
            else:
                box.set_checked(value in chosen)
    else:
        view.locator("textarea, input.d2l-ex-input").first.fill(text)
    view.locator("button.d2l-ex-check").click()


def _typed(exercise, answer):
    from d2l_attn.exercises.web import answer_text

    text = answer_text(exercise, answer)
    if text is None:
        return None
    if exercise.kind == "choice":  # what the form's boxes can express
        try:
            letters = exercise._normalize(text)
        except Exception:
            return None
        if len(exercise.correct()) == 1 and len(letters) != 1:
            return None
        text = ", ".join(sorted(letters))
    return text


def _feedback_of(view):
    out = view.locator(".d2l-ex-feedback")
    return out.get_attribute("data-status"), out.inner_text()


def _answer_every_exercise(page, nb):
    """Wrong, wrong again, right, for every exercise the page can check; returns how many."""
    from d2l_attn.exercises.web import web_kind

    solved = 0
    for eid, ex in _chapter_exercises(nb).items():
        view = page.locator(f'.d2l-ex[data-exercise-id="{eid}"]')
        assert view.count() == 1, f"{eid} has no answer form on the page"
        if web_kind(ex) == "code":
            link = view.locator("a.d2l-ex-colab")
            assert "needs a running notebook" in view.inner_text()
            assert link.get_attribute("href").endswith(f"/blob/{CONFIG['repository']['branch']}/chapters/{nb.name}")
            assert link.get_attribute("href").startswith("https://colab.research.google.com/github/")
            continue
        wrong = [
            t for t in (_typed(ex, w) for w in ex.wrong_answers) if t is not None and ex.evaluate(t).status == "wrong"
        ]
        assert wrong, f"{eid}: no listed wrong answer can be entered on the page"
        for attempt, text in enumerate([wrong[0], wrong[-1]]):
            _enter(view, ex, text)
            status, shown = _feedback_of(view)
            expected = ex.feedback(ex.evaluate(text), attempt)
            assert status == "wrong", (eid, text, shown)
            assert expected.message in shown and "Not yet" in shown, (eid, shown)
            assert f"Hint: {ex.hint_for(attempt)}" in shown, (eid, attempt, shown)
            if attempt == 0:
                assert len(ex.hints) < 2 or ex.hints[1] not in shown  # the stronger hint comes later
        _enter(view, ex, _typed(ex, ex.reference_answer()))
        status, shown = _feedback_of(view)
        assert status == "correct" and "Correct!" in shown and "Hint" not in shown, (eid, shown)
        assert view.get_attribute("data-solved") == "true"
        solved += 1
    return solved


def _screenshot_section(page, selector: str, path: Path) -> None:
    """The section as it lies on the full page, scrolled to the top first (an element screenshot
    scrolls, and the theme's fixed header would then be painted across the section)."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    box = page.evaluate(
        """sel => { const r = document.querySelector(sel).getBoundingClientRect();
        return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; }""",
        selector,
    )
    page.screenshot(path=str(path), full_page=True, clip=box)


def _progress(page):
    node = page.locator(".d2l-progress")
    return int(node.get_attribute("data-solved")), int(node.get_attribute("data-total"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_answer_back_without_a_kernel(browser, site, nb):
    from d2l_attn.exercises.web import web_kind

    context, page, log = _open(browser, f"{site}/chapters/{nb.stem}.html")
    try:
        page.wait_for_selector(".d2l-progress", timeout=20_000)
        assert _progress(page)[0] == 0
        # the kernel-less ipywidgets of the exercises are replaced, not shown beside the forms
        visible_widgets = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.d2l-ex-host .widget-subarea, .d2l-ex-replaced')).filter(e => e.offsetParent !== null).length""")
        assert visible_widgets == 0
        solved = _answer_every_exercise(page, nb)
        assert solved >= 3
        assert _progress(page) == (solved, solved)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        _screenshot_section(page, "section#exercises", ARTIFACTS / f"{nb.stem}__exercises.png")
        page.reload(wait_until="networkidle")
        page.wait_for_selector(".d2l-progress", timeout=20_000)
        assert _progress(page) == (solved, solved), "the progress did not survive a reload"
        assert page.locator('.d2l-ex[data-solved="true"]').count() == solved
        stored = page.evaluate(f"() => JSON.parse(localStorage.getItem('d2l-attn:exercises:ch{nb.name[:2]}'))")
        assert sorted(stored["solved"]) == sorted(e for e, x in _chapter_exercises(nb).items() if web_kind(x) != "code")
        page.locator(".d2l-progress-reset").click()
        assert _progress(page)[0] == 0
        page.reload(wait_until="networkidle")
        page.wait_for_selector(".d2l-progress", timeout=20_000)
        assert _progress(page)[0] == 0, "reset did not clear the stored progress"
        log.assert_quiet()
    finally:
        context.close()


def test_exercises_work_from_a_file_url(browser, built_book):
    """No server at all: the data is a script, not a fetch, so file:// pages check answers too."""
    nb = NOTEBOOKS[2]
    context = browser.new_context()
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    try:
        page.goto((built_book / "chapters" / f"{nb.stem}.html").as_uri(), wait_until="load")
        page.wait_for_selector(".d2l-progress", timeout=20_000)
        ex_id, ex = next((i, e) for i, e in _chapter_exercises(nb).items() if e.kind == "number")
        view = page.locator(f'.d2l-ex[data-exercise-id="{ex_id}"]')
        _enter(view, ex, "abc")
        assert _feedback_of(view)[0] == "invalid"
        _enter(view, ex, _typed(ex, ex.reference_answer()))
        assert _feedback_of(view)[0] == "correct"
        page.reload(wait_until="load")
        page.wait_for_selector(".d2l-progress", timeout=20_000)
        assert _progress(page)[0] == 1
        assert not requests, requests
    finally:
        context.close()


def test_browser_checker_gives_the_python_verdicts_in_chromium(browser, site):
    """The parity answers of tests/test_exercise_parity.py, checked by the page's own scripts."""
    from exercise_cases import parity_cases, python_verdict

    context, page, log = _open(browser, f"{site}/chapters/{NOTEBOOKS[0].stem}.html")
    try:
        cases = parity_cases()
        js = page.evaluate(
            """cases => {
            const checker = D2LExercises.makeChecker(window.D2L_ATTN_EXERCISES);
            return cases.map(c => {
                const fb = checker.check(c.id, c.text, c.wrong_before);
                return {status: fb.status, message: fb.message, hint: fb.hint};
            });
        }""",
            [{k: c[k] for k in ("id", "text", "wrong_before")} for c in cases],
        )
        mismatches = [(c, python_verdict(c), j) for c, j in zip(cases, js) if python_verdict(c) != j]
        assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, e.g. {mismatches[:3]}"
        assert len(cases) > 3000
    finally:
        context.close()


# --------------------------------------------------------------------------------------------
# The practice page (book/practice.md, book/_ext/practice.py and practice.js)
# --------------------------------------------------------------------------------------------

PRACTICE = "book/practice"


def _appendix_entries() -> dict[str, str]:
    """label -> original Chinese of every appendix entry, read from book/questions/*.md (not from
    the exporter)."""
    entries = {}
    for path in sorted((ROOT / "book" / "questions").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        entries.update(re.findall(r"^\((q-[\w-]+)\)=\n## .+\n\n原问题：(.+)$", text, flags=re.M))
    return entries


def _practice_data(built_book: Path) -> dict:
    text = (built_book / "_static" / "d2l-practice" / "cards.js").read_text(encoding="utf-8")
    prefix = "window.D2L_ATTN_PRACTICE = "
    assert text.startswith(prefix) and text.rstrip().endswith(";")
    assert "</" not in text, "the card HTML could end a <script> early: '</' must be escaped"
    return json.loads(text[len(prefix) :].rstrip().removesuffix(";"))


def _lands(built_book: Path, href: str) -> bool:
    """Whether a link written on the practice page reaches an existing page and anchor."""
    target, _, anchor = href.partition("#")
    path = (built_book / PRACTICE).parent / target
    return path.is_file() and (
        not anchor or anchor in _ids(built_book, path.resolve().relative_to(built_book.resolve()))
    )


def test_practice_cards_are_the_appendix_entries(built_book):
    data = _practice_data(built_book)
    entries = _appendix_entries()
    cards = data["cards"]
    assert len(entries) == 88
    assert [c["id"] for c in cards] == list(entries), "one card per appendix entry, in the appendix's order"
    for card in cards:
        label = card["id"]
        assert card["chinese"] == entries[label].strip(), label
        assert re.sub(r"<[^>]+>", "", card["question"]).strip(), label
        assert len(re.sub(r"<[^>]+>", "", card["answer"]).split()) >= 5, label
        assert card["links"], f"{label} links to no section"
        for href in [card["entry"], *(link["href"] for link in card["links"])]:
            assert _lands(built_book, href), f"{label}: {href} does not land on an existing anchor"
        assert card["entry"].endswith(f"#{label}")
    assert {c["set"] for c in cards} == set(data["sets"]) == {"Core", "Interview", "Notes A", "Notes B", "Notes C"}
    assert sorted(data["chapters"]) == [nb.name[:2] for nb in NOTEBOOKS]
    for chapter in data["chapters"].values():
        assert _lands(built_book, chapter["href"] + "#exercises"), chapter


def test_practice_page_is_linked_and_loads_its_scripts(built_book):
    page = (built_book / f"{PRACTICE}.html").read_text(encoding="utf-8")
    for script in [
        "d2l-exercises/data.js",
        "d2l-exercises/exercises.js",
        "d2l-practice/cards.js",
        "d2l-practice/practice.js",
    ]:
        assert f'src="../_static/{script}' in page, script
    assert (built_book / "_static" / "d2l-practice" / "practice.js").read_bytes() == (
        ROOT / "book" / "_ext" / "practice.js"
    ).read_bytes()
    for source, href in [("book/intro", "practice.html"), ("book/questions/index", "../practice.html")]:
        assert f'href="{href}"' in (built_book / f"{source}.html").read_text(encoding="utf-8"), source


def _practice(browser, url: str, *, width: int = 1280, now=None):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log = PageLog(page, url)
    if now is not None:
        page.clock.set_fixed_time(now)
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector(".d2l-practice-card[data-card]", timeout=20_000)
    return context, page, log


def _press(page, *keys: str) -> None:
    """Keys pressed with the card focused (as after a rating; a focused filter keeps its keys)."""
    page.locator(".d2l-practice-card").focus()
    for key in keys:
        page.keyboard.press(key)


def _card(page) -> str:
    return page.locator(".d2l-practice-card").get_attribute("data-card")


def _status(page) -> tuple[int, int]:
    status = page.locator(".d2l-practice-status")
    return int(status.get_attribute("data-due")), int(status.get_attribute("data-left"))


def _stored(page) -> dict:
    return page.evaluate("() => JSON.parse(localStorage.getItem('d2l-attn:practice'))")


def test_practice_reveal_rate_and_progress_survive_a_reload(browser, site):
    entries = list(_appendix_entries())
    context, page, log = _practice(browser, f"{site}/{PRACTICE}.html")
    try:
        assert _status(page) == (88, 88) and _card(page) == entries[0]
        assert page.locator(".d2l-practice-answer").count() == 0, "the answer shows before the reader asks"
        page.keyboard.press("Space")  # nothing focused yet: the page takes the key
        answer = page.locator(".d2l-practice-answer")
        assert answer.is_visible() and page.locator(".d2l-practice-card").get_attribute("data-revealed") == "true"
        page.wait_for_function("() => document.querySelector('.d2l-practice-answer mjx-container')")
        assert page.locator(".d2l-practice-card a.d2l-practice-link").count() >= 1
        _press(page, "3")  # good: box 1, due tomorrow
        assert _card(page) == entries[1] and _status(page) == (87, 87)
        stored = _stored(page)
        assert stored["version"] == 1 and stored["cards"][entries[0]]["box"] == 1
        page.locator(".d2l-practice-reveal").click()
        page.locator("button[data-rating='again']").click()  # again: due today, later in this round
        assert _status(page) == (87, 87) and _card(page) == entries[2]
        assert stored["cards"][entries[0]]["due"] == _stored(page)["cards"][entries[1]]["due"] + 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "book__practice__card.png"), full_page=True)
        page.reload(wait_until="networkidle")
        page.wait_for_selector(".d2l-practice-card[data-card]")
        assert _status(page) == (87, 87), "the progress did not survive a reload"
        assert _card(page) == entries[1], "a card rated good came back the same day"
        page.locator(".d2l-practice-reset").click()
        assert _status(page) == (88, 88) and _stored(page) is None
        assert not log.external and not log.failed, (log.external, log.failed)
        assert not log.unexpected_console_errors(), log.unexpected_console_errors()
    finally:
        context.close()


def test_practice_card_comes_back_when_due(browser, site):
    """A fake clock (Playwright's): a card rated easy (box 2) is away for 3 days, then due again."""
    import datetime

    day = datetime.timedelta(days=1)
    start = datetime.datetime(2026, 12, 8, 12, 0, tzinfo=datetime.timezone.utc)  # Playwright takes a datetime
    first = next(iter(_appendix_entries()))
    context, page, log = _practice(browser, f"{site}/{PRACTICE}.html", now=start)
    try:
        _press(page, "Space", "4")
        assert _stored(page)["cards"][first]["box"] == 2 and _status(page)[0] == 87
        for days, due in [(1, 87), (2, 87), (3, 88), (10, 88)]:
            page.clock.set_fixed_time(start + days * day)
            page.reload(wait_until="networkidle")
            page.wait_for_selector(".d2l-practice-card[data-card]")
            assert page.evaluate("Date.now()") == (start + days * day).timestamp() * 1000  # the clock moved
            assert _status(page)[0] == due, (days, _status(page))
            assert (_card(page) == first) is (due == 88), (days, _card(page))
    finally:
        context.close()


def test_practice_filters_and_the_random_round(browser, site):
    context, page, log = _practice(browser, f"{site}/{PRACTICE}.html")
    try:
        cards = page.evaluate("() => window.D2L_ATTN_PRACTICE.cards")
        page.select_option(".d2l-practice-set", "Notes B")
        notes_b = [c["id"] for c in cards if c["set"] == "Notes B"]
        assert _status(page)[1] == len(notes_b) == 7 and _card(page) == notes_b[0]
        page.select_option(".d2l-practice-set", "")
        page.select_option(".d2l-practice-chapter", "05")
        chapter5 = [c["id"] for c in cards if "05" in c["chapters"]]
        assert 0 < _status(page)[1] == len(chapter5) < 88 and _card(page) == chapter5[0]
        _press(page, "Space", "3")
        assert _status(page)[1] == len(chapter5) - 1
        page.uncheck(".d2l-practice-due")  # not due only: the rated card is back in the round
        assert _status(page)[1] == len(chapter5) and _card(page) == chapter5[0]
        page.check(".d2l-practice-due")
        page.select_option(".d2l-practice-chapter", "")
        page.locator(".d2l-practice-random").click()
        assert _status(page)[1] == 10
        seen = set()
        for _ in range(10):
            seen.add(_card(page))
            _press(page, "Space", "2")
        assert len(seen) == 10 and chapter5[0] not in seen, "the random round drew a card that is not due"
        assert _card(page) == "" and _status(page) == (77, 0)
        assert not log.unexpected_console_errors(), log.unexpected_console_errors()
    finally:
        context.close()


def test_practice_page_fits_a_phone_and_is_labelled(browser, site):
    context, page, log = _practice(browser, f"{site}/{PRACTICE}.html", width=390)
    try:
        _press(page, "Space")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the practice page is {width} px wide on a 390-px phone"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "book__practice__phone.png"), full_page=True)
        for name in ["again", "hard", "good", "easy"]:
            button = page.locator(f"button[data-rating='{name}']")
            assert button.bounding_box()["width"] >= 44 and button.bounding_box()["height"] >= 40, name
            # the accessible name is the visible text: the key, the rating and when the card comes back
            label = " ".join(button.inner_text().split())
            assert re.fullmatch(rf"\d {name} (in \d+ days?|again today)", label, flags=re.I), label
            assert button.get_attribute("aria-label") is None and button.get_attribute("aria-keyshortcuts")
        assert page.locator(".d2l-practice-card").get_attribute("aria-label") == "Practice card"
        assert page.locator(".d2l-practice-status").get_attribute("role") == "status"
        assert page.locator(".d2l-practice-chinese").get_attribute("lang") == "zh-CN"
        for control in ["#d2l-practice-set", "#d2l-practice-chapter", "#d2l-practice-due", "#d2l-practice-ex"]:
            assert page.locator(f"label[for='{control[1:]}']").count() == 1, control
    finally:
        context.close()


def test_practice_card_link_opens_its_section(browser, site):
    context, page, log = _practice(browser, f"{site}/{PRACTICE}.html")
    try:
        _press(page, "Space")
        link = page.locator(".d2l-practice-card a.d2l-practice-link").first
        anchor = link.get_attribute("href").partition("#")[2]
        link.click()
        page.wait_for_load_state("networkidle")
        assert "/chapters/" in page.url and page.url.endswith(f"#{anchor}"), page.url
        assert page.locator(f"[id='{anchor}']").count() == 1
    finally:
        context.close()


def test_practice_exercise_cards_are_checked_by_the_exercise_rules(browser, site):
    from d2l_attn.exercises import all_exercises
    from d2l_attn.exercises.web import web_kind

    context, page, log = _practice(browser, f"{site}/{PRACTICE}.html")
    try:
        page.select_option(".d2l-practice-chapter", "03")
        questions = _status(page)[1]
        page.check(".d2l-practice-ex")
        exercises = {i: e for i, e in all_exercises().items() if i.startswith("ch03-") and web_kind(e) != "code"}
        assert _status(page)[1] == questions + len(exercises)
        for _ in range(questions):  # the chapter's questions come first
            _press(page, "Space", "3")
        eid = _card(page).removeprefix("ex:")
        ex = exercises[eid]
        view = page.locator(".d2l-practice-card")
        wrong = next(t for t in (_typed(ex, w) for w in ex.wrong_answers) if t and ex.evaluate(t).status == "wrong")

        def answer(text):
            if web_kind(ex) == "choice":
                for box in view.locator(".d2l-practice-options input").all():
                    box.set_checked(box.get_attribute("value") in ex._normalize(text))
            else:
                view.locator(".d2l-practice-input").fill(text)
            view.locator(".d2l-practice-check").click()
            return view.locator(".d2l-practice-feedback")

        out = answer(wrong)
        assert out.get_attribute("data-status") == "wrong"
        assert ex.feedback(ex.evaluate(wrong), 0).message in out.inner_text()
        assert f"Hint: {ex.hint_for(0)}" in out.inner_text()
        out = answer(_typed(ex, ex.reference_answer()))
        assert out.get_attribute("data-status") == "correct" and "Correct!" in out.inner_text()
        view.locator(".d2l-practice-next").click()
        assert _stored(page)["cards"][f"ex:{eid}"]["box"] == 1  # right after a wrong answer: hard
        assert _card(page) != f"ex:{eid}"
        assert not log.unexpected_console_errors(), log.unexpected_console_errors()
    finally:
        context.close()


def test_practice_works_from_a_file_url(browser, built_book):
    context = browser.new_context()
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    try:
        page.goto((built_book / f"{PRACTICE}.html").as_uri(), wait_until="load")
        page.wait_for_selector(".d2l-practice-card[data-card]", timeout=20_000)
        first = _card(page)
        _press(page, "Space", "3")
        page.reload(wait_until="load")
        page.wait_for_selector(".d2l-practice-card[data-card]", timeout=20_000)
        assert _status(page)[0] == 87 and _card(page) != first
        assert not requests, requests
    finally:
        context.close()


# The reader's checks (accessibility with axe-core, alt text, page weight, downloads, version and
# licence, the whole-book PDF) live in tests/site_reader_checks.py and run here, on this build.
from site_reader_checks import *  # noqa: E402, F403
