"""Validation of the arguments only the Keras layers take (``seed``, ``data_format``).

The property tests of every strategy (valid draws keep the contract, in both data formats;
values from outside the domains raise the framework-free spec's error) are written once for both
frameworks in ``contracts/test_property_contract.py``. Here: every bad ``seed`` / ``data_format``
value is refused with a message that names the layer and the argument and says what it got, good
values are accepted, and a catalogue prints each Keras-only message once
(``pytest -s -k catalogue``).
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math

import pytest
from property_domains import BAD_VALUES, names

from maskmix import registry

NAMES = names("keras")


def layer_class(name: str) -> type:
    return registry.implementation(name, "keras")


def keras_only_errors() -> list[tuple[str, str, object, type, str]]:
    """``(layer, argument, value, error type, message)`` for bad ``seed`` / ``data_format`` values."""
    rows = []
    for name in NAMES:
        for param in ("seed", "data_format"):
            for value in [*BAD_VALUES, 0.5, "NHWC", "channels_middle", b"channels_last"]:
                try:
                    layer_class(name)(**{param: value})
                except (ValueError, TypeError) as error:
                    rows.append((name, param, value, type(error), str(error)))
    return rows


KERAS_ONLY_ERRORS = keras_only_errors()


@pytest.mark.parametrize("name", NAMES)
def test_keras_only_arguments_are_validated(name: str) -> None:
    rows = [row for row in KERAS_ONLY_ERRORS if row[0] == name]
    refused = {(param, repr(value)) for _, param, value, _, _ in rows}
    for value in (math.nan, math.inf, 0.5, 1.0, True, False, "x", (-1, 2), bytes(2), 1 + 2j):
        assert ("seed", repr(value)) in refused, value
    for value in (0, 1, "x", "", "NHWC", "channels_middle", b"channels_last", True, math.nan):
        assert ("data_format", repr(value)) in refused, value
    for _, param, value, error_type, message in rows:
        assert message.startswith(f"{name}: {param} must be "), message
        assert message.endswith(f"got {value!r}"), message
        assert error_type is (TypeError if param == "seed" else ValueError)
    # Good values are accepted: ints (any sign) and None; both layouts and None.
    for seed in (None, 0, 1, -1, 2**31 - 1):
        layer_class(name)(seed=seed)
    for data_format in (None, "channels_last", "channels_first"):
        layer_class(name)(data_format=data_format)


def test_message_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    """The Keras-only messages, each once (``pytest -s -k catalogue``); the strategy parameters'
    messages are the spec's (``contracts/test_property_contract.py::test_message_catalogue``)."""
    seen: dict[str, None] = {}
    for *_, error_type, message in KERAS_ONLY_ERRORS:
        seen.setdefault(f"{error_type.__name__:10s} {message}", None)
    with capsys.disabled():
        print(f"\n{len(seen)} distinct Keras-only validation messages:")
        for line in seen:
            print("  " + line)
    assert len(seen) > 20
