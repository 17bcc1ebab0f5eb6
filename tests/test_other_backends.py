"""``other_backends.py``, which runs the Keras torch- and JAX-backend checks: every script of
``tests/backend_scripts`` is declared and read by a test, and a backend process that dies fails
every test that reads it (the scripts' own failures: each fails its test with its traceback)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import other_backends
import pytest


def test_every_script_is_declared_and_read_by_a_test_on_each_of_its_backends() -> None:
    assert {path.stem for path in other_backends.SCRIPTS_DIR.glob("*.py")} == set(other_backends.SCRIPTS)
    sources = "\n".join(path.read_text() for path in other_backends.TESTS.rglob("test_*.py"))
    for script, backends in other_backends.SCRIPTS.items():
        for backend in backends:
            assert f'keras_backend_output("{backend}", "{script}")' in sources, (script, backend)


def test_a_process_that_dies_fails_every_script_of_its_backend_once(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    failed = r"^backend_scripts/pasting_pixels\.py on Keras' torch backend failed:\n"
    with pytest.raises(AssertionError, match=failed + r"the torch backend's process exited"):
        other_backends.script_output("torch", "pasting_pixels", tmp_path)
    outcomes = json.loads((tmp_path / "keras_torch_backend.json").read_text())
    assert set(outcomes) == {name for name, backends in other_backends.SCRIPTS.items() if "torch" in backends}
    monkeypatch.setattr(sys, "executable", "/nonexistent")  # read from the file: no second process
    with pytest.raises(AssertionError, match=r"^backend_scripts/keras_model_fit\.py on Keras' torch backend failed"):
        other_backends.script_output("torch", "keras_model_fit", tmp_path)
    with pytest.raises(ValueError, match=r"^schedule_in_a_jit_fit does not run on torch"):
        other_backends.script_output("torch", "schedule_in_a_jit_fit", tmp_path)
