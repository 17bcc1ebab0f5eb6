"""The battery every per-image torch transform must pass: layouts, dtypes, pass-through, fraction
control, seeding, torch.compile and call-time validation (SPEC §3).

The mixing transforms (which need labels) have the same properties checked in
``test_torch_mixing.py`` and ``test_torch_thumbnail.py``; the strategy-specific pixel semantics
live in the strategy test files."""

from __future__ import annotations

import inspect
import math

import PIL.Image
import pytest
import torch
from helpers import ALL_DTYPES, changed_pixels, make_images, run_with_params
from registry_cases import variant_cases
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch import RandomCutout, RandomErasing

#: The configurations of every strategy torch implements (the registry's variants) that map images
#: to images; in each, an augmented image (of at least 2x2 random pixels) always changes.
CASES = variant_cases("torch", mixing=False)
#: The variants that mix a partner image and labels in.
MIXING_CASES = variant_cases("torch", mixing=True)
FACTORIES = {name: case.build for name, case in CASES.items()}
NAMES = list(FACTORIES)
#: Inductor code generation costs seconds per graph on CPU: the resampling strategies (matmul
#: graphs Inductor mostly hands to ATen) are captured whole with aot_eager, which still proves
#: fullgraph tracing, except one of them which goes through Inductor.
COMPILE_BACKENDS = dict.fromkeys(NAMES, "inductor") | dict.fromkeys(("cutblur", "cutpaste", "thumbnail"), "aot_eager")


def _run(transform, x):
    return transform(x)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize(
    "shape", [(4, 3, 20, 24), (4, 1, 20, 24), (3, 17, 13), (2, 3, 2, 16, 16)], ids=["rgb", "gray", "3d", "5d"]
)
def test_shape_dtype_preserved_and_input_untouched(name: str, dtype: torch.dtype, shape) -> None:
    x = make_images(shape, dtype)
    before = x.clone()
    out = FACTORIES[name]()(x)
    assert type(out) is torch.Tensor
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.data_ptr() != x.data_ptr()
    assert torch.equal(x, before), "the input was modified in place"
    changed = changed_pixels(x.reshape(-1, *shape[-3:]), out.reshape(-1, *shape[-3:]))
    assert changed.flatten(1).any(dim=1).all(), "every image is augmented at ratio 1"


@pytest.mark.parametrize("name", NAMES)
def test_tv_tensors_keep_their_type(name: str) -> None:
    image = tv_tensors.Image(make_images((2, 3, 16, 16)))
    video = tv_tensors.Video(make_images((2, 4, 3, 16, 16)))
    mask = tv_tensors.Mask(torch.ones(2, 16, 16, dtype=torch.uint8))
    t = FACTORIES[name]()
    out_image, out_mask = t(image, mask)
    assert isinstance(out_image, tv_tensors.Image) and out_image.shape == image.shape
    assert out_mask is mask, "segmentation masks pass through untouched"
    out_video = t(video)
    assert isinstance(out_video, tv_tensors.Video) and out_video.shape == video.shape
    assert not torch.equal(out_video, video)


@pytest.mark.parametrize("name", NAMES)
def test_inside_v2_compose_with_torchvision(name: str) -> None:
    image = tv_tensors.Image(make_images((3, 24, 24), torch.uint8))
    pipeline = v2.Compose(
        [v2.RandomHorizontalFlip(p=1.0), FACTORIES[name](), v2.ToDtype(torch.float32, scale=True), v2.Resize(16)]
    )
    out, label = pipeline(image, 7)
    assert isinstance(out, tv_tensors.Image) and out.dtype == torch.float32 and out.shape == (3, 16, 16)
    assert label == 7
    # Pure-tensor heuristic of torchvision: the first pure tensor is the image, the rest passes through.
    x = make_images((2, 3, 16, 16))
    labels = torch.tensor([1, 2])
    out_x, out_labels = FACTORIES[name]()(x, labels)
    assert out_labels is labels and out_x.shape == x.shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "shape", [(0, 3, 8, 8), (2, 3, 1, 1), (2, 3, 1, 7), (2, 1, 7, 1), (1, 3, 2, 2), (3, 1, 1), (0, 2, 3, 5, 5)]
)
def test_empty_batches_and_tiny_images(name: str, shape) -> None:
    x = make_images(shape)
    out = FACTORIES[name]()(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    if shape[-2:] == (1, 1) and CASES[name].moves_pixels:
        assert torch.equal(out, x), "a single pixel has nowhere to go"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("ratio", "batch"), [(0.3, 10), (0.5, 7), (0.0, 5), (1.0, 6), (0.05, 9)])
def test_augmentation_ratio_changes_exactly_round_ratio_b_images(name: str, ratio: float, batch: int) -> None:
    x = make_images((batch, 3, 12, 12), seed=1)
    t = FACTORIES[name](augmentation_ratio=ratio, generator=torch.Generator().manual_seed(3))
    out, params = run_with_params(t, x)
    changed = changed_pixels(x, out).flatten(1).any(dim=1)
    assert int(changed.sum()) == math.floor(ratio * batch + 0.5)
    assert torch.equal(changed, params["selected"])
    # Unselected images are bit-identical.
    assert torch.equal(out[~changed], x[~changed])


@pytest.mark.parametrize("name", ["cutout", "hide_and_seek", "gridmask"])
def test_selected_positions_are_uniform(name: str) -> None:
    t = FACTORIES[name](augmentation_ratio=0.25, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, 1, 4, 4).expand(8, 1, 4, 4)
    counts = torch.zeros(8)
    trials = 2000
    for _ in range(trials):
        selected = t.make_params([x])["selected"]
        assert int(selected.sum()) == 2
        counts += selected
    # Each position is selected with probability 2/8; binomial sd = sqrt(2000 * 0.25 * 0.75) ~ 19.4.
    assert (counts - trials * 0.25).abs().max() < 5 * 19.4


@pytest.mark.parametrize("name", ["cutout", "erasing", "gridmask"])
def test_bernoulli_mix_counts_follow_binomial(name: str) -> None:
    t = FACTORIES[name](augmentation_ratio=0.3, bernoulli_mix=True, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, 1, 4, 4).expand(1000, 1, 4, 4)
    counts = torch.tensor([float(t.make_params([x])["selected"].sum()) for _ in range(200)])
    # Binomial(1000, 0.3): mean 300, sd 14.49. The mean of 200 draws has sd ~1.02; the sd estimate ~0.72.
    assert abs(counts.mean().item() - 300) < 4.0
    assert abs(counts.std().item() - math.sqrt(1000 * 0.3 * 0.7)) < 3.0
    # Unlike the exact mode, the count varies from call to call.
    assert len(set(counts.tolist())) > 20


@pytest.mark.parametrize("name", ["cutout", "erasing", "cutswap", "thumbnail"])
def test_one_image_is_augmented_with_probability_ratio(name: str) -> None:
    """A (C, H, W) image in a per-sample pipeline: ratio 0.3 augments about 30% of the calls (an
    exact count of one image would be round(0.3) = 0, never), as torchvision's p does."""
    t = FACTORIES[name](augmentation_ratio=0.3, generator=torch.Generator().manual_seed(0))
    x = make_images((3, 12, 12))
    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=0.0), t])
    hits = sum(not torch.equal(x, pipeline(x)) for _ in range(400))
    assert abs(hits - 120) < 37  # Binomial(400, 0.3): sd 9.2, four sd
    assert all(not torch.equal(x, FACTORIES[name](augmentation_ratio=1.0)(x)) for _ in range(5))
    assert torch.equal(x, FACTORIES[name](augmentation_ratio=0.0)(x))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_different_seed_different(name: str) -> None:
    x = make_images((6, 3, 32, 32))

    def run(seed: int) -> torch.Tensor:
        return FACTORIES[name](generator=torch.Generator().manual_seed(seed))(x)

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))
    torch.manual_seed(11)
    a = FACTORIES[name]()(x)
    torch.manual_seed(11)
    b = FACTORIES[name]()(x)
    assert torch.equal(a, b)


@pytest.mark.compile
@pytest.mark.parametrize("name", NAMES)
def test_torch_compile_fullgraph_matches_eager(name: str) -> None:
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    transform_type = type(FACTORIES[name]())
    # return_labels=True also checks the base's labelled forward under fullgraph compilation.
    labelled = "return_labels" in inspect.signature(transform_type).parameters
    t = FACTORIES[name](augmentation_ratio=0.5, **({"return_labels": True} if labelled else {}))
    compiled = torch.compile(t, fullgraph=True, backend=COMPILE_BACKENDS[name])
    # Inductor has its own RNG; fallback_random makes compiled random ops draw like eager ones.
    with inductor_config.patch(fallback_random=True):
        for dtype in (torch.float32, torch.uint8):
            x = make_images((5, 3, 20, 28), dtype)
            torch.manual_seed(0)
            eager = t(x)
            torch.manual_seed(0)
            out = compiled(x)
            if labelled:
                (eager, eager_labels), (out, labels) = eager, out
                assert labels.dtype == torch.int64 and torch.equal(labels, eager_labels) and int(labels.sum()) == 3
            # Same pixels changed; values equal up to the summation order of means and resampling
            # matmuls (uint8: one level where a value sits on a rounding boundary).
            assert torch.equal(changed_pixels(x, out), changed_pixels(x, eager))
            tol = 1.0 if dtype == torch.uint8 else 1e-5
            torch.testing.assert_close(out.double(), eager.double(), rtol=0, atol=tol)
            assert changed_pixels(x, out).any()


@pytest.mark.compile
@pytest.mark.parametrize("name", [*NAMES, *MIXING_CASES])
def test_torch_compile_with_a_changing_batch_size(name: str) -> None:
    """The last batch of an epoch is smaller: Dynamo then retraces once with a symbolic batch size
    (automatic dynamic shapes), which every random draw must support, and later sizes reuse that graph."""
    from torch._dynamo.testing import CompileCounter

    from maskmix.params import num_selected

    mixing = name in MIXING_CASES
    torch._dynamo.reset()
    t = {**CASES, **MIXING_CASES}[name].build(augmentation_ratio=0.5)
    counter = CompileCounter()
    compiled = torch.compile(t, fullgraph=True, backend=counter)
    for batch_size in (8, 5, 3):
        x = make_images((batch_size, 3, 20, 24))
        out = compiled(x, torch.arange(batch_size) % 3) if mixing else compiled(x)
        images = out[0] if isinstance(out, tuple) else out
        assert images.shape == x.shape and images.dtype == x.dtype
        changed = changed_pixels(x, images).flatten(1).any(1)
        assert int(changed.sum()) == num_selected(0.5, batch_size)
    assert counter.frame_count == 2  # the static first graph, then one dynamic graph for every other size


def test_torch_compile_with_generator_explains_itself() -> None:
    torch._dynamo.reset()
    t = RandomCutout(generator=torch.Generator().manual_seed(0))
    with pytest.raises(Exception, match=r"torch\.compile cannot trace a torch\.Generator"):
        torch.compile(t, fullgraph=True)(make_images((2, 3, 8, 8)))


@pytest.mark.parametrize("name", NAMES)
def test_call_time_validation(name: str) -> None:
    t = FACTORIES[name]()
    cls = type(t).__name__
    rank_message = rf"{cls}: images must be \(\.\.\., C, H, W\) with at least 3 dims; got shape \(8, 8\)"
    with pytest.raises(ValueError, match=rank_message):
        t(torch.rand(8, 8))
    for dtype in (torch.int32, torch.bool, torch.complex64, torch.int64, torch.int8):
        dtype_message = rf"{cls}: images must have dtype float16, bfloat16, float32, float64 or uint8; got {dtype}"
        with pytest.raises(TypeError, match=dtype_message):
            t(torch.zeros(2, 3, 8, 8, dtype=dtype))
    with pytest.raises(TypeError, match=rf"{cls}: expected image tensors, got a PIL image"):
        t(PIL.Image.new("RGB", (8, 8)))
    with pytest.raises(ValueError, match=rf"{cls}: generator is on cpu but the images are on meta"):
        FACTORIES[name](generator=torch.Generator())(torch.zeros(2, 3, 8, 8, device="meta"))
    with pytest.raises(TypeError, match=rf"{cls}: generator must be a torch.Generator or None; got 3"):
        FACTORIES[name](generator=3)
    with pytest.raises(ValueError, match=rf"{cls}: all images of a sample must share batch size, height and width"):
        t(tv_tensors.Image(torch.rand(2, 3, 8, 8)), tv_tensors.Image(torch.rand(2, 3, 9, 8)))


def test_constant_fill_must_match_channels() -> None:
    t = RandomCutout(fill_method=(0.1, 0.2, 0.3))
    assert t(make_images((2, 3, 8, 8))).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"RandomCutout: fill_method has 3 values but the images have 1 channel\(s\)"):
        t(make_images((2, 1, 8, 8)))


def test_values_outside_range_survive_outside_the_region() -> None:
    x = torch.full((4, 3, 16, 16), 7.5)
    x[:, :, ::2] = -3.25
    x[:, 0, 0, 1] = float("nan")
    out, params = run_with_params(RandomCutout(patch_area=0.1), x)
    region = torch.zeros(4, 16, 16, dtype=torch.bool)
    for b in range(4):
        top, left = int(params["top"][b]), int(params["left"][b])
        h, w = int(params["height"][b]), int(params["width"][b])
        region[b, top : top + h, left : left + w] = True
    region = region.unsqueeze(1).expand_as(x)
    # Outside the square: untouched, NaN included (no clipping, no quantisation).
    torch.testing.assert_close(out[~region], x[~region], rtol=0, atol=0, equal_nan=True)
    assert torch.all(out[region] == 0.0)


def test_uint8_fills_are_rounded_and_saturated() -> None:
    x = make_images((64, 3, 8, 8), torch.uint8)
    out = RandomCutout(fill_method="normal", patch_area=0.5)(x)
    region = changed_pixels(x, out)
    filled = out.permute(0, 2, 3, 1)[region]
    # Standard-normal values rounded: small non-negative integers, never wrapped around to ~255.
    assert filled.max() <= 5
    out = RandomCutout(fill_method="white", pixels_range=(0, 300))(x)
    assert out.max() == 255
    out = RandomCutout(fill_method="gray")(x)
    assert set(out.permute(0, 2, 3, 1)[changed_pixels(x, out)].unique().tolist()) == {128}


def test_extra_repr_lists_parameters() -> None:
    text = repr(RandomErasing(patch_count=(1, 2)))
    assert "patch_count=(1, 2)" in text and "patch_area=(0.05, 0.3)" in text
