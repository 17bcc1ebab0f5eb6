"""CutBlur: replace a rectangle by a low-resolution copy of the same region (Yoo et al., 2020)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import low_resolution_size_range
from maskmix.params import RANDOM_CUTBLUR, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixTransform, may_reuse_buffers, selection

__all__ = ["RandomCutBlur", "apply_resampling", "resampling_matrices"]


def resampling_matrices(low_sizes: Tensor, size: int, max_low: int, method: str,
                        dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Down- and up-sampling matrices between ``size`` samples and each of ``low_sizes``.

    Returns ``down`` ``(K, max_low, size)`` and ``up`` ``(K, size, max_low)`` for the ``K``
    int64 ``low_sizes`` (each in ``[1, max_low]``), zero-padded beyond each low size; see
    :func:`maskmix.torch._patches.resample_matrix` for the weights.
    """
    full = torch.full_like(low_sizes, size)
    down = _patches.resample_matrix(full, low_sizes, size, max_low, method, dtype)
    up = _patches.resample_matrix(low_sizes, full, max_low, size, method, dtype)
    return down, up


def apply_resampling(images: Tensor, down_h: Tensor, up_h: Tensor, down_w: Tensor, up_w: Tensor, *,
                     rows_h: Tensor | None = None, rows_w: Tensor | None = None,
                     dtype: torch.dtype | None = None) -> Tensor:
    """``U_h R_h X R_w^T U_w^T`` per image: down-sample ``(B, C, H, W)`` images and up-sample back.

    The matrices are ``(B, h, H)``, ``(B, H, h)``, ``(B, w, W)``, ``(B, W, w)``, or 2-D to share
    one size across the batch: ``matmul`` folds a 2-D matrix into one large product, where a
    leading dim of 1 would be broadcast into a copy per image and channel (measured 2026-12-06:
    an eighth less host time for a small batch, 4-10 % at 64x3x64x64). With ``rows_h``/``rows_w``
    they are tables and each image takes its row (``down_h[rows_h]``), gathered only when its
    product is made. ``dtype``: the images are first converted to it, in the standard layout (a
    copy this function holds alone, dropped once the width is shrunk, before the low-resolution
    batch is grown back to full size).
    """
    # The standard layout: a 2-D matrix is folded into one product over the batch's rows, so a
    # channels_last or strided batch would sum in another order (values off in the last bit). One
    # conversion straight into that layout (`to` returns a strided batch of the same dtype as it
    # is, hence `contiguous` too).
    x = images if dtype is None else images.to(dtype, memory_format=torch.contiguous_format).contiguous()
    # Cheapest order: shrink the width, then the height, grow the height, then the width.
    with _sampling.exact_matmuls(images.device.type):
        x = x @ _per_image(_pick(down_w, rows_w).mT)  # (B, C, H, w)
        x = _per_image(_pick(down_h, rows_h)) @ x  # (B, C, h, w)
        x = _per_image(_pick(up_h, rows_h)) @ x  # (B, C, H, w)
        return x @ _per_image(_pick(up_w, rows_w).mT)  # (B, C, H, W)


def _pick(matrices: Tensor, row: Tensor | None) -> Tensor:
    """``matrices[row]``, each image's matrix gathered from a table; the matrices themselves when
    ``row`` is None (see :meth:`RandomCutBlur._axis_matrices`)."""
    return matrices if row is None else matrices[row]


def _per_image(matrix: Tensor) -> Tensor:
    """A ``(B, ., .)`` stack of matrices as ``(B, 1, ., .)``, broadcast over the channels; a shared
    2-D matrix as it is."""
    return matrix.unsqueeze(1) if matrix.ndim == 3 else matrix


class RandomCutBlur(_sampling.RectanglePatches, MaskMixTransform):
    """Replace a rectangle of each image by the same region of a low-resolution copy of the image.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448). The paper cuts and pastes between a low-resolution input
    and its high-resolution target; :func:`~maskmix.torch.cutblur_pair` does exactly that for super-resolution
    pairs. This transform is the single-image form (as in the library it replaces): the
    low-resolution copy is made from the image itself.

    Per image:

    1. A rectangle is drawn as in :class:`~maskmix.torch.RandomErasing`: area fraction ``a``
       uniform in ``patch_area``, aspect ratio ``r = h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))`` by ``w = round(sqrt(a H W / r))``
       pixels (at least 1); the first of 10 candidates that fits is kept (else the first one,
       clamped to the image), placed uniformly, fully inside.
    2. A blur factor ``f`` is drawn uniformly in ``blur_factor`` (or is the fixed value). The
       low-resolution copy has ``max(1, round(H f))`` by ``max(1, round(W f))`` pixels (halves
       rounded up): the image is down-sampled to that size and up-sampled back to ``H x W``,
       both with ``resize_method``.
    3. The pixels of the rectangle are replaced by the low-resolution copy's pixels there;
       everything else is unchanged. ``uint8`` results are rounded.

    Resizes give the numbers of ``torch.nn.functional.interpolate``: ``"nearest"`` is
    ``mode="nearest-exact"`` (pixel centres aligned, as PIL and TensorFlow), ``"bilinear"``
    and ``"bicubic"`` are antialiased (as ``v2.Resize`` and PIL: the down-sampling averages
    instead of aliasing), ``"area"`` averages whole pixel bins when
    down-sampling (adaptive average pooling) and repeats pixels when up-sampling (averaging
    where a bin straddles two pixels). Every image has its own factor, also within one batch,
    and the batch stays batched: the resizes are separable linear maps, so each image's is a
    pair of resampling matrices per axis, zero-padded to the largest size the range allows,
    applied with batched matmuls (:func:`apply_resampling`); with a fixed factor all images
    share one set. The matrices for every size the range allows are built once per image size
    and dtype and kept between eager calls (up to 64 MiB per table, beyond which each image's
    are built per call); each call then costs a few matmuls, faster than
    ``interpolate``'s antialiased kernels on CPU and CUDA. The results equal ``interpolate``'s up to float
    rounding (and to TF32, if the user enabled it for float32 matmuls); CPU and CUDA may differ
    by that rounding (one level for ``uint8``). A non-finite input value (NaN,
    ±inf) makes its channel of the low-resolution copy non-finite throughout (the resampling is
    matrix products, and 0 · inf and 0 · NaN are NaN): that channel's rectangle comes out NaN,
    where ``interpolate`` keeps the damage near the value; pixels outside the rectangle are
    unchanged. ``bicubic`` may
    overshoot the input's range inside the rectangle (float images are not clipped; ``uint8``
    saturates, and so does float16 at its largest finite value, 65504, instead of inf). Values are
    computed in float32 (float64 for float64 images).

    Reproducing the paper: ``RandomCutBlur.from_paper("sr_x4")`` (``"sr_x2"``) draws the
    official box (``patch_side_normal=(0.7, 0.01)``, the MoA policy's ``alpha`` for CutBlur) and a
    low-resolution copy at ``1/4`` (``1/2``) of the size, bicubic. It is the single-image form:
    the paper takes the dataset's LR image (up-sampled with ``mode="nearest"``) and also pastes
    HR into LR half of the time, which :func:`maskmix.torch.cutblur_pair` with
    ``RandomCutBlurPair.from_paper("sr")`` does. As the official code, the presets draw one
    ratio and one box per batch (``sampling="batch"``).

    Args:
        patch_area: rectangle area as a fraction of the image: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        blur_factor: size of the low-resolution copy relative to the image: a float in (0, 1)
            or a range ``(lo, hi)`` drawn uniformly per image. Default 0.1.
        resize_method: ``"nearest"``, ``"bilinear"``, ``"bicubic"`` or ``"area"``. Default
            ``"bilinear"``.
        patch_side_normal: None (default: the rectangle above), or ``(mean, std)``: the
            official code's box of the image's shape, ``int(H r)`` by ``int(W r)`` pixels with
            ``r ~ Normal(mean, std)`` clipped to ``[0, 1]``, placed uniformly fully inside
            (``patch_area`` and ``patch_aspect_ratio`` must then keep their defaults).
        **common: common options; see :class:`~maskmix.torch.MaskMixTransform`.

    Shapes:
        ``(..., C, H, W)`` in, the same shape, dtype and device out; only the pixels of each
        image's rectangle differ from the input.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutBlur
        >>> cutblur = RandomCutBlur(blur_factor=(0.1, 0.5), resize_method="bicubic")
        >>> images = torch.rand(8, 3, 64, 64)
        >>> changed = (cutblur(images) != images).any(dim=1)  # (B, H, W): inside the rectangles only
        >>> changed.shape, bool(changed.float().mean() <= 0.3)
        (torch.Size([8, 64, 64]), True)
    """

    spec = RANDOM_CUTBLUR
    blur_factor: tuple[float, float]
    resize_method: str
    patch_side_normal: tuple[float, float] | None

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        blur_factor: float | tuple[float, float] = 0.1,
        resize_method: str = "bilinear",
        patch_side_normal: tuple[float, float] | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        params: dict[str, Any]
        const = _patches.constants(height, width, device)
        if self.patch_side_normal is None:
            # The boxes of RandomErasing's law (draw_boxes), with rows and columns drawn together.
            sides = _patches.sides_inside(batch_size, height, width, self.patch_area, self.patch_aspect_ratio,
                                          const, device=device, generator=generator)
            corners = _patches.uniform_corners(sides, const, generator=generator)
            params = {"top": corners[0], "left": corners[1], "height": sides[0], "width": sides[1]}
        else:
            params = _sampling.normal_side_boxes((batch_size,), height, width, self.patch_side_normal,
                                                 device=device, generator=generator)
        ranges = (self._size_range(height), self._size_range(width))
        lows, highs = _patches.kept(("cutblur_low_sizes", ranges), device, lambda: (
            _patches.column((ranges[0][0], ranges[1][0]), device),
            _patches.column((ranges[0][1], ranges[1][1]), device)))
        factor = _sampling.uniform_closed(*self.blur_factor, (batch_size,), device=device, generator=generator,
                                          dtype=torch.float64)
        if self.blur_factor[0] == self.blur_factor[1]:
            low = lows.expand(2, batch_size)  # one size per axis (views of a kept constant)
        else:
            # round(factor * size), halves up, clamped into the range's sizes (rounded_within).
            low = torch.floor(factor * const.dims + 0.5).to(torch.int64).clamp(lows, highs)
        params["blur_factor"] = factor
        params["low_height"], params["low_width"] = low[0], low[1]
        return params

    def _size_range(self, size: int) -> tuple[int, int]:
        """The smallest and largest low-resolution size ``blur_factor`` allows for ``size``."""
        return low_resolution_size_range(self.blur_factor, size)

    def _axis_matrices(self, size: int, low_sizes: Tensor, dtype: torch.dtype,
                       device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
        """One axis's down- and up-sampling matrices for the batch, as ``(down, up, row)``: the
        matrices are ``down[row]`` and ``up[row]`` (:func:`_pick`; ``row`` None: ``down`` and ``up``
        themselves). 2-D when the factor allows one low-resolution size, else ``(B, h, size)`` and
        ``(B, size, h)``, row ``b`` for image ``b``'s size ``low_sizes[b]`` (``h`` the largest size
        the range allows).

        The matrices of every allowed size form a table that depends on the image size and the
        configuration only, so in eager mode it is kept between calls and each call gathers its
        images' rows (for 224 x 224 images and ``blur_factor=(0.05, 0.5)`` about 10 MB per matrix in
        float32); under ``torch.compile`` it is built inside the graph. A table grows with the
        cube of the side (18 GB for 1356 x 2040 images and ``(0.1, 0.5)``): beyond
        :data:`~maskmix.torch._patches.RESAMPLING_TABLE_BYTES` each image's matrices are built
        directly, every call. Both give the same matrices. The gathers are left to the caller,
        which makes each image's matrices (for 224 x 224 images and ``(0.05, 0.5)``, two thirds of
        a uint8 batch each) only when a product needs them.
        """
        low, high = self._size_range(size)
        count = high - low + 1
        if count > 1 and not _patches.table_fits(count, high, size, dtype):
            down, up = resampling_matrices(low_sizes, size, high, self.resize_method, dtype)
            return down, up, None
        down, up = _patches.kept_table(
            self, (size, low, high, dtype, device, self.resize_method),
            lambda: resampling_matrices(torch.arange(low, high + 1, device=device), size, high, self.resize_method,
                                        dtype),
            slots=2)  # one per axis
        if count == 1:
            # The plain 2-D matrices, which apply_resampling folds into single products.
            return down[0], up[0], None
        return down, up, low_sizes - low

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        _, _, height, width = images.shape
        dtype = images.dtype
        work_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        down_h, up_h, rows_h = self._axis_matrices(height, params["low_height"], work_dtype, images.device)
        down_w, up_w, rows_w = self._axis_matrices(width, params["low_width"], work_dtype, images.device)
        blurred = apply_resampling(images, down_h, up_h, down_w, up_w, rows_h=rows_h, rows_w=rows_w, dtype=work_dtype)
        # The product is a fresh buffer of this call's: uint8 rounds and saturates it in place. The
        # float result is dropped once cast, before the output is made.
        blurred = self.to_image_dtype(blurred, dtype, in_place=True)
        const = _patches.constants(height, width, images.device)
        rows, cols = _patches.box_lines(torch.stack((params["top"], params["left"])),
                                        torch.stack((params["height"], params["width"])), const.positions,
                                        height, width, within=selection(params))
        mask = _sampling.mask_and(rows.unsqueeze(-1), cols.unsqueeze(-2))
        # channels_last images come back channels_last through the base's conversion: the matmuls
        # return the resampled batch in the standard layout, so one batch-sized conversion remains
        # (of the resampled batch or of the result; a where writing channels_last from inputs of
        # both layouts costs more than the two). The cast resampled batch is a new buffer in the
        # images' (standard) layout: in eager mode, without an autograd graph, where writes over it.
        reuse = may_reuse_buffers(images)
        return torch.where(mask.unsqueeze(1), blurred, images, **({"out": blurred} if reuse else {}))
