"""The Keras base layers: everything the strategies have in common lives here.

:class:`MaskMixLayer` owns what design §Conventions says about every layer: accepted inputs (rank 3 = one
image, rank 4 = a batch, ``channels_last`` or ``channels_first``, an unknown batch size at trace
time), dtypes, the value range, fraction control (``augmentation_ratio`` / ``bernoulli_mix``),
bit-identical pass-through, seeding, the ``training`` flag, serialisation and the switch to the
TensorFlow ops inside a ``tf.data`` pipeline. It follows the split of Keras' own image
preprocessing layers: :meth:`MaskMixLayer.get_random_transformation` draws every random quantity
once per call, as per-image tensors; :meth:`MaskMixLayer.transform_images` applies them.

:class:`MaskingLayer` adds the fill methods for the strategies that erase a region: a strategy
only samples its region parameters and says which pixels they cover.

Backends and ``tf.data``
------------------------
The layer math uses ``self.backend``, a Keras ``DynamicBackend``: normally the active Keras
backend (its ``numpy``/``random`` functions are what ``keras.ops``/``keras.random`` call for
concrete tensors), switched to TensorFlow for the duration of a call made inside a TensorFlow
graph that is not a Keras symbolic call, i.e. inside ``tf.data.Dataset.map``, whatever the
global backend. This is what Keras' own ``DataLayer`` (``TFDataLayer`` before Keras 3.9) does;
we do not subclass that private class because its ``__call__`` casts every input to the layer's
compute dtype (uint8 images and integer labels would become float32) and because its name and
module changed between Keras versions. Only its two small public-behaviour helpers are used
(``DynamicBackend`` and ``in_tf_graph``, through :mod:`maskmix.keras._compat`), as Keras does.

Seeding
-------
``seed`` (an int or None) seeds a ``keras.random.SeedGenerator`` stored on the layer; each call
takes :data:`~maskmix.keras._seeds.CALL_SEEDS` consecutive seeds of its state at once (one
update of the variable, see :class:`~maskmix.keras._seeds.CallSeeds`), so two layers built with
the same seed give the same outputs for the same inputs, call after call. The seed is part of
``get_config``, the generator's state is not: Keras does not save ``SeedGenerator`` state in
``.keras`` files, so a reloaded layer restarts its random stream from the seed. Inside ``tf.data``
under a non-TensorFlow backend a second, TensorFlow-backed generator with the same seed is
created on first use (as Keras' ``DataLayer`` does).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypedDict, TypeVar

import keras
import numpy as np

from maskmix import registry
from maskmix._checks import LARGEST_FINITE, float_fill_refusal, uint8_refusal
from maskmix.geometry import IMAGE_DTYPES, IMAGE_DTYPES_TEXT, looks_transposed
from maskmix.registry import StrategySpec
from maskmix.schedules import lent_value

from . import _compat, _sampling, _seeds

__all__ = [
    "SUPPORTED_DTYPES",
    "CommonOptions",
    "MaskMixLayer",
    "MaskingLayer",
]

#: Image dtypes every layer accepts (design §Conventions); float64 where the backend has it (JAX needs x64).
SUPPORTED_DTYPES: tuple[str, ...] = IMAGE_DTYPES


def _jax_has_x64() -> bool:
    """Whether JAX keeps 64-bit values (``jax_enable_x64``); JAX is imported when it is the backend."""
    jax = sys.modules.get("jax")
    return jax is None or bool(jax.config.jax_enable_x64)


#: Keyword arguments that belong to ``keras.layers.Layer`` rather than to the strategy.
_LAYER_KWARGS = frozenset({"name", "dtype", "trainable", "autocast"})

Tensor = Any


class CommonOptions(TypedDict, total=False):
    """Keyword-only options every layer accepts (see :class:`MaskMixLayer`)."""

    augmentation_ratio: float
    bernoulli_mix: bool
    pixels_range: tuple[float, float] | None
    value_range: tuple[float, float] | None
    sampling: str
    seed: int | None
    data_format: str | None
    name: str | None
    dtype: Any
    trainable: bool


_Built = TypeVar("_Built", bound="MaskMixLayer")


def _tracing(images: Any) -> bool:
    """Whether the layer runs inside a trace (tf.function/tf.data graph, jax.jit, torch.compile),
    where a Python number it reads becomes a constant of the traced step."""
    return _compat.in_tf_graph() or _compat.is_in_jax_tracing_scope(images) or _seeds.torch_compiling()


def checked_when_run(tensor: Any, wanted: Sequence[Any], message: str) -> Any:
    """``tensor``, whose dims must equal ``wanted`` (ints, or scalar tensors of sizes known only
    when a graph runs, as ``keras.ops.shape`` gives them), with the dims the trace cannot compare
    checked when a TensorFlow graph runs: the tensor's users wait for the check, so that a
    mismatch raises ``message`` instead of broadcasting silently (a leading dim of 1 would) or
    failing later with an index error of its own. Dims known while tracing are the caller's to
    check; outside a TensorFlow graph every dim is known and ``tensor`` comes back as it is."""
    shape = tuple(tensor.shape)
    unknown = [axis for axis, (got, want) in enumerate(zip(shape, wanted, strict=True))
               if not (isinstance(got, int) and isinstance(want, int))]
    if not unknown or not _compat.in_tf_graph():
        return tensor
    import tensorflow as tf

    actual = tf.shape(tensor)
    expected = tf.stack([tf.cast(wanted[axis], actual.dtype) for axis in unknown])
    check = tf.debugging.assert_equal(tf.gather(actual, unknown), expected, message=message)
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


class MaskMixLayer(keras.layers.Layer):
    """Base class of every maskmix Keras layer.

    Subclasses set :attr:`spec` (their framework-free parameter specification) and implement
    :meth:`sample` (draw per-image parameters) and :meth:`apply` (change the pixels of a rank-4
    batch in the layer's ``data_format``). The base class does the rest.

    Keyword-only options shared by every layer:

    Args:
        augmentation_ratio: fraction of the images of the batch to augment, in ``[0, 1]``.
            Default 1.0.
        bernoulli_mix: ``False`` augments exactly ``round(ratio * B)`` images (halves rounded
            up) at random positions; ``True`` augments each image independently with probability
            ``ratio``. Default False. One rank-3 image (a per-sample ``tf.data`` map) is always
            augmented with probability ``ratio``: an exact count of one image would be all or
            nothing.
        pixels_range: ``(lo, hi)`` value range of the images, used by the ``black``, ``gray``,
            ``white``, ``random`` and ``noise`` fills. ``None`` means ``(0, 1)`` for floating
            dtypes and ``(0, 255)`` for ``uint8``. Float images in ``[0, 255]`` (e.g. from
            ``keras.utils.image_dataset_from_directory``) need ``(0, 255)``. uint8 images take
            whole numbers in ``[0, 255]`` only (and refuse the ``normal`` fills).
        value_range: Keras' name for ``pixels_range`` (give one, not both); saved as ``pixels_range``.
        sampling: what one random draw covers (design §Conventions, sampling modes).
            ``"image"`` (default): every image draws its own parameters. ``"batch"``: one draw
            shared by every image of the batch (the papers' per-batch CutMix, Mixup, CutBlur and
            Cut-Thumbnail; Kornia's ``same_on_batch=True``); with ``bernoulli_mix=True`` one coin
            decides for the whole batch (all images or none), without it the exact count of
            images is selected as usual and they share the draw. ``"pair"`` (timm's
            ``mode="pair"``): images ``i`` and ``B - 1 - i`` form a unit with one draw and one
            selection (the exact count then counts pairs); the middle image of an odd batch is a
            unit of its own. Works with an unknown batch size.
        seed: int or None, seeds the layer's ``keras.random.SeedGenerator``; within the dtype of
            its state on the backend (int64 on TensorFlow, int32 on torch, uint32 on JAX).
        data_format: ``"channels_last"`` (``(B, H, W, C)``) or ``"channels_first"``
            (``(B, C, H, W)``); None uses ``keras.config.image_data_format()``. Images that look
            laid out the other way (more than 4 channels where the other layout has 1 to 4,
            e.g. a ``(B, 3, 32, 32)`` batch for a channels-last layer) raise a ``ValueError``.
        **kwargs: ``name``, ``dtype``, ``trainable`` of ``keras.layers.Layer``.

    Calling: ``layer(images, training=None)``. ``images`` is rank 4 (a batch) or rank 3 (one
    image) of dtype float16, bfloat16, float32, float64 or uint8; the output has the input's
    shape and dtype (the layer does not autocast). With ``training=False`` (e.g. in
    ``model.predict``/``evaluate``) the images are returned unchanged; called directly or with
    ``training=True`` (``model.fit``) it augments, as Keras' own random preprocessing layers.
    Each image gets its own random parameters (with the default ``sampling="image"``); unselected
    images come back bit-identical; the input is never modified. The layer works in eager mode, in
    ``tf.function`` (also with ``jit_compile=True``), inside ``tf.data.Dataset.map`` (any backend)
    with an unknown batch size, and on the TensorFlow, torch and JAX backends.

    ``images`` may also be Keras' dict (``{"images", "segmentation_masks", "bounding_boxes",
    "labels", ...}``, also as ``keras.Input``s): see :meth:`call_dict`. Masks follow the pixels
    as the strategy's :attr:`dense_targets` and :meth:`move_masks` say.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomErasing
        >>> images = np.repeat(np.random.rand(1, 8, 8, 3).astype("float32"), 4, axis=0)
        >>> out = np.asarray(RandomErasing(sampling="batch", fill_method=0.0, seed=0)(images))
        >>> bool((out == out[0]).all())  # one rectangle for the whole batch
        True
        >>> from maskmix.keras import RandomCutPaste
        >>> batch = {"images": np.random.rand(2, 16, 16, 3).astype("float32"),
        ...          "segmentation_masks": np.random.randint(0, 4, (2, 16, 16, 1))}
        >>> out = RandomCutPaste(seed=0)(batch)  # the masks move with the pasted patch
        >>> sorted(out), out["segmentation_masks"].shape == batch["segmentation_masks"].shape
        (['images', 'segmentation_masks'], True)
    """

    spec: ClassVar[StrategySpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A class that declares its own spec under the spec's name implements that strategy: the
        # registry finds it there (tests, benchmarks and the gallery iterate over the registry).
        spec = cls.__dict__.get("spec")
        if spec is not None and spec.name == cls.__name__:
            registry.register_implementation(spec, "keras", cls)

    #: True for the strategies that need a batch (they pair images of the batch).
    needs_batch: bool = False

    #: True for the strategies that build resampling matrices from the image size (CutBlur,
    #: Cut-Thumbnail): their height and width must be known when the layer is traced.
    needs_static_size: bool = False

    #: Set per instance by strategies whose spec has a ``return_labels`` parameter (CutPaste,
    #: CutSwap): the layer then returns ``(images, is_augmented)`` with int64 ``is_augmented``.
    return_labels: bool = False

    #: What the strategy does with the dense targets of a dict input (the twin of the torch
    #: transforms' attribute): ``"keep"``: pixels stay in place (erasing, CutBlur), so
    #: ``bounding_boxes`` pass through and ``segmentation_masks`` go through :meth:`move_masks`
    #: (unchanged by default); ``"move"``: pixels move within or between images, so masks follow
    #: them through :meth:`move_masks` and boxes, which would not follow, are refused.
    dense_targets: ClassVar[str] = "keep"
    #: Whether the strategy reads ``pixels_range`` (fills, colour jitter); uint8 images then refuse
    #: one they cannot hold. For the others it is accepted and unused.
    reads_pixels_range: ClassVar[bool] = False

    # Set by the validated parameters (annotations for type checkers).
    augmentation_ratio: float
    bernoulli_mix: bool
    pixels_range: tuple[float, float] | None
    sampling: str

    def __init__(self, *, seed: int | None = None, data_format: str | None = None, **kwargs: Any) -> None:
        _compat.keep_out_of_autograph()  # TensorFlow may have been loaded after maskmix.keras
        name = type(self).__name__
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LAYER_KWARGS}
        if "value_range" in kwargs:
            # Keras' own name for `pixels_range` (its layers default to (0, 255)); stored and
            # serialised as `pixels_range`, so get_config round-trips.
            value_range = kwargs.pop("value_range")
            if kwargs.get("pixels_range") is not None and value_range is not None:
                raise ValueError(
                    f"{name}: value_range is Keras' name for pixels_range; give one of them, not both "
                    f"(got pixels_range={kwargs['pixels_range']!r}, value_range={value_range!r})"
                )
            if value_range is not None:
                kwargs["pixels_range"] = value_range
        # Everything else is a strategy parameter: unknown names fail in `validate` with the same
        # message as the torch transform.
        validated = self.spec.validate(kwargs, owner=name)
        # The functional forms (random_cutmix, ...) pass a stream of stateless seeds: no variable.
        stateless = seed if isinstance(seed, _seeds.StatelessSeeds) else None
        seed = None if stateless is not None else seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"{name}: seed must be an int or None; got {seed!r}")
        if seed is not None:
            # The SeedGenerator's state holds it (int64 on TensorFlow, int32 on torch, uint32 on
            # JAX): beyond, Keras failed with "out of bounds for uint32", "cannot be converted to
            # type int32 without overflow" or "out-of-range integer", naming no layer.
            state = _compat.random_seed_dtype()
            bounds = np.iinfo(state)
            if not int(bounds.min) <= seed <= int(bounds.max):
                raise ValueError(
                    f"{name}: seed must be None or an int in [{bounds.min}, {bounds.max}] (Keras' "
                    f"{keras.backend.backend()} backend keeps seeds as {state}); got {seed}"
                )
        if data_format is not None and data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"{name}: data_format must be None, 'channels_last' or 'channels_first'; got {data_format!r}"
            )
        if layer_kwargs.pop("autocast", False):
            # It would be dropped, silently: the layers compute in their inputs' dtype (class docs).
            raise ValueError(f"{name}: autocast=True is not supported; the layer computes in its images' dtype")
        super().__init__(autocast=False, **layer_kwargs)
        for key, value in validated.items():
            setattr(self, key, value)
        #: The validated parameters (what get_config saves); a later assignment of one is
        #: validated again and recorded here (__setattr__).
        self._strategy_params = validated
        self.seed = seed
        self.data_format = data_format or keras.config.image_data_format()
        self.backend = _compat.DynamicBackend()
        if stateless is None:
            self.generator = keras.random.SeedGenerator(seed)
        else:  # untracked: a layer's state is its variables, and the stream has none
            object.__setattr__(self, "generator", stateless.bind(self.backend))
        self._allow_non_tensor_positional_args = True
        self.built = True

    @classmethod
    def from_paper(cls: type[_Built], setting: str | None = None, **options: Any) -> _Built:
        """The strategy configured as its paper's official code (or the paper) did in ``setting``.

        The settings are declared once, framework-free, in the strategy's spec
        (``cls.spec.papers``: ``{setting: Preset(config, source, notes)}``; the docs list them with
        their sources). ``setting=None`` takes the first one. ``options`` are passed on top of the
        setting's parameters (``seed``, ``pixels_range``, ...); an unknown setting is a
        ``ValueError`` listing the known ones.

        Example:
            >>> from maskmix.keras import RandomCutout
            >>> RandomCutout.from_paper("svhn", seed=0).patch_side  # a 20-pixel square on 32x32 images
            (20, 20)
        """
        return cls(**cls.spec.paper_arguments(setting, options, owner=cls.__name__))

    # ----------------------------------------------------------------------------------------
    # Strategy hooks.
    # ----------------------------------------------------------------------------------------

    def sample(self, batch_size: int | Tensor, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        """Draw the per-image parameters of a batch (tensors of leading dim ``B``)."""
        raise NotImplementedError

    def sample_units(self, batch_size: int | Tensor, units: int | Tensor, unit_of: Tensor | None, channels: int,
                     height: int, width: int, *, dtype: str, seed: Any) -> dict[str, Any]:
        """The ``(B, ...)`` parameters of a batch whose ``B`` images take ``units`` draws: image ``i``
        takes draw ``unit_of[i]`` (None: its own; see ``sampling``). By default :meth:`sample` for
        the units, spread; the mixing base also draws each image's partner."""
        params = self.sample(units, channels, height, width, dtype=dtype, seed=seed)
        return _sampling.spread(self.ops, params, unit_of)

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Return a new rank-4 tensor of ``images``' dtype with the selected images changed.

        ``params["selected"]`` is the boolean ``(B,)`` selection; unselected images must come back
        bit-identical (typically through one ``where``).
        """
        raise NotImplementedError

    def move_masks(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Hook: the rank-4 segmentation ``masks`` (``(B, H, W, 1)``, channels-first ``(B, 1, H,
        W)``, any integer dtype or bool) as the drawn ``params`` change their images' pixels.

        Unselected images' masks must come back bit-identical. A strategy that moves pixels
        (``dense_targets = "move"``) moves the mask pixels with the same indices as the image
        pixels, copying values (never resampling them). By default the masks are kept by a
        ``"keep"`` strategy and refused by the others (a mover must say how its masks move).
        """
        if self.dense_targets == "keep":
            return masks
        raise ValueError(
            f"{type(self).__name__}: segmentation_masks are not supported by this layer yet; "
            "remove the 'segmentation_masks' key"
        )

    # ----------------------------------------------------------------------------------------
    # Helpers for strategies.
    # ----------------------------------------------------------------------------------------

    @property
    def ops(self) -> Any:
        """The backend namespace the layer math uses (see the module docstring)."""
        return self.backend

    @property
    def channels_first(self) -> bool:
        return self.data_format == "channels_first"

    def needs_unit_range(self) -> bool:
        """Whether float images must lie in ``(0, 1)`` for this layer as configured: it reads the
        range's upper end (the ``white``, ``gray``, ``random`` and ``noise`` fills, CutPaste's
        colour jitter) and no ``pixels_range`` is given. A ``black`` fill (the range's low end, 0)
        and the other fills do not depend on it."""
        if not self.reads_pixels_range or self.pixels_range is not None:
            return False
        fill = getattr(self, "fill_method", None)
        if fill is not None:
            return isinstance(fill, str) and fill in ("white", "gray", "random", "noise")
        return bool(getattr(self, "color_jitter", 0) or getattr(self, "hue_jitter", 0))

    def value_range(self, dtype: str) -> tuple[float, float]:
        """The images' ``(lo, hi)``: ``pixels_range``, or the dtype's natural range."""
        if self.pixels_range is not None:
            return self.pixels_range
        return (0.0, 255.0) if dtype == "uint8" else (0.0, 1.0)

    @staticmethod
    def compute_dtype_for(dtype: str) -> str:
        """The floating dtype in which values for an image of ``dtype`` are computed."""
        return "float32" if dtype == "uint8" else dtype

    def to_image_dtype(self, values: Tensor, dtype: str, *, within_range: bool = False) -> Tensor:
        """Cast computed values to the image dtype: floats as they are, uint8 rounded and saturated.

        Finite values beyond float16's largest (65504: bicubic overshoot, computed in float32)
        saturate there for float16 images instead of becoming inf; inf and NaN stay.
        ``within_range=True`` says the values cannot leave the images' range (a convex combination
        of pixels): the float16 saturation is skipped (uint8 values are still rounded and clipped)."""
        ops = self.ops
        if dtype == "uint8":
            values = ops.numpy.clip(ops.numpy.round(ops.cast(values, "float32")), 0.0, 255.0)
        elif dtype == "float16" and not within_range and keras.backend.standardize_dtype(values.dtype) != dtype:
            top = LARGEST_FINITE["float16"]
            values = _sampling.where(ops, ops.numpy.isinf(values), values, ops.numpy.clip(values, -top, top))
        return ops.cast(values, dtype)

    def dims(self, images: Tensor) -> tuple[Any, int, int, int]:
        """``(B, C, H, W)`` of a rank-4 batch in the layer's layout (``B`` may be a tensor)."""
        shape = self.ops.shape(images)
        if self.channels_first:
            return shape[0], shape[1], shape[2], shape[3]
        return shape[0], shape[3], shape[1], shape[2]

    def pixel_mask(self, mask: Tensor) -> Tensor:
        """A ``(B, H, W)`` mask broadcastable against the batch: a channel axis of size 1."""
        return self.ops.numpy.expand_dims(mask, 1 if self.channels_first else -1)

    def per_channel(self, values: Tensor) -> Tensor:
        """``(B, C)`` values broadcastable against the batch (``(B, 1, 1, C)`` or ``(B, C, 1, 1)``)."""
        ops = self.ops
        if self.channels_first:
            return ops.numpy.expand_dims(ops.numpy.expand_dims(values, -1), -1)
        return ops.numpy.expand_dims(ops.numpy.expand_dims(values, 1), 1)

    def per_image(self, values: Tensor) -> Tensor:
        """``(B,)`` values broadcastable against the batch (``(B, 1, 1, 1)``)."""
        return self.ops.numpy.reshape(values, (-1, 1, 1, 1))

    @property
    def spatial_axes(self) -> tuple[int, int]:
        return (2, 3) if self.channels_first else (1, 2)

    # ----------------------------------------------------------------------------------------
    # Seeds and backend switching.
    # ----------------------------------------------------------------------------------------

    @_compat.no_automatic_dependency_tracking
    def seed_generator(self) -> keras.random.SeedGenerator:
        """The generator for the backend the layer currently computes with."""
        name = self.backend.name
        if name == keras.backend.backend() or isinstance(self.generator, _seeds.StatelessSeeds):
            return self.generator
        if not hasattr(self, "_backend_generators"):
            self._backend_generators: dict[str, Any] = {}
        if name not in self._backend_generators:
            self._backend_generators[name] = keras.random.SeedGenerator(self.seed, backend=self.backend)
        return self._backend_generators[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("seed", "data_format") and "backend" in self.__dict__ and value != self.__dict__.get(name):
            # Read once, at construction (the seed generator, the layout): a later value was not
            # used, yet get_config saved it (a reloaded layer differed, or failed to load).
            raise ValueError(f"{type(self).__name__}: {name} is fixed at construction; build a new layer with "
                             f"{name}={value!r}")
        params = self.__dict__.get("_strategy_params")
        if params is None or name not in params:
            super().__setattr__(name, value)
            return
        owner = type(self).__name__
        # Checked as the constructor checks it, with the other parameters (joint rules included),
        # and recorded for get_config: a saved model must rebuild the layer that ran.
        params = self.spec.validate({**params, name: value}, owner=owner)
        value = params[name]
        traced = self.__dict__.get("_maskmix_traced")
        if traced and name in traced and not (type(value) is type(self.__dict__.get(name))
                                              and value == self.__dict__.get(name)):
            if traced[name]:
                raise ValueError(
                    f"{owner}: {name} cannot be set (to {value!r}): a schedule drives it in the traced step it "
                    "ran in, which reads the schedule's variable, not this attribute; change the schedule"
                )
            schedulable = self.spec.param(name).schedulable
            instead = (
                f"Schedule it instead, e.g. MaskMixModel(..., schedules={{{owner!r}: {{{name!r}: "
                "maskmix.schedules.constant(...)}}) or MaskMixPipeline(schedules=...).set_epoch(...), or build a "
                "new layer" if schedulable else "Build a new layer with the new value"
            )
            raise ValueError(
                f"{owner}: {name} cannot change (to {value!r}) after the layer ran in a traced step "
                "(tf.function, jit_compile, jax.jit or tf.data): that step keeps the value it was traced "
                f"with and would silently ignore the new one. {instead}"
            )
        self.__dict__["_strategy_params"] = params
        super().__setattr__(name, value)

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            # layer(x, False) reached `call` as a second `training` (Keras passes its own as a
            # keyword): "got multiple values for argument 'training'" named neither the layer nor
            # the remedy. The labels go with the images in one tuple.
            raise TypeError(
                f"{type(self).__name__}: takes one input (images, a tuple (images, labels) or a dict); pass training "
                f"as a keyword (layer(x, training=False)); got {len(args)} more positional argument(s)"
            )
        sample = keras.tree.flatten(inputs)[0] if keras.tree.is_nested(inputs) else inputs
        if (
            not isinstance(sample, keras.KerasTensor)
            and _compat.in_tf_graph()
            and not _compat.is_in_jax_tracing_scope(sample)
        ):
            # Inside a TensorFlow graph (a tf.data pipeline, or a tf.function on the TF backend):
            # compute with the TensorFlow ops. Inputs keep their own dtype (no cast to floatx).
            self.backend.set_backend("tensorflow")
            inputs = keras.tree.map_structure(lambda x: self.backend.convert_to_tensor(x), inputs)
            try:
                with _compat.inputs_kept_as_given(self):
                    return super().__call__(inputs, *args, **kwargs)
            finally:
                self.backend.reset()
        if keras.config.floatx() == "bfloat16" and keras.backend.backend() == "jax":
            # Checked at every call, as floatx can change after construction (two config reads). In
            # Keras' JAX convert_to_tensor, `standardize_dtype(None)` is floatx, so a Python number
            # without a dtype goes through `jnp.asarray(x).astype(None)`: float32. uint8 images came
            # back float32, silently, and the mixing layers' index arithmetic failed.
            raise ValueError(
                f"{type(self).__name__}: keras.config.floatx() 'bfloat16' is not supported on the JAX backend: "
                "under it Keras' JAX backend converts every Python number to a float32 array (uint8 images would "
                "come back float32, integer indices would become floats). Keep floatx 'float32' and use "
                "keras.mixed_precision.set_global_policy('mixed_bfloat16') for bfloat16 compute (this layer "
                "computes in its images' dtype)"
            )
        images = (inputs.get("images") if isinstance(inputs, Mapping)
                  else inputs[0] if isinstance(inputs, (tuple, list)) and inputs else inputs)
        if getattr(images, "dtype", None) == np.float64 and keras.backend.backend() == "jax" and not _jax_has_x64():
            # JAX without x64 makes float32 arrays of float64 ones (Keras converts the inputs before
            # `call`): the output would not have the input's dtype, nor unselected pixels their values.
            raise TypeError(
                f"{type(self).__name__}: float64 images on the JAX backend need "
                "jax.config.update('jax_enable_x64', True) (JAX computes them in float32 otherwise); enable it, "
                "or give float32 images"
            )
        return super().__call__(inputs, *args, **kwargs)

    # ----------------------------------------------------------------------------------------
    # Checks.
    # ----------------------------------------------------------------------------------------

    def _layout(self) -> str:
        return "(B, C, H, W)" if self.channels_first else "(B, H, W, C)"

    def _refuse_the_other_layout(self, shape: tuple[Any, ...]) -> None:
        """Raise for images that look laid out in the other ``data_format``
        (:func:`maskmix.geometry.looks_transposed`), e.g. a torch ``DataLoader``'s ``(B, C, H, W)``
        batch given to a channels-last layer, which would be changed along the wrong axes."""
        first, _, last = shape[-3:]
        channels, other = (first, last) if self.channels_first else (last, first)
        if looks_transposed(channels, other):
            theirs = "channels_last" if self.channels_first else "channels_first"
            raise ValueError(
                f"{type(self).__name__}: images of shape {shape} look {theirs}: {channels} values on the channel "
                f"axis of data_format={self.data_format!r} and {other} where the channels of {theirs} images are; "
                f"pass data_format={theirs!r}, or transpose the images"
            )

    def check_images(self, images: Tensor) -> tuple[Tensor, bool]:
        """Validate ``images``; return them as a rank-4 batch and whether they were one image."""
        if not (hasattr(images, "shape") and hasattr(images, "dtype")):
            raise TypeError(
                f"{type(self).__name__}: images must be a tensor or a NumPy array; got {type(images).__name__}"
            )
        if getattr(images.shape, "rank", 0) is None:
            # tf.function(input_signature=[tf.TensorSpec(shape=None)]): TensorFlow's own error
            # ("cannot iterate over a shape with unknown rank") would not say what to give.
            raise ValueError(
                f"{type(self).__name__}: images must have a known rank, a batch {self._layout()} or one image; got a "
                "tensor of unknown rank (e.g. a tf.function input_signature with shape=None): give the rank, e.g. "
                "tf.TensorSpec(shape=(None, None, None, 3))"
            )
        self.check_image_spec(tuple(images.shape), images.dtype)
        if len(images.shape) == 3 and not self.needs_batch:
            return self.ops.numpy.expand_dims(images, 0), True
        return images, False

    def check_image_spec(self, shape: tuple[Any, ...], dtype: Any) -> None:
        """The checks of :meth:`check_images` on a shape and dtype alone (``None`` for an unknown
        size), so that a symbolic call (a functional model being built) fails as the eager one
        would, when the model is built rather than at its first batch."""
        name = type(self).__name__
        dtype = keras.backend.standardize_dtype(dtype)
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{name}: images must have dtype {IMAGE_DTYPES_TEXT}; got {dtype}"
            )
        if dtype == "uint8":
            refusal = uint8_refusal(name, self.pixels_range if self.reads_pixels_range else None,
                                    getattr(self, "fill_method", None), range_name="pixels_range (value_range)")
            if refusal is not None:
                raise ValueError(refusal)
        elif getattr(self, "fill_method", None) is not None:  # the masking layers' fills
            refusal = float_fill_refusal(name, dtype, self.pixels_range, getattr(self, "fill_method", None),
                                         range_name="pixels_range (value_range)")
            if refusal is not None:
                raise ValueError(refusal)
        rank = len(shape)
        if rank in (3, 4) and 0 in shape[-3:]:
            raise ValueError(
                f"{name}: images must have at least one channel, row and column (C, H, W >= 1); "
                f"got shape {shape}"
            )
        if self.needs_batch:
            if rank != 4:
                raise ValueError(
                    f"{name}: images must be a batch {self._layout()} of rank 4 "
                    f"(data_format={self.data_format!r}); got shape {shape}"
                )
        elif rank not in (3, 4):
            single = "(C, H, W)" if self.channels_first else "(H, W, C)"
            raise ValueError(
                f"{name}: images must be one image {single} or a batch {self._layout()} "
                f"(data_format={self.data_format!r}); got shape {shape}"
            )
        self._refuse_the_other_layout(shape)

    def check_symbolic_images(self, images: Any) -> None:
        """:meth:`check_image_spec` for a symbolic call, and a rank-3 input whose first axis is
        unknown refused: in a model that axis is the batch, so ``(None, H, W)`` is a batch of
        images without a channel axis, which the eager call would take for one image (its rows
        as the batch) and erase or mix along the wrong axes."""
        shape = tuple(images.shape)
        self.check_image_spec(shape, images.dtype)
        if len(shape) == 3 and shape[0] is None:
            channel, one = ("(B, 1, H, W)", "(1, H, W)") if self.channels_first else ("(B, H, W, 1)", "(H, W, 1)")
            raise ValueError(
                f"{type(self).__name__}: got a symbolic input of shape {shape}: in a model the first axis is "
                f"the batch, so these are images without a channel axis; add one ({channel} for "
                f"data_format={self.data_format!r}: keras.Input(shape={one}) or keras.layers.Reshape({one}))"
            )

    # ----------------------------------------------------------------------------------------
    # Keras preprocessing-layer API.
    # ----------------------------------------------------------------------------------------

    def get_random_transformation(self, data: Any, training: bool = True, seed: Any = None) -> dict[str, Any] | None:
        """Draw the per-image parameters for ``data`` (images, rank 3 or 4); None if not training.

        The returned dict holds ``(B, ...)`` tensors: the strategy's parameters (e.g. ``top``,
        ``left``, ``height``, ``width``) and ``selected``, the boolean selection of the images to
        augment. ``seed`` overrides the layer's generator: a ``SeedGenerator``, or an int (the
        same draws at every call with the same int, each draw of the call from its own seed).
        ``layer(x)`` is ``transform_images(x, get_random_transformation(x))``.
        """
        if training is False:
            return None
        images, single = self.check_images(data)
        batch_size, channels, height, width = self.dims(images)
        if self.needs_static_size and not (isinstance(height, int) and isinstance(width, int)):
            raise ValueError(
                f"{type(self).__name__}: the images' height and width must be known when the layer is "
                f"traced (it builds resampling matrices for that size); got shape {tuple(images.shape)}. "
                "Give them in keras.Input or the tf.function input signature, or resize the images first"
            )
        seed = _seeds.call_seeds(type(self).__name__, self.seed_generator() if seed is None else seed,
                                 self.backend)
        # A scheduled ratio is lent by the pipeline (maskmix.schedules) as a variable's value,
        # read by the compiled step; a plain number read while tracing becomes a constant of the
        # traced graph, so later assignments are refused (see __setattr__).
        ratio = lent_value(self, "augmentation_ratio", self.augmentation_ratio)
        scheduled = not isinstance(ratio, (int, float))
        if _tracing(data):
            # Every parameter is a constant of the traced graph; the ratio may be a schedule's instead.
            self.__dict__["_maskmix_traced"] = {**dict.fromkeys(self._strategy_params, False),
                                                "augmentation_ratio": scheduled}
        bernoulli = self.bernoulli_mix or (single and (scheduled or 0.0 < ratio < 1.0))
        # The sampling mode's units (design §Conventions, sampling modes): draws are made per unit
        # and given to its images.
        ops, mode = self.ops, self.sampling
        unit_of = _sampling.unit_index(ops, mode, batch_size)
        selected = _sampling.select_units(ops, mode, batch_size, ratio, bernoulli, unit_of, seed,
                                          pairs_only=self.needs_batch)
        params = self.sample_units(
            batch_size, _sampling.unit_count(ops, mode, batch_size), unit_of, channels, height, width,
            dtype=keras.backend.standardize_dtype(images.dtype), seed=seed,
        )
        if training is not True and training is not None:  # a symbolic training flag
            selected = self.ops.numpy.logical_and(selected, self.ops.cast(training, "bool"))
        params["selected"] = selected
        self.refine_selection(params, height, width)
        return params

    def refine_selection(self, params: dict[str, Any], height: Any, width: Any) -> None:
        """Hook: unselect, in the drawn ``params``, the images that the strategy leaves unchanged,
        so that they count as not augmented (CutPaste, CutSwap). ``height``/``width`` may be
        tensors at trace time. By default, none."""

    def augmentation_labels(self, params: Mapping[str, Any]) -> Tensor:
        """Hook: the int64 ``(B,)`` labels ``return_labels=True`` returns; by default 1 where the
        image was augmented, 0 where it passed through (CutPaste's 3-way task labels its kinds)."""
        return self.ops.cast(params["selected"], "int64")

    def transform_images(self, images: Tensor, transformation: Mapping[str, Any] | None,
                         training: bool = True) -> Tensor:
        """Apply drawn parameters to ``images`` (rank 3 or 4); identity when not training."""
        if transformation is None or training is False:
            return images
        batch, single = self.check_images(images)
        out = self.apply(batch, transformation)
        return self.ops.numpy.squeeze(out, 0) if single else out

    def call(self, images: Tensor, training: bool = True) -> Any:
        if isinstance(images, Mapping):
            return self.call_dict(images, training=training)
        batch, single = self.check_images(images)
        # The images as given: one rank-3 image is selected with probability `augmentation_ratio`.
        transformation = self.get_random_transformation(images, training=training)
        out = self.transform_images(batch, transformation)
        if single:
            out = self.ops.numpy.squeeze(out, 0)
        if not self.return_labels:
            return out
        return out, self._augmentation_flags(batch, transformation, single)

    def _augmentation_flags(self, batch: Tensor, transformation: Mapping[str, Any] | None, single: bool) -> Tensor:
        """What ``return_labels=True`` returns next to the output: int64 ``(B,)`` (a scalar for one image)."""
        if transformation is None:
            flags = self.ops.numpy.zeros((self.ops.shape(batch)[0],), dtype="int64")
        else:
            flags = self.augmentation_labels(transformation)
        return self.ops.numpy.squeeze(flags, 0) if single else flags

    # ----------------------------------------------------------------------------------------
    # Keras' dict input: images and their dense targets.
    # ----------------------------------------------------------------------------------------

    def call_dict(self, data: Mapping[str, Any], training: bool = True) -> Any:
        """A dict as Keras' image preprocessing layers take it: ``images`` (rank 3 or 4),
        optional ``segmentation_masks``, ``bounding_boxes``, ``labels`` and any other key.

        The images are transformed as by a plain call (same draws for the same seed); the masks
        go through :meth:`transform_masks` with the same parameters; boxes pass through when the
        pixels stay in place (``dense_targets == "keep"``) and are refused otherwise; every other
        key (``labels`` included: this layer does not mix labels) passes through unchanged. Returns a
        new dict (the input is not modified), followed by ``is_augmented`` with
        ``return_labels=True``: ``(dict, is_augmented)``.
        """
        self.check_images_key(data)
        self.check_boxes(data)
        images = data["images"]
        batch, single = self.check_images(images)
        masks = data.get("segmentation_masks")
        if masks is not None:
            masks = self.check_masks(masks, batch, single)
        transformation = self.get_random_transformation(images, training=training)
        out = dict(data)
        if transformation is not None:
            moved = self.transform_images(batch, transformation)
            out["images"] = self.ops.numpy.squeeze(moved, 0) if single else moved
            if masks is not None:
                out["segmentation_masks"] = self.transform_masks(masks, transformation, single=single)
        if not self.return_labels:
            return out
        return out, self._augmentation_flags(batch, transformation, single)

    def check_images_key(self, data: Mapping[str, Any]) -> None:
        """Refuse a dict input without its ``images`` (Keras' key), eagerly and symbolically."""
        if "images" not in data:
            raise ValueError(
                f"{type(self).__name__}: a dict input must have an 'images' key; got keys {sorted(map(str, data))}"
            )

    def check_dense_spec(self, targets: Mapping[str, Any], images: Any) -> None:
        """The checks a call makes of a dict's boxes and masks (:meth:`check_boxes`,
        :meth:`check_masks`, a layer that refuses masks), on shapes and dtypes alone: a functional
        model being built fails there, not at its first batch (or its first ``predict``)."""
        self.check_boxes(targets)
        masks = targets.get("segmentation_masks")
        if masks is None:
            return
        shape = tuple(images.shape)
        self.mask_spec_message(masks, (1, *shape) if len(shape) == 3 else shape, len(shape) == 3)
        if self.dense_targets == "refuse":
            self.move_masks(masks, {})  # raises: this layer cannot move masks

    def check_boxes(self, data: Mapping[str, Any]) -> None:
        """Refuse ``bounding_boxes`` when the strategy moves pixels (they would not follow)."""
        if self.dense_targets != "keep" and data.get("bounding_boxes") is not None:
            raise ValueError(
                f"{type(self).__name__}: bounding_boxes cannot follow pixels moved within or between images; "
                "remove the 'bounding_boxes' key (the masking layers and RandomCutBlur pass boxes through)"
            )

    def check_masks(self, masks: Any, batch: Tensor, single: bool) -> Any:
        """Validate ``segmentation_masks`` against the rank-4 ``batch`` of images (``single``: the
        images were one rank-3 image): one channel, the images' batch size, height and width, an
        integer or bool dtype. Returns the masks to use (in a graph where sizes are known only when
        it runs, the masks after the check of their sizes)."""
        message = self.mask_spec_message(masks, tuple(batch.shape), single)
        # The images' axis each mask axis must match (None: the channel axis, of size 1).
        sources: list[int | None] = [] if single else [0]
        sources += [None, 2, 3] if self.channels_first else [1, 2, None]
        image_dims = self.ops.shape(batch)
        wanted = [1 if source is None else image_dims[source] for source in sources]
        # Sizes known only when the graph runs (tf.data from a generator, padded batches): checked
        # then, or the masks would be cut at coordinates drawn for other sizes.
        return checked_when_run(masks, wanted, f"{message}: their shapes differ")

    def mask_spec_message(self, masks: Any, images: tuple[Any, ...], single: bool) -> str:
        """The checks of :meth:`check_masks` that the shapes and dtypes decide (``images``: the
        rank-4 batch's shape, ``None`` for a size known only when run); returns the message for a
        size mismatch found when the graph runs."""
        name = type(self).__name__
        if not (hasattr(masks, "shape") and hasattr(masks, "dtype")):
            raise TypeError(f"{name}: segmentation_masks must be a tensor or a NumPy array; got {type(masks).__name__}")
        dtype = keras.backend.standardize_dtype(masks.dtype)
        if dtype != "bool" and not dtype.startswith(("int", "uint")):
            raise TypeError(
                f"{name}: segmentation_masks must have an integer or bool dtype (class indices); got {dtype}"
            )
        fill = getattr(self, "mask_fill", None)
        if fill is not None:
            # A cast would wrap it: an ignore index -1 on uint8 masks would become class 255.
            low, high = (0, 1) if dtype == "bool" else (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
            if not low <= fill <= high:
                raise ValueError(
                    f"{name}: mask_fill={fill} does not fit the masks' dtype {dtype} ([{low}, {high}]); choose "
                    "another mask_fill or a wider mask dtype"
                )
        shape = tuple(masks.shape)
        expected = images[:1] if not single else ()
        expected += (1, *images[2:4]) if self.channels_first else (*images[1:3], 1)
        fits = len(shape) == len(expected) and all(
            got == want for got, want in zip(shape, expected, strict=True)
            if isinstance(got, int) and isinstance(want, int))
        layout = "(1, H, W)" if self.channels_first else "(H, W, 1)"
        layout = layout if single else layout.replace("(", "(B, ")
        message = (f"{name}: segmentation_masks must be {layout} with the images' batch size, height and width "
                   f"(data_format={self.data_format!r})")
        if not fits:
            given = images[1:] if single else images
            raise ValueError(f"{message}; got shape {shape} for images of shape {given}")
        return message

    def transform_masks(self, masks: Tensor, transformation: Mapping[str, Any] | None, *,
                        single: bool = False) -> Tensor:
        """Segmentation masks (validated by :meth:`check_masks`) as the drawn ``transformation``
        changes their images: :meth:`move_masks` on the rank-4 batch; unchanged when None."""
        if transformation is None:
            return masks
        ops = self.ops
        masks = ops.convert_to_tensor(masks)
        batch = ops.numpy.expand_dims(masks, 0) if single else masks
        out = self.move_masks(batch, transformation)
        return ops.numpy.squeeze(out, 0) if single else out

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.return_labels:
            shape = tuple(input_shape)
            return input_shape, (shape[:1] if len(shape) == 4 else ())
        return input_shape

    def compute_output_spec(self, inputs: Any, training: Any = None) -> Any:
        if isinstance(inputs, Mapping):
            self.check_images_key(inputs)
            images = inputs["images"]
            self.check_symbolic_images(images)
            self.check_dense_spec(inputs, images)
            out: Any = _fresh_specs(inputs)
        else:
            images = inputs
            out = keras.KerasTensor(inputs.shape, dtype=inputs.dtype)
            self.check_symbolic_images(images)
        if self.return_labels:
            shape = (images.shape[0],) if len(images.shape) == 4 else ()
            return out, keras.KerasTensor(shape, dtype="int64")
        return out

    # ----------------------------------------------------------------------------------------
    # Serialisation.
    # ----------------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(self._strategy_params)
        config.update({"seed": self.seed, "data_format": self.data_format})
        return config


class MaskingLayer(MaskMixLayer):
    """Base of the strategies that erase a region of each image and fill it (design §Conventions, fills).

    A subclass implements :meth:`sample_region` (per-image region parameters) and
    :meth:`region_mask` (the ``(B, H, W)`` boolean mask those parameters cover). The base draws
    the fill values and writes ``where(mask & selected, fill, image)`` in one pass.

    ``fill_method`` is one of ``black``, ``gray``, ``white`` (relative to ``pixels_range``),
    ``mean_per_channel`` (each image's own channel means), ``random`` (one colour per image,
    uniform over the range), ``noise`` (per-pixel uniform over the range), ``zero`` (the constant
    0), ``normal`` (per-pixel standard normal), ``normal_per_patch`` (one standard-normal colour
    per image and channel), or a number / per-channel tuple used as a constant. ``uint8`` fills
    are rounded and saturated to ``[0, 255]``.
    """

    reads_pixels_range = True

    fill_method: str | float | tuple[float, ...]

    def sample_region(self, batch_size: int | Tensor, height: int, width: int, seed: Any) -> dict[str, Tensor]:
        """Draw the per-image parameters of the erased region."""
        raise NotImplementedError

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Tensor:
        """``(B, H, W)`` boolean mask of the pixels the region parameters cover."""
        raise NotImplementedError

    def sample(self, batch_size: int | Tensor, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.sample_region(batch_size, height, width, seed))
        fill = self._sample_fill(batch_size, channels, height, width, dtype=dtype, seed=seed)
        if fill is not None:
            params["fill_values"] = fill
        return params

    def _sample_fill(self, batch_size: int | Tensor, channels: int, height: int, width: int, *,
                     dtype: str, seed: Any) -> Tensor | None:
        """Random fill values in the compute dtype, or None for the data-independent/-derived fills."""
        ops = self.ops
        method = self.fill_method
        work = self.compute_dtype_for(dtype)
        if method in ("random", "normal_per_patch"):
            size: tuple[Any, ...] = (batch_size, channels)
        elif method in ("noise", "normal"):
            if self.channels_first:
                size = (batch_size, channels, height, width)
            else:
                size = (batch_size, height, width, channels)
        else:
            return None
        if method in ("normal", "normal_per_patch"):
            values = ops.cast(ops.random.normal(size, dtype="float32", seed=seed), work)
        else:
            lo, hi = self.value_range(dtype)
            if dtype == "uint8":
                # Half a level beyond each end: after rounding every level, 0 and 255 included,
                # is equally likely (over [lo, hi] the end levels would get half the others' share).
                lo, hi = lo - 0.5, hi + 0.5
            values = ops.cast(lo + (hi - lo) * ops.random.uniform(size, 0.0, 1.0, dtype="float32", seed=seed), work)
        return self.per_channel(values) if len(size) == 2 else values

    def fill_for(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        """The fill values for ``images``, in their dtype, broadcastable to the batch."""
        ops = self.ops
        method = self.fill_method
        dtype = keras.backend.standardize_dtype(images.dtype)
        work = self.compute_dtype_for(dtype)
        lo, hi = self.value_range(dtype)
        if params.get("fill_values") is not None:
            values = params["fill_values"]
        elif method == "mean_per_channel":
            values = ops.numpy.mean(ops.cast(images, work), axis=self.spatial_axes, keepdims=True)
        elif isinstance(method, str):
            constant = {"black": lo, "white": hi, "gray": (lo + hi) / 2, "zero": 0.0}[method]
            values = ops.numpy.full((1, 1, 1, 1), constant, dtype=work)
        else:
            _, channels, _, _ = self.dims(images)
            per_channel = method if isinstance(method, tuple) else (method,)
            if len(per_channel) not in (1, channels):
                raise ValueError(
                    f"{type(self).__name__}: fill_method has {len(per_channel)} values but the images "
                    f"have {channels} channel(s); give one value or one per channel"
                )
            values = ops.numpy.reshape(ops.convert_to_tensor(list(per_channel), dtype=work), (1, -1))
            values = self.per_channel(values)
        return self.to_image_dtype(values, dtype)

    def erased(self, params: Mapping[str, Any], height: Any, width: Any) -> Tensor:
        """``(B, H, W)`` boolean mask of the pixels this call erases (region of a selected image)."""
        selected = self.ops.numpy.reshape(params["selected"], (-1, 1, 1))
        return self.ops.numpy.logical_and(self.region_mask(params, height, width), selected)

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        _, _, height, width = self.dims(images)
        mask = self.erased(params, height, width)
        return _sampling.where(self.ops, self.pixel_mask(mask), self.fill_for(images, params), images)

    def move_masks(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The erased object is still there: masks are kept, or marked with ``mask_fill`` (an ignore
        # index) on exactly the erased pixels.
        mask_fill = getattr(self, "mask_fill", None)
        if mask_fill is None:
            return masks
        ops = self.ops
        _, _, height, width = self.dims(masks)
        erased = self.pixel_mask(self.erased(params, height, width))
        return _sampling.where(ops, erased, ops.cast(mask_fill, keras.backend.standardize_dtype(masks.dtype)), masks)


def _fresh_specs(structure: Any) -> Any:
    """New ``KerasTensor``s shaped like those of ``structure`` (a layer's outputs must be new
    symbolic tensors, even for the items it passes through)."""
    return keras.tree.map_structure(
        lambda x: keras.KerasTensor(x.shape, dtype=x.dtype) if isinstance(x, keras.KerasTensor) else x, structure
    )
