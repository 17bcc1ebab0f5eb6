"""A strategy added to the registry reaches the benchmarks, the CUDA checks, the gallery and the
training scripts' flags of the frameworks that implement it, and no others.

A throwaway torch-only strategy (erase each image's top-left pixel) is registered through
:func:`maskmix.registry.register`, with its torch class, for the length of one test: the torch
consumers must list and run it, the Keras ones must leave it out (they would fail to build it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from maskmix import registry
from maskmix.params import COMMON_PARAMS, FILL_PARAM, LABEL_PARAMS
from maskmix.registry import Param, StrategySpec, Variant

ROOT = Path(__file__).resolve().parents[1]
for folder in ("examples", "benchmarks"):
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))

import _cases  # noqa: E402
import augment_flags  # noqa: E402
import gallery  # noqa: E402

NAME, FLAG = "RandomCornerErase", "corner_erase"


@pytest.fixture
def corner_erase() -> Iterator[type]:
    """Registers RandomCornerErase (torch only) and its class; unregisters both afterwards."""
    from maskmix.torch import MaskingTransform

    corner_spec = registry.register(StrategySpec(
        NAME,
        (FILL_PARAM, *COMMON_PARAMS),
        "Erase the top-left pixel of each image (a throwaway strategy of the tests).",
        flag=FLAG,
        frameworks=("torch",),
        variants={FLAG: Variant({})},
        benchmarks={NAME: {}},
        gallery={FLAG: {"fill_method": "white"}},
    ))
    try:

        class RandomCornerErase(MaskingTransform):
            spec = corner_spec

            def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                              generator: torch.Generator | None) -> dict[str, torch.Tensor]:
                return {"corner": torch.zeros(batch_size, dtype=torch.int64, device=device)}

            def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> torch.Tensor:
                corner = params["corner"]
                mask = torch.zeros(corner.shape[0], height, width, dtype=torch.bool, device=corner.device)
                mask[:, 0, 0] = True
                return mask

        assert registry.implementation(NAME, "torch") is RandomCornerErase
        yield RandomCornerErase
    finally:
        registry.unregister(NAME)
    assert NAME not in registry.SPECS


def only_the_corner_changed(images: np.ndarray | torch.Tensor, out: np.ndarray | torch.Tensor, fill: float) -> bool:
    """``out`` is ``images`` with the top-left pixel of every image and channel set to ``fill``."""
    def array(a: np.ndarray | torch.Tensor) -> np.ndarray:
        return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)

    expected = array(images).copy()
    expected[..., 0, 0] = fill
    return bool(np.array_equal(array(out), expected))


def test_benchmark_cases_and_cuda_checks_pick_it_up_for_torch_only(corner_erase: type) -> None:
    import bench_torch
    import cuda_checks

    # The rows of every table: the torch ones end with it, the Keras ones leave it out.
    torch_rows, keras_rows = _cases.cases("torch"), _cases.cases("keras")
    assert list(torch_rows)[-1] == NAME and torch_rows[NAME] == (NAME, {})
    assert NAME not in keras_rows and set(keras_rows) == set(torch_rows) - {NAME}
    transform, mixes = _cases.build("torch")[NAME]
    assert isinstance(transform, corner_erase) and not mixes
    # bench_torch.py times it (op_counts.py and compiled_kernels.py build the same rows).
    x, y = torch.full((4, 3, 8, 8), 0.5), torch.zeros(4, dtype=torch.int64)
    assert only_the_corner_changed(x, bench_torch.ours(x, y)[NAME](), fill=0.0)  # black by default
    # cuda_checks.py checks its variants and a partial selection (the checks themselves need CUDA).
    catalogue = cuda_checks.catalogue()
    assert {FLAG, f"{FLAG}_selected"} <= set(catalogue) and cuda_checks.gets_compiled(FLAG)
    assert only_the_corner_changed(x, cuda_checks.call(catalogue[FLAG](), x, y), fill=0.0)


def test_gallery_shows_it_in_the_torch_grid_only(corner_erase: type, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert list(gallery.settings("torch"))[-1] == FLAG and FLAG not in gallery.mixing("torch")
    assert FLAG not in gallery.settings("keras")
    factory = gallery.torch_strategies(seed=0)[FLAG]
    images = np.full((3, 3, 8, 8), 0.25, dtype=np.float32)
    out, captions = gallery.augment(images, np.array([False, False, True]), False, factory,
                                    ["a", "b", "c (gray)"], gallery.apply_torch)
    assert captions is None and only_the_corner_changed(images, out, fill=1.0)  # its gallery fill: white
    # The command line: a row for it with torch; with Keras it is unknown (before Keras is imported).
    output = tmp_path / "g.png"
    assert gallery.main(["--strategies", f"cutout,{FLAG}", "--size", "16", "--output", str(output)]) == 0
    assert output.exists() and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        gallery.main(["--framework", "keras", "--strategies", FLAG, "--output", str(tmp_path / "k.png")])
    assert info.value.code == 2 and f"unknown strategies ['{FLAG}']" in capsys.readouterr().err


def _plan(framework: str, *argv: str) -> augment_flags.AugmentPlan:
    parser = argparse.ArgumentParser()
    augment_flags.add_augment_flags(parser, framework)
    return augment_flags.plan_from_args(parser.parse_args(list(argv)), parser)


def test_augment_flag_takes_it_for_torch_only(corner_erase: type, capsys: pytest.CaptureFixture[str]) -> None:
    import torch_training
    import training_cli

    assert augment_flags.strategies("torch")[FLAG] == NAME and FLAG not in augment_flags.strategies("keras")
    plan = _plan("torch", "--augment", f"cutout,{FLAG}", "--set", f"{FLAG}.fill_method=white")
    assert plan.masking == [("RandomCutout", {"augmentation_ratio": 1.0}),
                            (NAME, {"augmentation_ratio": 1.0, "fill_method": "white"})]
    # The training scripts' parsers: train_keras.py's (framework="keras") refuses it, the torch ones
    # build it.
    parser = training_cli.training_parser(None, {}, framework="torch")
    assert FLAG in parser.format_help()
    _, plan = training_cli.parse(parser, ["--augment", FLAG])
    (transform,), mixing = torch_training.build_transforms(plan, num_classes=10)
    assert isinstance(transform, corner_erase) and mixing == []
    x = torch.full((2, 1, 4, 4), 100, dtype=torch.uint8)
    assert only_the_corner_changed(x, transform(x), fill=0)
    keras_parser = training_cli.training_parser(None, {}, framework="keras")
    assert FLAG not in keras_parser.format_help()
    with pytest.raises(SystemExit) as info:
        training_cli.parse(keras_parser, ["--augment", FLAG])
    assert info.value.code == 2 and f"unknown strategies ['{FLAG}']" in capsys.readouterr().err
    # A bad value of its parameters is reported by its spec, like any strategy's.
    with pytest.raises(SystemExit):
        _plan("torch", "--augment", FLAG, "--set", f"{FLAG}.fill_method=nope")
    assert f"{NAME}: fill_method must be" in capsys.readouterr().err


def test_a_registered_mixing_strategy_gets_its_own_flag() -> None:
    """Parsing needs the spec only: a torch-only mixing strategy gets ``--blend_it ALPHA`` with
    torch, shares the choices with timm's pair, and is no flag of the Keras scripts."""
    registry.register(StrategySpec(
        "RandomBlendIt",
        (Param("alpha", 1.0, registry.get("RandomMixup").params[0].check, "Beta parameter."),
         *LABEL_PARAMS, *COMMON_PARAMS),
        "A throwaway mixing strategy of the tests.",
        flag="blend_it", family="mixing", frameworks=("torch",),
    ))
    try:
        assert list(augment_flags.mixing("torch")) == ["mixup", "cutmix", "mixup_or_cutmix", "blend_it"]
        assert "blend_it" not in augment_flags.mixing("keras")
        plan = _plan("torch", "--mixup", "0.2", "--cutmix", "1", "--blend-it", "0.5", "--mixup-switch-prob", "0.25",
                     "--set", "blend_it.label_smoothing=0.1")
        assert [name for name, _ in plan.mixing] == ["RandomMixup", "RandomCutMix", "RandomBlendIt"]
        assert plan.mixing[2][1] == {"alpha": 0.5, "label_smoothing": 0.1, "augmentation_ratio": 1.0}
        # timm's pair shares one half (3 : 1 by --mixup-switch-prob), the new strategy has the other.
        assert plan.mix_weights == pytest.approx([0.375, 0.125, 0.5])
        assert [name for name, _ in _plan("torch", "--cutmix", "1").mixing] == ["RandomCutMix"]
        with pytest.raises(SystemExit):
            _plan("keras", "--blend-it", "0.5")
    finally:
        registry.unregister("RandomBlendIt")
