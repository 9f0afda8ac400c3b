"""The practice page's parts that need no built site: the card exporter (book/_ext/practice.py) on
hand-made doctrees, and the schedule of the browser script (book/_ext/practice.js) under Node.

The exporter's output on the real book (88 cards, one per appendix entry, links that land) and
the page in a browser are checked by tests/test_site.py on the built site.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes
from docutils.utils import new_document

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("practice", ROOT / "book" / "_ext" / "practice.py")
practice = importlib.util.module_from_spec(spec)
spec.loader.exec_module(practice)


def appendix_entries() -> list[tuple[str, str]]:
    """(label, original Chinese) of every entry of book/questions/*.md, read from the sources."""
    entries = []
    for path in sorted((ROOT / "book" / "questions").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        entries += re.findall(r"^\((q-[\w-]+)\)=\n## .+\n\n原问题：(.+)$", text, flags=re.M)
    return entries


def test_the_appendix_has_88_entries_each_with_its_chinese_question():
    entries = appendix_entries()
    labels = [label for label, _ in entries]
    assert len(labels) == len(set(labels)) == 88
    # every label in the sources is an entry of this form (none is missed by the pattern above)
    all_labels = [
        m
        for p in (ROOT / "book" / "questions").glob("*.md")
        for m in re.findall(r"^\((q-[\w-]+)\)=", p.read_text(encoding="utf-8"), re.M)
    ]
    assert sorted(all_labels) == sorted(labels)


def render(node: nodes.Node) -> str:
    """What the HTML writer makes of the nodes these tests use."""
    return node.astext() if isinstance(node, nodes.raw) else f"<p>{node.astext()}</p>\n"


def fake_app() -> SimpleNamespace:
    builder = SimpleNamespace(
        get_target_uri=lambda doc: f"{doc}.html",
        render_partial=lambda node: {"fragment": "".join(render(child) for child in node.children)},
        format="html",
    )
    return SimpleNamespace(builder=builder)


def entry(label: str, *, chinese: bool = True, answer: bool = True, link: bool = True) -> nodes.section:
    section = nodes.section(ids=["core-q1-what", label])
    section += nodes.title("", "Core Q1. What is it?")
    if chinese:
        section += nodes.paragraph("", "原问题：什么是注意力机制？")
    if answer:
        section += nodes.paragraph("", "A soft lookup.")
    at_length = nodes.paragraph("", "")
    at_length += nodes.strong("", "At length:")
    if link:
        at_length += nodes.reference("", "the section", refuri="../../chapters/01_attention_cues.html#ch01-q1-q4")
    section += at_length
    return section


def doctree(*sections) -> nodes.document:
    document = new_document("core.md")
    for section in sections:
        document += section
    return document


def test_an_entry_becomes_a_card_with_links_relative_to_the_practice_page():
    cards = practice._cards_of(fake_app(), doctree(entry("q-core-1")), "book/questions/core")
    assert len(cards) == 1
    card = cards[0]
    assert card["id"] == "q-core-1" and card["set"] == "Core"
    assert card["question"] == "Core Q1. What is it?"
    assert card["chinese"] == "什么是注意力机制？"
    assert card["answer"] == "<p>A soft lookup.</p>"
    # book/questions/core.html -> ../../chapters/... is chapters/... from the site root,
    # ../chapters/... from book/practice.html
    assert card["links"] == [
        {
            "text": "the section",
            "href": "../chapters/01_attention_cues.html#ch01-q1-q4",
            "page": "chapters/01_attention_cues",
            "chapter": "01",
        }
    ]
    assert card["entry"] == "questions/core.html#q-core-1"
    assert card["chapters"] == ["01"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [("chinese", "needs the Chinese question"), ("answer", "a short answer"), ("link", "links to no section")],
)
def test_an_incomplete_entry_stops_the_build_naming_it(missing, message):
    broken = entry("q-core-7", **{missing: False})
    with pytest.raises(ValueError, match=f"book/questions/core: entry q-core-7 .*{message}"):
        practice._cards_of(fake_app(), doctree(entry("q-core-1"), broken), "book/questions/core")


def test_links_within_the_question_page_and_external_ones():
    app = fake_app()
    assert practice._relative("book/questions/core", app, "#q-core-2") == "questions/core.html#q-core-2"
    assert practice._relative("book/questions/core", app, "../references.html#id5") == "references.html#id5"
    assert practice._relative("book/questions/core", app, "https://arxiv.org/abs/1706.03762") == (
        "https://arxiv.org/abs/1706.03762"
    )


# --------------------------------------------------------------------------------------------
# The schedule (Leitner boxes) of book/_ext/practice.js, run under Node
# --------------------------------------------------------------------------------------------

SCHEDULE = """
const p = require(process.argv[1]);
const out = {intervals: p.INTERVALS, steps: []};
for (const [start, rating] of JSON.parse(process.argv[2])) {
  const entry = start === null ? null : {box: start, due: 0, reviews: 3, last: 0};
  out.steps.push(p.schedule(entry, rating, 100));
}
try { p.schedule(null, "maybe", 0); } catch (e) { out.error = e.message; }
out.midnight = [p.dayOf(Date.UTC(2026, 11, 8, 0, 0, 0) - 1), p.dayOf(Date.UTC(2026, 11, 8, 0, 0, 0))];
process.stdout.write(JSON.stringify(out));
"""


def test_the_schedule_is_the_documented_leitner_boxes():
    node = shutil.which("node") or pytest.skip("Node.js is not installed")
    steps = [
        (None, "again"),
        (None, "hard"),
        (None, "good"),
        (None, "easy"),
        (3, "again"),
        (3, "hard"),
        (3, "good"),
        (4, "easy"),
        (5, "good"),
    ]
    result = subprocess.run(
        [node, "-e", SCHEDULE, str(ROOT / "book" / "_ext" / "practice.js"), json.dumps(steps)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"TZ": "UTC", "PATH": ""},
    )
    out = json.loads(result.stdout)
    # the intervals the page documents (book/practice.md's table), in days by box
    table = (ROOT / "book" / "practice.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d)(?: \(new\))? \| (now|\d+) (?:days?)?\s*\|$", table, flags=re.M)
    documented = {int(box): 0 if after == "now" else int(after) for box, after in rows}
    assert [documented[box] for box in range(6)] == out["intervals"] == [0, 1, 3, 7, 14, 30]
    boxes = [(s["box"], s["due"] - 100) for s in out["steps"]]
    assert boxes == [(1, 0), (1, 1), (1, 1), (2, 3), (1, 0), (3, 7), (4, 14), (5, 30), (5, 30)]
    assert [s["reviews"] for s in out["steps"]] == [1, 1, 1, 1, 4, 4, 4, 4, 4]
    assert "unknown rating maybe" in out["error"]
    assert out["midnight"][1] == out["midnight"][0] + 1  # days change at (local) midnight


STORES = """
const practice = require(process.argv[1]);
const exercises = require(process.argv[2]);
function fakeWindow(items) {
  return {localStorage: {
    getItem: k => (k in items ? items[k] : null),
    setItem: (k, v) => { items[k] = String(v); },
    removeItem: k => { delete items[k]; },
  }};
}
// progress written by the earlier scripts, under their keys and versions
const items = {
  "d2l-attn:practice": JSON.stringify({version: 1, cards: {"core-q1": {box: 2, due: 5, reviews: 2, last: 3}}}),
  "d2l-attn:exercises:ch01": JSON.stringify({version: 1, solved: {"ch01-cues": true}, wrong: {}}),
  "d2l-attn:exercises:ch02": JSON.stringify({version: 2, solved: {}, wrong: {}}),
};
const win = fakeWindow(items);
const empty = () => ({version: 1, cards: {}});
const valid = s => s.version === 1 && !!s.cards;
const store = exercises.versionedStore(win, practice.STORAGE_KEY, empty, valid);
const out = {key: practice.STORAGE_KEY, prefix: exercises.STORAGE_PREFIX,
             practice: store.load(), persistent: store.persistent};
const ch = k => exercises.versionedStore(win, exercises.STORAGE_PREFIX + k, () => ({version: 1, solved: {}, wrong: {}}),
                                         s => s.version === 1 && !!s.solved && !!s.wrong).load();
out.ch01 = ch("ch01");
out.ch02 = ch("ch02");  // another version: not read
store.save({version: 1, cards: {x: {box: 1}}});
out.saved = JSON.parse(items["d2l-attn:practice"]);
store.reset();
out.afterReset = "d2l-attn:practice" in items;
const off = exercises.versionedStore({localStorage: {setItem() { throw new Error("off"); }}}, "k", empty, valid);
off.save({version: 1, cards: {y: {}}});
out.memory = [off.persistent, off.load()];
out.leftovers = Object.keys(items).filter(k => k.endsWith(":probe"));
process.stdout.write(JSON.stringify(out));
"""


def test_practice_keeps_progress_in_the_store_of_exercises_js():
    """practice.js keeps its cards in exercises.js's versioned localStorage store (one copy of
    the code), under the same key as before: a reader's progress survives the change."""
    node = shutil.which("node") or pytest.skip("Node.js is not installed")
    ext = ROOT / "book" / "_ext"
    assert "localStorage." not in (ext / "practice.js").read_text(encoding="utf-8")  # no second copy
    result = subprocess.run(
        [node, "-e", STORES, str(ext / "practice.js"), str(ext / "exercises.js")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": ""},
    )
    out = json.loads(result.stdout)
    assert out["key"] == "d2l-attn:practice" and out["prefix"] == "d2l-attn:exercises:"
    assert out["persistent"] is True
    assert out["practice"]["cards"]["core-q1"]["box"] == 2
    assert out["ch01"]["solved"] == {"ch01-cues": True}
    assert out["ch02"] == {"version": 1, "solved": {}, "wrong": {}}
    assert out["saved"] == {"version": 1, "cards": {"x": {"box": 1}}}
    assert out["afterReset"] is False
    assert out["memory"] == [False, {"version": 1, "cards": {"y": {}}}]
    assert out["leftovers"] == []
