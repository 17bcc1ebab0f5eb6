"""The conventions only torch has, over the registry (design §Conventions).

Every named configuration (``spec.variants``) of every strategy torch implements, the mixing ones
(called with labels) included: leading dims and single images, plain tensors and tv_tensors,
torchvision composition and calling conventions, the global seed, ``torch.compile`` (against
eager, and with a changing batch size) and call-time validation. The conventions both frameworks
keep (fraction control, pass-through, dtypes, tiny batches, seeding) are in
``test_conventions.py``; call-time errors in ``test_call_errors.py`` (both frameworks) and
``tests/test_bad_input.py`` (torch only); each strategy's pixel semantics in
``tests/strategies/``."""

from __future__ import annotations

import collections
import inspect
import warnings
from typing import Any

import PIL.Image
import pytest
import torch
from helpers import ALL_DTYPES, changed_pixels, make_images, run_with_params
from registry_cases import NUM_CLASSES, variant_cases
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomCutout, RandomErasing

#: Every configuration of every strategy torch implements (the registry's variants). In those that
#: map images to images, an augmented image (of at least 2x2 random pixels) always changes.
ALL_CASES = variant_cases("torch")
CASES = {name: case for name, case in ALL_CASES.items() if not case.mixes}
#: The configurations that mix a partner image and labels in: called with ``(images, labels)``.
MIXING_CASES = {name: case for name, case in ALL_CASES.items() if case.mixes}
FACTORIES = {name: case.build for name, case in ALL_CASES.items()}
NAMES = list(CASES)
ALL_NAMES = list(ALL_CASES)
#: Inductor code generation costs seconds per graph on CPU: the resampling strategies (matmul
#: graphs Inductor mostly hands to ATen) are captured whole with aot_eager, which still proves
#: fullgraph tracing, except the mixed thumbnail which goes through Inductor.
COMPILE_BACKENDS = dict.fromkeys(ALL_NAMES, "inductor") | dict.fromkeys(("cutblur", "cutpaste", "thumbnail"),
                                                                        "aot_eager")

#: Each dtype is another Dynamo trace and Inductor graph. Every configuration compiles in float32;
#: uint8 (the base's conversion, rounding and saturation around the strategy) is compiled for the
#: first configuration of each strategy, and of its mixing form (Cut-Thumbnail's mix_images): the
#: other configurations change the sampling, the same code whatever the image dtype (eager uint8
#: fills: tests/strategies/test_fills.py). The masking strategies share all of their uint8 code
#: under compile (the base's fill and one `where` on a boolean keep mask): the first one stands
#: for the family.
UINT8_COMPILED = {next(name for name, c in ALL_CASES.items()
                       if (c.spec is case.spec or c.spec.family == case.spec.family == "masking")
                       and c.mixes == case.mixes)
                  for case in ALL_CASES.values()}
COMPILE_DTYPES = {name: (torch.float32, torch.uint8) if name in UINT8_COMPILED else (torch.float32,)
                  for name in ALL_CASES}


def labels_for(batch: int) -> torch.Tensor:
    return torch.arange(batch) % NUM_CLASSES


def call(name: str, transform, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images (and the soft labels of a mixing configuration) of one call."""
    if ALL_CASES[name].mixes:
        return transform(x, labels_for(x.shape[0]))  # a batch of images, or of clips (a Video)
    return transform(x), None


#: The layouts beyond a (B, C, H, W) batch (those are in test_conventions.py): one image, leading dims.
SHAPES = {"3d": (3, 17, 13), "5d": (2, 3, 2, 16, 16), "5d_empty": (0, 2, 3, 5, 5)}


@pytest.mark.parametrize("name", NAMES)  # a mixing transform needs a (B, C, H, W) batch
@pytest.mark.parametrize("layout", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_leading_dims_are_flattened_and_restored(name: str, layout: str, dtype: torch.dtype) -> None:
    shape = SHAPES[layout]
    x = make_images(shape, dtype)
    before = x.clone()
    out = FACTORIES[name]()(x)
    out = out[0] if isinstance(out, tuple) else out
    assert type(out) is torch.Tensor
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.data_ptr() != x.data_ptr() or x.numel() == 0
    assert torch.equal(x, before), "the input was modified in place"
    changed = changed_pixels(x.reshape(-1, *shape[-3:]), out.reshape(-1, *shape[-3:])).flatten(1).any(dim=1)
    assert changed.all(), "every image is augmented at ratio 1"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_tv_tensors_keep_their_type(name: str) -> None:
    image = tv_tensors.Image(make_images((2, 3, 16, 16)))
    video = tv_tensors.Video(make_images((2, 4, 3, 16, 16)))
    mask = tv_tensors.Mask(torch.ones(2, 16, 16, dtype=torch.uint8))
    t = FACTORIES[name]()
    if ALL_CASES[name].mixes:  # a Video is a batch of clips, one label each
        out_image, _ = call(name, t, image)
        out_video, soft = call(name, t, video)
        assert isinstance(out_image, tv_tensors.Image) and out_image.shape == image.shape
        assert isinstance(out_video, tv_tensors.Video) and out_video.shape == video.shape and soft.shape[0] == 2
        return
    out_image, out_mask = t(image, mask)
    assert isinstance(out_image, tv_tensors.Image) and out_image.shape == image.shape
    if t.dense_targets == "keep":  # the rest: tests/contracts/test_torch_dense_targets.py
        assert out_mask is mask, "segmentation masks pass through untouched"
    assert isinstance(out_mask, tv_tensors.Mask) and out_mask.shape == mask.shape
    out_video = t(video)
    assert isinstance(out_video, tv_tensors.Video) and out_video.shape == video.shape
    assert not torch.equal(out_video, video)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_inside_v2_compose_with_torchvision(name: str) -> None:
    if ALL_CASES[name].mixes:
        batch = tv_tensors.Image(make_images((4, 3, 24, 24), torch.uint8))
        to_float = v2.ToDtype(torch.float32, scale=True)
        pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1.0), FACTORIES[name](), to_float])
        out, soft = pipeline(batch, labels_for(4))
        assert isinstance(out, tv_tensors.Image) and out.dtype == torch.float32 and out.shape == batch.shape
        assert soft.shape == (4, NUM_CLASSES)
        return
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


#: One configuration per strategy that maps images to images (its first variant).
FIRSTS = [name for name, case in CASES.items() if name == next(iter(case.spec.variants))]


@pytest.mark.parametrize("name", list(MIXING_CASES))
def test_mixing_calling_conventions(name: str) -> None:
    """Tuples with extra items, lists, dicts with other keys, tv_tensors and v2.Compose, as
    torchvision's CutMix/MixUp take them; the input sample is not modified."""
    x = make_images((6, 3, 12, 12))
    y = labels_for(6)
    t = FACTORIES[name]()
    out = t((x, y, "meta"))
    assert isinstance(out, tuple) and out[2] == "meta" and out[1].shape == (6, NUM_CLASSES)
    out = t([x, y])
    assert isinstance(out, list) and out[0].shape == x.shape
    batch = {"images": x, "labels": y, "ids": torch.arange(6)}
    out = t(batch)
    assert set(out) == {"images", "labels", "ids"} and out["labels"].shape == (6, NUM_CLASSES)
    assert batch["labels"] is y and out["ids"] is batch["ids"], "the input dict is not modified"
    out_image, _ = t(tv_tensors.Image(x), y)
    assert isinstance(out_image, tv_tensors.Image)
    # The batch structures of the training pipeline (maskmix._structure): a namedtuple stays one,
    # a dict subclass keeps its type and state.
    Batch = collections.namedtuple("Batch", "images labels ids")
    out = t(Batch(x, y, "ids"))
    assert type(out) is Batch and out.ids == "ids" and out.labels.shape == (6, NUM_CLASSES)
    out = t(collections.defaultdict(list, image=x, label=y))
    assert type(out) is collections.defaultdict and out.default_factory is list and out["label"].shape[1] == 3
    before = x.clone()
    out_x, out_y = v2.Compose([v2.RandomHorizontalFlip(p=1.0), t])(x, y)
    assert out_x.shape == x.shape and out_y.shape == (6, NUM_CLASSES) and torch.equal(x, before)


@pytest.mark.parametrize("name", FIRSTS)
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


@pytest.mark.parametrize("name", ALL_NAMES)
def test_the_global_seed_reproduces_a_call(name: str) -> None:
    """Without a generator the call draws from torch's global RNG: ``torch.manual_seed`` reproduces
    it (generator seeding: test_conventions.py)."""
    x = make_images((6, 3, 32, 32))
    torch.manual_seed(11)
    a, a_soft = call(name, FACTORIES[name](), x)
    torch.manual_seed(11)
    b, b_soft = call(name, FACTORIES[name](), x)
    assert torch.equal(a, b) and (a_soft is None or torch.equal(a_soft, b_soft))


@pytest.mark.compile
@pytest.mark.parametrize("name", ALL_NAMES)
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
        for dtype in COMPILE_DTYPES[name]:
            x = make_images((5, 3, 20, 28), dtype)
            args = (x, labels_for(5)) if ALL_CASES[name].mixes else (x,)
            torch.manual_seed(0)
            eager = t(*args)
            torch.manual_seed(0)
            out = compiled(*args)
            if ALL_CASES[name].mixes:
                (eager, eager_soft), (out, soft) = eager, out
                torch.testing.assert_close(soft, eager_soft, rtol=0, atol=1e-6)
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
@pytest.mark.parametrize("name", ALL_NAMES)
def test_torch_compile_with_a_changing_batch_size(name: str) -> None:
    """The last batch of an epoch is smaller: Dynamo then retraces once with a symbolic batch size
    (automatic dynamic shapes), which every random draw must support, and later sizes reuse that graph."""
    from torch._dynamo.testing import CompileCounter

    from maskmix.params import num_selected

    mixing = name in MIXING_CASES
    torch._dynamo.reset()
    torch.manual_seed(0)
    t = ALL_CASES[name].build(augmentation_ratio=0.5)
    counter = CompileCounter()
    compiled = torch.compile(t, fullgraph=True, backend=counter)
    for batch_size in (8, 5, 3):
        x = make_images((batch_size, 3, 20, 24))
        out = compiled(x, torch.arange(batch_size) % 3) if mixing else compiled(x)
        images = out[0] if isinstance(out, tuple) else out
        assert images.shape == x.shape and images.dtype == x.dtype
        changed = changed_pixels(x, images).flatten(1).any(1)
        if mixing:  # a mixed image may keep its pixels (an empty box, a lambda of 1 in float32)
            assert 0 < int(changed.sum()) <= num_selected(0.5, batch_size)
        else:
            assert int(changed.sum()) == num_selected(0.5, batch_size)
    assert counter.frame_count == 2  # the static first graph, then one dynamic graph for every other size


class _Augmenting(torch.nn.Module):
    """A transform as the first module of a model: what ``torch.export`` is given."""

    def __init__(self, transform: torch.nn.Module, mixes: bool) -> None:
        super().__init__()
        self.transform, self.mixes = transform, mixes

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> Any:
        return self.transform(x, labels) if self.mixes else self.transform(x)


@pytest.mark.compile
@pytest.mark.parametrize("name", ALL_NAMES)
def test_torch_export_with_a_dynamic_batch_size(name: str) -> None:
    """``torch.export`` with a ``Dim`` on the batch: the exact count's Python comparisons, the
    partner shift's ``int(B - 1)`` and Cut-Thumbnail's table-or-not choice guarded or specialised
    the program to the traced batch size (a "Constraints violated" export error); every size of
    the range runs, with exact counts."""
    batch = torch.export.Dim("batch", min=2, max=64)
    model = _Augmenting(FACTORIES[name](augmentation_ratio=0.5), ALL_CASES[name].mixes)
    program = torch.export.export(model, (make_images((4, 3, 16, 16)), labels_for(4)),
                                  dynamic_shapes=({0: batch}, {0: batch}))
    for size in (2, 5, 9):
        x = make_images((size, 3, 16, 16), seed=size)
        out, soft = (program.module()(x, labels_for(size)), None) if not ALL_CASES[name].mixes else \
            program.module()(x, labels_for(size))
        assert out.shape == x.shape
        if soft is None:
            assert int((out != x).flatten(1).any(1).sum()) == (size + 1) // 2  # round(0.5 B), halves up
        else:
            assert soft.shape == (size, NUM_CLASSES)
            torch.testing.assert_close(soft.sum(1), torch.ones(size))


@pytest.mark.parametrize("name", NAMES)
def test_torch_jit_script_explains_itself(name: str) -> None:
    """torchvision's refusal pointed to a functional API that maskmix does not have for scripting."""
    t = FACTORIES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
        with pytest.raises(RuntimeError, match=rf"^{type(t).__name__}: torch\.jit\.script cannot script maskmix "
                                               r"transforms .* Compile the step with torch\.compile instead"):
            torch.jit.script(t)


def test_torch_jit_script_of_a_pipeline_explains_itself() -> None:
    """The pipeline is a plain object: torch.jit.script failed on it with a TypeError of its own."""
    pipeline = MaskMixPipeline([RandomCutout()], RandomCutMix(), num_classes=NUM_CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(RuntimeError, match=r"^MaskMixPipeline: torch\.jit\.script cannot script maskmix"):
            torch.jit.script(pipeline)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_torch_jit_trace_explains_itself(name: str) -> None:
    """A trace failed on an internal assertion of torch's alias analysis ("please report a bug to
    PyTorch"); had it run, it would have kept one call's draws as constants."""
    transform = FACTORIES[name]()
    images = make_images((4, 3, 8, 8))

    def call(x: torch.Tensor) -> torch.Tensor:
        out = transform(x, labels_for(4)) if ALL_CASES[name].mixes else transform(x)
        return out[0] if isinstance(out, tuple) else out

    with pytest.raises(RuntimeError, match=rf"^{type(transform).__name__}: torch\.jit\.trace cannot trace maskmix "
                                           r"transforms .* Compile the step with torch\.compile instead"):
        torch.jit.trace(call, (images,), check_trace=False)
    pipeline = MaskMixPipeline([RandomCutout()], seed=0)
    with pytest.raises(RuntimeError, match=r"^MaskMixPipeline: torch\.jit\.trace cannot trace maskmix"):
        torch.jit.trace(lambda x: pipeline(x), (images,), check_trace=False)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_torch_fx_symbolic_trace_explains_itself(name: str) -> None:
    """``torch.fx.symbolic_trace`` (and torchvision's ``create_feature_extractor``) hands the
    transform proxies: the refusal said no image was found and to pass tensors."""
    transform = FACTORIES[name]()
    match = rf"^{type(transform).__name__}: torch\.fx\.symbolic_trace cannot trace maskmix transforms"
    with pytest.raises(TypeError, match=match):
        torch.fx.symbolic_trace(_Augmenting(transform, ALL_CASES[name].mixes))

    class Piped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pipeline = MaskMixPipeline([RandomCutout()], seed=0)

        def forward(self, x: torch.Tensor) -> Any:
            return self.pipeline(x)

    with pytest.raises(TypeError, match=r"^MaskMixPipeline: torch\.fx\.symbolic_trace cannot trace"):
        torch.fx.symbolic_trace(Piped())


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_autocast_changes_no_pixel(name: str, dtype: torch.dtype) -> None:
    """The user's bfloat16 autocast region around the augmentation: CutBlur's and Cut-Thumbnail's
    resampling matmuls ran in bfloat16 and moved float32 pixels by up to 0.005 (uint8 by a level)."""
    images = (make_images((6, 3, 16, 16)) * 255).to(dtype)

    def run() -> tuple[torch.Tensor, ...]:
        transform = FACTORIES[name](generator=torch.Generator().manual_seed(3))
        out = transform(images, labels_for(6)) if ALL_CASES[name].mixes else transform(images)
        return out if isinstance(out, tuple) else (out,)

    expected = run()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = run()
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8], ids=str)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_a_strided_batch_gives_the_standard_layouts_bits(name: str, dtype: torch.dtype) -> None:
    """The same values laid out column-major (neither contiguous nor channels_last): reductions
    and matmuls run on the standard layout, so the output has its bits. ``to(dtype,
    memory_format=contiguous_format)`` returns such a float batch as it is, and the mean fills,
    CutBlur and Cut-Thumbnail summed it in another order (last-bit differences)."""
    images = (make_images((4, 3, 20, 24)) * 255).to(dtype)
    strided = images.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert torch.equal(strided, images) and not strided.is_contiguous()
    assert not strided.is_contiguous(memory_format=torch.channels_last)

    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        transform = FACTORIES[name](generator=torch.Generator().manual_seed(3))
        out = transform(x, labels_for(4)) if ALL_CASES[name].mixes else transform(x)
        return out if isinstance(out, tuple) else (out,)

    for got, want in zip(run(strided), run(images), strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("default", [torch.bfloat16, torch.float16, torch.float64], ids=str)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_the_default_dtype_changes_no_draw(name: str, default: torch.dtype) -> None:
    """Lightning's ``precision="bf16-true"``/``"16-true"`` runs ``training_step`` with torch's
    default dtype set to bfloat16/float16 (and a user may call ``torch.set_default_dtype``): draws
    made in the default dtype crashed Beta sampling (no bfloat16 gamma on CPU) and quantised the
    rest (a Mixup weight of bfloat16 resolution, coarser selection and box draws)."""
    images = make_images((6, 3, 16, 16))

    def run() -> tuple[torch.Tensor, ...]:
        transform = FACTORIES[name](generator=torch.Generator().manual_seed(3))
        out = transform(images, labels_for(6)) if ALL_CASES[name].mixes else transform(images)
        return out if isinstance(out, tuple) else (out,)

    expected = run()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        got = run()
    finally:
        torch.set_default_dtype(previous)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_an_assigned_generator_is_checked_as_in_the_constructor(name: str) -> None:
    t = FACTORIES[name]()
    with pytest.raises(TypeError, match=rf"^{type(t).__name__}: generator must be a torch\.Generator or None; got 5$"):
        t.generator = 5  # failed in the next call with "'int' object has no attribute 'device'"
    t.generator = torch.Generator().manual_seed(0)
    t.generator = None


def test_the_pipeline_smooths_one_label_per_video_clip() -> None:
    """It counted frames as the batch without a mix ("labels have batch size 4 but the images have 8")."""
    clips, labels = tv_tensors.Video(torch.rand(4, 2, 3, 8, 8)), torch.tensor([0, 2, 1, 0])
    out, soft = MaskMixPipeline([RandomErasing()], label_smoothing=0.3, num_classes=3, seed=0)((clips, labels))
    assert isinstance(out, tv_tensors.Video) and out.shape == clips.shape
    torch.testing.assert_close(soft, torch.eye(3)[labels] * 0.7 + 0.1, rtol=0, atol=1e-6)


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
    # An Image (B * T, C, H, W) next to a Video (B, T, C, H, W): one draw per image cannot also be
    # one per clip (the frames got draws of their own, or the images shared them in groups of T).
    image, video = tv_tensors.Image(torch.rand(8, 3, 8, 8)), tv_tensors.Video(torch.rand(2, 4, 3, 8, 8))
    for sample in ((image, video), {"clip": video, "frames": image}):
        with pytest.raises(ValueError, match=rf"{cls}: the images of a sample must be all images or all clips"):
            t(sample)


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


def test_uint8_fills_are_rounded_and_options_uint8_cannot_hold_are_refused() -> None:
    """Standard-normal fills rounded to 0, 1 or 2, and a pixels_range outside 0..255 (or with
    fractional ends) saturated or rounded the fills to a few levels, silently: both are refused."""
    x = make_images((64, 3, 8, 8), torch.uint8)
    for method in ("normal", "normal_per_patch"):
        with pytest.raises(ValueError, match=rf"RandomCutout: fill_method '{method}' draws standard-normal values, "
                                             "which uint8 images cannot hold"):
            RandomCutout(fill_method=method)(x)
    for bad in ((0, 300), (-2.12, 2.64), (0, 0.5)):
        with pytest.raises(ValueError, match=r"RandomCutout: pixels_range \(.*\) cannot describe uint8 images"):
            RandomCutout(fill_method="white", pixels_range=bad)(x)
    out = RandomCutout(fill_method="white", pixels_range=(0, 1))(x)  # binary images, 0 and 1
    assert set(out.permute(0, 2, 3, 1)[changed_pixels(x, out)].unique().tolist()) == {1}
    out = RandomCutout(fill_method="gray")(x)
    assert set(out.permute(0, 2, 3, 1)[changed_pixels(x, out)].unique().tolist()) == {128}
    RandomCutout(fill_method="normal", pixels_range=(-2.0, 2.0))(x.float())  # floats: fine
    # A strategy that does not read pixels_range (accepted and unused) does not refuse it.
    RandomCutMix(num_classes=3, pixels_range=(-1.0, 1.0))(x, torch.arange(64) % 3)


def test_extra_repr_lists_parameters() -> None:
    text = repr(RandomErasing(patch_count=(1, 2)))
    assert "patch_count=(1, 2)" in text and "patch_area=(0.05, 0.3)" in text
    assert "num_splits" not in text and "generator" not in text
    # What changes the draws but is not a plain public attribute: timm's num_splits (the first
    # half of the batch never erased), the generator, a callable labels_getter.
    assert "num_splits=2" in repr(RandomErasing.from_timm(num_splits=2))
    seeded = RandomErasing(generator=torch.Generator().manual_seed(7))
    assert "generator=torch.Generator(initial_seed=7)" in repr(seeded)

    def pick(sample):
        return sample[1]

    assert "labels_getter=test_extra_repr_lists_parameters.<locals>.pick" in repr(RandomCutMix(labels_getter=pick))


def test_the_pipeline_takes_images_and_labels_as_torchvisions_transforms_do() -> None:
    """``pipeline(images, labels)`` was a TypeError ("takes 2 positional arguments but 3 were given"),
    so the pipeline could not replace ``cutmix(images, labels)`` nor sit in ``v2.Compose``."""
    images, labels = make_images((6, 3, 8, 8)), torch.tensor([0, 1, 2, 0, 1, 2])
    expected = MaskMixPipeline([RandomCutout()], RandomCutMix(), num_classes=NUM_CLASSES, seed=3)((images, labels))
    for call in (lambda p: p(images, labels), lambda p: v2.Compose([v2.Identity(), p])(images, labels),
                 lambda p: v2.RandomChoice([p])(images, labels)):
        out = call(MaskMixPipeline([RandomCutout()], RandomCutMix(), num_classes=NUM_CLASSES, seed=3))
        assert isinstance(out, tuple) and len(out) == 2
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    extra = MaskMixPipeline(label_smoothing=0.1, num_classes=NUM_CLASSES, seed=0)(images, labels, "names")
    assert extra[2] == "names" and extra[1].shape == (6, NUM_CLASSES)
    # A rank given positionally (it is keyword-only) would be a masking pipeline's "labels", passed through.
    with pytest.raises(TypeError, match=r"^MaskMixPipeline: got 1 as the second positional input \(the labels\); "
                                        r"rank and epoch are keyword-only"):
        MaskMixPipeline([RandomCutout()], seed=0)(images, 1)
