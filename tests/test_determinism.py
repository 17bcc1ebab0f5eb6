"""Determinism of the torch transforms (docs/determinism.md states what these tests establish).

* The same ``torch.Generator`` seed (or ``torch.manual_seed``) and the same input give bit-identical
  outputs and labels, for every strategy: in one process, and in a fresh process with another
  number of CPU threads.
* ``torch.compile(fullgraph=True)`` with ``torch._inductor.config.fallback_random = True`` draws
  exactly the eager random numbers: the strategies that only copy and fill pixels are
  bit-identical to eager; those that compute new values (Mixup's blend, the resampling of
  CutBlur and Cut-Thumbnail, CutPaste's colour jitter) agree to within a few float32 ulps,
  because Inductor fuses and reorders the arithmetic. A compiled transform is reproducible from
  call to call with the same seed, with or without ``fallback_random``.
* CUDA variants run when a GPU is present.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_images
from property_domains import DRAW_EVERYTHING, names

from maskmix import registry

REPO = Path(__file__).resolve().parents[1]

CONFIGS = {name: config for name, config in DRAW_EVERYTHING.items() if name in names("torch")}

#: The strategies whose compiled output is bit-identical to eager (pure copies, fills, selections).
EXACT_UNDER_COMPILE = {"RandomCutout", "RandomErasing", "RandomHideAndSeek", "RandomGridMask", "RandomCutMix",
                       "RandomCutSwap"}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def is_mixing(name: str) -> bool:
    return "num_classes" in CONFIGS[name]


def run(name: str, images: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """One call of a fresh transform; every output (images, labels, is_augmented) as a tuple."""
    transform = registry.implementation(name, "torch")(generator=generator, **CONFIGS[name])
    if is_mixing(name):
        out = transform(images, torch.arange(images.shape[0], device=images.device) % 3)
    else:
        out = transform(images)
    return out if isinstance(out, tuple) else (out,)


def inputs(device: str = "cpu") -> torch.Tensor:
    return make_images((6, 3, 20, 24), seed=1, device=device)


def as_bits(t: torch.Tensor) -> torch.Tensor:
    """Floats as their bytes (bit-for-bit comparison, NaN included), other tensors as they are."""
    t = t.detach().contiguous()
    return t.view(torch.uint8) if t.is_floating_point() else t


def digest(outputs: tuple[torch.Tensor, ...]) -> str:
    sha = hashlib.sha256()
    for t in outputs:
        sha.update(as_bits(t).cpu().numpy().tobytes())
    return sha.hexdigest()


def digests() -> dict[str, str]:
    """SHA-256 of every strategy's outputs for a fixed input and generator seed (also run in a
    subprocess by :func:`test_identical_in_a_fresh_process`)."""
    return {name: digest(run(name, inputs(), torch.Generator().manual_seed(7))) for name in CONFIGS}


def bits_equal(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(as_bits(x), as_bits(y))
                                    for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CONFIGS)
def test_same_seed_same_output(name: str, device: str) -> None:
    x = inputs(device)
    a = run(name, x, torch.Generator(device).manual_seed(3))
    b = run(name, x, torch.Generator(device).manual_seed(3))
    assert bits_equal(a, b)
    assert not torch.equal(a[0], run(name, x, torch.Generator(device).manual_seed(4))[0])
    # One generator advances from call to call: the second call draws new parameters.
    generator = torch.Generator(device).manual_seed(3)
    first, second = run(name, x, generator), run(name, x, generator)
    assert bits_equal(first, a) and not torch.equal(second[0], first[0])
    # The global RNG of the device, seeded, is reproducible too.
    torch.manual_seed(11)
    c = run(name, x)
    torch.manual_seed(11)
    assert bits_equal(c, run(name, x))


@pytest.mark.slow
def test_identical_in_a_fresh_process() -> None:
    """Another interpreter, one CPU thread (this one uses the default count): same bits."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    script = "import json, torch, test_determinism as t; torch.set_num_threads(1); print(json.dumps(t.digests()))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == digests()


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CONFIGS)
def test_compile_with_fallback_random_draws_the_eager_numbers(name: str, device: str) -> None:
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    x = inputs(device)
    compiled = torch.compile(lambda images: run(name, images), fullgraph=True)
    with inductor_config.patch(fallback_random=True):
        torch.manual_seed(0)
        eager = run(name, x)
        torch.manual_seed(0)
        once = compiled(x)
        torch.manual_seed(0)
        twice = compiled(x)
    assert bits_equal(once, twice), "the compiled transform is not reproducible"
    if name in EXACT_UNDER_COMPILE:
        assert bits_equal(once, eager)
    else:
        # Same draws (same integer outputs, same changed pixels), values within a few ulps.
        for a, b in zip(once, eager, strict=True):
            if a.is_floating_point():
                torch.testing.assert_close(a, b, rtol=4e-7, atol=4e-7)
            else:
                assert torch.equal(a, b)
        assert torch.equal(once[0] != x, eager[0] != x)


@pytest.mark.slow
@pytest.mark.compile
def test_compile_without_fallback_random_is_reproducible() -> None:
    """Without ``fallback_random`` Inductor draws with its own generator (other numbers than
    eager), seeded from the global RNG: the same ``torch.manual_seed`` gives the same output."""
    torch._dynamo.reset()
    x = inputs()
    compiled = torch.compile(lambda images: run("RandomCutout", images), fullgraph=True)
    torch.manual_seed(0)
    once = compiled(x)
    torch.manual_seed(0)
    assert bits_equal(once, compiled(x))
    torch.manual_seed(1)
    assert not torch.equal(once[0], compiled(x)[0])


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_algorithms_mode_changes_nothing(device: str) -> None:
    """Under ``torch.use_deterministic_algorithms(True)`` every strategy runs (no op without a
    deterministic implementation) and gives the same bits as without it."""
    x = inputs(device)
    expected = {name: run(name, x, torch.Generator(device).manual_seed(2)) for name in CONFIGS}
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        for name in CONFIGS:
            assert bits_equal(run(name, x, torch.Generator(device).manual_seed(2)), expected[name]), name
    finally:
        torch.use_deterministic_algorithms(before)


class _ErasedSamples(torch.utils.data.Dataset):
    """Four blank images, each erased by one transform with its own seeded generator."""

    def __init__(self) -> None:
        from maskmix.torch import RandomErasing

        self.transform = RandomErasing(fill_method=5.0, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(torch.zeros(3, 16, 16))


class _TwiceErasedSamples(torch.utils.data.Dataset):
    """Blank images erased by two transforms that share one generator (fills 1 and 2)."""

    def __init__(self) -> None:
        from torchvision.transforms import v2

        from maskmix.torch import RandomErasing

        shared = torch.Generator().manual_seed(0)
        self.transform = v2.Compose([RandomErasing(fill_method=1.0, generator=shared),
                                     RandomErasing(fill_method=2.0, generator=shared)])

    def __len__(self) -> int:
        return 32

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(torch.zeros(3, 16, 16))


def test_transforms_sharing_a_generator_take_turns_on_it_in_workers() -> None:
    """In a worker, each transform derived a stream of its own from the shared generator's seed:
    both drew the same rectangle, so the second erasing covered the first exactly in every
    sample (in the main process they take turns on the generator: about 1 sample in 100)."""
    torch.manual_seed(0)  # the workers' seeds
    loader = torch.utils.data.DataLoader(_TwiceErasedSamples(), batch_size=1, num_workers=2,
                                         multiprocessing_context="fork")
    covered = sum(int(not (batch[0] == 1.0).any()) for batch in loader)
    assert covered <= 4, covered


def test_a_transforms_own_generator_in_dataloader_workers() -> None:
    """Each worker held a copy of the generator in one state: every worker and every epoch drew
    the same boxes. Now each worker's stream derives from the generator's seed and the worker's,
    so samples differ across workers and epochs, and a run under torch.manual_seed repeats."""
    def epochs(count: int) -> list[list[torch.Tensor]]:
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(_ErasedSamples(), batch_size=1, num_workers=2,
                                             multiprocessing_context="fork")
        return [[batch[0] for batch in loader] for _ in range(count)]

    first, second = epochs(2)
    assert not torch.equal(first[0], first[1])  # sample 0 from worker 0, sample 1 from worker 1
    assert not all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    again = epochs(1)[0]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


class _ReseededSamples(torch.utils.data.Dataset):
    """Blank images erased by a transform whose generator the Dataset seeds per sample."""

    SEEDS = (7, 7, 8, 7, 7)

    def __init__(self) -> None:
        from maskmix.torch import RandomErasing

        self.generator = torch.Generator().manual_seed(0)
        self.transform = RandomErasing(fill_method=5.0, generator=self.generator)

    def __len__(self) -> int:
        return len(self.SEEDS)

    def __getitem__(self, index: int) -> torch.Tensor:
        self.generator.manual_seed(self.SEEDS[index])
        return self.transform(torch.zeros(3, 16, 16))


def test_a_generator_reseeded_per_sample_in_a_worker_restarts_its_stream() -> None:
    """A re-seed to the seed the generator already had went unseen in a worker (the stream went
    on): the same seed gave other boxes right after itself and the same ones after another seed."""
    torch.manual_seed(0)
    samples = [batch[0] for batch in torch.utils.data.DataLoader(
        _ReseededSamples(), batch_size=1, num_workers=1, multiprocessing_context="fork")]
    sevens = [sample for sample, seed in zip(samples, _ReseededSamples.SEEDS, strict=True) if seed == 7]
    assert all(torch.equal(sample, sevens[0]) for sample in sevens)
    assert not torch.equal(samples[2], sevens[0])  # seed 8


class _CroppedWithTheSameGenerator(_ReseededSamples):
    """The Dataset draws its own crop offset from the generator the transform holds."""

    def __getitem__(self, index: int) -> torch.Tensor:
        torch.randint(0, 4, (1,), generator=self.generator)  # e.g. a crop offset
        return self.transform(torch.zeros(3, 16, 16))


def test_a_generator_the_dataset_draws_from_in_a_worker_goes_on() -> None:
    """The re-seed check took any change of the generator's state for a re-seed: a Dataset that
    draws from the same generator restarted the worker's stream at every sample (the same box in
    every sample)."""
    torch.manual_seed(0)
    samples = [batch[0] for batch in torch.utils.data.DataLoader(
        _CroppedWithTheSameGenerator(), batch_size=1, num_workers=1, multiprocessing_context="fork")]
    assert not all(torch.equal(sample, samples[0]) for sample in samples[1:])


class _ReseededThenCropped(_ReseededSamples):
    """The Dataset re-seeds the generator per sample, then draws its own crop from it."""

    SEEDS = (7, 8, 7)

    def __getitem__(self, index: int) -> torch.Tensor:
        self.generator.manual_seed(self.SEEDS[index])
        torch.randint(0, 4, (1,), generator=self.generator)
        return self.transform(torch.zeros(3, 16, 16))


def test_a_new_seed_restarts_the_workers_stream_after_the_datasets_own_draws() -> None:
    """A generator re-seeded, then drawn from, is not fresh when the transform runs: its new seed
    still restarts the stream (the two samples seeded 7 match, the one seeded 8 differs)."""
    torch.manual_seed(0)
    first, eight, again = (batch[0] for batch in torch.utils.data.DataLoader(
        _ReseededThenCropped(), batch_size=1, num_workers=1, multiprocessing_context="fork"))
    assert torch.equal(first, again) and not torch.equal(first, eight)


class _BlankSamples(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.zeros(3, 16, 16), index % 10


class _PipelineCollate:
    """torchvision's batch-level pattern: the pipeline augments each collated batch in the worker."""

    def __init__(self) -> None:
        from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomErasing, RandomMixup

        self.pipeline = MaskMixPipeline([RandomErasing(fill_method=5.0, augmentation_ratio=1.0)],
                                        mix=[RandomCutMix(), RandomMixup()], num_classes=10, seed=0)

    def __call__(self, samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pipeline(torch.utils.data.default_collate(samples))


def test_a_seeded_pipeline_in_dataloader_workers() -> None:
    """Each worker held a copy of the pipeline at batch 0: with a seed, every worker and every
    epoch erased the same boxes and made the same mix choices. Now the worker's seed joins the
    pipeline's, so batches differ across workers and epochs, and a run under torch.manual_seed
    repeats."""
    def epochs(count: int) -> list[list[torch.Tensor]]:
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(_BlankSamples(), batch_size=2, num_workers=2,
                                             multiprocessing_context="fork", collate_fn=_PipelineCollate())
        return [[images for images, _ in loader] for _ in range(count)]

    first, second = epochs(2)
    assert not torch.equal(first[0], first[1])  # batch 0 from worker 0, batch 1 from worker 1
    assert not torch.equal(first[2], first[3])
    assert not any(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    again = epochs(1)[0]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


@pytest.mark.slow
def test_a_transforms_own_generator_in_spawned_dataloader_workers() -> None:
    """spawn and forkserver workers receive the Dataset through torch's multiprocessing pickler,
    which sent the generator's state as shared memory the worker failed to rebuild ("unable to
    resize file": the worker died). Pickled as its device and state bytes, it arrives."""
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(_ErasedSamples(), batch_size=1, num_workers=2,
                                         multiprocessing_context="spawn")
    samples = [batch[0] for batch in loader]
    assert len(samples) == 4 and all((s == 5.0).any() for s in samples)
    assert not torch.equal(samples[0], samples[1])  # worker 0, worker 1


class _GeneratorHolder:
    """A Dataset-like object holding a generator itself and through its transforms."""

    def __init__(self) -> None:
        from torchvision.transforms import v2

        from maskmix.torch import RandomCutout, RandomErasing

        self.gen = torch.Generator().manual_seed(7)
        torch.rand(3, generator=self.gen)  # a position other than the seed's
        self.transform = v2.Compose([RandomErasing(generator=self.gen), RandomCutout(generator=self.gen),
                                     RandomErasing(generator=torch.Generator().manual_seed(9))])


def test_generators_sent_to_workers_keep_their_state_and_sharing() -> None:
    """What multiprocessing's pickler sends a spawned worker: each generator rebuilt from its
    device and state (seed included), one generator however many objects hold it (a Dataset's
    own attribute and its transforms)."""
    import multiprocessing.reduction
    import pickle

    holder = _GeneratorHolder()
    sent = pickle.loads(multiprocessing.reduction.ForkingPickler.dumps(holder))
    first, second, own = (t.generator for t in sent.transform.transforms)
    assert sent.gen is first is second and first is not holder.gen
    assert torch.equal(first.get_state(), holder.gen.get_state()) and first.initial_seed() == 7
    assert own.initial_seed() == 9


def test_a_pipeline_called_without_a_rank_draws_the_process_groups_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DDP or Fabric loop of one's own that left ``rank`` out drew the same boxes and mixes on every
    rank (the default was 0); it now reads the rank of an initialised process group."""
    from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomErasing

    images, labels = make_images((8, 3, 16, 16)), torch.arange(8) % 4

    def run(**call: object) -> tuple[torch.Tensor, torch.Tensor]:
        return MaskMixPipeline([RandomErasing()], RandomCutMix(), num_classes=4, seed=1).augment(images, labels, **call)

    on_rank = {rank: run(rank=rank) for rank in (0, 1)}
    assert not torch.equal(on_rank[0][0], on_rank[1][0])
    torch.testing.assert_close(run(), on_rank[0], rtol=0, atol=0)  # no process group: rank 0
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 1)
    torch.testing.assert_close(run(), on_rank[1], rtol=0, atol=0)
    torch.testing.assert_close(MaskMixPipeline([RandomErasing()], RandomCutMix(), num_classes=4, seed=1)(
        images, labels), on_rank[1], rtol=0, atol=0)
    for bad, error in ((-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match=r"^MaskMixPipeline: rank must be an integer >= 0; got "):
            run(rank=bad)
