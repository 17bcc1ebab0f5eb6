"""Mixup: blend each image with a partner image, mix labels likewise (Zhang et al., 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import RANDOM_MIXUP, given_arguments

from . import _sampling
from ._base import CommonOptions
from ._mixing import FunctionOptions, MixingDraw, MixingLayer, mix_once

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomMixup", "blend", "random_mixup"]


@keras.saving.register_keras_serializable(package="maskmix")
class RandomMixup(MixingLayer):
    """Blend each image with a partner image of the batch; mix the labels with the same weight.

    Paper: H. Zhang, M. Cisse, Y. N. Dauphin and D. Lopez-Paz, "mixup: Beyond Empirical Risk
    Minimization", ICLR 2018 (https://arxiv.org/abs/1710.09412).

    Per image: a partner is drawn uniformly among the other images of the batch and
    ``lam ~ Beta(alpha, alpha)`` (an XLA-compatible sampler, see
    :func:`maskmix.keras._sampling.beta`); the image becomes ``lam * x + (1 - lam) * x_partner``
    (computed in float32 for uint8 images, then rounded, so uint8 stays uint8) and its label row
    ``lam * y + (1 - lam) * y_partner``.

    Reproducing the paper: ``RandomMixup.from_paper("cifar10")`` (``alpha=1``, the official
    ``mixup-cifar10`` script) and ``RandomMixup.from_paper("imagenet")`` (``alpha=0.2``, the
    paper's ImageNet ResNet runs; ``"imagenet_resnext"``: ``alpha=0.4``, its ResNeXt-101 runs)
    draw as the paper does: one ``lam ~ Beta(alpha, alpha)`` for the whole
    batch (``sampling="batch"``) and partners by a random permutation (``partner="permutation"``;
    an image that meets itself is left as it is).

    Args:
        alpha: ``Beta(alpha, alpha)`` parameter, > 0. Default 1.0.
        **common: the common options; see :class:`~maskmix.keras.MixingLayer` (with
            ``num_classes``, ``label_smoothing`` and ``partner``, the label options).

    Shapes:
        the blended images keep the batch's ``(B, H, W, C)`` (or channels_first) shape; class
        indices ``(B,)`` or one-hot rows ``(B, K)`` become soft rows ``(B, K)`` (dtypes: see the
        base class).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomMixup
        >>> batch = (np.random.rand(4, 16, 16, 3).astype("float32"), np.arange(4))
        >>> blended, soft = RandomMixup(alpha=0.2, num_classes=4, seed=0)(batch)
        >>> tuple(blended.shape), bool(np.allclose(np.asarray(soft).sum(axis=1), 1.0))
        ((4, 16, 16, 3), True)
    """

    spec = RANDOM_MIXUP
    dense_targets = "refuse"
    alpha: float

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        partner: str = "other",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        lam = _sampling.beta(self.ops, self.alpha, (draw.batch_size,), draw.seed)
        return {"lam": lam, "partner_weight": 1.0 - lam}

    def label_weight(self, transformation: Mapping[str, Any], dtype: str) -> Any:
        # 1 - lam in the labels' dtype: exact for float64 labels (float32 1 - lam is rounded).
        return 1.0 - self.ops.cast(transformation["lam"], dtype)

    def move_masks(self, masks: Any, transformation: Mapping[str, Any]) -> Any:
        raise ValueError(
            f"{type(self).__name__}: segmentation_masks cannot be mixed: Mixup blends every pixel of two "
            "images, so no single class holds at a pixel; remove the 'segmentation_masks' key or use RandomCutMix"
        )

    def apply(self, images: Any, params: Mapping[str, Any]) -> Any:
        return _sampling.where(self.ops, self.per_image(params["selected"]), blend(self, images, params), images)


def blend(layer: MixingLayer, images: Any, params: Mapping[str, Any]) -> Any:
    """Every image blended with its partner, ``lam * x + (1 - lam) * x[partner]`` per image,
    computed in float32 for uint8, float16 and bfloat16 images (as ``torch.lerp``: the difference
    of two large float16 values overflows in float16) and rounded once to the images' dtype, with
    no selection applied: ``params["lam"]`` and ``params["partner"]`` are ``(B,)``. Mixup, and the
    Mixup images of RandomMixupOrCutMix."""
    ops = layer.ops
    dtype = keras.backend.standardize_dtype(images.dtype)
    work = "float64" if dtype == "float64" else "float32"
    lam = layer.per_image(ops.cast(params["lam"], work))
    x = ops.cast(images, work)
    partner = ops.numpy.take(x, params["partner"], axis=0)
    difference = x - partner
    # torch.lerp's two-sided form: exact at both ends, so that lam = 1 (which float32 Beta draws
    # reach) gives the image itself, bit for bit, as its label row says.
    mixed = _sampling.where(ops, lam < 0.5, partner + lam * difference, x - (1.0 - lam) * difference)
    return layer.to_image_dtype(mixed, dtype, within_range=True)  # a convex combination


def random_mixup(
    images: Any,
    labels: Any,
    *,
    alpha: float = 1.0,
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    partner: str = "other",
    seed: int | tuple[Any, Any] | Any | None = None,
    **common: Unpack[FunctionOptions],
) -> tuple[Any, Any]:
    """Functional form of :class:`RandomMixup`: returns ``(mixed_images, soft_labels)``.

    Seeds are stateless, as for Keras' random ops (``keras.random.uniform(..., seed=7)``): the
    same ``seed`` and inputs give the same output at every call, and no variable is created, so
    the function runs inside ``tf.function`` (also ``jit_compile=True``), ``tf.data.Dataset.map``
    and ``jax.jit``. ``seed`` is an int in ``[0, 2**31)``, or a pair of integers (a tuple, or a
    ``(2,)`` integer tensor) to change from step to step, e.g. ``(7, step)`` or, in a dataset,
    ``ds.enumerate().map(lambda i, b: random_mixup(*b, num_classes=10, seed=(7, i)))``. ``None`` (default)
    draws a fresh seed per call when called eagerly, and is an error inside a traced function
    (where a seed drawn at trace time would repeat at every step). A
    :class:`RandomMixup` layer keeps its own ``SeedGenerator`` state instead: build it once to call it
    from a training step.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import random_mixup
        >>> images = np.random.rand(4, 8, 8, 3).astype("float32")
        >>> x1, y1 = random_mixup(images, np.arange(4), num_classes=4, seed=3)
        >>> x2, y2 = random_mixup(images, np.arange(4), num_classes=4, seed=3)
        >>> bool(np.array_equal(np.asarray(x1), np.asarray(x2)))
        True
    """
    return mix_once(RandomMixup, "random_mixup", images, labels, seed,
                    alpha=alpha, num_classes=num_classes, label_smoothing=label_smoothing, partner=partner, **common)
