"""``from_paper``: the published settings declared in the registry build the same strategy on
every framework, and bad settings are refused by name (design §Conventions, "Errors").

What each setting must reproduce of its paper's sampler is tested per strategy, against an
independent re-implementation of the official code, in ``tests/papers/``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import pytest

from maskmix import registry
from maskmix.registry import Preset, StrategySpec

SETTINGS = [pytest.param(framework, spec.name, setting, id=f"{framework}-{spec.name}-{setting}")
            for spec in registry.specs() for framework in spec.frameworks for setting in spec.papers]
STRATEGIES = [pytest.param(framework, spec.name, id=f"{framework}-{spec.name}")
              for spec in registry.specs() for framework in spec.frameworks]


def test_some_strategies_declare_published_settings() -> None:
    assert SETTINGS, "no strategy declares a published setting"


@pytest.mark.parametrize(("framework", "name", "setting"), SETTINGS)
def test_from_paper_builds_the_declared_setting(framework: str, name: str, setting: str) -> None:
    spec = registry.get(name)
    built = registry.implementation(name, framework).from_paper(setting)
    expected = spec.validate(spec.papers[setting].config)
    assert {key: getattr(built, key) for key in spec.param_names} == expected
    assert spec.papers[setting].source


@pytest.mark.parametrize(("framework", "name"), STRATEGIES)
def test_from_paper_without_a_setting_takes_the_first_and_options_go_on_top(framework: str, name: str) -> None:
    spec = registry.get(name)
    cls = registry.implementation(name, framework)
    if not spec.papers:
        with pytest.raises(ValueError, match=f"^{name}.from_paper: no published setting is declared for {name}$"):
            cls.from_paper()
        return
    first = next(iter(spec.papers))
    default = cls.from_paper()
    assert {k: getattr(default, k) for k in spec.param_names} == spec.paper_config(first)
    changed = cls.from_paper(first, augmentation_ratio=0.25)
    assert changed.augmentation_ratio == 0.25
    with pytest.raises(ValueError, match=rf"^{name}.from_paper: setting must be one of '{first}'.* or None; "
                                         r"got 'no such paper'$"):
        cls.from_paper("no such paper")
    with pytest.raises(ValueError, match=rf"^{name}.from_paper: setting must be one of .*; got 3$"):
        cls.from_paper(3)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_an_option_replacing_a_settings_parameter_resets_it_and_a_replaced_option_is_refused(framework: str) -> None:
    """from_paper("cifar10", patch_area=0.9) kept the setting's 16-pixel side and ignored the area,
    silently: refused. from_paper("imagenet", rotation=0, kept_ratio=0.6) chose another mechanism
    than the setting's whole_degrees and masked_ratio, which go back to their defaults."""
    if framework == "keras":
        pytest.importorskip("keras")
    cutout, gridmask = (registry.implementation(name, framework) for name in ("RandomCutout", "RandomGridMask"))
    with pytest.raises(ValueError, match=r"^RandomCutout: patch_area has no effect when patch_side is set "
                                         r"\(patch_side=\(16, 16\)\); leave it at its default 0\.1; got "
                                         r"patch_area=\(0\.9, 0\.9\)$"):
        cutout.from_paper("cifar10", patch_area=0.9)
    grid = gridmask.from_paper("imagenet", rotation=0, kept_ratio=0.6)
    assert (grid.whole_degrees, grid.masked_ratio, grid.kept_ratio, grid.unit_pixels) == (False, (0.5, 0.5), 0.6,
                                                                                           (96, 223))


def test_a_setting_that_does_not_validate_fails_at_declaration() -> None:
    base = registry.get("RandomCutout")
    with pytest.raises(ValueError, match=r"paper setting 'typo' is not a valid configuration: .*patch_are"):
        StrategySpec(base.name, base.params, base.summary, flag="cutout_copy",
                     papers={"typo": Preset({"patch_are": 0.2}, "nowhere")})
