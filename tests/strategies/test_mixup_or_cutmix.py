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
    assert chosen(mixup_alpha=0.0).all(), "mixup_alpha=0: every image is CutMix-ed"
    assert chosen(cutmix_alpha=0.0).sum() == 0, "cutmix_alpha=0: every image is Mixup-ed"
    # With a branch off, switch_prob has no effect (timm ignores it): refused, never silently ignored.
    with pytest.raises(ValueError, match=r"^RandomMixupOrCutMix: switch_prob has no effect when mixup_alpha is 0 "
                                         r"\(CutMix only\) \(mixup_alpha=0\.0\); leave it at its default 0\.5; got "
                                         r"switch_prob=0\.0$"):
        cls(mixup_alpha=0.0, switch_prob=0.0)
    with pytest.raises(ValueError, match=r"switch_prob has no effect when cutmix_alpha is 0 \(Mixup only\)"):
        cls(cutmix_alpha=0.0, switch_prob=1.0)


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
    ({"mixup_alpha": -1.0}, ValueError,
     r"^RandomMixupOrCutMix: mixup_alpha must be a float in \[0, 1e\+30\]; got -1\.0"),
    # An option without effect in the configuration: never silently ignored.
    ({"cutmix_minmax": (0.2, 0.8), "box_rounding": "truncate"}, ValueError,
     r"^RandomMixupOrCutMix: box_rounding has no effect when cutmix_minmax is set .*got box_rounding='truncate'$"),
    ({"cutmix_alpha": 0.0, "box_rounding": "timm"}, ValueError,
     r"^RandomMixupOrCutMix: box_rounding has no effect when cutmix_alpha is 0 \(Mixup only\)"),
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


# --------------------------------------------------------------------------------------------
# from_timm: timm's three modes, measured from the outputs of timm's Mixup and of ours.
# --------------------------------------------------------------------------------------------

#: Batches of B images of one distinct constant value each, labels arange(B) with B classes: a
#: pasted pixel, a blend and the partner (the non-zero entry of the label row) can all be read back.
B_TIMM, SIDE, BATCHES = 8, 12, 250
TIMM_CONFIG = {"mixup_alpha": 0.4, "cutmix_alpha": 1.0, "switch_prob": 0.4, "prob": 0.7, "label_smoothing": 0.0,
               "num_classes": B_TIMM}


def constant_batch() -> np.ndarray:
    values = (np.arange(B_TIMM) + 1.0) / (B_TIMM + 1.0)
    return np.broadcast_to(values[:, None, None, None], (B_TIMM, 1, SIDE, SIDE)).copy()


def timm_batches(mode: str, **config) -> list[tuple[np.ndarray, np.ndarray]]:
    np.random.seed(11)
    mix = timm_mixup.Mixup(**{**TIMM_CONFIG, **config}, mode=mode)
    out = []
    for _ in range(BATCHES):
        x = torch.from_numpy(constant_batch())
        mixed, soft = mix(x, torch.arange(B_TIMM))
        out.append((mixed.numpy(), soft.double().numpy()))
    return out


def our_batches(framework: str, mode: str, batch: int = B_TIMM, batches: int = BATCHES,
                **config) -> list[tuple[np.ndarray, np.ndarray]]:
    config = {**TIMM_CONFIG, **config}
    x = constant_batch()[:batch]
    y = np.arange(batch)
    out = []
    if framework == "torch":
        mix = RandomMixupOrCutMix.from_timm(**config, mode=mode, generator=torch.Generator().manual_seed(5))
        for _ in range(batches):
            mixed, soft = mix(torch.from_numpy(x), torch.from_numpy(y))
            out.append((mixed.numpy(), soft.double().numpy()))
        return out
    import tensorflow as tf

    layer = KerasMixupOrCutMix.from_timm(**config, mode=mode, seed=5)
    step = tf.function(lambda images, labels: layer((images, labels)))  # eager Keras calls are slow
    x_last = tf.constant(x.transpose(0, 2, 3, 1))
    for _ in range(batches):
        mixed, soft = step(x_last, tf.constant(y))
        out.append((kh.np_(mixed).transpose(0, 3, 1, 2), kh.np_(soft).astype(np.float64)))
    return out


def measure(mixed: np.ndarray, soft: np.ndarray) -> list[dict]:
    """Per image of one batch: its partner (from the label row), the partner's label weight, and
    what the pixels say: ``"cut"`` (every pixel its own value or the partner's: the box's rows,
    columns and pixel fraction) or ``"blend"`` (one value: lambda), or nothing."""
    x = constant_batch()[: len(mixed)]
    values = x[:, 0, 0, 0]
    rows = []
    for i in range(len(mixed)):
        row = soft[i].copy()
        row[i] = 0.0
        j = int(row.argmax())
        weight = float(row[j])
        image = mixed[i, 0]
        info = {"partner": j if weight > 0 else i, "weight": weight, "kind": None}
        if weight > 0:
            box = image == values[j]
            if np.all(box | (image == values[i])):
                rows_in, cols_in = box.any(1), box.any(0)
                info.update(kind="cut", fraction=box.mean(), h=int(rows_in.sum()), w=int(cols_in.sum()),
                            top=int(rows_in.argmax()), box=box)
            else:
                assert np.allclose(image, image.flat[0], rtol=0, atol=1e-6), "a blend is one value"
                info.update(kind="blend", lam=float((image.flat[0] - values[j]) / (values[i] - values[j])))
        else:
            np.testing.assert_array_equal(mixed[i], x[i])  # not mixed: unchanged
        rows.append(info)
    return rows


def checked(batches: list[tuple[np.ndarray, np.ndarray]], mode: str, who: str) -> list[list[dict]]:
    """Measure every batch and assert what holds in ``mode`` exactly: partners ``B - 1 - i``, label
    weights equal to the pasted fraction or to ``1 - lambda``, and who shares a draw with whom."""
    out = []
    for mixed, soft in batches:
        rows = measure(mixed, soft)
        b = len(rows)
        for i, r in enumerate(rows):
            assert r["partner"] in (i, b - 1 - i), f"{who}: image {i} mixed with {r['partner']}"
            if r["kind"] == "cut":
                assert abs(r["weight"] - r["fraction"]) < 1e-6, f"{who}: label weight != pasted fraction"
            elif r["kind"] == "blend":
                assert abs(r["weight"] - (1 - r["lam"])) < 1e-5, f"{who}: label weight != 1 - lambda"
        pairs = [[i, b - 1 - i] for i in range(b // 2)]
        units = [list(range(b))] if mode == "batch" else pairs if mode == "pair" else []
        for unit in units:
            kinds = {rows[i]["kind"] for i in unit}
            assert len(kinds) == 1, f"{who}: one {mode} mixed {kinds}"
            if kinds == {"cut"}:
                assert all(np.array_equal(rows[i]["box"], rows[unit[0]]["box"]) for i in unit), f"{who}: boxes differ"
            if kinds == {"blend"}:
                assert np.ptp([rows[i]["lam"] for i in unit]) < 1e-5, f"{who}: lambdas differ"
        out.append(rows)
    return out


def pooled(measured: list[list[dict]], mode: str) -> dict[str, np.ndarray]:
    """The draws, one per unit (the batch, the pair's first image, each image)."""
    first = [rows[:1] if mode == "batch" else rows[: len(rows) // 2] if mode == "pair" else rows for rows in measured]
    units = [r for rows in first for r in rows]
    cut = [r for r in units if r["kind"] == "cut"]
    return {
        "mixed": np.array([r["kind"] is not None for r in units]),
        "cut": np.array([r["kind"] == "cut" for r in units if r["kind"] is not None]),
        "lam": np.array([r["lam"] for r in units if r["kind"] == "blend"]),
        "fraction": np.array([r["fraction"] for r in cut]),
        "h": np.array([r["h"] for r in cut]),
    }


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("mode", ["elem", "pair", "batch"])
def test_from_timm_reproduces_timm_in_each_mode(framework, mode) -> None:
    theirs = pooled(checked(timm_batches(mode), mode, "timm"), mode)
    ours = pooled(checked(our_batches(framework, mode), mode, "ours"), mode)
    assert_same_rate(ours["mixed"], theirs["mixed"], f"{mode}: units mixed (prob)")
    assert_same_rate(ours["cut"], theirs["cut"], f"{mode}: CutMix rather than Mixup (switch_prob)")
    assert_same_law(ours["lam"], theirs["lam"], f"{mode}: Mixup lambda")
    assert_same_law(ours["fraction"], theirs["fraction"], f"{mode}: pasted fraction")
    assert_same_law(ours["h"], theirs["h"], f"{mode}: box height")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_from_timm_minmax_box_in_pair_mode(framework) -> None:
    config = {"cutmix_minmax": (0.25, 0.75), "mixup_alpha": 0.0, "prob": 1.0}
    theirs = pooled(checked(timm_batches("pair", **config), "pair", "timm"), "pair")
    ours = pooled(checked(our_batches(framework, "pair", **config), "pair", "ours"), "pair")
    assert theirs["cut"].all() and ours["cut"].all()
    assert set(ours["h"]) <= set(range(3, 9))
    assert_same_law(ours["h"], theirs["h"], "min/max box height")
    assert_same_law(ours["fraction"], theirs["fraction"], "min/max pasted fraction")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_from_timm_label_rows_are_timms_formula_with_smoothing(framework) -> None:
    """Given the label weights drawn, the rows are timm's ``mixup_target`` with the same lambda."""
    K, B = 6, 8
    labels = torch.tensor([0, 3, 5, 1, 1, 2, 4, 0])
    x = make_images((B, 3, 10, 9), torch.float32, seed=1)
    if framework == "torch":
        mix = RandomMixupOrCutMix.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", label_smoothing=0.1,
                                            num_classes=K, generator=torch.Generator().manual_seed(3))
        _, soft, p = run_mixing(mix, x, labels)
        soft, weight = soft.double(), p["partner_weight"].double()
    else:
        layer = KerasMixupOrCutMix.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", label_smoothing=0.1,
                                             num_classes=K, seed=3)
        _, soft_np, p = kh.run_mixing_layer(layer, x.permute(0, 2, 3, 1).numpy(), labels.numpy())
        soft, weight = torch.from_numpy(soft_np).double(), torch.from_numpy(p["partner_weight"]).double()
    assert (weight > 0).all()
    expected = timm_mixup.mixup_target(labels, K, lam=(1 - weight).unsqueeze(1), smoothing=0.1)
    torch.testing.assert_close(soft, expected.double(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("mode", ["elem", "pair"])
def test_from_timm_odd_batch_middle_image_passes_through(framework, mode) -> None:
    """timm refuses odd batches; here the middle image is its own flip partner and is left alone,
    while the other six are mixed with their flip partners (pairs sharing their draw in pair mode)."""
    batches = our_batches(framework, mode, batch=7, batches=20, prob=1.0)
    mixed_count = 0
    for rows in checked(batches, mode, "ours"):  # partners B - 1 - i, exact weights, pairs share a draw
        assert rows[3]["kind"] is None and rows[3]["weight"] == 0
        assert [r["partner"] for r in rows if r["kind"]] == [6 - i for i, r in enumerate(rows) if r["kind"]]
        mixed_count += sum(r["kind"] is not None for r in rows)
    # prob=1: every other image is mixed (an empty timm box, lam > 0.993, is the rare exception).
    assert mixed_count >= 0.9 * 6 * len(batches)
    # The middle image is deselected, not mixed with itself: mixed with itself its pixels and label
    # row would come back the same, so only the drawn selection tells the two apart.
    config = {**TIMM_CONFIG, "prob": 1.0, "mode": mode}
    if framework == "torch":
        mix = RandomMixupOrCutMix.from_timm(**config, generator=torch.Generator().manual_seed(1))
        selected = run_mixing(mix, torch.from_numpy(constant_batch()[:7]), torch.arange(7))[2]["selected"].numpy()
    else:
        layer = KerasMixupOrCutMix.from_timm(**config, seed=1)
        selected = kh.run_mixing_layer(layer, constant_batch()[:7].transpose(0, 2, 3, 1), np.arange(7))[2]["selected"]
    np.testing.assert_array_equal(selected, np.arange(7) != 3)


TIMM_BAD = [
    ({"mode": "elements"}, r"^RandomMixupOrCutMix\.from_timm: mode must be one of 'batch', 'pair', 'elem' "
                           r"\(timm's modes\); got 'elements'"),
    ({"cutmix_alpha": 1.0, "correct_lam": False}, r"^RandomMixupOrCutMix\.from_timm: correct_lam=False .* is not "
                                                  r"supported: maskmix weighs labels by the exact fraction"),
    ({"multi_label": True}, r"^RandomMixupOrCutMix\.from_timm: multi_label=True with label_smoothing=0\.1 is not "
                            r"supported"),
    ({"mixup_off_epoch": 10}, r"^RandomMixupOrCutMix\.from_timm: mixup_off_epoch .* is a schedule of training "
                              r"progress.*got 10"),
    # NumPy scalars (a config file read with NumPy) met none of these refusals: correct_lam=False and
    # the multi-label smoothing were dropped, silently.
    ({"cutmix_alpha": np.float32(1.0), "correct_lam": False}, r"^RandomMixupOrCutMix\.from_timm: correct_lam=False"),
    ({"multi_label": True, "label_smoothing": np.float32(0.1)}, r"^RandomMixupOrCutMix\.from_timm: multi_label=True "
                                                                r"with label_smoothing=.*0\.1.* is not supported"),
    ({"mixup_off_epoch": np.int64(10)}, r"^RandomMixupOrCutMix\.from_timm: mixup_off_epoch .* is a schedule"),
    # Set aside where timm does not read it, but checked first (7.0 was taken for the default).
    ({"mixup_alpha": 0.0, "cutmix_alpha": 1.0, "switch_prob": 7.0},
     r"^RandomMixupOrCutMix\.from_timm: switch_prob must be a float in \[0, 1\]; got 7\.0"),
    ({"mixup_alpha": 0.0}, r"^RandomMixupOrCutMix: mixup_alpha and cutmix_alpha are both 0"),
    ({"prob": 1.5}, r"^RandomMixupOrCutMix: augmentation_ratio must be a float in \[0, 1\]; got 1\.5"),
    # maskmix parameters that timm's mode and prob set: the timm argument was dropped, silently.
    ({"mode": "elem", "sampling": "batch"}, r"^RandomMixupOrCutMix\.from_timm: sampling from timm's mode: pass "
                                            r"timm's argument instead"),
    ({"prob": 0.5, "augmentation_ratio": 1.0, "bernoulli_mix": False},
     r"^RandomMixupOrCutMix\.from_timm: augmentation_ratio from timm's prob, bernoulli_mix from timm's prob: pass"),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("arguments", "message"), TIMM_BAD, ids=[str(i) for i in range(len(TIMM_BAD))])
def test_from_timm_refuses_what_it_cannot_reproduce(framework, arguments, message) -> None:
    with pytest.raises(ValueError, match=message):
        FRAMEWORKS[framework].from_timm(**arguments)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_from_timm_maps_timms_arguments(framework) -> None:
    cls = FRAMEWORKS[framework]
    default = cls.from_timm()  # timm's defaults: Mixup only, per batch, smoothing 0.1, 1000 classes
    assert (default.mixup_alpha, default.cutmix_alpha, default.sampling, default.partner) == (1.0, 0.0, "batch", "flip")
    assert (default.label_smoothing, default.num_classes, default.augmentation_ratio, default.bernoulli_mix) == (
        0.1, 1000, 1.0, True)
    # rand_bbox (test_the_timm_box_follows_rand_bbox) where there is a box of area 1 - lambda; timm's
    # defaults have no CutMix, and maskmix refuses a box_rounding without effect.
    assert default.box_rounding == "round" and cls.from_timm(cutmix_alpha=1.0).box_rounding == "timm"
    assert cls.from_timm(mixup_alpha=0.0, cutmix_alpha=1.0, switch_prob=0.9).switch_prob == 0.5  # timm ignores it
    minmax = cls.from_timm(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=(0.2, 0.8), correct_lam=False,
                           mode="elem", prob=0.5)
    # cutmix_minmax forces cutmix_alpha to 1 (timm), and timm always corrects the min/max box's lambda.
    assert (minmax.cutmix_alpha, minmax.cutmix_minmax, minmax.sampling, minmax.augmentation_ratio) == (
        1.0, (0.2, 0.8), "image", 0.5)
    assert cls.from_timm(mixup_off_epoch=0, multi_label=True, label_smoothing=0.0).label_smoothing == 0.0
    assert cls.from_timm(mode="pair", box_rounding="round").box_rounding == "round"  # maskmix options on top
