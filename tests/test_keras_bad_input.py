"""Bad and unusual call-time input that only Keras has (design §Conventions, errors).

What both frameworks check (unsupported dtypes, images without pixels, bad labels, labels without
``num_classes``, NaN/inf pixels in both data formats, uint8 saturation, gradients) is written once
in ``contracts/test_call_errors.py``. Here, for every layer (the mixed Cut-Thumbnail included):
unsupported dtypes under ``training=False``, ranks in both data formats' words, non-tensor images,
string labels, out-of-range class indices inside ``tf.function`` (documented zero row, no host
synchronisation), NumPy arrays of any memory layout, ``training=False``. See also
``contracts/test_keras_conventions.py`` and ``strategies/test_mixing_base.py::test_keras_label_errors``
/ ``test_keras_input_errors`` (CutMix labels, Mixup input). Keras wraps a layer's exception in its
own "Exception encountered when calling ..." text: the messages are matched with ``re.search``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math
import re
from functools import partial

import numpy as np
import pytest
import tensorflow as tf
from keras_helpers import make_images, np_
from registry_cases import example_cases

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
def test_unsupported_dtypes_are_refused_under_training_false(name: str) -> None:
    """Validated even when the layer would be the identity (``training=True``:
    ``contracts/test_call_errors.py``)."""
    for dtype in BAD_DTYPES:
        message = f"{class_of(name)}: images must have dtype float16, bfloat16, float32, float64 or uint8; got {dtype}"
        with pytest.raises(TypeError, match=re.escape(message)):
            call(name, FACTORIES[name](), bad_tensor(dtype), training=False)


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
def test_images_of_unknown_rank_are_refused_saying_what_to_give(name: str) -> None:
    """A tf.function signature of shape None: TensorFlow's own "cannot iterate over a shape with
    unknown rank" named neither the layer nor what it takes."""
    layer = FACTORIES[name]()

    @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.float32)])
    def step(images):
        return images_of(call(name, layer, images, tf.constant([0, 1, 2, 0])))

    with pytest.raises(ValueError, match=rf"{class_of(name)}: images must have a known rank, a batch \(B, H, W, C\)"):
        step(np.zeros((4, 8, 8, 3), "float32"))


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("data_format", FORMATS)
def test_images_in_the_other_layout_are_refused(name: str, data_format: str) -> None:
    """A torch-style (B, C, H, W) batch given to a channels-last layer would be erased or mixed
    along the wrong axes (3 rows of 32 pixels with 32 channels): refused, as is the reverse; the
    same images in the layer's own layout, and a 4-channel RGBA batch, pass. Two-channel images
    (optical flow) in the other layout are refused too."""
    cls = class_of(name)
    theirs = "channels_first" if data_format == "channels_last" else "channels_last"
    own = (4, 12, 12, 3) if data_format == "channels_last" else (4, 3, 12, 12)
    shapes = []
    for channels in (3, 2):
        other = (4, channels, 12, 12) if data_format == "channels_last" else (4, 12, 12, channels)
        shapes += [other] + ([] if name in MIXING or channels == 2 else [other[1:]])
    for shape in shapes:
        channels = shape[-3] if data_format == "channels_last" else shape[-1]
        expected = (f"{cls}: images of shape {shape} look {theirs}: 12 values on the channel axis of "
                    f"data_format={data_format!r} and {channels} where the channels of {theirs} images are; "
                    f"pass data_format={theirs!r}, or transpose the images")
        with pytest.raises(ValueError, match=re.escape(expected)):
            call(name, FACTORIES[name](data_format=data_format), make_images(shape, "float32"), np.arange(4) % 3)
    for shape in (own, (*own[:3], 4) if data_format == "channels_last" else (4, 4, 12, 12)):
        out = images_of(call(name, FACTORIES[name](data_format=data_format), make_images(shape, "float32"),
                             np.arange(4) % 3))
        assert tuple(out.shape) == shape


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


@pytest.mark.parametrize("name", MIXING)
def test_string_labels(name: str) -> None:
    """The rest of the bad labels: ``contracts/test_call_errors.py::test_bad_labels``."""
    message = f"{class_of(name)}: labels must be integer class indices or floating soft labels; got string"
    with pytest.raises(TypeError, match=re.escape(message)):
        FACTORIES[name]()((make_images((4, 6, 7, 3)), np.array(["a"] * 4)))


@pytest.mark.parametrize("name", MIXING)
def test_out_of_range_indices_inside_tf_function_give_nan_rows(name: str) -> None:
    """Documented: inside a graph the index check cannot read the values (it would read them back
    to the host); an index outside ``[0, num_classes)`` gets a NaN row, which the loss shows, not
    ``one_hot``'s zero row, which would train on nothing."""
    layer = FACTORIES[name](augmentation_ratio=0.0, seed=0)
    step = tf.function(lambda x, y: layer((x, y)))
    _, soft = step(make_images((4, 6, 7, 3)), tf.constant([0, 7, 2, -1]))
    nan = [np.nan] * 3
    np.testing.assert_array_equal(np_(soft), [[1, 0, 0], nan, [0, 0, 1], nan])


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_soft_labels_outside_zero_one_inside_tf_function_give_nan_rows(name: str, jit_compile: bool) -> None:
    """Inside a graph the soft-label check cannot read the values either: a row with a value
    outside ``[0, 1]`` (class numbers in a ``(B, 1)`` column, logits) gets a NaN row, which the
    loss shows, instead of being mixed as a probability. The other rows come back as given."""
    layer = FACTORIES[name](augmentation_ratio=0.0, seed=0)
    step = tf.function(lambda x, y: layer((x, y)), jit_compile=jit_compile)
    rows = np.array([[0.0, 7.0, 0.0], [1, 0, 0], [0.2, 0.8, 0.0], [0, -0.5, 1.5]], "float32")
    _, soft = step(make_images((4, 6, 7, 3)), tf.constant(rows))
    nan = [np.nan] * 3
    np.testing.assert_array_equal(np_(soft), [nan, rows[1], rows[2], nan])


# --------------------------------------------------------------------------------------------
# NumPy layouts, training=False.
# --------------------------------------------------------------------------------------------

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


@pytest.mark.parametrize("name", FACTORIES)
def test_symbolic_inputs_are_checked_when_the_model_is_built(name: str) -> None:
    """A functional model is built from symbolic inputs: what the eager call refuses must fail
    there, not at the first batch of ``fit``; and a rank-3 input there, ``(None, H, W)``, is a
    batch without a channel axis (the eager call would read it as one image whose rows are the
    images), refused with the fix."""
    import keras

    cls = class_of(name)
    mixing = name in MIXING

    def build(images, labels=None):
        layer = FACTORIES[name]()
        if mixing:
            return layer((images, keras.Input((3,)) if labels is None else labels))
        return layer(images)

    with pytest.raises(TypeError, match=rf"{cls}: images must have dtype .*; got int32"):
        build(keras.Input((12, 12, 3), dtype="int32"))
    with pytest.raises(ValueError, match=rf"{cls}: images of shape \(None, 3, 12, 12\) look channels_first"):
        build(keras.Input((3, 12, 12)))
    with pytest.raises(ValueError, match=rf"{cls}: images must .*got shape \(None, 2, 12, 12, 3\)"):
        build(keras.Input((2, 12, 12, 3)))
    if mixing:
        with pytest.raises(ValueError, match=rf"{cls}: images must be a batch \(B, H, W, C\) of rank 4"):
            build(keras.Input((12, 12)))
        with pytest.raises(ValueError, match=rf"{cls}: one-hot/soft labels must have shape \(B, K\)"):
            build(keras.Input((12, 12, 3)), keras.Input((3, 2)))
    else:
        message = (rf"{cls}: got a symbolic input of shape \(None, 12, 12\): in a model the first axis is the "
                   r"batch, so these are images without a channel axis; add one \(\(B, H, W, 1\)")
        with pytest.raises(ValueError, match=message):
            build(keras.Input((12, 12)))
    out = build(keras.Input((12, 12, 3)))
    assert tuple(images_of(out).shape) == (None, 12, 12, 3)


@pytest.mark.parametrize("name", MIXING)
def test_mixing_layers_shapes_of_images_alone_and_labels_without_num_classes(name: str) -> None:
    """Images alone come back mixed with their shape, as Keras' own CutMix gives it (was a
    NotImplementedError); class indices with no ``num_classes`` fail when the model is built."""
    import keras

    cls = class_of(name)
    layer = FACTORIES[name]()
    assert layer.compute_output_shape((None, 12, 12, 3)) == (None, 12, 12, 3)
    with pytest.raises(ValueError, match=rf"{cls}: compute_output_shape takes the shape of an image batch"):
        layer.compute_output_shape(((None, 12, 12, 3), (None,)))
    unset = FACTORIES[name]()
    unset.num_classes = None
    with pytest.raises(ValueError, match=rf"{cls}: num_classes is required when labels are class indices"):
        unset((keras.Input((12, 12, 3)), keras.Input((), dtype="int32")))


@pytest.mark.parametrize("name", FACTORIES)
def test_seed_and_data_format_are_fixed_at_construction(name: str) -> None:
    """layer.seed = 5 kept drawing seed 0's stream while get_config saved 5 (from_config built
    another layer); data_format = "NHWC" was accepted and its saved config did not load;
    autocast=True was dropped, silently."""
    cls = class_of(name)
    layer = FACTORIES[name](seed=0)
    for attr, value in (("seed", 5), ("data_format", "channels_first")):
        with pytest.raises(ValueError, match=rf"^{cls}: {attr} is fixed at construction; build a new layer with "
                                             rf"{attr}={re.escape(repr(value))}$"):
            setattr(layer, attr, value)
    layer.seed, layer.data_format = 0, "channels_last"  # the same values again: no change, accepted
    assert layer.get_config()["seed"] == 0 and layer.get_config()["data_format"] == "channels_last"
    with pytest.raises(ValueError, match=rf"^{cls}: autocast=True is not supported"):
        FACTORIES[name](autocast=True)


@pytest.mark.parametrize("name", [n for n in FACTORIES if "fill_method" in CASES[n].spec.param_names])
def test_fills_beyond_the_image_dtype_are_refused(name: str) -> None:
    """fill_method=1e5 on float16 images wrote inf, silently (as 1e39 on float32 ones)."""
    cls = class_of(name)
    x = make_images((2, 8, 8, 3), seed=0)
    for dtype, fill in (("float16", 1e5), ("float32", 1e39)):
        message = rf"{cls}: fill_method {re.escape(repr(fill))} exceeds what {dtype} images hold"
        with pytest.raises(ValueError, match=message):
            call(name, FACTORIES[name](fill_method=fill, seed=0), tf.cast(x, dtype))
    with pytest.raises(ValueError, match=rf"{cls}: pixels_range \(value_range\) \(0\.0, 100000\.0\) gives "
                                         r"fill_method 'white' values beyond what float16 images hold"):
        call(name, FACTORIES[name](fill_method="white", pixels_range=(0.0, 1e5), seed=0), tf.cast(x, "float16"))
    assert np.isfinite(np_(images_of(call(name, FACTORIES[name](fill_method=1e5, seed=0), x)))).all()


@pytest.mark.parametrize("name", list(FACTORIES))
def test_training_given_positionally_is_refused_by_name(name: str) -> None:
    # layer(x, False) reached call() as a second `training` beside Keras' own keyword: "got
    # multiple values for argument 'training'", naming neither the layer nor the remedy (and
    # layer(x, None) ran).
    layer = FACTORIES[name](seed=0)
    images = make_images((2, 8, 8, 3), "float32")
    data = (images, np.eye(3, dtype="float32")[[0, 1]]) if CASES[name].mixes else images
    for extra in (False, None):
        with pytest.raises(TypeError, match=rf"^{CASES[name].spec.name}: takes one input \(images, a tuple \(images, "
                                            r"labels\) or a dict\); pass training as a keyword \(layer\(x, "
                                            r"training=False\)\); got 1 more positional argument\(s\)$"):
            layer(data, extra)
    passed = layer(data, training=False)
    np.testing.assert_array_equal(np_(passed[0] if CASES[name].mixes else passed), images)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_seeds_the_seed_state_cannot_hold_are_refused_by_name(name: str) -> None:
    # TensorFlow's int64 seed state: 2**63 failed with "Can't convert Python sequence with
    # out-of-range integer to Tensor", naming no layer (torch's int32 and JAX's uint32 states: in
    # the backend script layer_conventions.py).
    owner = CASES[name].spec.name
    for seed in (-(2**63), 2**63 - 1, -1, 2**40):
        FACTORIES[name](seed=seed)
    for seed in (2**63, -(2**63) - 1, 2**70):
        with pytest.raises(ValueError, match=rf"^{owner}: seed must be None or an int in \[-9223372036854775808, "
                                             rf"9223372036854775807\] \(Keras' tensorflow backend keeps seeds as "
                                             rf"int64\); got {seed}$"):
            FACTORIES[name](seed=seed)
