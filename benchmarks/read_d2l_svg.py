#!/usr/bin/env python
r"""Read the curves of a matplotlib SVG training plot back into data units (chapter 10, D2L's published runs).

D2L's executed notebooks (``d2l-ai/d2l-pytorch-colab``) store each training plot of ``d2l.ProgressBoard``
as a matplotlib ``image/svg+xml`` output, with no printed numbers. This script takes such an SVG, saved
as a file from the stored notebook (the strings of the output's ``image/svg+xml`` list joined), and
prints every curve's last point in data units. Chapter 10 quotes the ``val_acc`` values it read; the
book's build never runs it (it needs the saved SVG files, which the book does not ship).

How the numbers come back:

* **Axes.** matplotlib writes each tick as ``<g id="ytick_N">`` holding a ``<use ... y="...">`` (its
  pixel position) and a text group whose comment is the label (``<!-- 0.8 -->``). For a linear axis,
  data :math:`v = a\,p + b`; :math:`a, b` are the least-squares line through the (pixel, label)
  pairs, and the fit's worst residual must be below ``1e-4`` px (a log axis fails this and is refused).
* **Curves.** Each plotted line is a direct child ``<g id="line2d_N">`` of the axes with a
  ``<path d="M x y L x y ...">``. ProgressBoard redraws every series at each update, so an SVG holds
  many prefixes of one series; the *last* path with a given style is the complete series.
* **Names.** The legend (``<g id="legend_1">``) pairs each handle's style with the comment of the
  text group that follows it (``<!-- val_acc -->``).

Precision: matplotlib writes coordinates with six decimals (at most ``5e-7`` px off), so a value read
here is exact to :math:`5\times10^{-7}\,|a|` in data units -- far below the three decimals quoted --
rather than the half pixel (:math:`0.5\,|a|`, printed as ``half_px``) of reading a raster image by eye.

Example::

    python benchmarks/read_d2l_svg.py vit_0463544.svg resnet_0463544.svg
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
LINEAR_TOLERANCE_PX = 1e-4  # worst tick off the fitted line, in pixels
COORDINATE_ROUNDING_PX = 5e-7  # matplotlib's six decimals


@dataclass(frozen=True)
class AxisMap:
    """Pixel -> data on one linear axis: ``data = scale * pixel + offset``."""

    scale: float
    offset: float

    def __call__(self, pixel: float) -> float:
        return self.scale * pixel + self.offset

    @property
    def half_pixel(self) -> float:
        """Half a pixel in data units (the resolution of reading a raster copy by eye)."""
        return 0.5 * abs(self.scale)


@dataclass(frozen=True)
class Plot:
    """One axes: its two axis maps and each curve as ``(x, y)`` points in data units."""

    x: AxisMap
    y: AxisMap
    curves: dict[str, list[tuple[float, float]]]


def _local(tag: object) -> str:
    return tag.removeprefix(SVG) if isinstance(tag, str) else ""


def _comment(group: ET.Element) -> str | None:
    """Text of the first XML comment inside ``group`` (matplotlib's label of a text element)."""
    for node in group.iter():
        if node.tag is ET.Comment:
            return (node.text or "").strip()
    return None


def _number(label: str) -> float:
    try:
        return float(label.replace("\u2212", "-"))  # matplotlib writes a true minus sign
    except ValueError:
        raise ValueError(f"tick label {label!r} is not a plain number (mathtext or a custom formatter)") from None


def fit_axis(ticks: list[tuple[float, float]], name: str) -> AxisMap:
    """Least-squares line through ``(pixel, value)`` tick pairs; refuses non-linear axes."""
    if len(ticks) < 2:
        raise ValueError(f"{name}: need at least 2 labelled ticks to map pixels to data, got {len(ticks)}")
    n = len(ticks)
    mean_p = sum(p for p, _ in ticks) / n
    mean_v = sum(v for _, v in ticks) / n
    spread = sum((p - mean_p) ** 2 for p, _ in ticks)
    if spread == 0:
        raise ValueError(f"{name}: all ticks sit at the same pixel")
    scale = sum((p - mean_p) * (v - mean_v) for p, v in ticks) / spread
    offset = mean_v - scale * mean_p
    worst = max(abs((v - offset) / scale - p) for p, v in ticks)
    if worst > LINEAR_TOLERANCE_PX:
        raise ValueError(f"{name}: ticks are {worst:.3g} px off a straight line; only linear axes are supported")
    return AxisMap(scale, offset)


def _ticks(axes: ET.Element, axis: str) -> list[tuple[float, float]]:
    attribute = "x" if axis == "x" else "y"
    pairs = []
    for group in axes.iter(f"{SVG}g"):
        if not group.get("id", "").startswith(f"{axis}tick_"):
            continue
        mark = next(group.iter(f"{SVG}use"), None)
        label = _comment(group)
        if mark is None or not label:
            continue
        pairs.append((float(mark.get(attribute)), _number(label)))
    return pairs


def _points(d: str) -> list[tuple[float, float]]:
    """Vertices of a path made of ``M``/``L`` commands (what matplotlib writes for a line)."""
    if re.search(r"[^MLml\d\s.,eE+-]", d):
        raise ValueError(f"path has commands other than M/L: {d[:60]!r}")
    numbers = [float(t) for t in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", d)]
    return list(zip(numbers[0::2], numbers[1::2]))


def _legend(axes: ET.Element) -> dict[str, str]:
    """style -> label, from the legend's handle lines and the text group after each."""
    legend = next((g for g in axes if _local(g.tag) == "g" and g.get("id", "").startswith("legend")), None)
    names: dict[str, str] = {}
    style = None
    for child in legend if legend is not None else []:
        gid = child.get("id", "")
        path = child.find(f"{SVG}path")
        if gid.startswith("line2d") and path is not None:
            style = path.get("style", "")
        elif gid.startswith("text") and style is not None:
            names[style] = _comment(child) or gid
            style = None
    return names


def read_plot(svg_path: str | Path) -> list[Plot]:
    """Every axes of a matplotlib SVG, its curves in data units (named by the legend when there is one)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.parse(svg_path, parser=parser).getroot()
    plots = []
    for axes in root.iter(f"{SVG}g"):
        if not axes.get("id", "").startswith("axes"):
            continue
        x_map = fit_axis(_ticks(axes, "x"), f"{svg_path} x axis")
        y_map = fit_axis(_ticks(axes, "y"), f"{svg_path} y axis")
        names = _legend(axes)
        curves: dict[str, list[tuple[float, float]]] = {}
        for child in axes:  # direct children only: tick marks and legend handles are nested deeper
            path = child.find(f"{SVG}path")
            if not child.get("id", "").startswith("line2d") or path is None:
                continue
            style = path.get("style", "")
            name = names.get(style, f"{child.get('id')} ({style})")
            curves[name] = [(x_map(px), y_map(py)) for px, py in _points(path.get("d", ""))]  # later wins
        plots.append(Plot(x_map, y_map, curves))
    if not plots:
        raise ValueError(f"{svg_path}: no matplotlib axes (<g id='axes_N'>) found")
    return plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("svg", nargs="+", help="SVG file(s) saved from a notebook's image/svg+xml output")
    args = parser.parse_args(argv)
    for path in args.svg:
        for i, plot in enumerate(read_plot(path), 1):
            print(
                f"{path} (axes {i}): half_px = {plot.y.half_pixel:.6f} in y, coordinate rounding = "
                f"{COORDINATE_ROUNDING_PX * abs(plot.y.scale):.1e}"
            )
            for name, points in plot.curves.items():
                x, y = points[-1]
                print(f"  {name:12} {len(points):3d} points, last at x = {x:.4f}, y = {y:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
