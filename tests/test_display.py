"""Result tables (d2l_attn.display.table) and live explorers with a static figure for the page."""

from __future__ import annotations

import base64
import re

import pytest
import torch

from d2l_attn import display, utils, widgets


def test_table_renders_an_html_table_with_escaped_cells_and_numbers_to_precision():
    t = display.table([["a<b", 0.123456, 12], ["c", 2.0, 123456]], ["name", "loss", "steps"], caption="runs")
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and html.count("<th ") == 3 and html.count("<td ") == 6
    assert "a&lt;b" in html and "a<b" not in html
    assert ">0.123<" in html and ">2.000<" in html and ">123,456<" in html and ">12<" in html
    assert 'class="d2l-table-wrap"' in html and "<caption>runs</caption>" in html
    # numeric columns are right-aligned, text columns left-aligned
    assert re.search(r'<td style="text-align:left">a&lt;b</td><td style="text-align:right">0.123</td>', html)


def test_table_prints_as_aligned_text():
    text = repr(display.table([{"run": "x", "loss": 1.5}, {"run": "longer", "loss": 10.25}], precision=2))
    lines = text.splitlines()
    assert lines[0].startswith("run") and set(lines[1]) <= {"-", "+"}
    assert lines[2].endswith(" 1.50") and lines[3].endswith("10.25")
    assert len({line.index("|") for line in lines if "|" in line}) == 1  # one column boundary


def test_table_formats_tiny_and_huge_floats_and_tensors():
    t = display.table([[1e-9, 3e8, torch.tensor(0.5), None, float("nan")]], list("abcde"))
    assert t.rows[0] == ["1e-09", "3e+08", "0.500", "-", "nan"]


@pytest.mark.parametrize(
    ("rows", "columns", "match"),
    [
        ([[1, 2]], None, "columns must name"),
        ([[1, 2]], ["a"], "row 0 must be a sequence of 1"),
        (["ab"], ["a", "b"], "row 0 must be a sequence"),
    ],
)
def test_table_rejects_bad_rows(rows, columns, match):
    with pytest.raises(ValueError, match=match):
        display.table(rows, columns)


def test_table_rejects_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        display.table([[1.0]], ["a"], precision=-1)


def test_utils_reexports_table():
    assert utils.table is display.table


def test_live_explorer_carries_a_static_figure_beside_the_widget_view(monkeypatch):
    keys = torch.linspace(0, 5, 8)
    explorer = widgets.query_explorer(keys, keys.sin(), query=2.0, sigma=0.5)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))
    image = explorer.children[-1]
    assert png == bytes(image.value)  # the explorer's own first figure
    assert 'class="d2l-live-colab"' in html and "explore it live in the notebook" in html
    assert "query q" in html and "sigma" in html  # the controls are named (alt text and note)
    # the live controls are still there and still redraw the figure in a kernel
    slider = explorer.children[0].children[0]
    slider.value = 4.0
    assert bytes(image.value) != png
    # Colab gets the live widget alone
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert "text/html" not in explorer._repr_mimebundle_()


def test_every_live_explorer_has_a_static_figure():
    import ipywidgets

    keys = torch.linspace(0, 5, 8)
    explorers = [
        widgets.kernel_regression_explorer(keys, keys.sin(), torch.linspace(0, 5, 5)),
        widgets.positional_explorer(torch.rand(20, 8) * 2 - 1, position=3, dim=2),
        widgets.scaling_explorer((1, 4), d=4, num_keys=4),
        widgets.live_explorer(
            lambda n: widgets.scaling_explorer_figure(n, num_keys=4), n=ipywidgets.IntSlider(2, 1, 4)
        ),
    ]
    for explorer in explorers:
        assert isinstance(explorer, ipywidgets.VBox)
        assert "d2l-live-static" in explorer._repr_mimebundle_()["text/html"]


def test_with_static_figure_rejects_non_png():
    import ipywidgets

    with pytest.raises(ValueError, match="png must be"):
        display.with_static_figure(ipywidgets.VBox([]), b"GIF89a", ["x"])
