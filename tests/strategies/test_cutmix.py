"""CutMix (``RandomCutMix``), torch and Keras: the changed pixels are exactly one box, rebuilt by
slicing (``tests/references.py``), copied from the partner; the label weight is the box's exact
pixel fraction (``references.mix_labels``); the default box has the image's shape and area
``1 - lambda``. What every mixing strategy shares (Beta draws, partners, label conventions,
errors): ``test_mixing_base.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import numpy as np
import pytest
import references
import torch
import torch.nn.functional as F
from helpers import changed_pixels, make_images, reference_box_mask, run_mixing

from maskmix.keras import RandomCutMix as keras_RandomCutMix
from maskmix.torch import RandomCutMix

# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (24, 40), (37, 11)])
@pytest.mark.parametrize("label_kind", ["index", "onehot"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("variant", [False, True])
def test_torch_cutmix_pixels_are_one_box_from_the_partner_and_labels_weigh_its_pixels(size, label_kind, smoothing,
                                                                                 variant) -> None:
    B, K = 9, 5
    x = make_images((B, 3, *size), torch.float64, seed=2)
    idx = torch.randint(0, K, (B,), generator=torch.Generator().manual_seed(1))
    labels = idx if label_kind == "index" else F.one_hot(idx, K).float()
    extra = dict(patch_area=(0.1, 0.6), patch_aspect_ratio=(0.5, 2.0)) if variant else {}
    t = RandomCutMix(num_classes=K, label_smoothing=smoothing, generator=torch.Generator().manual_seed(4), **extra)
    out, soft, p = run_mixing(t, x, labels)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], size)
    assert torch.equal(changed_pixels(x, out), box)
    partner = p["partner"]
    assert not torch.any(partner == torch.arange(B)), "an image is never its own partner"
    y = torch.from_numpy(references.smooth_labels(references.one_hot(idx, K), smoothing))
    for i in range(B):
        region = box[i]
        assert torch.equal(out[i][:, region], x[partner[i]][:, region])
        fraction = region.sum().item() / (size[0] * size[1])
        expected = (1 - fraction) * y[i] + fraction * y[partner[i]]
        torch.testing.assert_close(soft[i].double(), expected, rtol=0, atol=1e-6)
        if variant:  # fully inside
            assert p["top"][i] >= 0 and p["top"][i] + p["height"][i] <= size[0]
            assert p["left"][i] >= 0 and p["left"][i] + p["width"][i] <= size[1]
    assert soft.dtype == torch.float32 and soft.shape == (B, K)
    torch.testing.assert_close(soft.sum(1), torch.ones(B), rtol=0, atol=1e-6)


def test_torch_cutmix_default_box_has_the_image_shape_and_area_one_minus_lambda() -> None:
    H, W = 60, 90
    x = torch.zeros(1, 1, 1, 1).expand(4000, 1, H, W)
    t = RandomCutMix(num_classes=3, generator=torch.Generator().manual_seed(0))
    p = t.make_params([x])
    lam = p["lam"].double()
    cut_h = torch.round(H * torch.sqrt(1 - lam))
    cut_w = torch.round(W * torch.sqrt(1 - lam))
    # Boxes away from the borders are unclipped: exactly the image's shape scaled by sqrt(1 - lam).
    inside = (p["top"] > 0) & (p["left"] > 0) & (p["top"] + p["height"] < H) & (p["left"] + p["width"] < W)
    assert inside.sum() > 300
    assert torch.equal(p["height"][inside].double(), cut_h[inside])
    assert torch.equal(p["width"][inside].double(), cut_w[inside])
    # Clipped boxes are never larger than the unclipped ones.
    assert torch.all(p["height"] <= cut_h) and torch.all(p["width"] <= cut_w)
    # The label weight is the exact pixel fraction.
    torch.testing.assert_close(p["partner_weight"].double(), (p["height"] * p["width"]).double() / (H * W))


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The elements' bit patterns: equal bits, not equal values (NaN payloads, -0.0 vs 0.0)."""
    return t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8], ids=str)
@pytest.mark.parametrize("ratio", [1.0, 0.5])
@pytest.mark.parametrize("size", [(9, 13), (40, 40)])
@pytest.mark.parametrize("partner", ["other", "permutation"])  # slices of the batch; a gathered copy
def test_torch_cutmix_pastes_the_partners_bits_exactly(dtype, ratio, size, partner) -> None:
    # Every element is exactly one of the two images', bit for bit, whatever its value: -0.0,
    # infinities, NaN payloads, extremes; whether the CPU pairs two slices of the batch (the
    # cyclic "other" law) or gathers a partner copy.
    B = 7
    gen = torch.Generator().manual_seed(5)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (B, 3, *size), dtype=torch.uint8, generator=gen)
    else:
        x = torch.randn(B, 3, *size, generator=gen, dtype=torch.float64).mul(1e4).to(dtype)
        special = torch.tensor([-0.0, 0.0, float("inf"), float("-inf"), float("nan"),
                                torch.finfo(dtype).max, -torch.finfo(dtype).max, torch.finfo(dtype).tiny])
        spots = torch.randint(0, x.numel(), (x.numel() // 3,), generator=gen)
        x.view(-1)[spots] = special[torch.randint(0, len(special), spots.shape, generator=gen)].to(dtype)
        _bits(x).view(-1)[spots[::7]] = _bits(torch.tensor([float("nan")], dtype=dtype)).add(3)  # another payload
    t = RandomCutMix(num_classes=4, augmentation_ratio=ratio, partner=partner,
                     generator=torch.Generator().manual_seed(2))
    before = x.clone()
    out, _, p = run_mixing(t, x, torch.zeros(B, dtype=torch.int64))
    assert torch.equal(_bits(x), _bits(before))  # not modified in place
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], size, p["selected"].numpy())
    assert box.any() and (~box).any()
    expected = _bits(x).clone()
    for i in range(B):
        expected[i][:, box[i]] = _bits(x)[p["partner"][i]][:, box[i]]
    assert torch.equal(_bits(out), expected)


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size and class count.
KERAS_SIZE, K = kh.MIXING_SIZE, kh.MIXING_CLASSES


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"patch_area": (0.1, 0.4), "patch_aspect_ratio": (0.5, 2.0)}, {"alpha": 0.3}])
def test_keras_cutmix_pixels_and_labels(kwargs, channels_first):
    x, y = kh.mixing_batch(33, channels_first=channels_first)
    layout = "channels_first" if channels_first else None
    layer = keras_RandomCutMix(num_classes=K, seed=1, data_format=layout, **kwargs)
    out, soft, p = kh.run_mixing_layer(layer, x, y)
    xs = kh.np_(x)
    box = kh.reference_box_mask(p["top"], p["left"], p["height"], p["width"], KERAS_SIZE)
    changed = kh.changed_pixels(xs, out, channels_first)
    assert not (changed & ~box).any()  # nothing outside the box changes
    partner = p["partner"]
    assert (partner != np.arange(33)).all()
    expected = xs.copy()
    for b in range(33):
        if channels_first:
            expected[b][:, box[b]] = xs[partner[b]][:, box[b]]
        else:
            expected[b][box[b]] = xs[partner[b]][box[b]]
    np.testing.assert_array_equal(out, expected)
    f = box.sum((1, 2)) / (KERAS_SIZE[0] * KERAS_SIZE[1])
    np.testing.assert_allclose(p["partner_weight"], f, rtol=1e-6)
    y1 = kh.one_hot(y)
    np.testing.assert_allclose(soft, references.mix_labels(y1, partner, f), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    if "patch_area" in kwargs:
        assert (p["top"] + p["height"] <= KERAS_SIZE[0]).all() and (p["left"] + p["width"] <= KERAS_SIZE[1]).all()


def test_keras_cutmix_default_box_area_is_one_minus_lambda():
    x, _ = kh.mixing_batch(400)
    layer = keras_RandomCutMix(num_classes=K, seed=2)
    p = kh.params_np(layer.get_random_transformation(x))
    side = np.sqrt(1 - p["lam"])
    full_h, full_w = np.round(side * KERAS_SIZE[0]), np.round(side * KERAS_SIZE[1])
    assert (p["height"] <= full_h).all() and (p["width"] <= full_w).all()
    inside = (p["height"] == full_h) & (p["width"] == full_w)
    assert inside.mean() > 0.05  # not clipped: the exact box of area ~ 1 - lam
    assert (p["partner_weight"] < 1 - p["lam"] + 0.2).all()
