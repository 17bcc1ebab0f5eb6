"""CutPaste: cut a patch and paste it elsewhere in the same image (Li et al., 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import LUMA_WEIGHTS, rotation_range
from maskmix.params import RANDOM_CUTPASTE, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixTransform, selection

__all__ = ["RandomCutPaste"]

def shift_hue(rgb: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of ``(B, 3, H, W)`` RGB values in ``[0, 1]`` by ``shift`` ``(B,)`` turns.

    The RGB -> HSV -> RGB round trip of torchvision's ``adjust_hue`` (hue in turns, shifted
    modulo 1; saturation and value kept), written elementwise so that every image has its own
    shift and nothing depends on the data's values.
    """
    r, g, b = rgb.unbind(dim=1)
    value = torch.maximum(torch.maximum(r, g), b)
    low = torch.minimum(torch.minimum(r, g), b)
    chroma = value - low
    # Grey pixels (chroma 0) have no hue: any hue gives them back unchanged.
    safe_chroma = torch.where(chroma > 0, chroma, 1.0)
    saturation = chroma / torch.where(value > 0, value, 1.0)
    red_max = value == r
    green_max = (value == g) & ~red_max
    hue = torch.where(red_max, (g - b) / safe_chroma,
                      torch.where(green_max, 2.0 + (b - r) / safe_chroma, 4.0 + (r - g) / safe_chroma))
    hue = torch.remainder(hue * (1.0 / 6.0) + shift.view(-1, 1, 1), 1.0)
    # Back to RGB: the sector of the colour wheel and the position inside it.
    sector6 = hue * 6.0
    sector = torch.floor(sector6)
    fraction = sector6 - sector
    sector = torch.remainder(sector, 6.0)
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))

    def by_sector(*choices: Tensor) -> Tensor:
        out = choices[5]
        for k in range(4, -1, -1):
            out = torch.where(sector == k, choices[k], out)
        return out

    return torch.stack((by_sector(value, q, p, p, t, value),
                        by_sector(t, value, value, q, p, p),
                        by_sector(p, p, t, value, value, q)), dim=1)


def scar_offsets(params: Mapping[str, Tensor], height: int, width: int) -> tuple[Tensor, Tensor]:
    """The ``(B, H, W)`` mask of each image's rotated scar and the flat offsets its pixels read.

    The scar is the upright ``scar_length x scar_width`` rectangle at (``scar_top``,
    ``scar_left``), rotated by ``scar_angle`` (radians) about its centre and moved so that its
    centre is at (``scar_cy``, ``scar_cx``) (continuous pixel coordinates, pixel ``(y, x)``
    covering ``[y, y + 1) x [x, x + 1)``). A pixel is in the scar when its centre, rotated back,
    lies strictly inside the rectangle; it reads the source pixel under that point (nearest
    neighbour, as PIL's ``rotate``). Every quantity is elementwise: no data-dependent shape.
    The offsets are those of every pixel, inside the scar or not (the caller masks them).
    """
    view = (-1, 1, 1)
    length = params["scar_length"].view(view).to(torch.float32)
    side = params["scar_width"].view(view).to(torch.float32)
    angle = params["scar_angle"].view(view)
    cos, sin = torch.cos(angle), torch.sin(angle)
    device = angle.device
    rows = torch.arange(height, device=device).view(1, -1, 1)
    cols = torch.arange(width, device=device).view(1, 1, -1)
    dy = rows + 0.5 - params["scar_cy"].view(view)
    dx = cols + 0.5 - params["scar_cx"].view(view)
    along = dy * cos + dx * sin
    across = dx * cos - dy * sin
    inside = (along.abs() < length / 2) & (across.abs() < side / 2)
    top, left = params["scar_top"].view(view), params["scar_left"].view(view)
    src_row = torch.floor(top + length / 2 + along).to(torch.int64)
    src_col = torch.floor(left + side / 2 + across).to(torch.int64)
    src_row = torch.minimum(torch.maximum(src_row, top), top + params["scar_length"].view(view) - 1)
    src_col = torch.minimum(torch.maximum(src_col, left), left + params["scar_width"].view(view) - 1)
    return inside, (src_row - rows) * width + (src_col - cols)


class RandomCutPaste(_sampling.RectanglePatches, MaskMixTransform):
    """Cut a rectangle out of each image and paste it at another place of the same image.

    Paper: C.-L. Li, K. Sohn, J. Yoon and T. Pfister, "CutPaste: Self-Supervised Learning for
    Anomaly Detection and Localization", CVPR 2021 (https://arxiv.org/abs/2104.04015). The
    defaults are maskmix's (a larger rectangle, no jitter, no scar), not the paper's: see
    "Reproducing the paper" below. With ``return_labels=True`` the transform yields the targets of
    the self-supervised pretext task.

    Per image:

    1. A rectangle size is drawn as in :class:`~maskmix.torch.RandomErasing`: area fraction
       ``a`` uniform in ``patch_area``, aspect ratio ``r = h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))`` by ``w = round(sqrt(a H W / r))``
       pixels (at least 1); the first of 10 candidates that fits is kept (else the first one,
       clamped to the image).
    2. A source position is drawn uniformly among the positions where the rectangle lies fully
       inside the image, and a destination position uniformly among the *other* such positions
       (the same position only when there is no other, e.g. a patch as large as the image).
       Source and destination may overlap.
    3. The destination rectangle receives the source rectangle's **original** pixels (as if the
       patch were cut from a copy of the image); everything else is unchanged.
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
            ``three_way_labels``). Default False.
        **common: common options; see :class:`~maskmix.torch.MaskMixTransform`.

    Shapes:
        ``(..., C, H, W)`` in, the same shape, dtype and device out, followed with
        ``return_labels=True`` by the int64 ``is_augmented`` of the leading dims ``shape[:-3]``
        (one per clip of a Video, ``shape[:-4]``; as :meth:`~maskmix.torch.MaskMixTransform.forward`
        returns it).

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
        >>> import torch
        >>> from maskmix.torch import RandomCutPaste
        >>> images = torch.rand(8, 3, 64, 64)
        >>> t = RandomCutPaste(color_jitter=0.1, return_labels=True, augmentation_ratio=0.5)
        >>> out, is_augmented = t(images)
        >>> out.shape, is_augmented.tolist().count(1)
        (torch.Size([8, 3, 64, 64]), 4)
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

    if TYPE_CHECKING:
        # With return_labels=True an image batch gives (images, labels): no narrower type holds.
        def __call__(self, *inputs: Any) -> Any: ...

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

    def refine_selection(self, params: dict[str, Any]) -> None:
        # A patch that fills its image has one position only: pasted onto itself it changes
        # nothing, so the image is not augmented (its pixels are unchanged either way, which
        # is why the move may still skip the selection when all images are selected; the
        # jitter may not, see apply).
        params["selected"] = params["selected"] & params["movable"]

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        const = _patches.constants(height, width, device)
        sides = _patches.sides_inside(batch_size, height, width, self.patch_area, self.patch_aspect_ratio, const,
                                      device=device, generator=generator)
        cells = const.dims1 - sides
        positions = cells.prod(dim=0)
        # The source uniform over the positions, k uniform over positions - 1 (see
        # _patches.uniform_corners: no clamp needed), both in one draw; the destination is
        # source + 1 + k modulo positions: uniform over the others (the source itself when the
        # patch fills the image, its only position).
        u = torch.rand((2, batch_size), dtype=torch.float64, device=device, **_sampling.drawing_from(generator))
        draws = (u * (positions - const.steps)).to(torch.int64)
        index = torch.stack((draws[0], (draws.sum(dim=0) + 1) % positions))
        # Both corners from their indices in one pass: [source, destination].
        tops = torch.floor_divide(index, cells[1])
        lefts = index - tops * cells[1]
        params: dict[str, Any] = {
            "height": sides[0],
            "width": sides[1],
            "src_top": tops[0],
            "src_left": lefts[0],
            "top": tops[1],
            "left": lefts[1],
            "movable": positions > 1,
        }
        if self.color_jitter > 0:
            j = self.color_jitter
            for key in ("brightness", "contrast", "saturation"):
                params[key] = _sampling.uniform(1 - j, 1 + j, (batch_size,), device=device, generator=generator)
        # The options' draws come after the defaults' ones: a default call draws what it always drew.
        if self.hue_jitter > 0:
            params["hue"] = _sampling.uniform(-self.hue_jitter, self.hue_jitter, (batch_size,), device=device,
                                              generator=generator)
        if self.scar_prob > 0:
            params.update(self._sample_scars(batch_size, height, width, device=device, generator=generator))
            # A scar moves nothing when each of its pixels reads itself (a short scar on a tiny
            # image, pasted where it was cut): such an image is not augmented either.
            inside, shift = scar_offsets(params, height, width)
            scar_moves = (inside & (shift != 0)).flatten(1).any(dim=1)
            params["movable"] = torch.where(params["is_scar"], scar_moves, params["movable"])
        return params

    def _sample_scars(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        size = (batch_size,)
        if self.scar_prob >= 1:
            is_scar = torch.ones(size, dtype=torch.bool, device=device)
        else:
            is_scar = _sampling.rand(size, device=device, generator=generator) < self.scar_prob
        # Sides in pixels, capped by the image (the paper's scars are for 256 x 256 crops).
        length = _sampling.randint(*self.scar_length, size, device=device, generator=generator).clamp_max(height)
        side = _sampling.randint(*self.scar_width, size, device=device, generator=generator).clamp_max(width)
        top, left = _sampling.place_inside(length, side, height, width, device=device, generator=generator)
        angle = _sampling.uniform(*rotation_range(self.scar_rotation), size, device=device, generator=generator)
        # The rotated scar's bounding box lies fully inside, centre uniform; a box larger than the
        # image is centred on it (the scar is then clipped by the image's border).
        cos, sin = torch.cos(angle).abs(), torch.sin(angle).abs()
        extent = torch.stack((length * cos + side * sin, length * sin + side * cos))
        limits = _sampling.cached_constant((float(height), float(width)), torch.float32, device).view(2, 1)
        u = _sampling.rand((2, batch_size), device=device, generator=generator)
        centre = torch.where(extent <= limits, extent / 2 + u * (limits - extent), limits / 2)
        return {"is_scar": is_scar, "scar_length": length, "scar_width": side, "scar_top": top,
                "scar_left": left, "scar_angle": angle, "scar_cy": centre[0], "scar_cx": centre[1]}

    def augmentation_labels(self, params: Mapping[str, Any]) -> Tensor:
        labels = params["selected"].to(torch.int64)
        if self.three_way_labels and "is_scar" in params:
            # The paper's 3-way task: 0 normal, 1 CutPaste (rectangle), 2 CutPaste-Scar.
            labels = labels * (1 + params["is_scar"].to(torch.int64))
        return labels

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        jitter = self.color_jitter > 0 or self.hue_jitter > 0
        mask, out = self._paste(images, params, with_mask=jitter)
        if mask is not None:
            # A patch that fills its image is not augmented (see make_params): no jitter either,
            # even when the whole batch is selected by construction and `mask` skips the selection.
            mask = _sampling.mask_and(mask, params["movable"].view(-1, 1, 1))
            area = params["height"] * params["width"]
            if "is_scar" in params:
                area = torch.where(params["is_scar"], mask.sum(dim=(-2, -1)).clamp_min(1), area)
            out = torch.where(mask.unsqueeze(1), self._jitter(out, mask, area, params), out)
        return out

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same move as the pixels (rectangles and scars), without the colour jitter: labels
        # move, never blend.
        return self._paste(masks, params, with_mask=False)[1]

    def _paste(self, images: Tensor, params: Mapping[str, Any], *, with_mask: bool) -> tuple[Tensor | None, Tensor]:
        """The ``(B, H, W)`` destination region (when asked for) and ``images`` with each source
        patch copied there."""
        _, _, height, width = images.shape
        const = _patches.constants(height, width, images.device)
        selected = selection(params)
        starts = torch.stack((params["top"], params["left"]))
        rows, cols = _patches.box_lines(starts, torch.stack((params["height"], params["width"])), const.positions,
                                        height, width, within=selected)
        # Each destination pixel reads the source pixel at the same offset inside the patch; one
        # gather from the untouched input, so overlapping source and destination are no problem.
        shift = ((torch.stack((params["src_top"], params["src_left"])) - starts) * const.strides).sum(dim=0)
        mask = _sampling.mask_and(rows.unsqueeze(-1), cols.unsqueeze(-2)) if with_mask else None
        if "is_scar" not in params:
            # The box's offsets as the outer product of its rows (times the shift) and columns.
            offsets = (rows * shift.unsqueeze(-1)).unsqueeze(-1) * cols.unsqueeze(-2)
        else:
            scar, scar_shift = scar_offsets(params, height, width)
            if selected is not None:
                scar = _sampling.mask_and(scar, selected.view(-1, 1, 1))
            is_scar = params["is_scar"].view(-1, 1, 1)
            mask = torch.where(is_scar, scar, _sampling.mask_and(rows.unsqueeze(-1), cols.unsqueeze(-2)))
            offsets = torch.where(mask, torch.where(is_scar, scar_shift, shift.view(-1, 1, 1)), 0)
        # `offsets` is this call's own buffer: the gather's indices are built in it.
        return mask, _patches.move_pixels(images, offsets, _patches.pixel_indices(height, width, images.device),
                                          consume_offsets=True)

    def _jitter(self, patch: Tensor, box: Tensor, area: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Brightness, contrast, saturation and hue jitter of the pixels of ``patch`` inside ``box``
        (``area`` pixels per image)."""
        dtype = patch.dtype
        work = torch.float64 if dtype == torch.float64 else torch.float32
        lo, hi = self.value_range(dtype)
        # Each step runs in place on one batch-sized buffer of this call's own (three float
        # temporaries of the batch lived at once, 12 times a uint8 batch's bytes). The in-place
        # ops are the same kernels on the same operands as `lo + (x - lo) * f` and its kind (an
        # addition's operands commute exactly): bit for bit the same values. `patch` itself
        # (a float32/float64 batch: `to` returns it) is never written, as the caller still reads
        # it; under autograd the in-place clamps save what their backward needs.
        fresh = dtype != work
        x = patch.to(work)

        def factor(key: str) -> Tensor:
            return params[key].to(work).view(-1, 1, 1, 1)

        def grey(values: Tensor) -> Tensor:
            if values.shape[1] == 3:
                r, g, b = values.unbind(dim=1)
                # ((w0 r + w1 g) + w2 b), summed into the first product: one temporary fewer.
                luma = LUMA_WEIGHTS[0] * r
                luma.add_(LUMA_WEIGHTS[1] * g)
                return luma.add_(LUMA_WEIGHTS[2] * b).unsqueeze(1)
            return values.mean(dim=1, keepdim=True)

        if self.color_jitter > 0:
            x = (x.sub_(lo) if fresh else x.sub(lo)).mul_(factor("brightness")).add_(lo).clamp_(lo, hi)
            fresh = True
            pixels = area.to(work).view(-1, 1, 1, 1)
            # where, not a product with the mask: values outside the patch (even NaN) never leak in.
            mean = torch.where(box.unsqueeze(1), grey(x), 0.0).sum(dim=(-2, -1), keepdim=True) / pixels
            x.sub_(mean).mul_(factor("contrast")).add_(mean).clamp_(lo, hi)
            gray = grey(x)
            x.sub_(gray).mul_(factor("saturation")).add_(gray).clamp_(lo, hi)
            del gray
        if self.hue_jitter > 0 and x.shape[1] == 3:
            # Hue is defined on [0, 1] RGB values: the value range is mapped there and back.
            x = lo + shift_hue((x - lo) * (1.0 / (hi - lo)), params["hue"].to(work)) * (hi - lo)
            fresh = True
        # A fresh buffer is rounded in place (uint8): two batch-sized float temporaries fewer.
        return self.to_image_dtype(x, dtype, in_place=fresh)
