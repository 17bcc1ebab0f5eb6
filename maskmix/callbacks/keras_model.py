"""``MaskMixModel``: a ``keras.Model`` whose ``train_step`` augments and mixes the batch (design §Layers, integrations).

Importing this module imports keras (and its backend), never torch (unless torch is the Keras
backend) nor Lightning.

How a training step works
-------------------------
``train_step`` (the backend's own, called by ``fit``) is overridden to transform the batch and
then delegate to Keras' ``train_step``:

1. the images ``x`` go through every layer of ``augmentations`` in order (``training=True``);
2. when ``mix`` is set or ``label_smoothing > 0``, the labels become soft ``(B, K)`` targets
   (class indices are one-hot encoded with ``num_classes``, then smoothed), and one mixing layer
   (chosen per step with the weights ``mix_weights``) mixes images and targets;
3. Keras' ``train_step`` runs on the transformed batch. :meth:`MaskMixModel.compute_loss`
   computes the loss on the soft targets; the compiled metrics receive labels of the type and
   shape the user gave (see ``metric_labels``).

``evaluate``, ``predict`` and ``model(x)`` are untouched: they see clean data.

The batch work is :class:`maskmix.keras.MaskMixPipeline` (shared option rules:
:mod:`maskmix.integration_options`); the soft-target losses are in :mod:`._keras_losses` and
Keras' functional-model and ``clone_model`` workarounds in :mod:`._keras_functional`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# ruff: noqa: E402  (the imports below follow the optional-dependency check)
from maskmix._optional import require

require("keras", "maskmix.callbacks.MaskMixModel")  # names the extra if missing

import keras
import numpy as np

from maskmix import integration_options as options_mod
from maskmix import schedules as schedules_mod
from maskmix._checks import ROW_SUM_TOLERANCE
from maskmix.geometry import INT_DTYPES, pixel_layout
from maskmix.integration_options import IntegerOption, RealOption
from maskmix.keras import MixingLayer, _compat
from maskmix.keras._compat import Functional
from maskmix.keras.pipeline import MaskMixPipeline, pixel_changer_of, refuse_coordinate_targets
from maskmix.keras.pipeline import walk as pipeline_walk

from . import _keras_functional as graph
from ._keras_losses import as_loss_object, dense_counterpart, single

__all__ = ["FunctionalMaskMixModel", "MaskMixModel"]

Tensor = Any

_NAME = "MaskMixModel"
_METRIC_LABELS = ("dominant", "original")
_CONFIG_KEYS = (
    "augmentations", "mix", "mix_weights", "num_classes", "label_smoothing",
    "metric_labels", "mixed_loss", "seed", "schedules",
)


def _checked_class_weight(class_weight: Any) -> dict[int, float]:
    """``fit``'s ``class_weight``, checked: a dict of class indices ``>= 0`` to finite weights ``>= 0``."""
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"{_NAME}: class_weight must be a dict {{class index: weight}}; got {class_weight!r}")
    out: dict[int, float] = {}
    for key, value in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"{_NAME}: class_weight keys must be class indices (integers >= 0); got {key!r}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) or not (
                math.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(f"{_NAME}: class_weight[{key}] must be a finite number >= 0; got {value!r}")
        out[int(key)] = float(value)
    return out


#: Why mix and label smoothing refuse several outputs (in fit, and in the step for the labels).
_ONE_OUTPUT = "mix and label_smoothing need a single label tensor (one output)"


class _StepContext:
    """Per-step values handed from :meth:`MaskMixModel.train_step` to ``compute_loss`` (trace time)."""

    __slots__ = ("building", "integer_labels", "targets")

    def __init__(self) -> None:
        self.targets: Tensor | None = None
        self.integer_labels = False
        #: Inside Keras' symbolic build of the compiled loss and metrics (JAX, torch).
        self.building = False


@keras.saving.register_keras_serializable(package="maskmix")
class MaskMixModel(keras.Model):
    """A ``keras.Model`` whose training step augments and mixes each batch; inference sees clean data.

    Use it like ``keras.Model``: subclass it (define layers in ``__init__`` and ``call``, pass the
    options below to ``super().__init__``), build it functionally with
    ``MaskMixModel(inputs, outputs, augmentations=[...], mix=...)``, or combine both (a subclass
    whose ``__init__`` builds a graph and calls ``super().__init__(inputs, outputs, **options)``;
    as in Keras, that subclass then derives from ``Functional``, ``MaskMixModel`` itself does not).
    Then ``compile`` and ``fit`` as usual.

    In ``fit`` (and ``train_on_batch``) every step runs the ``augmentations`` in order on the
    images, then (if ``mix`` is set) one mixing layer on images and labels, and computes the loss
    on the resulting soft targets. ``evaluate``, ``predict``, ``test_step``, ``predict_step`` and
    ``model(x)`` are inherited unchanged: they see clean data.

    Losses (see the module docstring): the compiled loss is applied to the soft ``(B, K)``
    targets; a sparse cross-entropy (object, function or string) is replaced during training steps
    by ``CategoricalCrossentropy`` with the same ``from_logits`` and ``reduction``, which equals
    ``(1 - f) * loss(y) + f * loss(y_partner)`` per image. Regularisation losses are added once.

    Metrics: the compiled metrics get labels of the type and shape given to ``fit`` (so
    ``SparseCategoricalAccuracy`` gets class indices and ``CategoricalAccuracy`` one-hot rows),
    compared with the predictions on the augmented images. With ``metric_labels="dominant"``
    (default) the labels are the class with the largest weight in the mixed target (its index for
    integer labels, its one-hot row for float labels; ties go to the lower class index), so an
    image that is mostly its partner counts as the partner's class; a single column of float
    labels (binary, sigmoid output) gives ``1.0`` where the mixed target is ``>= 0.5``, else
    ``0.0``. With ``"original"`` they are the labels as given. Labels wrapped in a one-item list
    or dict (``fit(x, [y])``) keep that structure.

    Args:
        *args: ``inputs, outputs`` for the functional API; nothing when subclassing.
        augmentations: a Keras layer or a list of them applied in order to the images of every
            training batch, each called with ``training=True``: maskmix masking/pasting layers
            (``RandomCutout``, ``RandomErasing``, ``RandomHideAndSeek``, ``RandomGridMask``, ...)
            or any per-image Keras layer (e.g. ``keras.layers.RandomFlip``). Mixing layers belong
            in ``mix``; layers built with ``return_labels=True`` are rejected.
        mix: None, a maskmix mixing layer (``RandomCutMix``, ``RandomMixup``,
            ``RandomCutThumbnail(mix_images=True)``, ...), or a list of them of which one is
            chosen per training step. Every candidate is evaluated and the chosen one is selected
            with ``where`` (graph- and XLA-friendly, no host synchronisation), so a list of
            ``n`` layers costs ``n`` mixing passes per step.
        mix_weights: None (uniform) or one finite weight ``>= 0`` per ``mix`` layer, at least one
            positive: the probabilities (after normalisation) of choosing each layer at a step
            (a layer of weight 0 never runs).
        num_classes: number of classes, ``>= 2``; required with class-index labels unless the
            mixing layers set their own ``num_classes`` (all given values must agree, else
            ValueError). One class is refused, since ``one_hot`` would invert binary labels: for
            one sigmoid output give float ``(B, 1)`` labels of 0.0/1.0 and leave it unset.
            NumPy integers are accepted (``y.max() + 1``), as are NumPy numbers for
            ``label_smoothing``, ``mix_weights`` and ``seed``; they are stored as Python numbers.
        label_smoothing: in ``[0, 1)``, applied once to the one-hot/soft targets before mixing
            (a mixing layer's own non-zero ``label_smoothing`` must be the same value; the loss's
            own smoothing comes in addition): ``y * (1 - s) + s / K``,
            and ``y * (1 - s) + s / 2`` for a single column of binary labels (Keras' binary
            convention: 0/1 become ``s/2``/``1 - s/2``). Default 0.
        metric_labels: ``"dominant"`` (default) or ``"original"``, see Metrics above.
        mixed_loss: None, or a loss (name, function or ``keras.losses.Loss``) applied to the soft
            targets in training steps instead of the compiled loss (e.g. the soft version of a
            custom sparse loss). The compiled loss weight still applies.
        seed: None or an integer in ``[0, 2**64)``, seeds the choice among the ``mix`` layers (each
            maskmix layer keeps its own ``seed``).
        schedules: None, or ``{layer: {parameter: schedule}}``: parameters that follow the
            training progress (:mod:`maskmix.schedules`), the layer given by class name, position
            in ``augmentations + mix`` or itself. ``fit`` sets each value at every epoch start
            (from the absolute epoch, ``initial_epoch`` included) in a non-trainable variable of
            the model that the training step reads, so ``jit_compile=True`` and JAX see every
            new value. GridMask's ImageNet schedule: ``augmentations=[RandomGridMask.from_paper(
            "imagenet")], schedules={"RandomGridMask": {"augmentation_ratio": ramp(0.0, 0.8,
            epochs=240)}}``; timm's ``mixup_off_epoch``: ``schedules={"RandomCutMix":
            {"augmentation_ratio": switch_off(1.0, epoch=E)}}``. The built-in schedules are
            saved with the model; a custom callable cannot be (``get_config`` raises). Setting
            ``layer.augmentation_ratio`` after a compiled step used the layer raises a
            ``ValueError`` instead of being silently ignored: schedule it.
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ``dtype``, ...). Any other
            keyword (e.g. a misspelled option) raises a TypeError in the functional form too (Keras'
            ``Functional`` would ignore it silently).

    The option rules (shared with the Lightning ``MaskMixCallback``: same exception types and
    messages) are those of :mod:`maskmix.integration_options`; the batch work is a
    :class:`maskmix.keras.MaskMixPipeline` (attribute ``maskmix_pipeline``).

    Labels given to ``fit``: class indices ``(B,)`` or ``(B, 1)`` of an integer dtype, or
    one-hot/soft rows ``(B, K)`` of a float dtype (integer one-hot rows, ``K > 1``, count as
    one-hot rows: metrics get integer one-hot rows of the dominant class). The model has a single image input and a
    single output when ``mix`` or ``label_smoothing`` is used (augmentation alone works with
    any output structure). Sample weights apply to the rows of the mixed batch (a row of weight 0
    is still a partner of other rows); with soft targets, ``fit``'s ``class_weight`` weighs each
    class's share of a row, ``-sum_k w_k t_k log p_k``, where Keras would give the whole mixed row
    the weight of its original class. Segmentation masks given inside a one-item list or dict
    (``fit(x, [masks])``) follow the pixels as bare ones do; among several targets, per-pixel ones
    are refused where a layer moves pixels. Class indices
    outside ``[0, num_classes)`` and soft rows with a value outside ``[0, 1]`` raise a
    ``ValueError`` in an eager step on the CPU (``run_eagerly=True``); a compiled step does not
    read them back: their target rows are NaN, as in the mixing layers, and the loss shows NaN.

    Images given to ``fit``: a rank-4 batch, ``(B, H, W, C)`` or channels-first ``(B, C, H, W)``.
    The image layers read rank 3 as one image, so a greyscale ``(B, H, W)`` batch raises a
    ``ValueError`` in the training step (add the channel axis, ``x[..., None]``); ``evaluate``
    and ``predict`` are not affected.

    Backends: TensorFlow (also ``jit_compile=True`` and ``tf.distribute`` strategies), torch and
    JAX. On JAX the random state of the layers flows through the stateless training state.

    Saving: ``model.save("m.keras")`` stores the options (the layers by their config, seeds
    included) with the model; ``keras.saving.load_model`` restores them. Keras does not save the
    state of ``keras.random.SeedGenerator``s, so a loaded model restarts the layers' random
    streams from their seeds. A subclass with constructor arguments of its own adds them to
    ``get_config`` as usual in Keras.

    Cloning: ``keras.models.clone_model`` of a functional ``MaskMixModel`` keeps every option;
    the clone's ``augmentations``/``mix`` layers are new layers built from the originals'
    configs (seeds included). A functional subclass whose constructor does not take
    ``inputs, outputs`` cannot be cloned that way (Keras would return a plain ``Functional``
    model without the options): ``clone_model`` raises a TypeError; use
    ``type(model).from_config(model.get_config())``.

    Distribution: under a ``tf.distribute`` strategy each replica augments its own part of the
    global batch and partners are drawn within it (a part of one image is not mixed: keep at least
    two images per replica). The layers' seed generators are mirrored (the same state on every
    replica), so each replica folds its replica id into its seeds: the replicas draw independently,
    as the torch pipeline's ranks do. Under JAX's ``keras.distribution.DataParallel`` the step sees
    the global batch, as on one device.

    Example:
        >>> import keras, numpy as np
        >>> from maskmix.callbacks import MaskMixModel
        >>> from maskmix.keras import RandomCutMix, RandomErasing, RandomMixup
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
        >>> model = MaskMixModel(
        ...     inputs, outputs,
        ...     augmentations=[RandomErasing(seed=0)],
        ...     mix=[RandomCutMix(seed=1), RandomMixup(alpha=0.2, seed=2)],
        ...     num_classes=3, seed=0,
        ... )
        >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
        >>> x, y = np.random.rand(16, 8, 8, 1).astype("float32"), np.arange(16) % 3
        >>> history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['loss', 'sparse_categorical_accuracy']
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> MaskMixModel:
        if graph.is_functional_call(args, kwargs) and not issubclass(cls, Functional):
            # Keras would splice `Functional` into the bases of `cls` itself (and of every base up
            # to `keras.Model`), which would turn every later subclass of MaskMixModel into a
            # broken functional model. A dedicated subclass keeps the hierarchy intact.
            return super().__new__(graph.functional_class(cls), *args, **kwargs)
        return super().__new__(cls, *args, **kwargs)

    def __init__(
        self,
        *args: Any,
        augmentations: keras.layers.Layer | Sequence[keras.layers.Layer] | None = None,
        mix: MixingLayer | Sequence[MixingLayer] | None = None,
        mix_weights: Sequence[RealOption] | None = None,
        num_classes: IntegerOption | None = None,
        label_smoothing: RealOption = 0.0,
        metric_labels: str = "dominant",
        mixed_loss: Any = None,
        seed: IntegerOption | None = None,
        schedules: Mapping[Any, Mapping[str, Callable[[float], float]]] | None = None,
        **kwargs: Any,
    ) -> None:
        functional = graph.is_functional_call(args, kwargs)
        if functional:
            graph.check_keywords(_NAME, kwargs, _CONFIG_KEYS)
            options = (augmentations, mix, mix_weights, num_classes, label_smoothing, metric_labels, mixed_loss, seed,
                       schedules)
            if options == (None, None, None, None, 0.0, "dominant", None, None, None):
                source = graph.take_clone_source(graph.functional_outputs(args, kwargs))
                if source is not None:  # `keras.models.clone_model(source)`: same options, fresh layers
                    cloned = _options_from_config(_options_config(source))
                    augmentations, mix, mix_weights = cloned["augmentations"], cloned["mix"], cloned["mix_weights"]
                    num_classes, label_smoothing = cloned["num_classes"], cloned["label_smoothing"]
                    metric_labels, mixed_loss, seed = cloned["metric_labels"], cloned["mixed_loss"], cloned["seed"]
                    schedules = cloned.get("schedules")
        pipeline = MaskMixPipeline(
            augmentations, mix, mix_weights, num_classes, label_smoothing, seed, schedules, owner=_NAME,
        )
        if metric_labels not in _METRIC_LABELS:
            raise ValueError(f"{_NAME}: metric_labels must be 'dominant' or 'original'; got {metric_labels!r}")
        if mixed_loss is not None:
            try:
                as_loss_object(mixed_loss)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{_NAME}: mixed_loss must be a Keras loss; got {mixed_loss!r} ({error})") from None

        if functional:
            if not isinstance(self, Functional):
                # The functional-subclass pattern (`super().__init__(inputs, outputs, ...)` in a
                # subclass' __init__): __new__ saw no graph arguments. Keras' own answer.
                graph.inject_functional(type(self), MaskMixModel)
            # `keras.Model.__init__` would inject `Functional` into this class' bases (see __new__);
            # `Functional.__init__` reaches `keras.Model.__init__` without the graph arguments.
            Functional.__init__(self, *args, **kwargs)
        else:
            super().__init__(*args, **kwargs)

        #: The batch pipeline (:class:`maskmix.keras.MaskMixPipeline`); its layers and seed
        #: generator are also attributes of the model, so that Keras tracks them.
        self.maskmix_pipeline = pipeline
        self.augmentations = pipeline.augmentations
        self.mix_layers = pipeline.mix_layers
        self.mix_weights = pipeline.mix_weights
        self.num_classes = pipeline.num_classes
        self.label_smoothing = pipeline.label_smoothing
        self.metric_labels = metric_labels
        self.mixed_loss = mixed_loss
        self.seed = pipeline.seed
        self._maskmix_seed_generator = pipeline.seed_generator
        # Tracked, so that they are state of the model (JAX's stateless steps read them there).
        self._maskmix_schedule_variables = pipeline.schedule_variables
        self._maskmix_step = _StepContext()
        #: ``fit``'s class_weight as ``{class: weight}`` while it applies to soft targets, else None.
        self._maskmix_class_weight: dict[int, float] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in options_mod.PIPELINE_OPTIONS and name in self.__dict__:
            options_mod.refuse_later_option(_NAME, name, value, self.__dict__[name])
        super().__setattr__(name, value)

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """``keras.Model.fit``; with ``schedules``, a callback first sets their values at each epoch
        start; with soft targets, ``class_weight`` weighs each class's share of the mixed rows
        (see the class docstring) instead of Keras' weight of the row's original class."""
        position = 9  # fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, ..., class_weight)
        if len(args) > position:
            class_weight, args = args[position], (*args[:position], None, *args[position + 1:])
        else:
            class_weight = kwargs.pop("class_weight", None)
        keras_class_weight = self._take_class_weight(class_weight)
        if keras_class_weight is not None:
            kwargs["class_weight"] = keras_class_weight
        if not self.maskmix_pipeline.schedules:
            return super().fit(*args, **kwargs)
        position = 5  # fit(x, y, batch_size, epochs, verbose, callbacks, ...)
        if len(args) > position:
            args = (*args[:position], _with_schedules(self, args[position]), *args[position + 1:])
        else:
            kwargs["callbacks"] = _with_schedules(self, kwargs.get("callbacks"))
        return super().fit(*args, **kwargs)

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: Any = None,
                       return_dict: bool = False) -> Any:
        """``keras.Model.train_on_batch``, ``class_weight`` applied as ``fit`` applies it (with soft
        targets, to each class's share of the mixed rows)."""
        return super().train_on_batch(x, y, sample_weight=sample_weight,
                                      class_weight=self._take_class_weight(class_weight), return_dict=return_dict)

    def _take_class_weight(self, class_weight: Any) -> Any:
        """What Keras gets of ``class_weight`` (None where maskmix applies it): with soft targets it
        weighs each class's share of a row in the training step (Keras would weigh the whole row
        by its original class, the partner's share included). Called by ``fit`` and
        ``train_on_batch`` before any step, it also refuses there what the step would refuse."""
        if not self.uses_soft_targets:
            return class_weight  # unchanged labels: Keras' own rule is right
        outputs = getattr(self, "outputs", None) or ()  # a functional model's (a subclass may have none)
        if len(outputs) > 1:
            # The step refuses their labels too; here first: on JAX an error inside the step leaves
            # the model without its weights.
            raise TypeError(f"{_NAME}: {_ONE_OUTPUT}; the model has {len(outputs)} outputs")
        weights = None if class_weight is None else _checked_class_weight(class_weight)
        outside = sorted(k for k in weights or () if self.num_classes is not None and k >= self.num_classes)
        if outside:
            # Also refused inside the step (where the targets' width is known); here first, because an
            # error inside a JAX step leaves the model without its weights (Keras purges them for the
            # epoch), and a corrected fit could not continue the trained model.
            raise ValueError(f"{_NAME}: class_weight has classes {outside} but num_classes={self.num_classes}")
        if weights != self._maskmix_class_weight:
            self.train_function = None  # the weights are constants of the traced step: trace again
            self._maskmix_class_weight = weights
        return None

    def _class_weighted(self, targets: Tensor | None, sample_weight: Any) -> tuple[Tensor | None, Any]:
        """Soft targets and sample weights under ``fit``'s ``class_weight``: each class's share of a
        row weighed by its class weight, ``-sum_k w_k t_k log p_k`` (PyTorch's ``cross_entropy``
        with ``weight=`` and probability targets), written as the row weight ``sum_k w_k t_k`` (a
        sample weight) times the loss on the targets ``w * t / sum_k w_k t_k``. One-hot rows get
        their class's weight, as Keras gives them."""
        weights = self._maskmix_class_weight
        if weights is None:
            return targets, sample_weight
        if targets is None:
            # Segmentation masks (they follow the mixed pixels and stay the target) or no labels: the
            # weights, kept from Keras for soft targets, would have been dropped without a word.
            raise ValueError(
                f"{_NAME}: class_weight weighs the classes of label rows; the targets of this batch are "
                "segmentation masks (or absent), which it cannot weigh. Give per-pixel weights as sample_weight "
                "(e.g. a weight map built from the masks) instead"
            )
        ops = keras.ops
        classes = targets.shape[-1]
        if classes is None:
            raise ValueError(f"{_NAME}: class_weight needs the number of classes of the targets; set num_classes")
        outside = sorted(k for k in weights if k >= classes)
        if outside:
            raise ValueError(f"{_NAME}: class_weight has classes {outside} but the targets have {classes} classes")
        vector = np.array([weights.get(k, 1.0) for k in range(classes)], dtype=keras.backend.standardize_dtype(
            targets.dtype))
        weighted = targets * ops.convert_to_tensor(vector)
        row = ops.sum(weighted, axis=-1)
        targets = weighted / ops.expand_dims(ops.where(row > 0, row, 1.0), -1)
        if sample_weight is None:
            return targets, row
        sample_weight = ops.convert_to_tensor(sample_weight)
        row = ops.reshape(row, (-1,) + (1,) * (len(sample_weight.shape) - 1))  # (B,) or (B, 1) weights
        return targets, ops.cast(sample_weight, row.dtype) * row

    # ----------------------------------------------------------------------------------------
    # Augmentation of a training batch.
    # ----------------------------------------------------------------------------------------

    @property
    def uses_soft_targets(self) -> bool:
        """Whether training steps replace the labels by soft targets (``mix`` or label smoothing)."""
        return self.maskmix_pipeline.makes_soft_targets

    def augment_batch(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Augment and mix one training batch: returns ``(images, metric_labels, soft_targets)``.

        ``images`` have gone through ``augmentations`` and the chosen ``mix`` layer;
        ``soft_targets`` is the float ``(B, K)`` mixed target (None when neither ``mix`` nor
        ``label_smoothing`` is set: the labels are then unchanged); ``metric_labels`` has the
        type and shape of ``y`` (see ``metric_labels``). Called by ``train_step`` inside the
        compiled step; it can be called directly to look at what the model trains on.

        Args:
            x: the images of the batch (one tensor).
            y: the labels (class indices ``(B,)``/``(B, 1)`` or float ``(B, K)``), or None.
        """
        dense = _images_and_masks(x, y)
        if dense is not None:
            images, masks = self.maskmix_pipeline.augment_dense(*dense)
            return images, masks, None
        structure = x
        x = _only_tensor(x, TypeError, "augmentations and mix need a single image input; got inputs with {} tensors")
        # Nested labels (`fit(x, [masks])`, `{"seg": masks, "cls": y}` for several outputs) are
        # checked leaf by leaf: a mask or per-pixel leaf must follow the pixels like a bare one.
        leaves = keras.tree.flatten(y) if y is not None and keras.tree.is_nested(y) else [y]
        if len(leaves) == 1 and self._is_mask_target(x, leaves[0]):
            # fit(images, masks): the masks follow the images through the layers and stay the target.
            images, masks = self.maskmix_pipeline.augment_dense(x, leaves[0])
            return self._repack(structure, images), self._repack(y, masks), None
        if y is None or not self.uses_soft_targets:
            self._refuse_coordinate_targets(y)
            for leaf in leaves:
                self._refuse_unmoved_pixel_targets(x, leaf)
            x, _, _ = self.maskmix_pipeline.augment(x)
            return self._repack(structure, x), y, None
        # Nested labels: e.g. `fit(x, [y])` or `{"head": y}` for a single-output model.
        labels = _only_tensor(y, TypeError, _ONE_OUTPUT + "; got labels with {} tensors")
        x, soft, integer = self.maskmix_pipeline.augment(x, labels)
        self._maskmix_step.integer_labels = integer
        if self.metric_labels == "original":
            return self._repack(structure, x), y, soft
        return self._repack(structure, x), self._repack(y, self._labels_for_metrics(labels, soft)), soft

    def _is_mask_target(self, x: Tensor, y: Any) -> bool:
        """Whether the labels ``y`` are segmentation masks of the images ``x``: integer (or bool)
        ``(B, H, W, 1)`` (channels-first ``(B, 1, H, W)``) with the images' height and width. Masks
        without their channel axis, ``(B, H, W)``, are refused: they would not be recognised."""
        if y is None or keras.tree.is_nested(y) or not (hasattr(y, "shape") and hasattr(y, "dtype")):
            return False
        dtype = keras.backend.standardize_dtype(y.dtype)
        shape, image = tuple(y.shape), tuple(x.shape)
        if (dtype != "bool" and dtype not in INT_DTYPES) or len(image) != 4:
            return False
        first = self._channels_first()
        size = image[2:4] if first else image[1:3]
        if len(shape) == 3 and shape[1:3] == size:
            raise ValueError(
                f"{_NAME}: labels of shape {shape} look like segmentation masks of the images {image}; give "
                "them a channel axis, (B, H, W, 1) (or (B, 1, H, W) channels-first), so that they follow the "
                "augmented pixels"
            )
        if len(shape) != 4:
            return False
        return (shape[2:4] if first else shape[1:3]) == size and shape[1 if first else 3] == 1

    def _refuse_coordinate_targets(self, y: Any) -> None:
        """Refuse nested targets holding boxes or keypoints (under a key containing "box" or
        "keypoint": Keras' ``{"boxes", "labels"}``, detection heads' dicts) when a layer moves
        pixels: they would stay where they were, as the layers refuse ``bounding_boxes``."""
        if y is not None and keras.tree.is_nested(y):
            refuse_coordinate_targets(_NAME, "targets", y, self.augmentations)

    def _refuse_unmoved_pixel_targets(self, x: Tensor, y: Any) -> None:
        """Refuse labels laid out like the images (per-pixel targets that :meth:`_is_mask_target`
        did not take for masks: float maps, several channels), or of rank 4 at another size (masks
        or heatmaps at another resolution, a grid of targets), when a layer would change the
        pixels: one that moves pixels would leave them misaligned, one with ``mask_fill`` would not
        mark them. Float labels of rank 3 at another size (one-hot sequences) pass; integer ones
        (class maps at a lower resolution) do not."""
        if y is None or keras.tree.is_nested(y) or not hasattr(y, "shape"):
            return
        shape, image = tuple(y.shape), tuple(x.shape)
        integer = hasattr(y, "dtype") and keras.backend.standardize_dtype(y.dtype) in (*INT_DTYPES, "bool")
        layout = pixel_layout(image, shape, self._channels_first(), integer=integer)
        changer = pixel_changer_of(self.augmentations) if layout is not None else None
        if changer is not None:
            layer, what = changer
            dtype = keras.backend.standardize_dtype(y.dtype)
            if layout == "grid":
                # (B, h, w, c) at another size: masks or heatmaps at another resolution, a grid of
                # targets; nothing can make them follow the pixels.
                raise ValueError(
                    f"{_NAME}: labels of shape {shape} ({dtype}) are per-pixel or grid targets at another size "
                    f"than the images {image}, but {type(layer).__name__} {what} and they would not follow it; "
                    "resize segmentation masks to the images' height and width, (B, H, W, 1) ((B, 1, H, W) "
                    "channels-first), or leave the layer out"
                )
            raise ValueError(
                f"{_NAME}: labels of shape {shape} ({dtype}) are laid out like the images {image}, but "
                f"{type(layer).__name__} {what} and only "
                "segmentation masks follow it: integer (B, H, W, 1) masks ((B, 1, H, W) channels-first) "
                "or a dataset of {'images', 'segmentation_masks'} dicts. Cast float class maps to class "
                "indices; float per-pixel targets (probabilities, regression maps) are not supported"
            )

    def _channels_first(self) -> bool:
        """The layout of the image layers (they agree), else Keras' image data format."""
        return self.maskmix_pipeline.channels_first

    @staticmethod
    def _repack(structure: Any, x: Tensor) -> Any:
        """``x`` in the input's structure (a one-tensor dict/list stays a dict/list)."""
        return keras.tree.pack_sequence_as(structure, [x]) if keras.tree.is_nested(structure) else x

    def _labels_for_metrics(self, y: Tensor, soft: Tensor) -> Tensor:
        """The dominant class of each mixed target, in the type and shape of the labels ``y`` (for
        multi-hot rows, each class whose mixed weight is at least 0.5)."""
        if self.metric_labels == "original":
            return y
        ops = keras.ops
        y = ops.convert_to_tensor(y)
        dtype = keras.backend.standardize_dtype(y.dtype)
        if dtype in INT_DTYPES and (len(y.shape) != 2 or y.shape[-1] == 1):
            return ops.reshape(ops.cast(ops.argmax(soft, axis=-1), dtype), ops.shape(y))
        # One column of binary labels (a sigmoid output): the probability of class 1, rounded (ties,
        # 0.5, go to 1); an argmax over one column would always be class 0, whose one-hot row is 1.
        binary = ops.cast(ops.greater_equal(soft, 0.5), dtype)
        if soft.shape[-1] == 1:
            return binary
        one_hot = ops.one_hot(ops.argmax(soft, axis=-1), ops.shape(soft)[-1], dtype=dtype)
        # Multi-hot rows (several labels per image, not summing to 1): each class rounded, as the
        # single binary column; the dominant class alone would be the wrong labels for their metrics.
        multi_hot = ops.greater(ops.abs(ops.sum(ops.cast(y, "float32"), axis=-1, keepdims=True) - 1.0),
                                ROW_SUM_TOLERANCE)
        dominant = ops.where(multi_hot, binary, one_hot)
        if soft.shape[-1] is None:  # unknown until run time
            return ops.where(ops.equal(ops.shape(soft)[-1], 1), binary, dominant)
        return dominant

    # ----------------------------------------------------------------------------------------
    # Training step (per backend) and loss.
    # ----------------------------------------------------------------------------------------

    def train_step(self, *args: Any) -> Any:
        """Augment and mix the batch (training only), then run Keras' ``train_step`` on it.

        The signature follows the backend: ``train_step(data)`` on TensorFlow and torch,
        ``train_step(state, data)`` on JAX (the layers' random state is read from and written to
        ``state``'s non-trainable variables).
        """
        if keras.backend.backend() == "jax":
            state, data = args
            return self._jax_train_step(state, data)
        (data,) = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y, targets = self.augment_batch(x, y)
        targets, sample_weight = self._class_weighted(targets, sample_weight)
        self._maskmix_step.targets = targets
        try:
            return super().train_step(keras.utils.pack_x_y_sample_weight(x, y, sample_weight))
        finally:
            self._maskmix_step.targets = None

    def test_step(self, *args: Any) -> Any:
        """Keras' ``test_step`` (no augmentation), a batch of ``{"images", "segmentation_masks"}``
        dicts read as ``(images, masks)`` as in training: the model's input is the images."""
        *state, data = args
        return super().test_step(*state, _dense_dict_as_pair(data))

    def predict_step(self, *args: Any) -> Any:
        """Keras' ``predict_step``, a batch of ``{"images", "segmentation_masks"}`` dicts read as
        its images (see :meth:`test_step`)."""
        *state, data = args
        return super().predict_step(*state, _dense_dict_as_pair(data))

    def _symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> Any:
        # Keras builds the compiled loss and metrics from the x and y of a first batch (JAX and
        # torch; TensorFlow under a distribution strategy): a {"images", "segmentation_masks"} dict
        # is (images, masks) there too, as in the steps, or the loss is built for labels y = None.
        if data_batch is not None:
            data_batch = _dense_dict_as_pair(data_batch)
        elif iterator is not None:
            iterator = _compat.converted_epoch_batches(iterator, _dense_dict_as_pair)
        self._maskmix_step.building = True
        try:
            return super()._symbolic_build(iterator=iterator, data_batch=data_batch)
        finally:
            self._maskmix_step.building = False

    def _loss_build_targets(self, y: Any, y_pred: Any) -> Any:
        """What the compiled loss is built for in Keras' symbolic build: the soft ``(B, K)`` targets
        that training steps give it where they give it soft targets (the compiled loss itself meets
        them: not a sparse one, which gets its dense counterpart), else ``y``. Keras built it from
        the labels: class indices met a dense loss there, and JAX and torch fits failed before
        their first step (TensorFlow builds it in the first step, from the soft targets)."""
        integer = getattr(y, "dtype", None) is not None and "int" in keras.backend.standardize_dtype(y.dtype)
        # The shape comes first: predictions that are not (B, K) rows (per-pixel ones, whose mask
        # targets the steps keep as they are) meet no soft targets, so the loss needs no soft-label
        # counterpart; asked for one, SparseCategoricalCrossentropy(ignore_class=255) made JAX and
        # torch fits of segmentation masks fail where TensorFlow's trained.
        if (not self.uses_soft_targets or keras.tree.is_nested(y) or keras.tree.is_nested(y_pred)
                or len(getattr(y_pred, "shape", ())) != 2 or self._training_loss(integer)[0] is not None):
            return y
        return keras.ops.zeros_like(y_pred, dtype="float32")  # only its shape and dtype are read

    def _jax_train_step(self, state: tuple[Any, ...], data: Any) -> Any:
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        mapping = list(zip(self.trainable_variables, trainable, strict=True))
        mapping += list(zip(self.non_trainable_variables, non_trainable, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            x, y, targets = self.augment_batch(x, y)
        updated = []
        for variable, value in zip(self.non_trainable_variables, non_trainable, strict=True):
            new = scope.get_current_value(variable)
            updated.append(value if new is None else new)
        targets, sample_weight = self._class_weighted(targets, sample_weight)
        self._maskmix_step.targets = targets
        try:
            return super().train_step(
                (trainable, updated, optimizer_variables, metrics_variables),
                keras.utils.pack_x_y_sample_weight(x, y, sample_weight),
            )
        finally:
            self._maskmix_step.targets = None

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Keras' ``compute_loss``; in a training step with soft targets, the loss on those targets.

        Outside training steps (``evaluate``, or ``training=False``) this is exactly Keras'
        ``compute_loss`` on ``y``. In a training step where ``mix``/``label_smoothing`` produced
        soft targets, ``y`` (the labels handed to the metrics) is ignored and the loss is
        computed on the soft targets: with ``mixed_loss`` or the dense counterpart of a sparse
        compiled loss (times the compiled loss weight) plus the regularisation losses, or else by
        Keras' ``compute_loss`` with the soft targets in place of ``y``.

        Args:
            x: input data.
            y: target data.
            y_pred: the model's predictions.
            sample_weight: sample weights for the loss.
            training: whether this is a training step.
        """
        targets = self._maskmix_step.targets
        if self._maskmix_step.building:
            built_for = self._loss_build_targets(y, y_pred)
            return super().compute_loss(x, built_for, y_pred, sample_weight, training=training)
        if targets is None or not training:
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        loss_fn, weight = self._training_loss(self._maskmix_step.integer_labels)
        if loss_fn is None:
            try:
                return super().compute_loss(x, targets, y_pred, sample_weight, training=training)
            except (ValueError, TypeError) as error:
                # A loss maskmix does not know (a custom function) met the soft (B, K) rows: Keras'
                # own message speaks of shapes only; say where they come from and what to give.
                kind = ValueError if isinstance(error, ValueError) else TypeError
                raise kind(
                    f"{_NAME}: the compiled loss failed on the soft targets (B, K) that mix/label_smoothing make "
                    f"from the labels ({error}). A loss written for class indices needs mixed_loss= (a loss of "
                    "soft targets, e.g. keras.losses.CategoricalCrossentropy()); for one sigmoid output give "
                    "float (B, 1) labels and leave num_classes unset"
                ) from error
        y_pred = _only_tensor(y_pred, ValueError, "mix and label_smoothing need a single-output model; got {} outputs")
        losses = [loss_fn(targets, y_pred, sample_weight)]
        if weight is not None and weight != 1.0:
            losses[0] = losses[0] * weight
        losses.extend(self._aggregate_additional_loss(loss) for loss in self.losses)
        return losses[0] if len(losses) == 1 else keras.ops.sum(keras.ops.stack(
            [keras.ops.cast(loss, losses[0].dtype) for loss in losses]
        ))

    def _training_loss(self, integer_labels: bool) -> tuple[keras.losses.Loss | None, float | None]:
        """``(loss, weight)`` for soft targets, or ``(None, None)`` to use the compiled loss as is."""
        compile_loss = getattr(self, "_compile_loss", None)
        weight = single(getattr(compile_loss, "_user_loss_weights", None)) if compile_loss is not None else None
        if weight is not None and not isinstance(weight, (int, float)):
            weight = None
        if self.mixed_loss is not None:
            return as_loss_object(self.mixed_loss), weight
        compiled = single(getattr(self, "loss", None))
        if compiled is None:
            return None, None
        dense = dense_counterpart(compiled, integer_labels, _NAME)
        return dense, (weight if dense is not None else None)

    # ----------------------------------------------------------------------------------------
    # Serialisation.
    # ----------------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(_options_config(self))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> MaskMixModel:
        config = {**config, **_options_from_config(config, custom_objects)}
        return super().from_config(config, custom_objects=custom_objects)

    # ----------------------------------------------------------------------------------------
    # Cloning (`keras.models.clone_model`).
    # ----------------------------------------------------------------------------------------

    def _run_through_graph(self, inputs: Any, operation_fn: Any = graph.UNSET,
                           call_fn: Any = graph.UNSET) -> Any:
        """Keras' graph walk; on ``clone_model``'s walk, remember this model for the clone's
        constructor (see :func:`maskmix.callbacks._keras_functional.remember_clone_source`)."""
        kwargs = {}
        if operation_fn is not graph.UNSET:
            kwargs["operation_fn"] = operation_fn
        if call_fn is not graph.UNSET:
            kwargs["call_fn"] = call_fn
        outputs = super()._run_through_graph(inputs, **kwargs)
        if operation_fn is not graph.UNSET and call_fn is not graph.UNSET:  # only clone_model passes both
            graph.remember_clone_source(self, outputs, _NAME)
        return outputs


def _images_and_masks(x: Any, y: Any) -> tuple[Any, Any] | None:
    """``(images, masks)`` of Keras' dict of images and segmentation masks (the masks are the
    target), None for any other batch; a dict with masks and anything else is a ``ValueError``."""
    if not (isinstance(x, Mapping) and "segmentation_masks" in x):
        return None
    if y is not None or set(x) != {"images", "segmentation_masks"}:
        raise ValueError(
            f"{_NAME}: a batch dict holding segmentation_masks must hold 'images' and "
            "'segmentation_masks' only, without labels y (the masks are the training target); "
            f"got keys {sorted(map(str, x))}{' and labels y' if y is not None else ''}"
        )
    return x["images"], x["segmentation_masks"]


def _dense_dict_as_pair(data: Any) -> Any:
    """``data`` with a ``{"images", "segmentation_masks"}`` dict replaced by ``(images, masks)``
    (for evaluate and predict, which feed ``x`` to the model as it is)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    dense = _images_and_masks(x, y)
    return data if dense is None else keras.utils.pack_x_y_sample_weight(*dense, sample_weight)


def _only_tensor(data: Any, error: type[Exception], message: str) -> Any:
    """The one tensor of ``data`` (itself when not nested); ``error`` with ``message`` formatted with
    the number of tensors when a nested ``data`` holds more or fewer than one."""
    if not keras.tree.is_nested(data):
        return data
    flat = keras.tree.flatten(data)
    if len(flat) != 1:
        raise error(f"{_NAME}: " + message.format(len(flat)))
    return flat[0]


class _ScheduleCallback(keras.callbacks.Callback):
    """Sets the pipeline's scheduled values at each epoch start of ``fit`` (added by ``MaskMixModel.fit``)."""

    def __init__(self, pipeline: MaskMixPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.pipeline.set_epoch(epoch)


def _with_schedules(model: MaskMixModel, callbacks: Any) -> Any:
    """``callbacks`` with the schedule callback first (a list, or Keras' ``CallbackList``)."""
    callback = _ScheduleCallback(model.maskmix_pipeline)
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks.callbacks.insert(0, callback)
        callback.set_model(model)
        return callbacks
    return [callback, *(callbacks or [])]


def _schedules_config(model: MaskMixModel) -> list[list[Any]] | None:
    """The schedules as ``[[key, parameter, schedule config], ...]`` (JSON keys would turn positions
    into strings); a key that is a layer object is saved as its position or class name."""
    pipeline = model.maskmix_pipeline
    if not pipeline.schedules:
        return None
    items = [*pipeline.augmentations, *pipeline.mix_layers]
    out: list[list[Any]] = []
    for entry in pipeline.schedules:
        key = entry.key
        if not isinstance(key, (str, int)):
            positions = [i for i, item in enumerate(items) if item is key]
            if positions:
                key = positions[0]
            else:
                # A layer nested in another (a Sequential) has no position: saved by its class name,
                # which must name it alone, or the saved model could never be loaded.
                name = type(key).__name__
                namesakes = [layer for item in items for layer in pipeline_walk(item) if type(layer).__name__ == name]
                if len(namesakes) > 1:
                    raise ValueError(
                        f"{_NAME}: {entry.where} is keyed by a layer nested in another, which is saved by its class "
                        f"name, but {len(namesakes)} layers are {name}s and the saved model could not be loaded; "
                        "give the nested layer a class of its own or put it at the top level of augmentations "
                        "(then it is saved by its position)"
                    )
                key = name
        if not isinstance(entry.schedule, schedules_mod.Schedule):
            raise TypeError(
                f"{_NAME}: {entry.where} is a custom callable, which cannot be saved with the model; use "
                "maskmix.schedules (ramp, switch_off, piecewise, constant) to save it"
            )
        out.append([key, entry.param, entry.schedule.get_config()])
    return out


def _options_config(model: MaskMixModel) -> dict[str, Any]:
    """The maskmix options of ``model`` as config entries (layers and losses serialised)."""
    serialize = keras.saving.serialize_keras_object
    return {
        "augmentations": [serialize(layer) for layer in model.augmentations],
        "mix": [serialize(layer) for layer in model.mix_layers] or None,
        "mix_weights": None if model.mix_weights is None else list(model.mix_weights),
        "num_classes": model.num_classes,
        "label_smoothing": model.label_smoothing,
        "metric_labels": model.metric_labels,
        "mixed_loss": (
            model.mixed_loss if model.mixed_loss is None or isinstance(model.mixed_loss, str)
            else keras.losses.serialize(model.mixed_loss)
        ),
        "seed": model.seed,
        "schedules": _schedules_config(model),
    }


def _options_from_config(config: Mapping[str, Any], custom_objects: Any = None) -> dict[str, Any]:
    """The constructor options found in config entries (see :func:`_options_config`), deserialised."""
    deserialize = keras.saving.deserialize_keras_object
    options = {key: config[key] for key in _CONFIG_KEYS if key in config}
    if options.get("augmentations"):
        options["augmentations"] = [deserialize(c, custom_objects=custom_objects) for c in options["augmentations"]]
    if options.get("mix"):
        options["mix"] = [deserialize(c, custom_objects=custom_objects) for c in options["mix"]]
    if options.get("schedules"):
        rebuilt: dict[Any, dict[str, Any]] = {}
        for key, param, schedule in options["schedules"]:
            rebuilt.setdefault(key, {})[param] = schedules_mod.from_config(schedule)
        options["schedules"] = rebuilt
    if isinstance(options.get("mixed_loss"), dict):
        options["mixed_loss"] = keras.losses.deserialize(options["mixed_loss"], custom_objects=custom_objects)
    return options


@keras.saving.register_keras_serializable(package="maskmix")
class FunctionalMaskMixModel(MaskMixModel, Functional):
    """What ``MaskMixModel(inputs, outputs, ...)`` returns: a functional :class:`MaskMixModel`.

    Keras turns ``Model(inputs, outputs)`` into a functional model by splicing ``Functional`` into
    the class hierarchy of the class being instantiated; doing that to :class:`MaskMixModel`
    itself would break every later subclass of it, so the functional form is this subclass
    (``isinstance(model, MaskMixModel)`` holds). Same arguments as :class:`MaskMixModel`.
    """


graph.register_functional_class(MaskMixModel, FunctionalMaskMixModel)
