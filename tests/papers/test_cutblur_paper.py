"""CutBlur's presets against the official sampler (clovaai/cutblur, ``augments.py``: ``cutblur``).

The official ``cutblur(im1=HR, im2=LR)`` (re-implemented below in NumPy; its laws measured with
one draw per image, its one draw per batch over many small batches), with the
MoA policy's CutBlur ``alpha = 0.7`` and ``prob = 1.0`` (``option.py``): ``cut_ratio = randn() * 0.01 +
alpha``, ``ch = int(h * cut_ratio)``, ``cw = int(w * cut_ratio)``, ``cy = randint(0, h - ch + 1)``,
``cx = randint(0, w - cw + 1)``; with probability 1/2 the HR box is pasted into the LR input,
otherwise the LR box into the HR image.

Measured from maskmix's outputs on 40 x 64 random pairs (not square, so that both sides follow the
one ratio): the box (the pixels that come from the other image, which must form a box) and its
direction (which of the two regions is the box). Statistics: chi-square on the box's height,
width, top and left (a few values each), binomial test on the direction. n = 2000 (torch) / 1000
(Keras): the preset passes with p > 1e-3 and the default law (``patch_side_normal=None``) is
rejected by the same chi-square (p < 1e-4), as is a ratio rounded instead of truncated.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import keras
import numpy as np
import pytest
import torch
from mixing_papers import ACCEPT, REJECT, batch_boxes, changed_boxes, chi2_same_law, per_image
from scipy import stats

from maskmix.keras import RandomCutBlur as KerasCutBlur
from maskmix.keras import RandomCutBlurPair as KerasPair
from maskmix.torch import RandomCutBlur as TorchCutBlur
from maskmix.torch import RandomCutBlurPair as TorchPair

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = (
    "box side ratio N(0.7, 0.01²), box fully inside, direction HR↔LR with probability 1/2; a rounded "
    "ratio rejected"
)

HEIGHT, WIDTH = 40, 64
KEYS = ("height", "width", "top", "left")


def official_boxes(rng: np.random.Generator, n: int, alpha: float = 0.7) -> dict[str, np.ndarray]:
    ratio = rng.standard_normal(n) * 0.01 + alpha
    out = {"height": (HEIGHT * ratio).astype(np.int64), "width": (WIDTH * ratio).astype(np.int64)}
    out["top"] = rng.integers(0, HEIGHT - out["height"] + 1)
    out["left"] = rng.integers(0, WIDTH - out["width"] + 1)
    out["hr_to_lr"] = rng.random(n) > 0.5
    return out


def pair_boxes(framework: str, n: int, seed: int, **options: object) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lr, hr = (rng.random((n, 1, HEIGHT, WIDTH), dtype=np.float32) for _ in range(2))
    if framework == "torch":
        pair = TorchPair(generator=torch.Generator().manual_seed(seed), **options)
        out = pair((torch.from_numpy(lr), torch.from_numpy(hr)))[0].numpy()
    else:
        out, _ = KerasPair(seed=seed, data_format="channels_first", **options)((lr, hr))
        out = keras.ops.convert_to_numpy(out)
    from_hr = changed_boxes(lr, out, channel_axis=1)  # the pixels that are not the LR input's
    from_lr = changed_boxes(hr, out, channel_axis=1)
    # The box is whichever region is one; the other is its complement (never a box here).
    assert (from_hr["is_box"] ^ from_lr["is_box"]).all()
    hr_to_lr = from_hr["is_box"]
    return {**{key: np.where(hr_to_lr, from_hr[key], from_lr[key]) for key in KEYS}, "hr_to_lr": hr_to_lr}


def p_values(ours: dict[str, np.ndarray], official: dict[str, np.ndarray]) -> dict[str, float]:
    return {key: chi2_same_law(ours[key], official[key]) for key in KEYS}


@pytest.mark.parametrize(("framework", "n"), [("torch", 2000), ("keras", 1000)])
def test_pair_preset_follows_the_official_sampler_and_the_default_law_does_not(framework: str, n: int) -> None:
    official = official_boxes(np.random.default_rng(1), n)
    ours = pair_boxes(framework, n, 0, **per_image(TorchPair.spec.papers["sr"].config))
    result = p_values(ours, official)
    assert min(result.values()) > ACCEPT, result
    assert stats.binomtest(int(ours["hr_to_lr"].sum()), n, 0.5).pvalue > ACCEPT
    # The mutation check: maskmix's default rectangle law is rejected by the same statistics.
    default = pair_boxes(framework, n, 0,
                         **per_image({**TorchPair.spec.papers["sr"].config, "patch_side_normal": None}))
    assert chi2_same_law(default["height"], official["height"]) < REJECT
    assert chi2_same_law(default["width"], official["width"]) < REJECT


def test_the_side_statistic_rejects_a_rounded_ratio() -> None:
    # The chi-square on the sides sees a law that rounds H * ratio instead of truncating it.
    rng = np.random.default_rng(2)
    rounded = np.round(HEIGHT * (rng.standard_normal(2000) * 0.01 + 0.7)).astype(np.int64)
    assert chi2_same_law(rounded, official_boxes(np.random.default_rng(1), 2000)["height"]) < REJECT


@pytest.mark.parametrize(("framework", "n"), [("torch", 600), ("keras", 400)])
def test_single_image_preset_draws_the_official_box(framework: str, n: int) -> None:
    images = np.random.default_rng(3).random((n, 1, HEIGHT, WIDTH), dtype=np.float32)
    config = per_image(TorchCutBlur.spec.papers["sr_x4"].config)
    if framework == "torch":
        out = TorchCutBlur(generator=torch.Generator().manual_seed(0), **config)(torch.from_numpy(images)).numpy()
    else:
        out = keras.ops.convert_to_numpy(KerasCutBlur(seed=0, data_format="channels_first", **config)(images))
    boxes = changed_boxes(images, out, channel_axis=1)
    assert boxes["is_box"].all()
    result = p_values(boxes, official_boxes(np.random.default_rng(1), n))
    assert min(result.values()) > ACCEPT, result


def test_presets_declare_the_official_configuration() -> None:
    pair = TorchPair.spec.paper_config("sr")
    assert (pair["patch_side_normal"], pair["direction"], pair["augmentation_ratio"]) == ((0.7, 0.01), "random", 1.0)
    for cls in (TorchPair, KerasPair):  # not registered: tests/test_presets.py does not build it
        assert cls.from_paper().patch_side_normal == (0.7, 0.01)
    for setting, factor in (("sr_x4", 0.25), ("sr_x2", 0.5)):
        config = TorchCutBlur.spec.paper_config(setting)
        assert config["patch_side_normal"] == (0.7, 0.01) and config["blur_factor"] == (factor, factor)
        assert "sampling='batch'" in TorchCutBlur.spec.papers[setting].notes
        assert config["sampling"] == "batch"
    assert pair["sampling"] == "batch"


@pytest.mark.parametrize("cls", [TorchCutBlur, KerasCutBlur, TorchPair, KerasPair])
@pytest.mark.parametrize(("value", "error"), [((1.5, 0.01), ValueError), ((0.7, -0.1), ValueError),
                                               ((0.7, float("nan")), ValueError), ((0.7,), ValueError),
                                               (0.7, TypeError), (("0.7", 0.01), TypeError)])
def test_patch_side_normal_is_validated(cls: type, value: object, error: type) -> None:
    expected = r"patch_side_normal must be a pair \(mean, std\) with 0 < mean <= 1 and std >= 0; got "
    with pytest.raises(error, match=rf"^{cls.__name__}: {expected}"):
        cls(patch_side_normal=value)


@pytest.mark.parametrize(("framework", "batches"), [("torch", 300), ("keras", 100)])
def test_presets_draw_one_box_and_one_direction_per_batch(framework: str, batches: int) -> None:
    """The official cutblur draws one ratio, box and direction per batch (sampling="batch"): within
    a batch of 4 pairs they are shared, over the batches they follow the official law."""
    config = dict(TorchPair.spec.papers["sr"].config)
    drawn = [pair_boxes(framework, 4, seed, **config) for seed in range(batches)]
    assert all(all((batch[key] == batch[key][0]).all() for key in (*KEYS, "hr_to_lr")) for batch in drawn)
    ours = {key: np.array([batch[key][0] for batch in drawn]) for key in (*KEYS, "hr_to_lr")}
    assert min(p_values(ours, official_boxes(np.random.default_rng(1), batches)).values()) > ACCEPT
    assert stats.binomtest(int(ours["hr_to_lr"].sum()), batches, 0.5).pvalue > ACCEPT
    # The mutation check: drawn per image, the boxes of a batch differ.
    per_pair = pair_boxes(framework, 4, 0, **per_image(config))
    assert not all((per_pair[key] == per_pair[key][0]).all() for key in KEYS)
    # The single-image presets: one box for the batch too.
    images = np.random.default_rng(3).random((4, 1, HEIGHT, WIDTH), dtype=np.float32)
    single = TorchCutBlur.spec.papers["sr_x4"].config
    if framework == "torch":
        out = TorchCutBlur(generator=torch.Generator().manual_seed(0), **single)(torch.from_numpy(images)).numpy()
    else:
        out = keras.ops.convert_to_numpy(KerasCutBlur(seed=0, data_format="channels_first", **single)(images))
    boxes = batch_boxes([(images, out)], channel_axis=1)
    assert boxes["shared"].all() and boxes["changed"][0] == 4
