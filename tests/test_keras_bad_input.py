"""Bad and unusual call-time input for every Keras layer (SPEC §3, "Errors"): the twin of ``test_bad_input.py``.

Complements ``contracts/test_keras_conventions.py`` (the conventions of every layer) and
``strategies/test_mixing_base.py::test_keras_label_errors`` / ``test_keras_input_errors`` (CutMix labels, Mixup input):
every layer (the mixed Cut-Thumbnail included),
both data formats, against every unsupported dtype and rank, non-tensor images, labels of the
wrong length, dtype or rank, class indices out of range (eager: ``ValueError``; inside
``tf.function``: documented zero row, no host synchronisation), NaN/inf pixels (propagate inside
their image, never leak into another one), uint8 saturation, gradients, NumPy arrays of any
memory layout, ``training=False``. Keras wraps a layer's exception in its own "Exception
encountered when calling ..." text: the messages are matched with ``re.search``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math
import re
from functools import partial

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_helpers import make_images, np_
from registry_cases import example_cases

import maskmix.keras as mk

#: Every strategy Keras implements, in a configuration that changes every selected image of 2x2
#: or more pixels (the registry's ``example``), and the mixing form of those that have one.
CASES = example_cases("keras")
FACTORIES = {name: partial(case.build, "keras") for name, case in CASES.items()}
#: The ways of calling a mixing layer (CutMix, Mixup, the mixed Cut-Thumbnail...).
MIXING = {name: factory for name, factory in FACTORIES.items() if CASES[name].mixes}
FORMATS = ("channels_last", "channels_first")

BAD_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "complex64", "complex128",
              "float8_e4m3fn", "string"]


def class_of(name: str) -> str:
    return name.removesuffix("-mixed")


def call(name: str, layer, images, labels=None, **kwargs):
    if name in MIXING:
        if labels is None:
            labels = np.arange(images.shape[0] if len(images.shape) else 1) % 3
        return layer((images, labels), **kwargs)
    return layer(images, **kwargs)


def images_of(result):
    return result[0] if isinstance(result, tuple) else result


def bad_tensor(dtype: str, shape=(4, 8, 8, 3)):
    if dtype == "string":
        return tf.fill(shape, "a")
    return tf.cast(tf.zeros(shape), dtype)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_unsupported_dtypes_raise_type_error(name: str, dtype: str) -> None:
    message = f"{class_of(name)}: images must have dtype float16, bfloat16, float32, float64 or uint8; got {dtype}"
    for training in (True, False):  # validated even when the layer would be the identity
        with pytest.raises(TypeError, match=re.escape(message)):
            call(name, FACTORIES[name](), bad_tensor(dtype), training=training)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("data_format", FORMATS)
def test_wrong_rank_raises_value_error(name: str, data_format: str) -> None:
    cls = class_of(name)
    batch = "(B, C, H, W)" if data_format == "channels_first" else "(B, H, W, C)"
    single = "(C, H, W)" if data_format == "channels_first" else "(H, W, C)"
    shapes = [(), (5,), (8, 8), (2, 2, 8, 8, 3)] + ([(8, 8, 3)] if name in MIXING else [])
    for shape in shapes:
        if name in MIXING:
            expected = (f"{cls}: images must be a batch {batch} of rank 4 "
                        f"(data_format={data_format!r}); got shape {shape}")
        else:
            expected = (f"{cls}: images must be one image {single} or a batch {batch} "
                        f"(data_format={data_format!r}); got shape {shape}")
        with pytest.raises(ValueError, match=re.escape(expected)):
            call(name, FACTORIES[name](data_format=data_format), np.zeros(shape, "float32"), np.arange(4) % 3)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape", [(4, 0, 8, 3), (4, 8, 0, 3), (4, 8, 8, 0)], ids=["H0", "W0", "C0"])
def test_images_without_pixels_raise_value_error(name: str, shape: tuple[int, ...]) -> None:
    """An empty batch passes through, but an image with no channel, row or column is a mistake."""
    expected = (f"{class_of(name)}: images must have at least one channel, row and column (C, H, W >= 1); "
                f"got shape {shape}")
    with pytest.raises(ValueError, match=re.escape(expected)):
        call(name, FACTORIES[name](), np.zeros(shape, "float32"), np.arange(4) % 3)


@pytest.mark.parametrize("name", FACTORIES)
def test_non_tensor_images(name: str) -> None:
    """Python lists are not images: the per-image layers say so; for ``(images, labels)`` Keras
    itself refuses a structure mixing tensors and lists before the layer runs."""
    if name in MIXING:
        with pytest.raises((ValueError, TypeError)):
            call(name, FACTORIES[name](), [[[[0.5]]]] * 2, tf.constant([0, 1]))
        with pytest.raises((ValueError, TypeError)):  # labels as a list next to a tensor
            FACTORIES[name]()((tf.zeros((2, 4, 4, 3)), [0, 1]))
        return
    message = f"{class_of(name)}: images must be a tensor or a NumPy array; got list"
    with pytest.raises(TypeError, match=re.escape(message)):
        FACTORIES[name]()([[[[0.5]]]])


# --------------------------------------------------------------------------------------------
# Labels (every mixing layer).
# --------------------------------------------------------------------------------------------

LABEL_ERRORS = [
    (np.array([0, 1, 2]), ValueError, "labels have batch size 3 but the images have 4"),
    (np.full((5, 3), 1 / 3, "float32"), ValueError, "labels have batch size 5 but the images have 4"),
    (np.array([0, 1, 2, 3]), ValueError, "class indices must lie in [0, 3); got [3]"),
    (np.array([0, -2, 2, 1], "int8"), ValueError, "class indices must lie in [0, 3); got [-2]"),
    (np.array([0, 200, 2, 9], "uint8"), ValueError, "class indices must lie in [0, 3); got [200, 9]"),
    (np.array([0, 1, 2, 2**40]), ValueError, "class indices must lie in [0, 3); got [1099511627776]"),
    (np.ones(4, bool), TypeError, "labels must be integer class indices or floating soft labels; got bool"),
    (np.ones((4, 3), "complex64"), TypeError,
     "labels must be integer class indices or floating soft labels; got complex64"),
    (np.array(["a"] * 4), TypeError, "labels must be integer class indices or floating soft labels; got string"),
    (np.int64(1), ValueError, "class-index labels must have shape (B,); got shape ()"),
    (np.zeros((4, 3), "int64"), ValueError, "class-index labels must have shape (B,); got shape (4, 3)"),
    (np.ones(4, "float32"), ValueError, "one-hot/soft labels must have shape (B, K); got shape (4,)"),
    (np.ones((4, 3, 1), "float32"), ValueError, "one-hot/soft labels must have shape (B, K); got shape (4, 3, 1)"),
    (np.ones((4, 5), "float32"), ValueError, "labels have 5 classes but num_classes is 3"),
]


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize(("labels", "error", "message"), LABEL_ERRORS,
                         ids=[f"{i}-{m[:24]}" for i, (_, _, m) in enumerate(LABEL_ERRORS)])
def test_bad_labels(name: str, labels, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(f"{class_of(name)}: {message}")):
        FACTORIES[name]()((make_images((4, 6, 7, 3)), labels))


@pytest.mark.parametrize("name", MIXING)
def test_labels_without_num_classes_and_low_precision_soft_labels(name: str) -> None:
    cls = getattr(mk, class_of(name))
    kwargs = {"mix_images": True} if name.endswith("-mixed") else {}
    x = make_images((4, 6, 7, 3))
    with pytest.raises(ValueError, match=f"{cls.__name__}: num_classes is required when labels are class indices"):
        cls(**kwargs)((x, np.arange(4) % 3))
    for dtype, out_dtype in [("float16", "float32"), ("bfloat16", "float32"), ("float32", "float32"),
                             ("float64", "float64")]:
        soft = keras.ops.cast(np.full((4, 3), 1 / 3, "float32"), dtype)
        _, mixed = cls(seed=0, **kwargs)((x, soft))
        assert keras.backend.standardize_dtype(mixed.dtype) == out_dtype and tuple(mixed.shape) == (4, 3)
        np.testing.assert_allclose(np_(mixed).sum(1), np.ones(4), rtol=0, atol=1e-2)
    _, mixed = cls(seed=0, **kwargs)((x, np.full((4, 3), np.nan, "float32")))
    assert np.isnan(np_(mixed)).all()


@pytest.mark.parametrize("name", MIXING)
def test_out_of_range_indices_inside_tf_function_give_zero_rows(name: str) -> None:
    """Documented: inside a graph the index check is skipped (it would read values back to the
    host); ``one_hot`` of an index outside ``[0, num_classes)`` is a zero row."""
    layer = FACTORIES[name](augmentation_ratio=0.0, seed=0)
    step = tf.function(lambda x, y: layer((x, y)))
    _, soft = step(make_images((4, 6, 7, 3)), tf.constant([0, 7, 2, -1]))
    np.testing.assert_array_equal(np_(soft), [[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]])


# --------------------------------------------------------------------------------------------
# NaN and inf pixels, uint8 saturation, gradients, NumPy layouts.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("data_format", FORMATS)
def test_nan_and_inf_pixels_propagate_and_never_leak_into_other_images(name: str, data_format: str) -> None:
    """As ``test_bad_input.py``: image 0 all NaN, image 1 all +inf, image 2 one NaN and one -inf
    pixel; finite images stay finite unless mixed with a non-finite partner; image 2's non-finite
    pixels never multiply except through the resampling filters or a non-finite partner."""
    channels_first = data_format == "channels_first"
    x = make_images((6, 3, 10, 12) if channels_first else (6, 10, 12, 3), seed=3)
    x[0] = np.nan
    x[1] = np.inf
    pixel_a, pixel_b = ((1, 4, 5), (0, 0, 0)) if channels_first else ((4, 5, 1), (0, 0, 0))
    x[(2, *pixel_a)] = np.nan
    x[(2, *pixel_b)] = -np.inf
    layer = FACTORIES[name](seed=0, data_format=data_format)
    twin = FACTORIES[name](seed=0, data_format=data_format)
    out = np_(images_of(call(name, layer, x, np.arange(6) % 3)))
    params = twin.get_random_transformation(x)
    assert out.shape == x.shape
    partner = np_(params["partner"]) if "partner" in params and name in MIXING else None
    for b in range(3, 6):
        if partner is not None and partner[b] < 3:
            continue
        assert np.isfinite(out[b]).all(), f"image {b} got a non-finite value from elsewhere"
    if not name.startswith(("RandomCutBlur", "RandomCutThumbnail")) and not (partner is not None and partner[2] < 2):
        assert (~np.isfinite(out[2])).sum() <= 2


@pytest.mark.parametrize("name", FACTORIES)
def test_uint8_results_are_the_float_results_rounded_and_saturated(name: str) -> None:
    x = make_images((6, 12, 12, 2), "uint8", seed=7)
    x[:, :6] = 255
    x[:, :, :4] = 0

    def run(images):
        kwargs = {"pixels_range": (0.0, 255.0), "seed": 11}
        if name.startswith("RandomCutThumbnail") or name == "RandomCutBlur":
            kwargs["resize_method"] = "bicubic"
        return images_of(call(name, FACTORIES[name](**kwargs), images, np.arange(6) % 3))

    out = run(x)
    assert keras.backend.standardize_dtype(out.dtype) == "uint8"
    reference = np.clip(np.round(np_(run(x.astype("float32")))), 0, 255)
    assert np.abs(np_(out).astype(np.float64) - reference).max() <= 1


@pytest.mark.parametrize("name", FACTORIES)
def test_gradients_flow_through_the_layer(name: str) -> None:
    """``tf.GradientTape`` through a layer: finite gradients; pixels that come back unchanged
    through ``where``/``take`` get at least their own gradient."""
    x = tf.Variable(make_images((4, 9, 11, 3), seed=4))
    with tf.GradientTape() as tape:
        out = images_of(call(name, FACTORIES[name](seed=0, augmentation_ratio=0.5), x))
        total = tf.reduce_sum(out)
    grad = tape.gradient(total, x)
    assert grad is not None
    grad = np_(grad)
    unchanged = (np_(out) == np_(x)).all(axis=-1)
    assert np.isfinite(grad).all() and (grad.sum(axis=-1)[unchanged] > 0).all()


NUMPY_LAYOUTS = {
    "fortran": np.asfortranarray,
    "reversed_rows": lambda x: x[:, ::-1].copy()[:, ::-1],
    "strided": lambda x: np.stack([x, x], axis=-1)[..., 0],
    "transposed": lambda x: x.transpose(0, 2, 1, 3).copy().transpose(0, 2, 1, 3),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_numpy_arrays_of_any_memory_layout(name: str) -> None:
    x = make_images((4, 9, 11, 3), seed=2)
    expected = np_(images_of(call(name, FACTORIES[name](seed=5), x)))
    for layout, convert in NUMPY_LAYOUTS.items():
        view = convert(x)
        assert not view.flags.c_contiguous, layout
        out = np_(images_of(call(name, FACTORIES[name](seed=5), view)))
        np.testing.assert_array_equal(out, expected, err_msg=layout)
        np.testing.assert_array_equal(view, x)  # untouched


@pytest.mark.parametrize("name", FACTORIES)
def test_training_false_returns_the_input_values(name: str) -> None:
    x = make_images((3, 5, 6, 2), seed=1)
    x[0, 0, 0, 0] = math.nan
    result = call(name, FACTORIES[name](seed=0), x, training=False)
    out = np_(images_of(result))
    assert np.array_equal(out, x, equal_nan=True)
