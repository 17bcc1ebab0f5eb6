"""Cut-Thumbnail: paste a shrunken copy of the whole image into it (Xie et al., 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import thumbnail_size_range
from maskmix.params import RANDOM_CUT_THUMBNAIL, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixTransform, selection
from ._mixing import MixingDraw, MixingTransform
from .cutmix import partner_box

__all__ = ["RandomCutThumbnail"]


class RandomCutThumbnail(MixingTransform):
    """Shrink the whole image to a thumbnail and paste it at a random place of the image.

    Paper: T. Xie, X. Cheng, X. Wang, M. Liu, J. Deng, T. Zhou and M. Liu, "Cut-Thumbnail: A Novel
    Data Augmentation for Convolutional Neural Network", ACM Multimedia 2021
    (https://arxiv.org/abs/2103.05342). The paper pastes a thumbnail of 1/4 of the image area
    (112 x 112 on 224 x 224 ImageNet images); its "mixed single-image" variant
    (``mix_images=True`` here) pastes another image's thumbnail and mixes the labels.

    Per image:

    * the area fraction ``a`` is uniform over ``thumbnail_area`` (fixed if it is one number);
    * the thumbnail keeps the image's aspect ratio: it is ``th = round(H sqrt(a))`` by
      ``tw = round(W sqrt(a))`` pixels, at least 1 and at most the image's size;
    * its top-left corner is uniform over the positions where it lies fully inside the image;
    * the box is overwritten with the whole image (``mix_images=False``) or the whole image of a
      partner drawn uniformly among the other images of the batch (``mix_images=True``),
      resampled from ``H x W`` to ``th x tw`` pixels. Every other pixel is unchanged.

    With ``mix_images=True`` the label row becomes ``(1 - f) y_self + f y_partner`` with
    ``f = th * tw / (H * W)``, the exact fraction of pixels that now come from the partner, or
    ``f = thumbnail_weight`` when that is set: the paper's fixed ``lam``, which is *not* the pixel
    fraction in general (it is for a thumbnail of exactly a quarter of the image, 112 x 112 of
    224 x 224; on 31 x 31 images a 16 x 16 thumbnail covers 0.266 of the pixels).

    ``resize_method`` says how the ``H x W`` image becomes ``th x tw``; each method is
    :func:`torch.nn.functional.interpolate` with ``size=(th, tw)`` and ``align_corners=False``
    (up to floating-point summation order), applied to a different size per
    image (as matrix products: a non-finite input value, NaN or ±inf, makes the whole
    thumbnail's channel NaN, where ``interpolate`` keeps the damage near the value; the rest of
    the image is unchanged):

    * ``"bilinear"`` (default): ``mode="bilinear", antialias=True``: a triangle filter widened by
      the scale factor ``H / th`` (``W / tw``), weights renormalised at the borders, as PIL's
      ``BILINEAR`` and torchvision's ``Resize(antialias=True)``: every source pixel contributes,
      so the thumbnail is not aliased.
    * ``"bicubic"``: ``mode="bicubic", antialias=True``: Keys' cubic filter (``a = -0.5``)
      widened likewise, as PIL's ``BICUBIC``. It can overshoot: float results are not clipped,
      uint8 results are saturated to ``[0, 255]`` (float16 ones at 65504, not written as inf).
    * ``"area"``: ``mode="area"``: output pixel ``(i, j)`` is the mean of the source rows
      ``floor(i H / th) <= y < ceil((i + 1) H / th)`` and columns likewise (adaptive average
      pooling).
    * ``"nearest"``: ``mode="nearest-exact"``: output pixel ``i`` copies source pixel
      ``min(floor((i + 0.5) H / th), H - 1)`` (pixel centres aligned, as PIL and TensorFlow; the
      scale is computed in float32 as ATen does, so ties fall the same way).
    * ``"nearest_legacy"``: ``mode="nearest"``, ``interpolate``'s default, which the paper's code
      calls: output pixel ``i`` copies source pixel ``min(floor(i H / th), H - 1)`` (the first
      pixel of each bin: 224 -> 112 keeps the even rows and columns, where ``"nearest"`` keeps the
      odd ones).

    The resampling is separable and batched, with no loop over the images: per image, two
    weight matrices ``R_h`` (``th x H``) and ``R_w`` (``tw x W``), zero-padded to the largest
    thumbnail the range allows, give the thumbnail ``R_h @ X @ R_w^T`` in one batched matmul per
    axis, computed in float32 (float64 for float64 images; float32 matmuls follow
    ``torch.backends.cuda.matmul.allow_tf32`` / ``torch.set_float32_matmul_precision``); two
    gathers move it to its box. When the range allows fewer sizes than there are images, the
    matrix of each size is built once and picked per image. A single ``thumbnail_area`` goes
    through the same code (one shared matrix per axis, so plain matmuls), so both cases have
    exactly the same semantics. uint8 results are rounded and saturated; float results are cast
    back to the image dtype. The dense matmuls cost about ``2 B C H W (th + tw)`` flops: cheap at
    training resolutions, growing as the cube of the side for very large images.

    With ``mix_images=False`` (default) this is a per-image transform: it takes images (a 3-D
    ``(C, H, W)`` image too) or any torchvision sample, and leaves labels and other entries of
    the sample untouched; ``num_classes`` and ``label_smoothing`` are then unused. With
    ``mix_images=True`` it is called like :class:`~maskmix.torch.RandomCutMix`, with
    ``(images, labels)`` and a batch of images; batches of 0 or 1 images pass through unchanged.

    Reproducing the paper: ``RandomCutThumbnail.from_paper("imagenet_mst")`` (the mixed single
    thumbnail) and ``from_paper("imagenet_st")`` (the self thumbnail) are the official ImageNet
    runs for 224 x 224 images: a quarter-area (112 x 112) thumbnail made with
    ``"nearest_legacy"``, placed uniformly where it fits, label weight 0.25 for the partner, each
    batch augmented with probability 0.8. As the official code, they draw one position and one
    participation for the whole batch (``sampling="batch"``, ``bernoulli_mix=True``), and the
    mixed one pairs images by a random permutation (``partner="permutation"``).

    Args:
        thumbnail_area: thumbnail area as a fraction of the image area, in ``(0, 1)``: a float or
            a pair ``(lo, hi)`` (uniform per image). Default 0.1; the paper uses 0.25.
        resize_method: ``"bilinear"``, ``"bicubic"``, ``"area"``, ``"nearest"`` or
            ``"nearest_legacy"`` (see above).
        mix_images: ``True`` pastes the partner's thumbnail and mixes the labels.
        thumbnail_weight: None (default: the exact pixel fraction) or a fixed label weight in
            ``[0, 1]`` for the partner (``mix_images=True``; unused otherwise).
        num_classes: number of classes, required with class-index labels (``mix_images=True``).
        label_smoothing: in ``[0, 1)``, applied before mixing (``mix_images=True``). Default 0.
        partner: each image's partner, ``"other"``, ``"permutation"`` or ``"flip"`` (``mix_images=True``
            only: an error otherwise); see the mixing base class.
        **common: ``augmentation_ratio``, ``bernoulli_mix``, ``pixels_range``, ``generator``; see
            :class:`~maskmix.torch.MaskMixTransform`.

    Shapes:
        ``mix_images=False``: images ``(..., C, H, W)``, returned with the same shape.
        ``mix_images=True``: images ``(B, C, H, W)`` (or ``(..., B, C, H, W)``), labels ``(B,)``
        integer or ``(B, K)`` float; returns ``(images, labels)`` with labels ``(B, K)`` float32
        (float64 if given).

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutThumbnail
        >>> RandomCutThumbnail(thumbnail_area=0.25)(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])
        >>> images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
        >>> out, soft = RandomCutThumbnail(mix_images=True, num_classes=10)(images, labels)
        >>> soft.shape
        torch.Size([8, 10])
    """

    spec = RANDOM_CUT_THUMBNAIL
    dense_targets = "move"
    thumbnail_area: tuple[float, float]
    resize_method: str
    mix_images: bool
    thumbnail_weight: float | None

    def __init__(
        self,
        *,
        thumbnail_area: float | tuple[float, float] = 0.1,
        resize_method: str = "bilinear",
        mix_images: bool = False,
        thumbnail_weight: float | None = None,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        partner: str = "other",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    @property
    def needs_batch(self) -> bool:  # type: ignore[override]  # a per-instance property over the base's class flag
        """Only the mixed variant pairs images of a batch; the plain one accepts a single image."""
        return self.mix_images

    def forward(self, *inputs: Any) -> Any:
        if self.mix_images:
            return super().forward(*inputs)
        # A per-image transform: torchvision's calling convention, labels pass through.
        return MaskMixTransform.forward(self, *inputs)

    # ----------------------------------------------------------------------------------------
    # Sampling.
    # ----------------------------------------------------------------------------------------

    def thumbnail_sizes(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The smallest and largest ``(th, tw)`` that ``thumbnail_area`` allows for an ``H x W`` image."""
        return thumbnail_size_range(self.thumbnail_area, height, width)

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        if self.mix_images:
            return super().sample(batch_size, channels, height, width, dtype=dtype, device=device,
                                  generator=generator)
        return self._sample_thumbnails(batch_size, height, width, device=device, generator=generator)

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        return self._sample_thumbnails(draw.batch_size, draw.height, draw.width, device=draw.device,
                                       generator=draw.generator)

    def _sample_thumbnails(self, batch_size: int, height: int, width: int, *, device: torch.device,
                           generator: torch.Generator | None) -> dict[str, Any]:
        area = _sampling.uniform_closed(*self.thumbnail_area, (batch_size,), device=device, generator=generator)
        const = _patches.constants(height, width, device)
        smallest, largest = self.thumbnail_sizes(height, width)
        lows, highs = _patches.kept(("thumbnail_sizes", smallest, largest), device, lambda: (
            _patches.column(smallest, device), _patches.column(largest, device)))
        if smallest == largest:
            sides = lows.expand(2, batch_size)  # one size (views of a kept constant)
        else:
            # round(sqrt(area) H) by round(sqrt(area) W), clamped into the range's sizes (rounded_within).
            sides = (torch.sqrt(area) * const.dims).round_().to(torch.int64).clamp(lows, highs)
        h, w = sides[0], sides[1]
        corners = _patches.uniform_corners(sides, const, generator=generator)
        top, left = corners[0], corners[1]
        params = {"area": area, **partner_box(top, left, h, w, height, width)}
        if self.thumbnail_weight is not None:
            # The paper's fixed label weight, whatever the thumbnail's pixel count.
            params["partner_weight"] = torch.full((batch_size,), self.thumbnail_weight, dtype=torch.float64,
                                                  device=device)
        return params

    # ----------------------------------------------------------------------------------------
    # Pixels.
    # ----------------------------------------------------------------------------------------

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The thumbnails are products, new buffers of this call's: uint8 rounds them in place.
        thumbnails = self.to_image_dtype(self.thumbnails(images, params), images.dtype, in_place=True)
        return self._paste(images, thumbnails, params)

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # Labels are resized with nearest (0/1 weights: float64 carries any int32 label exactly),
        # the legacy rule when the images use it: a mask pixel copies the source the image's copies.
        method = "nearest_legacy" if self.resize_method == "nearest_legacy" else "nearest"
        thumbnails = self.thumbnails(masks.to(torch.float64), params, method=method)
        return self._paste(masks, thumbnails.to(masks.dtype), params)

    def _paste(self, images: Tensor, thumbnails: Tensor, params: Mapping[str, Any]) -> Tensor:
        """``images`` with each ``(B, C, th_max, tw_max)`` thumbnail pasted in its box."""
        batch, channels, height, width = images.shape
        const = _patches.constants(height, width, images.device)
        _, largest = self.thumbnail_sizes(height, width)
        max_h, max_w = largest
        zeros, last = _patches.kept(("thumbnail_last", largest), images.device, lambda: (
            _patches.column((0, 0), images.device).unsqueeze(-1),
            _patches.column((max_h - 1, max_w - 1), images.device).unsqueeze(-1)))
        # Pixel (y, x) of the box reads (y - top, x - left) of the thumbnail, rows [0] and columns
        # [1] together (clamped: pixels outside the box read something, which the box mask drops).
        starts = torch.stack((params["top"], params["left"]))
        local = (const.positions - starts.unsqueeze(-1)).clamp(zeros, last)
        local_y, local_x = local[0, :, :height], local[1, :, :width]
        if channels > 1 and images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
            # One index_select of whole pixels (B th tw, C rows): the result is channels_last, as
            # the images, and the where below writes a channels_last output with no conversion.
            index = (local_y * max_w).unsqueeze(-1) + local_x.unsqueeze(-2)
            index = index + torch.arange(0, batch * max_h * max_w, max_h * max_w, device=images.device).view(-1, 1, 1)
            rows = thumbnails.permute(0, 2, 3, 1).reshape(batch * max_h * max_w, channels)
            pasted = rows.index_select(0, index.view(-1)).view(batch, height, width, channels).permute(0, 3, 1, 2)
        else:
            # Two gathers with broadcast (expanded) indices: rows, then columns.
            pasted = thumbnails.gather(2, local_y.view(batch, 1, height, 1).expand(batch, channels, height, max_w))
            pasted = pasted.gather(3, local_x.view(batch, 1, 1, width).expand(batch, channels, height, width))
        rows_in, cols_in = _patches.box_lines(starts, torch.stack((params["height"], params["width"])),
                                              const.positions, height, width, within=selection(params))
        box = _sampling.mask_and(rows_in.unsqueeze(-1), cols_in.unsqueeze(-2))
        return torch.where(box.unsqueeze(1), pasted, images)

    def thumbnails(self, images: Tensor, params: Mapping[str, Any], *, method: str | None = None) -> Tensor:
        """``(B, C, th_max, tw_max)`` thumbnails ``R_h @ X @ R_w^T`` in float32 (float64 for float64).

        Image ``b``'s thumbnail is the top-left ``th[b] x tw[b]`` corner; with ``mix_images`` it is
        the thumbnail of its partner's image. Columns are resampled first, on the contiguous
        ``(B, C * H, W)`` view; an axis whose matrix all images share is one plain matmul, and the
        partners are picked as late as possible, where the tensors are smallest. Autocast is off
        for the products (they stay in float32).
        """
        with _sampling.exact_matmuls(images.device.type):
            return self._thumbnails(images, params, method)

    def _thumbnails(self, images: Tensor, params: Mapping[str, Any], method: str | None) -> Tensor:
        batch, channels, height, width = images.shape
        work = torch.promote_types(images.dtype, torch.float32) if images.dtype.is_floating_point else torch.float32
        (min_h, min_w), (max_h, max_w) = self.thumbnail_sizes(height, width)
        method = self.resize_method if method is None else method
        cols = self._resampling(width, min_w, max_w, params["width"], work, images.device, method)
        partner = params["partner"] if self.mix_images else None
        # Contiguous: the matmul kernels' summation order (hence the last bit) depends on strides.
        # One conversion straight into the standard layout (a channels_last batch would otherwise
        # be converted, then copied: two float batches alive at once). Each step below rebinds
        # `x`, so the previous, larger tensor is dropped as soon as the next one is made.
        x = images.to(work, memory_format=torch.contiguous_format).contiguous()  # `to` keeps a strided batch as it is
        if cols.ndim == 2:
            x = x @ cols.mT
        else:
            if partner is not None:
                x, partner = x[partner], None
            x = torch.bmm(x.reshape(batch, channels * height, width), cols.mT)
            x = x.view(batch, channels, height, max_w)
        # The rows' matrices are made once the full-size batch is gone (per image, they may weigh
        # a quarter of it), and the columns' dropped.
        del cols
        rows = self._resampling(height, min_h, max_h, params["height"], work, images.device, method)
        if rows.ndim == 2:
            x = rows @ x
        else:
            if partner is not None:
                x, partner = x[partner], None
            # One (max_h, H) @ (H, C * max_w) product per image, on a copy of the column-resampled
            # batch in that order (the batch itself dropped before the product is made).
            x = x.permute(0, 2, 1, 3).reshape(batch, height, channels * max_w)
            x = torch.bmm(rows, x)
            x = x.view(batch, max_h, channels, max_w).permute(0, 2, 1, 3)
        return x[partner] if partner is not None else x

    def _resampling(self, size: int, smallest: int, largest: int, sizes: Tensor, dtype: torch.dtype,
                    device: torch.device, method: str) -> Tensor:
        """Resampling matrices of one axis: ``(largest, size)`` if all images share one size, else
        ``(B, largest, size)`` (row ``i`` of image ``b`` is zero for ``i >= sizes[b]``).

        The matrix of every possible size ``smallest..largest`` is built (a table) and each image
        picks its own. The table depends on the configuration and the image size only, so in
        eager mode it is built once and kept (the last two, one per axis; for 224 x 224 images and
        ``thumbnail_area=(0.05, 0.5)`` about 15 MB each in float32): a call then costs one gather
        instead of the few dozen small kernels that build matrices. Under ``torch.compile`` it is
        built inside the graph, or, when the range allows more sizes than there are images, each
        image's matrix is built directly; so it is in eager mode for a table beyond
        :data:`~maskmix.torch._patches.RESAMPLING_TABLE_BYTES` (it grows with the cube of the side:
        15 GB for 1356 x 2040 images). Both give the same matrices.
        """
        count = largest - smallest + 1
        full = torch.full((1,), size, dtype=torch.int64, device=device)
        # A symbolic batch size (torch.export with a Dim, dynamic=True) takes the table, whose size
        # does not depend on it: comparing the two would guard the program to one side.
        fewer_images = not isinstance(sizes.shape[0], torch.SymInt) and count > sizes.shape[0]
        if count > 1 and (not _patches.table_fits(count, largest, size, dtype)
                          or (torch.compiler.is_compiling() and fewer_images)):
            return _patches.resample_matrix(full, sizes, size, largest, method, dtype)
        table = _patches.kept_table(
            self, (size, smallest, largest, dtype, device, method),
            lambda: _patches.resample_matrix(full, torch.arange(smallest, largest + 1, device=device), size,
                                             largest, method, dtype),
            slots=4)  # one per axis, for the images and (nearest) their masks
        if count == 1:
            return table[0]
        return table[sizes - smallest]
