"""The host-cost shortcuts of the torch transforms give exactly what the general code gives.

An eager call on a small batch costs mostly host time (Python, dispatcher, small kernels), so the
common cases take shorter routes: a plain tensor (or two, images and labels) skips torchvision's
flatten / needs-transform plumbing, and on a CPU the per-pixel selection is computed on the
elements' bits instead of by the boolean ``torch.where`` kernel. Each test below compares a short
route with the long one, bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from helpers import ALL_DTYPES, assert_bit_identical, gen, make_images
from registry_cases import variant_cases
from torchvision.transforms import v2

from maskmix.torch import _sampling

CASES = variant_cases("torch")

#: Fills whose bit patterns are awkward: signed zero, NaN, infinities, values that round in float16.
SPECIAL_FILLS = (0.0, -0.0, 0.3, 1 / 3, float("nan"), float("-inf"), 255.0, 2)


def _images(dtype: torch.dtype, shape: tuple[int, ...] = (4, 3, 5, 6), seed: int = 0) -> torch.Tensor:
    if not dtype.is_floating_point:
        return torch.randint(0, 256 if dtype == torch.uint8 else 1000, shape, generator=gen(seed)).to(dtype)
    values = torch.randn(shape, generator=gen(seed)).to(dtype)
    values.view(-1)[:4] = torch.tensor([float("nan"), float("inf"), -0.0, -float("inf")]).to(dtype)
    return values


@pytest.mark.parametrize("dtype", [*ALL_DTYPES, torch.int64, torch.int32], ids=str)
def test_select_is_torch_where_bit_for_bit(dtype: torch.dtype) -> None:
    b, a = _images(dtype), _images(dtype, seed=1)
    mask = torch.rand(4, 1, 5, 6, generator=gen(2)) > 0.5
    fills = SPECIAL_FILLS if dtype.is_floating_point else (0, 7, 255)
    for fill in fills:
        assert_bit_identical(_sampling.select(mask, fill, b), torch.where(mask, fill, b))
    assert_bit_identical(_sampling.select(mask, a, b), torch.where(mask, a, b))
    # Written over `a` when asked, as torch.where(..., out=a).
    expected = torch.where(mask, a, b)
    result = _sampling.select(mask, a, b, out=a)
    assert result.data_ptr() == a.data_ptr()
    assert_bit_identical(result, expected)


def test_select_keeps_the_inputs_and_their_layouts_values() -> None:
    b = make_images((3, 3, 4, 5)).contiguous(memory_format=torch.channels_last)
    a = make_images((3, 3, 4, 5), seed=1)
    before_a, before_b = a.clone(), b.clone()
    mask = torch.rand(3, 4, 5, generator=gen(0)).unsqueeze(1) > 0.5
    assert_bit_identical(_sampling.select(mask, a, b), torch.where(mask, a, b))
    assert_bit_identical(_sampling.select(mask, 0.25, b), torch.where(mask, 0.25, b))
    assert_bit_identical(a, before_a)
    assert_bit_identical(b, before_b)


def test_select_lets_gradients_through() -> None:
    b = make_images((2, 3, 4, 4)).requires_grad_()
    a = make_images((2, 3, 4, 4), seed=1).requires_grad_()
    mask = torch.rand(2, 1, 4, 4, generator=gen(0)) > 0.5
    _sampling.select(mask, a, b).sum().backward()
    assert torch.equal(a.grad, mask.expand_as(a).float())
    assert torch.equal(b.grad, (~mask).expand_as(b).float())


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
