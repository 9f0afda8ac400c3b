"""Structure of every chapter notebook (nbval executes them; see pyproject.toml)."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = (ROOT / "_toc.yml").read_text(encoding="utf-8")


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell):
    return "".join(cell["source"])


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks in chapters/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_and_toc(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name
    assert f"chapters/{path.stem}" in TOC, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_stripped_and_kernelspec(path):
    nb = load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has outputs"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_setup_cell(path):
    nb = load(path)
    first_code = next(source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'if "google.colab" in sys.modules:' in first_code, "the first code cell must guard the install"
    repo_url = CONFIG["repository"]["url"]
    assert f"git+{repo_url}" in first_code, "the install must point at the configured repository"
    before, after = first_code.split('if "google.colab" in sys.modules:', 1)
    block = []
    for line in after.splitlines()[1:]:
        if line and not line.startswith((" ", "\t")):
            break  # the guarded block ends at the first unindented line
        block.append(line)
    rest = after.splitlines()[1 + len(block) :]
    assert "pip" in "\n".join(block), "pip install must be inside the Colab guard"
    assert "pip" not in before and "pip" not in "\n".join(rest), "nothing is installed outside Colab"
    assert "from d2l_attn" in first_code or "import d2l_attn" in first_code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_anatomy(path):
    nb = load(path)
    md = [source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    code = [source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    assert md[0].startswith("# "), "the notebook must open with its title"
    assert sum(text.count("\n# ") + text.startswith("# ") for text in md) == 1, "exactly one H1 title"
    assert any("Questions this chapter answers" in text for text in md)
    assert any(re.search(r"[\u4e00-\u9fff]", text) for text in md), "questions box needs the Chinese original"
    headings = [line for text in md for line in text.splitlines() if line.startswith("## ")]
    for required in ("## Exercises", "## Summary", "## References"):
        assert any(h.startswith(required) for h in headings), f"missing section {required}"
    checks = [c for c in code if re.search(r"^\s*(assert |torch\.testing\.assert_close)", c, re.M)]
    assert len(checks) >= 3, "every chapter needs visible check cells"
    exercise_ids = set(re.findall(r'(?:check|widget)\("(ch\d\d-[a-z0-9-]+)"', "\n".join(code)))
    assert len(exercise_ids) >= 4, exercise_ids
    chapter = "ch" + path.name[:2]
    assert all(i.startswith(chapter) for i in exercise_ids)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_folded_solution_that_checks_itself(path):
    nb = load(path)
    from d2l_attn.exercises import all_exercises

    chapter = "ch" + path.name[:2]
    ids = {i for i in all_exercises() if i.startswith(chapter)}
    solutions = [c for c in nb["cells"] if c["cell_type"] == "code" and source(c).startswith("#@title Solution")]
    solved = set()
    for cell in solutions:
        assert "hide-cell" in cell["metadata"].get("tags", []), "solutions are folded in the book"
        assert cell["metadata"].get("cellView") == "form", "solutions are folded in Colab"
        solved |= set(re.findall(r'assert check\("(ch\d\d-[a-z0-9-]+)"', source(cell)))
    assert solved == ids, f"exercises without a self-checking solution: {ids - solved}"


APPENDIX_NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


@pytest.mark.parametrize("path", APPENDIX_NOTEBOOKS, ids=lambda p: p.name)
def test_appendix_notebook_is_stripped_in_the_toc_and_imports_stable_names(path):
    nb = load(path)
    assert f"book/{path.stem}" in TOC, f"{path.name} is not in _toc.yml"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        assert cell.get("outputs") == [] and cell.get("execution_count") is None
    assert any(re.search(r"^\s*assert ", c, re.M) for c in code), "the numbers need check cells"
    # the appendix outlives the library's restructuring: only stable names (the top-level
    # subpackages a reader would import, and the BLEU of chapter 4)
    imports = re.findall(r"^\s*(?:from d2l_attn\S* import .+|import d2l_attn\S*)", "\n".join(code), re.M)
    stable = {"data", "losses", "metrics", "models", "training", "translation", "utils"}
    for line in (i.strip() for i in imports):
        if line == "from d2l_attn.metrics import bleu":
            continue
        assert line.startswith("from d2l_attn import "), line
        assert set(re.split(r",\s*", line.removeprefix("from d2l_attn import "))) <= stable, line


READER_PAGES = NOTEBOOKS + APPENDIX_NOTEBOOKS


READER_MARKDOWN = sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "book" / "questions").glob("*.md"))


@pytest.mark.parametrize("path", READER_PAGES + READER_MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_question_sets_are_named_for_readers(path):
    """Readers see the sources as named question sets ("Core Q19", "Notes B §3"), never as
    "seeds" or file numbers (see book/intro.md)."""
    if path.suffix == ".md":
        prose, code = [path.read_text(encoding="utf-8")], []
    else:
        cells = load(path)["cells"]
        prose = [source(c) for c in cells if c["cell_type"] == "markdown"]
        code = [source(c) for c in cells if c["cell_type"] == "code"]
    for text in prose:  # "several random seeds" is fine; "the seed's answer" is not
        assert not re.search(r"\bseed(?:'s|\s+00[0-4]|\s+questions?)|\bthe\s+seeds?\b", text, re.I), text[:200]
        assert not re.search(r"\b00[0-4]\b\s*(Q|§)", text), text[:200]
    for text in code:  # random seeds are fine; the question sources are not
        assert not re.search(r"\bseed(?:'s| 00[0-4]| question)|Seed[A-Z]", text), text[:200]


@pytest.mark.parametrize("path", NOTEBOOKS + sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.name)
def test_no_output_widget_receives_display_during_execution(path):
    # ipywidgets.interact / interactive and an Output widget that is displayed into while the
    # cell runs make nbclient write to the shell socket while it waits there for execute_reply;
    # now and then the wake-up is lost and the book build hangs for the whole execute.timeout
    # (jupyter/nbclient#312; d2l_attn.widgets docstring). Live figures use
    # widgets.live_explorer (an Image widget) instead.
    code = "\n".join(source(c) for c in load(path)["cells"] if c["cell_type"] == "code")
    for pattern in (r"\binteract(ive)?\(", r"\bOutput\(", r"@interact"):
        assert not re.search(pattern, code), f"{path.name} uses {pattern}: use widgets.live_explorer"
