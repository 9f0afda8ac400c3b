"""One source of truth: the browser checker gives the Python checker's verdicts.

The rules come from ``d2l_attn.exercises.web.export()`` (what the book build writes into
``_static/d2l-exercises/data.js``); ``book/_ext/exercises.js`` runs under Node on the same answers
as ``Exercise.evaluate`` + ``Exercise.feedback``: every solution, every listed wrong answer,
malformed and absurd input, and several hundred generated answers (``exercise_cases.py``).
Status, message and hint must be identical. The same comparison runs in Chromium on the built
site (``tests/test_site.py``).
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from exercise_cases import parity_cases, python_verdict

from d2l_attn.exercises import web

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "exercise_checker.cjs"


def run_node(cases: list[dict], tmp_path: Path) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (the README's setup needs it for npm)")
    data = tmp_path / "data.js"
    data.write_text(web.to_script(web.export()), encoding="utf-8")
    result = subprocess.run(
        [node, str(HARNESS), str(data)], input=json.dumps(cases), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_browser_checker_gives_the_python_verdicts(tmp_path):
    cases = parity_cases()
    origins = collections.Counter(c["origin"] for c in cases)
    # enough of each kind of answer to mean something
    assert origins["solution"] >= 25 and origins["wrong"] >= 80, origins
    assert origins["generated"] >= 500 and origins["malformed"] >= 1500, origins
    js = run_node(cases, tmp_path)
    assert len(js) == len(cases)
    mismatches = [(c, python_verdict(c), j) for c, j in zip(cases, js) if python_verdict(c) != j]
    assert not mismatches, f"{len(mismatches)} of {len(cases)} verdicts differ, e.g.:\n" + "\n".join(
        f"{c['id']} {c['text']!r} (wrong before: {c['wrong_before']})\n  python: {p}\n  js:     {j}"
        for c, p, j in mismatches[:8]
    )
    statuses = collections.Counter(python_verdict(c)["status"] for c in cases)
    # the cases exercise every outcome, and every solution is correct in both
    assert statuses["correct"] >= 60 and statuses["wrong"] >= 300 and statuses["invalid"] >= 1500, statuses
    for c, j in zip(cases, js):
        if c["origin"] == "solution":
            assert j["status"] == "correct", c
        if c["origin"] == "wrong":
            assert j["status"] == "wrong" and j["hint"], c


def test_parity_test_can_fail(tmp_path):
    """A rule changed on one side only (a tighter tolerance in the exported data) is caught."""
    cases = [c for c in parity_cases() if c["id"] == "ch03-softmax-value"]
    data = web.export()
    data["exercises"]["ch03-softmax-value"]["number"]["rtol"] = 1e-9
    node = shutil.which("node") or pytest.skip("Node.js is not installed")
    path = tmp_path / "data.js"
    path.write_text(web.to_script(data), encoding="utf-8")
    result = subprocess.run(
        [node, str(HARNESS), str(path)], input=json.dumps(cases), capture_output=True, text=True, timeout=60, check=True
    )
    js = json.loads(result.stdout)
    assert any(python_verdict(c) != j for c, j in zip(cases, js))


def test_exported_rules_hold_no_python_objects():
    data = json.loads(json.dumps(web.export(), allow_nan=False))
    kinds = collections.Counter(e["kind"] for e in data["exercises"].values())
    assert kinds["number"] >= 7 and kinds["choice"] >= 7 and kinds["tensor"] >= 4 and kinds["code"] >= 7, kinds
    for eid, rules in data["exercises"].items():
        assert rules["hints"], eid
        if rules["kind"] == "tensor":
            assert len(rules["tensor"]["values"]) <= 16, eid
    script = web.to_script(data)
    assert script.isascii() and f"window.{web.GLOBAL_NAME} = " in script


COLAB_LINK_JS = r"""
const {colabLink} = require(process.argv[1]);
function fakeDoc(meta, launch) {
  return {querySelector: (sel) => {
    if (sel.startsWith("meta")) { return meta === null ? null : {getAttribute: () => meta}; }
    return launch === null ? null : {getAttribute: () => launch};
  }};
}
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map(([meta, launch]) => colabLink(fakeDoc(meta, launch)))));
"""


def test_the_page_script_links_only_https_colab_urls():
    """exercises.js takes the Colab URL from the page's meta (or its launch button) and uses it as a
    link only when it is https: (reliability review, security finding 1); run under Node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (the README's setup needs it for npm)")
    good = "https://colab.research.google.com/github/x/y/blob/main/chapters/01.ipynb"
    cases = [
        [good, None],
        [None, good],
        ["  " + good + " ", None],
        ["javascript:alert(document.domain)", None],
        ["JavaScript:alert(1)", good],
        ["data:text/html,<script>alert(1)</script>", None],
        ["http://colab.research.google.com/x", None],
        [None, "javascript:alert(1)//colab.research.google.com"],
        [None, None],
    ]
    result = subprocess.run(
        [node, "-e", COLAB_LINK_JS, str(ROOT / "book" / "_ext" / "exercises.js")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [good, good, good, None, None, None, None, None, None]
