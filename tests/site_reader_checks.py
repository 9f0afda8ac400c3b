"""The built book as a reader needs it (issue 26, items 4-6): accessible, light, and complete.

``tests/test_site.py`` imports these tests, so they check its build and server (``D2L_ATTN_SITE``:
the full-mode build in CI) with its fixtures:

* **axe-core** (pinned in ``package.json``) on every page: no critical and no serious violation;
  the counts by rule and impact are printed and written to ``.artifacts/axe.json``;
* every figure has alt text that says what it shows (not a file name), widget frames included;
* the ipywidgets scripts load only on pages that show a widget;
  the weight of each page (HTML plus everything it loads) is printed and kept in
  ``.artifacts/page-weight.json``;
* each chapter's ``.ipynb`` download is the notebook as executed for the site (with outputs);
* the site shows its version, a last-updated date, a licence, an "edit this page" link and a
  BibTeX entry to cite it;
* the whole-book PDF (``book/pdf.py``) has every chapter's title and a plausible page count.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import unicodedata
from pathlib import Path

import pytest
from test_site import ARTIFACT_ROOT, CONFIG, NOTEBOOKS, ROOT, SITE_PAGES, TOC_PAGES, _open

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _html(built_book: Path, page: str) -> str:
    return (built_book / f"{page}.html").read_text(encoding="utf-8")


def _wait_for_widgets(page) -> None:
    """Widgets are drawn by the embed manager after load; names are given one frame later."""
    if page.locator(f'script[type="{WIDGET_VIEW}"]').count():
        page.wait_for_selector(".jupyter-widgets", state="attached", timeout=30_000)
        page.wait_for_function(
            "() => !document.querySelector('.jupyter-widgets img:not([alt])')"
            " && !document.querySelector('.jupyter-widgets [role=slider]:not([aria-label])')",
            timeout=10_000,
        )


def test_axe_finds_no_critical_or_serious_violation(browser, site):
    assert AXE.is_file(), "axe-core is not installed: npm ci (it is pinned in package.json)"
    by_rule: dict[tuple[str, str], dict] = {}
    bad = []
    for name in SITE_PAGES:
        context, page, _log = _open(browser, f"{site}/{name}.html")
        try:
            _wait_for_widgets(page)
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,"
                " example: v.nodes[0] && v.nodes[0].target.join(' ')}))"
            )
        finally:
            context.close()
        for v in violations:
            entry = by_rule.setdefault((v["id"], v["impact"]), {"pages": 0, "nodes": 0, "example": ""})
            entry["pages"] += 1
            entry["nodes"] += v["nodes"]
            entry["example"] = entry["example"] or f"{name}: {v['example']}"
            if v["impact"] in ("critical", "serious"):
                bad.append(f"{name}: {v['id']} ({v['impact']}, {v['nodes']} nodes, e.g. {v['example']})")
    table = [
        {"rule": rule, "impact": impact, **entry}
        for (rule, impact), entry in sorted(by_rule.items(), key=lambda kv: (-kv[1]["nodes"], kv[0]))
    ]
    ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)
    (ARTIFACT_ROOT / "axe.json").write_text(json.dumps({"pages": len(SITE_PAGES), "rules": table}, indent=1))
    totals = {
        i: sum(r["nodes"] for r in table if r["impact"] == i) for i in ("critical", "serious", "moderate", "minor")
    }
    print(f"axe-core on {len(SITE_PAGES)} pages, nodes by impact: {totals}")
    for row in table:
        print(
            f"  {row['rule']:32} {row['impact']:9} pages {row['pages']:3}  nodes {row['nodes']:4}  e.g. {row['example']}"
        )
    assert not bad, f"{len(bad)} critical/serious axe violations:\n" + "\n".join(bad[:20])


def _images(page_html: str) -> list[tuple[str, str]]:
    """(src, alt) of every <img> of the page's content (the widget state is data, not markup)."""
    body = re.sub(
        r'<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>', "", page_html, flags=re.S
    )
    found = []
    for tag in re.findall(r"<img\b[^>]*>", body):
        src = re.search(r'\ssrc="([^"]*)"', tag)
        alt = re.search(r'\salt="([^"]*)"', tag)
        found.append((src.group(1) if src else "", html_lib.unescape(alt.group(1)) if alt else ""))
    return found


@pytest.mark.parametrize("name", [p for p in TOC_PAGES if p.startswith("chapters/")])
def test_every_figure_says_what_it_shows(built_book, name):
    # the notebook's figures and the book's diagrams (the theme's logos are named by the theme)
    images = [(src, alt) for src, alt in _images(_html(built_book, name)) if "_images/" in src]
    assert images, f"{name} shows no figure"
    for src, alt in images:
        assert alt and not re.search(r"\.(png|svg|jpe?g)$", alt), f"{name}: {src} has no alt text ({alt!r})"
        assert len(alt.split()) >= 4, f"{name}: the alt text of {src} says too little: {alt!r}"
        assert "$" not in alt and "\\" not in alt, f"{name}: raw TeX in alt text: {alt!r}"


def test_a_notebook_figure_is_described_by_its_content(built_book):
    """The generated alt text names what is plotted: a chapter's heatmap says so, with its labels."""
    alts = [alt for page in TOC_PAGES if page.startswith("chapters/") for _, alt in _images(_html(built_book, page))]
    assert any("heatmap" in alt for alt in alts), alts[:10]
    assert any("line plot" in alt and "axis" in alt for alt in alts), alts[:10]


@pytest.mark.parametrize("name", SITE_PAGES)
def test_heavy_scripts_load_only_where_needed(built_book, name):
    page = _html(built_book, name)
    shows_widget = WIDGET_VIEW in page
    for script in ("vendor/html-manager/embed-amd.js", "vendor/require.js"):
        assert (script in page) == shows_widget, f"{name}: {script} {'missing' if shows_widget else 'loaded'}"
    if not shows_widget:
        assert "application/vnd.jupyter.widget-state+json" not in page


# What a chapter page may load, at most (issue 26, item 5). Before: 8.31-9.23 MB (full-mode
# build of b907362), of which 1.49 MB was the theme's fontawesome.js and 0.25 MB the search
# index and scripts (now only on the search page); after: 6.69-7.52 MB. What every chapter page
# loads beside its own HTML and figures (the "shared" part): the widget manager (3.63 MB: every
# chapter shows a frame slider), MathJax (1.17 MB plus 0.1-0.2 MB of fonts, by the symbols a
# page uses), the theme (0.9 MB with its icon fonts) and the book's scripts: 6.13-6.29 MB
# measured; 6.5 MB leaves room for MathJax's fonts and fails if fontawesome.js (1.49 MB) or the
# search index comes back. The page's own HTML (with its slider frames) and figures were
# 0.42-1.36 MB: 8.0 MB in all keeps a chapter below every page of before.
CHAPTER_PAGE_MAX_BYTES = 8_000_000
SHARED_ASSETS_MAX_BYTES = 6_500_000
NEVER_ON_A_CHAPTER = ("_static/scripts/fontawesome.js", "searchindex.js", "_static/searchtools.js")


def test_page_weight_is_printed(browser, site, built_book):
    weights = {}
    for name in [*[p for p in TOC_PAGES if p.startswith("chapters/")], "book/intro", "book/glossary"]:
        loaded: list[str] = []
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("requestfinished", lambda r, loaded=loaded: loaded.append(r.url))
        try:
            page.goto(f"{site}/{name}.html", wait_until="networkidle")
            _wait_for_widgets(page)
            page.wait_for_load_state("networkidle")
        finally:
            context.close()
        files = {u.split("?")[0].split("#")[0].removeprefix(site + "/") for u in loaded if u.startswith(site)}
        shows_widget = WIDGET_VIEW in _html(built_book, name)
        assert any(f.endswith("embed-amd.js") for f in files) == shows_widget, name
        sizes = {f: (built_book / f).stat().st_size for f in files if (built_book / f).is_file()}
        own = sum(v for f, v in sizes.items() if f == f"{name}.html" or f.startswith("_images/"))
        heaviest = sorted(sizes.items(), key=lambda kv: -kv[1])[:4]
        weights[name] = {"bytes": sum(sizes.values()), "own": own, "requests": len(loaded), "heaviest": heaviest}
        if name.startswith("chapters/"):
            assert not [f for f in NEVER_ON_A_CHAPTER if f in files], f"{name} loads {sorted(files)}"
    ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)
    (ARTIFACT_ROOT / "page-weight.json").write_text(json.dumps(weights, indent=1))
    for name, w in weights.items():
        top = ", ".join(f"{f.rsplit('/', 1)[-1]} {v / 1e6:.2f}" for f, v in w["heaviest"])
        print(
            f"  {name:45} {w['bytes'] / 1e6:5.2f} MB (page and figures {w['own'] / 1e6:4.2f})"
            f"  {w['requests']:3} requests; heaviest: {top}"
        )
    chapters = {n: w for n, w in weights.items() if n.startswith("chapters/")}
    too_heavy = {n: w["bytes"] for n, w in chapters.items() if w["bytes"] > CHAPTER_PAGE_MAX_BYTES}
    assert not too_heavy, f"chapter pages over {CHAPTER_PAGE_MAX_BYTES / 1e6} MB: {too_heavy}"
    shared = {n: w["bytes"] - w["own"] for n, w in chapters.items()}
    assert max(shared.values()) <= SHARED_ASSETS_MAX_BYTES, f"assets beside the content regrew: {shared}"
    # a text page carries no widget manager: far lighter than a chapter
    assert weights["book/intro"]["bytes"] < 0.5 * min(w["bytes"] for w in chapters.values())


@pytest.mark.parametrize("name", ["book/intro", "chapters/05_multihead_attention"])
def test_every_icon_is_drawn_from_a_local_font(browser, site, name):
    """The theme's icons (and the widgets') come from the webfonts the site ships, without the
    theme's 1.5 MB fontawesome.js: each visible icon's font is loaded and nothing is missing."""
    context, page, log = _open(browser, f"{site}/{name}.html")
    try:
        _wait_for_widgets(page)
        page.evaluate("document.fonts.ready")
        icons = page.evaluate(
            """() => Array.from(document.querySelectorAll('i[class*="fa-"]'))
              .filter(e => e.getBoundingClientRect().width > 0)
              .map(e => { const s = getComputedStyle(e, '::before');
                const family = s.fontFamily.split(',')[0].replace(/["']/g, '').trim();
                return {cls: e.className, family, content: s.content,
                  loaded: Array.from(document.fonts).some(f => f.family.replace(/["']/g, '') === family
                    && f.status === 'loaded')}; })"""
        )
        assert page.locator("svg.svg-inline--fa").count() == 0, "fontawesome.js is back"
    finally:
        context.close()
    assert len(icons) >= 5, icons
    bad = [i for i in icons if not i["loaded"] or i["content"] in ("none", "normal", '""')]
    assert not bad, bad
    assert not log.failed, log.failed


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_the_notebook_download_has_the_outputs_of_the_site(built_book, nb):
    page = _html(built_book, f"chapters/{nb.stem}")
    link = re.search(r'<a href="([^"]+/_sources/chapters/' + re.escape(nb.name) + r')"([^>]*)>', page)
    assert link, "the page has no .ipynb download"
    assert " download" in link.group(2), "the .ipynb link must download, not open the JSON"
    download = json.loads((built_book / "_sources" / "chapters" / nb.name).read_text(encoding="utf-8"))
    outputs = [o for c in download["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert len(outputs) >= 5, "the downloaded notebook has no outputs: it is not the executed one"
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_version_date_licence_edit_link_and_citation(built_book):
    from d2l_attn import __version__

    assert (ROOT / "LICENSE").is_file()
    repo = CONFIG["repository"]["url"]
    for name in ["book/intro", "chapters/" + NOTEBOOKS[0].stem]:
        page = _html(built_book, name)
        text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
        assert f"Version {__version__}" in text, name
        assert re.search(r"Last updated on \d{4}-\d\d-\d\d", " ".join(text.split())), name
        assert "CC BY-SA 4.0" in text and "/LICENSE" in page, name
        assert f"{repo}/edit/{CONFIG['repository']['branch']}/" in page, f"{name}: no 'edit this page' link"
    intro = html_lib.unescape(re.sub(r"<[^>]+>", "", _html(built_book, "book/intro")))
    bibtex = re.search(r"@book\{[^}]*?,(.*?)\n\}", intro, re.S)
    assert bibtex, "the intro has no BibTeX entry to cite the book"
    assert "Attention, Executable" in bibtex.group(1) and __version__ in bibtex.group(1) and repo in bibtex.group(1)


def test_appendix_link_text_has_no_raw_tex(built_book):
    for name in [p for p in TOC_PAGES if p.startswith("book/")]:
        page = _html(built_book, name)
        for inner in re.findall(r'<a class="reference internal"[^>]*>(.*?)</a>', page, re.S):
            text = re.sub(r'<span class="math[^"]*">.*?</span>', "", inner, flags=re.S)
            text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
            assert not re.search(r"\\[A-Za-z]+|_\{|\^\{", text), f"{name}: raw TeX in link text {text!r}"


def test_the_whole_book_pdf(browser, built_book, tmp_path):
    import importlib.util

    from pypdf import PdfReader

    spec = importlib.util.spec_from_file_location("book_pdf", ROOT / "book" / "pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "book.pdf"
    summary = module.build(built_book, out, browser=browser)
    print(f"whole-book PDF: {summary['pages']} pages in {summary['seconds']:.0f} s")
    reader = PdfReader(out)
    assert len(reader.pages) == summary["pages"] > 10 * len(NOTEBOOKS), summary["pages"]
    # each title is read from the first page of its section (reading all the text of every
    # page took as long as printing them); NFKC: the PDF's text has ligatures ("Eﬃcient")
    assert len(summary["starts"]) == len(summary["sections"]) and summary["starts"] == sorted(summary["starts"])
    firsts = [reader.pages[i] for i in summary["starts"]]
    text = unicodedata.normalize("NFKC", " ".join(" ".join((p.extract_text() or "").split()) for p in firsts))
    for nb in NOTEBOOKS:
        headings = re.findall(r"<h1>(.*?)</h1>", _html(built_book, f"chapters/{nb.stem}"), re.S)
        title = [h for h in headings if 'class="headerlink"' in h]
        assert title, nb.name
        words = html_lib.unescape(re.sub(r"<[^>]+>", "", title[0])).replace("#", "").split()
        assert " ".join(words) in text, f"the PDF lacks the chapter title {' '.join(words)!r}"
    assert [item.title for item in reader.outline][: len(summary["sections"])] == summary["sections"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_folded_solutions_are_labelled_as_solutions(built_book, nb):
    page = _html(built_book, f"chapters/{nb.stem}")
    prompts = re.findall(r'<p class="collapsed admonition-title">\s*(.*?)\s*</p>', page, re.S)
    assert 'aria-label="Toggle hidden content"' not in page, "the toggles' label hides their text"
    solutions = len(re.findall(r"#@title Solution to Exercise", nb.read_text(encoding="utf-8")))
    assert solutions >= 1
    assert not [p for p in prompts if "code cell" in p], f"generic toggles left: {prompts[:3]}"
    labelled = [p for p in prompts if re.fullmatch(r"Solution to Exercise \d+\.\d+ \(code\): show", p)]
    assert len(labelled) == solutions, (solutions, prompts[:5])
    # one fold for every answer: the prose model answers use the same toggle, class and label
    source = nb.read_text(encoding="utf-8")
    models = len(re.findall(r"\{dropdown\} Model answer to Exercise", source))
    assert "Model answer to Exercise" not in re.sub(r"<[^>]+>", "", page.replace("(model answer)", ""))
    answers = [p for p in prompts if re.fullmatch(r"Solution to Exercise \d+\.\d+ \(model answer\): show", p)]
    assert len(answers) == models, (models, prompts)
    folds = re.findall(
        r'<details class="([^"]*)">\s*<summary>\s*<p class="collapsed admonition-title">Solution to', page
    )
    assert folds == ["admonition hide above-input d2l-solution"] * (solutions + models), folds


def test_glossary_terms_link_to_the_section_that_introduces_them(built_book):
    """A reader who lands on the glossary (a Chinese query finds only it) follows each term to the
    section of its chapter that explains it, an anchor that exists on that page."""
    page = _html(built_book, "book/glossary")
    page = page[page.index('<dl class="simple glossary') : page.rindex("</dl>")]
    links = re.findall(r'<a class="reference internal" href="\.\./chapters/([\w-]+)\.html(#[^"]*)?"', page)
    assert len(links) >= 100, len(links)
    with_anchor = [(stem, anchor[1:]) for stem, anchor in links if anchor]
    # 72 of 115 measured (a build of 26dddb2; a term that no section names in so many words keeps the
    # chapter link)
    assert len(with_anchor) >= 0.6 * len(links), f"{len(with_anchor)} of {len(links)} term links reach a section"
    pages = {}
    for stem, anchor in with_anchor:
        target = pages.setdefault(stem, _html(built_book, f"chapters/{stem}"))
        assert f'id="{anchor}"' in target, f"glossary: {stem}#{anchor} does not exist"
    # the link says which section: "Chapter 8, §8.3"
    assert len(re.findall(r"Chapter \d+, §\d+\.\d+", html_lib.unescape(re.sub(r"<[^>]+>", "", page)))) >= 0.8 * len(
        with_anchor
    )


def test_search_snippets_show_math_as_text_not_tex(browser, site):
    context, page, log = _open(browser, f"{site}/search.html?q=scaled")
    try:
        page.wait_for_function(
            "() => /Search finished/.test(document.querySelector('#search-results')?.innerText || '')",
            timeout=30_000,
        )
        snippets = page.locator("#search-results p.context").all_inner_texts()
        assert snippets, "no search snippet"
        raw = [s for s in snippets if re.search(r"\\\(|\\\[|\\[A-Za-z]+\{", s)]
        assert not raw, raw[:3]
        assert page.evaluate("D2LPlainMath('\\\\(1/\\\\sqrt{d_k}\\\\)')") == "1/√(d_k)"
    finally:
        context.close()
