"""Sphinx extension: the book serves MathJax and the ipywidgets embed scripts itself.

By default Jupyter Book pages load MathJax and the widget manager from CDNs, so an offline
reader sees raw TeX and empty widgets. This extension copies the pinned npm packages (installed
by ``npm ci`` from ``package-lock.json``) into a build folder that Sphinx publishes under
``_static/vendor/``, and points ``mathjax_path`` and myst-nb's ``nb_ipywidgets_js`` at them.

Only what the pages use is copied: MathJax's ``tex-mml-chtml`` component with the TeX input
extensions, CHTML fonts, a11y and UI modules (not the 4 MB speech engine or the SVG output), the
html-manager's AMD embed bundle with its font files, and RequireJS. The folder is *not* the book's
root ``_static/`` (Jupyter Book would inject every script there into every page).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

VENDOR = "vendor"  # published as _static/vendor/
MATHJAX_ENTRY = "tex-mml-chtml.js"
REQUIRE_CONFIG_JS = "require-config.js"
# Loaded after require.js and before the widget manager (embed-amd.js).
REQUIRE_CONFIG_SOURCE = """\
// 1. Each AMD module of the manager's webpack bundle ("@jupyter-widgets/base", "/controls",
//    "/html-manager/dist/libembed-amd", ...) finds its icon fonts next to the URL that RequireJS
//    gives the module, by default below the *page's* folder (chapters/@jupyter-widgets/*.woff2,
//    which does not exist): map every such module to the vendored copy, wherever the page sits.
(function () {
  var manager = new URL("html-manager", document.currentScript.src).href;
  require.config({paths: {"@jupyter-widgets/html-manager/dist": manager, "@jupyter-widgets": manager}});
})();

// 2. Widget labels are typeset with MathJax 2's API, MathJax.Hub.Queue(["Typeset", Hub, el]);
//    the book runs MathJax 3. Give whichever object window.MathJax is (first the configuration,
//    then MathJax itself) a Hub whose Queue typesets the element with MathJax 3, once it is up.
(function () {
  var hub = {Queue: function (job) {
    var element = Array.isArray(job) ? job[2] : undefined;
    var mathjax = window.MathJax;
    if (mathjax && mathjax.startup && mathjax.startup.promise && mathjax.typesetPromise) {
      mathjax.startup.promise.then(function () {
        return mathjax.typesetPromise(element ? [element] : undefined);
      });
    }
  }};
  function attach() {
    if (window.MathJax === undefined) { window.MathJax = {}; }
    if (!window.MathJax.Hub) { window.MathJax.Hub = hub; }
  }
  attach();
  document.addEventListener("DOMContentLoaded", attach);
  window.addEventListener("load", attach);
})();
"""


def _copy_tree(src: Path, dst: Path, *, skip=()) -> None:
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if any(part in skip for part in rel.parts) or path.is_dir():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.stat().st_mtime < path.stat().st_mtime:
            shutil.copy2(path, target)


def _stage(root: Path, stage: Path) -> None:
    modules = root / "node_modules"
    mathjax = modules / "mathjax" / "es5"
    manager = modules / "@jupyter-widgets" / "html-manager" / "dist"
    requirejs = modules / "requirejs" / "require.js"
    missing = [p for p in (mathjax / MATHJAX_ENTRY, manager / "embed-amd.js", requirejs) if not p.exists()]
    if missing:
        raise ConfigError(
            "offline_assets: the site's front-end packages are not installed "
            f"(missing {', '.join(str(p.relative_to(root)) for p in missing)}). "
            "Run `npm ci` in the repository root first (see the README)."
        )
    out = stage / VENDOR
    (out / "mathjax").mkdir(parents=True, exist_ok=True)
    shutil.copy2(mathjax / MATHJAX_ENTRY, out / "mathjax" / MATHJAX_ENTRY)
    for sub in ("input", "a11y", "ui", "adaptors"):
        _copy_tree(mathjax / sub, out / "mathjax" / sub)
    _copy_tree(mathjax / "output", out / "mathjax" / "output", skip={"svg"})
    _copy_tree(manager, out / "html-manager", skip=())
    for extra in ("embed.js", "embed.js.map", "libembed-amd.js"):
        (out / "html-manager" / extra).unlink(missing_ok=True)
    shutil.copy2(requirejs, out / "require.js")
    (out / REQUIRE_CONFIG_JS).write_text(REQUIRE_CONFIG_SOURCE, encoding="utf-8")


def _configure(app: Sphinx, config: Config) -> None:
    root = Path(app.confdir)
    stage = Path(app.doctreedir).parent / "offline_assets"
    _stage(root, stage)
    config.html_static_path = list(config.html_static_path) + [str(stage)]
    config.mathjax_path = f"{VENDOR}/mathjax/{MATHJAX_ENTRY}"
    config.nb_ipywidgets_js = {
        f"{VENDOR}/require.js": {},
        f"{VENDOR}/{REQUIRE_CONFIG_JS}": {},
        # every widget module the book uses (@jupyter-widgets/base and /controls) is bundled in
        # embed-amd.js, so the manager never falls back to its CDN; the browser test checks this
        f"{VENDOR}/html-manager/embed-amd.js": {},
    }


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated ``<script>`` entries from a page.

    sphinx-thebe registers its inline configuration (``const THEBE_JS_URL = ...``) on every
    ``env-before-read-docs`` event, which Jupyter Book fires more than once per build; the second
    copy throws "Identifier 'THEBE_JS_URL' has already been declared" in every page's console.
    Scripts are identified by file name plus attributes (the inline body is an attribute).
    """
    seen: set = set()
    unique = []
    for script in context.get("script_files", []):
        key = (
            str(getattr(script, "filename", script) or ""),
            tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=100)
    app.connect("html-page-context", _dedupe_scripts)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
