"""The README's code blocks run as written, section by section, with their results checked.

The README is the landing page: one short example per framework and per integration, under
"## Quick start". The longer examples it used to carry live on the documentation pages
(docs/getting-started/*.md, docs/lightning.md, docs/keras_model.md), whose code
tests/test_docs.py runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore:.*LeafSpec.*")

SECTIONS = ("### PyTorch", "### Keras 3", "### Lightning: `MaskMixCallback`", "### Keras: `MaskMixModel`")


#: A line ``<!-- pending: why -->`` right above a ```python fence marks code written against an API
#: that is not merged yet: shown, not run (remove the line once the API lands).
PENDING = "<!-- pending: "


def python_blocks(heading: str, pending: bool = False) -> list[str]:
    """The ```python blocks of the README section ``heading`` (its subsections included); those
    marked pending (:data:`PENDING`) are left out, or, with ``pending=True``, are the only ones."""
    level = len(heading.split(" ", 1)[0])
    blocks: list[str] = []
    inside, fence, current, previous, marked = False, None, [], "", False
    for line in README.read_text().splitlines():
        if fence is None and line.startswith("```"):
            marked = previous.startswith(PENDING)
        previous = line
        if fence is None and line.startswith("#"):  # a heading (code lines are inside fences)
            hashes = len(line) - len(line.lstrip("#"))
            if line == heading:
                inside = True
            elif inside and hashes <= level:
                inside = False
        elif line.startswith("```"):
            if fence is None:
                fence, current = line[3:].strip(), []
            else:
                if inside and fence == "python" and marked == pending:
                    blocks.append("\n".join(current) + "\n")
                fence = None
        elif fence is not None:
            current.append(line)
    return blocks


def run_blocks(blocks: list[str], name: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": name}
    for block in blocks:
        exec(compile(block, f"README.md ({name})", "exec"), namespace)
    return namespace


#: The dense-target examples, one block per framework (marked pending until that API is merged).
DENSE_SECTIONS = ("### PyTorch: `tv_tensors.Mask` in the sample", "### Keras 3: a dict of images, labels and masks")


def test_every_python_block_belongs_to_a_tested_section() -> None:
    total = len(re.findall(r"```python\n", README.read_text()))
    assert [len(python_blocks(h)) for h in SECTIONS] == [1, 1, 1, 1]
    assert len(python_blocks("## Quick start")) == 4 and not python_blocks("## Quick start", pending=True)
    dense = [len(python_blocks(h)) + len(python_blocks(h, pending=True)) for h in DENSE_SECTIONS]
    assert dense == [1, 1]
    assert total == 4 + sum(dense)


@pytest.mark.parametrize("heading", DENSE_SECTIONS)
def test_segmentation_and_detection_sections_run(heading: str) -> None:
    blocks = python_blocks(heading)
    if not blocks:
        pytest.skip(f"README {heading!r}: marked pending (the dense-target API is not merged yet)")
    if "Keras" in heading:
        import keras_helpers  # noqa: F401  (Triton before TensorFlow)
    run_blocks(blocks, "readme_dense")  # the blocks assert what they show


def test_pytorch_section_runs() -> None:
    import torch

    ns = run_blocks(python_blocks("### PyTorch"), "readme_torch")
    images, out = ns["images"], ns["out"]
    assert isinstance(out, torch.Tensor) and out.shape == images.shape and out.dtype == images.dtype  # type: ignore[attr-defined]
    soft = ns["soft"]
    assert soft.shape == (64, 10) and torch.allclose(soft.sum(1), torch.ones(64))  # type: ignore[attr-defined]
    assert ns["mixed"].shape == images.shape and torch.isfinite(ns["loss"])  # type: ignore[attr-defined]


def test_keras_layers_section_runs() -> None:
    import keras_helpers  # noqa: F401  (Triton before TensorFlow)

    ns = run_blocks(python_blocks("### Keras 3"), "readme_keras")
    images = ns["images"]
    import keras

    assert keras.backend.standardize_dtype(ns["out"].dtype) == "uint8"  # type: ignore[attr-defined]
    assert tuple(ns["out"].shape) == images.shape  # type: ignore[attr-defined]
    assert np.array_equal(np.asarray(ns["same"]), images)
    soft = np.asarray(ns["soft"])
    assert soft.shape == (64, 10) and np.allclose(soft.sum(1), 1.0, atol=1e-6)
    assert tuple(ns["mixed"].shape) == images.shape  # type: ignore[attr-defined]


@pytest.mark.slow
def test_lightning_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a Trainer may write in the working directory
    ns = run_blocks(python_blocks("### Lightning: `MaskMixCallback`"), "readme_lightning")
    trainer = ns["trainer"]
    assert trainer.state.finished and trainer.global_step == 4  # type: ignore[attr-defined]
    assert ns["augment"].state_dict()["batches"] == 4  # type: ignore[attr-defined]


@pytest.mark.slow
def test_keras_model_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras_helpers  # noqa: F401  (Triton before TensorFlow)

    monkeypatch.chdir(tmp_path)
    ns = run_blocks(python_blocks("### Keras: `MaskMixModel`"), "readme_keras_model")
    from maskmix.callbacks import MaskMixModel

    model = ns["model"]
    assert isinstance(model, MaskMixModel) and model.num_classes == 10  # type: ignore[attr-defined]
    assert len(model.augmentations) == 1  # type: ignore[attr-defined]
    assert len(ns["history"].history["loss"]) == 1 and np.isfinite(ns["history"].history["loss"][0])  # type: ignore[attr-defined]


def test_reproducing_the_papers_table_is_generated_from_the_registry() -> None:
    """The README's "Reproducing the papers" table lists every published setting of the registry
    with the call and what its paper test verifies; regenerate it with
    ``python docs/_gen/strategy_pages.py --readme`` when a preset or a paper test changes."""
    import importlib.util

    from maskmix import registry

    path = README.parent / "docs" / "_gen" / "strategy_pages.py"
    spec = importlib.util.spec_from_file_location("strategy_pages", path)
    assert spec is not None and spec.loader is not None
    pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pages)
    text = README.read_text()
    start, end = text.index(pages.README_TABLE_BEGIN), text.index(pages.README_TABLE_END) + len(pages.README_TABLE_END)
    assert text[start:end] == pages.readme_papers_table(), (
        "README.md's papers table is stale: run .venv/bin/python docs/_gen/strategy_pages.py --readme"
    )
    section = text[text.index("## Reproducing the papers"):start + len(pages.readme_papers_table())]
    for strategy in registry.specs():
        for setting in strategy.papers:
            assert f"`{setting}`" in section, f"{strategy.name}'s setting {setting!r} is missing from the README"
