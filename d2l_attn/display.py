"""Results as tables, and live explorers with a static figure for the web page.

:func:`table` turns rows of results into a small object that a notebook shows as an HTML table
(``_repr_html_``: it wraps in the page's column, scrolls as one unit with a visible cue when it
is wider, and a screen reader reads it as a table) and that prints as aligned plain text
(``repr``) where no HTML is shown (a terminal, ``print``). No pandas needed.

:func:`with_static_figure` gives a live ipywidgets explorer (sliders redrawing a figure in a
running kernel) a second representation: the figure at its starting values as a plain image,
with a one-line link to the notebook in Colab. Jupyter and JupyterLab show the live widget (a
frontend that renders widgets prefers the widget view; Colab is sent the widget alone); the book's
web page, which has
no kernel, shows the static figure instead of sliders that would move without changing anything
(``_config.yml`` ranks ``text/html`` before the widget view for the HTML builder).
"""

from __future__ import annotations

import base64
import functools
import html
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["Table", "table", "with_static_figure"]

# the link's href is replaced on the page by the chapter's Colab URL (book/_ext/reader.js)
COLAB_HOME = "https://colab.research.google.com/"


def _cell(value: Any, precision: int) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return str(x)
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 10 ** (-precision)):
            return f"{x:.{precision}g}"
        return f"{x:.{precision}f}"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a 0-d tensor or numpy scalar
        return _cell(value.item(), precision)
    return str(value)


def _numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("+", "").replace(" ", "")
    try:
        float(stripped)
    except ValueError:
        return False
    return True


class Table:
    """A result table: an HTML table in a notebook or on the page, aligned text in ``repr``."""

    def __init__(self, header: list[str], rows: list[list[str]], caption: str = "") -> None:
        self.header, self.rows, self.caption = header, rows, caption

    def _align(self, j: int) -> str:
        column = [row[j] for row in self.rows if row[j] not in ("", "-")]
        return "right" if column and all(_numeric(c) for c in column) else "left"

    def _repr_html_(self) -> str:
        def row_html(cells: list[str], tag: str) -> str:
            return (
                "<tr>"
                + "".join(
                    f'<{tag} style="text-align:{self._align(j)}">{html.escape(c)}</{tag}>' for j, c in enumerate(cells)
                )
                + "</tr>"
            )

        label = html.escape(self.caption or "results table", quote=True)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        body = "".join(row_html(row, "td") for row in self.rows)
        return (
            f'<div class="d2l-table-wrap" role="region" tabindex="0" aria-label="{label}">'
            f'<table class="d2l-table">{caption}<thead>{row_html(self.header, "th")}</thead>'
            f"<tbody>{body}</tbody></table></div>"
        )

    def __repr__(self) -> str:
        widths = [max(len(r[j]) for r in [self.header, *self.rows]) for j in range(len(self.header))]

        def line(cells: list[str]) -> str:
            return " | ".join(
                c.rjust(w) if self._align(j) == "right" else c.ljust(w) for j, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        rule = "-+-".join("-" * w for w in widths)
        text = [line(self.header), rule, *(line(r) for r in self.rows)]
        return "\n".join(([self.caption] if self.caption else []) + text)

    __str__ = __repr__


def table(
    rows: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    precision: int = 3,
    caption: str = "",
) -> Table:
    """A :class:`Table` from rows (sequences, with ``columns`` naming them, or dicts).

    Numbers are formatted with ``precision`` decimals (``g`` format for very large or very small
    values, thousands separators for large ints); strings are shown as given, so a cell that
    needs its own format is passed formatted (``f"{acc:.1%}"``).
    """
    rows = list(rows)
    if not isinstance(precision, int) or not 0 <= precision <= 12:
        raise ValueError(f"precision must be an int in [0, 12], got {precision!r}")
    if rows and isinstance(rows[0], Mapping):
        if columns is None:
            columns = list(rows[0])
        rows = [[row.get(c) for c in columns] for row in rows]
    if columns is None:
        raise ValueError("columns must name the columns when rows are sequences, e.g. columns=['run', 'loss']")
    header = [str(c) for c in columns]
    cells = []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != len(header):
            raise ValueError(f"row {i} must be a sequence of {len(header)} values (one per column), got {row!r}")
        cells.append([_cell(v, precision) for v in row])
    return Table(header, cells, caption)


@functools.cache
def _static_box_class():
    import ipywidgets as widgets
    from IPython.display import display

    class LiveExplorer(widgets.VBox):
        """A VBox whose mime bundle also holds a static figure (``text/html``) for the web page."""

        static_html = ""

        def _widget_bundle(self, **kwargs) -> dict:
            parent = getattr(super(), "_repr_mimebundle_", None)  # ipywidgets 8
            if parent is not None:
                return dict(parent(**kwargs) or {})
            return {  # ipywidgets 7 builds the same bundle in _ipython_display_
                "text/plain": repr(self),
                "application/vnd.jupyter.widget-view+json": {
                    "version_major": 2,
                    "version_minor": 0,
                    "model_id": self._model_id,
                },
            }

        def _repr_mimebundle_(self, **kwargs) -> dict:
            from .utils import in_colab

            bundle = self._widget_bundle(**kwargs)
            # Colab's frontend is not asked to choose: it gets the live widget alone
            if "application/vnd.jupyter.widget-view+json" in bundle and not in_colab():
                bundle["text/html"] = self.static_html
            return bundle

        if hasattr(widgets.Widget, "_ipython_display_"):  # ipywidgets 7 displays this way

            def _ipython_display_(self, **kwargs) -> None:
                display(self._repr_mimebundle_(), raw=True)
                if hasattr(self, "_handle_displayed"):
                    self._handle_displayed(**kwargs)

    return LiveExplorer


def with_static_figure(box: ipywidgets.VBox, png: bytes, controls: Sequence[str]) -> ipywidgets.VBox:
    """``box`` (an ipywidgets ``VBox``) that shows, where no kernel runs, the PNG ``png`` instead.

    ``controls`` name the live controls (for the figure's alt text and the note under it).
    """
    if not isinstance(png, bytes) or not png.startswith(b"\x89PNG"):
        raise ValueError("png must be the PNG bytes of the explorer's first figure")
    names = ", ".join(controls)
    live = _static_box_class()(children=box.children, layout=box.layout)
    live.static_html = (
        '<figure class="d2l-live-static">'
        f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" '
        f'alt="{html.escape(f"The figure at the starting values of {names}", quote=True)}" />'
        '<figcaption class="d2l-live-note">A live explorer (' + html.escape(names) + ") redraws this figure "
        f'in a running notebook: <a class="d2l-live-colab" href="{COLAB_HOME}">explore it live in the notebook '
        "(Colab)</a>.</figcaption></figure>"
    )
    return live
