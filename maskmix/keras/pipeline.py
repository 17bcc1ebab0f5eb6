"""The batch pipeline of the Keras training integration: mask, then mix, with soft targets.

:class:`MaskMixPipeline` is what ``MaskMixModel`` runs inside its training step, usable on its
own in a custom ``train_step`` or training loop: per-image layers in order, then the labels as
soft ``(B, K)`` targets (one-hot, smoothed) and one mixing layer chosen per step with
``mix_weights``. Everything is ``keras.ops`` / ``keras.random``: it runs in eager mode, in
``tf.function`` (also ``jit_compile=True``) and on the TensorFlow, torch and JAX backends.

Importing this module imports keras (and its backend), never torch (unless torch is the Keras
backend) nor Lightning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

import keras
import numpy as np

from maskmix import geometry
from maskmix import integration_options as options
from maskmix import schedules as schedules_mod
from maskmix._structure import coordinate_keys
from maskmix.integration_options import IntegerOption, RealOption

from . import _compat, _seeds
from ._base import MaskMixLayer
from ._mixing import MixingLayer, class_index_rows, distribution_rows, soft_label_rows

__all__ = ["MaskMixPipeline"]

Tensor = Any



def walk(layer: Any) -> Iterator[Any]:
    """``layer`` and every layer nested in it."""
    flatten = getattr(layer, "_flatten_layers", None)
    if callable(flatten):
        yield from flatten(include_self=True, recursive=True)
    else:  # pragma: no cover - every Keras 3 layer has _flatten_layers
        yield layer


def _mixing(layer: Any) -> bool | None:
    if isinstance(layer, MixingLayer):
        return bool(layer.mixes)  # RandomCutThumbnail mixes only with mix_images=True
    return None


_KERAS_MIXING = tuple(getattr(keras.layers, name) for name in ("CutMix", "MixUp") if hasattr(keras.layers, name))


#: Keras' image layers that move pixels: flips, crops, resizes, rotations, shears, translations,
#: zooms and warps, and the policies whose operations include them (RandAugment, AugMix).
_KERAS_PIXEL_MOVERS = frozenset({
    "AugMix", "CenterCrop", "RandAugment", "RandomCrop", "RandomElasticTransform", "RandomFlip",
    "RandomPerspective", "RandomRotation", "RandomShear", "RandomTranslation", "RandomZoom", "Resizing",
})


def keras_pixel_mover(layer: Any) -> bool:
    """Whether ``layer`` is (or subclasses) one of Keras' image layers that move pixels."""
    return any(cls.__name__ in _KERAS_PIXEL_MOVERS and cls.__module__.startswith("keras.")
               for cls in type(layer).__mro__)


def pixel_changer_of(layers: Sequence[Any], *, mask_fill: bool = True) -> tuple[Any, str] | None:
    """:func:`maskmix.geometry.pixel_changer` of ``layers`` and the layers nested in them, Keras'
    own pixel movers included."""
    return geometry.pixel_changer((item for layer in layers for item in walk(layer)), moves_pixels=keras_pixel_mover,
                                  mask_fill=mask_fill)


def refuse_coordinate_targets(owner: str, what: str, targets: Any, layers: Sequence[Any]) -> None:
    """Raise when the nested ``targets`` hold boxes or keypoints (under a key containing "box" or
    "keypoint": Keras' ``{"boxes", "labels"}``, a detection head's dict) and one of ``layers``
    moves pixels: they would stay where they were, as the layers refuse ``bounding_boxes``."""
    keys = coordinate_keys(targets, lambda value: hasattr(value, "shape"))
    changer = pixel_changer_of(layers, mask_fill=False) if keys else None
    if changer is not None:
        raise ValueError(
            f"{owner}: the {what} hold boxes or keypoints (under {', '.join(map(repr, keys))}), but "
            f"{type(changer[0]).__name__} {changer[1]} and they would not follow it; leave the layer out "
            "(the masking layers and CutBlur keep pixels in place)"
        )


def _reads_rank3_as_one_image(layer: Any) -> bool:
    """Whether ``layer`` takes a rank-3 input for one unbatched image: maskmix's layers and Keras'
    image-preprocessing layers (both define ``transform_images``), not rank-agnostic layers such as
    ``GaussianNoise``, which may augment non-image inputs."""
    return callable(getattr(layer, "transform_images", None))


def _foreign_mixing(layer: Any) -> str | None:
    if _KERAS_MIXING and isinstance(layer, _KERAS_MIXING):
        return (f"Keras' {type(layer).__name__}, which takes labels its own way: use "
                "maskmix.keras.RandomCutMix / RandomMixup instead")
    return None


#: The Keras answers of the option rules.
KERAS = options.Framework(
    kind="layer",
    transforms_name="augmentations",
    accepted="a Keras layer",
    is_augmentation=lambda value: isinstance(value, keras.layers.Layer),
    walk=walk,
    mixing=_mixing,
    foreign_mixing=_foreign_mixing,
)


class MaskMixPipeline:
    """Mask, then mix, Keras training batches: the pipeline of ``MaskMixModel``, for any training step.

    ``pipeline(images, labels)`` returns ``(images, targets)``: the images through every layer of
    ``augmentations`` in order (``training=True``), then, when ``mix`` or ``label_smoothing`` is
    set, the labels as soft float targets ``(B, K)`` (class indices one-hot encoded with
    ``num_classes``, then smoothed) and images and targets through one mixing layer, chosen per
    call with the weights ``mix_weights``. Without ``mix`` and smoothing the labels come back as
    given. Every candidate mixing layer with a positive weight runs and the chosen output is
    selected with ``where`` (no host synchronisation, XLA-friendly).

    Shapes: images ``(B, H, W, C)`` (or what the layers take); labels class indices ``(B,)`` or
    ``(B, 1)`` of an integer dtype, or one-hot/soft rows ``(B, K)`` of a float dtype (integer
    one-hot rows, ``K > 1``, are read as float rows); targets are
    float32 ``(B, K)`` (float64 stays float64). Images of rank < 4 raise a ``ValueError`` when an
    image layer (a maskmix layer, a Keras image-preprocessing layer) is in the pipeline: those read
    a rank-3 input as one image, so a greyscale ``(B, H, W)`` batch needs its channel axis
    (:meth:`check_image_batch`). Class indices outside ``[0, num_classes)`` and soft rows with a
    value outside ``[0, 1]`` raise a ``ValueError`` where they can be read without a trace or a
    device synchronisation (eager, on the CPU); in a compiled step, as in the mixing layers, their
    rows are NaN (the loss shows them), not ``one_hot``'s zero rows or rows mixed as probabilities.

    The random state is in Keras ``SeedGenerator``s (each layer's own, and :attr:`seed_generator`
    for the choice among several ``mix`` layers): a ``keras.Model`` that uses the pipeline must
    track them (assign the layers and the generator to its attributes, as ``MaskMixModel`` does),
    so that they are in its state on JAX.

    Args:
        augmentations: a Keras layer or a list of them (maskmix masking/pasting layers or any
            per-image Keras layer); no mixing layers, no ``return_labels=True``.
        mix: None, a maskmix mixing layer (``RandomCutMix``, ``RandomMixup``,
            ``RandomCutThumbnail(mix_images=True)``) or a list of them.
        mix_weights: None (uniform) or one finite weight ``>= 0`` per ``mix`` layer, at least
            one positive (layers of weight 0 never run).
        num_classes: the number of classes (required with class-index labels unless the mixing
            layers have it); every value given must agree and be ``>= 2`` (one class would one-hot
            binary labels inverted: give binary labels as float ``(B, 1)`` columns, without it).
        label_smoothing: in ``[0, 1)``, applied once to the targets before mixing; needs no
            ``mix``. Must agree with the mixing layers' own when both are non-zero.
        seed: None or an integer in ``[0, 2**64)``: seeds the choice among the ``mix`` layers.
        schedules: None, or parameters that follow training progress (:mod:`maskmix.schedules`):
            ``{key: {parameter: schedule}}``, the key a maskmix layer's class name, its position in
            ``augmentations + mix`` or the layer itself, the parameter one its spec declares
            schedulable (``augmentation_ratio``). Each value lives in a non-trainable float32
            variable (:attr:`schedule_variables`, which a model using the pipeline must track, as
            ``MaskMixModel`` does) that the layers read inside the step, so a compiled step
            (``jit_compile``, ``jax.jit``) sees every new value; :meth:`set_epoch` assigns them.
        owner: the name that starts error messages (``MaskMixModel`` passes its class name).

    The option rules are those of :mod:`maskmix.integration_options`, shared with the torch
    integration (same exception types and messages).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import MaskMixPipeline, RandomCutMix, RandomErasing, RandomMixup
        >>> pipeline = MaskMixPipeline([RandomErasing(seed=0)], [RandomCutMix(seed=1), RandomMixup(seed=2)],
        ...                            num_classes=10, label_smoothing=0.1, seed=0)
        >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
        >>> labels = np.random.randint(0, 10, (8,))
        >>> mixed, targets = pipeline(images, labels)
        >>> tuple(mixed.shape), tuple(targets.shape)
        ((8, 32, 32, 3), (8, 10))
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in options.PIPELINE_OPTIONS and name in self.__dict__:
            options.refuse_later_option(self.owner, name, value, self.__dict__[name])
        super().__setattr__(name, value)

    def __init__(
        self,
        augmentations: keras.layers.Layer | Sequence[keras.layers.Layer] | None = None,
        mix: MixingLayer | Sequence[MixingLayer] | None = None,
        mix_weights: Sequence[RealOption] | None = None,
        num_classes: IntegerOption | None = None,
        label_smoothing: RealOption = 0.0,
        seed: IntegerOption | None = None,
        schedules: Mapping[Any, Mapping[str, Callable[[float], float]]] | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.owner = owner = owner or type(self).__name__
        checked = options.check_options(
            owner, KERAS, transforms=augmentations, mix=mix, mix_weights=mix_weights, num_classes=num_classes,
            label_smoothing=label_smoothing, seed=seed,
        )
        self.augmentations: list[keras.layers.Layer] = checked.transforms
        self.mix_layers: list[MixingLayer] = checked.mix
        self.mix_weights = checked.mix_weights
        self.num_classes = checked.num_classes
        self.label_smoothing = checked.label_smoothing
        self.seed = checked.seed
        # Image layers that disagree on the layout would change the same batch along different axes,
        # and a batch with few channels (2: optical flow) passes every layer's layout check.
        formats = {f"{type(inner).__name__} ({inner.data_format})": inner.data_format
                   for layer in [*self.augmentations, *self.mix_layers] for inner in walk(layer)
                   if _reads_rank3_as_one_image(inner) and isinstance(getattr(inner, "data_format", None), str)}
        if len(set(formats.values())) > 1:
            raise ValueError(
                f"{owner}: the layers do not agree on data_format: {', '.join(formats)}; every image layer "
                "sees the same batch, so give them all the batch's data_format"
            )
        #: The image layers' data_format (they agree), None when no layer has one.
        self._data_format: str | None = next(iter(formats.values()), None)
        # The first layer that would read a rank-3 batch as one image (see check_image_batch).
        self._image_layer = next(
            (inner for layer in [*self.augmentations, *self.mix_layers] for inner in walk(layer)
             if _reads_rank3_as_one_image(inner)),
            None,
        )
        #: The generator of the choice among several ``mix`` layers (None with at most one). Its seed
        #: is derived from ``seed`` with a stream id: seeded with ``seed`` itself, it drew the same
        #: numbers as a layer given the same seed (the docs' ``RandomErasing(seed=0)`` next to
        #: ``seed=0``), and which images were erased followed which mix was chosen. 31 bits: every
        #: backend's seed dtype holds it.
        choice_seed = None if self.seed is None else geometry.derive_seed(self.seed, geometry.CHOICE_STREAM) >> 32
        self.seed_generator = keras.random.SeedGenerator(choice_seed) if len(self.mix_layers) > 1 else None
        #: The scheduled parameters (one :class:`maskmix.schedules.Scheduled` each).
        self._schedules_argument = schedules
        self.schedules = schedules_mod.resolve(
            owner, schedules, [*self.augmentations, *self.mix_layers], walk,
            lambda layer: layer.spec if isinstance(layer, MaskMixLayer) else None, "layer",
        )
        #: The training progress the scheduled values were last set for (:meth:`set_epoch`).
        self.epoch = 0.0
        self._scheduled_values = [entry.value(owner, 0.0) for entry in self.schedules]
        #: One non-trainable float32 variable per scheduled parameter, holding its current value.
        self.schedule_variables = [
            keras.Variable(value, dtype="float32", trainable=False, autocast=False,
                           name=f"{type(entry.transform).__name__}_{entry.param}_schedule")
            for entry, value in zip(self.schedules, self._scheduled_values, strict=True)
        ]

    def set_epoch(self, epoch: float) -> None:
        """Evaluate the schedules at ``epoch`` and assign the values to :attr:`schedule_variables`;
        the next steps, compiled or not, use them. ``MaskMixModel``
        calls it at each epoch start of ``fit``; call it yourself in a loop of your own.

        Raises:
            TypeError, ValueError: for an epoch that is not a finite number ``>= 0``, or a
                schedule whose value is outside its parameter's domain (named in the message).
        """
        epoch = schedules_mod._epoch(f"{self.owner}.set_epoch", epoch)
        values = [entry.value(self.owner, epoch) for entry in self.schedules]
        # Every value, changed or not: a loaded model's variables hold the saved run's last values.
        for variable, value in zip(self.schedule_variables, values, strict=True):
            variable.assign(value)
        self._scheduled_values = values
        self.epoch = epoch

    def scheduled_values(self) -> dict[Any, dict[str, float]]:
        """``{key: {parameter: value}}``: the values the next steps use, under the keys given.

        Read from :attr:`schedule_variables` (what the steps read): a loaded model's variables hold
        the saved run's last values until :meth:`set_epoch` (``fit`` calls it at each epoch start).
        A value the variable holds as set is reported as the schedule gave it (not its float32)."""
        out: dict[Any, dict[str, float]] = {}
        for entry, value, variable in zip(self.schedules, self._scheduled_values, self.schedule_variables,
                                          strict=True):
            held = float(keras.ops.convert_to_numpy(variable.value))
            out.setdefault(entry.key, {})[entry.param] = value if float(np.float32(value)) == held else held
        return out

    @property
    def makes_soft_targets(self) -> bool:
        """Whether the labels are replaced by soft targets (``mix`` or ``label_smoothing``)."""
        return bool(self.mix_layers) or self.label_smoothing > 0

    def __repr__(self) -> str:
        return options.arguments_repr(type(self).__name__, [
            ("augmentations", self.augmentations, []), ("mix", self.mix_layers, []),
            ("mix_weights", self.mix_weights, None), ("num_classes", self.num_classes, None),
            ("label_smoothing", self.label_smoothing, 0.0), ("seed", self.seed, None),
            ("schedules", self._schedules_argument, None),
        ])

    @overload
    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]: ...
    @overload
    def __call__(self, images: Tensor, labels: None = None) -> tuple[Tensor, None]: ...

    def __call__(self, images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``(images, targets)`` of one training batch (see the class docstring)."""
        images, targets, _ = self.augment(images, labels)
        return images, (labels if targets is None else targets)

    def augment(self, images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None, bool]:
        """``(images, soft targets or None, whether the labels were class indices)``.

        The targets are None when neither ``mix`` nor ``label_smoothing`` is set or ``labels``
        is None; ``mix`` without labels raises a ``ValueError``.
        """
        with schedules_mod.lending(self._lent()):
            return self._augment(images, labels)

    def _lent(self) -> dict[int, dict[str, Any]]:
        """The scheduled values the layers read in this step, by layer."""
        lent: dict[int, dict[str, Any]] = {}
        for entry, variable in zip(self.schedules, self.schedule_variables, strict=True):
            # The variable's value, read here, inside the step: not a constant of the trace.
            lent.setdefault(id(entry.transform), {})[entry.param] = variable.value
        return lent

    def check_image_batch(self, images: Tensor) -> None:
        """Refuse training images of rank < 4 when an image layer would see them.

        The layers read a rank-3 input as one image (right for one sample in a ``tf.data`` map),
        but the pipeline always gets a batch: a greyscale ``(B, H, W)`` batch would be one image
        whose rows are the batch (one erased band across several images, one flip for all).
        Layers that take any rank (``GaussianNoise``) and label-only pipelines do not care.

        Raises:
            ValueError: for a batch of known rank < 4 when an image layer is in ``augmentations``
                or ``mix``; the message says to add the channel axis.
        """
        if self._image_layer is None:
            return
        try:
            rank = len(images.shape)
        except (AttributeError, TypeError, ValueError):  # no shape, or an unknown rank: the layers check
            return
        if rank >= 4:
            return
        shape = tuple(images.shape)
        layer = type(self._image_layer).__name__
        raise ValueError(
            f"{self.owner}: the training images must be a batch of rank 4, (B, H, W, C) or channels-first "
            f"(B, C, H, W), for {layer}; got shape {shape} (the image layers take a rank-3 input for one image). "
            "Add the channel axis of a greyscale batch: x[..., None] for channels_last, x[:, None] for channels_first"
        )

    @property
    def channels_first(self) -> bool:
        """The layout of the image layers (they agree), else Keras' image data format."""
        return (self._data_format or keras.config.image_data_format()) == "channels_first"

    def _refuse_pixel_labels(self, images: Tensor, labels: Any) -> None:
        """Labels passed through unchanged (no ``mix``, no smoothing) that lie on the pixels would
        no longer match them after a layer that moves pixels or writes ``mask_fill``; so would
        boxes or keypoints in a dict of labels (a key containing "box" or "keypoint") behind a
        layer that moves pixels."""
        if keras.tree.is_nested(labels):
            refuse_coordinate_targets(self.owner, "labels", labels, self.augmentations)
            return
        shape = getattr(labels, "shape", None)
        if shape is None or not hasattr(images, "shape"):
            return
        dtype = getattr(labels, "dtype", None)
        integer = dtype is not None and keras.backend.standardize_dtype(dtype) in (*geometry.INT_DTYPES, "bool")
        layout = geometry.pixel_layout(tuple(images.shape), tuple(shape), self.channels_first, integer=integer)
        changer = pixel_changer_of(self.augmentations) if layout is not None else None
        if changer is not None:
            raise ValueError(
                f"{self.owner}: labels of shape {tuple(shape)} lie on the pixels of the images {tuple(images.shape)} "
                f"(per-pixel targets), but {type(changer[0]).__name__} {changer[1]} and labels pass through "
                "unchanged: give segmentation masks to augment_dense(images, masks), which moves them with the pixels"
            )

    def _refuse_unit_range_readers(self) -> None:
        """Refuse a maskmix layer reading float images as ``(0, 1)`` after a Keras image layer in
        ``augmentations`` (at any depth), for a uint8 batch: a white fill would write 1.0.

        Keras' image preprocessing layers (``RandomFlip``, ``Resizing``, ...) return their compute
        dtype, float32, of a uint8 batch with the values kept (0..255); maskmix layers take uint8
        images as 0..255 and float ones as 0..1 unless ``pixels_range`` says otherwise. Layers that
        change the values (``Rescaling(1 / 255)``) or keep the dtype are not in question.
        """
        converter = None
        for layer in self.augmentations:
            for inner in walk(layer):
                if converter is None and isinstance(inner, _compat.BaseImagePreprocessingLayer):
                    converter = inner
                elif converter is not None and isinstance(inner, MaskMixLayer) and inner.needs_unit_range():
                    raise ValueError(
                        f"{self.owner}: {type(converter).__name__} ({converter.name}) turns the uint8 images into "
                        f"floats of 0..255, and {type(inner).__name__} ({inner.name}) after it reads float images as "
                        "0..1 (its white/gray/random/noise fill or colour jitter would take 1.0 for white): give "
                        f"{type(inner).__name__} pixels_range=(0, 255), place it before {type(converter).__name__}, "
                        "or give the pipeline float images in 0..1"
                    )

    def _augment(self, images: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None, bool]:
        self.check_image_batch(images)
        if labels is None and self.mix_layers:
            # The mix was skipped, silently (a dataset of images alone, fit(x)): the torch pipeline
            # refuses it too.
            raise ValueError(
                f"{self.owner}: mix needs labels (each mixed image's target is mixed with its partner's); got "
                "images alone. Give (images, labels), or leave mix out"
            )
        if labels is not None and not self.makes_soft_targets:
            self._refuse_pixel_labels(images, labels)
        if keras.backend.standardize_dtype(images.dtype) == "uint8":
            self._refuse_unit_range_readers()
        for layer in self.augmentations:
            images = layer(images, training=True)
        if labels is None or not self.makes_soft_targets:
            return images, None, False
        raw, integer = self.soft_targets(labels, smoothing=0.0)
        smoothing = max([self.label_smoothing, *(layer.label_smoothing for layer in self.mix_layers)])
        if not integer and smoothing > 0 and raw.shape[1] != 1:  # one binary column goes towards 0.5
            raw = distribution_rows(self.owner, keras.backend.backend(), keras.ops, raw, smoothing)
        smoothed = self.smooth(raw) if self.label_smoothing > 0 else raw
        if not self.mix_layers:
            return images, smoothed, integer
        weights = self.mix_weights or [1.0] * len(self.mix_layers)
        candidates = [(layer, w) for layer, w in zip(self.mix_layers, weights, strict=True) if w > 0]
        outputs = []
        for layer, _ in candidates:
            # Smoothing is applied once: a layer that smooths (with the same value) gets the raw targets.
            given = raw if self.label_smoothing > 0 and layer.label_smoothing > 0 else smoothed
            outputs.append(layer((images, given), training=True))
        if len(outputs) == 1:
            images, targets = outputs[0]
        else:
            images, targets = self._select(outputs, [w for _, w in candidates])
        return images, targets, integer

    def augment_dense(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """``(images, masks)`` of a batch whose target is its segmentation masks.

        The masks (``(B, H, W, 1)``, channels-first ``(B, 1, H, W)``, any integer dtype) go through
        every layer of ``augmentations`` and the chosen ``mix`` layer with the images, as Keras'
        dict ``{"images", "segmentation_masks"}`` (see :meth:`maskmix.keras.MaskMixLayer.call_dict`):
        kept where pixels stay, moved where they move; a layer that cannot move them (Mixup, a
        layer that is not a maskmix layer) raises. ``label_smoothing`` applies to class labels
        and is refused here.
        """
        owner = self.owner
        if self.label_smoothing > 0:
            raise ValueError(
                f"{owner}: label_smoothing applies to class labels; the target of this batch is its "
                "segmentation masks (set label_smoothing=0, or smooth in the loss)"
            )
        with schedules_mod.lending(self._lent()):
            return self._augment_dense(images, masks)

    def _augment_dense(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        owner = self.owner
        self.check_image_batch(images)
        data: dict[str, Tensor] = {"images": images, "segmentation_masks": masks}
        for layer in [*self.augmentations, *self.mix_layers]:
            if not isinstance(layer, MaskMixLayer):
                raise TypeError(
                    f"{owner}: segmentation masks cannot follow {type(layer).__name__} ({layer.name}): only "
                    "maskmix layers move them with the images; apply it to the images and masks in the "
                    "dataset (Keras' image layers take the same dict) or remove it"
                )
        for layer in self.augmentations:
            data = layer(data, training=True)
        if not self.mix_layers:
            return data["images"], data["segmentation_masks"]
        weights = self.mix_weights or [1.0] * len(self.mix_layers)
        candidates = [(layer, w) for layer, w in zip(self.mix_layers, weights, strict=True) if w > 0]
        outputs = [layer(data, training=True) for layer, _ in candidates]
        pairs = [(out["images"], out["segmentation_masks"]) for out in outputs]
        if len(pairs) == 1:
            return pairs[0]
        return self._select(pairs, [w for _, w in candidates])

    def soft_targets(self, labels: Tensor, smoothing: float | None = None) -> tuple[Tensor, bool]:
        """``(soft targets (B, K), whether labels were class indices)``, smoothed by ``smoothing``
        (default: ``label_smoothing``)."""
        owner, ops = self.owner, keras.ops
        y = ops.convert_to_tensor(labels)
        dtype = keras.backend.standardize_dtype(y.dtype)
        shape = tuple(y.shape)
        if dtype in geometry.INT_DTYPES and len(shape) == 2 and shape[1] != 1:
            # Integer one-hot rows (keras.utils.to_categorical(...).astype("int32")): float rows.
            y, dtype = ops.cast(y, "float32"), "float32"
        if dtype in geometry.INT_DTYPES:
            if len(shape) == 2 and shape[1] == 1:
                y = ops.reshape(y, (-1,))
            elif len(shape) != 1:
                raise ValueError(f"{owner}: class-index labels must have shape (B,) or (B, 1); got shape {shape}")
            num_classes = self.resolve_num_classes()
            soft = class_index_rows(owner, keras.backend.backend(), ops, y, num_classes)
            integer = True
        elif dtype in geometry.FLOAT_DTYPES:
            if len(shape) != 2:
                raise ValueError(f"{owner}: one-hot/soft labels must have shape (B, K); got shape {shape}")
            if self.num_classes is not None and shape[1] is not None and shape[1] != self.num_classes:
                raise ValueError(f"{owner}: labels have {shape[1]} classes but num_classes is {self.num_classes}")
            y = soft_label_rows(owner, keras.backend.backend(), ops, y)
            soft = ops.cast(y, "float64" if dtype == "float64" else "float32")
            integer = False
        else:
            raise TypeError(f"{owner}: labels must be integer class indices or float one-hot/soft rows; got {dtype}")
        smoothing = self.label_smoothing if smoothing is None else smoothing
        return (self.smooth(soft, smoothing) if smoothing > 0 else soft), integer

    def smooth(self, soft: Tensor, smoothing: float | None = None) -> Tensor:
        """``soft * (1 - s) + s / K``; a single column of binary labels goes towards 0.5 (Keras' convention)."""
        ops = keras.ops
        s = self.label_smoothing if smoothing is None else smoothing
        classes = ops.cast(ops.maximum(ops.shape(soft)[1], 2), soft.dtype)
        return soft * (1.0 - s) + s / classes

    def resolve_num_classes(self) -> int:
        """``num_classes``, or that of the mixing layers; raises when nobody gives it."""
        if self.num_classes is not None:
            return self.num_classes
        for layer in self.mix_layers:
            if layer.num_classes is not None:
                return layer.num_classes
        raise ValueError(
            f"{self.owner}: num_classes is required with class-index labels (pass num_classes= to the "
            f"{self.owner} or to the mixing layers)"
        )

    def _select(self, outputs: list[tuple[Tensor, Tensor]], weights: list[float]) -> tuple[Tensor, Tensor]:
        """Pick one mixing layer's output per step (``where`` on a scalar: no host sync, XLA-friendly)."""
        ops = keras.ops
        total = sum(weights)
        cumulative = [sum(weights[: i + 1]) / total for i in range(len(weights) - 1)]
        # Through CallSeeds: under a tf.distribute strategy the generator is mirrored, and each
        # replica folds in its id (as the layers' draws and the torch pipeline's ranks do); drawn
        # from the generator alone, every replica chose the same layer at every step. float32 whatever
        # floatx is: a float64 or bfloat16 draw chose other layers than the float32 one.
        u = keras.random.uniform((), dtype="float32", seed=_seeds.CallSeeds(self.seed_generator, self.owner))
        choice = ops.sum(ops.cast(ops.greater_equal(u, ops.convert_to_tensor(cumulative, "float32")), "int32"))
        x, soft = outputs[-1]
        for index in range(len(outputs) - 2, -1, -1):
            pick = ops.equal(choice, index)
            x = ops.where(pick, outputs[index][0], x)
            soft = ops.where(pick, outputs[index][1], soft)
        return x, soft
