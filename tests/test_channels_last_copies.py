"""A channels_last batch costs no batch-sized copy that the standard layout does not.

``MaskMixTransform.apply_batched`` converts a strategy's result to channels_last when the input
was: a no-op when the strategy already kept the layout, a hidden full copy when it did not. Every
registered torch variant is called on the same batch in both layouts while the ATen ops are
recorded (a ``TorchDispatchMode``), and the copies of a whole batch (``clone``, ``_to_copy``,
``copy_``) are counted: channels_last must not add any. The strategies that cannot avoid one say
why in :data:`CONVERTS`.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import make_images
from registry_cases import variant_cases
from torch.utils._python_dispatch import TorchDispatchMode

CASES = variant_cases("torch")

#: ATen ops that copy a tensor (``contiguous`` and ``.to`` reach them).
COPY_OPS = frozenset({"clone", "_to_copy", "copy_", "copy"})

#: Variants whose channels_last call keeps batch-sized conversions: how many, and why.
CONVERTS: dict[str, tuple[dict[torch.dtype, int], str]] = {
    # matmul folds the batch into a contiguous operand (a copy of a channels_last batch) and
    # returns the resampled batch in the standard layout (the base's final conversion; a where
    # writing channels_last from inputs of both layouts costs more than the conversion it saves).
    # uint8 is converted to float32 straight into the standard layout (one copy, as the
    # standard batch's); a float32 batch is copied into it.
    "cutblur": ({torch.float32: 2, torch.uint8: 1}, "the resampling matmuls take and return the standard layout"),
    "cutblur_range": ({torch.float32: 2, torch.uint8: 1}, "the resampling matmuls take and return the standard layout"),
    # The thumbnails are resampled from the contiguous batch (the matmul kernels' summation order,
    # hence the last bit, depends on strides): the input is converted, the output is not.
    "thumbnail": ({torch.float32: 1, torch.uint8: 0}, "input made contiguous for bit-identical matmuls"),
    "thumbnail_mix": ({torch.float32: 1, torch.uint8: 0}, "input made contiguous for bit-identical matmuls"),
    # mean_per_channel reduces the contiguous batch (bit-identical means).
    "gridmask_rotated": ({torch.float32: 1, torch.uint8: 0}, "mean_per_channel reduces a contiguous copy"),
}


class BatchCopies(TorchDispatchMode):
    """Counts the copy ops whose result has ``numel`` elements (a whole batch)."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.numel = numel
        self.copies: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in COPY_OPS and isinstance(out, torch.Tensor) and out.numel() == self.numel:
            self.copies.append(name)
        return out


def _copies(name: str, images: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    case = CASES[name]
    transform = case.build(generator=torch.Generator().manual_seed(5))
    labels = torch.arange(images.shape[0]) % 3
    with BatchCopies(images.numel()) as counter:
        result = transform(images, labels) if case.mixes else transform(images)
    return counter.copies, result[0] if isinstance(result, tuple) else result


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8], ids=str)
def test_channels_last_adds_no_batch_copy(name: str, dtype: torch.dtype) -> None:
    x = make_images((4, 3, 10, 13), dtype, seed=2)
    standard, _ = _copies(name, x)
    last, out = _copies(name, x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    extra = len(last) - len(standard)
    if name in CONVERTS:
        # Exactly: a strategy that stops converting must leave the list.
        expected, why = CONVERTS[name]
        assert extra == expected[dtype], f"{name} ({why}): channels_last costs {last} against {standard}"
    else:
        assert extra <= 0, f"{name}: channels_last costs {last} against {standard}"


def test_allow_list_names_registered_variants() -> None:
    assert set(CONVERTS) <= set(CASES)
