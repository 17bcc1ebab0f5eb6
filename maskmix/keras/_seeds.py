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

import numbers
import random
import sys
from typing import Any

import keras
import numpy as np

from . import _compat

__all__ = ["CALL_SEEDS", "CallSeeds", "StatelessSeeds", "call_seeds", "stateless_seeds", "torch_compiling"]

Tensor = Any

#: Int seeds lie in ``[0, 2**31)``: every backend's seed dtype holds them.
_MAX_SEED = 2**31


class StatelessSeeds(keras.random.SeedGenerator):
    """The ``i``-th draw of a call gets the seed ``(s0, CALL_SEEDS * s1 + i)`` of a base pair
    ``(s0, s1)``, and ``(s, i)`` of an int seed ``s``.

    The documented use is a pair that changes by one from step to step (``seed=(7, step)``): with
    ``(s0, s1 + i)``, step ``k + 1`` took the seeds of step ``k``'s second draw on, so consecutive
    batches shared their random numbers (one step's lambdas were the previous step's box
    centres). Spread by :data:`CALL_SEEDS`, the steps' seeds are apart (a function draws far
    fewer), as the calls of a layer's :class:`CallSeeds` are. It is a
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
            value = ops.numpy.stack([first, second * ops.cast(CALL_SEEDS, dtype) + ops.cast(self._count, dtype)])
        self._count += 1
        return value

    def get_config(self) -> dict[str, Any]:
        raise TypeError("StatelessSeeds is the seed of one function call; it is not serialisable")


#: Seeds one layer call may use: a call takes this many consecutive seeds of its generator's state
#: at once (the generator advances by as many), so that no two calls share a seed. The strategies
#: draw at most about a dozen times a call; TensorFlow reduces seeds modulo 2**31 - 2, so a layer
#: repeats its seeds after about 33 million calls (Keras' own increment of 1: 2 billion).
CALL_SEEDS = 64


class CallSeeds(StatelessSeeds):
    """The seeds of one call of a layer whose draws come from a ``keras.random.SeedGenerator``.

    The ``i``-th draw of the call gets ``(s0, s1 + i)``, where ``(s0, s1)`` is the generator's
    state when the call starts; the first draw advances the state by :data:`CALL_SEEDS`. Keras'
    own ``SeedGenerator.next`` reads and updates the state variable at every draw (the dearest
    part of a random call in eager mode, and a chain of variable updates in a graph): a call
    updates it once instead. Advancing by ``CALL_SEEDS`` keeps the seeds of successive calls, and
    of other users of a shared generator, apart.

    Under a ``tf.distribute`` strategy with several replicas (``MirroredStrategy``), a generator
    created in the strategy's scope is a mirrored variable, the same state on every replica: each
    replica's first seed gets its replica id folded in (:func:`replica_offset`), so the replicas
    draw independently, as the torch pipeline's ranks do, instead of repeating one draw per shard.
    """

    def __init__(self, generator: keras.random.SeedGenerator, owner: str = "maskmix") -> None:
        super().__init__(0)
        self.name = "call_seeds"
        self.owner = owner
        self.generator = generator
        self.base: Tensor | None = None

    def next(self, ordered: bool = True) -> Tensor:
        if self._count >= CALL_SEEDS:
            raise RuntimeError(f"a maskmix layer call drew more than CALL_SEEDS = {CALL_SEEDS} seeds")
        ops = self.generator.backend
        state = self.generator.state
        dtype = keras.backend.standardize_dtype(state.dtype)
        if self.base is None:
            self.base = state.value * 1  # a copy: the variable is updated next
            replica = replica_offset()
            if replica is not None:
                shift = ops.cast(replica, dtype) * ops.convert_to_tensor(np.array([_REPLICA_STRIDE, 0]), dtype=dtype)
                self.base = ops.numpy.add(self.base, shift)
            advanced = ops.numpy.add(state.value, ops.convert_to_tensor(np.array([0, CALL_SEEDS]), dtype=dtype))
            if _compat.is_in_jax_tracing_scope(advanced) and not _compat.in_stateless_scope():
                # A plain jax.jit of the call: the traced state written into the variable would
                # leak out of the trace, and each run of the compiled function would draw the
                # numbers of its trace, the same ones at every call (Keras' own layers do so).
                raise RuntimeError(
                    f"{self.owner}: called inside jax.jit without a keras.StatelessScope: the seed generator's "
                    "state cannot advance there, so every call would draw the same numbers. Call "
                    "layer.stateless_call(trainable_variables, non_trainable_variables, images, training=True) in "
                    "the jitted function and carry the returned variables, or let model.fit / MaskMixModel call "
                    "the layer (their steps are stateless)"
                )
            state.assign(advanced)
        offset = self._count
        self._count += 1
        if offset == 0:
            return self.base
        return ops.numpy.add(self.base, ops.convert_to_tensor(np.array([0, offset]), dtype=dtype))


#: What each replica adds to the first word of a call's seed (times its replica id): large and odd,
#: so that the replicas of one layer do not take the seeds of a layer seeded with the next integers.
_REPLICA_STRIDE = 0x2545F491


def replica_offset() -> Tensor | None:
    """The replica id inside a ``tf.distribute`` replica context with more than one replica (a
    scalar tensor), else None (no TensorFlow imported, one replica, or cross-replica context)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context.replica_id_in_sync_group


def call_seeds(owner: str, seed: Any, backend: Any) -> Any:
    """The seed stream of one call of the layer ``owner``: :class:`CallSeeds` of a
    ``SeedGenerator``, a :class:`StatelessSeeds` of an int (each draw its own seed; as such,
    Keras' random ops would give every draw of the call the same one), a ``StatelessSeeds`` as it
    is."""
    if isinstance(seed, StatelessSeeds):
        return seed
    if isinstance(seed, keras.random.SeedGenerator):
        return CallSeeds(seed, owner)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)):
        return StatelessSeeds(int(seed)).bind(backend)
    raise TypeError(f"{owner}: seed must be an int or a keras.random.SeedGenerator; got {type(seed).__name__}")


def stateless_seeds(owner: str, seed: Any, images: Any) -> StatelessSeeds:
    """Check a functional form's ``seed`` and return its stream; ``images`` tell whether the call
    is traced (a seed is then required)."""
    if seed is None:
        if _compat.in_tf_graph() or _compat.is_in_jax_tracing_scope(images) or torch_compiling():
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


def torch_compiling() -> bool:
    """Whether Keras' torch backend is being traced by ``torch.compile`` (``jit_compile=True``)."""
    if keras.backend.backend() != "torch":
        return False
    import torch

    return bool(torch.compiler.is_compiling())
