"""The host-cost shortcuts of the torch transforms give exactly what the general code gives.

An eager call on a small batch costs mostly host time (Python, dispatcher, small kernels), so the
common case takes a shorter route: a plain tensor (or two, images and labels) skips torchvision's
flatten / needs-transform plumbing. Each test below compares the short route with the long one,
bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from helpers import assert_bit_identical, gen, make_images
from registry_cases import variant_cases
from torchvision.transforms import v2

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
