"""Figures for attention weights (chapter 1 on).

* :func:`show_heatmaps` -- a grid of heatmaps, one per matrix (chapters 1-7);
* :func:`show_attention_grid` -- every layer and head of a model, layers x heads (chapters 5, 7, 11);
* :func:`plot_curves` -- named curves such as training losses;
* :func:`attention_view` -- an interactive layers/heads view in HTML + inline script, for Jupyter,
  Colab and the static pages (defined in :mod:`d2l_attn.attention_view`, chapters 7 and 11).

Every figure function builds and returns a new :class:`matplotlib.figure.Figure`; none of them calls
``plt.rcParams.update``, ``plt.style.use`` or touches pyplot's current figure, so importing or
calling them changes no global state. In a notebook, a returned figure displays itself when it is
the cell's last expression.

Readable on a phone: a figure is shown at most as wide as the page's column (about 358 px on a
390-px phone), so a ``W``-inch figure rendered at ``dpi`` is scaled by ``min(1, 358 / (W dpi))``
and a ``s``-point label ends up :func:`rendered_font_px` pixels tall. Every figure built here
sizes its labels, ticks, titles, legends and colorbars with :func:`readable_fontsize`, so that they
are at least :data:`MIN_LABEL_PX` (9 px) there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .attention_view import attention_view

__all__ = [
    "show_heatmaps",
    "show_attention_grid",
    "plot_curves",
    "attention_view",
    "rendered_font_px",
    "readable_fontsize",
    "PHONE_COLUMN_PX",
    "MIN_LABEL_PX",
]

PHONE_COLUMN_PX = 358  # the content column of a 390-px phone
MIN_LABEL_PX = 9.0  # the smallest label height (CSS px) a figure may show there
INLINE_DPI = 100  # matplotlib's figure.dpi, which the notebooks' inline PNGs use
MAX_GRID_WIDTH = 8.0  # inches: wider heatmap grids would need fonts too large on a desktop


def rendered_font_px(
    fontsize_pt: float, fig_width_in: float, *, dpi: float = INLINE_DPI, column_px: float = PHONE_COLUMN_PX
) -> float:
    """Height in CSS px of a ``fontsize_pt`` label in a figure ``fig_width_in`` inches wide, shown
    in a ``column_px``-wide column: the PNG is ``fig_width_in * dpi`` px wide and is scaled down to
    the column (never up), so the label is ``fontsize_pt * dpi / 72 * min(1, column_px / (W dpi))``.
    """
    for name, value in (
        ("fontsize_pt", fontsize_pt),
        ("fig_width_in", fig_width_in),
        ("dpi", dpi),
        ("column_px", column_px),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return fontsize_pt * dpi / 72 * min(1.0, column_px / (fig_width_in * dpi))


def readable_fontsize(
    fig_width_in: float,
    *,
    dpi: float = INLINE_DPI,
    column_px: float = PHONE_COLUMN_PX,
    min_px: float = MIN_LABEL_PX,
    base: float = 10.0,
) -> float:
    """The font size in points (at least ``base``, in half points) whose labels render at least
    ``min_px`` tall when the figure is shown ``column_px`` wide (see :func:`rendered_font_px`)."""
    scale = rendered_font_px(72.0, fig_width_in, dpi=dpi, column_px=column_px) / 72.0  # px per pt
    return max(base, math.ceil(2 * min_px / scale) / 2)


def _readable_text(fig: Figure, fontsize: float) -> None:
    """Give every axes' ticks, labels, title and legend (and colorbars) ``fontsize`` points."""
    for ax in fig.axes:
        ax.tick_params(labelsize=fontsize)
        ax.xaxis.label.set_fontsize(fontsize)
        ax.yaxis.label.set_fontsize(fontsize)
        ax.title.set_fontsize(fontsize)
        ax.xaxis.get_offset_text().set_fontsize(fontsize)
        ax.yaxis.get_offset_text().set_fontsize(fontsize)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(fontsize)
    if fig._suptitle is not None:
        fig._suptitle.set_fontsize(fontsize)


def _to_numpy(matrices) -> np.ndarray:
    if isinstance(matrices, torch.Tensor):
        return matrices.detach().to("cpu", torch.float32).numpy()
    return np.asarray(matrices, dtype=np.float32)


def show_heatmaps(
    matrices,
    *,
    xlabel: str = "Keys",
    ylabel: str = "Queries",
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
    figsize: tuple[float, float] | None = None,
    cmap: str = "Reds",
    vmin: float | None = 0.0,
    vmax: float | None = None,
    colorbar: bool = True,
) -> Figure:
    """Draw a grid of heatmaps, one per attention-weight matrix.

    Args:
        matrices: shape ``(rows, cols, T_q, T_k)`` (e.g. layers x heads), or ``(T_q, T_k)``,
            or ``(n, T_q, T_k)`` (drawn as one row).
        titles: one title per column (e.g. ``["Head 1", ...]``), optional.
        row_labels: one label per row (e.g. ``["layer 1", ...]``), written above ``ylabel``, optional.
        xticklabels / yticklabels: tokens for the keys / queries, optional.

    Returns:
        The figure; pyplot's global state is left unchanged.
    """
    data = _to_numpy(matrices)
    if data.ndim == 2:
        data = data[None, None]
    elif data.ndim == 3:
        data = data[None]
    if data.ndim != 4:
        raise ValueError(
            "matrices must have shape (T_q, T_k), (n, T_q, T_k) or (rows, cols, T_q, T_k), "
            f"got {tuple(_to_numpy(matrices).shape)}"
        )
    num_rows, num_cols, num_queries, num_keys = data.shape
    if titles is not None and len(titles) != num_cols:
        raise ValueError(f"titles must have one entry per column ({num_cols}), got {len(titles)}")
    if row_labels is not None and len(row_labels) != num_rows:
        raise ValueError(f"row_labels must have one entry per row ({num_rows}), got {len(row_labels)}")
    if xticklabels is not None and len(xticklabels) != num_keys:
        raise ValueError(f"xticklabels must have {num_keys} entries (T_k), got {len(xticklabels)}")
    if yticklabels is not None and len(yticklabels) != num_queries:
        raise ValueError(f"yticklabels must have {num_queries} entries (T_q), got {len(yticklabels)}")
    if figsize is None:
        width = min(2.2 * num_cols, MAX_GRID_WIDTH - (0.8 if colorbar else 0))
        figsize = (width + (0.8 if colorbar else 0), min(2.2 * num_rows * width / (2.2 * num_cols), 10) + 0.4)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(num_rows, num_cols, sharex=True, sharey=True, squeeze=False)
    vmax = float(data.max()) if vmax is None else vmax
    image = None
    for r in range(num_rows):
        for c in range(num_cols):
            ax = axes[r, c]
            image = ax.imshow(data[r, c], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            if r == num_rows - 1:
                ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(ylabel if row_labels is None else f"{row_labels[r]}\n{ylabel}")
            if titles is not None and r == 0:
                ax.set_title(titles[c])
            if xticklabels is not None:
                ax.set_xticks(range(num_keys), list(xticklabels), rotation=90)
            if yticklabels is not None:
                ax.set_yticks(range(num_queries), list(yticklabels))
    if colorbar and image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6)
    _readable_text(fig, readable_fontsize(figsize[0]))
    return fig


def show_attention_grid(
    weights,
    *,
    title: str | None = None,
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
    xlabel: str = "keys",
    ylabel: str = "queries",
    figsize: tuple[float, float] | None = None,
    cmap: str = "Reds",
    vmin: float | None = 0.0,
    vmax: float | None = None,
) -> Figure:
    """Every attention map of a model: one row per layer, one column per head.

    Args:
        weights: ``(L, h, T_q, T_k)`` -- e.g. one sentence of what
            :func:`d2l_attn.interpret.collect_attention` returns, ``maps["encoder"][0]`` -- or
            ``(h, T_q, T_k)`` for a single layer.
        title: the figure's title (e.g. ``"cross-attention"``), optional.
        xticklabels / yticklabels: tokens for the keys / queries, optional.

    Columns are titled ``head 1, ...``, rows (when there are several layers) labelled
    ``layer 1, ...``; all maps share one color scale. Returns a new figure; pyplot's global state
    is left unchanged.
    """
    data = _to_numpy(weights)
    if data.ndim == 3:
        data = data[None]  # one layer
    if data.ndim != 4:
        raise ValueError(f"weights must have shape (L, h, T_q, T_k) or (h, T_q, T_k), got {tuple(data.shape)}")
    num_layers, num_heads = data.shape[:2]
    if figsize is None:
        width = min(2.2 * num_heads, MAX_GRID_WIDTH - 1)
        figsize = (width + 1, min(2.2 * num_layers * width / (2.2 * num_heads), 10) + (0.4 if title else 0.0))
    fig = show_heatmaps(
        data,
        xlabel=xlabel,
        ylabel=ylabel,
        titles=[f"head {i + 1}" for i in range(num_heads)],
        row_labels=[f"layer {i + 1}" for i in range(num_layers)] if num_layers > 1 else None,
        xticklabels=xticklabels,
        yticklabels=yticklabels,
        figsize=figsize,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
    )
    if title:
        fig.suptitle(title, fontsize=readable_fontsize(figsize[0]))
    return fig


def plot_curves(
    curves: dict[str, Sequence[float]],
    *,
    x: Sequence[float] | None = None,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
    logy: bool = False,
    figsize: tuple[float, float] = (4.8, 3.2),
) -> Figure:
    """Plot named curves on one set of axes and return the figure (labels sized for a phone)."""
    if not curves:
        raise ValueError("curves must name at least one curve")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    for name, ys in curves.items():
        ys = _to_numpy(ys)
        xs = np.arange(1, len(ys) + 1) if x is None else _to_numpy(x)
        if len(xs) != len(ys):
            raise ValueError(f"curve {name!r} has {len(ys)} points but x has {len(xs)}")
        ax.plot(xs, ys, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    _readable_text(fig, readable_fontsize(figsize[0]))
    return fig
