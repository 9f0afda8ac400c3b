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
