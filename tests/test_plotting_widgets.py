"""Tests for d2l_attn.plotting and d2l_attn.widgets (d2l_attn.utils: tests/test_utils.py)."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from d2l_attn import plotting, widgets
from d2l_attn.pooling import soft_lookup


def test_show_heatmaps_grid_titles_labels_and_no_global_state():
    rc_before = dict(matplotlib.rcParams)
    import matplotlib.pyplot as plt

    figs_before = plt.get_fignums()
    data = torch.rand(2, 3, 4, 5)
    fig = plotting.show_heatmaps(data, titles=["h1", "h2", "h3"], xticklabels=list("abcde"))
    assert isinstance(fig, Figure)
    heat_axes = [ax for ax in fig.axes if ax.images]
    assert len(heat_axes) == 6
    assert [ax.get_title() for ax in heat_axes[:3]] == ["h1", "h2", "h3"]
    np.testing.assert_allclose(heat_axes[4].images[0].get_array(), data[1, 1].numpy(), rtol=1e-6)
    assert [t.get_text() for t in heat_axes[3].get_xticklabels()] == list("abcde")
    assert plt.get_fignums() == figs_before  # no pyplot figure was created
    assert dict(matplotlib.rcParams) == rc_before


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 5)])
def test_show_heatmaps_accepts_2d_and_3d(shape):
    fig = plotting.show_heatmaps(torch.rand(*shape), colorbar=False)
    expected = 1 if len(shape) == 2 else shape[0]
    assert sum(1 for ax in fig.axes if ax.images) == expected


def test_show_heatmaps_rejects_bad_input():
    with pytest.raises(ValueError, match=r"matrices must have shape"):
        plotting.show_heatmaps(torch.rand(5))
    with pytest.raises(ValueError, match="titles must have one entry per column"):
        plotting.show_heatmaps(torch.rand(1, 2, 3, 3), titles=["only one"])
    with pytest.raises(ValueError, match="xticklabels"):
        plotting.show_heatmaps(torch.rand(3, 3), xticklabels=["a"])


def test_plot_curves():
    fig = plotting.plot_curves({"a": [3, 2, 1], "b": torch.tensor([1.0, 2.0, 3.0])}, logy=True)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="has 3 points but x has 2"):
        plotting.plot_curves({"a": [1, 2, 3]}, x=[1, 2])
    with pytest.raises(ValueError):
        plotting.plot_curves({})


def heat_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_attention_grid_rows_are_layers_and_columns_are_heads():
    rc_before, figs_before = dict(matplotlib.rcParams), plt.get_fignums()
    weights = torch.rand(2, 3, 4, 5)  # (L, h, T_q, T_k)
    fig = plotting.show_attention_grid(weights, title="encoder", xticklabels=list("abcde"), yticklabels=list("wxyz"))
    axes = heat_axes(fig)
    assert len(axes) == 6
    for layer in range(2):
        for head in range(3):  # row-major: axes[3 * layer + head] shows layer `layer`, head `head`
            np.testing.assert_allclose(axes[3 * layer + head].images[0].get_array(), weights[layer, head].numpy())
    assert [ax.get_title() for ax in axes[:3]] == ["head 1", "head 2", "head 3"]
    assert axes[0].get_ylabel() == "layer 1\nqueries" and axes[3].get_ylabel() == "layer 2\nqueries"
    assert [t.get_text() for t in axes[3].get_xticklabels()] == list("abcde")
    assert [t.get_text() for t in axes[0].get_yticklabels()] == list("wxyz")
    assert fig.get_suptitle() == "encoder"
    for ax in axes:  # one color scale for every map
        assert ax.images[0].get_clim() == pytest.approx((0.0, float(weights.max())))
    assert plt.get_fignums() == figs_before and dict(matplotlib.rcParams) == rc_before


def test_attention_grid_of_one_layer_and_bad_shapes():
    fig = plotting.show_attention_grid(torch.rand(4, 3, 3), vmax=1.0)  # (h, T_q, T_k)
    axes = heat_axes(fig)
    assert len(axes) == 4 and axes[0].get_ylabel() == "queries"  # no "layer 1" for a single layer
    assert axes[0].images[0].get_clim() == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"weights must have shape \(L, h, T_q, T_k\)"):
        plotting.show_attention_grid(torch.rand(1, 2, 3, 3, 3))
    with pytest.raises(ValueError, match="xticklabels must have 3 entries"):
        plotting.show_attention_grid(torch.rand(2, 3, 3), xticklabels=["a"])


def test_show_heatmaps_row_labels():
    fig = plotting.show_heatmaps(torch.rand(2, 1, 3, 3), row_labels=["first", "second"], ylabel="q")
    assert [ax.get_ylabel() for ax in heat_axes(fig)] == ["first\nq", "second\nq"]
    with pytest.raises(ValueError, match="row_labels must have one entry per row"):
        plotting.show_heatmaps(torch.rand(2, 1, 3, 3), row_labels=["one"])


def test_query_explorer_figure_shows_the_library_answer():
    keys = torch.tensor([3.0, 1.0, 2.0])
    values = torch.tensor([30.0, 10.0, 20.0])
    fig = widgets.query_explorer_figure(keys, values, query=2.4, sigma=0.7)
    star = fig.axes[0].collections[-1].get_offsets()[0]
    expected = soft_lookup(torch.tensor([2.4]), keys, values, 0.7)[0].item()
    assert star[0] == pytest.approx(2.4) and star[1] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="keys and values must both have shape"):
        widgets.query_explorer_figure(keys, values[:2], 1.0, 1.0)


def test_query_explorer_widget_redraws_with_the_slider_values(monkeypatch):
    pytest.importorskip("ipywidgets")
    calls = []
    real = widgets.query_explorer_figure
    monkeypatch.setattr(
        widgets,
        "query_explorer_figure",
        lambda k, v, query, sigma: calls.append((query, sigma)) or real(k, v, query, sigma),
    )
    keys = torch.linspace(0, 1, 5)
    explorer = widgets.query_explorer(keys, keys**2, query=0.5, sigma=0.2)
    q_slider, s_slider = explorer.children[0].children
    assert calls == [(pytest.approx(0.5), pytest.approx(0.2))]  # drawn once at the start
    q_slider.value = 0.9
    s_slider.value = 1.0
    assert calls[1:] == [(pytest.approx(0.9), pytest.approx(0.2)), (pytest.approx(0.9), pytest.approx(1.0))]


def test_live_explorers_redraw_an_image_not_an_output_widget():
    # An Output widget that receives display() output during execution makes nbclient write
    # to the shell socket while it waits there for execute_reply, which now and then stalls a
    # book build for the whole execute.timeout (widgets module docstring). The explorers
    # therefore show a PNG in an Image widget and replace its bytes on every redraw.
    ipywidgets = pytest.importorskip("ipywidgets")
    keys = torch.linspace(0, 1, 5)
    explorer = widgets.query_explorer(keys, keys**2, query=0.5, sigma=0.2)
    q_slider, _ = explorer.children[0].children
    image = explorer.children[1]
    assert isinstance(image, ipywidgets.Image) and image.format == "png"
    assert bytes(image.value).startswith(b"\x89PNG")
    before = bytes(image.value)
    q_slider.value = 0.9
    assert bytes(image.value) != before, "moving the slider must redraw the figure"
    boxes = [
        explorer,
        widgets.positional_explorer(torch.zeros(8, 4), position=1, dim=1),
        widgets.scaling_explorer(d_values=(1, 4), d=4),
    ]
    for box in boxes:
        stack = list(box.children)
        while stack:
            child = stack.pop()
            assert not isinstance(child, ipywidgets.Output), box
            stack.extend(getattr(child, "children", ()))


def test_live_explorer_redraws_its_image_with_every_control():
    ipywidgets = pytest.importorskip("ipywidgets")
    calls = []

    def figure(n, scale):
        calls.append((n, scale))
        fig = Figure()
        fig.subplots().plot([scale * i for i in range(n)])
        return fig

    n = ipywidgets.IntSlider(value=3, min=1, max=10)
    scale = ipywidgets.FloatSlider(value=1.0, min=0.5, max=2.0)
    box = widgets.live_explorer(figure, n=n, scale=scale)
    image = box.children[1]
    assert isinstance(image, ipywidgets.Image) and bytes(image.value).startswith(b"\x89PNG")
    assert list(box.children[0].children) == [n, scale] and calls == [(3, 1.0)]
    before = bytes(image.value)
    n.value = 8
    scale.value = 2.0
    assert calls[-2:] == [(8, 1.0), (8, 2.0)] and bytes(image.value) != before
    with pytest.raises(ValueError, match="at least one control"):
        widgets.live_explorer(figure)
    with pytest.raises(ValueError, match="control 'n'"):
        widgets.live_explorer(figure, n=3)
    with pytest.raises(ValueError, match="return a matplotlib Figure"):
        widgets.live_explorer(lambda n: None, n=ipywidgets.IntSlider(1))


def test_rendered_font_px_formula():
    # a 6-inch figure at 100 dpi is 600 px wide, shown 358 px wide: 10 pt -> 10 * 100 / 72 * 0.597
    assert plotting.rendered_font_px(10, 6.0) == pytest.approx(10 * 100 / 72 * 358 / 600)
    assert plotting.rendered_font_px(10, 6.0) < plotting.MIN_LABEL_PX  # the default 10 pt is too small
    # a figure narrower than the column is shown at its own size, never enlarged
    assert plotting.rendered_font_px(10, 3.0) == pytest.approx(10 * 100 / 72)
    assert plotting.rendered_font_px(10, 3.0, dpi=80) == pytest.approx(10 * 80 / 72)
    with pytest.raises(ValueError, match="fig_width_in must be a positive number"):
        plotting.rendered_font_px(10, 0)


@pytest.mark.parametrize("width", [3.0, 4.8, 6.0, 8.0, 12.0])
def test_readable_fontsize_reaches_nine_px_at_phone_width(width):
    size = plotting.readable_fontsize(width)
    assert size >= 10
    assert plotting.rendered_font_px(size, width) >= plotting.MIN_LABEL_PX
    assert plotting.rendered_font_px(size - 0.5, width) < plotting.MIN_LABEL_PX or size == 10


def _text_sizes_on_phone(fig):
    """(text, rendered px at 358-px column width) of every visible, non-empty text of a drawn figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    width = fig.get_figwidth()
    return [
        (t.get_text(), plotting.rendered_font_px(t.get_fontsize(), width))
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: plotting.plot_curves({"train": [3, 2, 1], "val": [3, 2.5, 2]}, xlabel="step", ylabel="loss", title="t"),
        lambda: plotting.show_heatmaps(torch.rand(4, 5), xlabel="keys", ylabel="queries"),
        lambda: plotting.show_heatmaps(torch.rand(2, 4, 5, 5), titles=[f"h{i}" for i in range(4)]),
        lambda: plotting.show_heatmaps(torch.rand(1, 8, 5, 5), titles=list("abcdefgh"), xticklabels=list("vwxyz")),
        lambda: plotting.show_attention_grid(torch.rand(2, 4, 6, 6), title="encoder self-attention"),
    ],
)
def test_figure_labels_are_at_least_nine_px_on_a_phone(make):
    sizes = _text_sizes_on_phone(make())
    assert len(sizes) >= 4  # ticks and labels were found
    small = [(text, round(px, 1)) for text, px in sizes if px < plotting.MIN_LABEL_PX]
    assert not small, small
