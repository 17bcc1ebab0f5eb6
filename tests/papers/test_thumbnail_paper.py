"""Cut-Thumbnail's presets against the official code (TianshuXie/Cut-Thumbnail, ``train.py``).

The official training step (re-implemented below in NumPy; its laws measured with one draw per
image, its per-batch draws over many small batches): with probability
``participation_rate = 0.8`` the batch is augmented; ``rand_bbox`` puts the ``size x size``
thumbnail's corner at ``random.randint(0, S - size)`` per axis (both ends included); the
thumbnail is ``F.interpolate(x, (size, size))`` (the legacy ``nearest`` mode) of the image itself
("st") or of a permuted image ("mst"), whose target weighs ``lam = 0.25``.

Measured from maskmix's outputs (32 x 32 random images, the preset's quarter-area 16 x 16
thumbnail): the changed pixels' bounding box, the whole output against the pasted thumbnail
rebuilt in NumPy, the label weights, and which images changed. Statistics: chi-square on the
corner's row and column (17 values) and a binomial test on the number of augmented images
(n = 2000 torch / 1000 Keras: the preset passes with p > 1e-3, augmenting every image is rejected
with p < 1e-4); exact equalities for the pixels (``nearest_legacy`` against ``F.interpolate``'s
default mode, which ``"nearest"`` fails) and for the fixed label weight (0.25, not the 0.266 pixel
fraction of a 16 x 16 thumbnail on 31 x 31 images).
"""

from __future__ import annotations

import keras_helpers  # first: loads Triton before TensorFlow (see there)

# isort: split

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mixing_papers import ACCEPT, REJECT, batch_boxes, changed_boxes, chi2_same_law, per_image
from scipy import stats

from maskmix.keras import RandomCutThumbnail as KerasThumbnail
from maskmix.torch import RandomCutThumbnail as TorchThumbnail

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = (
    "thumbnail position, participation 0.8, legacy-nearest pixels, label weight λ = 0.25; a wrong "
    "placement rejected"
)

SIZE, THUMB = 32, 16


def run(framework: str, images: np.ndarray, seed: int, **options: object) -> tuple[np.ndarray, np.ndarray]:
    """``(out, soft)`` of a mixing Cut-Thumbnail on ``(B, C, H, W)`` float32 images, one class per image."""
    n = images.shape[0]
    if framework == "torch":
        layer = TorchThumbnail(generator=torch.Generator().manual_seed(seed), num_classes=n, **options)
        out, soft = layer(torch.from_numpy(images), torch.arange(n))
        return out.numpy(), soft.numpy()
    layer = KerasThumbnail(seed=seed, num_classes=n, **options)
    out, soft = layer((images.transpose(0, 2, 3, 1), np.arange(n)))
    return keras.ops.convert_to_numpy(out).transpose(0, 3, 1, 2), keras.ops.convert_to_numpy(soft)


def partners(soft: np.ndarray) -> np.ndarray:
    others = soft.copy()
    np.fill_diagonal(others, -1.0)
    return others.argmax(axis=1)


def official_corners(rng: np.random.Generator, n: int) -> np.ndarray:
    participating = rng.random(n) < 0.8
    return rng.integers(0, SIZE - THUMB + 1, (2, int(participating.sum())))


@pytest.mark.parametrize(("framework", "n"), [("torch", 2000), ("keras", 1000)])
def test_mst_preset_positions_participation_and_pixels_follow_the_official_code(framework: str, n: int) -> None:
    images = np.random.default_rng(0).random((n, 3, SIZE, SIZE), dtype=np.float32)
    preset = per_image(TorchThumbnail.spec.papers["imagenet_mst"].config)
    out, soft = run(framework, images, 0, **preset)
    boxes = changed_boxes(images, out, channel_axis=1)
    augmented = boxes["height"] > 0
    assert boxes["is_box"].all()
    assert (boxes["height"][augmented] == THUMB).all() and (boxes["width"][augmented] == THUMB).all()
    # Pixels: the partner's image at its even rows and columns (F.interpolate's legacy nearest).
    partner = partners(soft)
    expected = images.copy()
    for b in np.flatnonzero(augmented):
        top, left = boxes["top"][b], boxes["left"][b]
        expected[b, :, top:top + THUMB, left:left + THUMB] = images[partner[b], :, ::2, ::2]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(soft[augmented, partner[augmented]], np.float32(0.25))
    # Laws: the corner is uniform over the 17 positions per axis; 80% of the images take part.
    official = official_corners(np.random.default_rng(1), n)
    assert chi2_same_law(boxes["top"][augmented], official[0]) > ACCEPT
    assert chi2_same_law(boxes["left"][augmented], official[1]) > ACCEPT
    assert stats.binomtest(int(augmented.sum()), n, 0.8).pvalue > ACCEPT
    # The mutation check of the participation: augmenting every image is rejected by the same test.
    assert stats.binomtest(n, n, 0.8).pvalue < REJECT


def test_the_position_statistic_rejects_a_wrong_placement() -> None:
    # The chi-square above has the power to see a placement that never uses the last position
    # (randint(0, S - size - 1), an off-by-one of random.randint's inclusive end).
    wrong = np.random.default_rng(2).integers(0, SIZE - THUMB, 1600)
    assert chi2_same_law(wrong, official_corners(np.random.default_rng(1), 2000)[0]) < REJECT


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_st_preset_pastes_the_images_own_legacy_nearest_thumbnail(framework: str) -> None:
    n = 200
    images = np.random.default_rng(3).random((n, 3, SIZE, SIZE), dtype=np.float32)
    preset = per_image(TorchThumbnail.spec.papers["imagenet_st"].config)
    assert not preset["mix_images"]
    if framework == "torch":
        layer = TorchThumbnail(generator=torch.Generator().manual_seed(0), **preset)
        out = layer(torch.from_numpy(images)).numpy()
    else:
        out = keras.ops.convert_to_numpy(
            KerasThumbnail(seed=0, **preset)(images.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    # The bounding box of the changed pixels (one pixel of the box may keep its value: the
    # thumbnail's pixel (i, j) is the image's (2i, 2j)).
    boxes = changed_boxes(images, out, channel_axis=1)
    augmented = boxes["height"] > 0
    assert 0.6 * n < augmented.sum() < n
    expected = images.copy()
    for b in np.flatnonzero(augmented):
        top, left = boxes["top"][b], boxes["left"][b]
        expected[b, :, top:top + THUMB, left:left + THUMB] = images[b, :, ::2, ::2]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize(("method", "official"), [("nearest_legacy", True), ("nearest", False)])
def test_nearest_legacy_is_interpolates_default_mode_at_every_size(framework: str, method: str,
                                                                    official: bool) -> None:
    # Sizes that do not divide the image: where the two nearest modes differ most.
    n, height, width = 48, 31, 29
    images = np.random.default_rng(4).random((n, 2, height, width), dtype=np.float32)
    out, soft = run(framework, images, 1, thumbnail_area=(0.05, 0.7), resize_method=method, mix_images=True)
    boxes = changed_boxes(images, out, channel_axis=1)
    assert boxes["is_box"].all() and (boxes["height"] > 0).all()
    partner = partners(soft)
    matches = []
    for b in range(n):
        top, left, h, w = (int(boxes[k][b]) for k in ("top", "left", "height", "width"))
        reference = F.interpolate(torch.from_numpy(images[partner[b]][None]), size=(h, w))[0].numpy()
        matches.append(np.array_equal(out[b, :, top:top + h, left:left + w], reference))
    assert all(matches) if official else not any(matches[b] for b in range(n) if boxes["height"][b] < height)


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize(("weight", "expected"), [(0.25, 0.25), (None, 16 * 16 / 31**2)])
def test_fixed_label_weight_is_the_papers_lam_not_the_pixel_fraction(framework: str, weight: float | None,
                                                                      expected: float) -> None:
    n = 16
    images = np.random.default_rng(5).random((n, 3, 31, 31), dtype=np.float32)
    preset = per_image({**TorchThumbnail.spec.papers["imagenet_mst"].config, "augmentation_ratio": 1.0,
                        "bernoulli_mix": False, "thumbnail_weight": weight})
    out, soft = run(framework, images, 2, **preset)
    boxes = changed_boxes(images, out, channel_axis=1)
    assert (boxes["height"] == 16).all() and (boxes["width"] == 16).all()  # round(15.5) = 16
    partner = partners(soft)
    np.testing.assert_allclose(soft[np.arange(n), partner], expected, rtol=0, atol=1e-7)
    np.testing.assert_allclose(soft[np.arange(n), np.arange(n)], 1.0 - expected, rtol=0, atol=1e-7)


def test_presets_declare_the_official_configuration() -> None:
    papers = TorchThumbnail.spec.papers
    assert list(papers) == ["imagenet_mst", "imagenet_st"]
    for setting, mix in (("imagenet_mst", True), ("imagenet_st", False)):
        config = TorchThumbnail.spec.paper_config(setting)
        assert config["thumbnail_area"] == (0.25, 0.25) and config["resize_method"] == "nearest_legacy"
        assert (config["mix_images"], config["thumbnail_weight"]) == (mix, 0.25 if mix else None)
        assert (config["augmentation_ratio"], config["bernoulli_mix"]) == (0.8, True)
        assert "sampling='batch'" in papers[setting].notes
        assert config["sampling"] == "batch" and config["partner"] == ("permutation" if mix else "other")


@pytest.mark.parametrize("cls", [TorchThumbnail, KerasThumbnail])
def test_the_new_options_are_validated(cls: type) -> None:
    with pytest.raises(ValueError, match=r"^RandomCutThumbnail: thumbnail_weight must be a float in \[0, 1\]; "
                                         r"got 1.5$"):
        cls(mix_images=True, thumbnail_weight=1.5)
    with pytest.raises(ValueError, match=r"^RandomCutThumbnail: resize_method must be one of .*'nearest_legacy'; "
                                         r"got 'lanczos'$"):
        cls(resize_method="lanczos")


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_mst_preset_draws_one_corner_and_one_participation_per_batch(framework: str) -> None:
    """As the official step: the batch takes part with probability 0.8, with one corner for all its
    thumbnails and partners by a random permutation (a self-paired image is left as it is here,
    where the official code pastes its own thumbnail)."""
    size, batches = 6, 300
    rng = np.random.default_rng(4)
    preset = dict(TorchThumbnail.spec.papers["imagenet_mst"].config)

    def measure(**config: object) -> dict[str, np.ndarray]:
        # One layer over the batches, as in training (Keras: in one traced graph, for speed).
        if framework == "torch":
            layer = TorchThumbnail(generator=torch.Generator().manual_seed(0), num_classes=size, **config)
        else:
            layer = keras_helpers.in_graph(KerasThumbnail(seed=0, num_classes=size, data_format="channels_first",
                                                          **config))
        calls = []
        for _ in range(batches):
            images = rng.random((size, 1, SIZE, SIZE), dtype=np.float32)
            if framework == "torch":
                out = layer(torch.from_numpy(images), torch.arange(size))[0].numpy()
            else:
                out = keras.ops.convert_to_numpy(layer((images, np.arange(size)))[0])
            calls.append((images, out))
        return batch_boxes(calls, channel_axis=1)

    official = np.random.default_rng(1)
    takes_part = official.random(batches) < 0.8
    fixed = np.array([(official.permutation(size) == np.arange(size)).sum() for _ in range(batches)])
    expected = np.where(takes_part, size - fixed, 0)
    ours = measure(**preset)
    assert ours["shared"].all()
    assert chi2_same_law(ours["changed"], expected) > ACCEPT
    # The mutation check: a corner and a participation per image.
    old = measure(**per_image(preset))
    assert not old["shared"].all() and chi2_same_law(old["changed"], expected) < REJECT
