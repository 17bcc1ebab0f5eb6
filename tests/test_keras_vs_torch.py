"""The Keras layers against the torch transforms: same distributions, same validation messages.

Sampling: for each strategy, the torch transform's ``make_params`` and the Keras layer's
``get_random_transformation`` draw the parameters of a large batch of tiny images with fixed
seeds, and a two-sample Kolmogorov-Smirnov test compares every sampled quantity (areas, sides,
aspect ratios, positions, counts, lambda, label weights). The two sides use different random
generators, so values differ but their distributions must not.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math

import numpy as np
import pytest
import scipy.stats
from keras_helpers import np_

torch = pytest.importorskip("torch")

import maskmix.keras as mk  # noqa: E402
import maskmix.torch as mt  # noqa: E402

N = 3000
SIZE = (24, 20)


def torch_params(cls, **kwargs) -> dict:
    transform = cls(generator=torch.Generator().manual_seed(1), **kwargs)
    params = transform.make_params([torch.zeros(N, 1, *SIZE)])
    return {k: v.numpy() for k, v in params.items() if isinstance(v, torch.Tensor)}


def keras_params(cls, **kwargs) -> dict:
    layer = getattr(mk, cls.__name__)(seed=2, **kwargs)
    params = layer.get_random_transformation(np.zeros((N, *SIZE, 1), "float32"))
    return {k: np_(v) for k, v in params.items()}


def assert_same_distribution(a: np.ndarray, b: np.ndarray, what: str) -> None:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    pvalue = scipy.stats.ks_2samp(a, b).pvalue
    assert pvalue > 1e-3, f"{what}: KS p-value {pvalue:.2e} (torch mean {a.mean():.4f}, keras mean {b.mean():.4f})"


CASES = [
    (mt.RandomCutout, {"patch_area": (0.05, 0.4)}, lambda p: {"side": p["height"], "top": p["top"], "left": p["left"]}),
    (mt.RandomCutout, {"patch_area": 0.3, "allow_partial": True},
     lambda p: {"area": p["height"] * p["width"], "top": p["top"]}),
    (mt.RandomErasing, {"patch_count": (1, 3)},
     lambda p: {"count": p["count"], "h": p["height"][:, 0], "w": p["width"][:, 0],
                "aspect": p["height"][:, 0] / p["width"][:, 0], "top": p["top"][:, 0],
                "area": (p["height"] * p["width"] * p["active"]).sum(1)}),
    (mt.RandomErasing, {"patch_area": (0.3, 0.6), "patch_aspect_ratio": (0.2, 5.0)},
     lambda p: {"h": p["height"][:, 0], "w": p["width"][:, 0]}),
    # Every candidate fits (one drawn): asymmetric ratios tell heights from widths.
    (mt.RandomErasing, {"patch_area": (0.05, 0.2), "patch_aspect_ratio": (1.5, 3.0)},
     lambda p: {"h": p["height"][:, 0], "w": p["width"][:, 0]}),
    (mt.RandomHideAndSeek, {"grid_size": [2, (3, 4), 6], "erased_patches": (0, 8)},
     lambda p: {"rows": p["rows"], "count": p["hidden"].sum((1, 2)),
                "cell": np.argmax(p["hidden"].reshape(N, -1), 1)}),
    (mt.RandomHideAndSeek, {"grid_size": 4, "hide_prob": 0.3}, lambda p: {"count": p["hidden"].sum((1, 2))}),
    (mt.RandomGridMask, {"rotation": 90.0},
     lambda p: {"unit": p["unit"], "masked": p["masked"], "offset": p["offset_y"], "angle": p["angle"]}),
    (mt.RandomCutMix, {"alpha": 0.5},
     lambda p: {"lam": p["lam"], "weight": p["partner_weight"], "top": p["top"]}),
    (mt.RandomCutMix, {"patch_area": (0.1, 0.5), "patch_aspect_ratio": (0.5, 2.0)},
     lambda p: {"weight": p["partner_weight"], "h": p["height"], "w": p["width"]}),
    (mt.RandomMixup, {"alpha": 0.2}, lambda p: {"lam": p["lam"]}),
    (mt.RandomCutPaste, {"scar_prob": 0.5, "hue_jitter": 0.2},
     lambda p: {"scar": p["is_scar"], "length": p["scar_length"], "width": p["scar_width"], "top": p["scar_top"],
                "angle": p["scar_angle"], "cy": p["scar_cy"], "cx": p["scar_cx"], "hue": p["hue"]}),
    (mt.RandomMixup, {"alpha": 2.0}, lambda p: {"lam": p["lam"]}),
    (mt.RandomMixupOrCutMix, {"mixup_alpha": 0.4, "cutmix_alpha": 0.7, "switch_prob": 0.3},
     lambda p: {"cutmix": p["use_cutmix"], "lam": p["lam"], "weight": p["partner_weight"], "h": p["height"],
                "top": p["top"]}),
    (mt.RandomMixupOrCutMix, {"mixup_alpha": 0.0, "cutmix_minmax": (0.2, 0.8)},
     lambda p: {"h": p["height"], "w": p["width"], "top": p["top"], "left": p["left"], "weight": p["partner_weight"]}),
]


@pytest.mark.parametrize(("cls", "kwargs", "quantities"), CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_sampled_quantities_agree(cls, kwargs, quantities):
    t = quantities(torch_params(cls, **kwargs))
    k = quantities(keras_params(cls, **kwargs))
    for name in t:
        assert_same_distribution(t[name], k[name], f"{cls.__name__}.{name}")


def test_partner_law_agrees():
    # The "other" law is one cyclic shift of the batch per call, uniform in 1..B-1: a shift per
    # call on each side, then the two samples of shifts against each other.
    batch, calls = 7, 400
    transform = mt.RandomMixup(num_classes=2, generator=torch.Generator().manual_seed(3))
    layer = mk.RandomMixup(num_classes=2, seed=4)
    shifts: dict[str, list[int]] = {"torch": [], "keras": []}
    for _ in range(calls):
        drawn = {"torch": transform.make_params([torch.zeros(batch, 1, 2, 2)])["partner"].numpy(),
                 "keras": np_(layer.get_random_transformation(np.zeros((batch, 2, 2, 1), "float32"))["partner"])}
        for side, partner in drawn.items():
            shift = (partner - np.arange(batch)) % batch
            assert (shift == shift[0]).all() and shift[0] != 0, (side, partner)
            shifts[side].append(int(shift[0]))
    for side, sample in shifts.items():
        counts = np.bincount(sample, minlength=batch)[1:]
        assert scipy.stats.chisquare(counts).pvalue > 1e-3, (side, counts)
    assert_same_distribution(shifts["torch"], shifts["keras"], "partner shift")


@pytest.mark.parametrize("bernoulli", [False, True])
def test_selection_agrees(bernoulli):
    kwargs = {"augmentation_ratio": 0.3, "bernoulli_mix": bernoulli}
    t = torch_params(mt.RandomCutout, **kwargs)["selected"]
    k = keras_params(mt.RandomCutout, **kwargs)["selected"]
    if not bernoulli:
        assert t.sum() == k.sum() == round(0.3 * N)
    else:
        assert abs(t.mean() - k.mean()) < 0.04
    # Positions are uniform on both sides.
    assert_same_distribution(np.flatnonzero(t), np.flatnonzero(k), "selected positions")


# --------------------------------------------------------------------------------------------
# Validation messages: the same bad argument gives the same exception and message.
# --------------------------------------------------------------------------------------------

INVALID = [
    ("RandomCutout", {"patch_area": 1.5}),
    ("RandomCutout", {"patch_area": (0.5, 0.2)}),
    ("RandomCutout", {"patch_area": (0.1, 0.2, 0.3)}),
    ("RandomCutout", {"patch_area": "big"}),
    ("RandomCutout", {"allow_partial": 1}),
    ("RandomCutout", {"fill_method": "purple"}),
    ("RandomCutout", {"fill_method": ()}),
    ("RandomCutout", {"fill_method": (0.1, math.inf)}),
    ("RandomCutout", {"augmentation_ratio": 1.5}),
    ("RandomCutout", {"augmentation_ratio": True}),
    ("RandomCutout", {"bernoulli_mix": "yes"}),
    ("RandomCutout", {"pixels_range": (1.0, 0.0)}),
    ("RandomCutout", {"pixels_range": (0.0, math.nan)}),
    ("RandomCutout", {"pixels_range": 255}),
    ("RandomCutout", {"patch_aera": 0.1}),
    ("RandomErasing", {"patch_area": (0.0, 0.3)}),
    ("RandomErasing", {"patch_aspect_ratio": (3.0, 0.3)}),
    ("RandomErasing", {"patch_aspect_ratio": -1}),
    ("RandomErasing", {"patch_count": 0}),
    ("RandomErasing", {"patch_count": (1, 2.5)}),
    ("RandomErasing", {"patch_count": (3, 1)}),
    ("RandomHideAndSeek", {"grid_size": 0}),
    ("RandomHideAndSeek", {"grid_size": []}),
    ("RandomHideAndSeek", {"grid_size": [2, "x"]}),
    ("RandomHideAndSeek", {"erased_patches": -1}),
    ("RandomHideAndSeek", {"hide_prob": 1.0}),
    ("RandomGridMask", {"unit_length": 1.5}),
    ("RandomGridMask", {"masked_ratio": 1.0}),
    ("RandomGridMask", {"rotation": 400}),
    ("RandomGridMask", {"rotation": "a lot"}),
    ("RandomCutMix", {"alpha": 0}),
    ("RandomCutMix", {"alpha": math.inf}),
    ("RandomCutMix", {"patch_area": (0.2, 0.1)}),
    ("RandomCutMix", {"num_classes": 0}),
    ("RandomCutMix", {"num_classes": 2.0}),
    ("RandomCutMix", {"label_smoothing": 1.0}),
    ("RandomMixup", {"alpha": -0.5}),
    ("RandomMixup", {"label_smoothing": -0.1}),
    ("RandomMixup", {"unknown": 1, "other": 2}),
    ("RandomMixupOrCutMix", {"mixup_alpha": 0.0, "cutmix_alpha": 0.0}),
    ("RandomMixupOrCutMix", {"cutmix_alpha": 0.0, "cutmix_minmax": (0.2, 0.8)}),
    ("RandomMixupOrCutMix", {"cutmix_minmax": (0.5, 0.5)}),
    ("RandomMixupOrCutMix", {"switch_prob": -0.1}),
]


@pytest.mark.parametrize(("name", "kwargs"), INVALID, ids=[f"{n}-{next(iter(k))}" for n, k in INVALID])
def test_validation_messages_are_identical(name, kwargs):
    with pytest.raises((TypeError, ValueError)) as from_torch:
        getattr(mt, name)(**kwargs)
    with pytest.raises((TypeError, ValueError)) as from_keras:
        getattr(mk, name)(**kwargs)
    assert type(from_keras.value) is type(from_torch.value)
    assert str(from_keras.value) == str(from_torch.value)


CALL_ERRORS = [
    ("RandomCutout", {"fill_method": (0.1, 0.2)}, "images"),
    ("RandomCutMix", {}, np.arange(4)),
    ("RandomCutMix", {"num_classes": 5}, np.arange(3)),
    ("RandomCutMix", {"num_classes": 3}, np.array([0, 1, 7, -1])),
    ("RandomMixup", {"num_classes": 3}, np.zeros((4, 2, 1), "int64")),
    ("RandomMixup", {}, np.zeros((4,), "float32")),
    ("RandomMixup", {"num_classes": 3}, np.zeros((4, 5), "float32")),
    ("RandomMixup", {"num_classes": 3}, np.zeros((4,), bool)),
]


@pytest.mark.parametrize(("name", "kwargs", "labels"), CALL_ERRORS)
def test_call_time_messages_match(name, kwargs, labels):
    """Checks made at call time on both sides raise the same type with the torch message inside.

    (Keras adds its own "Exception encountered when calling ..." context around the message;
    dtypes are spelled by each framework: ``torch.bool`` on one side, ``bool`` on the other.)
    """
    images = np.full((4, 5, 6, 3), 0.5, "float32")
    torch_images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    with pytest.raises((TypeError, ValueError)) as from_torch:
        transform = getattr(mt, name)(**kwargs)
        transform(torch_images) if isinstance(labels, str) else transform(torch_images, torch.from_numpy(labels))
    with pytest.raises((TypeError, ValueError)) as from_keras:
        layer = getattr(mk, name)(**kwargs)
        layer(images) if isinstance(labels, str) else layer((images, labels))
    assert type(from_keras.value) is type(from_torch.value)
    assert str(from_torch.value).replace("torch.", "") in str(from_keras.value)


# --------------------------------------------------------------------------------------------
# Pixels: the fraction of each image that changes, every strategy, same distribution.
# --------------------------------------------------------------------------------------------

FRACTION_N = 1500
FRACTION_CASES = [
    ("RandomCutout", {}),
    ("RandomCutout", {"patch_area": (0.05, 0.5), "allow_partial": True}),
    ("RandomErasing", {"patch_count": (1, 3)}),
    ("RandomHideAndSeek", {"grid_size": [2, (3, 4)], "erased_patches": (0, 6)}),
    ("RandomHideAndSeek", {"grid_size": 5, "hide_prob": 0.4}),
    ("RandomGridMask", {}),
    ("RandomGridMask", {"rotation": 360.0, "masked_ratio": 0.3}),
    ("RandomCutMix", {"num_classes": 3}),
    ("RandomCutMix", {"num_classes": 3, "patch_area": (0.1, 0.5), "patch_aspect_ratio": (0.5, 2.0)}),
    ("RandomMixup", {"num_classes": 3, "alpha": 0.3}),
    ("RandomMixupOrCutMix", {"num_classes": 3, "mixup_alpha": 0.3, "cutmix_minmax": (0.2, 0.8)}),
    ("RandomCutBlur", {"blur_factor": (0.1, 0.5)}),
    ("RandomCutThumbnail", {"thumbnail_area": (0.05, 0.4)}),
    ("RandomCutThumbnail", {"thumbnail_area": 0.25, "mix_images": True, "num_classes": 3}),
    ("RandomCutPaste", {"patch_area": (0.02, 0.3)}),
    ("RandomCutPaste", {"scar_prob": 1.0, "scar_length": (4, 20), "color_jitter": 0.1, "hue_jitter": 0.1}),
    ("RandomCutSwap", {"patch_area": (0.05, 0.4)}),
]


def changed_fraction(before: np.ndarray, after: np.ndarray, channel_axis: int) -> np.ndarray:
    """Per image, the fraction of pixels where any channel changed."""
    changed = (before != after).any(axis=channel_axis)
    return changed.reshape(changed.shape[0], -1).mean(axis=1)


@pytest.mark.parametrize(("name", "kwargs"), FRACTION_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(FRACTION_CASES)])
def test_changed_pixel_fractions_agree(name, kwargs):
    """The masked (changed) fraction of each image, torch vs Keras, two-sample KS, and for Mixup
    the mean absolute change: same distribution. Random images (never equal to a fill or to
    another image's pixel) make "changed" the region each strategy draws."""
    from keras_helpers import make_images

    x = make_images((FRACTION_N, *SIZE, 2), seed=5)  # (B, H, W, C)
    y = np.arange(FRACTION_N) % 3
    mixing = "num_classes" in kwargs
    layer = getattr(mk, name)(seed=4, **kwargs)
    keras_out = np_(layer((x, y))[0] if mixing else layer(x))
    transform = getattr(mt, name)(generator=torch.Generator().manual_seed(3), **kwargs)
    x_t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    torch_out = (transform(x_t, torch.from_numpy(y))[0] if mixing else transform(x_t)).numpy()
    k = changed_fraction(x, keras_out, channel_axis=3)
    t = changed_fraction(x_t.numpy(), torch_out, channel_axis=1)
    if name == "RandomMixup":  # every pixel changes: compare the size of the change instead
        k = np.abs(keras_out - x).mean(axis=(1, 2, 3))
        t = np.abs(torch_out - x_t.numpy()).mean(axis=(1, 2, 3))
    assert_same_distribution(t, k, f"{name} changed fraction")
