"""The README's test command is the one .ci/run runs; the README's book command builds with -W."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n\s*```", text, flags=re.S)


def test_readme_has_book_and_test_commands():
    commands = [c.strip() for c in readme_commands()]
    assert any("jupyter-book build . -W" in c for c in commands)
    assert any(c.endswith("python -m pytest") for c in commands)


def test_ci_runs_the_readme_test_command():
    test_command = next(c.strip() for c in readme_commands() if c.strip().endswith("python -m pytest"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_ci_builds_the_published_book_first_and_tests_that_build():
    """.ci/run runs README command 1 (full mode, -W) and points the browser tests at its output."""
    commands = [c.strip() for c in readme_commands()]
    book_command = next(c for c in commands if "jupyter-book build . -W" in c)
    test_command = next(c for c in commands if c.endswith("python -m pytest"))
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert book_command in lines, ".ci/run must run the README's book command verbatim"
    build_at, test_at = lines.index(book_command), lines.index(test_command)
    assert build_at < test_at, "the book is built before the tests that check it"
    between = lines[build_at:test_at]
    assert any(re.fullmatch(r'export D2L_ATTN_SITE="\$PWD/_build/html"', line) for line in between)
    before = lines[:build_at]
    unset = [line.split()[1:] for line in before if line.startswith("unset ")]
    assert any("D2L_ATTN_QUICK" in names for names in unset), "the published build must not inherit quick mode"
    assert any("D2L_ATTN_SITE_QUICK_OK" in names for names in unset), "CI must not accept a quick-mode site"
    assert "rm -rf _build" in before, "a fresh execution cache: no quick-mode outputs reused"
    assert "D2L_ATTN_QUICK" not in book_command
