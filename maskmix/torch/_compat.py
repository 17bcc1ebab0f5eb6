"""Every private torch / torchvision API that :mod:`maskmix.torch` uses, in one place.

torchvision's v2 ``Transform`` machinery has no public hook for two things maskmix needs: which
input types a transform handles (the class attribute ``_transformed_types``) and which entries
of a flattened sample it transforms (the method ``_needs_transform_list``, whose pure-tensor
heuristic maskmix keeps so that it composes with torchvision's own transforms). Flattening a
sample uses ``torch.utils._pytree``, as ``v2.Transform.forward`` does, and the device-side
check of class indices uses ``torch._assert_async``, and the parameters of a call are drawn
under ``torch._C._InferenceMode`` (the guard behind ``torch.inference_mode``, without that
context manager's Python layers: a few microseconds of each small call). A Kornia ``AugmentationSequential`` that
calls a maskmix transform is found by its frame (module ``kornia.augmentation.container``, its
``data_keys``): Kornia hands such modules the images alone. The rest of the package reaches these
only through this module, and ``tests/test_compat.py`` checks each one against the installed
releases, naming the private API when a release removes or changes it.

Example:
    >>> import torch
    >>> from maskmix.torch import _compat
    >>> flat, spec = _compat.tree_flatten((torch.zeros(1), {"label": 3}))
    >>> len(flat), _compat.tree_unflatten(flat, spec)[1]
    (2, {'label': 3})
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import torch
from torch.autograd import forward_ad
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision.transforms import v2

__all__ = [
    "PRIVATE_APIS",
    "assert_async",
    "calling_kornia_data_keys",
    "declare_transformed_types",
    "inference_mode",
    "needs_transform_list",
    "raised_by_the_compiler",
    "records_gradients",
    "torchvision_pixel_mover",
    "tree_flatten",
    "tree_unflatten",
    "under_vmap",
]

#: The private names used, as the tests and error reports spell them.
PRIVATE_APIS: tuple[str, ...] = (
    "torch.utils._pytree.tree_flatten",
    "torch.utils._pytree.tree_unflatten",
    "torchvision.transforms.v2.Transform._transformed_types",
    "torchvision.transforms.v2.Transform._needs_transform_list",
    "torch._assert_async",
    "torch._C._InferenceMode",
    "torch.autograd.forward_ad._current_level",
    "torch._C._functorch.peek_interpreter_stack",
    "torch._C._functorch.get_interpreter_stack",
    "kornia.augmentation.container.AugmentationSequential.data_keys",
    # Module names only (read from classes' __module__, never imported): torchvision_pixel_mover.
    "torchvision.transforms.v2._geometry",
    "torchvision.transforms.v2._auto_augment",
    "torchvision.transforms.v2._temporal",
)


def declare_transformed_types(cls: type[v2.Transform], types: tuple[type, ...]) -> None:
    """Make the v2 transform class ``cls`` handle inputs of ``types`` (``_transformed_types``)."""
    cls._transformed_types = types


def needs_transform_list(transform: v2.Transform, flat_inputs: list[Any]) -> list[bool]:
    """Which entries of a flattened sample ``transform`` changes: torchvision's own rule.

    Entries not of a transformed type pass through; of the plain tensors, only the first is an
    image, and only when the sample holds no ``tv_tensors.Image``/``Video`` (or PIL image).
    """
    return transform._needs_transform_list(flat_inputs)


def records_gradients(tensor: torch.Tensor) -> bool:
    """Whether a result computed from ``tensor`` may have to carry a derivative: ``tensor``
    records a gradient (``requires_grad`` under grad mode), or forward-mode AD is active (a
    ``forward_ad.dual_level``, whose dual tensors do not ``require_grad``) or a ``torch.func``
    transform (``jvp``, ``jacfwd``, ``vmap``, ``grad``) runs. The fast paths that move pixels as
    integer bit patterns or write into ``out=`` buffers carry no derivative: they must not run
    then. Under ``torch.compile`` only ``requires_grad`` is read (Dynamo traces it)."""
    if tensor.requires_grad and torch.is_grad_enabled():
        return True
    if torch.compiler.is_compiling():
        return False
    return forward_ad._current_level >= 0 or torch._C._functorch.peek_interpreter_stack() is not None


def under_vmap() -> bool:
    """Whether a ``torch.func.vmap`` runs (at any level of nested ``torch.func`` transforms)."""
    if torch.compiler.is_compiling() or torch._C._functorch.peek_interpreter_stack() is None:
        return False
    return any(interpreter.key() == torch._C._functorch.TransformType.Vmap
               for interpreter in torch._C._functorch.get_interpreter_stack() or ())


def assert_async(condition: torch.Tensor, message: str) -> None:
    """``torch._assert_async``: a device-side assertion that never synchronises with the host."""
    torch._assert_async(condition, message)


def inference_mode() -> Any:
    """A context manager that enables inference mode, as ``torch.inference_mode()`` does, at a
    third of its host cost (``torch._C._InferenceMode``)."""
    return torch._C._InferenceMode(True)


#: How many frames above a transform's ``forward``, or above the last Kornia container frame found,
#: the next Kornia container's own frame may be (its ``forward``, then the ops class and
#: ``nn.Module.__call__`` in between).
_KORNIA_FRAME_DEPTH = 16


def calling_kornia_data_keys() -> list[str] | None:
    """The ``data_keys`` (upper-case ``DataKey`` names) of the Kornia ``AugmentationSequential``
    containers whose ``forward`` is calling (every one of nested containers: an inner one has the
    default ``[INPUT]`` while the outer one routes boxes through it), or None when no Kornia
    container is.

    Kornia is not imported: the calling frames are looked at for those of
    ``kornia.augmentation.container`` whose ``self`` has ``data_keys``, up to
    :data:`_KORNIA_FRAME_DEPTH` frames past the transform or the last container frame. A few
    microseconds, so the caller asks only when the answer matters.
    """
    found: list[str] = []
    frame: FrameType | None = sys._getframe(1)
    left = _KORNIA_FRAME_DEPTH
    while left > 0:
        frame = frame.f_back if frame is not None else None
        if frame is None:
            break
        left -= 1
        if not frame.f_globals.get("__name__", "").startswith("kornia.augmentation.container"):
            continue
        left = _KORNIA_FRAME_DEPTH
        for key in getattr(frame.f_locals.get("self"), "data_keys", None) or ():
            name = str(getattr(key, "name", key)).upper()
            if name not in found:
                found.append(name)
    return found or None


#: Where torchvision keeps the transforms that move pixels: flips, crops, resizes, rotations and
#: warps; the auto-augment policies (shears, translations, rotations); temporal subsampling.
_TORCHVISION_PIXEL_MOVERS = frozenset({
    "torchvision.transforms.v2._geometry", "torchvision.transforms.v2._auto_augment",
    "torchvision.transforms.v2._temporal",
})


def torchvision_pixel_mover(transform: Any) -> bool:
    """Whether ``transform`` is (or subclasses) a torchvision transform that moves pixels. A v1
    transform (``torchvision.transforms.RandomHorizontalFlip``) answers as its v2 namesake."""
    for cls in type(transform).__mro__:
        module = cls.__module__
        if module in _TORCHVISION_PIXEL_MOVERS:
            return True
        if module in ("torchvision.transforms.transforms", "torchvision.transforms.autoaugment"):
            twin = getattr(v2, cls.__name__, None)
            if isinstance(twin, type) and twin.__module__ in _TORCHVISION_PIXEL_MOVERS:
                return True
    return False


def raised_by_the_compiler(error: BaseException) -> bool:
    """Whether ``error`` is one of ``torch.compile``'s own (Dynamo, Inductor), which is how an
    exception raised inside a traced function comes out of it (``Unsupported: Observed
    exception``), rather than an error of the function's own code."""
    return type(error).__module__.startswith(("torch._dynamo", "torch._inductor"))
