"""CutMix and Mixup: pixel accounting, label weights, Beta sampling, calling conventions, errors."""

from __future__ import annotations

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from helpers import ALL_DTYPES, changed_pixels, make_images, reference_box_mask, run_mixing
from torchvision import tv_tensors

from maskmix.torch import RandomCutMix, RandomMixup, random_cutmix, random_mixup

run = run_mixing


def expected_soft(labels, num_classes, smoothing):
    y = F.one_hot(labels, num_classes).double() if not labels.dtype.is_floating_point else labels.double()
    return y * (1 - smoothing) + smoothing / y.shape[1]


@pytest.mark.parametrize("size", [(32, 32), (24, 40), (37, 11)])
@pytest.mark.parametrize("label_kind", ["index", "onehot"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("variant", [False, True])
def test_cutmix_pixels_are_one_box_from_the_partner_and_labels_weigh_its_pixels(size, label_kind, smoothing,
                                                                                 variant) -> None:
    B, K = 9, 5
    x = make_images((B, 3, *size), torch.float64, seed=2)
    idx = torch.randint(0, K, (B,), generator=torch.Generator().manual_seed(1))
    labels = idx if label_kind == "index" else F.one_hot(idx, K).float()
    extra = dict(patch_area=(0.1, 0.6), patch_aspect_ratio=(0.5, 2.0)) if variant else {}
    t = RandomCutMix(num_classes=K, label_smoothing=smoothing, generator=torch.Generator().manual_seed(4), **extra)
    out, soft, p = run(t, x, labels)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], size)
    assert torch.equal(changed_pixels(x, out), box)
    partner = p["partner"]
    assert not torch.any(partner == torch.arange(B)), "an image is never its own partner"
    y = expected_soft(idx, K, smoothing)
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


def test_cutmix_default_box_has_the_image_shape_and_area_one_minus_lambda() -> None:
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


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_lambda_follows_beta_alpha_alpha(alpha: float, cls) -> None:
    t = cls(alpha=alpha, num_classes=2, generator=torch.Generator().manual_seed(7))
    x = torch.zeros(1, 1, 1, 1).expand(20000, 1, 4, 4)
    lam = t.make_params([x])["lam"].double().numpy()
    dist = scipy.stats.beta(alpha, alpha)
    # float32 cannot hold values within 6e-8 of 1 (small alpha puts ~2% of the mass there), so the
    # KS test runs on the distribution conditioned on [a, 1 - a] and the tails are counted apart.
    a = 1e-3
    inner = lam[(lam >= a) & (lam <= 1 - a)]
    mass = dist.cdf(1 - a) - dist.cdf(a)
    result = scipy.stats.kstest(inner, lambda v: (dist.cdf(v) - dist.cdf(a)) / mass)
    # The 1% critical value of D is 1.63 / sqrt(n).
    assert result.statistic < 1.63 / len(inner) ** 0.5, result
    tail = 1 - mass
    sd = (len(lam) * tail * (1 - tail)) ** 0.5
    assert abs((len(lam) - len(inner)) - len(lam) * tail) < 4 * sd + 1
    assert abs(lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_partner_is_uniform_over_the_other_images() -> None:
    t = RandomCutMix(num_classes=2, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, 1, 1, 1).expand(5, 1, 4, 4)
    counts = torch.zeros(5, 5)
    for _ in range(2000):
        partner = t.make_params([x])["partner"]
        counts[torch.arange(5), partner] += 1
    assert torch.all(counts.diagonal() == 0)
    off = counts[~torch.eye(5, dtype=torch.bool)]
    # Each of the 4 others with probability 1/4: mean 500, sd 19.4.
    assert (off - 500).abs().max() < 5 * 19.4


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_mixup_blends_with_the_same_lambda_as_the_labels(dtype: torch.dtype) -> None:
    B, K = 7, 4
    x = make_images((B, 3, 9, 13), dtype, seed=3)
    labels = torch.arange(B) % K
    out, soft, p = run(RandomMixup(num_classes=K, alpha=0.7, generator=torch.Generator().manual_seed(1)), x, labels)
    assert out.dtype == dtype and out.shape == x.shape
    lam = p["lam"].double().view(-1, 1, 1, 1)
    xd = x.double()
    expected = lam * xd + (1 - lam) * xd[p["partner"]]
    if dtype == torch.uint8:
        assert torch.all((out.double() - expected).abs() <= 0.5 + 1e-4), "uint8 results are rounded"
    else:
        tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2}.get(dtype, 1e-6)
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=tol)
    y = F.one_hot(labels, K).double()
    lam1 = p["lam"].double().view(-1, 1)
    torch.testing.assert_close(soft.double(), lam1 * y + (1 - lam1) * y[p["partner"]], rtol=0, atol=1e-6)


def test_functions_match_classes() -> None:
    x = make_images((6, 3, 12, 12))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    a = random_cutmix(x, y, num_classes=3, generator=torch.Generator().manual_seed(3))
    b = RandomCutMix(num_classes=3, generator=torch.Generator().manual_seed(3))(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    a = random_mixup(x, y, num_classes=3, alpha=0.4, generator=torch.Generator().manual_seed(3))
    b = RandomMixup(num_classes=3, alpha=0.4, generator=torch.Generator().manual_seed(3))(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_float64_labels_stay_float64_and_soft_labels_are_accepted() -> None:
    x = make_images((4, 3, 8, 8))
    y = torch.softmax(torch.randn(4, 5, dtype=torch.float64), dim=1)
    _, soft = RandomCutMix()(x, y)
    assert soft.dtype == torch.float64
    torch.testing.assert_close(soft.sum(1), torch.ones(4, dtype=torch.float64))
    _, soft = RandomMixup()(x, y.half())
    assert soft.dtype == torch.float32


@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_videos_mix_whole_clips_as_torchvision_does(cls) -> None:
    """A tv_tensors.Video (B, T, C, H, W) with one label per clip (torchvision's CutMix/MixUp
    convention): every frame of a clip is mixed with the same frame of one partner clip, with one
    box or lambda for the whole clip, and the clip's label row weighs that fraction."""

    B, T, C, H, W = 6, 4, 2, 8, 10
    video = tv_tensors.Video(torch.arange(B * T * C * H * W, dtype=torch.float64).view(B, T, C, H, W))
    out, soft = cls(num_classes=B, generator=torch.Generator().manual_seed(1))(video, torch.arange(B))
    assert isinstance(out, tv_tensors.Video) and out.shape == video.shape and soft.shape == (B, B)
    partner = torch.where(torch.eye(B, dtype=torch.bool), -1.0, soft).argmax(1)
    assert not torch.equal(partner, torch.arange(B))
    v, o = video.as_subclass(torch.Tensor), out.as_subclass(torch.Tensor)
    if cls is RandomCutMix:
        from_partner = o == v[partner]
        assert torch.equal(from_partner | (o == v), torch.ones_like(from_partner))
        box = from_partner[:, :1, :1]  # (B, 1, 1, H, W): the first frame's box
        assert torch.equal(from_partner, box.expand_as(from_partner))  # the same box in every frame
        weight = box.flatten(1).sum(1).to(torch.float32) / (H * W)
    else:
        weight = soft[torch.arange(B), partner]
        torch.testing.assert_close(o, (1 - weight.view(B, 1, 1, 1, 1)) * v + weight.view(B, 1, 1, 1, 1) * v[partner])
    torch.testing.assert_close(soft[torch.arange(B), partner], weight)


@pytest.mark.parametrize("mix_images", [False, True], ids=["cutmix", "thumbnail"])
def test_float64_labels_weigh_exactly_the_pixel_fraction(mix_images: bool) -> None:
    """In float64 the label weight is the pixel count over H*W to the last bit (a float32
    fraction would be off by ~1e-8, which a float64 user can see)."""
    from maskmix.torch import RandomCutThumbnail

    B, H, W = 64, 7, 9
    x = torch.arange(B * H * W, dtype=torch.float64).view(B, 1, H, W)  # every pixel distinct
    y = torch.eye(B, dtype=torch.float64)
    t = (RandomCutThumbnail(mix_images=True, thumbnail_area=(0.1, 0.6)) if mix_images
         else RandomCutMix(generator=torch.Generator().manual_seed(0)))
    out, soft = t(x, y)
    assert soft.dtype == torch.float64
    moved = changed_pixels(x, out).flatten(1).sum(1).to(torch.float64)
    partner_weight = torch.where(torch.eye(B, dtype=torch.bool), 0.0, soft).amax(1)
    assert torch.equal(partner_weight, moved / (H * W))


@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_binary_labels_in_one_column_are_smoothed_towards_one_half(cls) -> None:
    """(B, 1) float labels of a sigmoid model: smoothing 0.2 maps 0/1 to 0.1/0.9 (Keras' binary
    convention), not 0.2/1.0; mixing then weighs the smoothed values by the partner fraction."""
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
    _, plain = cls(label_smoothing=0.2, augmentation_ratio=0.0)(make_images((6, 1, 4, 4)), y)
    assert torch.allclose(plain, torch.where(y > 0.5, 0.9, 0.1))
    _, mixed = cls(label_smoothing=0.2)(make_images((6, 1, 4, 4)), y)
    assert mixed.shape == (6, 1) and bool(((mixed >= 0.1 - 1e-6) & (mixed <= 0.9 + 1e-6)).all())


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16])
def test_index_labels_of_a_narrow_dtype_with_more_classes_than_it_can_hold(dtype: torch.dtype) -> None:
    """A num_classes beyond the labels' dtype range must not wrap around in the range check."""
    num_classes = torch.iinfo(dtype).max + 1
    labels = torch.tensor([0, 1, torch.iinfo(dtype).max, 2], dtype=dtype)
    _, soft = RandomCutMix(num_classes=num_classes, augmentation_ratio=0.0)(make_images((4, 1, 2, 2)), labels)
    assert torch.equal(soft.argmax(1), labels.long())
    if dtype.is_signed:
        with pytest.raises(ValueError, match=rf"class indices must lie in \[0, {num_classes}\); got \[-1\]"):
            RandomCutMix(num_classes=num_classes)(make_images((2, 1, 2, 2)), torch.tensor([0, -1], dtype=dtype))


@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_call_time_errors(cls) -> None:
    name = cls.__name__
    x = make_images((4, 3, 8, 8))
    t = cls(num_classes=3)
    with pytest.raises(ValueError, match=rf"{name}: labels have batch size 3 but the images have 4"):
        t(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=rf"{name}: class indices must lie in \[0, 3\); got \[3\]"):
        t(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=rf"{name}: class indices must lie in \[0, 3\); got \[-1\]"):
        t(x, torch.tensor([0, -1, 2, 1]))
    with pytest.raises(ValueError, match=rf"{name}: num_classes is required when labels are class indices"):
        cls()(x, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=rf"{name}: labels are on meta but the images are on cpu"):
        t(x, torch.zeros(4, dtype=torch.int64, device="meta"))
    batch_message = rf"{name}: images must be a batch \(\.\.\., B, C, H, W\) with at least 4 dims"
    with pytest.raises(ValueError, match=batch_message):
        t(make_images((3, 8, 8)), torch.tensor([0]))
    with pytest.raises(TypeError, match=rf"{name}: labels must be integer class indices or floating soft labels"):
        t(x, torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=rf"{name}: labels have 4 classes but num_classes is 3"):
        t(x, torch.ones(4, 4))
    with pytest.raises(ValueError, match=rf"{name}: one-hot/soft labels must have shape \(B, K\)"):
        t(x, torch.ones(4))
    with pytest.raises(ValueError, match=rf"{name}: class-index labels must have shape \(B,\)"):
        t(x, torch.ones(4, 1, dtype=torch.int64))
    with pytest.raises(TypeError, match=rf"{name}: labels must be a tensor; got list"):
        t(x, [0, 1, 2, 0])
    with pytest.raises(TypeError, match=rf"{name}: expected \(images, labels\)"):
        t(x)
    with pytest.raises(ValueError, match=rf"{name}: expected \(images, labels\).*got a dict with keys \['x'\]"):
        t({"x": x})
    with pytest.raises(TypeError, match=rf"{name}: images must have dtype"):
        t(torch.zeros(4, 3, 8, 8, dtype=torch.int32), torch.tensor([0, 1, 2, 0]))


@pytest.mark.parametrize("contiguous", [True, False], ids=["in_place_path", "out_of_place_path"])
def test_uint8_mixup_needs_no_saturation(contiguous: bool) -> None:
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
    out, _, p = run(t, x, torch.zeros(B, dtype=torch.int64))
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
