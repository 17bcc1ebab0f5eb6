"""CutBlur for super-resolution pairs: swap a box between the LR input and the HR target (Yoo et al., 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import CUTBLUR_DIRECTIONS, CUTBLUR_PAIR, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskMixLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["CUTBLUR_DIRECTIONS", "RandomCutBlurPair", "check_pair", "cutblur_pair"]

Tensor = Any


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutBlurPair(_sampling.RectanglePatches, MaskMixLayer):
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
    #: Called on ``(lr_upsampled, hr)`` pairs, never on a batch of images alone: the training
    #: integrations refuse it among their per-image augmentations.
    takes_pairs = True
    direction: str
    patch_side_normal: tuple[float, float] | None

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        direction: str = "random",
        patch_side_normal: tuple[float, float] | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        if self.patch_side_normal is None:
            params = self.draw_boxes(self.ops, (batch_size,), height, width, seed)
        else:
            params = _sampling.normal_side_boxes(self.ops, (batch_size,), height, width, self.patch_side_normal,
                                                 seed)
        ops, size = self.ops, (batch_size,)
        if self.direction == "random":
            lr_to_hr = _sampling.uniform(ops, 0.0, 1.0, size, seed) < 0.5
        else:
            lr_to_hr = ops.numpy.full(size, self.direction == "lr_to_hr", dtype="bool")
        return {**params, "lr_to_hr": lr_to_hr}

    def call(self, data: Any, training: bool = True) -> Any:
        ops = self.ops
        name = type(self).__name__
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError(f"{name}: expected a pair (lr_upsampled, hr); got {type(data).__name__}")
        lr, hr = data
        check_pair(name, lr, hr)
        lr_batch, single = self.check_images(lr)
        hr_batch, _ = self.check_images(hr)
        # The unbatched pair itself: one (H, W, C) pair is augmented with probability augmentation_ratio.
        transformation = self.get_random_transformation(lr, training=training)
        if transformation is None:
            return lr, hr
        _, _, height, width = self.dims(lr_batch)
        box = _sampling.box_mask_of(ops, transformation, height, width)
        # HR where the box is pasted from HR ("hr_to_lr") or where HR surrounds the LR box ("lr_to_hr").
        lr_to_hr = ops.numpy.reshape(transformation["lr_to_hr"], (-1, 1, 1))
        take_hr = _sampling.where(ops, lr_to_hr, ops.numpy.logical_not(box), box)
        take_hr = ops.numpy.logical_and(take_hr, ops.numpy.reshape(transformation["selected"], (-1, 1, 1)))
        out = _sampling.where(ops, self.pixel_mask(take_hr), hr_batch, lr_batch)
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
    patch_side_normal: tuple[float, float] | None = None,
    augmentation_ratio: float = 1.0,
    bernoulli_mix: bool = False,
    sampling: str = "image",
    seed: int | None = None,
    data_format: str | None = None,
) -> tuple[Tensor, Tensor]:
    """CutBlur for super-resolution pairs: swap a rectangle between the LR input and the HR target.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448); this follows the authors' ``cutblur`` function
    (clovaai/cutblur), with the rectangle drawn per image as in
    :class:`~maskmix.keras.RandomCutBlur`; the same rules as :func:`maskmix.torch.cutblur_pair`.

    Per image, a rectangle is drawn as in :class:`~maskmix.keras.RandomCutBlur` (area uniform in
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

    Reproducing the paper: ``RandomCutBlurPair.from_paper("sr")`` (or ``cutblur_pair(lr, hr,
    patch_side_normal=(0.7, 0.01), sampling="batch")``) is the official ``cutblur`` with the MoA policy's
    ``alpha = 0.7`` and ``prob = 1``: the box of ``patch_side_normal`` (below) and a random
    direction per batch (``sampling="batch"``), as the official code draws them. It applies CutBlur to every
    batch, as ``--augs cutblur``: the paper's MoA policy (``--use_moa``) picks one of seven
    augmentations per batch, so CutBlur touches about 1/7 of them there (see the preset's notes).

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
        patch_side_normal: None (default: the rectangle above), or ``(mean, std)``: the
            official code's box of the image's shape, ``int(H r)`` by ``int(W r)`` pixels with
            ``r ~ Normal(mean, std)`` clipped to ``[0, 1]``, placed uniformly fully inside
            (``patch_area`` and ``patch_aspect_ratio`` must then keep their defaults).
        augmentation_ratio: fraction of the pairs that are augmented, in ``[0, 1]``. Default 1.
            One pair of unbatched images (a per-sample ``tf.data`` map) is augmented with
            probability ``ratio``.
        bernoulli_mix: False: exactly ``round(ratio * B)`` pairs; True: each with probability
            ``ratio``.
        sampling: ``"image"`` (default: a box and direction per image), ``"batch"`` (one box and
            one direction for the whole batch, the official code; with ``bernoulli_mix`` one coin
            for the batch) or ``"pair"`` (images ``i`` and ``B - 1 - i`` share them); see
            :class:`~maskmix.keras.MaskMixLayer`.
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
             patch_side_normal=patch_side_normal, augmentation_ratio=augmentation_ratio,
             bernoulli_mix=bernoulli_mix, sampling=sampling),
        owner=name,
    )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"{name}: seed must be an int or None; got {seed!r}")
    check_pair(name, lr_upsampled, hr)
    layer = RandomCutBlurPair(**options, seed=seed, data_format=data_format, name=name)
    out, _ = layer((lr_upsampled, hr))
    return out, hr
