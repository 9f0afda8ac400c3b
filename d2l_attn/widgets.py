"""Interactive explorers for the chapters (ipywidgets).

Only the widget API common to ipywidgets 7 and 8 is used (``FloatSlider``, ``FloatLogSlider``,
``Dropdown``, ``Output``, ``VBox``/``HBox``, ``observe``), so the explorers run in Jupyter,
JupyterLab and Colab. Each explorer is built from a pure *figure function* that the tests call
directly; the widget only wires sliders to it.

Live widgets need a running kernel: on the static web page each live explorer shows its first
figure as an image with a link to the notebook in Colab (:func:`d2l_attn.display.with_static_figure`),
not sliders that would move without changing the figure; :func:`frame_slider` works everywhere.

The live explorers show their figure in an ``Image`` widget whose PNG bytes are replaced on
every redraw, never by ``display`` into an ``Output`` widget. Under nbclient (the book build,
nbval) an ``Output`` widget that receives output during execution makes the client send a
``comm_msg`` on the shell socket while it is waiting on that socket for the cell's
``execute_reply``; now and then the reply's wake-up is lost and the wait lasts the whole
``execute.timeout`` before the reply is picked up, silently (measured: 12 of 900 such cells
stalled; jupyter/nbclient#312). An ``Image`` widget sends no output messages, so the client never
writes to the shell socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from matplotlib.figure import Figure

from .pooling import KERNELS, nadaraya_watson, soft_lookup

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "query_explorer_figure",
    "query_explorer",
    "figure_png",
    "frame_slider",
    "live_explorer",
    "kernel_regression_figure",
    "kernel_regression_explorer",
    "positional_explorer_figure",
    "positional_explorer",
    "scaling_explorer_figure",
    "scaling_explorer",
]


def query_explorer_figure(keys: torch.Tensor, values: torch.Tensor, query: float, sigma: float) -> Figure:
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
    top.scatter(
        keys,
        values,
        s=20 + 400 * w / w.max(),
        c=w,
        cmap="Reds",
        vmin=0,
        edgecolors="k",
        linewidths=0.4,
        label="(key, value) pairs, size = weight",
    )
    top.axvline(query, color="tab:blue", ls="--", label=f"query q = {query:.2f}")
    top.scatter(
        [query], [output.item()], marker="*", s=250, color="tab:blue", zorder=3, label=f"answer = {output.item():.2f}"
    )
    top.set_xlabel("key")
    top.set_ylabel("value")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    top.set_title(f"Soft lookup with Gaussian scores, sigma = {sigma:.2f}")
    bottom.imshow(w[None].numpy(), cmap="Reds", vmin=0, aspect="auto")
    bottom.set_yticks([0], ["weights"])
    bottom.set_xticks(range(len(keys)), [f"{k:.1f}" for k in keys.tolist()], fontsize=7, rotation=90)
    bottom.set_xlabel("keys (sorted)")
    return fig


def query_explorer(
    keys: torch.Tensor, values: torch.Tensor, *, query: float | None = None, sigma: float = 0.5
) -> ipywidgets.VBox:
    """Sliders for the query and the bandwidth sigma, redrawing :func:`query_explorer_figure`."""
    import ipywidgets as widgets

    low, high = float(keys.min()), float(keys.max())
    query = (low + high) / 2 if query is None else query
    q_slider = widgets.FloatSlider(
        value=query, min=low, max=high, step=(high - low) / 100, description="query q", continuous_update=False
    )
    s_slider = widgets.FloatLogSlider(
        value=sigma, base=10, min=-2, max=1, step=0.05, description="sigma", continuous_update=False
    )
    image = _live_image(
        lambda: query_explorer_figure(keys, values, q_slider.value, s_slider.value), [q_slider, s_slider]
    )
    return _explorer([widgets.HBox([q_slider, s_slider]), image], image, [q_slider, s_slider])


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (for precomputed frames)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _live_image(draw, controls, dpi: int = 100):
    """An ``Image`` widget showing ``draw()`` as PNG, redrawn whenever one of ``controls`` changes.

    Not an ``Output`` widget with ``display``: see the module docstring (nbclient stall).
    """
    import ipywidgets as widgets

    image = widgets.Image(value=figure_png(draw(), dpi), format="png")

    def redraw(_=None):
        image.value = figure_png(draw(), dpi)

    for control in controls:
        control.observe(redraw, names="value")
    return image


def _explorer(children, image, controls) -> ipywidgets.VBox:
    """The explorer's VBox; on the web page (no kernel) its first figure shows as a static image."""
    import ipywidgets as widgets

    from .display import with_static_figure

    names = [getattr(c, "description", "") or type(c).__name__ for c in controls]
    return with_static_figure(widgets.VBox(children), bytes(image.value), names)


def live_explorer(figure_fn: Callable[..., Figure], *, dpi: int = 100, **controls: Any) -> ipywidgets.VBox:
    """Controls over a figure function, redrawn live in a running kernel: ``interact`` without its pitfall.

    ``controls`` maps each keyword argument of ``figure_fn`` to an ipywidgets value widget
    (``IntSlider``, ``FloatSlider``, ``Dropdown``, ...); whenever one changes, the figure
    ``figure_fn(**values)`` is drawn again into an ``Image`` widget. Unlike ``ipywidgets.interact``
    (which ``display``s into an ``Output`` widget), nothing is sent as cell output, so the notebook
    never stalls under nbclient (see the module docstring). On the static page the controls and
    the first figure show; moving them needs a kernel (use :func:`frame_slider` for that).
    """
    import ipywidgets as widgets

    if not callable(figure_fn):
        raise ValueError(f"figure_fn must be a function returning a matplotlib Figure, got {type(figure_fn).__name__}")
    if not controls:
        raise ValueError("live_explorer needs at least one control, e.g. n=ipywidgets.IntSlider(...)")
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise ValueError(f"control {name!r} must be an ipywidgets value widget, got {type(control).__name__}")

    def draw() -> Figure:
        fig = figure_fn(**{name: control.value for name, control in controls.items()})
        if not isinstance(fig, Figure):
            raise ValueError(f"figure_fn must return a matplotlib Figure, got {type(fig).__name__}")
        return fig

    image = _live_image(draw, list(controls.values()), dpi)
    return _explorer([widgets.HBox(list(controls.values())), image], image, list(controls.values()))


def frame_slider(frames: dict[str, Figure], *, description: str = "", dpi: int = 80) -> ipywidgets.VBox:
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
    slider = widgets.SelectionSlider(
        options=labels,
        value=labels[0],
        description=description,
        continuous_update=True,
        layout=widgets.Layout(width="100%", max_width="36em"),
        style={"description_width": "initial"},
    )
    widgets.jslink((slider, "index"), (tabs, "selected_index"))
    tabs.selected_index = 0
    return widgets.VBox([slider, tabs])


def kernel_regression_figure(
    keys: torch.Tensor,
    values: torch.Tensor,
    queries: torch.Tensor,
    kernel: str = "gaussian",
    bandwidth: float = 0.5,
    *,
    truth: torch.Tensor | None = None,
) -> Figure:
    """Figure for chapter 2: a Nadaraya--Watson fit and its attention weights, side by side.

    Left: the training pairs (keys, values), the prediction at every query and, optionally, the
    true function at the queries. Right: the weight matrix (queries x keys, keys sorted) as a
    heatmap. The fit is :func:`d2l_attn.pooling.nadaraya_watson` with this kernel and bandwidth.

    Args:
        keys, values: ``(n,)`` each (1-D regression data).
        queries: ``(m,)``, sorted for a readable curve.
        kernel: a name in :data:`d2l_attn.pooling.KERNELS`.
        bandwidth: ``h > 0``.
        truth: optional ``(m,)``, the true function at the queries.
    """
    if keys.dim() != 1 or values.shape != keys.shape:
        raise ValueError(
            f"keys and values must both have shape (n,), got {tuple(keys.shape)} and {tuple(values.shape)}"
        )
    if queries.dim() != 1:
        raise ValueError(f"queries must have shape (m,), got {tuple(queries.shape)}")
    if truth is not None and truth.shape != queries.shape:
        raise ValueError(f"truth must have the shape of queries {tuple(queries.shape)}, got {tuple(truth.shape)}")
    order = torch.argsort(keys)
    keys, values = keys[order], values[order]
    predictions, weights = nadaraya_watson(queries, keys, values, kernel, bandwidth)  # (m,), (m, n)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.3, 1])
    left.scatter(keys, values, s=14, color="tab:gray", alpha=0.7, label="training pairs (k_i, v_i)")
    if truth is not None:
        left.plot(queries, truth, color="k", ls="--", lw=1, label="true function")
    left.plot(queries, predictions, color="tab:red", lw=2, label="prediction")
    left.set_xlabel("x (query / key)")
    left.set_ylabel("y")
    left.set_title(f"{kernel} kernel, h = {bandwidth:.3g}")
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower left", ncols=3, fontsize=8)

    # cells at the true positions: column j spans the midpoints around key j, row i around query i
    def edges(points: torch.Tensor) -> torch.Tensor:
        mid = (points[1:] + points[:-1]) / 2
        return torch.cat([points[:1] - (mid[:1] - points[:1]), mid, points[-1:] + (points[-1:] - mid[-1:])])

    image = right.pcolormesh(edges(keys).numpy(), edges(queries).numpy(), weights.numpy(), cmap="Reds", vmin=0)
    right.invert_yaxis()
    right.set_xlabel("key position k_j")
    right.set_ylabel("query position q_i")
    right.set_title("attention weights")
    fig.colorbar(image, ax=right, shrink=0.8)
    return fig


def kernel_regression_explorer(
    keys: torch.Tensor,
    values: torch.Tensor,
    queries: torch.Tensor,
    *,
    truth: torch.Tensor | None = None,
    kernel: str = "gaussian",
    bandwidth: float = 0.5,
) -> ipywidgets.VBox:
    """A bandwidth slider and a kernel dropdown redrawing :func:`kernel_regression_figure` (needs a kernel)."""
    import ipywidgets as widgets

    kernel_box = widgets.Dropdown(options=list(KERNELS), value=kernel, description="kernel")
    h_slider = widgets.FloatLogSlider(
        value=bandwidth,
        base=10,
        min=-2,
        max=1,
        step=0.05,
        description="bandwidth h",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    image = _live_image(
        lambda: kernel_regression_figure(keys, values, queries, kernel_box.value, h_slider.value, truth=truth),
        [kernel_box, h_slider],
    )
    return _explorer([widgets.HBox([kernel_box, h_slider]), image], image, [kernel_box, h_slider])


def positional_explorer_figure(encoding: torch.Tensor, position: int, dim: int) -> Figure:
    """Figure for chapter 6: a positional-encoding table ``(max_len, d)``, one position, one column.

    Left: the table as a heatmap (positions down, dimensions across) with the chosen row and
    column outlined. Top right: column ``dim`` as a function of the position (a sinusoid for
    the sinusoidal encoding), the chosen position marked. Bottom right: row ``position``, the
    vector that is added to that token's embedding.
    """
    if not isinstance(encoding, torch.Tensor) or encoding.dim() != 2:
        raise ValueError(f"encoding must have shape (max_len, d), got {getattr(encoding, 'shape', encoding)}")
    max_len, d = encoding.shape
    if not 0 <= int(position) < max_len:
        raise ValueError(f"position must lie in [0, {max_len - 1}], got {position}")
    if not 0 <= int(dim) < d:
        raise ValueError(f"dim must lie in [0, {d - 1}], got {dim}")
    position, dim = int(position), int(dim)
    table = encoding.detach().to("cpu", torch.float32)
    fig = Figure(figsize=(10, 4), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 1.4])
    heat = fig.add_subplot(grid[:, 0])
    column = fig.add_subplot(grid[0, 1])
    row = fig.add_subplot(grid[1, 1])
    image = heat.imshow(table.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    heat.axhline(position, color="k", lw=1)
    heat.axvline(dim, color="k", lw=1, ls="--")
    heat.set_xlabel("dimension j")
    heat.set_ylabel("position p")
    heat.set_title("encoding table P")
    fig.colorbar(image, ax=heat, shrink=0.7)
    column.plot(range(max_len), table[:, dim].numpy(), color="tab:blue")
    column.scatter([position], [table[position, dim].item()], color="k", zorder=3)
    kind = "sin" if dim % 2 == 0 else "cos"
    column.set_title(f"column j = {dim} ({kind}) against the position", fontsize=9)
    column.set_xlabel("position p")
    column.set_ylim(-1.1, 1.1)
    row.bar(range(d), table[position].numpy(), color=["tab:red" if j == dim else "tab:gray" for j in range(d)])
    row.set_title(f"row p = {position}: the vector added to token {position}", fontsize=9)
    row.set_xlabel("dimension j")
    row.set_ylim(-1.1, 1.1)
    return fig


def positional_explorer(encoding: torch.Tensor, *, position: int = 10, dim: int = 4) -> ipywidgets.VBox:
    """Sliders for the position and the dimension, redrawing :func:`positional_explorer_figure`."""
    import ipywidgets as widgets

    max_len, d = encoding.shape
    p_slider = widgets.IntSlider(
        value=position, min=0, max=max_len - 1, description="position p", continuous_update=False
    )
    j_slider = widgets.IntSlider(value=dim, min=0, max=d - 1, description="dimension j", continuous_update=False)
    image = _live_image(
        lambda: positional_explorer_figure(encoding, p_slider.value, j_slider.value), [p_slider, j_slider]
    )
    return _explorer([widgets.HBox([p_slider, j_slider]), image], image, [p_slider, j_slider])


def scaling_explorer_figure(d: int, *, num_keys: int = 32, num_samples: int = 4000, seed: int = 0) -> Figure:
    r"""Figure for chapter 3: why dot-product scores are divided by :math:`\sqrt{d}`.

    Queries and keys have ``d`` independent standard-normal entries. Left: histograms of the
    raw scores :math:`\mathbf{q}^\top\mathbf{k}` (variance ``d``) and of the scaled scores
    :math:`\mathbf{q}^\top\mathbf{k}/\sqrt{d}` (variance 1) over ``num_samples`` pairs. Right:
    the softmax weights of one query over ``num_keys`` keys, sorted, without and with the
    scaling: the raw scores saturate the softmax (nearly one-hot) as ``d`` grows.
    """
    import math

    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ValueError(f"d must be a positive int (the size of queries and keys), got {d!r}")
    if not isinstance(num_keys, int) or num_keys < 2:
        raise ValueError(f"num_keys must be an int >= 2, got {num_keys!r}")
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(num_samples, d, generator=g)  # (N, d)
    k = torch.randn(num_samples, d, generator=g)  # (N, d)
    raw = (q * k).sum(-1)  # (N,): one score per (q, k) pair
    scaled = raw / math.sqrt(d)  # (N,)
    query = torch.randn(d, generator=g)  # (d,)
    keys = torch.randn(num_keys, d, generator=g)  # (T_k, d)
    w_raw = torch.softmax(keys @ query, -1).sort(descending=True).values  # (T_k,)
    w_scaled = torch.softmax(keys @ query / math.sqrt(d), -1).sort(descending=True).values  # (T_k,)

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    limit = 4 * max(math.sqrt(d), 1.0)
    bins = torch.linspace(-limit, limit, 61).numpy()
    left.hist(raw.numpy(), bins=bins, alpha=0.6, color="tab:red", label=f"q.k: variance {raw.var().item():.3g}")
    left.hist(
        scaled.numpy(),
        bins=bins,
        alpha=0.6,
        color="tab:blue",
        label=f"q.k / sqrt(d): variance {scaled.var().item():.3g}",
    )
    left.set_xlabel("score")
    left.set_ylabel("count")
    left.set_title(f"Scores of random pairs, d = {d}")
    left.legend(fontsize=8, loc="upper left")
    positions = torch.arange(num_keys).numpy()
    right.bar(
        positions - 0.2, w_raw.numpy(), width=0.4, color="tab:red", label=f"softmax(q.k): max {w_raw[0].item():.2f}"
    )
    right.bar(
        positions + 0.2,
        w_scaled.numpy(),
        width=0.4,
        color="tab:blue",
        label=f"softmax(q.k / sqrt(d)): max {w_scaled[0].item():.2f}",
    )
    right.set_ylim(0, 1.05)
    right.set_xlabel("keys, sorted by weight")
    right.set_ylabel("attention weight")
    right.set_title(f"Weights of one query over {num_keys} keys")
    right.legend(fontsize=8, loc="upper right")
    return fig


def scaling_explorer(d_values=(1, 4, 16, 64, 256, 1024), *, d: int = 64, num_keys: int = 32) -> ipywidgets.VBox:
    """A slider over ``d`` redrawing :func:`scaling_explorer_figure` (needs a running kernel)."""
    import ipywidgets as widgets

    options = [int(v) for v in d_values]
    if d not in options:
        raise ValueError(f"d must be one of d_values {options}, got {d!r}")
    slider = widgets.SelectionSlider(options=options, value=d, description="d", continuous_update=False)
    image = _live_image(lambda: scaling_explorer_figure(slider.value, num_keys=num_keys), [slider])
    return _explorer([slider, image], image, [slider])
