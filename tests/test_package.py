"""The package as a whole: every module imports on its own, exports what it says, and says where it is taught."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import d2l_attn

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(d2l_attn.__path__, prefix="d2l_attn.")
    if not name.rsplit(".", 1)[-1].startswith("_")
)


def test_the_module_list_is_complete():
    # the walk found the subpackages and their modules, not just the top level
    for expected in (
        "d2l_attn.models.transformer",
        "d2l_attn.data.nmt",
        "d2l_attn.exercises.ch07",
        "d2l_attn.decoding",
        "d2l_attn.multihead",
    ):
        assert expected in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists_and_is_unique(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if name.startswith("d2l_attn.exercises.ch"):
        assert hasattr(module, "EXERCISES")  # chapter files export their exercise list
        return
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_docstring(name):
    doc = importlib.import_module(name).__doc__
    assert doc and len(doc.strip()) > 40, f"{name} needs a docstring that explains it"


def test_every_top_level_module_is_in_the_package_map():
    top = {name.split(".")[1] for name in MODULES}
    for module in top:
        assert f"``{module}``" in d2l_attn.__doc__, f"d2l_attn/__init__.py's table misses {module}"


def test_modules_import_on_their_own_and_the_core_never_imports_the_models():
    """A fresh interpreter: importing the attention core must not pull in models, data or tools."""
    core = ["masking", "pooling", "scoring", "multihead", "positional", "embeddings", "blocks"]
    code = (
        "import sys, importlib\n"
        f"for m in {core!r}:\n"
        "    importlib.import_module('d2l_attn.' + m)\n"
        "bad = sorted(n for n in sys.modules if n.startswith(('d2l_attn.models', 'd2l_attn.data', "
        "'d2l_attn.decoding', 'd2l_attn.training', 'd2l_attn.translation', 'd2l_attn.losses')))\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout


def _imported_modules(source: str, package: str) -> set[str]:
    """The absolute ``d2l_attn...`` names that ``source``, a module of ``package``, imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = node.module or ""
            full = module if node.level == 0 else f"{base}.{module}".rstrip(".")
            names.add(full)
            names.update(f"{full}.{alias.name}" for alias in node.names)  # from .. import data
    return {name for name in names if name == "d2l_attn" or name.startswith("d2l_attn.")}


def test_import_parser_resolves_relative_imports():
    source = "from ..data.vocab import Vocab\nfrom .gpt import GPT\nfrom .. import data\nimport d2l_attn.utils\n"
    found = _imported_modules(source, "d2l_attn.models")
    assert {"d2l_attn.data.vocab", "d2l_attn.models.gpt", "d2l_attn.data", "d2l_attn.utils"} <= found
    assert "d2l_attn.blocks" in _imported_modules("from ..blocks import Block\n", "d2l_attn.models")


@pytest.mark.parametrize("path", sorted((ROOT / "d2l_attn" / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_never_import_data(path):
    """A model knows sizes, not vocabularies: ``d2l_attn.models`` never imports ``d2l_attn.data`` (the
    vocabulary-aware builders live in ``d2l_attn.translation``)."""
    bad = sorted(
        n
        for n in _imported_modules(path.read_text(), "d2l_attn.models")
        if n == "d2l_attn.data" or n.startswith("d2l_attn.data.")
    )
    assert not bad, f"{path.name} imports {bad}"


def test_py_typed_marker_ships_with_the_package():
    assert (ROOT / "d2l_attn" / "py.typed").is_file()
    assert "py.typed" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def _public_callables(module):
    """Functions in ``__all__`` defined here, and the public methods of classes in ``__all__``."""
    import inspect

    for export in getattr(module, "__all__", ()):
        obj = getattr(module, export)
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield export, obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            for attr, raw in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(raw, (staticmethod, classmethod)):
                    raw = raw.__func__
                if inspect.isfunction(raw):
                    yield f"{export}.{attr}", raw


def test_public_functions_have_return_annotations():
    missing = []
    for name in MODULES:
        if name.startswith("d2l_attn.exercises.ch"):
            continue  # chapter files have no __all__
        module = importlib.import_module(name)
        for qualname, func in _public_callables(module):
            if "return" not in func.__annotations__:
                missing.append(f"{name}.{qualname}")
    assert not missing, f"public functions without a return annotation: {missing}"


def _code_lines(path: Path) -> int:
    """Lines of code in a module: not blank, not a comment, not part of a docstring."""
    import ast

    source = path.read_text(encoding="utf-8")
    docstring_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstring_lines.update(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstring_lines
    )


def test_code_line_counter_counts_code_only(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Doc\n\nmore doc."""\n\n# comment\nx = 1\n\n\ndef f():\n    """Doc."""\n    return x\n')
    assert _code_lines(module) == 3  # x = 1, def f():, return x


@pytest.mark.parametrize("path", sorted((ROOT / "d2l_attn").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_fits_in_one_sitting(path):
    # DESIGN: "every file holds one idea a reader can finish in one sitting (about 300 lines of
    # code at most, docstrings aside)"
    assert _code_lines(path) <= 300, f"{path.relative_to(ROOT)} has {_code_lines(path)} lines of code; split it"
