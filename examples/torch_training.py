"""PyTorch pieces shared by the torch training examples: models, transforms from a plan, evaluation.

* :func:`build_model`: a compact CNN for small images (digits, CIFAR) or torchvision's ResNet-18
  for larger ones (Flowers).
* :func:`build_transforms`: maskmix torch transforms from an :class:`augment_flags.AugmentPlan`.
* :func:`occlude`: the occluded test set of ``--compare`` (one random black square per image).
* :func:`accuracy`: top-1 accuracy of a model on uint8 images, in batches.
"""

from __future__ import annotations

import numpy as np
import torch
from augment_flags import AugmentPlan
from torch import nn

import maskmix.torch as mm
from maskmix import registry

#: Per-image normalisation used by every example: uint8 -> float in [0, 1], then centred.
MEAN, STD = 0.5, 0.25


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` -> normalised float32 (the augmentations run before this, on uint8)."""
    return (images.float() / 255.0 - MEAN) / STD


def build_model(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """A compact CNN up to 64 px, torchvision's ResNet-18 (adapted to ``in_channels``) above."""
    if image_size > 64:
        from torchvision.models import resnet18

        model = resnet18(num_classes=num_classes)
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return model

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    return nn.Sequential(
        block(in_channels, 32), nn.MaxPool2d(2),
        block(32, 64), nn.MaxPool2d(2),
        block(64, 128), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, num_classes),
    )


def build_transforms(plan: AugmentPlan, num_classes: int) -> tuple[list[nn.Module], list[nn.Module]]:
    """``(masking, mixing)`` torch transforms of a plan (mixing ones know ``num_classes``)."""
    masking = [registry.implementation(name, "torch")(**kwargs) for name, kwargs in plan.masking]
    mixing = [registry.implementation(name, "torch")(num_classes=num_classes, **kwargs) for name, kwargs in plan.mixing]
    return masking, mixing


def occlude(images: np.ndarray, *, area: float = 0.2, seed: int = 1234) -> np.ndarray:
    """Each image with one black square of ``area`` of the image, at a random place fully inside.

    The occluder is the library's own Cutout with a fixed generator, so the occluded test set is
    the same for every model compared.
    """
    cutout = mm.RandomCutout(patch_area=area, generator=torch.Generator().manual_seed(seed))
    return cutout(torch.from_numpy(images)).numpy()


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 512,
             device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on uint8 ``(N, C, H, W)`` images."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = to_input(torch.from_numpy(images[start : start + batch_size]).to(device))
        y = torch.from_numpy(labels[start : start + batch_size]).to(device)
        correct += int((model(x).argmax(dim=1) == y).sum())
    return correct / max(len(images), 1)
