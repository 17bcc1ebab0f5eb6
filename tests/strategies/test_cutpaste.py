"""CutPaste (``RandomCutPaste``), torch and Keras: the destination box holds the source box's
original pixels (overlaps included) and nothing else changes; positions cover the image; the
colour jitter is ``references.color_jitter`` (torchvision's brightness, contrast and saturation)
on the patch; ``is_augmented`` flags exactly the images whose pixels moved.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import keras
import numpy as np
import pytest
import references
import torch
from helpers import changed_pixels, make_images, reference_box_mask, run_with_params

from maskmix.keras import RandomCutPaste as keras_RandomCutPaste
from maskmix.torch.cutpaste import RandomCutPaste

# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8], ids=str)
def test_torch_cutpaste_pastes_the_original_source_pixels(dtype: torch.dtype) -> None:
    x = make_images((200, 2, 9, 11), dtype, seed=6)
    # Large patches: source and destination overlap often.
    t = RandomCutPaste(patch_area=(0.2, 0.6), generator=torch.Generator().manual_seed(0))
    out, p = run_with_params(t, x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (9, 11))
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~box], x.permute(1, 0, 2, 3)[:, ~box])
    overlapping = 0
    for b, (h, w, st, sl, dt, dl) in enumerate(
        zip(*(p[k].tolist() for k in ("height", "width", "src_top", "src_left", "top", "left")), strict=True)
    ):
        assert 0 <= min(st, sl, dt, dl) and max(st, dt) + h <= 9 and max(sl, dl) + w <= 11
        assert (st, sl) != (dt, dl), "the destination differs from the source"
        assert torch.equal(out[b, :, dt : dt + h, dl : dl + w], x[b, :, st : st + h, sl : sl + w])
        overlapping += abs(st - dt) < h and abs(sl - dl) < w
    assert overlapping > 20


def test_torch_cutpaste_positions_cover_the_image() -> None:
    t = RandomCutPaste(patch_area=0.25, patch_aspect_ratio=1.0, generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 4, 4).expand(4000, 1, 4, 4)])  # 2x2 patches, 3x3 positions
    assert set(p["height"].tolist()) == {2} and set(p["width"].tolist()) == {2}
    pairs = torch.stack([p["src_top"] * 3 + p["src_left"], p["top"] * 3 + p["left"]], 1)
    counts = torch.zeros(9, 9).index_put_((pairs[:, 0], pairs[:, 1]), torch.ones(4000), accumulate=True)
    assert counts.diagonal().sum() == 0
    off_diagonal = counts[~torch.eye(9, dtype=torch.bool)]
    # 72 ordered pairs, 55.6 expected each (sd ~7.4).
    assert off_diagonal.min() > 25 and off_diagonal.max() < 90
    # A patch as large as the image has a single position: it is pasted onto itself.
    p = t.make_params([torch.zeros(1, 1, 1, 1).expand(5, 1, 1, 1)])
    assert p["top"].eq(p["src_top"]).all() and p["left"].eq(p["src_left"]).all()


@pytest.mark.parametrize("channels", [3, 1])
def test_torch_cutpaste_color_jitter_matches_the_reference_on_the_patch(channels: int) -> None:
    x = make_images((16, channels, 12, 14), seed=7)
    t = RandomCutPaste(color_jitter=0.4, patch_area=(0.2, 0.4), generator=torch.Generator().manual_seed(2))
    out, p = run_with_params(t, x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (12, 14))
    changed = changed_pixels(x, out)
    assert not (changed & ~box).any() and changed.flatten(1).any(1).all()
    assert out.min() >= 0 and out.max() <= 1
    for b in range(16):
        h, w, st, sl, dt, dl = (int(p[k][b]) for k in ("height", "width", "src_top", "src_left", "top", "left"))
        factors = [float(p[k][b]) for k in ("brightness", "contrast", "saturation")]
        assert all(0.6 <= f <= 1.4 for f in factors)
        patch = references.color_jitter(x[b, :, st : st + h, sl : sl + w].permute(1, 2, 0).numpy(), *factors)
        expected = torch.from_numpy(patch).permute(2, 0, 1).float()  # one channel: no saturation change
        torch.testing.assert_close(out[b, :, dt : dt + h, dl : dl + w], expected, rtol=0, atol=2e-6)


def test_torch_cutpaste_color_jitter_respects_pixels_range_and_uint8() -> None:
    x = make_images((8, 3, 12, 12), torch.uint8)
    out = RandomCutPaste(color_jitter=1.0)(x)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    normalised = make_images((8, 3, 12, 12)) * 4 - 2
    out = RandomCutPaste(color_jitter=1.0, pixels_range=(-2.0, 2.0))(normalised)
    assert out.min() >= -2.0 and out.max() <= 2.0


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (1, 5)])
def test_torch_cutpaste_labels_only_images_whose_pixels_moved(size: tuple[int, int]) -> None:
    """On thin images the patch may fill the image (one position: nothing moves); such an image
    is not augmented. is_augmented must be exactly the images that changed."""
    x = torch.arange(64 * size[0] * size[1], dtype=torch.float32).view(64, 1, *size)  # distinct pixels
    t = RandomCutPaste(return_labels=True, patch_aspect_ratio=(0.01, 100.0), generator=torch.Generator().manual_seed(3))
    out, labels = t(x)
    moved = changed_pixels(x, out).flatten(1).any(1)
    assert torch.equal(labels.bool(), moved)
    if size == (1, 1):
        assert not moved.any()


@pytest.mark.parametrize("size", [(2, 2), (4, 4), (3, 5)])
def test_torch_cutpaste_labels_only_scars_that_moved_pixels(size: tuple[int, int]) -> None:
    """On tiny images a scar may read each of its pixels from itself (about 1/3 of the scars at
    4x4, all at 2x2): such an image is not augmented. is_augmented must be exactly the images
    that changed."""
    x = torch.arange(256 * size[0] * size[1], dtype=torch.float32).view(256, 1, *size)  # distinct pixels
    t = RandomCutPaste(scar_prob=1.0, three_way_labels=True, return_labels=True,
                       generator=torch.Generator().manual_seed(4))
    out, labels = t(x)
    moved = changed_pixels(x, out).flatten(1).any(1)
    assert torch.equal(labels, 2 * moved.to(torch.int64))
    if size == (2, 2):
        assert not moved.any()
    else:
        assert 0 < moved.sum() < 256


@pytest.mark.parametrize("shape", [(3, 3, 1, 1), (2, 1, 1, 5), (2, 3, 4, 1)])
def test_torch_cutpaste_jitter_leaves_an_unmovable_patch_alone(shape) -> None:
    """A patch that fills its image is not augmented: with colour jitter (and the whole batch
    selected, where the move skips the selection) its pixels must not be jittered either."""
    x = torch.rand(shape)
    t = RandomCutPaste(patch_area=0.99, patch_aspect_ratio=(0.01, 100.0), color_jitter=1.0, return_labels=True)
    for seed in range(5):
        torch.manual_seed(seed)
        out, is_augmented = t(x)
        unmoved = is_augmented == 0
        assert torch.equal(out[unmoved], x[unmoved]), "an image flagged as not augmented changed"


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (11, 9)


def keras_images(b: int = 6, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((b, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("dtype", ["uint8", "bfloat16", "float32"])
@pytest.mark.parametrize("channels_first", [False, True])
def test_keras_cutpaste_pastes_the_original_source_pixels(dtype, channels_first):
    x = keras_images(24, dtype, seed=4)
    xs = kh.np_(x)
    layout = "channels_first" if channels_first else None
    layer = keras_RandomCutPaste(patch_area=(0.1, 0.5), seed=6, data_format=layout)
    xin = keras.ops.transpose(x, (0, 3, 1, 2)) if channels_first else x
    out, p = kh.run_with_params(layer, xin)
    if channels_first:
        out = out.transpose(0, 2, 3, 1)
    moved = 0
    for b in range(24):
        dst, src = kh.box_slices(p, b), kh.box_slices(p, b, "src_")
        expected = xs[b].copy()
        expected[dst] = xs[b][src]  # the source's original pixels, even where the boxes overlap
        np.testing.assert_array_equal(out[b], expected)
        moved += (p["top"][b], p["left"][b]) != (p["src_top"][b], p["src_left"][b])
    assert moved == 24  # the destination is another position


@pytest.mark.parametrize("channels", [3, 1])
def test_keras_cutpaste_jitter_changes_only_the_patch(channels):
    x = keras_images(8, "float32", channels=channels, seed=5)
    xs = kh.np_(x)
    layer = keras_RandomCutPaste(color_jitter=0.4, patch_area=0.3, pixels_range=(0.0, 0.8), seed=7)
    out, p = kh.run_with_params(layer, x)
    for b in range(8):
        dst, src = kh.box_slices(p, b), kh.box_slices(p, b, "src_")
        keep = kh.outside(KERAS_SIZE, dst)
        np.testing.assert_array_equal(out[b][keep], xs[b][keep])
        factors = (p["brightness"][b], p["contrast"][b], p["saturation"][b])
        expected = references.color_jitter(xs[b][src], *factors, 0.0, 0.8)
        np.testing.assert_allclose(out[b][dst], expected, atol=1e-5)
        assert (out[b][dst] != xs[b][src]).any()
        assert out[b][dst].max() <= 0.8


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (1, 5)])
def test_keras_cutpaste_labels_only_images_whose_pixels_moved(size):
    """On thin images the patch may fill the image (one position: nothing moves); such an image
    is not augmented. is_augmented must be exactly the images that changed."""
    x = np.arange(64 * size[0] * size[1], dtype="float32").reshape(64, *size, 1)  # distinct pixels
    out, flags = keras_RandomCutPaste(return_labels=True, patch_aspect_ratio=(0.01, 100.0), seed=3)(x)
    moved = (kh.np_(out) != x).reshape(64, -1).any(1)
    np.testing.assert_array_equal(kh.np_(flags), moved.astype(np.int64))
    if size == (1, 1):
        assert not moved.any()


@pytest.mark.parametrize("size", [(2, 2), (4, 4), (3, 5)])
def test_keras_cutpaste_labels_only_scars_that_moved_pixels(size):
    """As the torch test: a scar that reads each of its pixels from itself is not augmented."""
    x = np.arange(256 * size[0] * size[1], dtype="float32").reshape(256, *size, 1)  # distinct pixels
    out, flags = keras_RandomCutPaste(scar_prob=1.0, three_way_labels=True, return_labels=True, seed=4)(x)
    moved = (kh.np_(out) != x).reshape(256, -1).any(1)
    np.testing.assert_array_equal(kh.np_(flags), 2 * moved.astype(np.int64))
    if size == (2, 2):
        assert not moved.any()
    else:
        assert 0 < moved.sum() < 256


# --------------------------------------------------------------------------------------------
# Hue jitter and scars, both frameworks, pixel for pixel against references built from the
# sampled parameters (colorsys for the hue, a per-pixel loop for the scar).
# --------------------------------------------------------------------------------------------


def reference_hue(patch: np.ndarray, shift: float, lo: float, hi: float) -> np.ndarray:
    """colorsys' HSV round trip of ``(h, w, 3)`` values in ``[lo, hi]``, hue shifted by ``shift``."""
    import colorsys

    unit = (patch - lo) / (hi - lo)
    out = np.empty_like(unit)
    for idx in np.ndindex(unit.shape[:-1]):
        h, s, v = colorsys.rgb_to_hsv(*unit[idx])
        out[idx] = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
    return lo + out * (hi - lo)


def reference_scar(image: np.ndarray, p: dict, b: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, out)`` of image ``b`` (``(H, W, C)``) with its scar pasted, pixel by pixel."""
    height, width = image.shape[:2]
    length, side = int(p["scar_length"][b]), int(p["scar_width"][b])
    top, left, angle = int(p["scar_top"][b]), int(p["scar_left"][b]), float(p["scar_angle"][b])
    out, mask = image.copy(), np.zeros((height, width), bool)
    for y in range(height):
        for x in range(width):
            dy, dx = y + 0.5 - float(p["scar_cy"][b]), x + 0.5 - float(p["scar_cx"][b])
            along = dy * math.cos(angle) + dx * math.sin(angle)
            across = dx * math.cos(angle) - dy * math.sin(angle)
            if abs(along) < length / 2 and abs(across) < side / 2:
                mask[y, x] = True
                row = min(max(math.floor(top + length / 2 + along), top), top + length - 1)
                col = min(max(math.floor(left + side / 2 + across), left), left + side - 1)
                out[y, x] = image[row, col]
    return mask, out


def test_torch_cutpaste_hue_jitter_matches_colorsys() -> None:
    x = make_images((6, 3, 7, 9), torch.float32, seed=3)
    t = RandomCutPaste(color_jitter=0.3, hue_jitter=0.4, patch_area=0.3, pixels_range=(0.0, 0.9),
                       generator=torch.Generator().manual_seed(2))
    out, p = run_with_params(t, x)
    xs, outs = x.permute(0, 2, 3, 1).numpy(), out.permute(0, 2, 3, 1).numpy()
    for b in range(6):
        dst = reference_box_mask(p["top"][b:b + 1], p["left"][b:b + 1], p["height"][b:b + 1],
                                 p["width"][b:b + 1], (7, 9))[0].numpy()
        src = reference_box_mask(p["src_top"][b:b + 1], p["src_left"][b:b + 1], p["height"][b:b + 1],
                                 p["width"][b:b + 1], (7, 9))[0].numpy()
        h, w = int(p["height"][b]), int(p["width"][b])
        patch = xs[b][src].reshape(h, w, 3)
        factors = (float(p["brightness"][b]), float(p["contrast"][b]), float(p["saturation"][b]))
        expected = reference_hue(references.color_jitter(patch, *factors, 0.0, 0.9), float(p["hue"][b]), 0.0, 0.9)
        np.testing.assert_allclose(outs[b][dst].reshape(h, w, 3), expected, atol=1e-5)
        np.testing.assert_array_equal(outs[b][~dst], xs[b][~dst])


def test_keras_cutpaste_hue_jitter_matches_colorsys() -> None:
    x = keras_images(6, "float32", seed=4)
    xs = kh.np_(x)
    layer = keras_RandomCutPaste(color_jitter=0.3, hue_jitter=0.4, patch_area=0.3, pixels_range=(0.0, 0.9), seed=5)
    out, p = kh.run_with_params(layer, x)
    for b in range(6):
        dst, src = kh.box_slices(p, b), kh.box_slices(p, b, "src_")
        factors = (p["brightness"][b], p["contrast"][b], p["saturation"][b])
        expected = reference_hue(references.color_jitter(xs[b][src], *factors, 0.0, 0.9), float(p["hue"][b]), 0.0, 0.9)
        np.testing.assert_allclose(out[b][dst], expected, atol=1e-5)


def test_torch_cutpaste_scar_matches_the_reference() -> None:
    """Each scar image equals the per-pixel reference built from its parameters; labels 2."""
    x = make_images((10, 2, 30, 28), torch.float32, seed=6)
    t = RandomCutPaste(scar_prob=1.0, three_way_labels=True, return_labels=True,
                       generator=torch.Generator().manual_seed(7))
    out, p = run_with_params(t, x)
    xs, outs = x.permute(0, 2, 3, 1).numpy(), out.permute(0, 2, 3, 1).numpy()
    params = {k: v.numpy() for k, v in p.items() if isinstance(v, torch.Tensor)}
    assert params["is_scar"].all()
    for b in range(10):
        mask, expected = reference_scar(xs[b], params, b)
        assert 0 < mask.sum() <= params["scar_length"][b] * params["scar_width"][b] + 2 * params["scar_length"][b]
        np.testing.assert_array_equal(outs[b], expected)


def test_keras_cutpaste_scar_matches_the_reference() -> None:
    x = keras_images(10, "float32", size=(30, 28), channels=2, seed=8)
    xs = kh.np_(x)
    layer = keras_RandomCutPaste(scar_prob=0.5, seed=9)
    out, p = kh.run_with_params(layer, x)
    assert 0 < p["is_scar"].sum() < 10
    for b in np.flatnonzero(p["is_scar"]):
        _, expected = reference_scar(xs[b], p, b)
        np.testing.assert_array_equal(out[b], expected)
