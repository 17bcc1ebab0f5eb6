"""MaskMixModel on the Keras backend ``sys.argv[1]``: functional and subclassed models fit, learn and
advance their layers' random state; predict matches a plain model; save, load and fit again;
segmentation masks with an ignore_class loss; the mix choice whatever floatx is; a scheduled model's
network weights for serving (integrations/test_keras_model.py::test_torch_backend, ::test_jax_backend)."""

import os
import sys
import tempfile

import keras
import numpy as np

from maskmix.callbacks import MaskMixModel
from maskmix.keras import RandomCutBlur, RandomCutMix, RandomErasing, RandomMixup

assert keras.backend.backend() == os.environ["KERAS_BACKEND"] == sys.argv[1]
keras.utils.set_random_seed(0)
patterns = np.random.default_rng(123).uniform(0.1, 0.9, (3, 8, 8, 1))
y = np.arange(48) % 3
x = np.clip(patterns[y] + np.random.default_rng(0).normal(0, 0.05, (48, 8, 8, 1)), 0.1, 0.9).astype("float32")

class Net(MaskMixModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flat = keras.layers.Flatten()
        self.head = keras.layers.Dense(3)
    def call(self, x):
        return self.head(self.flat(x))

inputs = keras.Input((8, 8, 1))
functional = MaskMixModel(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)),
                          augmentations=[RandomErasing(seed=0)], mix=[RandomCutMix(seed=1), RandomMixup(seed=2)],
                          num_classes=3, seed=0)
for model in (functional, Net(augmentations=[RandomErasing(seed=0)], mix=RandomCutMix(seed=1), num_classes=3)):
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0).history
    assert np.isfinite(history["loss"]).all(), history
    assert history["loss"][-1] < history["loss"][0], history
    assert 0 <= history["sparse_categorical_accuracy"][-1] <= 1
    # the layers' random state advanced (on JAX it flows through the stateless training state)
    states = [np.asarray(keras.ops.convert_to_numpy(layer.generator.state)) for layer in model.mix_layers]
    assert all(s[1] > 0 for s in states), states
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9, (loss, acc)
model = functional
twin = keras.Model(inputs, model.outputs)
np.testing.assert_array_equal(model.predict(x, verbose=0), twin.predict(x, verbose=0))
with tempfile.TemporaryDirectory() as folder:
    model.save(os.path.join(folder, "model.keras"))
    loaded = keras.saving.load_model(os.path.join(folder, "model.keras"))
np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)

# Batches of Keras' {"images", "segmentation_masks"} dicts: fit augments them (the masks follow the
# pixels: loss 0 when the prediction is the image of pixel ids), evaluate and predict read the images.
ids = np.arange(4 * 8 * 8).reshape(4, 8, 8, 1)

class MaskBatches(keras.utils.PyDataset):
    def __len__(self):
        return 2
    def __getitem__(self, index):
        part = slice(2 * index, 2 * index + 2)
        return {"images": ids[part].astype("float32"), "segmentation_masks": ids[part].astype("int32")}

inputs = keras.Input((8, 8, 1))
zero = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="zeros")(inputs)
masks_model = MaskMixModel(inputs, keras.layers.Add()([inputs, zero]), augmentations=[RandomErasing(seed=0)],
                           mix=RandomCutMix(seed=1))
masks_model.compile(keras.optimizers.SGD(0.0),
                    lambda m, p: keras.ops.mean(keras.ops.abs(keras.ops.cast(m, "float32") - p)))
history = masks_model.fit(MaskBatches(), epochs=1, verbose=0, validation_data=MaskBatches()).history
assert history["val_loss"] == [0.0], history
assert masks_model.evaluate(MaskBatches(), verbose=0) == 0.0
np.testing.assert_array_equal(masks_model.predict(MaskBatches(), verbose=0), ids)
# A dense compiled loss with class-index labels: training steps give it the soft targets, but Keras'
# symbolic build (JAX, torch) built it from the labels, and the fit failed before its first step.
inputs = keras.Input((8, 8, 1))
dense = MaskMixModel(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)), mix=RandomCutMix(seed=1),
                     num_classes=3)
dense.compile(keras.optimizers.Adam(0.05), keras.losses.CategoricalCrossentropy(from_logits=True))
history = dense.fit(x, y, batch_size=16, epochs=2, verbose=0).history
assert np.isfinite(history["loss"]).all(), history
# What fit can refuse before the first step it refuses there: an error inside a JAX step leaves the
# model without its weights (Keras detaches them for the epoch), and the corrected fit failed too.
before = dense.get_weights()
for bad in ({0: 1.0, 3: 2.0},):  # a class beyond num_classes
    try:
        dense.fit(x, y, batch_size=16, epochs=1, verbose=0, class_weight=bad)
        raise AssertionError("class_weight beyond num_classes was accepted")
    except ValueError as error:
        assert "class_weight has classes [3] but num_classes=3" in str(error), error
two = MaskMixModel(inputs, [keras.layers.Dense(3)(keras.layers.Flatten()(inputs)), keras.layers.Dense(1)(
    keras.layers.Flatten()(inputs))], mix=RandomCutMix(seed=1), num_classes=3)
two.compile("sgd", ["sparse_categorical_crossentropy", "mse"])
try:
    two.fit(x, [y, y[:, None].astype("float32")], batch_size=16, epochs=1, verbose=0)
    raise AssertionError("two outputs with mix were accepted")
except TypeError as error:
    assert "the model has 2 outputs" in str(error), error
assert all(np.array_equal(a, b) for a, b in zip(before, dense.get_weights(), strict=True))
assert dense.predict(x, verbose=0).shape == (48, 3)
dense.fit(x, y, batch_size=16, epochs=1, verbose=0, class_weight={0: 1.0, 2: 2.0})
if keras.backend.backend() == "torch":
    # jit_compile=True compiles the step with torch.compile: Dynamo traced CutBlur's resampling
    # tables (NumPy, built on the host) into its graph and failed on ndarray.setflags.
    blur = MaskMixModel(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)),
                        augmentations=[RandomCutBlur(seed=0)], mix=RandomCutMix(seed=1), num_classes=3)
    blur.compile(keras.optimizers.Adam(0.05), keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=True)
    assert np.isfinite(blur.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"]).all()
# Segmentation masks stay the target with mix (no soft labels): Keras' symbolic build asked for the
# soft-label counterpart of SparseCategoricalCrossentropy(ignore_class=255), which has none, and the
# fit failed here while TensorFlow's trained.
seg_x = np.random.default_rng(1).random((8, 8, 8, 3)).astype("float32")
seg_masks = np.random.default_rng(2).integers(0, 3, (8, 8, 8, 1)).astype("int32")
inputs = keras.Input((8, 8, 3))
seg = MaskMixModel(inputs, keras.layers.Conv2D(3, 1)(inputs), augmentations=[RandomErasing(mask_fill=255, seed=1)],
                   mix=RandomCutMix(seed=2))
seg.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255))
assert np.isfinite(seg.fit(seg_x, seg_masks, batch_size=8, epochs=1, verbose=0).history["loss"]).all()
# The pipeline's choice among mix layers does not depend on floatx (it was drawn in floatx).
from maskmix.keras import MaskMixPipeline  # noqa: E402


def choices():
    pipeline = MaskMixPipeline(mix=[RandomMixup(seed=1), RandomCutMix(seed=2)], mix_weights=[1, 1], num_classes=3,
                               seed=3)
    return [np.asarray(keras.ops.convert_to_numpy(out)) for _ in range(4) for out in pipeline(x[:6], y[:6])]


if keras.backend.backend() == "torch":  # JAX without x64 draws float32 anyway (and refuses bfloat16)
    from floatx_check import assert_floatx_changes_nothing

    assert_floatx_changes_nothing(choices, "the mix choice")
# A scheduled model's weights hold its schedule variables: the network's weights alone, for serving
# or transfer, are those of keras.Model(model.inputs, model.outputs) (docs/keras_model.md), or of a
# subclass's network kept in a layer of its own.
from maskmix import schedules  # noqa: E402
from maskmix.keras import RandomGridMask  # noqa: E402

ramp_up = {"RandomGridMask": {"augmentation_ratio": schedules.ramp(0.0, 1.0, epochs=10)}}


def network():
    inputs = keras.Input((8, 8, 1))
    return inputs, keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs)))


def backbone():
    return keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(3)])


class Scheduled(MaskMixModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone()
    def call(self, x):
        return self.backbone(x)


with tempfile.TemporaryDirectory() as folder:
    functional_scheduled = MaskMixModel(*network(), augmentations=[RandomGridMask(seed=0)], schedules=ramp_up)
    for scheduled in (functional_scheduled, Scheduled(augmentations=[RandomGridMask(seed=0)], schedules=ramp_up)):
        scheduled(x[:1])  # built (the recipe does not depend on training, which the TF test does)
        assert len(scheduled.get_weights()) == 5
        path = os.path.join(folder, "network.weights.h5")
        if scheduled is functional_scheduled:
            keras.Model(scheduled.inputs, scheduled.outputs).save_weights(path)
            serving = keras.Model(*network())
        else:
            scheduled.backbone.save_weights(path)
            serving = backbone()
            serving.build((None, 8, 8, 1))
        serving.load_weights(path)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(serving(x)), keras.ops.convert_to_numpy(scheduled(x)))
print("OK", keras.backend.backend())
