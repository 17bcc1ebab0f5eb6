"""Mixup (``RandomMixup``), torch and Keras: images and labels are blended with the same lambda
(labels against ``references.mix_labels``), uint8 results are rounded and need no saturation.
What every mixing strategy shares (Beta draws, partners, label conventions, errors):
``test_mixing_base.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import numpy as np
import pytest
import references
import torch
from helpers import ALL_DTYPES, make_images, run_mixing

from maskmix.keras import RandomMixup as keras_RandomMixup
from maskmix.torch import RandomMixup

# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_torch_mixup_blends_with_the_same_lambda_as_the_labels(dtype: torch.dtype) -> None:
    B, K = 7, 4
    x = make_images((B, 3, 9, 13), dtype, seed=3)
    labels = torch.arange(B) % K
    t = RandomMixup(num_classes=K, alpha=0.7, generator=torch.Generator().manual_seed(1))
    out, soft, p = run_mixing(t, x, labels)
    assert out.dtype == dtype and out.shape == x.shape
    lam = p["lam"].double().view(-1, 1, 1, 1)
    xd = x.double()
    expected = lam * xd + (1 - lam) * xd[p["partner"]]
    if dtype == torch.uint8:
        assert torch.all((out.double() - expected).abs() <= 0.5 + 1e-4), "uint8 results are rounded"
    else:
        tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2}.get(dtype, 1e-6)
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=tol)
    mixed = references.mix_labels(references.one_hot(labels, K), p["partner"], 1 - p["lam"].double())
    torch.testing.assert_close(soft.double(), torch.from_numpy(mixed), rtol=0, atol=1e-6)


@pytest.mark.parametrize("contiguous", [True, False], ids=["in_place_path", "out_of_place_path"])
def test_torch_uint8_mixup_needs_no_saturation(contiguous: bool) -> None:
    """uint8 Mixup rounds without clamping, because a lerp of two values in [0, 255] with a weight
    in [0, 1] stays between them. Checked at the extremes (0 against 255, both ways) with weights
    crowding 0 and 1 (alpha 0.05), against the saturated reference, on both code paths."""
    B = 64
    x = torch.zeros(B, 1, 4, 8, dtype=torch.uint8)
    x[::2] = 255
    x[:, :, :, 4:] = 255 - x[:, :, :, 4:]  # every image has both extremes
    if not contiguous:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert x.is_contiguous() == contiguous
    t = RandomMixup(num_classes=2, alpha=0.05, generator=torch.Generator().manual_seed(5))
    out, _, p = run_mixing(t, x, torch.zeros(B, dtype=torch.int64))
    lam = p["lam"].view(-1, 1, 1, 1)
    xf = x.float()
    reference = torch.lerp(xf[p["partner"]], xf, lam).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(out, reference)
    assert ((lam < 1e-3) | (lam > 1 - 1e-3)).any()  # the draws do reach the extremes
    # The bound itself, on the lerp kernel, for weights across [0, 1] and its ends.
    w = torch.cat([torch.linspace(0, 1, 100_001), torch.tensor([1e-30, 1 - 2**-24, 0.5 - 2**-25])])
    lo, hi = torch.zeros_like(w), torch.full_like(w, 255.0)
    for a, b in ((lo, hi), (hi, lo)):
        mixed = torch.lerp(a, b, w)
        assert mixed.min() >= 0 and mixed.max() <= 255


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size and class count.
KERAS_SIZE, K = kh.MIXING_SIZE, kh.MIXING_CLASSES


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
def test_keras_mixup_blends_images_and_labels(dtype):
    x, y = kh.mixing_batch(21, dtype)
    layer = keras_RandomMixup(num_classes=K, alpha=0.7, seed=4)
    out, soft, p = kh.run_mixing_layer(layer, x, y)
    xs = kh.np_(x).astype(np.float64)
    lam = p["lam"].astype(np.float64)[:, None, None, None]
    reference = lam * xs + (1 - lam) * xs[p["partner"]]
    if dtype == "uint8":
        assert out.dtype == np.uint8
        assert np.abs(out.astype(np.float64) - reference).max() <= 0.5 + 1e-3
    else:
        np.testing.assert_allclose(out, reference, atol=2e-3 if dtype == "float16" else 1e-6)
    y1 = kh.one_hot(y)
    mixed = references.mix_labels(y1, p["partner"], 1 - p["lam"].astype(np.float64))
    np.testing.assert_allclose(soft, mixed, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p["partner_weight"], 1 - p["lam"], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_keras_mixup_blends_half_precision_in_float32_as_torch(dtype):
    """The difference of two large float16 pixels (40000 and -40000) overflowed in float16 and the
    blend came out infinite; computed in float32 and rounded once, it is the exact blend rounded
    to the dtype (within its rounding), as torch's lerp (float32 inside) gives it."""
    from maskmix.keras.mixup import blend

    layer = keras_RandomMixup(num_classes=K, seed=0)
    values = np.array([40000.0, -40000.0, 0.5, 3.0], "float32").reshape(4, 1, 1, 1) * np.ones((4, 2, 2, 3), "float32")
    lam, partner = np.array([0.3, 0.6, 0.9, 0.45], "float32"), np.array([1, 0, 3, 2], "int32")
    x = kh.to_tensor(values, dtype)
    out = kh.np_(blend(layer, x, {"lam": lam, "partner": partner})).astype("float64")
    xs = kh.np_(x).astype("float64")
    weight = lam.astype("float64").reshape(-1, 1, 1, 1)
    expected = weight * xs + (1 - weight) * xs[partner]
    assert np.isfinite(out).all()
    eps = float(torch.finfo(getattr(torch, dtype)).eps)
    np.testing.assert_allclose(out, expected, rtol=eps, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_keras_mixup_lambda_at_either_end_gives_one_image_bit_for_bit(dtype):
    """Float32 Beta draws reach lam = 1 (and 0): the label row then names one image, and the pixels
    must be exactly that image's, not ``partner + 1 * (x - partner)`` rounded."""
    from maskmix.keras.mixup import blend

    x, _ = kh.mixing_batch(23, dtype)
    layer = keras_RandomMixup(num_classes=K, seed=0)
    partner = np.roll(np.arange(x.shape[0]), 1).astype("int32")
    for lam, expected in ((1.0, kh.np_(x)), (0.0, kh.np_(x)[partner])):
        params = {"lam": np.full(x.shape[0], lam, "float32"), "partner": partner}
        np.testing.assert_array_equal(kh.np_(blend(layer, x, params)), expected)
