"""CutSwap: swap the contents of two non-overlapping patches of the same size (Qin et al., 2023)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from typing_extensions import Unpack

from maskmix.params import RANDOM_CUTSWAP, given_arguments

from . import _compat, _patches, _sampling
from ._base import CommonOptions, MaskMixTransform, clip_length, selection

__all__ = ["RandomCutSwap", "SaliencyMap", "salient_pixels"]

#: Lloyd iterations of the per-image 1-D k-means of the saliency values (fixed: no data-dependent loop).
KMEANS_ITERATIONS = 12


class SaliencyMap(tv_tensors.Mask):
    """Per-image saliency maps ``(..., H, W)`` for :class:`RandomCutSwap`, found in the sample by type.

    A ``tv_tensors.Mask`` subclass, so torchvision's geometric transforms (flips, crops, resizes)
    move it with the images it belongs to; maskmix's :class:`RandomCutSwap` reads it to place its
    patches (the map itself comes back unchanged). Leading dims match the images' (``(B, H, W)``
    for a ``(B, C, H, W)`` batch, ``(H, W)`` for one image); any real dtype, larger is more
    salient; finite values only (a map with a NaN or an inf is refused).

    Reproducing the paper:
        ``RandomCutSwap.from_paper("paper")``, called with each image's saliency map (the paper
        computes multilevel LayerCAM maps with a network; maskmix takes them as given). There is
        no official code and only the paper's abstract could be consulted: the cluster count (2
        here) and the patch sizes (maskmix's defaults) are not the paper's confirmed values. The
        swapped images are the negative samples of a binary task, as in CutPaste: half the batch
        is swapped (``augmentation_ratio=0.5``) and the call returns ``(images, labels)``, 1 for
        a swapped image and 0 for a normal one. The guidance is checked against scikit-learn's
        k-means in ``tests/papers/test_cutswap_paper.py``.

    Example:
        >>> import torch
        >>> from maskmix.torch import SaliencyMap
        >>> SaliencyMap(torch.rand(4, 32, 32)).shape
        torch.Size([4, 32, 32])
    """

    #: Guidance for the transform, not a target: every maskmix transform returns it unchanged.
    maskmix_guidance = True


def salient_pixels(saliency: Tensor, clusters: int) -> Tensor:
    """``(B, N)`` boolean mask of the pixels of each ``(B, N)`` map's most salient k-means cluster.

    A 1-D k-means of each map's values with ``clusters`` centroids, started evenly spaced between
    the map's minimum and maximum and refined by :data:`KMEANS_ITERATIONS` Lloyd steps (an empty
    cluster keeps its centroid); a pixel belongs to the cluster of its nearest centroid (the lower
    one on a tie). The result is the cluster whose centroid is the highest among the non-empty
    ones: never empty. A constant map has one non-empty cluster, every pixel.
    """
    # float64 maps are clustered in float64: values beyond float32's range or resolution stay apart.
    work = torch.float64 if saliency.dtype == torch.float64 else torch.float32
    values = saliency.to(work)
    low = values.amin(dim=-1, keepdim=True)
    high = values.amax(dim=-1, keepdim=True)
    steps = (torch.arange(clusters, device=values.device, dtype=work) + 0.5) / clusters
    centroids = low + (high - low) * steps  # (B, k)

    def assign(centres: Tensor) -> Tensor:
        return (values.unsqueeze(-1) - centres.unsqueeze(-2)).abs().argmin(dim=-1)

    ranks = torch.arange(clusters, device=values.device)
    for _ in range(KMEANS_ITERATIONS):
        member = (assign(centroids).unsqueeze(-1) == ranks).to(work)  # (B, N, k)
        count = member.sum(dim=-2)
        total = (member * values.unsqueeze(-1)).sum(dim=-2)
        centroids = torch.where(count > 0, total / count.clamp_min(1), centroids)
    labels = assign(centroids)
    occupied = (labels.unsqueeze(-1) == ranks).any(dim=-2)
    top = torch.where(occupied, centroids, -torch.inf).argmax(dim=-1, keepdim=True)
    return labels == top


def _in_bad_block(h: Tensor, w: Tensor, top: Tensor, left: Tensor, height: int, width: int) -> Tensor:
    """Whether an ``h x w`` patch at (``top``, ``left``) leaves no room for a disjoint one: no room
    above nor below it (``H - 2h < top < h``) and none left nor right of it (``W - 2w < left < w``)."""
    return (top > height - 2 * h) & (top < h) & (left > width - 2 * w) & (left < w)


class RandomCutSwap(_sampling.RectanglePatches, MaskMixTransform):
    """Swap the contents of two non-overlapping patches of the same size in each image.

    Paper: J. Qin, C. Gu, J. Yu and C. Zhang, "Multilevel Saliency-Guided Self-Supervised
    Learning for Image Anomaly Detection", 2023 (https://arxiv.org/abs/2311.18332; Signal, Image
    and Video Processing 2024): two same-size patches of one image exchange their contents, the
    rest of the image is unchanged. In the paper the patches are centred on a pixel pair of the
    most salient cluster of LayerCAM saliency maps; without maps (the default) they are placed
    uniformly.

    Per image:

    1. A patch size ``h x w`` is drawn as in :class:`~maskmix.torch.RandomErasing` (area
       fraction uniform in ``patch_area``, aspect ratio ``h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))``, ``w = round(sqrt(a H W / r))``, at
       least 1), except that the size must leave room for two disjoint patches:
       ``h <= H, w <= W`` and (``2 h <= H`` or ``2 w <= W``). The first of 10 candidates that
       allows it is kept; if none does, the first is clamped to the image and then its height is
       capped at ``H // 2`` or its width at ``W // 2``, whichever keeps the larger patch (a side
       of 1 pixel cannot be halved, so only the other one is capped).
    2. Patch A's top-left corner is drawn uniformly among the positions (fully inside) that
       leave room for a disjoint patch B; B's corner is drawn uniformly among the positions
       (fully inside) where B does not overlap A. Both draws are exact: the valid positions are
       a grid minus one rectangular block, so a uniform index is mapped straight to a
       position; no rejection loop, no fallback.
    3. Every pixel of A takes the value of the pixel at the same offset in B, and vice versa;
       all other pixels are unchanged (values are moved, never recomputed: exact for every
       dtype).

    4. With saliency maps, one ``(H, W)`` map per image given at call time through
       a :class:`SaliencyMap` in the sample (``t(images, SaliencyMap(maps))`` or a dict
       entry; torchvision's geometric transforms move it with the images; it comes back
       unchanged), the patches of steps 1-2 are then moved where the map says (the sizes stay):
       each map's values are clustered by a 1-D k-means with ``saliency_clusters`` centroids
       (started evenly spaced between the map's minimum and maximum, 12 Lloyd steps); patch A is
       centred on a uniform pixel of the cluster with the highest centroid, patch B on a uniform
       pixel of the same cluster whose centred patch does not overlap A (centred patches are
       moved inside the image: they still cover their pixel). If no pixel of the cluster gives
       such a B, B is placed uniformly where it does not overlap A; if A leaves no room for any
       B, the image keeps its uniform patches. Everything is elementwise over the maps (argmax
       of masked uniform scores): no data-dependent shape. ``torch.compile(fullgraph=True)``
       cannot trace a tv_tensor subclass in the sample (a ``tv_tensors.Image`` neither): call the
       transform eagerly with a ``SaliencyMap``; the placement itself compiles.
       The placement follows each image's own map in every ``sampling`` mode: with
       ``sampling="batch"`` or ``"pair"`` the patch sizes (and the selection) are shared,
       the salient positions are not. In a ``tv_tensors.Video`` (maps ``(..., T, H, W)``) the
       frames of a clip share every draw: each clip is placed by its first frame's map.

    Images with fewer than 2 pixels (``1 x 1``) have no room for two patches: they are passed
    through unchanged and count as not augmented.

    Args:
        patch_area: area of *each* patch as a fraction of the image: a float in (0, 1) or a
            range ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        saliency_clusters: number of clusters (an int >= 1) of the k-means of the saliency
            maps (step 4); unused without maps. Default 2.
        return_labels: call returns ``(output, is_augmented)``, with 1 where two patches were
            swapped and 0 where the image passed through. Default False.
        **common: common options; see :class:`~maskmix.torch.MaskMixTransform`, whose
            :meth:`~maskmix.torch.MaskMixTransform.forward` describes ``is_augmented``.

    Shapes:
        images ``(..., C, H, W)`` come back with their patches swapped and the input's shape,
        dtype and device; ``is_augmented`` is shaped ``shape[:-3]`` (0-d for one image; one per
        clip of a Video, ``shape[:-4]``).

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutSwap, SaliencyMap
        >>> images = torch.rand(8, 3, 64, 64)
        >>> out = RandomCutSwap(patch_area=(0.05, 0.2))(images)
        >>> out.shape
        torch.Size([8, 3, 64, 64])
        >>> maps = torch.zeros(8, 64, 64)
        >>> maps[:, 20:40, 20:40] = 1.0  # both 9 x 9 patches are centred in this square
        >>> out, maps_out = RandomCutSwap(patch_area=0.02, patch_aspect_ratio=1.0)(images, SaliencyMap(maps))
        >>> bool((out != images)[:, :, :16].any()), torch.equal(maps_out, maps)
        (False, True)
    """

    spec = RANDOM_CUTSWAP
    saliency_clusters: int
    dense_targets = "move"

    if TYPE_CHECKING:
        # With return_labels=True an image batch gives (images, labels): no narrower type holds.
        def __call__(self, *inputs: Any) -> Any: ...

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        saliency_clusters: int = 2,
        return_labels: bool = False,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        # The saliency maps are part of the sample, not of the images' geometry that `sample`
        # receives: the patches are drawn as usual, then moved where the maps say.
        params = super().make_params(flat_inputs)
        maps = [inpt for inpt in flat_inputs if isinstance(inpt, SaliencyMap)]
        if not params or not maps:
            return params
        if len(maps) > 1:
            raise ValueError(f"RandomCutSwap: a sample holds at most one SaliencyMap; got {len(maps)}")
        _, height, width = params["batch_shape"]
        device = params["selected"].device
        if maps[0].device != device:
            raise ValueError(f"RandomCutSwap: the SaliencyMap is on {maps[0].device} but the images are on {device}; "
                             "move it to the images' device")
        saliency = self._check_saliency(maps[0], params["image_leading"], height, width)
        generator = self._generator_for(device)
        frames = next((clip_length(inpt) for inpt in flat_inputs if self._is_image(inpt)), 1)
        if frames == 1:
            self._place_by_saliency(params, saliency, height, width, generator=generator)
            return params
        # A Video's frames share every draw: each clip is placed by its first frame's map.
        clip = {key: params[key][::frames] for key in ("height", "width", "top_a", "left_a", "top_b", "left_b")}
        self._place_by_saliency(clip, saliency[::frames], height, width, generator=generator)
        for key in ("top_a", "left_a", "top_b", "left_b", "saliency_paired"):
            params[key] = clip[key].repeat_interleave(frames, dim=0)
        return params

    @staticmethod
    def _check_saliency(saliency: Tensor, leading: tuple[int, ...], height: int, width: int) -> Tensor:
        values = saliency.as_subclass(Tensor)
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"RandomCutSwap: the SaliencyMap must have a real dtype; got {values.dtype}")
        # The images' leading dims exactly (as a Mask's): maps (2, 2, H, W) for a batch of 4
        # images held the right count, but which map belongs to which image is a guess.
        batch_size = math.prod(leading)
        if tuple(values.shape) != (*leading, height, width):
            raise ValueError(
                f"RandomCutSwap: the SaliencyMap must be shaped like the images without their channels "
                f"({batch_size} maps of {height}x{width}, {tuple((*leading, height, width))}); got shape "
                f"{tuple(values.shape)}"
            )
        if values.is_floating_point() and values.numel() and not torch.compiler.is_compiling():
            # One NaN or inf (log 0, a 0/0 normalisation) made every centroid non-finite and every
            # pixel "salient": the guidance was off, silently.
            message = "RandomCutSwap: the SaliencyMap must be finite (no NaN or inf); a map with one is unusable"
            finite = torch.isfinite(values).all()
            if values.device.type == "cpu":
                if not finite:
                    raise ValueError(message)
            else:
                _compat.assert_async(finite, message)
        return values.reshape(batch_size, height * width)

    def _place_by_saliency(self, params: dict[str, Any], saliency: Tensor, height: int, width: int, *,
                           generator: torch.Generator | None) -> None:
        h, w = params["height"], params["width"]
        batch_size = h.shape[0]
        candidates = salient_pixels(saliency, self.saliency_clusters)
        draws = _sampling.rand((2, *candidates.shape), device=h.device, generator=generator)
        # A: a uniform pixel of the salient cluster (the largest of masked uniform scores).
        centre_a = torch.where(candidates, draws[0], -1.0).argmax(dim=-1)
        rows = torch.arange(height * width, device=h.device) // width
        cols = torch.arange(height * width, device=h.device) % width
        # The patch centred on a pixel, moved inside the image: it still covers that pixel.
        tops = (rows - (h // 2).unsqueeze(-1)).clamp_min(0)
        tops = torch.minimum(tops, (height - h).unsqueeze(-1))
        lefts = (cols - (w // 2).unsqueeze(-1)).clamp_min(0)
        lefts = torch.minimum(lefts, (width - w).unsqueeze(-1))
        top_a = tops.gather(-1, centre_a.unsqueeze(-1)).squeeze(-1)
        left_a = lefts.gather(-1, centre_a.unsqueeze(-1)).squeeze(-1)
        # B: a uniform pixel of the same cluster whose patch does not overlap A's.
        apart = ((tops - top_a.unsqueeze(-1)).abs() >= h.unsqueeze(-1)) | (
            (lefts - left_a.unsqueeze(-1)).abs() >= w.unsqueeze(-1))
        partners = candidates & apart
        centre_b = torch.where(partners, draws[1], -1.0).argmax(dim=-1)
        paired = partners.any(dim=-1)
        top_b = torch.where(paired, tops.gather(-1, centre_b.unsqueeze(-1)).squeeze(-1), 0)
        left_b = torch.where(paired, lefts.gather(-1, centre_b.unsqueeze(-1)).squeeze(-1), 0)
        # No partner in the cluster: B uniform among the places that do not overlap A, if A leaves
        # any; if it does not, the image keeps its uniform draw (both patches placed at random).
        const = _patches.constants(height, width, h.device)
        u = torch.rand((batch_size,), dtype=torch.float64, device=h.device, **_sampling.drawing_from(generator))
        other_top, other_left = self._place_b(torch.stack((h, w)), torch.stack((top_a, left_a)), u, const)
        roomy = ~_in_bad_block(h, w, top_a, left_a, height, width)
        top_b = torch.where(paired, top_b, other_top)
        left_b = torch.where(paired, left_b, other_left)
        guided = paired | roomy
        params["saliency_paired"] = paired
        for key, value in (("top_a", top_a), ("left_a", left_a), ("top_b", top_b), ("left_b", left_b)):
            params[key] = torch.where(guided, value, params[key])

    def refine_selection(self, params: dict[str, Any]) -> None:
        _, height, width = params["batch_shape"]
        if height < 2 and width < 2:
            # No room for two disjoint patches: nothing is swapped, nothing is augmented.
            params["selected"] = torch.zeros_like(params["selected"])
            params["all_selected"] = False

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        const = _patches.constants(height, width, device)
        sides = self._sizes(batch_size, height, width, const, device=device, generator=generator)
        # Every index of both placements in one draw (see _patches.uniform_corners: no clamp needed).
        u = torch.rand((2, batch_size), dtype=torch.float64, device=device, **_sampling.drawing_from(generator))
        cells = const.dims1 - sides  # positions (fully inside) per axis
        # A must leave room for B: the corners from which no disjoint B fits form one block,
        # rows H - 2h < t < h (no room above nor below) times columns W - 2w < l < w.
        first = (cells - sides).clamp_min(0)
        count = (torch.minimum(sides, cells) - first).clamp_min(0)
        index = (u[0] * (cells.prod(dim=0) - count.prod(dim=0))).to(torch.int64)
        corner_a = _patches.cell_outside_block(index, cells, first, count, const.band_row)
        corner_b = self._place_b(sides, corner_a, u[1], const)
        (h, w), (top_a, left_a), (top_b, left_b) = sides.unbind(0), corner_a.unbind(0), corner_b.unbind(0)
        return {"height": h, "width": w, "top_a": top_a, "left_a": left_a, "top_b": top_b, "left_b": left_b}

    @staticmethod
    def _place_b(sides: Tensor, corner_a: Tensor, u: Tensor, const: _patches.Constants) -> Tensor:
        """B's ``(2, B)`` corner, uniform among the corners (fully inside) where B does not overlap
        A (at ``corner_a``), from the uniform ``u`` in [0, 1)."""
        cells = const.dims1 - sides
        # B avoids the corners that overlap A: rows |t - top_a| < h times columns |l - left_a| < w
        # (never empty: A's own corner is one).
        first = (corner_a - sides + 1).clamp_min(0)
        count = torch.minimum(corner_a + sides, cells) - first
        index = (u * (cells.prod(dim=0) - count.prod(dim=0))).to(torch.int64)
        return _patches.cell_outside_block(index, cells, first, count, const.band_row)

    def _sizes(self, batch_size: int, height: int, width: int, const: _patches.Constants, *, device: torch.device,
               generator: torch.Generator | None) -> Tensor:
        """``(2, B)`` patch sides, heights ``[0]`` and widths ``[1]`` (class docstring, step 1)."""
        candidates = _patches.rectangle_candidates((batch_size,), height, width, self.patch_area,
                                                   self.patch_aspect_ratio, device=device, generator=generator)
        # Inside the image, and room for two: 2 h <= H or 2 w <= W (2 s <= n exactly when s <= n // 2).
        fits = (candidates <= const.dims.unsqueeze(-1)).all(dim=0) & (
            candidates <= const.halves.unsqueeze(-1)).any(dim=0)
        sides = _patches.first_fitting(candidates, fits, const.dims)
        if height < 2 and width < 2:
            return sides  # 1 x 1 images: nothing can be swapped (see make_params)
        # No room (h > H // 2 and w > W // 2): cap the side whose halving keeps the larger patch,
        # capping the height on a tie: compare 2 h (W // 2) with 2 w (H // 2) + 1, which never tie.
        # A side of one pixel cannot be halved: its half is 0, so the other side is capped.
        weighed = sides * const.cap_weights + const.steps
        capped = (weighed.flip(0) > weighed) & (sides > const.halves).all(dim=0)
        return torch.where(capped, const.halves, sides)

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        _, _, height, width = images.shape
        const = _patches.constants(height, width, images.device)
        sides = torch.stack((params["height"], params["width"]))
        corners = torch.stack((params["top_a"], params["left_a"], params["top_b"], params["left_b"])).view(2, 2, -1)
        rows, cols = _patches.box_lines(corners.transpose(0, 1), sides.unsqueeze(1), const.positions, height, width,
                                        within=selection(params))
        # A reads B (flat offset +shift), B reads A (-shift), everything else stays: one gather.
        shift = ((corners[1] - corners[0]) * const.strides).sum(dim=0)
        moves = rows * (const.signs * shift).unsqueeze(-1)  # (2, B, H): each patch's rows, signed
        # Both boxes' outer products summed into one (B, H, W) buffer (integers: exact), not
        # built apart as (2, B, H, W) and then added (three int64 batches of offsets at once).
        offsets = moves[0].unsqueeze(-1) * cols[0].unsqueeze(-2)
        offsets.addcmul_(moves[1].unsqueeze(-1), cols[1].unsqueeze(-2))
        # `offsets` is this call's own buffer: the gather's indices are built in it.
        return _patches.move_pixels(images, offsets, _patches.pixel_indices(height, width, images.device),
                                    consume_offsets=True)

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same swap as the pixels, integer labels moved as they are.
        return self.apply(masks, params)
