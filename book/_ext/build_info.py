"""Sphinx extension: the site says how it was built, in ``build-info.json`` at its root.

The published book runs every notebook in *full* mode (README command 1, ``D2L_ATTN_QUICK``
unset); the test suite's own quick build shrinks the training. The browser tests can check a
build made elsewhere (``D2L_ATTN_SITE``, which ``.ci/run`` points at the full-mode build of
README command 1), and they refuse one that is not what readers get: this file records the
mode the notebooks' kernels saw (they inherit the build's environment) and when it was built.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sphinx.application import Sphinx

FILE = "build-info.json"


def _write(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from d2l_attn.utils import is_quick

    info = {
        "quick_mode": is_quick(),
        "built_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (Path(app.outdir) / FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
