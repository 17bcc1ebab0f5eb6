"""CutPaste: cut a patch and paste it elsewhere in the same image (Li et al., 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import LUMA_WEIGHTS
from maskmix.params import RANDOM_CUTPASTE, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutPaste"]

Tensor = Any

#: ITU-R BT.601 luma weights, as torchvision's ``rgb_to_grayscale``.


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutPaste(_sampling.RectanglePatches, MaskMixLayer):
    """Cut a rectangle out of each image and paste it at another place of the same image.

    Paper: C.-L. Li, K. Sohn, J. Yoon and T. Pfister, "CutPaste: Self-Supervised Learning for
    Anomaly Detection and Localization", CVPR 2021 (https://arxiv.org/abs/2104.04015). The paper's
    setting is ``patch_area=(0.02, 0.15), patch_aspect_ratio=(0.3, 3.3), color_jitter=0.1``;
    with ``return_labels=True`` the layer yields the "normal vs. cut-pasted" labels of its
    self-supervised pretext task.

    Per image (the same rules as :class:`maskmix.torch.RandomCutPaste`):

    1. A rectangle size is drawn as in :class:`~maskmix.keras.RandomErasing`: area fraction
       ``a`` uniform in ``patch_area``, aspect ratio ``r = h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))`` by ``w = round(sqrt(a H W / r))``
       pixels (at least 1); the first of 10 candidates that fits is kept (else the first one,
       clamped to the image).
    2. A source position is drawn uniformly among the positions where the rectangle lies fully
       inside the image, and a destination position uniformly among the *other* such positions
       (the same position only when there is no other, e.g. a patch as large as the image).
       Source and destination may overlap.
    3. The destination rectangle receives the source rectangle's **original** pixels (as if the
       patch were cut from a copy of the image): one gather over the flattened pixels of the
       untouched input moves them; everything else is unchanged, bit for bit.
    4. With ``color_jitter = j > 0``, the pasted patch (only) is jittered, as torchvision's
       ``ColorJitter(brightness=j, contrast=j, saturation=j)`` in a fixed order: factors ``b``,
       ``c``, ``s`` uniform in ``[1 - j, 1 + j]`` per image; brightness blends with black
       (``lo + (x - lo) b``), contrast blends with the patch's mean grey level
       (``m + (x - m) c``), saturation blends with each pixel's grey level
       (``g + (x - g) s``), each step clamped to the value range ``(lo, hi)``
       (``pixels_range``, by default ``(0, 1)`` or ``(0, 255)``). Grey levels use the ITU-R 601
       weights for 3 channels and the channel mean otherwise (so saturation does nothing to a
       single-channel image). Hue is not jittered. ``uint8`` results are rounded.

    Args:
        patch_area: patch area as a fraction of the image: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        color_jitter: jitter strength ``j`` in ``[0, 1]`` of the pasted patch (see above).
            Default 0 (the pasted pixels are exact copies).
        return_labels: also return ``is_augmented``, CutPaste's "normal vs. cut-pasted" target:
            0 for an image passed through (see ``augmentation_ratio``) or whose patch fills it
            (one position only: nothing moves, e.g. ``1 x 1`` images). Default False.
        **common: common options, ``seed``, ``data_format`` and layer arguments; see
            :class:`~maskmix.keras.MaskMixLayer`.

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        the same shape and dtype out, followed with ``return_labels=True`` by ``is_augmented``:
        int64 ``(B,)``, a scalar for one image (int32 on JAX without x64). The parameters drawn by
        ``get_random_transformation`` are ``height``, ``width``, ``src_top``, ``src_left``,
        ``top``, ``left`` (the destination), ``movable`` and ``selected`` (plus ``brightness``,
        ``contrast``, ``saturation`` with jitter).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutPaste
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> layer = RandomCutPaste(color_jitter=0.1, return_labels=True, augmentation_ratio=0.5, seed=0)
        >>> out, is_augmented = layer(images)
        >>> tuple(out.shape), int(np.asarray(is_augmented).sum())
        ((8, 64, 64, 3), 4)
    """

    spec = RANDOM_CUTPASTE
    color_jitter: float

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        color_jitter: float = 0.0,
        return_labels: bool = False,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def refine_selection(self, params: dict[str, Any], height: Any, width: Any) -> None:
        # A patch that fills its image has one position only: pasted onto itself it changes
        # nothing, so the image is not augmented.
        params["selected"] = self.ops.numpy.logical_and(params["selected"], params["movable"])

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        ops = self.ops
        size = (batch_size,)
        h, w = self.draw_rectangles(ops, size, height, width, seed)
        columns = width - w + 1
        positions = (height - h + 1) * columns
        source = _sampling.randint(ops, 0, positions - 1, size, seed)
        # Uniform over the other positions: draw among positions - 1 and skip the source's index.
        other = _sampling.randint(ops, 0, ops.numpy.maximum(positions - 2, 0), size, seed)
        other = other + ops.cast(other >= source, "int32")
        movable = positions > 1
        destination = ops.numpy.where(movable, other, source)
        params: dict[str, Any] = {
            "height": h,
            "width": w,
            "src_top": ops.numpy.floor_divide(source, columns),
            "src_left": ops.numpy.mod(source, columns),
            "top": ops.numpy.floor_divide(destination, columns),
            "left": ops.numpy.mod(destination, columns),
            "movable": movable,
        }
        if self.color_jitter > 0:
            j = self.color_jitter
            for key in ("brightness", "contrast", "saturation"):
                params[key] = _sampling.uniform(ops, 1 - j, 1 + j, size, seed)
        return params

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        ops = self.ops
        _, _, height, width = self.dims(images)
        box = _sampling.box_mask_of(ops, params, height, width)
        mask = ops.numpy.logical_and(box, ops.numpy.reshape(params["selected"], (-1, 1, 1)))
        # Each destination pixel reads the source pixel at the same offset inside the patch; one
        # gather from the untouched input, so overlapping source and destination are no problem.
        shift = (params["src_top"] - params["top"]) * width + (params["src_left"] - params["left"])
        offsets = ops.numpy.where(mask, ops.numpy.reshape(shift, (-1, 1, 1)), ops.numpy.zeros_like(mask, dtype="int32"))
        out = _patches.move_pixels(ops, images, offsets, channels_first=self.channels_first)
        if self.color_jitter > 0:
            out = ops.numpy.where(self.pixel_mask(mask), self._jitter(out, box, params), out)
        return out

    def _jitter(self, patch: Tensor, box: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Brightness, contrast and saturation jitter of the pixels of ``patch`` inside ``box``."""
        ops = self.ops
        dtype = keras.backend.standardize_dtype(patch.dtype)
        work = "float64" if dtype == "float64" else "float32"
        lo, hi = self.value_range(dtype)
        x = ops.cast(patch, work)
        axis = 1 if self.channels_first else -1
        channels = self.dims(patch)[1]

        def factor(key: str) -> Tensor:
            return self.per_image(ops.cast(params[key], work))

        def grey(values: Tensor) -> Tensor:
            if channels == 3:
                shape = (1, 3, 1, 1) if self.channels_first else (1, 1, 1, 3)
                weights = ops.numpy.reshape(ops.convert_to_tensor(list(LUMA_WEIGHTS), dtype=work), shape)
                return ops.numpy.sum(values * weights, axis=axis, keepdims=True)
            return ops.numpy.mean(values, axis=axis, keepdims=True)

        x = ops.numpy.clip(lo + (x - lo) * factor("brightness"), lo, hi)
        area = self.per_image(ops.cast(params["height"] * params["width"], work))
        # where, not a product with the mask: values outside the patch (even NaN) never leak in.
        inside = ops.numpy.where(self.pixel_mask(box), grey(x), ops.numpy.zeros((), dtype=work))
        mean = ops.numpy.sum(inside, axis=self.spatial_axes, keepdims=True) / area
        x = ops.numpy.clip(mean + (x - mean) * factor("contrast"), lo, hi)
        gray = grey(x)
        x = ops.numpy.clip(gray + (x - gray) * factor("saturation"), lo, hi)
        return self.to_image_dtype(x, dtype)
