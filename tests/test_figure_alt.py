"""Alt text for notebook figures (d2l_attn.figure_alt) and the page rewriting of book/_ext/reader_pages.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from d2l_attn import figure_alt, plotting

ROOT = Path(__file__).resolve().parents[1]


def test_a_heatmap_grid_is_described_by_its_panels_and_labels():
    fig = plotting.show_heatmaps(torch.rand(1, 2, 3, 4), xlabel="keys", ylabel="queries", titles=["head 1", "head 2"])
    text = figure_alt.describe(fig)
    assert text.startswith("Figure with 2 panels"), text
    assert '"head 1": heatmap' in text and '"head 2": heatmap' in text
    assert 'x axis "keys"' in text and 'y axis "queries"' in text
    assert text.endswith("with a colour scale."), text


def test_a_line_plot_names_its_lines_and_reads_mathtext_as_words():
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1, 2, 3], label=r"$\alpha_{ij}$")
    ax.plot([0, 1, 2], [3, 2, 1], label=r"$\mathbf{v}_j$")
    ax.set(title="weights", xlabel="step", ylabel=r"$\sqrt{d_k}$")
    ax.legend()
    assert figure_alt.describe(fig) == (
        'Figure: "weights": line plot with 2 lines, x axis "step", y axis "sqrtd_k", legend: alpha_ij, v_j.'
    )


def test_bars_scatter_and_a_set_text():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    left.bar(["a", "b", "c"], [1, 2, 3])
    right.scatter([1, 2], [3, 4])
    text = figure_alt.describe(fig)
    assert "(1) bar chart with 3 bars" in text and "(2) scatter plot" in text, text
    assert figure_alt.describe(figure_alt.set_alt(fig, "Three bars  and two dots")) == "Three bars and two dots"


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        figure_alt.describe("not a figure")
    with pytest.raises(ValueError, match="at least 3 words"):
        figure_alt.set_alt(Figure(), "a plot")


def test_install_makes_the_kernel_publish_figures_with_alt_text():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    png = shell.display_formatter.formatters["image/png"]
    png.for_type(Figure, lambda fig: b"\x89PNG fake")  # what matplotlib's inline backend registers
    assert figure_alt.install(shell) is True
    assert figure_alt.install(shell) is True  # idempotent
    fig = Figure()
    fig.add_subplot().plot([1, 2], [3, 4])
    data, metadata = shell.display_formatter.format(fig)
    assert data["image/png"] == b"\x89PNG fake"
    assert metadata["image/png"] == {"alt": figure_alt.describe(fig)}
    # registered after install (the backend is activated in a later cell): still described
    png.for_type(Figure, lambda fig: b"\x89PNG other")
    data, metadata = shell.display_formatter.format(fig)
    assert data["image/png"] == b"\x89PNG other" and metadata["image/png"]["alt"].startswith("Figure: line plot")
    # other objects are untouched
    assert "image/png" not in shell.display_formatter.format(42)[1]


def test_importing_the_library_leaves_the_kernel_alone():
    """No side effect at import: the formatters change only when a notebook calls install()."""
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "before = type(shell.display_formatter.formatters['image/png'])\n"
        "import d2l_attn, d2l_attn.figure_alt\n"
        "assert type(shell.display_formatter.formatters['image/png']) is before\n"
    )
    subprocess.run([sys.executable, "-c", "import sys\n" + code], check=True, cwd=ROOT, timeout=600)


@pytest.mark.parametrize("nb", sorted((ROOT / "chapters").glob("*.ipynb")), ids=lambda p: p.name)
def test_every_chapter_installs_the_alt_text_in_its_setup_cell(nb):
    setup = next(c for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    source = "".join(setup["source"])
    assert source.startswith("# Setup"), nb.name
    assert "from d2l_attn import figure_alt\n" in source and "\nfigure_alt.install()" in source, nb.name


def _reader_pages():
    spec = importlib.util.spec_from_file_location("reader_pages", ROOT / "book" / "_ext" / "reader_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAGE = """<head>
  <script defer src="../_static/scripts/fontawesome.js?digest=1"></script>
  <script src="../_static/vendor/require.js"></script>
  <script src="../_static/vendor/html-manager/embed-amd.js"></script>
  <script type="application/vnd.jupyter.widget-state+json">{"state": {}}</script>
</head><body>
<button class="btn search-button-field search-button__button pst-js-only" title="Search" aria-label="Search" x>
<button class="btn btn-sm nav-link pst-navbar-icon theme-switch-button pst-js-only" aria-label="Color mode" data-bs-title="Color mode">
<summary><span class="toctree-toggle" role="presentation"></span></summary>
<a href="../_sources/chapters/01_x.ipynb" class="btn" target="_blank">.ipynb</a>
<div role="list" class="citation-list"><div class="citation" id="id1" role="doc-biblioentry">
BODY
</body>"""


def test_pages_lose_the_widget_scripts_where_no_widget_is_shown():
    lighten = _reader_pages().lighten
    page = lighten(PAGE.replace("BODY", ""))
    assert "embed-amd.js" not in page and "require.js" not in page
    assert "widget-state" not in page
    assert 'aria-label="Search"' not in page and 'title="Search"' in page
    assert 'aria-label="Color mode"' not in page and 'data-bs-title="Color mode"' in page
    assert '<summary aria-label="Show or hide the sections of this chapter">' in page
    assert 'class="btn" download target="_blank"' in page
    assert '<div class="citation" id="id1" role="listitem">' in page
    assert lighten(page) == page  # idempotent
    shown = lighten(PAGE.replace("BODY", '<script type="application/vnd.jupyter.widget-view+json">{}</script>'))
    assert "embed-amd.js" in shown and "require.js" in shown and "widget-state" in shown
