"""Property-based tests (hypothesis) of every Keras layer: the Keras half of ``test_torch_properties.py``.

The same framework-free parameter domains (``property_domains.py``), drawn with random layouts
(``channels_last`` and ``channels_first``; empty batches, single images, 1x1, 1xN, Nx1, 2x2,
H != W, odd batches), dtypes and channel counts, NaN/inf pixels and class-index or soft labels.
For every draw, through the layer's normal call (eager, TensorFlow backend): no crash,
shape/dtype preserved, the NumPy input untouched, the call equal to its two halves
(``get_random_transformation`` then ``transform_images`` of a twin layer with the same seed),
unselected images bit-identical (NaN included), label rows summing to 1 with unselected rows the
(smoothed) input rows, ``return_labels`` flags equal to the selection. Invalid values raise the
same ``ValueError``/``TypeError`` as the torch transforms, naming the layer and the parameter;
the Keras-only arguments (``seed``, ``data_format``) too. Keras eager calls cost ~20 ms, so the
example counts are smaller than on the torch side.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras_helpers import make_images, np_, to_tensor
from property_domains import BAD_VALUES, BATCH_SIZES, CHANNELS, COMMON, DOMAINS, SIZES, is_mixing, names, spec_errors

from maskmix import registry
from maskmix.params import SPECS

NAMES = names("keras")
KERAS_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = ("uint8", "float16", "float32", "bfloat16", "float64")
CLASSES = 4


def layer_class(name: str) -> type:
    return registry.implementation(name, "keras")


def test_every_strategy_has_a_layer() -> None:
    assert set(NAMES) == {name for name, spec in SPECS.items() if "keras" in spec.frameworks}
    for name in NAMES:
        assert layer_class(name).spec is SPECS[name]


def as_bits(x: np.ndarray) -> np.ndarray:
    """The bytes of an array (bit-for-bit comparison, NaN included)."""
    return np.ascontiguousarray(x).view(np.uint8)


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(as_bits(a), as_bits(b))


@st.composite
def keras_batches(draw: st.DrawFn, need_batch: bool, channels_first: bool) -> tuple[np.ndarray, str]:
    """A NumPy batch ``(B, H, W, C)`` / ``(B, C, H, W)`` (or one image) and its dtype name.

    bfloat16 images are returned as float32 NumPy values (cast to a bfloat16 tensor by the test).
    """
    dtype = draw(st.sampled_from(DTYPES))
    height, width = draw(st.sampled_from(SIZES))
    channels = draw(st.sampled_from(CHANNELS))
    image = (channels, height, width) if channels_first else (height, width, channels)
    single = not need_batch and draw(st.booleans())
    shape = image if single else (draw(st.sampled_from(BATCH_SIZES)), *image)
    images = make_images(shape, dtype, seed=draw(st.integers(0, 2**16)))
    if dtype != "uint8" and images.size and draw(st.booleans()):
        # NaN/inf pixels propagate, never crash.
        images.reshape(-1)[draw(st.integers(0, images.size - 1))] = draw(st.sampled_from([math.nan, math.inf]))
    return images, dtype


@st.composite
def keras_labels(draw: st.DrawFn, batch_size: int) -> np.ndarray:
    """Class indices of a random integer dtype, or soft float32/float64 rows summing to 1."""
    kind = draw(st.sampled_from(["int64", "int32", "uint8", "float32", "float64"]))
    if kind.startswith(("int", "uint")):
        return (np.arange(batch_size) % CLASSES).astype(kind)
    rows = np.random.default_rng(draw(st.integers(0, 2**16))).random((batch_size, CLASSES)) + 0.01
    return (rows / rows.sum(axis=1, keepdims=True)).astype(kind)


def smoothed(labels: np.ndarray, smoothing: float) -> np.ndarray:
    soft = labels.astype(np.float64) if labels.dtype.kind == "f" else np.eye(CLASSES)[labels.astype(np.int64)]
    return soft * (1 - smoothing) + smoothing / CLASSES


@pytest.mark.parametrize("name", NAMES)
@KERAS_SETTINGS
@given(data=st.data())
def test_valid_draws_keep_the_contract(name: str, data: st.DataObject) -> None:
    kwargs = data.draw(DOMAINS[name]) | data.draw(COMMON)
    seed = data.draw(st.integers(0, 2**31 - 1))
    data_format = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    mixing = is_mixing(name, kwargs)
    if mixing:
        kwargs["num_classes"] = CLASSES
        kwargs["label_smoothing"] = data.draw(st.sampled_from([0.0, 0.1]))
    layer = layer_class(name)(seed=seed, data_format=data_format, **kwargs)
    twin = layer_class(name)(seed=seed, data_format=data_format, **kwargs)
    array, dtype = data.draw(keras_batches(need_batch=mixing, channels_first=data_format == "channels_first"))
    before = array.copy()
    images = to_tensor(array, dtype) if dtype == "bfloat16" else array
    batch_size = array.shape[0] if array.ndim == 4 else None

    if mixing:
        labels = data.draw(keras_labels(array.shape[0]))
        labels_before = labels.copy()
        out, soft = layer((images, labels))
        soft = np_(soft)
        assert bits_equal(labels, labels_before), "the labels were modified"
        assert soft.shape == (array.shape[0], CLASSES)
        assert soft.dtype == (np.float64 if labels.dtype == np.float64 else np.float32)
        np.testing.assert_allclose(soft.sum(axis=1), np.ones(array.shape[0]), rtol=0, atol=1e-5)
        assert (soft >= 0).all()
    else:
        result = layer(images)
        out = result
        if kwargs.get("return_labels"):
            out, flags = result
            flags = np_(flags)
            assert flags.dtype == np.int64 and flags.shape == ((batch_size,) if batch_size is not None else ())

    # The call is its two halves, drawn from a twin layer with the same seed.
    params = twin.get_random_transformation(images)
    halves = np_(twin.transform_images(images, params))
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    out = np_(out)
    assert out.shape == array.shape
    assert bits_equal(out, halves), "call and get_random_transformation/transform_images disagree"
    assert bits_equal(array, before), "the input was modified"

    selected = np_(params["selected"]).reshape(-1)
    flat_in = np_(images).reshape(-1, *array.shape[-3:])
    flat_out = out.reshape(-1, *array.shape[-3:])
    assert selected.shape == (flat_in.shape[0],)
    if kwargs.get("return_labels") and not mixing:
        np.testing.assert_array_equal(flags.reshape(-1), selected.astype(np.int64))
    if mixing:
        expected = smoothed(labels, kwargs["label_smoothing"])
    for b in np.flatnonzero(~selected):
        assert bits_equal(flat_out[b], flat_in[b]), "an unselected image changed"
        if mixing:
            np.testing.assert_allclose(soft[b], expected[b], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Invalid values always raise, naming the layer and the parameter (the torch messages).
# --------------------------------------------------------------------------------------------

SPEC_ERRORS = [row for row in spec_errors() if row[0] in NAMES]


@pytest.mark.parametrize("name", NAMES)
def test_invalid_values_raise_the_torch_messages(name: str) -> None:
    """Every value the framework-free spec refuses is refused by the layer with the same error."""
    rows = [row for row in SPEC_ERRORS if row[0] == name]
    assert {row[1] for row in rows} == set(SPECS[name].param_names)
    for _, param, value, error_type, message in rows:
        with pytest.raises((ValueError, TypeError)) as info:
            layer_class(name)(**{param: value})
        assert type(info.value) is error_type and str(info.value) == message, (param, value)
        assert message.startswith(f"{name}: {param} ") and "got " in message


def keras_only_errors() -> list[tuple[str, str, object, type, str]]:
    """``(layer, argument, value, error type, message)`` for bad ``seed`` / ``data_format`` values."""
    rows = []
    for name in NAMES:
        for param in ("seed", "data_format"):
            for value in [*BAD_VALUES, 0.5, "NHWC", "channels_middle", b"channels_last"]:
                try:
                    layer_class(name)(**{param: value})
                except (ValueError, TypeError) as error:
                    rows.append((name, param, value, type(error), str(error)))
    return rows


KERAS_ONLY_ERRORS = keras_only_errors()


@pytest.mark.parametrize("name", NAMES)
def test_keras_only_arguments_are_validated(name: str) -> None:
    rows = [row for row in KERAS_ONLY_ERRORS if row[0] == name]
    refused = {(param, repr(value)) for _, param, value, _, _ in rows}
    for value in (math.nan, math.inf, 0.5, 1.0, True, False, "x", (-1, 2), bytes(2), 1 + 2j):
        assert ("seed", repr(value)) in refused, value
    for value in (0, 1, "x", "", "NHWC", "channels_middle", b"channels_last", True, math.nan):
        assert ("data_format", repr(value)) in refused, value
    for _, param, value, error_type, message in rows:
        assert message.startswith(f"{name}: {param} must be "), message
        assert message.endswith(f"got {value!r}"), message
        assert error_type is (TypeError if param == "seed" else ValueError)
    # Good values are accepted: ints (any sign) and None; both layouts and None.
    for seed in (None, 0, 1, -1, 2**31 - 1):
        layer_class(name)(seed=seed)
    for data_format in (None, "channels_last", "channels_first"):
        layer_class(name)(data_format=data_format)


def test_message_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    """The Keras-only messages, each once (``pytest -s -k catalogue``); the strategy parameters'
    messages are the torch ones (``test_torch_properties.py::test_message_catalogue``)."""
    seen: dict[str, None] = {}
    for *_, error_type, message in KERAS_ONLY_ERRORS:
        seen.setdefault(f"{error_type.__name__:10s} {message}", None)
    with capsys.disabled():
        print(f"\n{len(seen)} distinct Keras-only validation messages:")
        for line in seen:
            print("  " + line)
    assert len(seen) > 20
