"""Building blocks of the strategies that move pixels around: CutBlur, CutPaste and CutSwap.

* :func:`move_pixels` moves pixels within each image by per-pixel offsets, in one gather whose
  index is shared by the channels (no ``(B, C, H, W)`` index tensor).
* :func:`resample_matrix` builds per-image separable resampling matrices that reproduce
  ``torch.nn.functional.interpolate`` for a different output size per image.

Like :mod:`maskmix.torch._sampling`, nothing here reads tensor values back to the host or builds
data-dependent shapes, so every function runs under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["move_pixels", "resample_matrix"]

#: Integer dtypes of the same width as each float dtype, for bit-exact pixel moves.
_SAME_SIZE_INTEGER = {2: torch.int16, 4: torch.int32, 8: torch.int64}

def move_pixels(images: Tensor, offsets: Tensor) -> Tensor:
    """``out[b, c, p] = images[b, c, p + offsets[b, p]]`` over the flattened pixels ``p = y W + x``.

    ``images`` is ``(B, C, H, W)`` and ``offsets`` an int64 ``(B, H, W)`` tensor of flat source
    offsets (0 keeps a pixel where it is; ``dy * W + dx`` reads the pixel ``dy`` rows below and
    ``dx`` columns to the right). One gather moves every channel with the same ``(B, 1, H W)``
    index, broadcast over the channels (never a ``(B, C, H, W)`` index); pixels whose offset is 0
    are copied bit for bit, NaN included. Offsets must keep every source inside the image.
    """
    batch, channels, height, width = images.shape
    positions = torch.arange(height * width, device=images.device)
    index = (positions + offsets.reshape(batch, height * width)).unsqueeze(1).expand(batch, channels, height * width)
    # Move the bits, not the values: CPU gather canonicalises bfloat16 NaN payloads, and pixels
    # that stay (unselected images included) must come back bit for bit. Integer views carry no
    # gradient: images that require one are gathered as values (autograd then flows through).
    as_bits = images.is_floating_point() and not (images.requires_grad and torch.is_grad_enabled())
    bits = images.view(_SAME_SIZE_INTEGER[images.element_size()]) if as_bits else images
    moved = bits.reshape(batch, channels, height * width).gather(2, index).view(batch, channels, height, width)
    return moved.view(images.dtype) if as_bits else moved


def resample_matrix(in_size: Tensor, out_size: Tensor, in_max: int, out_max: int, method: str,
                    dtype: torch.dtype) -> Tensor:
    """``(B, out_max, in_max)`` matrices resampling a length ``in_size[b]`` to ``out_size[b]``.

    Row ``i < out_size[b]`` holds the weights of output sample ``i`` over the input samples
    ``j < in_size[b]``; rows and columns beyond an image's own sizes are zero, so a batch whose
    images have different sizes is handled by one padded batched matmul. Applied along both
    axes (``R_h @ X @ R_w^T``) the matrices reproduce ``torch.nn.functional.interpolate`` with
    ``size=(out_h, out_w)`` (up to floating-point summation order):

    * ``"nearest"``: ``mode="nearest-exact"`` (pixel centres aligned, as PIL and TensorFlow);
    * ``"nearest_legacy"``: ``mode="nearest"``, ``interpolate``'s default (source pixel
      ``floor(i * n_in / n_out)``: the top-left pixel of each bin; Cut-Thumbnail's official code);
    * ``"area"``: ``mode="area"`` (adaptive average pooling, exact integer bin boundaries);
    * ``"bilinear"``/``"bicubic"``: ``mode=method, antialias=True, align_corners=False`` (the
      PIL/torchvision resize: a triangle or Keys cubic (a = -0.5) filter widened by the scale
      when down-sampling, weights normalised at the borders).

    ``in_size`` and ``out_size`` are int64 tensors broadcastable to ``(B,)``.
    """
    device = in_size.device
    i = torch.arange(out_max, device=device).view(1, -1, 1)
    j = torch.arange(in_max, device=device).view(1, 1, -1)
    n_in = in_size.reshape(-1, 1, 1)
    n_out = out_size.reshape(-1, 1, 1)
    valid = (i < n_out) & (j < n_in)
    if method == "nearest":
        # float32 arithmetic, as ATen's nearest-exact kernels, so that ties round the same way.
        scale = n_in.to(torch.float32) / n_out.to(torch.float32)
        source = torch.floor((i.to(torch.float32) + 0.5) * scale).to(torch.int64)
        weights = (j == torch.minimum(source, n_in - 1)).to(dtype)
    elif method == "nearest_legacy":
        # ATen's legacy nearest: floor(i * scale), the scale and product in float32.
        scale = n_in.to(torch.float32) / n_out.to(torch.float32)
        source = torch.floor(i.to(torch.float32) * scale).to(torch.int64)
        weights = (j == torch.minimum(source, n_in - 1)).to(dtype)
    elif method == "area":
        start = (i * n_in) // n_out.clamp_min(1)
        end = ((i + 1) * n_in + n_out - 1) // n_out.clamp_min(1)
        weights = ((j >= start) & (j < end)).to(dtype) / (end - start).clamp_min(1).to(dtype)
    else:
        support_base = 1.0 if method == "bilinear" else 2.0
        scale = n_in.to(dtype) / n_out.clamp_min(1).to(dtype)
        center = scale * (i.to(dtype) + 0.5)
        upsampling = scale < 1.0
        inv_scale = torch.where(upsampling, 1.0, 1.0 / scale)
        support = torch.where(upsampling, support_base, support_base * scale)
        lowest = torch.trunc(center - support + 0.5).clamp_min(0)
        beyond = torch.minimum(torch.trunc(center + support + 0.5), n_in.to(dtype))
        position = j.to(dtype)
        x = ((position - center + 0.5) * inv_scale).abs()
        if method == "bilinear":
            weights = (1.0 - x).clamp_min(0.0)
        else:
            a = -0.5  # Keys' cubic convolution, as PIL and antialiased torch bicubic
            inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            outer = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
            weights = torch.where(x < 1.0, inner, torch.where(x < 2.0, outer, 0.0))
        weights = torch.where((position >= lowest) & (position < beyond) & valid, weights, 0.0)
        total = weights.sum(dim=-1, keepdim=True)
        weights = weights / torch.where(total == 0, 1.0, total)
    return torch.where(valid, weights, 0.0)
