"""Sphinx extension: lighter, more accessible pages, and the book's reader-facing metadata.

Run on the finished HTML (``build-finished``), idempotent, on every page:

* **Page weight.** The ipywidgets scripts (``require.js``, the 3.6 MB embed manager) and the
  widget state stay only on pages that show a widget (a ``widget-view`` output); myst-nb adds
  them wherever the kernel held a widget, shown or not. The theme's ``fontawesome.js`` (1.5 MB,
  it redraws every icon as an SVG) goes: the theme's stylesheet already draws the same icons
  with the Font Awesome webfonts it ships, and the widget manager finds its own icon fonts in
  ``_static/vendor/html-manager/`` (``offline_assets.py``). Sphinx's search scripts and the
  220 KB ``searchindex.js`` stay only on the search page: the theme loads them everywhere for
  its search-as-you-type option, which this book leaves off (``search_as_you_type``).
* **Accessibility** (axe-core, ``tests/test_site.py``). The search button's ``aria-label``
  ("Search") hides its visible text ("Search Ctrl+K"); the sidebar's expand toggles are empty
  ``<summary>`` elements: they get a name; bibliography entries become list items. Folded solution cells are labelled as solutions
  (:class:`LabelSolutions`). The notebook download link gets ``download`` (a
  browser otherwise shows the JSON).
  ``reader_pages.css`` fixes the colour contrast of widget tabs and exercise links, and
  ``reader_pages.js`` names the widgets' images and slider handles once they are drawn.
* **Executed notebooks.** The page's ``.ipynb`` download (the theme's button, from
  ``_sources/``) is replaced by the notebook *as executed for the site*, with its outputs
  (myst-nb's ``jupyter_execute/`` copy).

The ``{cite-this-book}`` directive prints the book's BibTeX entry. ``config-inited`` also gives
the site its version (``d2l_attn.__version__``), a "last updated" date and the footer's licence
line.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

HERE = Path(__file__).resolve().parent
FOLDER = "d2l-reader"  # published as _static/d2l-reader/
ASSETS = ("reader_pages.css", "reader_pages.js")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = re.compile(r'\s*<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>', re.S)
WIDGET_JS = re.compile(
    r'\s*<script[^>]+src="[^"]*_static/vendor/(?:require\.js|require-config\.js|html-manager/embed-amd\.js)"[^>]*>'
    r"</script>"
)
# the search and colour-mode buttons: an aria-label that hides their visible text (axe:
# label-content-name-mismatch); their name then comes from what they show
SEARCH_BUTTON = re.compile(
    r'(<button class="btn (?:search-button-field|btn-sm nav-link pst-navbar-icon theme-switch-button)[^"]*"[^>]*?) aria-label="[^"]*"'
)
EMPTY_SUMMARY = re.compile(r'<summary>(?=<span class="toctree-toggle")')
# the bibliography: a role=list whose entries carry the deprecated doc-biblioentry role
# (axe: aria-required-children, critical): the entries become list items
BIBLIOENTRY = re.compile(r'(<div class="citation" id="[^"]*") role="doc-biblioentry"')
# myst-nb's folded cells: the label hides the visible "Solution to Exercise 1.2 (code): show"
TOGGLE_LABEL = re.compile(r'<summary aria-label="Toggle hidden content">(?=\s*<p class="collapsed)')
FONTAWESOME_JS = re.compile(r'\s*<script[^>]+src="[^"]*_static/scripts/fontawesome\.js[^"]*"[^>]*></script>')
SEARCH_JS = re.compile(
    r'\s*<script src="[^"]*(?:_static/searchtools\.js|_static/language_data\.js|searchindex\.js)"></script>'
)
SEARCH_PAGE = 'id="search-results"'
DOWNLOAD_LINK = re.compile(r'(<a href="[^"]*_sources/[^"]+\.ipynb"[^>]*?)(?<! download) target="_blank"')


# the chapters' prose model answers (a sphinx-design dropdown "Model answer to Exercise 1.6")
# become the same fold as the code solutions (myst-nb's hide-cell toggle), with the same label
# pattern: "Solution to Exercise 1.6 (model answer): show"
MODEL_ANSWER = re.compile(
    r'<details class="sd-sphinx-override sd-dropdown[^"]*">\s*<summary class="sd-summary-title[^"]*">\s*'
    r'<span class="sd-summary-text">Model answer to (Exercise [\w.]+)</span>.*?</summary>\s*'
    r'<div class="sd-summary-content[^"]*">((?:(?!<details).)*?)</div>\s*</details>',
    re.S,
)
SOLUTION_FOLD = '<details class="admonition hide above-input d2l-solution">'


def _fold(match: re.Match) -> str:
    label = f"Solution to {match.group(1)} (model answer)"
    return (
        f'<div class="cell d2l-solution-cell docutils container">\n{SOLUTION_FOLD}\n<summary>\n'
        f'<p class="collapsed admonition-title">{label}: show</p>\n'
        f'<p class="expanded admonition-title">{label}: hide</p>\n</summary>\n'
        f'<div class="d2l-solution-body">{match.group(2)}</div>\n</details>\n</div>'
    )


# axe "region": the primary sidebar's logo and search button sit outside any landmark
PRIMARY_SIDEBAR = '<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar">'
SIDEBAR_LANDMARK = PRIMARY_SIDEBAR[:-1] + ' role="complementary" aria-label="The book">'
# axe "landmark-unique": a page's result tables (d2l_attn.display.table) are regions that may
# share a label ("results table"): the second and later of a label get their number on the page
TABLE_REGION = re.compile(r'(<div class="d2l-table-wrap" role="region" tabindex="0" aria-label=")([^"]*)(")')


def _unique_table_labels(page: str) -> str:
    seen: dict[str, int] = {}

    def number(match: re.Match) -> str:
        label = re.sub(r" \(\d+\)$", "", match.group(2))
        seen[label] = seen.get(label, 0) + 1
        suffix = f" ({seen[label]})" if seen[label] > 1 else ""
        return f"{match.group(1)}{label}{suffix}{match.group(3)}"

    return TABLE_REGION.sub(number, page)


CODE_FOLD = re.compile(
    r'<details class="admonition hide above-input">(?=\s*<summary>\s*<p class="collapsed admonition-title">Solution to )'
)


def lighten(page: str) -> str:
    """The page's HTML with the changes listed in the module docstring (idempotent)."""
    if WIDGET_VIEW not in page:
        page = WIDGET_STATE.sub("", page)
        page = WIDGET_JS.sub("", page)
    page = FONTAWESOME_JS.sub("", page)
    if SEARCH_PAGE not in page:
        page = SEARCH_JS.sub("", page)
    page = SEARCH_BUTTON.sub(r"\1", page)
    page = EMPTY_SUMMARY.sub('<summary aria-label="Show or hide the sections of this chapter">', page)
    page = TOGGLE_LABEL.sub("<summary>", page)
    page = MODEL_ANSWER.sub(_fold, page)
    page = CODE_FOLD.sub(SOLUTION_FOLD, page)
    page = page.replace(PRIMARY_SIDEBAR, SIDEBAR_LANDMARK)
    page = _unique_table_labels(page)
    page = BIBLIOENTRY.sub(r'\1 role="listitem"', page)
    page = DOWNLOAD_LINK.sub(r'\1 download target="_blank"', page)
    return page


def _executed_notebooks(app: Sphinx) -> int:
    """Write each notebook as executed for the site over its ``_sources/`` copy; returns how many.

    A notebook run in this build is myst-nb's ``jupyter_execute/`` copy; one taken from the
    execution cache has its outputs only in the cache (the copy there is the bare source).
    """
    import nbformat

    executed = Path(app.outdir).parent / "jupyter_execute"
    sources = Path(app.outdir) / "_sources"
    cache_path = app.config.nb_execution_cache_path or str(Path(app.outdir).parent / ".jupyter_cache")
    cache = None
    copied = 0
    for target in sources.rglob("*.ipynb"):
        relative = target.relative_to(sources)
        run = executed / relative
        notebook = nbformat.read(run, as_version=4) if run.is_file() else None
        if notebook is not None and not any(c.get("outputs") for c in notebook.cells):
            if cache is None and Path(cache_path).is_dir():
                from jupyter_cache import get_cache

                cache = get_cache(cache_path)
            try:
                notebook = cache.merge_match_into_file(str(Path(app.srcdir) / relative))[1] if cache else None
            except KeyError:  # not in the cache: keep the source
                notebook = None
        if notebook is not None:
            nbformat.write(notebook, target)
            copied += 1
    return copied


def _finish(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        new = lighten(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
    _executed_notebooks(app)


def _configure(app: Sphinx, config: Config) -> None:
    import d2l_attn

    stage = Path(app.doctreedir).parent / "reader_pages"
    (stage / FOLDER).mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        shutil.copy2(HERE / name, stage / FOLDER / name)
    config.html_static_path = list(config.html_static_path) + [str(stage)]

    config.version = config.release = d2l_attn.__version__
    if not config.html_last_updated_fmt:
        config.html_last_updated_fmt = "%Y-%m-%d"
    options = dict(config.html_theme_options or {})
    if not options.get("extra_footer"):
        repo = str(options.get("repository_url", "")).rstrip("/")
        branch = options.get("repository_branch", "main")
        licence = f'<a href="{repo}/blob/{branch}/LICENSE">LICENSE</a>' if repo else "LICENSE"
        options["extra_footer"] = (
            f"<p>Version {d2l_attn.__version__}. Text licensed under CC BY-SA 4.0, code under the MIT "
            f"licence (see {licence}).</p>"
        )
    config.html_theme_options = options


SOLUTION_TITLE = re.compile(r"^#@title (Solution to Exercise [\w.]+)")


class LabelSolutions(SphinxPostTransform):
    """A folded solution cell (``#@title Solution to Exercise 1.2``, tag ``hide-cell``) says so on
    its toggle ("Solution to Exercise 1.2 (code)"), like the "Model answer to Exercise 1.6"
    dropdowns, instead of myst-nb's generic "Show code cell content"."""

    default_priority = 198  # before myst-nb's HideInputCells (199) reads the prompts
    formats = ("html",)

    def run(self, **kwargs):
        for node in self.document.findall(nodes.container):
            if node.get("nb_element") != "cell_code" or not node.get("hide_mode"):
                continue
            code = next(iter(node.findall(nodes.literal_block)), None)
            match = SOLUTION_TITLE.match(code.astext()) if code is not None else None
            if match:
                node["prompt_show"] = f"{match.group(1)} (code): show"
                node["prompt_hide"] = f"{match.group(1)} (code): hide"


TEX = re.compile(r"\\[A-Za-z]+|_\{|\^\{")


def _titles_with_math(app: Sphinx, doctree, docname: str) -> None:
    """A ``{ref}`` to a section whose title has math shows that math typeset, not as raw TeX.

    Sphinx writes a reference's text as the title's plain text (``1/\\sqrt{d_k}``); here the
    link gets the title's own nodes, math included, and the page loads MathJax.
    """
    std = app.env.get_domain("std")
    where = {labelid: target for target, labelid, _ in std.labels.values()}
    changed = False
    for ref in list(doctree.findall(nodes.reference)):
        anchor = ref.get("refuri", "").partition("#")[2] or ref.get("refid", "")
        if not anchor or not TEX.search(ref.astext()) or anchor not in where:
            continue
        target = app.env.get_doctree(where[anchor])
        section = next((n for n in target.findall(nodes.section) if anchor in n["ids"]), None)
        if section is None:  # a label before the section: the next section is it
            label = next((n for n in target.findall(nodes.Element) if anchor in n.get("ids", [])), None)
            section = next(iter(label.findall(nodes.section, siblings=True)), None) if label is not None else None
        if section is None or not isinstance(section[0], nodes.title):
            continue
        if ref.astext().strip() != section[0].astext().strip():
            continue  # an explicit link text: left as written
        ref.children = [nodes.inline("", "", *[child.deepcopy() for child in section[0].children])]
        changed = True
    if changed:
        app.env.get_domain("math").data["has_equations"][docname] = True


class CiteThisBook(SphinxDirective):
    """``{cite-this-book}``: the book's BibTeX entry, with this build's version, year and URL."""

    def run(self):
        import datetime as dt

        config = self.env.config
        options = config.html_theme_options or {}
        url = str(options.get("repository_url", "")).rstrip("/")
        key = re.sub(r"[^a-z]+", "_", config.project.lower()).strip("_")
        entry = (
            f"@book{{{key},\n"
            f"  title     = {{{config.project}}},\n"
            f"  author    = {{{{{config.author}}}}},\n"
            f"  year      = {{{dt.date.today().year}}},\n"
            f"  edition   = {{{config.version}}},\n"
            f"  note      = {{Version {config.version}}},\n"
            f"  url       = {{{url}}}\n"
            "}"
        )
        block = nodes.literal_block(entry, entry, language="bibtex")
        return [block]


def setup(app: Sphinx) -> dict:
    app.add_directive("cite-this-book", CiteThisBook)
    app.add_post_transform(LabelSolutions)
    app.connect("doctree-resolved", _titles_with_math)
    app.connect("config-inited", _configure, priority=300)
    app.add_css_file(f"{FOLDER}/reader_pages.css")
    app.add_js_file(f"{FOLDER}/reader_pages.js", loading_method="defer")
    app.connect("build-finished", _finish)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
