"""CutPaste's published settings (Li et al., CVPR 2021; no official code), torch and Keras, against
an independent NumPy re-implementation of the paper's sampler (appendix A: rectangle area
U(0.02, 0.15) of the image, aspect ratio log-uniform on (0.3, 3.3), ColorJitter 0.1 with hue; the
scar 2-16 px wide, 10-25 px long, rotated in [-45, 45] degrees, at a uniform place fully inside).

Every quantity is measured from the transform's *outputs*: the changed pixels of images whose
pixel values are all distinct (a moved pixel always differs from the one it replaces), their
bounding box (the rectangle), their count and second moments (the scar's length, width and
angle), the hue of the pasted pixels of one-colour images. Two-sample Kolmogorov-Smirnov tests
compare them with the reference's; each test also shows that the same test rejects a wrong law
(the old default, or the option left out): that is the mutation check of the preset.

Tolerances: a preset must give p > 1e-3 (n = 300 to 1000 images per framework against 3000 to 20000 reference
draws: a false alarm once in a thousand runs at most, with fixed seeds never), a wrong law
p < 1e-3 (the laws below differ by far more than the KS distance these n resolve, ~0.05-0.1).
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import colorsys
import math

import numpy as np
import pytest
import torch
from scipy import stats

from maskmix.keras import RandomCutPaste as KerasCutPaste
from maskmix.torch import RandomCutPaste

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = (
    "rectangle area and aspect, scar width, length and angle, hue jitter, 3-way labels; the old defaults "
    "rejected"
)

ALPHA = 1e-3
SIZE = 64  # images are SIZE x SIZE: room for every scar (its box is at most 30 px wide)


# --------------------------------------------------------------------------------------------
# The paper's sampler, in NumPy (independent of maskmix).
# --------------------------------------------------------------------------------------------


def reference_rectangles(rng: np.random.Generator, n: int, size: int, area=(0.02, 0.15),
                         aspect=(0.3, 3.3)) -> dict[str, np.ndarray]:
    """Sides and destination corner of the rectangle: area and log-uniform aspect, rounded sides."""
    target = rng.uniform(*area, n) * size * size
    ratio = np.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1]), n))
    h = np.maximum(np.round(np.sqrt(target * ratio)), 1).astype(int)
    w = np.maximum(np.round(np.sqrt(target / ratio)), 1).astype(int)
    top = (rng.random(n) * (size - h + 1)).astype(int)
    return {"h": h, "w": w, "area": h * w, "log_aspect": np.log(h / w), "top": (top + 0.5) / (size - h + 1)}


def reference_scar_masks(rng: np.random.Generator, n: int, size: int, width=(2, 16), length=(10, 25),
                         degrees=45.0) -> np.ndarray:
    """``(n, size, size)`` masks of the paper's scars: an upright ``length x width`` rectangle
    rotated by a uniform angle, centre uniform with its rotated bounding box inside; a pixel is in
    the scar when its centre is strictly inside the rotated rectangle."""
    side = rng.integers(width[0], width[1] + 1, n).astype(float)
    long = rng.integers(length[0], length[1] + 1, n).astype(float)
    theta = np.radians(rng.uniform(-degrees, degrees, n))
    box_h = long * np.abs(np.cos(theta)) + side * np.abs(np.sin(theta))
    box_w = long * np.abs(np.sin(theta)) + side * np.abs(np.cos(theta))
    cy = box_h / 2 + rng.random(n) * (size - box_h)
    cx = box_w / 2 + rng.random(n) * (size - box_w)
    grid = np.arange(size) + 0.5
    masks = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        dy = grid[:, None] - cy[i]
        dx = grid[None, :] - cx[i]
        # The rectangle's own axes: along its length and across it.
        along = dy * math.cos(theta[i]) + dx * math.sin(theta[i])
        across = dx * math.cos(theta[i]) - dy * math.sin(theta[i])
        masks[i] = (np.abs(along) < long[i] / 2) & (np.abs(across) < side[i] / 2)
    return masks


def shape_statistics(masks: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel count, major-axis length ``sqrt(12 var)`` and its angle to the vertical (degrees,
    folded into [0, 90]: the scar's law is symmetric) of each ``(H, W)`` mask."""
    ys, xs = np.indices(masks.shape[1:])
    count = masks.sum(axis=(1, 2)).astype(float)
    safe = np.maximum(count, 1)
    my = (masks * ys).sum(axis=(1, 2)) / safe
    mx = (masks * xs).sum(axis=(1, 2)) / safe
    vyy = (masks * ys**2).sum(axis=(1, 2)) / safe - my**2
    vxx = (masks * xs**2).sum(axis=(1, 2)) / safe - mx**2
    vxy = (masks * ys * xs).sum(axis=(1, 2)) / safe - my * mx
    major = (vyy + vxx) / 2 + np.sqrt(((vyy - vxx) / 2) ** 2 + vxy**2)
    angle = np.degrees(np.abs(0.5 * np.arctan2(2 * vxy, vyy - vxx)))
    return {"count": count, "length": np.sqrt(12 * major), "angle": angle}


def p_values(measured: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    return {key: stats.ks_2samp(measured[key], reference[key]).pvalue for key in measured}


# --------------------------------------------------------------------------------------------
# Running the transforms (both frameworks) on images with distinct pixel values.
# --------------------------------------------------------------------------------------------


def distinct_images(n: int, size: int, seed: int) -> np.ndarray:
    """``(n, size, size, 3)`` float32 images in [0.2, 0.8] with distinct values per image."""
    rng = np.random.default_rng(seed)
    return (0.2 + 0.6 * rng.random((n, size, size, 3))).astype(np.float32)


def run(framework: str, images_hwc: np.ndarray, setting: str, seed: int, **options) -> tuple[np.ndarray, np.ndarray]:
    """``(changed (n, H, W) bool, labels (n,))`` of the preset ``setting`` (with ``options``)."""
    if framework == "torch":
        t = RandomCutPaste.from_paper(setting, generator=torch.Generator().manual_seed(seed), **options)
        x = torch.from_numpy(images_hwc).permute(0, 3, 1, 2).contiguous()
        out, labels = t(x) if t.return_labels else (t(x), None)
        out = out.permute(0, 2, 3, 1).numpy()
        labels = None if labels is None else labels.numpy()
    else:
        layer = KerasCutPaste.from_paper(setting, seed=seed, **options)
        result = layer(images_hwc)
        out, labels = (result if layer.return_labels else (result, None))
        out = kh.np_(out)
        labels = None if labels is None else kh.np_(labels)
    return (out != images_hwc).any(axis=-1), labels


def rectangle_statistics(changed: np.ndarray) -> dict[str, np.ndarray]:
    rows, cols = changed.any(axis=2), changed.any(axis=1)
    top = rows.argmax(axis=1)
    h = rows.sum(axis=1)
    w = cols.sum(axis=1)
    # Every changed set is a filled rectangle: its bounding box.
    assert np.array_equal(changed.sum(axis=(1, 2)), h * w)
    return {"area": h * w, "log_aspect": np.log(h / w), "top": (top + 0.5) / (changed.shape[1] - h + 1)}


FRAMEWORKS = [pytest.param("torch", 1000, id="torch"), pytest.param("keras", 400, id="keras")]


@pytest.mark.parametrize(("framework", "n"), FRAMEWORKS)
def test_cutpaste_rectangle_follows_the_paper_law(framework: str, n: int) -> None:
    """Area U(0.02, 0.15), log-uniform aspect (0.3, 3.3), destination uniform fully inside."""
    x = distinct_images(n, 40, seed=1)
    reference = reference_rectangles(np.random.default_rng(0), 20000, 40)
    reference = {key: reference[key] for key in ("area", "log_aspect", "top")}
    changed, _ = run(framework, x, "cutpaste", seed=2, augmentation_ratio=1.0)
    assert changed.any(axis=(1, 2)).all()
    assert min(p_values(rectangle_statistics(changed), reference).values()) > ALPHA
    # The same test rejects maskmix's default law (area (0.05, 0.3), aspect (0.3, 3.0)) and a
    # narrower aspect range (the area law right).
    for wrong in ({"patch_area": (0.05, 0.3), "patch_aspect_ratio": (0.3, 3.0)}, {"patch_aspect_ratio": (0.5, 2.0)}):
        changed, _ = run(framework, x, "cutpaste", seed=2, augmentation_ratio=1.0, **wrong)
        assert min(p_values(rectangle_statistics(changed), reference).values()) < ALPHA, wrong


@pytest.mark.parametrize(("framework", "n"), [pytest.param("torch", 600, id="torch"),
                                              pytest.param("keras", 300, id="keras")])
def test_cutpaste_scar_follows_the_paper_law(framework: str, n: int) -> None:
    """Scar width 2-16, length 10-25 px, angle U(-45, 45) degrees: pixel counts, lengths and angles
    of the changed pixels against the reference's rasterised scars."""
    x = distinct_images(n, SIZE, seed=3)
    reference = shape_statistics(reference_scar_masks(np.random.default_rng(1), 3000, SIZE))
    changed, labels = run(framework, x, "scar", seed=4, augmentation_ratio=1.0)
    assert (labels == 1).all()
    assert min(p_values(shape_statistics(changed), reference).values()) > ALPHA
    # The same test rejects an unrotated scar and one of the wrong width.
    for wrong in ({"scar_rotation": 0.0}, {"scar_width": (2, 6)}):
        changed, _ = run(framework, x, "scar", seed=4, augmentation_ratio=1.0, **wrong)
        assert min(p_values(shape_statistics(changed), reference).values()) < ALPHA, wrong


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_cutpaste_3way_labels_say_what_each_image_got(framework: str) -> None:
    """Labels 0 / 1 / 2 exactly: 0 unchanged, 1 a filled axis-aligned rectangle of at least 2% of
    the image, 2 a scar (at most 16 x 25 pixels, within a 30-pixel box); 0 for exactly
    B - round(2B/3) images, and the scars ~ Binomial(augmented, 1/2)."""
    size, n = 96, 240
    x = distinct_images(n, size, seed=5)
    changed, labels = run(framework, x, "3way", seed=6)
    count = changed.sum(axis=(1, 2))
    rows, cols = changed.any(axis=2), changed.any(axis=1)
    box = rows.sum(axis=1) * cols.sum(axis=1)
    assert np.array_equal(count == 0, labels == 0)
    assert (labels == 0).sum() == n - math.floor(2 * n / 3 + 0.5)
    rect = labels == 1
    assert np.array_equal(count[rect], box[rect]) and (count[rect] >= round(0.02 * size * size)).all()
    scar = labels == 2
    assert (count[scar] <= 16 * 25 + 16).all()
    assert (rows.sum(axis=1)[scar] <= 30).all() and (cols.sum(axis=1)[scar] <= 30).all()
    assert stats.binomtest(int(scar.sum()), int((labels > 0).sum()), 0.5).pvalue > ALPHA


def hue_of(rgb: np.ndarray) -> np.ndarray:
    return np.array([colorsys.rgb_to_hsv(*pixel)[0] for pixel in rgb])


@pytest.mark.parametrize(("framework", "n"), [pytest.param("torch", 800, id="torch"),
                                              pytest.param("keras", 300, id="keras")])
def test_cutpaste_hue_jitter_shifts_the_patch_hue_uniformly(framework: str, n: int) -> None:
    """One-colour images: brightness, contrast and saturation keep the hue, so the pasted pixels'
    hue minus the image's is the hue factor, uniform in [-0.1, 0.1] (ColorJitter(hue=0.1))."""
    rng = np.random.default_rng(7)
    hues = rng.random(n)
    colours = np.array([colorsys.hsv_to_rgb(h, 0.5, 0.6) for h in hues], dtype=np.float32)
    x = np.broadcast_to(colours[:, None, None, :], (n, 24, 24, 3)).copy()

    def shifts(**options) -> np.ndarray:
        if framework == "torch":
            t = RandomCutPaste.from_paper("cutpaste", augmentation_ratio=1.0, return_labels=False,
                                          generator=torch.Generator().manual_seed(8), **options)
            out = t(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        else:
            out = kh.np_(KerasCutPaste.from_paper("cutpaste", augmentation_ratio=1.0, return_labels=False,
                                                  seed=8, **options)(x))
        changed = (np.abs(out - x) > 1e-6).any(axis=-1)
        pasted = np.array([out[i][changed[i]].mean(axis=0) for i in range(n)])
        return (hue_of(pasted) - hues + 0.5) % 1.0 - 0.5

    reference = np.random.default_rng(2).uniform(-0.1, 0.1, 20000)
    assert stats.ks_2samp(shifts(), reference).pvalue > ALPHA
    # Without the hue option (maskmix's jitter before it), the same test rejects.
    assert stats.ks_2samp(shifts(hue_jitter=0.0), reference).pvalue < ALPHA
