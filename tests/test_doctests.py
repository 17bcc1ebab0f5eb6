"""Every ``>>>`` example in the docstrings of ``maskmix`` runs, one test item per docstring.

The docstrings are found without importing anything (the source is parsed with :mod:`ast`), so
collection stays cheap in every xdist worker; each item imports its module when it runs and
executes that docstring's examples with :mod:`doctest`. ``pytest tests/test_doctests.py`` then
reports how many docstrings ran ("N passed"); :func:`test_doctest_inventory` prints the number of
examples. A module whose import needs an absent optional dependency (torch, keras, lightning) is
skipped with the missing module's name as the reason.

Keras examples run on the TensorFlow backend unless ``KERAS_BACKEND`` says otherwise (the same
default as the Keras tests, ``tests/keras_helpers.py``); ``tests/conftest.py`` loads Triton
before TensorFlow can be imported.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PACKAGE = Path(__file__).resolve().parents[1] / "maskmix"
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Docstrings whose examples are not run, with the reason. Keep it empty: an entry here is a
#: broken example to fix in the docstring (the docstrings belong to the strategy files' owners).
SKIPPED: dict[str, str] = {}

#: At least this many docstrings carry examples (a floor, so that a discovery bug that finds
#: nothing cannot pass silently).
MIN_DOCSTRINGS = 30


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _docstrings_with_examples(path: Path) -> list[tuple[str, int]]:
    """``(qualified name, number of examples run)`` of the docstrings of ``path`` that doctest
    finds: the module's, its classes' and functions' (nested classes and methods included).
    Examples marked ``# doctest: +SKIP`` are not counted."""
    module = _module_name(path)
    parser = doctest.DocTestParser()
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        doc = ast.get_docstring(node, clean=False)
        if doc and ">>>" in doc:
            examples = parser.get_examples(doc)
            found.append((prefix, sum(not example.options.get(doctest.SKIP) for example in examples)))
        if isinstance(node, (ast.Module, ast.ClassDef)):
            for child in node.body:
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(child, f"{prefix}.{child.name}")

    visit(ast.parse(path.read_text(encoding="utf-8")), module)
    return found


def discover() -> list[tuple[str, str, int]]:
    """``(module, qualified name, examples)`` for every docstring with examples in ``maskmix``."""
    items = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        items += [(module, name, count) for name, count in _docstrings_with_examples(path)]
    return items


DOCSTRINGS = discover()


def _import_or_skip(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and not error.name.startswith("maskmix"):
            pytest.skip(f"{module} needs {error.name}, which is not installed")
        raise


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, n, _ in DOCSTRINGS], ids=[n for _, n, _ in DOCSTRINGS])
def test_docstring_examples(module: str, name: str) -> None:
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    mod = _import_or_skip(module)
    tests = {test.name: test for test in doctest.DocTestFinder(exclude_empty=True).find(mod, module)}
    assert name in tests, f"doctest does not find the docstring {name} that the source holds (found: {sorted(tests)})"
    test = tests[name]
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    skipped = sum(bool(example.options.get(doctest.SKIP)) for example in test.examples)
    assert result.attempted == len(test.examples) - skipped > 0


def test_doctest_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    """Enough docstrings carry examples; the skip list names only docstrings that exist."""
    examples = sum(count for _, _, count in DOCSTRINGS)
    names = {name for _, name, _ in DOCSTRINGS}
    assert len(DOCSTRINGS) >= MIN_DOCSTRINGS, f"only {len(DOCSTRINGS)} docstrings with examples found"
    assert set(SKIPPED) <= names, f"SKIPPED names docstrings without examples: {sorted(set(SKIPPED) - names)}"
    with capsys.disabled():
        print(f"\n{len(DOCSTRINGS)} docstrings with examples, {examples} examples run "
              f"({len(SKIPPED)} docstrings on the skip list)")


def test_public_modules_are_covered() -> None:
    """The examples cover the four public areas of the package."""
    modules = {module for module, _, _ in DOCSTRINGS}
    for area in ("maskmix.torch", "maskmix.keras", "maskmix.callbacks", "maskmix.params"):
        assert any(m == area or m.startswith(area + ".") for m in modules), f"no docstring example in {area}"
