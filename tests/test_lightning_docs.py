"""The Lightning README section (docs/lightning.md) runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "lightning.md"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore:.*LeafSpec.*")


@pytest.mark.slow
def test_lightning_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example's Trainer writes checkpoints/ in the working directory
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 2
    namespace: dict[str, object] = {"__name__": "lightning_doc"}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # the full example: one epoch on random data
    trainer = namespace["trainer"]
    assert trainer.state.finished and trainer.global_step == 6  # type: ignore[attr-defined]
    assert namespace["augment"].state_dict()["batches"] == 6  # type: ignore[attr-defined]
    exec(compile(blocks[1], str(DOC), "exec"), namespace)  # the mixin variant
    model = namespace["MixedClassifier"]()  # type: ignore[operator]
    assert model.maskmix_engine.num_classes == 10
