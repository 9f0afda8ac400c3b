"""The drawing kit of the book's figures: one SVG canvas with boxes, arrows, labels and grids.

Every figure (``make_figures.py`` for chapters 1-7, ``figures_8_12.py`` for chapters 8-12) uses
these helpers, so all of them share the colours of the chapters' plots (queries blue, keys orange,
values green, weights red, outputs purple), rounded boxes and one font.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
# colour: (stroke, fill)
COLOURS = {
    "query": ("#1f77b4", "#dbe9f6"),
    "key": ("#d9730d", "#fde7d0"),
    "value": ("#2c8c2c", "#dcf0dc"),
    "weight": ("#c62828", "#f9dede"),
    "output": ("#7b3fa0", "#ece0f4"),
    "op": ("#555555", "#f2f2f2"),
    "norm": ("#8a6d00", "#fff4c4"),
    "ffn": ("#00838f", "#d6f1f3"),
    "plain": ("#444444", "#ffffff"),
}
INK = "#222222"
MUTED = "#6b6b6b"


class Svg:
    def __init__(self, width: int, height: int, title: str):
        self.width, self.height, self.title = width, height, title
        self.items: list[str] = []

    def add(self, item: str) -> None:
        self.items.append(item)

    def box(self, x, y, w, h, label="", kind="plain", size=15, rx=8, dashed=False, bold=False,
            lines=None, opacity=1.0, fill=None):
        stroke, default_fill = COLOURS[kind]
        fill = fill or default_fill
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.add(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" fill="{fill}" '
                 f'fill-opacity="{opacity}" stroke="{stroke}" stroke-width="1.6"{dash}/>')
        lines = lines if lines is not None else ([label] if label else [])
        step = size * 1.25
        top = y + h / 2 - step * (len(lines) - 1) / 2
        for i, line in enumerate(lines):
            self.text(x + w / 2, top + i * step, line, size=size, bold=bold)

    def text(self, x, y, s, size=15, anchor="middle", colour=INK, bold=False, italic=False):
        weight = ' font-weight="bold"' if bold else ""
        style = ' font-style="italic"' if italic else ""
        self.add(f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" '
                 f'dominant-baseline="central" fill="{colour}"{weight}{style}>{escape(s)}</text>')

    def text_lines(self, x, y, lines, step=16, size=13, **style):
        """Several lines of :meth:`text`, ``step`` apart, the first at ``(x, y)``."""
        for k, line in enumerate(lines):
            self.text(x, y + step * k, line, size=size, **style)

    def frame(self, x, y, w, h, rx=12, colour="#9a9a9a", width=1.4):
        """An unfilled dashed frame around a group of items (e.g. a block repeated L times)."""
        self.add(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" fill="none" '
                 f'stroke="{colour}" stroke-width="{width}" stroke-dasharray="6 4"/>')

    def line(self, points, colour=INK, width=1.6, arrow=True, dashed=False, opacity=1.0, halo=False):
        d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
        if halo:   # a white casing, so that lines it crosses look interrupted
            self.add(f'<path d="{d}" fill="none" stroke="#ffffff" stroke-width="{width + 6}"/>')
        marker = f' marker-end="url(#arrow-{colour[1:]})"' if arrow else ""
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        self.add(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{width}" '
                 f'stroke-opacity="{opacity}" stroke-linejoin="round"{dash}{marker}/>')

    def circle(self, x, y, r, label, kind="op", size=16):
        stroke, fill = COLOURS[kind]
        self.add(f'<circle cx="{x}" cy="{y}" r="{r}" fill="{fill}" stroke="{stroke}" stroke-width="1.6"/>')
        self.text(x, y, label, size=size)

    def grid(self, x, y, cell, allowed, kind="weight", label=""):
        """A small mask matrix: allowed[i][j] True = query i may attend to key j (filled)."""
        stroke, fill = COLOURS[kind]
        n_rows, n_cols = len(allowed), len(allowed[0])
        for i in range(n_rows):
            for j in range(n_cols):
                colour = stroke if allowed[i][j] else "#ffffff"
                self.add(f'<rect x="{x + j * cell}" y="{y + i * cell}" width="{cell}" height="{cell}" '
                         f'fill="{colour}" fill-opacity="{0.75 if allowed[i][j] else 1}" '
                         f'stroke="#9a9a9a" stroke-width="0.8"/>')
        if label:
            self.text(x + n_cols * cell / 2, y + n_rows * cell + 14, label, size=12, colour=MUTED)

    def rich(self, x, y, s, size=15, anchor="middle", colour=INK, bold=False):
        """Text with superscripts written ``e^{m - m'}``: the part in braces is raised and smaller."""
        weight = ' font-weight="bold"' if bold else ""
        sup = max(11, round(size * 0.78))
        parts, raised = [], False
        for i, piece in enumerate(re.split(r"\^\{([^}]*)\}", s)):
            if not piece:
                continue
            if i % 2:  # a superscript
                parts.append(f'<tspan dy="{-size * 0.4:.1f}" font-size="{sup}">{escape(piece)}</tspan>')
                raised = True
            else:
                dy = f' dy="{size * 0.4:.1f}"' if raised else ""
                parts.append(f"<tspan{dy}>{escape(piece)}</tspan>")
                raised = False
        self.add(f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" '
                 f'dominant-baseline="central" fill="{colour}"{weight}>{"".join(parts)}</text>')

    def matrix(self, x, y, rows, size=14, col=44, row=22, colour=INK):
        """A small matrix of numbers (a list of rows of strings) in square brackets; (x, y) = top left."""
        n_rows, n_cols = len(rows), len(rows[0])
        h, w = n_rows * row, n_cols * col
        for side, x0 in ((1, x), (-1, x + w)):
            self.line([(x0 + 6 * side, y), (x0, y), (x0, y + h), (x0 + 6 * side, y + h)], colour,
                      width=1.4, arrow=False)
        for i, values in enumerate(rows):
            for j, value in enumerate(values):
                self.text(x + col * (j + 0.5), y + row * (i + 0.5), value, size=size, colour=colour)
        return w, h

    def render(self) -> str:
        colours = sorted({c for c in (v[0] for v in COLOURS.values())} | {INK, MUTED, "#9a9a9a"})
        markers = "".join(
            f'<marker id="arrow-{c[1:]}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
            for c in colours)
        body = "\n  ".join(self.items)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="{FONT}" role="img">\n'
                f'  <title>{escape(self.title)}</title>\n  <defs>{markers}</defs>\n'
                f'  <rect width="100%" height="100%" fill="#ffffff"/>\n  {body}\n</svg>\n')
