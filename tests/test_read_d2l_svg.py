"""benchmarks/read_d2l_svg.py reads a matplotlib SVG's curves back in data units (chapter 10 quotes the
val_acc values it read from D2L's stored training plots). Here the SVG is drawn the way D2L's
ProgressBoard draws it -- every series redrawn at each update, legend last -- from known numbers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "read_d2l_svg.py"
spec = importlib.util.spec_from_file_location("read_d2l_svg", SCRIPT)
reader = importlib.util.module_from_spec(spec)
sys.modules["read_d2l_svg"] = reader  # dataclasses look their module up by name
spec.loader.exec_module(reader)

EPOCHS = list(range(1, 11))
VAL_ACC = [0.61, 0.78, 0.82, 0.83, 0.83, 0.84, 0.84, 0.85, 0.86, 0.8765]
VAL_LOSS = [0.96, 0.60, 0.49, 0.47, 0.45, 0.43, 0.43, 0.39, 0.385, 0.4061]
TRAIN_X = [i / 2 + 0.25 for i in range(20)]
TRAIN_LOSS = [2.3 * 0.85**i + 0.3 for i in range(20)]


def _progressboard_svg(path: Path, yscale: str = "linear", plain_labels: bool = True) -> Path:
    """Redraw all three series after each epoch (the prefixes D2L's SVGs hold), then a legend."""
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "test"}):
        fig = Figure(figsize=(3.5, 2.5))
        ax = fig.subplots()
        styles = [("-", "C0"), ("--", "C1"), ("-.", "C2")]
        series = [(TRAIN_X, TRAIN_LOSS, 2), (EPOCHS, VAL_LOSS, 1), (EPOCHS, VAL_ACC, 1)]
        for epoch in EPOCHS:
            handles = [
                ax.plot(xs[: per * epoch], ys[: per * epoch], linestyle=ls, color=color)[0]
                for (xs, ys, per), (ls, color) in zip(series, styles)
            ]
        ax.set_xlabel("epoch")
        ax.set_yscale(yscale)
        if yscale == "log" and plain_labels:  # numbers on every tick: only their spacing shows the scale
            for set_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                set_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.legend(handles, ["train_loss", "val_loss", "val_acc"])
        fig.savefig(path, format="svg")
    return path


def test_last_val_acc_comes_back_within_half_a_pixel_and_at_epoch_10(tmp_path):
    (plot,) = reader.read_plot(_progressboard_svg(tmp_path / "board.svg"))
    assert set(plot.curves) == {"train_loss", "val_loss", "val_acc"}
    x, y = plot.curves["val_acc"][-1]
    assert abs(y - 0.8765) <= plot.y.half_pixel  # the resolution of reading the picture by eye
    assert abs(y - 0.8765) < 1e-5  # what six-decimal SVG coordinates actually allow
    assert x == pytest.approx(10, abs=1e-5)


def test_every_series_is_the_complete_last_redraw_under_its_legend_name(tmp_path):
    (plot,) = reader.read_plot(_progressboard_svg(tmp_path / "board.svg"))
    for name, xs, ys in [
        ("val_acc", EPOCHS, VAL_ACC),
        ("val_loss", EPOCHS, VAL_LOSS),
        ("train_loss", TRAIN_X, TRAIN_LOSS),
    ]:
        points = plot.curves[name]
        assert len(points) == len(xs), name  # the full series, not an earlier prefix
        for (x, y), (x0, y0) in zip(points, zip(xs, ys)):
            assert x == pytest.approx(x0, abs=1e-5) and y == pytest.approx(y0, abs=1e-5), name


def test_a_log_axis_is_refused_rather_than_misread(tmp_path):
    with pytest.raises(ValueError, match="only linear axes"):
        reader.read_plot(_progressboard_svg(tmp_path / "log.svg", yscale="log"))


def test_mathtext_tick_labels_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="is not a plain number"):
        reader.read_plot(_progressboard_svg(tmp_path / "log.svg", yscale="log", plain_labels=False))


def test_fit_axis_needs_two_ticks_and_maps_pixels_linearly():
    with pytest.raises(ValueError, match="at least 2"):
        reader.fit_axis([(10.0, 0.5)], "y axis")
    axis = reader.fit_axis([(133.143866, 0.5), (107.733804, 1.0), (82.323743, 1.5)], "y axis")
    assert axis(115.066336) == pytest.approx(0.855716, abs=1e-6)
    assert axis.half_pixel == pytest.approx(0.5 * 0.5 / 25.410062, rel=1e-6)


def test_command_line_prints_each_curve_s_last_point(tmp_path):
    svg = _progressboard_svg(tmp_path / "board.svg")
    result = subprocess.run([sys.executable, str(SCRIPT), str(svg)], capture_output=True, text=True, check=True)
    line = next(row for row in result.stdout.splitlines() if row.strip().startswith("val_acc"))
    assert "10 points" in line and "x = 10.0000" in line and "y = 0.876500" in line
