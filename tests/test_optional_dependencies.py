"""A missing optional dependency raises an ImportError that names the extra to install.

One subprocess (cheap: the blocked imports fail before anything heavy loads) runs every check;
each check blocks modules with ``sys.modules[name] = None`` (Python then refuses to import them),
imports the entry point that needs them, records the outcome, and drops every module it loaded so
the next check imports them afresh. One test per optional dependency reads its outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, json, os, sys
sys.path.insert(0, os.path.join(ROOT, "examples"))

def attempt(blocked, code):
    saved = {name: sys.modules.get(name) for name in blocked}
    for name in blocked:
        sys.modules[name] = None
    try:
        exec(code, {})
        outcome = "ok"
    except ImportError as err:  # ModuleNotFoundError included: its message names no extra
        outcome = type(err).__name__ + ": " + str(err)
    # maskmix and the examples are imported afresh by the next check; the frameworks themselves
    # stay loaded (a C extension cannot be imported twice in one process)
    for name in [n for n in sys.modules if n.split(".")[0] in ("maskmix", "datasets", "gallery")]:
        del sys.modules[name]
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
    return outcome

CHECKS = {
    # first, before anything imports keras: Keras on the TensorFlow backend without TensorFlow
    "tensorflow": (["tensorflow"], "import maskmix.keras"),
    "keras": (["keras"], "import maskmix.keras"),
    "keras_model": (["keras"], "from maskmix.callbacks import MaskMixModel"),
    "torch": (["torch"], "import maskmix.torch"),
    "torchvision": (["torchvision"], "import maskmix.torch"),
    "lightning": (["lightning"], "from maskmix.callbacks import MaskMixCallback"),
    "lightning_free": (["lightning"], "from maskmix.callbacks import soft_label_targets; "
                                      "import maskmix; import maskmix.params"),
    "sklearn": (["sklearn"], "import datasets; datasets.load_digits()"),
    "skimage": (["skimage"], "import gallery; gallery.load_photographs(8)"),
    "matplotlib": (["matplotlib"], "import gallery; gallery.render([], [], None)"),
}
print(json.dumps({key: attempt(*check) for key, check in CHECKS.items()}))
"""


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str]:
    env_script = f"ROOT = {str(ROOT)!r}\n" + SCRIPT
    result = subprocess.run([sys.executable, "-c", env_script], capture_output=True, text=True, cwd=ROOT,
                            env={**__import__("os").environ, "KERAS_BACKEND": "tensorflow"}, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("check", "missing", "extra"), [
    ("tensorflow", "tensorflow", "keras"),
    ("keras", "keras", "keras"),
    ("keras_model", "keras", "keras"),
    ("torch", "torch", "torch"),
    ("torchvision", "torchvision", "torch"),
    ("lightning", "lightning", "lightning"),
    ("sklearn", "sklearn", "examples"),
    ("skimage", "skimage", "examples"),
    ("matplotlib", "matplotlib", "examples"),
])
def test_missing_dependency_names_its_extra(outcomes: dict[str, str], check: str, missing: str, extra: str) -> None:
    outcome = outcomes[check]
    assert outcome.startswith("ImportError: "), outcome  # not a bare ModuleNotFoundError
    assert f"optional dependency {missing!r}" in outcome, outcome
    assert f'pip install "maskmix[{extra}]"' in outcome, outcome


def test_soft_label_targets_and_the_core_need_no_lightning(outcomes: dict[str, str]) -> None:
    assert outcomes["lightning_free"] == "ok"
