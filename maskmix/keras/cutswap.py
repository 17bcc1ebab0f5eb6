"""CutSwap: swap the contents of two non-overlapping patches of the same size (Qin et al., 2023)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from maskmix.params import RANDOM_CUTSWAP, given_arguments

from . import _patches, _sampling, _seeds
from ._base import CommonOptions, MaskMixLayer, checked_when_run
from ._mixing import host_values

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutSwap", "salient_pixels"]

Tensor = Any

#: Lloyd iterations of the per-image 1-D k-means of the saliency values (as the torch twin).
KMEANS_ITERATIONS = 12


def salient_pixels(ops: Any, saliency: Tensor, clusters: int) -> Tensor:
    """``(B, N)`` boolean mask of the pixels of each ``(B, N)`` map's most salient k-means cluster.

    The Keras twin of :func:`maskmix.torch.cutswap.salient_pixels`: centroids started evenly
    spaced between each map's minimum and maximum, :data:`KMEANS_ITERATIONS` Lloyd steps (an
    empty cluster keeps its centroid), nearest centroid (the lower one on a tie), and the cluster
    whose centroid is the highest among the non-empty ones.
    """
    np_ = ops.numpy
    # float64 maps are clustered in float64 (as the torch twin): values beyond float32's range or
    # resolution stay apart.
    work = "float64" if keras.backend.standardize_dtype(saliency.dtype) == "float64" else "float32"
    values = ops.cast(saliency, work)
    low = np_.min(values, axis=-1, keepdims=True)
    high = np_.max(values, axis=-1, keepdims=True)
    steps = (np_.arange(clusters, dtype=work) + 0.5) / float(clusters)
    centroids = low + (high - low) * steps
    ranks = np_.arange(clusters, dtype="int32")

    def assign(centres: Tensor) -> Tensor:
        distance = np_.abs(np_.expand_dims(values, -1) - np_.expand_dims(centres, -2))
        return ops.cast(np_.argmin(distance, axis=-1), "int32")

    for _ in range(KMEANS_ITERATIONS):
        member = ops.cast(np_.expand_dims(assign(centroids), -1) == ranks, work)
        count = np_.sum(member, axis=-2)
        total = np_.sum(member * np_.expand_dims(values, -1), axis=-2)
        centroids = np_.where(count > 0, total / np_.maximum(count, 1.0), centroids)
    labels = assign(centroids)
    occupied = np_.any(np_.expand_dims(labels, -1) == ranks, axis=-2)
    top = ops.cast(np_.argmax(np_.where(occupied, centroids, -np_.ones_like(centroids) * float("inf")), axis=-1),
                   "int32")
    return labels == np_.expand_dims(top, -1)


def _in_bad_block(ops: Any, h: Tensor, w: Tensor, top: Tensor, left: Tensor, height: Any, width: Any) -> Tensor:
    """Whether an ``h x w`` patch at (``top``, ``left``) leaves no room for a disjoint one."""
    np_ = ops.numpy
    rows = np_.logical_and(top > height - 2 * h, top < h)
    cols = np_.logical_and(left > width - 2 * w, left < w)
    return np_.logical_and(rows, cols)


def _cell_outside_block(ops: Any, index: Tensor, columns: Tensor, block_top: Tensor, block_rows: Tensor,
                        block_left: Tensor, block_columns: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column of the ``index``-th cell, in raster order, of a grid minus a block.

    The grid has ``columns`` columns (and enough rows); the rows ``block_top <= r < block_top +
    block_rows`` and columns ``block_left <= c < block_left + block_columns`` form the removed
    block (``block_rows`` or ``block_columns`` may be 0). Cells above the block, beside it and
    below it are counted in that order, so ``index`` uniform over ``[0, cells)`` gives a uniform
    cell of the grid outside the block. Elementwise over per-image int32 tensors; the same
    mapping as :mod:`maskmix.torch.cutswap`.
    """
    np_ = ops.numpy
    above = block_top * columns
    band_columns = columns - block_columns
    band = block_rows * band_columns
    safe_columns = np_.maximum(columns, 1)
    # Above the block.
    row_above, col_above = np_.floor_divide(index, safe_columns), np_.mod(index, safe_columns)
    # Beside the block: skip its columns.
    in_band = index - above
    safe_band_columns = np_.maximum(band_columns, 1)
    row_band = block_top + np_.floor_divide(in_band, safe_band_columns)
    col_band = np_.mod(in_band, safe_band_columns)
    col_band = np_.where(col_band < block_left, col_band, col_band + block_columns)
    # Below the block.
    below = index - above - band
    row_below = block_top + block_rows + np_.floor_divide(below, safe_columns)
    col_below = np_.mod(below, safe_columns)
    is_above = index < above
    is_band = np_.logical_and(np_.logical_not(is_above), index < above + band)
    row = np_.where(is_above, row_above, np_.where(is_band, row_band, row_below))
    col = np_.where(is_above, col_above, np_.where(is_band, col_band, col_below))
    return row, col


def _span(ops: Any, first: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
    """``(start, count)`` of the integer interval ``[first, last]`` (count 0 when empty)."""
    return first, ops.numpy.maximum(last - first + 1, 0)


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutSwap(_sampling.RectanglePatches, MaskMixLayer):
    """Swap the contents of two non-overlapping patches of the same size in each image.

    Paper: J. Qin, C. Gu, J. Yu and C. Zhang, "Multilevel Saliency-Guided Self-Supervised
    Learning for Image Anomaly Detection", 2023 (https://arxiv.org/abs/2311.18332; Signal, Image
    and Video Processing 2024): two same-size patches of one image exchange their contents, the
    rest of the image is unchanged. In the paper the patches are centred on a pixel pair of the
    most salient cluster of LayerCAM saliency maps; without maps (the default) they are placed
    uniformly.

    Per image (the same rules as :class:`maskmix.torch.RandomCutSwap`):

    1. A patch size ``h x w`` is drawn as in :class:`~maskmix.keras.RandomErasing` (area
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
       all other pixels are unchanged (values are moved by one gather over the flattened
       pixels, never recomputed: exact for every dtype).

    4. With saliency maps, one ``(H, W)`` map per image given at call time through
       ``layer(images, saliency=maps)`` (or ``get_random_transformation(images,
       saliency=maps)``), the patches of steps 1-2 are then moved where the map says (the sizes stay):
       each map's values are clustered by a 1-D k-means with ``saliency_clusters`` centroids
       (started evenly spaced between the map's minimum and maximum, 12 Lloyd steps); patch A is
       centred on a uniform pixel of the cluster with the highest centroid, patch B on a uniform
       pixel of the same cluster whose centred patch does not overlap A (centred patches are
       moved inside the image: they still cover their pixel). If no pixel of the cluster gives
       such a B, B is placed uniformly where it does not overlap A; if A leaves no room for any
       B, the image keeps its uniform patches. Everything is elementwise over the maps (argmax
       of masked uniform scores): no data-dependent shape.
       The placement follows each image's own map in every ``sampling`` mode: with
       ``sampling="batch"`` or ``"pair"`` the patch sizes (and the selection) are shared,
       the salient positions are not.

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
            swapped and 0 where the image passed through (a dict call: ``(dict, is_augmented)``,
            the dict's own ``labels`` left as they are). Default False.
        **common: the common options and layer arguments; see :class:`~maskmix.keras.MaskMixLayer`.

    Shapes:
        images ``(B, H, W, C)``, ``(H, W, C)`` or channels-first come back with their patches
        swapped, in the input's shape and dtype; ``is_augmented`` is int64 ``(B,)`` (a scalar
        for one image; int32 on JAX without x64). ``get_random_transformation`` draws ``height``,
        ``width``, ``top_a``, ``left_a``, ``top_b``, ``left_b`` and ``selected``, all ``(B,)``.
        A dict's ``segmentation_masks`` (``(B, H, W, 1)``, any integer dtype) are swapped with the
        pixels; ``bounding_boxes`` are refused.

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
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutSwap
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> out = RandomCutSwap(patch_area=(0.05, 0.2), seed=0)(images)
        >>> tuple(out.shape)
        (8, 64, 64, 3)
        >>> maps = np.zeros((8, 64, 64), "float32")
        >>> maps[:, 20:40, 20:40] = 1.0  # both 9 x 9 patches are centred in this square
        >>> out = RandomCutSwap(patch_area=0.02, patch_aspect_ratio=1.0, seed=0)(images, saliency=maps)
        >>> bool((np.asarray(out) != images)[:, :16].any())
        False
    """

    spec = RANDOM_CUTSWAP
    dense_targets = "move"
    saliency_clusters: int

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
        # The saliency maps of the call in progress (see `call`): read by get_random_transformation.
        object.__setattr__(self, "_call_saliency", None)

    def call(self, images: Tensor, training: bool = True, saliency: Tensor | None = None) -> Any:
        """The layer's call; ``saliency`` (optional) holds one map per image, ``(B, H, W)`` or
        ``(H, W)``, from which the patches are placed (see the class docstring)."""
        if isinstance(images, Mapping) and "saliency" in images:
            # A dict's other keys pass through: the maps would be ignored, silently.
            raise TypeError(
                "RandomCutSwap: the saliency maps go in the call's saliency= argument, "
                "layer(data, saliency=maps), not in the dict (its other keys are passed through)"
            )
        object.__setattr__(self, "_call_saliency", saliency)
        try:
            return super().call(images, training=training)
        finally:
            object.__setattr__(self, "_call_saliency", None)

    def compute_output_spec(self, inputs: Any, training: Any = None, saliency: Any = None) -> Any:
        return super().compute_output_spec(inputs, training=training)

    def get_random_transformation(self, data: Any, training: bool = True, seed: Any = None,
                                  saliency: Tensor | None = None) -> dict[str, Any] | None:
        """The base's draw (:meth:`MaskMixLayer.get_random_transformation`); with ``saliency``
        maps (or those given to the call in progress) the patches are then placed from them."""
        # One stream for the base's draws and the placement's (see _seeds.CallSeeds).
        seed = _seeds.call_seeds(type(self).__name__, self.seed_generator() if seed is None else seed,
                                 self.backend)
        params = super().get_random_transformation(data, training=training, seed=seed)
        if saliency is None:
            saliency = self._call_saliency
        if params is None or saliency is None:
            return params
        _, _, height, width = self.dims(self.check_images(data)[0])
        maps = self._check_saliency(saliency, data, height, width)
        if maps.shape[0] == 0:
            return params  # an empty batch: nothing to place (and no minimum of an empty map)
        self._place_by_saliency(params, maps, height, width, seed)
        return params

    def _check_saliency(self, saliency: Any, images: Tensor, height: Any, width: Any) -> Tensor:
        if not (hasattr(saliency, "shape") and hasattr(saliency, "dtype")):
            raise TypeError(f"RandomCutSwap: saliency must be a tensor or a NumPy array; got {type(saliency).__name__}")
        dtype = keras.backend.standardize_dtype(saliency.dtype)
        if dtype == "bool" or dtype.startswith("complex") or dtype == "string":
            raise TypeError(f"RandomCutSwap: saliency must have a real dtype; got {dtype}")
        shape = tuple(saliency.shape)
        # The images as given: (B, H, W) maps for a batch, one (H, W) map for one image.
        expected = (*tuple(images.shape)[:-3], height, width)
        fits = len(shape) == len(expected) and all(
            got == want for got, want in zip(shape, expected, strict=True)
            if isinstance(got, int) and isinstance(want, int))
        if not fits:
            raise ValueError(
                f"RandomCutSwap: saliency must be shaped like the images without their channels, (B, H, W) "
                f"or (H, W) for one image; got shape {shape} for images of shape {tuple(images.shape)}"
            )
        # A batch size known only when a TensorFlow graph runs: checked then (one map broadcast
        # to every image, silently, otherwise).
        dims = self.ops.shape(images)
        maps = checked_when_run(self.ops.convert_to_tensor(saliency), (*dims[:-3], height, width),
                                "RandomCutSwap: saliency must hold one map per image, shaped like the images "
                                "without their channels: their shapes differ")
        maps = self.ops.numpy.reshape(maps, (-1, height * width))
        # One NaN or inf (log 0, a 0/0 normalisation) made every pixel "salient": the guidance was
        # off, silently. Checked where the values can be read (eager, on the host).
        values = host_values(self.ops.name, maps) if dtype.startswith(("float", "bfloat")) else None
        if values is not None and not np.isfinite(values.astype("float64")).all():
            raise ValueError("RandomCutSwap: saliency must be finite (no NaN or inf); a map with one is unusable")
        return maps

    def _place_by_saliency(self, params: dict[str, Any], saliency: Tensor, height: Any, width: Any,
                           seed: Any) -> None:
        ops = self.ops
        np_ = ops.numpy
        h, w = params["height"], params["width"]
        candidates = salient_pixels(ops, saliency, self.saliency_clusters)
        shape = ops.shape(candidates)
        draw_a = ops.random.uniform(shape, 0.0, 1.0, dtype="float32", seed=seed)
        draw_b = ops.random.uniform(shape, 0.0, 1.0, dtype="float32", seed=seed)
        minus_one = -np_.ones_like(draw_a)
        # A: a uniform pixel of the salient cluster (the largest of masked uniform scores).
        centre_a = ops.cast(np_.argmax(np_.where(candidates, draw_a, minus_one), axis=-1), "int32")
        pixels = np_.arange(height * width, dtype="int32")
        rows, cols = np_.floor_divide(pixels, width), np_.mod(pixels, width)
        half_h, half_w = np_.expand_dims(np_.floor_divide(h, 2), -1), np_.expand_dims(np_.floor_divide(w, 2), -1)
        # The patch centred on a pixel, moved inside the image: it still covers that pixel.
        tops = np_.minimum(np_.maximum(rows - half_h, 0), np_.expand_dims(height - h, -1))
        lefts = np_.minimum(np_.maximum(cols - half_w, 0), np_.expand_dims(width - w, -1))

        def corner(centre: Tensor) -> tuple[Tensor, Tensor]:
            at_centre = pixels == np_.expand_dims(centre, -1)
            return _sampling.take_last(ops, tops, at_centre), _sampling.take_last(ops, lefts, at_centre)

        top_a, left_a = corner(centre_a)
        # B: a uniform pixel of the same cluster whose patch does not overlap A's.
        apart = np_.logical_or(np_.abs(tops - np_.expand_dims(top_a, -1)) >= np_.expand_dims(h, -1),
                               np_.abs(lefts - np_.expand_dims(left_a, -1)) >= np_.expand_dims(w, -1))
        partners = np_.logical_and(candidates, apart)
        centre_b = ops.cast(np_.argmax(np_.where(partners, draw_b, minus_one), axis=-1), "int32")
        paired = np_.any(partners, axis=-1)
        # No partner in the cluster: B uniform among the places that do not overlap A, if A leaves
        # any; if it does not, the image keeps its uniform draw (both patches placed at random).
        other_top, other_left = self._place_b(h, w, top_a, left_a, height, width,
                                              _sampling.index_uniforms(ops, 1, ops.shape(h), seed)[0])
        paired_top, paired_left = corner(centre_b)
        top_b = np_.where(paired, paired_top, other_top)
        left_b = np_.where(paired, paired_left, other_left)
        guided = np_.logical_or(paired, np_.logical_not(_in_bad_block(ops, h, w, top_a, left_a, height, width)))
        params["saliency_paired"] = paired
        for key, value in (("top_a", top_a), ("left_a", left_a), ("top_b", top_b), ("left_b", left_b)):
            params[key] = np_.where(guided, value, params[key])

    def refine_selection(self, params: dict[str, Any], height: Any, width: Any) -> None:
        if isinstance(height, int) and isinstance(width, int):
            if height < 2 and width < 2:
                # No room for two disjoint patches: nothing is swapped, nothing is augmented.
                params["selected"] = self.ops.numpy.zeros_like(params["selected"])
        else:  # the size is only known when the graph runs
            roomy = self.ops.numpy.logical_or(height >= 2, width >= 2)
            params["selected"] = self.ops.numpy.logical_and(params["selected"], roomy)

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        ops = self.ops
        np_ = ops.numpy
        size = (batch_size,)
        h, w = self._sizes(size, height, width, seed)
        rows, columns = height - h + 1, width - w + 1
        # A must leave room for B: the corners from which no disjoint B fits form one block,
        # rows H - 2h < t < h (no room above nor below) times columns W - 2w < l < w.
        bad_top, bad_rows = _span(ops, np_.maximum(height - 2 * h + 1, 0), np_.minimum(h - 1, height - h))
        bad_left, bad_columns = _span(ops, np_.maximum(width - 2 * w + 1, 0), np_.minimum(w - 1, width - w))
        count_a = rows * columns - bad_rows * bad_columns
        # One corner among up to H x W: drawn in float64 where the backend has it (index_uniforms).
        u_a, u_b = _sampling.index_uniforms(ops, 2, size, seed)
        index_a = _sampling.integers_from(ops, u_a, 0, np_.maximum(count_a - 1, 0))
        top_a, left_a = _cell_outside_block(ops, index_a, columns, bad_top, bad_rows, bad_left, bad_columns)
        top_b, left_b = self._place_b(h, w, top_a, left_a, height, width, u_b)
        return {"height": h, "width": w, "top_a": top_a, "left_a": left_a, "top_b": top_b, "left_b": left_b}

    def _place_b(self, h: Tensor, w: Tensor, top_a: Tensor, left_a: Tensor, height: Any, width: Any,
                 u: Tensor) -> tuple[Tensor, Tensor]:
        """B's corner, uniform among the corners (fully inside) where B does not overlap A, from
        ``u``, uniform in ``[0, 1)`` per image."""
        ops = self.ops
        np_ = ops.numpy
        rows, columns = height - h + 1, width - w + 1
        # B avoids the corners that overlap A: rows |t - top_a| < h times columns |l - left_a| < w.
        near_top, near_rows = _span(ops, np_.maximum(top_a - h + 1, 0), np_.minimum(top_a + h - 1, height - h))
        near_left, near_columns = _span(ops, np_.maximum(left_a - w + 1, 0), np_.minimum(left_a + w - 1, width - w))
        count_b = rows * columns - near_rows * near_columns
        index_b = _sampling.integers_from(ops, u, 0, np_.maximum(count_b - 1, 0))
        return _cell_outside_block(ops, index_b, columns, near_top, near_rows, near_left, near_columns)

    def _sizes(self, size: tuple[Any, ...], height: int, width: int, seed: Any) -> tuple[Tensor, Tensor]:
        ops = self.ops
        np_ = ops.numpy

        def leaves_room_for_two(h: Tensor, w: Tensor) -> Tensor:
            inside = np_.logical_and(h <= height, w <= width)
            return np_.logical_and(inside, np_.logical_or(2 * h <= height, 2 * w <= width))

        h, w = self.draw_rectangles(ops, size, height, width, seed, fits=leaves_room_for_two)
        static = isinstance(height, int) and isinstance(width, int)
        if static and height < 2 and width < 2:
            return h, w  # 1 x 1 images: nothing can be swapped (see get_random_transformation)
        room = np_.logical_or(2 * h <= height, 2 * w <= width)
        # Cap the side whose halving keeps the larger patch; a side of one pixel cannot be halved.
        capped_h = np_.minimum(h, height // 2)
        capped_w = np_.minimum(w, width // 2)
        if not static:  # the same choice, in the graph (1 x 1 images are deselected there)
            cap_height = np_.logical_and(height >= 2, np_.logical_or(width < 2, capped_h * w >= h * capped_w))
        elif height < 2:
            cap_height = np_.zeros_like(room)
        elif width < 2:
            cap_height = np_.ones_like(room)
        else:
            cap_height = capped_h * w >= h * capped_w
        h = np_.where(np_.logical_or(room, np_.logical_not(cap_height)), h, capped_h)
        w = np_.where(np_.logical_or(room, cap_height), w, capped_w)
        return h, w

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        ops = self.ops
        np_ = ops.numpy
        _, _, height, width = self.dims(images)
        h, w = params["height"], params["width"]
        top_a, left_a, top_b, left_b = params["top_a"], params["left_a"], params["top_b"], params["left_b"]
        selected = np_.reshape(params["selected"], (-1, 1, 1))
        box_a = np_.logical_and(_sampling.box_mask(ops, top_a, left_a, h, w, height, width), selected)
        box_b = np_.logical_and(_sampling.box_mask(ops, top_b, left_b, h, w, height, width), selected)
        # A reads B (flat offset +shift), B reads A (-shift), everything else stays: one gather.
        shift = np_.reshape((top_b - top_a) * width + (left_b - left_a), (-1, 1, 1))
        zero = np_.zeros_like(box_a, dtype="int32")
        offsets = np_.where(box_a, shift + zero, np_.where(box_b, zero - shift, zero))
        return _patches.move_pixels(ops, images, offsets, channels_first=self.channels_first)

    def move_masks(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same swap as the pixels: the gather copies class indices as they are.
        return self.apply(masks, params)
