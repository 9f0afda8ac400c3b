"""Interactive explorers for the chapters (ipywidgets).

Only the widget API common to ipywidgets 7 and 8 is used (``FloatSlider``, ``FloatLogSlider``,
``Dropdown``, ``Output``, ``VBox``/``HBox``, ``observe``), so the explorers run in Jupyter,
JupyterLab and Colab. Each explorer is built from a pure *figure function* that the tests call
directly; the widget only wires sliders to it.

Live widgets need a running kernel: in the static book the sliders show their saved state.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from .pooling import soft_lookup

__all__ = ["query_explorer_figure", "query_explorer", "figure_png", "frame_slider"]


def query_explorer_figure(
    keys: torch.Tensor, values: torch.Tensor, query: float, sigma: float
) -> Figure:
    """Figure for chapter 1: a 1-D database of (key, value) points, one query, and its weights.

    Top: the (key, value) pairs with marker size proportional to the attention weight, the
    query as a vertical line and the soft-lookup answer as a star. Bottom: the weights over the
    keys as a one-row heatmap.
    """
    if keys.dim() != 1 or values.shape != keys.shape:
        raise ValueError(
            f"keys and values must both have shape (n,), got {tuple(keys.shape)} and {tuple(values.shape)}"
        )
    order = torch.argsort(keys)
    keys, values = keys[order], values[order]
    output, weights = soft_lookup(torch.tensor([float(query)]), keys, values, sigma)  # (1,), (1, n)
    w = weights[0]
    fig = Figure(figsize=(9, 4), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1])
    top.scatter(keys, values, s=20 + 400 * w / w.max(), c=w, cmap="Reds", vmin=0, edgecolors="k", linewidths=0.4,
                label="(key, value) pairs, size = weight")
    top.axvline(query, color="tab:blue", ls="--", label=f"query q = {query:.2f}")
    top.scatter([query], [output.item()], marker="*", s=250, color="tab:blue", zorder=3,
                label=f"answer = {output.item():.2f}")
    top.set_xlabel("key")
    top.set_ylabel("value")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    top.set_title(f"Soft lookup with Gaussian scores, sigma = {sigma:.2f}")
    bottom.imshow(w[None].numpy(), cmap="Reds", vmin=0, aspect="auto")
    bottom.set_yticks([0], ["weights"])
    bottom.set_xticks(range(len(keys)), [f"{k:.1f}" for k in keys.tolist()], fontsize=7, rotation=90)
    bottom.set_xlabel("keys (sorted)")
    return fig


def query_explorer(keys: torch.Tensor, values: torch.Tensor, *, query: float | None = None,
                   sigma: float = 0.5):
    """Sliders for the query and the bandwidth sigma, redrawing :func:`query_explorer_figure`."""
    import ipywidgets as widgets
    from IPython.display import display

    low, high = float(keys.min()), float(keys.max())
    query = (low + high) / 2 if query is None else query
    q_slider = widgets.FloatSlider(value=query, min=low, max=high, step=(high - low) / 100,
                                   description="query q", continuous_update=False)
    s_slider = widgets.FloatLogSlider(value=sigma, base=10, min=-2, max=1, step=0.05,
                                      description="sigma", continuous_update=False)
    output = widgets.Output()

    def redraw(_=None):
        output.clear_output(wait=True)
        with output:
            display(query_explorer_figure(keys, values, q_slider.value, s_slider.value))

    q_slider.observe(redraw, names="value")
    s_slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([q_slider, s_slider]), output])


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (for precomputed frames)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def frame_slider(frames: dict[str, Figure], *, description: str = "", dpi: int = 80):
    """A slider over precomputed figures that works **without a kernel** (static HTML too).

    Each figure is rendered once to PNG and shown in a tab; the slider's ``index`` is linked to
    the tabs' ``selected_index`` in the browser with ``jslink``. Nothing runs in Python when the
    reader moves the slider, so the widget keeps working on the static web page (whose widget
    state embeds the images) as well as in Jupyter and Colab. Only the ipywidgets API shared by
    versions 7 and 8 is used (``SelectionSlider.index``, ``Tab.set_title``, ``jslink``).

    Args:
        frames: label -> figure, in slider order (e.g. ``{"sigma = 0.1": fig, ...}``).
        description: the slider's label.
    """
    import ipywidgets as widgets

    if not frames:
        raise ValueError("frames must hold at least one (label, figure) pair")
    labels = list(frames)
    images = [widgets.Image(value=figure_png(fig, dpi), format="png") for fig in frames.values()]
    tabs = widgets.Tab(children=images)
    for i, label in enumerate(labels):
        tabs.set_title(i, label)
    slider = widgets.SelectionSlider(options=labels, value=labels[0], description=description,
                                     continuous_update=True,
                                     layout=widgets.Layout(width="60%"),
                                     style={"description_width": "initial"})
    widgets.jslink((slider, "index"), (tabs, "selected_index"))
    tabs.selected_index = 0
    return widgets.VBox([slider, tabs])
