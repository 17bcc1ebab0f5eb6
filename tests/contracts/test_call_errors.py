"""Bad and unusual call-time input (design §Conventions, "Errors"), written once over the registry
and run on each framework through its adapter (``adapters.py``).

Every strategy in the configuration of its registry ``example`` (and the mixed Cut-Thumbnail):
unsupported image dtypes, images without a channel, row or column, labels of the wrong length,
dtype or rank and class indices out of range (each with the transform's exact message), labels
without ``num_classes``, soft labels of every floating dtype, NaN soft labels, NaN/inf pixels
(they propagate inside their image and never leak into another one, in every float dtype and, for
Keras, both layouts), uint8 results equal to the float results rounded and saturated, gradients.
What only one framework has (ranks and layouts in its own words, PIL images, samples, memory
layouts, ``tf.function``, ``training=False``...) is in ``test_bad_input.py`` and
``test_keras_bad_input.py``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import numpy as np
import pytest
from adapters import ADAPTERS, Adapter, make_images
from registry_cases import NUM_CLASSES, Case, example_cases

from maskmix import registry

CASES: dict[str, dict[str, Case]] = {framework: example_cases(framework) for framework in ADAPTERS}


def pairs(*, mixing: bool | None = None) -> list:
    """``(framework, case name)`` parameters, as test ids ``torch-RandomCutout``."""
    return [pytest.param(framework, name, id=f"{framework}-{name}")
            for framework, cases in CASES.items() for name, case in cases.items()
            if mixing is None or case.mixes == mixing]


PAIRS = pairs()
MIXING = pairs(mixing=True)
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
IMAGE_DTYPES_TEXT = "float16, bfloat16, float32, float64 or uint8"


def setup(framework: str, name: str) -> tuple[Adapter, Case]:
    return ADAPTERS[framework], CASES[framework][name]


def raises(adapter: Adapter, error: type, message: str, function, *args) -> None:
    """``function(*args)`` raises exactly ``error`` with exactly the transform's ``message``."""
    with pytest.raises((TypeError, ValueError)) as info:
        function(*args)
    assert type(info.value) is error, info.value
    assert adapter.message(info.value) == message


# --------------------------------------------------------------------------------------------
# Images.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("framework", "name", "dtype"), [
    pytest.param(framework, name, dtype, id=f"{framework}-{name}-{dtype}")
    for framework, cases in CASES.items() for name in cases for dtype in ADAPTERS[framework].bad_dtypes
])
def test_unsupported_dtypes_raise_type_error(framework: str, name: str, dtype: str) -> None:
    adapter, case = setup(framework, name)
    message = f"{case.spec.name}: images must have dtype {IMAGE_DTYPES_TEXT}; got {adapter.dtype_text(dtype)}"
    raises(adapter, TypeError, message, adapter.call, case, adapter.build(case), adapter.filled((4, 3, 8, 8), dtype))


@pytest.mark.parametrize(("framework", "layout", "name"), [
    pytest.param(framework, layout, name, id=f"{adapter.layout}-{name}")
    for framework, cases in CASES.items() for layout, adapter in enumerate(ADAPTERS[framework].layouts())
    for name in cases
])
@pytest.mark.parametrize("shape", [(4, 0, 8, 8), (4, 3, 0, 8), (4, 3, 8, 0)], ids=["C0", "H0", "W0"])
def test_images_without_pixels_raise_value_error(framework: str, layout: int, name: str,
                                                 shape: tuple[int, ...]) -> None:
    """An empty batch passes through, but an image with no channel, row or column is a mistake
    (the shape as given, in each layout)."""
    adapter, case = ADAPTERS[framework].layouts()[layout], CASES[framework][name]
    message = (f"{case.spec.name}: images must have at least one channel, row and column (C, H, W >= 1); "
               f"got shape {adapter.shape_text(shape)}")
    raises(adapter, ValueError, message, adapter.call, case, adapter.build(case),
           adapter.images(np.zeros(shape, np.float32), "float32"))


# --------------------------------------------------------------------------------------------
# Labels (every mixing transform).
# --------------------------------------------------------------------------------------------

#: ``(labels, error, message)`` for a batch of 4 images and ``num_classes=3``; ``{dtype}`` is the
#: labels' dtype as the framework prints it.
LABEL_ERRORS = [
    (np.array([0, 1, 2]), ValueError, "labels have batch size 3 but the images have 4"),
    (np.full((5, 3), 1 / 3, np.float32), ValueError, "labels have batch size 5 but the images have 4"),
    (np.array([0, 1, 2, 3]), ValueError, "class indices must lie in [0, 3); got [3]"),
    (np.array([0, -2, 2, 1], np.int8), ValueError, "class indices must lie in [0, 3); got [-2]"),
    (np.array([0, 200, 2, 9], np.uint8), ValueError, "class indices must lie in [0, 3); got [200, 9]"),
    (np.array([0, 1, 2, 2**40]), ValueError, "class indices must lie in [0, 3); got [1099511627776]"),
    (np.ones(4, bool), TypeError, "labels must be integer class indices or floating soft labels; got {dtype}"),
    (np.ones((4, 3), np.complex64), TypeError,
     "labels must be integer class indices or floating soft labels; got {dtype}"),
    (np.array(1), ValueError, "class-index labels must have shape (B,); got shape ()"),
    (np.zeros((4, 3, 1), np.int64), ValueError, "class-index labels must have shape (B,); got shape (4, 3, 1)"),
    (np.ones(4, np.float32), ValueError, "one-hot/soft labels must have shape (B, K); got shape (4,)"),
    (np.ones((4, 3, 1), np.float32), ValueError, "one-hot/soft labels must have shape (B, K); got shape (4, 3, 1)"),
    (np.ones((4, 5), np.float32), ValueError, "labels have 5 classes but num_classes is 3"),
]


@pytest.mark.parametrize(("framework", "name"), MIXING)
@pytest.mark.parametrize(("labels", "error", "message"), LABEL_ERRORS,
                         ids=[f"{i}-{m[:24]}" for i, (_, _, m) in enumerate(LABEL_ERRORS)])
def test_bad_labels(framework: str, name: str, labels: np.ndarray, error: type, message: str) -> None:
    adapter, case = setup(framework, name)
    expected = f"{case.spec.name}: " + message.format(dtype=adapter.dtype_text(labels.dtype.name))
    x = adapter.images(make_images((4, 3, 6, 7), "float32"), "float32")
    raises(adapter, error, expected, adapter.call, case, adapter.build(case), x, adapter.labels(labels))


@pytest.mark.parametrize(("framework", "name"), MIXING)
def test_labels_without_num_classes_and_soft_labels_of_every_float_dtype(framework: str, name: str) -> None:
    adapter, case = setup(framework, name)
    x = adapter.images(make_images((4, 3, 6, 7), "float32"), "float32")
    raises(adapter, ValueError, f"{case.spec.name}: num_classes is required when labels are class indices",
           adapter.call, case, adapter.build(case, num_classes=None), x, adapter.labels(np.arange(4) % NUM_CLASSES))
    # Soft labels of any floating dtype are accepted: float32 out (float64 for float64), rows sum to 1.
    for dtype, out_dtype in [("float16", "float32"), ("bfloat16", "float32"), ("float32", "float32"),
                             ("float64", "float64")]:
        soft = adapter.labels(np.full((4, 3), 1 / 3, np.float32), dtype)
        result = adapter.call(case, adapter.build(case, seed=0, num_classes=None), x, soft)
        assert result.soft_dtype == out_dtype and result.soft.shape == (4, 3)
        np.testing.assert_allclose(result.soft.sum(1), np.ones(4), rtol=0, atol=1e-2)
    # NaN soft labels propagate, as NaN pixels do (the loss shows them).
    nan = adapter.labels(np.full((4, 3), np.nan, np.float32))
    assert np.isnan(adapter.call(case, adapter.build(case, seed=0, num_classes=None), x, nan).soft).all()
    # Soft labels outside [0, 1] are not probabilities: a column of class indices (a dataset's
    # (B, 1) labels, which would be averaged as numbers), logits, a NaN next to a bad value.
    squeeze = "labels.squeeze(1)" if framework == "torch" else "keras.ops.squeeze(labels, -1)"
    column_hint = (" (labels shaped (B, 1) that hold class indices: pass them shaped (B,), e.g. "
                   f"{squeeze}, with num_classes)")
    for labels, message in [
        (np.array([[3], [1], [2], [0]], np.uint8), "got values from 0 to 3" + column_hint),
        (np.array([[3], [1], [2], [0]], np.float32), "got values from 0 to 3" + column_hint),
        (np.array([[2.5, -1.0, 0.0]] * 4, np.float32), "got values from -1 to 2.5"),
        (np.array([[np.nan, 0.5, 1.5]] * 4, np.float32), "got values from 0.5 to 1.5"),
    ]:
        raises(adapter, ValueError, f"{case.spec.name}: one-hot/soft labels must lie in [0, 1]; {message}",
               adapter.call, case, adapter.build(case, num_classes=None), x, adapter.labels(labels, labels.dtype.name))
    # A column of binary labels (0 or 1, or probabilities) is one soft column: mixed as it is.
    binary = adapter.call(case, adapter.build(case, seed=0, num_classes=None), x,
                          adapter.labels(np.array([[1], [0], [1], [0]], np.int64), "int64"))
    assert binary.soft.shape == (4, 1) and ((binary.soft >= 0) & (binary.soft <= 1)).all()


# --------------------------------------------------------------------------------------------
# NaN and inf pixels, uint8 saturation, gradients.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("framework", "layout", "name", "dtype"), [
    pytest.param(framework, layout, name, dtype, id=f"{adapter.layout}-{name}-{dtype}")
    for framework, cases in CASES.items() for layout, adapter in enumerate(ADAPTERS[framework].layouts())
    for name in cases for dtype in (FLOAT_DTYPES if layout == 0 else ("float32",))
])
def test_nan_and_inf_pixels_propagate_and_never_leak_into_other_images(framework: str, layout: int, name: str,
                                                                       dtype: str) -> None:
    """Image 0 is all NaN, image 1 all +inf, image 2 has one NaN and one -inf pixel; the rest are
    finite. No crash; the finite images stay finite unless they took pixels from a non-finite
    partner (mixing); image 2's two non-finite pixels never multiply, except through the
    resampling filters of CutBlur and Cut-Thumbnail or a non-finite partner."""
    adapter, case = ADAPTERS[framework].layouts()[layout], CASES[framework][name]
    xs = make_images((6, 3, 10, 12), dtype, seed=3)
    xs[0] = np.nan
    xs[1] = np.inf
    xs[2, 1, 4, 5] = np.nan
    xs[2, 0, 0, 0] = -np.inf
    result = adapter.run(case, adapter.build(case, seed=0), adapter.images(xs, dtype))
    assert result.images.shape == xs.shape and result.dtype == dtype
    partner = result.params.get("partner") if case.mixes else None
    for b in range(3, 6):
        if partner is not None and int(partner[b]) < 3:
            continue  # mixed with a non-finite image: NaN/inf may come in, as they should
        assert np.isfinite(result.images[b]).all(), f"image {b} got a non-finite value from elsewhere"
    # Image 2's NaN and -inf pixels are either still there or replaced by finite values of the
    # region (never spread around), except by the resampling filters, which spread them over their
    # support, and by a non-finite partner.
    if not name.startswith(("RandomCutBlur", "RandomCutThumbnail")) and not (partner is not None and partner[2] < 2):
        assert (~np.isfinite(result.images[2])).sum() <= 2


@pytest.mark.parametrize(("framework", "name"), PAIRS)
def test_uint8_results_are_the_float_results_rounded_and_saturated(framework: str, name: str) -> None:
    """uint8 images through the same draws as their float32 values: the uint8 output is the float
    output rounded and saturated to [0, 255] (within one level: the float path is not rounded
    between steps), never wrapped around (bicubic overshoot next to 0/255 edges included)."""
    adapter, case = setup(framework, name)
    xs = make_images((6, 2, 12, 12), "uint8", seed=7)
    xs[:, :, :6] = 255
    xs[:, :, :, :4] = 0
    options = {"pixels_range": (0.0, 255.0)}
    if case.spec.name in ("RandomCutThumbnail", "RandomCutBlur"):
        options["resize_method"] = "bicubic"

    def run(array, dtype):
        return adapter.call(case, adapter.build(case, seed=11, **options), adapter.images(array, dtype))

    out = run(xs, "uint8")
    reference = np.clip(np.round(run(xs.astype(np.float32), "float32").images), 0, 255)
    assert out.dtype == "uint8"
    assert np.abs(out.images.astype(np.float64) - reference).max() <= 1


@pytest.mark.parametrize(("framework", "name"), PAIRS)
def test_gradients_flow_through_the_transform(framework: str, name: str) -> None:
    """The output depends differentiably on the input: finite gradients, and a pixel that comes
    back unchanged through ``where``/``gather`` gets at least its own gradient."""
    adapter, case = setup(framework, name)
    xs = make_images((4, 3, 9, 11), "float32", seed=4)
    out, grad = adapter.gradient(case, adapter.build(case, seed=0, augmentation_ratio=0.5), xs)
    assert grad.shape == xs.shape and np.isfinite(grad).all()
    unchanged = (out == xs).all(axis=1)
    assert unchanged.any() and (grad.sum(axis=1)[unchanged] > 0).all()


# --------------------------------------------------------------------------------------------
# Construction in the peers' words (design §Conventions, "Errors").
# --------------------------------------------------------------------------------------------

IMPLEMENTED = [pytest.param(framework, spec.name, id=f"{framework}-{spec.name}")
               for framework in ADAPTERS for spec in registry.specs(framework)]


@pytest.mark.parametrize(("framework", "name"), IMPLEMENTED)
def test_strategy_parameters_are_keyword_only(framework: str, name: str) -> None:
    # RandomErasing(0.5) reads as torchvision's / timm's probability; it must not become an area.
    with pytest.raises(TypeError, match="positional argument"):
        registry.implementation(name, framework)(0.5)


@pytest.mark.parametrize(("framework", "name"), IMPLEMENTED)
@pytest.mark.parametrize("keyword", ["p", "probability", "prob"])
def test_the_peers_probability_keywords_point_to_augmentation_ratio(framework: str, name: str, keyword: str) -> None:
    with pytest.raises(TypeError, match=f"^{name}: unexpected parameter {keyword}; .* is augmentation_ratio$"):
        registry.implementation(name, framework)(**{keyword: 0.5})
