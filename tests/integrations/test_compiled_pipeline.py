"""The compiled path of the torch pipeline (``MaskMixPipeline(compile=...)``), on the CPU.

One pipeline (Random Erasing, then CutMix) is compiled once with Inductor and run over a stream
of batches whose size changes (the last batch of an epoch): the number of graphs stays bounded,
the outcomes have the eager path's distributions (two-sample tests over many batches), a restart
repeats the stream exactly, and the user's RNG is left as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torchvision import transforms as tv1
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomErasing

BATCH, CLASSES, SIDE, BATCHES = 8, 8, 12, 60


def build(**options) -> MaskMixPipeline:
    return MaskMixPipeline([RandomErasing(augmentation_ratio=0.5, bernoulli_mix=True)], [RandomCutMix()],
                           num_classes=CLASSES, seed=7, **options)


def outcomes(pipeline: MaskMixPipeline, batches: int) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor]]:
    """Per image: the label weight that went to the partner, and the fraction of black pixels;
    and the outputs themselves."""
    images = torch.full((BATCH, 3, SIDE, SIDE), 0.5)
    labels = torch.arange(BATCH)
    weights, black, outputs = [], [], []
    for _ in range(batches):
        out, soft = pipeline((images, labels))
        weights.append((1 - soft.diagonal()).numpy())
        black.append((out == 0).float().mean(dim=(1, 2, 3)).numpy())
        outputs.append(out)
    return np.concatenate(weights), np.concatenate(black), outputs


@pytest.fixture(scope="module")
def compiled_run():
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    counter = CompileCounterWithBackend("inductor")
    pipeline = build(compile={"backend": counter})
    rng_before = torch.random.get_rng_state()
    weights, black, outputs = outcomes(pipeline, BATCHES)
    rng_after = torch.random.get_rng_state()
    # The last batches of epochs: other sizes, one of them twice.
    for size in (5, 3, 5):
        out, soft = pipeline((torch.rand(size, 3, SIDE, SIDE), torch.randint(0, CLASSES, (size,))))
        assert out.shape == (size, 3, SIDE, SIDE) and soft.shape == (size, CLASSES)
    return pipeline, counter, weights, black, outputs, (rng_before, rng_after)


def test_a_changing_batch_size_compiles_a_bounded_number_of_graphs(compiled_run) -> None:
    _, counter, *_ = compiled_run
    # One static graph for the first size, one with a dynamic batch size for every later size.
    assert counter.frame_count == 2


def test_compiled_outcomes_have_the_eager_distributions(compiled_run) -> None:
    _, _, weights, black, _, _ = compiled_run
    eager_weights, eager_black, _ = outcomes(build(), BATCHES)
    n = BATCH * BATCHES
    assert weights.shape == eager_weights.shape == (n,)
    # Two-sample KS tests over 480 images each: the same law gives p < 1e-3 once in a thousand
    # runs; a step that skipped the erasing or repeated one batch's draws gives p ~ 0.
    assert scipy.stats.ks_2samp(weights, eager_weights).pvalue > 1e-3
    assert scipy.stats.ks_2samp(black, eager_black).pvalue > 1e-3
    # Both paths really augment: about half the images erased, every image mixed.
    assert 0.3 < (eager_black > 0).mean() and 0.3 < (black > 0).mean()
    assert (weights > 0).mean() > 0.9


def test_batches_differ_and_a_restart_repeats_the_stream(compiled_run) -> None:
    pipeline, _, weights, _, outputs, _ = compiled_run
    assert not torch.equal(outputs[0], outputs[1])
    pipeline.restart()
    again, _, replayed = outcomes(pipeline, 3)
    for first, second in zip(outputs[:3], replayed, strict=True):
        torch.testing.assert_close(first, second, rtol=0, atol=0)
    np.testing.assert_array_equal(again, weights[: 3 * BATCH])


def test_the_users_rng_is_left_as_it_was(compiled_run) -> None:
    before, after = compiled_run[-1]
    assert torch.equal(before, after)


def test_compile_option_is_checked() -> None:
    with pytest.raises(TypeError, match=r"^MaskMixPipeline: compile must be a bool or a dict of torch.compile "
                                        r"arguments \(e.g. \{'mode': 'reduce-overhead'\}\); got 'yes'$"):
        build(compile="yes")
    own_generator = r"^MaskMixPipeline: compile=True cannot use the own generator of RandomCutMix \(torch.compile"
    with pytest.warns(UserWarning, match="not used"), pytest.raises(ValueError, match=own_generator):
        MaskMixPipeline(mix=RandomCutMix(generator=torch.Generator()), num_classes=3, compile=True)


def test_images_as_tv_tensors_compile_as_plain_tensors_and_videos_are_refused() -> None:
    # torch.compile cannot trace a tv_tensor: an Image gave Dynamo's "Unsupported" error. Dynamo
    # alone (backend "eager") is what the unwrapping concerns; Inductor is tested above.
    images, labels = torch.rand(BATCH, 3, SIDE, SIDE), torch.arange(BATCH)
    out, soft = build(compile={"backend": "eager"})((images, labels))
    out_image, soft_image = build(compile={"backend": "eager"})((tv_tensors.Image(images), labels))
    assert type(out_image) is tv_tensors.Image
    torch.testing.assert_close(out_image.as_subclass(torch.Tensor), out, rtol=0, atol=0)
    torch.testing.assert_close(soft_image, soft, rtol=0, atol=0)
    pipeline = build(compile={"backend": "eager"})
    with pytest.raises(TypeError, match=r"^MaskMixPipeline: compile=True cannot augment a tv_tensors\.Video .* use "
                                        r"compile=False for video clips$"):
        pipeline((tv_tensors.Video(torch.rand(BATCH, 2, 3, SIDE, SIDE)), labels))
    assert pipeline.batches == 0


def test_many_compiled_pipelines_in_one_process() -> None:
    # Dynamo's graphs were cached on one shared code object: the ninth pipeline of a process (a
    # sweep, a new callback per fit) hit the recompile limit of 8, a hard error with fullgraph.
    images, labels = torch.rand(BATCH, 3, SIDE, SIDE), torch.arange(BATCH) % CLASSES
    for _ in range(10):
        pipeline = MaskMixPipeline([RandomErasing()], [RandomCutMix(), RandomCutMix(alpha=0.5)], mix_weights=[1, 1],
                                   num_classes=CLASSES, seed=0, compile={"backend": "eager"})
        for number in range(4):  # both mix items, float32 and bfloat16
            batch = images.to(torch.bfloat16) if number % 2 else images
            assert pipeline((batch, labels))[0].dtype == batch.dtype


def test_the_lightning_callback_runs_the_compiled_step_in_fit() -> None:
    import lightning as L
    import torch.nn.functional as F

    from maskmix.callbacks import MaskMixCallback

    seen: list[torch.Tensor] = []

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(3 * SIDE * SIDE, CLASSES)

        def training_step(self, batch, batch_idx):
            x, y = batch
            seen.append(y)
            return F.cross_entropy(self.layer(x.flatten(1)), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.rand(12, 3, SIDE, SIDE), torch.randint(0, CLASSES, (12,)))
    callback = MaskMixCallback(transforms=[RandomErasing()], mix=RandomCutMix(), num_classes=CLASSES, seed=0,
                               compile=True)
    assert callback.pipeline.compile_options == {}
    trainer = L.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=5))  # batches of 5, 5 and 2
    assert [tuple(y.shape) for y in seen] == [(5, CLASSES), (5, CLASSES), (2, CLASSES)]
    assert callback.pipeline._compiled_step is not None
    with pytest.raises(TypeError, match=r"^MaskMixCallback: compile must be a bool or a dict"):
        MaskMixCallback(compile=1)


@pytest.mark.parametrize("layout", ["dict", "tuple", "nested dict", "nested list"])
def test_the_pipeline_refuses_batches_with_masks_rather_than_pass_them_through(layout: str) -> None:
    from torchvision import tv_tensors

    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.randint(0, CLASSES, (4,))
    masks = tv_tensors.Mask(torch.zeros(4, SIDE, SIDE, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes(torch.zeros(4, 4), format="XYXY", canvas_size=(SIDE, SIDE))
    batch = {
        "dict": {"image": images, "label": labels, "mask": masks},
        "tuple": (images, labels, masks),
        # A detection-style target nested in the batch stays behind just the same.
        "nested dict": {"image": images, "label": labels, "target": {"masks": masks, "boxes": boxes}},
        "nested list": (images, labels, [masks]),
    }[layout]
    with pytest.raises(TypeError, match=r"^MaskMixPipeline: the batch holds (BoundingBoxes, )?Mask, which the "
                                        r"training pipeline"):
        build()(batch)


def test_options_assigned_later_are_checked_as_the_constructor_checks_them() -> None:
    """mix_weights=[1.0] for two mixes always chose the first, [0, 0] divided by zero, NaN weights
    and label_smoothing=-0.5 were taken as given, seed=-1 was accepted."""
    from maskmix.torch import RandomMixup

    pipeline = MaskMixPipeline([RandomErasing()], [RandomCutMix(), RandomMixup()], num_classes=CLASSES, seed=0)
    bad = [("mix_weights", [1.0], r"mix_weights must have one weight per mix transform \(2\); got 1"),
           ("mix_weights", [0.0, 0.0], r"mix_weights must have at least one positive weight"),
           ("mix_weights", [float("nan"), 1.0], r"mix_weights\[0\] must be a finite number >= 0"),
           ("label_smoothing", -0.5, r"label_smoothing must be a float in \[0, 1\)"),
           ("num_classes", 1, r"num_classes must be None or an integer >= 2"),
           ("seed", -1, r"seed must be None or an integer in \[0, 2\*\*64\); got -1")]
    for name, value, message in bad:
        with pytest.raises((TypeError, ValueError), match=rf"^MaskMixPipeline: {message}"):
            setattr(pipeline, name, value)
    assert (pipeline.mix_weights, pipeline.label_smoothing, pipeline.num_classes, pipeline.seed) == (
        None, 0.0, CLASSES, 0)
    pipeline.mix_weights = (3, 1)  # normalised as by the constructor
    pipeline.label_smoothing = 0.1
    assert pipeline.mix_weights == MaskMixPipeline(mix=[RandomCutMix(), RandomMixup()], mix_weights=(3, 1)).mix_weights
    assert pipeline.label_smoothing == 0.1
    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.randint(0, CLASSES, (4,))
    assert pipeline((images, labels))[1].min() > 0  # smoothed


@pytest.mark.parametrize("layout", ["dict", "tuple"])
def test_the_pipeline_says_that_it_does_not_use_saliency_maps(layout: str) -> None:
    """A SaliencyMap (a Mask to torchvision) was refused as a target that would stay behind; what
    the pipeline lacks is passing it to RandomCutSwap, whose patches would ignore it."""
    from maskmix.torch import RandomCutSwap, SaliencyMap

    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.randint(0, CLASSES, (4,))
    maps = SaliencyMap(torch.rand(4, SIDE, SIDE))
    batch = {"image": images, "label": labels, "saliency": maps} if layout == "dict" else (images, labels, maps)
    with pytest.raises(TypeError, match=r"^MaskMixPipeline: the batch holds a SaliencyMap, which the training "
                                        r"pipeline does not pass to its transforms \(RandomCutSwap would place its "
                                        r"patches uniformly, ignoring the maps\); call RandomCutSwap on \(images, "
                                        r"SaliencyMap\(maps\)\) yourself"):
        MaskMixPipeline([RandomCutSwap()], seed=0)(batch)


def test_plain_per_pixel_targets_are_refused_where_a_transform_moves_or_mixes_pixels() -> None:
    """Masks given as plain tensors (not tv_tensors.Mask) stayed where they were while CutSwap moved
    the pixels, silently; where every transform keeps pixels in place they pass, and a float copy
    of the images (a teacher's clean view) is not a target."""
    from maskmix.torch import RandomCutSwap

    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.randint(0, CLASSES, (4,))
    masks = torch.randint(0, 5, (4, SIDE, SIDE))
    refused = r"^MaskMixPipeline: the batch holds a tensor of shape \(4, 12, 12\) laid out like the images"
    cases = [
        ([RandomCutSwap()], None, (images, masks), "RandomCutSwap moves pixels"),
        ([RandomErasing(mask_fill=255)], None, {"image": images, "seg": [masks]}, "RandomErasing writes mask_fill"),
        ([RandomErasing()], RandomCutMix(), (images, labels, masks), "RandomCutMix mixes images"),
        # torchvision's transforms get the images alone too: a flip left the masks behind.
        ([v2.RandomHorizontalFlip(p=1.0)], None, (images, masks), "torchvision's RandomHorizontalFlip moves"),
        ([v2.RandomApply([v2.RandomAffine(degrees=10.0)])], None, (images, masks), "torchvision's RandomAffine"),
        ([v2.RandAugment()], None, (images, masks), "torchvision's RandAugment moves"),
        ([tv1.RandomVerticalFlip()], None, (images, masks), "torchvision's RandomVerticalFlip moves"),
    ]
    for transforms, mix, batch, changer in cases:
        with pytest.raises(ValueError, match=refused + rf".*but {changer}"):
            MaskMixPipeline(transforms, mix, num_classes=CLASSES, seed=0)(batch)
    for kept in ([RandomErasing()], [v2.ColorJitter(0.2), v2.RandomErasing(), v2.GaussianBlur(3)]):
        out = MaskMixPipeline(kept, seed=0)((images, masks))
        assert out[1] is masks
    out = MaskMixPipeline([RandomCutSwap()], seed=0)((images, labels, images.clone()))
    assert torch.equal(out[2], images)
    # Class maps at a lower resolution, (B, h, w) integers (rank 4 at another size was refused).
    low = masks[:, ::3, ::3]
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: the batch holds a tensor of shape \(4, 4, 4\)"):
        MaskMixPipeline([RandomCutSwap()], seed=0)((images, labels, low))
    assert MaskMixPipeline([RandomErasing()], seed=0)((images, labels, low))[2] is low
    # Integer rank-3 tensors that are not the images scaled down pass: token ids (B, 5, 77).
    tokens = torch.zeros(4, 5, 77, dtype=torch.int64)
    assert MaskMixPipeline([RandomCutSwap()], RandomCutMix(), num_classes=CLASSES, seed=0)(
        (images, labels, tokens))[2] is tokens


def test_other_label_keys_of_a_mixed_batch_are_refused() -> None:
    """{"image", "label", "label_fine"}: the images and "label" were mixed, "label_fine" went on
    naming the unmixed images, silently. Without mix nothing is mixed and the batch passes."""
    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.randint(0, CLASSES, (4,))
    batch = {"image": images, "label": labels, "label_fine": labels.clone()}
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: the batch holds other labels \('label_fine'\) besides "
                                         r"'label'; the images and 'label' are mixed"):
        MaskMixPipeline([RandomErasing()], RandomCutMix(), num_classes=CLASSES, seed=0)(batch)
    assert MaskMixPipeline([RandomErasing()], seed=0)(batch)["label_fine"] is batch["label_fine"]


def test_plain_boxes_are_refused_where_a_transform_moves_or_mixes_pixels() -> None:
    """torchvision's detection targets (plain tensors under "boxes"/"keypoints") stayed where
    they were while CutSwap moved the pixels, silently; where every transform keeps pixels in
    place they pass."""
    from maskmix.torch import RandomCutSwap

    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.randint(0, CLASSES, (4,))
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]]), "labels": torch.zeros(1, dtype=torch.int64)}] * 4
    batches = [(images, targets), {"image": images, "label": labels, "keypoints": torch.zeros(4, 17, 3)}]
    for transforms, mix, changer in (([RandomCutSwap()], None, "RandomCutSwap moves pixels"),
                                     ([RandomErasing()], RandomCutMix(), "RandomCutMix mixes images")):
        for batch in batches[1:] if mix else batches:
            with pytest.raises(TypeError, match=rf"^MaskMixPipeline \({changer}\): the sample holds plain tensors "
                                                r"under '(boxes|keypoints)'"):
                MaskMixPipeline(transforms, mix, num_classes=CLASSES, seed=0)(batch)
    for kept in ([RandomErasing()], [RandomErasing(mask_fill=255)]):  # mask_fill does not concern boxes
        out = MaskMixPipeline(kept, seed=0)(batches[0])
        assert out[1] is targets or all(a["boxes"] is b["boxes"] for a, b in zip(out[1], targets, strict=True))


def test_copies_and_pickles_of_a_compiled_pipeline_run_their_own_transforms_and_schedules() -> None:
    # The compiled step is bound to the pipeline it was built for: a deep copy (or an unpickled
    # pipeline, as DDP spawn makes) that kept it ran the original's transforms, which never saw
    # the copy's scheduled values; and the step's closure and the generators did not pickle.
    import copy
    import pickle

    from maskmix import schedules

    images, labels = torch.full((BATCH, 3, SIDE, SIDE), 0.5), torch.arange(BATCH) % CLASSES
    pipeline = MaskMixPipeline([RandomErasing(augmentation_ratio=1.0)], num_classes=CLASSES, seed=3,
                               schedules={"RandomErasing": {"augmentation_ratio": schedules.switch_off(1.0, epoch=2)}},
                               compile={"backend": "eager"})
    assert (pipeline(images) == 0).any()  # erasing on: the compiled step is built
    assert pipeline._compiled_step is not None
    for duplicate in (copy.deepcopy(pipeline), pickle.loads(pickle.dumps(pipeline))):
        assert duplicate.batches == 1 and duplicate.transforms[0] is not pipeline.transforms[0]
        duplicate.set_epoch(2)  # the copy's erasing is switched off, the original's is not
        assert torch.equal(duplicate(images), images)
        assert (pipeline(images) == 0).any()
    # An eager copy continues the original's stream exactly.
    eager = MaskMixPipeline([RandomErasing()], [RandomCutMix()], num_classes=CLASSES, seed=3)
    eager((images, labels))
    twin = pickle.loads(pickle.dumps(eager))
    for got, want in zip(twin((images, labels)), eager((images, labels)), strict=True):
        assert torch.equal(got, want)


def test_a_first_call_under_inference_mode_leaves_the_schedules_working() -> None:
    """A preview under ``torch.inference_mode`` made the scheduled values' tensors inference
    tensors: every later step with a new value failed on refilling them."""
    from maskmix import schedules

    images = torch.full((BATCH, 3, SIDE, SIDE), 0.5)
    pipeline = MaskMixPipeline([RandomErasing()], seed=3, compile={"backend": "eager"},
                               schedules={"RandomErasing": {"augmentation_ratio": schedules.switch_off(1.0, epoch=2)}})
    with torch.inference_mode():
        assert (pipeline(images) == 0).any()
    pipeline.set_epoch(2)
    assert torch.equal(pipeline(images), images)  # the new value reached the compiled step


def test_a_mix_with_a_labels_getter_mixes_the_labels_the_pipeline_found() -> None:
    """The pipeline finds the images and labels itself (label_key); a mixing transform given a
    labels_getter (torchvision's way, for whole samples) was handed the (images, labels) pair, and
    the user's getter failed on it. Its own calls on whole samples still ask the getter."""
    images, labels = torch.rand(4, 3, SIDE, SIDE), torch.arange(4) % CLASSES
    with_getter = RandomCutMix(num_classes=CLASSES, labels_getter=lambda sample: sample["target"])
    for batch, keys in (({"image": images, "target": labels}, ("image", "target")), ((images, labels), (0, 1))):
        got = MaskMixPipeline([RandomErasing()], with_getter, label_key=keys[1], seed=0)(batch)
        want = MaskMixPipeline([RandomErasing()], RandomCutMix(num_classes=CLASSES), label_key=keys[1], seed=0)(batch)
        for key in keys:
            assert torch.equal(got[key], want[key])
        assert not torch.equal(got[keys[0]], images)
    images_out, soft = with_getter({"image": images, "target": labels}).values()
    assert images_out.shape == images.shape and soft.shape == (4, CLASSES)


def test_the_compiled_step_raises_the_eager_errors() -> None:
    """A check that raised inside the compiled step came out as Dynamo's ``Unsupported: Observed
    exception`` (not a ValueError/TypeError naming the transform)."""
    images, labels = torch.rand(8, 3, SIDE, SIDE), torch.arange(8) % CLASSES
    pipeline = MaskMixPipeline([RandomErasing()], RandomCutMix(), num_classes=CLASSES, seed=0,
                               compile={"backend": "eager"})
    with pytest.raises(ValueError, match=r"^RandomCutMix: labels have batch size 7 but the images have 8"):
        pipeline((images, labels[:7]))
    with pytest.raises(TypeError, match=r"^RandomErasing: images must have dtype"):
        pipeline(((images * 255).to(torch.int32), labels))
