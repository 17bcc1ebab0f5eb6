"""CutBlur for super-resolution pairs: swap a box between the LR input and the HR target (Yoo et al., 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from typing_extensions import Unpack

from maskmix.geometry import IMAGE_DTYPES_TEXT, looks_transposed, sampling_units
from maskmix.params import CUTBLUR_DIRECTIONS, CUTBLUR_PAIR, given_arguments
from maskmix.schedules import lent_value

from . import _sampling
from ._base import (
    SUPPORTED_DTYPES,
    CommonOptions,
    MaskMixTransform,
    batch_layout,
    draws_coins,
    refuse_non_dense,
    refuse_unsupported_tracing,
)

__all__ = ["CUTBLUR_DIRECTIONS", "RandomCutBlurPair", "check_pair", "cutblur_pair"]


def check_pair(name: str, lr_upsampled: Any, hr: Any) -> None:
    """Raise unless ``lr_upsampled`` and ``hr`` are supported ``(..., C, H, W)`` tensors of one
    shape, dtype and device (the call checks of :func:`cutblur_pair` and :class:`RandomCutBlurPair`)."""
    for label, tensor in (("lr_upsampled", lr_upsampled), ("hr", hr)):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name}: {label} must be a tensor (..., C, H, W); got {type(tensor).__name__}")
        refuse_non_dense(name, label, tensor)
        if tensor.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name}: {label} must have dtype {IMAGE_DTYPES_TEXT}; got {tensor.dtype}")
        if tensor.ndim < 3:
            raise ValueError(
                f"{name}: {label} must be (..., C, H, W) with at least 3 dims; got shape {tuple(tensor.shape)}"
            )
    channels, last = lr_upsampled.shape[-3], lr_upsampled.shape[-1]
    if looks_transposed(channels, last):  # the rule of MaskMixTransform.check_image
        raise ValueError(
            f"{name}: lr_upsampled of shape {tuple(lr_upsampled.shape)} looks channels-last (..., H, W, C): "
            f"{channels} values on the channel axis (-3) and {last} on the last; permute the pair to (..., C, H, W)"
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


def _swap(lr_upsampled: Tensor, hr: Tensor, options: dict[str, Any], generator: torch.Generator | None) -> Tensor:
    """The augmented input of checked tensors, for validated ``options`` (see :func:`cutblur_pair`)."""
    refuse_unsupported_tracing("cutblur_pair", (lr_upsampled, hr))
    device = lr_upsampled.device
    lr_plain = lr_upsampled.as_subclass(Tensor) if isinstance(lr_upsampled, tv_tensors.TVTensor) else lr_upsampled
    hr_plain = hr.as_subclass(Tensor) if isinstance(hr, tv_tensors.TVTensor) else hr
    channels, height, width = lr_plain.shape[-3:]
    # Pairs of images, or of clips of a Video, whose frames share every draw (MaskMixTransform's
    # conventions); one pair is augmented with probability augmentation_ratio.
    # Either tensor may carry the Video type: an LR input made from the HR Video (pooled, then
    # up-sampled) comes back a plain tensor of the same shape.
    batch_size, frames, single = batch_layout(hr if isinstance(hr, tv_tensors.Video) else lr_upsampled)
    ratio = options["augmentation_ratio"]
    # The sampling mode's units (MaskMixTransform's sampling): one box and direction per unit.
    mode = options["sampling"]
    units = sampling_units(mode, batch_size)
    unit_of = _sampling.unit_index(mode, batch_size, device=device)
    selected = _sampling.select_units(mode, batch_size, ratio, draws_coins(options["bernoulli_mix"], ratio, single),
                                      unit_of, device=device, generator=generator)
    if options["patch_side_normal"] is None:
        boxes = _sampling.random_boxes((units,), height, width, options["patch_area"],
                                       options["patch_aspect_ratio"], device=device, generator=generator)
    else:
        boxes = _sampling.normal_side_boxes((units,), height, width, options["patch_side_normal"],
                                            device=device, generator=generator)
    if options["direction"] == "random":
        drawn = {**boxes, "lr_to_hr": _sampling.rand((units,), device=device, generator=generator) < 0.5}
    else:
        drawn = {**boxes, "lr_to_hr": torch.full((units,), options["direction"] == "lr_to_hr", device=device)}
    drawn = _sampling.spread(drawn, unit_of)
    if frames > 1:  # each frame takes its clip's draws
        drawn = {key: value.repeat_interleave(frames, dim=0) if isinstance(value, Tensor) and value.ndim > 0 else value
                 for key, value in drawn.items()}
        selected = selected.repeat_interleave(frames, dim=0)
    lr_to_hr = drawn.pop("lr_to_hr")
    box = _sampling.box_mask_of(drawn, height, width)
    # HR where the box is pasted from HR ("hr_to_lr") or where HR surrounds the LR box ("lr_to_hr").
    take_hr = torch.where(lr_to_hr.view(-1, 1, 1), ~box, box) & selected.view(-1, 1, 1)
    lr_flat = lr_plain.reshape(-1, channels, height, width)
    hr_flat = hr_plain.reshape(-1, channels, height, width)
    out = torch.where(take_hr.unsqueeze(1), hr_flat, lr_flat).reshape(lr_plain.shape)
    if isinstance(lr_upsampled, tv_tensors.TVTensor):
        out = tv_tensors.wrap(out, like=lr_upsampled)
    return out


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
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """CutBlur for super-resolution pairs: swap a rectangle between the LR input and the HR target.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448); this follows the authors' ``cutblur`` function
    (clovaai/cutblur), with the rectangle drawn per image as in
    :class:`~maskmix.torch.RandomCutBlur`. :class:`RandomCutBlurPair` is the transform form.

    Per image, a rectangle is drawn as in :class:`~maskmix.torch.RandomCutBlur` (area uniform in
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

    Reproducing the paper: ``RandomCutBlurPair.from_paper("sr")`` (or ``cutblur_pair(lr, hr,
    patch_side_normal=(0.7, 0.01), sampling="batch")``) is the official ``cutblur`` with the MoA policy's
    ``alpha = 0.7`` and ``prob = 1``: the box of ``patch_side_normal`` (below) and a random
    direction per batch (``sampling="batch"``), as the official code draws them. It applies CutBlur to every
    batch, as ``--augs cutblur``: the paper's MoA policy (``--use_moa``) picks one of seven
    augmentations per batch, so CutBlur touches about 1/7 of them there (see the preset's notes).

    Args:
        lr_upsampled: the low-resolution inputs, already up-sampled to the HR size,
            ``(..., C, H, W)``; float16/bfloat16/float32/float64 or uint8.
        hr: the high-resolution targets, same shape, dtype and device.
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
            One pair of ``(C, H, W)`` images (a per-sample pipeline) is augmented with
            probability ``ratio``. When either tensor is a ``tv_tensors.Video`` the pairs are clips,
            whose frames share the selection, the box and the direction.
        bernoulli_mix: False: exactly ``round(ratio * B)`` pairs; True: each with probability
            ``ratio``.
        sampling: ``"image"`` (default: a box and direction per image), ``"batch"`` (one box and
            one direction for the whole batch, the official code; with ``bernoulli_mix`` one coin
            for the batch) or ``"pair"`` (images ``i`` and ``B - 1 - i`` share them); see
            :class:`~maskmix.torch.MaskMixTransform`.
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
    options = CUTBLUR_PAIR.validate(
        dict(patch_area=patch_area, patch_aspect_ratio=patch_aspect_ratio, direction=direction,
             patch_side_normal=patch_side_normal, augmentation_ratio=augmentation_ratio,
             bernoulli_mix=bernoulli_mix, sampling=sampling),
        owner=name,
    )
    check_pair(name, lr_upsampled, hr)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"{name}: generator must be a torch.Generator or None; got {generator!r}")
        if torch.compiler.is_compiling():
            raise TypeError(
                f"{name}: torch.compile cannot trace a torch.Generator; leave generator=None under "
                "torch.compile and seed with torch.manual_seed instead"
            )
        if generator.device.type != lr_upsampled.device.type:
            raise ValueError(
                f"{name}: generator is on {generator.device} but the images are on {lr_upsampled.device}; "
                "create the generator on the images' device"
            )
    return _swap(lr_upsampled, hr, options, generator), hr


class RandomCutBlurPair(_sampling.RectanglePatches, MaskMixTransform):
    """The transform form of :func:`cutblur_pair`: ``transform((lr_upsampled, hr))`` returns ``(input, hr)``.

    Paper: J. Yoo, N. Ahn and K.-A. Sohn, "Rethinking Data Augmentation for Image
    Super-resolution: A Comprehensive Analysis and a New Strategy", CVPR 2020
    (https://arxiv.org/abs/2004.00448). Same parameters, rules and shapes as
    :func:`cutblur_pair` (the same code runs), as a torchvision v2 transform for a
    ``v2.Compose`` or a dataset of super-resolution pairs; the twin of
    :class:`maskmix.keras.RandomCutBlurPair`.

    Args:
        patch_area: rectangle area as a fraction of the image, float in (0, 1) or range.
            Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width, number > 0 or range drawn log-uniformly.
            Default ``(0.3, 3.0)``.
        direction: ``"random"``, ``"hr_to_lr"`` or ``"lr_to_hr"`` (see :func:`cutblur_pair`).
        patch_side_normal: None or ``(mean, std)``, the official box (see :func:`cutblur_pair`).
        **common: ``augmentation_ratio``, ``bernoulli_mix``, ``sampling``, ``generator``; see
            :class:`~maskmix.torch.MaskMixTransform` (``pixels_range`` is accepted and unused).

    Shapes:
        Takes one pair ``(lr_upsampled, hr)`` (or the two tensors as two arguments), both
        ``(..., C, H, W)`` of one shape, dtype and device; returns the tuple
        ``(augmented_input, hr)`` with ``hr`` the same object.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutBlurPair
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> x, y = RandomCutBlurPair(direction="lr_to_hr")((hr * 0.5, hr))
        >>> y is hr, x.shape
        (True, torch.Size([2, 3, 32, 32]))
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

    def forward(self, *inputs: Any) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        data = inputs[0] if len(inputs) == 1 else inputs
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError(f"{name}: expected a pair (lr_upsampled, hr); got {type(data).__name__}")
        lr_upsampled, hr = data
        check_pair(name, lr_upsampled, hr)
        # A scheduled value lent by the integrations (maskmix.schedules) comes before the attribute.
        options = {key: lent_value(self, key, getattr(self, key)) for key in self.spec.param_names}
        return _swap(lr_upsampled, hr, options, self._generator_for(lr_upsampled.device)), hr
