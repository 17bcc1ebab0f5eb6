"""CutPaste: cut a patch and paste it elsewhere in the same image (Li et al., 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import LUMA_WEIGHTS, rotation_range
from maskmix.params import RANDOM_CUTPASTE, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutPaste"]

Tensor = Any


def shift_hue(ops: Any, rgb: Tensor, shift: Tensor, *, channels_first: bool) -> Tensor:
    """Rotate the hue of RGB values in ``[0, 1]`` by ``shift`` ``(B,)`` turns, per image.

    The Keras twin of :func:`maskmix.torch.cutpaste.shift_hue` (torchvision's ``adjust_hue``
    round trip RGB -> HSV -> RGB, hue shifted modulo 1), for a ``(B, H, W, 3)`` or
    ``(B, 3, H, W)`` batch.
    """
    np_ = ops.numpy
    axis = 1 if channels_first else -1
    r, g, b = (np_.take(rgb, k, axis=axis) for k in range(3))
    value = np_.maximum(np_.maximum(r, g), b)
    low = np_.minimum(np_.minimum(r, g), b)
    chroma = value - low
    one = np_.ones_like(chroma)
    # Grey pixels (chroma 0) have no hue: any hue gives them back unchanged.
    safe_chroma = np_.where(chroma > 0, chroma, one)
    saturation = chroma / np_.where(value > 0, value, one)
    red_max = value == r
    green_max = np_.logical_and(value == g, np_.logical_not(red_max))
    hue = np_.where(red_max, (g - b) / safe_chroma,
                    np_.where(green_max, 2.0 + (b - r) / safe_chroma, 4.0 + (r - g) / safe_chroma))
    hue = np_.mod(hue * (1.0 / 6.0) + np_.reshape(ops.cast(shift, rgb.dtype), (-1, 1, 1)), 1.0)
    # Back to RGB: the sector of the colour wheel and the position inside it.
    sector6 = hue * 6.0
    sector = np_.floor(sector6)
    fraction = sector6 - sector
    sector = np_.mod(sector, 6.0)
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))

    def by_sector(*choices: Tensor) -> Tensor:
        out = choices[5]
        for k in range(4, -1, -1):
            out = np_.where(sector == float(k), choices[k], out)
        return out

    return np_.stack((by_sector(value, q, p, p, t, value),
                      by_sector(t, value, value, q, p, p),
                      by_sector(p, p, t, value, value, q)), axis=axis)


def scar_offsets(ops: Any, params: Mapping[str, Tensor], height: Any, width: Any) -> tuple[Tensor, Tensor]:
    """The ``(B, H, W)`` mask of each image's rotated scar and the flat offsets every pixel would read.

    The Keras twin of :func:`maskmix.torch.cutpaste.scar_offsets` (the same geometry: pixel
    centres rotated back into the upright scar, nearest source pixel; int32 offsets).
    """
    np_ = ops.numpy

    def col(name: str, dtype: str = "float32") -> Tensor:
        return np_.reshape(ops.cast(params[name], dtype), (-1, 1, 1))

    length, side, angle = col("scar_length"), col("scar_width"), col("scar_angle")
    cos, sin = np_.cos(angle), np_.sin(angle)
    rows = np_.reshape(np_.arange(height, dtype="int32"), (1, -1, 1))
    cols = np_.reshape(np_.arange(width, dtype="int32"), (1, 1, -1))
    dy = ops.cast(rows, "float32") + 0.5 - col("scar_cy")
    dx = ops.cast(cols, "float32") + 0.5 - col("scar_cx")
    along = dy * cos + dx * sin
    across = dx * cos - dy * sin
    inside = np_.logical_and(np_.abs(along) < length / 2, np_.abs(across) < side / 2)
    top, left = col("scar_top", "int32"), col("scar_left", "int32")
    src_row = ops.cast(np_.floor(ops.cast(top, "float32") + length / 2 + along), "int32")
    src_col = ops.cast(np_.floor(ops.cast(left, "float32") + side / 2 + across), "int32")
    src_row = np_.minimum(np_.maximum(src_row, top), top + col("scar_length", "int32") - 1)
    src_col = np_.minimum(np_.maximum(src_col, left), left + col("scar_width", "int32") - 1)
    return inside, (src_row - rows) * width + (src_col - cols)



@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutPaste(_sampling.RectanglePatches, MaskMixLayer):
    """Cut a rectangle out of each image and paste it at another place of the same image.

    Paper: C.-L. Li, K. Sohn, J. Yoon and T. Pfister, "CutPaste: Self-Supervised Learning for
    Anomaly Detection and Localization", CVPR 2021 (https://arxiv.org/abs/2104.04015). The
    defaults are maskmix's (a larger rectangle, no jitter, no scar), not the paper's: see
    "Reproducing the paper" below. With ``return_labels=True`` the layer yields the targets of
    the self-supervised pretext task.

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
       single-channel image). With ``hue_jitter = d > 0`` the hue of the pasted pixels of RGB
       images is then shifted by a factor uniform in ``[-d, d]`` per image (torchvision's
       ``adjust_hue``: HSV round trip on values mapped from ``(lo, hi)`` to ``[0, 1]``;
       other channel counts are left as they are). ``uint8`` results are rounded.
    5. With ``scar_prob = q > 0`` each augmented image gets, with probability ``q``, a
       CutPaste-Scar instead of steps 1-3: a ``length x width`` upright rectangle (pixels, uniform
       integers in ``scar_length`` and ``scar_width``, capped by the image) is cut at a uniform
       place fully inside, rotated by an angle uniform in ``[-scar_rotation, scar_rotation]``
       degrees about its centre, and pasted with its centre uniform where the rotated rectangle's
       bounding box lies fully inside (centred when the box is larger than the image). A pixel is
       in the scar when its centre, rotated back, lies strictly inside the rectangle; it takes the
       value of the source pixel under that point (nearest neighbour, as PIL's ``rotate``). The
       jitter of step 4 applies to the scar's pixels (contrast uses their mean grey level).

    Args:
        patch_area: patch area as a fraction of the image: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        color_jitter: jitter strength ``j`` in ``[0, 1]`` of the pasted patch (see above).
            Default 0 (the pasted pixels are exact copies).
        hue_jitter: maximum hue shift ``d`` in ``[0, 0.5]`` (a fraction of the colour wheel) of
            the pasted pixels of RGB images (step 4). Default 0.
        scar_prob: probability in ``[0, 1]`` that an augmented image gets a scar (step 5)
            instead of the rectangle. Default 0 (never).
        scar_width: scar width in pixels, an int or a range ``(lo, hi)`` drawn uniformly.
            Default ``(2, 16)`` (the paper's).
        scar_length: scar length in pixels, an int or a range. Default ``(10, 25)`` (the paper's).
        scar_rotation: maximum scar rotation in degrees, in ``[0, 180]``. Default 45 (the paper's).
        three_way_labels: with ``return_labels``, label a scar 2 instead of 1: the paper's 3-way
            task (0 normal, 1 CutPaste, 2 CutPaste-Scar). Default False.
        return_labels: also return ``is_augmented``, CutPaste's "normal vs. cut-pasted" target:
            0 for an image passed through (see ``augmentation_ratio``) or whose patch fills it
            (one position only: nothing moves, e.g. ``1 x 1`` images) or whose scar reads each of its
            pixels from itself (tiny images), 1 otherwise (2 for a scar with
            ``three_way_labels``). Default False. A dict call then returns ``(dict,
            is_augmented)``: the dict's own ``labels`` are left as they are.
        **common: common options, ``seed``, ``data_format`` and layer arguments; see
            :class:`~maskmix.keras.MaskMixLayer`.

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        the same shape and dtype out, followed with ``return_labels=True`` by ``is_augmented``:
        int64 ``(B,)``, a scalar for one image (int32 on JAX without x64). The parameters drawn by
        ``get_random_transformation`` are ``height``, ``width``, ``src_top``, ``src_left``,
        ``top``, ``left`` (the destination), ``movable`` and ``selected`` (plus ``brightness``,
        ``contrast``, ``saturation`` with jitter, ``hue`` with hue jitter, and with scars
        ``is_scar``, ``scar_length``, ``scar_width``, ``scar_top``, ``scar_left``, ``scar_angle``,
        ``scar_cy``, ``scar_cx``). A dict's ``segmentation_masks`` (``(B, H, W, 1)``, any integer
        dtype) are moved as the pixels are, with the same per-image offsets (rectangles and
        scars), without the colour jitter; ``bounding_boxes`` are refused.

    Reproducing the paper:
        ``RandomCutPaste.from_paper(setting)`` with ``setting`` one of ``"cutpaste"`` (the
        rectangle: area U(0.02, 0.15), aspect log-uniform on (0.3, 3.3), jitter 0.1 on
        brightness, contrast, saturation and hue; half the batch augmented; binary labels),
        ``"scar"`` (the same with scars only) and ``"3way"`` (the best setting: 2/3 of the batch
        augmented, half of those with a scar, labels 0/1/2). The paper's images are 256 x 256
        crops in ``[0, 1]`` (set ``pixels_range`` otherwise); its ColorJitter applies the four
        adjustments in a random order, here they come in a fixed order. The laws are checked
        against a NumPy re-implementation in ``tests/papers/test_cutpaste_paper.py``.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutPaste
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> layer = RandomCutPaste(color_jitter=0.1, return_labels=True, augmentation_ratio=0.5, seed=0)
        >>> out, is_augmented = layer(images)
        >>> tuple(out.shape), int(np.asarray(is_augmented).sum())
        ((8, 64, 64, 3), 4)
    """

    reads_pixels_range = True

    spec = RANDOM_CUTPASTE
    dense_targets = "move"
    color_jitter: float
    hue_jitter: float
    scar_prob: float
    scar_width: tuple[int, int]
    scar_length: tuple[int, int]
    scar_rotation: float
    three_way_labels: bool

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        color_jitter: float = 0.0,
        hue_jitter: float = 0.0,
        scar_prob: float = 0.0,
        scar_width: int | tuple[int, int] = (2, 16),
        scar_length: int | tuple[int, int] = (10, 25),
        scar_rotation: float = 45.0,
        three_way_labels: bool = False,
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
        # The destination is uniform over the other positions: drawn among positions - 1, the
        # source's index skipped.
        # One position among up to H x W: drawn in float64 where the backend has it (index_uniforms).
        u_source, u_other = _sampling.index_uniforms(ops, 2, size, seed)
        source = _sampling.integers_from(ops, u_source, 0, positions - 1)
        other = _sampling.integers_from(ops, u_other, 0, ops.numpy.maximum(positions - 2, 0))
        other = other + ops.cast(other >= source, "int32")
        movable = positions > 1
        destination = _sampling.where(ops, movable, other, source)
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
        # The options' draws come after the defaults' ones: a default call draws what it always drew.
        if self.hue_jitter > 0:
            params["hue"] = _sampling.uniform(ops, -self.hue_jitter, self.hue_jitter, size, seed)
        if self.scar_prob > 0:
            params.update(self._sample_scars(size, height, width, seed))
            # A scar moves nothing when each of its pixels reads itself (a short scar on a tiny
            # image, pasted where it was cut): such an image is not augmented either.
            inside, shift = scar_offsets(ops, params, height, width)
            scar_moves = ops.numpy.any(ops.numpy.logical_and(inside, shift != 0), axis=(1, 2))
            params["movable"] = _sampling.where(ops, params["is_scar"], scar_moves, movable)
        return params

    def _sample_scars(self, size: tuple[Any, ...], height: Any, width: Any, seed: Any) -> dict[str, Any]:
        ops = self.ops
        np_ = ops.numpy
        if self.scar_prob >= 1:
            is_scar = np_.ones(size, dtype="bool")
        else:
            is_scar = ops.random.uniform(size, 0.0, 1.0, dtype="float32", seed=seed) < self.scar_prob
        # Sides in pixels, capped by the image (the paper's scars are for 256 x 256 crops).
        length, side = _sampling.randints(ops, [self.scar_length, self.scar_width], size, seed)
        length, side = np_.minimum(length, height), np_.minimum(side, width)
        top, left = _sampling.place_inside(ops, length, side, height, width, seed)
        angle = _sampling.uniform(ops, *rotation_range(self.scar_rotation), size, seed)
        # The rotated scar's bounding box lies fully inside, centre uniform; a box larger than the
        # image is centred on it (the scar is then clipped by the image's border).
        cos, sin = np_.abs(np_.cos(angle)), np_.abs(np_.sin(angle))
        length_f, side_f = ops.cast(length, "float32"), ops.cast(side, "float32")
        centres = []
        for extent, limit in ((length_f * cos + side_f * sin, height), (length_f * sin + side_f * cos, width)):
            limit_f = ops.cast(limit, "float32")
            u = ops.random.uniform(size, 0.0, 1.0, dtype="float32", seed=seed)
            centres.append(np_.where(extent <= limit_f, extent / 2 + u * (limit_f - extent), limit_f / 2))
        return {"is_scar": is_scar, "scar_length": length, "scar_width": side, "scar_top": top,
                "scar_left": left, "scar_angle": angle, "scar_cy": centres[0], "scar_cx": centres[1]}

    def augmentation_labels(self, params: Mapping[str, Any]) -> Tensor:
        labels = self.ops.cast(params["selected"], "int64")
        if self.three_way_labels and "is_scar" in params:
            # The paper's 3-way task: 0 normal, 1 CutPaste (rectangle), 2 CutPaste-Scar.
            labels = labels * (1 + self.ops.cast(params["is_scar"], "int64"))
        return labels

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        out, mask, box, area = self._paste(images, params)
        if self.color_jitter > 0 or self.hue_jitter > 0:
            out = _sampling.where(self.ops, self.pixel_mask(mask), self._jitter(out, box, area, params), out)
        return out

    def move_masks(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same move as the pixels (rectangles and scars), without the colour jitter: class
        # indices move, never blend.
        return self._paste(masks, params)[0]

    def _paste(self, images: Tensor, params: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``images`` with each source patch copied to its destination, the ``(B, H, W)`` pasted
        pixels (of selected images), the destination region and each region's pixel count."""
        ops = self.ops
        _, _, height, width = self.dims(images)
        box = _sampling.box_mask_of(ops, params, height, width)
        mask = ops.numpy.logical_and(box, ops.numpy.reshape(params["selected"], (-1, 1, 1)))
        # Each destination pixel reads the source pixel at the same offset inside the patch; one
        # gather from the untouched input, so overlapping source and destination are no problem.
        shift = ops.numpy.reshape((params["src_top"] - params["top"]) * width
                                  + (params["src_left"] - params["left"]), (-1, 1, 1))
        area = params["height"] * params["width"]
        if "is_scar" in params:
            scar, scar_shift = scar_offsets(ops, params, height, width)
            is_scar = ops.numpy.reshape(params["is_scar"], (-1, 1, 1))
            box = _sampling.where(ops, is_scar, scar, box)
            mask = ops.numpy.logical_and(box, ops.numpy.reshape(params["selected"], (-1, 1, 1)))
            shift = _sampling.where(ops, is_scar, scar_shift, shift)
            scar_area = ops.numpy.maximum(ops.numpy.sum(ops.cast(scar, "int32"), axis=(1, 2)), 1)
            area = _sampling.where(ops, params["is_scar"], scar_area, area)
        offsets = _sampling.where(ops, mask, shift, ops.numpy.zeros_like(mask, dtype="int32"))
        return _patches.move_pixels(ops, images, offsets, channels_first=self.channels_first), mask, box, area

    def _jitter(self, patch: Tensor, box: Tensor, area: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Brightness, contrast, saturation and hue jitter of the pixels of ``patch`` inside ``box``
        (``area`` pixels per image)."""
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

        if self.color_jitter > 0:
            x = ops.numpy.clip(lo + (x - lo) * factor("brightness"), lo, hi)
            pixels = self.per_image(ops.cast(area, work))
            # where, not a product with the mask: values outside the patch (even NaN) never leak in.
            inside = _sampling.where(ops, self.pixel_mask(box), grey(x), ops.numpy.zeros((), dtype=work))
            mean = ops.numpy.sum(inside, axis=self.spatial_axes, keepdims=True) / pixels
            x = ops.numpy.clip(mean + (x - mean) * factor("contrast"), lo, hi)
            gray = grey(x)
            x = ops.numpy.clip(gray + (x - gray) * factor("saturation"), lo, hi)
        if self.hue_jitter > 0 and channels == 3:
            # Hue is defined on [0, 1] RGB values: the value range is mapped there and back.
            shifted = shift_hue(ops, (x - lo) * (1.0 / (hi - lo)), params["hue"], channels_first=self.channels_first)
            x = lo + shifted * (hi - lo)
        return self.to_image_dtype(x, dtype)
