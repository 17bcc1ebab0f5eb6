"""Test helpers shared by the torch test modules: image factories and reference masks.

The reference masks are built with plain Python slicing from the sampled parameters, independently
of the library's vectorised mask builders, so that pixel-accounting tests compare two different
computations.
"""

from __future__ import annotations

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
    """``(B, H, W)`` mask of per-image boxes, built by slicing (``(B,)`` or ``(B, K)`` params)."""
    top, left, height, width = (t.reshape(t.shape[0], -1).tolist() for t in (top, left, height, width))
    act = active.reshape(active.shape[0], -1).tolist() if active is not None else None
    mask = torch.zeros((len(top), *size), dtype=torch.bool)
    for b in range(len(top)):
        for k in range(len(top[b])):
            if act is not None and not act[b][k]:
                continue
            mask[b, top[b][k] : top[b][k] + height[b][k], left[b][k] : left[b][k] + width[b][k]] = True
    return mask


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
