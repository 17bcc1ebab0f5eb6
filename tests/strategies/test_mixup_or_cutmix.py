"""Mixup or CutMix per image (``RandomMixupOrCutMix``), torch and Keras, against timm's ``Mixup``.

* Pixels and labels, per image: a CutMix image changes exactly one box (``references.box_mask``),
  copied from its partner, a Mixup image is the lerp with its partner, and the label row weighs
  the partner by the box's exact pixel fraction or by ``1 - lambda`` (``references.mix_labels``).
* Laws, two-sample tests against ``timm.data.mixup`` itself: the choice between the two and the
  lambda of each branch (``Mixup._params_per_elem``), the box of area ``1 - lambda``
  (``rand_bbox``) and the min/max box (``rand_bbox_minmax``).
* ``from_timm``: timm's modes measured from the outputs of both (who shares a draw with whom,
  partner ``B - 1 - i``, the probability per unit), the label rows equal timm's formula, and what
  cannot be reproduced is refused.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import numpy as np
import pytest
import references
import scipy.stats
import torch
from helpers import changed_pixels, make_images, reference_box_mask, run_mixing

from maskmix.keras import RandomMixupOrCutMix as KerasMixupOrCutMix
from maskmix.torch import RandomMixupOrCutMix

timm_mixup = pytest.importorskip("timm.data.mixup")

FRAMEWORKS = {"torch": RandomMixupOrCutMix, "keras": KerasMixupOrCutMix}


def assert_same_law(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    ours, theirs = np.asarray(ours, np.float64).ravel(), np.asarray(theirs, np.float64).ravel()
    pvalue = scipy.stats.ks_2samp(ours, theirs).pvalue
    assert pvalue > 1e-3, f"{what}: KS p-value {pvalue:.2e} (ours mean {ours.mean():.4f}, timm {theirs.mean():.4f})"


def assert_same_rate(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Two-proportion z-test on boolean samples."""
    ours, theirs = np.asarray(ours, bool).ravel(), np.asarray(theirs, bool).ravel()
    pooled = np.concatenate([ours, theirs]).mean()
    se = np.sqrt(pooled * (1 - pooled) * (1 / ours.size + 1 / theirs.size))
    z = 0.0 if se == 0 else abs(ours.mean() - theirs.mean()) / se
    assert z < 4, f"{what}: ours {ours.mean():.4f}, timm {theirs.mean():.4f} (z = {z:.1f})"


# --------------------------------------------------------------------------------------------
# Pixels and labels.
# --------------------------------------------------------------------------------------------

CONFIGS = [{}, {"cutmix_minmax": (0.2, 0.8), "mixup_alpha": 0.4}, {"box_rounding": "timm", "switch_prob": 0.3}]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "minmax", "timm_box"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.uint8], ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_torch_each_image_is_a_blend_or_one_box_and_labels_weigh_its_pixels(config, dtype, smoothing) -> None:
    B, K, size = 24, 5, (11, 14)
    x = make_images((B, 3, *size), dtype, seed=3)
    labels = torch.arange(B) % K
    t = RandomMixupOrCutMix(num_classes=K, label_smoothing=smoothing, generator=torch.Generator().manual_seed(2),
                            **config)
    out, soft, p = run_mixing(t, x, labels)
    cut, partner = p["use_cutmix"], p["partner"]
    assert 0 < int(cut.sum()) < B, "both kinds are drawn"
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], size)
    assert not box[~cut].any(), "a blended image pastes no box"
    changed = changed_pixels(x, out)
    assert torch.equal(changed[cut], box[cut]), "a CutMix image changes exactly its box"
    xd = x.double()
    lam = p["lam"].double().view(-1, 1, 1, 1)
    blended = lam * xd + (1 - lam) * xd[partner]
    for i in range(B):
        if cut[i]:
            assert torch.equal(out[i][:, box[i]], x[partner[i]][:, box[i]])
        elif dtype == torch.uint8:
            assert torch.all((out[i].double() - blended[i]).abs() <= 0.5 + 1e-4)
        else:
            torch.testing.assert_close(out[i], blended[i], rtol=0, atol=1e-12)
    fraction = torch.where(cut, box.flatten(1).double().mean(1), 1 - p["lam"].double())
    torch.testing.assert_close(p["partner_weight"], fraction, rtol=0, atol=1e-7)
    y = references.smooth_labels(references.one_hot(labels, K), smoothing)
    torch.testing.assert_close(soft.double(), torch.from_numpy(references.mix_labels(y, partner, fraction)),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("config", CONFIGS, ids=["default", "minmax", "timm_box"])
def test_keras_each_image_is_a_blend_or_one_box_and_labels_weigh_its_pixels(config, channels_first) -> None:
    B, K = 24, kh.MIXING_CLASSES
    x, y = kh.mixing_batch(B, channels_first=channels_first)
    layer = KerasMixupOrCutMix(num_classes=K, seed=3, data_format="channels_first" if channels_first else None,
                               **config)
    out, soft, p = kh.run_mixing_layer(layer, x, y)
    cut, partner = p["use_cutmix"].astype(bool), p["partner"]
    assert 0 < cut.sum() < B
    xs = kh.np_(x).astype(np.float64)
    box = references.box_mask(p["top"], p["left"], p["height"], p["width"], kh.MIXING_SIZE)
    assert not box[~cut].any()
    changed = kh.changed_pixels(kh.np_(x), out, channels_first)
    np.testing.assert_array_equal(changed[cut], box[cut])
    lam = p["lam"].astype(np.float64)[:, None, None, None]
    blended = lam * xs + (1 - lam) * xs[partner]
    for i in range(B):
        if cut[i]:
            pasted = xs[partner[i]][:, box[i]] if channels_first else xs[partner[i]][box[i]]
            mine = out[i][:, box[i]] if channels_first else out[i][box[i]]
            np.testing.assert_array_equal(mine, pasted)
        else:
            np.testing.assert_allclose(out[i], blended[i], rtol=0, atol=1e-6)
    fraction = np.where(cut, box.reshape(B, -1).mean(1), 1 - p["lam"].astype(np.float64))
    np.testing.assert_allclose(p["partner_weight"], fraction, rtol=0, atol=1e-6)
    np.testing.assert_allclose(soft, references.mix_labels(kh.one_hot(y), partner, fraction), rtol=0, atol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_switch_prob_and_the_disabled_branches(framework) -> None:
    n = 4000
    cls = FRAMEWORKS[framework]

    def chosen(**config) -> np.ndarray:
        if framework == "torch":
            p = cls(generator=torch.Generator().manual_seed(1), **config).make_params([torch.zeros(n, 1, 6, 5)])
            return p["use_cutmix"].numpy()
        p = kh.params_np(cls(seed=1, **config).get_random_transformation(np.zeros((n, 6, 5, 1), "float32")))
        return p["use_cutmix"].astype(bool)

    assert abs(chosen(switch_prob=0.3).mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    assert chosen(switch_prob=0.0).sum() == 0 and chosen(switch_prob=1.0).all()
    assert chosen(mixup_alpha=0.0, switch_prob=0.0).all(), "mixup_alpha=0: every image is CutMix-ed"
    assert chosen(cutmix_alpha=0.0, switch_prob=1.0).sum() == 0, "cutmix_alpha=0: every image is Mixup-ed"


# --------------------------------------------------------------------------------------------
# Laws against timm.data.mixup.
# --------------------------------------------------------------------------------------------

N, SIZE = 3000, (20, 24)


def our_params(framework: str, **config) -> dict:
    cls = FRAMEWORKS[framework]
    if framework == "torch":
        p = cls(generator=torch.Generator().manual_seed(7), **config).make_params([torch.zeros(N, 1, *SIZE)])
        return {k: v.numpy() for k, v in p.items() if isinstance(v, torch.Tensor)}
    return kh.params_np(cls(seed=7, **config).get_random_transformation(np.zeros((N, *SIZE, 1), "float32")))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_choice_and_lambdas_follow_timm(framework) -> None:
    config = {"mixup_alpha": 0.4, "cutmix_alpha": 0.7, "switch_prob": 0.3}
    np.random.seed(0)
    lam, use_cutmix = timm_mixup.Mixup(**config, mode="elem")._params_per_elem(N)
    ours = our_params(framework, **config)
    cut = ours["use_cutmix"].astype(bool)
    assert_same_rate(cut, use_cutmix, "CutMix rather than Mixup")
    assert_same_law(ours["lam"][cut], lam[use_cutmix], "CutMix lambda")
    assert_same_law(ours["lam"][~cut], lam[~use_cutmix], "Mixup lambda")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_timm_box_follows_rand_bbox(framework) -> None:
    np.random.seed(1)
    boxes = [timm_mixup.rand_bbox(SIZE, np.random.beta(1.0, 1.0)) for _ in range(N)]
    yl, yh, xl, xh = (np.array(v) for v in zip(*boxes, strict=True))
    ours = our_params(framework, mixup_alpha=0.0, box_rounding="timm")
    # Unclipped boxes have timm's whole truncated sides: int(H sqrt(1 - lam)) by int(W sqrt(1 - lam)).
    top, left, h, w = ours["top"], ours["left"], ours["height"], ours["width"]
    inside = (top > 0) & (left > 0) & (top + h < SIZE[0]) & (left + w < SIZE[1])
    side = np.sqrt(1 - ours["lam"].astype(np.float64))
    assert inside.sum() > 300
    np.testing.assert_array_equal(h[inside], np.floor(SIZE[0] * side[inside]))
    np.testing.assert_array_equal(w[inside], np.floor(SIZE[1] * side[inside]))
    assert_same_law(ours["height"], yh - yl, "box height")
    assert_same_law(ours["width"], xh - xl, "box width")
    assert_same_law(ours["top"], yl, "box top")
    # timm's corrected lambda is 1 - the pasted fraction, our label weight.
    assert_same_law(ours["partner_weight"], (yh - yl) * (xh - xl) / (SIZE[0] * SIZE[1]), "pasted fraction")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_minmax_box_follows_rand_bbox_minmax(framework) -> None:
    minmax = (0.2, 0.8)
    np.random.seed(2)
    yl, yu, xl, xu = timm_mixup.rand_bbox_minmax(SIZE, minmax, count=N)
    ours = our_params(framework, mixup_alpha=0.0, cutmix_minmax=minmax)
    h, w = ours["height"], ours["width"]
    # NumPy's randint excludes the upper end: sides int(lo H) .. int(hi H) - 1.
    assert set(np.unique(h)) == set(np.unique(yu - yl)) == set(range(4, 16))
    assert set(np.unique(w)) == set(np.unique(xu - xl)) == set(range(4, 19))
    assert_same_law(h, yu - yl, "box height")
    assert_same_law(w, xu - xl, "box width")
    assert_same_law(ours["top"], yl, "box top")
    assert_same_law(ours["left"], xl, "box left")
    assert ((ours["top"] + h <= SIZE[0]) & (ours["left"] + w <= SIZE[1])).all(), "fully inside"


# --------------------------------------------------------------------------------------------
# Validation.
# --------------------------------------------------------------------------------------------

BAD = [
    ({"mixup_alpha": 0, "cutmix_alpha": 0}, ValueError,
     r"^RandomMixupOrCutMix: mixup_alpha and cutmix_alpha are both 0, which disables both"),
    ({"cutmix_alpha": 0, "cutmix_minmax": (0.2, 0.8)}, ValueError,
     r"^RandomMixupOrCutMix: cutmix_minmax=\(0\.2, 0\.8\) sets the CutMix box, but cutmix_alpha=0 disables CutMix"),
    ({"cutmix_minmax": (0.8, 0.2)}, ValueError,
     r"^RandomMixupOrCutMix: cutmix_minmax must be a pair \(lo, hi\) with 0 <= lo < hi <= 1; got \(0\.8, 0\.2\)"),
    ({"cutmix_minmax": 0.5}, TypeError, r"^RandomMixupOrCutMix: cutmix_minmax must be a pair"),
    ({"mixup_alpha": -1.0}, ValueError, r"^RandomMixupOrCutMix: mixup_alpha must be a float in \[0, inf\); got -1\.0"),
    ({"switch_prob": 1.5}, ValueError, r"^RandomMixupOrCutMix: switch_prob must be a float in \[0, 1\]; got 1\.5"),
    ({"box_rounding": "floor"}, ValueError,
     r"^RandomMixupOrCutMix: box_rounding must be one of 'round', 'truncate', 'timm'; got 'floor'"),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("config", "error", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_parameters_are_refused_with_the_same_message(framework, config, error, message) -> None:
    with pytest.raises(error, match=message):
        FRAMEWORKS[framework](**config)


def test_keras_refuses_segmentation_masks_saying_why() -> None:
    x, y = kh.mixing_batch(4)
    data = {"images": x, "labels": y, "segmentation_masks": np.zeros((4, *kh.MIXING_SIZE, 1), "int32")}
    with pytest.raises(ValueError, match=r"RandomMixupOrCutMix: segmentation_masks cannot be mixed: the images it "
                                         r"mixes by Mixup blend every pixel"):
        KerasMixupOrCutMix(num_classes=kh.MIXING_CLASSES)(data)
