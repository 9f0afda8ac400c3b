"""The built site as a reader on a phone or a desktop uses it (headless Chromium, Playwright).

Checks against the site that ``D2L_ATTN_SITE`` names (``.ci/run`` builds the book in full mode
and sets it; the module is skipped without one, since tests/test_site.py owns the local build):

* **no dead slider**: every slider handle on a chapter page changes the figure beside it when
  it is moved (a live ipywidgets explorer needs a kernel: on the page it must be a static figure
  with a link to Colab, ``d2l_attn.display.with_static_figure``), and has an accessible name;
* frame sliders on a 390-px phone: a usable track that a tap moves, tab labels never cut short;
* **no page wider than a 390-px phone** (long inline code breaks);
* **no display equation clipped without a cue**: an equation wider than its column scrolls in its
  own container, which is marked (edge shadows and a hint, ``book/_ext/reader.js``);
* **result tables are HTML tables** (``d2l_attn.utils.table``), not "|"-separated text, and a
  table wider than the column scrolls with the same cue.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.test_site import NOTEBOOKS, ROOT, SITE_PAGES, PageLog, prebuilt_site

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def site_dir():
    site = prebuilt_site()
    if site is None:
        pytest.skip("needs a built site in D2L_ATTN_SITE (.ci/run sets it; tests/test_site.py builds its own)")
    return site


@pytest.fixture(scope="module")
def site(site_dir):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=site_dir))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _open(browser, url: str, device: dict):
    context = browser.new_context(**device)
    page = context.new_page()
    log = PageLog(page, url)
    page.goto(url, wait_until="networkidle")
    page.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    page.wait_for_load_state("networkidle")
    # widgets render after load; give the manager and reader.js a moment to settle
    page.wait_for_timeout(800)
    return context, page, log


def _code_calls(nb, call: str) -> int:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return sum("".join(c["source"]).count(call) for c in cells if c["cell_type"] == "code")


CHAPTERS = [nb.stem for nb in NOTEBOOKS]
VISIBLE_IMAGE = """el => Array.from(el.querySelectorAll('img'))
    .filter(i => i.offsetParent !== null && i.getBoundingClientRect().height > 0).map(i => i.src)[0] || null"""


@pytest.mark.parametrize("stem", CHAPTERS)
def test_no_dead_slider(browser, site, stem):
    """Every slider on the page changes the figure it sits with; live explorers show a static figure."""
    context, page, log = _open(browser, f"{site}/chapters/{stem}.html", DESKTOP)
    try:
        handles = page.locator(".widget-slider [role=slider]")
        handles.first.wait_for(state="attached", timeout=20_000)
        page.wait_for_timeout(500)
        count = handles.count()
        assert count >= 1, f"{stem}: no slider at all (every chapter has a frame slider)"
        for i in range(count):
            handle = handles.nth(i)
            handle.scroll_into_view_if_needed()
            name = handle.get_attribute("aria-label") or ""
            assert name.strip(), f"{stem}: slider {i} has no accessible name"
            group = handle.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][.//img][1]")
            assert group.count() == 1, f"{stem}: slider {i} ({name!r}) has no figure beside it"
            before = group.evaluate(VISIBLE_IMAGE)
            at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            handle.focus()
            handle.press("ArrowLeft" if at_max else "ArrowRight")
            page.wait_for_timeout(300)
            after = group.evaluate(VISIBLE_IMAGE)
            assert before and after and after != before, (
                f"{stem}: slider {i} ({name!r}) moved but its figure did not change: a live explorer needs a "
                "kernel (show it with d2l_attn.display.with_static_figure) or use widgets.frame_slider"
            )
        # each live explorer shows its first figure and a link to this chapter in Colab
        colab = page.evaluate("document.querySelector('meta[name=\"d2l-attn-colab\"]')?.content")
        statics = page.evaluate("""() => Array.from(document.querySelectorAll('figure.d2l-live-static')).map(f => ({
            loaded: !!f.querySelector('img') && f.querySelector('img').naturalWidth > 0,
            alt: f.querySelector('img')?.alt || '',
            href: f.querySelector('a.d2l-live-colab')?.href}))""")
        source = (ROOT / "chapters" / f"{stem}.ipynb").read_text(encoding="utf-8")
        expected = len(re.findall(r"widgets\.(?:live_explorer|\w+_explorer)\(", source))
        assert len(statics) == expected, f"{stem}: {len(statics)} static explorer figures, {expected} explorers"
        for figure in statics:
            assert figure["loaded"] and figure["alt"], figure
            assert figure["href"] == colab, (figure, colab)
        assert not log.unexpected_console_errors(), log.unexpected_console_errors()
    finally:
        context.close()


@pytest.mark.parametrize("stem", CHAPTERS)
def test_frame_sliders_work_by_touch_on_a_phone(browser, site, stem):
    context, page, _ = _open(browser, f"{site}/chapters/{stem}.html", PHONE)
    try:
        sliders = page.locator(".widget-vbox:has(> .widget-tab):has(> .widget-slider)")
        sliders.first.wait_for(state="attached", timeout=20_000)
        assert sliders.count() >= 1, f"{stem}: no frame slider"
        for i in range(sliders.count()):
            slider = sliders.nth(i)
            slider.scroll_into_view_if_needed()
            labels = slider.evaluate("""el => Array.from(el.querySelectorAll('.lm-TabBar-tab')).map(t => {
                const label = t.querySelector('.lm-TabBar-tabLabel') || t;
                const r = t.getBoundingClientRect();
                return {text: label.textContent, cut: label.scrollWidth > label.clientWidth + 1,
                        right: r.right, visible: r.width > 0};
            })""")
            cut = [t["text"] for t in labels if t["cut"] or not t["visible"] or t["right"] > 391]
            assert not cut, f"{stem}: frame slider {i}: tab labels cut short or off-screen on a phone: {cut}"
            track = slider.locator(".noUi-target").first
            box = track.bounding_box()
            assert box and box["width"] >= 150, f"{stem}: frame slider {i}: track {box} too short to use by touch"
            current = "el => el.querySelector('.lm-TabBar-tab.lm-mod-current')?.textContent"
            before = slider.evaluate(current)
            x = box["x"] + box["width"] * (0.1 if labels and before == labels[-1]["text"] else 0.9)
            page.touchscreen.tap(x, box["y"] + box["height"] / 2)
            page.wait_for_timeout(400)
            assert slider.evaluate(current) != before, f"{stem}: frame slider {i}: a tap on the track did nothing"
            # the frame is said in words, and the words change with it (handle value, live region)
            said = slider.evaluate("""el => ({
                value: el.querySelector('[role=slider]').getAttribute('aria-valuetext'),
                status: el.nextElementSibling && el.nextElementSibling.matches('.d2l-frame-status[aria-live]')
                    ? el.nextElementSibling.textContent : null,
                tab: el.querySelector('.lm-TabBar-tab.lm-mod-current').textContent.trim(),
                n: el.querySelectorAll('.lm-TabBar-tab').length})""")
            assert said["value"] and said["value"].startswith(said["tab"]), f"{stem}: frame slider {i}: {said}"
            assert f"of {said['n']})" in said["value"], f"{stem}: frame slider {i}: {said}"
            assert said["status"] == f"Showing {said['value']}", f"{stem}: frame slider {i}: {said}"
            assert said["tab"] != before, said
    finally:
        context.close()


@pytest.mark.parametrize("name", SITE_PAGES)
def test_no_page_is_wider_than_a_phone(browser, site, name):
    context, page, _ = _open(browser, f"{site}/{name}.html", PHONE)
    try:
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        culprits = page.evaluate("""() => Array.from(document.querySelectorAll('body *')).filter(e => {
                const r = e.getBoundingClientRect();
                return r.right > window.innerWidth + 1 && r.width > 0 && getComputedStyle(e).position !== 'fixed';
            }).slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 60))""")
        assert width <= 391, f"{name} is {width} px wide on a 390-px phone; overflowing: {culprits}"
    finally:
        context.close()


EQUATIONS = """() => Array.from(document.querySelectorAll('div.math')).filter(d => d.querySelector('mjx-container'))
    .map(d => {
        const s = getComputedStyle(d), next = d.nextElementSibling;
        return {tex: d.textContent.slice(0, 50), wide: d.scrollWidth > d.clientWidth + 1,
                scrolls: ['auto', 'scroll'].includes(s.overflowX), cue: d.classList.contains('d2l-scrolls'),
                hint: !!next && next.classList.contains('d2l-scroll-hint') && next.offsetParent !== null,
                right: d.getBoundingClientRect().right,
                column: (d.closest('article') || document.body).getBoundingClientRect().right};
    })"""


@pytest.mark.parametrize("device", ["phone", "desktop"])
@pytest.mark.parametrize("stem", CHAPTERS)
def test_display_equations_are_never_clipped_without_a_cue(browser, site, stem, device):
    context, page, _ = _open(browser, f"{site}/chapters/{stem}.html", PHONE if device == "phone" else DESKTOP)
    try:
        equations = page.evaluate(EQUATIONS)
        bad = [e for e in equations if e["wide"] and not (e["scrolls"] and e["cue"] and e["hint"])]
        assert not bad, f"{stem} ({device}): display equations clipped without a scroll cue: {bad[:3]}"
        outside = [e for e in equations if e["right"] > e["column"] + 1]
        assert not outside, f"{stem} ({device}): display equations wider than the column: {outside[:3]}"
    finally:
        context.close()


ASCII_TABLE = re.compile(r"(?:^[^\n|]*\S \| \S[^\n]* \| [^\n]*\n){3,}", re.M)


@pytest.mark.parametrize("name", [f"chapters/{s}" for s in CHAPTERS] + ["book/reproducing"])
def test_result_tables_are_html_tables(browser, site, name):
    nb = ROOT / f"{name}.ipynb"
    expected = _code_calls(nb, "utils.table(")
    context, page, _ = _open(browser, f"{site}/{name}.html", PHONE)
    try:
        tables = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output .d2l-table-wrap')).map(w => ({
            rows: w.querySelectorAll('tbody tr').length, header: w.querySelectorAll('thead th').length,
            wide: w.scrollWidth > w.clientWidth + 1, cue: w.classList.contains('d2l-scrolls'),
            scrolls: ['auto', 'scroll'].includes(getComputedStyle(w).overflowX)}))""")
        assert len(tables) >= expected, f"{name}: {len(tables)} HTML result tables, {expected} in the notebook"
        for t in tables:
            assert t["rows"] >= 1 and t["header"] >= 2, t
            assert not t["wide"] or (t["scrolls"] and t["cue"]), f"{name}: a wide table scrolls with no cue: {t}"
        texts = page.evaluate("() => Array.from(document.querySelectorAll('.cell_output pre')).map(p => p.textContent)")
        dumps = [m.group(0)[:200] for text in texts for m in [ASCII_TABLE.search(text)] if m]
        assert not dumps, f"{name}: results printed as '|'-separated text (use utils.table): {dumps[:2]}"
    finally:
        context.close()


def test_a_plot_enlarges_on_tap_on_a_phone(browser, site):
    """On a phone a plot shrinks to the column; a tap shows it at (at least) its natural size."""
    context, page, _ = _open(browser, f"{site}/chapters/02_attention_pooling.html", PHONE)
    try:
        plot = page.locator(".cell_output img.d2l-zoomable").first
        plot.scroll_into_view_if_needed()
        natural, shown = plot.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
        assert shown < natural, "the plot is not shrunk on a phone: nothing to check"
        plot.tap()
        big = page.locator(".d2l-zoom img")
        big.wait_for(state="visible", timeout=3_000)
        assert big.evaluate("i => i.getBoundingClientRect().width") >= natural - 1
        assert page.locator(".d2l-zoom").get_attribute("role") == "dialog"
        page.keyboard.press("Escape")
        assert page.locator(".d2l-zoom").count() == 0, "Escape did not close the enlarged figure"
    finally:
        context.close()


# --------------------------------------------------------------------------------------------
# The HTML rewrites behind these pages (book/_ext/reader_pages.py, glossary_links.py): no site
# needed
# --------------------------------------------------------------------------------------------


def _ext(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "book" / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LIGHT_PAGE = """<head>
<script defer src="../_static/scripts/fontawesome.js?digest=55c2"></script>
<script src="../_static/searchtools.js"></script>
<script src="../_static/language_data.js"></script>
<script src="../searchindex.js"></script>
</head><body>
<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar">
<details class="sd-sphinx-override sd-dropdown sd-card sd-mb-3">
<summary class="sd-summary-title sd-card-header">
<span class="sd-summary-text">Model answer to Exercise 1.6</span><span class="m"><svg></svg></span></summary>
<div class="sd-summary-content sd-card-body docutils">
<p>Because the weights sum to one.</p>
</div>
</details>
<div class="cell tag_hide-cell docutils container">
<details class="admonition hide above-input">
<summary>
<p class="collapsed admonition-title">Solution to Exercise 1.1 (code): show</p>
TABLES
</body>"""
TABLE = '<div class="d2l-table-wrap" role="region" tabindex="0" aria-label="{}">'


def test_pages_lose_fontawesome_js_and_search_scripts_but_the_search_page_keeps_them():
    lighten = _ext("reader_pages").lighten
    tables = "".join(TABLE.format(label) for label in ["results table", "BLEU", "results table", "results table"])
    page = lighten(LIGHT_PAGE.replace("TABLES", tables))
    assert "fontawesome.js" not in page
    assert "searchindex.js" not in page and "searchtools.js" not in page and "language_data.js" not in page
    search = lighten(LIGHT_PAGE.replace("TABLES", '<div id="search-results"></div>'))
    assert "fontawesome.js" not in search and "searchindex.js" in search and "searchtools.js" in search
    # one fold for every answer: the model answer becomes the code solutions' toggle and label
    assert "Model answer to" not in page and "sd-dropdown" not in page
    assert '<p class="collapsed admonition-title">Solution to Exercise 1.6 (model answer): show</p>' in page
    assert "<p>Because the weights sum to one.</p>" in page
    assert page.count('<details class="admonition hide above-input d2l-solution">') == 2
    # landmarks: the sidebar is one, and result tables get labels of their own
    assert 'class="bd-sidebar-primary bd-sidebar" role="complementary" aria-label="The book">' in page
    labels = re.findall(r'aria-label="([^"]*)"', page.split("The book", 1)[1])
    assert labels == ["results table", "BLEU", "results table (2)", "results table (3)"]
    assert lighten(page) == page  # idempotent


def test_a_glossary_term_finds_the_first_section_whose_prose_uses_it():
    from docutils import nodes

    first_section = _ext("glossary_links").first_section

    def section(ident, text, *children):
        node = nodes.section(ids=[ident])
        node += nodes.title("", ident)
        node += nodes.paragraph("", text)
        for child in children:
            node += child
        return node

    code = nodes.container(nb_element="cell_code")
    code += nodes.literal_block("", "beam_search(model)")
    intro = section("ch", "This chapter decodes greedily with beam search.", code)
    intro += section("greedy", "Greedy decoding picks the best token.")
    intro += section("beam", "Beam searches keep k hypotheses.")
    intro += section("later", "Beam search again, and the attention score.")
    tree = nodes.document(None, None)
    tree += intro
    # plural; neither the code nor the introduction counts
    assert first_section(tree, "beam search (束搜索)")["ids"] == ["beam"]
    assert first_section(tree, "attention score (注意力分数)")["ids"] == ["later"]
    assert first_section(tree, "greedy decoding")["ids"] == ["greedy"]
    assert first_section(tree, "chapter") is None  # only the chapter's introduction: no anchor
    assert first_section(tree, "softmax") is None
