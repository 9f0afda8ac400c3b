"""Sphinx extension: a notebook figure's ``<img>`` gets the alt text its notebook published.

In a kernel, ``d2l_attn`` publishes every matplotlib figure with ``{"image/png": {"alt": ...}}``
output metadata (:mod:`d2l_attn.figure_alt`: the figure's title, panels, kinds and axis labels,
or a text the author set). myst-nb reads only ``width`` and ``height`` from output metadata, so
without this extension the page's ``alt`` would be the image's file name (what screen readers
then read). Alt text set in a cell's metadata (``mystnb: image: alt``) is kept.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _patch() -> None:
    from myst_nb.core.render import NbElementRenderer

    if getattr(NbElementRenderer.render_image, "_d2l_alt", False):
        return
    original = NbElementRenderer.render_image

    def render_image(self, data):
        result = original(self, data)
        alt = (data.output_metadata.get(data.mime_type) or {}).get("alt")
        if isinstance(alt, str) and alt.strip():
            for node in result:
                if node.tagname == "image" and not node.get("alt"):
                    node["alt"] = " ".join(alt.split())
        return result

    render_image._d2l_alt = True
    NbElementRenderer.render_image = render_image


def setup(app: Sphinx) -> dict:
    _patch()
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
