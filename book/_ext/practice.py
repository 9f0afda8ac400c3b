"""Sphinx extension: the practice page's cards, exported from the question appendix at build time.

One source of truth: every entry of ``book/questions/*.md`` (a section labelled ``q-...``: the
question as its heading, the original Chinese in the paragraph "原问题：...", the short answer,
and the paragraph "**At length:** ..." with links to the sections that answer it) becomes one
card of ``book/practice`` (``book/_ext/practice.js``). The entries are taken from the resolved
doctrees, so math, citations and cross-references are rendered by Sphinx itself; every link is
rewritten relative to the practice page. The cards go into ``_static/d2l-practice/cards.js``,
a script that assigns one global (``window.D2L_ATTN_PRACTICE``), so the page works from
``file://`` with no kernel and no network. The practice page also loads the exercises' rules and
browser checker (``web_exercises``) so that exercises that answer on the page can join a round.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx

HERE = Path(__file__).resolve().parent
FOLDER = "d2l-practice"  # published as _static/d2l-practice/
PRACTICE_DOC = "book/practice"
QUESTION_SETS = {  # docname -> how the card names its set (as the appendix cites them)
    "book/questions/core": "Core",
    "book/questions/interview": "Interview",
    "book/questions/notes_a": "Notes A",
    "book/questions/notes_b": "Notes B",
    "book/questions/notes_c": "Notes C",
}
CHINESE_PREFIX = "原问题："
AT_LENGTH = "At length:"
CHAPTER_DOC = re.compile(r"^chapters/(\d\d)_[^/#]+$")


def _relative(from_doc: str, app: Sphinx, uri: str) -> str:
    """``uri`` as written on page ``from_doc``, rewritten relative to the practice page."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", uri, flags=re.I):  # http:, mailto:, ...
        return uri
    here = posixpath.dirname(app.builder.get_target_uri(from_doc))
    there = posixpath.dirname(app.builder.get_target_uri(PRACTICE_DOC))
    path, _, anchor = uri.partition("#")
    target = posixpath.normpath(posixpath.join(here, path)) if path else app.builder.get_target_uri(from_doc)
    rel = posixpath.relpath(target, there or ".")
    return f"{rel}#{anchor}" if anchor else rel


def _retarget(node: nodes.Node, docname: str, app: Sphinx) -> nodes.Node:
    node = copy.deepcopy(node)
    for ref in node.findall(nodes.reference):
        if ref.get("refuri"):
            ref["refuri"] = _relative(docname, app, ref["refuri"])
        elif ref.get("refid"):  # an anchor on the question page itself
            ref["refuri"] = _relative(docname, app, "#" + ref["refid"])
            del ref["refid"]
    return node


SPLIT = "<!--d2l-practice-part-->"


def _render_parts(app: Sphinx, parts: list[list[nodes.Node]]) -> list[str]:
    """Each part (a list of nodes) as HTML, in one call of the writer for the whole page (one call
    per part costs seconds per question page on a busy machine)."""
    holder = nodes.container()
    for part in parts:
        holder += nodes.raw("", SPLIT, format="html")
        holder.extend(part)
    holder += nodes.raw("", SPLIT, format="html")
    pieces = app.builder.render_partial(holder)["fragment"].split(SPLIT)
    assert len(pieces) == len(parts) + 2, "a part of a question entry split the rendered HTML"
    return [piece.strip() for piece in pieces[1:-1]]


def _inline(html: str) -> str:
    """A section title rendered as a paragraph, as inline HTML (without the ``<p>``)."""
    return html.removeprefix("<p>").removesuffix("</p>").strip()


def _links(paragraph: nodes.Node, docname: str, app: Sphinx) -> list[dict]:
    """The "At length" links: text, href relative to the practice page, and the chapter they land in."""
    out = []
    for ref in paragraph.findall(nodes.reference):
        uri = ref.get("refuri") or ("#" + ref["refid"] if ref.get("refid") else "")
        if not uri:
            continue
        href = _relative(docname, app, uri)
        # the target page, relative to the site root, without ".html" and the anchor
        root_path = posixpath.normpath(
            posixpath.join(posixpath.dirname(app.builder.get_target_uri(PRACTICE_DOC)), href.partition("#")[0])
        )
        page = root_path.removesuffix(".html")
        match = CHAPTER_DOC.match(page)
        out.append({"text": ref.astext(), "href": href, "page": page, "chapter": match.group(1) if match else None})
    return out


def _cards_of(app: Sphinx, doctree: nodes.document, docname: str) -> list[dict]:
    cards, parts = [], []
    for section in doctree.findall(nodes.section):
        label = next((i for i in section["ids"] if i.startswith("q-")), None)
        if label is None:
            continue
        title, *body = section.children
        chinese, answer, at_length = None, [], None
        for child in body:
            text = child.astext().strip()
            if isinstance(child, nodes.paragraph) and text.startswith(CHINESE_PREFIX) and chinese is None:
                chinese = text.removeprefix(CHINESE_PREFIX).strip()
            elif isinstance(child, nodes.paragraph) and text.startswith(AT_LENGTH):
                at_length = child
            elif at_length is None:
                answer.append(child)
        if chinese is None or at_length is None or not answer:
            raise ValueError(
                f"{docname}: entry {label} needs the Chinese question ('{CHINESE_PREFIX}...'), "
                f"a short answer and an '{AT_LENGTH}' paragraph"
            )
        links = _links(at_length, docname, app)
        if not links:
            raise ValueError(f"{docname}: entry {label} links to no section in its '{AT_LENGTH}' paragraph")
        heading = nodes.paragraph("", "", *_retarget(title, docname, app).children)
        parts += [[heading], [_retarget(node, docname, app) for node in answer]]
        cards.append(
            {
                "id": label,
                "set": QUESTION_SETS[docname],
                "chinese": chinese,
                "links": links,
                "entry": _relative(docname, app, "#" + label),
                "chapters": sorted({link["chapter"] for link in links if link["chapter"]}),
            }
        )
    html = _render_parts(app, parts)
    for card, question, answer in zip(cards, html[0::2], html[1::2]):
        card["question"], card["answer"] = _inline(question), answer
    return cards


def _collect(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if docname in QUESTION_SETS and app.builder.format == "html":
        app._d2l_practice_cards[docname] = _cards_of(app, doctree, docname)  # type: ignore[attr-defined]


def _always_rewrite_questions(app: Sphinx, env, added, changed, removed) -> list[str]:
    # The cards are collected while the question pages are written: an incremental build must
    # write them again, or the export would miss the unchanged ones.
    return [doc for doc in QUESTION_SETS if doc in env.found_docs]


def _page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if pagename != PRACTICE_DOC:
        return
    # the exercises' rules and checker first (exercise cards), then the cards and the page
    app.add_js_file("d2l-exercises/data.js", loading_method="defer")
    app.add_js_file("d2l-exercises/exercises.js", loading_method="defer")
    app.add_js_file(f"{FOLDER}/cards.js", loading_method="defer")
    app.add_js_file(f"{FOLDER}/practice.js", loading_method="defer")
    app.add_css_file("d2l-exercises/exercises.css")
    app.add_css_file(f"{FOLDER}/practice.css")


def chapters(app: Sphinx) -> dict[str, dict]:
    """Chapter number -> its title and its page, relative to the practice page."""
    out = {}
    there = posixpath.dirname(app.builder.get_target_uri(PRACTICE_DOC)) or "."
    for doc in sorted(app.env.found_docs):
        match = CHAPTER_DOC.match(doc)
        if match and doc in app.env.titles:
            href = posixpath.relpath(app.builder.get_target_uri(doc), there)
            out[match.group(1)] = {"title": app.env.titles[doc].astext(), "href": href}
    return out


def _write(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    cards = [card for doc in QUESTION_SETS for card in app._d2l_practice_cards.get(doc, [])]  # type: ignore[attr-defined]
    missing = [doc for doc in QUESTION_SETS if doc in app.env.found_docs and doc not in app._d2l_practice_cards]  # type: ignore[attr-defined]
    if missing:
        raise RuntimeError(f"practice cards: question pages not written in this build: {missing}")
    out = Path(app.outdir) / "_static" / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    data = {"version": 1, "sets": list(QUESTION_SETS.values()), "chapters": chapters(app), "cards": cards}
    payload = json.dumps(data, ensure_ascii=False, indent=None, separators=(",", ":"))
    # "</" cannot end the script early: the JSON escapes it (as the exercises' export does)
    payload = payload.replace("</", "<\\/")
    (out / "cards.js").write_text(f"window.D2L_ATTN_PRACTICE = {payload};\n", encoding="utf-8")
    for name in ("practice.js", "practice.css"):
        shutil.copy2(HERE / name, out / name)


def setup(app: Sphinx) -> dict:
    app._d2l_practice_cards = {}  # type: ignore[attr-defined]
    app.connect("doctree-resolved", _collect)
    app.connect("env-get-outdated", _always_rewrite_questions)
    app.connect("html-page-context", _page, priority=400)
    app.connect("build-finished", _write)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": False}
