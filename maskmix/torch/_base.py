"""The torch base transforms: everything the strategies have in common lives here.

:class:`MaskMixTransform` owns what design §Conventions says about every transform: accepted inputs
(plain tensors, ``tv_tensors.Image``/``Video``, ``(..., C, H, W)`` layouts), dtypes, the value
range, fraction control (``augmentation_ratio`` / ``bernoulli_mix``), bit-identical pass-through,
seeding and call-time validation. It follows torchvision's ``make_params`` / ``transform`` split:
``make_params`` draws every random quantity once per call, as per-image tensors on the images'
device; ``transform`` applies them to each image-like input of the sample.

:class:`MaskingTransform` adds the fill methods for the strategies that erase a region: a
strategy only samples its region parameters and says which pixels they cover.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing.reduction
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypedDict, TypeVar, overload

import PIL.Image
import torch
from torch import Tensor
from torch.utils.data import get_worker_info
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix import registry
from maskmix._checks import LARGEST_FINITE, float_fill_refusal, uint8_refusal
from maskmix._structure import coordinate_keys, image_key_values
from maskmix.geometry import IMAGE_DTYPES, IMAGE_DTYPES_TEXT, derive_seed, looks_transposed, sampling_units
from maskmix.params import num_selected
from maskmix.registry import StrategySpec
from maskmix.schedules import lent_value

from . import _compat, _sampling
from ._sampling import using_generator

__all__ = ["SUPPORTED_DTYPES", "CommonOptions", "MaskMixTransform", "MaskingTransform", "all_selected",
           "may_reuse_buffers", "selection", "using_generator"]

#: Image dtypes every transform accepts (design §Conventions).
SUPPORTED_DTYPES: tuple[torch.dtype, ...] = tuple(getattr(torch, name) for name in IMAGE_DTYPES)

#: Targets made of coordinates, not pixels (``KeyPoints`` exists in newer torchvision only).
POINT_TARGETS: tuple[type, ...] = tuple(
    getattr(tv_tensors, name) for name in ("BoundingBoxes", "KeyPoints") if hasattr(tv_tensors, name)
)

#: What a strategy does with the dense targets of a sample (:attr:`MaskMixTransform.dense_targets`).
DENSE_TARGET_RULES = ("keep", "move", "refuse")


#: Kornia ``DataKey`` names of targets laid out on the pixels (masks, boxes, keypoints).
_KORNIA_PIXEL_TARGETS = frozenset({"MASK", "BBOX", "BBOX_XYXY", "BBOX_XYWH", "KEYPOINTS"})


def all_selected(params: Mapping[str, Any]) -> bool:
    """True when every image of the batch is to be augmented and finding out costs nothing.

    Known by construction when ``params["all_selected"]`` is True: ``augmentation_ratio``
    selects the whole batch without a Bernoulli draw (the default ``augmentation_ratio=1``), so
    no per-image selection needs applying, on any device and under ``torch.compile``. Otherwise
    only a CPU tensor in eager mode is looked at (its values are already on the host); on an
    accelerator reading ``params["selected"]`` would synchronise with the host and under
    ``torch.compile`` it would break the graph, so there the answer is False and the caller
    applies the selection (a per-image ``torch.where`` or a mask product).
    """
    if params.get("all_selected", False):
        return True
    selected = params["selected"]
    return selected.device.type == "cpu" and not torch.compiler.is_compiling() and bool(selected.all())


def selection(params: Mapping[str, Any]) -> Tensor | None:
    """The boolean ``(B,)`` selection to apply, or None when every image is augmented (see
    :func:`all_selected`): then masks need no ``& selected`` and results no ``where``."""
    return None if all_selected(params) else params["selected"]


#: The floating image dtypes whose largest finite value a fill could exceed, by their names.
_LIMITED_FLOATS = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}


def refuse_non_dense(name: str, label: str, tensor: Tensor) -> None:
    """Raise a ``TypeError`` for a tensor that is not a dense (strided) one: sparse, MKLDNN or
    nested tensors have no per-pixel strides to index (torch failed deep inside, with its own
    errors, in every strategy)."""
    if tensor.is_nested:
        raise TypeError(f"{name}: {label} must be a dense (strided) tensor; got a nested tensor (pad or resize "
                        "its images to one size and stack them into one batch)")
    if tensor.layout != torch.strided:
        kind = str(tensor.layout).removeprefix("torch.").lstrip("_")
        raise TypeError(f"{name}: {label} must be a dense (strided) tensor; got a {kind} tensor (convert it with "
                        ".to_dense())")


def may_write_new_buffers(images: Tensor) -> bool:
    """True when new tensors computed from ``images`` may be written over in place whatever their
    layout: in eager mode (Inductor fuses the out-of-place ops anyway) and when no autograd graph
    is recorded through the images (it may have saved them). The values are the same either way."""
    return not torch.compiler.is_compiling() and not _compat.records_gradients(images)


def may_reuse_buffers(images: Tensor) -> bool:
    """True when a new batch-sized tensor computed from ``images`` may be written over in place.

    That saves one batch-sized allocation per step (on a CPU, a fresh allocation of a large batch
    costs about as much as a copy of it, in page faults). Allowed where
    :func:`may_write_new_buffers` allows it, for contiguous images (the in-place result then has
    the layout the out-of-place one would have).
    """
    return may_write_new_buffers(images) and images.is_contiguous()


def clip_length(images: Tensor) -> int:
    """The frames per clip of a ``tv_tensors.Video`` ``(..., T, C, H, W)`` (design §Conventions: a
    Video is a batch of clips whose frames share every random quantity), 1 for other images."""
    if isinstance(images, tv_tensors.Video) and images.ndim >= 4:
        return int(images.shape[-4])
    return 1


#: True while the parameters of a Video's clips are drawn with the frames folded into the
#: channels (the mixing transforms: :func:`folded_frames`); this thread/task only.
_FOLDED_FRAMES: ContextVar[bool] = ContextVar("maskmix_folded_frames", default=False)


@contextlib.contextmanager
def folded_frames() -> Iterator[None]:
    """Draw for ``(clips, T * C, H, W)`` tensors made from a Video whose layout was checked:
    :meth:`MaskMixTransform.check_image` then does not read many frames-times-channels next to a
    narrow image as a channels-last batch."""
    token = _FOLDED_FRAMES.set(True)
    try:
        yield
    finally:
        _FOLDED_FRAMES.reset(token)


def batch_layout(images: Tensor) -> tuple[int, int, bool]:
    """``(units, frames, single)`` of ``(..., C, H, W)`` images (design §Conventions): how many
    images, or clips of a ``tv_tensors.Video``, draw their own parameters; the frames of each clip
    (1 for images); and whether the tensor is one image ``(C, H, W)`` or one clip ``(T, C, H, W)``."""
    shape = images.shape
    frames = clip_length(images)
    # A (B, C, H, W) batch, the usual call, without a product.
    units = shape[0] if len(shape) == 4 and frames == 1 else math.prod(shape[:-3]) // max(frames, 1)
    return units, frames, images.ndim == 3 or (frames > 1 and images.ndim == 4)


def draws_coins(bernoulli_mix: bool, ratio: float | Tensor, single: bool) -> bool:
    """Whether the selection flips a coin per unit (``bernoulli_mix``) rather than counting them:
    also for one image or clip with a ratio strictly between 0 and 1 (or a scheduled one), which
    an exact count would round to never or always (torchvision's ``p`` is a coin too)."""
    return bernoulli_mix or (single and (isinstance(ratio, Tensor) or 0.0 < ratio < 1.0))


class CommonOptions(TypedDict, total=False):
    """Keyword-only options every transform accepts (see :class:`MaskMixTransform`)."""

    augmentation_ratio: float
    bernoulli_mix: bool
    pixels_range: tuple[float, float] | None
    sampling: str
    generator: torch.Generator | None
    labels_getter: str | Callable[[Any], Any]


_Built = TypeVar("_Built", bound="MaskMixTransform")
_Images = TypeVar("_Images", bound=Tensor)


class MaskMixTransform(v2.Transform):
    """Base class of every maskmix torch transform.

    Subclasses set :attr:`spec` (their framework-free parameter specification) and implement
    :meth:`sample` (draw per-image parameters) and :meth:`apply` (change the pixels of a
    ``(B, C, H, W)`` batch). The base class does the rest.

    As torchvision's transforms, a call always augments: the module's ``training`` flag
    (``.eval()``) is not read. A transform placed inside a model therefore also augments its
    validation and inference; keep it in the training step (the Lightning callback augments
    training batches only).

    Keyword-only options shared by every transform:

    Args:
        augmentation_ratio: fraction of the images of the batch to augment, in ``[0, 1]``.
        bernoulli_mix: ``False`` augments exactly ``round(ratio * B)`` images (halves rounded
            up) at random positions; ``True`` augments each image independently with probability
            ``ratio`` (timm's ``probability``). One ``(C, H, W)`` image (a per-sample pipeline,
            e.g. in a ``Dataset``) is always augmented with probability ``ratio``, as
            torchvision's ``p``: an exact count of one image would be all or nothing.
        pixels_range: ``(lo, hi)`` value range of the images, used by the ``black``, ``gray``,
            ``white``, ``random`` and ``noise`` fills. ``None`` means ``(0, 1)`` for floating
            dtypes and ``(0, 255)`` for ``uint8``. Set it for normalised images; uint8 images take
            whole numbers in ``[0, 255]`` only (and refuse the ``normal`` fills).
        sampling: what one random draw covers (design §Conventions, sampling modes).
            ``"image"`` (default): every image draws its own parameters. ``"batch"``: one draw
            shared by every image of the batch (the papers' per-batch CutMix, Mixup, CutBlur and
            Cut-Thumbnail; Kornia's ``same_on_batch=True``); with ``bernoulli_mix=True`` one coin
            decides for the whole batch (all images or none: the papers' per-batch probability),
            without it the exact count of images is selected as usual and they share the draw.
            ``"pair"`` (timm's ``mode="pair"``): images ``i`` and ``B - 1 - i`` form a unit with
            one draw and one selection (the exact count then counts pairs); the middle image of
            an odd batch is a unit of its own. In a ``tv_tensors.Video`` the units are made of
            clips, whose frames share everything as always.
        generator: optional ``torch.Generator`` on the images' device; ``None`` uses the global
            RNG of that device. Same generator state and same input give the same output.
        labels_getter: the transforms that mix labels only (torchvision's option): ``"default"``
            finds the labels by the sample conventions (second item, ``labels`` key in any case or
            the first key containing "label", as torchvision); a callable returns them from the sample, and they
            are replaced where it found them (an item or a value of the sample itself).

    Inputs are tensors shaped ``(..., C, H, W)``: a 4-D tensor is a batch, a 3-D tensor one image,
    leading dims beyond one are flattened and restored. Each image of the flattened batch gets its
    own random parameters (with the default ``sampling="image"``), except in a
    ``tv_tensors.Video`` ``(..., T, C, H, W)``: a batch of clips (one clip when 4-D), where the
    selection and every draw are per clip, shared by its ``T`` frames. A sample in which no image
    is found raises a ``TypeError``; images that look channels-last (more than 4 values on the
    channel axis where the last axis has 1 to 4, e.g. ``(B, 32, 32, 3)`` stacked from NumPy)
    raise a ``ValueError``. The output has the input's shape, dtype, device and tensor subclass;
    the input is never modified. Images that are not selected are returned bit-identical.

    Segmentation masks and boxes: a ``tv_tensors.Mask`` in the sample (found by type), shaped
    like the images' leading dims plus ``(H, W)`` or ``(K, H, W)`` and of an integer or bool dtype,
    goes through :meth:`apply_mask` with the call's parameters; :attr:`dense_targets` says whether
    masks are kept, moved with the pixels or refused, and whether ``BoundingBoxes``/``KeyPoints``
    pass through (``"keep"``) or raise a ``TypeError``. See :meth:`transform_dense_target`.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomErasing
        >>> images = torch.rand(1, 3, 8, 8).expand(4, 3, 8, 8)  # four copies of one image
        >>> out = RandomErasing(sampling="batch", fill_method=0.0)(images)
        >>> bool((out == out[0]).all())  # one rectangle for the whole batch
        True
        >>> out = RandomErasing(sampling="pair", fill_method=0.0)(images)
        >>> bool((out[0] == out[3]).all() and (out[1] == out[2]).all())  # images i and B-1-i
        True
    """

    spec: ClassVar[StrategySpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.dense_targets not in DENSE_TARGET_RULES:
            raise TypeError(
                f"{cls.__name__}: dense_targets must be one of {DENSE_TARGET_RULES}; got {cls.dense_targets!r}"
            )
        # A class that declares its own spec under the spec's name implements that strategy: the
        # registry finds it there (tests, benchmarks and the gallery iterate over the registry).
        spec = cls.__dict__.get("spec")
        if spec is not None and spec.name == cls.__name__:
            registry.register_implementation(spec, "torch", cls)
        # Looked up once per class, not per call (a bound method and an attribute walk each call).
        cls._default_make_params = cls.make_params is MaskMixTransform.make_params

    #: True for the strategies that need at least two images (they pair images of the batch).
    needs_batch: ClassVar[bool] = False

    #: Whether a call's parameters are drawn in inference mode where no autograd graph can reach
    #: them (see :meth:`_draw_params`). A strategy whose usual draw is one or two small kernels
    #: turns it off: entering the mode then costs more host time than it saves.
    draws_in_inference_mode: ClassVar[bool] = True

    #: Set per class (:meth:`__init_subclass__`): True when :meth:`make_params` is the base's.
    _default_make_params: ClassVar[bool] = True

    #: How the strategy treats the targets of a sample that are not images, declared once here:
    #: ``"keep"``: pixels stay where they are (erasing, CutBlur), so boxes and keypoints pass
    #: through untouched and segmentation masks go through :meth:`apply_mask` (unchanged by
    #: default); ``"move"``: pixels move within or between images, so masks follow them through
    #: :meth:`apply_mask` and boxes/keypoints, which would not follow, are refused; ``"refuse"``:
    #: pixels are blended (Mixup), which a hard mask cannot follow: masks, boxes and keypoints
    #: are refused.
    dense_targets: ClassVar[str] = "keep"
    #: Whether the strategy reads ``pixels_range`` (fills, colour jitter); uint8 images then refuse
    #: one they cannot hold. For the others it is accepted and unused.
    reads_pixels_range: ClassVar[bool] = False

    #: Set per instance by the strategies whose spec has a ``return_labels`` parameter
    #: (CutPaste, CutSwap): ``forward`` then also returns the per-image "is augmented" labels.
    return_labels: bool = False

    # Set by the validated parameters (annotations for type checkers).
    augmentation_ratio: float
    bernoulli_mix: bool
    pixels_range: tuple[float, float] | None
    sampling: str

    if TYPE_CHECKING:
        # What a call returns, told to type checkers (nn.Module's __call__ returns Any): the
        # images' own type (a tv_tensors.Image stays one), a pair with labels; other samples
        # (dicts, tuples) come back in their own structure.
        @overload
        def __call__(self, inputs: _Images, /) -> _Images: ...
        @overload
        def __call__(self, images: _Images, labels: Tensor, /) -> tuple[_Images, Tensor]: ...
        @overload
        def __call__(self, *inputs: Any) -> Any: ...
        def __call__(self, *inputs: Any) -> Any: ...

    def __init__(self, *, generator: torch.Generator | None = None,
                 labels_getter: str | Callable[[Any], Any] = "default", **params: Any) -> None:
        super().__init__()
        name = type(self).__name__
        validated = self.spec.validate(params, owner=name)
        for key, value in validated.items():
            setattr(self, key, value)
        #: The validated parameters; a later assignment of one is validated again (__setattr__).
        self._strategy_params = validated
        self.generator = generator  # checked by __setattr__
        self.labels_getter = labels_getter  # checked by __setattr__
        # timm's `num_splits`: the first B // n images of a batch stay clean (n > 1).
        self._clean_splits = 0

    def extra_repr(self) -> str:
        # torchvision's lists the public attributes of plain types; what changes the draws and is
        # kept otherwise is added: timm's num_splits, a generator and a callable labels_getter.
        extra = [super().extra_repr()]
        if self._clean_splits > 1:
            extra.append(f"num_splits={self._clean_splits}")
        if self.generator is not None:
            extra.append(f"generator=torch.Generator(initial_seed={self.generator.initial_seed()})")
        if callable(self.labels_getter):
            extra.append(f"labels_getter={getattr(self.labels_getter, '__qualname__', repr(self.labels_getter))}")
        return ", ".join(item for item in extra if item)

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_strategy_params")
        if name == "generator" and value is not None and not isinstance(value, torch.Generator):
            raise TypeError(f"{type(self).__name__}: generator must be a torch.Generator or None; got {value!r}")
        if name == "labels_getter":
            self._check_labels_getter(value)  # at construction and at any later assignment
        if params is not None and name in params:
            # Checked as the constructor checks it, with the other parameters (joint rules
            # included): a value it refuses would otherwise be used as given, or fail deep in a call.
            params = self.spec.validate({**params, name: value}, owner=type(self).__name__)
            self.__dict__["_strategy_params"] = params
            value = params[name]
        super().__setattr__(name, value)

    def _check_labels_getter(self, labels_getter: Any) -> None:
        name = type(self).__name__
        if not (callable(labels_getter) or (isinstance(labels_getter, str) and labels_getter == "default")):
            raise TypeError(
                f"{name}: labels_getter must be 'default' or a callable returning the labels from the "
                f"sample; got {labels_getter!r}"
            )
        if labels_getter != "default" and not self.needs_batch:
            raise TypeError(
                f"{name}: labels_getter applies to the transforms that mix labels; this one leaves "
                "labels untouched (leave labels_getter at 'default')"
            )

    @classmethod
    def from_paper(cls: type[_Built], setting: str | None = None, **options: Any) -> _Built:
        """The strategy configured as its paper's official code (or the paper) did in ``setting``.

        The settings are declared once, framework-free, in the strategy's spec
        (``cls.spec.papers``: ``{setting: Preset(config, source, notes)}``; the docs list them with
        their sources). ``setting=None`` takes the first one. ``options`` are passed on top of the
        setting's parameters (``generator``, ``pixels_range``, ...); an unknown setting is a
        ``ValueError`` listing the known ones.

        Example:
            >>> from maskmix.torch import RandomCutout
            >>> cutout = RandomCutout.from_paper("cifar10")  # a 16-pixel square on 32x32 images
            >>> cutout.patch_side, cutout.allow_partial
            ((16, 16), True)
        """
        return cls(**cls.spec.paper_arguments(setting, options, owner=cls.__name__))

    # ----------------------------------------------------------------------------------------
    # Strategy hooks.
    # ----------------------------------------------------------------------------------------

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        """Draw the per-image parameters of a ``(B, C, H, W)`` batch (tensors on ``device``)."""
        raise NotImplementedError

    def sample_units(self, batch_size: int, units: int, unit_of: Tensor | None, channels: int, height: int,
                     width: int, *, dtype: torch.dtype, device: torch.device,
                     generator: torch.Generator | None) -> dict[str, Any]:
        """The ``(B, ...)`` parameters of a batch whose ``B`` images take ``units`` draws: image ``i``
        takes draw ``unit_of[i]`` (None: its own; see :attr:`sampling`). By default :meth:`sample`
        for the units, spread; the mixing base also draws each image's partner."""
        params = self.sample(units, channels, height, width, dtype=dtype, device=device, generator=generator)
        return _sampling.spread(params, unit_of)

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Return a new ``(B, C, H, W)`` tensor of ``images``' dtype with the selected images changed.

        ``params["selected"]`` is the boolean ``(B,)`` selection; unselected images must come back
        bit-identical (typically through one ``torch.where``). ``params["all_selected"]`` is True
        when the whole batch is selected by construction (``augmentation_ratio`` 1 without
        ``bernoulli_mix``, the default): :func:`selection` then returns None and the strategy skips
        applying the selection (a mask product or a ``where`` over the batch fewer).
        """
        raise NotImplementedError

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Return the ``(B, K, H, W)`` integer/bool segmentation ``masks`` as the drawn ``params``
        change their images' pixels (unselected images' masks bit-identical). A ``"move"``
        strategy moves them with the same index computation as its pixels; by default the masks
        are kept."""
        return masks

    # ----------------------------------------------------------------------------------------
    # Helpers for strategies.
    # ----------------------------------------------------------------------------------------

    def value_range(self, dtype: torch.dtype) -> tuple[float, float]:
        """The images' ``(lo, hi)``: ``pixels_range``, or the dtype's natural range."""
        if self.pixels_range is not None:
            return self.pixels_range
        return (0.0, 255.0) if dtype == torch.uint8 else (0.0, 1.0)

    @staticmethod
    def to_image_dtype(values: Tensor, dtype: torch.dtype, *, in_place: bool = False,
                       within_range: bool = False) -> Tensor:
        """Cast computed values to the image dtype: floats as they are, uint8 rounded and saturated.

        ``in_place=True`` rounds and saturates ``values`` itself (a fresh buffer the caller owns),
        sparing two batch-sized temporaries; the result is the same. ``within_range=True`` says
        that the values already lie in ``[0, 255]`` (a convex combination of uint8 pixels): the
        saturation, a pass over the batch, is skipped. Finite values beyond float16's largest
        (65504) saturate there for float16 images (not clipping to ``pixels_range``).
        """
        if dtype == torch.uint8:
            rounded = values.round_() if in_place else values.round()
            if not within_range:
                rounded = rounded.clamp_(0, 255)
            return rounded.to(dtype)
        if dtype == torch.float16 and values.dtype != dtype and not within_range:
            # Work done in float32 (bicubic overshoot) may pass float16's largest value: saturated
            # there rather than written as inf. Only such values move: inf and NaN stay.
            top = LARGEST_FINITE["float16"]
            values = torch.where(values.isinf(), values, values.clamp(-top, top))
        return values.to(dtype)

    @staticmethod
    def compute_dtype(dtype: torch.dtype) -> torch.dtype:
        """The floating dtype in which values for an image of ``dtype`` are computed."""
        return dtype if dtype.is_floating_point else torch.float32

    # ----------------------------------------------------------------------------------------
    # torchvision v2 machinery.
    # ----------------------------------------------------------------------------------------

    def _images_of(self, flat_inputs: list[Any]) -> list[Tensor]:
        images = []
        for inpt in flat_inputs:
            if isinstance(inpt, PIL.Image.Image):
                raise TypeError(
                    f"{type(self).__name__}: expected image tensors, got a PIL image; "
                    "convert it with v2.ToImage() (and v2.ToDtype) first"
                )
            if self._is_image(inpt):
                images.append(inpt)
        return images

    @staticmethod
    def _is_image(inpt: Any) -> bool:
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)):
            return True
        return isinstance(inpt, Tensor) and not isinstance(inpt, tv_tensors.TVTensor)

    def check_image(self, image: Tensor) -> None:
        """Raise if ``image`` is not a supported ``(..., C, H, W)`` tensor."""
        name = type(self).__name__
        refuse_non_dense(name, "images", image)
        if image.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name}: images must have dtype {IMAGE_DTYPES_TEXT}; got {image.dtype}")
        if image.dtype == torch.uint8:
            refusal = uint8_refusal(name, self.pixels_range if self.reads_pixels_range else None,
                                    getattr(self, "fill_method", None))
            if refusal is not None:
                raise ValueError(refusal)
        elif image.dtype in _LIMITED_FLOATS and getattr(self, "fill_method", None) is not None:  # masking fills
            refusal = float_fill_refusal(name, _LIMITED_FLOATS[image.dtype], self.pixels_range,
                                         getattr(self, "fill_method", None))
            if refusal is not None:
                raise ValueError(refusal)
        minimum = 4 if self.needs_batch else 3
        if image.ndim < minimum:
            layout = "a batch (..., B, C, H, W)" if self.needs_batch else "(..., C, H, W)"
            raise ValueError(
                f"{name}: images must be {layout} with at least {minimum} dims; got shape {tuple(image.shape)}"
            )
        if 0 in image.shape[-3:]:
            raise ValueError(
                f"{name}: images must have at least one channel, row and column (C, H, W >= 1); "
                f"got shape {tuple(image.shape)}"
            )
        channels, last = image.shape[-3], image.shape[-1]
        if looks_transposed(channels, last) and not _FOLDED_FRAMES.get():
            # E.g. images stacked from NumPy (B, H, W, C) arrays: erased or mixed along the wrong
            # axes without an error otherwise.
            raise ValueError(
                f"{name}: images of shape {tuple(image.shape)} look channels-last (..., H, W, C): {channels} "
                f"values on the channel axis (-3) and {last} on the last; permute them to (..., C, H, W), "
                "e.g. images.permute(0, 3, 1, 2) (torchvision's v2.ToImage() does it for NumPy and PIL images)"
            )

    def _generator_for(self, device: torch.device) -> torch.Generator | None:
        gen = self.generator
        if torch.compiler.is_compiling():
            if gen is not None:
                raise TypeError(
                    f"{type(self).__name__}: torch.compile cannot trace a torch.Generator; leave "
                    "generator=None under torch.compile and seed with torch.manual_seed instead"
                )
            return None
        lent = _sampling.lent_generator()  # see using_generator: passed at call time, not stored here
        if lent is not None:
            gen = lent
        elif gen is not None and get_worker_info() is not None:
            gen = self._worker_generator(gen)
        if gen is not None and gen.device.type != device.type:
            raise ValueError(
                f"{type(self).__name__}: generator is on {gen.device} but the images are on {device}; "
                "create the generator on the images' device"
            )
        return gen

    def _worker_generator(self, gen: torch.Generator) -> torch.Generator:
        """The stream of this DataLoader worker, for a transform with a ``generator`` (one stream per
        generator, shared by the transforms that hold it).

        Every worker holds a copy of the generator in the state it had when the workers started,
        and the main process's never advances: each worker, and each epoch, would draw the same
        numbers. A worker draws instead from a generator seeded from the generator's seed and the
        worker's (which the DataLoader derives per worker and per epoch from its own seed, so runs
        under ``torch.manual_seed`` repeat). A generator re-seeded in the worker (a Dataset that
        seeds it per sample) restarts the stream from its new seed, the same seed included: a
        generator found in a freshly seeded state restarts it, and each call takes one number from
        the worker's copy so that it does not stay fresh. A generator the Dataset also draws from
        (its own crops) is never fresh: its stream goes on.
        """
        info = get_worker_info()
        assert info is not None  # checked by the caller
        # One stream per generator, not per transform: transforms that share a generator take turns
        # on one stream, as they do in the main process (streams of their own, seeded alike, drew
        # the same numbers in every transform: the same rectangle erased twice).
        kept = _WORKER_STREAMS.get(id(gen))
        seed = gen.initial_seed()
        # A new seed restarts it too, even when the Dataset drew from the generator since.
        if (kept is None or kept[0] is not gen or kept[1] != (seed, info.seed)
                or torch.equal(gen.get_state(), _fresh_state(gen.device, seed))):
            stream = torch.Generator(device=gen.device)
            stream.manual_seed(derive_seed(seed, info.seed))
            kept = _WORKER_STREAMS[id(gen)] = (gen, (seed, info.seed), stream)  # holding gen keeps its id unique
        torch.randint(2, (1,), device=gen.device, generator=gen)  # the call's mark: the copy is no longer fresh
        return kept[2]

    def check_inputs(self, flat_inputs: list[Any]) -> None:
        # Called by torchvision's forward with every item of the sample, before the non-image
        # ones are filtered out: the place to say what a sample without images held.
        images = self._images_of(flat_inputs)
        if not images:
            self._refuse_imageless(flat_inputs)
        # The images torchvision's convention transforms: the Images and Videos, else the first
        # plain tensor; other plain tensors pass through (refused when shaped like pixels).
        typed = [inpt for inpt in images if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video))]
        refuse_plain_pixel_tensors(type(self).__name__, flat_inputs, (typed or images)[0],
                                   tuple(typed) if typed else (images[0],))

    def _refuse_imageless(self, flat_inputs: list[Any]) -> None:
        # torchvision refuses such a sample too: returning it untouched would look like an
        # augmentation that happened to select nothing (a NumPy batch, a list of images).
        received = ", ".join(sorted({type(inpt).__name__ for inpt in flat_inputs})) or "nothing"
        raise TypeError(
            f"{type(self).__name__}: no image found in the sample (got {received}); pass image "
            "tensors (a torch.Tensor, tv_tensors.Image or tv_tensors.Video), e.g. "
            "torch.from_numpy(array) or v2.ToImage()(image), stacked into one batch tensor"
        )

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """The call's random parameters for the sample's ``flat_inputs`` (torchvision's v2 hook; pass
        them to :meth:`transform` to apply them). Read-only: some tensors in them (a whole-batch
        selection, a fixed side) are constants kept between calls and shared by every transform,
        so writing into them would change later calls."""
        images = self._images_of(flat_inputs)
        if not images:
            self._refuse_imageless(flat_inputs)
        first = images[0]
        self.check_image(first)
        for other in images[1:]:
            self.check_image(other)
            if other.shape[-2:] != first.shape[-2:] or other.shape[:-3].numel() != first.shape[:-3].numel():
                raise ValueError(
                    f"{type(self).__name__}: all images of a sample must share batch size, height and "
                    f"width; got shapes {tuple(first.shape)} and {tuple(other.shape)}"
                )
            if clip_length(other) != clip_length(first):
                # One draw cannot serve both: a Video draws per clip, its frames sharing the draw,
                # and the images of the other tensor would share it in groups of frames (or the
                # frames would get draws of their own).
                raise ValueError(
                    f"{type(self).__name__}: the images of a sample must be all images or all clips of the same "
                    f"length; got {type(first).__name__} {tuple(first.shape)} and {type(other).__name__} "
                    f"{tuple(other.shape)}; call the transform once for each"
                )
        # Any tensor of the sample that records a gradient (an image, float boxes) may meet the
        # parameters in an autograd graph: then they are drawn as ordinary tensors.
        graph = torch.is_grad_enabled() and any(isinstance(inpt, Tensor) and inpt.requires_grad
                                                for inpt in flat_inputs)
        return self._draw_params(first, graph=graph)

    def _draw_params(self, first: Tensor, *, graph: bool | None = None) -> dict[str, Any]:
        """The call's parameters for images shaped like ``first`` (already checked): what
        :meth:`make_params` returns, drawn once per call. A plain-tensor call comes here directly.

        Drawn in inference mode unless an autograd graph may go through the sample (``graph``;
        None: through ``first``), ``torch.compile`` traces or the strategy turns it off
        (:attr:`draws_in_inference_mode`): the parameters never need a
        gradient, and inference mode skips the autograd bookkeeping of each of their many small
        operations (up to a tenth of the host time of a small eager call). They are then
        inference tensors: read them freely, but do not write into them, and copy one
        (:meth:`~torch.Tensor.clone`) before an autograd graph saves it (the label mixing does:
        :func:`maskmix.torch._mixing.autograd_ready`).
        """
        if graph is None:
            graph = first.requires_grad and torch.is_grad_enabled()
        if graph or not self.draws_in_inference_mode or torch.compiler.is_compiling():
            return self._draw(first)
        with _compat.inference_mode():
            return self._draw(first)

    def _draw(self, first: Tensor) -> dict[str, Any]:
        """:meth:`_draw_params`, in the caller's autograd mode."""
        shape = first.shape
        channels, height, width = shape[-3:]
        batch_size, frames, single = batch_layout(first)  # images, or clips of a Video
        device = first.device
        generator = self._generator_for(device)
        # A scheduled ratio is lent by the integrations (maskmix.schedules): a number in eager
        # steps, a (1,) tensor in compiled ones (its value then stays out of the graph).
        ratio = lent_value(self, "augmentation_ratio", self.augmentation_ratio)
        scheduled = isinstance(ratio, Tensor)
        bernoulli = draws_coins(self.bernoulli_mix, ratio, single)
        # The sampling mode's units (design §Conventions, sampling modes): draws are made per unit
        # and given to its images (clips of a Video: units of clips, then frames of each clip).
        mode = self.sampling
        if self._clean_splits > 1 and mode != "image":
            raise ValueError(
                f"{type(self).__name__}: num_splits={self._clean_splits} (from_timm) keeps the first "
                f"1/{self._clean_splits} of the batch clean, which sampling={mode!r} cannot honour (its units share "
                "one selection); keep sampling='image' with num_splits"
            )
        units = sampling_units(mode, batch_size)
        # Static (no tensor is read): the whole batch is selected by construction.
        counted = units if mode == "pair" else batch_size  # pair mode counts pairs
        all_selected = not bernoulli and not scheduled and self._clean_splits <= 1 and (
            # A symbolic batch size (torch.export with a Dim, dynamic=True): a ratio below 1 may
            # select the whole batch at some sizes only, which a Python comparison would have
            # guarded (an export error); the selection is applied at every size instead.
            ratio >= 1 if isinstance(counted, torch.SymInt) else num_selected(ratio, counted) >= counted
        )
        if units == batch_size:
            # Every image takes its own draw (the default): no unit index to build.
            unit_of = None
            selected = (_sampling.cached_all_true(batch_size, device) if all_selected else
                        _sampling.select_images(batch_size, ratio, bernoulli, device=device, generator=generator))
        else:
            unit_of = _sampling.unit_index(mode, batch_size, device=device)
            selected = _sampling.select_units(
                mode, batch_size, ratio, bernoulli, unit_of, device=device, generator=generator,
                pairs_only=self.needs_batch,
            )
        if self._clean_splits > 1:
            clean = batch_size // self._clean_splits
            selected = selected & (torch.arange(batch_size, device=device) >= clean)
        params = self.sample_units(
            batch_size, units, unit_of, channels, height, width, dtype=first.dtype, device=device, generator=generator
        )
        params["selected"] = selected
        params["all_selected"] = all_selected
        params["batch_shape"] = (batch_size, height, width)
        params["image_leading"] = tuple(shape[:-3])  # what the leading dims of masks must be
        self.refine_selection(params)
        if frames > 1:
            # A Video: everything was drawn per clip; each frame takes its clip's draws.
            params = {key: value.repeat_interleave(frames, dim=0)
                      if isinstance(value, Tensor) and value.ndim > 0 else value
                      for key, value in params.items()}
            params["batch_shape"] = (batch_size * frames, height, width)
        return params

    def refine_selection(self, params: dict[str, Any]) -> None:
        """Hook: unselect, in the drawn ``params``, the images that the strategy leaves unchanged,
        so that they count as not augmented (CutPaste, CutSwap). By default, none."""

    def augmentation_labels(self, params: Mapping[str, Any]) -> Tensor:
        """Hook: the int64 ``(B,)`` labels ``return_labels=True`` returns; by default 1 where the
        image was augmented, 0 where it passed through (CutPaste's 3-way task labels its kinds)."""
        return params["selected"].to(torch.int64)

    def forward(self, *inputs: Any) -> Any:
        """Transform a sample; with ``return_labels=True`` return ``(output, is_augmented)``.

        Without ``return_labels`` this is torchvision's ``Transform.forward``. With it, the same
        steps run here (flatten the sample, draw the parameters once, transform each image-like
        input) so that the call's parameters are at hand without storing them on the module,
        and ``is_augmented`` is returned next to the usual output: an int64 tensor shaped like
        the leading dims of the first image (``shape[:-3]``; 0-d for a single ``(C, H, W)``
        image; one per clip of a ``tv_tensors.Video``, ``shape[:-4]``, 0-d for one clip) that is
        1 where the image was augmented and 0 where it was passed through.
        """
        refuse_unsupported_tracing(type(self).__name__, inputs)
        if len(inputs) == 1 and type(inputs[0]) is Tensor:
            if ((self.dense_targets != "keep" or getattr(self, "mask_fill", None) is not None)
                    and not torch.compiler.is_compiling()):  # Dynamo cannot trace frame inspection
                self._refuse_a_kornia_container_with_targets()
            # A plain tensor alone, the usual batch call: torchvision's forward would flatten it
            # to [image], find that it is the image and transform it. The same steps without
            # that plumbing, which costs more host time than the kernels of a small batch.
            image = inputs[0]
            if self._default_make_params and "make_params" not in self.__dict__:  # not replaced on the instance
                self.check_image(image)  # all make_params would do before drawing, for one plain tensor
                params = self._draw_params(image)
            else:
                params = self.make_params([image])  # overridden (a strategy adds to the parameters)
            output = self.apply_batched(image, params)
            return (output, self._labels_of(image, params)) if self.return_labels else output
        sample = inputs if len(inputs) > 1 else inputs[0]
        refuse_per_image_masks(type(self).__name__, sample)
        if self.dense_targets != "keep":
            refuse_plain_coordinates(type(self).__name__, sample)
        flat_inputs, spec = _compat.tree_flatten(sample)
        refuse_images_after_another_tensor(type(self).__name__, sample, flat_inputs)
        if not self.return_labels:
            return super().forward(*inputs)
        self.check_inputs(flat_inputs)
        needs_transform = _compat.needs_transform_list(self, flat_inputs)
        chosen = [inpt for inpt, needed in zip(flat_inputs, needs_transform, strict=True) if needed]
        params = self.make_params(chosen)
        flat_outputs = [
            self.transform(inpt, params) if needed else inpt
            for inpt, needed in zip(flat_inputs, needs_transform, strict=True)
        ]
        output = _compat.tree_unflatten(flat_outputs, spec)
        return output, self._labels_of(next(inpt for inpt in chosen if self._is_image(inpt)), params)

    def __prepare_scriptable__(self) -> NoReturn:
        # torch.jit.script asks this first. torchvision's answer sends users to its functional API,
        # which is not what maskmix has: say what to use instead.
        refuse_torchscript(type(self).__name__)

    def _refuse_a_kornia_container_with_targets(self) -> None:
        """Raise when a Kornia ``AugmentationSequential`` with masks, boxes or keypoints among its
        ``data_keys`` calls this transform, which moves pixels or writes ``mask_fill``: Kornia
        gives a module that is not one of its augmentations the images alone and returns the
        other keys unchanged, so they would silently stop matching the images. Not checked while
        ``torch.compile`` traces (Dynamo cannot trace the frame inspection)."""
        keys = _compat.calling_kornia_data_keys()
        if not keys:
            return
        moves = self.dense_targets != "keep"
        targets = [key for key in keys if key in (_KORNIA_PIXEL_TARGETS if moves else {"MASK"})]
        if targets:
            name = type(self).__name__
            raise ValueError(
                f"{name}: called inside a Kornia AugmentationSequential with data_keys {keys}; Kornia gives a "
                f"module that is not one of its augmentations the images alone and returns "
                f"{', '.join(targets)} unchanged, but {name} {'moves pixels' if moves else 'writes mask_fill'}. "
                f"Run the Kornia container first, then {name} on (images, tv_tensors.Mask(masks)) "
                "(boxes: tv_tensors.BoundingBoxes)"
            )

    def _labels_of(self, first: Tensor, params: Mapping[str, Any]) -> Tensor:
        """The ``return_labels`` output for a call whose first image is ``first``."""
        frames = clip_length(first)
        labels = self.augmentation_labels(params)
        if frames > 1:
            labels = labels[::frames]  # one label per clip: its frames share the selection
        return labels.reshape(first.shape[:-4] if frames > 1 else first.shape[:-3])

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if params and isinstance(inpt, (tv_tensors.Mask, *POINT_TARGETS)):
            return self.transform_dense_target(inpt, params)
        if not self._is_image(inpt) or not params:
            return inpt
        if isinstance(inpt, tv_tensors.TVTensor):
            return tv_tensors.wrap(self.apply_batched(inpt.as_subclass(Tensor), params), like=inpt)
        return self.apply_batched(inpt, params)

    def apply_batched(self, image: Tensor, params: Mapping[str, Any]) -> Tensor:
        """:meth:`apply` to the plain ``(..., C, H, W)`` tensor ``image``, seen as a ``(B, C, H, W)``
        batch; the result has ``image``'s shape (and its channels_last layout)."""
        # A (B, C, H, W) batch, the usual call, is its own view: two reshapes fewer on the host.
        flat = image.ndim == 4
        batch = image if flat else image.reshape(-1, *image.shape[-3:])
        out = self.apply(batch, params)
        if batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous():
            # channels_last in, channels_last out (as torchvision and timm): the next layer would
            # otherwise pay a hidden conversion. A no-op where the strategy already kept the format.
            out = out.contiguous(memory_format=torch.channels_last)
        return out if flat else out.reshape(image.shape)


    def transform_dense_target(self, target: Any, params: Mapping[str, Any]) -> Any:
        """A ``tv_tensors.Mask``, ``BoundingBoxes`` or ``KeyPoints`` of the sample, transformed as
        :attr:`dense_targets` says (or refused with a ``TypeError``).

        A mask has the images' leading dims and spatial size, as torchvision pairs ``Mask`` and
        ``Image``: images ``(..., C, H, W)`` take masks ``(..., H, W)`` or ``(..., K, H, W)``
        (a batch ``(B, C, H, W)``: ``(B, H, W)`` or ``(B, K, H, W)``; one image: ``(H, W)`` or
        ``(K, H, W)``; a Video ``(B, T, C, H, W)``: ``(B, T, H, W)`` or ``(B, T, K, H, W)``),
        of an integer dtype or bool. Anything else raises a ``ValueError``/``TypeError``.
        """
        name = type(self).__name__
        kind = type(target).__name__
        if getattr(target, "maskmix_guidance", False):
            return target  # e.g. CutSwap's SaliencyMap: read by a transform, never changed
        if not isinstance(target, tv_tensors.Mask):
            if self.dense_targets == "keep":
                return target
            raise TypeError(
                f"{name}: cannot transform {kind}: the strategy moves or blends pixels between places or "
                f"images and {kind} would not follow them; remove them from the sample (or use a strategy "
                "that keeps pixels in place: Cutout, Erasing, Hide-and-Seek, GridMask, CutBlur)"
            )
        if self.dense_targets == "refuse":
            raise TypeError(
                f"{name}: cannot mix segmentation masks (tv_tensors.Mask): it blends every pixel of two "
                "images, so a pixel has no single class to keep; use RandomCutMix (masks follow the pasted "
                "region) or blend one-hot masks yourself with the same weights"
            )
        masks = target.as_subclass(Tensor)  # the plain tensor (fullgraph=True cannot trace tv_tensors at all)
        if masks.dtype.is_floating_point or masks.dtype.is_complex:
            raise TypeError(f"{name}: segmentation masks must have an integer or bool dtype; got {masks.dtype}")
        device = params["selected"].device
        if masks.device != device and (self.dense_targets != "keep" or getattr(self, "mask_fill", None) is not None):
            # Masks that pass through untouched may stay where they are, as torchvision's transforms
            # let them; those written here would meet the images' tensors in a raw torch error.
            raise ValueError(
                f"{name}: segmentation masks are on {masks.device} but the images are on {device}; move the "
                "masks to the images' device"
            )
        batch_size, height, width = params["batch_shape"]
        leading = tuple(params["image_leading"])
        shape = tuple(masks.shape)
        if shape[-2:] != (height, width) or shape[:len(leading)] != leading or masks.ndim - len(leading) not in (2, 3):
            raise ValueError(
                f"{name}: segmentation masks must have the images' leading dims and spatial size, "
                f"{(*leading, height, width)} or {(*leading, 'K', height, width)}; got shape {shape}"
            )
        per_image = math.prod(shape[:-2]) // max(batch_size, 1)
        flat = masks.reshape(batch_size, per_image, height, width)
        out = self.apply_mask(flat, params)
        if out is flat:
            return target  # kept: the very object passes through, as boxes do
        return tv_tensors.wrap(out.reshape(shape), like=target)


def _rebuilt_generator(device: str, state: bytes) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
    return gen


def _reduce_generator(gen: torch.Generator) -> tuple[Any, ...]:
    return (_rebuilt_generator, (str(gen.device), gen.get_state().numpy().tobytes()))


# spawn and forkserver DataLoader workers receive the Dataset (and a transform's generator=)
# through multiprocessing's pickler, where torch sends a Generator's state tensor as shared memory
# that the worker failed to rebuild ("unable to resize file": the worker died; pytorch#146828).
# Sent as its device and state bytes instead (the seed included). Only multiprocessing's pickler
# is changed: pickle.dumps and copy.deepcopy keep torch's own reduction; a generator held by
# several objects is still one generator on arrival (the pickler's memo).
multiprocessing.reduction.ForkingPickler.register(torch.Generator, _reduce_generator)


#: A DataLoader worker's stream of each generator its transforms hold: ``id(generator) ->
#: (generator, (its seed, the worker's seed), stream)`` (see ``_worker_generator``).
_WORKER_STREAMS: dict[int, tuple[torch.Generator, tuple[int, int], torch.Generator]] = {}


@functools.lru_cache(maxsize=16)
def _fresh_state(device: torch.device, seed: int) -> Tensor:
    """The state of a generator on ``device`` just seeded with ``seed`` (never written)."""
    return torch.Generator(device=device).manual_seed(seed).get_state()

#: The fills that are one number relative to the value range (``fill_method`` names).
_CONSTANT_FILLS = frozenset({"black", "white", "gray", "zero"})


def refuse_plain_pixel_tensors(owner: str, leaves: list[Any], images: Tensor, handled: tuple[Any, ...]) -> None:
    """Raise for a plain tensor of a sample, other than ``handled`` (the images, the labels),
    shaped like the images' pixels (3 or more dims ending in their ``H x W``; next to one
    ``(C, H, W)`` image, also an ``(H, W)`` tensor, its mask): torchvision's
    convention passes it through unchanged, so a segmentation mask or a second image batch given
    that way would silently stop matching the images (SPEC: a list of images is refused)."""
    for leaf in leaves:
        if (type(leaf) is Tensor and (leaf.ndim >= 3 or (leaf.ndim == 2 and images.ndim == 3))
                and leaf.shape[-2:] == images.shape[-2:]
                and not any(leaf is known for known in handled)):
            raise TypeError(
                f"{owner}: the sample holds a plain tensor of shape {tuple(leaf.shape)} next to the images "
                f"{tuple(images.shape)}; it would pass through unchanged (only the images are transformed). Give "
                "segmentation masks as tv_tensors.Mask (they then follow the pixels), and one image batch per "
                "call (stack images into one tensor)"
            )


def refuse_per_image_masks(owner: str, sample: Any) -> None:
    """Raise for a ``tv_tensors.Mask`` inside a list of per-image target dicts (torchvision's
    detection layout: a batch of images and ``[{"masks": Mask(N_i, H, W), ...}, ...]``). A
    transform of the batch reads a Mask's first dims as the images' batch: where ``N_i`` is the
    batch size, instance ``j`` of image ``i`` followed image ``j``, silently. The sample itself
    (a list of one sample dict) is not such a list: only lists nested in it are."""
    stack = [(sample, True)]
    while stack:
        item, top = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((value, False) for value in item.values())
        elif isinstance(item, (list, tuple)):
            if not top and item and all(isinstance(entry, Mapping) for entry in item):
                leaves = _compat.tree_flatten(list(item))[0]
                if (any(isinstance(leaf, tv_tensors.Mask) for leaf in leaves)
                        and not any(isinstance(leaf, (tv_tensors.Image, tv_tensors.Video)) for leaf in leaves)):
                    raise TypeError(
                        f"{owner}: the sample holds segmentation masks (tv_tensors.Mask) in a list of {len(item)} "
                        "per-image target dicts (the detection layout); a transform of the batch reads a mask's "
                        "first dims as the images' batch and cannot tell which image each dict belongs to. Give one "
                        "Mask (B, H, W) or (B, K, H, W) for the batch, or call the transform on each image with "
                        "its own targets"
                    )
            stack.extend((entry, False) for entry in item)


def _is_plain_tensor(value: Any) -> bool:
    return isinstance(value, Tensor) and not isinstance(value, tv_tensors.TVTensor)


def refuse_plain_coordinates(owner: str, sample: Any) -> None:
    """Raise for plain tensors under keys that name boxes or keypoints (``"boxes"``, ``"bbox"``,
    ``"keypoints"``, at any depth: torchvision's per-image detection target dicts hold plain
    tensors) in a sample whose pixels ``owner`` moves or mixes: torchvision's convention passes
    them through unchanged, so they would silently stop matching the images. (Typed
    ``BoundingBoxes``/``KeyPoints`` are refused by the transforms themselves.)"""
    keys = coordinate_keys(sample, _is_plain_tensor)
    if keys:
        raise TypeError(
            f"{owner}: the sample holds plain tensors under {', '.join(map(repr, keys))}, boxes or keypoints by "
            f"the name; {owner} moves or mixes pixels and they would pass through unchanged, no longer matching "
            "the images. Drop them from the sample, or use a strategy that keeps pixels in place (Cutout, "
            "Erasing, Hide-and-Seek, GridMask, CutBlur)"
        )


def refuse_images_after_another_tensor(owner: str, sample: Any, leaves: list[Any]) -> None:
    """Raise for a sample without ``tv_tensors.Image``/``Video`` whose images, under an image key
    (``"image"``, ``"images"``, ``"img"``, ``"pixel_values"``), come after another plain tensor
    (``{"keypoints": ..., "image": ...}``): torchvision's convention transforms the first plain
    tensor of the flattened sample as the images, which would erase or move the other tensor and
    pass the images through. (The mixing transforms find the images by key and need no check.)"""
    named = [value for value in image_key_values(sample) if _is_plain_tensor(value)]
    if not named or any(isinstance(leaf, (tv_tensors.Image, tv_tensors.Video)) for leaf in leaves):
        return
    first = next((leaf for leaf in leaves if _is_plain_tensor(leaf)), None)
    if first is not None and not any(first is value for value in named):
        raise TypeError(
            f"{owner}: the images of the sample (under an image key) come after another plain tensor of shape "
            f"{tuple(first.shape)}, which torchvision's convention would transform as the images (the first plain "
            "tensor of a sample without tv_tensors.Image). Wrap the images in tv_tensors.Image, or put them first"
        )


def refuse_unsupported_tracing(owner: str, inputs: Sequence[Any] = ()) -> None:
    """Raise under ``torch.func.vmap`` or ``torch.jit.trace``, or for ``torch.fx.symbolic_trace``'s
    proxies among ``inputs`` (the call's arguments).

    vmap: the transforms work on the batch (each image draws its own parameters already) with
    operations vmap does not batch (memory-format queries, bit views, ``out=`` buffers), so only
    some configurations would run there, by chance. ``torch.jit.trace``: a trace records one
    call's draws as constants (every later call would erase the same boxes), and it failed on an
    internal assertion of torch's alias analysis, naming no transform. ``torch.fx.symbolic_trace``
    (and torchvision's ``create_feature_extractor``): a transform sees proxies, not tensors, and
    its draws cannot be recorded as graph nodes; the images-not-found error said to pass tensors.
    """
    # A plain tensor first (the usual call) cannot be a proxy's: no scan of the inputs then.
    if inputs and type(inputs[0]) is not Tensor and any(isinstance(value, torch.fx.Proxy) for value in inputs):
        raise TypeError(
            f"{owner}: torch.fx.symbolic_trace cannot trace maskmix transforms (their draws are not graph "
            "operations). Compile the step with torch.compile instead, or leave the transform out of the "
            "module that is traced (augment the batch before calling it)"
        )
    if _compat.under_vmap():
        raise TypeError(
            f"{owner}: cannot run under torch.func.vmap; call it on the batch outside vmap (every image draws "
            "its own parameters already), then vmap the rest of the computation (for per-sample gradients: "
            "augment the batch first, then vmap(grad(loss)) over the augmented batch)"
        )
    if not torch.compiler.is_compiling() and torch.jit.is_tracing():
        raise RuntimeError(
            f"{owner}: torch.jit.trace cannot trace maskmix transforms (a trace would keep one call's random draws "
            "as constants). Compile the step with torch.compile instead (MaskMixPipeline(..., compile=True), "
            "MaskMixCallback(..., compile=True)), or call the transform eagerly outside the traced function"
        )


def refuse_torchscript(owner: str) -> NoReturn:
    """What ``torch.jit.script`` gets from a maskmix transform or pipeline (their
    ``__prepare_scriptable__``, which it calls first): a ``RuntimeError`` naming what to use."""
    raise RuntimeError(
        f"{owner}: torch.jit.script cannot script maskmix transforms (nor their functional forms or "
        "pipelines): they draw per image with Python control flow and torchvision's v2 plumbing. Compile the "
        "step with torch.compile instead (MaskMixPipeline(..., compile=True), MaskMixCallback(..., "
        "compile=True)), or call the transform eagerly"
    )


def _image_scalar(value: float, dtype: torch.dtype) -> float | int:
    """:meth:`MaskingTransform.to_image_scalar`: ``value`` as a pixel of ``dtype`` would hold it."""
    if dtype == torch.uint8:
        return min(max(round(value), 0), 255)  # round() is half to even, like torch.round
    return float(value)


# Plain tensors, tv_tensors and PIL images reach `transform` (PIL images to be refused by name).
_compat.declare_transformed_types(MaskMixTransform, (torch.Tensor, PIL.Image.Image))


class MaskingTransform(MaskMixTransform):
    """Base of the strategies that erase a region of each image and fill it (design §Conventions, fills).

    A subclass implements :meth:`sample_region` (per-image region parameters) and
    :meth:`region_mask` (the ``(B, H, W)`` boolean mask those parameters cover) or, cheaper,
    :meth:`region_keep` (its complement in a given dtype, the selection folded in). The base
    draws the fill values and writes ``where(mask & selected, fill, image)`` in one pass over the
    batch (the selection is skipped when every image is selected by construction, see
    :func:`selection`), computed on the pixels' bit patterns where no gradient is recorded.

    ``fill_method`` is one of ``black``, ``gray``, ``white`` (relative to ``pixels_range``),
    ``mean_per_channel`` (each image's own channel means), ``random`` (one colour per image,
    uniform over the range), ``noise`` (per-pixel uniform over the range), ``zero`` (the constant
    0), ``normal`` (per-pixel standard normal), ``normal_per_patch`` (one standard-normal colour
    per image and channel), or a number / per-channel tuple used as a constant. ``uint8`` fills
    are rounded and saturated to ``[0, 255]``.

    Segmentation masks and boxes: a ``tv_tensors.Mask`` in the sample is kept; with
    ``mask_fill=v`` (an ignore index such as 255) ``v`` is written on exactly the erased pixels.
    Boxes and keypoints pass through untouched (pixels do not move).

    Example:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> from maskmix.torch import RandomErasing
        >>> images = torch.rand(2, 3, 8, 8)
        >>> masks = tv_tensors.Mask(torch.zeros(2, 8, 8, dtype=torch.uint8))
        >>> out, out_masks = RandomErasing(fill_method=-1.0, mask_fill=255)(images, masks)
        >>> bool(((out_masks == 255) == (out == -1.0).all(dim=1)).all())
        True
    """

    reads_pixels_range = True

    fill_method: str | float | tuple[float, ...]
    mask_fill: int | None

    def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        """Draw the per-image parameters of the erased region."""
        raise NotImplementedError

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Tensor:
        """``(B, H, W)`` boolean mask of the pixels the region parameters cover.

        A strategy implements this or :meth:`region_keep` (then this is its complement).
        """
        if type(self).region_keep is MaskingTransform.region_keep:
            raise NotImplementedError(f"{type(self).__name__} implements neither region_mask nor region_keep")
        return ~self.region_keep(params, height, width, torch.bool)

    def region_keep(self, params: Mapping[str, Any], height: int, width: int, dtype: torch.dtype, *,
                    within: Tensor | None = None) -> Tensor:
        """``(B, H, W)`` tensor of ``dtype`` (bool or an integer dtype): 1 where a pixel is kept,
        0 where the region covers it in an image whose ``within`` (boolean ``(B,)``) is True.

        The complement of :meth:`region_mask` by default. A strategy overrides it when it can
        build the kept pixels directly in ``dtype`` for less (a box's rows and columns, a grid's
        bands), with ``within`` folded into its per-image parameters rather than a pass over the
        ``(B, H, W)`` mask; then :meth:`region_mask` comes from it.
        """
        erased = self.region_mask(params, height, width)
        if within is not None:
            erased = _sampling.mask_and(erased, within.view(-1, 1, 1))
        return (~erased).to(dtype)

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        params: dict[str, Any] = dict(
            self.sample_region(batch_size, height, width, device=device, generator=generator)
        )
        params["fill_values"] = self._sample_fill(
            batch_size, channels, height, width, dtype=dtype, device=device, generator=generator
        )
        params["fill_drawn_for"] = (channels, dtype)  # the values' shape and range depend on both
        return params

    def _sample_fill(self, batch_size: int, channels: int, height: int, width: int, *,
                     dtype: torch.dtype, device: torch.device,
                     generator: torch.Generator | None) -> Tensor | None:
        """Random fill values in the compute dtype, or None for the data-independent/-derived fills."""
        method = self.fill_method
        work = self.compute_dtype(dtype)
        lo, hi = self.value_range(dtype)
        if dtype == torch.uint8:
            # Half a level beyond each end: after rounding every level, 0 and 255 included, is
            # equally likely (over [lo, hi] the end levels would get half the others' share).
            lo, hi = lo - 0.5, hi + 0.5
        if method == "random":
            size: tuple[int, ...] = (batch_size, channels, 1, 1)
        elif method in ("noise", "normal"):
            size = (batch_size, channels, height, width)
        elif method == "normal_per_patch":
            size = (batch_size, channels, 1, 1)
        else:
            return None
        # float16/bfloat16 are drawn in float32 and rounded once: torch's reduced-precision
        # uniform_ truncates, which biased the noise half a unit low and never reached `hi`.
        draw = torch.float32 if work in (torch.float16, torch.bfloat16) else work
        if method in ("normal", "normal_per_patch"):
            values = torch.randn(size, device=device, dtype=draw, **_sampling.drawing_from(generator))
        else:
            # One kernel (rand, then a scale and a shift, would be three passes over a noise batch).
            values = torch.empty(size, device=device, dtype=draw).uniform_(lo, hi, **_sampling.drawing_from(generator))
        return values if draw == work else values.to(work)

    def fill_for(self, images: Tensor, params: Mapping[str, Any]) -> Tensor | float | int:
        """The fill values for ``images``, in their dtype, broadcastable to ``(B, C, H, W)``.

        A constant fill (``black``, ``gray``, ``white``, ``zero``, a single number) is returned as a
        Python number already in the images' terms (``uint8``: rounded half to even, saturated),
        which ``torch.where`` takes without launching a kernel to build it.
        """
        method = self.fill_method
        dtype = images.dtype
        if method in _CONSTANT_FILLS:  # the usual fills, first: no tensor, no lookups
            lo, hi = self.value_range(dtype)
            if method == "black" or method == "white":
                return _image_scalar(lo if method == "black" else hi, dtype)
            return _image_scalar(0.0 if method == "zero" else (lo + hi) / 2, dtype)
        if type(method) is float:
            return _image_scalar(method, dtype)
        work = self.compute_dtype(dtype)
        device = images.device
        if params.get("fill_values") is not None:
            values = params["fill_values"]
            if params["fill_drawn_for"] != (images.shape[-3], dtype):
                # Drawn once per call from the first image of the sample (see make_params).
                raise ValueError(
                    f"{type(self).__name__}: fill_method={method!r} draws its values from the first image "
                    "of a sample, so all its images must share channels and dtype; got "
                    "{} channel(s) in {} and {} in {}".format(*params["fill_drawn_for"], images.shape[-3], dtype)
                )
        elif method == "mean_per_channel":
            # Reduced in the standard layout: a channels_last batch would sum in another order and
            # give means (hence fills) that differ in the last bit from the contiguous batch's. One
            # conversion straight into that layout (not a copy, then a conversion of the copy).
            # (`to` returns a strided batch of the work dtype as it is: hence `contiguous` too.)
            values = images.to(work, memory_format=torch.contiguous_format).contiguous().mean(dim=(-2, -1),
                                                                                              keepdim=True)
            # The means are this call's own: uint8 rounds and saturates them in place.
            return self.to_image_dtype(values, dtype, in_place=True)
        elif not isinstance(method, tuple):
            return self.to_image_scalar(float(method), dtype)  # a number set after validation
        else:
            channels = images.shape[-3]
            if len(method) not in (1, channels):
                raise ValueError(
                    f"{type(self).__name__}: fill_method has {len(method)} values but the images "
                    f"have {channels} channel(s); give one value or one per channel"
                )
            values = _sampling.cached_constant(method, work, device).view(1, -1, 1, 1)
        # Drawn values belong to the params, which `make_params` gives to whoever asks: never
        # written here (kept constants neither).
        return self.to_image_dtype(values, dtype)

    @staticmethod
    def to_image_scalar(value: float, dtype: torch.dtype) -> float | int:
        """A constant as :meth:`to_image_dtype` would cast it, as a Python number."""
        return _image_scalar(value, dtype)

    def erased(self, params: Mapping[str, Any], height: int, width: int) -> Tensor:
        """``(B, H, W)`` boolean mask of the pixels erased this call: the region of selected images."""
        return ~self.region_keep(params, height, width, torch.bool, within=selection(params))

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        """``where(kept, images, fill)`` for the pixels :meth:`region_keep` keeps in the selected images.

        On a CPU it is computed on the images' bit patterns
        (:func:`~maskmix.torch._sampling.keep_or_fill`: the same bits, several times faster than
        the CPU ``where`` kernel) except where values must flow: images that record a gradient,
        and under ``torch.compile`` (which fuses the ``where`` anyway). On an accelerator the one
        ``where`` pass moves less memory than the integer product and sum (two passes).
        """
        height, width = images.shape[-2:]
        fill = self.fill_for(images, params)
        within = selection(params)
        if images.device.type != "cpu" or torch.compiler.is_compiling() or _compat.records_gradients(images):
            keep = self.region_keep(params, height, width, torch.bool, within=within)
            return torch.where(keep.unsqueeze(1), images, fill)
        bits = _sampling.same_size_integer(images.dtype)
        keep = self.region_keep(params, height, width, bits, within=within)
        return _sampling.keep_or_fill(images, keep.unsqueeze(1), fill)

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Masks are kept; with ``mask_fill`` set, it is written on the pixels erased in the images
        (a strategy whose spec declares no ``mask_fill`` keeps them)."""
        fill = getattr(self, "mask_fill", None)
        if fill is None:
            return masks
        dtype = masks.dtype
        low, high = (0, 1) if dtype == torch.bool else (torch.iinfo(dtype).min, torch.iinfo(dtype).max)
        if not low <= fill <= high:
            raise ValueError(
                f"{type(self).__name__}: mask_fill={fill} does not fit the masks' dtype {dtype} "
                f"([{low}, {high}]); choose another mask_fill or a wider mask dtype"
            )
        mask = self.erased(params, *masks.shape[-2:])
        return torch.where(mask.unsqueeze(1), torch.full((), fill, dtype=dtype, device=masks.device), masks)
