"""The README's code blocks run as written, section by section, with their results checked."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore:.*LeafSpec.*")


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks of the README section ``heading`` (its subsections included)."""
    level = len(heading.split(" ", 1)[0])
    blocks: list[str] = []
    inside, fence, current = False, None, []
    for line in README.read_text().splitlines():
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
                if inside and fence == "python":
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


def test_every_python_block_belongs_to_a_tested_section() -> None:
    tested = ["## PyTorch", "## Keras 3", "### Lightning: `MaskMixCallback`", "### Keras: `MaskMixModel`"]
    total = len(re.findall(r"```python\n", README.read_text()))
    assert total == sum(len(python_blocks(h)) for h in tested) == 8


def test_pytorch_section_runs() -> None:
    import torch

    ns = run_blocks(python_blocks("## PyTorch"), "readme_torch")
    images, out = ns["images"], ns["out"]
    assert isinstance(out, torch.Tensor) and out.shape == images.shape  # type: ignore[attr-defined]
    soft = ns["soft"]
    assert soft.shape == (64, 10) and torch.allclose(soft.sum(1), torch.ones(64))  # the thumbnail's  # type: ignore[attr-defined]
    assert ns["lr_aug"].shape == ns["hr"].shape == (16, 3, 96, 96)  # type: ignore[attr-defined]


def test_keras_layers_section_runs() -> None:
    import keras_helpers  # noqa: F401  (Triton before TensorFlow)

    ns = run_blocks(python_blocks("## Keras 3"), "readme_keras")
    images = ns["images"]
    import keras

    assert keras.backend.standardize_dtype(ns["out"].dtype) == "uint8"  # type: ignore[attr-defined]
    assert np.array_equal(np.asarray(ns["same"]), images)
    batches = [(np.asarray(x), np.asarray(y)) for x, y in ns["dataset"]]  # type: ignore[attr-defined]
    assert [len(x) for x, _ in batches] == [32, 32, 32, 4]
    assert all(y.shape[1] == 10 and np.allclose(y.sum(1), 1.0) for _, y in batches)
    assert ns["soft"].shape == (100, 10)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_lightning_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example's Trainer writes checkpoints/ in the working directory
    blocks = python_blocks("### Lightning: `MaskMixCallback`")
    assert len(blocks) == 2
    ns = run_blocks(blocks, "readme_lightning")  # the full example (one epoch on random data), the mixin
    trainer = ns["trainer"]
    assert trainer.state.finished and trainer.global_step == 6  # type: ignore[attr-defined]
    assert ns["augment"].state_dict()["batches"] == 6  # type: ignore[attr-defined]
    assert ns["MixedClassifier"]().maskmix_engine.num_classes == 10  # type: ignore[operator]


@pytest.mark.slow
def test_keras_model_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras_helpers  # noqa: F401  (Triton before TensorFlow)

    monkeypatch.chdir(tmp_path)  # the example saves model.keras in the working directory
    blocks = python_blocks("### Keras: `MaskMixModel`")
    assert len(blocks) == 2
    ns = run_blocks(blocks, "readme_keras_model")
    from maskmix.callbacks import MaskMixModel

    model = ns["model"]
    assert isinstance(model, MaskMixModel) and (tmp_path / "model.keras").exists()
    assert len(model.augmentations) == 1 and model.num_classes == 10  # type: ignore[attr-defined]
    net = ns["net"]
    assert isinstance(net, MaskMixModel) and net.num_classes == 10  # type: ignore[attr-defined]
