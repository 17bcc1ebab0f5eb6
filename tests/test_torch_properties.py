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

import maskmix.torch as mm
from maskmix.params import FILL_METHODS, RESIZE_METHODS, SPECS

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# Valid parameter domains.
# --------------------------------------------------------------------------------------------


def fraction_or_range(lo: float = 0.01, hi: float = 0.95) -> st.SearchStrategy:
    value = st.floats(lo, hi)
    return st.one_of(value, st.tuples(value, value).map(lambda p: tuple(sorted(p))))


def aspect_or_range() -> st.SearchStrategy:
    value = st.floats(0.1, 10.0)
    return st.one_of(value, st.tuples(value, value).map(lambda p: tuple(sorted(p))))


def count_or_range(lo: int, hi: int) -> st.SearchStrategy:
    value = st.integers(lo, hi)
    return st.one_of(value, st.tuples(value, value).map(lambda p: tuple(sorted(p))))


FILLS = st.one_of(st.sampled_from(FILL_METHODS), st.floats(-1.0, 2.0))
RESIZES = st.sampled_from(RESIZE_METHODS)

#: Per strategy: its class and a hypothesis strategy of valid keyword arguments.
DOMAINS: dict[str, tuple[type, st.SearchStrategy]] = {
    "RandomCutout": (mm.RandomCutout, st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "allow_partial": st.booleans(), "fill_method": FILLS})),
    "RandomErasing": (mm.RandomErasing, st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "patch_count": count_or_range(1, 4), "fill_method": FILLS})),
    "RandomHideAndSeek": (mm.RandomHideAndSeek, st.fixed_dictionaries(
        {"grid_size": st.one_of(st.integers(1, 9), st.tuples(st.integers(1, 9), st.integers(1, 9)),
                                st.lists(st.integers(1, 9), min_size=1, max_size=3)),
         "erased_patches": count_or_range(0, 6),
         "hide_prob": st.one_of(st.none(), st.floats(0.01, 0.99)),
         "fill_method": FILLS})),
    "RandomGridMask": (mm.RandomGridMask, st.fixed_dictionaries(
        {"unit_length": fraction_or_range(0.05, 1.0), "masked_ratio": st.floats(0.05, 0.95),
         "rotation": st.floats(0, 360), "fill_method": FILLS})),
    "RandomCutMix": (mm.RandomCutMix, st.one_of(
        st.fixed_dictionaries({"alpha": st.floats(0.05, 5.0)}),
        st.fixed_dictionaries({"alpha": st.floats(0.05, 5.0), "patch_area": fraction_or_range(),
                               "patch_aspect_ratio": aspect_or_range()}))),
    "RandomMixup": (mm.RandomMixup, st.fixed_dictionaries({"alpha": st.floats(0.05, 5.0)})),
    "RandomCutBlur": (mm.RandomCutBlur, st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "blur_factor": fraction_or_range(0.02, 0.98), "resize_method": RESIZES})),
    "RandomCutThumbnail": (mm.RandomCutThumbnail, st.fixed_dictionaries(
        {"thumbnail_area": fraction_or_range(), "resize_method": RESIZES, "mix_images": st.booleans()})),
    "RandomCutPaste": (mm.RandomCutPaste, st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "color_jitter": st.one_of(st.just(0.0), st.floats(0.0, 1.0)), "return_labels": st.booleans()})),
    "RandomCutSwap": (mm.RandomCutSwap, st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "return_labels": st.booleans()})),
}
COMMON = st.fixed_dictionaries({"augmentation_ratio": st.floats(0.0, 1.0), "bernoulli_mix": st.booleans()})


def test_every_strategy_has_a_domain() -> None:
    assert set(DOMAINS) == {spec.name for spec in SPECS.values()}
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
    height, width = draw(st.sampled_from([(1, 1), (1, 7), (6, 1), (2, 2), (5, 9), (16, 12), (13, 13)]))
    channels = draw(st.sampled_from([1, 2, 3, 4]))
    single = not need_batch and draw(st.booleans())
    shape = (channels, height, width) if single else (draw(st.sampled_from([0, 1, 2, 3, 5])), channels, height, width)
    images = make_images(shape, dtype, seed=draw(st.integers(0, 2**16)))
    if dtype.is_floating_point and images.numel() and draw(st.booleans()):
        images.view(-1)[0] = float("nan")  # NaN pixels propagate, never crash
    return images


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
    mixing = name in ("RandomCutMix", "RandomMixup") or kwargs.get("mix_images", False)
    if mixing:
        kwargs["num_classes"] = 4
        kwargs["label_smoothing"] = data.draw(st.sampled_from([0.0, 0.1]))
    transform = cls(generator=torch.Generator().manual_seed(seed), **kwargs)
    images = data.draw(batches(need_batch=mixing))
    before = images.clone()
    if mixing:
        labels = torch.arange(images.shape[0]) % 4
        out, soft, params = run_mixing(transform, images, labels)
        assert soft.shape == (images.shape[0], 4) and soft.dtype == torch.float32
        torch.testing.assert_close(soft.sum(dim=1), torch.ones(images.shape[0]), rtol=0, atol=1e-5)
        assert torch.all(soft >= 0)
    else:
        out, params = run_with_params(transform, images)
        if kwargs.get("return_labels"):
            # forward returns (images, is_augmented); make_params/transform give the images only.
            out_fwd, is_augmented = cls(generator=torch.Generator().manual_seed(seed), **kwargs)(images)
            assert bytes_equal(out_fwd, out)
            assert is_augmented.dtype == torch.int64 and is_augmented.shape == images.shape[:-3]
    assert bytes_equal(images, before), "the input was modified"
    assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    if params:  # empty for an empty batch
        selected = params["selected"]
        flat_in, flat_out = images.reshape(-1, *images.shape[-3:]), out.reshape(-1, *images.shape[-3:])
        for b in range(flat_in.shape[0]):
            if not bool(selected[b]):
                assert bytes_equal(flat_out[b], flat_in[b]), "an unselected image changed"
                if mixing:
                    smooth = kwargs["label_smoothing"]
                    expected = torch.full((4,), smooth / 4)
                    expected[int(labels[b])] += 1 - smooth
                    torch.testing.assert_close(soft[b], expected, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Invalid values always raise, naming the transform and the parameter.
# --------------------------------------------------------------------------------------------

BAD_VALUES = [
    math.nan, math.inf, -math.inf, -1, -0.5, 0, 0.0, 1, 1.0, 1.5, 2, 1000, True, False, None, "x", "",
    (0.5, 0.2), (0.1, 0.2, 0.3), (0.2,), (), [0.1], [0.3, math.nan], (True, 0.5), (0, 0), (-1, 2),
    {"a": 1}, bytes(2),
]


def _spec_errors() -> list[tuple[str, str, object, type, str]]:
    """(class, parameter, bad value, error type, message) for every value the spec refuses."""
    rows = []
    for class_name, (cls, _) in DOMAINS.items():
        spec = cls.spec
        for param in spec.params:
            for value in BAD_VALUES:
                try:
                    spec.validate({param.name: value}, owner=class_name)
                except (ValueError, TypeError) as error:
                    rows.append((class_name, param.name, value, type(error), str(error)))
    return rows


SPEC_ERRORS = _spec_errors()


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
