"""Lightning integration: augment and mix every training batch on its device (SPEC §5).

* :class:`MaskMixCallback` is added to ``Trainer(callbacks=[...])``. Lightning gives callbacks no
  ``on_after_batch_transfer`` hook, so the callback installs one into the object whose hook
  Lightning calls (the LightningModule, or the LightningDataModule when that one overrides the
  hook), chains the user's own hook first, and removes itself at teardown.
* :class:`MaskMixMixin` is for users who subclass their LightningModule instead: it implements
  ``on_after_batch_transfer`` with the same engine.
* :func:`soft_label_targets` turns soft labels back into class indices for training metrics.

Both share one engine, :class:`MaskMixEngine`, which owns the validation of the arguments, the
batch layout (tuples, lists, dicts, extra elements kept), the per-rank seeding and the state that
a checkpoint stores.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor
from torchvision.transforms import v2

from maskmix.torch import MaskMixTransform, MixingTransform

__all__ = ["MaskMixCallback", "MaskMixEngine", "MaskMixMixin", "soft_label_targets"]

_HOOK = "on_after_batch_transfer"
_MASK64 = (1 << 64) - 1
_STATE_VERSION = 1
#: Stream ids mixed into the per-batch seeds: one for the device generator, one for the host choice.
_DEVICE_STREAM, _CHOICE_STREAM = 0, 1
_DEFAULT_IMAGE_KEYS = ("image", "images")
_DEFAULT_LABEL_KEYS = ("label", "labels")


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
# Seeds.
# --------------------------------------------------------------------------------------------


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (splitmix64 chain); equal parts give equal seeds."""
    state = 0
    for part in parts:
        state = _splitmix64(state ^ (part & _MASK64))
    return state >> 1


# --------------------------------------------------------------------------------------------
# Argument checks.
# --------------------------------------------------------------------------------------------


def _is_mixing(transform: Any) -> bool:
    """Whether ``transform`` mixes images and labels (maskmix mixing, torchvision CutMix/MixUp)."""
    if isinstance(transform, MixingTransform):
        return bool(transform.needs_batch)  # RandomCutThumbnail mixes only with mix_images=True
    return isinstance(transform, (v2.CutMix, v2.MixUp))


def _is_torchvision_module(transform: Any) -> bool:
    module = type(transform).__module__
    return isinstance(transform, torch.nn.Module) and module.startswith("torchvision.transforms")


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


def _maskmix_modules(transform: Any) -> list[MaskMixTransform]:
    return [m for m in _walk(transform) if isinstance(m, MaskMixTransform)]


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (``int``, NumPy integers, any ``numbers.Integral``) but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_key(owner: str, name: str, key: Any) -> Hashable:
    if isinstance(key, str):
        return key
    if not _is_integer(key):
        raise TypeError(
            f"{owner}: {name} must be an int (position in a tuple/list batch) or a str (key of a dict "
            f"batch); got {key!r}"
        )
    position = int(key)
    if position < 0:
        raise ValueError(f"{owner}: {name} must be a non-negative position; got {position}")
    return position


def _check_seed(owner: str, seed: Any) -> int | None:
    if seed is None:
        return None
    if not _is_integer(seed) or int(seed) < 0:
        raise TypeError(f"{owner}: seed must be None or a non-negative int; got {seed!r}")
    return int(seed)


def _check_real(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise TypeError(f"{owner}: {name} must be a finite number; got {value!r}")
    return float(value)


class MaskMixEngine:
    """What :class:`MaskMixCallback` and :class:`MaskMixMixin` share: checks, batches, seeds, state.

    ``engine(batch, rank=...)`` returns the batch with its images masked by ``transforms`` (in
    order), then mixed by ``mix`` (one transform, or one chosen per batch), labels soft. The
    arguments are those of :class:`MaskMixCallback`; ``owner`` names the class in error messages.
    """

    def __init__(
        self,
        transforms: Sequence[Any] | Any | None = None,
        mix: Sequence[MixingTransform] | MixingTransform | None = None,
        mix_weights: Sequence[float] | None = None,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        image_key: int | str = 0,
        label_key: int | str = 1,
        seed: int | None = None,
        *,
        owner: str = "MaskMixEngine",
    ) -> None:
        self.owner = owner
        self.transforms = self._check_transforms(transforms)
        self.mixes = self._check_mix(mix)
        self.mix_weights = self._check_mix_weights(mix_weights)
        self.num_classes = self._check_num_classes(num_classes)
        self.label_smoothing = self._check_label_smoothing(label_smoothing)
        self.image_key = _check_key(owner, "image_key", image_key)
        self.label_key = _check_key(owner, "label_key", label_key)
        if self.image_key == self.label_key:
            raise ValueError(f"{owner}: image_key and label_key must differ; both are {image_key!r}")
        #: The ``seed`` argument as given (an int, or None to follow ``torch.initial_seed()``).
        self.seed_argument: int | None = _check_seed(owner, seed)
        #: The seed of the streams; None until :meth:`begin_fit` / :meth:`resolve_seed` when the
        #: argument is None (then ``torch.initial_seed()``).
        self.seed: int | None = self.seed_argument
        #: Number of batches augmented so far in this fit (the position in the stream).
        self.batches = 0
        #: Options the callback gives its mixing transforms for the duration of a call.
        self._mix_overrides = self._mix_options()
        self._modules = [m for t in self.transforms for m in _maskmix_modules(t)]
        self._modules += [m for t in self.mixes for m in _maskmix_modules(t)]
        owned = [type(m).__name__ for m in self._modules if m.generator is not None]
        if owned:
            warnings.warn(
                f"{owner}: the generator of {', '.join(owned)} is not used; the {owner} draws every "
                "random quantity from its own per-rank generators (set seed= instead)",
                UserWarning,
                stacklevel=3,
            )
        self._generators: dict[torch.device, torch.Generator] = {}
        self._choice_generator = torch.Generator()

    # ----------------------------------------------------------------------------------------
    # Construction checks.
    # ----------------------------------------------------------------------------------------

    def _check_transforms(self, transforms: Any) -> list[Any]:
        owner = self.owner
        if transforms is None:
            return []
        items = _as_list(transforms)
        if items is None:
            items = [transforms]
        for i, t in enumerate(items):
            where = f"transforms[{i}]"
            if not isinstance(t, v2.Transform) and not _is_torchvision_module(t):
                raise TypeError(
                    f"{owner}: {where} must be a maskmix or torchvision transform (a torchvision.transforms.v2 "
                    f"Transform); got {t!r}"
                )
            mixing = [m for m in _walk(t) if _is_mixing(m)]
            if mixing:
                raise ValueError(
                    f"{owner}: {where} is or contains the mixing transform {type(mixing[0]).__name__}; "
                    "transforms take masking transforms only: pass mixing transforms as mix="
                )
            labelled = [m for m in _maskmix_modules(t) if m.return_labels]
            if labelled:
                raise ValueError(
                    f"{owner}: {where} ({type(labelled[0]).__name__}) has return_labels=True, which returns "
                    "(images, is_augmented); use return_labels=False in a training callback"
                )
        return items

    def _check_mix(self, mix: Any) -> list[MixingTransform]:
        owner = self.owner
        if mix is None:
            return []
        items = _as_list(mix)
        single = items is None
        if items is None:
            items = [mix]
        if not items:
            raise ValueError(f"{owner}: mix must be None, a mixing transform or a non-empty list of them; got []")
        for i, m in enumerate(items):
            where = "mix" if single else f"mix[{i}]"
            if isinstance(m, (v2.CutMix, v2.MixUp)):
                raise TypeError(
                    f"{owner}: {where} must be a maskmix mixing transform (RandomCutMix, RandomMixup, "
                    f"RandomCutThumbnail(mix_images=True)); got torchvision's {type(m).__name__}, which cannot be "
                    "seeded per rank: use maskmix.torch.RandomCutMix / RandomMixup instead"
                )
            if not isinstance(m, MixingTransform):
                raise TypeError(
                    f"{owner}: {where} must be a maskmix mixing transform (RandomCutMix, RandomMixup, "
                    f"RandomCutThumbnail(mix_images=True)); got {m!r}"
                )
            if not m.needs_batch:
                raise ValueError(
                    f"{owner}: {where} is {type(m).__name__} with mix_images=False, which does not mix images; "
                    "pass it in transforms=, or set mix_images=True"
                )
        return items

    def _check_mix_weights(self, mix_weights: Any) -> list[float] | None:
        owner = self.owner
        if mix_weights is None:
            return None
        if not self.mixes:
            raise ValueError(f"{owner}: mix_weights needs mix; got mix_weights={mix_weights!r} and mix=None")
        items = _as_list(mix_weights)
        if items is None:
            raise TypeError(
                f"{owner}: mix_weights must be a list of numbers, one per mix transform; got {mix_weights!r}"
            )
        if len(items) != len(self.mixes):
            raise ValueError(
                f"{owner}: mix_weights must have one weight per mix transform ({len(self.mixes)}); "
                f"got {len(items)}: {mix_weights!r}"
            )
        weights = [_check_real(owner, f"mix_weights[{i}]", w) for i, w in enumerate(items)]
        if any(w < 0 for w in weights):
            raise ValueError(f"{owner}: mix_weights must be non-negative; got {mix_weights!r}")
        if sum(weights) <= 0:
            raise ValueError(f"{owner}: mix_weights must have a positive sum; got {mix_weights!r}")
        return weights

    def _check_num_classes(self, num_classes: Any) -> int | None:
        owner = self.owner
        if num_classes is None:
            return None
        if not _is_integer(num_classes):
            raise TypeError(f"{owner}: num_classes must be None or a positive int; got {num_classes!r}")
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ValueError(f"{owner}: num_classes must be a positive int; got {num_classes}")
        for i, m in enumerate(self.mixes):
            if m.num_classes is not None and m.num_classes != num_classes:
                raise ValueError(
                    f"{owner}: num_classes={num_classes} disagrees with mix[{i}] ({type(m).__name__}) "
                    f"num_classes={m.num_classes}; give it once or make them agree"
                )
        return num_classes

    def _check_label_smoothing(self, label_smoothing: Any) -> float:
        owner = self.owner
        value = _check_real(owner, "label_smoothing", label_smoothing)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{owner}: label_smoothing must be in [0, 1); got {label_smoothing!r}")
        if value > 0 and not self.mixes:
            raise ValueError(
                f"{owner}: label_smoothing={label_smoothing!r} needs mix: without mixing the labels are left as "
                "they are (use the loss's label_smoothing instead)"
            )
        for i, m in enumerate(self.mixes):
            if value > 0 and m.label_smoothing > 0 and m.label_smoothing != value:
                raise ValueError(
                    f"{owner}: label_smoothing={value} disagrees with mix[{i}] ({type(m).__name__}) "
                    f"label_smoothing={m.label_smoothing}; give it once or make them agree"
                )
        return value

    def _mix_options(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if self.num_classes is not None:
            overrides["num_classes"] = self.num_classes
        if self.label_smoothing > 0:
            overrides["label_smoothing"] = self.label_smoothing
        return overrides

    # ----------------------------------------------------------------------------------------
    # Seeds and state.
    # ----------------------------------------------------------------------------------------

    def resolve_seed(self) -> int:
        """The seed; ``None`` becomes ``torch.initial_seed()`` (follows ``seed_everything``)."""
        if self.seed is None:
            self.seed = torch.initial_seed() & _MASK64
        return self.seed

    def begin_fit(self) -> None:
        """Start the streams of a new fit: batch 0, and the seed argument or ``torch.initial_seed()``.

        Called at ``setup("fit")``, before Lightning restores a checkpoint given as ``ckpt_path``:
        :meth:`load_state_dict` then replaces this fresh start by the saved position, so a resumed
        fit continues the saved streams while every other fit starts from batch 0.
        """
        self.seed = self.seed_argument
        self.batches = 0
        self.resolve_seed()

    def _device_generator(self, device: torch.device) -> torch.Generator:
        gen = self._generators.get(device)
        if gen is None:
            gen = self._generators[device] = torch.Generator(device=device)
        return gen

    def state_dict(self) -> dict[str, Any]:
        """``{"seed", "batches", "version"}``: all a resumed run needs to continue the streams."""
        return {"version": _STATE_VERSION, "seed": self.seed, "batches": self.batches}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next batch continues the saved run's streams."""
        if not isinstance(state, Mapping) or "batches" not in state:
            raise ValueError(f"{self.owner}: not a {self.owner} state: {state!r}")
        if state.get("seed") is not None:
            self.seed = int(state["seed"])
        self.batches = int(state["batches"])

    @contextlib.contextmanager
    def _generators_set(self, generator: torch.Generator | None) -> Iterator[None]:
        """Give every maskmix transform ``generator`` for one call, then restore theirs."""
        saved = [m.generator for m in self._modules]
        for m in self._modules:
            m.generator = generator
        try:
            yield
        finally:
            for m, gen in zip(self._modules, saved, strict=True):
                m.generator = gen

    @contextlib.contextmanager
    def _attributes_set(self, obj: Any, values: Mapping[str, Any]) -> Iterator[None]:
        saved = {k: getattr(obj, k) for k in values}
        for k, v in values.items():
            setattr(obj, k, v)
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(obj, k, v)

    def choose_mix(self, rank: int, batch: int) -> int:
        """Index of the mix transform of batch number ``batch`` on ``rank`` (a host draw, no device sync)."""
        if len(self.mixes) < 2:
            return 0
        gen = self._choice_generator
        gen.manual_seed(derive_seed(self.resolve_seed(), rank, batch, _CHOICE_STREAM))
        u = float(torch.rand((), generator=gen))  # a CPU tensor: no device synchronisation
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

    @staticmethod
    def _dict_key(batch: Mapping[Any, Any], key: Hashable, defaults: tuple[str, ...],
                  default_key: int) -> Hashable | None:
        if key in batch:
            return key
        if key == default_key:  # the defaults 0 / 1 on a dict batch: look for the usual names
            found = next((k for k in defaults if k in batch), None)
            if found is not None:
                return found
        return None

    def split(self, batch: Any) -> tuple[Tensor, Tensor | None, Callable[[Tensor, Tensor | None], Any]]:
        """``(images, labels or None, rebuild)`` of a batch; ``rebuild(images, labels)`` keeps the rest."""
        owner = self.owner
        need_labels = bool(self.mixes)
        if isinstance(batch, Tensor):
            if need_labels:
                raise TypeError(f"{owner}: mix needs labels, but the batch is a single tensor; give (images, labels)")
            return batch, None, lambda images, labels: images
        if isinstance(batch, Mapping):
            image_key = self._dict_key(batch, self.image_key, _DEFAULT_IMAGE_KEYS, 0)
            label_key = self._dict_key(batch, self.label_key, _DEFAULT_LABEL_KEYS, 1)
            keys = list(batch)
            if image_key is None:
                raise ValueError(
                    f"{owner}: image_key {self.image_key!r} is not a key of the batch; its keys are {keys}"
                )
            if label_key is None and need_labels:
                raise ValueError(
                    f"{owner}: label_key {self.label_key!r} is not a key of the batch; its keys are {keys}"
                )

            def rebuild_dict(images: Tensor, labels: Tensor | None) -> Any:
                out = batch.copy() if hasattr(batch, "copy") else dict(batch)
                out[image_key] = images
                if labels is not None:
                    out[label_key] = labels
                return out

            labels = batch[label_key] if label_key is not None else None
            return self._check_images(batch[image_key]), self._check_labels(labels), rebuild_dict
        if isinstance(batch, (tuple, list)):
            for name, key in (("image_key", self.image_key), ("label_key", self.label_key)):
                if not isinstance(key, int):
                    raise TypeError(f"{owner}: {name} is {key!r} but the batch is a {type(batch).__name__}; "
                                    "use integer positions for tuple/list batches")
            image_pos, label_pos = int(self.image_key), int(self.label_key)
            if image_pos >= len(batch):
                raise ValueError(f"{owner}: image_key {image_pos} is out of range for a batch of {len(batch)} items")
            has_labels = label_pos < len(batch)
            if need_labels and not has_labels:
                raise ValueError(f"{owner}: label_key {label_pos} is out of range for a batch of {len(batch)} items")

            def rebuild_seq(images: Tensor, labels: Tensor | None) -> Any:
                items = list(batch)
                items[image_pos] = images
                if labels is not None:
                    items[label_pos] = labels
                if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
                    return type(batch)(*items)
                return type(batch)(items)

            labels = batch[label_pos] if has_labels else None
            return self._check_images(batch[image_pos]), self._check_labels(labels), rebuild_seq
        raise TypeError(
            f"{owner}: a batch must be a tensor of images, a tuple/list (images, labels, ...) or a dict; "
            f"got {type(batch).__name__}"
        )

    def _check_images(self, images: Any) -> Tensor:
        if not isinstance(images, Tensor):
            raise TypeError(f"{self.owner}: the images of the batch (image_key={self.image_key!r}) must be a tensor; "
                            f"got {type(images).__name__}")
        return images

    def _check_labels(self, labels: Any) -> Tensor | None:
        if labels is None or not self.mixes:
            return None
        if not isinstance(labels, Tensor):
            raise TypeError(f"{self.owner}: the labels of the batch (label_key={self.label_key!r}) must be a tensor; "
                            f"got {type(labels).__name__}")
        return labels

    def __call__(self, batch: Any, *, rank: int = 0) -> Any:
        """Augment one training batch; advances the stream by one batch."""
        images, labels, rebuild = self.split(batch)
        number = self.batches
        seed = self.resolve_seed()
        if torch.compiler.is_compiling():  # the transforms refuse a generator while torch.compile traces
            generator = None
        else:
            generator = self._device_generator(images.device)
            generator.manual_seed(derive_seed(seed, rank, number, _DEVICE_STREAM))
        with self._generators_set(generator):
            for transform in self.transforms:
                images = transform(images)
            if self.mixes:
                index = self.choose_mix(rank, number)
                mix = self.mixes[index]
                with self._attributes_set(mix, self._mix_overrides):
                    images, labels = mix(images, labels)
        self.batches = number + 1
        return rebuild(images, labels)


def _training(trainer: pl.Trainer | None) -> bool:
    """True only while fit runs a training batch (not validation, sanity check, test or predict)."""
    return trainer is not None and trainer.training and not trainer.sanity_checking




class MaskMixCallback(pl.Callback):
    """Mask, then mix, every training batch on its device (a Lightning callback).

    The batch is augmented right after it reaches the device, in ``on_after_batch_transfer``:
    the images go through ``transforms`` in order, then through ``mix`` (one mixing transform, or
    one chosen per batch from a list), and the labels become soft ``(B, K)`` rows, which
    ``F.cross_entropy`` accepts as targets. Only training batches are touched: validation, test,
    predict and the sanity check see the loader's batches unchanged (the same tensor objects).

    **How the hook is installed.** Lightning has no ``on_after_batch_transfer`` hook for
    callbacks. At ``setup("fit")`` the callback installs a hook on the object whose hook Lightning
    calls: the LightningDataModule when it overrides ``on_after_batch_transfer``, else the
    LightningModule (Lightning's ``_DataHookSelector`` rule). The installed hook calls the user's
    own hook first, then augments, and looks unchanged to Lightning's override checks. It is
    removed at ``teardown`` (and on an exception). Several callbacks chain in list order.

    **Batches.** A tuple or list ``(images, labels, ...)``, a dict, or a bare image tensor (masking
    only). Extra elements are kept; the batch's type is kept. Labels are class indices ``(B,)``
    (with ``num_classes``) or one-hot/soft ``(B, K)``; with ``mix`` they come out soft float32
    ``(B, K)``. Use :func:`soft_label_targets` for training metrics.

    **Randomness.** Before each batch the callback seeds a ``torch.Generator`` on the batch's
    device from ``(seed, global rank, batch number)`` and hands it to every maskmix transform for
    that call (their own ``generator`` is not used), so DDP ranks augment differently and a run is
    reproducible. The choice among several ``mix`` transforms is drawn on the host from a CPU
    generator seeded the same way: it never synchronises with the device.

    **Every fit starts a fresh stream.** Each ``trainer.fit`` starts at batch number 0 with
    ``seed`` (or, with ``seed=None``, ``torch.initial_seed()`` read when that fit starts), so a
    fit's augmentations do not depend on earlier fits with the same callback: the same seed gives
    the same augmentations. This holds for an explicit ``seed`` too, also when ``fit`` is called
    again on the same Trainer; to continue a run's streams, resume it from a checkpoint.

    **Checkpoints.** The state saved in checkpoints (``state_dict``) is the seed and the number of
    batches augmented, so a fit resumed with ``ckpt_path`` continues the saved streams. Lightning
    saves rank 0's callback state only and every rank loads it: the streams are continued on every
    rank when all ranks have the same seed (an explicit ``seed``, or ``seed=None`` after
    ``lightning.seed_everything``). With ``seed=None`` and no ``seed_everything``, each process's
    ``torch.initial_seed()`` differs; after resuming, every rank switches to rank 0's seed, so the
    ranks' streams stay distinct but those of ranks other than 0 are not continued.

    Args:
        transforms: masking transforms applied first, in order: maskmix transforms
            (``RandomErasing``, ``RandomCutout``, ...) or torchvision v2 transforms (which draw from
            the global RNG, not from the per-rank generator). A single transform or a list.
        mix: ``None`` (no mixing: labels are left as they are), a maskmix mixing transform
            (``RandomCutMix``, ``RandomMixup``, ``RandomCutThumbnail(mix_images=True)``) applied after
            ``transforms``, or a list of them of which one is chosen per batch.
        mix_weights: relative probabilities of the ``mix`` list (non-negative, one per transform);
            ``None`` chooses uniformly.
        num_classes: number of classes, given to the mixing transforms (required with class-index
            labels unless the mixing transforms have it); must agree with theirs.
        label_smoothing: in ``[0, 1)``, given to the mixing transforms (applied before mixing);
            needs ``mix``; must agree with theirs when both are non-zero.
        image_key: position of the images in tuple/list batches, or their key in dict batches. The
            default 0 finds ``"image"``/``"images"`` in a dict batch.
        label_key: position or key of the labels. The default 1 finds ``"label"``/``"labels"``
            in a dict batch.
        seed: seed of the augmentation streams; ``None`` uses ``torch.initial_seed()`` read when
            each fit starts (so ``lightning.seed_everything`` makes runs reproducible).

    Integer arguments (``num_classes``, integer ``image_key`` / ``label_key``, ``seed``) accept any
    ``numbers.Integral`` except ``bool`` (NumPy integers included) and are stored as ``int``.

    Raises:
        TypeError, ValueError: at construction for invalid arguments, and at call time for batches
            that do not match ``image_key`` / ``label_key`` (messages name ``MaskMixCallback`` and
            the parameter).

    Example:
        >>> import lightning as L
        >>> from maskmix.callbacks import MaskMixCallback
        >>> from maskmix.torch import RandomCutMix, RandomErasing, RandomMixup
        >>> callback = MaskMixCallback(
        ...     transforms=[RandomErasing(augmentation_ratio=0.5)],
        ...     mix=[RandomCutMix(), RandomMixup(alpha=0.2)],
        ...     mix_weights=[0.5, 0.5],
        ...     num_classes=10,
        ...     seed=0,
        ... )
        >>> trainer = L.Trainer(callbacks=[callback], max_epochs=1, logger=False)  # doctest: +SKIP

        In the LightningModule, the loss takes the soft labels and metrics the dominant class::

            def training_step(self, batch, batch_idx):
                x, y = batch  # y: (B, K) soft labels
                logits = self(x)
                loss = F.cross_entropy(logits, y)
                self.train_acc(logits, soft_label_targets(y))  # torchmetrics.Accuracy
                return loss
    """

    def __init__(
        self,
        transforms: Sequence[Any] | Any | None = None,
        mix: Sequence[MixingTransform] | MixingTransform | None = None,
        mix_weights: Sequence[float] | None = None,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        image_key: int | str = 0,
        label_key: int | str = 1,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.engine = MaskMixEngine(
            transforms, mix, mix_weights, num_classes, label_smoothing, image_key, label_key, seed,
            owner=type(self).__name__,
        )
        self._trainer: pl.Trainer | None = None
        self._hook: Callable[..., Any] | None = None
        self._hook_target: Any = None

    # Lightning's callback state conventions.

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints: the class name, transforms, mixes and seed argument.

        Two callbacks in one Trainer need different keys (Lightning refuses duplicates): give them
        different transforms or seeds.
        """
        engine = self.engine
        return self._generate_state_key(
            transforms=[type(t).__name__ for t in engine.transforms],
            mix=[type(m).__name__ for m in engine.mixes],
            seed=self.engine.seed_argument,
        )

    def state_dict(self) -> dict[str, Any]:
        """The seed and the number of augmented batches (see the class docstring)."""
        return self.engine.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the streams of the checkpointed run."""
        self.engine.load_state_dict(state_dict)

    # Installation.

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Install the hook for ``fit`` and start the streams from batch 0 (nothing for validate, test, predict)."""
        if stage != "fit":
            return
        if isinstance(pl_module, MaskMixMixin):
            raise ValueError(
                f"{type(self).__name__}: the LightningModule {type(pl_module).__name__} already augments batches "
                "through MaskMixMixin; use either the mixin or the callback"
            )
        self._remove_hook()
        self._trainer = trainer
        self.engine.begin_fit()  # a checkpoint given as ckpt_path is restored after this
        datamodule = trainer.datamodule
        if datamodule is not None and is_overridden(_HOOK, datamodule, pl.LightningDataModule):
            target: Any = datamodule
        else:
            target = pl_module
        self._hook = _install_hook(target, self._augment)
        self._hook_target = target

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Remove the installed hook."""
        self._remove_hook()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """Remove the installed hook when fit fails (Lightning then skips ``teardown``)."""
        self._remove_hook()

    def _remove_hook(self) -> None:
        if self._hook is not None:
            _remove_hook(self._hook_target, self._hook)
        self._hook = None
        self._hook_target = None

    def _augment(self, batch: Any) -> Any:
        trainer = self._trainer
        if not _training(trainer):
            return batch
        assert trainer is not None
        return self.engine(batch, rank=trainer.global_rank)


def _install_hook(target: Any, augment: Callable[[Any], Any]) -> Callable[..., Any]:
    """Replace ``target.on_after_batch_transfer`` by a hook that calls the previous one, then ``augment``."""
    previous = getattr(target, _HOOK)
    in_dict = _HOOK in vars(target)
    # Lightning's override check (``is_overridden``) unwraps ``__wrapped__``: point it at what was
    # there before any maskmix hook so that Lightning's choice of hook does not change.
    original = getattr(previous, "__maskmix_original__", previous)

    def on_after_batch_transfer(batch: Any, dataloader_idx: int = 0) -> Any:
        batch = on_after_batch_transfer.previous(batch, dataloader_idx)  # type: ignore[attr-defined]
        return augment(batch)

    hook: Any = on_after_batch_transfer
    hook.previous = previous
    hook.previous_in_dict = in_dict
    hook.__maskmix_original__ = original
    hook.__wrapped__ = original
    setattr(target, _HOOK, hook)
    return hook


def _remove_hook(target: Any, hook: Any) -> None:
    """Undo :func:`_install_hook`, also when other maskmix hooks were installed on top of it."""
    current = vars(target).get(_HOOK)
    if current is hook:
        if hook.previous_in_dict:
            setattr(target, _HOOK, hook.previous)
        else:
            delattr(target, _HOOK)
        return
    node = current
    while node is not None and hasattr(node, "previous_in_dict"):
        if node.previous is hook:  # splice it out of the chain
            node.previous = hook.previous
            node.previous_in_dict = hook.previous_in_dict
            return
        node = node.previous if node.previous_in_dict else None


class MaskMixMixin:
    """Mask and mix training batches in a LightningModule you subclass (instead of the callback).

    Put it before ``LightningModule`` in the bases and call :meth:`configure_maskmix` (same
    arguments as :class:`MaskMixCallback`) in ``__init__``. It implements
    ``on_after_batch_transfer`` (calling ``super()`` first, then augmenting training batches with
    the same engine as the callback), starts the streams of each fit from batch 0 in ``setup``
    (as the callback does: see :class:`MaskMixCallback` for seeds, fits and resuming) and stores
    its state in checkpoints through ``on_save_checkpoint`` / ``on_load_checkpoint`` (restored
    with ``ckpt_path``, after ``setup``). If you override any of these four hooks, call
    ``super()`` in them. When a LightningDataModule overrides ``on_after_batch_transfer``,
    Lightning calls the datamodule's hook instead of the module's: use :class:`MaskMixCallback`
    then.

    Example:
        >>> import lightning as L
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from maskmix.callbacks import MaskMixMixin, soft_label_targets
        >>> from maskmix.torch import RandomCutMix, RandomErasing
        >>> class Model(MaskMixMixin, L.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(10))
        ...         self.configure_maskmix(transforms=[RandomErasing()], mix=RandomCutMix(), num_classes=10, seed=0)
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         return F.cross_entropy(self.net(x), y)
    """

    _maskmix_checkpoint_key = "maskmix"

    def configure_maskmix(
        self,
        transforms: Sequence[Any] | Any | None = None,
        mix: Sequence[MixingTransform] | MixingTransform | None = None,
        mix_weights: Sequence[float] | None = None,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        image_key: int | str = 0,
        label_key: int | str = 1,
        seed: int | None = None,
    ) -> None:
        """Set the augmentations; the arguments and their meaning are those of :class:`MaskMixCallback`.

        Raises:
            TypeError, ValueError: for invalid arguments (messages name ``MaskMixMixin``).
        """
        self.maskmix_engine = MaskMixEngine(
            transforms, mix, mix_weights, num_classes, label_smoothing, image_key, label_key, seed,
            owner="MaskMixMixin",
        )

    def _engine(self) -> MaskMixEngine:
        engine = getattr(self, "maskmix_engine", None)
        if engine is None:
            raise ValueError(
                f"MaskMixMixin: {type(self).__name__} has no augmentations; call self.configure_maskmix(...) in "
                "__init__"
            )
        return engine

    def setup(self, stage: str) -> None:
        """Call ``super()``'s hook; for ``fit``, start the streams from batch 0 (a fresh fit)."""
        super().setup(stage)  # type: ignore[misc]
        if stage == "fit":
            self._engine().begin_fit()  # a checkpoint given as ckpt_path is restored after this

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Call ``super()``'s hook, then augment the batch if it is a training batch."""
        batch = super().on_after_batch_transfer(batch, dataloader_idx)  # type: ignore[misc]
        trainer = getattr(self, "_trainer", None)
        if not _training(trainer):
            return batch
        assert trainer is not None
        return self._engine()(batch, rank=trainer.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the augmentation state (seed, batches) under ``checkpoint["maskmix"]``."""
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        checkpoint[self._maskmix_checkpoint_key] = self._engine().state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the augmentation state saved by :meth:`on_save_checkpoint`."""
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        state = checkpoint.get(self._maskmix_checkpoint_key)
        if state is not None:
            self._engine().load_state_dict(state)
