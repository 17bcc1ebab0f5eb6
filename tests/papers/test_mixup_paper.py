"""Mixup's presets against the official sampler (facebookresearch/mixup-cifar10, ``train.py``).

The official ``mixup_data``: ``lam ~ Beta(alpha, alpha)`` (``np.random.beta``), partners by
``torch.randperm``, ``mixed_x = lam x + (1 - lam) x[index]`` and the loss weighs the two targets by
``lam`` and ``1 - lam``; alpha = 1 on CIFAR-10 (the script's default) and 0.2 on ImageNet (the
paper's Table 1). One ``lam`` per batch (``sampling="batch"``, ``partner="permutation"``): the law
of ``lam`` is measured with one draw per image, the per-batch sampling over many small batches.

Measured from maskmix's outputs: ``lam`` is each image's own weight in its mixed label row (one-hot
labels with one class per image), and the pixels must be ``lam x + (1 - lam) x_partner`` with the
partner read from the same row. Statistic: Kolmogorov-Smirnov of ``lam`` against
``np.random.beta(alpha, alpha)`` samples, n = 2000 (torch) / 1000 (Keras): the preset's law passes
(p > 1e-3) and the other setting's alpha (1 against 0.2) is rejected (p < 1e-4). Per batch (300
torch / 120 Keras batches of 6): every mixed image has the batch's ``lam``, whose law is the
official Beta, and the number of changed images is 6 minus the fixed points of a random
permutation (chi-square); the per-image law is rejected by the same statistic.
"""

from __future__ import annotations

import keras_helpers  # first: loads Triton before TensorFlow (see there)

# isort: split

import keras
import numpy as np
import pytest
import torch
from mixing_papers import ACCEPT, REJECT, chi2_same_law, ks_same_law, per_image

from maskmix.keras import RandomMixup as KerasMixup
from maskmix.torch import RandomMixup as TorchMixup

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = "λ's Beta(α, α) law (KS), pixels λx + (1 − λ)x_partner; the other settings' α rejected"

ALPHA = {"cifar10": 1.0, "imagenet": 0.2, "imagenet_resnext": 0.4}
#: The wrong law each setting's KS test must reject (its mutation check).
OTHER = {"cifar10": "imagenet", "imagenet": "cifar10", "imagenet_resnext": "imagenet"}


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
    mixup = TorchMixup(generator=generator, **{**per_image(TorchMixup.spec.paper_config(setting)), "num_classes": n})
    out, soft = mixup(images, torch.arange(n))
    return lam_from_outputs(images.numpy(), out.numpy(), soft.numpy())


def keras_lam(setting: str, n: int, seed: int) -> np.ndarray:
    images = np.random.default_rng(seed).random((n, 4, 4, 3), dtype=np.float32)
    mixup = KerasMixup(seed=seed, **{**per_image(KerasMixup.spec.paper_config(setting)), "num_classes": n})
    out, soft = mixup((images, np.arange(n)))
    return lam_from_outputs(images, keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(soft))


@pytest.mark.parametrize(("framework", "n"), [("torch", 2000), ("keras", 1000)])
@pytest.mark.parametrize("setting", list(ALPHA))
def test_lambda_follows_the_official_beta_law_and_not_the_other_settings(framework: str, n: int,
                                                                          setting: str) -> None:
    lam = (torch_lam if framework == "torch" else keras_lam)(setting, n, seed=0)
    official = np.random.default_rng(1).beta(ALPHA[setting], ALPHA[setting], n)
    assert ks_same_law(lam, official) > ACCEPT
    # The mutation check: the other setting's alpha is a wrong law, and the same test says so.
    other = ALPHA[OTHER[setting]]
    assert ks_same_law(lam, np.random.default_rng(1).beta(other, other, n)) < REJECT


def test_presets_declare_the_papers_alpha() -> None:
    for setting, alpha in ALPHA.items():
        assert TorchMixup.spec.paper_config(setting)["alpha"] == alpha
        assert "sampling='batch'" in TorchMixup.spec.papers[setting].notes
        config = TorchMixup.spec.paper_config(setting)
        assert (config["sampling"], config["partner"]) == ("batch", "permutation")


BATCH = 6


def batch_lams(framework: str, setting: str, batches: int, **options: object) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
    """Per batch: the ``lam`` of its first mixed image, whether every mixed image has that ``lam``,
    and how many images changed (those whose partner is another image)."""
    rng = np.random.default_rng(5)
    config = {**TorchMixup.spec.paper_config(setting), **options, "num_classes": BATCH}
    mixup = (TorchMixup(generator=torch.Generator().manual_seed(5), **config) if framework == "torch"
             else keras_helpers.in_graph(KerasMixup(seed=5, data_format="channels_first", **config)))
    lams, shared, changed = [], [], []
    for _ in range(batches):
        images = rng.random((BATCH, 1, 2, 2), dtype=np.float32)
        if framework == "torch":
            out, soft = (t.numpy() for t in mixup(torch.from_numpy(images), torch.arange(BATCH)))
        else:
            out, soft = (keras.ops.convert_to_numpy(t) for t in mixup((images, np.arange(BATCH))))
        mixed = (out != images).reshape(BATCH, -1).any(axis=1)
        own = soft[np.arange(BATCH), np.arange(BATCH)][mixed]
        lams.append(own[0] if mixed.any() else 1.0)
        shared.append(bool(np.allclose(own, own[:1], rtol=0, atol=1e-6)))
        changed.append(int(mixed.sum()))
    return np.asarray(lams), np.asarray(shared), np.asarray(changed)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_presets_draw_one_lambda_per_batch_and_pair_by_a_permutation(framework: str) -> None:
    batches = 300
    setting = "cifar10"
    lams, shared, changed = batch_lams(framework, setting, batches)
    rng = np.random.default_rng(1)
    fixed = np.array([(rng.permutation(BATCH) == np.arange(BATCH)).sum() for _ in range(batches)])
    assert shared.all()
    assert ks_same_law(lams[changed > 0], rng.beta(1.0, 1.0, batches)) > ACCEPT
    assert chi2_same_law(changed, BATCH - fixed) > ACCEPT
    # The mutation check: a lambda per image and another image as the partner (the per-image law).
    _, old_shared, old_changed = batch_lams(framework, setting, batches, sampling="image", partner="other")
    assert not old_shared.any()
    assert chi2_same_law(old_changed, BATCH - fixed) < REJECT
