"""Determinism of the Keras layers (docs/determinism.md states what these tests establish).

* Two layers built with the same ``seed`` give bit-identical outputs for the same inputs, call
  after call (each call advances the layer's ``SeedGenerator``); ``seed=None`` layers are
  reproducible after ``keras.utils.set_random_seed``; a fresh process gives the same bits.
* ``tf.function`` draws the same random numbers as eager. Without TensorFlow's graph optimiser
  (Grappler) the outputs are bit-identical; with it (the default), integer draws, selections and
  changed pixels are identical and the float quantities computed from the draws (Beta lambda, label
  weights, blended/resampled pixels) may differ in the last bit: Grappler rewrites arithmetic
  (e.g. a division by a constant into a multiplication by its reciprocal).
* ``tf.function(jit_compile=True)`` (XLA) is reproducible from run to run with the same seed, but
  its random numbers are not the eager ones: XLA lowers TensorFlow's stateless random ops
  (Philox, the same key) to a different bit stream, on CPU at least.
* The torch backend is reproducible with the same seed (in a subprocess); its numbers differ from
  the TensorFlow backend's (another RNG).
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_helpers import make_images, np_
from property_domains import DRAW_EVERYTHING, names

import maskmix.keras  # noqa: F401
from maskmix import registry

REPO = Path(__file__).resolve().parents[1]

CONFIGS = {name: config for name, config in DRAW_EVERYTHING.items() if name in names("keras")}
NAMES = list(CONFIGS)
#: The first strategy of each family: XLA's reproducibility comes from the base's stateless seeds
#: (and its other numbers from TensorFlow's Philox lowering, tested below at the op level), the
#: same for every strategy of a family; each costs an XLA compile or two.
FAMILY_FIRSTS = [next(name for name in NAMES if registry.get(name).family == family)
                 for family in dict.fromkeys(registry.get(name).family for name in NAMES)]
X = make_images((6, 20, 24, 3), seed=1)
Y = np.arange(6) % 3


def layer(name: str, seed: int | None = 3):
    return registry.implementation(name, "keras")(seed=seed, **CONFIGS[name])


def call(layer_, images, labels=Y) -> tuple:
    """One call; every output (images, labels, is_augmented) as a tuple."""
    out = layer_((images, labels)) if "num_classes" in CONFIGS[type(layer_).__name__] else layer_(images)
    return out if isinstance(out, tuple) else (out,)


def as_numpy(outputs: tuple) -> list[np.ndarray]:
    return [np_(t) for t in outputs]


def bits_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(np.ascontiguousarray(x).view(np.uint8),
                                                                     np.ascontiguousarray(y).view(np.uint8))
        for x, y in zip(a, b, strict=True))


def digests() -> dict[str, str]:
    """SHA-256 of every layer's eager outputs for a fixed input and seed (also run in subprocesses)."""
    out = {}
    for name in NAMES:
        sha = hashlib.sha256()
        for array in as_numpy(call(layer(name), X)):
            sha.update(np.ascontiguousarray(array).tobytes())
        out[name] = sha.hexdigest()
    return out


@pytest.fixture
def without_grappler():
    """Turn TensorFlow's graph optimiser off for the functions traced in the test, then restore it."""
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name: str) -> None:
    a, b = layer(name), layer(name)
    first = as_numpy(call(a, X))
    assert bits_equal(first, as_numpy(call(b, X)))
    second = as_numpy(call(a, X))  # the generator advances
    assert not np.array_equal(second[0], first[0])
    assert bits_equal(second, as_numpy(call(b, X)))
    assert not np.array_equal(as_numpy(call(layer(name, seed=4), X))[0], first[0])
    # seed=None draws its seed from Python's RNG: reproducible after keras.utils.set_random_seed.
    keras.utils.set_random_seed(5)
    c = as_numpy(call(layer(name, seed=None), X))
    keras.utils.set_random_seed(5)
    assert bits_equal(c, as_numpy(call(layer(name, seed=None), X)))


def graph_run(name: str, *, jit_compile: bool, with_params: bool = True) -> tuple[list[np.ndarray], dict]:
    """Two calls of a fresh layer inside one ``tf.function`` (its state advances between them),
    plus the drawn parameters of a twin layer traced the same way."""
    layer_ = layer(name)
    step = tf.function(lambda images, labels: call(layer_, images, labels), jit_compile=jit_compile)
    outputs = as_numpy(step(X, Y)) + as_numpy(step(X, Y))
    if not with_params:
        return outputs, {}
    twin = layer(name)
    params = tf.function(lambda images: twin.get_random_transformation(images), jit_compile=jit_compile)(X)
    return outputs, {k: np_(v) for k, v in params.items()}


def eager_run(name: str) -> tuple[list[np.ndarray], dict]:
    layer_ = layer(name)
    outputs = as_numpy(call(layer_, X)) + as_numpy(call(layer_, X))
    return outputs, {k: np_(v) for k, v in layer(name).get_random_transformation(X).items()}


@pytest.mark.parametrize("name", NAMES)
def test_tf_function_without_grappler_is_bit_identical_to_eager(name: str, without_grappler) -> None:
    eager, eager_params = eager_run(name)
    graph, graph_params = graph_run(name, jit_compile=False)
    assert bits_equal(graph, eager)
    assert bits_equal(list(graph_params.values()), [eager_params[k] for k in graph_params])


@pytest.mark.parametrize("name", NAMES)
def test_tf_function_draws_the_eager_numbers(name: str) -> None:
    """With Grappler on: integer draws and selections identical, float draws and values within ulps."""
    eager, eager_params = eager_run(name)
    graph, graph_params = graph_run(name, jit_compile=False)
    assert graph_params.keys() == eager_params.keys()
    for key, value in graph_params.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(value, eager_params[key], rtol=4e-7, atol=0, err_msg=key)
        else:
            np.testing.assert_array_equal(value, eager_params[key], err_msg=key)
    for a, b in zip(graph, eager, strict=True):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)
    assert np.array_equal(graph[0] != X, eager[0] != X)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_FIRSTS)
def test_xla_is_reproducible_but_draws_other_numbers(name: str) -> None:
    first, _ = graph_run(name, jit_compile=True, with_params=False)
    second, _ = graph_run(name, jit_compile=True, with_params=False)
    assert bits_equal(first, second), "XLA is not reproducible with the same seed"
    eager, _ = eager_run(name)
    assert not np.array_equal(first[0], eager[0]), "XLA now draws the eager numbers: update docs/determinism.md"


def test_xla_lowers_stateless_random_ops_to_other_numbers() -> None:
    """The cause, at the TensorFlow level: the same stateless Philox op, eager vs XLA on CPU."""
    seed = tf.constant([1, 2], tf.int32)

    def draw():
        return tf.random.stateless_uniform((8,), seed=seed, alg="philox")

    eager = draw().numpy()
    assert np.array_equal(tf.function(draw)().numpy(), eager)
    xla = tf.function(draw, jit_compile=True)().numpy()
    assert np.array_equal(tf.function(draw, jit_compile=True)().numpy(), xla)
    assert not np.array_equal(xla, eager), "XLA now draws the eager numbers: update docs/determinism.md"


def subprocess_digests(backend: str, runs: int = 1) -> list[dict[str, str]]:
    """:func:`digests` computed ``runs`` times (fresh layers each time) in a fresh process."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    script = f"import json, test_keras_determinism as t; print(json.dumps([t.digests() for _ in range({runs})]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_identical_in_a_fresh_process() -> None:
    assert subprocess_digests("tensorflow") == [digests()]


@pytest.mark.slow
def test_torch_backend_is_reproducible_with_its_own_numbers(keras_backend_output) -> None:
    pytest.importorskip("torch")
    # tests/backend_scripts/determinism_digests.py: digests() twice, fresh layers each time.
    first, second = json.loads(keras_backend_output("torch", "determinism_digests").strip().splitlines()[-1])
    assert first == second
    assert all(first[name] != digest for name, digest in digests().items())


@pytest.mark.parametrize("name", ["RandomCutout", "RandomCutMix"])
def test_tf_data_map_is_reproducible(name: str) -> None:
    """Inside ``tf.data.Dataset.map`` (TensorFlow ops, the layer's generator): same seed, same batches."""

    def batches() -> list[list[np.ndarray]]:
        layer_ = layer(name)
        ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(4).map(lambda x, y: call(layer_, x, y))
        return [as_numpy(tuple(b)) for b in ds]

    first, second = batches(), batches()
    assert len(first) == 2 and all(bits_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_a_call_updates_the_generator_once_and_its_draws_take_consecutive_seeds(name):
    """A call reads the layer's SeedGenerator state once and advances it by CALL_SEEDS, eagerly and
    in tf.function: calls never share a seed, however many draws each makes (at most CALL_SEEDS)."""
    from maskmix.keras._seeds import CALL_SEEDS

    layer_ = layer(name)
    start = layer_.generator.state.numpy()
    call(layer_, X)
    np.testing.assert_array_equal(layer_.generator.state.numpy(), start + np.array([0, CALL_SEEDS]))
    tf.function(lambda images: call(layer_, images))(X)
    np.testing.assert_array_equal(layer_.generator.state.numpy(), start + np.array([0, 2 * CALL_SEEDS]))


def test_call_seeds_are_consecutive_and_bounded():
    from maskmix.keras import _seeds

    generator = keras.random.SeedGenerator(11)
    stream = _seeds.call_seeds("RandomCutout", generator, None)
    seeds = [np_(stream.next()) for _ in range(_seeds.CALL_SEEDS)]
    np.testing.assert_array_equal(np.stack(seeds), np.stack([np.full(_seeds.CALL_SEEDS, 11),
                                                             np.arange(_seeds.CALL_SEEDS)], axis=1))
    with pytest.raises(RuntimeError, match="drew more than CALL_SEEDS = 64 seeds"):
        stream.next()
    # An int seed given to get_random_transformation is a stream too: not one seed for every draw.
    ints = _seeds.call_seeds("RandomCutout", np.int64(7), keras.src.backend)
    assert [np_(ints.next()).tolist() for _ in range(3)] == [[7, 0], [7, 1], [7, 2]]
    layer_ = layer(NAMES[0])
    with pytest.raises(TypeError, match=rf"^{NAMES[0]}: seed must be an int or a keras.random.SeedGenerator; "
                                        r"got str$"):
        layer_.get_random_transformation(X, seed="7")
    first = layer_.get_random_transformation(X, seed=5)
    again = layer_.get_random_transformation(X, seed=5)
    for key, value in first.items():  # an int seed: the same draws at every call
        np.testing.assert_array_equal(np_(value), np_(again[key]), err_msg=key)
