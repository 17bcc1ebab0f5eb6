"""Soak tests: thousands of random calls of every strategy, no failure, no memory growth.

Every call runs a transform/layer whose parameters were drawn from the valid domains
(``property_domains.random_kwargs``) on a random batch (batch size 0, 1, 2, 3 or 5; sizes 1x1,
1xN, Nx1, 2x2, H != W; 1-4 channels; every dtype; NaN pixels; index or soft labels; Keras: both
data formats). Every output must keep the input's shape and dtype and soft labels must sum to 1.

Each soak runs in a fresh Python process (a test worker's resident memory also moves with what
its earlier tests left behind). Memory: the calls run in two equal halves. The first half warms
up what legitimately grows to a bounded size (allocator arenas, kernel caches keyed by shape and
dtype: the draws use a finite set of image shapes); the growth over the second half is measured
as resident memory (``/proc/self/statm``) and as the number of objects Python's garbage
collector tracks.

* ``RSS_SLACK`` (32 MiB): measured growth over the second half is ~2 MiB for torch (5 500
  calls) and ~3-5 MiB for Keras without oneDNN (275 calls); the slack absorbs allocator
  fragmentation and lazily created caches. A leak of one parameter dict or tensor wrapper per
  call (~7-10 KiB) would cost 35-50 MiB over the torch half, and one input batch per call much
  more; smaller leaks are caught by the object count below.
* ``OBJECT_SLACK`` (500 objects, torch): a leak of one Python object per call (a tensor, a dict
  of parameters, a traced function) over thousands of calls exceeds it; the measured growth is
  ~230 for torch (per-shape caches of the samplers, bounded: the shapes are finite).
  ``KERAS_OBJECT_SLACK`` (100 objects): the measured Keras growth is 0, so a leak of one object
  per call exceeds it over the 275 calls of the Keras half.

Keras on TensorFlow runs in a subprocess with oneDNN turned off (``TF_ENABLE_ONEDNN_OPTS=0``):
TensorFlow's oneDNN kernels cache primitives keyed by op and shapes, and the random parameters
of the resampling and mixing layers produce so many distinct matmul/einsum shapes that those
caches keep filling for thousands of calls (measured here: +380 MiB over 8000 calls, the
increments falling from ~30 to ~2 MiB per 250 calls: bounded caches, not a leak). With oneDNN
off, resident memory is flat after the first few hundred calls. oneDNN changes which kernels
TensorFlow runs, not what maskmix asks of it: the same calls in this process would only repeat
the subprocess' checks.
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from property_domains import BATCH_SIZES, CHANNELS, SIZES, is_mixing, names, random_kwargs

from maskmix import registry
from maskmix._checks import uint8_refusal


def reads_range(name: str, framework: str) -> bool:
    """Whether the strategy reads pixels_range (uint8 images then refuse one they cannot hold)."""
    return registry.implementation(name, framework).reads_pixels_range

#: Resident-memory growth allowed over the second half of the calls (see the module docstring).
RSS_SLACK = 32 * 2**20
#: Growth of ``len(gc.get_objects())`` allowed over the second half (see the module docstring).
OBJECT_SLACK = 500
KERAS_OBJECT_SLACK = 100


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm`` (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def soak(one_call, calls: int, seed: int, *, check_rss: bool = True, object_slack: int = OBJECT_SLACK
         ) -> dict[str, float]:
    """Run ``one_call(rng)`` ``calls`` times; measure RSS and object growth over the second half."""
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs /proc/self/statm (Linux)")
    rng = random.Random(seed)
    half = calls // 2
    start = time.perf_counter()
    for _ in range(half):
        one_call(rng)
    rss_mid, objects_mid = rss_bytes(), tracked_objects()
    for _ in range(calls - half):
        one_call(rng)
    rss_end, objects_end = rss_bytes(), tracked_objects()
    stats = {"calls": calls, "seconds": time.perf_counter() - start,
             "rss_growth_mib": (rss_end - rss_mid) / 2**20, "object_growth": objects_end - objects_mid}
    print(f"\nsoak: {stats}")
    if check_rss:
        assert rss_end - rss_mid < RSS_SLACK, stats
    assert objects_end - objects_mid < object_slack, stats
    return stats


def soak_in_a_fresh_process(call: str, env: dict[str, str]) -> dict[str, float]:
    """The stats of ``call`` (an expression of this module, imported as ``t``) run in a new
    Python process with ``env`` added to the environment; its failure fails the test."""
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs /proc/self/statm (Linux)")
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, **env,
           "PYTHONPATH": os.pathsep.join([str(repo / "tests"), str(repo), os.environ.get("PYTHONPATH", "")])}
    script = f"import json, test_soak as t; print(json.dumps({call}))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=repo,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def random_layout(rng: random.Random, mixing: bool) -> tuple[tuple[int, ...], bool]:
    """A random (B, C, H, W)-like size (channels-first order) and whether it is one image."""
    height, width = rng.choice(SIZES)
    channels = rng.choice(CHANNELS)
    single = not mixing and rng.random() < 0.2
    batch = rng.choice(BATCH_SIZES)
    return ((channels, height, width) if single else (batch, channels, height, width)), single


def random_labels(rng: random.Random, batch: int) -> np.ndarray:
    if rng.random() < 0.5:
        return (np.arange(batch) % 4).astype(rng.choice(["int64", "int32", "uint8"]))
    rows = np.random.default_rng(rng.randrange(2**16)).random((batch, 4)) + 0.01
    return (rows / rows.sum(axis=1, keepdims=True)).astype(rng.choice(["float32", "float64"]))


# --------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------

TORCH_CALLS_PER_STRATEGY = 1000


def torch_soak(calls: int) -> dict[str, float]:
    """The torch soak: ``calls`` random calls of random transforms (see the module docstring)."""
    import torch
    from helpers import ALL_DTYPES, make_images

    strategies = names("torch")

    def one_call(rng: random.Random) -> None:
        name = strategies[rng.randrange(len(strategies))]
        kwargs = random_kwargs(name, rng)
        mixing = is_mixing(name, kwargs)
        if mixing:
            kwargs["num_classes"] = 4
            kwargs["label_smoothing"] = rng.choice([0.0, 0.1])
        generator = torch.Generator().manual_seed(rng.randrange(2**31)) if rng.random() < 0.5 else None
        transform = registry.implementation(name, "torch")(generator=generator, **kwargs)
        shape, _ = random_layout(rng, mixing)
        # uint8 images refuse a normalised pixels_range and standard-normal fills (a ValueError).
        uint8_ok = uint8_refusal(name, kwargs.get("pixels_range") if reads_range(name, "torch") else None,
                                 kwargs.get("fill_method")) is None
        dtype = rng.choice([d for d in ALL_DTYPES if uint8_ok or d != torch.uint8])
        images = make_images(shape, dtype, seed=rng.randrange(2**16))
        if dtype.is_floating_point and images.numel() and rng.random() < 0.2:
            images.view(-1)[rng.randrange(images.numel())] = float("nan")
        if mixing:
            labels = torch.from_numpy(random_labels(rng, shape[0]))
            out, soft = transform(images, labels)
            assert soft.shape == (shape[0], 4)
            assert torch.allclose(soft.sum(1).double(), torch.ones(shape[0], dtype=torch.float64), atol=1e-5)
        else:
            out = transform(images)
            if kwargs.get("return_labels"):
                out, _ = out
        assert out.shape == images.shape and out.dtype == images.dtype

    return soak(one_call, calls, seed=0)


@pytest.mark.slow
def test_soak_torch() -> None:
    """A fresh process: no failure, no resident-memory or object growth. Run apart because the
    resident memory of a test worker also moves with what its earlier tests left behind (threads,
    allocator arenas, compiler caches): one such worker once grew 41 MiB over the calls that grow
    1.5-4 MiB in a fresh process, also after compile or Keras tests run first in it."""
    pytest.importorskip("torch")
    calls = TORCH_CALLS_PER_STRATEGY * len(names("torch"))
    stats = soak_in_a_fresh_process(f"t.torch_soak({calls})", {})
    print(f"\nsoak (subprocess): {stats}")
    assert stats["calls"] == calls


# --------------------------------------------------------------------------------------------
# Keras (eager, TensorFlow backend: ~20 ms a call, so fewer calls)
# --------------------------------------------------------------------------------------------

#: Layers built per strategy before the calls start (each call picks one at random). Building a
#: layer per call would measure TensorFlow, not maskmix: every ``keras.random.SeedGenerator`` makes
#: a ``tf.Variable`` with a new unique name, and TensorFlow's eager runtime keeps ~34 KiB per
#: distinct variable name for the life of the process (Keras' own ``RandomFlip`` grows the same
#: way; a plain ``tf.Variable`` with a repeated name does not).
KERAS_LAYERS_PER_STRATEGY = 30


def keras_soak(calls: int, *, check_rss: bool) -> dict[str, float]:
    """The Keras soak: a pool of random layers, then ``calls`` random calls (see the module docstring)."""
    import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

    # isort: split

    import keras
    from keras_helpers import make_images, to_tensor

    dtypes = ("uint8", "float16", "bfloat16", "float32", "float64")
    build = random.Random(2)
    pool = []
    for name in names("keras"):
        for _ in range(KERAS_LAYERS_PER_STRATEGY):
            kwargs = random_kwargs(name, build)
            mixing = is_mixing(name, kwargs)
            if mixing:
                kwargs["num_classes"] = 4
                kwargs["label_smoothing"] = build.choice([0.0, 0.1])
            data_format = build.choice(["channels_first", "channels_last"])
            layer_class = registry.implementation(name, "keras")
            layer = layer_class(seed=build.randrange(2**31), data_format=data_format, **kwargs)
            # uint8 images refuse a normalised pixels_range and standard-normal fills (a ValueError).
            uint8_ok = uint8_refusal(name, kwargs.get("pixels_range") if reads_range(name, "keras") else None,
                                     kwargs.get("fill_method")) is None
            pool.append((layer, mixing, data_format == "channels_first", bool(kwargs.get("return_labels")),
                         dtypes if uint8_ok else dtypes[1:]))

    def one_call(rng: random.Random) -> None:
        layer, mixing, channels_first, labelled, layer_dtypes = pool[rng.randrange(len(pool))]
        shape, _ = random_layout(rng, mixing)
        if not channels_first:  # (.., C, H, W) -> (.., H, W, C)
            shape = (*shape[:-3], shape[-2], shape[-1], shape[-3])
        dtype = rng.choice(layer_dtypes)
        array = make_images(shape, dtype, seed=rng.randrange(2**16))
        if dtype != "uint8" and array.size and rng.random() < 0.2:
            array.reshape(-1)[rng.randrange(array.size)] = np.nan
        images = to_tensor(array, dtype)
        if mixing:
            out, soft = layer((images, random_labels(rng, shape[0])))
            soft = keras.ops.convert_to_numpy(soft)
            assert soft.shape == (shape[0], 4)
            np.testing.assert_allclose(soft.sum(1), np.ones(shape[0]), atol=1e-5)
        else:
            out = layer(images)
            if labelled:
                out, _ = out
        assert tuple(out.shape) == shape and keras.backend.standardize_dtype(out.dtype) == dtype

    return soak(one_call, calls, seed=1, check_rss=check_rss, object_slack=KERAS_OBJECT_SLACK)


@pytest.mark.slow
def test_soak_keras_memory_without_onednn() -> None:
    """A fresh process with oneDNN off: no failure, no resident-memory or object growth."""
    calls = 50 * len(names("keras"))
    env = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "KERAS_BACKEND": "tensorflow"}
    stats = soak_in_a_fresh_process(f"t.keras_soak({calls}, check_rss=True)", env)
    print(f"\nsoak (subprocess, oneDNN off): {stats}")
    assert stats["calls"] == calls
