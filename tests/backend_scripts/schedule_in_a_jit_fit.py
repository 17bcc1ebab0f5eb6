"""Keras on the backend ``sys.argv[1]`` (JAX): a schedule reaches a jit-compiled fit whose steps
are stateless (integrations/test_keras_schedules.py::test_fit_follows_the_schedule_on_jax)."""

import sys
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integrations"))
import test_keras_schedules

assert keras.backend.backend() == sys.argv[1]
test_keras_schedules.test_fit_with_jit_compile_follows_the_schedule()
print("schedule ok", sys.argv[1])
