"""The batch pipeline of the training integrations: mask, then mix, with per-rank seeded streams.

:class:`MaskMixPipeline` is what ``MaskMixCallback`` and ``MaskMixMixin`` (Lightning) run on
every training batch, usable on its own in any training loop: masking transforms in order, then
one mixing transform chosen per batch with ``mix_weights``, each batch drawn from a generator
seeded from ``(seed, rank, batch number)``, with a ``state_dict`` to resume the streams.
:func:`soft_label_targets` turns the soft labels back into class indices for metrics.

Importing this module imports torch and torchvision only (no Lightning, no keras).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, TypedDict, TypeVar, cast, overload

import numpy as np
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix import integration_options as options
from maskmix import schedules as schedules_mod
from maskmix._checks import integer_at_least
from maskmix._structure import (
    IMAGE_KEYS,
    LABEL_KEYS,
    LABEL_SUBSTRING,
    coordinate_keys,
    find_key,
    rebuild_mapping,
    rebuild_sequence,
    refuse_other_labels,
)
from maskmix.geometry import CHOICE_STREAM, DEVICE_STREAM, MASK64, derive_seed, lower_resolution, pixel_changer
from maskmix.integration_options import IntegerOption, RealOption

from . import _compat
from ._base import (
    MaskMixTransform,
    _is_plain_tensor,
    refuse_non_dense,
    refuse_plain_coordinates,
    refuse_torchscript,
    refuse_unsupported_tracing,
    using_generator,
)
from ._mixing import MixingTransform, soft_labels

__all__ = ["MaskMixPipeline", "PipelineOptions", "derive_seed", "soft_label_targets"]

_Images = TypeVar("_Images", bound=Tensor)
#: A batch's rank: DDP ranks, checked as the integer parameters are.
_RANK = integer_at_least(0)

#: torchvision's keypoints type, where the installed version has one.
_POINTS: tuple[type, ...] = tuple(t for t in (getattr(tv_tensors, "KeyPoints", None),) if t is not None)
_STATE_VERSION = 1
def _state_int(value: Any) -> int | None:
    """``value`` as an int when it is an integer (a NumPy integer, a 0-d integer tensor from a
    loaded checkpoint); None for anything else (a bool, a float)."""
    if isinstance(value, Tensor) and value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool:
        return int(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return None


#: Scheduled values handed to a compiled step are float64 tensors where the device has them (the
#: exact count ``floor(ratio * B + 0.5)`` is then computed as the host computes it), of shape
#: ``(1,)``: a 0-d float64 input makes Inductor restart its first analysis of the step.
_NO_FLOAT64 = ("mps",)


def soft_label_targets(labels: Tensor) -> Tensor:
    """Class indices for metrics from soft labels: the dominant class of each row.

    Training metrics such as ``torchmetrics.Accuracy`` want class indices, while the mixed
    labels are soft ``(B, K)`` rows. This returns ``labels.argmax(dim=-1)`` for floating
    labels with at least 2 dims (one-hot, smoothed or mixed rows) and the labels unchanged when
    they already are integer class indices (batches that were not mixed). It runs on the labels'
    device, with no host synchronisation.

    Args:
        labels: soft/one-hot labels ``(..., K)`` of a floating dtype, or integer class indices.

    Returns:
        int64 class indices ``(...)`` (integer inputs are returned as they are).

    Raises:
        TypeError: if ``labels`` is not a tensor.
        ValueError: if ``labels`` is floating with fewer than 2 dims (a 1-D floating tensor is
            ambiguous: it is not a batch of rows, and its argmax would be one index for the batch).

    Example:
        >>> import torch
        >>> soft_label_targets(torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
        tensor([0, 1])
    """
    if not isinstance(labels, Tensor):
        raise TypeError(f"soft_label_targets: labels must be a tensor; got {type(labels).__name__}")
    if not labels.dtype.is_floating_point:
        return labels
    if labels.ndim < 2:
        raise ValueError(
            "soft_label_targets: floating (soft or one-hot) labels must have shape (..., K) with at least 2 dims; "
            f"got shape {tuple(labels.shape)} (class indices must be an integer tensor)"
        )
    return labels.argmax(dim=-1)


# --------------------------------------------------------------------------------------------
# What the shared option rules (maskmix.integration_options) need to know about torch objects.
# --------------------------------------------------------------------------------------------


def _walk(transform: Any) -> Iterator[Any]:
    """``transform`` and every transform nested in it (torchvision's ``Compose``, ``RandomApply``,
    ``RandomChoice`` and ``RandomOrder`` keep theirs in a plain ``transforms`` list, not as submodules)."""
    seen: set[int] = set()
    stack = [transform]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        nested = getattr(item, "transforms", None)
        if isinstance(nested, (list, tuple, torch.nn.ModuleList)):
            stack.extend(nested)
        if isinstance(item, torch.nn.Module):
            stack.extend(item.children())


def _is_augmentation(transform: Any) -> bool:
    if isinstance(transform, v2.Transform):
        return True
    module = type(transform).__module__
    return isinstance(transform, torch.nn.Module) and module.startswith("torchvision.transforms")


def _mixing(transform: Any) -> bool | None:
    if isinstance(transform, MixingTransform):
        return bool(transform.needs_batch)  # RandomCutThumbnail mixes only with mix_images=True
    return None


def _foreign_mixing(transform: Any) -> str | None:
    if isinstance(transform, (v2.CutMix, v2.MixUp)):
        return (f"torchvision's {type(transform).__name__}, which cannot be seeded per rank: use "
                "maskmix.torch.RandomCutMix / RandomMixup instead")
    return None


#: The torch answers of the option rules.
TORCH = options.Framework(
    kind="transform",
    transforms_name="transforms",
    accepted="a maskmix or torchvision v2 transform",
    is_augmentation=_is_augmentation,
    walk=_walk,
    mixing=_mixing,
    foreign_mixing=_foreign_mixing,
)


class PipelineOptions(TypedDict, total=False):
    """The options of :class:`MaskMixPipeline` as keywords (the Lightning mixin takes them so)."""

    transforms: Sequence[Any] | Any | None
    mix: Sequence[MixingTransform] | MixingTransform | None
    mix_weights: Sequence[RealOption] | None
    num_classes: IntegerOption | None
    label_smoothing: RealOption
    image_key: int | str
    label_key: int | str
    seed: IntegerOption | None
    compile: bool | Mapping[str, Any]
    schedules: Mapping[Any, Mapping[str, Callable[[float], float]]] | None


def _with_own_code(method: Any) -> Any:
    """``method`` bound to the same object, its function a copy with a code object of its own
    (the same code): what ``torch.compile`` caches its graphs on (see ``compiled_step``)."""
    function = method.__func__
    copy = types.FunctionType(function.__code__.replace(), function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__kwdefaults__, copy.__qualname__ = function.__kwdefaults__, function.__qualname__
    return types.MethodType(copy, method.__self__)


def _compile_options(owner: str, value: Any) -> dict[str, Any] | None:
    """``torch.compile`` keyword arguments for the ``compile`` option, or None (eager)."""
    if isinstance(value, bool):
        return {} if value else None
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return dict(value)
    raise TypeError(f"{owner}: compile must be a bool or a dict of torch.compile arguments "
                    f"(e.g. {{'mode': 'reduce-overhead'}}); got {value!r}")


@contextlib.contextmanager
def _seeded_default_generator(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the default generator of ``device`` for the block, and restore its state after it.

    A compiled step cannot take a ``torch.Generator``: Inductor draws from the device's default
    generator. Seeding that one for the step (and putting the user's state back afterwards) keeps
    the per-rank, per-batch streams of the eager path without touching the user's RNG.
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index], device_type="cuda"):
            torch.cuda.default_generators[index].manual_seed(seed)
            yield
    else:
        # fork_rng always saves and restores the CPU generator.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield


class MaskMixPipeline:
    """Mask, then mix, training batches: the pipeline of the Lightning integrations, for any loop.

    ``pipeline(batch, rank=...)`` returns the batch with its images masked by ``transforms`` (in
    order), then mixed by ``mix`` (one transform, or one chosen per batch with ``mix_weights``),
    and its labels soft ``(B, K)`` rows (with ``mix`` or ``label_smoothing``). Every call is one
    batch of the stream: its random numbers come from a generator on the images' device seeded
    from ``(seed, rank, batch number)``, handed to every maskmix transform for that call only
    (:func:`~maskmix.torch.using_generator`; the transforms' own ``generator`` is not used and
    nothing is written on them), so ranks differ and runs repeat (``rank`` left out is
    ``torch.distributed``'s rank where a process group is initialised, so a DDP or Fabric loop of
    one's own draws differently on each rank, else 0). The choice among several ``mix``
    transforms is drawn on the host from a CPU generator seeded the same way: no device sync.
    Under ``torch.compile`` no generator is handed over (the global RNG is used).

    With ``compile=True`` the pipeline compiles its own step (masking and the chosen mix) with
    ``torch.compile(fullgraph=True)``: each batch then costs one compiled call (Inductor fuses the
    transforms' elementwise work into a few kernels) instead of dozens of eager launches. The
    first batch pays the compilation (seconds to a minute, once per process); graphs are cached
    per ``mix`` item and image dtype, and a batch of another size (the last batch of an epoch)
    recompiles once into a graph with a dynamic batch size, so the number of graphs stays
    bounded (each pipeline and mix item compiles its own copy of the step, so that any number of
    pipelines in one process stay within Dynamo's recompile limit). The compiled step draws from
    the default generator of the images' device, seeded for the step from ``(seed, rank, batch
    number)`` and restored afterwards: runs repeat and the user's RNG is untouched, but the draws
    differ from the eager path's (same distributions).
    Images given as a ``tv_tensors.Image`` are compiled as the plain tensor and come back as an
    ``Image``; a ``tv_tensors.Video`` needs ``compile=False`` (a ``TypeError`` says so).
    A dict instead of True is passed to ``torch.compile`` (e.g. ``{"mode": "reduce-overhead"}``
    for CUDA graphs, ``{"fullgraph": False}`` to let torchvision transforms that do not trace
    run eagerly between compiled parts).

    Shapes: images ``(B, C, H, W)`` (any layout the transforms take) of a supported dtype; labels
    class indices ``(B,)`` (with ``num_classes``) or one-hot/soft ``(B, K)``; with ``mix`` or
    ``label_smoothing`` they come out float32 ``(B, K)`` (float64 stays float64). Without either,
    the labels are returned untouched.

    Args:
        transforms: masking transforms applied first, in order: maskmix transforms or torchvision
            v2 transforms (which draw from the global RNG). One transform or a list.
        mix: None, a maskmix mixing transform (``RandomCutMix``, ``RandomMixup``,
            ``RandomCutThumbnail(mix_images=True)``) or a list of them, one chosen per batch.
        mix_weights: relative probabilities of the ``mix`` list (finite, ``>= 0``, at least one
            positive); None chooses uniformly.
        num_classes: number of classes, handed to the mixing transforms for each call (required
            with class-index labels unless they have it); must agree with theirs. None: the one the
            ``mix`` transforms that have it give, handed to the others too.
        label_smoothing: in ``[0, 1)``, applied before mixing (handed to the mixing transforms
            for each call); without ``mix`` the labels are only smoothed. Must agree with theirs
            when both are non-zero.
        image_key: position of the images in tuple/list batches, or their key in dict batches
            (the default 0 finds ``"image"``/``"images"`` in a dict).
        label_key: position or key of the labels (the default 1 finds ``"label"``/``"labels"``).
        seed: seed of the streams (an integer in ``[0, 2**64)``); None reads ``torch.initial_seed()`` at the
            first batch and at each :meth:`restart`.
        compile: False (eager), True (compile the step with ``torch.compile``, see above) or a
            dict of ``torch.compile`` arguments on top of ``fullgraph=True``.
        schedules: None, or parameters that follow training progress (:mod:`maskmix.schedules`):
            ``{key: {parameter: schedule}}``, the key a maskmix transform's class name, its
            position in ``transforms + mix`` or the transform itself, the parameter one its spec
            declares schedulable (``augmentation_ratio``), e.g.
            ``{"RandomGridMask": {"augmentation_ratio": ramp(0.0, 0.8, epochs=240)}}``.
            :meth:`set_epoch` (the Lightning integrations call it at each batch with the
            trainer's epoch) evaluates them; each batch lends the values to the transforms
            (nothing is written on them): numbers in the eager step, one-element tensors in the compiled
            one, where they are inputs of the compiled graph, so a new value never recompiles and
            is never baked in.
        owner: the name that starts error messages (the integrations pass their class name).

    The option rules are those of :mod:`maskmix.integration_options`, shared with the Keras
    integration.

    Example:
        >>> import torch
        >>> from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomErasing, RandomMixup
        >>> pipeline = MaskMixPipeline([RandomErasing()], [RandomCutMix(), RandomMixup(alpha=0.2)],
        ...                            mix_weights=[0.5, 0.5], num_classes=10, seed=0)
        >>> images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
        >>> mixed, soft = pipeline((images, labels))
        >>> mixed.shape, soft.shape, pipeline.state_dict()["batches"]
        (torch.Size([8, 3, 32, 32]), torch.Size([8, 10]), 1)
    """

    def __init__(
        self,
        transforms: Sequence[Any] | Any | None = None,
        mix: Sequence[MixingTransform] | MixingTransform | None = None,
        mix_weights: Sequence[RealOption] | None = None,
        num_classes: IntegerOption | None = None,
        label_smoothing: RealOption = 0.0,
        image_key: int | str = 0,
        label_key: int | str = 1,
        seed: IntegerOption | None = None,
        compile: bool | Mapping[str, Any] = False,
        schedules: Mapping[Any, Mapping[str, Callable[[float], float]]] | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.owner = owner = owner or type(self).__name__
        checked = options.check_options(
            owner, TORCH, transforms=transforms, mix=mix, mix_weights=mix_weights, num_classes=num_classes,
            label_smoothing=label_smoothing, seed=seed,
        )
        self.transforms: list[Any] = checked.transforms
        self.mixes: list[MixingTransform] = checked.mix
        self.mix_weights = checked.mix_weights
        #: The classes handed to every mixing transform: the argument, else the one its mix transforms
        #: agree on (a transform without its own would otherwise fail on class indices only once drawn).
        self.num_classes: int | None = checked.num_classes if checked.num_classes is not None else next(
            (m.num_classes for m in self.mixes if getattr(m, "num_classes", None) is not None), None)
        self.label_smoothing = checked.label_smoothing
        self.image_key, self.label_key = options.check_keys(owner, image_key, label_key)
        #: The ``seed`` argument as given (an int, or None to follow ``torch.initial_seed()``).
        self.seed_argument: int | None = checked.seed
        #: The seed of the streams; None until the first batch or :meth:`restart` when the argument is None.
        self.seed: int | None = self.seed_argument
        #: Number of batches augmented so far (the position in the stream).
        self.batches = 0
        modules = [m for t in (*self.transforms, *self.mixes) for m in _walk(t) if isinstance(m, MaskMixTransform)]
        owned = [type(m).__name__ for m in modules if m.generator is not None]
        if owned:
            warnings.warn(
                f"{owner}: the generator of {', '.join(owned)} is not used; the {owner} draws every "
                "random quantity from its own per-rank generators (set seed= instead)",
                UserWarning,
                stacklevel=3,
            )
        self._generators: dict[torch.device, torch.Generator] = {}
        self._choice_generator = torch.Generator()
        #: ``torch.compile`` arguments of the compiled step, or None for the eager path.
        self.compile_options = _compile_options(owner, compile)
        self._compile_argument = compile
        if self.compile_options is not None and owned:
            raise ValueError(f"{owner}: compile=True cannot use the own generator of {', '.join(owned)} "
                             "(torch.compile cannot trace a torch.Generator); create them without generator=")
        self._compiled_step: Callable[..., tuple[Tensor, Tensor | None]] | None = None
        #: The scheduled parameters (one :class:`maskmix.schedules.Scheduled` each).
        self._schedules_argument = schedules
        self.schedules = schedules_mod.resolve(
            owner, schedules, [*self.transforms, *self.mixes], _walk,
            lambda t: t.spec if isinstance(t, MaskMixTransform) else None, "transform",
        )
        #: The training progress the scheduled values were last evaluated at (:meth:`set_epoch`).
        self.epoch = 0.0
        self._scheduled_values = [entry.value(owner, 0.0) for entry in self.schedules]
        self._value_tensors: dict[torch.device, tuple[list[float], list[Tensor]]] = {}

    @property
    def makes_soft_labels(self) -> bool:
        """Whether the labels come out as soft rows (``mix`` or ``label_smoothing`` is set)."""
        return bool(self.mixes) or self.label_smoothing > 0

    # ----------------------------------------------------------------------------------------
    # Schedules.
    # ----------------------------------------------------------------------------------------

    def set_epoch(self, epoch: float) -> None:
        """Evaluate the schedules at ``epoch`` (the epoch number, plus the fraction done if you
        like); the next batches use those values. The Lightning integrations call it before each
        training batch with ``trainer.current_epoch``; call it yourself in a loop of your own.

        Raises:
            TypeError, ValueError: for an epoch that is not a finite number ``>= 0``, or a
                schedule whose value is outside its parameter's domain (named in the message).
        """
        if epoch == self.epoch and isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
            return  # the common case, once per batch: nothing to evaluate
        epoch = schedules_mod._epoch(f"{self.owner}.set_epoch", epoch)
        self._scheduled_values = [entry.value(self.owner, epoch) for entry in self.schedules]
        self.epoch = epoch

    def scheduled_values(self) -> dict[Any, dict[str, float]]:
        """``{key: {parameter: value}}``: the values the next batches use, under the keys given."""
        out: dict[Any, dict[str, float]] = {}
        for entry, value in zip(self.schedules, self._scheduled_values, strict=True):
            out.setdefault(entry.key, {})[entry.param] = value
        return out

    def _lent(self, device: torch.device | None) -> dict[int, dict[str, Any]]:
        """The scheduled values to lend for one step: numbers (``device=None``), or one-element tensors on
        ``device`` kept from step to step and refilled only when a value changes."""
        if device is None:
            values: list[Any] = list(self._scheduled_values)
        else:
            filled, tensors = self._value_tensors.get(device) or ([], [])
            if not tensors:
                dtype = torch.float32 if device.type in _NO_FLOAT64 else torch.float64
                # Made outside inference mode whatever the first call's mode (a preview under
                # torch.inference_mode): inference tensors could not be refilled by later steps.
                with torch.inference_mode(False):
                    tensors = [torch.empty((1,), dtype=dtype, device=device) for _ in self.schedules]
                filled = [math.nan] * len(tensors)
                self._value_tensors[device] = (filled, tensors)
            for i, value in enumerate(self._scheduled_values):
                if filled[i] != value:
                    tensors[i].fill_(value)  # a fill kernel with the value as argument: no sync
                    filled[i] = value
            values = list(tensors)
        lent: dict[int, dict[str, Any]] = {}
        for entry, value in zip(self.schedules, values, strict=True):
            lent.setdefault(id(entry.transform), {})[entry.param] = value
        return lent

    # ----------------------------------------------------------------------------------------
    # Seeds and state.
    # ----------------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name in options.PIPELINE_OPTIONS and "owner" in self.__dict__ and name in self.__dict__:
            # Checked as the constructor checks it, with the other options: an unchecked value was
            # used as given (mix_weights=[1.0] for two mixes chose the first always; [0, 0] divided
            # by zero; label_smoothing=-0.5 was ignored).
            current = {"mix_weights": self.mix_weights, "num_classes": self.num_classes,
                       "label_smoothing": self.label_smoothing, "seed": self.seed, name: value}
            checked = options.check_options(self.owner, TORCH, transforms=self.transforms, mix=self.mixes or None,
                                            **current)
            value = getattr(checked, name)
        object.__setattr__(self, name, value)

    def resolve_seed(self) -> int:
        """The seed; ``None`` becomes ``torch.initial_seed()`` (follows ``lightning.seed_everything``)."""
        if self.seed is None:
            self.seed = torch.initial_seed() & MASK64
        return self.seed

    def _stream_seed(self) -> int:
        """The seed the batches' draws derive from: :meth:`resolve_seed`, and in a DataLoader
        worker (a ``collate_fn``) also the worker's seed.

        Every worker holds a copy of the pipeline with the batch count it had when the workers
        started: with the seed alone each worker, and each epoch of non-persistent workers, drew
        the same numbers. The worker's seed is derived by the DataLoader per worker and per epoch
        from its own seed, so runs under ``torch.manual_seed`` still repeat.
        """
        seed = self.resolve_seed()
        if torch.compiler.is_compiling():  # Dynamo refuses to trace get_worker_info (a step of the user's)
            return seed
        info = torch.utils.data.get_worker_info()
        return seed if info is None else derive_seed(seed, info.seed & MASK64)

    def restart(self) -> None:
        """Start the streams again: batch 0, and the seed argument (or ``torch.initial_seed()`` now).

        The integrations call it when a fit starts; :meth:`load_state_dict` afterwards replaces
        this fresh start by a saved position.
        """
        self.seed = self.seed_argument
        self.batches = 0
        self.resolve_seed()
        self.set_epoch(0)

    def state_dict(self) -> dict[str, Any]:
        """``{"version", "seed", "batches"}``: all a resumed run needs to continue the streams."""
        return {"version": _STATE_VERSION, "seed": self.seed, "batches": self.batches}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next batch continues the saved run's streams.

        Raises:
            ValueError: for anything but a state of this version: the keys ``version``, ``seed``
                (None or an integer in ``[0, 2**64)``) and ``batches`` (an integer ``>= 0``), and
                nothing else (a value that is not one would resume another stream, silently).
        """
        owner = self.owner
        if not isinstance(state, Mapping) or set(state) != {"version", "seed", "batches"}:
            raise ValueError(f"{owner}: not a {owner} state (keys version, seed, batches): {state!r}")
        if state["version"] != _STATE_VERSION:
            raise ValueError(f"{owner}: the state is of version {state['version']!r}; this maskmix reads version "
                             f"{_STATE_VERSION}")
        seed, batches = _state_int(state["seed"]), _state_int(state["batches"])
        if state["seed"] is not None and (seed is None or not 0 <= seed <= MASK64):
            raise ValueError(f"{owner}: the state's seed must be {options.SEED_EXPECTED}; got {state['seed']!r}")
        if batches is None or batches < 0:
            raise ValueError(f"{owner}: the state's batches must be an integer >= 0; got {state['batches']!r}")
        if seed is not None:
            self.seed = seed
        self.batches = batches

    # A copy (``copy.deepcopy``, pickling for DDP spawn or a checkpointed callback) carries the
    # configuration and the stream position, never what is rebuilt from them: the compiled step
    # is bound to the pipeline it was built for (a copy would run the original's transforms and
    # miss its own scheduled values), and the generators are reseeded before every batch (and a
    # CUDA torch.Generator does not pickle).
    _REBUILT = ("_compiled_step", "_generators", "_choice_generator", "_value_tensors")

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key not in self._REBUILT}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)
        self._compiled_step = None
        self._generators = {}
        self._choice_generator = torch.Generator()
        self._value_tensors = {}

    def _device_generator(self, device: torch.device) -> torch.Generator:
        gen = self._generators.get(device)
        if gen is None:
            gen = self._generators[device] = torch.Generator(device=device)
        return gen

    def choose_mix(self, rank: int, batch: int) -> int:
        """Index of the mix transform of batch number ``batch`` on ``rank`` (a host draw, no device sync)."""
        if len(self.mixes) < 2:
            return 0
        gen = self._choice_generator
        gen.manual_seed(derive_seed(self._stream_seed(), rank, batch, CHOICE_STREAM))
        u = float(torch.rand((), dtype=torch.float32, generator=gen))  # a CPU tensor: no device synchronisation
        weights = self.mix_weights or [1.0] * len(self.mixes)
        total = sum(weights)
        cumulative = 0.0
        for i, w in enumerate(weights):
            cumulative += w / total
            if u < cumulative and w > 0:
                return i
        return max(i for i, w in enumerate(weights) if w > 0)

    # ----------------------------------------------------------------------------------------
    # Batches.
    # ----------------------------------------------------------------------------------------

    def split(self, batch: Any) -> tuple[Tensor, Tensor | None, Callable[[Tensor, Tensor | None], Any]]:
        """``(images, labels or None, rebuild)`` of a batch; ``rebuild(images, labels)`` keeps the rest."""
        owner = self.owner
        need_labels = self.makes_soft_labels
        if isinstance(batch, Tensor):
            if need_labels:
                what = "mix" if self.mixes else "label_smoothing"
                raise TypeError(
                    f"{owner}: {what} needs labels, but the batch is a single tensor; give (images, labels)"
                )
            return batch, None, lambda images, labels: images
        if isinstance(batch, Mapping):
            image_key = find_key(batch, self.image_key, IMAGE_KEYS, 0)
            label_key = find_key(batch, self.label_key, LABEL_KEYS, 1, containing=LABEL_SUBSTRING)
            keys = list(batch)
            looked_up = (("image_key", self.image_key, image_key), ("label_key", self.label_key, label_key))
            for name, key, found in looked_up:
                if found is None and (name == "image_key" or need_labels):
                    raise ValueError(f"{owner}: {name} {key!r} is not a key of the batch; its keys are {keys}")

            def rebuild_dict(images: Tensor, labels: Tensor | None) -> Any:
                return rebuild_mapping(batch, {image_key: images} if labels is None else
                                       {image_key: images, label_key: labels})

            labels = batch[label_key] if label_key is not None else None
            if self.mixes and label_key is not None:
                refuse_other_labels(owner, batch, label_key, lambda value: isinstance(value, Tensor), holder="batch")
            return self._check_images(batch[image_key]), self._check_labels(labels), rebuild_dict
        if isinstance(batch, (tuple, list)):
            for name, key in (("image_key", self.image_key), ("label_key", self.label_key)):
                if not isinstance(key, int):
                    raise TypeError(f"{owner}: {name} is {key!r} but the batch is a {type(batch).__name__}; "
                                    "use integer positions for tuple/list batches")
            image_pos, label_pos = int(cast(int, self.image_key)), int(cast(int, self.label_key))  # ints, checked above
            if image_pos >= len(batch):
                raise ValueError(f"{owner}: image_key {image_pos} is out of range for a batch of {len(batch)} items")
            has_labels = label_pos < len(batch)
            if need_labels and not has_labels:
                raise ValueError(f"{owner}: label_key {label_pos} is out of range for a batch of {len(batch)} items")

            def rebuild_seq(images: Tensor, labels: Tensor | None) -> Any:
                return rebuild_sequence(batch, {image_pos: images} if labels is None else
                                        {image_pos: images, label_pos: labels})

            labels = batch[label_pos] if has_labels else None
            return self._check_images(batch[image_pos]), self._check_labels(labels), rebuild_seq
        raise TypeError(
            f"{owner}: a batch must be a tensor of images, a tuple/list (images, labels, ...) or a dict; "
            f"got {type(batch).__name__}"
        )

    def _refuse_dense_targets(self, leaves: Sequence[Any]) -> None:
        # Anywhere in the batch (its leaves): a target dict or list of masks nested in it would stay
        # behind too.
        dense = (tv_tensors.Mask, tv_tensors.BoundingBoxes, *_POINTS)
        if any(getattr(leaf, "maskmix_guidance", False) for leaf in leaves):
            # A SaliencyMap is a Mask to torchvision, but no target: what is missing is its use.
            raise TypeError(
                f"{self.owner}: the batch holds a SaliencyMap, which the training pipeline does not pass to its "
                "transforms (RandomCutSwap would place its patches uniformly, ignoring the maps); call "
                "RandomCutSwap on (images, SaliencyMap(maps)) yourself, or drop the maps"
            )
        found = sorted({type(leaf).__name__ for leaf in leaves if isinstance(leaf, dense)})
        if found:
            raise TypeError(
                f"{self.owner}: the batch holds {', '.join(found)}, which the training pipeline does not "
                "transform (masks and boxes would no longer match the augmented pixels); apply the maskmix "
                "transforms to the whole sample yourself (they move masks with the pixels), or drop them"
            )

    def _pixel_changer(self, *, mask_fill: bool = True) -> str | None:
        """What the first transform that would leave per-pixel targets behind does to the pixels
        (``"RandomCutSwap moves pixels"``), or None when every transform keeps them in place
        (``mask_fill=False``: a transform that writes ``mask_fill`` does, for boxes)."""
        if self.mixes:
            return f"{type(self.mixes[0]).__name__} mixes images"
        # torchvision's transforms get the images alone here, as maskmix's do: a flip or a crop
        # would leave the targets behind just the same.
        changer = pixel_changer((item for transform in self.transforms for item in _walk(transform)
                                 if isinstance(item, MaskMixTransform) or _compat.torchvision_pixel_mover(item)),
                                moves_pixels=_compat.torchvision_pixel_mover, mask_fill=mask_fill)
        if changer is None:
            return None
        transform, what = changer
        name = type(transform).__name__
        return f"{name} {what}" if isinstance(transform, MaskMixTransform) else f"torchvision's {name} {what}"

    def _refuse_pixel_targets(self, leaves: Sequence[Any], images: Tensor) -> None:
        """Refuse plain tensors among the batch's ``leaves`` (beside the images) laid out on the
        pixels: segmentation masks, depth or heatmaps not wrapped in a ``tv_tensors.Mask``, when a
        transform moves or mixes pixels or writes ``mask_fill``: the pipeline changes the images
        only, so they would no longer match, silently. Targets of rank 3 or more whose last two sides are the
        images' height and width count, any rank-4 grid (a mask at another resolution) and integer
        ``(B, h, w)`` maps the images' shape scaled down; a float tensor shaped exactly like the
        images is another view of them (a teacher's clean copy) and passes."""
        if len(leaves) < 2 or images.ndim < 3:
            return
        size = tuple(images.shape[-2:])
        # Integer rank-3 tensors the images' shape scaled down count too: (B, h, w) class maps at
        # a lower resolution, the usual down-sampled segmentation target.
        found = [leaf for leaf in leaves if isinstance(leaf, Tensor) and leaf is not images and leaf.ndim >= 3
                 and (tuple(leaf.shape[-2:]) == size or leaf.ndim == 4
                      or (leaf.ndim == 3 and not leaf.is_floating_point() and not leaf.is_complex()
                          and lower_resolution(size, tuple(leaf.shape[-2:]))))
                 and not (leaf.shape == images.shape and leaf.is_floating_point())]
        if not found:
            return
        changer = self._pixel_changer()
        if changer is not None:
            raise ValueError(
                f"{self.owner}: the batch holds a tensor of shape {tuple(found[0].shape)} laid out like the images "
                f"{tuple(images.shape)} (segmentation masks or other per-pixel targets), but {changer} and the "
                "pipeline changes the images only: the targets would no longer match the pixels. Call the maskmix "
                "transforms on (images, tv_tensors.Mask(masks)) yourself (masks follow the pixels), or use "
                "transforms that keep pixels in place"
            )

    def _refuse_plain_coordinates(self, batch: Any) -> None:
        """Refuse plain tensors under keys that name boxes or keypoints (torchvision's per-image
        detection target dicts) when a transform moves or mixes pixels: the pipeline changes the
        images only (see :func:`maskmix.torch._base.refuse_plain_coordinates`)."""
        if not isinstance(batch, Tensor) and coordinate_keys(batch, _is_plain_tensor):
            changer = self._pixel_changer(mask_fill=False)
            if changer is not None:
                refuse_plain_coordinates(f"{self.owner} ({changer})", batch)

    def _check_images(self, images: Any) -> Tensor:
        if not isinstance(images, Tensor):
            raise TypeError(f"{self.owner}: the images of the batch (image_key={self.image_key!r}) must be a tensor; "
                            f"got {type(images).__name__}")
        refuse_non_dense(self.owner, "the images of the batch", images)
        return images

    def _check_labels(self, labels: Any) -> Tensor | None:
        if labels is None or not self.makes_soft_labels:
            return None
        if not isinstance(labels, Tensor):
            raise TypeError(f"{self.owner}: the labels of the batch (label_key={self.label_key!r}) must be a tensor; "
                            f"got {type(labels).__name__}")
        return labels

    def __prepare_scriptable__(self) -> NoReturn:
        refuse_torchscript("MaskMixPipeline")  # torch.jit.script of the pipeline, as of its transforms

    def _rank(self, rank: Any) -> int:
        """The rank whose stream a batch belongs to: ``rank`` (checked), or with None the rank of
        ``torch.distributed``'s default process group where one is initialised (0 otherwise).

        A loop of one's own under DDP or Fabric that left the rank out drew the same boxes and mixes
        on every rank (the default was 0)."""
        if rank is None:
            distributed = torch.distributed
            return distributed.get_rank() if distributed.is_available() and distributed.is_initialized() else 0
        return cast(int, _RANK(self.owner, "rank", rank))

    @overload
    def augment(self, images: Tensor, labels: Tensor, *, rank: int | None = None) -> tuple[Tensor, Tensor]: ...
    @overload
    def augment(self, images: Tensor, labels: None = None, *, rank: int | None = None) -> tuple[Tensor, None]: ...

    def augment(self, images: Tensor, labels: Tensor | None = None, *,
                rank: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Augment one batch given as tensors; returns ``(images, labels)`` (labels soft when mixed/smoothed).

        ``labels`` may be None when neither ``mix`` nor ``label_smoothing`` is set. Advances the
        stream by one batch. ``rank``: the process's rank (each rank draws its own numbers); None
        reads it from ``torch.distributed`` when a process group is initialised, else 0.
        """
        refuse_unsupported_tracing(self.owner, (images, labels))
        rank = self._rank(rank)
        number = self.batches
        seed = self._stream_seed()
        # Chosen on the host, outside any compiled code: a compiled step is specialised per item.
        mix_index = self.choose_mix(rank, number) if self.mixes else -1
        step_seed = derive_seed(seed, rank, number, DEVICE_STREAM)
        if torch.compiler.is_compiling():  # torch.compile cannot trace a generator: the global RNG
            if self.schedules:
                raise TypeError(
                    f"{self.owner}: schedules cannot reach the transforms inside a torch.compile of your own "
                    "(it cannot trace how the values are handed over); use compile=True, which compiles the "
                    "step and passes the scheduled values to it as tensors"
                )
            images, labels = self._step(images, labels, mix_index)
        elif self.compile_options is not None:
            # torch.compile cannot trace a tv_tensor: an Image is the same batch as a plain tensor,
            # a Video is not (its frames share their clip's draws; a plain 5-D tensor's would not).
            if isinstance(images, tv_tensors.Video):
                raise TypeError(
                    f"{self.owner}: compile=True cannot augment a tv_tensors.Video (torch.compile cannot trace "
                    "tv_tensors, and as a plain tensor each frame would get its own draws); use compile=False "
                    "for video clips"
                )
            given = images
            # Tensors: read inside the compiled step, they are graph inputs, not constants.
            lent = self._lent(images.device) if self.schedules else {}
            with _seeded_default_generator(images.device, step_seed), schedules_mod.lending(lent):
                images, labels = self.compiled_step()(images.as_subclass(Tensor), labels, mix_index)
            if isinstance(given, tv_tensors.TVTensor):
                images = tv_tensors.wrap(images, like=given)
        else:
            generator = self._device_generator(images.device)
            generator.manual_seed(step_seed)
            with using_generator(generator), schedules_mod.lending(self._lent(None)):
                images, labels = self._step(images, labels, mix_index)
        self.batches = number + 1
        return images, labels

    def compiled_step(self) -> Callable[..., tuple[Tensor, Tensor | None]]:
        """The compiled ``(images, labels, mix_index) -> (images, labels)`` step (built once, lazily)."""
        if self._compiled_step is None:
            arguments = {"fullgraph": True, **(self.compile_options or {})}
            # Dynamo keeps its graphs per code object and, with fullgraph, fails the call that
            # would compile one more than its recompile limit (8): with one shared `_step`, the
            # ninth pipeline of a process (a sweep, a new callback per fit) failed. A code object
            # of its own per pipeline and mix item keeps each cache to the image dtypes, each
            # with a static and a dynamic batch size.
            steps: dict[int, Callable[..., tuple[Tensor, Tensor | None]]] = {}

            def step(images: Tensor, labels: Tensor | None, mix_index: int) -> tuple[Tensor, Tensor | None]:
                compiled = steps.get(mix_index)
                if compiled is None:
                    compiled = steps[mix_index] = torch.compile(_with_own_code(self._step), **arguments)
                try:
                    return compiled(images, labels, mix_index)
                except Exception as error:
                    if not _compat.raised_by_the_compiler(error):
                        raise
                    # A check of the step raised while Dynamo traced it, which reports it as its own
                    # error ("Observed exception"): the eager step raises maskmix's ValueError or
                    # TypeError itself. (The draws it takes are those of a failing batch.)
                    self._step(images, labels, mix_index)
                    raise

            self._compiled_step = step
        return self._compiled_step

    def _step(self, images: Tensor, labels: Tensor | None, mix_index: int) -> tuple[Tensor, Tensor | None]:
        for transform in self.transforms:
            images = transform(images)
        smoothing = self.label_smoothing if self.label_smoothing > 0 else None
        if self.mixes:
            mix = self.mixes[mix_index]
            images, labels = mix.mix_images_labels(images, labels, num_classes=self.num_classes,
                                                   label_smoothing=smoothing)
        elif smoothing is not None and labels is not None:
            if labels.device != images.device:
                raise ValueError(f"{self.owner}: labels are on {labels.device} but the images are on {images.device}")
            # One label per clip of a Video (..., T, C, H, W), as the mixing transforms count them.
            batch = math.prod(images.shape[:-4] if isinstance(images, tv_tensors.Video) else images.shape[:-3])
            labels = soft_labels(self.owner, labels, batch, num_classes=self.num_classes, label_smoothing=smoothing)
        return images, labels

    def __repr__(self) -> str:
        return options.arguments_repr(type(self).__name__, [
            ("transforms", self.transforms, []), ("mix", self.mixes, []), ("mix_weights", self.mix_weights, None),
            ("num_classes", self.num_classes, None), ("label_smoothing", self.label_smoothing, 0.0),
            ("image_key", self.image_key, 0), ("label_key", self.label_key, 1), ("seed", self.seed_argument, None),
            ("compile", self._compile_argument, False), ("schedules", self._schedules_argument, None),
        ])

    @overload
    def __call__(self, batch: _Images, /, *, rank: int | None = None, epoch: float | None = None) -> _Images: ...
    @overload
    def __call__(self, batch: tuple[_Images, Tensor], /, *, rank: int | None = None,
                 epoch: float | None = None) -> tuple[_Images, Tensor]: ...
    @overload
    def __call__(self, images: _Images, labels: Tensor, /, *, rank: int | None = None,
                 epoch: float | None = None) -> tuple[_Images, Tensor]: ...
    @overload
    def __call__(self, batch: Any, *more: Any, rank: int | None = None, epoch: float | None = None) -> Any: ...

    def __call__(self, batch: Any, *more: Any, rank: int | None = None, epoch: float | None = None) -> Any:
        """Augment one batch (tensor, tuple/list or dict; see the class docstring); advances the stream.

        Several positional inputs are one tuple batch, as torchvision's transforms take them:
        ``pipeline(images, labels)`` returns ``(images, labels)``, so the pipeline composes in
        ``v2.Compose``/``v2.RandomChoice`` and replaces ``cutmix(images, labels)`` as it is called.

        ``epoch``, when given, is passed to :meth:`set_epoch` first (the scheduled values follow it).

        A batch that carries segmentation masks or boxes (``tv_tensors.Mask``/``BoundingBoxes``/
        ``KeyPoints`` next to the images) is refused with a ``TypeError``: the pipeline transforms
        images and labels only, and dense targets left as they were would no longer match the pixels.
        Plain tensors laid out on the pixels (masks not wrapped in ``tv_tensors.Mask``, depth or
        heatmaps: rank 3 or more with the images' height and width, any rank-4 grid, or an integer
        ``(B, h, w)`` class map the images' shape scaled down) are refused
        with a ``ValueError`` when a transform moves or mixes pixels (torchvision's geometric and
        auto-augment transforms included) or writes ``mask_fill``; a float tensor shaped exactly like
        the images (another view of them) passes.
        """
        if more:
            if isinstance(more[0], (numbers.Number, np.number)):
                # pipeline(batch, 1): a rank given positionally was taken for the labels of a tuple batch.
                raise TypeError(f"{self.owner}: got {more[0]!r} as the second positional input (the labels); rank "
                                "and epoch are keyword-only: pipeline(batch, rank=..., epoch=...)")
            batch = (batch, *more)
        if epoch is not None:
            self.set_epoch(epoch)
        leaves, _ = _compat.tree_flatten(batch)  # once: both checks read every leaf
        refuse_unsupported_tracing(self.owner, leaves)
        self._refuse_dense_targets(leaves)
        images, labels, rebuild = self.split(batch)
        self._refuse_pixel_targets(leaves, images)
        self._refuse_plain_coordinates(batch)
        images, labels = self.augment(images, labels, rank=rank)
        return rebuild(images, labels)
