"""The fills every masking strategy shares (design §Conventions, fills), torch and Keras: constant
fills write exactly their value (relative to ``pixels_range``, uint8 rounded and saturated),
data-dependent and random fills are per image or per pixel as documented and follow their
distributions, per-channel fills check the channel count. The regions come from the
framework-free references (``tests/references.py``).
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import numpy as np
import pytest
import scipy.stats
import torch
from helpers import assert_bit_identical, changed_pixels, gen, make_images, run_with_params
from masking_cases import ALPHA, STRATEGIES, N, ks_limit, reference_region, sample
from scipy import stats

from maskmix._checks import UINT8_UNIT_FILLS
from maskmix.keras import RandomCutout as KerasRandomCutout
from maskmix.keras import RandomErasing as KerasRandomErasing
from maskmix.keras import RandomGridMask as KerasRandomGridMask
from maskmix.keras import RandomHideAndSeek as KerasRandomHideAndSeek
from maskmix.torch import RandomCutout, RandomErasing

# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


#: ``"custom"`` stands for a pixels_range that keeps the fills away from the images' values.
CUSTOM_RANGE = {"float": (-1.5, 3.5), "uint8": (3.0, 250.0)}


CONSTANT_FILLS = [
    ("black", None),
    ("gray", None),
    ("white", None),
    ("black", "custom"),
    ("gray", "custom"),
    ("white", "custom"),
    ("zero", None),
    (-0.75, None),
    (300.0, None),
    ((-0.5, 1.25, 2.0), None),
    ((2.5,), None),
]


RANDOM_FILLS = [
    ("mean_per_channel", None),
    ("random", None),
    ("random", "custom"),
    ("noise", None),
    ("noise", "custom"),
    ("normal", None),
    ("normal_per_patch", None),
]


FILL_STRATEGIES = ["cutout", "erasing_multi", "hide_and_seek", "grid_mask"]


FILL_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.uint8]


def resolve_range(pixels_range, dtype: torch.dtype) -> tuple[tuple[float, float] | None, tuple[float, float]]:
    """The pixels_range argument and the (lo, hi) range it means for ``dtype``."""
    kind = "uint8" if dtype == torch.uint8 else "float"
    given_range = CUSTOM_RANGE[kind] if pixels_range == "custom" else None
    natural = (0.0, 255.0) if dtype == torch.uint8 else (0.0, 1.0)
    return given_range, given_range or natural


def as_image_value(value: float, dtype: torch.dtype) -> float:
    """A constant as stored in an image of ``dtype``: uint8 rounded (half to even) and saturated."""
    if dtype == torch.uint8:
        return float(min(max(round(value), 0), 255))
    return torch.tensor(value, dtype=torch.float64).to(dtype).item()


def run_fill(name: str, fill, pixels_range, dtype: torch.dtype):
    given_range, (lo, hi) = resolve_range(pixels_range, dtype)
    images = make_images((6, 3, 32, 48), dtype, seed=8)
    transform = STRATEGIES[name](fill_method=fill, pixels_range=given_range, augmentation_ratio=0.5, generator=gen(9))
    out, params = run_with_params(transform, images)
    region, _ = reference_region(params, (32, 48))
    selected = params["selected"]
    mask = region & selected.view(-1, 1, 1)
    assert_bit_identical(out[~selected], images[~selected])
    return images, out, params, mask, (lo, hi)


def pairwise(fills: list[tuple]) -> list:
    """Every (fill, dtype) pair once, the strategy rotating with both indices (a Latin square):
    each fill also meets every strategy, and each dtype every strategy. The fill is written by the
    masking base whatever the strategy (which only gives the region), so the full product of the
    three repeated that code path; every pair of the three axes is still run."""
    return [pytest.param(FILL_STRATEGIES[(i + j) % len(FILL_STRATEGIES)], fill, pixels_range, dtype,
                         id=f"{FILL_STRATEGIES[(i + j) % len(FILL_STRATEGIES)]}-{fill!r}-{pixels_range}-{dtype}")
            for i, (fill, pixels_range) in enumerate(fills) for j, dtype in enumerate(FILL_DTYPES)]


@pytest.mark.parametrize(("name", "fill", "pixels_range", "dtype"), pairwise(CONSTANT_FILLS))
def test_torch_constant_fills_write_exactly_their_value(name, fill, pixels_range, dtype) -> None:
    images, out, _, mask, (lo, hi) = run_fill(name, fill, pixels_range, dtype)
    if isinstance(fill, str):
        per_channel = [{"black": lo, "white": hi, "gray": (lo + hi) / 2, "zero": 0.0}[fill]] * 3
    elif isinstance(fill, tuple):
        per_channel = list(fill) * (3 // len(fill))
    else:
        per_channel = [fill] * 3
    values = [as_image_value(v, dtype) for v in per_channel]
    fill_image = torch.tensor(values, dtype=torch.float64).to(dtype).view(1, 3, 1, 1)
    # The constants lie outside the images' values, so the changed pixels are exactly the region...
    assert torch.equal(changed_pixels(images, out), mask)
    # ...and the whole output is exactly "fill inside the region, input outside".
    assert_bit_identical(out, torch.where(mask.unsqueeze(1), fill_image.expand_as(images), images))


@pytest.mark.parametrize(("name", "fill", "pixels_range", "dtype"), pairwise(RANDOM_FILLS))
def test_torch_data_dependent_and_random_fills(name, fill, pixels_range, dtype) -> None:
    if dtype == torch.uint8 and fill in UINT8_UNIT_FILLS:
        # N(0, 1) rounded to 0, 1 or 2 on uint8 pixels: refused (timm refuses its pixel mode too).
        with pytest.raises(ValueError, match=rf"fill_method '{fill}' draws standard-normal values"):
            run_fill(name, fill, pixels_range, dtype)
        return
    images, out, params, mask, (lo, hi) = run_fill(name, fill, pixels_range, dtype)
    changed = changed_pixels(images, out)
    assert not (changed & ~mask).any()  # nothing outside the region changes
    assert_bit_identical(out[~mask.unsqueeze(1).expand_as(images)], images[~mask.unsqueeze(1).expand_as(images)])
    inside = [out[b][:, mask[b]] for b in range(out.shape[0])]  # (C, n) erased values per image
    augmented = [b for b in range(out.shape[0]) if mask[b].any()]
    assert len(augmented) == 3
    if dtype == torch.float32 or fill == "mean_per_channel":
        # No coincidences with the image's own values are possible at this precision / for the mean.
        assert torch.equal(changed, mask)

    if fill in ("mean_per_channel", "random", "normal_per_patch"):
        # One value per image and channel, constant over the whole region.
        colours = torch.stack([inside[b][:, :1] for b in augmented]).to(torch.float64).squeeze(-1)  # (n, C)
        for b in augmented:
            assert (inside[b] == inside[b][:, :1]).all()
        if fill == "mean_per_channel":
            means = images.to(torch.float64).mean(dim=(-2, -1))[augmented]
            tolerance = 0.5 if dtype == torch.uint8 else 2 * torch.finfo(dtype).eps * means.abs().max().item()
            assert (colours - means).abs().max() <= tolerance + 1e-12
        else:
            assert len({tuple(c) for c in colours.tolist()}) == len(augmented)  # a colour per image
            assert len({c for row in colours.tolist() for c in row}) > 1  # channels differ
    else:
        # Per-pixel values: many distinct values inside every augmented image.
        for b in augmented:
            distinct = torch.unique(inside[b]).numel()
            floor = 8 if dtype == torch.uint8 else 100
            assert distinct >= min(inside[b].numel() // 2, floor)
    if fill in ("random", "noise"):
        values = torch.cat([inside[b].flatten() for b in augmented]).to(torch.float64)
        low, high = (as_image_value(lo, dtype), as_image_value(hi, dtype))
        assert low <= values.min() and values.max() <= high
    if fill != "mean_per_channel":
        # The written values are the sampled ones cast to the image dtype (uint8 rounded, saturated).
        drawn = params["fill_values"]
        cast = drawn.round().clamp(0, 255).to(dtype) if dtype == torch.uint8 else drawn.to(dtype)
        expected = torch.where(mask.unsqueeze(1), cast.expand_as(images), images)
        assert_bit_identical(out, expected)


def test_torch_per_channel_fill_of_wrong_length_is_rejected_at_call_time() -> None:
    transform = RandomCutout(fill_method=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"RandomCutout: fill_method has 3 values but the images have 2"):
        transform(make_images((2, 2, 8, 8)))
    out = RandomCutout(fill_method=(0.05,))(make_images((2, 5, 8, 8)))  # one value serves every channel
    assert out.shape == (2, 5, 8, 8)


@pytest.mark.parametrize("first", [(0.0,), (-0.0,)], ids=["plus_first", "minus_first"])
def test_torch_fills_of_either_zero_keep_their_sign(first: tuple[float]) -> None:
    """(-0.0,) and (0.0,) shared one kept constant (equal keys): the fill made second wrote the
    first one's sign bit."""
    x = torch.ones(1, 1, 8, 8)
    for fill in (first, (-first[0],)):
        out = RandomErasing(fill_method=fill, generator=gen(0))(x)
        erased = out[out != 1]
        assert erased.numel() and bool((torch.signbit(erased) == (math.copysign(1.0, fill[0]) < 0)).all()), fill


@pytest.mark.parametrize(
    ("fill", "distribution", "shape"),
    [
        ("random", stats.uniform(-1.5, 5.0), (N, 3, 1, 1)),
        ("noise", stats.uniform(-1.5, 5.0), (100, 3, 12, 16)),
        ("normal", stats.norm(), (100, 3, 12, 16)),
        ("normal_per_patch", stats.norm(), (N, 3, 1, 1)),
    ],
)
def test_torch_random_fill_distributions(fill, distribution, shape) -> None:
    # Would fail for a range ignoring pixels_range, (0, 1) noise for `normal`, or a colour shared by images.
    transform = RandomCutout(fill_method=fill, pixels_range=(-1.5, 3.5), generator=gen(10))
    drawn = sample(transform, (12, 16), n=shape[0], channels=3)["fill_values"]
    assert drawn.shape == shape
    values = drawn.flatten().numpy().astype(np.float64)
    assert stats.kstest(values, distribution.cdf).statistic <= ks_limit(values.size)
    # Images and channels are independent draws: correlation across images and channels is small.
    per_image = drawn.flatten(2).mean(2).numpy()
    corr = np.corrcoef(per_image.T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 5 / math.sqrt(shape[0])


@pytest.mark.parametrize("fill", ["random", "noise"])
def test_torch_uint8_random_fills_are_uniform_over_every_level(fill: str) -> None:
    """uint8 fills are rounded: every level of 0..255 must be equally likely, the two end levels
    too (uniform over [0, 255] then rounded would give them half the share of the others)."""
    transform = RandomCutout(fill_method=fill, generator=gen(11))
    images = torch.zeros(1, 1, 1, 1, dtype=torch.uint8).expand(4000 if fill == "random" else 40, 3, 32, 32)
    drawn = transform.fill_for(images, transform.make_params([images]))
    counts = torch.bincount(drawn.flatten().long(), minlength=256).numpy()
    assert counts.size == 256 and counts.sum() >= 12000
    assert stats.chisquare(counts).pvalue > ALPHA
    ends, inner = counts[[0, 255]].mean(), counts[1:255].mean()
    assert ends > 0.75 * inner


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (13, 11)


def keras_images(batch: int = 16, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((batch, *size, channels), dtype, seed=seed), dtype)


def keras_filled(fill_method, dtype="float32", pixels_range=None, channels=3, batch=8):
    x = keras_images(batch, dtype, channels=channels)
    layer = KerasRandomCutout(patch_area=0.3, fill_method=fill_method, pixels_range=pixels_range, seed=11)
    out, p = kh.run_with_params(layer, x)
    region = kh.reference_box_mask(p["top"], p["left"], p["height"], p["width"], KERAS_SIZE)
    return kh.np_(x), out, region, p


@pytest.mark.parametrize(
    ("method", "value"), [("black", 0.0), ("white", 1.0), ("gray", 0.5), ("zero", 0.0), (0.25, 0.25)]
)
def test_keras_constant_fills(method, value):
    _, out, region, _ = keras_filled(method)
    np.testing.assert_array_equal(out[region], np.full_like(out[region], value))


def test_keras_fills_follow_pixels_range_and_uint8_rounding():
    _, out, region, _ = keras_filled("white", pixels_range=(-2.0, 3.0))
    assert (out[region] == 3.0).all()
    _, out, region, _ = keras_filled("gray", dtype="uint8")
    assert out.dtype == np.uint8 and (out[region] == 128).all()  # 127.5 rounds half to even
    _, out, region, _ = keras_filled(300.0, dtype="uint8")
    assert (out[region] == 255).all()


def test_keras_per_channel_constant_fill_and_channel_mismatch():
    _, out, region, _ = keras_filled((0.1, 0.2, 0.3))
    np.testing.assert_allclose(out[region], np.broadcast_to([0.1, 0.2, 0.3], out[region].shape), rtol=1e-6)
    with pytest.raises(ValueError, match="fill_method has 2 values but the images have 3 channel"):
        KerasRandomCutout(fill_method=(0.1, 0.2))(keras_images(2))


def test_keras_mean_per_channel_fill():
    x, out, region, _ = keras_filled("mean_per_channel")
    means = x.mean(axis=(1, 2))
    for b in range(len(x)):
        np.testing.assert_allclose(out[b][region[b]], np.broadcast_to(means[b], out[b][region[b]].shape), rtol=1e-5)


def test_keras_random_and_normal_per_patch_are_one_colour_per_image():
    for method in ("random", "normal_per_patch"):
        _, out, region, p = keras_filled(method, pixels_range=(-1.0, 2.0))
        colours = p["fill_values"].reshape(len(out), 3)
        for b in range(len(out)):
            np.testing.assert_allclose(out[b][region[b]], np.broadcast_to(colours[b], out[b][region[b]].shape))
        if method == "random":
            assert colours.min() >= -1.0 and colours.max() <= 2.0
        assert len(np.unique(colours[:, 0])) == len(out)


def test_keras_noise_and_normal_are_per_pixel():
    _, out, region, _ = keras_filled("noise", batch=32)
    values = out[region]
    assert values.min() >= 0.0 and values.max() <= 1.0 and len(np.unique(values)) > values.size // 2
    _, out, region, _ = keras_filled("normal", batch=64)
    values = out[region]
    assert abs(values.mean()) < 0.1 and abs(values.std() - 1.0) < 0.1


@pytest.mark.parametrize(
    "layer_cls", [KerasRandomCutout, KerasRandomErasing, KerasRandomHideAndSeek, KerasRandomGridMask]
)
@pytest.mark.parametrize("fill", ["noise", "normal", "mean_per_channel", "random"])
def test_keras_fills_on_every_dtype(layer_cls, fill):
    for dtype in ("uint8", "float16", "bfloat16", "float64"):
        x = keras_images(3, dtype)
        if dtype == "uint8" and fill in UINT8_UNIT_FILLS:
            with pytest.raises(ValueError, match=rf"{layer_cls.__name__}: fill_method '{fill}' draws standard-normal"):
                layer_cls(fill_method=fill, seed=0)(x)
            continue
        out = layer_cls(fill_method=fill, seed=0)(x)
        assert out.dtype == x.dtype and tuple(out.shape) == tuple(x.shape)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_torch_half_precision_noise_is_uniform_over_the_range(dtype: torch.dtype) -> None:
    """torch's reduced-precision uniform_ truncates: bfloat16 noise over (10, 200) had mean 104.49
    (not 105) and never reached 200. Drawn in float32 and rounded once, it is unbiased."""
    x = torch.full((16, 3, 64, 64), math.nan, dtype=dtype)
    t = RandomErasing(fill_method="noise", pixels_range=(10.0, 200.0), patch_area=0.5,
                      generator=torch.Generator().manual_seed(0))
    values = t(x)
    values = values[~values.isnan()].double()
    # ~100k values: the sampling error of the mean is 0.17; truncation biased it by -0.5.
    assert values.numel() > 90_000 and abs(values.mean().item() - 105.0) < 0.25
    assert values.max().item() == 200.0 and values.min().item() == 10.0


def test_keras_uint8_images_refuse_a_value_range_they_cannot_hold_naming_it() -> None:
    from maskmix.keras import RandomCutMix as KerasRandomCutMix

    x = kh.to_tensor(np.zeros((4, 8, 8, 3), "uint8"), "uint8")
    with pytest.raises(ValueError, match=r"RandomCutout: pixels_range \(value_range\) \(-1.0, 1.0\) cannot describe "
                                         r"uint8 images"):
        KerasRandomCutout(value_range=(-1, 1), seed=0)(x)
    KerasRandomCutMix(num_classes=3, value_range=(-1, 1), seed=0)((x, np.arange(4) % 3))  # unused there: accepted


@pytest.mark.parametrize("fill", ["random", "noise"])
def test_keras_uint8_random_fills_are_uniform_over_every_level(fill: str) -> None:
    """uint8 fills are rounded: every level of 0..255 equally likely, the two end levels too."""
    layer = KerasRandomCutout(fill_method=fill, seed=11)
    x = np.zeros((4000 if fill == "random" else 40, 32, 32, 3), "uint8")
    drawn = kh.np_(layer.fill_for(kh.to_tensor(x, "uint8"), layer.get_random_transformation(x)))
    counts = np.bincount(drawn.astype(np.int64).ravel(), minlength=256)
    assert counts.size == 256 and counts.sum() >= 12000
    assert scipy.stats.chisquare(counts).pvalue > 1e-4
    assert counts[[0, 255]].mean() > 0.75 * counts[1:255].mean()
