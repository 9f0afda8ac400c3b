"""Sphinx extension: exercises that answer back on the static web page.

At build time it exports every exercise's verdict rules from ``d2l_attn.exercises`` (see
:mod:`d2l_attn.exercises.web`) into ``_static/d2l-exercises/data.js``, a script that assigns one
global, so the site needs no kernel, no network and works from ``file://``. Beside it go the
hand-written checker ``exercises.js`` and its stylesheet (both in this folder). Chapter pages get
the three files and a ``<meta name="d2l-attn-colab">`` with the page's Colab URL (code exercises
link to it); other pages get nothing.
"""

from __future__ import annotations

import html
import re
import shutil
import urllib.parse
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

HERE = Path(__file__).resolve().parent
FOLDER = "d2l-exercises"  # published as _static/d2l-exercises/
SCRIPTS = ("data.js", "exercises.js")
STYLE = "exercises.css"


def _configure(app: Sphinx, config: Config) -> None:
    from d2l_attn.exercises import web

    stage = Path(app.doctreedir).parent / "web_exercises"
    out = stage / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.js").write_text(web.to_script(web.export()), encoding="utf-8")
    for name in ("exercises.js", STYLE):
        shutil.copy2(HERE / name, out / name)
    config.html_static_path = list(config.html_static_path) + [str(stage)]


def _colab_url(app: Sphinx, pagename: str) -> str | None:
    options = app.config.html_theme_options or {}
    repo = str(options.get("repository_url", "")).removeprefix("https://github.com/").strip("/")
    colab = str((options.get("launch_buttons") or {}).get("colab_url", "")).rstrip("/")
    if not (repo and colab):
        return None
    if urllib.parse.urlsplit(colab).scheme != "https":  # the page uses it as a link: never javascript:
        raise ValueError(f"html_theme_options launch_buttons.colab_url must be an https:// URL, got {colab!r}")
    source = Path(app.env.doc2path(pagename, False)).as_posix()
    prefix = str(options.get("path_to_docs", "") or "").strip("/")
    path = f"{prefix}/{source}" if prefix else source
    return f"{colab}/github/{repo}/blob/{options.get('repository_branch', 'main')}/{path}"


def _page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Chapter pages (notebooks with exercises) load the checker; no other page does."""
    if doctree is None or not str(app.env.doc2path(pagename, False)).endswith(".ipynb"):
        return
    match = re.search(r"(?:^|/)(\d\d)_[^/]*$", pagename)
    if not match:
        return
    from d2l_attn.exercises import CHAPTERS

    if f"ch{match.group(1)}" not in CHAPTERS:
        return
    for name in SCRIPTS:
        app.add_js_file(f"{FOLDER}/{name}", loading_method="defer")
    app.add_css_file(f"{FOLDER}/{STYLE}")
    url = _colab_url(app, pagename)
    if url:
        context["metatags"] = (
            context.get("metatags", "") + f'\n<meta name="d2l-attn-colab" content="{html.escape(url, quote=True)}" />'
        )


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=200)
    app.connect("html-page-context", _page, priority=400)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
