"""Mixup's presets against the official sampler (facebookresearch/mixup-cifar10, ``train.py``).

The official ``mixup_data``: ``lam ~ Beta(alpha, alpha)`` (``np.random.beta``), partners by
``torch.randperm``, ``mixed_x = lam x + (1 - lam) x[index]`` and the loss weighs the two targets by
``lam`` and ``1 - lam``; alpha = 1 on CIFAR-10 (the script's default) and 0.2 on ImageNet (the
paper's Table 1). The paper draws one ``lam`` per batch: that sampling mode is not available yet,
so the per-image marginal law is compared.

Measured from maskmix's outputs: ``lam`` is each image's own weight in its mixed label row (one-hot
labels with one class per image), and the pixels must be ``lam x + (1 - lam) x_partner`` with the
partner read from the same row. Statistic: Kolmogorov-Smirnov of ``lam`` against
``np.random.beta(alpha, alpha)`` samples, n = 2000 (torch) / 1000 (Keras): the preset's law passes
(p > 1e-3) and the other setting's alpha (1 against 0.2) is rejected (p < 1e-4).
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import keras
import numpy as np
import pytest
import torch
from mixing_papers import ACCEPT, REJECT, ks_same_law

from maskmix.keras import RandomMixup as KerasMixup
from maskmix.torch import RandomMixup as TorchMixup

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = "λ's Beta(α, α) law (KS), pixels λx + (1 − λ)x_partner; the other settings' α rejected"

ALPHA = {"cifar10": 1.0, "imagenet": 0.2}


def lam_from_outputs(images: np.ndarray, out: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Each image's own label weight, after checking the pixels were blended with that weight."""
    n = images.shape[0]
    lam = soft[np.arange(n), np.arange(n)]
    others = soft.copy()
    others[np.arange(n), np.arange(n)] = -1.0
    partner = others.argmax(axis=1)
    expected = lam.reshape(-1, 1, 1, 1) * images + (1 - lam.reshape(-1, 1, 1, 1)) * images[partner]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    return lam


def torch_lam(setting: str, n: int, seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 4, 4, generator=generator)
    out, soft = TorchMixup.from_paper(setting, generator=generator, num_classes=n)(images, torch.arange(n))
    return lam_from_outputs(images.numpy(), out.numpy(), soft.numpy())


def keras_lam(setting: str, n: int, seed: int) -> np.ndarray:
    images = np.random.default_rng(seed).random((n, 4, 4, 3), dtype=np.float32)
    out, soft = KerasMixup.from_paper(setting, seed=seed, num_classes=n)((images, np.arange(n)))
    return lam_from_outputs(images, keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(soft))


@pytest.mark.parametrize(("framework", "n"), [("torch", 2000), ("keras", 1000)])
@pytest.mark.parametrize("setting", list(ALPHA))
def test_lambda_follows_the_official_beta_law_and_not_the_other_settings(framework: str, n: int,
                                                                          setting: str) -> None:
    lam = (torch_lam if framework == "torch" else keras_lam)(setting, n, seed=0)
    official = np.random.default_rng(1).beta(ALPHA[setting], ALPHA[setting], n)
    assert ks_same_law(lam, official) > ACCEPT
    # The mutation check: the other setting's alpha is a wrong law, and the same test says so.
    other = ALPHA["imagenet" if setting == "cifar10" else "cifar10"]
    assert ks_same_law(lam, np.random.default_rng(1).beta(other, other, n)) < REJECT


def test_presets_declare_the_papers_alpha() -> None:
    for setting, alpha in ALPHA.items():
        assert TorchMixup.spec.paper_config(setting)["alpha"] == alpha
        assert "sampling='batch'" in TorchMixup.spec.papers[setting].notes
