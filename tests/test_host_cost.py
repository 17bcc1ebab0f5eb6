"""The host-cost shortcuts of the torch transforms give exactly what the general code gives.

An eager call on a small batch costs mostly host time (Python, dispatcher, small kernels), so the
common case takes a shorter route: a plain tensor (or two, images and labels) skips torchvision's
flatten / needs-transform plumbing. Each test below compares the short route with the long one,
bit for bit, or (one candidate rectangle where every candidate fits) the same law.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest
import torch
from helpers import assert_bit_identical, gen, make_images
from registry_cases import variant_cases
from scipy import stats
from torchvision.transforms import v2

from maskmix.geometry import rectangles_always_fit, rectangles_never_empty
from maskmix.torch import _patches, _sampling

CASES = variant_cases("torch")


def _same_seed_calls(case_name: str, images: torch.Tensor, labels: torch.Tensor, short: bool) -> object:
    case = CASES[case_name]
    transform = case.build(generator=gen(7), augmentation_ratio=0.7)
    if case.mixes:
        # Two plain tensors take the short route; the same sample as one tuple takes the long one.
        return transform(images, labels) if short else transform((images, labels))
    # One plain tensor takes the short route; torchvision's own forward is the long one.
    return transform(images) if short else v2.Transform.forward(transform, images)


def _flatten(result: object) -> list[torch.Tensor]:
    return list(result) if isinstance(result, tuple) else [result]  # type: ignore[list-item]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("shape", [(5, 3, 6, 7), (2, 3, 3, 4, 5), (1, 3, 4, 4)], ids=["batch", "leading", "one"])
def test_plain_tensor_route_gives_the_general_result(name: str, shape: tuple[int, ...]) -> None:
    images = make_images(shape)
    labels = torch.arange(shape[-4] if CASES[name].mixes else 1).remainder(3)
    if CASES[name].mixes and len(shape) > 4:
        pytest.skip("mixing labels are one per image of a (B, C, H, W) batch")
    short = _flatten(_same_seed_calls(name, images, labels, short=True))
    long = _flatten(_same_seed_calls(name, images, labels, short=False))
    assert len(short) == len(long)
    for got, expected in zip(short, long, strict=True):
        assert_bit_identical(got, expected)
    assert short[0].shape == images.shape


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "return_labels" in c.spec.param_names])
def test_plain_tensor_route_returns_the_same_labels(name: str) -> None:
    images = make_images((2, 3, 3, 6, 6))
    short = CASES[name].build(generator=gen(3), return_labels=True, augmentation_ratio=0.5)(images)
    long = CASES[name].build(generator=gen(3), return_labels=True, augmentation_ratio=0.5)((images,))
    assert_bit_identical(short[0], long[0][0])
    assert_bit_identical(short[1], long[1])
    assert short[1].shape == (2, 3)


# ---------------------------------------------------------------------------------------------
# Masking fills written on the pixels' bit patterns (keep_or_fill) against torch.where.
# ---------------------------------------------------------------------------------------------

MASKING = {name: case for name, case in CASES.items() if case.spec.family == "masking"}
IMAGE_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]


def _special_images(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Images holding every value a bit-level blend could get wrong: NaN (with a payload),
    infinities, -0.0, negative and subnormal values (uint8: both ends and the middle)."""
    images = make_images(shape, dtype)
    if dtype == torch.uint8:
        specials = torch.tensor([0, 255, 128, 1], dtype=dtype)
    else:
        specials = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, -3.5,
                                 torch.finfo(dtype).tiny / 2], dtype=dtype)
        payload = specials[:1].view(_sampling.same_size_integer(dtype)) | 1  # a NaN with another payload
        specials = torch.cat([specials, payload.view(dtype)])
    flat = images.view(-1)
    flat[: 7 * specials.numel(): 7] = specials.repeat(7)[: len(flat[: 7 * specials.numel(): 7])]
    return images


@pytest.mark.parametrize("dtype", IMAGE_DTYPES, ids=str)
@pytest.mark.parametrize("fill", ["zero", "nonzero", "negative", "minus_zero", "per_channel", "per_pixel"])
def test_keep_or_fill_writes_the_bits_torch_where_writes(dtype: torch.dtype, fill: str) -> None:
    images = _special_images((3, 2, 5, 6), dtype)
    kept = torch.rand(3, 1, 5, 6, generator=gen(1)) < 0.5
    numbers = {"zero": (0.0, 0), "nonzero": (0.75, 200), "negative": (-2.5, 255), "minus_zero": (-0.0, 1)}
    values = {"per_channel": _special_images((3, 2, 1, 1), dtype).flip(0),
              "per_pixel": _special_images((3, 2, 5, 6), dtype).flip(0)}.get(fill)
    if values is None:
        values = numbers[fill][dtype == torch.uint8]
    keep = kept.to(_sampling.same_size_integer(dtype))
    got = _sampling.keep_or_fill(images, keep, values)
    assert_bit_identical(got, torch.where(kept, images, values))
    assert got.data_ptr() != images.data_ptr()


@pytest.mark.parametrize("name", list(MASKING))
@pytest.mark.parametrize("ratio", [1.0, 0.5], ids=["all", "half"])
def test_masking_bit_path_gives_the_value_path(name: str, ratio: float) -> None:
    # Images that record a gradient take torch.where on the values; the others the bit path.
    images = _special_images((6, 3, 9, 8), torch.float32)
    values = MASKING[name].build(generator=gen(5), augmentation_ratio=ratio)(images.clone().requires_grad_())
    bits = MASKING[name].build(generator=gen(5), augmentation_ratio=ratio)(images)
    assert values.requires_grad and not bits.requires_grad
    assert_bit_identical(bits, values.detach())


@pytest.mark.parametrize("name", list(MASKING))
def test_region_keep_is_the_complement_of_the_region(name: str) -> None:
    # Each strategy's kept pixels in every dtype, with the selection folded in, are the
    # complement of its erased mask restricted to the selected images.
    transform = MASKING[name].build(generator=gen(2), augmentation_ratio=0.5)
    images = make_images((7, 3, 10, 9))
    params = transform.make_params([images])
    erased = transform.region_mask(params, 10, 9) & params["selected"].view(-1, 1, 1)
    assert erased.any() and not erased.all()
    for dtype in (torch.bool, torch.uint8, torch.int16, torch.int32, torch.int64):
        keep = transform.region_keep(params, 10, 9, dtype, within=params["selected"])
        assert keep.dtype == dtype and keep.shape == (7, 10, 9)
        assert torch.equal(keep.to(torch.bool), ~erased)


# ---------------------------------------------------------------------------------------------
# One candidate rectangle instead of ten where every candidate fits (geometry guarantees).
# ---------------------------------------------------------------------------------------------


def _extreme_sides(height: int, width: int, area: tuple[float, float],
                   aspect: tuple[float, float]) -> tuple[float, float, float, float]:
    """The unrounded tallest, widest, shortest and narrowest sides of the law, in float64."""
    pixels = height * width
    return (math.sqrt(area[1] * pixels * aspect[1]), math.sqrt(area[1] * pixels / aspect[0]),
            math.sqrt(area[0] * pixels * aspect[0]), math.sqrt(area[0] * pixels / aspect[1]))


GUARANTEE_CASES = [
    ((32, 32), (0.05, 0.3), (0.3, 3.0)),
    ((32, 32), (0.02, 1 / 3), (0.3, 1 / 0.3)),  # timm's: 33.7 px tall at most
    ((37, 53), (0.1, 0.5), (0.5, 2.0)),  # 62.6 px wide at most
    ((53, 37), (0.1, 0.5), (0.5, 2.0)),
    ((40, 90), (0.01, 0.2), (1.5, 4.0)),  # asymmetric ratios: 60 px tall at most
    ((90, 40), (0.01, 0.2), (1.5, 4.0)),
    ((64, 64), (1e-4, 0.1), (0.3, 3.0)),  # 0.35 px narrow at least
    ((5, 7), (0.2, 0.4), (0.8, 1.2)),
]


@pytest.mark.parametrize(("size", "area", "aspect"), GUARANTEE_CASES)
def test_rectangle_guarantees_follow_the_extreme_sides(size, area, aspect) -> None:
    height, width = size
    tallest, widest, shortest, narrowest = _extreme_sides(height, width, area, aspect)
    assert rectangles_always_fit(height, width, area, aspect) == (round(tallest) <= height and round(widest) <= width)
    assert rectangles_never_empty(height, width, area, aspect) == (round(shortest) >= 1 and round(narrowest) >= 1)


@pytest.mark.parametrize("side", [0.5, 32.5])
def test_rectangle_guarantees_keep_a_margin_for_float32_draws(side: float) -> None:
    # A square law whose extreme side lies a hair inside the rounding threshold: the float32
    # draws may cross it, so neither guarantee may be claimed. A clear margin gives both.
    def area(length: float) -> tuple[float, float]:
        return (length ** 2 / (32 * 32), length ** 2 / (32 * 32))

    guarantee = rectangles_never_empty if side == 0.5 else rectangles_always_fit
    direction = 1.0 if side == 0.5 else -1.0
    assert not guarantee(32, 32, area(side * (1 + direction * 1e-6)), (1.0, 1.0))
    assert guarantee(32, 32, area(side * (1 + direction * 1e-3)), (1.0, 1.0))


def _two_sample_frequencies(a: np.ndarray, b: np.ndarray) -> float:
    """The p-value of a chi-square test that two integer samples share one law (bins with fewer
    than 20 expected samples pooled into their neighbours)."""
    values = np.union1d(a, b)
    table = np.stack([np.searchsorted(values, s)[:, None] == np.arange(len(values)) for s in (a, b)]).sum(1)
    pooled, current = [], np.zeros(2, dtype=np.int64)
    for column in table.T:
        current = current + column
        if current.sum() >= 40:
            pooled.append(current)
            current = np.zeros(2, dtype=np.int64)
    if current.sum():
        pooled[-1] = pooled[-1] + current
    return float(stats.chi2_contingency(np.stack(pooled, 1))[1])


SINGLE_CANDIDATE_CASES = {
    "erasing": lambda shape, g: _sampling.fitting_box_sizes(shape, 24, 40, (0.05, 0.3), (0.3, 1.8),
                                                            device=torch.device("cpu"), generator=g).movedim(-1, 0),
    "erasing_split": lambda shape, g: _sampling.fitting_box_sizes(
        shape, 24, 40, (0.05, 0.3), (0.3, 1.8), device=torch.device("cpu"), generator=g,
        area_divisor=torch.arange(shape[0]).remainder(3).add(1).view(-1, 1)).movedim(-1, 0),
    "rectangles": lambda shape, g: torch.stack(_sampling.random_rectangles(
        shape, 24, 40, (0.05, 0.3), (0.3, 1.8), device=torch.device("cpu"), generator=g)),
    "patches": lambda shape, g: _patches.sides_inside(
        shape[0], 24, 40, (0.05, 0.3), (0.3, 1.8), _patches.constants(24, 40, torch.device("cpu")),
        device=torch.device("cpu"), generator=g),
}


@pytest.mark.parametrize("name", list(SINGLE_CANDIDATE_CASES))
def test_one_candidate_where_all_fit_draws_the_law_of_the_first_fitting_of_ten(name: str, monkeypatch) -> None:
    # The same law with and without the shortcut: the general route (ten candidates, the first
    # that fits) is forced by denying the guarantee. At 200 000 rectangles a slip in one route
    # (a wrong area scale, swapped sides, a dropped divisor) moves the side frequencies far
    # beyond the test's reach; the law itself is checked in tests/strategies/test_erasing.py.
    draw = SINGLE_CANDIDATE_CASES[name]
    assert rectangles_always_fit(24, 40, (0.05, 0.3), (0.3, 1.8))
    shape = (100_000, 2)
    short = draw(shape, gen(11)).reshape(2, -1)
    monkeypatch.setattr(_sampling, "always_fit", lambda *args: False)
    general = draw(shape, gen(12)).reshape(2, -1)
    assert short.dtype == general.dtype == torch.int64 and short.shape == general.shape
    assert short.min() >= 1 and (short.amax(1) <= torch.tensor([24, 40])).all()
    for side in range(2):
        assert _two_sample_frequencies(short[side].numpy(), general[side].numpy()) > 1e-4
    # The joint law too: the area h * w (the product couples the sides).
    assert _two_sample_frequencies(short.prod(0).numpy() // 16, general.prod(0).numpy() // 16) > 1e-4


# ---------------------------------------------------------------------------------------------
# Constants kept between eager calls.
# ---------------------------------------------------------------------------------------------


def test_kept_constants_evict_the_oldest_entry_not_those_of_the_call_at_hand(monkeypatch) -> None:
    """A full cache drops its oldest entry: a call whose constants straddle the limit keeps them
    all for the next call (a cleared cache made every call of a stream of batch sizes rebuild
    its constants, kernels the launch budget then counted)."""
    monkeypatch.setattr(_sampling, "_KEPT", {})
    monkeypatch.setattr(_sampling, "KEPT_ENTRIES", 4)
    device, built = torch.device("cpu"), []

    def keep(name: str) -> str:
        return _sampling.kept((name,), device, lambda: built.append(name) or name)

    for name in "abc":
        keep(name)
    assert [keep("d"), keep("e")] == ["d", "e"]  # one call: d fills the cache, e evicts a
    assert [keep("d"), keep("e"), keep("b")] == ["d", "e", "b"]  # the next call finds them all
    assert built == list("abcde")
    keep("a")  # evicted: built again, in place of the oldest (b)
    assert built == [*"abcde", "a"]
    assert list(_sampling._KEPT) == [("c", device), ("d", device), ("e", device), ("a", device)]


def test_kept_constants_hold_a_bounded_number_of_bytes(monkeypatch) -> None:
    """Per-size constants of large images (CutSwap's pixel index: 8 bytes a pixel) stayed for the
    whole run, once per size a random-resize pipeline produced (0.4-0.7 GiB at 600-1333 px); the
    cache now holds at most KEPT_BYTES, and a value larger than that alone is not kept."""
    monkeypatch.setattr(_sampling, "_KEPT", {})
    monkeypatch.setattr(_sampling, "KEPT_BYTES", 1000)
    device = torch.device("cpu")
    for n in range(10):
        _sampling.kept(("bytes", n), device, lambda: torch.zeros(100, dtype=torch.int16))  # 200 bytes each
    assert list(_sampling._KEPT) == [("bytes", n, device) for n in range(5, 10)]
    assert _sampling._tensor_bytes([v for v, _ in _sampling._KEPT.values()]) == 1000
    _sampling.kept(("large",), device, lambda: torch.zeros(1001, dtype=torch.uint8))
    assert ("large", device) not in _sampling._KEPT and len(_sampling._KEPT) == 5


@pytest.mark.parametrize("name", ["RandomCutSwap", "RandomCutBlur", "RandomCutThumbnail", "RandomErasing"])
def test_constants_kept_under_inference_mode_serve_a_call_that_records_gradients(name: str, monkeypatch) -> None:
    """Constants were kept twice, once per inference mode (a mode's tensors cannot serve the
    other); they are made outside inference mode, once, and serve both."""
    import maskmix.torch as mt
    from maskmix.torch import _patches

    monkeypatch.setattr(_sampling, "_KEPT", {})
    transform = getattr(mt, name)(generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 3, 12, 10)
    with torch.inference_mode():
        transform(x)
    kept = len(_sampling._KEPT), len(_patches.kept_tables(transform))
    leaf = x.clone().requires_grad_()
    transform(leaf).sum().backward()  # inference tensors would fail here: "cannot be saved for backward"
    assert leaf.grad is not None
    assert (len(_sampling._KEPT), len(_patches.kept_tables(transform))) == kept


def test_kept_constants_are_safe_to_fill_from_several_threads(monkeypatch) -> None:
    """Transforms may run in several threads (a thread pool of data workers): filling and evicting
    the cache from them at once must neither raise (a dict changed during the search for its
    oldest entry, an entry evicted twice) nor outgrow it. Thread switches are forced every
    microsecond so that the interleavings happen within the test."""
    monkeypatch.setattr(_sampling, "_KEPT", {})
    monkeypatch.setattr(_sampling, "KEPT_ENTRIES", 8)
    device, errors = torch.device("cpu"), []

    def fill(worker: int) -> None:
        try:
            for i in range(5000):
                assert _sampling.kept((worker, i % 50), device, lambda i=i: i % 50) == i % 50
        except Exception as error:  # any failure of a thread is the test's
            errors.append(repr(error))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=fill, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and len(_sampling._KEPT) <= 8
