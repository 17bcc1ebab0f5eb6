"""maskmix.schedules: the schedules' values against the papers' formulas, their validation, and how
the integrations resolve ``schedules=`` (keys, schedulable parameters, values checked against the
parameter's domain), on the torch pipeline (the rules are framework-free, shared with Keras).
"""

from __future__ import annotations

import math

import pytest
import torch

from maskmix import registry, schedules
from maskmix.schedules import constant, from_config, piecewise, ramp, switch_off
from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomCutout, RandomErasing, RandomGridMask


def test_ramp_is_gridmasks_official_probability() -> None:
    # grid.set_prob(epoch, max_epoch): prob = st_prob * min(1, epoch / max_epoch), st_prob 0.8, 240 epochs.
    schedule = ramp(0.0, 0.8, epochs=240)
    for epoch in range(0, 300, 7):
        assert schedule(epoch) == pytest.approx(0.8 * min(1, epoch / 240), abs=1e-15)
    assert schedule(240) == 0.8 and schedule(10_000) == 0.8


def test_ramp_start_epoch_and_decreasing() -> None:
    down = ramp(1.0, 0.2, epochs=4, start_epoch=2)
    assert [down(e) for e in (0, 2, 3, 4, 6, 9)] == pytest.approx([1.0, 1.0, 0.8, 0.6, 0.2, 0.2])
    assert down.bounds() == (0.2, 1.0)
    # The end value itself once the ramp is done (0.2 + (0.9 - 0.2) * 1 is 0.8999999999999999).
    assert ramp(0.2, 0.9, epochs=3)(3) == 0.9


def test_switch_off_is_timms_mixup_off_epoch() -> None:
    # timm's train loop: `if epoch >= mixup_off_epoch: mixup_fn.mixup_enabled = False`.
    off_epoch = 5
    schedule = switch_off(0.7, epoch=off_epoch)
    for epoch in range(10):
        assert schedule(epoch) == (0.0 if epoch >= off_epoch else 0.7)
    assert schedule(4.999) == 0.7


def test_piecewise_and_constant() -> None:
    steps = piecewise([(1, 0.5), (3, 0.25)])
    assert [steps(e) for e in (0, 1, 2.5, 3, 100)] == [0.5, 0.5, 0.5, 0.25, 0.25]  # the first value holds before
    assert constant(0.3)(7) == 0.3 and constant(0.3).bounds() == (0.3, 0.3)


@pytest.mark.parametrize("schedule", [constant(0.25), ramp(0.0, 0.8, epochs=240, start_epoch=3),
                                      piecewise({0: 1.0, 4: 0.5}), switch_off(1.0, epoch=2)])
def test_config_round_trip(schedule) -> None:
    rebuilt = from_config(schedule.get_config())
    assert rebuilt == schedule
    assert [rebuilt(e) for e in range(6)] == [schedule(e) for e in range(6)]


@pytest.mark.parametrize(("build", "error", "message"), [
    (lambda: ramp(0, 1, epochs=0), ValueError, r"^ramp: epochs must be a finite number > 0; got 0"),
    (lambda: ramp(0, 1, epochs=math.inf), ValueError, r"^ramp: epochs must be a finite number; got inf"),
    (lambda: ramp(True, 1, epochs=3), TypeError, r"^ramp: start must be a finite number; got True"),
    (lambda: ramp(0, 1, epochs=3, start_epoch=-1), ValueError, r"^ramp: start_epoch must be a finite number >= 0"),
    (lambda: constant(math.nan), ValueError, r"^constant: value must be a finite number; got nan"),
    (lambda: constant("0.5"), TypeError, r"^constant: value must be a finite number; got '0.5'"),
    (lambda: switch_off(1.0, epoch=0), ValueError, r"^switch_off: epoch must be a finite number > 0; got 0"),
    (lambda: piecewise({}), TypeError, r"^piecewise: values must be a non-empty mapping"),
    (lambda: piecewise([(2, 1.0), (1, 0.5)]), ValueError, r"^piecewise: the epochs must be >= 0 and increasing"),
    (lambda: ramp(0, 1, epochs=2)(-1), ValueError, r"^ramp: epoch must be a finite number >= 0"),
    (lambda: from_config({"kind": "cosine"}), ValueError, r"^from_config: not a schedule config"),
    (lambda: from_config({"kind": "ramp", "start": 0}), ValueError, r"^from_config: the ramp schedule config lacks"),
    # An unknown key was dropped, silently ({"epochs": 3} beside a constant loaded as the constant).
    (lambda: from_config({"kind": "constant", "value": 0.5, "epochs": 3}), ValueError,
     r"^from_config: the constant schedule config has unknown keys \['epochs'\] \(it takes \['kind', 'value'\]\)"),
])
def test_bad_schedules_are_refused(build, error, message) -> None:
    with pytest.raises(error, match=message):
        build()


def test_only_declared_parameters_are_schedulable() -> None:
    for spec in registry.specs():
        schedulable = {p.name for p in spec.params if p.schedulable}
        assert schedulable == {"augmentation_ratio"}, spec.name


# ------------------------------------------------------------------------------------------------
# The integrations' option, on the torch pipeline.
# ------------------------------------------------------------------------------------------------


def pipeline(schedules_option, **options) -> MaskMixPipeline:
    return MaskMixPipeline([RandomCutout(), RandomErasing()], RandomCutMix(), num_classes=3, seed=0,
                           schedules=schedules_option, **options)


def test_keys_by_class_name_position_and_object() -> None:
    cutout = RandomCutout()
    p = MaskMixPipeline([cutout, RandomErasing()], RandomCutMix(), num_classes=3, schedules={
        "RandomErasing": {"augmentation_ratio": constant(0.5)},
        2: {"augmentation_ratio": switch_off(1.0, epoch=1)},
        cutout: {"augmentation_ratio": ramp(0.0, 1.0, epochs=4)},
    })
    assert [(type(e.transform).__name__, e.param) for e in p.schedules] == [
        ("RandomErasing", "augmentation_ratio"), ("RandomCutMix", "augmentation_ratio"),
        ("RandomCutout", "augmentation_ratio")]
    assert p.schedules[2].transform is cutout
    p.set_epoch(2)
    assert p.scheduled_values() == {"RandomErasing": {"augmentation_ratio": 0.5}, 2: {"augmentation_ratio": 0.0},
                                    cutout: {"augmentation_ratio": 0.5}}
    assert cutout.augmentation_ratio == 1.0  # lent per call, never written on the transform


@pytest.mark.parametrize(("option", "error", "message"), [
    ([("RandomCutout", {})], TypeError, r"^MaskMixPipeline: schedules must be None or a dict"),
    ({"RandomGridMask": {"augmentation_ratio": constant(1.0)}}, ValueError,
     r"^MaskMixPipeline: schedules key 'RandomGridMask' names none of the maskmix transforms "
     r"\(RandomCutout, RandomErasing, RandomCutMix\)"),
    ({5: {"augmentation_ratio": constant(1.0)}}, ValueError,
     r"^MaskMixPipeline: schedules key 5 is not a position in transforms \+ mix \(0 to 2\)"),
    ({-1: {"augmentation_ratio": constant(1.0)}}, ValueError,
     r"^MaskMixPipeline: schedules key -1 is not a position in transforms \+ mix \(0 to 2\)"),
    ({RandomCutout(): {"augmentation_ratio": constant(1.0)}}, TypeError,
     r"^MaskMixPipeline: a schedules key must be a maskmix transform's class name"),
    ({"RandomCutout": {"patch_area": constant(0.2)}}, ValueError,
     r"^MaskMixPipeline: schedules\['RandomCutout'\]: RandomCutout cannot schedule 'patch_area'; "
     r"its schedulable parameters are \['augmentation_ratio'\]"),
    ({"RandomCutout": {"augmentation_ratio": 0.5}}, TypeError,
     r"^MaskMixPipeline: schedules\['RandomCutout'\]\['augmentation_ratio'\] must be a schedule"),
    ({"RandomCutout": {}}, TypeError, r"^MaskMixPipeline: schedules\['RandomCutout'\] must be a non-empty dict"),
    ({"RandomCutout": {"augmentation_ratio": ramp(0.0, 1.5, epochs=10)}}, ValueError,
     r"^MaskMixPipeline: schedules\['RandomCutout'\]\['augmentation_ratio'\] = ramp\(0.0, 1.5, .*\) reaches 1.5: "
     r"RandomCutout: augmentation_ratio must be a float in \[0, 1\]; got 1.5"),
    ({"RandomCutout": {"augmentation_ratio": constant(1.0)}, 0: {"augmentation_ratio": constant(0.5)}}, ValueError,
     r"^MaskMixPipeline: RandomCutout's augmentation_ratio is scheduled twice"),
])
def test_bad_schedules_options_are_refused(option, error, message) -> None:
    with pytest.raises(error, match=message):
        pipeline(option)


def test_duplicate_class_names_need_another_key() -> None:
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: schedules key 'RandomCutout' names 2 transforms"):
        MaskMixPipeline([RandomCutout(), RandomCutout()],
                        schedules={"RandomCutout": {"augmentation_ratio": constant(1)}})
    # One transform given twice is one transform: its class name keys it.
    cutout = RandomCutout()
    twice = MaskMixPipeline([cutout, cutout], schedules={"RandomCutout": {"augmentation_ratio": constant(0.5)}})
    assert [e.transform for e in twice.schedules] == [cutout]


def test_keys_reach_nested_transforms_and_only_maskmix_positions() -> None:
    from torchvision.transforms import v2

    cutout = RandomCutout()
    p = MaskMixPipeline([v2.RandomHorizontalFlip(), v2.Compose([cutout])],
                        schedules={cutout: {"augmentation_ratio": constant(0.5)}})
    assert p.schedules[0].transform is cutout
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: schedules key 0 is RandomHorizontalFlip, not a maskmix "
                                         r"transform"):
        MaskMixPipeline([v2.RandomHorizontalFlip(), cutout], schedules={0: {"augmentation_ratio": constant(0.5)}})


def test_a_custom_callable_is_checked_when_evaluated() -> None:
    p = pipeline({"RandomCutout": {"augmentation_ratio": lambda epoch: 0.25 * epoch}})
    p.set_epoch(4)
    assert p.scheduled_values() == {"RandomCutout": {"augmentation_ratio": 1.0}}
    with pytest.raises(ValueError, match=r"^MaskMixPipeline: schedules\['RandomCutout'\]\['augmentation_ratio'\] "
                                         r"gave 1.25 at epoch 5.0: RandomCutout: augmentation_ratio must be"):
        p.set_epoch(5)
    with pytest.raises(ValueError, match=r"^MaskMixPipeline.set_epoch: epoch must be a finite number >= 0"):
        p.set_epoch(-1)


@pytest.mark.parametrize("compile", [False, True])
def test_the_fraction_follows_the_schedule_per_epoch(compile: bool) -> None:
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    torch._dynamo.reset()
    ratios = {0: 0.0, 1: 0.25, 2: 0.5, 3: 1.0}
    p = MaskMixPipeline([RandomGridMask(fill_method=-1.0)], seed=0, compile={"backend": counter} if compile else False,
                        schedules={0: {"augmentation_ratio": piecewise(ratios)}})
    images = torch.full((8, 3, 16, 16), 0.5)
    for epoch, ratio in ratios.items():
        out = p(images, epoch=epoch)
        assert int((out == -1).flatten(1).any(1).sum()) == round(8 * ratio)
    if compile:
        assert counter.frame_count == 1  # one graph for every value: the ratio is an input, not a constant


def test_the_schedule_reads_the_same_as_the_transform_in_eager_steps() -> None:
    # A scheduled value lent as a number draws exactly as the transform built with that value.
    scheduled = MaskMixPipeline([RandomErasing()], seed=3, schedules={0: {"augmentation_ratio": constant(0.5)}})
    plain = MaskMixPipeline([RandomErasing(augmentation_ratio=0.5)], seed=3)
    images = torch.rand(6, 3, 8, 8)
    assert torch.equal(scheduled(images), plain(images))


def test_lending_is_per_transform_and_per_block() -> None:
    erasing = RandomErasing()
    with schedules.lending({id(erasing): {"augmentation_ratio": 0.0}}):
        assert schedules.lent_value(erasing, "augmentation_ratio", 1.0) == 0.0
        assert schedules.lent_value(RandomErasing(), "augmentation_ratio", 1.0) == 1.0
        images = torch.rand(4, 3, 8, 8)
        assert torch.equal(erasing(images), images)
    assert schedules.lent_value(erasing, "augmentation_ratio", 1.0) == 1.0


def test_schedules_inside_your_own_compile_are_refused() -> None:
    p = MaskMixPipeline([RandomErasing()], seed=0, schedules={0: {"augmentation_ratio": constant(0.5)}})
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: p.augment(x)[0], fullgraph=True, backend="eager")
    with pytest.raises(Exception, match=r"MaskMixPipeline: schedules cannot reach the transforms inside a "
                                        r"torch.compile of your own .* use compile=True"):
        compiled(torch.rand(2, 3, 8, 8))


def test_a_ratio_assigned_on_a_torch_transform_takes_effect_in_the_compiled_step() -> None:
    # Not scheduled: dynamo guards on the attribute, so a new value recompiles (never silently kept).
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    grid = RandomGridMask(fill_method=-1.0, augmentation_ratio=0.25)
    p = MaskMixPipeline([grid], seed=0, compile={"backend": counter})
    images = torch.full((8, 3, 16, 16), 0.5)
    assert int((p(images) == -1).flatten(1).any(1).sum()) == 2
    grid.augmentation_ratio = 0.75
    assert int((p(images) == -1).flatten(1).any(1).sum()) == 6
    assert counter.frame_count == 2


def test_the_compiled_count_is_the_hosts_exact_count() -> None:
    # 0.58 * 25 is 14.5 (15 images, halves up), but 14.499999999999998 in float64 and 14.4999995
    # in float32: the count margin makes both the count of the ratio as written.
    from maskmix.params import num_selected

    torch._dynamo.reset()
    p = MaskMixPipeline([RandomGridMask(fill_method=-1.0)], seed=0, compile={"backend": "eager"},
                        schedules={0: {"augmentation_ratio": constant(0.58)}})
    out = p(torch.full((25, 1, 4, 4), 0.5))
    assert int((out == -1).flatten(1).any(1).sum()) == num_selected(0.58, 25) == 15
