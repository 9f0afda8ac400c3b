"""Drive one attention view (``d2l_attn.attention_view``) in Playwright's Chromium (not a test file).

Used on a plain HTML file (tests/test_attention_view.py) and on the built book (tests/test_site.py).
The expected readouts are computed in Python (:meth:`AttentionView.top_keys`, numpy) from the
weights embedded in the page, so the page's JavaScript is checked against an independent
implementation.
"""

from __future__ import annotations

import json
import re

from d2l_attn.attention_view import AttentionView

ENTRY = re.compile(r"\u201c([^\u201d]*)\u201d \(key (\d+)\) (\d\.\d{3})")


def view_of(root) -> AttentionView:
    """The view whose payload the page element ``root`` (a ``.d2l-av`` locator) embeds."""
    return AttentionView(json.loads(root.locator("script.d2l-av-data").text_content()), None)


def readout(root) -> dict:
    node = root.locator(".d2l-av-readout")
    text = node.inner_text()
    return {
        "text": text,
        "query": node.get_attribute("data-query"),
        "top_key": node.get_attribute("data-top-key"),
        "entries": [(int(j) - 1, float(w)) for _, j, w in ENTRY.findall(text)],
    }


def expect_readout(root, view: AttentionView, query: int, layer: int, head: int | None) -> dict:
    """Assert that the readout shows ``query``'s top weights under ``layer``/``head``; return it."""
    shown = readout(root)
    expected = view.top_keys(query, layer, head)
    where = view.payload["layers"][layer] + ", " + ("all heads (mean)" if head is None else f"head {head + 1}")
    assert shown["text"].startswith(where + ", query "), (shown["text"], where)
    assert shown["query"] == str(query) and shown["top_key"] == str(expected[0][0]), (shown, expected)
    assert [j for j, _ in shown["entries"]] == [j for j, _ in expected], (shown, expected)
    for (_, got), (_, want) in zip(shown["entries"], expected):
        assert abs(got - want) <= 1.1e-3, (shown, expected)  # printed with three decimals
    keys = view.payload["keys"]
    assert [t for t, _, _ in ENTRY.findall(shown["text"])] == [keys[j] for j, _ in expected]
    # one line per key with weight > 0, the top key's line as opaque as its weight
    row = view.row(query, layer, head)
    lines = root.locator("svg.d2l-av-lines line")
    assert lines.count() == int((row > 0).sum())
    return shown


def choose(root, layer: int, head: int | None) -> None:
    root.locator("select.d2l-av-layer").select_option(str(layer))
    root.locator("select.d2l-av-head").select_option("mean" if head is None else str(head))


def exercise_view(page, root) -> None:
    """Hover, click (pin), switch layer and head, and use the keyboard; check every readout."""
    view = view_of(root)
    num_layers, num_heads = len(view.payload["layers"]), view.payload["heads"]
    num_queries = len(view.payload["queries"])
    # A full-mode page is long: images and MathJax still move the layout after "load", and a
    # click computed before a shift lands on the wrong token. Interact once the layout settled.
    page.wait_for_load_state("networkidle")
    page.evaluate(
        "() => ((window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve())"
        ".then(() => document.fonts.ready).then(() => true)"
    )
    # start from rest: no focus or pointer left in an earlier view of the same page
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    root.scroll_into_view_if_needed()
    first = readout(root)
    assert first["query"] is None and "hover over" in first["text"], first
    queries = root.locator("button.d2l-av-q")
    assert queries.count() == num_queries
    assert root.locator(".d2l-av-k").count() == len(view.payload["keys"])
    assert root.locator("select.d2l-av-head option").count() == num_heads + 1  # + all heads
    # hover: the default map is layer 1, all heads
    hovered = num_queries - 1
    queries.nth(hovered).hover()
    expect_readout(root, view, hovered, 0, None)
    # click pins a query; it stays when the pointer leaves, across layer and head switches
    pinned = num_queries // 2
    queries.nth(pinned).click()
    page.mouse.move(0, 0)
    assert queries.nth(pinned).get_attribute("aria-pressed") == "true"
    shown, selections = set(), [(0, None), (num_layers - 1, 0), (num_layers - 1, num_heads - 1), (num_layers - 1, None)]
    for layer, head in selections:
        choose(root, layer, head)
        shown.add(tuple(expect_readout(root, view, pinned, layer, head)["entries"]))
    if len({tuple(view.top_keys(pinned, layer, head)) for layer, head in selections}) > 1:  # one map: nothing to switch
        assert len(shown) > 1, "switching layer and head did not change the listed weights"
    # keyboard: a focused query shows its row; the arrow keys move between queries
    choose(root, 0, 0)
    queries.nth(0).focus()
    expect_readout(root, view, 0, 0, 0)
    page.keyboard.press("ArrowDown")
    expect_readout(root, view, 1 if num_queries > 1 else 0, 0, 0)
    assert queries.nth(1 if num_queries > 1 else 0).evaluate("b => b === document.activeElement")
