"""One check that ``keras.config.set_floatx(...)`` changes nothing a computation returns.

Keras gives an op on Python numbers alone a dtype that follows floatx (int64 under ``"float64"``),
so code that worked under float32 could fail or return other values under another floatx. Shared by
the in-process Keras tests and the backend scripts (``tests/backend_scripts``, run with this
directory on their path); imports Keras and NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

__all__ = ["FLOATX", "assert_floatx_changes_nothing"]

#: The floatx settings checked against float32.
FLOATX = ("bfloat16", "float16", "float64")


def assert_floatx_changes_nothing(compute: Callable[[], Sequence[np.ndarray]], label: str, *,
                                  floatx: Sequence[str] = FLOATX) -> None:
    """``compute()`` under each of ``floatx`` returns arrays of the dtypes and bits it returns under
    the floatx in force (float32); floatx is restored after each, whatever happens."""
    expected = list(compute())
    previous = keras.config.floatx()
    for setting in floatx:
        keras.config.set_floatx(setting)
        try:
            got = list(compute())
        finally:
            keras.config.set_floatx(previous)
        assert len(got) == len(expected), (label, setting)
        for value, reference in zip(got, expected, strict=True):
            assert value.dtype == reference.dtype, (label, setting, value.dtype, reference.dtype)
            np.testing.assert_array_equal(value, reference, err_msg=f"{label}, floatx {setting}")
