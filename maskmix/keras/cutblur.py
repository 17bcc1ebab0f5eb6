"""CutBlur: replace a rectangle by a low-resolution copy of the same region (Yoo et al., 2020)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import low_resolution_size_range as _size_range
from maskmix.params import RANDOM_CUTBLUR, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutBlur", "low_resolution"]

Tensor = Any

def _axis_matrices(ops: Any, low_sizes: Tensor | None, size: int, bounds: tuple[int, int], method: str,
                   dtype: str) -> tuple[Tensor, Tensor]:
    """Down ``(…, low_max, size)`` and up ``(…, size, low_max)`` matrices of one axis.

    With one possible low size (``bounds[0] == bounds[1]``) both are plain 2-D matrices shared by
    the batch; otherwise one padded matrix per image, from its own ``low_sizes[b]``.
    """
    down = _patches.axis_resampling(ops, size, low_sizes, bounds, shrink=True, method=method, dtype=dtype)
    up = _patches.axis_resampling(ops, size, low_sizes, bounds, shrink=False, method=method, dtype=dtype)
    return down, up


def low_resolution(ops: Any, images: Tensor, low_height: Tensor | None, low_width: Tensor | None,
                   height_bounds: tuple[int, int], width_bounds: tuple[int, int], method: str, *,
                   channels_first: bool) -> Tensor:
    """Down-sample each image to its own ``(low_height[b], low_width[b])`` and up-sample it back.

    ``images`` is a floating rank-4 batch (float32 or float64); ``low_height``/``low_width`` are
    int32 ``(B,)`` tensors within the static ``height_bounds``/``width_bounds`` (inclusive; when
    a pair's ends are equal every image has that size and the tensor may be None). Each resize
    gives the numbers of ``torch.nn.functional.interpolate`` with ``size=...`` and
    ``mode="nearest-exact"``, ``"area"``, or ``"bilinear"``/``"bicubic"`` antialiased, both down
    and up, up to float rounding (see :func:`maskmix.keras._patches.resample_matrix`). The
    resizes are separable, so each is a pair of per-image resampling matrices (zero-padded to the
    bounds) applied with batched ``einsum`` products, ``U_h R_h X R_w^T U_w^T``: no loop over the
    images. Returns a batch of ``images``' shape and dtype.
    """
    dtype = keras.backend.standardize_dtype(images.dtype)
    shape = ops.shape(images)
    height, width = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
    down_h, up_h = _axis_matrices(ops, low_height, height, height_bounds, method, dtype)
    down_w, up_w = _axis_matrices(ops, low_width, width, width_bounds, method, dtype)
    # Cheapest order: shrink the width, then the height, grow the height, then the width.
    x = _patches.resample(ops, images, down_w, "width", channels_first=channels_first)
    x = _patches.resample(ops, x, down_h, "height", channels_first=channels_first)
    x = _patches.resample(ops, x, up_h, "height", channels_first=channels_first)
    return _patches.resample(ops, x, up_w, "width", channels_first=channels_first)


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutBlur(_sampling.RectanglePatches, MaskMixLayer):
    """Replace a rectangle of each image by the same region of a low-resolution copy of the image.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448). The paper cuts and pastes between a low-resolution input
    and its high-resolution target; this layer is the single-image form (as in the library it
    replaces): the low-resolution copy is made from the image itself;
    :func:`~maskmix.keras.cutblur_pair` is the paper's form for super-resolution pairs.

    Per image:

    1. A rectangle is drawn as in :class:`~maskmix.keras.RandomErasing`: area fraction ``a``
       uniform in ``patch_area``, aspect ratio ``r = h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))`` by ``w = round(sqrt(a H W / r))``
       pixels (at least 1); the first of 10 candidates that fits is kept (else the first one,
       clamped to the image), placed uniformly, fully inside.
    2. A blur factor ``f`` is drawn uniformly in ``blur_factor`` (or is the fixed value). The
       low-resolution copy has ``max(1, round(H f))`` by ``max(1, round(W f))`` pixels (halves
       rounded up): the image is down-sampled to that size and up-sampled back to ``H x W``,
       both with ``resize_method``.
    3. The pixels of the rectangle are replaced by the low-resolution copy's pixels there;
       everything else is unchanged. ``uint8`` results are rounded and saturated.

    Resizes give the numbers of ``torch.nn.functional.interpolate`` (the same rules as
    :class:`maskmix.torch.RandomCutBlur`): ``"nearest"`` is ``mode="nearest-exact"`` (pixel
    centres aligned, as PIL and TensorFlow), ``"bilinear"`` and ``"bicubic"`` are antialiased
    (as ``torchvision``'s ``Resize`` and PIL: a triangle or Keys cubic (a = -0.5) filter widened
    by the scale when down-sampling), ``"area"`` averages whole pixel bins when down-sampling
    (adaptive average pooling) and repeats pixels when up-sampling. Every image has its own
    factor, also within one batch, and the batch stays batched: the resizes are separable linear
    maps, so each image's is a pair of resampling matrices per axis, zero-padded to the largest
    size the range allows, applied with batched ``einsum`` products; with a fixed factor all
    images share one set (plain products). A non-finite input value (NaN,
    ±inf) makes its channel of the low-resolution copy non-finite throughout (the resampling is
    matrix products, and 0 · inf and 0 · NaN are NaN): that channel's rectangle comes out NaN,
    where ``interpolate`` keeps the damage near the value; pixels outside the rectangle are
    unchanged. ``bicubic`` may overshoot
    the input's range inside the rectangle (float images are not clipped; ``uint8`` saturates,
    and so does float16 at its largest finite value, 65504, instead of inf).
    Values are computed in float32 (float64 for float64 images).

    Reproducing the paper: ``RandomCutBlur.from_paper("sr_x4")`` (``"sr_x2"``) draws the
    official box (``patch_side_normal=(0.7, 0.01)``, the MoA policy's ``alpha`` for CutBlur) and a
    low-resolution copy at ``1/4`` (``1/2``) of the size, bicubic. It is the single-image form:
    the paper takes the dataset's LR image (up-sampled with ``mode="nearest"``) and also pastes
    HR into LR half of the time, which :func:`maskmix.keras.cutblur_pair` with
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
        **common: common options, ``seed``, ``data_format`` and layer arguments; see
            :class:`~maskmix.keras.MaskMixLayer`.

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        same shape and dtype out. The parameters drawn by ``get_random_transformation`` are
        ``top``, ``left``, ``height``, ``width`` (the rectangle), ``blur_factor``,
        ``low_height``, ``low_width`` and ``selected``, all ``(B,)``. The batch size may be
        unknown when the layer is traced, the height and width may not (the resampling matrices
        are built for them): an unknown size raises a ``ValueError``.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutBlur
        >>> cutblur = RandomCutBlur(blur_factor=(0.1, 0.5), resize_method="bicubic", seed=0)
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> changed = (np.asarray(cutblur(images)) != images).any(axis=-1)  # inside the rectangles only
        >>> changed.shape, bool(changed.mean() <= 0.3)
        ((8, 64, 64), True)
    """

    needs_static_size = True
    spec = RANDOM_CUTBLUR
    dense_targets = "keep"  # pixels are blurred in place: masks kept, boxes passed through
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

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        ops = self.ops
        size = (batch_size,)
        if self.patch_side_normal is None:
            boxes = self.draw_boxes(ops, size, height, width, seed)
        else:
            boxes = _sampling.normal_side_boxes(ops, size, height, width, self.patch_side_normal, seed)
        factor = _sampling.uniform_closed(ops, *self.blur_factor, size, seed)
        sizes = {
            key: _sampling.rounded_within(ops, factor * float(n), _size_range(self.blur_factor, n), half_up=True)
            for key, n in (("low_height", height), ("low_width", width))
        }
        return {**boxes, "blur_factor": factor, **sizes}

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        ops = self.ops
        _, _, height, width = self.dims(images)
        dtype = keras.backend.standardize_dtype(images.dtype)
        work = "float64" if dtype == "float64" else "float32"
        blurred = low_resolution(
            ops, ops.cast(images, work), params["low_height"], params["low_width"],
            _size_range(self.blur_factor, height), _size_range(self.blur_factor, width),
            self.resize_method, channels_first=self.channels_first,
        )
        box = _sampling.box_mask_of(ops, params, height, width)
        mask = ops.numpy.logical_and(box, ops.numpy.reshape(params["selected"], (-1, 1, 1)))
        return _sampling.where(ops, self.pixel_mask(mask), self.to_image_dtype(blurred, dtype), images)
