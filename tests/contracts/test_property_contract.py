"""Property-based tests (hypothesis) of every strategy of every framework, written once over the
registry's parameter domains (``property_domains.py``) and run through each framework's adapter
(``adapters.py``; Keras in both layouts).

Random shapes (empty batches, single images, 1x1, 1xN, Nx1, 2x2, H != W, odd batches), dtypes,
channel counts, NaN/inf pixels, class-index or soft labels of several dtypes and parameter values
drawn from each parameter's valid domain. For every draw: no crash, shape and dtype kept, images
and labels untouched, the call equal to its two halves (drawing, then applying, on a twin with the
same seed), unselected images bit-identical (NaN included), label rows summing to 1 with the
unselected rows the (smoothed) input rows, ``return_labels`` flags equal to the selection.
Values from outside the domains raise exactly the framework-free spec's error, naming the
transform and the parameter; a catalogue test prints every distinct message once
(``pytest -s -k catalogue``). Keras-only arguments (``seed``, ``data_format``) are in
``test_keras_properties.py``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import numpy as np
import pytest
from adapters import ADAPTERS, DTYPES, make_images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_domains import BATCH_SIZES, CHANNELS, CONFIGS, DOMAINS, NAMES, SIZES, is_mixing, names, spec_errors
from registry_cases import Case

from maskmix import registry
from maskmix._checks import uint8_refusal
from maskmix.params import SPECS

CLASSES = 4
#: ``(framework, strategy)`` parameters, as test ids ``torch-RandomCutout``.
PAIRS = [pytest.param(framework, name, id=f"{framework}-{name}") for framework in ADAPTERS for name in names(framework)]


@pytest.mark.parametrize("framework", ADAPTERS)
def test_every_strategy_has_a_domain_and_a_class(framework: str) -> None:
    assert set(names(framework)) == {name for name, spec in SPECS.items() if framework in spec.frameworks}
    for name in names(framework):
        cls = registry.implementation(name, framework)
        assert name in DOMAINS and cls.spec is SPECS[name] and cls.__name__ == name


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality, NaN included."""
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                                                                        np.ascontiguousarray(b).view(np.uint8))


@st.composite
def batches(draw: st.DrawFn, need_batch: bool) -> tuple[np.ndarray, str]:
    """``(B, C, H, W)`` NumPy images with B in {0, 1, 2, 3, 5}, or one ``(C, H, W)`` image, and
    their dtype name (bfloat16 images are float32 values)."""
    dtype = draw(st.sampled_from(DTYPES))
    height, width = draw(st.sampled_from(SIZES))
    channels = draw(st.sampled_from(CHANNELS))
    single = not need_batch and draw(st.booleans())
    shape = (channels, height, width) if single else (draw(st.sampled_from(BATCH_SIZES)), channels, height, width)
    images = make_images(shape, dtype, seed=draw(st.integers(0, 2**16)))
    if dtype != "uint8" and images.size and draw(st.booleans()):
        # NaN/inf pixels propagate, never crash.
        images.reshape(-1)[draw(st.integers(0, images.size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    return images, dtype


@st.composite
def label_batches(draw: st.DrawFn, batch_size: int) -> np.ndarray:
    """Class indices of a random integer dtype, or soft float32/float64 rows summing to 1."""
    kind = draw(st.sampled_from(["int64", "int32", "int16", "uint8", "float32", "float64"]))
    if kind.startswith(("int", "uint")):
        return (np.arange(batch_size) % CLASSES).astype(kind)
    rows = np.random.default_rng(draw(st.integers(0, 2**16))).random((batch_size, CLASSES)) + 0.01
    return (rows / rows.sum(axis=1, keepdims=True)).astype(kind)


def smoothed(labels: np.ndarray, smoothing: float) -> np.ndarray:
    """The soft rows an unselected image keeps: one-hot (or the input rows) with smoothing."""
    soft = labels.astype(np.float64) if labels.dtype.kind == "f" else np.eye(CLASSES)[labels.astype(np.int64)]
    return soft * (1 - smoothing) + smoothing / CLASSES


# --------------------------------------------------------------------------------------------
# Valid draws never crash and keep the contract.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("framework", "name"), PAIRS)
def test_valid_draws_keep_the_contract(framework: str, name: str) -> None:
    @settings(max_examples=ADAPTERS[framework].property_examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        adapter = data.draw(st.sampled_from(ADAPTERS[framework].layouts()), label="layout")
        config = data.draw(CONFIGS[name])
        seed = data.draw(st.integers(0, 2**31 - 1))
        mixing = is_mixing(name, config)
        if mixing:
            config |= {"num_classes": CLASSES, "label_smoothing": data.draw(st.sampled_from([0.0, 0.1]))}
        case = Case(name, SPECS[name], config)
        array, dtype = data.draw(batches(need_batch=mixing))
        images = adapter.inputs(array, dtype)
        before = adapter.numpy(images)
        labels = labels_before = None
        if mixing:
            labels_array = data.draw(label_batches(array.shape[0]))
            labels = adapter.labels(labels_array)
            labels_before = adapter.numpy(labels)

        reads_range = registry.implementation(name, framework).reads_pixels_range
        if np.dtype(dtype) == np.uint8 and uint8_refusal(name, config.get("pixels_range") if reads_range else None,
                                                         config.get("fill_method")):
            # A normalised pixels_range or a standard-normal fill on uint8 images: refused, at call time.
            with pytest.raises(ValueError, match=r"cannot describe uint8 images|draws standard-normal values"):
                adapter.call(case, adapter.build(case, seed=seed), images, labels)
            return
        result = adapter.call(case, adapter.build(case, seed=seed), images, labels)
        # The call is its two halves, drawn and applied by a twin with the same seed.
        halves = adapter.run(case, adapter.build(case, seed=seed), images, labels)
        assert result.dtype == dtype and result.images.shape == array.shape
        assert bits_equal(result.images, halves.images), "the call and its two halves disagree"
        assert bits_equal(adapter.numpy(images), before), "the input was modified"
        if mixing:
            assert bits_equal(adapter.numpy(labels), labels_before), "the labels were modified"
            assert result.soft.shape == (array.shape[0], CLASSES)
            assert result.soft_dtype == ("float64" if labels_array.dtype == np.float64 else "float32")
            np.testing.assert_allclose(result.soft.sum(axis=1), np.ones(array.shape[0]), rtol=0, atol=1e-5)
            assert (result.soft >= 0).all()
            np.testing.assert_array_equal(result.soft, halves.soft)

        selected = halves.selected.reshape(-1).astype(bool)
        flat_in, flat_out = before.reshape(-1, *array.shape[-3:]), result.images.reshape(-1, *array.shape[-3:])
        assert selected.shape == (flat_in.shape[0],)
        if config.get("return_labels") and not mixing:
            assert result.flags.dtype == np.int64 and result.flags.shape == array.shape[:-3]
            # Non-zero exactly where selected: a strategy may say which kind it applied (CutPaste's
            # 3-way labels: 1 rectangle, 2 scar).
            np.testing.assert_array_equal(result.flags.reshape(-1) > 0, selected)
            assert (result.flags >= 0).all()
            if not config.get("three_way_labels"):
                np.testing.assert_array_equal(result.flags.reshape(-1), selected.astype(np.int64))
        expected = smoothed(labels_array, config["label_smoothing"]) if mixing else None
        for b in np.flatnonzero(~selected):
            assert bits_equal(flat_out[b], flat_in[b]), "an unselected image changed"
            if mixing:
                np.testing.assert_allclose(result.soft[b], expected[b], rtol=0, atol=1e-6)

    check()


# --------------------------------------------------------------------------------------------
# Invalid values always raise the spec's error, naming the transform and the parameter.
# --------------------------------------------------------------------------------------------

SPEC_ERRORS = spec_errors()


def test_every_parameter_refuses_some_bad_value() -> None:
    for name in NAMES:
        refused = {row[1] for row in SPEC_ERRORS if row[0] == name}
        assert refused == set(SPECS[name].param_names), f"{name}: {set(SPECS[name].param_names) - refused}"


@pytest.mark.parametrize(("framework", "name"), PAIRS)
def test_invalid_values_raise_the_spec_error(framework: str, name: str) -> None:
    """Every value the framework-free spec refuses is refused by the class with the same error."""
    cls = registry.implementation(name, framework)
    rows = [row for row in SPEC_ERRORS if row[0] == name]
    assert len(rows) > 100
    for _, param, value, error_type, message in rows:
        with pytest.raises((ValueError, TypeError)) as info:
            cls(**{param: value})
        assert type(info.value) is error_type and str(info.value) == message, (param, value)
        assert message.startswith(f"{name}: {param} "), message
        assert "got " in message, f"the message does not say what it received: {message}"


def test_message_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, None] = {}
    for *_, error_type, message in SPEC_ERRORS:
        seen.setdefault(f"{error_type.__name__:10s} {message}", None)
    with capsys.disabled():
        print(f"\n{len(seen)} distinct validation messages:")
        for line in seen:
            print("  " + line)
    assert len(seen) > 50
