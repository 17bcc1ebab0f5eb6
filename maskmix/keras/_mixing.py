"""Base of the Keras layers that mix two images of a batch and their labels (design §Conventions, labels).

:class:`MixingLayer` adds to :class:`~maskmix.keras.MaskMixLayer` what every mixing strategy
shares: the ``(images, labels)`` calling convention (tuples, lists and dicts, extra elements
kept), label validation, one-hot conversion and smoothing, the per-image choice of a partner
image, and the label mixing by the exact fraction of pixels that come from the partner. A
strategy samples its own quantities (:meth:`MixingLayer.sample_mixing`), reports that fraction
as ``params["partner_weight"]`` and changes the pixels in ``apply``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypedDict, cast

import keras
import numpy as np

from maskmix import geometry
from maskmix._checks import ROW_SUM_TOLERANCE, multi_hot_smoothing_message
from maskmix._structure import (
    COORDINATE_WORDS,
    LABEL_KEYS,
    LABEL_SUBSTRING,
    coordinate_keys,
    find_key,
    split_images_labels,
)

from . import _compat, _sampling, _seeds
from ._base import MaskMixLayer, _fresh_specs

#: Keys of an extra tuple item that name targets on the pixels: boxes, keypoints, Keras' masks.
_EXTRA_TARGET_WORDS = (*COORDINATE_WORDS, "segmentation_mask")

__all__ = ["FunctionOptions", "MixingLayer", "box_fraction", "mix_once", "partners"]

Tensor = Any



def partners(ops: Any, batch_size: int | Tensor, seed: Any, law: str = "other") -> Tensor:
    """Int32 per-image partner index under the partner ``law`` (design §Conventions, sampling modes).

    ``"other"``: uniform over the *other* images of the batch (itself when B < 2): the batch
    shifted cyclically, ``partner = (i + s) mod B`` with one ``s`` uniform in ``{1, ..., B - 1}``
    for the batch, so that every image is also the partner of one image (as with the official
    ``randperm``, torchvision's ``roll`` and timm's ``flip``); the same law as in torch.
    ``"permutation"``: a uniform random permutation (the official code's ``torch.randperm``: an
    image may be its own partner). ``"flip"``: image ``i`` with ``B - 1 - i`` (timm's ``flip(0)``).
    """
    index = ops.numpy.arange(batch_size, dtype="int32")
    if law == "flip":
        return ops.cast(batch_size, "int32") - 1 - index
    if law == "permutation":
        scores = ops.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)
        return ops.cast(ops.numpy.argsort(scores), "int32")
    if isinstance(batch_size, int) and batch_size < 2:
        return index
    size = ops.cast(batch_size, "int32")
    shift = _sampling.randint(ops, 1, ops.numpy.maximum(size - 1, 1), (1,), seed)
    mixed = ops.numpy.mod(index + shift, ops.numpy.maximum(size, 1))
    return _sampling.where(ops, size >= 2, mixed, index)


def box_fraction(ops: Any, h: Tensor, w: Tensor, height: int, width: int) -> Tensor:
    """Exact float32 fraction of an image's pixels covered by ``h x w`` boxes (the label weight)."""
    area = ops.cast(ops.numpy.maximum(height * width, 1), "float32")
    return ops.cast(h * w, "float32") / area


class MixingDraw(NamedTuple):
    """What :meth:`MixingLayer.sample_mixing` draws for: the batch's geometry (the batch size may be
    a tensor at trace time), each image's partner index, the images' dtype and the seed.
    ``batch_size`` is the number of draws to make: the images', or fewer with
    ``sampling="batch"``/``"pair"`` (one per unit); ``partner`` has one entry per image."""

    batch_size: int | Tensor
    channels: int
    height: int
    width: int
    partner: Tensor
    dtype: str
    seed: Any


class MixingLayer(MaskMixLayer):
    """Base class of the layers that mix each image with a partner image and mix the labels.

    Call it as ``layer((images, labels))`` (a tuple or list whose first two items are images and
    labels; further items are returned untouched) or ``layer({"images": ..., "labels": ...})``
    (``"image"``/``"label"`` keys accepted too); the same structure comes back with the images
    mixed and the labels replaced by soft labels ``(B, K)``. Called on images alone it returns
    the mixed images. A dict may also hold ``segmentation_masks`` (``(B, H, W, 1)``,
    channels-first ``(B, 1, H, W)``, any integer dtype), moved with the pixels as the strategy
    says (:meth:`~maskmix.keras.MaskMixLayer.move_masks`; Mixup refuses them), with or without
    labels; ``bounding_boxes`` are refused (they cannot follow pixels moved between images).

    Labels are class indices ``(B,)`` of an integer dtype together with ``num_classes``, or
    one-hot/soft labels ``(B, K)`` of a floating dtype; integer ``(B, K)`` rows (e.g.
    ``keras.utils.to_categorical(y).astype("int32")``) are read as float32 one-hot rows, so integer
    ``(B, 1)`` labels are one column of binary labels (as torch reads them), not class indices:
    squeeze them to ``(B,)`` for class indices (``MaskMixModel`` does so itself). Soft labels
    outside ``[0, 1]`` are refused where their values can be read (eager), class indices shaped
    ``(B, 1)`` with a hint to squeeze them; class indices outside ``[0, num_classes)`` too; where
    they cannot be read (a compiled step) the rows of both are NaN (see below). The
    output labels are float32 (float64 when the input labels were float64); ``label_smoothing``
    is applied before mixing; each augmented row is ``(1 - f) * y_self + f * y_partner`` with
    ``f`` the exact fraction of the image's pixels that now come from the partner. Rows of
    images that are not augmented are the (smoothed) input rows. Batches of 0 or 1 images pass
    through (labels made soft). With ``training=False`` the images are returned unchanged and
    the labels converted (and smoothed) the same way, so that the output structure and dtypes
    do not depend on ``training``.

    Class indices outside ``[0, num_classes)`` and soft rows with a value outside ``[0, 1]`` raise a
    ``ValueError`` when the labels are concrete CPU tensors (eager TensorFlow, JAX outside ``jit``,
    torch on CPU); inside a graph (``tf.function``, ``tf.data``, ``jax.jit``) or on an accelerator,
    where reading them would synchronise with the host, their rows are NaN instead: the loss shows
    them, where a zero row or a row of class numbers would train silently.

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
    dense_targets = "move"
    #: Whether the warning of a call on images alone inside a model was given (once per layer).
    _warned_in_a_model = False
    num_classes: int | None
    label_smoothing: float
    partner: str

    @property
    def mixes(self) -> bool:
        """Whether the layer mixes images and labels (Cut-Thumbnail overrides with ``mix_images``).

        When False the layer is a per-image layer: it takes images only, as
        :class:`~maskmix.keras.MaskMixLayer` does.
        """
        return True

    # ----------------------------------------------------------------------------------------
    # Strategy hooks.
    # ----------------------------------------------------------------------------------------

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        """Draw the strategy's quantities for the batch that ``draw`` describes; must include
        ``partner_weight`` (float32 ``(B,)``)."""
        raise NotImplementedError

    def sample(self, batch_size: int | Tensor, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        return self.sample_units(batch_size, batch_size, None, channels, height, width, dtype=dtype, seed=seed)

    def _partner_law(self) -> str:
        # In pair mode the partner is the pair's other image (the spec refuses any other law there).
        return "flip" if self.sampling == "pair" else self.partner

    def sample_units(self, batch_size: int | Tensor, units: int | Tensor, unit_of: Tensor | None, channels: int,
                     height: int, width: int, *, dtype: str, seed: Any) -> dict[str, Any]:
        if not self.mixes:  # Cut-Thumbnail without mix_images: a per-image layer
            return super().sample_units(batch_size, units, unit_of, channels, height, width, dtype=dtype, seed=seed)
        # The partner is drawn per image in every mode.
        partner = partners(self.ops, batch_size, seed, self._partner_law())
        params = _sampling.spread(
            self.ops, self.sample_mixing(MixingDraw(units, channels, height, width, partner, dtype, seed)), unit_of
        )
        params["partner"] = partner
        return params

    # ----------------------------------------------------------------------------------------
    # Calling convention.
    # ----------------------------------------------------------------------------------------

    def split(self, data: Any) -> tuple[Tensor, Tensor | None, Callable[[Tensor, Tensor], Any]]:
        """``(images, labels, rebuild)`` of an ``(images, labels, ...)`` sequence or a dict.

        Bare images are accepted too (labels None) so that :meth:`get_random_transformation`
        can be called on images alone.
        """
        if _is_tensor_like(data):
            return data, None, lambda images, labels: images
        # Another label tensor beside the labels (a dict's "label_fine") would stay unmixed: refused.
        return split_images_labels(type(self).__name__, data, labels_like=_is_tensor_like)

    def get_random_transformation(self, data: Any, training: bool = True, seed: Any = None) -> dict[str, Any] | None:
        """Draw the per-image parameters for the images of ``data`` (images or ``(images, labels)``).

        Adds to the strategy's parameters ``partner`` (int32 ``(B,)``), ``partner_weight``
        (float32 ``(B,)``, the label weight) and ``selected``; batches of fewer than two images
        select nothing.
        """
        if not self.mixes:
            return super().get_random_transformation(data, training=training, seed=seed)
        images = self.split(data)[0]
        params = super().get_random_transformation(images, training=training, seed=seed)
        if params is None:
            return None
        ops = self.ops
        batch_size = ops.shape(images)[0]
        if isinstance(batch_size, int):
            if batch_size < 2:
                params["selected"] = ops.numpy.zeros((batch_size,), dtype="bool")
        else:
            params["selected"] = ops.numpy.logical_and(params["selected"], batch_size >= 2)
        law = self._partner_law()
        if law == "permutation" or (law == "flip" and not (isinstance(batch_size, int) and batch_size % 2 == 0)):
            # An image that meets itself would change nothing (pixels) yet get a label weight: it
            # is not augmented, so its image and label row pass through exactly.
            itself = ops.numpy.equal(params["partner"], ops.numpy.arange(batch_size, dtype="int32"))
            params["selected"] = ops.numpy.logical_and(params["selected"], ops.numpy.logical_not(itself))
        return params

    def label_weight(self, transformation: Mapping[str, Any], dtype: str) -> Tensor:
        """Each row's partner weight in the labels' ``dtype``, exact for float64 labels.

        A box strategy (CutMix, Cut-Thumbnail) also reports ``image_pixels`` (``H * W`` per
        image): its weight is then recomputed as the box's pixel count over it in ``dtype``.
        Otherwise the float32 ``partner_weight`` is cast; Mixup overrides this with ``1 - lam``.
        """
        ops = self.ops
        if "image_pixels" in transformation:
            box = ops.cast(transformation["height"] * transformation["width"], dtype)
            return box / ops.cast(ops.numpy.maximum(transformation["image_pixels"], 1), dtype)
        return ops.cast(transformation["partner_weight"], dtype)

    def transform_labels(self, labels: Tensor, transformation: Mapping[str, Any] | None,
                         training: bool = True, *, batch_size: Any = None) -> Tensor:
        """Soft ``(B, K)`` labels, mixed by ``partner_weight`` for the selected images."""
        ops = self.ops
        soft = self.soft_labels(labels, batch_size)
        if transformation is None or training is False:
            return soft
        dtype = keras.backend.standardize_dtype(soft.dtype)
        weight = ops.numpy.expand_dims(self.label_weight(transformation, dtype), 1)
        partner = ops.numpy.take(soft, transformation["partner"], axis=0)
        mixed = soft * (1.0 - weight) + partner * weight
        return _sampling.where(ops, ops.numpy.expand_dims(transformation["selected"], 1), mixed, soft)

    def call(self, data: Any, training: bool = True) -> Any:
        if not self.mixes:
            return super().call(data, training=training)
        masks, targets = None, None
        if isinstance(data, Mapping):
            if "images" in data and find_key(data, 1, LABEL_KEYS, 1, containing=LABEL_SUBSTRING) is None:
                # Images (and their dense targets) without labels, as Keras' own CutMix takes them.
                return self.call_dict(data, training=training)
            targets = data
        elif isinstance(data, (tuple, list)) and len(data) >= 2 and isinstance(data[1], Mapping):
            # torchvision's (images, targets): the dense targets sit beside the labels.
            targets = data[1]
        if targets is not None:
            self.check_boxes(targets)
            masks = targets.get("segmentation_masks")
        images, labels, rebuild = self.split(data)
        images, _ = self.check_images(images)
        if masks is not None:
            masks = self.check_masks(masks, images, False)
        if isinstance(data, (tuple, list)):
            self._refuse_pixel_extras(data[2:], images)
        batch_size = self.ops.shape(images)[0]
        transformation = self.get_random_transformation(images, training=training)
        out = self.transform_images(images, transformation, training=training)
        if labels is None:
            # Images alone, as Keras' own CutMix / MixUp take them: mixed images, no labels.
            return out
        labels_out = self.transform_labels(labels, transformation, training=training, batch_size=batch_size)
        result = rebuild(out, labels_out)
        if masks is not None:
            # A fresh dict (rebuild copies the one that held the labels): written in place.
            holder = cast(dict[str, Any], result if isinstance(result, Mapping) else result[1])
            holder["segmentation_masks"] = self.transform_masks(masks, transformation)
        return result

    def _refuse_pixel_extras(self, extras: Any, images: Tensor) -> None:
        """Refuse the extra items of an ``(images, labels, ...)`` tuple, at any depth, laid out on
        the pixels (masks, per-pixel maps) or holding boxes, keypoints or masks by their key
        (``bounding_boxes``, ``boxes``, ``keypoints``, ``segmentation_masks``): they are returned
        untouched while the images are mixed."""
        name = type(self).__name__
        for extra in extras:
            keys = coordinate_keys(extra, lambda value: hasattr(value, "shape"), _EXTRA_TARGET_WORDS)
            if keys:
                raise ValueError(
                    f"{name}: the tuple holds an extra item with {', '.join(map(repr, keys))}; extra items are "
                    "returned untouched while the images are mixed, so they would no longer match. Call the layer on "
                    "a dict {'images', 'labels', 'segmentation_masks'} (masks follow the pixels; boxes are refused)"
                )
            for leaf in keras.tree.flatten(extra):
                shape = getattr(leaf, "shape", None)
                if shape is not None and geometry.pixel_layout(tuple(images.shape), tuple(shape),
                                                               self.data_format == "channels_first") == "laid_out":
                    raise ValueError(
                        f"{name}: the tuple holds an item of shape {tuple(shape)} laid out on the pixels of the "
                        f"images {tuple(images.shape)}; extra items are returned untouched while the images are "
                        "mixed, so they would no longer match. Give segmentation masks in a dict under "
                        "'segmentation_masks' (they then follow the pixels)"
                    )

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not self.mixes:
            return super().compute_output_shape(input_shape)
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
        if shape is not None and len(shape) == 4 and all(d is None or isinstance(d, int) for d in shape):
            return shape  # images alone, as Keras' own CutMix / MixUp take them: mixed, same shape
        raise ValueError(
            f"{type(self).__name__}: compute_output_shape takes the shape of an image batch {self._layout()} "
            f"(images alone); got {input_shape!r}. For (images, labels) or a dict, use compute_output_spec"
        )

    def compute_output_spec(self, data: Any, training: Any = None) -> Any:
        no_labels = (isinstance(data, Mapping) and "images" in data
                     and find_key(data, 1, LABEL_KEYS, 1, containing=LABEL_SUBSTRING) is None)
        if not self.mixes or no_labels or _is_tensor_like(data):
            if self.mixes and isinstance(data, keras.KerasTensor) and not self._warned_in_a_model:
                # A layer of a model gets the images alone: fit would train on mixed images with
                # their labels unmixed (Keras' own CutMix / MixUp do the same, without a word).
                self._warned_in_a_model = True
                warnings.warn(
                    f"{type(self).__name__} is called on images alone inside a model: it mixes the images, but "
                    "fit's labels are not mixed with them. Mix images and labels together: use "
                    "maskmix.callbacks.MaskMixModel(mix=...), or map the layer over (images, labels) in tf.data",
                    UserWarning, stacklevel=2)
            # Images alone, or a dict of images and dense targets: the shapes and dtypes come back.
            return super().compute_output_spec(data, training=training)
        images, labels, rebuild = self.split(data)
        if labels is None:  # pragma: no cover - bare images returned above
            raise TypeError(f"{type(self).__name__}: expected (images, labels)")
        self.check_symbolic_images(images)
        targets = data if isinstance(data, Mapping) else data[1] if isinstance(data[1], Mapping) else None
        if targets is not None:
            self.check_dense_spec(targets, images)
        dtype = keras.backend.standardize_dtype(labels.dtype)
        if self.check_label_spec(tuple(labels.shape), dtype) == "rows":
            classes = labels.shape[1]
        else:
            classes = self.num_classes
        label_dtype = "float64" if dtype == "float64" else "float32"
        out_images = keras.KerasTensor(images.shape, dtype=images.dtype)
        out_labels = keras.KerasTensor((images.shape[0], classes), dtype=label_dtype)
        return _fresh_specs(rebuild(out_images, out_labels))

    # ----------------------------------------------------------------------------------------
    # Labels.
    # ----------------------------------------------------------------------------------------

    def soft_labels(self, labels: Tensor, batch_size: Any = None) -> Tensor:
        """Validate ``labels`` and return smoothed soft labels ``(B, K)`` (float32 or float64)."""
        name = type(self).__name__
        ops = self.ops
        labels = ops.convert_to_tensor(labels)
        dtype = keras.backend.standardize_dtype(labels.dtype)
        kind = self.check_label_spec(tuple(labels.shape), dtype)
        self._check_batch(labels, batch_size)
        if kind == "indices":  # num_classes is set: check_label_spec refuses indices without it
            soft = class_index_rows(name, self.backend.name, ops, labels, cast(int, self.num_classes))
        else:
            # Integer one-hot rows (keras.utils.to_categorical(..., dtype="int32"), a one-hot cast
            # to int) are soft labels, as the torch transforms read them.
            labels = ops.cast(labels, "float32") if dtype in geometry.INT_DTYPES else labels
            labels = soft_label_rows(name, self.backend.name, ops, labels)
            soft = ops.cast(labels, "float64" if dtype == "float64" else "float32")
            if self.label_smoothing > 0 and soft.shape[1] != 1:  # one binary column goes towards 0.5
                soft = distribution_rows(name, self.backend.name, ops, soft, self.label_smoothing)
        if self.label_smoothing > 0:
            # One column holds binary labels: smoothed towards 0.5, as Keras' binary losses do.
            classes = ops.numpy.maximum(ops.cast(ops.shape(soft)[1], soft.dtype), 2.0)
            soft = soft * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        return soft

    def check_label_spec(self, shape: tuple[Any, ...], dtype: str) -> str:
        """Check labels by their shape and dtype alone (``None`` for an unknown size), for the eager
        call and the symbolic one (a model being built) alike; return ``"indices"`` for class
        indices ``(B,)`` and ``"rows"`` for one-hot/soft rows ``(B, K)`` (integer rows included)."""
        name = type(self).__name__
        rank = len(shape)
        if dtype in geometry.INT_DTYPES and rank != 2:
            if rank != 1:
                raise ValueError(f"{name}: class-index labels must have shape (B,); got shape {shape}")
            if self.num_classes is None:
                raise ValueError(f"{name}: num_classes is required when labels are class indices")
            return "indices"
        if dtype not in geometry.INT_DTYPES and dtype not in geometry.FLOAT_DTYPES:
            raise TypeError(f"{name}: labels must be integer class indices or floating soft labels; got {dtype}")
        if rank != 2:
            raise ValueError(f"{name}: one-hot/soft labels must have shape (B, K); got shape {shape}")
        classes = shape[1]
        if self.num_classes is not None and classes is not None and classes != self.num_classes:
            column = dtype in geometry.INT_DTYPES and classes == 1
            hint = (" (integer labels of shape (B, 1) are one column of binary labels, as torch reads them; "
                    "give class indices with shape (B,), e.g. keras.ops.squeeze(labels, -1))") if column else ""
            raise ValueError(f"{name}: labels have {classes} classes but num_classes is {self.num_classes}{hint}")
        return "rows"

    def _check_batch(self, labels: Tensor, batch_size: Any) -> None:
        got = labels.shape[0]
        if isinstance(batch_size, int) and isinstance(got, int) and got != batch_size:
            raise ValueError(f"{type(self).__name__}: labels have batch size {got} but the images have {batch_size}")


def host_values(backend: str, labels: Tensor) -> np.ndarray | None:
    """The values of ``labels`` (computed with the Keras ``backend``) as a NumPy array where reading
    them needs no trace and no device synchronisation (eager, on the host), else None: the label
    checks below run there only, as reading them in a compiled step is not possible."""
    if not _is_concrete_cpu(backend, labels):
        return None
    # A layer inside a tf.data graph computes with TensorFlow whatever the global backend.
    return keras.ops.convert_to_numpy(labels) if backend == keras.backend.backend() else labels.numpy()


def check_class_indices(owner: str, backend: str, labels: Tensor, num_classes: int) -> bool:
    """Refuse class indices outside ``[0, num_classes)`` where their values can be read
    (:func:`host_values`): ``one_hot`` would make them zero rows, which train on nothing. Called
    on the labels as given: a cast to int32 first could wrap an int64 index into the range.
    Returns whether the values could be read (and were checked)."""
    values = host_values(backend, labels)
    if values is None:
        return False
    inside = (values >= 0) & (values < num_classes)
    if not inside.all():
        raise ValueError(f"{owner}: class indices must lie in [0, {num_classes}); got {values[~inside][:5].tolist()}")
    return True


def class_index_rows(owner: str, backend: str, ops: Any, labels: Tensor, num_classes: int) -> Tensor:
    """Float32 one-hot rows ``(B, num_classes)`` of the class indices ``labels`` ``(B,)``.

    Indices outside ``[0, num_classes)`` raise a ``ValueError`` where their values can be read
    (:func:`check_class_indices`); where they cannot (a compiled step, an accelerator) their rows
    are NaN instead of ``one_hot``'s zero rows: the loss then shows them (NaN), where zero rows
    would silently train on nothing. ``ops`` is ``keras.ops`` or a layer's backend.
    """
    soft = ops.nn.one_hot(ops.cast(labels, "int32"), num_classes, dtype="float32")
    if check_class_indices(owner, backend, labels, num_classes):
        return soft
    np_ = ops.numpy
    # Compared as given: a cast to int32 first could wrap an int64 index into the range.
    inside = np_.logical_and(np_.greater_equal(labels, 0), np_.less(labels, num_classes))
    return _sampling.where(ops, np_.expand_dims(inside, -1), soft, float("nan"))


def check_soft_labels(owner: str, backend: str, labels: Tensor) -> bool:
    """Refuse ``(B, K)`` one-hot/soft labels below 0 or above 1 where their values can be read
    (:func:`host_values`): class indices shaped ``(B, 1)`` (``keras.datasets``' ``y_train``) or
    logits would otherwise be mixed as if they were probabilities. NaN passes, as in the pixels:
    it shows in the loss. Returns whether the values could be read (and were checked)."""
    values = host_values(backend, labels)
    if values is None:
        return False
    values = values.astype("float64")
    if ((values < 0) | (values > 1)).any():
        hint = (" (labels shaped (B, 1) that hold class indices: pass them shaped (B,), e.g. "
                "keras.ops.squeeze(labels, -1), with num_classes)") if values.shape[1] == 1 else ""
        raise ValueError(
            f"{owner}: one-hot/soft labels must lie in [0, 1]; got values from "
            f"{np.nanmin(values):g} to {np.nanmax(values):g}{hint}"
        )
    return True


def soft_label_rows(owner: str, backend: str, ops: Any, labels: Tensor) -> Tensor:
    """The ``(B, K)`` one-hot/soft ``labels``, checked: a value outside ``[0, 1]`` raises a
    ``ValueError`` where the values can be read (:func:`check_soft_labels`); where they cannot (a
    compiled step, an accelerator) its row is NaN instead, which the loss shows, where the row
    would otherwise be mixed as a probability and train silently. ``ops`` is ``keras.ops`` or a
    layer's backend."""
    if check_soft_labels(owner, backend, labels):
        return labels
    np_ = ops.numpy
    outside = np_.any(np_.logical_or(np_.less(labels, 0), np_.greater(labels, 1)), axis=1, keepdims=True)
    return _sampling.where(ops, outside, ops.cast(float("nan"), keras.backend.standardize_dtype(labels.dtype)), labels)


def distribution_rows(owner: str, backend: str, ops: Any, rows: Tensor, smoothing: float) -> Tensor:
    """Float ``(B, K)`` label ``rows`` to be smoothed towards ``1 / K``, checked to be distributions
    (summing to 1): multi-hot rows (several labels per image, a sigmoid output's targets) would
    be smoothed towards ``1 / K`` where their convention (Keras', timm's) is 0.5. Raises a
    ``ValueError`` where the values can be read; elsewhere such a row becomes NaN (see
    :func:`soft_label_rows`)."""
    values = host_values(backend, rows)
    if values is not None:
        if (np.abs(values.astype("float64").sum(axis=1) - 1.0) > ROW_SUM_TOLERANCE).any():
            raise ValueError(multi_hot_smoothing_message(owner, smoothing))
        return rows
    np_ = ops.numpy
    off = np_.greater(np_.abs(np_.sum(rows, axis=1, keepdims=True) - 1.0), ROW_SUM_TOLERANCE)
    return _sampling.where(ops, off, ops.cast(float("nan"), keras.backend.standardize_dtype(rows.dtype)), rows)


class FunctionOptions(TypedDict, total=False):
    """The common options the functional forms take (``seed`` is their own argument)."""

    augmentation_ratio: float
    bernoulli_mix: bool
    pixels_range: tuple[float, float] | None
    value_range: tuple[float, float] | None
    sampling: str
    data_format: str | None


def mix_once(layer_class: type[MixingLayer], owner: str, images: Tensor, labels: Tensor, seed: Any,
             **config: Any) -> tuple[Tensor, Tensor]:
    """The functional forms (``random_cutmix``, ``random_mixup``): one call of a layer built with
    stateless seeds (see :mod:`maskmix.keras._seeds`), so that no variable is created per call."""
    layer = layer_class(seed=_seeds.stateless_seeds(owner, seed, images), **config)
    return layer((images, labels))


def _is_tensor_like(data: Any) -> bool:
    return not isinstance(data, (Mapping, tuple, list)) and hasattr(data, "shape")


def _is_concrete_cpu(backend: str, x: Any) -> bool:
    """True when ``x`` holds values on the host that can be read without a device sync or a trace."""
    if backend == "tensorflow":
        return not _compat.in_tf_graph() and "CPU" in getattr(x, "device", "CPU").upper()
    if backend == "jax":
        return not _compat.is_in_jax_tracing_scope(x) and all(d.platform == "cpu" for d in x.devices())
    if backend == "torch":
        import torch

        return x.device.type == "cpu" and not torch.compiler.is_compiling()
    return True
