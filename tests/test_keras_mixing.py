"""Keras mixing layers: pixel accounting, label weights, partners, Beta sampling, labels conventions, errors."""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import keras
import numpy as np
import pytest
import scipy.stats
from keras_helpers import changed_pixels, make_images, np_, params_np, reference_box_mask, to_tensor

from maskmix.keras import RandomCutMix, RandomCutThumbnail, RandomMixup, _sampling, random_cutmix, random_mixup
from maskmix.keras._mixing import partners

SIZE = (12, 10)
K = 5


def batch(b: int = 16, dtype: str = "float32", channels_first: bool = False, seed: int = 0):
    shape = (b, 3, *SIZE) if channels_first else (b, *SIZE, 3)
    x = to_tensor(make_images(shape, dtype, seed=seed), dtype)
    y = np.arange(b) % K
    return x, y


def one_hot(y, k=K):
    return np.eye(k, dtype=np.float32)[y]


def run(layer, x, y):
    """Draw the parameters, then mix images and labels with them (what ``call`` does)."""
    t = layer.get_random_transformation(x)
    out = layer.transform_images(x, t)
    soft = layer.transform_labels(y, t, batch_size=x.shape[0])
    return np_(out), np_(soft), params_np(t)


# --------------------------------------------------------------------------------------------
# CutMix.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"patch_area": (0.1, 0.4), "patch_aspect_ratio": (0.5, 2.0)}, {"alpha": 0.3}])
def test_cutmix_pixels_and_labels(kwargs, channels_first):
    x, y = batch(33, channels_first=channels_first)
    layer = RandomCutMix(num_classes=K, seed=1, data_format="channels_first" if channels_first else None, **kwargs)
    out, soft, p = run(layer, x, y)
    xs = np_(x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], SIZE)
    changed = changed_pixels(xs, out, channels_first)
    assert not (changed & ~box).any()  # nothing outside the box changes
    partner = p["partner"]
    assert (partner != np.arange(33)).all()
    expected = xs.copy()
    for b in range(33):
        if channels_first:
            expected[b][:, box[b]] = xs[partner[b]][:, box[b]]
        else:
            expected[b][box[b]] = xs[partner[b]][box[b]]
    np.testing.assert_array_equal(out, expected)
    f = box.sum((1, 2)) / (SIZE[0] * SIZE[1])
    np.testing.assert_allclose(p["partner_weight"], f, rtol=1e-6)
    y1 = one_hot(y)
    np.testing.assert_allclose(soft, (1 - f)[:, None] * y1 + f[:, None] * y1[partner], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    if "patch_area" in kwargs:
        assert (p["top"] + p["height"] <= SIZE[0]).all() and (p["left"] + p["width"] <= SIZE[1]).all()


def test_cutmix_default_box_area_is_one_minus_lambda():
    x, _ = batch(400)
    layer = RandomCutMix(num_classes=K, seed=2)
    p = params_np(layer.get_random_transformation(x))
    side = np.sqrt(1 - p["lam"])
    full_h, full_w = np.round(side * SIZE[0]), np.round(side * SIZE[1])
    assert (p["height"] <= full_h).all() and (p["width"] <= full_w).all()
    inside = (p["height"] == full_h) & (p["width"] == full_w)
    assert inside.mean() > 0.05  # not clipped: the exact box of area ~ 1 - lam
    assert (p["partner_weight"] < 1 - p["lam"] + 0.2).all()


def test_functional_forms():
    x, y = batch(6)
    out, soft = random_cutmix(x, y, num_classes=K, seed=3)
    assert tuple(out.shape) == tuple(x.shape) and tuple(soft.shape) == (6, K)
    out, soft = random_mixup(x, y, num_classes=K, alpha=0.4, seed=3)
    assert tuple(out.shape) == tuple(x.shape) and soft.dtype == "float32"


# --------------------------------------------------------------------------------------------
# Mixup.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
def test_mixup_blends_images_and_labels(dtype):
    x, y = batch(21, dtype)
    layer = RandomMixup(num_classes=K, alpha=0.7, seed=4)
    out, soft, p = run(layer, x, y)
    xs = np_(x).astype(np.float64)
    lam = p["lam"].astype(np.float64)[:, None, None, None]
    reference = lam * xs + (1 - lam) * xs[p["partner"]]
    if dtype == "uint8":
        assert out.dtype == np.uint8
        assert np.abs(out.astype(np.float64) - reference).max() <= 0.5 + 1e-3
    else:
        np.testing.assert_allclose(out, reference, atol=2e-3 if dtype == "float16" else 1e-6)
    y1 = one_hot(y)
    lam1 = p["lam"][:, None]
    np.testing.assert_allclose(soft, lam1 * y1 + (1 - lam1) * y1[p["partner"]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p["partner_weight"], 1 - p["lam"], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Common mixing behaviour.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_cls", [RandomCutMix, RandomMixup])
def test_selection_pass_through_and_smoothing(layer_cls):
    x, y = batch(20)
    layer = layer_cls(num_classes=K, augmentation_ratio=0.3, label_smoothing=0.1, seed=5)
    out, soft, p = run(layer, x, y)
    assert p["selected"].sum() == 6
    smooth = one_hot(y) * 0.9 + 0.1 / K
    keep = ~p["selected"]
    np.testing.assert_array_equal(out[keep], np_(x)[keep])
    np.testing.assert_allclose(soft[keep], smooth[keep], rtol=1e-6)
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    w = p["partner_weight"][:, None]
    mixed = (1 - w) * smooth + w * smooth[p["partner"]]
    np.testing.assert_allclose(soft[~keep], mixed[~keep], rtol=1e-6)


@pytest.mark.parametrize("layer_cls", [RandomCutMix, RandomMixup])
def test_binary_labels_in_one_column_are_smoothed_towards_one_half(layer_cls):
    """(B, 1) float labels of a sigmoid model: smoothing 0.2 maps 0/1 to 0.1/0.9, as Keras' binary
    losses do, not 0.2/1.0."""
    x, _ = batch(6)
    y = np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]], "float32")
    _, plain = layer_cls(label_smoothing=0.2, augmentation_ratio=0.0, seed=1)((x, y))
    np.testing.assert_allclose(np_(plain), np.where(y > 0.5, 0.9, 0.1), rtol=1e-6)
    _, mixed = layer_cls(label_smoothing=0.2, seed=1)((x, y))
    assert np_(mixed).shape == (6, 1) and ((np_(mixed) >= 0.1 - 1e-6) & (np_(mixed) <= 0.9 + 1e-6)).all()


@pytest.mark.parametrize("layer_cls", [RandomCutMix, RandomMixup])
def test_call_matches_the_two_halves_and_structures(layer_cls):
    x, y = batch(7)
    out, soft = layer_cls(num_classes=K, seed=6)((x, y))
    out2, soft2, _ = run(layer_cls(num_classes=K, seed=6), x, y)
    np.testing.assert_array_equal(np_(out), out2)
    np.testing.assert_array_equal(np_(soft), soft2)
    # Extra items (tensors: Keras rejects structures mixing tensors and Python values) come back as given.
    extra = np.arange(7)
    d = layer_cls(seed=6)({"images": x, "labels": one_hot(y), "extra": extra})
    assert set(d) == {"images", "labels", "extra"}
    np.testing.assert_array_equal(np_(d["extra"]), extra)
    np.testing.assert_array_equal(np_(d["images"]), out2)
    lst = layer_cls(num_classes=K, seed=6)([x, y, extra])
    assert isinstance(lst, list) and len(lst) == 3
    soft64 = layer_cls(seed=6)((x, one_hot(y).astype(np.float64)))[1]
    assert soft64.dtype == "float64"
    single = layer_cls(num_classes=K, seed=6)((x[:1], y[:1]))
    np.testing.assert_array_equal(np_(single[0]), np_(x[:1]))
    np.testing.assert_array_equal(np_(single[1]), one_hot(y[:1]))
    empty = layer_cls(num_classes=K, seed=6)((x[:0], y[:0]))
    assert tuple(empty[0].shape) == (0, *SIZE, 3) and tuple(empty[1].shape) == (0, K)
    off = layer_cls(num_classes=K, seed=6)((x, y), training=False)
    np.testing.assert_array_equal(np_(off[0]), np_(x))
    np.testing.assert_array_equal(np_(off[1]), one_hot(y))


def test_partners_are_uniform_over_the_others():
    ops = keras.src.backend
    for b in (2, 3, 5):
        seen = np.stack([np_(partners(ops, b, seed)) for seed in range(150)])
        assert (seen != np.arange(b)).all()
        counts = np.stack([(seen == j).sum(0) for j in range(b)])  # (partner, image)
        expected = 150 / (b - 1)
        off_diagonal = counts[~np.eye(b, dtype=bool)]
        assert np.abs(off_diagonal - expected).max() < 0.3 * expected + 10
    np.testing.assert_array_equal(np_(partners(ops, 1, 0)), [0])


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_beta_sampler_statistics(alpha):
    ops = keras.src.backend
    samples = np_(_sampling.beta(ops, alpha, (4000,), keras.random.SeedGenerator(int(alpha * 10))))
    assert np.isfinite(samples).all() and samples.min() >= 0.0 and samples.max() <= 1.0
    assert scipy.stats.kstest(samples, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3


# --------------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "kwargs", "exc", "message"),
    [
        (np.arange(4), {}, ValueError, "RandomCutMix: num_classes is required when labels are class indices"),
        (np.arange(3), {"num_classes": K}, ValueError, "RandomCutMix: labels have batch size 3 but the images have 4"),
        (np.array([0, 1, 7, -1]), {"num_classes": K}, ValueError,
         r"RandomCutMix: class indices must lie in \[0, 5\); got \[7, -1\]"),
        (np.zeros((4, 1), "int32"), {"num_classes": K}, ValueError, r"class-index labels must have shape \(B,\)"),
        (np.zeros((4,), "float32"), {}, ValueError, r"one-hot/soft labels must have shape \(B, K\)"),
        (np.zeros((4, 3), "float32"), {"num_classes": K}, ValueError, "labels have 3 classes but num_classes is 5"),
        (np.zeros((4,), bool), {"num_classes": K}, TypeError, "labels must be integer class indices"),
    ],
)
def test_label_errors(labels, kwargs, exc, message):
    x, _ = batch(4)
    with pytest.raises(exc, match=message):
        RandomCutMix(seed=0, **kwargs)((x, labels))


def test_input_errors():
    x, y = batch(4)
    with pytest.raises(ValueError, match=r"RandomMixup: images must be a batch \(B, H, W, C\) of rank 4"):
        RandomMixup(num_classes=K)((x[0], y))
    with pytest.raises(TypeError, match="expected \\(images, labels\\)"):
        RandomMixup(num_classes=K)(x)
    with pytest.raises(ValueError, match="got a dict with keys"):
        RandomMixup(num_classes=K)({"x": x, "y": y})
    dtypes = "float16, bfloat16, float32, float64 or uint8"
    with pytest.raises(TypeError, match=f"images must have dtype {dtypes}; got int32"):
        RandomMixup(num_classes=K)((keras.ops.cast(x, "int32"), y))


@pytest.mark.parametrize("build", [lambda: RandomCutMix(seed=3), lambda: RandomMixup(seed=3),
                                   lambda: RandomCutThumbnail(mix_images=True, thumbnail_area=(0.1, 0.6), seed=3)],
                         ids=["cutmix", "mixup", "thumbnail"])
def test_float64_labels_weigh_exactly_the_partner_fraction(build):
    """Float64 labels get the weight to the last bit: a box's pixel count over H*W (CutMix, the
    mixed thumbnail), 1 - lambda (Mixup); a float32 weight would be off by ~1e-8."""
    x, _ = batch(32)
    y = np.eye(32)  # float64 one-hot, one class per image: a row's partner entry is its weight
    t = (layer := build()).get_random_transformation(x)
    soft = np_(layer.transform_labels(y, t, batch_size=32))
    p = params_np(t)
    assert soft.dtype == np.float64
    weight = soft[np.arange(32), p["partner"]]
    if not isinstance(layer, RandomMixup):
        expected = (p["height"] * p["width"]).astype(np.float64) / (SIZE[0] * SIZE[1])
    else:
        expected = 1.0 - p["lam"].astype(np.float64)
    np.testing.assert_array_equal(weight, expected)
