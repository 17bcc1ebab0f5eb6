"""The accelerator code path of every torch transform, checked without an accelerator.

On the ``meta`` device tensors have shapes and dtypes but no values, so running a transform there
proves what the CUDA checks (``benchmarks/cuda_checks.py``) check on a GPU, on any machine:

* nothing reads a tensor's value back to the host (``.item()``, ``bool(t)``, ``nonzero``,
  data-dependent shapes all raise on ``meta``), so a GPU call never waits for the device;
* the number of kernels a call launches stays within a budget. In eager mode on a GPU the cost of
  a call is mostly launches (each ~5-15 us of host time against ~0.1 ms for a pass over a
  256x3x224x224 float32 batch), so a change that doubles them would double the eager time of
  small and medium batches. Views (``view``, ``expand``, ...) launch nothing and are not counted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from test_torch_common import FACTORIES

from maskmix.torch import MaskMixTransform, RandomCutMix, RandomCutThumbnail, RandomMixup

# The counter is the one benchmarks/op_counts.py reports with.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from op_counts import KernelCounter, call

MIXING_FACTORIES: dict[str, Callable[..., MaskMixTransform]] = {
    "cutmix": lambda **kw: RandomCutMix(num_classes=10, **kw),
    "cutmix_variant": lambda **kw: RandomCutMix(num_classes=10, alpha=0.5, patch_area=(0.1, 0.5),
                                                patch_aspect_ratio=(0.5, 2.0), **kw),
    "mixup": lambda **kw: RandomMixup(num_classes=10, **kw),
    "mixup_alpha": lambda **kw: RandomMixup(num_classes=10, alpha=0.2, label_smoothing=0.1, **kw),
    "thumbnail_mix": lambda **kw: RandomCutThumbnail(mix_images=True, num_classes=10, **kw),
}
ALL_FACTORIES = {**FACTORIES, **MIXING_FACTORIES}

#: Kernel launches per call of a 64x3x32x32 float32 batch at augmentation_ratio 1, measured on
#: the meta device (2026-11-23), with about 15% headroom. Lower a budget when a change saves
#: launches; raise one only with a reason.
BUDGETS = {
    "cutout": 30, "cutout_partial": 37, "erasing": 55, "erasing_multi": 58,
    "hide_and_seek": 48, "hide_and_seek_prob": 34, "gridmask": 38, "gridmask_rotated": 57,
    "cutblur": 68, "cutblur_range": 80, "cutpaste": 78, "cutpaste_jitter": 118,
    "cutswap": 227, "thumbnail": 175,
    "cutmix": 65, "cutmix_variant": 104, "mixup": 27, "mixup_alpha": 65, "thumbnail_mix": 189,
}


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8], ids=str)
@pytest.mark.parametrize(
    "options", [{}, {"augmentation_ratio": 0.5}, {"augmentation_ratio": 0.5, "bernoulli_mix": True}],
    ids=["all", "half", "bernoulli"],
)
def test_accelerator_path_reads_no_value_on_the_host(name: str, dtype: torch.dtype, options: dict) -> None:
    x = torch.empty(6, 3, 20, 24, dtype=dtype, device="meta")
    labels = torch.zeros(6, dtype=torch.int64, device="meta")
    result = call(ALL_FACTORIES[name](**options), x, labels)
    out = result[0] if isinstance(result, tuple) else result
    assert out.device.type == "meta" and out.shape == x.shape and out.dtype == dtype
    if isinstance(result, tuple):
        assert result[1].shape == (6, 10) and result[1].device.type == "meta"


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
def test_kernel_launches_within_budget(name: str) -> None:
    transform = ALL_FACTORIES[name]()
    x = torch.empty(64, 3, 32, 32, device="meta")
    labels = torch.zeros(64, dtype=torch.int64, device="meta")
    call(transform, x, labels)  # first call: lazy setup, if any, is not counted
    with KernelCounter() as counter:
        call(transform, x, labels)
    assert counter.host_reads == 0
    assert counter.kernels <= BUDGETS[name], dict(counter.ops.most_common(12))
    # The budget is not so loose that doubling the launches would pass.
    assert 2 * counter.kernels > BUDGETS[name]


def test_counter_counts_kernels_not_views() -> None:
    x = torch.empty(4, 3, 8, 8, device="meta")
    with KernelCounter() as counter:
        y = x.view(4, -1).unsqueeze(0).expand(2, 4, 192)
        (y + 1).sum()
    assert dict(counter.ops) == {"add": 1, "sum": 1}
    assert counter.kernels == 2 and counter.host_reads == 0


def test_counter_counts_host_reads() -> None:
    x = torch.ones(4)
    with KernelCounter() as counter:
        value = x.sum().item()
        bool(x.all())
    assert value == 4.0
    assert counter.host_reads == 2 and counter.kernels == 2


@pytest.mark.parametrize(
    "host_read",
    [lambda x: x.sum().item(), lambda x: bool(x.all()), lambda x: x.nonzero(), lambda x: x[x > 0],
     lambda x: x.tolist()],
    ids=["item", "bool", "nonzero", "boolean-index", "tolist"],
)
def test_meta_device_refuses_host_reads(host_read: Callable[[torch.Tensor], Any]) -> None:
    """What makes the first test meaningful: each way of reading values on the host fails on meta."""
    with pytest.raises((RuntimeError, NotImplementedError)):
        host_read(torch.empty(3, device="meta"))
