"""Keras base: conventions shared by every layer, serialisation, Keras harness, XLA, tf.data, fit, backends.

Runs with the TensorFlow backend in-process; the torch and JAX backends are exercised in
subprocesses (one script per backend that runs every layer once).
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.testing import TestCase
from keras_helpers import changed_pixels, make_images, np_, params_np, reference_box_mask, to_tensor

from maskmix.keras import (
    MaskMixLayer,
    RandomCutMix,
    RandomCutout,
    RandomErasing,
    RandomGridMask,
    RandomHideAndSeek,
    RandomMixup,
)

MASKING = [RandomCutout, RandomErasing, RandomHideAndSeek, RandomGridMask]
MIXING = [RandomCutMix, RandomMixup]
ALL = MASKING + MIXING
SIZE = (7, 6)
K = 4

#: Non-default constructor arguments per layer (serialisation round trips).
CONFIGS = {
    RandomCutout: dict(patch_area=(0.1, 0.3), allow_partial=True, fill_method=(0.1, 0.2, 0.3)),
    RandomErasing: dict(patch_area=0.2, patch_aspect_ratio=(0.5, 2.0), patch_count=(1, 3), fill_method="noise"),
    RandomHideAndSeek: dict(grid_size=[2, (3, 4)], erased_patches=(1, 3), fill_method="mean_per_channel"),
    RandomGridMask: dict(unit_length=0.5, masked_ratio=(0.3, 0.6), rotation=30.0, fill_method=-1.5),
    RandomCutMix: dict(alpha=0.5, patch_area=(0.1, 0.4), patch_aspect_ratio=2.0, num_classes=K, label_smoothing=0.1),
    RandomMixup: dict(alpha=0.2, num_classes=K, label_smoothing=0.05),
}
COMMON = dict(augmentation_ratio=0.75, bernoulli_mix=True, pixels_range=(-1.0, 2.0), seed=7)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def images(b: int = 6, dtype: str = "float32", size=SIZE, channels_first: bool = False, seed: int = 0):
    shape = (b, 3, *size) if channels_first else (b, *size, 3)
    return to_tensor(make_images(shape, dtype, seed=seed), dtype)


def call(layer, x, **kwargs):
    """Call a layer on images (mixing layers get one-hot labels and return images only)."""
    if isinstance(layer, (RandomCutMix, RandomMixup)):
        labels = np.eye(K, dtype=np.float32)[np.arange(x.shape[0]) % K]
        return layer((x, labels), **kwargs)[0]
    return layer(x, **kwargs)


@pytest.mark.slow
def test_import_maskmix_keras_does_not_import_torch():
    code = "import sys, maskmix.keras; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# Fraction control and pass-through.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_cls", ALL)
@pytest.mark.parametrize(("ratio", "b", "count"), [(0.5, 5, 3), (0.25, 8, 2), (0.0, 4, 0), (1.0, 3, 3), (0.5, 1, 1)])
def test_exact_count_and_bit_identical_pass_through(layer_cls, ratio, b, count):
    x = images(b)
    # Values outside pixels_range survive untouched outside the modified region.
    x = keras.ops.concatenate([x[:, :1] * 0 + 7.5, x[:, 1:]], axis=1)
    layer = layer_cls(augmentation_ratio=ratio, seed=3, **({"num_classes": K} if layer_cls in MIXING else {}))
    t = layer.get_random_transformation(x)
    selected = np_(t["selected"])
    if layer_cls in MIXING and b < 2:
        count = 0
    assert selected.sum() == count
    out = np_(layer.transform_images(x, t))
    np.testing.assert_array_equal(out[~selected], np_(x)[~selected])


@pytest.mark.parametrize("layer_cls", [RandomCutout, RandomGridMask])
def test_one_image_is_augmented_with_probability_ratio(layer_cls):
    """A rank-3 image (a per-sample tf.data map): ratio 0.3 augments about 30% of the calls (an
    exact count of one image would be round(0.3) = 0, never). The selection lives in the base."""
    layer = layer_cls(augmentation_ratio=0.3, seed=2)
    x = images(1)[0]
    hits = sum(not np.array_equal(np_(layer(x)), np_(x)) for _ in range(200))
    assert abs(hits - 60) < 26  # Binomial(200, 0.3): sd 6.5, four sd
    assert np.array_equal(np_(layer_cls(augmentation_ratio=0.0, seed=2)(x)), np_(x))


@pytest.mark.parametrize("layer_cls", ALL)
def test_bernoulli_fraction(layer_cls):
    layer = layer_cls(augmentation_ratio=0.3, bernoulli_mix=True, seed=1)
    selected = np_(layer.get_random_transformation(images(2000, size=(2, 2)))["selected"])
    assert 0.26 < selected.mean() < 0.34


# --------------------------------------------------------------------------------------------
# Inputs: dtypes, ranks, layouts, edge sizes, training flag, seeds.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_cls", ALL)
@pytest.mark.parametrize("dtype", ["uint8", "float16", "bfloat16", "float32", "float64"])
def test_dtypes_and_shapes_are_kept(layer_cls, dtype):
    x = images(4, dtype)
    out = call(layer_cls(seed=0), x)
    assert keras.backend.standardize_dtype(out.dtype) == dtype and tuple(out.shape) == tuple(x.shape)
    assert (changed_pixels(np_(x), np_(out))).any()


@pytest.mark.parametrize("layer_cls", ALL)
def test_empty_batch_and_one_pixel_images(layer_cls):
    for x in (images(0), images(3, size=(1, 1)), images(2, size=(1, 5))):
        out = call(layer_cls(seed=0), x)
        assert tuple(out.shape) == tuple(x.shape)


@pytest.mark.parametrize("layer_cls", MASKING)
def test_rank_3_single_image(layer_cls):
    x = images(1)
    layer_a, layer_b = layer_cls(seed=5), layer_cls(seed=5)
    single = layer_a(x[0])
    assert tuple(single.shape) == tuple(x.shape[1:])
    np.testing.assert_array_equal(np_(single), np_(layer_b(x))[0])


@pytest.mark.parametrize("layer_cls", ALL)
def test_channels_first_matches_channels_last(layer_cls):
    x = images(6)
    last = np_(call(layer_cls(seed=9), x))
    first = np_(call(layer_cls(seed=9, data_format="channels_first"), keras.ops.transpose(x, (0, 3, 1, 2))))
    np.testing.assert_array_equal(first.transpose(0, 2, 3, 1), last)


@pytest.mark.parametrize("layer_cls", ALL)
def test_training_false_is_identity_and_seed_determinism(layer_cls):
    x_np = make_images((5, *SIZE, 3))
    x_copy = x_np.copy()
    np.testing.assert_array_equal(np_(call(layer_cls(seed=1), x_np, training=False)), x_np)
    a = np_(call(layer_cls(seed=1), x_np))
    b = np_(call(layer_cls(seed=1), x_np))
    c = np_(call(layer_cls(seed=2), x_np))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    np.testing.assert_array_equal(x_np, x_copy)  # the input is not modified
    layer = layer_cls(seed=1)
    assert (np_(call(layer, x_np)) != np_(call(layer, x_np))).any()  # the generator advances


def test_predict_is_clean_and_fit_augments():
    inputs = keras.Input((*SIZE, 3))
    model = keras.Model(inputs, RandomCutout(patch_area=0.5, seed=0)(inputs))
    x = make_images((4, *SIZE, 3))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert (np_(model(x, training=True)) != x).any()


@pytest.mark.parametrize("layer_cls", MASKING)
def test_call_errors(layer_cls):
    with pytest.raises(ValueError, match=r"images must be one image \(H, W, C\) or a batch \(B, H, W, C\)"):
        layer_cls()(np.zeros((2, 2, 3, 3, 1), "float32"))
    with pytest.raises(TypeError, match="images must have dtype float16, bfloat16, float32, float64 or uint8"):
        layer_cls()(np.zeros((2, 3, 3, 1), "int32"))


def test_constructor_errors():
    with pytest.raises(TypeError, match=r"RandomCutout: seed must be an int or None; got 1\.5"):
        RandomCutout(seed=1.5)
    with pytest.raises(ValueError, match="RandomCutout: data_format must be"):
        RandomCutout(data_format="nhwc")
    with pytest.raises(TypeError, match="RandomCutout: unexpected parameter\\(s\\) patch_aera"):
        RandomCutout(patch_aera=0.1)


# --------------------------------------------------------------------------------------------
# Serialisation.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_cls", ALL)
def test_get_config_round_trip_through_json(layer_cls):
    layer = layer_cls(**CONFIGS[layer_cls], **COMMON, name="aug")
    config = json.loads(json.dumps(layer.get_config()))
    restored = layer_cls.from_config(config)
    assert restored.get_config() == layer.get_config()
    for key in (*layer.spec.param_names, "seed", "data_format"):
        assert getattr(restored, key) == getattr(layer, key)
    again = keras.saving.deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(layer))))
    assert type(again) is layer_cls and again.get_config() == layer.get_config()
    x = images(5)
    np.testing.assert_array_equal(np_(call(layer, x)), np_(call(restored, x)))


@pytest.mark.slow
def test_keras_file_save_and_load(tmp_path):
    inputs = keras.Input((*SIZE, 3))
    h = inputs
    for layer_cls in MASKING:
        h = layer_cls(**CONFIGS[layer_cls], seed=1)(h)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    kinds = [type(layer) for layer in loaded.layers]
    assert all(cls in kinds for cls in MASKING)
    for original, restored in zip(model.layers, loaded.layers, strict=True):
        assert original.get_config() == restored.get_config()
    x = make_images((3, *SIZE, 3))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    # Mixing layers: their JSON config round-trips in a saved file as well.
    for layer_cls in MIXING:
        path = tmp_path / f"{layer_cls.__name__}.json"
        path.write_text(json.dumps(keras.saving.serialize_keras_object(layer_cls(**CONFIGS[layer_cls]))))
        restored = keras.saving.deserialize_keras_object(json.loads(path.read_text()))
        assert type(restored) is layer_cls


# --------------------------------------------------------------------------------------------
# The Keras layer test harness.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
class TestKerasHarness(TestCase):
    """``run_layer_test`` on every layer: serialisation, build, symbolic and eager calls, a fit step.

    The mixed-precision check passes too because the layers do not autocast: the output dtype is
    the input dtype. For the mixing layers the input is an ``(images, labels)`` tuple; the
    harness supports tuples everywhere (symbolic call through ``compute_output_spec``, eager call,
    training step whose model output is the tuple).
    """

    def test_masking_layers(self):
        for layer_cls in MASKING:
            self.run_layer_test(
                layer_cls,
                init_kwargs={**CONFIGS[layer_cls], "seed": 1},
                input_shape=(2, *SIZE, 3),
                expected_output_shape=(2, *SIZE, 3),
                expected_output_dtype="float32",
                expected_num_trainable_weights=0,
                expected_num_seed_generators=1,
            )

    def test_masking_layer_uint8(self):
        self.run_layer_test(
            RandomCutout,
            init_kwargs={"seed": 1},
            input_data=np.ones((2, *SIZE, 3), "uint8"),
            expected_output_shape=(2, *SIZE, 3),
            expected_output_dtype="uint8",
            run_training_check=False,
        )

    def test_mixing_layers(self):
        for layer_cls in MIXING:
            labels = np.eye(K, dtype=np.float32)[[0, 1, 2]]
            self.run_layer_test(
                layer_cls,
                init_kwargs={**CONFIGS[layer_cls], "seed": 1},
                input_data=(make_images((3, *SIZE, 3)), labels),
                expected_output_shape=((3, *SIZE, 3), (3, K)),
                expected_output_dtype=("float32", "float32"),
                expected_num_seed_generators=1,
            )


# --------------------------------------------------------------------------------------------
# Compiled and pipelined use (TensorFlow backend).
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layer_cls", ALL)
def test_xla_jit_compile(layer_cls):
    """The layer's math compiles under XLA on CPU and keeps its pixel accounting there.

    (The ``call`` path, with its seed-generator update, is compiled by the ``fit`` test below.)
    """
    layer = layer_cls(**{**CONFIGS[layer_cls], "fill_method": "black"} if layer_cls in MASKING else {}, seed=2)
    x = images(5)

    @tf.function(jit_compile=True)
    def step(batch):
        t = layer.get_random_transformation(batch)
        return layer.transform_images(batch, t), t

    out, t = step(x)
    out, p = np_(out), params_np(t)
    changed = changed_pixels(np_(x), out)
    if layer_cls in (RandomCutout, RandomCutMix):
        box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], SIZE) & p["selected"][:, None, None]
        assert not (changed & ~box).any()
        if layer_cls is RandomCutout:
            np.testing.assert_array_equal(changed, box)
    assert changed[p["selected"]].any() and not changed[~p["selected"]].any()


@pytest.mark.parametrize("layer_cls", ALL)
def test_unknown_batch_and_image_size_at_trace_time(layer_cls):
    """Traced with ``(None, None, None, 3)`` images: same output as eager with the same seed."""
    x = images(5)
    layer = layer_cls(**CONFIGS[layer_cls], seed=4)
    if layer_cls in MIXING:
        spec = [tf.TensorSpec((None, None, None, 3), tf.float32), tf.TensorSpec((None,), tf.int64)]
        traced = tf.function(lambda a, b: layer((a, b)), input_signature=spec)
        got = traced(x, np.arange(5) % K)
        want = layer_cls(**CONFIGS[layer_cls], seed=4)((x, np.arange(5) % K))
        np.testing.assert_allclose(np_(got[1]), np_(want[1]), rtol=1e-6)
        # Graph-mode arithmetic (fused multiply-adds) may differ from eager in the last bit.
        np.testing.assert_allclose(np_(got[0]), np_(want[0]), rtol=1e-6, atol=1e-7)
        return
    traced = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    got, want = traced(x), layer_cls(**CONFIGS[layer_cls], seed=4)(x)
    np.testing.assert_array_equal(np_(got), np_(want))


@pytest.mark.slow
def test_tf_data_pipeline_with_partial_last_batch():
    x = make_images((7, *SIZE, 3), "uint8")
    y = np.arange(7) % K
    masks = [cls(seed=3) for cls in MASKING]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    for layer in masks:
        ds = ds.map(lambda a, b, layer=layer: (layer(a), b))
    cutmix, mixup = RandomCutMix(num_classes=K, seed=3), RandomMixup(num_classes=K, seed=4)
    ds = ds.map(lambda a, b: cutmix((a, b))).map(lambda a, b: mixup((a, b)))
    batches = list(ds)
    assert [tuple(a.shape) for a, _ in batches] == [(3, *SIZE, 3), (3, *SIZE, 3), (1, *SIZE, 3)]
    assert all(a.dtype == tf.uint8 and b.dtype == tf.float32 and tuple(b.shape)[1] == K for a, b in batches)
    np.testing.assert_allclose(np.concatenate([b.numpy() for _, b in batches]).sum(1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_fit_with_layers_in_a_jit_compiled_model():
    inputs = keras.Input((*SIZE, 3))
    h = inputs
    for layer_cls in MASKING:
        h = layer_cls(**CONFIGS[layer_cls], seed=1)(h)
    outputs = keras.layers.Dense(K, activation="softmax")(keras.layers.Flatten()(h))

    class MixingModel(keras.Model):
        """The mixing layers mix each training batch and its labels inside the compiled step."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.mixers = [RandomCutMix(num_classes=K, seed=1), RandomMixup(num_classes=K, seed=2)]

        def train_step(self, data):
            x, y = data
            for mixer in self.mixers:
                x, y = mixer((x, y))
            with tf.GradientTape() as tape:
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
            return {"loss": loss}

    model = MixingModel(inputs, outputs)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", jit_compile=True)
    x = make_images((10, *SIZE, 3))
    y = np.arange(10) % K
    history = model.fit(x, y, batch_size=5, epochs=1, verbose=0)  # one batch shape: one XLA compile
    assert np.isfinite(history.history["loss"]).all()


# --------------------------------------------------------------------------------------------
# Other backends, in subprocesses.
# --------------------------------------------------------------------------------------------

BACKEND_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras, sys
    from maskmix.keras import (RandomCutout, RandomErasing, RandomHideAndSeek, RandomGridMask,
                               RandomCutMix, RandomMixup)
    assert keras.backend.backend() == sys.argv[1]
    x = np.random.default_rng(0).uniform(0.1, 0.9, (5, 7, 6, 3)).astype("float32")
    y = np.arange(5) % 4
    for i, cls in enumerate((RandomCutout, RandomErasing, RandomHideAndSeek, RandomGridMask)):
        # Eager JAX compiles every op per dtype: one dtype per layer keeps that run short.
        dtypes = (("float32", "uint8")[i % 2],) if sys.argv[1] == "jax" else ("float32", "uint8")
        for dtype in dtypes:
            xi = keras.ops.cast(x * (255 if dtype == "uint8" else 1), dtype)
            out = cls(seed=1)(xi)
            assert tuple(out.shape) == x.shape and keras.backend.standardize_dtype(out.dtype) == dtype, cls
        single = cls(seed=1)(x[0])
        assert tuple(single.shape) == x.shape[1:]
    for cls in (RandomCutMix, RandomMixup):
        out, soft = cls(num_classes=4, seed=1)((x, y))
        assert tuple(out.shape) == x.shape and tuple(soft.shape) == (5, 4), cls
        assert keras.backend.standardize_dtype(soft.dtype) == "float32"
        np.testing.assert_allclose(keras.ops.convert_to_numpy(soft).sum(1), 1.0, rtol=1e-6)
    # Pixel accounting: Cutout changes exactly its boxes; CutMix labels weigh the pasted pixels.
    layer = RandomCutout(patch_area=0.3, seed=2)
    t = layer.get_random_transformation(x)
    out = keras.ops.convert_to_numpy(layer.transform_images(x, t))
    p = {k: keras.ops.convert_to_numpy(v) for k, v in t.items()}
    expected = np.zeros((5, 7, 6), bool)
    for b in range(5):
        expected[b, p["top"][b]:p["top"][b] + p["height"][b], p["left"][b]:p["left"][b] + p["width"][b]] = True
    assert ((out != x).any(-1) == expected).all()
    layer = RandomCutMix(num_classes=4, seed=3)
    t = layer.get_random_transformation(x)
    soft = keras.ops.convert_to_numpy(layer.transform_labels(y, t))
    f = keras.ops.convert_to_numpy(t["height"] * t["width"]) / 42
    partner = keras.ops.convert_to_numpy(t["partner"])
    eye = np.eye(4)[y]
    np.testing.assert_allclose(soft, (1 - f)[:, None] * eye + f[:, None] * eye[partner], rtol=1e-6, atol=1e-7)
    # Inside tf.data the layers switch to the TensorFlow ops, whatever the backend.
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    erase, cutmix = RandomErasing(seed=5), RandomCutMix(num_classes=4, seed=4)
    ds = ds.map(lambda a, b: (erase(a), b)).map(lambda a, b: cutmix((a, b)))
    shapes = [tuple(a.shape) for a, _ in ds]
    assert shapes == [(2, 7, 6, 3), (2, 7, 6, 3), (1, 7, 6, 3)], shapes
    print("backend ok", sys.argv[1])
    """
)


def _run_backend(backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT, backend], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert f"backend ok {backend}" in result.stdout


@pytest.mark.slow
def test_torch_backend():
    pytest.importorskip("torch")
    _run_backend("torch")


@pytest.mark.slow
def test_jax_backend():
    pytest.importorskip("jax")
    _run_backend("jax")


def test_base_is_exported():
    assert issubclass(RandomCutout, MaskMixLayer)
