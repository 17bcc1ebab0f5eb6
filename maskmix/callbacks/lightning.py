"""Lightning integration: augment and mix every training batch on its device (design §Layers, integrations).

* :class:`MaskMixCallback` is added to ``Trainer(callbacks=[...])``. Lightning gives callbacks no
  ``on_after_batch_transfer`` hook, so the callback installs one into the object whose hook
  Lightning calls (the LightningModule, or the LightningDataModule when that one overrides the
  hook), chains the user's own hook first, and removes itself at teardown.
* :class:`MaskMixMixin` is for users who subclass their LightningModule instead: it implements
  ``on_after_batch_transfer`` with the same pipeline.

Both run a :class:`maskmix.torch.MaskMixPipeline` (the argument checks, shared with the Keras
integration, the batch layouts, the per-rank seeding and the checkpointed state); this module
only adds what is Lightning's: installing the hook, telling training batches from the others,
starting the streams at each fit and the checkpoint hooks. :func:`soft_label_targets` lives in
:mod:`maskmix.torch.pipeline` (importable without Lightning) and is re-exported here.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# ruff: noqa: E402  (the imports below follow the optional-dependency check)
from maskmix._optional import require

require("lightning.pytorch", "maskmix.callbacks.MaskMixCallback")  # names the extra if missing

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature
from typing_extensions import Unpack

from maskmix.integration_options import IntegerOption, RealOption
from maskmix.torch import MixingTransform
from maskmix.torch.pipeline import MaskMixPipeline, PipelineOptions, derive_seed, soft_label_targets

__all__ = ["MaskMixCallback", "MaskMixEngine", "MaskMixMixin", "derive_seed", "soft_label_targets"]

_HOOK = "on_after_batch_transfer"

#: The former name of :class:`maskmix.torch.MaskMixPipeline` (kept for existing imports).
MaskMixEngine = MaskMixPipeline


def _training(trainer: pl.Trainer | None) -> bool:
    """True only while fit runs a training batch (not validation, sanity check, test or predict)."""
    return trainer is not None and trainer.training and not trainer.sanity_checking


def _start_fit(owner: str, trainer: pl.Trainer, pl_module: pl.LightningModule, pipeline: MaskMixPipeline) -> None:
    """At ``setup("fit")``: refuse what would leave batches unaugmented without a word, and start
    the streams from batch 0 unless this Trainer has trained already (a second ``fit`` continues
    Lightning's loops, and the streams with them: restarting would repeat the first fit's draws)."""
    if is_param_in_hook_signature(pl_module.training_step, "dataloader_iter", explicit=True):
        raise ValueError(
            f"{owner}: {type(pl_module).__name__}.training_step takes dataloader_iter, and Lightning then skips "
            "on_after_batch_transfer, where the batches are augmented: they would be trained on unchanged. "
            "Take (batch, batch_idx), or call a maskmix.torch.MaskMixPipeline on the batches yourself"
        )
    if trainer.global_step == 0 and trainer.current_epoch == 0:
        pipeline.restart()  # a checkpoint given as ckpt_path is restored after this
    _AUGMENTED_AT.pop(pipeline, None)


#: For each pipeline, Lightning's count of processed training batches when it augmented its last
#: batch (see :func:`_checkpointed_state`); forgotten at each fit's start.
_AUGMENTED_AT: weakref.WeakKeyDictionary[MaskMixPipeline, int] = weakref.WeakKeyDictionary()


def _processed_batches(trainer: pl.Trainer) -> int:
    """Lightning's count of the training batches processed (over its fits: it is never reset)."""
    progress: Any = trainer.fit_loop.epoch_loop.batch_progress.total  # counts `processed` (typed as its base)
    return int(progress.processed)


def _augment_training_batch(owner: str, trainer: pl.Trainer, pipeline: MaskMixPipeline, batch: Any) -> Any:
    """Augment a training batch (both integrations), noting where Lightning's progress stood."""
    _check_loaders(owner, trainer)
    processed = _processed_batches(trainer)
    batch = pipeline(batch, rank=trainer.global_rank, epoch=trainer.current_epoch)
    _AUGMENTED_AT[pipeline] = processed  # after the call: a batch that failed to augment was not counted
    return batch


def _checkpointed_state(trainer: pl.Trainer | None, pipeline: MaskMixPipeline) -> dict[str, Any]:
    """The streams' state as a checkpoint holds it.

    A checkpoint written inside a training batch (in ``training_step``, at an exception:
    ``OnExceptionCheckpoint``) resumes by running that batch again, which maskmix augmented and
    counted before Lightning counted it processed: the saved count leaves it out, so the resumed
    run augments it with the interrupted run's draws. Inside that batch means Lightning has
    processed no batch since maskmix augmented it (its ``processed`` count has not moved).
    """
    state = pipeline.state_dict()
    augmented_at = _AUGMENTED_AT.get(pipeline)
    if trainer is not None and augmented_at is not None and _processed_batches(trainer) == augmented_at:
        state["batches"] -= 1
    return state


def _check_loaders(owner: str, trainer: pl.Trainer) -> None:
    """Refuse several training dataloaders (a list or dict of them): each batch is then a list or
    dict of their batches, whose first one would be taken for the images and the others for labels
    (image-only batches of the others were left unaugmented)."""
    loaders = trainer.train_dataloader
    if isinstance(loaders, (Sequence, Mapping)) and not isinstance(loaders, torch.utils.data.DataLoader):
        raise ValueError(
            f"{owner}: fit got {len(loaders)} training dataloader(s) as a {type(loaders).__name__}; each batch is "
            "then a collection of their batches, which cannot be split into images and labels. Give one "
            "DataLoader (concatenate the datasets: torch.utils.data.ConcatDataset), or augment each part in "
            "training_step with a maskmix.torch.MaskMixPipeline"
        )


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
    only), from one training DataLoader (a list or dict of them is refused, as is a
    ``training_step`` that takes ``dataloader_iter``, which Lightning runs without the hook).
    Extra elements are kept; the batch's type is kept. Labels are class indices ``(B,)``
    (with ``num_classes``) or one-hot/soft ``(B, K)``; with ``mix`` or ``label_smoothing`` they come
    out soft float32 ``(B, K)``. Use :func:`soft_label_targets` for training metrics.

    **Randomness.** Before each batch the callback seeds a ``torch.Generator`` on the batch's
    device from ``(seed, global rank, batch number)`` and passes it to every maskmix transform for
    that call (:func:`maskmix.torch.using_generator`; their own ``generator`` is not used and
    nothing is written on them), so DDP ranks augment differently and a run is
    reproducible. The choice among several ``mix`` transforms is drawn on the host from a CPU
    generator seeded the same way: it never synchronises with the device.

    **Every new Trainer's fit starts a fresh stream.** The first ``fit`` of a Trainer starts at
    batch number 0 with ``seed`` (or, with ``seed=None``, ``torch.initial_seed()`` read when that
    fit starts), so a fit's augmentations do not depend on earlier fits with the same callback:
    the same seed gives the same augmentations. ``fit`` called again on a Trainer that has trained
    (e.g. with a larger ``max_epochs``) continues Lightning's loops and the streams with them (a
    fresh start would give the new epochs the first epochs' draws); a fit resumed from a
    checkpoint continues the checkpoint's streams.

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
            the global RNG, not from the per-rank generator). A single transform or a list. Typed
            ``torch.nn.Module`` so that LightningCLI (jsonargparse) checks each item's
            ``class_path``/``init_args`` and accepts ``--trainer.callbacks.transforms+=...``.
        mix: ``None`` (no mixing: labels are left as they are), a maskmix mixing transform
            (``RandomCutMix``, ``RandomMixup``, ``RandomCutThumbnail(mix_images=True)``) applied after
            ``transforms``, or a list of them of which one is chosen per batch.
        mix_weights: relative probabilities of the ``mix`` list (one per transform, finite,
            ``>= 0``, at least one positive: ``[0, 1]`` never uses the first); ``None`` chooses
            uniformly.
        num_classes: number of classes, passed to the mixing transforms for each call (required
            with class-index labels unless the mixing transforms have it); every value given must
            agree.
        label_smoothing: in ``[0, 1)``, passed to the mixing transforms for each call (applied
            before mixing, once); without ``mix`` the labels are only smoothed (soft rows). Must
            agree with theirs when both are non-zero.
        image_key: position of the images in tuple/list batches, or their key in dict batches. The
            default 0 finds ``"image"``/``"images"`` in a dict batch.
        label_key: position or key of the labels. The default 1 finds ``"labels"`` (any case), else
            the first key containing "label" in a dict batch (torchvision's rule).
        seed: seed of the augmentation streams (an integer in ``[0, 2**64)``); ``None`` uses
            ``torch.initial_seed()`` read when each fit starts (so ``lightning.seed_everything``
            makes runs reproducible).
        compile: False (eager), True to run the augmentation step compiled with ``torch.compile``
            (fewer, fused kernels per batch; the first batch pays the compilation, a changing last
            batch size one recompilation), or a dict of ``torch.compile`` arguments (e.g.
            ``{"mode": "reduce-overhead"}`` for CUDA graphs). See :class:`maskmix.torch.MaskMixPipeline`.
        schedules: None, or ``{transform: {parameter: schedule}}``: parameters that follow the
            training progress (:mod:`maskmix.schedules`), the transform given by class name,
            position in ``transforms + mix`` or itself. The values are set from
            ``trainer.current_epoch`` before each training batch (so they change at each epoch
            start, as in the papers' code) and reach the compiled step as tensor inputs (no
            recompilation per value). GridMask's ImageNet schedule:
            ``MaskMixCallback([RandomGridMask.from_paper("imagenet")], schedules={"RandomGridMask":
            {"augmentation_ratio": ramp(0.0, 0.8, epochs=240)}})``; timm's ``mixup_off_epoch``:
            ``schedules={"RandomCutMix": {"augmentation_ratio": switch_off(1.0, epoch=E)}}``.

    Integer arguments (``num_classes``, integer ``image_key`` / ``label_key``, ``seed``) accept any
    ``numbers.Integral`` except ``bool`` (NumPy integers included) and are stored as ``int``.

    The option rules (shared with the Keras ``MaskMixModel``, same types and messages) are those
    of :mod:`maskmix.integration_options`; the batch work is a :class:`maskmix.torch.MaskMixPipeline`
    (attribute ``pipeline``).

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
        transforms: Sequence[torch.nn.Module] | torch.nn.Module | None = None,
        mix: Sequence[MixingTransform] | MixingTransform | None = None,
        mix_weights: Sequence[RealOption] | None = None,
        num_classes: IntegerOption | None = None,
        label_smoothing: RealOption = 0.0,
        image_key: int | str = 0,
        label_key: int | str = 1,
        seed: IntegerOption | None = None,
        compile: bool | dict[str, Any] = False,
        schedules: Mapping[Any, Mapping[str, Callable[[float], float]]] | None = None,
    ) -> None:
        super().__init__()
        #: The batch pipeline (checks, batches, seeds, state).
        self.pipeline = MaskMixPipeline(
            transforms, mix, mix_weights, num_classes, label_smoothing, image_key, label_key, seed, compile,
            schedules, owner=type(self).__name__,
        )
        self._trainer: pl.Trainer | None = None
        self._hook: Callable[..., Any] | None = None
        self._hook_target: Any = None

    @property
    def engine(self) -> MaskMixPipeline:
        """The former name of :attr:`pipeline`."""
        return self.pipeline

    # Lightning's callback state conventions.

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints: the class name, transforms, mixes and seed argument.

        Two callbacks in one Trainer need different keys (Lightning refuses duplicates): give them
        different transforms or seeds.
        """
        pipeline = self.pipeline
        return self._generate_state_key(
            transforms=[type(t).__name__ for t in pipeline.transforms],
            mix=[type(m).__name__ for m in pipeline.mixes],
            seed=pipeline.seed_argument,
        )

    def state_dict(self) -> dict[str, Any]:
        """The seed and the number of augmented batches (see the class docstring)."""
        return _checkpointed_state(self._trainer, self.pipeline)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the streams of the checkpointed run."""
        self.pipeline.load_state_dict(state_dict)

    # Installation.

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Install the hook for ``fit`` and start the streams from batch 0 on a Trainer that has not
        trained yet (nothing for validate, test, predict)."""
        if stage != "fit":
            return
        if isinstance(pl_module, MaskMixMixin):
            raise ValueError(
                f"{type(self).__name__}: the LightningModule {type(pl_module).__name__} already augments batches "
                "through MaskMixMixin; use either the mixin or the callback"
            )
        self._remove_hook()
        self._trainer = trainer
        _start_fit(type(self).__name__, trainer, pl_module, self.pipeline)
        datamodule = trainer.datamodule  # type: ignore[attr-defined]  # set on the Trainer at fit time, not declared
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
        return _augment_training_batch(type(self).__name__, trainer, self.pipeline, batch)


class _BatchHook:
    """The ``on_after_batch_transfer`` maskmix installs on the module being fit: the previous hook,
    then ``augment``.

    A copy of the module made during fit (``pickle``, ``torch.save``, ``copy.deepcopy``: an EMA or
    SWA model, a checkpointed module) gets the hook that was there before (:meth:`__reduce__`):
    the callback augments the batches of the module it fits, and a local function here made every
    such copy fail ("Can't pickle local object") and kept the callback alive in it.
    """

    def __init__(self, previous: Callable[..., Any], previous_in_dict: bool, augment: Callable[[Any], Any]) -> None:
        self.previous = previous
        self.previous_in_dict = previous_in_dict
        self.augment = augment
        #: False once the callback has removed it: a hook another callback put back on the module
        #: (saved at its setup, restored at its teardown, after ours) then only calls the previous
        #: one, instead of augmenting every batch of the next fit a second time.
        self.active = True
        # Lightning's override check (``is_overridden``) unwraps ``__wrapped__``: point it at what
        # was there before any maskmix hook so that Lightning's choice of hook does not change.
        original = getattr(previous, "__maskmix_original__", previous)
        self.__maskmix_original__ = original
        self.__wrapped__ = original

    def __call__(self, batch: Any, dataloader_idx: int = 0) -> Any:
        batch = self.previous(batch, dataloader_idx)
        return self.augment(batch) if self.active else batch

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unchanged, (self.previous,))


def _unchanged(value: Any) -> Any:
    return value


def _install_hook(target: Any, augment: Callable[[Any], Any]) -> _BatchHook:
    """Replace ``target.on_after_batch_transfer`` by a hook that calls the previous one, then ``augment``."""
    hook = _BatchHook(getattr(target, _HOOK), _HOOK in vars(target), augment)
    setattr(target, _HOOK, hook)
    return hook


def _remove_hook(target: Any, hook: Any) -> None:
    """Undo :func:`_install_hook`, also when other maskmix hooks were installed on top of it; a hook
    that cannot be reached (under another library's wrapper) stays in place, inert."""
    hook.active = False
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
    the same pipeline as the callback), starts the streams of each fit from batch 0 in ``setup``
    (as the callback does: see :class:`MaskMixCallback` for seeds, fits and resuming) and stores
    its state in checkpoints through ``on_save_checkpoint`` / ``on_load_checkpoint`` (restored
    with ``ckpt_path``, after ``setup``), and checks in ``on_train_batch_start`` that each
    training batch went through the augmentations. If you override any of these five hooks, call
    ``super()`` in them: a training batch that skipped the augmentations raises a
    ``RuntimeError``, and a subclass that puts the mixin after ``LightningModule`` a ``TypeError``.
    When a LightningDataModule overrides ``on_after_batch_transfer``, Lightning calls the
    datamodule's hook instead of the module's, which would leave the batches unaugmented: ``fit``
    raises a ``ValueError``; use :class:`MaskMixCallback` then.

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
    #: The pipeline's batch count when the last training batch started (None outside a fit): the
    #: next one must have gone through the pipeline (see :meth:`on_train_batch_start`).
    _maskmix_batches_seen: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        if pl.LightningModule in mro and mro.index(pl.LightningModule) < mro.index(MaskMixMixin):
            # LightningModule's hooks do not call super(): the mixin's would never run, and every
            # batch would be trained on unaugmented.
            raise TypeError(
                f"MaskMixMixin: put MaskMixMixin before LightningModule in the bases of {cls.__name__} (e.g. "
                f"class {cls.__name__}(MaskMixMixin, L.LightningModule)); after it, its hooks never run and the "
                "batches would be trained on unaugmented"
            )

    def configure_maskmix(self, **options: Unpack[PipelineOptions]) -> None:
        """Set the augmentations; the arguments (keywords) and their meaning are those of
        :class:`MaskMixCallback`.

        Raises:
            TypeError, ValueError: for invalid arguments (messages name ``MaskMixMixin``).
        """
        self.maskmix_pipeline = MaskMixPipeline(**options, owner="MaskMixMixin")

    @property
    def maskmix_engine(self) -> MaskMixPipeline | None:
        """The former name of ``maskmix_pipeline`` (None before :meth:`configure_maskmix`)."""
        return getattr(self, "maskmix_pipeline", None)

    def _engine(self) -> MaskMixPipeline:
        engine = getattr(self, "maskmix_pipeline", None)
        if engine is None:
            raise ValueError(
                f"MaskMixMixin: {type(self).__name__} has no augmentations; call self.configure_maskmix(...) in "
                "__init__"
            )
        return engine

    def setup(self, stage: str) -> None:
        """Call ``super()``'s hook; for ``fit``, start the streams from batch 0 on a Trainer that
        has not trained yet (as :class:`MaskMixCallback`)."""
        super().setup(stage)  # type: ignore[misc]
        if stage != "fit":
            return
        trainer: pl.Trainer = self.trainer  # type: ignore[attr-defined]
        datamodule = trainer.datamodule  # type: ignore[attr-defined]  # set on the Trainer at fit time
        if datamodule is not None and is_overridden(_HOOK, datamodule, pl.LightningDataModule):
            raise ValueError(
                f"MaskMixMixin: the LightningDataModule {type(datamodule).__name__} overrides {_HOOK}, so Lightning "
                f"calls it instead of {type(self).__name__}'s and the batches would be trained on unaugmented; use "
                "MaskMixCallback (it augments after the datamodule's hook)"
            )
        _start_fit("MaskMixMixin", trainer, self, self._engine())  # type: ignore[arg-type]
        self._maskmix_batches_seen = self._engine().batches

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        """Call ``super()``'s hook, after checking that the batch went through the pipeline: an
        ``on_after_batch_transfer`` of the subclass that does not call ``super()`` would leave
        every batch unaugmented, silently (Lightning calls this hook after that one)."""
        engine, seen = self._engine(), self._maskmix_batches_seen
        if seen is not None and engine.batches == seen:
            raise RuntimeError(
                f"MaskMixMixin: the training batch did not go through the augmentations: "
                f"{type(self).__name__}.on_after_batch_transfer must call super().on_after_batch_transfer(batch, "
                "dataloader_idx) and return (or transform) its result"
            )
        self._maskmix_batches_seen = engine.batches
        return super().on_train_batch_start(batch, batch_idx)  # type: ignore[misc]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Call ``super()``'s hook, then augment the batch if it is a training batch."""
        batch = super().on_after_batch_transfer(batch, dataloader_idx)  # type: ignore[misc]
        trainer = getattr(self, "_trainer", None)
        if not _training(trainer):
            return batch
        assert trainer is not None
        return _augment_training_batch("MaskMixMixin", trainer, self._engine(), batch)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the augmentation state (seed, batches) under ``checkpoint["maskmix"]``."""
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        checkpoint[self._maskmix_checkpoint_key] = _checkpointed_state(getattr(self, "_trainer", None),
                                                                       self._engine())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the augmentation state saved by :meth:`on_save_checkpoint`."""
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        state = checkpoint.get(self._maskmix_checkpoint_key)
        if state is not None:
            self._engine().load_state_dict(state)
            if self._maskmix_batches_seen is not None:
                self._maskmix_batches_seen = self._engine().batches
