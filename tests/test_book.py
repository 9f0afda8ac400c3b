"""The book builds with no warnings (-W), and the rendered chapters are complete.

Builds into a temporary directory (fresh execution cache) so that it checks what a clean
checkout produces. The notebooks run in quick mode here (see conftest.py).
"""

import html as html_lib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"jupyter-book build -W failed:\n{log}"
    assert "warning" not in result.stderr.lower() or "WARNING | Kernel is running over TCP" in result.stderr, log
    return out / "_build" / "html"


def test_every_page_is_built(built_book):
    assert (built_book / "index.html").exists()
    for page in ["book/intro", "book/notation", "book/glossary", "book/references"]:
        assert (built_book / f"{page}.html").exists(), page
    for nb in NOTEBOOKS:
        assert (built_book / "chapters" / f"{nb.stem}.html").exists(), nb.name


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_page_has_figures_and_launch_links(built_book, nb):
    page = (built_book / "chapters" / f"{nb.stem}.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="(\.\./_images/[^"]+)"', page)
    assert len(images) >= 3, "chapter figures are missing"
    for src in images:
        assert (built_book / "chapters" / src).resolve().exists(), src
    # figures are rendered as images, not as their text repr
    assert "&lt;Figure size" not in re.sub(r'<script type="application/vnd.jupyter.widget-state\+json">.*?</script>',
                                           "", page, flags=re.S)
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/chapters/{nb.name}"
    assert colab in html_lib.unescape(page), "Colab link does not point at the configured repository"
    assert f"https://mybinder.org/v2/gh/{repo}/{branch}" in html_lib.unescape(page)
    # citations resolved, no raw roles left in the text
    assert "{cite" not in page and "{ref}" not in page


def test_bibliography_lists_cited_works(built_book):
    page = (built_book / "book" / "references.html").read_text(encoding="utf-8").lower()
    for title in ["Neural Machine Translation by Jointly Learning to Align and Translate", "Attention Is All You Need"]:
        assert title.lower() in page
