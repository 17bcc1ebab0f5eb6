"""The conventions only Keras has, over the registry (design §Conventions).

One case per strategy Keras implements (the registry's ``example``, and the mixing form of a
strategy that has a mixing switch): the default channels-last layout (dtypes, ranks, tiny images,
channels-first against channels-last), the training flag, the seed generator, construction
errors, ``return_labels``, serialisation, Keras' own ``run_layer_test`` harness, XLA, unknown
sizes at trace time, tf.data, ``fit`` in a jit-compiled model, ``.keras`` files, and the torch and
JAX backends. The conventions both frameworks keep (fraction control, pass-through, dtypes, tiny
batches, seeding) are in ``test_conventions.py``; call-time errors are the battery of
``test_keras_bad_input.py``; each strategy's pixel semantics live in its own test file.

Runs with the TensorFlow backend in-process; on the torch and JAX backends,
``tests/backend_scripts/layer_conventions.py`` checks the conventions (``other_backends.py``).
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from floatx_check import assert_floatx_changes_nothing
from keras.src.testing import TestCase
from keras_helpers import changed_pixels, make_images, np_, params_np, to_tensor
from registry_cases import example_cases

CASES = example_cases("keras")
NAMES = list(CASES)
PLAIN = [name for name in NAMES if not CASES[name].mixes]
LABELLED = [name for name in PLAIN if "return_labels" in CASES[name].spec.param_names]
DTYPES = ("uint8", "float16", "bfloat16", "float32", "float64")
SIZE = (9, 8)
K = 4
#: The common options, away from their defaults (serialisation).
COMMON = dict(augmentation_ratio=0.75, bernoulli_mix=True, pixels_range=(-1.0, 2.0), seed=7)


def build(name: str, **options):
    """The layer of case ``name`` (``num_classes=K`` for a mixing one) with ``options``."""
    return CASES[name].build("keras", num_classes=K, **options)


def images(b: int = 6, dtype: str = "float32", size=SIZE, channels: int = 3, seed: int = 0):
    return to_tensor(make_images((b, *size, channels), dtype, seed=seed), dtype)


def mixes(layer) -> bool:
    return bool(getattr(layer, "mixes", False))


def labels_for(layer, b: int) -> np.ndarray:
    classes = getattr(layer, "num_classes", None) or K
    return np.eye(classes, dtype=np.float32)[np.arange(b) % classes]


def call(layer, x, **kwargs):
    """The images a layer returns, whatever its calling convention (labels, return_labels)."""
    if mixes(layer):
        return layer((x, labels_for(layer, x.shape[0])), **kwargs)[0]
    out = layer(x, **kwargs)
    return out[0] if layer.return_labels else out


def transform(layer, x):
    """``get_random_transformation`` then ``transform_images``: the images and the parameters."""
    t = layer.get_random_transformation((x, labels_for(layer, x.shape[0])) if mixes(layer) else x)
    return layer.transform_images(x, t), t


@pytest.mark.parametrize("name", NAMES)
def test_every_layer_is_a_maskmix_layer_exported_by_the_package(name):
    import maskmix.keras as mk

    cls = type(build(name))
    assert issubclass(cls, mk.MaskMixLayer) and getattr(mk, cls.__name__) is cls


def test_predict_is_clean_and_fit_augments():
    inputs = keras.Input((*SIZE, 3))
    model = keras.Model(inputs, build(PLAIN[0], seed=0)(inputs))
    x = make_images((4, *SIZE, 3))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert (np_(model(x, training=True)) != x).any()


# --------------------------------------------------------------------------------------------
# Inputs: dtypes, ranks, layouts, edge sizes, training flag, seeds.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes_and_shapes_are_kept(name, dtype):
    x = images(4, dtype)
    out = call(build(name, seed=0), x)
    assert keras.backend.standardize_dtype(out.dtype) == dtype and tuple(out.shape) == tuple(x.shape)
    assert changed_pixels(np_(x), np_(out)).any()


@pytest.mark.parametrize("name", NAMES)
def test_rank_3_empty_batches_and_tiny_images(name):
    for x in (images(0), images(3, size=(1, 1)), images(2, size=(1, 5)), images(2, size=(2, 1), channels=1)):
        out = call(build(name, seed=0), x)
        assert tuple(out.shape) == tuple(x.shape)
    if not CASES[name].mixes:
        x = images(1)
        single = call(build(name, seed=5), x[0])
        assert tuple(single.shape) == tuple(x.shape[1:])
        np.testing.assert_array_equal(np_(single), np_(call(build(name, seed=5), x))[0])


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_matches_channels_last(name):
    x = images(6)
    last = np_(call(build(name, seed=9), x))
    layer = build(name, seed=9, data_format="channels_first")
    first = np_(call(layer, keras.ops.transpose(x, (0, 3, 1, 2)))).transpose(0, 2, 3, 1)
    if layer.needs_static_size:  # resampling matrices applied along other axes: rounding may differ
        np.testing.assert_allclose(first, last, atol=1e-6)
    else:
        np.testing.assert_array_equal(first, last)
    assert (last != np_(x)).any()


def outputs(name: str, x) -> list[np.ndarray]:
    """Every tensor a fresh layer of case ``name`` returns for ``x`` (images, labels, flags)."""
    layer = build(name, seed=3)
    out = layer((x, labels_for(layer, x.shape[0]))) if mixes(layer) else layer(x)
    return [np_(o) for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("name", NAMES)
def test_floatx_changes_nothing_a_layer_returns(name):
    """keras.config.set_floatx(...) gives an op on Python numbers alone its dtype (int64 under
    float64): RandomHideAndSeek failed under float64 ("cannot compute Less as input #1 was expected
    to be a int32 tensor"). Every layer computes in its images' dtype, whatever floatx is."""
    for dtype in ("float32", "uint8"):
        x = images(6, dtype)
        assert_floatx_changes_nothing(lambda x=x: outputs(name, x), f"{name}, {dtype} images")


@pytest.mark.parametrize("name", NAMES)
def test_training_false_is_identity_and_seed_determinism(name):
    xs = make_images((5, *SIZE, 3))
    x_copy = xs.copy()
    np.testing.assert_array_equal(np_(call(build(name, seed=1), xs, training=False)), xs)
    a, b, c = (np_(call(build(name, seed=s), xs)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    np.testing.assert_array_equal(xs, x_copy)  # the input is not modified
    layer = build(name, seed=1)
    assert (np_(call(layer, xs)) != np_(call(layer, xs))).any()  # the generator advances


@pytest.mark.parametrize("name", NAMES)
def test_constructor_errors_name_the_layer(name):
    cls = type(build(name))
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: seed must be an int or None; got 1\.5$"):
        build(name, seed=1.5)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: data_format must be"):
        build(name, data_format="nhwc")
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: unexpected parameter\(s\) patch_aera"):
        build(name, patch_aera=0.1)


@pytest.mark.parametrize("name", LABELLED)
def test_return_labels(name):
    x = images(6)
    out, flags = build(name, return_labels=True, augmentation_ratio=0.5, seed=1)(x)
    assert flags.dtype == tf.int64 and tuple(flags.shape) == (6,)
    changed = changed_pixels(np_(x), np_(out)).any(axis=(1, 2))
    np.testing.assert_array_equal(np_(flags), changed.astype(np.int64))
    assert np_(flags).sum() == 3
    single, flag = build(name, return_labels=True, seed=1)(x[0])
    assert tuple(single.shape) == tuple(x.shape[1:]) and tuple(flag.shape) == () and int(flag) == 1
    clean, none = build(name, return_labels=True, seed=1)(x, training=False)
    np.testing.assert_array_equal(np_(clean), np_(x))
    np.testing.assert_array_equal(np_(none), np.zeros(6))
    assert not isinstance(build(name, return_labels=False, seed=1)(x), tuple)


# --------------------------------------------------------------------------------------------
# Serialisation.
# --------------------------------------------------------------------------------------------


def serialisable(case_name: str, **options):
    """The layer with every parameter away from its default where the registry says how
    (``draw_everything``), the case's own configuration and the common options."""
    case = CASES[case_name]
    config = {**case.spec.draw_everything, **case.kwargs(), **COMMON, **options}
    config.pop("return_labels", None)
    if case.spec.mixing_switch is not None:  # the case says whether it mixes
        config[case.spec.mixing_switch] = case.mixes
    return type(case.build("keras"))(**config)


@pytest.mark.parametrize("name", NAMES)
def test_get_config_round_trip_through_json(name):
    layer = serialisable(name, name="aug")
    cls = type(layer)
    config = json.loads(json.dumps(layer.get_config()))
    restored = cls.from_config(config)
    assert restored.get_config() == layer.get_config()
    for key in (*layer.spec.param_names, "seed", "data_format"):
        assert getattr(restored, key) == getattr(layer, key)
    again = keras.saving.deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(layer))))
    assert type(again) is cls and again.get_config() == layer.get_config()
    x = images(5)
    np.testing.assert_array_equal(np_(call(layer, x)), np_(call(restored, x)))


@pytest.mark.slow
def test_keras_file_save_and_load(tmp_path):
    inputs = keras.Input((*SIZE, 3))
    h = inputs
    for name in PLAIN:
        h = serialisable(name, seed=1, augmentation_ratio=1.0, bernoulli_mix=False, pixels_range=None)(h)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for original, restored in zip(model.layers, loaded.layers, strict=True):
        assert type(original) is type(restored) and original.get_config() == restored.get_config()
    x = make_images((3, *SIZE, 3))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    for name in NAMES:  # every layer's JSON config round-trips in a saved file as well
        layer = serialisable(name)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(keras.saving.serialize_keras_object(layer)))
        restored = keras.saving.deserialize_keras_object(json.loads(path.read_text()))
        assert type(restored) is type(layer) and restored.get_config() == layer.get_config()


# --------------------------------------------------------------------------------------------
# The Keras layer test harness.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
class TestKerasHarness(TestCase):
    """``run_layer_test`` on every layer: serialisation, build, symbolic and eager calls, a
    training step. The mixed-precision check passes because the layers do not autocast: the
    output dtype is the input dtype. Mixing layers take an ``(images, labels)`` tuple; layers
    with ``return_labels`` return ``(images, is_augmented)``."""

    def test_every_layer(self):
        for name in NAMES:
            layer = serialisable(name, seed=1)
            init_kwargs = layer.get_config()
            for key in ("name", "trainable", "dtype"):
                init_kwargs.pop(key, None)
            if mixes(layer):
                self.run_layer_test(
                    type(layer), init_kwargs=init_kwargs,
                    input_data=(make_images((3, *SIZE, 3)), labels_for(layer, 3)),
                    expected_output_shape=((3, *SIZE, 3), (3, layer.num_classes)),
                    expected_output_dtype=("float32", "float32"), expected_num_seed_generators=1,
                )
            else:
                self.run_layer_test(
                    type(layer), init_kwargs=init_kwargs, input_shape=(2, *SIZE, 3),
                    expected_output_shape=(2, *SIZE, 3), expected_output_dtype="float32",
                    expected_num_trainable_weights=0, expected_num_seed_generators=1,
                )

    def test_labelled_and_uint8_layers(self):
        for name in LABELLED:
            self.run_layer_test(
                type(build(name)), init_kwargs={**CASES[name].kwargs(), "return_labels": True, "seed": 1},
                input_data=make_images((2, *SIZE, 3)), expected_output_shape=((2, *SIZE, 3), (2,)),
                expected_output_dtype=("float32", "int64"), expected_num_seed_generators=1,
                run_training_check=False,  # the int64 flags have no gradient
            )
        self.run_layer_test(
            type(build(PLAIN[0])), init_kwargs={"seed": 1}, input_data=np.ones((2, *SIZE, 3), "uint8"),
            expected_output_shape=(2, *SIZE, 3), expected_output_dtype="uint8", run_training_check=False,
        )


# --------------------------------------------------------------------------------------------
# Compiled and pipelined use (TensorFlow backend).
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_xla_jit_compile(name):
    """Each layer compiles under XLA on CPU (the parameters and pixels, and the plain call), and
    with the same parameters gives the eager pixels there."""
    layer = serialisable(name, seed=2, augmentation_ratio=0.75, bernoulli_mix=False, pixels_range=None)
    x = images(4, size=(6, 5))
    y = labels_for(layer, 4)

    @tf.function(jit_compile=True)
    def step(batch, labels):
        t = layer.get_random_transformation((batch, labels) if mixes(layer) else batch)
        called = layer((batch, labels)) if mixes(layer) else layer(batch)
        return layer.transform_images(batch, t), t, called

    out, t, called = step(x, y)
    out, p, xs = np_(out), params_np(t), np_(x)
    np.testing.assert_allclose(out, np_(layer.transform_images(x, t)), atol=1e-6)  # the same parameters, eagerly
    changed = changed_pixels(xs, out)
    assert changed[p["selected"]].any() and not changed[~p["selected"]].any()
    if mixes(layer):
        np.testing.assert_allclose(np_(called[1]).sum(1), 1.0, rtol=1e-6)
    assert tuple((called[0] if isinstance(called, tuple) else called).shape) == tuple(x.shape)


@pytest.mark.parametrize("name", NAMES)
def test_autograph_leaves_the_preprocessing_api_as_written(name, caplog):
    """A ``tf.function`` (or ``tf.data`` map) that calls a layer's ``get_random_transformation`` and
    ``transform_*`` itself, Keras' preprocessing-layer API, runs maskmix's code as written, as it
    runs Keras' own: AutoGraph's rewriting of it cost 1-4 s per trace and warned "AutoGraph could
    not transform" on functions it could not parse (``_compat.keep_out_of_autograph``)."""
    from tensorflow.python.autograph.impl import conversion

    layer = build(name, seed=0)
    x = images(4)
    data = (x, labels_for(layer, 4)) if mixes(layer) else x

    def halves(data):
        t = layer.get_random_transformation(data)
        out = layer.transform_images(data[0] if mixes(layer) else data, t)
        return (out, layer.transform_labels(data[1], t)) if mixes(layer) else out

    with caplog.at_level("WARNING"):
        tf.function(halves)(data)
    assert "AutoGraph" not in caplog.text
    for method in ("get_random_transformation", "transform_images", "transform_masks", "call"):
        assert conversion.is_allowlisted(getattr(layer, method)), method
    if mixes(layer):
        assert conversion.is_allowlisted(layer.transform_labels)


def test_a_tensorflow_without_autograph_rules_still_builds_layers(monkeypatch):
    """The rule is a private TensorFlow API: a release that moves it makes AutoGraph slower, and
    must not break ``import maskmix.keras`` or a layer's construction."""
    from tensorflow.python.autograph.core import config

    from maskmix.keras import _compat

    monkeypatch.setattr(_compat, "_autograph_rule_added", False)
    monkeypatch.delattr(config, "CONVERSION_RULES")
    layer = build(NAMES[0], seed=0)
    assert _compat._autograph_rule_added and tuple(layer(images(2)).shape) == (2, *SIZE, 3)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_batch_and_image_size_at_trace_time(name):
    """Traced with ``(None, None, None, 3)`` images: same output as eager with the same seed; the
    layers that build resampling matrices for the size refuse with a message that says what to do."""
    x = images(5)
    layer = serialisable(name, seed=4)

    def traced(height: int | None, width: int | None):
        spec = tf.TensorSpec((None, height, width, 3), tf.float32)
        if mixes(layer):
            labels = tf.TensorSpec((None, None), tf.float32)
            return tf.function(lambda a, b: layer((a, b)), input_signature=[spec, labels])(x, labels_for(layer, 5))
        return tf.function(layer, input_signature=[spec])(x)

    if layer.needs_static_size:
        with pytest.raises(ValueError, match=rf"{type(layer).__name__}: the images' height and width must be known "
                                             r"when the layer is traced .*got shape \(None, None, None, 3\)"):
            traced(None, None)
        out = traced(*SIZE)  # a known size traces, whatever the batch size
        assert tuple((out[0] if isinstance(out, tuple) else out).shape) == (5, *SIZE, 3)
        return
    got = traced(None, None)
    want = serialisable(name, seed=4)((x, labels_for(layer, 5)) if mixes(layer) else x)
    if mixes(layer):
        np.testing.assert_allclose(np_(got[1]), np_(want[1]), rtol=1e-6)
        # Graph-mode arithmetic (fused multiply-adds) may differ from eager in the last bit.
        np.testing.assert_allclose(np_(got[0]), np_(want[0]), rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(np_(got), np_(want))


@pytest.mark.slow
def test_tf_data_pipeline_with_partial_last_batch():
    """Every layer in one tf.data pipeline of uint8 batches whose last batch is partial."""
    x = make_images((7, *SIZE, 3), "uint8")
    y = np.eye(K, dtype=np.float32)[np.arange(7) % K]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    for seed, name in enumerate(NAMES):
        layer = build(name, seed=seed)
        if mixes(layer):
            ds = ds.map(lambda a, b, layer=layer: layer((a, b)))
        else:
            ds = ds.map(lambda a, b, layer=layer: (call(layer, a), b))
    batches = list(ds)
    assert [tuple(a.shape) for a, _ in batches] == [(3, *SIZE, 3), (3, *SIZE, 3), (1, *SIZE, 3)]
    assert all(a.dtype == tf.uint8 and b.dtype == tf.float32 for a, b in batches)
    np.testing.assert_allclose(np.concatenate([b.numpy() for _, b in batches]).sum(1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_fit_with_layers_in_a_jit_compiled_model():
    """Every image layer inside a jit-compiled functional model, every mixing layer in its
    train_step: one XLA compile, a finite loss."""
    inputs = keras.Input((*SIZE, 3))
    h = inputs
    for name in PLAIN:
        h = build(name, seed=1)(h) if not build(name).return_labels else build(name, seed=1)(h)[0]
    outputs = keras.layers.Dense(K, activation="softmax")(keras.layers.Flatten()(h))
    mixing = [build(name, seed=i) for i, name in enumerate(NAMES) if CASES[name].mixes]

    class MixingModel(keras.Model):
        def train_step(self, data):
            x, y = data
            for mixer in mixing:
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
# Other backends: tests/backend_scripts, in one process per backend (other_backends.py).
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_torch_backend(keras_backend_output):
    pytest.importorskip("torch")
    assert "backend ok torch" in keras_backend_output("torch", "layer_conventions")  # tests/backend_scripts


@pytest.mark.slow
def test_jax_backend(keras_backend_output):
    pytest.importorskip("jax")
    assert "backend ok jax" in keras_backend_output("jax", "layer_conventions")
