"""Keras on its torch and JAX backends: the scripts of ``tests/backend_scripts``, all those of one
backend in one fresh Python process per test session.

Keras fixes its backend when it is imported (``KERAS_BACKEND``), and the test processes run it on
TensorFlow, so these checks need processes of their own. One process per check paid the imports
every time (Keras on torch 7-8 s, on JAX ~4 s, TensorFlow's ~6 s more for the determinism digests)
for 1-7 s of work. Here the first test that asks for a backend's outcome runs every script of that
backend in one process; a test on another xdist worker waits for that run (a file lock in the
session's shared temporary directory) and reads the outcomes it left. Each test then passes or
fails on its own script's outcome, with that script's traceback.

The scripts run one after the other in the backend's process (``runpy``, as ``__main__``, with
``sys.argv = [script, backend]``), their standard output captured one by one. They share that
process, as the tests of one worker share theirs: each seeds what it draws and writes only to
temporary files of its own.

``python tests/other_backends.py torch`` runs a backend's scripts and prints their outcomes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SCRIPTS_DIR = TESTS / "backend_scripts"

#: Script (in ``backend_scripts``) -> the Keras backends it runs on, and the test that reads it.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "keras_model_fit": ("torch", "jax"),  # integrations/test_keras_model.py
    "layer_conventions": ("torch", "jax"),  # contracts/test_keras_conventions.py
    "pasting_pixels": ("torch",),  # strategies/test_pasting_shared.py
    "determinism_digests": ("torch",),  # test_keras_determinism.py
    "schedule_in_a_jit_fit": ("jax",),  # integrations/test_keras_schedules.py
    "train_keras_example": ("torch",),  # test_examples.py
}

#: Marks the line of outcomes among whatever else the process prints.
OUTCOMES = "maskmix-backend-outcomes: "
#: The whole backend run, every script included.
TIMEOUT_S = 900


def backend_environment(backend: str) -> dict[str, str]:
    """The environment of a backend's process: CPU only, quiet TensorFlow, one OpenMP thread (the
    test workers share the cores), offline (a proxy on a closed port: a download fails at once),
    ``tests`` and the repository importable."""
    path = os.pathsep.join(p for p in (str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1", "PYTHONPATH": path,
            "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


def run_scripts(backend: str) -> dict[str, dict]:
    """Run every script of ``backend`` in this process: ``{script: {"stdout", "error", "seconds"}}``
    (``error``: the traceback, or None)."""
    outcomes = {}
    for name, backends in SCRIPTS.items():
        if backend not in backends:
            continue
        path = SCRIPTS_DIR / f"{name}.py"
        captured, error, start = io.StringIO(), None, time.perf_counter()
        sys.argv = [str(path), backend]
        try:
            with contextlib.redirect_stdout(captured):
                runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exit:  # a script that ends with sys.exit(main())
            if exit.code:
                error = f"SystemExit({exit.code!r})"
        except Exception:  # an interrupt still stops the run
            error = traceback.format_exc()
        outcomes[name] = {"stdout": captured.getvalue(), "error": error,
                          "seconds": round(time.perf_counter() - start, 2)}
    return outcomes


def run_backend_process(backend: str) -> dict[str, dict]:
    """:func:`run_scripts` of ``backend`` in a fresh process. A process that dies or prints no
    outcomes gives every script of the backend that failure as its error."""
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__)), backend], capture_output=True, text=True,
                              env=backend_environment(backend), cwd=REPO, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as timeout:
        failure = f"the {backend} backend's process ran past {TIMEOUT_S} s:\n{timeout.stderr or ''}"[-6000:]
    else:
        lines = [line for line in proc.stdout.splitlines() if line.startswith(OUTCOMES)]
        if proc.returncode == 0 and lines:
            return json.loads(lines[-1].removeprefix(OUTCOMES))
        failure = (f"the {backend} backend's process exited with {proc.returncode}:\n"
                   f"{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}")
    return {name: {"stdout": "", "error": failure, "seconds": 0.0}
            for name, backends in SCRIPTS.items() if backend in backends}


def script_output(backend: str, script: str, shared_dir: Path) -> str:
    """The standard output of ``script`` on ``backend``; an ``AssertionError`` with the script's
    traceback if it failed. The backend's process runs once per session: its outcomes are kept in
    ``shared_dir`` (one directory for all the session's workers)."""
    from filelock import FileLock

    if backend not in SCRIPTS[script]:
        raise ValueError(f"{script} does not run on {backend}: see SCRIPTS")
    outcomes_file = shared_dir / f"keras_{backend}_backend.json"
    with FileLock(str(outcomes_file) + ".lock"):
        if not outcomes_file.exists():
            outcomes_file.write_text(json.dumps(run_backend_process(backend)))
    outcome = json.loads(outcomes_file.read_text())[script]
    if outcome["error"]:
        raise AssertionError(f"backend_scripts/{script}.py on Keras' {backend} backend failed:\n{outcome['error']}\n"
                             f"its output:\n{outcome['stdout'][-3000:]}")
    return outcome["stdout"]


if __name__ == "__main__":
    chosen = sys.argv[1]
    if os.environ.get("KERAS_BACKEND") == chosen:  # the backend's process (run_backend_process)
        with contextlib.suppress(ImportError):  # Triton before Keras and TensorFlow: see keras_helpers.py
            import triton  # noqa: F401
        print(OUTCOMES + json.dumps(run_scripts(chosen)), flush=True)
    else:  # by hand: start the backend's process, print its outcomes
        for script, outcome in run_backend_process(chosen).items():
            print(f"{script}: {'FAILED' if outcome['error'] else 'ok'} ({outcome['seconds']} s)")
            print(outcome["error"] or "", end="")
