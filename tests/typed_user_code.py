"""What a type checker tells a user of maskmix: checked by mypy in ``scripts/test.sh`` (not run by pytest).

Each ``assert_type`` states the type a user's code gets back from a documented call; mypy fails the
suite where an annotation says less (``Any`` from a transform call, ``Tensor | None`` labels after
passing labels) or refuses a documented argument (``partner`` of ``RandomMixupOrCutMix``, Keras
functional ``sampling``). The runtime behaviour of these calls is tested elsewhere; this file
guards their annotations. (The NumPy numbers the integrations take are annotated ``SupportsIndex``/
``SupportsFloat``; with this project's mypy target, Python 3.10, NumPy 2.4 is untyped, so those
calls below type-check either way: they show the documented usage.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from typing_extensions import assert_type

import maskmix.keras as mk
from maskmix.callbacks import MaskMixCallback, MaskMixModel
from maskmix.schedules import piecewise
from maskmix.torch import (
    MaskMixPipeline,
    RandomCutMix,
    RandomCutPaste,
    RandomErasing,
    RandomMixupOrCutMix,
    random_mixup_or_cutmix,
)


def torch_transforms(images: Tensor, labels: Tensor) -> None:
    assert_type(RandomErasing()(images), Tensor)
    assert_type(RandomErasing()(images, labels), tuple[Tensor, Tensor])
    assert_type(RandomCutMix(num_classes=10)(images, labels), tuple[Tensor, Tensor])
    assert_type(RandomCutMix()(images), Tensor)  # images-only mixing
    assert_type(RandomCutPaste(return_labels=True)(images), Any)  # (images, labels): no narrower type
    assert_type(RandomErasing()({"image": images}), Any)
    assert_type(RandomMixupOrCutMix(sampling="pair", partner="flip", num_classes=10)(images, labels),
                tuple[Tensor, Tensor])
    assert_type(random_mixup_or_cutmix(images, labels, partner="flip", num_classes=10), tuple[Tensor, Tensor])


def torch_pipeline(images: Tensor, labels: Tensor) -> None:
    pipeline = MaskMixPipeline([RandomErasing()], RandomCutMix(), num_classes=np.int64(10),
                               label_smoothing=np.float32(0.1), seed=np.int64(0))
    assert_type(pipeline.augment(images, labels), tuple[Tensor, Tensor])  # examples/manual_loop.py
    assert_type(pipeline.augment(images), tuple[Tensor, None])
    assert_type(pipeline((images, labels)), tuple[Tensor, Tensor])
    assert_type(pipeline(images, labels, rank=1), tuple[Tensor, Tensor])
    assert_type(pipeline(images), Tensor)
    assert_type(pipeline({"image": images, "label": labels}), Any)
    MaskMixCallback(transforms=[RandomErasing()], mix=[RandomCutMix()], mix_weights=[np.float32(1.0)],
                    num_classes=np.int64(10), seed=np.int64(0))


def keras_side(images: Any, labels: Any) -> None:
    pipeline = mk.MaskMixPipeline([mk.RandomErasing(seed=0)], mk.RandomCutMix(seed=1), num_classes=np.int64(10))
    _, targets = pipeline(images, labels)
    targets.shape  # noqa: B018  (labels given: the targets are never None)
    assert_type(pipeline(images), tuple[Any, None])
    mk.random_cutmix(images, labels, num_classes=10, sampling="batch", seed=(7, 3))
    mk.RandomMixupOrCutMix(sampling="pair", partner="flip", num_classes=10)
    MaskMixModel(inputs=images, outputs=images, mix=mk.RandomCutMix(), num_classes=np.int64(10),
                 label_smoothing=np.float32(0.1), seed=np.int64(0))
    torch.manual_seed(0)


def schedules() -> None:
    steps: dict[int, float] = {0: 1.0, 30: 0.5}  # a dict built with int epochs (Mapping's key is invariant)
    piecewise(steps)
    piecewise([[0, 1.0], [30, 0.5]])  # the JSON form
