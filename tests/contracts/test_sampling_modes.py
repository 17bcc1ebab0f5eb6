"""Sampling modes and partner laws (design §Conventions, sampling modes), for every strategy of the
registry in both frameworks, through the adapters of ``adapters.py``.

``sampling="batch"``: one draw shared by the batch (with ``bernoulli_mix`` one coin for the whole
batch); ``sampling="pair"``: images ``i`` and ``B - 1 - i`` share one draw and one selection, and
the mixers mix them with each other; ``partner``: ``"other"`` never the image itself,
``"permutation"`` a permutation (self-pairs pass through exactly), ``"flip"`` ``B - 1 - i``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import numpy as np
import pytest
from adapters import ADAPTERS, Adapter, make_images
from registry_cases import Case, example_cases

from maskmix import registry

#: ``(framework, case)`` over every strategy's example configuration (and its mixing form).
CASES = [pytest.param(framework, case, id=f"{framework}-{name}")
         for framework in ADAPTERS for name, case in example_cases(framework).items()]
MIXING = [pytest.param(framework, case, id=f"{framework}-{name}")
          for framework in ADAPTERS for name, case in example_cases(framework, mixing=True).items()]
#: Parameters that are per image in every mode (the partner is drawn per image, see design).
PER_IMAGE = frozenset({"partner", "selected"})


def distinct_labels(adapter: Adapter, batch: int) -> object:
    """One class per image: a mixed row shows its partner's column."""
    return adapter.labels(np.arange(batch))


def run(framework: str, case: Case, images: np.ndarray, seed: int = 0, **options: object):
    """One call with captured parameters (mixers: one class per image, ``num_classes=B``)."""
    adapter = ADAPTERS[framework]
    batch = images.shape[0]
    transform = adapter.build(case, seed=seed, **({"num_classes": max(batch, 1)} if case.mixes else {}), **options)
    labels = distinct_labels(adapter, batch) if case.mixes else None
    return adapter.run(case, transform, adapter.images(images, "float32"), labels)


def shared_draws(params: dict[str, np.ndarray], rows: list[tuple[int, int]]) -> bool:
    """Whether every drawn parameter (but the per-image ones) is equal between each pair of rows."""
    drawn = {key: value for key, value in params.items() if key not in PER_IMAGE and np.ndim(value) > 0}
    assert drawn, "no drawn parameter captured"
    return all(np.array_equal(value[i], value[j], equal_nan=True) for value in drawn.values() for i, j in rows)


def identical_batch(batch: int, seed: int = 0) -> np.ndarray:
    return np.repeat(make_images((1, 3, 8, 8), "float32", seed=seed), batch, axis=0)


@pytest.mark.parametrize(("framework", "case"), CASES)
def test_batch_mode_shares_one_draw(framework: str, case: Case) -> None:
    images = make_images((6, 3, 8, 8), "float32")
    result = run(framework, case, images, sampling="batch")
    assert shared_draws(result.params, [(0, b) for b in range(6)])
    assert result.selected.all()
    if not case.mixes:
        # The same image in, the same image out, for every image of the batch (and changed).
        out = run(framework, case, identical_batch(6), sampling="batch").images
        assert all(np.array_equal(out[b], out[0]) for b in range(6))
        assert not np.array_equal(out[0], identical_batch(1)[0])
    # The default draws per image: the same check fails there.
    assert not shared_draws(run(framework, case, images).params, [(0, b) for b in range(6)])


@pytest.mark.parametrize(("framework", "case"), CASES)
def test_pair_mode_shares_a_draw_between_i_and_b_minus_1_minus_i(framework: str, case: Case) -> None:
    batch = 7
    images = make_images((batch, 3, 8, 8), "float32")
    result = run(framework, case, images, sampling="pair")
    assert shared_draws(result.params, [(i, batch - 1 - i) for i in range(batch)])
    assert not shared_draws(result.params, [(0, b) for b in range(batch // 2 + 1)]), "pairs draw apart"
    if case.mixes:
        # Mixed with the pair's other image; the middle one has none and passes through exactly.
        np.testing.assert_array_equal(result.params["partner"], batch - 1 - np.arange(batch))
        assert not result.selected[batch // 2] and result.selected[np.arange(batch) != batch // 2].all()
        np.testing.assert_array_equal(result.images[batch // 2], images[batch // 2])
        np.testing.assert_array_equal(result.soft[batch // 2], np.eye(batch)[batch // 2])
        for i in range(batch // 2):  # one label weight per pair, each row with the other's class
            j = batch - 1 - i
            assert result.soft[i, j] == result.soft[j, i] and result.soft[i, j] > 0
    else:
        # Images that are equal within each pair come back equal within each pair.
        paired = make_images((batch, 3, 8, 8), "float32", seed=1)
        paired = np.where((np.arange(batch) > batch // 2)[:, None, None, None], paired[::-1], paired)
        out = run(framework, case, paired, sampling="pair").images
        for i in range(batch):
            np.testing.assert_array_equal(out[i], out[batch - 1 - i])


@pytest.mark.parametrize("framework", list(ADAPTERS))
@pytest.mark.parametrize("mode", ["batch", "pair"])
def test_selection_is_per_unit(framework: str, mode: str) -> None:
    """With bernoulli_mix, one coin per batch ("batch") or per pair ("pair"); the exact count
    counts pairs in pair mode and images in batch mode."""
    case = example_cases(framework)["RandomErasing"]
    images = make_images((6, 3, 8, 8), "float32")
    coins = []
    for seed in range(24):
        selected = run(framework, case, images, seed=seed, sampling=mode, bernoulli_mix=True,
                       augmentation_ratio=0.5).selected
        if mode == "batch":
            assert selected.all() or not selected.any(), selected
            coins.append(bool(selected[0]))
        else:
            np.testing.assert_array_equal(selected, selected[::-1])
            coins.extend(selected[:3].tolist())
    assert 0 < sum(coins) < len(coins)  # both sides of the coin, at p = 0.5
    exact = run(framework, case, images, sampling=mode, augmentation_ratio=0.5).selected
    if mode == "pair":  # round(0.5 * 3 pairs) = 2 pairs
        assert exact.sum() == 4 and np.array_equal(exact, exact[::-1])
        # 7 images: 4 units (3 pairs and the middle image), round(0.5 * 4) = 2 of them selected.
        odd = run(framework, case, make_images((7, 3, 8, 8), "float32"), sampling=mode, augmentation_ratio=0.5).selected
        assert np.array_equal(odd, odd[::-1]) and odd[:3].sum() + odd[3] == 2
    else:
        assert exact.sum() == 3


@pytest.mark.parametrize(("framework", "case"), MIXING)
def test_partner_laws(framework: str, case: Case) -> None:
    batch = 6
    images = make_images((batch, 3, 8, 8), "float32")
    flip = run(framework, case, images, partner="flip")
    np.testing.assert_array_equal(flip.params["partner"], batch - 1 - np.arange(batch))
    for seed in range(4):
        other = run(framework, case, images, seed=seed).params["partner"]
        assert (other != np.arange(batch)).all()
    fixed = 0
    for seed in range(12):
        result = run(framework, case, images, seed=seed, partner="permutation")
        partner = result.params["partner"]
        np.testing.assert_array_equal(np.sort(partner), np.arange(batch))
        itself = partner == np.arange(batch)
        fixed += int(itself.sum())
        # An image that meets itself is not augmented: pixels and label row exactly as given.
        np.testing.assert_array_equal(result.selected, ~itself)
        np.testing.assert_array_equal(result.images[itself], images[itself])
        np.testing.assert_array_equal(result.soft[itself], np.eye(batch)[itself])
    assert fixed > 0  # 12 permutations of 6: about 12 fixed points expected


@pytest.mark.parametrize(("framework", "case"), MIXING)
def test_pair_mode_counts_the_pairs_of_an_odd_batch_for_the_mixing_strategies(framework: str, case: Case) -> None:
    """The middle image of an odd batch is its own partner: it is never mixed. It was a unit the
    exact count could pick (B = 5, ratio 0.5: round(0.5 * 3) = 2 units, of which the middle one
    a third of the time, so one pair mixed instead of two; B = 3: no image mixed half the time).
    The count is over the B // 2 pairs."""
    for batch, pairs in ((5, 1), (3, 1), (7, 2)):  # round(0.5 * B // 2), half up
        images = make_images((batch, 3, 8, 8), "float32")
        for seed in range(12):
            result = run(framework, case, images, seed=seed, sampling="pair", augmentation_ratio=0.5)
            assert not result.selected[batch // 2]
            assert result.selected.sum() == 2 * pairs, (batch, seed, result.selected)


@pytest.mark.parametrize("framework", list(ADAPTERS))
def test_flip_leaves_the_middle_image_of_an_odd_batch(framework: str) -> None:
    case = example_cases(framework)["RandomMixup"]
    images = make_images((5, 3, 4, 4), "float32")
    result = run(framework, case, images, partner="flip", sampling="batch")
    np.testing.assert_array_equal(result.selected, [True, True, False, True, True])
    np.testing.assert_array_equal(result.images[2], images[2])
    np.testing.assert_array_equal(result.soft[2], np.eye(5)[2])


@pytest.mark.parametrize(("framework", "case"), CASES)
@pytest.mark.parametrize("mode", ["batch", "pair"])
def test_tiny_batches_and_seeds(framework: str, case: Case, mode: str) -> None:
    for batch in (0, 1, 2):
        images = make_images((batch, 3, 5, 5), "float32")
        result = run(framework, case, images, sampling=mode)
        assert result.images.shape == images.shape
        if case.mixes and batch < 2:
            np.testing.assert_array_equal(result.images, images)
    images = make_images((5, 3, 6, 6), "float32")
    first, second = (run(framework, case, images, seed=3, sampling=mode) for _ in range(2))
    np.testing.assert_array_equal(first.images, second.images)


@pytest.mark.parametrize("framework", list(ADAPTERS))
def test_bad_sampling_and_partner_values_name_the_transform_and_the_option(framework: str) -> None:
    cutmix = registry.implementation("RandomCutMix", framework)
    thumbnail = registry.implementation("RandomCutThumbnail", framework)
    with pytest.raises(ValueError, match=r"^RandomCutMix: sampling must be one of 'image', 'batch', 'pair'; "
                                         r"got 'clip'$"):
        cutmix(sampling="clip")
    with pytest.raises(ValueError, match=r"^RandomCutMix: partner must be one of 'other', 'permutation', 'flip'; "
                                         r"got 'random'$"):
        cutmix(partner="random")
    with pytest.raises(ValueError, match=r"^RandomCutMix: partner must be 'other' or 'flip' with sampling='pair' "
                                         r".*got partner='permutation'$"):
        cutmix(sampling="pair", partner="permutation")
    with pytest.raises(ValueError, match=r"^RandomCutThumbnail: partner applies only when images are mixed "
                                         r"\(mix_images=True\); got partner='flip' with mix_images=False$"):
        thumbnail(partner="flip")
    thumbnail(partner="flip", mix_images=True)
    masking = registry.implementation("RandomCutout", framework)
    with pytest.raises(TypeError, match=r"^RandomCutout: unexpected parameter\(s\) partner"):
        masking(partner="flip")


# --------------------------------------------------------------------------------------------
# One framework only: Video clips, torch.compile, XLA.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["batch", "pair"])
def test_torch_video_units_are_made_of_clips(mode: str) -> None:
    """A Video (B, T, C, H, W): units of clips, every frame of a clip with its clip's draw."""
    import torch
    from torchvision import tv_tensors

    from maskmix.torch import RandomErasing

    clips, frames = 5, 3
    frame = torch.from_numpy(make_images((1, 1, 3, 8, 8), "float32"))
    if mode == "batch":
        video = frame.expand(clips, frames, 3, 8, 8).clone()
    else:  # clip i equals clip B - 1 - i, its frames differ
        video = torch.from_numpy(make_images((clips, frames, 3, 8, 8), "float32", seed=2))
        video = torch.where((torch.arange(clips) > clips // 2).view(-1, 1, 1, 1, 1), video.flip(0), video)
    out = RandomErasing(sampling=mode, fill_method=-1.0, generator=torch.Generator().manual_seed(0))(
        tv_tensors.Video(video))
    erased = (out == -1.0).all(dim=2)  # (B, T, H, W)
    assert erased.any()
    for clip in range(clips):
        other = 0 if mode == "batch" else clips - 1 - clip
        assert torch.equal(erased[clip], erased[other]) and torch.equal(out[clip], out[other])
        assert all(torch.equal(erased[clip, t], erased[clip, 0]) for t in range(frames))


@pytest.mark.compile
def test_torch_compile_fullgraph_of_batch_and_pair_modes() -> None:
    import torch
    import torch._inductor.config as inductor_config

    cases = example_cases("torch")
    for case, options in ((cases["RandomCutMix"], {"sampling": "batch", "partner": "permutation",
                                                   "bernoulli_mix": True, "augmentation_ratio": 0.5}),
                          (cases["RandomErasing"], {"sampling": "pair", "augmentation_ratio": 0.5})):
        torch._dynamo.reset()
        transform = case.build("torch", **options)
        compiled = torch.compile(transform, fullgraph=True)
        x = torch.from_numpy(make_images((6, 3, 8, 8), "float32"))
        args = (x, torch.arange(6) % 3) if case.mixes else (x,)
        with inductor_config.patch(fallback_random=True):
            for seed in range(3):
                torch.manual_seed(seed)
                eager = transform(*args)
                torch.manual_seed(seed)
                out = compiled(*args)
                eager, out = (eager, out) if case.mixes else ((eager,), (out,))
                for a, b in zip(out, eager, strict=True):
                    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_keras_xla_jit_compile_with_an_unknown_batch_size() -> None:
    import tensorflow as tf

    cases = example_cases("keras")
    for case, options in ((cases["RandomCutMix"], {"sampling": "batch", "partner": "permutation"}),
                          (cases["RandomErasing"], {"sampling": "pair"})):
        layer = case.build("keras", seed=1, data_format="channels_last", **options)
        images = tf.constant(np.moveaxis(make_images((5, 3, 8, 8), "float32"), 1, -1))
        labels = tf.range(5) % 3
        spec = tf.TensorSpec((None, 8, 8, 3), tf.float32)

        @tf.function(jit_compile=True, input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
        def step(batch, labels, layer=layer, mixes=case.mixes):
            t = layer.get_random_transformation((batch, labels) if mixes else batch)
            return layer.transform_images(batch, t), t

        out, t = step(images, labels)
        params = {key: np.asarray(value) for key, value in t.items()}
        np.testing.assert_array_equal(np.asarray(out), np.asarray(layer.transform_images(images, t)))
        rows = [(0, b) for b in range(5)] if options["sampling"] == "batch" else [(i, 4 - i) for i in range(5)]
        assert shared_draws(params, rows)
        if case.mixes:  # a permutation: self-pairs unselected
            assert sorted(params["partner"].tolist()) == list(range(5))
            np.testing.assert_array_equal(params["selected"], params["partner"] != np.arange(5))
