"""The book extension that links code exercises to Colab (book/_ext/web_exercises.py): the URL it
writes into the page is an https:// URL, escaped; anything else stops the build."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("web_exercises", ROOT / "book" / "_ext" / "web_exercises.py")
web_exercises = importlib.util.module_from_spec(spec)
spec.loader.exec_module(web_exercises)


def fake_app(colab_url: str, repo: str = "https://github.com/owner/book") -> SimpleNamespace:
    options = {"repository_url": repo, "launch_buttons": {"colab_url": colab_url}, "path_to_docs": ""}
    env = SimpleNamespace(doc2path=lambda name, base: f"{name}.ipynb")
    return SimpleNamespace(config=SimpleNamespace(html_theme_options=options), env=env)


def test_an_https_colab_url_is_used():
    url = web_exercises._colab_url(fake_app("https://colab.research.google.com"), "chapters/03_masking")
    assert url == "https://colab.research.google.com/github/owner/book/blob/main/chapters/03_masking.ipynb"


@pytest.mark.parametrize(
    "bad", ["javascript:alert(document.domain)", "JAVASCRIPT:alert(1)", "data:text/html,x", "http://colab"]
)
def test_a_colab_url_that_is_not_https_is_refused_at_build_time(bad):
    with pytest.raises(ValueError, match="colab_url must be an https:// URL"):
        web_exercises._colab_url(fake_app(bad), "chapters/03_masking")


def test_the_meta_tag_is_escaped(monkeypatch):
    monkeypatch.setattr(web_exercises, "_colab_url", lambda app, page: 'https://x/"><script>alert(1)</script>')
    monkeypatch.setattr(web_exercises, "SCRIPTS", ())
    app = SimpleNamespace(
        env=SimpleNamespace(doc2path=lambda name, base: f"{name}.ipynb"),
        add_js_file=lambda *a, **k: None,
        add_css_file=lambda *a, **k: None,
    )
    context: dict = {}
    web_exercises._page(app, "chapters/03_masking", "page.html", context, doctree=object())
    assert "<script>" not in context["metatags"] and "&quot;&gt;&lt;script&gt;" in context["metatags"]
