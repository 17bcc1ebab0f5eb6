"""``RandomErasing.from_timm`` behaves like ``timm.data.random_erasing.RandomErasing``.

Both implementations run on batches of ones; the erased boxes are measured from the output (the
pixels that are no longer 1) and their distributions compared with two-sample KS tests. Seeds are
fixed (timm draws with Python's ``random`` and torch's global RNG, maskmix with a generator), so the
tests are deterministic; thresholds are chosen so that two samples of one distribution would fail
with probability at most ``ALPHA``, while a different range, a uniform aspect ratio, an area that is
not split between patches or a per-batch decision gives a KS statistic several times larger.
"""

from __future__ import annotations

import inspect
import math
import random

import numpy as np
import pytest
import torch
from scipy import stats
from timm.data.random_erasing import RandomErasing as TimmRandomErasing

from maskmix.torch import RandomErasing

ALPHA = 1e-3
SIZE = (48, 64)


def run_timm(images: torch.Tensor, seed: int, **kwargs) -> torch.Tensor:
    random.seed(seed)
    torch.manual_seed(seed)
    return TimmRandomErasing(device="cpu", **kwargs)(images.clone())  # timm erases in place


def run_maskmix(images: torch.Tensor, seed: int, **kwargs) -> torch.Tensor:
    return RandomErasing.from_timm(**kwargs, generator=torch.Generator().manual_seed(seed))(images)


def both(n: int, seed: int, channels: int = 1, size: tuple[int, int] = SIZE, **kwargs):
    images = torch.ones(n, channels, *size)
    return run_timm(images, seed, **kwargs), run_maskmix(images, seed + 1, **kwargs)


def erased(out: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` pixels that are no longer 1 in some channel."""
    return (out != 1).any(dim=1)


def single_boxes(out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Area fraction and aspect ratio h / w of the one rectangle erased in each erased image."""
    region = erased(out)
    rows, cols, area = region.any(2).sum(1), region.any(1).sum(1), region.sum((1, 2))
    hit = area > 0
    assert torch.equal((rows * cols)[hit], area[hit])  # exactly one filled rectangle per image
    pixels = region.shape[1] * region.shape[2]
    return (area[hit] / pixels).numpy(), (rows[hit] / cols[hit]).numpy()


def assert_same_distribution(a: np.ndarray, b: np.ndarray) -> None:
    assert min(a.size, b.size) >= 1000
    assert stats.ks_2samp(a, b).pvalue > ALPHA


BOX_CONFIGS = [
    {},  # timm's defaults: area (0.02, 1/3), aspect (0.3, 1/0.3)
    {"min_area": 0.1, "max_area": 0.4, "min_aspect": 0.5, "max_aspect": 2.5},
    {"min_area": 0.01, "max_area": 0.15, "min_aspect": 0.2},
]


@pytest.mark.parametrize("config", BOX_CONFIGS, ids=["defaults", "wide", "small"])
def test_box_area_and_aspect_distributions_match_timm(config) -> None:
    timm_out, ours = both(3000, seed=0, probability=1.0, **config)
    timm_area, timm_aspect = single_boxes(timm_out)
    area, aspect = single_boxes(ours)
    assert area.size == 3000  # every image erased with probability 1
    assert_same_distribution(area, timm_area)
    assert_same_distribution(np.log(aspect), np.log(timm_aspect))
    # Same reach: the ranges' ends are hit alike (catches a range clipped on one side only).
    for ours_values, timm_values in ((area, timm_area), (np.log(aspect), np.log(timm_aspect))):
        spread = timm_values.max() - timm_values.min()
        assert abs(ours_values.min() - timm_values.min()) < 0.05 * spread
        assert abs(ours_values.max() - timm_values.max()) < 0.05 * spread


@pytest.mark.parametrize(
    "config",
    [{"min_count": 1, "max_count": 3}, {"min_count": 2}, {"min_count": 2, "max_count": 4, "max_area": 0.5}],
    ids=["1-3", "2", "2-4"],
)
def test_total_erased_fraction_with_several_patches_matches_timm(config) -> None:
    # The area drawn per patch is divided by the image's count in both; without the division the
    # total fraction would roughly double.
    timm_out, ours = both(3000, seed=1, probability=1.0, **config)
    pixels = SIZE[0] * SIZE[1]
    timm_fraction = (erased(timm_out).sum((1, 2)) / pixels).numpy()
    fraction = (erased(ours).sum((1, 2)) / pixels).numpy()
    assert (fraction > 0).all()
    assert_same_distribution(fraction, timm_fraction)


def test_probability_is_a_per_image_bernoulli_like_timm() -> None:
    # 300 batches of 10: each image is erased independently with probability 0.3, so the count per
    # batch is Binomial(10, 0.3) (variance 2.1), not always round(0.3 * 10) = 3 (variance 0).
    batches, batch, p = 300, 10, 0.3
    images = torch.ones(batch, 1, 32, 32)
    random.seed(2)
    torch.manual_seed(2)
    timm_transform = TimmRandomErasing(probability=p, device="cpu")
    ours = RandomErasing.from_timm(probability=p, generator=torch.Generator().manual_seed(3))

    def erased_images(out: torch.Tensor) -> int:
        return int(erased(out).flatten(1).any(1).sum())

    timm_counts = np.array([erased_images(timm_transform(images.clone())) for _ in range(batches)])
    counts = np.array([erased_images(ours(images)) for _ in range(batches)])
    n = batches * batch
    for observed in (counts, timm_counts):
        assert abs(observed.sum() / n - p) < 5 * math.sqrt(p * (1 - p) / n)
        var = batch * p * (1 - p)
        mu4 = var * (1 + 3 * (batch - 2) * p * (1 - p))
        se = math.sqrt((mu4 - var**2 * (batches - 3) / (batches - 1)) / batches)
        assert abs(observed.var(ddof=1) - var) < 5 * se
    # Two-proportion comparison of the two implementations.
    pooled = (counts.sum() + timm_counts.sum()) / (2 * n)
    assert abs(counts.sum() - timm_counts.sum()) / n < 5 * math.sqrt(2 * pooled * (1 - pooled) / n)


@pytest.mark.parametrize(("batch", "num_splits"), [(12, 0), (12, 1), (12, 2), (12, 3), (10, 4), (7, 2), (3, 4)])
def test_num_splits_keeps_the_first_split_clean(batch, num_splits) -> None:
    clean = batch // num_splits if num_splits > 1 else 0
    timm_out, ours = both(batch, seed=4, channels=3, size=(32, 32), probability=1.0, num_splits=num_splits)
    for out in (timm_out, ours):
        touched = erased(out).flatten(1).any(1)
        assert not touched[:clean].any()
        assert touched[clean:].all()
    # Also with a probability: the clean split stays clean and the others are erased at random.
    ours = run_maskmix(torch.ones(400, 1, 16, 16), 5, probability=0.5, num_splits=4)
    touched = erased(ours).flatten(1).any(1)
    assert not touched[:100].any()
    assert 0.4 < touched[100:].float().mean() < 0.6


@pytest.mark.parametrize("sampling", ["batch", "pair"])
def test_num_splits_refuses_a_shared_selection(sampling: str) -> None:
    """Pairs (or the whole batch) share one selection, which a clean first split breaks: image 0
    stayed clean while its partner B - 1 was erased. Refused; num_splits 0 or 1 keep any mode."""
    from maskmix.torch import RandomErasing

    t = RandomErasing.from_timm(probability=1.0, num_splits=2)
    t.sampling = sampling
    with pytest.raises(ValueError, match=rf"^RandomErasing: num_splits=2 \(from_timm\) keeps the first 1/2 of the "
                                         rf"batch clean, which sampling='{sampling}' cannot honour"):
        t(torch.rand(4, 3, 8, 8))
    t = RandomErasing.from_timm(probability=1.0, num_splits=1)
    t.sampling = sampling
    assert erased(t(torch.ones(4, 3, 8, 8))).flatten(1).any(1).all()


def test_const_mode_fills_zero() -> None:
    timm_out, ours = both(200, seed=6, channels=3, probability=1.0, mode="const", max_count=2)
    for out in (timm_out, ours):
        region = erased(out)
        assert region.flatten(1).any(1).all()
        values = out.permute(1, 0, 2, 3)[:, region]
        assert (values == 0).all()  # every channel of every erased pixel
    assert RandomErasing.from_timm(mode="").fill_method == "zero"  # timm reads '' as 'const'


def colours(out: torch.Tensor) -> np.ndarray:
    """``(n, C)`` colour of each erased image, asserting it is constant over the erased pixels."""
    region = erased(out)
    found = []
    for b in range(out.shape[0]):
        if region[b].any():
            values = out[b][:, region[b]]
            assert (values == values[:, :1]).all()
            found.append(values[:, 0])
    return torch.stack(found).numpy().astype(np.float64)


def test_rand_mode_one_normal_colour_per_image_and_channel() -> None:
    timm_out, ours = both(1500, seed=7, channels=3, probability=1.0, mode="rand")
    ours_colours, timm_colours = colours(ours), colours(timm_out)
    assert ours_colours.shape == (1500, 3)
    assert len({tuple(c) for c in ours_colours.tolist()}) == 1500  # a colour per image
    assert (ours_colours[:, 0] != ours_colours[:, 1]).all()  # one per channel
    limit = stats.kstwo.ppf(1 - ALPHA, ours_colours.size)
    assert stats.kstest(ours_colours.ravel(), stats.norm.cdf).statistic < limit
    assert_same_distribution(ours_colours.ravel(), timm_colours.ravel())
    # Channels are independent draws.
    corr = np.corrcoef(ours_colours.T)[np.triu_indices(3, 1)]
    assert np.abs(corr).max() < 5 / math.sqrt(1500)


def test_pixel_mode_per_pixel_normal_noise() -> None:
    timm_out, ours = both(300, seed=8, channels=3, probability=1.0, mode="pixel")
    region = erased(ours)
    for b in range(0, 300, 30):
        values = ours[b][:, region[b]]
        # Every pixel and channel its own draw: float32 normals collide by chance (a birthday pair
        # among ~2700 values is a few-percent event), one shared draw per image would leave 3.
        assert torch.unique(values).numel() >= values.numel() - 2
    ours_values = ours.permute(1, 0, 2, 3)[:, region].flatten().double().numpy()
    timm_values = timm_out.permute(1, 0, 2, 3)[:, erased(timm_out)].flatten().double().numpy()
    ours_values, timm_values = ours_values[:20000], timm_values[:20000]
    assert stats.kstest(ours_values, stats.norm.cdf).statistic < stats.kstwo.ppf(1 - ALPHA, ours_values.size)
    assert_same_distribution(ours_values, timm_values)


def test_single_image_input_like_timm() -> None:
    image = torch.ones(3, *SIZE)
    timm_out, ours = run_timm(image, 9, probability=1.0), run_maskmix(image, 9, probability=1.0)
    for out in (timm_out, ours):
        assert out.shape == image.shape
        assert (out == 0).all(0).any()
    assert (image == 1).all()  # maskmix leaves its input alone


def test_from_timm_maps_the_arguments() -> None:
    t = RandomErasing.from_timm(probability=0.25, min_area=0.05, max_area=0.5, min_aspect=0.4, mode="Pixel",
                                min_count=2, max_count=5)
    assert t.augmentation_ratio == 0.25 and t.bernoulli_mix is True
    assert t.patch_area == (0.05, 0.5)
    assert t.patch_aspect_ratio == pytest.approx((0.4, 2.5))
    assert t.patch_count == (2, 5)
    assert t.fill_method == "normal"
    defaults = RandomErasing.from_timm()
    assert defaults.augmentation_ratio == 0.5 and defaults.patch_area == pytest.approx((0.02, 1 / 3))
    assert defaults.patch_aspect_ratio == pytest.approx((0.3, 1 / 0.3)) and defaults.patch_count == (1, 1)
    assert defaults.fill_method == "zero"
    assert RandomErasing.from_timm(mode="rand").fill_method == "normal_per_patch"
    assert RandomErasing.from_timm(max_aspect=3.0).patch_aspect_ratio == pytest.approx((0.3, 3.0))


def test_from_timm_accepts_every_argument_of_timm_in_the_same_order() -> None:
    """timm's own factory passes ``device='cpu'``: the same call must work with from_timm."""
    from timm.data.random_erasing import RandomErasing as TimmErasing

    timm_names = [n for n in inspect.signature(TimmErasing.__init__).parameters if n != "self"]
    ours = [n for n, p in inspect.signature(RandomErasing.from_timm).parameters.items()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert ours[: len(timm_names)] == timm_names
    t = RandomErasing.from_timm(0.25, 0.02, 1 / 3, 0.3, None, "pixel", 1, 2, 0, "cpu")
    assert t.augmentation_ratio == 0.25 and t.fill_method == "normal" and t.patch_count == (1, 2)
    assert RandomErasing.from_timm(device=torch.device("cpu")).augmentation_ratio == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "gaussian"}, ValueError, r"from_timm: mode must be one of 'const', 'rand', 'pixel'; got 'gaussian'"),
        ({"mode": None}, (ValueError, TypeError), r"from_timm: mode"),
        ({"mode": 3}, (ValueError, TypeError), r"from_timm: mode"),
        ({"probability": 1.5}, ValueError, r"from_timm: probability must be a float in \[0, 1\]; got 1.5"),
        ({"probability": -0.1}, ValueError, r"from_timm: probability"),
        ({"probability": float("nan")}, ValueError, r"from_timm: probability"),
        ({"probability": True}, TypeError, r"from_timm: probability"),
        ({"probability": "0.5"}, TypeError, r"from_timm: probability"),
        ({"min_area": 0.5, "max_area": 0.2}, ValueError, r"from_timm: \(min_area, max_area\) .*got \(0.5, 0.2\)"),
        ({"min_area": 0.0}, ValueError, r"from_timm: \(min_area, max_area\)"),
        ({"max_area": 1.0}, ValueError, r"from_timm: \(min_area, max_area\)"),
        ({"max_area": float("inf")}, ValueError, r"from_timm: \(min_area, max_area\)"),
        ({"min_area": None}, TypeError, r"from_timm: \(min_area, max_area\)"),
        ({"min_aspect": 0.0}, ValueError, r"from_timm: min_aspect"),
        ({"min_aspect": -1.0}, ValueError, r"from_timm: min_aspect"),
        ({"min_aspect": float("inf")}, ValueError, r"from_timm: min_aspect"),
        ({"min_aspect": "0.3"}, TypeError, r"from_timm: min_aspect"),
        ({"min_aspect": 0.5, "max_aspect": 0.4}, ValueError, r"from_timm: \(min_aspect, max_aspect\)"),
        ({"max_aspect": -2.0}, ValueError, r"from_timm: \(min_aspect, max_aspect\)"),
        ({"min_count": 0}, ValueError, r"from_timm: min_count must be an integer >= 1; got 0"),
        ({"device": 3}, TypeError, r"from_timm: device must be a str, a torch.device or None; got int"),
        ({"min_count": 1.5}, TypeError, r"from_timm: min_count"),
        ({"min_count": True}, TypeError, r"from_timm: min_count"),
        ({"max_count": 0}, ValueError, r"from_timm: max_count"),
        ({"max_count": 2.0}, TypeError, r"from_timm: max_count"),
        ({"num_splits": -1}, ValueError, r"from_timm: num_splits must be an integer >= 0; got -1"),
        ({"num_splits": 1.5}, TypeError, r"from_timm: num_splits"),
        ({"generator": 0}, TypeError, r"generator must be a torch.Generator"),
    ],
)
def test_from_timm_validates_its_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        RandomErasing.from_timm(**kwargs)


def test_from_timm_rejects_unknown_and_extra_positional_arguments() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'color'"):
        RandomErasing.from_timm(color=0)
    with pytest.raises(TypeError):  # an 11th positional argument: generator is keyword-only
        RandomErasing.from_timm(0.5, 0.02, 1 / 3, 0.3, None, "const", 1, None, 0, "cpu", None)


def test_from_timm_count_order_error_names_the_timm_arguments() -> None:
    # The message names the arguments the caller passed, not the constructor's patch_count.
    with pytest.raises(ValueError, match=r"from_timm: .*max_count"):
        RandomErasing.from_timm(min_count=3, max_count=2)
