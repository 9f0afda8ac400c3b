"""Sphinx extension: each glossary term links to the *section* that introduces it.

``book/glossary.md`` ends each definition with ``{doc}`Chapter N <...>```. A reader who lands on
the glossary (a Chinese query such as 束搜索 finds only the glossary: the chapters are in
English) should reach the passage where the term is explained, not the top of a long chapter.
Here, once the glossary's references are resolved, each link to a chapter gets the anchor of the
first section of that chapter (below its introduction, which previews the whole chapter) whose
own prose (its paragraphs, not its code or subsections) uses the term (its English part,
singular or plural), and the link text gains that section's number ("Chapter 4, §4.5"). A term
no section uses keeps the chapter link.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx

GLOSSARY = "book/glossary"


def _own_text(section: nodes.section) -> str:
    parts = []
    for child in section.children:
        if isinstance(child, nodes.section):
            continue
        if isinstance(child, nodes.container) and child.get("nb_element") == "cell_code":
            continue  # code and outputs: the term must be used in prose
        parts.append(child.astext())
    return " ".join(parts)


def _pattern(term: str) -> re.Pattern:
    english = term.split(" (", 1)[0].strip()
    words = [re.escape(w) for w in re.split(r"[\s-]+", english) if w]
    return re.compile(r"\b" + r"[\s-]+".join(words) + r"(?:s|es)?\b", re.I)


def first_section(doctree: nodes.document, term: str) -> nodes.section | None:
    """The first section below the chapter's title whose own prose uses ``term`` (None: none
    does; the chapter's introduction, which previews the whole chapter, is not searched)."""
    pattern = _pattern(term)
    for section in list(doctree.findall(nodes.section))[1:]:
        if pattern.search(_own_text(section)):
            return section
    return None


def _number(section: nodes.section, secnumber: tuple | None) -> str:
    """The section's number: Sphinx's, or the one its title starts with ("5.2 How ...")."""
    if secnumber:
        return ".".join(map(str, secnumber))
    title = section[0].astext() if section.children and isinstance(section[0], nodes.title) else ""
    match = re.match(r"(\d+(?:\.\d+)+)\b", title)
    return match.group(1) if match else ""


def _link_sections(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if docname != GLOSSARY:
        return
    env = app.env
    chapters = {
        app.builder.get_relative_uri(docname, doc): doc for doc in env.found_docs if doc.startswith("chapters/")
    }
    trees: dict[str, nodes.document] = {}
    for item in doctree.findall(nodes.definition_list_item):
        terms = [t for t in item.children if isinstance(t, nodes.term)]
        if not terms:
            continue
        term = terms[0].astext()
        for ref in item.findall(nodes.reference):
            target = chapters.get(ref.get("refuri", ""))
            if target is None:
                continue
            tree = trees.setdefault(target, env.get_doctree(target))
            section = first_section(tree, term)
            if section is None or not section["ids"]:
                continue
            anchor = section["ids"][0]
            ref["refuri"] += f"#{anchor}"
            number = _number(section, env.toc_secnumbers.get(target, {}).get(f"#{anchor}"))
            if number:
                ref.append(nodes.Text(f", §{number}"))


def setup(app: Sphinx) -> dict:
    app.connect("doctree-resolved", _link_sections)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
