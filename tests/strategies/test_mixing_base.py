"""What every mixing strategy shares (the mixing bases ``MixingTransform``/``MixingLayer``), torch
and Keras: lambda ~ Beta(alpha, alpha) (CutMix and Mixup), partners uniform over the other
images, label conventions (index, one-hot, soft, binary, float64 labels weighed to the last bit,
label smoothing, pass-through rows), videos, the functional forms, calling conventions and the
call-time errors. Each strategy's pixels: ``test_cutmix.py``, ``test_mixup.py``,
``test_thumbnail.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import keras
import numpy as np
import pytest
import scipy.stats
import torch
from helpers import assert_bit_identical, changed_pixels, make_images
from torchvision import tv_tensors

from maskmix.keras import RandomCutMix as keras_RandomCutMix
from maskmix.keras import RandomCutThumbnail as keras_RandomCutThumbnail
from maskmix.keras import RandomMixup as keras_RandomMixup
from maskmix.keras import _sampling
from maskmix.keras import random_cutmix as keras_random_cutmix
from maskmix.keras import random_mixup as keras_random_mixup
from maskmix.keras._mixing import partners
from maskmix.torch import RandomCutMix, RandomMixup, random_cutmix, random_mixup
from maskmix.torch._mixing import beta as _torch_beta

# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_torch_lambda_follows_beta_alpha_alpha(alpha: float, cls) -> None:
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


def test_torch_partner_is_uniform_over_the_other_images() -> None:
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


def test_torch_other_partners_are_one_cyclic_shift_of_the_batch() -> None:
    # Every image is also the partner of exactly one image: the batch shifted by s in 1..B-1.
    t = RandomMixup(num_classes=2, generator=torch.Generator().manual_seed(1))
    for batch in (2, 3, 8):
        shifts = set()
        for _ in range(60):
            params = t.make_params([torch.zeros(batch, 1, 2, 2)])
            shift = int(params["partner_shift"])
            shifts.add(shift)
            assert torch.equal(params["partner"], (torch.arange(batch) + shift) % batch)
        assert shifts == set(range(1, batch))


def test_torch_cpu_slices_only_for_batches_worth_their_host_time() -> None:
    from maskmix.torch._mixing import SLICES_MIN_ELEMENTS, cyclic_shift

    t = RandomCutMix(num_classes=4, generator=torch.Generator().manual_seed(0))
    small, large = torch.zeros(8, 3, 32, 32), torch.zeros(64, 3, 32, 32)
    assert small.numel() < SLICES_MIN_ELEMENTS <= large.numel()
    assert cyclic_shift(small, t.make_params([small])) is None  # a partner gather: less host time
    assert cyclic_shift(large, t.make_params([large])) is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8],
                         ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize(("cls", "paste"), [(RandomCutMix, "bits"), (RandomCutMix, "where"), (RandomMixup, None)])
def test_torch_cpu_slices_of_the_shifted_batch_give_the_gathered_result_bit_for_bit(cls, paste, layout, dtype,
                                                                                   monkeypatch) -> None:
    from maskmix.torch import _mixing
    from maskmix.torch._mixing import cyclic_shift
    from maskmix.torch._sampling import same_size_integer

    monkeypatch.setattr(_mixing, "SLICES_MIN_ELEMENTS", 0)  # a small batch, to see the slices at work
    if paste == "where":  # CutMix's paste of a batch too large for the bit patterns' two passes
        monkeypatch.setattr(_mixing, "BIT_PASTE_MAX_BYTES", 0)
    x = make_images((9, 3, 11, 7), dtype, seed=3)
    if dtype.is_floating_point:
        # Values whose bits a paste must keep: a NaN with a payload, both infinities, -0.0.
        nan_with_payload = torch.tensor(0x7FC0_0001 if dtype == torch.float32 else 0x7C01 if dtype == torch.float16
                                        else 0x7FC1 if dtype == torch.bfloat16 else 0x7FF8_0000_0000_0001)
        bits = x.view(same_size_integer(dtype))
        bits[:, 0, 0, :4] = torch.stack([nan_with_payload, *(torch.tensor(v, dtype=dtype).view(bits.dtype)
                                                             for v in (float("inf"), -float("inf"), -0.0))])
        bits[:, 1:, 3:9, 2:6] = nan_with_payload  # a block of NaNs: a box edge crosses it in some images
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    # Several draws (other shifts, so both slice pairs carry images), with and without a selection.
    for seed, ratio in enumerate((1.0, 1.0, 1.0, 0.7)):
        t = cls(num_classes=4, augmentation_ratio=ratio, generator=torch.Generator().manual_seed(seed))
        params = t.make_params([x])
        shifted = cyclic_shift(x, params)
        assert shifted is not None  # taken on a CPU eager call of the default law, in both layouts
        gathered = {key: value for key, value in params.items() if key != "partner_shift"}
        assert cyclic_shift(x, gathered) is None
        out, reference = t.apply(x, params), t.apply(x, gathered)
        assert out.dtype == x.dtype and out.stride() == reference.stride() == x.stride()
        assert_bit_identical(out, reference)
        bits_of = same_size_integer(dtype)
        changed = (out.view(bits_of) != x.view(bits_of)).flatten(1).any(1)  # compared as bits: NaN != NaN
        assert changed.any() and torch.equal(changed & ~params["selected"], torch.zeros_like(changed))
        if cls is RandomCutMix:  # segmentation masks move with the pixels through the same paste
            masks = (x.float() * 100).to(torch.int64) % 5
            for mask in (masks, masks == 2):
                assert_bit_identical(t.apply_mask(mask, params), t.apply_mask(mask, gathered))
    if dtype.is_floating_point:  # an autograd graph through the images takes the gather path
        assert cyclic_shift(x.detach().requires_grad_(), params) is None


def test_torch_functions_match_classes() -> None:
    x = make_images((6, 3, 12, 12))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    a = random_cutmix(x, y, num_classes=3, generator=torch.Generator().manual_seed(3))
    b = RandomCutMix(num_classes=3, generator=torch.Generator().manual_seed(3))(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    a = random_mixup(x, y, num_classes=3, alpha=0.4, generator=torch.Generator().manual_seed(3))
    b = RandomMixup(num_classes=3, alpha=0.4, generator=torch.Generator().manual_seed(3))(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_torch_float64_labels_stay_float64_and_soft_labels_are_accepted() -> None:
    x = make_images((4, 3, 8, 8))
    y = torch.softmax(torch.randn(4, 5, dtype=torch.float64), dim=1)
    _, soft = RandomCutMix()(x, y)
    assert soft.dtype == torch.float64
    torch.testing.assert_close(soft.sum(1), torch.ones(4, dtype=torch.float64))
    _, soft = RandomMixup()(x, y.half())
    assert soft.dtype == torch.float32


@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_torch_videos_mix_whole_clips_as_torchvision_does(cls) -> None:
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
def test_torch_float64_labels_weigh_exactly_the_pixel_fraction(mix_images: bool) -> None:
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
def test_torch_binary_labels_in_one_column_are_smoothed_towards_one_half(cls) -> None:
    """(B, 1) float labels of a sigmoid model: smoothing 0.2 maps 0/1 to 0.1/0.9 (Keras' binary
    convention), not 0.2/1.0; mixing then weighs the smoothed values by the partner fraction."""
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
    _, plain = cls(label_smoothing=0.2, augmentation_ratio=0.0)(make_images((6, 1, 4, 4)), y)
    assert torch.allclose(plain, torch.where(y > 0.5, 0.9, 0.1))
    _, mixed = cls(label_smoothing=0.2)(make_images((6, 1, 4, 4)), y)
    assert mixed.shape == (6, 1) and bool(((mixed >= 0.1 - 1e-6) & (mixed <= 0.9 + 1e-6)).all())


@pytest.mark.parametrize(("cls", "keras_cls"), [(RandomCutMix, keras_RandomCutMix), (RandomMixup, keras_RandomMixup)])
def test_multi_hot_rows_are_not_smoothed_towards_one_over_k(cls, keras_cls) -> None:
    """Multi-hot rows (several labels per image) with label_smoothing were moved towards 1/K (each
    positive to 0.93 for K = 3, s = 0.1), where their convention is 0.5: refused on CPU, NaN rows
    where the values cannot be read (torch.compile); one-hot and soft rows pass."""
    multi_hot = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    images = make_images((4, 3, 4, 4))
    message = r"{}: label_smoothing=0\.1 smooths one-hot/soft rows \(each summing to 1\) towards 1/K"
    with pytest.raises(ValueError, match=message.format(cls.__name__)):
        cls(label_smoothing=0.1)(images, multi_hot)
    with pytest.raises(ValueError, match=message.format(keras_cls.__name__)):
        keras_cls(label_smoothing=0.1, seed=0)((images.permute(0, 2, 3, 1).numpy(), multi_hot.numpy()))
    compiled = torch.compile(cls(label_smoothing=0.1, augmentation_ratio=0.0), backend="eager", fullgraph=True)
    assert torch.isnan(compiled(images, multi_hot)[1][:3]).all()
    _, soft = cls(label_smoothing=0.1)(images, torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]] * 2))
    assert torch.allclose(soft.sum(dim=1), torch.ones(4))
    _, plain = cls()(images, multi_hot)  # without smoothing they are mixed as given (timm's multi_label)
    assert torch.isfinite(plain).all()


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16])
def test_torch_index_labels_of_a_narrow_dtype_with_more_classes_than_it_can_hold(dtype: torch.dtype) -> None:
    """A num_classes beyond the labels' dtype range must not wrap around in the range check."""
    num_classes = torch.iinfo(dtype).max + 1
    labels = torch.tensor([0, 1, torch.iinfo(dtype).max, 2], dtype=dtype)
    _, soft = RandomCutMix(num_classes=num_classes, augmentation_ratio=0.0)(make_images((4, 1, 2, 2)), labels)
    assert torch.equal(soft.argmax(1), labels.long())
    if dtype.is_signed:
        with pytest.raises(ValueError, match=rf"class indices must lie in \[0, {num_classes}\); got \[-1\]"):
            RandomCutMix(num_classes=num_classes)(make_images((2, 1, 2, 2)), torch.tensor([0, -1], dtype=dtype))


@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_torch_call_time_errors(cls) -> None:
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
    with pytest.raises(ValueError, match=rf"{name}: labels have 4 classes but num_classes is 3$"):
        t(x, torch.ones(4, 4))
    column = (rf"{name}: labels have 1 classes but num_classes is 3 \(labels shaped \(B, 1\) that hold class "
              r"indices: pass them shaped \(B,\), e.g. labels.squeeze\(1\)\)")
    with pytest.raises(ValueError, match=column):
        t(x, torch.ones(4, 1))
    with pytest.raises(ValueError, match=rf"{name}: one-hot/soft labels must have shape \(B, K\)"):
        t(x, torch.ones(4))
    with pytest.raises(ValueError, match=rf"{name}: class-index labels must have shape \(B,\)"):
        t(x, torch.ones(4, 1, 1, dtype=torch.int64))
    with pytest.raises(TypeError, match=rf"{name}: labels must be a tensor; got list"):
        t(x, [0, 1, 2, 0])
    with pytest.raises(TypeError, match=rf"{name}: expected \(images, labels\)"):
        t(x)
    with pytest.raises(ValueError, match=rf"{name}: expected \(images, labels\).*got a dict with keys \['x'\]"):
        t({"x": x})
    with pytest.raises(TypeError, match=rf"{name}: images must have dtype"):
        t(torch.zeros(4, 3, 8, 8, dtype=torch.int32), torch.tensor([0, 1, 2, 0]))


@pytest.mark.parametrize("cls", [RandomCutMix, RandomMixup])
def test_torch_mix_batch_checks_its_label_options_as_the_constructor_does(cls) -> None:
    # The pipeline's way in; a direct caller's smoothing of 1.5 gave rows with the true class at 0.
    name = cls.__name__
    x, y = make_images((4, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    t = cls(augmentation_ratio=0.0)
    for smoothing, error in ((1.5, ValueError), (-0.5, ValueError), (True, TypeError)):
        with pytest.raises(error, match=rf"^{name}\.mix_batch: label_smoothing must be a float in \[0, 1\); "
                                        rf"got {smoothing}$"):
            t.mix_batch(x, y, num_classes=3, label_smoothing=smoothing)
    for classes, error in ((0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match=rf"^{name}\.mix_batch: num_classes must be an integer >= 1; got {classes}$"):
            t.mix_batch(x, y, num_classes=classes)
    _, soft = t.mix_batch(x, y, num_classes=3, label_smoothing=0.3)  # valid values are used
    torch.testing.assert_close(soft[0], torch.tensor([0.8, 0.1, 0.1]), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size and class count.
KERAS_SIZE, K = kh.MIXING_SIZE, kh.MIXING_CLASSES


def test_keras_functional_forms():
    x, y = kh.mixing_batch(6)
    out, soft = keras_random_cutmix(x, y, num_classes=K, seed=3)
    assert tuple(out.shape) == tuple(x.shape) and tuple(soft.shape) == (6, K)
    out, soft = keras_random_mixup(x, y, num_classes=K, alpha=0.4, seed=3)
    assert tuple(out.shape) == tuple(x.shape) and soft.dtype == "float32"


@pytest.mark.parametrize("layer_cls", [keras_RandomCutMix, keras_RandomMixup])
def test_keras_selection_pass_through_and_smoothing(layer_cls):
    x, y = kh.mixing_batch(20)
    layer = layer_cls(num_classes=K, augmentation_ratio=0.3, label_smoothing=0.1, seed=5)
    out, soft, p = kh.run_mixing_layer(layer, x, y)
    assert p["selected"].sum() == 6
    smooth = kh.one_hot(y) * 0.9 + 0.1 / K
    keep = ~p["selected"]
    np.testing.assert_array_equal(out[keep], kh.np_(x)[keep])
    np.testing.assert_allclose(soft[keep], smooth[keep], rtol=1e-6)
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    w = p["partner_weight"][:, None]
    mixed = (1 - w) * smooth + w * smooth[p["partner"]]
    np.testing.assert_allclose(soft[~keep], mixed[~keep], rtol=1e-6)


@pytest.mark.parametrize("layer_cls", [keras_RandomCutMix, keras_RandomMixup])
def test_keras_binary_labels_in_one_column_are_smoothed_towards_one_half(layer_cls):
    """(B, 1) float labels of a sigmoid model: smoothing 0.2 maps 0/1 to 0.1/0.9, as Keras' binary
    losses do, not 0.2/1.0."""
    x, _ = kh.mixing_batch(6)
    y = np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]], "float32")
    _, plain = layer_cls(label_smoothing=0.2, augmentation_ratio=0.0, seed=1)((x, y))
    np.testing.assert_allclose(kh.np_(plain), np.where(y > 0.5, 0.9, 0.1), rtol=1e-6)
    _, mixed = layer_cls(label_smoothing=0.2, seed=1)((x, y))
    assert kh.np_(mixed).shape == (6, 1) and ((kh.np_(mixed) >= 0.1 - 1e-6) & (kh.np_(mixed) <= 0.9 + 1e-6)).all()


@pytest.mark.parametrize("layer_cls", [keras_RandomCutMix, keras_RandomMixup])
def test_keras_call_matches_the_two_halves_and_structures(layer_cls):
    x, y = kh.mixing_batch(7)
    out, soft = layer_cls(num_classes=K, seed=6)((x, y))
    out2, soft2, _ = kh.run_mixing_layer(layer_cls(num_classes=K, seed=6), x, y)
    np.testing.assert_array_equal(kh.np_(out), out2)
    np.testing.assert_array_equal(kh.np_(soft), soft2)
    # Extra items (tensors: Keras rejects structures mixing tensors and Python values) come back as given.
    extra = np.arange(7)
    d = layer_cls(seed=6)({"images": x, "labels": kh.one_hot(y), "extra": extra})
    assert set(d) == {"images", "labels", "extra"}
    np.testing.assert_array_equal(kh.np_(d["extra"]), extra)
    np.testing.assert_array_equal(kh.np_(d["images"]), out2)
    lst = layer_cls(num_classes=K, seed=6)([x, y, extra])
    assert isinstance(lst, list) and len(lst) == 3
    soft64 = layer_cls(seed=6)((x, kh.one_hot(y).astype(np.float64)))[1]
    assert soft64.dtype == "float64"
    single = layer_cls(num_classes=K, seed=6)((x[:1], y[:1]))
    np.testing.assert_array_equal(kh.np_(single[0]), kh.np_(x[:1]))
    np.testing.assert_array_equal(kh.np_(single[1]), kh.one_hot(y[:1]))
    empty = layer_cls(num_classes=K, seed=6)((x[:0], y[:0]))
    assert tuple(empty[0].shape) == (0, *KERAS_SIZE, 3) and tuple(empty[1].shape) == (0, K)
    off = layer_cls(num_classes=K, seed=6)((x, y), training=False)
    np.testing.assert_array_equal(kh.np_(off[0]), kh.np_(x))
    np.testing.assert_array_equal(kh.np_(off[1]), kh.one_hot(y))


def test_keras_partners_are_uniform_over_the_others():
    ops = keras.src.backend
    for b in (2, 3, 5):
        seen = np.stack([kh.np_(partners(ops, b, seed)) for seed in range(150)])
        assert (seen != np.arange(b)).all()
        counts = np.stack([(seen == j).sum(0) for j in range(b)])  # (partner, image)
        expected = 150 / (b - 1)
        off_diagonal = counts[~np.eye(b, dtype=bool)]
        assert np.abs(off_diagonal - expected).max() < 0.3 * expected + 10
    np.testing.assert_array_equal(kh.np_(partners(ops, 1, 0)), [0])


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_keras_beta_sampler_statistics(alpha):
    ops = keras.src.backend
    samples = kh.np_(_sampling.beta(ops, alpha, (4000,), keras.random.SeedGenerator(int(alpha * 10))))
    assert np.isfinite(samples).all() and samples.min() >= 0.0 and samples.max() <= 1.0
    assert scipy.stats.kstest(samples, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("alpha", [1e-31, 1e-39, 1e-300])
def test_a_tiny_alpha_gives_lambda_0_or_1_never_nan(framework: str, alpha: float) -> None:
    """Beta(alpha, alpha) with alpha -> 0 is 0 or 1 with probability 1/2 each. Each gamma's boost
    log(U) / alpha overflowed float32 to -inf and lam came out NaN (Mixup: NaN images and labels;
    CutMix: a NaN box cast to int64, images unchanged and labels all the partner's)."""
    n = 4000
    if framework == "torch":
        lam = torch.stack([_torch_beta(alpha, (n,), device=torch.device("cpu"),
                                       generator=torch.Generator().manual_seed(3))]).numpy().ravel()
    else:
        lam = kh.np_(_sampling.beta(keras.src.backend, alpha, (n,), keras.random.SeedGenerator(3)))
    assert np.isin(lam, (0.0, 1.0)).all(), lam[~np.isin(lam, (0.0, 1.0))][:5]
    # Half of each, within 4 standard deviations (sd 31.6).
    assert abs((lam == 1.0).sum() - n / 2) < 4 * (n / 4) ** 0.5
    if framework == "keras":
        return  # the layers draw lam from this sampler; their pixels and labels: the torch run below
    # Through the transforms: pixels and labels agree (labels weigh the pixels taken).
    x, y = torch.rand(64, 3, 8, 8), torch.arange(64)  # a class per image: its own weight is readable
    for cls in (RandomMixup, RandomCutMix):
        out, soft = cls(alpha=alpha, num_classes=64, generator=torch.Generator().manual_seed(5))(x, y)
        assert torch.isfinite(out).all() and torch.isfinite(soft).all()
        taken = changed_pixels(out, x).double().mean(dim=(1, 2))
        torch.testing.assert_close(1 - soft[y, y].double(), taken, rtol=0, atol=1e-6)
        if cls is RandomMixup:
            assert set(taken.tolist()) == {0.0, 1.0}  # an image is its own or its partner's, whole


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_an_alpha_beyond_float32_sampling_is_refused(framework: str) -> None:
    """alpha = 3e38 gave Mixup lam = 0 (torch); 1e39 raised a bare RuntimeError (torch) or gave
    inf pixels (Keras). Beta(alpha, alpha) is 0.5 in float32 long before 1e30."""
    from maskmix.keras import RandomMixupOrCutMix as keras_RandomMixupOrCutMix
    from maskmix.torch import RandomMixupOrCutMix

    mixup, cutmix, both = ((RandomMixup, RandomCutMix, RandomMixupOrCutMix) if framework == "torch" else
                           (keras_RandomMixup, keras_RandomCutMix, keras_RandomMixupOrCutMix))
    for build, name in ((lambda: mixup(alpha=3e38), "alpha"), (lambda: cutmix(alpha=1e31), "alpha"),
                        (lambda: both(mixup_alpha=1e39), "mixup_alpha")):
        with pytest.raises(ValueError, match=rf"{name} must be a float in [\[(]0, 1e\+30\]; got"):
            build()
    assert mixup(alpha=1e30).alpha == 1e30


@pytest.mark.parametrize(
    ("labels", "kwargs", "exc", "message"),
    [
        (np.arange(4), {}, ValueError, "RandomCutMix: num_classes is required when labels are class indices"),
        (np.arange(3), {"num_classes": K}, ValueError,
         "RandomCutMix: labels have batch size 3 but the images have 4"),
        (np.array([0, 1, 7, -1]), {"num_classes": K}, ValueError,
         r"RandomCutMix: class indices must lie in \[0, 5\); got \[7, -1\]"),
        # Integer (B, K) rows are one-hot rows (as on torch): a class-index shape error needs 3 dims.
        (np.zeros((4, 1, 1), "int32"), {"num_classes": K}, ValueError, r"class-index labels must have shape \(B,\)"),
        (np.zeros((4, 1), "int32"), {"num_classes": K}, ValueError, "labels have 1 classes but num_classes is 5"),
        (np.zeros((4,), "float32"), {}, ValueError, r"one-hot/soft labels must have shape \(B, K\)"),
        (np.zeros((4, 3), "float32"), {"num_classes": K}, ValueError, "labels have 3 classes but num_classes is 5"),
        (np.zeros((4,), bool), {"num_classes": K}, TypeError, "labels must be integer class indices"),
    ],
)
def test_keras_label_errors(labels, kwargs, exc, message):
    x, _ = kh.mixing_batch(4)
    with pytest.raises(exc, match=message):
        keras_RandomCutMix(seed=0, **kwargs)((x, labels))


def test_keras_input_errors():
    x, y = kh.mixing_batch(4)
    with pytest.raises(ValueError, match=r"RandomMixup: images must be a batch \(B, H, W, C\) of rank 4"):
        keras_RandomMixup(num_classes=K)((x[0], y))
    assert tuple(keras_RandomMixup(num_classes=K)(x).shape) == tuple(x.shape)  # images alone: mixed images
    with pytest.raises(ValueError, match="got a dict with keys"):
        keras_RandomMixup(num_classes=K)({"x": x, "y": y})
    dtypes = "float16, bfloat16, float32, float64 or uint8"
    with pytest.raises(TypeError, match=f"images must have dtype {dtypes}; got int32"):
        keras_RandomMixup(num_classes=K)((keras.ops.cast(x, "int32"), y))


@pytest.mark.parametrize(
    "build",
    [lambda: keras_RandomCutMix(seed=3), lambda: keras_RandomMixup(seed=3),
     lambda: keras_RandomCutThumbnail(mix_images=True, thumbnail_area=(0.1, 0.6), seed=3)],
    ids=["cutmix", "mixup", "thumbnail"],
)
def test_keras_float64_labels_weigh_exactly_the_partner_fraction(build):
    """Float64 labels get the weight to the last bit: a box's pixel count over H*W (CutMix, the
    mixed thumbnail), 1 - lambda (Mixup); a float32 weight would be off by ~1e-8."""
    x, _ = kh.mixing_batch(32)
    y = np.eye(32)  # float64 one-hot, one class per image: a row's partner entry is its weight
    t = (layer := build()).get_random_transformation(x)
    soft = kh.np_(layer.transform_labels(y, t, batch_size=32))
    p = kh.params_np(t)
    assert soft.dtype == np.float64
    weight = soft[np.arange(32), p["partner"]]
    if not isinstance(layer, keras_RandomMixup):
        expected = (p["height"] * p["width"]).astype(np.float64) / (KERAS_SIZE[0] * KERAS_SIZE[1])
    else:
        expected = 1.0 - p["lam"].astype(np.float64)
    np.testing.assert_array_equal(weight, expected)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_keras_out_of_range_class_indices_give_nan_rows_in_a_compiled_step(jit_compile):
    """A compiled step cannot read the labels to refuse them (as eager calls do): an index outside
    [0, num_classes) gets a NaN row, which the loss shows, not one_hot's zero row, which trains on
    nothing; the rows that mix it with a valid one are NaN too."""
    import tensorflow as tf

    x = kh.to_tensor(kh.make_images((4, 8, 8, 3), "float32", seed=2), "float32")
    labels = np.array([0, 7, 2, -1], "int64")
    for ratio in (0.0, 1.0):
        layer = keras_RandomCutMix(num_classes=5, augmentation_ratio=ratio, seed=1)
        step = tf.function(lambda a, b, layer=layer: layer((a, b), training=True), jit_compile=jit_compile)
        soft = kh.np_(step(x, labels)[1])
        assert np.isnan(soft[[1, 3]]).all()
        finite = ~np.isnan(soft).any(axis=1)
        np.testing.assert_allclose(soft[finite].sum(axis=1), 1.0, rtol=1e-6)
        if ratio == 0.0:  # nothing mixed: the valid rows are their one-hot rows
            np.testing.assert_array_equal(soft[[0, 2]], np.eye(5, dtype="float32")[[0, 2]])
