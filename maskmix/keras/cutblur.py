"""CutBlur: replace a rectangle by a low-resolution copy of the same region (Yoo et al., 2020)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import low_resolution_size_range as _size_range
from maskmix.params import (
    COMMON_PARAMS,
    RANDOM_CUTBLUR,
    Param,
    StrategySpec,
    choice,
    fraction_or_range,
    positive_range,
)

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["CUTBLUR_DIRECTIONS", "RandomCutBlur", "RandomCutBlurPair", "cutblur_pair", "low_resolution"]

Tensor = Any

#: Directions accepted by :func:`cutblur_pair`.
CUTBLUR_DIRECTIONS: tuple[str, ...] = ("random", "hr_to_lr", "lr_to_hr")

#: The parameters of :func:`cutblur_pair` (validated as the torch function validates them).
CUTBLUR_PAIR = StrategySpec(
    "cutblur_pair",
    (
        Param("patch_area", (0.05, 0.3), fraction_or_range(), "Rectangle area as a fraction of the image."),
        Param("patch_aspect_ratio", (0.3, 3.0), positive_range(), "Rectangle height / width."),
        Param("direction", "random", choice(CUTBLUR_DIRECTIONS), "Which image the rectangle comes from."),
        *COMMON_PARAMS,
    ),
    "Swap a rectangle between a super-resolution pair's LR input and HR target (Yoo et al., 2020).",
)


def _axis_matrices(ops: Any, low_sizes: Tensor | None, size: int, bounds: tuple[int, int], method: str,
                   dtype: str) -> tuple[Tensor, Tensor]:
    """Down ``(…, low_max, size)`` and up ``(…, size, low_max)`` matrices of one axis.

    With one possible low size (``bounds[0] == bounds[1]``) both are plain 2-D matrices shared by
    the batch; otherwise one padded matrix per image, from its own ``low_sizes[b]``.
    """
    low, high = bounds
    if low == high:
        down = _patches.resample_matrix(ops, size, low, size, low, method, dtype)
        up = _patches.resample_matrix(ops, low, size, low, size, method, dtype)
        return down[0], up[0]
    down = _patches.resample_matrix(ops, size, low_sizes, size, high, method, dtype)
    up = _patches.resample_matrix(ops, low_sizes, size, high, size, method, dtype)
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
class RandomCutBlur(MaskMixLayer):
    """Replace a rectangle of each image by the same region of a low-resolution copy of the image.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448). The paper cuts and pastes between a low-resolution input
    and its high-resolution target; this layer is the single-image form (as in the library it
    replaces): the low-resolution copy is made from the image itself.

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
    images share one set (plain products). Non-finite input values spread along their row and
    column of the low-resolution copy (only its rectangle is used). ``bicubic`` may overshoot
    the input's range inside the rectangle (float images are not clipped; ``uint8`` saturates).
    Values are computed in float32 (float64 for float64 images).

    Args:
        patch_area: rectangle area as a fraction of the image: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        blur_factor: size of the low-resolution copy relative to the image: a float in (0, 1)
            or a range ``(lo, hi)`` drawn uniformly per image. Default 0.1.
        resize_method: ``"nearest"``, ``"bilinear"``, ``"bicubic"`` or ``"area"``. Default
            ``"bilinear"``.
        **common: ``augmentation_ratio``, ``bernoulli_mix``, ``pixels_range``, ``seed``,
            ``data_format`` and Keras layer arguments; see :class:`~maskmix.keras.MaskMixLayer`.

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
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> out = RandomCutBlur(blur_factor=(0.1, 0.5), resize_method="bicubic", seed=0)(images)
        >>> tuple(out.shape)
        (8, 64, 64, 3)
    """

    needs_static_size = True
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

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        ops = self.ops
        size = (batch_size,)
        h, w = _sampling.random_rectangles(
            ops, size, height, width, self.patch_area, self.patch_aspect_ratio, seed
        )
        top, left = _sampling.place_inside(ops, h, w, height, width, seed)
        factor = _sampling.uniform_closed(ops, *self.blur_factor, size, seed)
        sizes = {
            key: _sampling.rounded_within(ops, factor * float(n), _size_range(self.blur_factor, n), half_up=True)
            for key, n in (("low_height", height), ("low_width", width))
        }
        return {"top": top, "left": left, "height": h, "width": w, "blur_factor": factor, **sizes}

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
        box = _sampling.box_mask(ops, params["top"], params["left"], params["height"], params["width"], height, width)
        mask = ops.numpy.logical_and(box, ops.numpy.reshape(params["selected"], (-1, 1, 1)))
        return ops.numpy.where(self.pixel_mask(mask), self.to_image_dtype(blurred, dtype), images)


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutBlurPair(MaskMixLayer):
    """The layer form of :func:`cutblur_pair`: ``layer((lr_upsampled, hr))`` returns ``(input, hr)``.

    Build it once to use :func:`cutblur_pair` inside ``tf.data.Dataset.map`` or a compiled step
    (the function builds a layer, with its seed generator, per call). Same parameters, rules and
    shapes as :func:`cutblur_pair`; ``seed`` and ``data_format`` as in
    :class:`~maskmix.keras.MaskMixLayer`. With ``training=False`` the pair is returned unchanged.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutBlurPair
        >>> hr = np.random.rand(2, 32, 32, 3).astype("float32")
        >>> x, y = RandomCutBlurPair(direction="lr_to_hr", seed=0)((hr * 0.5, hr))
        >>> tuple(x.shape)
        (2, 32, 32, 3)
    """

    spec = CUTBLUR_PAIR
    patch_area: tuple[float, float]
    patch_aspect_ratio: tuple[float, float]
    direction: str

    def __init__(
        self,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        direction: str = "random",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(patch_area=patch_area, patch_aspect_ratio=patch_aspect_ratio, direction=direction, **common)

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        ops = self.ops
        size = (batch_size,)
        h, w = _sampling.random_rectangles(ops, size, height, width, self.patch_area, self.patch_aspect_ratio, seed)
        top, left = _sampling.place_inside(ops, h, w, height, width, seed)
        if self.direction == "random":
            lr_to_hr = _sampling.uniform(ops, 0.0, 1.0, size, seed) < 0.5
        else:
            lr_to_hr = ops.numpy.full(size, self.direction == "lr_to_hr", dtype="bool")
        return {"top": top, "left": left, "height": h, "width": w, "lr_to_hr": lr_to_hr}

    def call(self, data: Any, training: bool = True) -> Any:
        ops = self.ops
        name = type(self).__name__
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError(f"{name}: expected a pair (lr_upsampled, hr); got {type(data).__name__}")
        lr, hr = data
        check_pair(name, lr, hr)
        lr_batch, single = self.check_images(lr)
        hr_batch, _ = self.check_images(hr)
        transformation = self.get_random_transformation(lr_batch, training=training)
        if transformation is None:
            return lr, hr
        _, _, height, width = self.dims(lr_batch)
        box = _sampling.box_mask(ops, transformation["top"], transformation["left"], transformation["height"],
                                 transformation["width"], height, width)
        # HR where the box is pasted from HR ("hr_to_lr") or where HR surrounds the LR box ("lr_to_hr").
        lr_to_hr = ops.numpy.reshape(transformation["lr_to_hr"], (-1, 1, 1))
        take_hr = ops.numpy.where(lr_to_hr, ops.numpy.logical_not(box), box)
        take_hr = ops.numpy.logical_and(take_hr, ops.numpy.reshape(transformation["selected"], (-1, 1, 1)))
        out = ops.numpy.where(self.pixel_mask(take_hr), hr_batch, lr_batch)
        return (ops.numpy.squeeze(out, 0) if single else out), hr

    def compute_output_spec(self, data: Any, training: Any = None) -> Any:
        lr, hr = data
        return keras.KerasTensor(lr.shape, dtype=lr.dtype), keras.KerasTensor(hr.shape, dtype=hr.dtype)


def check_pair(name: str, lr_upsampled: Any, hr: Any) -> None:
    """Raise unless ``lr_upsampled`` and ``hr`` are tensors of one shape (dims unknown at trace
    time aside) and one dtype."""
    for label, tensor in (("lr_upsampled", lr_upsampled), ("hr", hr)):
        if not (hasattr(tensor, "shape") and hasattr(tensor, "dtype")):
            raise TypeError(f"{name}: {label} must be a tensor or array; got {type(tensor).__name__}")
    lr_shape, hr_shape = tuple(lr_upsampled.shape), tuple(hr.shape)
    if len(lr_shape) != len(hr_shape) or any(
        a is not None and b is not None and a != b for a, b in zip(lr_shape, hr_shape, strict=False)
    ):
        raise ValueError(
            f"{name}: lr_upsampled and hr must have the same shape (up-sample the LR images to the HR size "
            f"first); got {lr_shape} and {hr_shape}"
        )
    lr_dtype, hr_dtype = keras.backend.standardize_dtype(lr_upsampled.dtype), keras.backend.standardize_dtype(hr.dtype)
    if lr_dtype != hr_dtype:
        raise TypeError(f"{name}: lr_upsampled and hr must have the same dtype; got {lr_dtype} and {hr_dtype}")


def cutblur_pair(
    lr_upsampled: Tensor,
    hr: Tensor,
    *,
    patch_area: float | tuple[float, float] = (0.05, 0.3),
    patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
    direction: str = "random",
    augmentation_ratio: float = 1.0,
    bernoulli_mix: bool = False,
    seed: int | None = None,
    data_format: str | None = None,
) -> tuple[Tensor, Tensor]:
    """CutBlur for super-resolution pairs: swap a rectangle between the LR input and the HR target.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448); this follows the authors' ``cutblur`` function
    (clovaai/cutblur), with the rectangle drawn per image as in :class:`RandomCutBlur`; the same
    rules as :func:`maskmix.torch.cutblur_pair`.

    Per image, a rectangle is drawn as in :class:`RandomCutBlur` (area uniform in
    ``patch_area``, aspect log-uniform in ``patch_aspect_ratio``, fully inside) and the network
    input is built from the pair:

    * ``"hr_to_lr"``: the HR pixels of the rectangle are pasted into the LR image (the input is
      LR outside the rectangle, HR inside);
    * ``"lr_to_hr"``: the LR pixels of the rectangle are pasted into the HR image (the input is
      HR outside, LR inside);
    * ``"random"`` (default, the paper): one of the two, with probability 1/2, per image.

    The target stays the HR image. Images that are not selected (``augmentation_ratio``,
    ``bernoulli_mix`` as in :class:`~maskmix.keras.MaskMixLayer`) keep their LR input
    bit-identical. Each call builds a layer and its seed generator, so call the function eagerly;
    inside ``tf.data.Dataset.map`` or a compiled step build a :class:`RandomCutBlurPair` once and
    call it instead.

    Args:
        lr_upsampled: the low-resolution inputs, already up-sampled to the HR size: a batch
            ``(B, H, W, C)`` or one image ``(H, W, C)`` (channels_first ``(B, C, H, W)``/
            ``(C, H, W)``); float16/bfloat16/float32/float64 or uint8.
        hr: the high-resolution targets, same shape and dtype.
        patch_area: rectangle area as a fraction of the image, float in (0, 1) or range.
            Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width, number > 0 or range drawn log-uniformly.
            Default ``(0.3, 3.0)``.
        direction: ``"random"``, ``"hr_to_lr"`` or ``"lr_to_hr"`` (see above).
        augmentation_ratio: fraction of the pairs that are augmented, in ``[0, 1]``. Default 1.
        bernoulli_mix: False: exactly ``round(ratio * B)`` pairs; True: each with probability
            ``ratio``.
        seed: int or None, seeds the draws.
        data_format: ``"channels_last"`` or ``"channels_first"``; None uses Keras' setting.

    Returns:
        ``(augmented_input, hr)``: a new tensor of ``lr_upsampled``'s shape and dtype, and
        ``hr`` itself, the same object (neither input is modified).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import cutblur_pair
        >>> hr = np.random.rand(4, 64, 64, 3).astype("float32")
        >>> lr = hr.reshape(4, 16, 4, 16, 4, 3).mean(axis=(2, 4)).repeat(4, 1).repeat(4, 2)
        >>> x, y = cutblur_pair(lr, hr, direction="hr_to_lr", seed=0)
        >>> y is hr, tuple(x.shape)
        (True, (4, 64, 64, 3))
    """
    name = "cutblur_pair"
    options = CUTBLUR_PAIR.validate(
        dict(patch_area=patch_area, patch_aspect_ratio=patch_aspect_ratio, direction=direction,
             augmentation_ratio=augmentation_ratio, bernoulli_mix=bernoulli_mix),
        owner=name,
    )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"{name}: seed must be an int or None; got {seed!r}")
    check_pair(name, lr_upsampled, hr)
    layer = RandomCutBlurPair(**options, seed=seed, data_format=data_format, name=name)
    out, _ = layer((lr_upsampled, hr))
    return out, hr
