"""Schedules in Keras: ``MaskMixModel.fit`` with ``jit_compile=True`` follows them epoch by epoch (a
probe layer counts the augmented images each epoch), they are saved with the model, and a ratio
set directly on a layer that a compiled step has used raises instead of being silently ignored.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from maskmix.callbacks.keras_model import MaskMixModel
from maskmix.keras import MaskMixPipeline, RandomCutMix, RandomCutout, RandomGridMask
from maskmix.schedules import constant, piecewise, ramp, switch_off

K, B, SIDE = 3, 8, 8
RATIOS = {0: 0.0, 1: 0.5, 2: 1.0}


@keras.saving.register_keras_serializable(package="maskmix_tests")
class CutCounter(keras.layers.Layer):
    """Counts, in a non-trainable variable, the training images holding a cut-out pixel (-1)."""

    def build(self, input_shape) -> None:
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

    def call(self, x, training=None):
        if training:
            cut = keras.ops.any(keras.ops.reshape(keras.ops.equal(x, -1.0), (keras.ops.shape(x)[0], -1)), axis=1)
            self.count.assign_add(keras.ops.sum(keras.ops.cast(cut, "float32")))
        return x


class PerEpoch(keras.callbacks.Callback):
    def __init__(self, counter: CutCounter) -> None:
        super().__init__()
        self.counter, self.counts = counter, []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.counter.count.assign(0.0)

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.counts.append(float(keras.ops.convert_to_numpy(self.counter.count)))


def model_with(schedules, cutout: RandomCutout | None = None, **options) -> tuple[MaskMixModel, CutCounter]:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 1))
    counter = CutCounter()
    outputs = keras.layers.Dense(K)(keras.layers.Flatten()(counter(inputs)))
    cutout = RandomCutout(fill_method=-1.0, seed=1) if cutout is None else cutout
    model = MaskMixModel(inputs, outputs, augmentations=[cutout], num_classes=K, schedules=schedules, **options)
    return model, counter


def data() -> tuple[np.ndarray, np.ndarray]:
    return np.full((2 * B, SIDE, SIDE, 1), 0.5, "float32"), np.arange(2 * B) % K


def test_fit_with_jit_compile_follows_the_schedule() -> None:
    assert keras.backend.backend() in ("tensorflow", "jax")  # the backends that trace the step
    model, counter = model_with({"RandomCutout": {"augmentation_ratio": piecewise(RATIOS)}})
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    probe = PerEpoch(counter)
    traces = []
    augment = model.maskmix_pipeline.augment

    def traced_augment(*args, **kwargs):  # Python runs only when the step is traced
        traces.append(1)
        return augment(*args, **kwargs)

    model.maskmix_pipeline.augment = traced_augment
    model.fit(*data(), batch_size=B, epochs=3, shuffle=False, verbose=0, callbacks=[probe])
    # Two batches of 8 per epoch: round(ratio * 8) cut-out images in each.
    assert probe.counts == [0.0, 8.0, 16.0]
    assert model.maskmix_pipeline.scheduled_values() == {"RandomCutout": {"augmentation_ratio": 1.0}}
    assert len(traces) == 1  # one traced step for the three values


def test_the_segmentation_mask_path_follows_the_schedule() -> None:
    """fit(images, masks) goes through augment_dense, which did not lend the scheduled values: the
    layer's own ratio (1.0) applied at every epoch while scheduled_values() said otherwise."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIDE, SIDE, 1))
    counter = CutCounter()
    model = MaskMixModel(inputs, keras.layers.Conv2D(K, 1)(counter(inputs)),
                         augmentations=[RandomCutout(fill_method=-1.0, seed=1)],
                         schedules={"RandomCutout": {"augmentation_ratio": piecewise(RATIOS)}})
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    probe = PerEpoch(counter)
    model.fit(data()[0], np.zeros((2 * B, SIDE, SIDE, 1), "int32"), batch_size=B, epochs=3, shuffle=False,
              verbose=0, callbacks=[probe])
    assert probe.counts == [0.0, 8.0, 16.0]
    pipeline = MaskMixPipeline([RandomCutout(fill_method=-1.0, seed=1)],
                               schedules={"RandomCutout": {"augmentation_ratio": constant(0.0)}})
    images, _ = pipeline.augment_dense(data()[0], np.zeros((2 * B, SIDE, SIDE, 1), "int32"))
    np.testing.assert_array_equal(np.asarray(images), data()[0])


def test_fit_resumes_at_initial_epoch_and_callbacks_passed_positionally() -> None:
    model, counter = model_with({0: {"augmentation_ratio": piecewise(RATIOS)}})
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    probe = PerEpoch(counter)
    x, y = data()
    model.fit(x, y, B, 3, 0, [probe], initial_epoch=1, shuffle=False)  # epochs 1 and 2
    assert probe.counts == [8.0, 16.0]


def test_mixing_switched_off_by_the_schedule() -> None:
    pipeline = MaskMixPipeline(mix=RandomCutMix(seed=0), num_classes=K,
                               schedules={"RandomCutMix": {"augmentation_ratio": switch_off(1.0, epoch=1)}})
    step = tf.function(pipeline, jit_compile=True)
    x = np.random.default_rng(0).random((B, SIDE, SIDE, 1)).astype("float32")
    y = np.arange(B) % K
    _, soft = step(x, y)
    assert np.sum(np.max(soft, axis=1) < 1) > 0
    pipeline.set_epoch(1)
    out, soft = step(x, y)
    np.testing.assert_array_equal(np.asarray(out), x)
    np.testing.assert_array_equal(np.asarray(soft), np.eye(K, dtype="float32")[y])


def test_schedules_are_saved_with_the_model(tmp_path: Path) -> None:
    schedule = ramp(0.0, 0.8, epochs=240)
    cutout = RandomCutout(fill_method=-1.0, seed=1)
    # Keyed by the layer object: saved as its position (a class name could name several layers).
    model, _ = model_with({cutout: {"augmentation_ratio": schedule}}, cutout)
    model.maskmix_pipeline.set_epoch(120)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    [entry] = loaded.maskmix_pipeline.schedules
    assert entry.schedule == schedule and entry.key == 0 and entry.transform is loaded.augmentations[0]
    variable = loaded.maskmix_pipeline.schedule_variables[0]
    assert float(keras.ops.convert_to_numpy(variable)) == pytest.approx(0.4)  # the saved run's last value
    # What the next steps use (it said 0.0, the schedule at epoch 0, while the steps read 0.4).
    assert loaded.maskmix_pipeline.scheduled_values()[0]["augmentation_ratio"] == pytest.approx(0.4)
    loaded.maskmix_pipeline.set_epoch(0)  # a new fit starts at epoch 0: the variable follows
    assert float(keras.ops.convert_to_numpy(variable)) == 0.0
    assert loaded.maskmix_pipeline.scheduled_values() == {0: {"augmentation_ratio": 0.0}}


def network(inputs: keras.KerasTensor | None = None) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input((SIDE, SIDE, 1)) if inputs is None else inputs
    return inputs, keras.layers.Dense(K)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs)))


def test_the_network_weights_without_the_schedule_variables_serve_and_transfer(tmp_path: Path) -> None:
    """A scheduled model's weights include its schedule variables (tracked: a JAX step would
    freeze an untracked one), so its save_weights file did not load into the same network built as
    a plain keras.Model. The recipe of docs/keras_model.md: the network's weights alone (the other
    backends in backend_scripts/keras_model_fit.py)."""
    ramp_up = {"RandomGridMask": {"augmentation_ratio": ramp(0.0, 1.0, epochs=10)}}
    x, y = data()
    model = MaskMixModel(*network(), augmentations=[RandomGridMask(seed=0)], schedules=ramp_up)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)
    # What the docs state: one more weight per schedule; the whole file fits a scheduled model only.
    assert len(model.get_weights()) == 5 and model.weights[0] is model.maskmix_pipeline.schedule_variables[0]
    model.save_weights(tmp_path / "model.weights.h5")
    with pytest.raises(ValueError, match="expected 0 variables, but received 1"):
        keras.Model(*network()).load_weights(tmp_path / "model.weights.h5")
    # Functional: the plain model of the same inputs and outputs shares the layers, not the schedule.
    plain = keras.Model(model.inputs, model.outputs)
    assert len(plain.get_weights()) == 4
    plain.save_weights(tmp_path / "network.weights.h5")
    serving = keras.Model(*network())
    serving.load_weights(tmp_path / "network.weights.h5")
    np.testing.assert_array_equal(serving.predict(x, verbose=0), model.predict(x, verbose=0))
    # ... and the other way: a plain network's weights into a new scheduled model.
    fresh = MaskMixModel(*network(), augmentations=[RandomGridMask(seed=0)], schedules=ramp_up)
    keras.Model(fresh.inputs, fresh.outputs).load_weights(tmp_path / "network.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), serving.predict(x, verbose=0))

    # Subclassed: the network in a layer of its own, or a plain twin given the weights without the
    # schedule variables.
    def layers() -> list[keras.layers.Layer]:
        return [keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(K)]

    class Net(MaskMixModel):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.backbone = keras.Sequential(layers())

        def call(self, images):
            return self.backbone(images)

    class Twin(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = keras.Sequential(layers())

        def call(self, images):
            return self.backbone(images)

    net = Net(augmentations=[RandomGridMask(seed=0)], schedules=ramp_up)
    net.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x, y, epochs=1, verbose=0)
    net.backbone.save_weights(tmp_path / "backbone.weights.h5")
    alone = keras.Sequential([keras.Input((SIDE, SIDE, 1)), *layers()])
    alone.load_weights(tmp_path / "backbone.weights.h5")
    np.testing.assert_array_equal(alone.predict(x, verbose=0), net.predict(x, verbose=0))
    twin = Twin()
    twin(x[:1])
    scheduled = net.maskmix_pipeline.schedule_variables
    twin.set_weights([keras.ops.convert_to_numpy(v) for v in net.weights if not any(v is s for s in scheduled)])
    np.testing.assert_array_equal(twin.predict(x, verbose=0), net.predict(x, verbose=0))


def test_a_schedule_keyed_by_a_nested_layer_must_be_savable_by_its_class_name(tmp_path: Path) -> None:
    """A nested layer (no position) is saved by its class name: with another layer of that class
    the model saved but could never be loaded. Refused at saving; a nested layer of a class of
    its own saves and loads."""
    schedule = ramp(0.0, 1.0, epochs=4)

    def build(augmentations, key) -> MaskMixModel:
        inputs = keras.Input((SIDE, SIDE, 1))
        return MaskMixModel(inputs, keras.layers.Dense(K)(keras.layers.Flatten()(inputs)),
                            augmentations=augmentations, num_classes=K,
                            schedules={key: {"augmentation_ratio": schedule}})

    inner = RandomCutout(seed=1)
    ambiguous = build([RandomCutout(seed=2), keras.Sequential([inner])], inner)
    with pytest.raises(ValueError, match=r"MaskMixModel: .* keyed by a layer nested in another, which is saved by "
                                         r"its class name, but 2 layers are RandomCutouts"):
        ambiguous.save(tmp_path / "ambiguous.keras")
    grid = RandomGridMask(seed=1)
    build([RandomCutout(seed=2), keras.Sequential([grid])], grid).save(tmp_path / "unique.keras")
    [entry] = keras.saving.load_model(tmp_path / "unique.keras").maskmix_pipeline.schedules
    assert entry.key == "RandomGridMask" and entry.schedule == schedule


@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_scheduled_ratio_counts_the_images_of_the_ratio_as_written(jit_compile: bool) -> None:
    # The scheduled value is a float32 variable: 0.53 * 50 was 26.4999985 and selected 26 images,
    # one fewer than the plain ratio's exact count round(26.5) = 27.
    images = np.full((50, SIDE, SIDE, 1), 0.5, "float32")
    pipeline = MaskMixPipeline([RandomCutout(fill_method=-1.0, seed=1)],
                               schedules={0: {"augmentation_ratio": constant(0.53)}})
    step = tf.function(pipeline, jit_compile=jit_compile)
    cut = np.any(np.asarray(step(images)[0]) == -1.0, axis=(1, 2, 3))
    plain = np.any(np.asarray(RandomCutout(fill_method=-1.0, augmentation_ratio=0.53, seed=1)(images)) == -1, (1, 2, 3))
    assert cut.sum() == plain.sum() == 27


def test_a_custom_callable_cannot_be_saved() -> None:
    model, _ = model_with({"RandomCutout": {"augmentation_ratio": lambda epoch: 0.5}})
    with pytest.raises(TypeError, match=r"^MaskMixModel: schedules\['RandomCutout'\]\['augmentation_ratio'\] is a "
                                        r"custom callable, which cannot be saved"):
        model.get_config()


def test_setting_the_ratio_after_a_compiled_step_raises() -> None:
    layer = RandomGridMask(seed=0)
    images = np.full((4, SIDE, SIDE, 1), 0.5, "float32")
    layer.augmentation_ratio = 0.5  # eager use: takes effect
    assert np.sum(np.any(np.asarray(layer(images)) != 0.5, axis=(1, 2, 3))) == 2
    layer.augmentation_ratio = 1.0
    tf.function(layer, jit_compile=True)(images)
    layer.augmentation_ratio = 1.0  # the same value: nothing to ignore
    with pytest.raises(ValueError, match=r"^RandomGridMask: augmentation_ratio cannot change \(to 0.3\) after the "
                                         r"layer ran in a traced step"):
        layer.augmentation_ratio = 0.3
    assert layer.augmentation_ratio == 1.0


def test_an_assigned_parameter_is_saved_and_any_parameter_is_fixed_once_traced() -> None:
    # get_config saved the constructor's values: a reloaded model augmented as the layer no longer did.
    layer = RandomGridMask(seed=0)
    layer.augmentation_ratio = 0
    images = np.full((4, SIDE, SIDE, 1), 0.5, "float32")
    assert layer.get_config()["augmentation_ratio"] == 0.0
    rebuilt = RandomGridMask.from_config(layer.get_config())
    np.testing.assert_array_equal(np.asarray(rebuilt(images)), images)
    layer.augmentation_ratio = 1.0
    tf.function(layer, jit_compile=True)(images)
    layer.bernoulli_mix = False  # the same value: nothing to ignore
    with pytest.raises(ValueError, match=r"^RandomGridMask: bernoulli_mix cannot change \(to True\) after the layer "
                                         r"ran in a traced step .* Build a new layer with the new value$"):
        layer.bernoulli_mix = True
    assert layer.bernoulli_mix is False and layer.get_config()["bernoulli_mix"] is False


def test_setting_a_scheduled_ratio_raises() -> None:
    layer = RandomGridMask(seed=0)
    pipeline = MaskMixPipeline([layer], schedules={0: {"augmentation_ratio": constant(0.5)}})
    tf.function(pipeline, jit_compile=True)(np.full((4, SIDE, SIDE, 1), 0.5, "float32"))
    with pytest.raises(ValueError, match=r"^RandomGridMask: augmentation_ratio cannot be set \(to 0.2\): a schedule "
                                         r"drives it"):
        layer.augmentation_ratio = 0.2


def test_bad_schedules_name_the_model() -> None:
    with pytest.raises(ValueError, match=r"^MaskMixModel: schedules key 'RandomGridMask' names none of the maskmix "
                                         r"layers \(RandomCutout\)"):
        model_with({"RandomGridMask": {"augmentation_ratio": constant(1.0)}})


@pytest.mark.slow
def test_fit_follows_the_schedule_on_jax(keras_backend_output) -> None:
    # JAX's steps are stateless: the values reach them only as state of the model (tracked variables).
    # tests/backend_scripts/schedule_in_a_jit_fit.py runs test_fit_with_jit_compile_follows_the_schedule.
    pytest.importorskip("jax")
    assert "schedule ok jax" in keras_backend_output("jax", "schedule_in_a_jit_fit")
