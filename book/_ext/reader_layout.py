"""Sphinx extension: pages that fit a phone, result tables, figures that enlarge, named sliders.

Adds ``reader.css`` and ``reader.js`` (both in this folder, published as ``_static/d2l-reader/``)
to every page. The stylesheet breaks long inline code, puts display equations and result tables
(:func:`d2l_attn.display.table`) in scroll containers, lets the kernel-free frame sliders
(:func:`d2l_attn.widgets.frame_slider`) keep a usable track and whole tab labels on a 390-px
phone, and stacks the "Questions this chapter answers" tables. The script marks every scroll
container that overflows with a visible cue (``d2l-scrolls``: edge shadows and a "scroll" hint),
gives each slider handle an accessible name (its label) and value text (its readout), points the
live explorers' "explore it live" links at the chapter's Colab URL, and opens a figure at its
natural size when it is tapped or clicked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

HERE = Path(__file__).resolve().parent
FOLDER = "d2l-reader"  # published as _static/d2l-reader/
FILES = ("reader.css", "reader.js")


def _configure(app: Sphinx, config: Config) -> None:
    stage = Path(app.doctreedir).parent / "reader_layout"
    out = stage / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(HERE / name, out / name)
    config.html_static_path = list(config.html_static_path) + [str(stage)]


def _assets(app: Sphinx) -> None:
    app.add_css_file(f"{FOLDER}/reader.css")
    app.add_js_file(f"{FOLDER}/reader.js", loading_method="defer")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=200)
    app.connect("builder-inited", _assets)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
