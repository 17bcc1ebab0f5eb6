"""Test helpers shared by the torch test modules: image factories, parameter capture, and thin
torch wrappers of the framework-free references of ``tests/references.py``.

The references are built with plain Python loops and slicing from the sampled parameters,
independently of the library's vectorised code, so that pixel-accounting tests compare two
different computations; the Keras tests use the same references (``keras_helpers.py``).
"""

from __future__ import annotations

import numpy as np
import references
import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
ALL_DTYPES = (*FLOAT_DTYPES, torch.uint8)


def make_images(shape: tuple[int, ...], dtype: torch.dtype = torch.float32, *, seed: int = 0,
                low: float = 0.1, high: float = 0.9, device: str = "cpu") -> Tensor:
    """Random images whose values avoid the fills' constants (0, 1, 0.5 and their uint8 images).

    Float images are uniform in ``[low, high]`` away from 0.5; uint8 images use the same values
    times 255, rounded. Values never equal ``0``, ``1``, ``0.5``, ``127/128`` or ``255`` so that
    every erased pixel differs from the original.
    """
    gen = torch.Generator().manual_seed(seed)
    values = low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)
    # Push values away from the gray level so that "gray" fills always change a pixel.
    values = torch.where((values - 0.5).abs() < 0.02, values + 0.05, values)
    if dtype == torch.uint8:
        return (values * 255).round().to(torch.uint8).to(device)
    return values.to(dtype).to(device)


def reference_box_mask(top: Tensor, left: Tensor, height: Tensor, width: Tensor, size: tuple[int, int],
                       active: Tensor | None = None) -> Tensor:
    """``(B, H, W)`` mask of per-image boxes (:func:`references.box_mask`; ``(B,)`` or ``(B, K)`` params)."""
    return torch.from_numpy(references.box_mask(top, left, height, width, size, active))


def reference_resize(image: Tensor, size: tuple[int, int], method: str) -> Tensor:
    """One ``(C, H, W)`` image resized to ``size`` by :func:`references.resize` (float64)."""
    resized = references.resize(image.detach().double().permute(1, 2, 0).numpy(), size, method)
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_bit_identical(a: Tensor, b: Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def changed_pixels(before: Tensor, after: Tensor) -> Tensor:
    """``(B, H, W)`` mask of pixels where any channel differs (NaN-safe for the inputs used here)."""
    return (before != after).flatten(0, -4).any(dim=-3)


def params_of(transform, images: Tensor) -> dict:
    """Draw a transform's parameters for ``images`` the way its forward does."""
    return transform.make_params([images])


def run_with_params(transform, images: Tensor) -> tuple[Tensor, dict]:
    """Run ``make_params`` then ``transform`` (forward's two halves) and return output and params."""
    params = transform.make_params([images])
    return transform.transform(images, params), params


def run_mixing(transform, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, dict]:
    """Call a mixing transform the normal way, capturing the parameters its forward drew."""
    captured: dict = {}
    original = transform.make_params

    def spy(flat):
        captured.update(original(flat))
        return captured

    transform.make_params = spy
    out, soft = transform(images, labels)
    return out, soft, captured


def cutblur_low_resolution(images: Tensor, low_height: Tensor, low_width: Tensor, method: str) -> Tensor:
    """Each ``(B, C, H, W)`` image down-sampled to its own ``(low_height[b], low_width[b])`` and
    up-sampled back, by the code :class:`~maskmix.torch.RandomCutBlur` runs: its ``apply`` with a
    box covering the whole image, a factor range whose tables hold every size from 1 to ``H``/``W``."""
    from maskmix.torch import RandomCutBlur

    batch, _, height, width = images.shape
    transform = RandomCutBlur(blur_factor=(1e-9, 1 - 1e-9), resize_method=method)
    zeros, ones = torch.zeros(batch, dtype=torch.int64), torch.ones(batch, dtype=torch.bool)
    params = {"top": zeros, "left": zeros, "height": torch.full_like(zeros, height),
              "width": torch.full_like(zeros, width), "low_height": low_height, "low_width": low_width,
              "selected": ones, "all_selected": True}
    return transform.apply(images, params)
