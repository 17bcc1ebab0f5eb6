"""The framework-free parameter layer: defaults, normalisation and every validation rule."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from maskmix import params as P
from maskmix._checks import MAX_INTEGER

ALL = list(P.SPECS.values())


def test_ten_strategies_are_specified() -> None:
    assert sorted(P.SPECS) == sorted(
        [
            "RandomCutout",
            "RandomErasing",
            "RandomHideAndSeek",
            "RandomGridMask",
            "RandomCutMix",
            "RandomMixup",
            "RandomMixupOrCutMix",
            "RandomCutBlur",
            "RandomCutThumbnail",
            "RandomCutPaste",
            "RandomCutSwap",
        ]
    )


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.name)
def test_defaults_validate_and_are_fixed_points(spec: P.StrategySpec) -> None:
    values = spec.validate({})
    assert set(values) == set(spec.param_names)
    # A normalised configuration (also after a JSON-like round trip: tuples become lists) is valid as is.
    assert spec.validate(values) == values
    as_lists = {k: (_listify(v)) for k, v in values.items()}
    assert spec.validate(as_lists) == values


def _listify(v):
    if isinstance(v, tuple):
        return [_listify(x) for x in v]
    return v


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.name)
def test_common_parameters_everywhere(spec: P.StrategySpec) -> None:
    for name in ("augmentation_ratio", "bernoulli_mix", "pixels_range"):
        assert name in spec.param_names
    assert ("num_classes" in spec.param_names) == spec.mixes_labels


def test_spec_defaults_match_spec_table() -> None:
    d = {name: spec.defaults() for name, spec in P.SPECS.items()}
    assert d["RandomCutout"]["patch_area"] == 0.1 and d["RandomCutout"]["allow_partial"] is False
    assert d["RandomErasing"]["patch_area"] == (0.05, 0.3)
    assert d["RandomErasing"]["patch_aspect_ratio"] == (0.3, 3.0)
    assert d["RandomErasing"]["patch_count"] == 1
    assert d["RandomHideAndSeek"]["grid_size"] == (8, 8)
    assert d["RandomHideAndSeek"]["erased_patches"] == (0, 5)
    assert d["RandomHideAndSeek"]["hide_prob"] is None
    assert d["RandomGridMask"]["unit_length"] == (0.2, 0.4)
    assert d["RandomGridMask"]["masked_ratio"] == 0.5 and d["RandomGridMask"]["rotation"] == 0
    assert d["RandomCutMix"]["alpha"] == 1.0 and d["RandomCutMix"]["patch_area"] is None
    assert d["RandomMixup"]["alpha"] == 1.0
    assert d["RandomCutBlur"]["blur_factor"] == 0.1 and d["RandomCutBlur"]["resize_method"] == "bilinear"
    assert d["RandomCutThumbnail"]["thumbnail_area"] == 0.1 and d["RandomCutThumbnail"]["mix_images"] is False
    assert d["RandomCutPaste"]["color_jitter"] == 0.0 and d["RandomCutPaste"]["return_labels"] is False
    assert d["RandomCutSwap"]["return_labels"] is False
    for spec in ALL:
        defaults = spec.defaults()
        assert defaults["augmentation_ratio"] == 1.0 and defaults["bernoulli_mix"] is False
        assert defaults["pixels_range"] is None
        if "fill_method" in defaults:
            assert defaults["fill_method"] == "black"
        if "label_smoothing" in defaults:
            assert defaults["label_smoothing"] == 0.0 and defaults["num_classes"] is None


def test_normalisation() -> None:
    v = P.RANDOM_ERASING.validate({"patch_area": 0.2, "patch_aspect_ratio": [0.5, 2], "patch_count": (1, 3)})
    assert v["patch_area"] == (0.2, 0.2)
    assert v["patch_aspect_ratio"] == (0.5, 2.0)
    assert v["patch_count"] == (1, 3)
    v = P.RANDOM_HIDE_AND_SEEK.validate({"grid_size": [4, (8, 16)]})
    assert v["grid_size"] == ((4, 4), (8, 16))
    assert P.RANDOM_HIDE_AND_SEEK.validate({"grid_size": (4, 8)})["grid_size"] == ((4, 8),)
    assert P.RANDOM_HIDE_AND_SEEK.validate({"grid_size": 6})["grid_size"] == ((6, 6),)
    assert P.RANDOM_CUTOUT.validate({"fill_method": "GRAY"})["fill_method"] == "gray"
    assert P.RANDOM_CUTOUT.validate({"fill_method": [0.1, 0.2, 0.3]})["fill_method"] == (0.1, 0.2, 0.3)
    assert P.RANDOM_CUTOUT.validate({"fill_method": 2})["fill_method"] == 2.0
    assert P.RANDOM_GRID_MASK.validate({"unit_length": 1})["unit_length"] == (1.0, 1.0)
    # numpy scalars are numbers; numpy bools are bools.
    assert P.RANDOM_CUTOUT.validate({"patch_area": np.float32(0.25)})["patch_area"] == (0.25, 0.25)
    assert P.RANDOM_CUTOUT.validate({"allow_partial": np.bool_(True)})["allow_partial"] is True
    assert P.RANDOM_ERASING.validate({"patch_count": np.int64(2)})["patch_count"] == (2, 2)


# (spec, parameter, bad value, exception, message fragment). The full message format is
# "<Transform>: <param> must be <expected>; got <repr(value)>".
BAD = [
    (P.RANDOM_ERASING, "patch_area", (0.5, 0.2), ValueError,
     r"RandomErasing: patch_area must be a float in \(0, 1\) or a pair \(lo, hi\) with 0 < lo <= hi < 1; "
     r"got \(0\.5, 0\.2\)"),
    (P.RANDOM_ERASING, "patch_area", 0.0, ValueError, r"RandomErasing: patch_area must be .*; got 0\.0"),
    (P.RANDOM_ERASING, "patch_area", 1.0, ValueError, r"patch_area must be a float in \(0, 1\)"),
    (P.RANDOM_ERASING, "patch_area", math.nan, ValueError, r"patch_area .*got nan"),
    (P.RANDOM_ERASING, "patch_area", math.inf, ValueError, r"patch_area .*got inf"),
    (P.RANDOM_ERASING, "patch_area", True, TypeError, r"patch_area .*got True"),
    (P.RANDOM_ERASING, "patch_area", (0.1, 0.2, 0.3), ValueError, r"patch_area .*got \(0\.1, 0\.2, 0\.3\)"),
    (P.RANDOM_ERASING, "patch_area", (0.1,), ValueError, r"patch_area .*pair"),
    (P.RANDOM_ERASING, "patch_area", "big", TypeError, r"patch_area .*got 'big'"),
    (P.RANDOM_ERASING, "patch_area", (0.1, "x"), TypeError, r"patch_area"),
    (P.RANDOM_ERASING, "patch_area", (0.1, math.nan), ValueError, r"patch_area"),
    (P.RANDOM_ERASING, "patch_aspect_ratio", 0, ValueError, r"patch_aspect_ratio must be a float > 0 or a pair"),
    (P.RANDOM_ERASING, "patch_aspect_ratio", (3.0, 0.3), ValueError, r"patch_aspect_ratio .*0 < lo <= hi"),
    (P.RANDOM_ERASING, "patch_aspect_ratio", -1.0, ValueError, r"patch_aspect_ratio"),
    (P.RANDOM_ERASING, "patch_aspect_ratio", (0.3, math.inf), ValueError, r"patch_aspect_ratio"),
    (P.RANDOM_ERASING, "patch_count", 0, ValueError, r"patch_count must be a positive integer or a pair"),
    (P.RANDOM_ERASING, "patch_count", 1.5, TypeError, r"patch_count .*got 1\.5"),
    (P.RANDOM_ERASING, "patch_count", (3, 1), ValueError, r"patch_count .*1 <= lo <= hi"),
    (P.RANDOM_ERASING, "patch_count", True, TypeError, r"patch_count"),
    (P.RANDOM_ERASING, "fill_method", "blue", ValueError, r"fill_method must be one of 'black'.*got 'blue'"),
    (P.RANDOM_ERASING, "fill_method", math.nan, ValueError, r"fill_method .*got nan"),
    (P.RANDOM_ERASING, "fill_method", (), ValueError, r"fill_method"),
    (P.RANDOM_ERASING, "fill_method", (0.1, "a"), TypeError, r"fill_method"),
    (P.RANDOM_ERASING, "fill_method", (0.1, math.inf), ValueError, r"fill_method"),
    (P.RANDOM_ERASING, "fill_method", None, TypeError, r"fill_method"),
    (P.RANDOM_ERASING, "fill_method", False, TypeError, r"fill_method"),
    (P.RANDOM_CUTOUT, "allow_partial", 1, TypeError, r"RandomCutout: allow_partial must be a bool; got 1"),
    (P.RANDOM_CUTOUT, "augmentation_ratio", 1.5, ValueError,
     r"RandomCutout: augmentation_ratio must be a float in \[0, 1\]; got 1\.5"),
    (P.RANDOM_CUTOUT, "augmentation_ratio", -0.1, ValueError, r"augmentation_ratio"),
    (P.RANDOM_CUTOUT, "augmentation_ratio", math.nan, ValueError, r"augmentation_ratio"),
    (P.RANDOM_CUTOUT, "augmentation_ratio", "half", TypeError, r"augmentation_ratio"),
    (P.RANDOM_CUTOUT, "augmentation_ratio", False, TypeError, r"augmentation_ratio"),
    (P.RANDOM_CUTOUT, "bernoulli_mix", "yes", TypeError, r"bernoulli_mix must be a bool"),
    (P.RANDOM_CUTOUT, "pixels_range", (1.0, 0.0), ValueError,
     r"RandomCutout: pixels_range must be None or a pair \(lo, hi\) of finite floats with lo < hi; got \(1\.0, 0\.0\)"),
    (P.RANDOM_CUTOUT, "pixels_range", (0.0, 0.0), ValueError, r"pixels_range"),
    (P.RANDOM_CUTOUT, "pixels_range", 1.0, TypeError, r"pixels_range"),
    (P.RANDOM_CUTOUT, "pixels_range", (0.0, math.inf), ValueError, r"pixels_range"),
    (P.RANDOM_CUTOUT, "pixels_range", (0.0, 1.0, 2.0), TypeError, r"pixels_range"),
    (P.RANDOM_HIDE_AND_SEEK, "grid_size", 0, ValueError, r"RandomHideAndSeek: grid_size must be a positive integer"),
    (P.RANDOM_HIDE_AND_SEEK, "grid_size", (4, 0), ValueError, r"grid_size"),
    (P.RANDOM_HIDE_AND_SEEK, "grid_size", [], ValueError, r"grid_size .*got \[\]"),
    (P.RANDOM_HIDE_AND_SEEK, "grid_size", [4, "x"], TypeError, r"grid_size"),
    (P.RANDOM_HIDE_AND_SEEK, "grid_size", (4, 4, 4), TypeError, r"grid_size"),
    (P.RANDOM_HIDE_AND_SEEK, "grid_size", 2.5, TypeError, r"grid_size"),
    (P.RANDOM_HIDE_AND_SEEK, "erased_patches", -1, ValueError, r"erased_patches must be a integer >= 0|erased_patches"),
    (P.RANDOM_HIDE_AND_SEEK, "hide_prob", 1.0, ValueError, r"hide_prob must be a float in \(0, 1\)"),
    (P.RANDOM_HIDE_AND_SEEK, "hide_prob", 0.0, ValueError, r"hide_prob"),
    (P.RANDOM_GRID_MASK, "unit_length", 1.5, ValueError, r"unit_length must be a float in \(0, 1\]"),
    (P.RANDOM_GRID_MASK, "masked_ratio", 1.0, ValueError, r"masked_ratio must be a float in \(0, 1\)"),
    (P.RANDOM_GRID_MASK, "rotation", 400, ValueError, r"rotation must be a float in \[0, 360\]"),
    (P.RANDOM_GRID_MASK, "rotation", -1, ValueError, r"rotation"),
    (P.RANDOM_CUTMIX, "alpha", 0.0, ValueError, r"RandomCutMix: alpha must be a float in \(0, 1e\+30\]; got 0\.0"),
    (P.RANDOM_CUTMIX, "alpha", math.inf, ValueError, r"alpha"),
    (P.RANDOM_CUTMIX, "alpha", "1", TypeError, r"alpha"),
    (P.RANDOM_CUTMIX, "num_classes", 0, ValueError, r"num_classes must be an integer >= 1; got 0"),
    (P.RANDOM_CUTMIX, "num_classes", 10.0, TypeError, r"num_classes"),
    (P.RANDOM_CUTMIX, "label_smoothing", 1.0, ValueError, r"label_smoothing must be a float in \[0, 1\); got 1\.0"),
    (P.RANDOM_CUTMIX, "patch_area", (0.2, 0.1), ValueError, r"RandomCutMix: patch_area"),
    (P.RANDOM_MIXUP, "alpha", -1, ValueError, r"RandomMixup: alpha"),
    (P.RANDOM_CUTBLUR, "resize_method", "lanczos", ValueError,
     r"RandomCutBlur: resize_method must be one of 'nearest', 'bilinear', 'bicubic', 'area'; got 'lanczos'"),
    (P.RANDOM_CUTBLUR, "resize_method", 3, TypeError, r"resize_method"),
    (P.RANDOM_CUTBLUR, "blur_factor", 1.0, ValueError, r"blur_factor"),
    (P.RANDOM_CUT_THUMBNAIL, "thumbnail_area", 0, ValueError, r"RandomCutThumbnail: thumbnail_area"),
    (P.RANDOM_CUT_THUMBNAIL, "mix_images", "no", TypeError, r"mix_images must be a bool"),
    (P.RANDOM_CUTPASTE, "color_jitter", 1.5, ValueError, r"RandomCutPaste: color_jitter must be a float in \[0, 1\]"),
    (P.RANDOM_CUTPASTE, "return_labels", None, TypeError, r"return_labels must be a bool"),
    (P.RANDOM_CUTSWAP, "patch_aspect_ratio", (0, 1), ValueError, r"RandomCutSwap: patch_aspect_ratio"),
]


@pytest.mark.parametrize(("spec", "name", "value", "exc", "match"), BAD, ids=lambda x: repr(x)[:40])
def test_invalid_values_are_rejected_with_named_message(spec, name, value, exc, match) -> None:
    with pytest.raises(exc, match=match):
        spec.validate({name: value})


def test_message_names_the_subclass_owner() -> None:
    with pytest.raises(ValueError, match=r"^MyErasing: patch_area"):
        P.RANDOM_ERASING.validate({"patch_area": 2.0}, owner="MyErasing")


def test_unknown_parameter() -> None:
    with pytest.raises(TypeError, match=r"RandomCutout: unexpected parameter\(s\) patch_size; expected patch_area"):
        P.RANDOM_CUTOUT.validate({"patch_size": 3})


@pytest.mark.parametrize(
    ("ratio", "batch", "expected"),
    [(0.5, 3, 2), (0.5, 5, 3), (0.5, 4, 2), (0.25, 2, 1), (0.0, 7, 0), (1.0, 7, 7), (0.3, 10, 3), (0.1, 4, 0),
     (0.125, 4, 1), (0.5, 0, 0), (0.58, 25, 15), (0.53, 50, 27), (0.29, 50, 15), (0.7, 45, 32), (0.145, 100, 15)],
)
def test_num_selected_rounds_half_up(ratio: float, batch: int, expected: int) -> None:
    assert P.num_selected(ratio, batch) == expected


def test_import_maskmix_is_light() -> None:
    code = (
        "import sys, maskmix, maskmix.params; "
        "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'jax', 'numpy') if m in sys.modules]; "
        "print(heavy); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_maskmix_torch_does_not_import_keras() -> None:
    code = (
        "import sys, maskmix.torch; "
        "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_package_ships_py_typed() -> None:
    from importlib import resources

    assert resources.files("maskmix").joinpath("py.typed").is_file()


# Integer forms the checkers take, from the largest accepted value ``n``: a count or side, a range
# ending in it, a list of candidates, an open pixel range, a grid of candidates.
_INTEGER_FORMS = (
    lambda n: n,
    lambda n: (1, n),
    lambda n: [2, n],
    lambda n: (2, n),
    lambda n: [(4, n)],
)


def _accepted(spec: P.StrategySpec, param: P.Param, value: object) -> bool:
    try:
        param.check(spec.name, param.name, value)
    except (TypeError, ValueError):
        return False
    return True


def _integer_cases() -> list[tuple[P.StrategySpec, str, object, object]]:
    cases = []
    for spec in ALL:
        for param in spec.params:
            if param.name == "mask_fill":
                continue  # any integer: checked against the masks' dtype at call time
            for form in _INTEGER_FORMS:
                if not _accepted(spec, param, form(MAX_INTEGER)) or _accepted(spec, param, form(MAX_INTEGER + 0.5)):
                    continue  # not this form, or a real number (a fill value, an alpha)
                cases.append((spec, param.name, form(MAX_INTEGER), form(MAX_INTEGER + 1)))
    return cases


@pytest.mark.parametrize(("spec", "name", "largest", "beyond"), _integer_cases(),
                         ids=lambda v: v.name if isinstance(v, P.StrategySpec) else repr(v))
def test_integer_parameters_stop_at_int32(spec: P.StrategySpec, name: str, largest: object, beyond: object) -> None:
    # 2**31 and beyond passed validation and failed inside torch or TensorFlow (an overflow while
    # unpacking, an allocation of exabytes) with messages naming no parameter.
    spec.validate({**_without_supersession(spec, name), name: largest})
    with pytest.raises(ValueError, match=rf"^{spec.name}: {name} must be at most 2147483647 .*; got "):
        spec.validate({**_without_supersession(spec, name), name: beyond})


def _without_supersession(spec: P.StrategySpec, name: str) -> dict[str, object]:
    """Settings under which ``name`` is read (CutPaste's scar sizes need scars)."""
    return {"scar_prob": 0.5} if name.startswith("scar_") else {}


def test_integer_parameters_found() -> None:
    # The parametrisation above is found by trying values: it must reach every integer parameter.
    found = {(spec.name, name) for spec, name, _, _ in _integer_cases()}
    assert {("RandomCutout", "patch_count"), ("RandomCutout", "patch_side"), ("RandomErasing", "attempts"),
            ("RandomHideAndSeek", "grid_size"), ("RandomHideAndSeek", "erased_patches"),
            ("RandomGridMask", "unit_pixels"), ("RandomCutPaste", "scar_width"), ("RandomCutSwap", "saliency_clusters"),
            ("RandomCutMix", "num_classes")} <= found
