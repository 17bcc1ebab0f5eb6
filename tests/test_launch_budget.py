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
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from registry_cases import variant_cases
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from maskmix import registry
from maskmix.torch import MaskMixTransform

# The counter is the one benchmarks/op_counts.py reports with.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from op_counts import KernelCounter, call, peak_memory

#: Every variant of every strategy torch implements (the registry's), with 10 classes for the mixing
#: ones; each has its launch budget in the registry (``Variant.launches``).
CASES = variant_cases("torch")
ALL_FACTORIES: dict[str, Callable[..., MaskMixTransform]] = {
    name: partial(case.build, num_classes=10) for name, case in CASES.items()
}
BUDGETS = {name: case.launches for name, case in CASES.items()}


def test_every_variant_has_a_budget() -> None:
    assert all(isinstance(budget, int) and budget > 0 for budget in BUDGETS.values()), BUDGETS


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8], ids=str)
@pytest.mark.parametrize(
    "options", [{}, {"augmentation_ratio": 0.5}, {"augmentation_ratio": 0.5, "bernoulli_mix": True}],
    ids=["all", "half", "bernoulli"],
)
def test_accelerator_path_reads_no_value_on_the_host(name: str, dtype: torch.dtype, options: dict) -> None:
    x = torch.empty(6, 3, 20, 24, dtype=dtype, device="meta")
    labels = torch.zeros(6, dtype=torch.int64, device="meta")
    result = call(ALL_FACTORIES[name](**options), x, labels, CASES[name].mixes)
    out = result[0] if isinstance(result, tuple) else result
    assert out.device.type == "meta" and out.shape == x.shape and out.dtype == dtype
    if isinstance(result, tuple):
        assert result[1].shape == (6, 10) and result[1].device.type == "meta"


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
def test_kernel_launches_within_budget(name: str) -> None:
    transform = ALL_FACTORIES[name]()
    x = torch.empty(64, 3, 32, 32, device="meta")
    labels = torch.zeros(64, dtype=torch.int64, device="meta")
    call(transform, x, labels, CASES[name].mixes)  # first call: lazy setup, if any, is not counted
    with KernelCounter() as counter:
        call(transform, x, labels, CASES[name].mixes)
    assert counter.host_reads == 0
    assert counter.kernels <= BUDGETS[name], dict(counter.ops.most_common(12))
    # The budget is not so loose that doubling the launches would pass.
    assert 2 * counter.kernels > BUDGETS[name]


#: The peak memory budgets (uint8, float32) of every variant, in units of the batch's bytes.
MEMORY = {name: case.spec.variants[name].memory for name, case in CASES.items()}


def test_every_variant_has_a_memory_budget() -> None:
    assert all(isinstance(budget, tuple) and len(budget) == 2 for budget in MEMORY.values()), MEMORY


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
def test_peak_memory_within_budget(name: str) -> None:
    """What a call allocates at its peak beyond its input, on the accelerator path: in the training
    step a few batches too many is an out-of-memory error. uint8 batches are the worst case of
    computing in float32 (4 bytes a pixel for 1), and channels-last batches take other paths."""
    transform = ALL_FACTORIES[name]()
    for dtype, budget in zip((torch.uint8, torch.float32), MEMORY[name], strict=True):
        peaks = []
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.empty(16, 3, 64, 64, dtype=dtype, device="meta").contiguous(memory_format=layout)
            labels = torch.zeros(16, dtype=torch.int64, device="meta")
            peaks.append(peak_memory(lambda x=x, labels=labels: call(transform, x, labels, CASES[name].mixes), x))
        assert max(peaks) <= budget, (dtype, peaks, budget)
        # Not so loose that a doubled peak would pass (the output alone is 1).
        assert 2 * max(peaks) > budget, (dtype, peaks, budget)


def test_peak_memory_counts_what_lives_at_once() -> None:
    """What makes the budgets meaningful: freed temporaries leave the count, kept ones add up, views
    add nothing and writes in place allocate nothing."""
    x = torch.empty(1000, dtype=torch.uint8, device="meta")

    def apart() -> torch.Tensor:
        for _ in range(3):
            y = x.to(torch.float32)  # 4000 bytes, freed before the next
        return y.view(10, 100).add_(1)

    def together() -> list[torch.Tensor]:
        return [x.to(torch.float32) for _ in range(3)]

    assert peak_memory(apart, x) == 8.0  # the new y exists before the old one is freed
    assert peak_memory(together, x) == 12.0


def test_counter_counts_kernels_not_views() -> None:
    x = torch.empty(4, 3, 8, 8, device="meta")
    with KernelCounter() as counter:
        y = x.view(4, -1).unsqueeze(0).expand(2, 4, 192).narrow(-1, 0, 96)
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



class _HostToDeviceCopies(TorchFunctionMode):
    """Records the calls that make a tensor from host data (``torch.tensor([...], device=...)``)
    or move a CPU tensor to another device: on a GPU each is a copy the host waits for (pageable
    memory). The meta device hides them (a meta tensor made from a list dispatches nothing), so
    they are caught where the Python call is made."""

    FROM_HOST = frozenset({"tensor", "as_tensor", "from_numpy", "scalar_tensor"})

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        out = func(*args, **kwargs)
        on_host = any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tree_flatten((args, kwargs))[0])
        off_host = any(isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in tree_flatten(out)[0])
        if name in self.FROM_HOST or (on_host and off_host):
            self.calls.append(name)
        return out


def _every_parameter_drawn(spec: registry.StrategySpec) -> tuple[MaskMixTransform, bool]:
    """The strategy with every parameter away from its default where the registry says how (CutPaste
    with scars, GridMask rotated, ...): the variants leave some of those code paths out."""
    config = {k: v for k, v in spec.draw_everything.items() if k != "return_labels"}
    mixes = spec.mixes_images(config)
    if mixes:
        config["num_classes"] = 10
    return registry.implementation(spec.name, "torch")(**config), mixes


@pytest.mark.parametrize("spec", registry.specs("torch"), ids=lambda spec: spec.name)
def test_a_call_copies_nothing_from_the_host(spec: registry.StrategySpec) -> None:
    """Constants a call needs are built on the device or kept between calls: CutPaste's scars made
    a (2,) tensor from a Python list in every call (a synchronising copy on a GPU)."""
    transform, mixes = _every_parameter_drawn(spec)
    x = torch.empty(6, 3, 20, 24, device="meta")
    labels = torch.zeros(6, dtype=torch.int64, device="meta")
    call(transform, x, labels, mixes)  # first call: constants kept between calls are made here
    with _HostToDeviceCopies() as copies:
        out = call(transform, x, labels, mixes)  # also proves no host read with every parameter drawn
    assert copies.calls == [], copies.calls
    assert (out[0] if isinstance(out, tuple) else out).device.type == "meta"


def test_the_copy_spy_sees_copies() -> None:
    """What makes the test above meaningful: both ways of copying host data are seen on meta."""
    with _HostToDeviceCopies() as copies:
        torch.tensor([1.0, 2.0], device="meta")
        torch.ones(2).to("meta")
    assert copies.calls == ["tensor", "to"]

class _SelectionUse(TorchDispatchMode):
    """Records the ops that take the selection tensor (``params["selected"]``) as an input."""

    def __init__(self) -> None:
        super().__init__()
        self.selected: torch.Tensor | None = None
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if self.selected is not None and any(t is self.selected for t in tree_flatten((args, kwargs))[0]):
            self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", list(ALL_FACTORIES))
@pytest.mark.parametrize(
    "options", [{}, {"augmentation_ratio": 0.5}, {"augmentation_ratio": 0.9999, "bernoulli_mix": True}],
    ids=["all", "half", "bernoulli"],
)
def test_selection_is_applied_only_when_not_every_image_is_selected(name: str, options: dict) -> None:
    """The default augmentation_ratio=1 selects every image by construction: no kernel (a mask
    product, a per-image where over the batch or the labels) applies the selection then. Any other
    selection must be applied (this also proves the spy sees the tensor)."""
    transform = ALL_FACTORIES[name](**options)
    spy = _SelectionUse()
    make_params = transform.make_params
    static: list[bool] = []

    def spying_make_params(flat_inputs: list[Any]) -> dict[str, Any]:
        params = make_params(flat_inputs)
        spy.selected = params["selected"]
        static.append(params["all_selected"])
        return params

    transform.make_params = spying_make_params
    x = torch.empty(64, 3, 32, 32, device="meta")
    labels = torch.zeros(64, dtype=torch.int64, device="meta")
    with spy:
        call(transform, x, labels, CASES[name].mixes)
    assert static == [not options]
    if options:
        assert spy.ops, "the selection was never applied"
    else:
        assert spy.ops == []
