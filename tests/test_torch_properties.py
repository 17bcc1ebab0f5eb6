"""Property-based tests (hypothesis) of every torch strategy on what real pipelines feed them.

Random shapes (empty batches, single images, 1x1, 1xN, 2x2, H != W, odd batches), dtypes, channel
counts and parameter values drawn from each parameter's valid domain. For every draw: no crash,
shape/dtype/device preserved, input untouched, unselected images bit-identical (NaN included),
label rows summing to 1. Invalid values drawn from outside the domains always raise a
``ValueError``/``TypeError`` that names the transform and the parameter; a catalogue test prints
every distinct message once so they can be read side by side (``pytest -s -k catalogue``).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import ALL_DTYPES, make_images, run_mixing, run_with_params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_domains import BATCH_SIZES, CHANNELS, COMMON, SIZES, is_mixing, names, spec_errors
from property_domains import DOMAINS as PARAM_DOMAINS

from maskmix import registry
from maskmix.params import SPECS

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Per strategy: its class and a hypothesis strategy of valid keyword arguments (the domains are
#: framework-free and shared with the Keras property tests: ``property_domains.py``).
DOMAINS: dict[str, tuple[type, st.SearchStrategy]] = {
    name: (registry.implementation(name, "torch"), PARAM_DOMAINS[name]) for name in names("torch")
}


def test_every_strategy_has_a_domain() -> None:
    assert set(DOMAINS) == {spec.name for spec in SPECS.values() if "torch" in spec.frameworks}
    for class_name, (cls, _) in DOMAINS.items():
        assert cls.spec is SPECS[cls.spec.name] and cls.__name__ == class_name


def bytes_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality, NaN included."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.contiguous().view(torch.uint8),
                                                                      b.contiguous().view(torch.uint8))


@st.composite
def batches(draw: st.DrawFn, need_batch: bool) -> torch.Tensor:
    """Images of a random layout: (B, C, H, W) with B in {0, 1, 2, 3, 5}, or one (C, H, W) image."""
    dtype = draw(st.sampled_from(ALL_DTYPES))
    height, width = draw(st.sampled_from(SIZES))
    channels = draw(st.sampled_from(CHANNELS))
    single = not need_batch and draw(st.booleans())
    shape = (channels, height, width) if single else (draw(st.sampled_from(BATCH_SIZES)), channels, height, width)
    images = make_images(shape, dtype, seed=draw(st.integers(0, 2**16)))
    if dtype.is_floating_point and images.numel() and draw(st.booleans()):
        # NaN/inf pixels propagate, never crash.
        images.view(-1)[draw(st.integers(0, images.numel() - 1))] = draw(st.sampled_from([math.nan, math.inf]))
    return images


@st.composite
def label_batches(draw: st.DrawFn, batch_size: int, classes: int) -> torch.Tensor:
    """Class indices of a random integer dtype, or soft float32/float64 rows summing to 1."""
    kind = draw(st.sampled_from(["index", "float32", "float64"]))
    if kind == "index":
        dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.int16]))
        return (torch.arange(batch_size) % classes).to(dtype)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    rows = torch.rand(batch_size, classes, generator=gen, dtype=torch.float64) + 0.01
    return (rows / rows.sum(dim=1, keepdim=True)).to(getattr(torch, kind))


def smoothed(labels: torch.Tensor, classes: int, smoothing: float) -> torch.Tensor:
    """The soft rows an unselected image keeps: one-hot (or the input rows) with smoothing."""
    soft = labels.double() if labels.is_floating_point() else torch.eye(classes, dtype=torch.float64)[labels.long()]
    return soft * (1 - smoothing) + smoothing / classes


# --------------------------------------------------------------------------------------------
# Valid draws never crash and keep the contract.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DOMAINS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_valid_draws_keep_the_contract(name: str, data: st.DataObject) -> None:
    cls, domain = DOMAINS[name]
    kwargs = data.draw(domain) | data.draw(COMMON)
    seed = data.draw(st.integers(0, 2**31 - 1))
    mixing = is_mixing(name, kwargs)
    classes = 4
    if mixing:
        kwargs["num_classes"] = classes
        kwargs["label_smoothing"] = data.draw(st.sampled_from([0.0, 0.1]))
    transform = cls(generator=torch.Generator().manual_seed(seed), **kwargs)
    images = data.draw(batches(need_batch=mixing))
    before = images.clone()
    if mixing:
        labels = data.draw(label_batches(images.shape[0], classes))
        labels_before = labels.clone()
        out, soft, params = run_mixing(transform, images, labels)
        assert bytes_equal(labels, labels_before), "the labels were modified"
        out_dtype = torch.float64 if labels.dtype == torch.float64 else torch.float32
        assert soft.shape == (images.shape[0], classes) and soft.dtype == out_dtype
        torch.testing.assert_close(soft.sum(dim=1), torch.ones(images.shape[0], dtype=out_dtype), rtol=0, atol=1e-5)
        assert torch.all(soft >= 0)
    else:
        out, params = run_with_params(transform, images)
        if kwargs.get("return_labels"):
            # forward returns (images, is_augmented); make_params/transform give the images only.
            out_fwd, is_augmented = cls(generator=torch.Generator().manual_seed(seed), **kwargs)(images)
            assert bytes_equal(out_fwd, out)
            assert is_augmented.dtype == torch.int64 and is_augmented.shape == images.shape[:-3]
            if params:
                assert torch.equal(is_augmented.reshape(-1), params["selected"].long())
    assert bytes_equal(images, before), "the input was modified"
    assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    if params:  # empty for an empty batch
        selected = params["selected"]
        flat_in, flat_out = images.reshape(-1, *images.shape[-3:]), out.reshape(-1, *images.shape[-3:])
        if mixing:
            expected = smoothed(labels, classes, kwargs["label_smoothing"])
        for b in range(flat_in.shape[0]):
            if not bool(selected[b]):
                assert bytes_equal(flat_out[b], flat_in[b]), "an unselected image changed"
                if mixing:
                    torch.testing.assert_close(soft[b].double(), expected[b], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Invalid values always raise, naming the transform and the parameter.
# --------------------------------------------------------------------------------------------

SPEC_ERRORS = [row for row in spec_errors() if row[0] in DOMAINS]


def test_every_parameter_refuses_some_bad_value() -> None:
    for class_name, (cls, _) in DOMAINS.items():
        refused = {row[1] for row in SPEC_ERRORS if row[0] == class_name}
        assert refused == set(cls.spec.param_names), f"{class_name}: {set(cls.spec.param_names) - refused}"


@pytest.mark.parametrize("class_name", list(DOMAINS))
def test_invalid_values_raise_naming_transform_and_parameter(class_name: str) -> None:
    cls, _ = DOMAINS[class_name]
    rows = [row for row in SPEC_ERRORS if row[0] == class_name]
    assert len(rows) > 100
    for _, param, value, error_type, message in rows:
        with pytest.raises((ValueError, TypeError)) as info:
            cls(**{param: value})
        assert type(info.value) is error_type and str(info.value) == message, (param, value)
        assert message.startswith(f"{class_name}: {param} "), message
        assert "got " in message, f"the message does not say what it received: {message}"


def test_message_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, None] = {}
    for *_, error_type, message in SPEC_ERRORS:
        seen.setdefault(f"{error_type.__name__:10s} {message}", None)
    with capsys.disabled():
        print(f"\n{len(seen)} distinct validation messages:")
        for line in seen:
            print("  " + line)
    assert len(seen) > 50
