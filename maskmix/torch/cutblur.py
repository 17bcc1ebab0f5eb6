"""CutBlur: replace a rectangle by a low-resolution copy of the same region (Yoo et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision import tv_tensors
from typing_extensions import Unpack

from maskmix.geometry import low_resolution_size_range
from maskmix.params import RANDOM_CUTBLUR, boolean, choice, fraction_or_range, number_in, positive_range

from . import _patches, _sampling
from ._base import SUPPORTED_DTYPES, CommonOptions, MaskMixTransform, selection

__all__ = [
    "CUTBLUR_DIRECTIONS",
    "RandomCutBlur",
    "apply_resampling",
    "cutblur_pair",
    "low_resolution",
    "resampling_matrices",
    "resize",
]

#: Directions accepted by :func:`cutblur_pair`.
CUTBLUR_DIRECTIONS: tuple[str, ...] = ("random", "hr_to_lr", "lr_to_hr")


def resize(images: Tensor, size: tuple[int, int], method: str) -> Tensor:
    """``torch.nn.functional.interpolate`` as :class:`RandomCutBlur` means each ``resize_method``.

    ``"nearest"`` is ``mode="nearest-exact"``, ``"area"`` is ``mode="area"`` (adaptive average
    pooling), ``"bilinear"``/``"bicubic"`` use ``antialias=True`` (as ``v2.Resize`` and PIL).
    The transform itself resizes with resampling matrices (:func:`low_resolution`) that give
    these numbers; this function is the plain reference for one size.
    """
    if method == "nearest":
        return F.interpolate(images, size=size, mode="nearest-exact")
    if method == "area":
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode=method, align_corners=False, antialias=True)


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


def apply_resampling(images: Tensor, down_h: Tensor, up_h: Tensor, down_w: Tensor, up_w: Tensor) -> Tensor:
    """``U_h R_h X R_w^T U_w^T`` per image: down-sample ``(B, C, H, W)`` images and up-sample back.

    The matrices are ``(B, h, H)``, ``(B, H, h)``, ``(B, w, W)``, ``(B, W, w)``, or have a leading
    dim of 1 to share one size across the batch.
    """
    # Cheapest order: shrink the width, then the height, grow the height, then the width.
    low = down_h.unsqueeze(1) @ (images @ down_w.transpose(-1, -2).unsqueeze(1))  # (B, C, h, w)
    return (up_h.unsqueeze(1) @ low) @ up_w.transpose(-1, -2).unsqueeze(1)  # (B, C, H, W)


def low_resolution(images: Tensor, low_height: Tensor, low_width: Tensor, method: str, *,
                   max_height: int | None = None, max_width: int | None = None) -> Tensor:
    """Down-sample each image to its own ``(low_height[b], low_width[b])`` and up-sample it back.

    ``images`` is a floating ``(B, C, H, W)`` tensor; ``low_height``/``low_width`` are int64
    ``(B,)`` tensors (or one-element tensors, one size for every image) with values in
    ``[1, H]`` / ``[1, W]``. ``max_height``/``max_width`` are static upper bounds of those sizes
    (default ``H``/``W``); tighter bounds make the computation cheaper. Each resize gives the
    numbers of :func:`resize` (``torch.nn.functional.interpolate`` with ``size=...`` and
    ``mode="nearest-exact"``, ``"area"``, or ``"bilinear"``/``"bicubic"`` antialiased), both
    down and up, up to float rounding. Different sizes per image stay batched: the resizes are
    separable, so each is a pair of per-image resampling matrices (zero-padded to the bounds)
    applied with batched matmuls, ``U_h R_h X R_w^T U_w^T``. Returns a ``(B, C, H, W)`` tensor
    of ``images``' dtype.

    Non-finite input values (NaN, inf) spread along their row and column of the result (a matmul
    multiplies them by zero weights), where ``interpolate`` would keep them local.
    """
    _, _, height, width = images.shape
    max_h = height if max_height is None else min(max(int(max_height), 1), height)
    max_w = width if max_width is None else min(max(int(max_width), 1), width)
    down_h, up_h = resampling_matrices(low_height.reshape(-1), height, max_h, method, images.dtype)
    down_w, up_w = resampling_matrices(low_width.reshape(-1), width, max_w, method, images.dtype)
    return apply_resampling(images, down_h, up_h, down_w, up_w)


def _sample_box(batch_size: int, height: int, width: int, patch_area: tuple[float, float],
                patch_aspect_ratio: tuple[float, float], *, device: torch.device,
                generator: torch.Generator | None) -> dict[str, Tensor]:
    h, w = _sampling.random_rectangles(
        (batch_size,), height, width, patch_area, patch_aspect_ratio, device=device, generator=generator
    )
    top, left = _sampling.place_inside(h, w, height, width, device=device, generator=generator)
    return {"top": top, "left": left, "height": h, "width": w}


def _box_of(params: Mapping[str, Any], height: int, width: int, *, within: Tensor | None = None) -> Tensor:
    return _sampling.box_mask(params["top"], params["left"], params["height"], params["width"], height, width,
                              within=within)


class RandomCutBlur(MaskMixTransform):
    """Replace a rectangle of each image by the same region of a low-resolution copy of the image.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448). The paper cuts and pastes between a low-resolution input
    and its high-resolution target; :func:`cutblur_pair` does exactly that for super-resolution
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

    Resizes give the numbers of ``torch.nn.functional.interpolate`` (see :func:`resize`):
    ``"nearest"`` is ``mode="nearest-exact"`` (pixel centres aligned, as PIL and TensorFlow),
    ``"bilinear"`` and ``"bicubic"`` are antialiased (as ``v2.Resize`` and PIL: the
    down-sampling averages instead of aliasing), ``"area"`` averages whole pixel bins when
    down-sampling (adaptive average pooling) and repeats pixels when up-sampling (averaging
    where a bin straddles two pixels). Every image has its own factor, also within one batch,
    and the batch stays batched: the resizes are separable linear maps, so each image's is a
    pair of resampling matrices per axis, zero-padded to the largest size the range allows,
    applied with batched matmuls (:func:`apply_resampling`); with a fixed factor all images
    share one set. The matrices for every size the range allows are built once per image size
    and dtype and kept between eager calls; each call then costs a few matmuls, faster than
    ``interpolate``'s antialiased kernels on CPU and CUDA. The results equal ``interpolate``'s up to float
    rounding (and to TF32, if the user enabled it for float32 matmuls); CPU and CUDA may differ
    by that rounding (one level for ``uint8``). Non-finite input values spread along their row
    and column of the low-resolution copy (only its rectangle is used). ``bicubic`` may
    overshoot the input's range inside the rectangle (float images are not clipped; ``uint8``
    saturates). Values are computed in float32 (float64 for float64 images).

    Args:
        patch_area: rectangle area as a fraction of the image: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        blur_factor: size of the low-resolution copy relative to the image: a float in (0, 1)
            or a range ``(lo, hi)`` drawn uniformly per image. Default 0.1.
        resize_method: ``"nearest"``, ``"bilinear"``, ``"bicubic"`` or ``"area"``. Default
            ``"bilinear"``.
        **common: ``augmentation_ratio``, ``bernoulli_mix``, ``pixels_range``, ``generator``; see
            :class:`~maskmix.torch.MaskMixTransform`.

    Shapes:
        ``(..., C, H, W)`` in, same shape, dtype and device out.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutBlur
        >>> images = torch.rand(8, 3, 64, 64)
        >>> out = RandomCutBlur(blur_factor=(0.1, 0.5), resize_method="bicubic")(images)
        >>> out.shape
        torch.Size([8, 3, 64, 64])
    """

    spec = RANDOM_CUTBLUR
    patch_area: tuple[float, float]
    patch_aspect_ratio: tuple[float, float]
    blur_factor: tuple[float, float]
    resize_method: str

    def __init__(
        self,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        blur_factor: float | tuple[float, float] = 0.1,
        resize_method: str = "bilinear",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(
            patch_area=patch_area,
            patch_aspect_ratio=patch_aspect_ratio,
            blur_factor=blur_factor,
            resize_method=resize_method,
            **common,
        )

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        params: dict[str, Any] = _sample_box(
            batch_size, height, width, self.patch_area, self.patch_aspect_ratio, device=device, generator=generator
        )
        factor = _sampling.uniform_closed(*self.blur_factor, (batch_size,), device=device, generator=generator,
                                          dtype=torch.float64)
        params["blur_factor"] = factor
        for key, size in (("low_height", height), ("low_width", width)):
            params[key] = _sampling.rounded_within(factor * size, self._size_range(size), half_up=True)
        return params

    def _size_range(self, size: int) -> tuple[int, int]:
        """The smallest and largest low-resolution size ``blur_factor`` allows for ``size``."""
        return low_resolution_size_range(self.blur_factor, size)

    def _tables(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...]:
        """Resampling matrices for every low-resolution size the factor range allows.

        They depend on the image size and the configuration only, not on the random draws, so in
        eager mode the last ones built are kept and reused (one entry; for 224 x 224 images and
        ``blur_factor=(0.05, 0.5)`` about 40 MB in float32). Under ``torch.compile`` they are
        built inside the graph instead.
        """
        compiling = torch.compiler.is_compiling()
        if not compiling:
            # Tables made under inference_mode are inference tensors, which autograd cannot save.
            # (Dynamo cannot trace the mode query: the key is only needed in eager mode.)
            key = (height, width, dtype, device, self.blur_factor, self.resize_method,
                   torch.is_inference_mode_enabled())
            cached = self.__dict__.get("_resampling_cache")
            if cached is not None and cached[0] == key:
                return cached[1]
        tables: list[Tensor] = []
        for size in (height, width):
            low, high = self._size_range(size)
            sizes = torch.arange(low, high + 1, device=device)
            tables.extend(resampling_matrices(sizes, size, high, self.resize_method, dtype))
        result = tuple(tables)
        if not compiling:
            self.__dict__["_resampling_cache"] = (key, result)
        return result

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        _, _, height, width = images.shape
        dtype = images.dtype
        work = images.to(torch.float64 if dtype == torch.float64 else torch.float32)
        down_h, up_h, down_w, up_w = self._tables(height, width, work.dtype, images.device)
        # One table row per possible size: pick each image's rows (no gather when the size is fixed).
        if down_h.shape[0] > 1:
            row = params["low_height"] - self._size_range(height)[0]
            down_h, up_h = down_h[row], up_h[row]
        if down_w.shape[0] > 1:
            row = params["low_width"] - self._size_range(width)[0]
            down_w, up_w = down_w[row], up_w[row]
        blurred = apply_resampling(work, down_h, up_h, down_w, up_w)
        mask = _box_of(params, height, width, within=selection(params))
        return torch.where(mask.unsqueeze(1), self.to_image_dtype(blurred, dtype), images)


def cutblur_pair(
    lr_upsampled: Tensor,
    hr: Tensor,
    *,
    patch_area: float | tuple[float, float] = (0.05, 0.3),
    patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
    direction: str = "random",
    augmentation_ratio: float = 1.0,
    bernoulli_mix: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """CutBlur for super-resolution pairs: swap a rectangle between the LR input and the HR target.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448); this follows the authors' ``cutblur`` function
    (clovaai/cutblur), with the rectangle drawn per image as in :class:`RandomCutBlur`.

    Per image, a rectangle is drawn as in :class:`RandomCutBlur` (area uniform in
    ``patch_area``, aspect log-uniform in ``patch_aspect_ratio``, fully inside) and the network
    input is built from the pair:

    * ``"hr_to_lr"``: the HR pixels of the rectangle are pasted into the LR image (the input is
      LR outside the rectangle, HR inside);
    * ``"lr_to_hr"``: the LR pixels of the rectangle are pasted into the HR image (the input is
      HR outside, LR inside);
    * ``"random"`` (default, the paper): one of the two, with probability 1/2, per image.

    The target stays the HR image: the model learns where to super-resolve (the paper's point:
    LR regions must be restored, HR regions left as they are). Images that are not selected
    (``augmentation_ratio``, ``bernoulli_mix`` as in :class:`~maskmix.torch.MaskMixTransform`)
    keep their LR input bit-identical.

    Args:
        lr_upsampled: the low-resolution inputs, already up-sampled to the HR size,
            ``(..., C, H, W)``; float16/bfloat16/float32/float64 or uint8.
        hr: the high-resolution targets, same shape, dtype and device.
        patch_area: rectangle area as a fraction of the image, float in (0, 1) or range.
            Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width, number > 0 or range drawn log-uniformly.
            Default ``(0.3, 3.0)``.
        direction: ``"random"``, ``"hr_to_lr"`` or ``"lr_to_hr"`` (see above).
        augmentation_ratio: fraction of the pairs that are augmented, in ``[0, 1]``. Default 1.
        bernoulli_mix: False: exactly ``round(ratio * B)`` pairs; True: each with probability
            ``ratio``.
        generator: optional ``torch.Generator`` on the images' device (leave None under
            ``torch.compile``).

    Returns:
        ``(augmented_input, hr)``: a new tensor of ``lr_upsampled``'s shape, dtype and type
        (a ``tv_tensors.Image`` stays one), and ``hr`` itself, the **same object**, not a copy
        (neither input is modified).

    Example:
        >>> import torch
        >>> from maskmix.torch import cutblur_pair
        >>> hr = torch.rand(4, 3, 64, 64)
        >>> lr = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(hr, 4), scale_factor=4)
        >>> x, y = cutblur_pair(lr, hr, direction="hr_to_lr")
        >>> y is hr, x.shape
        (True, torch.Size([4, 3, 64, 64]))
    """
    name = "cutblur_pair"
    patch_area = fraction_or_range()(name, "patch_area", patch_area)
    patch_aspect_ratio = positive_range()(name, "patch_aspect_ratio", patch_aspect_ratio)
    direction = choice(CUTBLUR_DIRECTIONS)(name, "direction", direction)
    augmentation_ratio = number_in(0.0, 1.0, lo_open=False, hi_open=False)(
        name, "augmentation_ratio", augmentation_ratio
    )
    bernoulli_mix = boolean()(name, "bernoulli_mix", bernoulli_mix)
    for label, tensor in (("lr_upsampled", lr_upsampled), ("hr", hr)):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name}: {label} must be a tensor (..., C, H, W); got {type(tensor).__name__}")
        if tensor.dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{name}: {label} must have dtype float16, bfloat16, float32, float64 or uint8; got {tensor.dtype}"
            )
        if tensor.ndim < 3:
            raise ValueError(
                f"{name}: {label} must be (..., C, H, W) with at least 3 dims; got shape {tuple(tensor.shape)}"
            )
    if lr_upsampled.shape != hr.shape:
        raise ValueError(
            f"{name}: lr_upsampled and hr must have the same shape (up-sample the LR images to the HR size "
            f"first); got {tuple(lr_upsampled.shape)} and {tuple(hr.shape)}"
        )
    if lr_upsampled.dtype != hr.dtype:
        raise TypeError(
            f"{name}: lr_upsampled and hr must have the same dtype; got {lr_upsampled.dtype} and {hr.dtype}"
        )
    if lr_upsampled.device != hr.device:
        raise ValueError(
            f"{name}: lr_upsampled and hr must be on the same device; got {lr_upsampled.device} and {hr.device}"
        )
    device = lr_upsampled.device
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"{name}: generator must be a torch.Generator or None; got {generator!r}")
        if torch.compiler.is_compiling():
            raise TypeError(
                f"{name}: torch.compile cannot trace a torch.Generator; leave generator=None under "
                "torch.compile and seed with torch.manual_seed instead"
            )
        if generator.device.type != device.type:
            raise ValueError(
                f"{name}: generator is on {generator.device} but the images are on {device}; "
                "create the generator on the images' device"
            )

    lr_plain = lr_upsampled.as_subclass(Tensor) if isinstance(lr_upsampled, tv_tensors.TVTensor) else lr_upsampled
    hr_plain = hr.as_subclass(Tensor) if isinstance(hr, tv_tensors.TVTensor) else hr
    channels, height, width = lr_plain.shape[-3:]
    batch_size = math.prod(lr_plain.shape[:-3])
    selected = _sampling.select_images(
        batch_size, augmentation_ratio, bernoulli_mix, device=device, generator=generator
    )
    box = _box_of(
        _sample_box(batch_size, height, width, patch_area, patch_aspect_ratio, device=device, generator=generator),
        height,
        width,
    )
    if direction == "random":
        lr_to_hr = torch.rand((batch_size,), device=device, **_sampling.drawing_from(generator)) < 0.5
    else:
        lr_to_hr = torch.full((batch_size,), direction == "lr_to_hr", device=device)
    # HR where the box is pasted from HR ("hr_to_lr") or where HR surrounds the LR box ("lr_to_hr").
    take_hr = torch.where(lr_to_hr.view(-1, 1, 1), ~box, box) & selected.view(-1, 1, 1)
    lr_flat = lr_plain.reshape(-1, channels, height, width)
    hr_flat = hr_plain.reshape(-1, channels, height, width)
    out = torch.where(take_hr.unsqueeze(1), hr_flat, lr_flat).reshape(lr_plain.shape)
    if isinstance(lr_upsampled, tv_tensors.TVTensor):
        out = tv_tensors.wrap(out, like=lr_upsampled)
    return out, hr
