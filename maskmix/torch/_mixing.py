"""Base of the strategies that mix two images of a batch and their labels (design §Conventions, labels).

:class:`MixingTransform` adds to :class:`~maskmix.torch.MaskMixTransform` what every mixing
strategy shares: the ``(images, labels)`` calling convention (tuples, lists and dicts, extra
elements kept, as torchvision's ``CutMix``/``MixUp``), label validation, one-hot conversion and
smoothing, the per-image choice of a partner image, and the label mixing by the exact fraction
of pixels that come from the partner. A strategy samples its own quantities (``sample_mixing``),
reports that fraction as ``params["partner_weight"]`` and changes the pixels in ``apply``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torchvision import tv_tensors

from maskmix._checks import ROW_SUM_TOLERANCE, multi_hot_smoothing_message
from maskmix._structure import IMAGE_KEYS, find_key, rebuild_mapping, rebuild_sequence, split_images_labels, usage
from maskmix.geometry import TINY_BETA_ALPHA

from . import _compat, _sampling
from ._base import (
    POINT_TARGETS,
    MaskMixTransform,
    folded_frames,
    refuse_per_image_masks,
    refuse_plain_coordinates,
    refuse_plain_pixel_tensors,
    refuse_unsupported_tracing,
    selection,
)

__all__ = ["MixingTransform", "beta", "box_fraction", "partner_shift", "partners", "soft_labels"]


def beta(alpha: float, size: tuple[int, ...], *, device: torch.device,
         generator: torch.Generator | None) -> Tensor:
    """Float32 samples of Beta(alpha, alpha), from two Gamma(alpha, 1) variables ``G1 / (G1 + G2)``.

    ``Beta(1, 1)`` (the default of CutMix and CutBlur) is the uniform distribution on ``(0, 1)``
    and is drawn as such: one kernel. Otherwise both gamma variables of every sample come from one
    ``torch._standard_gamma`` call (ATen's exact rejection sampler, Marsaglia and Tsang 2000, which
    takes a ``torch.Generator`` where ``torch.distributions`` cannot): a handful of kernels where a
    fixed number of proposals per sample took a few dozen. For ``alpha < 1`` the draws go through
    the usual boost ``G(alpha) = G(alpha + 1) U^(1 / alpha)`` in log space, as
    ``lam = sigmoid(log G1 - log G2)``: small alpha gives gamma values below float32's smallest
    normal number (which the sampler clamps to it), and two of them would tie at ``lam = 0.5``.
    """
    if alpha == 1.0:
        return _sampling.rand(size, device=device, generator=generator)
    shape = (2, *size)
    if alpha >= 1.0:
        alphas = torch.full(shape, alpha, dtype=torch.float32, device=device)
        gammas = torch._standard_gamma(alphas, **_sampling.drawing_from(generator))
        # Gamma(alpha >= 1) is below 1e-38 with probability < 1e-38: the sum is never 0.
        return gammas[0] / gammas.sum(0)
    log_gammas = torch._standard_gamma(torch.full(shape, alpha + 1.0, dtype=torch.float32, device=device),
                                       **_sampling.drawing_from(generator)).log_()
    boost = _sampling.rand(shape, device=device, generator=generator)
    # 1 - U is uniform on (0, 1]: no log(0).
    log_boosts = boost.neg_().log1p_()
    if alpha < TINY_BETA_ALPHA:
        # Each boost over alpha alone would be -inf (NaN once subtracted): their difference first.
        # Any non-zero difference over so small an alpha outweighs the gammas' (lam 0 or 1);
        # equal boosts leave it to the gammas.
        apart, logit = log_boosts[0] - log_boosts[1], log_gammas[0] - log_gammas[1]
        return torch.sigmoid(torch.where(apart == 0, logit, logit + apart / alpha))
    log_gammas.add_(log_boosts.div_(alpha))
    return torch.sigmoid(log_gammas[0] - log_gammas[1])


def box_fraction(h: Tensor, w: Tensor, height: int, width: int) -> Tensor:
    """Fraction of an image's pixels covered by ``h x w`` boxes (the label weight), in float64:
    float32 labels get it correctly rounded, float64 labels exactly."""
    return (h * w).to(torch.float64).div(max(height * width, 1))


def box_params(starts: Tensor, ends: Tensor, height: int, width: int) -> dict[str, Tensor]:
    """The parameters of per-image boxes ``[starts, ends)`` (int64 ``(B, 2)``: rows ``[:, 0]``,
    columns ``[:, 1]``, clipped to the image) that receive a partner's pixels, with their label
    weight: the exact fraction of the image they cover, in float64 (float32 labels get it
    correctly rounded). ``top``, ``left``, ``height`` and ``width`` are views of the ``(B, 2)``
    ``box_starts`` and sizes; :func:`box_rows_cols` reads ``box_starts``/``box_ends`` as they are."""
    sizes = ends - starts
    weight = sizes.prod(1, dtype=torch.float64).div_(max(height * width, 1))
    (top, left), (box_height, box_width) = starts.unbind(1), sizes.unbind(1)  # indexing costs more host time
    return {"top": top, "left": left, "height": box_height, "width": box_width,
            "box_starts": starts, "box_ends": ends, "partner_weight": weight}


def box_rows_cols(params: Mapping[str, Any], height: int, width: int, *, within: Tensor | None = None,
                  dtype: torch.dtype = torch.bool) -> tuple[Tensor, Tensor]:
    """``(B, H)`` rows and ``(B, W)`` columns of each image's box, the box being their outer
    product; ``within`` (boolean ``(B,)``) empties the boxes where it is False.

    The boxes are ``params["box_starts"]``/``["box_ends"]`` (:func:`box_params`), else
    ``top``/``left``/``height``/``width``. Rows and columns are compared in one
    ``(B, 2, max(H, W))`` pass. ``dtype`` bool gives booleans; an integer dtype gives 0 outside
    and all bits set (-1) inside, the masks of :func:`paste_box`'s bit selection.
    """
    if "box_starts" in params:
        starts, ends = params["box_starts"], params["box_ends"]
    else:
        starts = torch.stack((params["top"], params["left"]), 1)
        ends = starts + torch.stack((params["height"], params["width"]), 1)
    positions = _sampling.cached_arange(max(height, width), starts.device)
    inside = (positions >= starts.unsqueeze(-1)) & (positions < ends.unsqueeze(-1))
    if within is not None:
        inside = _sampling.mask_and(inside, within.view(-1, 1, 1))
    if dtype != torch.bool:
        inside = inside.to(dtype).neg_()  # both masks converted in one pass
    return _sampling.split_lines(inside, height, width)


def paste_box(source: Tensor, base: Tensor, params: Mapping[str, Any], *, within: Tensor | None,
              fresh_source: bool) -> Tensor:
    """``where(box, source, base)`` for the ``(B, C, H, W)`` batches, with the boxes of ``params``
    (:func:`box_rows_cols`, emptied where ``within`` is False): every element exactly
    ``source``'s or ``base``'s, bit for bit. ``fresh_source`` says that ``source`` is a new buffer
    of the caller's that may be written over (see :func:`~maskmix.torch._base.may_reuse_buffers`):
    it becomes the output.
    """
    box = paste_mask(params, *base.shape[-2:], within=within)
    return torch.where(box, source, base, **({"out": source} if fresh_source else {}))


def paste_mask(params: Mapping[str, Any], height: int, width: int, *, within: Tensor | None) -> Tensor:
    """Boolean ``(B, 1, H, W)``: the boxes of :func:`box_rows_cols`, for a ``where`` over the channels."""
    rows, cols = box_rows_cols(params, height, width, within=within)
    # Shaped (B, 1, H, 1) and (B, 1, 1, W) by one view each: the product is the (B, 1, H, W) mask.
    batch = rows.shape[0]  # not -1: an empty batch has no size to infer
    return _sampling.mask_and(rows.view(batch, 1, height, 1), cols.view(batch, 1, 1, width))


#: The fewest elements of a CPU batch mixed by :func:`cyclic_shift`'s slices: a smaller batch
#: gathers a partner copy, whose pass costs less than the host time of the slicing (one CPU
#: thread, 2026-12-06: the gather path is 9 % faster at 8x3x32x32, the slices from about 100 000
#: elements on and 30 % faster at 256x3x32x32).
SLICES_MIN_ELEMENTS = 1 << 16


def cyclic_shift(images: Tensor, params: Mapping[str, Any]) -> int | None:
    """The shift ``s`` of partners drawn under the ``"other"`` law (image ``i`` with image
    ``(i + s) mod B``, see :func:`partners`) when the pixel paths may pair slices of the batch
    instead of gathering a partner copy: a CPU ``(B, C, H, W)`` batch of at least
    :data:`SLICES_MIN_ELEMENTS` elements, contiguous or channels_last (the output keeps the
    layout), in eager mode and with no autograd graph through it (``out=`` records none), where
    reading ``s`` costs no device synchronisation. None otherwise (the gather path).

    Pairing the two slices ``[0, B - s)`` with ``[s, B)`` and ``[B - s, B)`` with ``[0, s)`` reads
    each image once and writes the output once; a gather first copies every partner (two more
    passes over the batch, the larger part of a CPU CutMix or Mixup call).
    """
    shift = params.get("partner_shift")
    if (shift is None or images.device.type != "cpu" or images.ndim != 4 or images.numel() < SLICES_MIN_ELEMENTS
            or torch.compiler.is_compiling()
            or _compat.records_gradients(images)
            or not (images.is_contiguous() or images.is_contiguous(memory_format=torch.channels_last))):
        return None
    return int(shift)


def shifted_slices(batch_size: int, shift: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """``(own, partners)`` slice pairs that put image ``i`` next to image ``(i + shift) mod B``."""
    return ((slice(0, batch_size - shift), slice(shift, batch_size)),
            (slice(batch_size - shift, batch_size), slice(0, shift)))


#: The most bytes of a CPU batch that :func:`paste_box_shifted` pastes on its bit patterns; a
#: larger batch gets the ``where`` kernel. One CPU thread, 2026-12-06 (AMD EPYC VM): the integer
#: product and multiply-add take 0.64-0.75x the time of ``where`` for batches of 3-6 MiB (e.g.
#: 256x3x32x32 or 8x3x224x224 float32), about the same at 9 MiB and 1.28x at 18 MiB (32x3x224x224),
#: where their two passes over memory cost more than ``where``'s scalar loop saves.
BIT_PASTE_MAX_BYTES = 8 << 20


def paste_box_shifted(images: Tensor, params: Mapping[str, Any], shift: int, *, within: Tensor | None) -> Tensor:
    """:func:`paste_box` of each image's partner ``(i + shift) mod B`` into a new batch, per slice
    pair (:func:`cyclic_shift`): the same elements, bit for bit.

    A batch of at most :data:`BIT_PASTE_MAX_BYTES` is pasted on its bit patterns, as
    :func:`~maskmix.torch._sampling.keep_or_fill` erases: each output element is
    ``own * keep + partner * inside`` in the integer dtype of the images' element size, with
    ``keep`` and ``inside`` 0 or 1 and never both, so it is exactly one of the two (NaN payloads,
    infinities and -0.0 included) and no product or sum can overflow. Why: the CPU ``where``
    kernel is a scalar loop while the integer product and multiply-add are vectorised (about 2x
    faster on a batch that stays in the caches). :func:`cyclic_shift` sends only CPU batches in
    eager mode with no autograd graph through them here.
    """
    batch, height, width = images.shape[0], *images.shape[-2:]
    out = torch.empty_like(images)
    if images.numel() * images.element_size() > BIT_PASTE_MAX_BYTES:
        box = paste_mask(params, height, width, within=within)
        for own, theirs in shifted_slices(batch, shift):
            torch.where(box[own], images[theirs], images[own], out=out[own])
        return out
    bits = _sampling.same_size_integer(images.dtype)
    rows, cols = box_rows_cols(params, height, width, within=within, dtype=bits)  # -1 inside, 0 outside
    inside = rows.view(batch, 1, height, 1) * cols.view(batch, 1, 1, width)  # (-1) * (-1) = 1 inside
    keep = torch.rsub(inside, 1)
    source, written = images.view(bits), out.view(bits)
    for own, theirs in shifted_slices(batch, shift):
        torch.mul(source[own], keep[own], out=written[own]).addcmul_(source[theirs], inside[own])
    return out


def partners(batch_size: int, *, device: torch.device, generator: torch.Generator | None,
             law: str = "other") -> Tensor:
    """Per-image partner index under the partner ``law`` (design §Conventions, sampling modes).

    ``"other"``: uniform over the *other* images of the batch (itself when B = 1): the batch
    shifted cyclically, image ``i`` with ``(i + s) mod B`` for one ``s`` uniform in
    ``{1, ..., B - 1}`` (:func:`partner_shift`), so that every image is also the partner of one
    image (as with the official ``randperm``, torchvision's ``roll`` and timm's ``flip``);
    ``"permutation"``: a uniform random permutation (``torch.randperm``, the official CutMix and
    Mixup code: an image may be its own partner); ``"flip"``: image ``i`` with ``B - 1 - i``
    (timm's ``x.flip(0)``; the middle image of an odd batch with itself).
    """
    if law == "permutation":
        return torch.randperm(batch_size, device=device, **_sampling.drawing_from(generator))
    index = torch.arange(batch_size, device=device)
    if law == "flip":
        return (batch_size - 1) - index
    if batch_size < 2:
        return index
    return cyclic_partners(partner_shift(batch_size, device=device, generator=generator), batch_size)


def autograd_ready(tensor: Tensor) -> Tensor:
    """``tensor``, copied when it is an inference tensor (parameters are drawn in inference mode,
    see :meth:`MaskMixTransform._draw_params`), so that an autograd graph may save it."""
    if torch.compiler.is_compiling():
        return tensor  # nothing is an inference tensor there (and Dynamo cannot trace is_inference)
    return tensor.clone() if tensor.is_inference() else tensor


def partner_shift(batch_size: int, *, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """The 0-d int64 shift of the ``"other"`` law (:func:`partners`), uniform in ``{1, ..., B - 1}``
    (``batch_size >= 2``)."""
    return _sampling.randint(1, batch_size - 1, (), device=device, generator=generator)


def cyclic_partners(shift: Tensor, batch_size: int) -> Tensor:
    """Image ``i``'s partner ``(i + shift) mod B`` for the 0-d ``shift`` of :func:`partner_shift`."""
    # A new tensor from the shared positions (never written), then wrapped in place: two kernels.
    return (_sampling.cached_arange(batch_size, shift.device) + shift).remainder_(batch_size)


def soft_labels(owner: str, labels: Tensor, batch_size: int, *, num_classes: int | None,
                label_smoothing: float) -> Tensor:
    """Validated, smoothed soft labels ``(B, K)`` from class indices ``(B,)`` or soft rows ``(B, K)``.

    Class indices need ``num_classes``; they are one-hot encoded in float32. Floating rows keep
    float64, other floats become float32. ``label_smoothing`` moves each row towards the uniform
    distribution (``y (1 - s) + s / K``; a single column of binary labels goes towards 0.5; rows
    that do not sum to 1, multi-hot labels, are refused then, as out-of-range rows are).
    Class indices outside ``[0, num_classes)`` and soft rows with a value outside ``[0, 1]`` raise
    a ``ValueError`` for CPU tensors and trip a device-side assertion on an accelerator (no host
    synchronisation). A graph ``torch.compile`` traces can do neither: there such a row is NaN
    (the loss shows it), not a wrong row that trains silently. Messages start with ``owner``.
    """
    if labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"{owner}: labels must be integer class indices or floating soft labels; got {labels.dtype}")
    if not labels.dtype.is_floating_point and labels.ndim == 2:
        # Integer one-hot rows (F.one_hot then default_collate gives int64 (B, K)): soft labels.
        labels = labels.to(torch.float32)
    if not labels.dtype.is_floating_point:
        if labels.ndim != 1:
            raise ValueError(f"{owner}: class-index labels must have shape (B,); got shape {tuple(labels.shape)}")
        if num_classes is None:
            raise ValueError(f"{owner}: num_classes is required when labels are class indices")
        _check_batch(owner, labels, batch_size)
        # One-hot with the smoothing folded in: two kernels.
        off = label_smoothing / num_classes
        on = 1.0 - label_smoothing + off
        soft = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
        if torch.compiler.is_compiling():
            return _compiled_index_rows(labels, num_classes, soft, on)
        index = labels.long().unsqueeze(1)
        if labels.device.type != "cpu":
            _check_indices(owner, labels, num_classes)
            return soft.scatter_(1, index, on)
        try:
            # A CPU scatter checks every index itself (and raises): the labels are read back only
            # to name the bad ones, not on every call.
            return soft.scatter_(1, index, on)
        except RuntimeError as error:
            failure = error
        _check_indices(owner, labels, num_classes)  # raises the ValueError naming the bad indices
        raise failure
    if labels.ndim != 2:
        raise ValueError(f"{owner}: one-hot/soft labels must have shape (B, K); got shape {tuple(labels.shape)}")
    _check_batch(owner, labels, batch_size)
    if num_classes is not None and labels.shape[1] != num_classes:
        hint = (" (labels shaped (B, 1) that hold class indices: pass them shaped (B,), e.g. labels.squeeze(1))"
                if labels.shape[1] == 1 else "")
        raise ValueError(f"{owner}: labels have {labels.shape[1]} classes but num_classes is {num_classes}{hint}")
    labels = _check_soft(owner, labels)
    soft = labels.to(torch.float64 if labels.dtype == torch.float64 else torch.float32)
    if label_smoothing > 0:
        if soft.shape[1] > 1:
            soft = _check_distributions(owner, soft, label_smoothing)
        # One column holds binary labels: smoothed towards 0.5, as Keras' binary losses do.
        classes = max(soft.shape[1], 2)
        soft = soft * (1.0 - label_smoothing) + label_smoothing / classes
    return soft


def _check_distributions(owner: str, rows: Tensor, label_smoothing: float) -> Tensor:
    """Refuse soft rows that do not sum to 1 before smoothing them towards ``1 / K``: multi-hot
    rows (several labels per image, a sigmoid output's targets) are smoothed towards 0.5 by their
    convention (timm's, Keras'). As :func:`_check_soft`: a ``ValueError`` for CPU tensors, a
    device-side assertion on an accelerator, NaN rows in a graph ``torch.compile`` traces."""
    if rows.numel() == 0:
        return rows
    off = (rows.sum(dim=1, keepdim=True) - 1.0).abs() > ROW_SUM_TOLERANCE
    if torch.compiler.is_compiling():
        return rows.masked_fill(off, float("nan"))
    message = multi_hot_smoothing_message(owner, label_smoothing)
    if rows.device.type == "cpu":
        if off.any():
            raise ValueError(message)
        return rows
    _compat.assert_async(off.logical_not().all(), message)
    return rows


def _compiled_index_rows(labels: Tensor, num_classes: int, soft: Tensor, on: float) -> Tensor:
    """The one-hot rows of class indices in a graph ``torch.compile`` traces: an index outside
    ``[0, num_classes)`` gives a NaN row. The graph can neither raise nor read the labels, and
    Inductor's scatter checks no bounds: an unclamped bad index is dropped (a row of smoothing
    only, which trains silently towards nothing) or written out of bounds."""
    wide = labels.long()  # num_classes may lie beyond the labels' own dtype
    inside = (wide >= 0) & (wide < num_classes)
    soft = soft.scatter_(1, wide.clamp(0, num_classes - 1).unsqueeze(1), on)
    return soft.masked_fill(inside.logical_not().unsqueeze(1), float("nan"))


def _check_soft(owner: str, labels: Tensor) -> Tensor:
    """Refuse one-hot/soft labels below 0 or above 1: class indices shaped ``(B, 1)`` (a dataset's
    column of labels) or logits would otherwise be mixed as if they were probabilities. NaN
    passes, as in the pixels: it shows in the loss. Read on the host for CPU tensors; a
    device-side assertion on an accelerator. Returns the labels: as given, or, in a graph
    ``torch.compile`` traces (which can neither raise nor read them), with such rows NaN."""
    if labels.numel() == 0:
        return labels
    if torch.compiler.is_compiling():
        return labels.masked_fill(((labels < 0) | (labels > 1)).any(dim=1, keepdim=True), float("nan"))
    message = f"{owner}: one-hot/soft labels must lie in [0, 1]"
    hint = (" (labels shaped (B, 1) that hold class indices: pass them shaped (B,), e.g. labels.squeeze(1), "
            "with num_classes)") if labels.shape[1] == 1 else ""
    outside = ((labels < 0) | (labels > 1)).any()
    if labels.device.type == "cpu":
        if outside:  # the values are on the host already
            low, high = (float(v) for v in torch.aminmax(labels[~labels.isnan()]))
            raise ValueError(f"{message}; got values from {low:g} to {high:g}{hint}")
        return labels
    _compat.assert_async(outside.logical_not(), message + hint)
    return labels


def _check_batch(owner: str, labels: Tensor, batch_size: int) -> None:
    if labels.shape[0] != batch_size:
        raise ValueError(f"{owner}: labels have batch size {labels.shape[0]} but the images have {batch_size}")


def _check_indices(owner: str, labels: Tensor, num_classes: int) -> None:
    """Refuse class indices outside ``[0, num_classes)`` in an eager call: read on the host for CPU
    tensors, a device-side assertion on an accelerator (a compiled graph gets NaN rows instead,
    :func:`_compiled_index_rows`)."""
    if labels.numel() == 0:
        return
    message = f"{owner}: class indices must lie in [0, {num_classes})"
    if labels.device.type == "cpu":
        # The values are on the host already: two numbers read, one kernel (four compare all).
        low, high = (int(v) for v in torch.aminmax(labels))
        if low < 0 or high >= num_classes:
            wide = labels.to(torch.int64)  # num_classes may lie beyond the labels' own dtype
            bad = wide[(wide < 0) | (wide >= num_classes)][:5].tolist()
            raise ValueError(f"{message}; got {bad}")
        return
    inside = labels >= 0
    if num_classes <= torch.iinfo(labels.dtype).max:
        # Compared in the labels' dtype, a num_classes beyond its range would wrap around.
        inside = inside & (labels < num_classes)
    _compat.assert_async(inside.all(), message)


class MixingDraw(NamedTuple):
    """What :meth:`MixingTransform.sample_mixing` draws for: the batch's geometry, each image's
    partner index, and the device and generator of the draws. ``batch_size`` is the number of
    draws to make: the images', or fewer with ``sampling="batch"``/``"pair"`` (one per unit,
    then given to its images); ``partner`` always has one entry per image."""

    batch_size: int
    channels: int
    height: int
    width: int
    partner: Tensor
    device: torch.device
    generator: torch.Generator | None


class MixingTransform(MaskMixTransform):
    """Base class of the transforms that mix each image with a partner image and mix the labels.

    Call it as ``transform(images, labels)`` (or with one ``(images, labels, ...)`` tuple or list,
    or a dict with ``"image"``/``"images"`` and ``"label"``/``"labels"`` keys); the same structure
    comes back with the images mixed and the labels replaced by soft labels ``(B, K)``. Extra
    elements are returned untouched.

    A ``tv_tensors.Video`` ``(B, T, C, H, W)`` is a batch of ``B`` clips, as for torchvision's
    ``CutMix``/``MixUp``: labels have one row per clip, and each clip is mixed with a partner clip
    with the same box or ``lambda`` for all its frames. (A plain 5-D tensor is a stack of batches,
    flattened: one label per image.)

    Labels are class indices ``(B,)`` of an integer dtype together with ``num_classes``, or
    one-hot/soft labels ``(B, K)`` with values in ``[0, 1]`` (integer one-hot rows, as ``F.one_hot``
    gives, are read as float32 soft labels; a ``(B, 1)`` column is binary labels, so class indices
    shaped ``(B, 1)`` are refused with a hint to squeeze them). In a dict sample the images are the
    one ``tv_tensors.Image``/``Video`` value, else found by key (``"images"``, ``"image"``,
    ``"img"``, ``"pixel_values"``, in any case); the labels under ``"labels"`` in any case, else
    the first key containing "label" (torchvision's order); in ``(images, targets)`` with a dict
    of targets the labels are found in that dict likewise; a sample holding an Image and a Video
    is refused (one is mixed per image, the other per clip). The output labels are float32
    (float64 when the input labels were float64); ``label_smoothing`` is applied before mixing;
    each augmented row is ``(1 - f) * y_self + f * y_partner`` with ``f`` the exact fraction of
    the image's pixels that now come from the partner. Rows of images that are not augmented are the (smoothed) input
    rows. Batches of 0 or 1 images pass through unchanged.

    Segmentation masks and boxes: a ``tv_tensors.Mask`` anywhere in the sample, shaped like the
    images' leading dims plus ``(H, W)`` or ``(K, H, W)`` (a Video's masks ``(B, T, ...)``), is
    moved with the pixels by the strategies that paste regions (``dense_targets = "move"``) and
    refused by Mixup, whose blended pixels have no single class; ``BoundingBoxes``/``KeyPoints``
    are refused (they would not follow the pixels).

    Class indices outside ``[0, num_classes)`` and soft rows with a value outside ``[0, 1]`` raise a
    ``ValueError`` for CPU tensors; on an accelerator the check is a device-side assertion
    (``torch._assert_async``) so that it never synchronises with the host; in a graph
    ``torch.compile`` traces, which can do neither, their rows are NaN (the loss shows them).

    Partners and sampling modes: ``partner="other"`` (default) pairs each image with another image
    drawn uniformly; ``"permutation"`` with the image a random permutation puts there (the official
    CutMix/Mixup ``torch.randperm``); ``"flip"`` image ``i`` with ``B - 1 - i`` (timm). An image
    whose partner is itself (possible with ``"permutation"``, and the middle image of an odd batch
    with ``"flip"``) is not augmented: its pixels and label row come back exactly. The partner is
    drawn per image in every ``sampling`` mode; with ``sampling="batch"`` every image shares one
    ``lambda``/box, and with ``sampling="pair"`` images ``i`` and ``B - 1 - i`` are mixed with each
    other with one shared ``lambda``/box (the partner is the pair's other image: ``partner`` must
    be ``"other"`` or ``"flip"``); the middle image of an odd batch has no pair and passes through.

    Args:
        num_classes: number of classes; required with class-index labels.
        label_smoothing: smoothing in ``[0, 1)`` applied to the labels before mixing
            (``y (1 - s) + s / K``; a single column of binary labels goes towards 0.5).
        partner: ``"other"``, ``"permutation"`` or ``"flip"`` (above).
    """

    needs_batch = True
    num_classes: int | None
    label_smoothing: float
    partner: str

    # ----------------------------------------------------------------------------------------
    # Strategy hooks.
    # ----------------------------------------------------------------------------------------

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        """Draw the strategy's quantities for the batch that ``draw`` describes; must include
        ``partner_weight`` (float64 ``(B,)``, the exact fraction of each image's pixels that come
        from its partner)."""
        raise NotImplementedError

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        return self.sample_units(batch_size, batch_size, None, channels, height, width, dtype=dtype,
                                 device=device, generator=generator)

    def sample_units(self, batch_size: int, units: int, unit_of: Tensor | None, channels: int, height: int,
                     width: int, *, dtype: torch.dtype, device: torch.device,
                     generator: torch.Generator | None) -> dict[str, Any]:
        if not self.needs_batch:  # Cut-Thumbnail without mix_images: a per-image transform
            return super().sample_units(batch_size, units, unit_of, channels, height, width, dtype=dtype,
                                        device=device, generator=generator)
        # The partner is drawn per image in every mode; in pair mode it is the pair's other image.
        law = "flip" if self.sampling == "pair" else self.partner
        shift = None
        if law == "other" and batch_size >= 2:
            shift = partner_shift(batch_size, device=device, generator=generator)
            partner = cyclic_partners(shift, batch_size)
        else:
            partner = partners(batch_size, device=device, generator=generator, law=law)
        params = _sampling.spread(
            self.sample_mixing(MixingDraw(units, channels, height, width, partner, device, generator)), unit_of
        )
        params["partner"] = partner
        if shift is not None:
            params["partner_shift"] = shift  # the pixel paths' cyclic_shift
        return params

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        params = super().make_params(flat_inputs)
        batch_size = params["batch_shape"][0]
        law = "flip" if self.sampling == "pair" else self.partner
        if self.needs_batch and (law == "permutation" or (law == "flip" and batch_size % 2 == 1)):
            # An image that meets itself would change nothing (pixels) yet get a label weight:
            # it is not augmented, so its image and label row pass through exactly.
            params["selected"] = params["selected"] & (params["partner"] != torch.arange(batch_size,
                                                                                    device=params["partner"].device))
            params["all_selected"] = False
        return params

    # ----------------------------------------------------------------------------------------
    # Calling convention.
    # ----------------------------------------------------------------------------------------

    def forward(self, *inputs: Any) -> Any:
        return self._mix(inputs, self.num_classes, self.label_smoothing)

    def mix_batch(self, *inputs: Any, num_classes: int | None = None,
                  label_smoothing: float | None = None) -> Any:
        """Call the transform with label options given for this call only (None: the transform's own).

        The same as calling the transform, except that ``num_classes`` / ``label_smoothing``, when
        given, replace the transform's own for this call; nothing is stored on the transform. The
        training pipeline, whose images and labels are already apart, calls
        :meth:`mix_images_labels` instead.

        Example:
            >>> import torch
            >>> from maskmix.torch import RandomMixup
            >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
            >>> RandomMixup().mix_batch(x, y, num_classes=3, label_smoothing=0.1)[1].shape
            torch.Size([4, 3])
        """
        return self._mix(inputs, *self._call_label_options("mix_batch", num_classes, label_smoothing))

    def mix_images_labels(self, images: Tensor, labels: Tensor | None, *, num_classes: int | None = None,
                          label_smoothing: float | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`mix_batch` of an image batch and its labels, given apart: ``labels_getter``,
        which finds the labels in a whole sample, is not asked (it would be handed the pair).
        How :class:`maskmix.torch.MaskMixPipeline` calls its mixing transforms."""
        options = self._call_label_options("mix_images_labels", num_classes, label_smoothing)
        mixed_images, mixed_labels = self._mix((images, labels), *options, apart=True)
        return mixed_images, mixed_labels

    def _call_label_options(self, method: str, num_classes: int | None,
                            label_smoothing: float | None) -> tuple[int | None, float]:
        """The label options of one call (None: the transform's own), checked."""
        if not self.needs_batch:
            raise ValueError(f"{type(self).__name__}: {method} needs a transform that mixes images (mix_images=True)")
        # Checked as the constructor checks them: a smoothing outside [0, 1) would give rows that
        # are no distribution, with no error further down.
        param, owner = self.spec.param, f"{type(self).__name__}.{method}"
        return (
            self.num_classes if num_classes is None else param("num_classes").check(owner, "num_classes", num_classes),
            self.label_smoothing if label_smoothing is None
            else param("label_smoothing").check(owner, "label_smoothing", label_smoothing),
        )

    def _mix(self, inputs: tuple[Any, ...], num_classes: int | None, label_smoothing: float, *,
             apart: bool = False) -> Any:
        """Mix a sample (``apart``: the pair ``(images, labels)``, labels_getter not asked)."""
        refuse_unsupported_tracing(type(self).__name__, inputs)
        if (len(inputs) == 2 and type(inputs[0]) is Tensor and type(inputs[1]) is Tensor
                and (apart or not callable(self.labels_getter))):
            # The usual call, `(images, labels)` as two plain tensors: the structure parsing and
            # the search for dense targets below would find exactly these two and nothing else.
            images, labels = inputs
            params = self._mixing_params(images)
            soft = self.soft_labels(labels, images, params["batch_shape"][0], num_classes=num_classes,
                                    label_smoothing=label_smoothing)
            return self.apply_batched(images, params), self._mixed_labels(soft, params)
        sample = inputs if len(inputs) > 1 else inputs[0]
        refuse_per_image_masks(type(self).__name__, sample)
        refuse_plain_coordinates(type(self).__name__, sample)
        images, labels, rebuild = self._split(sample, apart=apart)
        name = type(self).__name__
        leaves, spec = _compat.tree_flatten(sample)
        others = [leaf for leaf in leaves
                  if isinstance(leaf, (tv_tensors.Image, tv_tensors.Video)) and leaf is not images]
        if others:
            # torchvision mixes them all with one draw; here each would need the images' partners
            # and boxes, and passing them through unmixed would leave them behind the images.
            raise TypeError(
                f"{name}: a sample must hold one image batch to mix; got {len(others) + 1} tv_tensors "
                f"({', '.join(type(leaf).__name__ for leaf in (images, *others))}); call the transform once per "
                "batch, or stack the images along the channels"
            )
        refuse_plain_pixel_tensors(name, leaves, images, (images, labels))
        if isinstance(images, tv_tensors.Video) and images.ndim < 5:
            # One clip (T, C, H, W): mixing its frames with each other is not what a Video means.
            raise ValueError(
                f"{name}: a Video to mix must be a batch of clips (B, T, C, H, W) with labels per clip; got "
                f"shape {tuple(images.shape)}, one clip (add a batch dim, e.g. video.unsqueeze(0))"
            )
        video = images if isinstance(images, tv_tensors.Video) else None
        if video is not None:
            # torchvision's convention: a Video (..., T, C, H, W) holds clips of T frames and the
            # labels one row per clip; a clip is mixed with a partner clip, its frames alike
            # (one box, one lambda), which is the per-image rule with the frames as channels.
            clips, frames_channels = math.prod(video.shape[:-4]), math.prod(video.shape[-4:-2])
            self.check_image(video)  # its own layout, before the frames are folded into the channels
            if frames_channels == 0:
                # Clips of no frame: no pixel to mix, every clip passes through (as an empty batch
                # does), its label row included.
                soft = self.soft_labels(labels, video, clips, num_classes=num_classes,
                                        label_smoothing=label_smoothing)
                return rebuild(video, soft)
            images = video.as_subclass(Tensor).reshape(clips, frames_channels, *video.shape[-2:])
            with folded_frames():
                params = self._mixing_params(images)
        else:
            params = self._mixing_params(images)
        batch_size = params["batch_shape"][0]
        soft = self.soft_labels(labels, images, batch_size, num_classes=num_classes, label_smoothing=label_smoothing)
        if video is not None:
            params["image_leading"] = tuple(video.shape[:-3])  # masks (B, T, ...) follow their clip
        # Dense targets anywhere in the sample are found by type, as torchvision does.
        if any(isinstance(leaf, (tv_tensors.Mask, *POINT_TARGETS)) for leaf in leaves):
            leaves = [self.transform_dense_target(leaf, params)
                      if isinstance(leaf, (tv_tensors.Mask, *POINT_TARGETS)) else leaf for leaf in leaves]
            rebuild = self._split(_compat.tree_unflatten(leaves, spec), apart=apart)[2]
        out = self.transform(images, params)
        mixed = self._mixed_labels(soft, params)
        if video is not None:
            frames = out.reshape(-1, *video.shape[-3:])
            if video.reshape(-1, *video.shape[-3:]).is_contiguous(memory_format=torch.channels_last):
                # Frames folded into the channels made a contiguous copy: channels_last frames in,
                # channels_last frames out, as for a batch of images.
                frames = frames.contiguous(memory_format=torch.channels_last)
            out = tv_tensors.wrap(frames.reshape(video.shape), like=video)
        return rebuild(out, mixed)

    def _mixing_params(self, images: Tensor) -> dict[str, Any]:
        """The call's parameters for the image batch ``images``; a batch of 0 or 1 image passes through."""
        params = self.make_params([images])
        if params["batch_shape"][0] < 2:
            params["selected"] = torch.zeros_like(params["selected"])
            params["all_selected"] = False
        return params

    @staticmethod
    def _mixed_labels(soft: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Each selected row of ``soft`` mixed with its partner's row by ``partner_weight``."""
        # Not torch.lerp (one kernel fewer): Inductor computes lerp with other roundings than the
        # eager kernel, and this form gives compiled labels bit-identical to eager ones. addcmul
        # with its default value 1 rounds the product, then the sum, as `a + b * w` does;
        # index_select costs a third of the host time of advanced indexing.
        weight = params["partner_weight"].to(soft.dtype).unsqueeze(1)
        selected, partner = selection(params), params["partner"]
        if soft.requires_grad and torch.is_grad_enabled():
            # Soft labels that record a gradient (a teacher's outputs): the graph saves the weight,
            # the partners and the selection, which must not be inference tensors (_draw_params).
            weight, partner = autograd_ready(weight), autograd_ready(partner)
            selected = None if selected is None else autograd_ready(selected)
        mixed = torch.addcmul(soft * torch.rsub(weight, 1), soft.index_select(0, partner), weight)
        if selected is not None:
            mixed = torch.where(selected.unsqueeze(1), mixed, soft)
        return mixed

    def _split(self, sample: Any, *, apart: bool = False) -> tuple[Tensor, Tensor, Any]:
        name = type(self).__name__
        typed = None
        if isinstance(sample, Mapping):
            # Images are found by type first (any key), then by the key conventions of _structure.
            keys = [k for k, v in sample.items() if isinstance(v, (tv_tensors.Image, tv_tensors.Video))]
            if len(keys) > 1:
                # torchvision mixes them all with one draw; here an Image is mixed per image and a
                # Video per clip, so one draw cannot serve both.
                raise TypeError(
                    f"{name}: a sample must hold one image batch to mix; got tv_tensors under keys "
                    f"{sorted(map(str, keys))}; call the transform once per batch"
                )
            typed = keys[0] if keys else None
        if callable(self.labels_getter) and not apart:
            images, labels, rebuild = self._split_with_getter(sample, typed)
        else:
            images, labels, rebuild = split_images_labels(name, sample, image_key=typed,
                                                          labels_like=lambda value: isinstance(value, Tensor))
        if not self._is_image(images):
            raise TypeError(f"{usage(name)}; images are a {type(images).__name__}")
        if not isinstance(labels, Tensor):
            raise TypeError(f"{name}: labels must be a tensor; got {type(labels).__name__}")
        return images, labels, rebuild

    def _split_with_getter(self, sample: Any, typed: Any) -> tuple[Any, Any, Any]:
        # The labels are what the callable returns; they go back where they were found, by
        # identity among the sample's items (torchvision replaces them in place of the same object).
        name = type(self).__name__
        labels = self.labels_getter(sample)  # type: ignore[operator]  # callable: checked by the caller
        if isinstance(sample, Mapping):
            items: list[tuple[Any, Any]] = list(sample.items())
        elif isinstance(sample, (tuple, list)):
            items = list(enumerate(sample))
        else:
            raise TypeError(f"{usage(name)}; got {type(sample).__name__}")
        label_key = next((k for k, v in items if v is labels), None)
        if label_key is None:
            return self._split_nested(sample, labels)
        image_key = typed
        if image_key is None and isinstance(sample, Mapping):
            image_key = find_key(sample, 0, IMAGE_KEYS, 0)
        if image_key is None:  # as torchvision: the first other tensor of the sample
            image_key = next((k for k, v in items if k != label_key and self._is_image(v)), None)
        if image_key is None:
            raise ValueError(f"{usage(name)}; no images found next to the labels that labels_getter returned")
        if isinstance(sample, Mapping):
            return (sample[image_key], labels,
                    lambda images, soft: rebuild_mapping(sample, {image_key: images, label_key: soft}))
        return (sample[image_key], labels,
                lambda images, soft: rebuild_sequence(sample, {image_key: images, label_key: soft}))

    def _split_nested(self, sample: Any, labels: Any) -> tuple[Any, Any, Any]:
        """:meth:`_split_with_getter` for labels deeper in the sample (``lambda s: s[1]["labels"]``,
        torchvision's detection-style targets): found among the flattened sample by identity, the
        images being its Image/Video, else its first other plain tensor, as torchvision's."""
        name = type(self).__name__
        leaves, spec = _compat.tree_flatten(sample)
        label_at = next((i for i, leaf in enumerate(leaves) if leaf is labels), None)
        if label_at is None:
            raise ValueError(
                f"{name}: labels_getter must return an item of the sample (at any depth: a value of a dict, "
                f"an item of a tuple/list); got a {type(labels).__name__} found nowhere in it"
            )
        typed = [i for i, leaf in enumerate(leaves) if isinstance(leaf, (tv_tensors.Image, tv_tensors.Video))]
        plain = [i for i, leaf in enumerate(leaves) if i != label_at and self._is_image(leaf)]
        image_at = next(iter(typed or plain), None)
        if image_at is None:
            raise ValueError(f"{usage(name)}; no images found next to the labels that labels_getter returned")

        def rebuild(images: Any, soft: Any) -> Any:
            return _compat.tree_unflatten(
                [images if i == image_at else soft if i == label_at else leaf for i, leaf in enumerate(leaves)], spec)

        return leaves[image_at], labels, rebuild

    # ----------------------------------------------------------------------------------------
    # Labels.
    # ----------------------------------------------------------------------------------------

    def soft_labels(self, labels: Tensor, images: Tensor, batch_size: int, *, num_classes: int | None = None,
                    label_smoothing: float | None = None) -> Tensor:
        """Validate ``labels`` against ``images`` and return smoothed soft labels ``(B, K)``.

        ``num_classes`` / ``label_smoothing`` default to the transform's own.
        """
        name = type(self).__name__
        if labels.device != images.device:
            raise ValueError(f"{name}: labels are on {labels.device} but the images are on {images.device}")
        return soft_labels(
            name, labels, batch_size,
            num_classes=self.num_classes if num_classes is None else num_classes,
            label_smoothing=self.label_smoothing if label_smoothing is None else label_smoothing,
        )

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        # Only the images are transformed here (dense targets in _mix); labels are mixed in forward.
        if isinstance(inpt, (tv_tensors.Mask, *POINT_TARGETS)):
            return super().transform(inpt, params)
        if isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)):
            return inpt
        return super().transform(inpt, params)
