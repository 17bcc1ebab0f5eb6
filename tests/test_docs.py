"""The documentation site: it builds in strict mode, covers the public API, and its code runs.

* :func:`test_site_builds_strict` builds the site from the repository into a temporary
  directory with ``mkdocs build --strict`` (a broken link, an unresolved API reference, a missing
  snippet or a page left out of the navigation fails), then checks that the API reference has an
  entry for every public name of ``maskmix.torch``, ``maskmix.keras``, ``maskmix.callbacks`` and
  ``maskmix.params``, and that every registered strategy has its page and picture.
* :func:`test_strategy_pictures_match_the_registry`: the committed pictures
  (``docs/img/strategies``) are exactly those ``docs/_gen/strategy_pages.py`` renders for the
  registry (re-render them with that script after adding a strategy).
* :func:`test_every_strategy_sweeps_its_main_parameter`: every registered strategy declares a
  sweep, its page says which parameter the rows sweep, and its committed picture has the original
  row and one row per swept value; :func:`test_a_picture_has_a_row_per_swept_value` renders one
  (small) and checks its rows and labels.
* :func:`test_page_code_runs`: every ```` ```python ```` block of the hand-written pages and of the
  generated strategy pages runs, page by page, in one namespace, in a temporary directory.
  Blocks fenced ```` ```py ```` are shown only (the other libraries' "before" code, fragments).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PUBLIC_MODULES = {
    "maskmix.torch": ("maskmix/torch/__init__.py", "reference/torch"),
    "maskmix.keras": ("maskmix/keras/__init__.py", "reference/keras"),
    "maskmix.callbacks": ("maskmix/callbacks/__init__.py", "reference/callbacks"),
    "maskmix.params": ("maskmix/params.py", "reference/params"),
}
#: Hand-written pages whose ```python blocks run.
CODE_PAGES = (
    "getting-started/torch.md", "getting-started/keras.md", "lightning.md", "keras_model.md",
    "targets.md", "papers.md", "migration.md",
)
#: Pages whose code trains a model (a few seconds each): marked slow.
SLOW_PAGES = ("getting-started/torch.md", "getting-started/keras.md", "lightning.md", "keras_model.md")


def _strategy_pages_module():
    spec = importlib.util.spec_from_file_location("strategy_pages", DOCS / "_gen" / "strategy_pages.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def public_names(path: str) -> list[str]:
    """The ``__all__`` of a module, read from its source (no import)."""
    for node in ast.parse((ROOT / path).read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                return list(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no __all__")


#: A line ``<!-- pending: why -->`` right above a ```python fence marks code written against an API
#: that is not merged yet: it is shown but not run (remove the line once the API lands).
PENDING = r"<!-- pending: [^\n]*-->"


def python_blocks(markdown: str, pending: bool = False) -> list[str]:
    """The ```python blocks of a page (indented ones, e.g. inside content tabs, dedented); those
    marked pending (:data:`PENDING`) are left out, or, with ``pending=True``, are the only ones."""
    blocks = []
    for match in re.finditer(rf"^( *{PENDING}\n)?( *)```python\n(.*?)^\2```", markdown,
                             re.MULTILINE | re.DOTALL):
        if (match.group(1) is not None) != pending:
            continue
        indent = len(match.group(2))
        blocks.append("".join(line[indent:] for line in match.group(3).splitlines(keepends=True)))
    return blocks


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"

    for module, (path, page) in PUBLIC_MODULES.items():
        html = (site / page / "index.html").read_text(encoding="utf-8")
        missing = [name for name in public_names(path) if f'id="{module}.{name}"' not in html]
        assert not missing, f"the API reference of {module} has no entry for {missing}"

    strategy_pages = _strategy_pages_module()
    for spec in strategy_pages.SPECS.values():
        page = site / "strategies" / spec.flag / "index.html"
        assert page.is_file(), f"no page for {spec.name}"
        html = page.read_text(encoding="utf-8")
        for framework in spec.frameworks:
            assert f"maskmix.{framework}.{spec.name}" in html
        if f"{spec.flag}.png" in strategy_pages.image_names():
            assert f"img/strategies/{spec.flag}.png" in html
            assert (site / "img" / "strategies" / f"{spec.flag}.png").is_file()
        for setting in spec.papers:
            assert f"<code>{setting}</code>" in html, f"{spec.name}'s page does not list its setting {setting!r}"

    # The papers page holds the generated table of every published setting, not its marker.
    papers = (site / "papers" / "index.html").read_text(encoding="utf-8")
    assert strategy_pages.PRESETS_MARKER not in papers
    calls = [f"{spec.name}.from_paper(\"{setting}\")" for spec in strategy_pages.SPECS.values()
             for setting in spec.papers]
    assert calls and all(call in papers for call in calls), [call for call in calls if call not in papers]


def test_strategy_pictures_match_the_registry() -> None:
    strategy_pages = _strategy_pages_module()
    committed = sorted(p.name for p in (DOCS / "img" / "strategies").glob("*.png"))
    assert committed == sorted(strategy_pages.image_names()), (
        "docs/img/strategies/ does not match the registry: run .venv/bin/python docs/_gen/strategy_pages.py "
        "(and remove pictures of strategies that are gone)"
    )


def _rows_in(png: Path, cell: float) -> float:
    """The number of image rows of a picture, from its height (``gallery.render``: cell + 0.15
    inches a row, 0.3 inch of margin, 80 pixels an inch)."""
    from PIL import Image

    with Image.open(png) as image:
        return (image.height / 80 - 0.3) / (cell + 0.15)


def test_every_strategy_sweeps_its_main_parameter() -> None:
    strategy_pages = _strategy_pages_module()
    for spec in strategy_pages.SPECS.values():
        assert spec.sweep is not None, f"{spec.name} has no sweep (maskmix/params.py)"
        name, values = spec.sweep
        assert name in spec.param_names and len(values) >= 2, spec.name
        assert f"The rows sweep `{name}`" in strategy_pages.strategy_page(spec), spec.name
        png = DOCS / "img" / "strategies" / f"{spec.flag}.png"
        assert png.is_file(), f"no picture for {spec.name}: run .venv/bin/python docs/_gen/strategy_pages.py"
        rows = _rows_in(png, strategy_pages.CELL_INCHES)
        assert rows == pytest.approx(1 + len(values), abs=0.05), (
            f"{png.name} has {rows:.2f} rows, not the original and one per value of {name}: re-render it "
            "with .venv/bin/python docs/_gen/strategy_pages.py"
        )


def test_a_picture_has_a_row_per_swept_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Renders the Cutout picture at 16 pixels into tmp_path: the originals, then one row per value,
    labelled ``param=value``; a fixed seed gives the same picture twice."""
    strategy_pages = _strategy_pages_module()
    spec = next(spec for spec in strategy_pages.SPECS.values() if spec.flag == "cutout")
    name, values = spec.sweep
    if str(ROOT / "examples") not in sys.path:
        monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import gallery

    rendered: list[list[str]] = []
    render = gallery.render
    monkeypatch.setattr(gallery, "render", lambda rows, *a, **k: (rendered.append([r[0] for r in rows]),
                                                                   render(rows, *a, **k))[1])
    first, second = tmp_path / "a", tmp_path / "b"
    [png] = strategy_pages.render_images(["cutout"], size=16, directory=first)
    strategy_pages.render_images(["cutout"], size=16, directory=second)
    assert rendered[0] == ["original", *(f"{name}={value!r}" for value in values)]
    assert _rows_in(png, strategy_pages.CELL_INCHES) == pytest.approx(1 + len(values), abs=0.05)
    assert png.read_bytes() == (second / png.name).read_bytes()


def test_every_page_is_in_the_navigation_or_generated() -> None:
    """mkdocs.yml's nav lists every hand-written page (the strict build also checks it)."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_gen" not in p.parts)
    missing = [page for page in pages if page not in nav]
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"


def _page_cases() -> list:
    cases = [pytest.param(page, marks=[pytest.mark.slow] if page in SLOW_PAGES else [], id=page)
             for page in CODE_PAGES]
    strategy_pages = _strategy_pages_module()
    cases += [pytest.param(path, id=path) for path in strategy_pages.pages() if path != "strategies/index.md"]
    return cases


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore:.*LeafSpec.*")
@pytest.mark.parametrize("page", _page_cases())
def test_page_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if page.startswith("strategies/"):
        markdown = _strategy_pages_module().pages()[page]
    else:
        markdown = (DOCS / page).read_text(encoding="utf-8")
    blocks = python_blocks(markdown)
    assert blocks, f"{page} has no ```python block"
    if any("keras" in block for block in blocks):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.chdir(tmp_path)  # Lightning and Keras may write files
    namespace: dict[str, object] = {"__name__": f"docs_{Path(page).stem}"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/{page} (block {i + 1})", "exec"), namespace)
