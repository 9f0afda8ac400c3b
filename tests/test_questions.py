"""The question appendix (book/questions/) against the five question sets it answers.

The sets are the Chinese source files beside the checkout (``../shared/seeds``, or the folder in
``$D2L_ATTN_QUESTION_SETS``). They are parsed here -- the number of questions comes from the
parse -- and every question must have exactly one appendix entry, with the English question, the
original Chinese (equal to the source's heading) and a link to the section that answers it. Every
``{ref}`` of the appendix and of the page of wrong answers must name a label that exists in the
file it belongs to, and each entry's first "At length" link must land in the chapter that
DESIGN.md assigns to the question. Each chapter's box "Questions this chapter answers" must link
each quoted question to its entry.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPENDIX = ROOT / "book" / "questions"
WRONG = ROOT / "book" / "wrong_answers.ipynb"
SETS_DIR = Path(os.environ.get("D2L_ATTN_QUESTION_SETS", ROOT.parent / "shared" / "seeds"))
# reader-facing name, anchor prefix, source file prefix
SETS = {
    "core": ("Core Q", "000_"),
    "interview": ("Interview Q", "001_"),
    "notes-a": ("Notes A §", "002_"),
    "notes-b": ("Notes B §", "003_"),
    "notes-c": ("Notes C §", "004_"),
}
# The chapter of each entry's first "At length" link (DESIGN.md's chapter table; application
# questions that no chapter treats link to the chapter whose mechanism they use).
EXPECTED_CHAPTER = {
    "core": {
        **dict.fromkeys(range(1, 6), 1),
        6: 2,
        7: 2,
        8: 2,
        **dict.fromkeys(range(9, 14), 3),
        14: 4,
        15: 5,
        16: 6,
        17: 6,
        18: 6,
        **dict.fromkeys(range(19, 26), 7),
        23: 5,
    },
    "interview": {
        1: 1,
        2: 6,
        3: 6,
        4: 5,
        5: 5,
        6: 5,
        7: 4,
        8: 8,
        9: 10,
        10: 4,
        11: 7,
        12: 7,
        13: 10,
        14: 4,
        15: 8,
        16: 8,
        17: 9,
        18: 10,
        19: 7,
        20: 11,
        21: 9,
        22: 12,
        23: 7,
        24: 7,
        25: 7,
        26: 10,
        27: 1,
        28: 4,
        29: 3,
        30: 1,
    },
    "notes-a": {1: 3, 2: 8, 3: 7, 4: 8, 5: 8, 6: 8, 7: 7, 8: 7, 9: 5, 10: 9, 11: 10, 12: 6},
    "notes-b": {1: 1, 2: 3, 3: 6, 4: 9, 5: 8, 6: 7, 7: 8},
    "notes-c": {
        "1": 8,
        "2": 1,
        "3.1": 3,
        "3.2.1": 3,
        "3.2.2": 12,
        "3.2.3": 11,
        "3.3": 8,
        "3.4": 10,
        "4": 3,
        "5": 5,
        "6": 4,
        "7": 1,
        "8": 8,
        "9": 3,
    },
}
LABEL = re.compile(r"^\(([^)\s]+)\)=\s*$", re.M)
REF = re.compile(r"\{ref\}`(?:[^`<]*<)?([^`>]+)>?`")
CJK = re.compile(r"[\u4e00-\u9fff]")


# --------------------------------------------------------------------------------------------
# Parsing the sets
# --------------------------------------------------------------------------------------------


def _source(prefix: str) -> str:
    if not SETS_DIR.is_dir():
        pytest.skip(f"the question sets are not here ({SETS_DIR}); set D2L_ATTN_QUESTION_SETS")
    (path,) = SETS_DIR.glob(f"{prefix}*.txt")
    return path.read_text(encoding="utf-8")


def _numbered(text: str, hashes: str) -> list[tuple[str, str]]:
    return re.findall(rf"^{hashes} (\d+)\. (.+?)\s*$", text, re.M)


def _notes_c(text: str) -> list[tuple[str, str]]:
    """Top-level sections; a section nested three levels deep is replaced by its leaves."""
    headings = [
        (m.group(1) or m.group(3) or m.group(5), (m.group(2) or m.group(4) or m.group(6)).strip())
        for m in re.finditer(r"^## (\d+)\. (.+)$|^### (\d+\.\d+) (.+)$|^\*\*(\d+\.\d+\.\d+) (.+)\*\*\s*$", text, re.M)
    ]
    numbers = [n for n, _ in headings]
    topics = []
    for number, title in headings:
        top = number.split(".")[0]
        deep = any(n.startswith(top + ".") and n.count(".") == 2 for n in numbers)
        has_children = any(n.startswith(number + ".") for n in numbers)
        if (number == top and not deep) or (deep and number != top and not has_children):
            topics.append((number, title))
    return topics


def parse_set(key: str) -> list[tuple[str, str]]:
    """(number, Chinese title) of every question or topic of one set, in order."""
    text = _source(SETS[key][1])
    if key == "core":
        return _numbered(text, "##")
    if key in ("interview", "notes-b"):
        return _numbered(text, "####")
    if key == "notes-a":
        return [(str(i), t.strip()) for i, t in enumerate(re.findall(r"^### (.+)$", text, re.M), 1)]
    return _notes_c(text)


def anchor(key: str, number: str) -> str:
    return f"q-{key}-{number.replace('.', '-')}"


# --------------------------------------------------------------------------------------------
# Parsing the appendix and the labels of the book
# --------------------------------------------------------------------------------------------


def appendix_entries() -> dict[str, list[str]]:
    """Every entry's text by its label (a list, so that a duplicated label shows up)."""
    entries: dict[str, list[str]] = {}
    for page in sorted(APPENDIX.glob("*.md")):
        parts = LABEL.split(page.read_text(encoding="utf-8"))
        for label, body in zip(parts[1::2], parts[2::2]):
            if label.startswith("q-"):
                entries.setdefault(label, []).append(body)
    return entries


def _notebook_markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def chapter_file(number: int) -> Path | None:
    found = sorted((ROOT / "chapters").glob(f"{number:02d}_*.ipynb"))
    return found[0] if found else None


def labels_of(path: Path) -> set[str]:
    text = _notebook_markdown(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")
    return set(LABEL.findall(text))


def _at_length(body: str) -> list[str]:
    line = next((ln for ln in body.split("\n\n") if ln.startswith("**At length:**")), "")
    return REF.findall(line)


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", SETS)
def test_the_set_parses_into_numbered_questions(key):
    questions = parse_set(key)
    assert len(questions) >= 5, questions
    numbers = [n for n, _ in questions]
    assert len(set(numbers)) == len(numbers), numbers
    if key != "notes-c":
        assert numbers == [str(i) for i in range(1, len(numbers) + 1)], numbers
    assert all(CJK.search(title) for _, title in questions), questions
    assert set(EXPECTED_CHAPTER[key]) == {n if key == "notes-c" else int(n) for n in numbers}


@pytest.mark.parametrize("key", SETS)
def test_every_question_has_exactly_one_entry(key):
    expected = Counter(anchor(key, n) for n, _ in parse_set(key))
    found = Counter(
        {label: len(bodies) for label, bodies in appendix_entries().items() if label.startswith(f"q-{key}-")}
    )
    assert not expected - found, f"questions without an entry: {sorted(expected - found)}"
    assert not found - expected, f"entries that are duplicated or answer no question: {sorted(found - expected)}"


def test_the_appendix_has_as_many_entries_as_the_sets_have_questions():
    total = sum(len(parse_set(key)) for key in SETS)
    assert sum(len(b) for b in appendix_entries().values()) == total


@pytest.mark.parametrize("key", SETS)
def test_each_entry_has_english_chinese_and_a_link(key):
    entries = appendix_entries()
    name = SETS[key][0]
    for number, chinese in parse_set(key):
        (body,) = entries[anchor(key, number)]
        heading = body.strip().splitlines()[0]
        assert heading.startswith(f"## {name}{number}. "), heading
        english = heading.split(". ", 1)[1]
        assert re.search(r"[A-Za-z]{3,}", english) and not CJK.search(english), heading
        assert f"\n原问题：{chinese}\n" in body, f"{anchor(key, number)}: the Chinese question is not {chinese!r}"
        answer = body.split("原问题：", 1)[1].split("**At length:**")[0]
        assert len(answer.split()) >= 25, f"{anchor(key, number)}: the answer is missing or too short"
        assert _at_length(body), f"{anchor(key, number)} links to no section"


def _where(label: str) -> Path | None:
    match = re.match(r"ch(\d\d)-", label)
    if match:
        return chapter_file(int(match.group(1)))
    if label.startswith("wrong-"):
        return WRONG
    if label.startswith("q-"):
        return next((p for p in APPENDIX.glob("*.md") if label in labels_of(p)), None)
    return None


ENTRY_PAGES = sorted(p for p in APPENDIX.glob("*.md") if p.name != "index.md")


@pytest.mark.parametrize("page", [*ENTRY_PAGES, WRONG], ids=lambda p: p.name)
def test_every_ref_lands_on_a_label_of_the_right_file(page):
    text = _notebook_markdown(page) if page.suffix == ".ipynb" else page.read_text(encoding="utf-8")
    targets = set(REF.findall(text))
    assert targets
    for target in sorted(targets):
        path = _where(target)
        assert path is not None, f"{page.name}: {target} names no chapter file that exists (yet)"
        assert target in labels_of(path), f"{page.name}: {target} is not a label of {path.name}"


@pytest.mark.parametrize("key", SETS)
def test_each_entry_links_to_the_chapter_that_answers_it(key):
    entries = appendix_entries()
    for number, _ in parse_set(key):
        label = anchor(key, number)
        first = _at_length(entries[label][0])[0]
        chapter = EXPECTED_CHAPTER[key][number if key == "notes-c" else int(number)]
        assert first.startswith(f"ch{chapter:02d}-"), f"{label} links first to {first}, not to chapter {chapter}"


def test_every_wrong_answer_is_refuted_and_linked_from_an_entry():
    cells = json.loads(WRONG.read_text(encoding="utf-8"))["cells"]
    text = "\n".join(f"<<{c['cell_type']}>>\n" + "".join(c["source"]) for c in cells)
    linked = set(REF.findall("\n".join(b for bodies in appendix_entries().values() for b in bodies)))
    sections = LABEL.split(text)
    assert len(sections) > 10
    for label, body in zip(sections[1::2], sections[2::2]):
        assert label.startswith("wrong-"), label
        assert label in linked, f"{label} is not linked from any appendix entry"
        claim_and_fix = "**Claim**" in body and "**Correct:**" in body or "| in fact |" in body
        assert claim_and_fix, f"{label} needs the claim and the correct statement"
        proof = "<<code>>" in body or any(t.startswith("ch") for t in REF.findall(body))
        assert proof, f"{label} has neither a runnable refutation nor a link to a chapter"


def test_chapter_boxes_link_each_question_to_its_entry():
    entries = appendix_entries()
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        text = _notebook_markdown(nb)
        assert "Questions this chapter answers" in text, f"{nb.name} has no box of questions"
        box = text.split("Questions this chapter answers", 1)[1].split("```", 1)[0]
        lines = [ln for ln in box.splitlines() if ln.startswith("| ")]
        rows = [ln.split(" | ")[0].removeprefix("| ") for ln in lines if not ln.startswith("| |")]
        assert rows, nb.name
        for cell in rows:
            match = re.fullmatch(r"\{ref\}`(Core Q|Interview Q|Notes [ABC] §)([\d.]+) <(q-[a-z-]+[\d-]+)>`", cell)
            assert match, f"{nb.name}: box row {cell!r} does not link to its appendix entry"
            label = match.group(3)
            assert label in entries, f"{nb.name}: {label} has no entry"
            key = next(k for k, (name, _) in SETS.items() if name == match.group(1))
            assert label == anchor(key, match.group(2)), (cell, label)
            chapter = nb.name[:2]
            back = REF.findall(entries[label][0].split("**At length:**", 1)[1])
            assert any(t.startswith(f"ch{chapter}-") for t in back), f"{label} does not link back to chapter {chapter}"


def test_the_intro_table_matches_the_sets():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    index = (APPENDIX / "index.md").read_text(encoding="utf-8")
    for key, (name, _) in SETS.items():
        numbers = [n for n, _ in parse_set(key)]
        last = numbers[-1].split(".")[0]
        cited = f"| {name[:-1].strip()} {name[-1]}1--{name[-1]}{last} |"
        assert cited in intro, f"book/intro.md should cite {cited}"
        assert cited in index, f"book/questions/index.md should cite {cited}"
