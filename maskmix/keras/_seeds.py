"""Stateless seeds for the functional forms (:func:`~maskmix.keras.random_cutmix`, ...).

A layer draws its random quantities from a ``keras.random.SeedGenerator``: a variable, created
with the layer. A function such as ``random_cutmix`` builds a layer per call, so a generator per
call would be a new variable per call, which ``tf.function`` refuses (variables only on the first
trace) and which would start from the same state every call anyway. The functions therefore take
the seed as Keras' stateless random ops do (``keras.random.uniform(..., seed=7)``): an int, or a
pair of integers (``(2,)`` tensor) that the caller changes from step to step, and draw from
:class:`StatelessSeeds`, a stream of seeds derived from it that holds no variable. Called
eagerly without a seed they draw a fresh int seed per call; inside a traced function without a
seed they raise, since a seed drawn while tracing would repeat at every step.
"""

from __future__ import annotations

import random
from typing import Any

import keras

from . import _compat

__all__ = ["StatelessSeeds", "stateless_seeds"]

Tensor = Any

#: Int seeds lie in ``[0, 2**31)``: every backend's seed dtype holds them.
_MAX_SEED = 2**31


class StatelessSeeds(keras.random.SeedGenerator):
    """The ``i``-th draw of a call gets the seed ``(s0, s1 + i)`` of a base pair ``(s0, s1)``.

    An int seed ``s`` is the pair ``(s, 0)``, as ``keras.random`` reads it. It is a
    ``SeedGenerator`` to the random ops (they call :meth:`next`), but it holds no variable: its
    counter is a Python int, so the same seed and inputs give the same draws at every call, in
    eager mode, in ``tf.function`` (also ``jit_compile=True``), in ``tf.data`` and under
    ``jax.jit``. Tensors are made with ``backend`` (a layer's ``DynamicBackend``, so that they
    belong to the backend the layer computes with), bound by the layer that uses the stream.
    """

    def __init__(self, seed: int | Tensor) -> None:  # no variable: SeedGenerator.__init__ is not called
        self.name = "stateless_seeds"
        self.seed = seed
        self.backend: Any = None
        self._count = 0

    def bind(self, backend: Any) -> StatelessSeeds:
        """Use ``backend`` (a ``DynamicBackend``) to make the seed tensors."""
        self.backend = backend
        return self

    def next(self, ordered: bool = True) -> Tensor:
        ops = self.backend
        dtype = ops.random_seed_dtype()
        if isinstance(self.seed, int):
            value = ops.convert_to_tensor([self.seed, self._count], dtype=dtype)
        else:
            pair = self.seed if isinstance(self.seed, tuple) else (self.seed[0], self.seed[1])
            first, second = (ops.cast(ops.convert_to_tensor(s), dtype) for s in pair)
            value = ops.numpy.stack([first, second + ops.cast(self._count, dtype)])
        self._count += 1
        return value

    def get_config(self) -> dict[str, Any]:
        raise TypeError("StatelessSeeds is the seed of one function call; it is not serialisable")


def stateless_seeds(owner: str, seed: Any, images: Any) -> StatelessSeeds:
    """Check a functional form's ``seed`` and return its stream; ``images`` tell whether the call
    is traced (a seed is then required)."""
    if seed is None:
        if _compat.in_tf_graph() or _compat.is_in_jax_tracing_scope(images) or _torch_compiling():
            raise ValueError(
                f"{owner}: seed is required inside a traced function (tf.function, tf.data, jax.jit, "
                "torch.compile): a seed drawn while tracing would repeat at every step. Pass seed= a pair "
                "of integers that changes per step, e.g. a (2,) int tensor (an int seed gives the same "
                "draws at every call), or build the layer once and call it"
            )
        seed = random.randrange(_MAX_SEED)
    if isinstance(seed, bool):
        raise TypeError(f"{owner}: seed must be an int, a pair of integers or None; got {seed!r}")
    if isinstance(seed, int):
        if not 0 <= seed < _MAX_SEED:
            raise ValueError(f"{owner}: an int seed must lie in [0, 2**31); got {seed}")
        return StatelessSeeds(seed)
    if isinstance(seed, (tuple, list)):
        if len(seed) != 2 or any(isinstance(s, (bool, float)) for s in seed):
            raise ValueError(f"{owner}: seed must be an int, a pair of integers or None; got {seed!r}")
        return StatelessSeeds(tuple(seed))
    dtype = keras.backend.standardize_dtype(seed.dtype) if hasattr(seed, "dtype") else type(seed).__name__
    shape = tuple(seed.shape) if hasattr(seed, "shape") else None
    if not dtype.startswith(("int", "uint")) or shape != (2,):
        raise ValueError(
            f"{owner}: seed must be an int, a pair of integers ((2,) integer tensor) or None; "
            f"got {dtype} of shape {shape}"
        )
    return StatelessSeeds(seed)


def _torch_compiling() -> bool:
    if keras.backend.backend() != "torch":
        return False
    import torch

    return bool(torch.compiler.is_compiling())
