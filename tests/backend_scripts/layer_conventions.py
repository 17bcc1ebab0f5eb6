"""Every registered Keras layer on the backend ``sys.argv[1]``: shapes and dtypes kept, pixels
changed, soft labels summing to 1, one image and empty batches, channels_first, pass-through of
the unselected images, outputs unchanged by keras.config.set_floatx (bfloat16 refused on JAX)
(contracts/test_keras_conventions.py::test_torch_backend, ::test_jax_backend)."""

import sys

import keras
import numpy as np
from floatx_check import FLOATX, assert_floatx_changes_nothing
from registry_cases import example_cases

assert keras.backend.backend() == sys.argv[1]
np_ = keras.ops.convert_to_numpy
x = np.random.default_rng(0).uniform(0.1, 0.9, (5, 9, 8, 3)).astype("float32")
y = np.arange(5) % 4
for i, (name, case) in enumerate(example_cases("keras").items()):
    layer = case.build("keras", num_classes=4, seed=1)
    # Eager JAX compiles every op per dtype: one dtype per layer keeps that run short.
    dtypes = (("float32", "uint8")[i % 2],) if sys.argv[1] == "jax" else ("float32", "uint8", "bfloat16")
    for dtype in dtypes:
        xi = keras.ops.cast(x * (255 if dtype == "uint8" else 1), dtype)
        out = layer((xi, y)) if case.mixes else layer(xi)
        images = out[0] if isinstance(out, tuple) else out
        assert tuple(images.shape) == x.shape and keras.backend.standardize_dtype(images.dtype) == dtype, name
        changed = (np_(keras.ops.cast(images, "float32")) != np_(keras.ops.cast(xi, "float32"))).any()
        assert changed, name
        if case.mixes:
            assert keras.backend.standardize_dtype(out[1].dtype) == "float32"
            np.testing.assert_allclose(np_(out[1]).sum(1), 1.0, rtol=1e-6)
    if not case.mixes and sys.argv[1] != "jax":  # eager JAX: the layouts are the TF run's code paths
        assert tuple(layer(x[0]).shape) == x.shape[1:], name
        assert tuple(layer(x[:0]).shape) == (0, *x.shape[1:]), name
        cf = type(layer).from_config({**layer.get_config(), "data_format": "channels_first"})
        assert tuple(cf(x.transpose(0, 3, 1, 2)).shape) == (5, 3, 9, 8), name
    # Pass-through on this backend: only the selected images change.
    half = case.build("keras", num_classes=4, seed=2, augmentation_ratio=0.4)
    t = half.get_random_transformation((x, y) if case.mixes else x)
    out = np_(half.transform_images(x, t))
    selected = np_(t["selected"]).astype(bool)
    assert selected.sum() == 2 and (out[~selected] == x[~selected]).all(), name
if sys.argv[1] == "jax":
    # A plain jax.jit of a call: the state written into the seed generator leaked out of the trace
    # and every run drew the same numbers; refused. Through stateless_call the state advances.
    import jax

    noise = example_cases("keras")["RandomErasing"].build("keras", fill_method="noise", augmentation_ratio=1.0,
                                                          seed=4)
    try:
        jax.jit(lambda images: noise(images))(x)
    except RuntimeError as error:
        assert "called inside jax.jit without a keras.StatelessScope" in str(error), error
    else:
        raise AssertionError("a plain jax.jit of a layer call ran")
    assert not isinstance(noise.generator.state.value, jax.core.Tracer)
    step = jax.jit(lambda state, images: noise.stateless_call([], state, images, training=True))
    state = [v.value for v in noise.non_trainable_variables]
    first, state = step(state, x)
    second, state = step(state, x)
    assert not np.array_equal(np_(first), np_(second))
# The seed state's dtype on this backend (torch int32, JAX uint32): beyond it Keras failed with
# "cannot be converted to type int32 without overflow" or "out of bounds for uint32".
state, bounds = {"torch": ("int32", (-(2**31), 2**31 - 1)), "jax": ("uint32", (0, 2**32 - 1))}[sys.argv[1]]
for seed in (bounds[0] - 1, bounds[1] + 1):
    try:
        example_cases("keras")["RandomCutout"].build("keras", seed=seed)
    except ValueError as error:
        assert str(error) == (f"RandomCutout: seed must be None or an int in [{bounds[0]}, {bounds[1]}] (Keras' "
                              f"{sys.argv[1]} backend keeps seeds as {state}); got {seed}"), error
    else:
        raise AssertionError(f"seed={seed} was accepted on {sys.argv[1]}")
for seed in bounds:
    example_cases("keras")["RandomCutout"].build("keras", seed=seed)(x)
# keras.config.set_floatx(...) changes nothing a layer returns (an op on Python numbers alone takes
# its dtype from floatx); on JAX, floatx bfloat16 is refused: Keras' JAX backend then converts every
# Python number to float32 (uint8 images came back float32, the mixing layers failed).
def returned(case, images):
    layer = case.build("keras", num_classes=4, seed=3)
    out = layer((images, y)) if case.mixes else layer(images)
    return [np_(o) for o in (out if isinstance(out, tuple) else (out,))]


for i, (name, case) in enumerate(example_cases("keras").items()):
    # Eager JAX compiles every op per dtype: one image dtype per layer there.
    for dtype in (("float32", "uint8")[i % 2],) if sys.argv[1] == "jax" else ("float32", "uint8"):
        xi = (x * 255).round().astype("uint8") if dtype == "uint8" else x
        compared = ("float16", "float64") if sys.argv[1] == "jax" else FLOATX
        assert_floatx_changes_nothing(lambda case=case, xi=xi: returned(case, xi), f"{name}, {dtype} images",
                                      floatx=compared)
        if sys.argv[1] == "jax":
            keras.config.set_floatx("bfloat16")
            try:
                returned(case, xi)
                raise AssertionError(f"{name}: floatx bfloat16 on JAX was not refused")
            except ValueError as error:
                assert "floatx() 'bfloat16' is not supported on the JAX backend" in str(error), error
                assert "set_global_policy('mixed_bfloat16')" in str(error), error
            finally:
                keras.config.set_floatx("float32")
if sys.argv[1] == "jax":  # what the refusal suggests instead: bfloat16 compute, floatx float32
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        cutmix = example_cases("keras")["RandomCutMix"].build("keras", num_classes=4, seed=3)
        out = cutmix(((x * 255).astype("uint8"), y))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert [keras.backend.standardize_dtype(o.dtype) for o in out] == ["uint8", "float32"], out
# tf.data on this backend: the layers compute with TensorFlow's Keras ops there, whose promotion
# narrowed 64-bit dtypes as this backend's does (float64 images, int64 masks and float64 labels came
# back 32-bit, the unselected images rounded).
import tensorflow as tf  # noqa: E402  (only this part needs it)

x64, ids = x.astype("float64"), np.arange(5 * 9 * 8).reshape(5, 9, 8, 1).astype("int64")
for name, case in example_cases("keras").items():
    layer = case.build("keras", num_classes=4, seed=3, augmentation_ratio=0.4)
    data = {"images": x64}
    if case.mixes:
        data["labels"] = np.eye(4)[y].astype("float64")
    if layer.dense_targets != "refuse":
        data["segmentation_masks"] = ids
    out = next(iter(tf.data.Dataset.from_tensors(data).map(layer)))
    out = out[0] if isinstance(out, tuple) else out
    assert out["images"].dtype == tf.float64, (name, out["images"].dtype)
    assert (out["images"].numpy() != x64).reshape(5, -1).any(axis=1).sum() <= 2, name  # the others bit-identical
    if "segmentation_masks" in data:
        assert out["segmentation_masks"].dtype == tf.int64, (name, out["segmentation_masks"].dtype)
    if case.mixes:
        assert out["labels"].dtype == tf.float64, (name, out["labels"].dtype)
if sys.argv[1] == "jax":
    import jax

    # JAX without x64 (its default) made float32 arrays of float64 images: the output was float32
    # and unselected pixels were rounded, silently. Refused; with x64 the dtype is kept.
    assert not jax.config.jax_enable_x64
    from maskmix.keras import RandomErasing

    try:
        RandomErasing(seed=0)(x.astype("float64"))
        raise AssertionError("float64 images on JAX without x64 were not refused")
    except TypeError as error:
        assert "float64 images on the JAX backend need jax.config.update('jax_enable_x64', True)" in str(error)
    # The images are what counts, not the first leaf of a dict (its boxes, float64 NumPy ones).
    boxes = {"boxes": np.zeros((5, 2, 4)), "labels": np.zeros((5, 2), "int32")}
    RandomErasing(seed=0)({"images": x, "bounding_boxes": boxes})
    try:
        RandomErasing(seed=0)({"images": x.astype("float64"), "bounding_boxes": {**boxes, "boxes": boxes["boxes"]
                                                                                 .astype("float32")}})
        raise AssertionError("float64 images in a dict on JAX without x64 were not refused")
    except TypeError as error:
        assert "float64 images on the JAX backend" in str(error)
    jax.config.update("jax_enable_x64", True)
    kept = RandomErasing(seed=0)(x.astype("float64"))
    assert keras.backend.standardize_dtype(kept.dtype) == "float64"
    jax.config.update("jax_enable_x64", False)
print("backend ok", sys.argv[1])
