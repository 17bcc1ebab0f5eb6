"""The strategy registry (:mod:`maskmix.registry`): declarations are checked, lookups filter by
framework and family, and a strategy declared through the registry alone is picked up by every
test battery of the frameworks that implement it (and skipped by the others)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maskmix import registry
from maskmix._checks import fraction_or_range
from maskmix.domains import Booleans, Choice, Integers, ListOf, LogUniform, OneOf, OrRange, TupleOf, Uniform
from maskmix.params import COMMON_PARAMS
from maskmix.registry import Param, StrategySpec, Variant

REPO = Path(__file__).resolve().parents[1]


def _spec(name: str = "RandomThrowaway", **fields) -> StrategySpec:
    size = Param("size", 0.5, fraction_or_range(allow_one=True), "Side fraction.", OrRange(Uniform(0.1, 1.0)))
    return StrategySpec(name, (size, *COMMON_PARAMS), "A throwaway strategy.", flag=name.lower(),
                        frameworks=("torch",), **fields)


def test_builtins_are_registered_with_an_implementation_per_framework() -> None:
    for spec in registry.specs():
        assert spec.flag and spec.example is not None and spec.variants, spec.name
        for framework in spec.frameworks:
            cls = registry.implementation(spec.name, framework)
            assert cls.__name__ == spec.name and cls.spec is spec
    assert [s.name for s in registry.specs(family="mixing")] == ["RandomCutMix", "RandomMixup", "RandomMixupOrCutMix"]
    assert all(s.family == "pasting" for s in registry.specs(family="pasting"))


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match=r"StrategySpec RandomThrowaway: example is not a valid configuration: "
                                         r"RandomThrowaway: size must be a float in \(0, 1\]"):
        _spec(example={"size": 2.0})
    with pytest.raises(ValueError, match=r"StrategySpec RandomThrowaway: variant big is not a valid configuration"):
        _spec(variants={"big": Variant({"sise": 0.5})})
    with pytest.raises(ValueError, match=r"StrategySpec RandomThrowaway: family must be one of"):
        _spec(family="blending")
    with pytest.raises(ValueError, match=r"frameworks must be a non-empty subset of \('torch', 'keras'\)"):
        StrategySpec("RandomThrowaway", COMMON_PARAMS, "x", frameworks=("jax",))
    with pytest.raises(ValueError, match=r"mixing_switch 'mix' is not a parameter"):
        _spec(mixing_switch="mix")
    with pytest.raises(ValueError, match=r"StrategySpec RandomThrowaway: switched names \['mix', 'sise'\] that are "
                                         r"not parameters"):
        _spec(switched={"sise": "mix"})


SWITCHED = [(spec.name, param, switch) for spec in registry.specs() for param, switch in spec.switched.items()]


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize(("name", "param", "switch"), SWITCHED)
def test_a_parameter_that_acts_only_with_a_switch_is_refused_with_the_switch_off(framework: str, name: str,
                                                                                 param: str, switch: str) -> None:
    """Never silently ignored: e.g. Cut-Thumbnail's thumbnail_weight without mix_images would leave
    the labels untouched, CutPaste's three_way_labels without return_labels would label nothing."""
    if framework == "keras":
        pytest.importorskip("keras")
    spec = registry.get(name)
    default, domain = spec.defaults()[param], spec.param(param).domain
    rng = random.Random(0)
    drawn = [domain.draw(rng) for _ in range(100)] if domain is not None else []

    def valid_with_the_switch_on(value: object) -> bool:
        try:
            spec.validate({param: value, switch: True})
        except (TypeError, ValueError):
            return False
        return value != default

    value = next(v for v in [*drawn, True, 0.25, 0.1, 2] if valid_with_the_switch_on(v))
    cls = registry.implementation(name, framework)
    with pytest.raises(ValueError, match=rf"^{name}: {param} applies only with {switch}=True; got {param}="
                                         rf"{value!r} with {switch}=False$"):
        cls(**{param: value})
    built = cls(**{param: value, switch: True})  # with the switch on: accepted and kept
    assert getattr(built, param) == value


SUPERSEDED = [pytest.param(spec.name, param, index, id=f"{spec.name}-{param}-{index}")
              for spec in registry.specs() for param in spec.superseded
              for index in range(len(spec.supersessions(param)))]


def _valid(spec: StrategySpec, config: dict) -> bool:
    try:
        spec.validate(config)
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize(("name", "param", "index"), SUPERSEDED)
def test_a_parameter_another_replaces_is_refused_where_it_has_no_effect(framework: str, name: str, param: str,
                                                                         index: int) -> None:
    """Never silently ignored: Cutout's patch_area beside a patch_side (also through
    from_paper("cifar10", patch_area=...)), GridMask's whole_degrees without rotation, CutPaste's
    scar sizes without scars, CutMix's box_rounding with an area range had no effect."""
    if framework == "keras":
        pytest.importorskip("keras")
    spec = registry.get(name)
    rule = spec.supersessions(param)[index]
    rng = random.Random(0)

    def draws(of: str) -> list:
        domain = spec.param(of).domain
        return [*(domain.draw(rng) for _ in range(200)), None, 0, 0.0, 1, True, 0.5, (2, 4)]

    default = spec.defaults()[param]
    replacing = next(v for v in draws(rule.by) if rule.replaces(v) and _valid(spec, {rule.by: v}))
    acting = next(v for v in draws(rule.by) if not rule.replaces(v) and _valid(spec, {rule.by: v}))
    value = next(v for v in draws(param) if _valid(spec, {param: v, rule.by: acting})
                 and spec.validate({param: v, rule.by: acting})[param] != spec.validate({rule.by: acting})[param])
    cls = registry.implementation(name, framework)
    message = (rf"^{name}: {param} has no effect when {re.escape(rule.describe())} \({rule.by}=.*\); "
               rf"leave it at its default {re.escape(repr(default))}; got {param}=")
    with pytest.raises(ValueError, match=message):
        cls(**{param: value, rule.by: replacing})
    assert cls(**{rule.by: replacing}) is not None  # the default is accepted
    built = cls(**{param: value, rule.by: acting})  # where it acts: accepted and kept
    assert getattr(built, param) == spec.validate({param: value, rule.by: acting})[param]


def test_superseded_parameters_are_declared_where_another_replaces_them() -> None:
    assert set(registry.get("RandomCutout").superseded) == {"patch_area"}
    assert set(registry.get("RandomHideAndSeek").superseded) == {"erased_patches", "grid_size"}
    assert set(registry.get("RandomGridMask").superseded) == {"unit_length", "masked_ratio", "whole_degrees"}
    assert set(registry.get("RandomCutMix").superseded) == {"box_rounding"}
    assert set(registry.get("RandomMixupOrCutMix").superseded) == {"box_rounding", "switch_prob"}
    assert set(registry.get("RandomCutBlur").superseded) == {"patch_area", "patch_aspect_ratio"}
    assert set(registry.get("RandomCutPaste").superseded) == {"scar_width", "scar_length", "scar_rotation"}
    with pytest.raises(ValueError, match=r"StrategySpec RandomThrowaway: superseded names \['sise'\] that are not "
                                         r"parameters"):
        _spec(superseded={"size": registry.Supersession("sise")})


def test_switched_parameters_are_declared_for_the_options_that_change_labels() -> None:
    assert registry.get("RandomCutThumbnail").switched == {"thumbnail_weight": "mix_images",
                                                           "label_smoothing": "mix_images"}
    assert registry.get("RandomCutPaste").switched == {"three_way_labels": "return_labels"}


def test_sweeps_are_checked_at_declaration() -> None:
    with pytest.raises(ValueError, match=r"StrategySpec RandomThrowaway: sweep size=2.0 \(gallery big\) is not a "
                                         r"valid configuration: RandomThrowaway: size must be a float in \(0, 1\]"):
        _spec(gallery={"big": {"size": 0.5}}, sweep=("size", (0.2, 2.0)))
    with pytest.raises(ValueError, match=r"sweep size=0.0 \(gallery defaults\) is not a valid configuration"):
        _spec(sweep=("size", (0.5, 0.0)))  # no gallery: the values are checked against the defaults
    with pytest.raises(ValueError, match=r"sweep parameter 'sise' is not a parameter"):
        _spec(sweep=("sise", (0.5,)))
    with pytest.raises(ValueError, match=r"sweep must be \(parameter name, non-empty tuple of values\)"):
        _spec(sweep=("size", ()))
    spec = _spec(gallery={"g": {"augmentation_ratio": 0.5}}, sweep=("size", (0.2, 0.6)))
    assert spec.sweep_configs() == {"size=0.2": {"augmentation_ratio": 0.5, "size": 0.2},
                                    "size=0.6": {"augmentation_ratio": 0.5, "size": 0.6}}
    assert _spec().sweep_configs() == {}


def test_register_refuses_taken_names_and_flags_and_unregister_forgets() -> None:
    with pytest.raises(ValueError, match=r"register: a strategy named 'RandomCutout' is already registered"):
        registry.register(_spec("RandomCutout"))
    with pytest.raises(ValueError, match=r"register: the flag 'cutout' of RandomOther is already taken"):
        registry.register(StrategySpec("RandomOther", COMMON_PARAMS, "x", flag="cutout"))
    with pytest.raises(TypeError, match=r"register: expected a StrategySpec"):
        registry.register("RandomCutout")  # type: ignore[arg-type]
    spec = registry.register(_spec())
    try:
        assert registry.get("RandomThrowaway") is spec and spec in registry.specs("torch")
        assert spec not in registry.specs("keras")
        with pytest.raises(ValueError, match=r"RandomThrowaway is not implemented for keras; it is for torch"):
            registry.implementation("RandomThrowaway", "keras")
        with pytest.raises(LookupError, match=r"RandomThrowaway: its spec lists torch but no torch class declares it"):
            registry.implementation("RandomThrowaway", "torch")
    finally:
        registry.unregister("RandomThrowaway")
    with pytest.raises(KeyError, match=r"no strategy named 'RandomThrowaway' is registered"):
        registry.get("RandomThrowaway")
    with pytest.raises(ValueError, match=r"specs: framework must be one of"):
        registry.specs("tensorflow")


DOMAINS = [
    Uniform(0.2, 0.7), LogUniform(0.1, 10.0), Integers(2, 5), Choice(("a", "b")), Booleans(),
    OneOf((Integers(1, 2), Uniform(5.0, 6.0))), OrRange(Integers(0, 9)), TupleOf((Integers(1, 3), Booleans())),
    ListOf(Integers(1, 9), 1, 3),
]


def _inside(domain, value) -> bool:
    """Membership written independently of the domains' own code."""
    kind = type(domain).__name__
    if kind in ("Uniform", "LogUniform"):
        return isinstance(value, float) and domain.lo <= value <= domain.hi * (1 + 1e-12)
    if kind == "Integers":
        return isinstance(value, int) and domain.lo <= value <= domain.hi
    if kind == "Choice":
        return value in domain.options
    if kind == "Booleans":
        return isinstance(value, bool)
    if kind == "OneOf":
        return any(_inside(option, value) for option in domain.options)
    if kind == "OrRange":
        if isinstance(value, tuple):
            return len(value) == 2 and value[0] <= value[1] and all(_inside(domain.inner, v) for v in value)
        return _inside(domain.inner, value)
    if kind == "TupleOf":
        return len(value) == len(domain.items) and all(_inside(d, v) for d, v in zip(domain.items, value, strict=True))
    if kind == "ListOf":
        return domain.min_size <= len(value) <= domain.max_size and all(_inside(domain.inner, v) for v in value)
    raise AssertionError(kind)


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: type(d).__name__)
def test_domains_draw_inside_themselves_both_ways(domain) -> None:
    rng = random.Random(0)
    drawn = [domain.draw(rng) for _ in range(300)]
    assert all(_inside(domain, v) for v in drawn)

    @given(domain.strategy(st))
    def check(value) -> None:
        assert _inside(domain, value)

    check()


def test_log_uniform_draws_are_log_uniform() -> None:
    rng = random.Random(1)
    draws = [LogUniform(0.1, 10.0).draw(rng) for _ in range(4000)]
    below_one = sum(d < 1.0 for d in draws) / len(draws)
    assert abs(below_one - 0.5) < 0.03  # uniform over (0.1, 10) would put 9% below 1


# --------------------------------------------------------------------------------------------
# A strategy declared through the registry only, picked up by every battery.
# --------------------------------------------------------------------------------------------

PLUGIN = '''
"""Throwaway torch-only masking strategies, declared through the registry only."""
import dataclasses

import torch
from hypothesis import Phase, settings

from maskmix import registry
from maskmix._checks import fraction_or_range
from maskmix.domains import OrRange, Uniform
from maskmix.params import COMMON_PARAMS, FILL_PARAM
from maskmix.registry import Param, StrategySpec, Variant
from maskmix.torch import MaskingTransform, _sampling

# The broken strategy must fail the property battery; shrinking its counterexample (seconds of
# calls) would only make the failure message smaller.
settings.register_profile("no_shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("no_shrink")

SPEC = registry.register(StrategySpec(
    "RandomCornerErase",
    (Param("size", 0.5, fraction_or_range(allow_one=True), "Side of the erased square over the image side.",
           OrRange(Uniform(0.1, 1.0))), FILL_PARAM, *COMMON_PARAMS),
    "Erase a square at a random corner of each image (a test strategy).",
    flag="corner_erase",
    frameworks=("torch",),
    example={"size": 0.5},
    draw_everything={"size": (0.3, 0.8), "fill_method": "noise", "augmentation_ratio": 0.7},
    variants={"corner_erase": Variant({}, launches=LAUNCHES, memory=(1.5, 1.2)),
              "corner_erase_big": Variant({"size": (0.6, 1.0)}, launches=LAUNCHES, memory=(1.5, 1.2))},
    benchmarks={"RandomCornerErase": {}},
    gallery={"corner_erase": {}},
))


class RandomCornerErase(MaskingTransform):
    spec = SPEC

    def __init__(self, *, size=0.5, fill_method="black", **common):
        super().__init__(size=size, fill_method=fill_method, **common)

    def sample_region(self, batch_size, height, width, *, device, generator):
        side = _sampling.uniform(*self.size, (batch_size,), device=device, generator=generator)
        rows = (side * height).round_().clamp_(1, height).to(torch.int64)
        cols = (side * width).round_().clamp_(1, width).to(torch.int64)
        corner = _sampling.randint(0, 3, (batch_size,), device=device, generator=generator)
        top = torch.where(corner >= 2, height - rows, 0)
        left = torch.where(corner % 2 == 1, width - cols, 0)
        return {"top": top, "left": left, "height": rows, "width": cols}

    def region_mask(self, params, height, width):
        return _sampling.box_mask(params["top"], params["left"], params["height"], params["width"], height, width)



# The same strategy, except that it forgets the selection (unselected images change): the
# batteries must fail it, in the same run as they pass the correct one.
BROKEN_SPEC = registry.register(dataclasses.replace(
    SPEC, name="RandomBrokenCornerErase", flag="broken_corner_erase",
    variants={"broken_corner_erase": Variant({}, launches=LAUNCHES, memory=(1.5, 1.2))},
    benchmarks={"RandomBrokenCornerErase": {}}, gallery={"broken_corner_erase": {}},
))


class RandomBrokenCornerErase(RandomCornerErase):
    spec = BROKEN_SPEC

    def apply(self, images, params):
        mask = self.region_mask(params, *images.shape[-2:])
        return torch.where(mask.unsqueeze(1), self.fill_for(images, params), images)
'''

#: The batteries that must pick a torch-only strategy up, and those that must leave it out.
TORCH_BATTERIES = ["tests/contracts/test_conventions.py", "tests/contracts/test_torch_conventions.py",
                   "tests/contracts/test_call_errors.py", "tests/contracts/test_property_contract.py",
                   "tests/test_bad_input.py", "tests/test_launch_budget.py", "tests/test_determinism.py"]
KERAS_BATTERIES = ["tests/contracts/test_keras_conventions.py", "tests/test_keras_bad_input.py",
                   "tests/test_keras_properties.py", "tests/test_keras_determinism.py"]


def _pytest(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env,
                   "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "tests"), str(REPO),
                                                  os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", "-p", "throwaway_strategy", "-p", "no:cacheprovider", "-q",
               "-k", "corner or Corner", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environment, timeout=600)


def _launches() -> int:
    """What one call of the throwaway strategy launches, counted like the launch-budget test."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import torch
        from op_counts import KernelCounter

        from maskmix.torch import RandomCutout
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    x = torch.empty(64, 3, 32, 32, device="meta")
    cutout = RandomCutout(patch_area=(0.05, 0.3))  # a drawn side, as the throwaway draws its size
    cutout(x)  # first call: cached positions are built once, as in the launch-budget test
    with KernelCounter() as counter:
        cutout(x)
    return counter.kernels


@pytest.mark.slow
def test_a_strategy_declared_through_the_registry_only_is_picked_up_by_every_battery(tmp_path: Path) -> None:
    # The budget: Cutout's own count plus a margin (the throwaway draws a corner instead of a place,
    # and its mask goes through the generic region_mask path, not a box_keep).
    (tmp_path / "throwaway_strategy.py").write_text(textwrap.dedent(PLUGIN).replace("LAUNCHES",
                                                                                    str(_launches() + 16)))
    # One run over every battery: the torch ones run both strategies (compile tests are left to
    # the built-ins, Inductor costs seconds per graph here) and must pass the correct one and fail
    # the broken one; the Keras ones collect neither.
    run = _pytest(tmp_path, ["-m", "not compile", "-rA", *TORCH_BATTERIES, *KERAS_BATTERIES])
    lines = run.stdout.splitlines()
    outcome = {line.split(" ", 2)[1]: line.split(" ", 1)[0] for line in lines
               if line.startswith(("PASSED ", "SKIPPED ", "FAILED ", "ERROR "))}
    assert outcome, run.stdout[-4000:] + run.stderr[-2000:]
    correct = {test: result for test, result in outcome.items() if "roken" not in test}
    broken = {test: result for test, result in outcome.items() if "roken" in test}
    assert set(correct.values()) <= {"PASSED", "SKIPPED"}, [test for test, r in correct.items() if r != "PASSED"]
    for battery in TORCH_BATTERIES:
        assert any(test.startswith(battery) for test in correct), f"{battery} does not run RandomCornerErase"
    keras_ran = [test for test in outcome if test.startswith(tuple(KERAS_BATTERIES))]
    assert not keras_ran, f"a Keras battery ran a torch-only strategy: {keras_ran}"
    assert not any("keras-corner" in test for test in outcome), "the shared battery ran it through the Keras adapter"
    assert any("corner_erase_big" in test for test in correct), "the variants are not all run"
    # ... and the batteries do judge it: the strategy that forgets the selection fails them.
    failed = [test for test, result in broken.items() if result == "FAILED"]
    assert run.returncode == 1 and failed, run.stdout[-3000:]
    assert any(test.startswith(TORCH_BATTERIES[0]) for test in failed), failed
    assert any(test.startswith("tests/contracts/test_property_contract.py") for test in failed), failed
    assert "an unselected image changed" in run.stdout or "bit-identical" in run.stdout, run.stdout[-3000:]


def test_a_missing_parameter_is_named_with_the_strategy() -> None:
    spec = registry.SPECS["RandomCutout"]
    assert spec.param("patch_side").name == "patch_side"
    with pytest.raises(ValueError, match=r"^RandomCutout has no parameter 'nope'; its parameters: patch_area, "):
        spec.param("nope")


#: What a framework's constructors and functional forms take beyond their spec's parameters.
_FRAMEWORK_OWN = {"torch": {"generator", "labels_getter"},
                  "keras": {"seed", "value_range", "data_format", "name", "dtype", "trainable"}}


def _declared_keywords(function: object) -> set[str]:
    """The keyword names a signature declares to a type checker: its named parameters and the keys
    of its ``**kwargs: Unpack[TypedDict]``."""
    import inspect
    import typing

    import typing_extensions

    names = set()
    # The Keras modules import Unpack for the type checker only.
    hints = typing.get_type_hints(function, localns={"Unpack": typing_extensions.Unpack}, include_extras=True)
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            (options,) = typing.get_args(hints[name])
            names |= set(typing.get_type_hints(options))
        elif parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD) and name != "self":
            names.add(name)
    return names


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_every_parameter_a_strategy_takes_is_in_its_signatures(framework: str) -> None:
    """A parameter the runtime takes but the signature lacks is an error for a type checker (mypy:
    'Unexpected keyword argument "partner" for "RandomMixupOrCutMix"', the docs' timm pair mode)
    and missing from the IDE's completions; the functional forms likewise (Keras ``sampling``)."""
    if framework == "keras":
        pytest.importorskip("keras")
    import importlib

    module = importlib.import_module(f"maskmix.{framework}")
    functions = {name.replace("_", ""): getattr(module, name) for name in module.__all__ if name.startswith("random_")}
    checked = 0
    for spec in registry.specs(framework):
        cls = registry.implementation(spec.name, framework)
        owners = [(spec.name, cls.__init__)]
        if cls.__name__.lower() in functions:
            owners.append((f"{framework} {cls.__name__.lower()}", functions[cls.__name__.lower()]))
        for owner, function in owners:
            declared = _declared_keywords(function)
            assert set(spec.param_names) <= declared, (owner, sorted(set(spec.param_names) - declared))
            unknown = declared - {"images", "labels"} - set(spec.param_names) - _FRAMEWORK_OWN[framework]
            assert not unknown, (owner, sorted(unknown))
            checked += 1
    assert checked >= 12
