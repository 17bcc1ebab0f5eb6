"""The conventions both frameworks keep (design §Conventions), written once over the registry
and run on each framework through its adapter (``adapters.py``).

Every named configuration (``spec.variants``) of every strategy each framework implements:
fraction control (exact counts, Bernoulli counts, one image with probability ``ratio``) with
bit-identical pass-through of images (NaN and values outside the range included, every float
dtype) and of label rows, every dtype, empty batches and tiny images, seeding. What only one
framework has (tv_tensors, ``torch.compile``, layouts, XLA, tf.data, serialisation, backends) is
in ``test_torch_conventions.py`` and ``test_keras_conventions.py``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math

import numpy as np
import pytest
from adapters import ADAPTERS, DTYPES, bits_differ, make_images, one_hot
from registry_cases import NUM_CLASSES, Case, variant_cases

CASES: dict[str, dict[str, Case]] = {framework: variant_cases(framework) for framework in ADAPTERS}
#: ``(framework, variant)`` pairs, as test ids ``torch-cutout``.
PAIRS = [pytest.param(framework, name, id=f"{framework}-{name}")
         for framework, cases in CASES.items() for name in cases]
#: One variant per strategy that maps images to images (its first), per framework.
FIRSTS = [pytest.param(framework, name, id=f"{framework}-{name}")
          for framework, cases in CASES.items() for name, case in cases.items()
          if not case.mixes and name == next(iter(case.spec.variants))]
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def setup(framework: str, name: str):
    return ADAPTERS[framework], CASES[framework][name]


@pytest.mark.parametrize(("framework", "name"), PAIRS)
@pytest.mark.parametrize(("ratio", "bernoulli", "batch", "count"), [
    (0.3, False, 10, 3), (0.5, False, 7, 4), (0.0, False, 5, 0), (1.0, False, 6, 6), (1.0, True, 3, 3),
    (0.05, False, 9, 0), (0.5, False, 1, 1),
])
def test_exact_count_and_bit_identical_pass_through(framework, name, ratio, bernoulli, batch, count):
    adapter, case = setup(framework, name)
    xs = make_images((batch, 3, 12, 12), "float32", seed=1)
    xs[:, 0, 0, 0] = np.nan  # NaN survives bit for bit in images passed through,
    xs[:, 1, -1, -1] = 7.5  # and so do values outside pixels_range
    smoothing = {"label_smoothing": 0.1} if case.mixes else {}
    t = adapter.build(case, seed=3, augmentation_ratio=ratio, bernoulli_mix=bernoulli, **smoothing)
    result = adapter.run(case, t, adapter.images(xs, "float32"))
    assert result.images.shape == xs.shape and result.dtype == "float32"
    selected = result.selected.astype(bool)
    if case.mixes and batch < 2:
        count = 0  # no partner
    assert selected.sum() == count
    changed = bits_differ(xs, result.images)
    assert not changed[~selected].any(), "an unselected image changed"
    if not case.mixes:  # every selected image changes
        np.testing.assert_array_equal(changed, selected)
    else:  # a mixed image may keep its pixels (an empty box); the label rows of the others are kept
        assert changed.any() == selected.any()
        np.testing.assert_allclose(result.soft[~selected], one_hot(batch, 0.1)[~selected], rtol=0, atol=1e-6)
        np.testing.assert_allclose(result.soft.sum(1), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("framework", "name"), PAIRS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_unselected_images_are_bit_identical_in_every_float_dtype(framework, name, dtype):
    adapter, case = setup(framework, name)
    xs = make_images((6, 2, 9, 10), dtype, seed=4)
    xs[:, 0, 0, 0] = np.nan
    xs[:, 1, 2, 3] = -1e4
    result = adapter.run(case, adapter.build(case, seed=1, augmentation_ratio=0.5), adapter.images(xs, dtype))
    selected = result.selected.astype(bool)
    # bfloat16 comes back as float32, exactly: compare with the input rounded the same way.
    reference = xs if dtype != "bfloat16" else ADAPTERS[framework]._numpy(adapter.images(xs, dtype))
    assert selected.sum() == 3 and not bits_differ(reference, result.images)[~selected].any()


@pytest.mark.parametrize(("framework", "name"), PAIRS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [3, 1], ids=["rgb", "gray"])
def test_dtypes_and_shapes_are_kept_and_the_input_untouched(framework, name, dtype, channels):
    adapter, case = setup(framework, name)
    xs = make_images((4, channels, 20, 24), dtype)
    x = adapter.images(xs, dtype)
    before = ADAPTERS[framework]._numpy(x).copy()
    result = adapter.call(case, adapter.build(case, seed=0), x)
    assert result.dtype == dtype and result.images.shape == xs.shape
    np.testing.assert_array_equal(ADAPTERS[framework]._numpy(x), before)  # not modified in place
    changed = bits_differ(before, result.images)
    if result.soft is None:
        assert changed.all(), "every image is augmented at ratio 1"
    else:
        assert changed.any() and result.soft.shape == (4, NUM_CLASSES)
        np.testing.assert_allclose(result.soft.sum(1), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("framework", "name"), PAIRS)
def test_finite_float16_images_stay_finite_near_the_dtypes_top(framework, name):
    """Work done in float32 and cast back (bicubic overshoot, CutPaste's colour jitter) wrote
    values past float16's largest (65504) as inf; they saturate there (finite pixels stay finite,
    the range is not clipped). Every configuration, bicubic where the strategy resizes."""
    adapter, case = setup(framework, name)
    xs = np.where(make_images((6, 3, 9, 13), "float32", seed=2) < 0.5, -6e4, 6e4).astype("float32")
    options: dict = {"pixels_range": (-6e4, 6e4)}
    if "resize_method" in case.spec.param_names:
        options["resize_method"] = "bicubic"
    if "color_jitter" in case.spec.param_names:
        options["color_jitter"] = 0.5
    t = adapter.build(case, seed=3, **options)
    for _ in range(8):
        images = adapter.run(case, t, adapter.images(xs, "float16")).images
        assert np.isfinite(images).all()


TINY = [(0, 3, 8, 8), (2, 3, 1, 1), (2, 3, 1, 7), (2, 1, 7, 1), (1, 3, 2, 2), (3, 1, 1)]


@pytest.mark.parametrize(("framework", "name", "shape"), [
    pytest.param(framework, name, shape, id=f"{framework}-{name}-{shape}")
    for framework, cases in CASES.items() for name, case in cases.items() for shape in TINY
    if not (case.mixes and len(shape) != 4)  # a mixing transform needs a batch
])
def test_empty_batches_and_tiny_images(framework, name, shape):
    adapter, case = setup(framework, name)
    xs = make_images(shape, "float32")
    result = adapter.call(case, adapter.build(case, seed=0), adapter.images(xs, "float32"))
    assert result.images.shape == xs.shape
    if shape[-2:] == (1, 1) and case.moves_pixels:
        np.testing.assert_array_equal(result.images, xs)  # a single pixel has nowhere to go
    if result.soft is not None:
        assert result.soft.shape == (shape[0], NUM_CLASSES)
        if shape[0] < 2:  # no partner: images and (smoothed) one-hot rows pass through
            np.testing.assert_array_equal(result.images, xs)
            smoothing = case.config.get("label_smoothing", 0.0)
            np.testing.assert_allclose(result.soft, one_hot(shape[0], smoothing), rtol=0, atol=1e-7)


@pytest.mark.parametrize(("framework", "name"), PAIRS)
def test_same_seed_same_output_different_seed_different(framework, name):
    adapter, case = setup(framework, name)
    x = adapter.images(make_images((6, 3, 32, 32), "float32"), "float32")
    a, b, c = (adapter.call(case, adapter.build(case, seed=seed), x) for seed in (5, 5, 6))
    np.testing.assert_array_equal(a.images, b.images)
    if a.soft is not None:
        np.testing.assert_array_equal(a.soft, b.soft)
    assert not np.array_equal(a.images, c.images)


@pytest.mark.parametrize(("framework", "name"), FIRSTS)
def test_bernoulli_counts_follow_the_binomial(framework, name):
    adapter, case = setup(framework, name)
    t = adapter.build(case, seed=0, augmentation_ratio=0.3, bernoulli_mix=True)
    x = adapter.images(np.zeros((400, 1, 2, 2), np.float32), "float32")
    counts = np.array([r.selected.sum() for r in adapter.runs(case, t, x, 50)], np.float64)
    # Binomial(400, 0.3): mean 120, sd 9.17; the mean of 50 draws has sd 1.3, the sd estimate ~0.92.
    assert abs(counts.mean() - 120) < 5.2
    assert abs(counts.std(ddof=1) - math.sqrt(400 * 0.3 * 0.7)) < 3.7
    assert len(set(counts.tolist())) > 10  # unlike the exact mode, the count varies from call to call


@pytest.mark.parametrize(("framework", "name"), FIRSTS)
def test_one_image_is_augmented_with_probability_ratio(framework, name):
    """A ``(C, H, W)`` image in a per-sample pipeline: ratio 0.3 augments about 30% of the calls
    (an exact count of one image would be round(0.3) = 0, never), as torchvision's ``p`` does."""
    adapter, case = setup(framework, name)
    xs = make_images((3, 12, 12), "float32")
    x = adapter.images(xs, "float32")
    t = adapter.build(case, seed=0, augmentation_ratio=0.3)
    # Four sd of Binomial(200, 0.3) reject the exact count (0 hits: 9 sd away).
    hits = sum(not np.array_equal(r.images, xs) for r in adapter.calls(case, t, x, 200))
    assert abs(hits - 0.3 * 200) < 4 * math.sqrt(200 * 0.3 * 0.7)
    assert not np.array_equal(adapter.call(case, adapter.build(case, seed=1), x).images, xs)
    np.testing.assert_array_equal(adapter.call(case, adapter.build(case, seed=1, augmentation_ratio=0.0), x).images,
                                  xs)


@pytest.mark.parametrize(("framework", "name"), FIRSTS + [
    pytest.param(framework, name, id=f"{framework}-{name}")
    for framework, cases in CASES.items() for name, case in cases.items()
    if case.mixes and name == next(iter(case.spec.variants))
])
def test_an_assigned_parameter_is_validated_and_used(framework, name):
    # transform.augmentation_ratio = ... is what a user writes between epochs; a value the
    # constructor refuses must not be used as given, and the new value must reach the call.
    adapter, case = setup(framework, name)
    transform = adapter.build(case, seed=0)
    owner = case.spec.name
    for param in case.spec.params:  # every parameter takes its own value back
        setattr(transform, param.name, getattr(transform, param.name))
    with pytest.raises(ValueError, match=rf"^{owner}: augmentation_ratio must be a float in \[0, 1\]; got 2.0$"):
        transform.augmentation_ratio = 2.0
    with pytest.raises(TypeError, match=rf"^{owner}: augmentation_ratio must be a float in \[0, 1\]; got True$"):
        transform.augmentation_ratio = True
    assert transform.augmentation_ratio == 1.0
    transform.augmentation_ratio = 0  # normalised as the constructor normalises it
    assert type(transform.augmentation_ratio) is float
    array = make_images((3, 3, 8, 8), "float32", seed=2)
    result = adapter.call(case, transform, adapter.images(array, "float32"))
    assert not bits_differ(result.images, array).any()
