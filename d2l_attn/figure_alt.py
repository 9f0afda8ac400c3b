"""Alt text for every matplotlib figure a notebook shows: what the figure shows, in words.

A figure displayed in a Jupyter kernel becomes a PNG output with no description, and the book's
pages would give screen readers its file name. :func:`install` (called by each chapter's setup
cell; importing ``d2l_attn`` changes nothing in the kernel) wraps the kernel's image formatters for
:class:`matplotlib.figure.Figure` so that each figure is published with
``{"image/png": {"alt": ...}}`` output metadata; the book's ``figure_alt`` Sphinx extension
(``book/_ext/figure_alt.py``) turns it into the ``alt`` of the page's ``<img>``. Cell metadata
(``mystnb: image: alt``) still wins where a notebook sets it.

:func:`describe` builds the text from the figure itself: its title, and for each panel its kind
(heatmap, line plot with its legend entries, bar chart, scatter plot), title and axis labels.
An author who can say more sets it: ``figure_alt.set_alt(fig, "...")``.
"""

from __future__ import annotations

import re
import sys

from matplotlib.figure import Figure

__all__ = ["describe", "set_alt", "install"]

_ATTR = "_d2l_alt"
_MAX_CHARS = 600
_TEX = [
    (re.compile(r"\\(?:mathbf|mathrm|mathit|operatorname|text|boldsymbol|mathcal)\s*"), ""),
    (re.compile(r"\\(?:left|right|,|;|!|quad)"), " "),
    (re.compile(r"\\([A-Za-z]+)"), r"\1"),
    (re.compile(r"[{}$]"), ""),
]


def _plain(text: str) -> str:
    """A label as a screen reader should read it: mathtext (``$\\alpha_{ij}$``) without TeX."""
    for pattern, repl in _TEX:
        text = pattern.sub(repl, text)
    return " ".join(text.split())


def set_alt(fig: Figure, text: str) -> Figure:
    """Give ``fig`` the alt text ``text`` (instead of the generated one); returns ``fig``."""
    if not isinstance(fig, Figure):
        raise TypeError(f"set_alt: fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(text, str) or len(text.split()) < 3:
        raise ValueError(f"set_alt: text must describe the figure in at least 3 words, got {text!r}")
    setattr(fig, _ATTR, " ".join(text.split()))
    return fig


def _legend_labels(ax) -> list[str]:
    legend = ax.get_legend()
    if legend is None:
        return []
    return [_plain(t.get_text()) for t in legend.get_texts() if t.get_text().strip()]


def _panel(ax) -> str:
    kinds = []
    if ax.images or any(type(c).__name__ == "QuadMesh" for c in ax.collections):
        kinds.append("heatmap")
    lines = [line for line in ax.lines if line.get_visible() and len(line.get_xdata()) > 1]
    if lines:
        kinds.append(f"line plot with {len(lines)} line{'s' if len(lines) > 1 else ''}")
    bars = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    if len(bars) > 1:
        kinds.append(f"bar chart with {len(bars)} bars")
    if any(type(c).__name__ == "PathCollection" for c in ax.collections):
        kinds.append("scatter plot")
    if not kinds and ax.texts:
        kinds.append("diagram")
    parts = [" and ".join(kinds) or "empty panel"]
    title = _plain(ax.get_title() or ax.get_title("left") or ax.get_title("right"))
    if title:
        parts.insert(0, f'"{title}":')
    for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
        if label.strip():
            parts.append(f'{axis} axis "{_plain(label)}"')
    legend = _legend_labels(ax)
    if legend:
        shown = ", ".join(legend[:8]) + (f" and {len(legend) - 8} more" if len(legend) > 8 else "")
        parts.append(f"legend: {shown}")
    return ", ".join(parts).replace(":,", ":")


def describe(fig: Figure) -> str:
    """Alt text for ``fig``: the one set with :func:`set_alt`, or one built from the figure."""
    if not isinstance(fig, Figure):
        raise TypeError(f"describe: fig must be a matplotlib Figure, got {type(fig).__name__}")
    explicit = getattr(fig, _ATTR, None)
    if explicit:
        return explicit
    # colorbars are axes too; they are named once, not described as panels
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    colorbars = len(fig.axes) - len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"])
    suptitle = getattr(fig, "_suptitle", None)
    head = f'Figure "{_plain(suptitle.get_text())}"' if suptitle is not None and suptitle.get_text() else "Figure"
    panels = [_panel(ax) for ax in axes]
    if len(panels) == 1:
        text = f"{head}: {panels[0]}"
    elif len(panels) > 1 and len(set(panels)) == 1:
        text = f"{head} with {len(panels)} panels, each a {panels[0]}"
    else:
        text = f"{head} with {len(panels)} panels: " + "; ".join(f"({i}) {p}" for i, p in enumerate(panels, 1))
    if colorbars:
        text += "; with a colour scale"
    text += "."
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _with_alt(cls: type) -> type:
    """A subclass of the formatter class ``cls`` whose result for a Figure carries alt text."""

    def __call__(self, obj):
        data = cls.__call__(self, obj)
        if data is None or not isinstance(obj, Figure):
            return data
        data, meta = data if isinstance(data, tuple) else (data, None)
        return data, {**(meta or {}), "alt": describe(obj)}

    return type(cls.__name__, (cls,), {"__call__": __call__, "_d2l_alt": True})


def _ensure(shell) -> None:
    # the formatter objects stay (matplotlib's inline backend registers Figure on them when it
    # is activated, possibly later, in the very cell that shows the figure); their class learns
    # to add the alt text
    for mime in ("image/png", "image/jpeg", "image/svg+xml"):
        formatter = shell.display_formatter.formatters.get(mime)
        if formatter is not None and not getattr(type(formatter), "_d2l_alt", False):
            formatter.__class__ = _with_alt(type(formatter))


def install(shell=None) -> bool:
    """Publish every figure with alt text in this IPython kernel; False outside one.

    Idempotent. The kernel's formatters are kept; only their results for figures change.
    """
    if shell is None:
        if "IPython" not in sys.modules:
            return False
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    _ensure(shell)
    return True
