"""Cut-Thumbnail: paste a shrunken copy of the whole image into it (Xie et al., 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import thumbnail_size_range
from maskmix.params import RANDOM_CUT_THUMBNAIL, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions
from ._mixing import MixingDraw, MixingLayer
from .cutmix import partner_box

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutThumbnail"]

Tensor = Any


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutThumbnail(MixingLayer):
    """Shrink the whole image to a thumbnail and paste it at a random place of the image.

    Paper: T. Xie, X. Cheng, X. Wang, M. Liu, J. Deng, T. Zhou and M. Liu, "Cut-Thumbnail: A Novel
    Data Augmentation for Convolutional Neural Network", ACM Multimedia 2021
    (https://arxiv.org/abs/2103.05342). The paper pastes a thumbnail of 1/4 of the image area
    (112 x 112 on 224 x 224 ImageNet images); its "mixed single-image" variant
    (``mix_images=True`` here) pastes another image's thumbnail and mixes the labels.

    Per image (the same rules as :class:`maskmix.torch.RandomCutThumbnail`):

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
    ``torch.nn.functional.interpolate`` with ``size=(th, tw)`` and ``align_corners=False`` (up
    to floating-point summation order), applied to a different size per
    image (as matrix products: a non-finite input value, NaN or ±inf, makes the whole
    thumbnail's channel NaN, where ``interpolate`` keeps the damage near the value; the rest of
    the image is unchanged):

    * ``"bilinear"`` (default): ``mode="bilinear", antialias=True``: a triangle filter widened by
      the scale factor ``H / th`` (``W / tw``), weights renormalised at the borders, as PIL's
      ``BILINEAR``: every source pixel contributes, so the thumbnail is not aliased.
    * ``"bicubic"``: ``mode="bicubic", antialias=True``: Keys' cubic filter (``a = -0.5``)
      widened likewise, as PIL's ``BICUBIC``. It can overshoot: float results are not clipped,
      uint8 results are saturated to ``[0, 255]`` (float16 ones at 65504, not written as inf).
    * ``"area"``: ``mode="area"``: output pixel ``(i, j)`` is the mean of the source rows
      ``floor(i H / th) <= y < ceil((i + 1) H / th)`` and columns likewise.
    * ``"nearest"``: ``mode="nearest-exact"``: output pixel ``i`` copies source pixel
      ``min(floor((i + 0.5) H / th), H - 1)``.
    * ``"nearest_legacy"``: ``mode="nearest"``, ``interpolate``'s default, which the paper's code
      calls: output pixel ``i`` copies source pixel ``min(floor(i H / th), H - 1)`` (the first
      pixel of each bin: 224 -> 112 keeps the even rows and columns, where ``"nearest"`` keeps the
      odd ones).

    The resampling is separable and batched, with no loop over the images: per image, two
    weight matrices ``R_h`` (``th x H``) and ``R_w`` (``tw x W``), zero-padded to the largest
    thumbnail the range allows, give the thumbnail ``R_h X R_w^T`` with one batched ``einsum``
    per axis, computed in float32 (float64 for float64 images); a fixed ``thumbnail_area`` shares
    one matrix per axis. One gather over the flattened thumbnail pixels then moves each thumbnail
    to its box. uint8 results are rounded and saturated.

    With ``mix_images=False`` (default) this is a per-image layer: it takes images (rank 3 or 4)
    and returns images; ``num_classes`` and ``label_smoothing`` are unused. With
    ``mix_images=True`` it is called like :class:`~maskmix.keras.RandomCutMix`, with
    ``(images, labels)`` (or a dict) and a batch of images; batches of 0 or 1 images pass through
    unchanged (labels made soft).

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
        **common: ``augmentation_ratio``, ``bernoulli_mix``, ``pixels_range``, ``seed``,
            ``data_format`` and Keras layer arguments; see :class:`~maskmix.keras.MaskMixLayer`.

    Shapes:
        ``mix_images=False``: images ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first
        ``(B, C, H, W)``/``(C, H, W)``), returned with the same shape and dtype.
        ``mix_images=True``: images ``(B, H, W, C)`` (channels_first ``(B, C, H, W)``), labels
        ``(B,)`` integer or ``(B, K)`` float; returns ``(images, labels)`` with labels ``(B, K)``
        float32 (float64 if given). The parameters drawn by ``get_random_transformation`` are
        ``area``, ``top``, ``left``, ``height``, ``width`` (the box), ``partner_weight``,
        ``image_pixels`` (``H * W``), ``selected`` and, when mixing, ``partner``. A dict's
        ``segmentation_masks`` (``(B, H, W, 1)``, any integer dtype) get the thumbnail of the
        mask (its own, or the partner's) made with ``"nearest"`` (``"nearest_legacy"`` when that
        is ``resize_method``, so the mask copies the pixels the image copies): each box pixel
        copies one mask pixel. ``bounding_boxes`` are refused. The batch size may be unknown when the
        layer is traced, the height and width may not (the resampling matrices are built for
        them): an unknown size raises a ``ValueError``.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutThumbnail
        >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
        >>> tuple(RandomCutThumbnail(thumbnail_area=0.25, seed=0)(images).shape)
        (8, 32, 32, 3)
        >>> labels = np.random.randint(0, 10, size=(8,))
        >>> out, soft = RandomCutThumbnail(mix_images=True, num_classes=10, seed=0)((images, labels))
        >>> tuple(soft.shape)
        (8, 10)
    """

    needs_static_size = True
    spec = RANDOM_CUT_THUMBNAIL
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
    def mixes(self) -> bool:
        """Only the mixed variant takes ``(images, labels)`` and mixes them."""
        return self.mix_images

    @property
    def needs_batch(self) -> bool:  # type: ignore[override]  # a per-instance property over the base's class flag
        """Only the mixed variant pairs images of a batch; the plain one accepts a single image."""
        return self.mix_images

    # ----------------------------------------------------------------------------------------
    # Sampling.
    # ----------------------------------------------------------------------------------------

    def thumbnail_sizes(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The smallest and largest ``(th, tw)`` that ``thumbnail_area`` allows for an ``H x W`` image."""
        return thumbnail_size_range(self.thumbnail_area, height, width)

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        if self.mix_images:
            return super().sample(batch_size, channels, height, width, dtype=dtype, seed=seed)
        return self._sample_thumbnails(batch_size, height, width, seed)

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        return self._sample_thumbnails(draw.batch_size, draw.height, draw.width, draw.seed)

    def _sample_thumbnails(self, batch_size: Any, height: int, width: int, seed: Any) -> dict[str, Any]:
        ops = self.ops
        area = _sampling.uniform_closed(ops, *self.thumbnail_area, (batch_size,), seed)
        side = ops.numpy.sqrt(area)
        (min_h, min_w), (max_h, max_w) = self.thumbnail_sizes(height, width)
        h = _sampling.rounded_within(ops, side * float(height), (min_h, max_h))
        w = _sampling.rounded_within(ops, side * float(width), (min_w, max_w))
        top, left = _sampling.place_inside(ops, h, w, height, width, seed)
        params = {"area": area, **partner_box(ops, top, left, h, w, height, width)}
        if self.thumbnail_weight is not None:
            params["partner_weight"] = ops.numpy.zeros_like(params["partner_weight"]) + self.thumbnail_weight
        return params

    def label_weight(self, transformation: Mapping[str, Any], dtype: str) -> Any:
        if self.thumbnail_weight is None:
            return super().label_weight(transformation, dtype)
        # The paper's fixed label weight, whatever the thumbnail's pixel count.
        return self.ops.numpy.zeros_like(self.ops.cast(transformation["height"], dtype)) + self.thumbnail_weight

    # ----------------------------------------------------------------------------------------
    # Pixels.
    # ----------------------------------------------------------------------------------------

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        ops = self.ops
        np_ = ops.numpy
        _, _, height, width = self.dims(images)
        dtype = keras.backend.standardize_dtype(images.dtype)
        _, (max_h, max_w) = self.thumbnail_sizes(height, width)
        thumbnails = self.to_image_dtype(self.thumbnails(images, params), dtype)
        # Pixel (y, x) of the box reads thumbnail pixel (y - top, x - left): one gather.
        local_y = np_.clip(np_.arange(height, dtype="int32") - np_.reshape(params["top"], (-1, 1)), 0, max_h - 1)
        local_x = np_.clip(np_.arange(width, dtype="int32") - np_.reshape(params["left"], (-1, 1)), 0, max_w - 1)
        index = np_.expand_dims(local_y * max_w, -1) + np_.expand_dims(local_x, 1)
        pasted = _patches.gather_pixels(ops, thumbnails, index, height, width, channels_first=self.channels_first)
        box = _sampling.box_mask_of(ops, params, height, width)
        box = np_.logical_and(box, np_.reshape(params["selected"], (-1, 1, 1)))
        return _sampling.where(ops, self.pixel_mask(box), pasted, images)

    def move_masks(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # Masks are resized with "nearest" (a class index cannot be blended), or with
        # "nearest_legacy" when the images are, so that each box pixel copies the very pixel the
        # image's copies: one gather moves the values exactly, for any integer dtype.
        ops = self.ops
        np_ = ops.numpy
        _, _, height, width = self.dims(masks)

        def sources(size: int, start: Tensor, extent: Tensor) -> Tensor:
            # (B, size): the source row (column) that each row (column) of the box reads.
            local = np_.clip(np_.arange(size, dtype="int32") - np_.reshape(start, (-1, 1)), 0, size - 1)
            return _patches.nearest_source(ops, local, size, np_.reshape(extent, (-1, 1)),
                                           legacy=self.resize_method == "nearest_legacy")

        rows = sources(height, params["top"], params["height"])
        cols = sources(width, params["left"], params["width"])
        index = np_.expand_dims(rows * width, -1) + np_.expand_dims(cols, 1)
        source = np_.take(masks, params["partner"], axis=0) if self.mix_images else masks
        pasted = _patches.gather_pixels(ops, source, index, height, width, channels_first=self.channels_first)
        box = _sampling.box_mask_of(ops, params, height, width)
        box = np_.logical_and(box, np_.reshape(params["selected"], (-1, 1, 1)))
        return _sampling.where(ops, self.pixel_mask(box), pasted, masks)

    def thumbnails(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        """``(B, th_max, tw_max, C)`` (channels_first ``(B, C, th_max, tw_max)``) thumbnails.

        ``R_h X R_w^T`` in float32 (float64 for float64 images). Image ``b``'s thumbnail is the
        top-left ``th[b] x tw[b]`` corner; with ``mix_images`` it is the thumbnail of its
        partner's image. An axis whose matrix all images share is one plain product, and the
        partners are picked as late as possible, where the tensors are smallest.
        """
        ops = self.ops
        _, _, height, width = self.dims(images)
        dtype = keras.backend.standardize_dtype(images.dtype)
        work = "float64" if dtype == "float64" else "float32"
        (min_h, min_w), (max_h, max_w) = self.thumbnail_sizes(height, width)
        rows = self._resampling(height, min_h, max_h, params["height"], work)
        cols = self._resampling(width, min_w, max_w, params["width"], work)
        partner = params["partner"] if self.mix_images else None
        x = ops.cast(images, work)
        for matrix, axis in ((cols, "width"), (rows, "height")):
            if partner is not None and len(matrix.shape) == 3:
                # Per-image matrices belong to the receiving image: pick the partners first.
                x, partner = ops.numpy.take(x, partner, axis=0), None
            x = _patches.resample(ops, x, matrix, axis, channels_first=self.channels_first)
        return ops.numpy.take(x, partner, axis=0) if partner is not None else x

    def _resampling(self, size: int, smallest: int, largest: int, sizes: Tensor, dtype: str) -> Tensor:
        """Resampling matrices of one axis: ``(largest, size)`` if all images share one size, else
        ``(B, largest, size)`` (row ``i`` of image ``b`` is zero for ``i >= sizes[b]``)."""
        return _patches.axis_resampling(self.ops, size, sizes, (smallest, largest), shrink=True,
                                        method=self.resize_method, dtype=dtype)
