"""Tests for d2l_attn.attention_view: self-contained HTML, the embedded weights, bad inputs, and the
page's script in headless Chromium (the same checks run on the built book in tests/test_site.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from attention_view_driver import exercise_view, view_of

from d2l_attn import plotting
from d2l_attn.attention_view import MAX_TOKENS, AttentionView, attention_view
from d2l_attn.interpret import collect_attention


def softmax_weights(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g), dim=-1)


def payload_of(html: str) -> dict:
    found = re.findall(r'<script type="application/json" class="d2l-av-data">(.*?)</script>', html, flags=re.S)
    assert len(found) == 1
    return json.loads(found[0])


def test_the_html_is_self_contained():
    html = attention_view(list("abcd"), softmax_weights(2, 3, 4, 4), title="t")._repr_html_()
    # nothing is fetched: no src/href attributes, no module loader, no request APIs
    assert not re.search(r"\b(src|href)\s*=", html, flags=re.I)
    for word in ("require(", "define(", "import(", "fetch(", "XMLHttpRequest", "@import", "url("):
        assert word not in html, word
    # the only URL is the SVG namespace name (an identifier, never requested)
    assert set(re.findall(r"https?://[^\s\"')]+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data and the code


def test_every_view_has_its_own_id():
    w = softmax_weights(4, 4)
    first, second = attention_view(list("abcd"), w), attention_view(list("abcd"), w)
    pages = [first._repr_html_(), second._repr_html_(), first._repr_html_()]  # one view shown twice, too
    ids = [re.findall(r'id="([^"]+)"', html) for html in pages]
    assert all(len(found) == 1 for found in ids) and len({found[0] for found in ids}) == 3
    for html, (uid,) in zip(pages, ids):
        assert html.count(uid) == 2 and f"D2LAttentionView.mount({json.dumps(uid)})" in html


@pytest.mark.parametrize("shape", [(5, 5), (3, 5, 5), (2, 3, 5, 5), (1, 2, 3, 5, 5)])
def test_the_payload_round_trips_to_the_weights(shape):
    w = softmax_weights(*shape)
    tokens = ["<bos>", "a&b", "</script>", "«é»", '"q"']
    view = attention_view(tokens, w)
    payload = payload_of(view._repr_html_())
    assert payload == view.payload
    assert payload["keys"] == payload["queries"] == tokens  # escaped in the HTML, intact after parsing
    as_four = w[0] if w.dim() == 5 else w.reshape((1,) * (4 - w.dim()) + tuple(w.shape))  # (L, h, T_q, T_k)
    got = np.asarray(payload["weights"]) / payload["scale"]
    assert got.shape == tuple(as_four.shape)
    np.testing.assert_allclose(got, as_four.numpy(), atol=5.01e-4, rtol=0)
    np.testing.assert_allclose(view.weights(), got)


def test_cross_attention_and_top_keys():
    w = softmax_weights(2, 2, 3, 5)
    view = plotting.attention_view(list("vwxyz"), w, query_tokens=["A", "B", "C"], layer_names=["low", "high"])
    assert view.payload["queries"] == ["A", "B", "C"] and view.payload["layers"] == ["low", "high"]
    for layer in range(2):
        for q in range(3):
            top = view.top_keys(q, layer, head=1)
            assert top[0][0] == int(w[layer, 1, q].argmax())
            assert abs(top[0][1] - float(w[layer, 1, q].max())) < 5.01e-4
            mean = w[layer, :, q].mean(0)
            assert view.top_keys(q, layer)[0][0] == int(mean.argmax())
            assert [j for j, _ in view.top_keys(q, layer, k=5)] == torch.argsort(mean, descending=True).tolist()


def test_the_maps_of_collect_attention_are_stacked_as_layers():
    from tiny_models import padded_sources, tiny_transformer

    model = tiny_transformer()
    src, lens = padded_sources(batch_size=1)
    maps = collect_attention(model, src, lens, torch.tensor([[2, 5, 6]]))
    keys = [f"s{i}" for i in range(src.shape[1])]
    view = attention_view(keys, {"encoder": maps["encoder"]}, title="encoder")
    assert view.payload["layers"] == ["encoder · layer 1", "encoder · layer 2"]
    np.testing.assert_allclose(view.weights(), maps["encoder"][0].numpy(), atol=5.01e-4, rtol=0)
    cross = attention_view(keys, {"cross": maps["decoder_cross"][0, -1:]}, query_tokens=["<bos>", "a", "b"])
    assert cross.payload["layers"] == ["cross"]
    with pytest.raises(ValueError, match=r"every map in weights must have the same \(h, T_q, T_k\)"):
        attention_view(keys, maps)  # decoder_self is target x target


def test_half_precision_rows_get_a_looser_sum_check():
    w = softmax_weights(2, 6, 6).to(torch.bfloat16)
    assert attention_view(list("abcdef"), w).payload["heads"] == 2
    with pytest.raises(ValueError, match="must sum to 1"):
        attention_view(list("abcdef"), (w.float() * 1.1).to(torch.bfloat16))


GOOD = softmax_weights(2, 4, 4)
BAD_INPUTS = [
    ({"weights": torch.rand(2, 4, 4)}, r"each row of weights .* must sum to 1 .*before the softmax"),
    ({"weights": GOOD - 0.1}, r"weights must be non-negative .*scores passed before the softmax"),
    ({"weights": torch.full((4, 4), float("nan"))}, r"weights must be finite"),
    ({"weights": torch.ones(4) / 4}, r"weights must have shape \(L, h, T_q, T_k\), \(h, T_q, T_k\) or \(T_q, T_k\)"),
    ({"weights": softmax_weights(2, 1, 1, 4, 4)}, r"batch of 2 examples.*weights\[0\]"),
    ({"weights": torch.ones(2, 0, 4)}, r"weights must not be empty"),
    ({"weights": "abc"}, r"weights must be a tensor or array"),
    ({"tokens": list("abc")}, r"tokens must have 4 entries \(one per key"),
    ({"tokens": "abcd"}, r"tokens must be a list of strings"),
    ({"tokens": [1, 2, 3, 4]}, r"tokens must hold strings"),
    ({"weights": softmax_weights(3, 4)}, r"T_q=3 queries but T_k=4 keys: pass query_tokens"),
    ({"weights": softmax_weights(3, 4), "query_tokens": ["x"]}, r"query_tokens must have 3 entries"),
    ({"layer_names": ["one", "two"]}, r"layer_names must have 1 entries \(one per layer\)"),
    ({"title": 3}, r"title must be a string"),
    ({"weights": {}}, r"weights is an empty dict"),
    ({"weights": {"a": GOOD, "b": softmax_weights(2, 4, 4, 4)[0, :1]}}, r"weights\['b'\] has \(1, 4, 4\)"),
    ({"weights": {"a": torch.rand(4, 4)}}, r"each row of weights\['a'\]"),
    (
        {"weights": softmax_weights(MAX_TOKENS + 1, MAX_TOKENS + 1), "tokens": ["t"] * (MAX_TOKENS + 1)},
        r"at most 128 tokens per side, got T_q=129, T_k=129.*weights\[\.\.\., :128, :128\]",
    ),
    (
        {"weights": softmax_weights(5, 4, 128, 128), "tokens": ["t"] * 128},
        r"at most 262144 weights .* got 327680",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS, ids=lambda x: x if isinstance(x, str) else None)
def test_bad_inputs_are_refused_with_a_clear_message(change, message):
    args = {"tokens": list("abcd"), "weights": GOOD, **change}
    tokens, weights = args.pop("tokens"), args.pop("weights")
    with pytest.raises(ValueError, match=message):
        attention_view(tokens, weights, **args)


def test_repr_names_the_shape():
    assert (
        repr(attention_view(list("abcd"), GOOD, title="x")) == "AttentionView(title='x', (L, h, T_q, T_k)=(1, 2, 4, 4))"
    )
    assert isinstance(attention_view(list("abcd"), GOOD), AttentionView)


def test_the_view_responds_in_chromium_from_a_plain_file(browser, tmp_path):
    """Two views on one page, no server, no kernel: hover, click, layer/head, keyboard."""
    views = [
        attention_view(list("abcde"), softmax_weights(2, 3, 4, 5, seed=1), query_tokens=list("WXYZ"), title="cross"),
        attention_view(["a", "</script>", "c", "d", "e"], softmax_weights(3, 2, 5, 5, seed=2), title="self"),
    ]
    path = tmp_path / "views.html"
    body = "".join(v._repr_html_() for v in views)
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>", "utf-8")
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(path.as_uri(), wait_until="load")
        roots = page.locator(".d2l-av")
        assert roots.count() == 2
        for i, view in enumerate(views):
            root = roots.nth(i)
            assert root.get_attribute("data-mounted") == "true"
            assert root.locator(".d2l-av-nojs").count() == 0  # the no-script note is gone
            assert view_of(root).payload == view.payload
            exercise_view(page, root)
        assert not requests, requests
        assert not errors, errors
    finally:
        context.close()


def test_the_script_and_style_ship_with_the_package():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ("attention_view.js", "attention_view.css"):
        assert (root / "d2l_attn" / "assets" / name).is_file()
    package_data = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert '"assets/*.js", "assets/*.css"' in package_data  # else a pip-installed view has no script


def test_a_single_map_view_responds_too(browser, tmp_path):
    """One layer, one head, one query (e.g. chapter 4's GRU cross-attention for one output token)."""
    path = tmp_path / "one.html"
    body = attention_view(list("abc"), softmax_weights(1, 3), query_tokens=["q"])._repr_html_()
    path.write_text(f"<!doctype html><meta charset='utf-8'><body>{body}</body>", "utf-8")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(path.as_uri(), wait_until="load")
        exercise_view(page, page.locator(".d2l-av"))
    finally:
        context.close()
