"""CutMix's presets against the official sampler (clovaai/CutMix-PyTorch, ``train.py``).

The official ``rand_bbox`` (re-implemented below in NumPy, per image: the per-batch draw of the
paper is not available yet, so the per-image marginal law is what is compared): ``lam ~ Beta(1, 1)``,
``cut = int(32 sqrt(1 - lam))``, centre ``c = randint(32)`` per axis, box
``[clip(c - cut // 2), clip(c + cut // 2))``; the whole batch is mixed with probability
``cutmix_prob`` (0.5 on CIFAR, 1 on ImageNet), with one ``lam`` and box per batch and partners by
``torch.randperm``, and the label weight is the exact pixel ratio.

Measured from maskmix's outputs on 32 x 32 random images: the box (rows and columns of the changed
pixels), hence its sides and pasted fraction, and the label weights. Statistics: exact support of
``(top, height, left, width)``, chi-square on the box height and on its longer side (33 values
each; the longer side is ``2 * (cut // 2)`` unless the box is clipped on both axes, which is what
sees a ``cut`` rounded instead of truncated inside the official box: that needs n of about 10^4),
Kolmogorov-Smirnov on the pasted fraction. With n = 16000 (torch) / 8000 (Keras, one-channel
images) the official law passes (p > 1e-3) and the default rounding (``box_rounding="round"``,
mean fraction 0.321 against 0.299) is rejected by the same statistics (p < 1e-4). Per batch (400
torch / 150 Keras batches of 6): every changed image has the batch's box, the box's pasted
fraction follows the official law (Kolmogorov-Smirnov) and so does the number of changed images
per batch (chi-square: 0 when the batch's coin says no, else 6 minus randperm's fixed points);
the per-image law is rejected by the same statistics.
"""

from __future__ import annotations

import keras_helpers  # first: loads Triton before TensorFlow (see there)

# isort: split

import keras
import numpy as np
import pytest
import torch
from mixing_papers import ACCEPT, REJECT, batch_boxes, changed_boxes, chi2_same_law, ks_same_law, per_image

from maskmix.keras import RandomCutMix as KerasCutMix
from maskmix.torch import RandomCutMix as TorchCutMix

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = "box sides (truncated) and position, pasted fraction, label weight = pixel ratio; the rounded box rejected"

SIZE = 32


def official_boxes(rng: np.random.Generator, n: int, cutmix_prob: float) -> dict[str, np.ndarray]:
    """``n`` independent draws of the official box (an empty box where the image is not mixed)."""
    lam = rng.beta(1.0, 1.0, n)
    cut = (SIZE * np.sqrt(1.0 - lam)).astype(np.int64)  # np.int(): truncation
    mixed = rng.random(n) < cutmix_prob
    out: dict[str, np.ndarray] = {}
    for start, length in (("top", "height"), ("left", "width")):
        centre = rng.integers(0, SIZE, n)
        low = np.clip(centre - cut // 2, 0, SIZE)
        high = np.clip(centre + cut // 2, 0, SIZE)
        out[length] = np.where(mixed, high - low, 0)
        out[start] = np.where(mixed & (high > low), low, 0)
    # An empty box changes nothing: what the outputs show is a 0 x 0 box at (0, 0).
    empty = (out["height"] == 0) | (out["width"] == 0)
    for key in out:
        out[key] = np.where(empty, 0, out[key])
    return out


def torch_boxes(n: int, seed: int, **options: object) -> tuple[dict[str, np.ndarray], np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, SIZE, SIZE, generator=generator)
    out, soft = TorchCutMix(generator=generator, num_classes=2, **options)(images, torch.zeros(n, dtype=torch.int64))
    return changed_boxes(images.numpy(), out.numpy(), channel_axis=1), soft.numpy()


def keras_boxes(n: int, seed: int, **options: object) -> dict[str, np.ndarray]:
    images = np.random.default_rng(seed).random((n, SIZE, SIZE, 1), dtype=np.float32)
    out, _ = KerasCutMix(seed=seed, num_classes=2, **options)((images, np.zeros(n, dtype="int32")))
    return changed_boxes(images, keras.ops.convert_to_numpy(out), channel_axis=3)


def support(boxes: dict[str, np.ndarray]) -> set[tuple[int, int, int, int]]:
    return set(zip(*(boxes[k].tolist() for k in ("top", "height", "left", "width")), strict=True))


def official_support() -> set[tuple[int, int, int, int]]:
    """Every box the official sampler can produce on 32 x 32 images (both axes share ``cut``)."""
    boxes = set()
    for cut in range(SIZE + 1):
        axis = {(max(c - cut // 2, 0), min(c + cut // 2, SIZE) - max(c - cut // 2, 0)) for c in range(SIZE)}
        boxes |= {(t, h, left, w) if h and w else (0, 0, 0, 0) for t, h in axis for left, w in axis}
    return boxes


def fraction(boxes: dict[str, np.ndarray]) -> np.ndarray:
    return boxes["height"] * boxes["width"] / SIZE**2


def check_against_official(ours: dict[str, np.ndarray], official: dict[str, np.ndarray]) -> dict[str, float]:
    assert ours["is_box"].all()
    # The longer side is 2 * (cut // 2) unless the box is clipped on both axes: the statistic
    # that sees how cut is rounded (truncated or rounded sides give boxes of the same support).
    longer = {key: np.maximum(boxes["height"], boxes["width"]) for key, boxes in (("ours", ours),
                                                                                 ("official", official))}
    return {
        "outside support": len(support(ours) - official_support()),
        "height": chi2_same_law(ours["height"], official["height"]),
        "longer side": chi2_same_law(longer["ours"], longer["official"]),
        "fraction": ks_same_law(fraction(ours), fraction(official)),
    }


@pytest.mark.parametrize("setting", ["imagenet", "cifar"])
def test_torch_preset_boxes_follow_the_official_sampler(setting: str) -> None:
    n = 16000
    preset = TorchCutMix.spec.papers[setting].config
    official = official_boxes(np.random.default_rng(1), n, preset["augmentation_ratio"])
    ours, _ = torch_boxes(n, 0, **per_image(preset))
    result = check_against_official(ours, official)
    assert result["outside support"] == 0
    assert min(result["height"], result["longer side"], result["fraction"]) > ACCEPT, result


def test_torch_default_rounding_is_rejected_by_the_same_statistics() -> None:
    # The mutation check: maskmix's default box (rounded sides, [c - cut // 2, c - cut // 2 + cut)).
    n = 16000
    official = official_boxes(np.random.default_rng(1), n, 1.0)
    ours, _ = torch_boxes(n, 0, **per_image({**TorchCutMix.spec.papers["imagenet"].config, "box_rounding": "round"}))
    result = check_against_official(ours, official)
    assert result["outside support"] > 0
    assert max(result["height"], result["longer side"], result["fraction"]) < REJECT, result


def test_torch_preset_label_weight_is_the_exact_pixel_ratio() -> None:
    n = 256
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(n, 3, SIZE, SIZE, generator=generator)
    cutmix = TorchCutMix.from_paper("imagenet", generator=generator, num_classes=n,
                                      sampling="image", partner="other")
    out, soft = cutmix(images, torch.arange(n))
    boxes = changed_boxes(images.numpy(), out.numpy(), channel_axis=1)
    own = soft.numpy()[np.arange(n), np.arange(n)]
    np.testing.assert_allclose(own, 1.0 - fraction(boxes), rtol=0, atol=1e-6)


@pytest.mark.parametrize("rounding", ["truncate", "round"])
def test_keras_preset_boxes_follow_the_official_sampler_and_the_default_does_not(rounding: str) -> None:
    n = 8000
    official = official_boxes(np.random.default_rng(1), n, 1.0)
    ours = keras_boxes(n, 0, **per_image({**KerasCutMix.spec.papers["imagenet"].config, "box_rounding": rounding}))
    result = check_against_official(ours, official)
    if rounding == "truncate":
        assert result["outside support"] == 0
        assert min(result["height"], result["longer side"], result["fraction"]) > ACCEPT, result
    else:
        assert result["outside support"] > 0 and result["height"] < REJECT, result


def test_presets_declare_the_official_configuration() -> None:
    papers = TorchCutMix.spec.papers
    assert list(papers) == ["cifar", "imagenet"]
    for setting, ratio in (("cifar", 0.5), ("imagenet", 1.0)):
        config = TorchCutMix.spec.paper_config(setting)
        assert (config["alpha"], config["box_rounding"], config["augmentation_ratio"]) == (1.0, "truncate", ratio)
        assert config["patch_area"] is None and config["patch_aspect_ratio"] is None
        assert (config["sampling"], config["partner"], config["bernoulli_mix"]) == ("batch", "permutation",
                                                                                    ratio < 1.0)
        assert "sampling='batch'" in papers[setting].notes


@pytest.mark.parametrize("cls", [TorchCutMix, KerasCutMix])
def test_box_rounding_is_validated(cls: type) -> None:
    with pytest.raises(ValueError, match=r"^RandomCutMix: box_rounding must be one of 'round', 'truncate'; "
                                         r"got 'floor'$"):
        cls(box_rounding="floor")


# --------------------------------------------------------------------------------------------
# One draw per batch, as the official training loop (sampling="batch").
# --------------------------------------------------------------------------------------------

BATCH = 6


def official_batches(rng: np.random.Generator, batches: int, cutmix_prob: float) -> dict[str, np.ndarray]:
    """Per batch of the official loop: its box (one ``rand_bbox`` and one coin per batch) and how
    many images change (those whose ``torch.randperm`` partner is another image)."""
    boxes = official_boxes(rng, batches, cutmix_prob)
    fixed = np.array([(rng.permutation(BATCH) == np.arange(BATCH)).sum() for _ in range(batches)])
    boxes["changed"] = np.where(boxes["height"] > 0, BATCH - fixed, 0)
    return boxes


def batches_of(framework: str, batches: int, **options: object) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    if framework == "torch":
        cutmix = TorchCutMix(generator=torch.Generator().manual_seed(7), num_classes=BATCH, **options)
    else:
        cutmix = keras_helpers.in_graph(KerasCutMix(seed=7, num_classes=BATCH, data_format="channels_first",
                                                    **options))
    calls = []
    for _ in range(batches):
        images = rng.random((BATCH, 1, SIZE, SIZE), dtype=np.float32)
        if framework == "torch":
            out = cutmix(torch.from_numpy(images), torch.arange(BATCH))[0].numpy()
        else:
            out = keras.ops.convert_to_numpy(cutmix((images, np.arange(BATCH)))[0])
        calls.append((images, out))
    return batch_boxes(calls, channel_axis=1)


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("setting", ["cifar", "imagenet"])
def test_presets_draw_one_box_and_one_coin_per_batch_as_the_official_loop(framework: str, setting: str) -> None:
    batches = 400
    preset = dict(TorchCutMix.spec.papers[setting].config)
    official = official_batches(np.random.default_rng(1), batches, preset["augmentation_ratio"])
    ours = batches_of(framework, batches, **preset)
    # Within a batch: one box for every changed image; over batches: the official law of the box,
    # of the coin (all images or none) and of randperm's fixed points (how many images change).
    assert ours["shared"].all()
    assert ks_same_law(fraction(ours), fraction(official)) > ACCEPT
    assert chi2_same_law(ours["changed"], official["changed"]) > ACCEPT, (ours["changed"], official["changed"])
    # The mutation check: the per-image law (a box and a coin per image, another image as the
    # partner) is rejected by the same statistics.
    old = batches_of(framework, batches, **per_image(preset))
    assert not old["shared"].all()
    assert chi2_same_law(old["changed"], official["changed"]) < REJECT
