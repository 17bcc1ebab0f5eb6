"""MaskMixModel (Keras): real ``fit`` runs on small data, the mixed loss by hand, metrics, saving, backends.

The TensorFlow backend runs in-process; torch, JAX and ``tf.distribute.MirroredStrategy`` run in
subprocesses (the backend and the logical devices must be chosen before Keras/TF initialise).
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import contextlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from floatx_check import assert_floatx_changes_nothing
from keras.src.models.functional import Functional
from keras_helpers import make_images

from maskmix.callbacks.keras_model import FunctionalMaskMixModel, MaskMixModel
from maskmix.keras import RandomCutMix, RandomCutout, RandomErasing, RandomMixup

ROOT = Path(__file__).resolve().parents[2]
K = 3
SHAPE = (8, 8, 1)


def dataset(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable task: each class is a fixed random pattern plus noise; values stay in (0.1, 0.9)."""
    rng = np.random.default_rng(seed)
    patterns = make_images((K, *SHAPE), seed=123)
    y = np.arange(n) % K
    x = np.clip(patterns[y] + rng.normal(0.0, 0.05, (n, *SHAPE)), 0.1, 0.9).astype("float32")
    return x, y


def one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(K, dtype="float32")[y]


def body(inputs, activation=None, regularizer=None):
    x = keras.layers.Flatten()(inputs)
    return keras.layers.Dense(K, activation=activation, kernel_regularizer=regularizer, name="head")(x)


def functional(activation=None, regularizer=None, **options) -> MaskMixModel:
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    return MaskMixModel(inputs, body(inputs, activation, regularizer), **options)


def plain_twin(model, activation=None) -> keras.Model:
    """A plain ``keras.Model`` of the same architecture with ``model``'s weights."""
    inputs = keras.Input(SHAPE)
    twin = keras.Model(inputs, body(inputs, activation))
    twin.set_weights(model.get_weights())
    return twin


def twin_layers(layers):
    """Layers with the same config (so the same seed, hence the same first draws)."""
    return [type(layer).from_config(layer.get_config()) for layer in layers]


def np_(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.fixture(autouse=True)
def _clear_session():
    # Keras' global state (layer names, graph, kernel caches) is reset before every test;
    # free_memory=False skips the gc.collect() that costs ~1.5 s per test in a worker holding
    # the whole collected suite (the models here are tiny; Python's own GC still runs).
    keras.backend.clear_session(free_memory=False)
    yield


# --------------------------------------------------------------------------------------------
# fit with integer and one-hot labels.
# --------------------------------------------------------------------------------------------


def test_fit_integer_labels_sparse_loss():
    x, y = dataset(50)  # 50 = 3 batches of 16 + a partial batch of 2
    model = functional(
        augmentations=[RandomErasing(seed=0)],
        mix=[RandomCutMix(seed=1), RandomMixup(alpha=0.4, seed=2)],
        num_classes=K, seed=0,
    )
    model.compile(
        keras.optimizers.Adam(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
        jit_compile=False,
    )
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history
    losses = history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]
    assert all(0.0 <= a <= 1.0 for a in history["acc"])
    assert history["acc"][-1] > 0.5
    loss, acc = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and acc > 0.9  # clean data: the task is easy


def test_fit_one_hot_labels_categorical_loss():
    x, y = dataset(48)
    model = functional(
        activation="softmax",
        augmentations=[RandomCutout(patch_area=0.1, seed=0)],
        mix=RandomMixup(seed=1),
        label_smoothing=0.1,
    )
    model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy",
                  metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
    history = model.fit(x, one_hot(y), batch_size=16, epochs=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert 0.5 < history["acc"][-1] <= 1.0
    assert model.evaluate(x, one_hot(y), verbose=0)[1] > 0.9


def test_integer_one_hot_labels_are_one_hot_rows():
    x, y = dataset(16)

    def model():
        return functional(activation="softmax", mix=RandomCutMix(seed=1))

    _, metric_float, soft_float = model().augment_batch(x, one_hot(y))
    net = model()
    _, metric_int, soft_int = net.augment_batch(x, one_hot(y).astype("int32"))
    np.testing.assert_array_equal(np.asarray(soft_int), np.asarray(soft_float))
    assert np.asarray(metric_int).dtype == np.int32
    np.testing.assert_array_equal(np.asarray(metric_int), np.asarray(metric_float).astype("int32"))
    net.compile("adam", "categorical_crossentropy", metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
    history = net.fit(x, one_hot(y).astype("int32"), batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all() and 0.0 <= history["acc"][0] <= 1.0


def test_fit_from_tf_data_with_sample_weight_and_column_labels():
    import tensorflow as tf

    x, y = dataset(40)
    weights = np.linspace(0.5, 1.5, 40).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y.reshape(-1, 1).astype("int64"), weights)).batch(16)
    model = functional(mix=RandomCutMix(num_classes=K, seed=1))  # num_classes from the layer
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(data, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()


# --------------------------------------------------------------------------------------------
# The training step augments; evaluate/predict do not.
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="maskmix_tests")
class ZeroPixelProbe(keras.layers.Layer):
    """Counts, in training calls only, the input pixels that are exactly 0 (the ``black`` fill)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

    def call(self, x, training=False):
        if training:
            self.count.assign_add(keras.ops.sum(keras.ops.cast(keras.ops.equal(x, 0.0), "float32")))
        return x


def probed(**options):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    probe = ZeroPixelProbe()
    model = MaskMixModel(inputs, body(probe(inputs)), **options)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model, probe


def test_train_step_augments_and_inference_is_clean():
    x, y = dataset(32)
    model, probe = probed(augmentations=[RandomCutout(patch_area=0.25, seed=0)], mix=RandomCutMix(seed=1),
                          num_classes=K)
    control, control_probe = probed(num_classes=K)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    control.fit(x, y, batch_size=16, epochs=1, verbose=0)
    # A 4x4 square of every image is zero in training (CutMix may move some of it around).
    seen = float(np_(probe.count))
    assert seen >= 0.5 * 16 * 32
    assert float(np_(control_probe.count)) == 0.0
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert float(np_(probe.count)) == seen  # evaluate/predict run with training=False


@pytest.mark.parametrize("labels", ["integer", pytest.param("one_hot", marks=pytest.mark.slow)])
def test_predict_and_evaluate_bit_identical_to_plain_model(labels):
    x, y = dataset(40)
    targets = y if labels == "integer" else one_hot(y)
    loss = "sparse_categorical_crossentropy" if labels == "integer" else "categorical_crossentropy"
    metric = "sparse_categorical_accuracy" if labels == "integer" else "categorical_accuracy"
    model = functional(activation="softmax", augmentations=[RandomErasing(seed=0)],
                       mix=[RandomCutMix(seed=1), RandomMixup(seed=2)], num_classes=K)
    model.compile("adam", loss, metrics=[metric])
    model.fit(x, targets, batch_size=16, epochs=1, verbose=0)
    twin = plain_twin(model, "softmax")
    twin.compile("adam", loss, metrics=[metric])
    np.testing.assert_array_equal(model.predict(x, verbose=0), twin.predict(x, verbose=0))
    np.testing.assert_array_equal(np_(model(x)), np_(twin(x)))
    assert model.evaluate(x, targets, verbose=0) == twin.evaluate(x, targets, verbose=0)


# --------------------------------------------------------------------------------------------
# The loss and the metrics of a step, by hand.
# --------------------------------------------------------------------------------------------


def expected_step(model, augmentations, mix, x, y, *, activation=None, smoothing=0.0, jit_compile=False):
    """Replay a step with twin layers: ``(loss, soft targets, predictions)`` computed by hand.

    The cross-entropy is computed as the lambda-mix of the two sparse losses from the layer's
    sampled ``partner`` and ``partner_weight``, independently of the model's soft targets.
    """
    import tensorflow as tf

    augmentations = twin_layers(augmentations)
    mixing = twin_layers([mix])[0] if mix is not None else None

    def augment(xm):
        for layer in augmentations:
            xm = layer(xm)
        params = None
        if mixing is not None:
            params = mixing.get_random_transformation(xm)
            xm = mixing.transform_images(xm, params)
        return xm, params

    if jit_compile:  # XLA's random streams differ from the eager ones: draw them under XLA too
        augment = tf.function(augment, jit_compile=True)
    xm, params = augment(keras.ops.convert_to_tensor(x))
    xm = np_(xm)
    params = None if params is None else {k: np_(v) for k, v in params.items()}
    logits = np_(plain_twin(model, activation)(xm))
    logp = log_softmax(logits) if activation is None else np.log(logits)
    onehot = one_hot(y) * (1 - smoothing) + smoothing / K
    if params is None:
        soft = onehot
        per_image = -(onehot * logp).sum(-1)
    else:
        w = np.where(params["selected"], params["partner_weight"], 0.0)
        partner = params["partner"]
        own = -(onehot * logp).sum(-1)
        other = -(onehot[partner] * logp).sum(-1)
        per_image = (1 - w) * own + w * other
        soft = (1 - w)[:, None] * onehot + w[:, None] * onehot[partner]
    return per_image.mean(), soft, logits


@pytest.mark.parametrize("metric_labels", ["dominant", "original"])
def test_loss_and_metric_equal_hand_computed_values_integer_labels(metric_labels):
    x, y = dataset(16)
    augmentations = [RandomErasing(seed=5)]
    mix = RandomCutMix(alpha=1.0, seed=7)
    model = functional(augmentations=augmentations, mix=mix, num_classes=K, metric_labels=metric_labels)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")], jit_compile=False)
    loss, soft, logits = expected_step(model, augmentations, mix, x, y)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history  # one step
    np.testing.assert_allclose(history["loss"][0], loss, rtol=1e-5)
    truth = soft.argmax(-1) if metric_labels == "dominant" else y
    np.testing.assert_allclose(history["acc"][0], (logits.argmax(-1) == truth).mean(), rtol=1e-6)
    if metric_labels == "dominant":
        assert (soft.argmax(-1) != y).any()  # the two choices differ on this batch


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_class_weight_weighs_each_class_share_of_the_mixed_rows(with_sample_weight):
    """Keras turns ``class_weight`` into one weight per row, that of the row's original class: a
    mixed row then trained its partner's class at the wrong weight (class 1 at weight 0 still
    trained). With soft targets the loss is ``-sum_k w_k t_k log p_k`` (PyTorch's weighted cross
    entropy of probability targets), computed here by hand; a later fit without it weighs nothing."""
    x, y = dataset(16)
    weights = {0: 1.0, 1: 0.0, 2: 3.0}
    vector = np.array([weights.get(k, 1.0) for k in range(K)])
    sample_weight = np.linspace(0.5, 2.0, 16).astype("float32") if with_sample_weight else None
    mix = RandomCutMix(alpha=1.0, seed=7)
    model = functional(mix=mix, num_classes=K)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    _, soft, logits = expected_step(model, [], mix, x, y)
    logp = log_softmax(logits)
    rows = -(vector * soft * logp).sum(-1) * (1.0 if sample_weight is None else sample_weight)
    keras_rule = vector[y] * -(soft * logp).sum(-1) * (1.0 if sample_weight is None else sample_weight)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, class_weight=weights,
                        sample_weight=sample_weight).history
    np.testing.assert_allclose(history["loss"][0], rows.mean(), rtol=1e-5)
    assert not np.isclose(rows.mean(), keras_rule.mean(), rtol=1e-3)
    # train_on_batch applies it the same way (it took Keras' rule).
    single = functional(mix=RandomCutMix(alpha=1.0, seed=7), num_classes=K)
    single.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   jit_compile=False)
    single.set_weights(model.get_weights())
    np.testing.assert_allclose(single.train_on_batch(x, y, class_weight=weights, sample_weight=sample_weight),
                               rows.mean(), rtol=1e-5)
    # A later fit without class_weight (the step is traced again) is that of a model that never had it.
    twin = functional(mix=RandomCutMix(alpha=1.0, seed=7), num_classes=K)
    twin.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 jit_compile=False)
    twin.set_weights(model.get_weights())
    options = dict(batch_size=16, epochs=1, verbose=0, shuffle=False, sample_weight=sample_weight)
    twin.fit(x, y, **options)
    np.testing.assert_allclose(model.fit(x, y, **options).history["loss"], twin.fit(x, y, **options).history["loss"],
                               rtol=1e-6)


def test_class_weight_is_checked():
    x, y = dataset(16)
    model = functional(mix=RandomMixup(seed=0), num_classes=K)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    with pytest.raises(TypeError, match=r"^MaskMixModel: class_weight must be a dict"):
        model.fit(x, y, epochs=1, verbose=0, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"^MaskMixModel: class_weight\[1\] must be a finite number >= 0; got -1"):
        model.fit(x, y, epochs=1, verbose=0, class_weight={0: 1.0, 1: -1})
    with pytest.raises(ValueError, match=rf"MaskMixModel: class_weight has classes \[{K}\] but num_classes={K}$"):
        model.fit(x, y, epochs=1, verbose=0, class_weight={0: 1.0, K: 2.0})  # before the step: JAX keeps weights
    model = functional(mix=RandomMixup(seed=0))  # without num_classes: found in the step
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=False)
    with pytest.raises(ValueError, match=rf"MaskMixModel: class_weight has classes \[{K}\] but the targets have {K}"):
        model.fit(x, np.eye(K, dtype="float32")[y], epochs=1, verbose=0, class_weight={0: 1.0, K: 2.0})


def test_loss_equals_hand_computed_value_one_hot_mixup_with_smoothing():
    x, y = dataset(16)
    mix = RandomMixup(alpha=0.5, seed=3)
    model = functional(activation="softmax", mix=mix, label_smoothing=0.2)
    model.compile("sgd", "categorical_crossentropy", metrics=[keras.metrics.CategoricalAccuracy(name="acc")],
                  jit_compile=False)
    loss, soft, probs = expected_step(model, [], mix, x, y, activation="softmax", smoothing=0.2)
    history = model.fit(x, one_hot(y), batch_size=16, epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(history["loss"][0], loss, rtol=1e-5)
    np.testing.assert_allclose(history["acc"][0], (probs.argmax(-1) == soft.argmax(-1)).mean(), rtol=1e-6)


def test_label_smoothing_alone_with_sparse_loss():
    x, y = dataset(16)
    model = functional(label_smoothing=0.3, num_classes=K)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    loss, _, _ = expected_step(model, [], None, x, y, smoothing=0.3)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(history["loss"][0], loss, rtol=1e-5)


@pytest.mark.slow
def test_jit_compiled_fit_matches_hand_computed_loss_then_learns():
    x, y = dataset(16)
    augmentations = [RandomErasing(seed=5)]
    mix = RandomCutMix(seed=11)
    model = functional(augmentations=augmentations, mix=mix, num_classes=K)
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"], jit_compile=True)
    assert model.jit_compile
    loss, _, _ = expected_step(model, augmentations, mix, x, y, jit_compile=True)
    history = model.fit(x, y, batch_size=16, epochs=30, verbose=0, shuffle=False).history
    np.testing.assert_allclose(history["loss"][0], loss, rtol=1e-5)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert model.evaluate(x, y, verbose=0)[1] > 0.9


@pytest.mark.parametrize("loss_kind", ["sparse", "dense"])
def test_regularisation_loss_counted_once(loss_kind):
    x, y = dataset(16)
    mix = RandomCutMix(seed=4)
    model = functional(regularizer=keras.regularizers.L2(0.1), mix=mix, num_classes=K)
    if loss_kind == "sparse":
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
        targets = y
    else:
        model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=False)
        targets = one_hot(y)
    kernel = np_(model.get_layer("head").kernel)
    penalty = 0.1 * float((kernel.astype("float64") ** 2).sum())
    loss, _, _ = expected_step(model, [], mix, x, y)
    history = model.fit(x, targets, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    assert penalty > 0.01
    np.testing.assert_allclose(history["loss"][0], loss + penalty, rtol=1e-5)


def test_loss_weight_and_mixed_loss_option():
    x, y = dataset(16)
    mix = RandomCutMix(seed=9)
    model = functional(mix=mix, num_classes=K)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), loss_weights=2.0,
                  jit_compile=False)
    loss, _, _ = expected_step(model, [], mix, x, y)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(history["loss"][0], 2.0 * loss, rtol=1e-5)

    keras.backend.clear_session(free_memory=False)
    mix = RandomCutMix(seed=9)
    model = functional(mix=mix, num_classes=K, mixed_loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.compile("sgd", lambda t, p: keras.ops.zeros_like(p[:, 0]), jit_compile=False)  # not used in fit
    loss, _, _ = expected_step(model, [], mix, x, y)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(history["loss"][0], loss, rtol=1e-5)


def test_a_custom_class_index_loss_without_mixed_loss_names_the_fix():
    # Keras' own error spoke of ranks and shapes only, not of the soft targets nor of mixed_loss.
    x, y = dataset(16)
    model = functional(mix=RandomMixup(seed=0), num_classes=K)
    model.compile("sgd", lambda labels, logits: keras.losses.sparse_categorical_crossentropy(labels, logits))
    with pytest.raises(ValueError, match=r"^MaskMixModel: the compiled loss failed on the soft targets \(B, K\) "
                                         r"that mix/label_smoothing make .* needs mixed_loss="):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)


def test_mix_choice_follows_weights():
    x, y = dataset(16)
    keep = RandomMixup(augmentation_ratio=0.0, seed=1)
    change = RandomMixup(augmentation_ratio=1.0, seed=2)
    model = functional(mix=[keep, change], mix_weights=[3, 1], num_classes=K, seed=0)
    import tensorflow as tf

    step = tf.function(model.augment_batch)
    changed = []
    for _ in range(80):
        out, labels, soft = step(x, y)
        changed.append(bool((np_(out) != x).any()))
        assert np_(labels).dtype == y.dtype and np_(labels).shape == y.shape
        np.testing.assert_allclose(np_(soft).sum(-1), 1.0, rtol=1e-6)
    assert 0.1 < np.mean(changed) < 0.45  # expected 0.25


def test_mix_choice_does_not_depend_on_floatx():
    """The draw that picks a mix layer per step was made in floatx: under float64, float16 or
    bfloat16 the pipeline picked other layers than under float32 from the same seed."""
    from maskmix.keras import MaskMixPipeline

    x, y = dataset(6)

    def steps() -> list[np.ndarray]:
        pipeline = MaskMixPipeline(mix=[RandomMixup(seed=1), RandomCutMix(seed=2)], mix_weights=[1, 1],
                                   num_classes=K, seed=3)
        return [np_(out) for _ in range(8) for out in pipeline(x, y)]

    assert_floatx_changes_nothing(steps, "the mix choice")


def test_options_assigned_after_construction_are_refused():
    """model.label_smoothing = 7.0 was accepted: training kept the pipeline's value while get_config
    saved 7.0, so the saved model differed from the one that trained (or failed to load)."""
    from maskmix.keras import MaskMixPipeline

    model = functional(mix=[RandomCutMix(seed=1), RandomMixup(seed=2)], num_classes=K, seed=0)
    pipeline = MaskMixPipeline(mix=[RandomCutMix(seed=1), RandomMixup(seed=2)], num_classes=K, seed=0)
    for owner, target in (("MaskMixModel", model), ("MaskMixPipeline", pipeline)):
        for name, value in (("label_smoothing", 0.3), ("mix_weights", [1.0, 0.0]), ("num_classes", 4), ("seed", 5)):
            with pytest.raises(ValueError, match=rf"^{owner}: {name} is fixed at construction .*; build a new "
                                                 rf"{owner} with {name}={re.escape(repr(value))}$"):
                setattr(target, name, value)
        # The same value again is no change: a subclass keeping `self.num_classes = num_classes`.
        target.num_classes, target.seed, target.label_smoothing = K, 0, 0.0
    config = model.get_config()
    assert (config["label_smoothing"], config["mix_weights"], config["num_classes"], config["seed"]) == (
        0.0, None, K, 0)


def test_the_mix_choice_does_not_replay_a_layer_given_the_same_seed():
    """The choice among the mix layers was drawn from SeedGenerator(seed) itself: with the docs'
    RandomErasing(seed=0) beside seed=0, image 0 was erased exactly on the steps CutMix was chosen
    (an erasing layer with augmentation_ratio < 1 draws its selection first)."""
    import tensorflow as tf

    from maskmix.keras import MaskMixPipeline

    x, y = make_images((4, 8, 8, 3), seed=0), np.arange(4)

    def erasing():
        return RandomErasing(seed=0, augmentation_ratio=0.5, bernoulli_mix=True, fill_method=0.0)

    keep, change = RandomMixup(augmentation_ratio=0.0, seed=1), RandomMixup(augmentation_ratio=1.0, seed=2)
    pipeline = MaskMixPipeline([erasing()], [change, keep], num_classes=4, seed=0)
    twin = erasing()  # its k-th call draws what the pipeline's erasing layer draws at step k
    step = tf.function(lambda a, b: pipeline(a, b)[1])
    agree, steps = 0, 40
    for _ in range(steps):
        mixed = bool((np_(step(x, y)).max(-1) < 1).any())  # the changing Mixup was chosen
        erased = bool((np_(twin(x))[0] == 0).all(-1).any())
        agree += mixed == erased
    # Independent: Binomial(40, 1/2), sd 3.2; the shared stream agreed on all 40 steps.
    assert 8 <= agree <= 32, agree


# --------------------------------------------------------------------------------------------
# Saving, config, subclassing.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_save_load_fit_again_functional(tmp_path):
    x, y = dataset(32)
    model = functional(
        augmentations=[RandomErasing(patch_area=(0.1, 0.2), seed=0), RandomCutout(fill_method="gray", seed=1)],
        mix=[RandomCutMix(seed=2), RandomMixup(alpha=0.2, seed=3)], mix_weights=[1.0, 2.0],
        num_classes=K, label_smoothing=0.1, metric_labels="original", seed=4,
        mixed_loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is FunctionalMaskMixModel and isinstance(loaded, MaskMixModel)
    def configs(layers):
        return [layer.get_config() for layer in layers]

    assert configs(loaded.augmentations) == configs(model.augmentations)
    assert configs(loaded.mix_layers) == configs(model.mix_layers)
    assert (loaded.mix_weights, loaded.num_classes, loaded.label_smoothing, loaded.metric_labels, loaded.seed) == (
        [1.0, 2.0], K, 0.1, "original", 4)
    assert isinstance(loaded.mixed_loss, keras.losses.CategoricalCrossentropy)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    history = loaded.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all() and "sparse_categorical_accuracy" in history


def test_config_round_trip():
    model = functional(augmentations=RandomCutout(seed=1), mix=RandomMixup(seed=2), num_classes=K, seed=3)
    config = model.get_config()
    clone = MaskMixModel.from_config(config)
    assert isinstance(clone, FunctionalMaskMixModel)
    assert clone.get_config() == config
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model)).get_config() == config


@keras.saving.register_keras_serializable(package="maskmix_tests")
class Net(MaskMixModel):
    """The subclassing usage: layers in ``__init__``, a ``call``, MaskMixModel options in kwargs."""

    def __init__(self, units: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.head = keras.layers.Dense(K)

    def call(self, x, training=False):
        return self.head(self.hidden(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1))))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.slow
def test_subclassing_fit_save_load(tmp_path):
    functional(mix=RandomMixup(), num_classes=K)  # a functional instance first: must not alter MaskMixModel
    assert MaskMixModel.__bases__ == (keras.Model,)
    x, y = dataset(48)
    model = Net(units=8, augmentations=[RandomErasing(seed=0)], mix=RandomCutMix(seed=1), num_classes=K)
    fit_save_load_fit(model, x, y, tmp_path / "net.keras")


def fit_save_load_fit(model, x, y, path):
    """Train, save as .keras, reload (same class, options and predictions), train again."""
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.units == 8 and loaded.num_classes == K
    assert [layer.get_config() for layer in loaded.mix_layers] == [layer.get_config() for layer in model.mix_layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)


@keras.saving.register_keras_serializable(package="maskmix_tests")
class FunctionalNet(MaskMixModel):
    """The functional-subclass usage: the graph is built in ``__init__`` and handed to ``super().__init__``."""

    def __init__(self, units: int = 8, **kwargs):
        inputs = keras.Input(SHAPE)
        hidden = keras.layers.Dense(units, activation="relu")(keras.layers.Flatten()(inputs))
        super().__init__(inputs, keras.layers.Dense(K)(hidden), **kwargs)
        self.units = units

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.slow
def test_functional_subclass_fit_save_load(tmp_path):
    x, y = dataset(48)
    keras.utils.set_random_seed(0)
    model = FunctionalNet(units=8, augmentations=[RandomErasing(seed=0)], mix=RandomCutMix(seed=1), num_classes=K)
    assert type(model) is FunctionalNet and isinstance(model, MaskMixModel)
    assert MaskMixModel.__bases__ == (keras.Model,)  # only the subclass became functional
    assert not isinstance(Net(num_classes=K), Functional)
    assert len(model.layers) == 4 and model.num_classes == K and len(model.mix_layers) == 1
    fit_save_load_fit(model, x, y, tmp_path / "functional_net.keras")
    # Keras would clone it into a plain Functional model (its constructor takes no graph): refused.
    with pytest.raises(TypeError, match="from_config"):
        keras.models.clone_model(model)


def options_of(model) -> dict:
    graph_keys = ("name", "layers", "input_layers", "output_layers")
    return {key: value for key, value in model.get_config().items() if key not in graph_keys}


def test_clone_model_keeps_options():
    x, y = dataset(16)
    model = functional(
        augmentations=[RandomCutout(seed=5)], mix=[RandomCutMix(seed=1), RandomMixup(seed=2)], mix_weights=[1, 3],
        num_classes=K, label_smoothing=0.1, metric_labels="original", seed=7,
        mixed_loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    clone = keras.models.clone_model(model)
    assert type(clone) is FunctionalMaskMixModel and clone.compiled
    assert options_of(clone) == options_of(model) and clone.num_classes == K and clone.label_smoothing == 0.1
    # fresh layers, built from the originals' configs
    assert all(a is not b for a, b in zip(clone.augmentations + clone.mix_layers,
                                          model.augmentations + model.mix_layers, strict=True))
    assert isinstance(clone.mixed_loss, keras.losses.CategoricalCrossentropy)
    out, _, soft = clone.augment_batch(x, y)
    assert soft is not None and (np_(out) != x).any()
    clone.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert keras.models.clone_model(model, clone_function=lambda layer: layer).mix_weights == [1.0, 3.0]
    # a model built on the symbolic output of a MaskMixModel does not inherit its options
    inputs = keras.Input(SHAPE)
    outer = MaskMixModel(inputs, model(inputs))
    assert outer.num_classes is None and not outer.mix_layers and not outer.augmentations


def test_single_output_labels_in_a_list_or_dict():
    x, y = dataset(16)
    model = functional(mix=RandomCutMix(seed=0), num_classes=K)
    model.compile("adam", [keras.losses.SparseCategoricalCrossentropy(from_logits=True)], metrics=[["accuracy"]])
    history = model.fit(x, [y], batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    _, labels, soft = model.augment_batch(x, [y])
    assert isinstance(labels, list) and len(labels) == 1 and np_(labels[0]).shape == y.shape
    np.testing.assert_array_equal(np_(labels[0]), np_(soft).argmax(-1))
    # a dense loss (used as compiled, on the soft targets) with list-wrapped one-hot labels
    model.compile("adam", [keras.losses.CategoricalCrossentropy(from_logits=True)],
                  metrics=[["categorical_accuracy"]])
    assert np.isfinite(model.fit(x, [one_hot(y)], batch_size=8, epochs=1, verbose=0).history["loss"]).all()
    name = model.output_names[0]
    model.compile("adam", {name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    assert np.isfinite(model.fit(x, {name: y}, batch_size=8, epochs=1, verbose=0).history["loss"]).all()


def binary_model(bias: float, **options) -> MaskMixModel:
    """A sigmoid model whose prediction is sigmoid(bias) for every image (zero kernel)."""
    inputs = keras.Input(SHAPE)
    dense = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(bias))
    return MaskMixModel(inputs, dense(keras.layers.Flatten()(inputs)), **options)


def test_binary_single_column_labels_metrics_and_smoothing():
    x, _ = dataset(32)
    y = (np.arange(32) % 2).astype("float32")[:, None]
    model = binary_model(2.0, mix=RandomMixup(alpha=1.0, seed=0))
    _, labels, soft = model.augment_batch(x, y)
    labels, soft = np_(labels), np_(soft)
    assert labels.shape == y.shape and labels.dtype == np.float32
    np.testing.assert_array_equal(labels, (soft >= 0.5).astype("float32"))  # round, not argmax over 1 column
    assert 0 < labels.sum() < len(labels)
    # label smoothing towards 0.5 (Keras' binary convention): 0/1 -> 0.1/0.9 for 0.2
    model = binary_model(2.0, label_smoothing=0.2)
    _, labels, soft = model.augment_batch(x, y)
    np.testing.assert_allclose(np_(soft), np.where(y > 0.5, 0.9, 0.1), atol=1e-6)
    np.testing.assert_array_equal(np_(labels), y)
    # in fit: the prediction is always class 1, so binary_accuracy is the share of class-1 labels
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy", metrics=["binary_accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False).history
    p = 1.0 / (1.0 + np.exp(-2.0))
    t = np.where(y > 0.5, 0.9, 0.1)
    expected = np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    assert history["binary_accuracy"][0] == pytest.approx(0.5)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(0.5)


def test_augmentation_only_keeps_labels_and_loss():
    x, y = dataset(16)
    model = functional(augmentations=[RandomCutout(seed=0)])
    out, labels, soft = model.augment_batch(x, y)
    assert soft is None and labels is y
    assert (np_(out) != x).any()
    out, _, _ = model.augment_batch({"image": x}, y)  # a one-tensor structure keeps its structure
    assert isinstance(out, dict) and (np_(out["image"]) != x).any()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


# --------------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"augmentations": [RandomCutMix()]}, ValueError, "pass mixing layers as mix="),
        ({"augmentations": ["cutout"]}, TypeError, r"augmentations\[0\] must be a Keras layer; got 'cutout'$"),
        ({"mix": RandomCutout()}, TypeError, "mix must be a maskmix mixing layer .*; got RandomCutout$"),
        ({"mix": []}, ValueError, "non-empty list"),
        ({"mix": [RandomCutMix(), RandomMixup()], "mix_weights": [1.0]}, ValueError, "one weight per mix layer"),
        ({"mix": [RandomCutMix(), RandomMixup()], "mix_weights": [1.0, -1.0]}, ValueError, r"mix_weights\[1\] must be"),
        ({"mix": [RandomCutMix(), RandomMixup()], "mix_weights": [0, 0]}, ValueError, "at least one positive"),
        ({"mix_weights": [1.0]}, ValueError, "mix_weights needs mix"),
        ({"mix": RandomCutMix(num_classes=4), "num_classes": 3}, ValueError, "num_classes=3"),
        ({"num_classes": 0}, ValueError, "num_classes must be None or an integer >= 2"),
        ({"num_classes": "3"}, TypeError, "num_classes must be None or an integer >= 2; got '3'$"),
        ({"label_smoothing": 1.0}, ValueError, "label_smoothing must be a float in"),
        ({"mix": RandomMixup(label_smoothing=0.2), "label_smoothing": 0.1}, ValueError, "label_smoothing must agree"),
        ({"metric_labels": "soft"}, ValueError, "metric_labels must be"),
        ({"seed": 1.5}, TypeError, "seed must be None or an integer in \\[0, 2\\*\\*64\\)"),
        ({"seed": -1}, ValueError, "seed must be None or an integer in \\[0, 2\\*\\*64\\); got -1$"),
        ({"seed": 2**70}, ValueError, r"seed must be None or an integer in \[0, 2\*\*64\); got 11805916207174113"),
        ({"mix": keras.layers.CutMix()}, TypeError, "got Keras' CutMix"),
        ({"augmentations": [keras.layers.MixUp()]}, ValueError,
         r"augmentations\[0\] is or contains the mixing layer MixUp"),
        ({"mixed_loss": "no_such_loss"}, ValueError, "mixed_loss must be a Keras loss"),
        ({"mix": [RandomCutMix(num_classes=3), RandomMixup(num_classes=4)]}, ValueError, "must agree"),
        ({"mix": [RandomCutMix(num_classes=3), RandomMixup()], "num_classes": 4}, ValueError, "must agree"),
        ({"num_classes": np.bool_(True)}, TypeError, "num_classes must be None or an integer >= 2"),
        # One class would one-hot binary labels inverted (0 -> [1], 1 -> [0]); the message says what to give.
        ({"num_classes": 1}, ValueError,
         r"^MaskMixModel: num_classes must be None or an integer >= 2; got 1: one_hot\(y, 1\) maps label 0 to "
         r"\[1\] and label 1 to \[0\].* give float labels of shape \(B, 1\) holding 0\.0/1\.0 and leave "
         r"num_classes unset"),
        ({"mix": RandomCutMix(num_classes=1)}, ValueError,
         r"^MaskMixModel: num_classes must be None or an integer >= 2, the mix layers' own included; got mix "
         r"\(RandomCutMix\) num_classes=1: one_hot\(y, 1\)"),
        ({"augmentation": [RandomCutout()]}, TypeError, "'augmentation' \\(did you mean 'augmentations'\\?\\)"),
        ({"mixes": RandomCutMix(), "num_classes": 3}, TypeError, "unrecognized keyword argument.*'mixes'"),
    ],
)
def test_constructor_errors(options, error, match):
    inputs = keras.Input(SHAPE)
    with pytest.raises(error, match=match):
        MaskMixModel(inputs, body(inputs), **options)


def test_numpy_scalars_are_accepted_as_python_numbers():
    # e.g. num_classes = y.max() + 1
    model = functional(mix=[RandomCutMix(), RandomMixup()], mix_weights=[np.float32(1), 2.0],
                       num_classes=np.int64(K), label_smoothing=np.float32(0.25), seed=np.int32(5))
    assert type(model.num_classes) is int and model.num_classes == K
    assert type(model.label_smoothing) is float and model.label_smoothing == 0.25
    assert model.mix_weights == [1.0, 2.0] and all(type(w) is float for w in model.mix_weights)
    assert type(model.seed) is int and model.seed == 5
    x, y = dataset(16)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def test_functional_form_accepts_keras_model_keywords():
    inputs = keras.Input(SHAPE)
    model = MaskMixModel(inputs, body(inputs), name="net", trainable=False, dtype="float32", num_classes=K)
    assert model.name == "net" and not model.trainable
    model = MaskMixModel(inputs=inputs, outputs=body(inputs), name="net2")
    assert model.name == "net2"


def test_step_errors():
    x, y = dataset(16)
    model = functional(mix=RandomCutMix())
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="num_classes is required"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model = functional(mix=RandomCutMix(), num_classes=K)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
    with pytest.raises(ValueError, match="ignore_class"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        model.augment_batch(x, np.zeros((16,), "float32"))
    with pytest.raises(TypeError, match="single label tensor"):
        model.augment_batch(x, [y, y])


@pytest.mark.parametrize(
    ("labels", "bad"),
    [
        (np.array([0, 1, 2, 3, 0, 1, 2, 0]), "[3]"),  # one past the last class: one_hot would give a zero row
        (np.array([0, -1, 2, 1, 0, 1, 2, 0], "int32"), "[-1]"),
        (np.array([0, 1, 2, 2**40 + 1, 0, 1, 2, 0]), "[1099511627777]"),  # would wrap into range as int32
        (np.array([[0], [7], [2], [1], [0], [1], [2], [0]], "uint8"), "[7]"),  # (B, 1) class indices
    ],
)
def test_class_indices_out_of_range_raise_where_they_can_be_read(labels, bad):
    import tensorflow as tf

    x, _ = dataset(8)
    refused = rf"^MaskMixModel: class indices must lie in \[0, {K}\); got {re.escape(bad)}$"
    for options in ({"mix": RandomCutMix(seed=1)}, {"label_smoothing": 0.1}):  # with and without a mixing layer
        model = functional(num_classes=K, **options)
        with pytest.raises(ValueError, match=refused):
            model.augment_batch(x, labels)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
        with pytest.raises(ValueError, match=refused):
            model.fit(x, labels, batch_size=8, verbose=0)
    from maskmix.keras import MaskMixPipeline

    with pytest.raises(ValueError, match=rf"^MaskMixPipeline: class indices must lie in \[0, {K}\)"):
        MaskMixPipeline(mix=RandomCutMix(seed=1), num_classes=K)(x, labels)
    # A compiled step never reads the labels back: there the pipeline does what the mixing layer
    # does with class indices of its own (their one_hot rows), draw for draw.
    labels = np.reshape(labels, (-1,)).astype("int64")
    pipeline = MaskMixPipeline(mix=RandomCutMix(seed=4), num_classes=K)
    layer = RandomCutMix(seed=4, num_classes=K)
    _, got = tf.function(lambda a, b: pipeline(a, b))(x, labels)
    _, expected = tf.function(lambda a, b: layer((a, b), training=True))(x, labels)
    np.testing.assert_array_equal(np_(got), np_(expected))
    assert np.isnan(np_(got)[(labels < 0) | (labels >= K)]).all()  # NaN rows, which the loss shows


def test_a_compiled_fit_with_out_of_range_class_indices_reports_a_nan_loss():
    """Where the labels cannot be read (a compiled step), a bad class index makes the loss NaN
    instead of a zero target row that trains on nothing."""
    x, _ = dataset(8)
    labels = np.array([0, 1, 2, 9, 0, 1, 2, 0], "int64")
    model = functional(num_classes=K, mix=RandomCutMix(seed=1))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isnan(history.history["loss"][-1])


def test_a_compiled_fit_with_soft_labels_outside_zero_one_reports_a_nan_loss():
    """Where the labels cannot be read (a compiled step), soft rows that are not probabilities
    (here logits) make the loss NaN instead of being mixed and smoothed as probabilities; the
    pipeline in a graph gives NaN rows for them and the valid rows as the eager pipeline does."""
    import tensorflow as tf

    from maskmix.keras import MaskMixPipeline

    x, _ = dataset(8)
    logits = np.linspace(-2.0, 3.0, 8 * K, dtype="float32").reshape(8, K)
    model = functional(label_smoothing=0.1)
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    history = model.fit(x, logits, batch_size=8, epochs=1, verbose=0)
    assert np.isnan(history.history["loss"][-1])
    rows = np.full((8, K), 1.0 / K, "float32")
    rows[3] = logits[3]
    _, got = tf.function(lambda a, b: MaskMixPipeline(label_smoothing=0.1)(a, b))(x, rows)
    valid = np.delete(np.arange(8), 3)
    _, expected = MaskMixPipeline(label_smoothing=0.1)(x[valid], rows[valid])
    assert np.isnan(np_(got)[3]).all()
    np.testing.assert_array_equal(np_(got)[valid], np_(expected))


def test_soft_labels_outside_zero_one_are_refused_by_the_pipeline_too():
    """The float path of the pipeline (smoothing alone, no mixing layer to check them) refuses
    soft rows that are not probabilities, as the mixing layers do, where the values can be read."""
    from maskmix.keras import MaskMixPipeline

    x, _ = dataset(8)
    logits = np.linspace(-2.0, 3.0, 8 * K, dtype="float32").reshape(8, K)
    refused = r"^{}: one-hot/soft labels must lie in \[0, 1\]; got values from -2 to 3$"
    with pytest.raises(ValueError, match=refused.format("MaskMixModel")):
        functional(label_smoothing=0.1).augment_batch(x, logits)
    with pytest.raises(ValueError, match=refused.format("MaskMixPipeline")):
        MaskMixPipeline(label_smoothing=0.1)(x, logits)
    probabilities = np.full((8, K), 1.0 / K, "float32")
    _, targets = MaskMixPipeline(label_smoothing=0.1)(x, probabilities)
    np.testing.assert_allclose(np_(targets), probabilities, rtol=1e-6)  # uniform rows stay uniform


def test_greyscale_batches_without_a_channel_axis_are_refused_in_training():
    from maskmix.keras import MaskMixPipeline, RandomCutSwap

    x, y = dataset(8)
    grey = x[..., 0]  # (B, H, W): RandomErasing would read it as one 8x8 image with 8 channels
    refused = (r"^MaskMixModel: the training images must be a batch of rank 4, \(B, H, W, C\) or channels-first "
               r"\(B, C, H, W\), for {}; got shape \(8, 8, 8\) \(the image layers take a rank-3 input for one "
               r"image\)\. Add the channel axis of a greyscale batch: x\[\.\.\., None\] for channels_last")
    inputs = keras.Input(SHAPE[:2])
    model = MaskMixModel(inputs, body(inputs), augmentations=[RandomErasing(seed=0)], num_classes=K)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=refused.format("RandomErasing")):
        model.augment_batch(grey)
    with pytest.raises(ValueError, match=refused.format("RandomErasing")):
        model.augment_batch({"image": grey}, y)  # a one-tensor dict of inputs
    with pytest.raises(ValueError, match=refused.format("RandomErasing")):
        model.fit(grey, y, batch_size=8, verbose=0)
    # Inference takes what the model takes, untouched.
    twin = keras.Model(inputs, model.output)
    np.testing.assert_array_equal(model.predict(grey, verbose=0), twin.predict(grey, verbose=0))
    assert np.isfinite(model.evaluate(grey, y, verbose=0))
    # Keras' own image layers (nested in a Sequential too), the mixing layers and the masks' dict path.
    nested = keras.Sequential([keras.layers.RandomFlip(seed=0)])
    with pytest.raises(ValueError, match=refused.format("RandomFlip")):
        MaskMixModel(inputs, body(inputs), augmentations=[nested]).augment_batch(grey)
    with pytest.raises(ValueError, match=refused.format("RandomCutMix")):
        MaskMixModel(inputs, body(inputs), mix=RandomCutMix(), num_classes=K).augment_batch(grey, y)
    with pytest.raises(ValueError, match=refused.format("RandomCutSwap")):
        MaskMixModel(inputs, body(inputs), augmentations=[RandomCutSwap()]).augment_batch(
            {"images": grey, "segmentation_masks": np.zeros((8, 8, 8, 1), "int32")})
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: the training images must be a batch of rank 4.*"
                                         r"got shape \(8, 64\)"):
        MaskMixPipeline([RandomErasing()])(x.reshape(8, -1))
    # Layers that take any rank, and smoothing alone, leave non-image inputs alone.
    for options in ({"augmentations": [keras.layers.GaussianNoise(0.1)]}, {"label_smoothing": 0.1, "num_classes": K}):
        out, _, _ = MaskMixModel(inputs, body(inputs), **options).augment_batch(grey, y)
        assert tuple(out.shape) == grey.shape


# --------------------------------------------------------------------------------------------
# Segmentation masks as the target.
# --------------------------------------------------------------------------------------------


def mask_task(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Images holding each pixel's id (distinct over the data) and masks equal to those ids."""
    ids = np.arange(n * 8 * 8).reshape(n, 8, 8, 1)
    return ids.astype("float32"), ids.astype("int32")


def mask_model(**options) -> MaskMixModel:
    """The images themselves as prediction (a zero, frozen convolution added), and a loss that is 0
    exactly when every mask value is the id of the image pixel at its place."""
    inputs = keras.Input(SHAPE)
    zero = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="zeros")(inputs)
    model = MaskMixModel(inputs, keras.layers.Add()([inputs, zero]), **options)
    model.compile(keras.optimizers.SGD(learning_rate=0.0),
                  lambda masks, pred: keras.ops.mean(keras.ops.abs(keras.ops.cast(masks, "float32") - pred)))
    return model


def test_segmentation_masks_follow_the_pixels_through_fit():
    from maskmix.keras import RandomCutSwap

    x, masks = mask_task()
    model = mask_model(augmentations=[RandomCutSwap(seed=1)], mix=RandomCutMix(seed=2))
    images, targets, soft = model.augment_batch(x, masks)
    assert soft is None and np.any(np.asarray(images) != x)
    np.testing.assert_array_equal(np.asarray(targets), np.asarray(images).astype("int32"))
    # fit(images, masks) and a tf.data dataset of Keras' dicts: the masks follow, the loss is 0.
    history = model.fit(x, masks, batch_size=8, epochs=2, verbose=0)
    assert history.history["loss"] == [0.0, 0.0]
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices({"images": x, "segmentation_masks": masks}).batch(8)
    assert model.fit(ds, epochs=1, verbose=0).history["loss"] == [0.0]
    # The same dataset evaluates and predicts on its images (Keras' own steps found no input
    # "images" in the dict and failed, after a whole training epoch with validation_data).
    assert model.fit(ds, epochs=1, verbose=0, validation_data=ds).history["val_loss"] == [0.0]
    assert model.evaluate(ds, verbose=0) == 0.0
    np.testing.assert_array_equal(model.predict(ds, verbose=0), x)


def test_class_weight_with_mask_targets_is_refused_not_dropped():
    """With ``mix``, ``class_weight`` is kept from Keras (it weighs soft rows in the step); on a
    batch whose targets are segmentation masks it was then dropped without a word (an all-zero
    class_weight trained as none)."""
    x, masks = mask_task(8)
    model = mask_model(mix=RandomCutMix(seed=2))
    with pytest.raises(ValueError, match=r"^MaskMixModel: class_weight weighs the classes of label rows; the targets "
                                         r"of this batch are segmentation masks .* as sample_weight"):
        model.fit(x, masks, batch_size=8, epochs=1, verbose=0, class_weight={0: 0.0})


def test_mask_targets_train_with_a_sparse_loss_that_has_no_soft_label_counterpart():
    """Masks stay the target with ``mix`` (no soft labels): RandomErasing(mask_fill=255) and
    SparseCategoricalCrossentropy(ignore_class=255) trained on TensorFlow, but Keras' symbolic build
    (JAX and torch; TensorFlow's under a distribution strategy) asked for the loss's soft-label
    counterpart, and fit raised "ignore_class=255 has no soft-label counterpart" (the other backends
    in backend_scripts/keras_model_fit.py)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 8, 3)).astype("float32")
    masks = rng.integers(0, 3, (8, 8, 8, 1)).astype("int32")
    for strategy in (None, tf.distribute.OneDeviceStrategy("/cpu:0")):
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            inputs = keras.Input((8, 8, 3))
            model = MaskMixModel(inputs, keras.layers.Conv2D(3, 1)(inputs),
                                 augmentations=[RandomErasing(mask_fill=255, seed=1)], mix=RandomCutMix(seed=2))
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255))
        _, targets, soft = model.augment_batch(x, masks)
        assert soft is None and (np.asarray(targets) == 255).any()  # erased pixels marked, then ignored
        history = model.fit(x, masks, batch_size=4, epochs=1, verbose=0).history
        assert np.isfinite(history["loss"]).all(), (strategy, history)


def test_masks_in_a_one_item_structure_follow_the_pixels_and_several_targets_are_checked_leaf_by_leaf():
    """``fit(x, [masks])`` or ``{"seg": masks}`` (a named output) kept the masks where they were
    while the pixels moved (5 % of them misaligned, the fit running); with several targets, a
    mask among them cannot follow: refused, as a bare one would be, where pixels move."""
    from maskmix.keras import RandomCutPaste, RandomCutSwap

    x, masks = mask_task(8)
    for wrap, unwrap in ((lambda m: [m], lambda t: t[0]), (lambda m: {"seg": m}, lambda t: t["seg"])):
        model = mask_model(augmentations=[RandomCutSwap(seed=1)])
        images, targets, soft = model.augment_batch(x, wrap(masks))
        assert soft is None and np.any(np.asarray(images) != x)
        np.testing.assert_array_equal(np.asarray(unwrap(targets)), np.asarray(images).astype("int32"))
    both = {"seg": masks, "cls": np.arange(8) % 3}
    refused = r"MaskMixModel: labels of shape \(8, 8, 8, 1\) .* RandomCutPaste moves pixels"
    with pytest.raises(ValueError, match=refused):
        mask_model(augmentations=[RandomCutPaste(seed=0)]).augment_batch(x, both)
    # A layer that keeps pixels in place keeps such targets as they are.
    _, targets, _ = mask_model(augmentations=[RandomErasing(seed=0)]).augment_batch(x, both)
    assert targets is both


def test_the_pipeline_refuses_per_pixel_labels_it_would_pass_through_unchanged():
    """MaskMixPipeline(images, masks) without mix passes the labels through: behind CutSwap they no
    longer matched the pixels, silently; augment_dense is the way for masks."""
    from maskmix.keras import MaskMixPipeline, RandomCutSwap

    x, masks = mask_task(8)
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: labels of shape \(8, 8, 8, 1\) lie on the pixels .* "
                                         r"RandomCutSwap moves pixels .* augment_dense\(images, masks\)"):
        MaskMixPipeline([RandomCutSwap(seed=0)])(x, masks)
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: labels of shape \(8, 4, 4\) lie on the pixels"):
        MaskMixPipeline([RandomCutSwap(seed=0)])(x, masks[:, ::2, ::2, 0])  # class maps at a lower resolution
    images, moved = MaskMixPipeline([RandomCutSwap(seed=0)]).augment_dense(x, masks)
    np.testing.assert_array_equal(np.asarray(moved), np.asarray(images).astype("int32"))
    _, kept = MaskMixPipeline([RandomErasing(seed=0)])(x, masks)
    assert kept is masks


def test_per_pixel_float_targets_are_refused_behind_keras_own_pixel_moving_layers():
    """Float heatmaps (not taken for masks) passed through unchanged behind Keras' RandomFlip,
    nested in a Sequential or not, while the images were flipped; Keras' photometric layers keep
    pixels in place, and the targets pass."""
    from maskmix.keras import MaskMixPipeline

    x, _ = mask_task(8)
    heatmaps = x / x.max()
    nested = keras.Sequential([keras.layers.RandomContrast(0.1), keras.layers.RandomFlip(seed=0)])
    for layers, mover in (([keras.layers.RandomFlip(seed=0)], "RandomFlip"), ([nested], "RandomFlip"),
                          ([keras.layers.RandomRotation(0.1, seed=0)], "RandomRotation")):
        with pytest.raises(ValueError, match=rf"^MaskMixModel: labels of shape \(8, 8, 8, 1\).* {mover} moves pixels"):
            mask_model(augmentations=layers).augment_batch(x, heatmaps)
        with pytest.raises(ValueError, match=rf"^MaskMixPipeline: labels of shape \(8, 8, 8, 1\) lie on the pixels .* "
                                             rf"{mover} moves pixels"):
            MaskMixPipeline(layers)(x, heatmaps)
    photometric = [keras.layers.RandomContrast(0.1, seed=0), keras.layers.RandomBrightness(0.1, seed=0)]
    _, kept = MaskMixPipeline(photometric)(x, heatmaps)
    assert kept is heatmaps
    _, targets, _ = mask_model(augmentations=photometric).augment_batch(x, heatmaps)
    assert targets is heatmaps


def test_segmentation_masks_refused_where_they_cannot_follow():
    from maskmix.keras import RandomCutSwap

    x, masks = mask_task(8)
    with pytest.raises(ValueError, match=r"MaskMixModel: labels of shape \(8, 8, 8\) look like segmentation masks"):
        mask_model(augmentations=[RandomCutSwap()]).fit(x, masks[..., 0], batch_size=8, verbose=0)
    with pytest.raises(TypeError, match="MaskMixModel: segmentation masks cannot follow RandomFlip"):
        mask_model(augmentations=[keras.layers.RandomFlip()]).fit(x, masks, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="RandomMixup: segmentation_masks cannot be mixed"):
        mask_model(mix=RandomMixup()).fit(x, masks, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="MaskMixModel: label_smoothing applies to class labels"):
        mask_model(augmentations=[RandomCutSwap()], label_smoothing=0.1).augment_batch(x, masks)
    with pytest.raises(ValueError, match="MaskMixModel: a batch dict holding segmentation_masks must hold"):
        mask_model().augment_batch({"images": x, "segmentation_masks": masks}, np.arange(8))


@pytest.mark.parametrize("target", ["float", "one_hot_int"])
def test_per_pixel_targets_that_are_not_masks_are_refused_where_pixels_move(target):
    from maskmix.keras import RandomCutSwap

    x, masks = mask_task(8)
    y = masks.astype("float32") / 64.0 if target == "float" else np.eye(2, dtype="int32")[masks[..., 0] % 2]
    refused = r"MaskMixModel: labels of shape \(8, 8, 8, (1|2)\) .* RandomCutSwap moves pixels"
    with pytest.raises(ValueError, match=refused):
        mask_model(augmentations=[RandomCutSwap()]).augment_batch(x, y)
    with pytest.raises(ValueError, match="RandomCutout writes mask_fill"):
        mask_model(augmentations=[RandomCutout(mask_fill=255)]).augment_batch(x, y)
    # A masking layer keeps per-pixel targets as it keeps masks: they pass, unchanged.
    _, targets, _ = mask_model(augmentations=[RandomCutout(seed=0)]).augment_batch(x, y)
    np.testing.assert_array_equal(np.asarray(targets), y)
    # A grid of targets at another size (masks or heatmaps at half resolution) cannot follow the
    # pixels either; rank-3 labels at another size (one-hot sequences) are not laid out on them.
    for small in (y[:, ::2, ::2], masks[:, ::2, ::2]):
        with pytest.raises(ValueError, match=r"MaskMixModel: labels of shape \(8, 4, 4, (1|2)\) \(\w+\) are per-pixel "
                                             r"or grid targets at another size than the images \(8, 8, 8, 1\), but "
                                             r"RandomCutSwap moves pixels"):
            mask_model(augmentations=[RandomCutSwap(seed=0)]).augment_batch(x, small)
    # Integer (B, h, w) class maps at a lower resolution are such a grid too (they passed).
    with pytest.raises(ValueError, match=r"MaskMixModel: labels of shape \(8, 4, 4\) \(int32\) are per-pixel "
                                         r"or grid targets at another size"):
        mask_model(augmentations=[RandomCutSwap(seed=0)]).augment_batch(x, masks[:, ::2, ::2, 0])
    tokens = np.zeros((8, 5, 77), "int32")  # not the images scaled down: not a class map
    _, targets, _ = mask_model(augmentations=[RandomCutSwap(seed=0)]).augment_batch(x, tokens)
    np.testing.assert_array_equal(np.asarray(targets), tokens)
    sequences = np.eye(3, dtype="float32")[np.arange(8 * 5).reshape(8, 5) % 3]
    _, targets, _ = mask_model(augmentations=[RandomCutSwap(seed=0)]).augment_batch(x, sequences)
    np.testing.assert_array_equal(np.asarray(targets), sequences)


def test_box_targets_are_refused_where_pixels_move():
    """Detection targets in a dict (Keras' {"boxes", "labels"}) came back unmoved while CutSwap
    moved the pixels; the masking layers keep them."""
    from maskmix.keras import RandomCutSwap

    x, _ = mask_task(8)
    y = {"boxes": np.zeros((8, 3, 4), "float32"), "labels": np.zeros((8, 3), "int32")}
    with pytest.raises(ValueError, match=r"MaskMixModel: the targets hold boxes or keypoints \(under 'boxes'\), but "
                                         r"RandomCutSwap moves pixels"):
        mask_model(augmentations=[RandomCutSwap(seed=0)]).augment_batch(x, y)
    from maskmix.keras import MaskMixPipeline

    with pytest.raises(ValueError, match=r"MaskMixPipeline: the labels hold boxes or keypoints \(under 'boxes'\), "
                                         r"but RandomCutSwap moves pixels"):
        MaskMixPipeline([RandomCutSwap(seed=0)])(x, y)
    # A flag named after boxes (bool, any shape) is no coordinates: it passes behind CutSwap too.
    flags = {"has_box": keras.ops.ones((8, 4), "bool"), "labels": np.zeros((8, 3), "int32")}  # as fit gives them
    _, targets, _ = mask_model(augmentations=[RandomCutSwap(seed=0)]).augment_batch(x, flags)
    np.testing.assert_array_equal(np.asarray(targets["has_box"]), np.asarray(flags["has_box"]))
    # mask_fill marks masks, not boxes: a layer with it keeps them, as the plain masking layers do.
    for layers in ([RandomCutout(seed=0)], [RandomCutout(seed=0, mask_fill=255)]):
        _, targets, _ = mask_model(augmentations=layers).augment_batch(x, y)
        np.testing.assert_array_equal(np.asarray(targets["boxes"]), y["boxes"])
        _, targets = MaskMixPipeline(layers)(x, y)
        np.testing.assert_array_equal(np.asarray(targets["boxes"]), y["boxes"])


# --------------------------------------------------------------------------------------------
# Imports, other backends, distribution (subprocesses).
# --------------------------------------------------------------------------------------------


def run_python(code: str, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


def test_import_does_not_pull_torch_or_lightning():
    # maskmix.keras (the layers) and the Keras model, in one fresh process.
    out = run_python(
        """
        import sys
        import maskmix.keras
        import maskmix.callbacks.keras_model
        from maskmix.callbacks import MaskMixModel
        assert MaskMixModel is maskmix.callbacks.keras_model.MaskMixModel
        print(sorted(m for m in ("torch", "lightning", "pytorch_lightning") if m in sys.modules))
        """,
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_torch_backend(keras_backend_output):
    pytest.importorskip("torch")
    assert "OK torch" in keras_backend_output("torch", "keras_model_fit")  # tests/backend_scripts


@pytest.mark.slow
def test_jax_backend(keras_backend_output):
    pytest.importorskip("jax")
    assert "OK jax" in keras_backend_output("jax", "keras_model_fit")


@pytest.mark.slow
def test_mirrored_strategy_two_logical_cpus():
    out = run_python(
        """
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from maskmix.callbacks import MaskMixModel
        from maskmix.keras import RandomCutMix, RandomErasing, RandomMixup
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        patterns = np.random.default_rng(123).uniform(0.1, 0.9, (3, 8, 8, 1))
        y = np.arange(64) % 3
        x = np.clip(patterns[y] + np.random.default_rng(0).normal(0, 0.05, (64, 8, 8, 1)), 0.1, 0.9)
        x = x.astype("float32")
        with strategy.scope():
            inputs = keras.Input((8, 8, 1))
            model = MaskMixModel(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)),
                                 augmentations=[RandomErasing(seed=0)],
                                 mix=[RandomCutMix(seed=1), RandomMixup(seed=2)], num_classes=3, seed=0)
            model.compile(keras.optimizers.Adam(0.05),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["sparse_categorical_accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=5, verbose=0).history
        assert np.isfinite(history["loss"]).all(), history
        assert history["loss"][-1] < history["loss"][0], history
        # The replicas draw independently: a layer built in the scope has one mirrored generator
        # state, from which every replica drew the same rectangles for its shard.
        with strategy.scope():
            erase = RandomErasing(augmentation_ratio=1.0, fill_method=0.0, seed=0)
            mixup = RandomMixup(num_classes=3, seed=1)
        images, labels = np.full((4, 8, 8, 1), 0.5, "float32") + np.arange(4).reshape(4, 1, 1, 1), np.arange(4) % 3
        step = tf.function(lambda: strategy.run(lambda: (erase(images), mixup((images, labels)))))
        for _ in range(2):
            (first, second) = strategy.experimental_local_results(step())
            assert not np.array_equal(first[0].numpy(), second[0].numpy())
            assert not np.allclose(first[1][1].numpy(), second[1][1].numpy())
        # The choice between the mix layers too (it came from the mirrored generator alone: every
        # replica picked the same layer at every step). CutMix weights on 8x8 are multiples of 1/64.
        shard = np.tile(images, (2, 1, 1, 1)), np.tile(labels, 2)
        choose = tf.function(lambda: strategy.run(lambda: model.augment_batch(*shard)[2]))
        def kind(targets):
            top = targets.numpy().max(1)
            return bool(np.allclose(np.round(top * 64), top * 64, atol=1e-4))
        kinds = [[kind(t) for t in strategy.experimental_local_results(choose())] for _ in range(24)]
        assert sum(a != b for a, b in kinds) >= 4, kinds  # independent: 12 of 24 expected
        print("OK", model.evaluate(x, y, verbose=0))
        """,
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert "OK" in out


def test_layers_that_disagree_on_data_format_are_refused():
    """A channels-first erasing and a channels-last CutMix would change one batch along different
    axes; with 2 channels (optical flow) no layout check would catch it at call time."""
    from maskmix.keras import MaskMixPipeline

    message = re.escape("the layers do not agree on data_format: RandomErasing (channels_first), "
                        "RandomCutMix (channels_last)")
    with pytest.raises(ValueError, match="^MaskMixPipeline: " + message):
        MaskMixPipeline([RandomErasing(data_format="channels_first")], RandomCutMix(num_classes=3))
    with pytest.raises(ValueError, match="^MaskMixModel: " + message):
        functional(augmentations=[RandomErasing(data_format="channels_first")], mix=RandomCutMix(num_classes=3))
    # Agreeing layers, Keras' own among them, build.
    first = "channels_first"
    MaskMixPipeline([keras.layers.RandomFlip(data_format=first), RandomErasing(data_format=first)],
                    RandomCutMix(num_classes=3, data_format=first))


def test_mix_without_labels_is_refused():
    """fit(x) or a dataset of images alone: the mix was skipped and the images trained unmixed,
    silently (the torch pipeline refuses it)."""
    from maskmix.keras import MaskMixPipeline

    x, _ = dataset(8)
    message = r"MaskMix(Pipeline|Model): mix needs labels .* got images alone"
    with pytest.raises(ValueError, match=message):
        MaskMixPipeline(mix=RandomMixup(seed=0), num_classes=K)(x)
    model = functional(mix=RandomMixup(seed=0), num_classes=K)
    with pytest.raises(ValueError, match=message):
        model.augment_batch(x)
    # Label smoothing alone has nothing to smooth without labels: the images pass as augmented.
    images, labels = MaskMixPipeline([RandomErasing(seed=0)], label_smoothing=0.1)(x)
    assert labels is None and np.any(np.asarray(images) != x)


def test_multi_hot_labels_keep_their_metric_labels_and_refuse_smoothing_towards_one_over_k():
    """Multi-hot rows (several labels per image): the metrics got the dominant class alone, even
    unmixed, and label_smoothing moved each class towards 1/K (their convention is 0.5)."""
    import tensorflow as tf

    from maskmix.keras import MaskMixPipeline

    x, _ = dataset(4)
    multi_hot = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0]], "float32")
    unmixed = functional(mix=RandomMixup(seed=0, augmentation_ratio=0.0), num_classes=K)
    _, metric, soft = unmixed.augment_batch(x, multi_hot)
    np.testing.assert_array_equal(np.asarray(metric), multi_hot)
    mixed = functional(mix=RandomMixup(seed=0), num_classes=K)
    _, metric, soft = mixed.augment_batch(x, multi_hot)
    np.testing.assert_array_equal(np.asarray(metric), (np.asarray(soft) >= 0.5).astype("float32"))
    # One-hot rows keep the dominant class.
    one_hot = np.eye(K, dtype="float32")[[0, 1, 2, 0]]
    np.testing.assert_array_equal(np.asarray(unmixed.augment_batch(x, one_hot)[1]), one_hot)
    smoothing = MaskMixPipeline(mix=RandomMixup(seed=0), num_classes=K, label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"MaskMixPipeline: label_smoothing=0\.1 smooths one-hot/soft rows .* got "
                                         r"rows that do not sum to 1 \(multi-hot labels\?\)"):
        smoothing(x, multi_hot)
    _, traced = tf.function(smoothing)(x, multi_hot)  # values unread while traced: NaN rows show in the loss
    assert np.isnan(np.asarray(traced)).all(axis=1).sum() == 4
    _, fine = smoothing(x, one_hot)
    assert np.isfinite(np.asarray(fine)).all()


def test_uint8_batches_turned_into_floats_by_a_keras_layer_are_not_filled_as_0_to_1() -> None:
    """Keras' image layers return float32 of the uint8 values; a white fill after one wrote 1.0 on
    0..255 images (a near-black patch), silently. Refused where the fill reads the range's top;
    a range given, a black fill, or the maskmix layer first are right and run."""
    from maskmix.keras import MaskMixPipeline, RandomCutPaste

    images, labels = np.full((4, 16, 16, 3), 200, "uint8"), np.arange(4) % 3
    model_inputs = keras.Input((16, 16, 3), dtype="uint8")
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(model_inputs)))
    flip = keras.layers.RandomFlip(seed=0)
    refused = (
        r"^{owner}: RandomFlip \(random_flip\) turns the uint8 images into floats of 0\.\.255, and {name} "
        r"\(\w+\) after it reads float images as 0\.\.1 .*: give {name} pixels_range=\(0, 255\), place it before "
        r"RandomFlip, or give the pipeline float images in 0\.\.1$"
    )
    for fill in ("white", "gray", "random", "noise"):
        erasing = RandomErasing(fill_method=fill, augmentation_ratio=1.0, seed=0)
        with pytest.raises(ValueError, match=refused.format(owner="MaskMixPipeline", name="RandomErasing")):
            MaskMixPipeline(augmentations=[flip, erasing], seed=0)(images, labels)
        # Nested: the Keras layer and the maskmix layer in one Sequential.
        model = MaskMixModel(model_inputs, outputs, augmentations=[keras.Sequential([flip, erasing])])
        with pytest.raises(ValueError, match=refused.format(owner="MaskMixModel", name="RandomErasing")):
            model.augment_batch(keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels))
    jitter = RandomCutPaste(color_jitter=0.2, seed=0)
    with pytest.raises(ValueError, match=refused.format(owner="MaskMixPipeline", name="RandomCutPaste")):
        MaskMixPipeline(augmentations=[flip, jitter], seed=0)(images, labels)
    white = RandomErasing(fill_method="white", augmentation_ratio=1.0, patch_area=0.5, seed=0)
    for augmentations, top in (
        ([flip, RandomErasing(fill_method="white", augmentation_ratio=1.0, patch_area=0.5, pixels_range=(0, 255),
                              seed=0)], 255.0),
        ([white, flip], 255.0),
        ([flip, RandomErasing(fill_method="black", augmentation_ratio=1.0, patch_area=0.5, seed=0)], 200.0),
        ([keras.layers.Identity(), white], 255.0),  # uint8 stays uint8: 0..255
        ([keras.layers.Rescaling(1 / 255), white], 1.0),  # floats of 0..1: white is 1.0
    ):
        out, _ = MaskMixPipeline(augmentations=augmentations, seed=0)(images, labels)
        assert float(np.max(np.asarray(out))) == top
        assert float(np.min(np.asarray(out))) in (0.0, 200.0) or np.isclose(np.min(np.asarray(out)), 200 / 255)
