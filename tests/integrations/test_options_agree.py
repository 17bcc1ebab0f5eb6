"""The training integrations accept and refuse the same options, with the same errors (design §Layers, integrations).

``MaskMixCallback`` and ``MaskMixMixin`` (Lightning) and ``MaskMixModel`` (Keras) check their shared
options with the rules of :mod:`maskmix.integration_options`. For every rule and a catalogue of
bad values, each integration must raise the same exception type with the same message, up to
the integration's own vocabulary: its class name, the name of its augmentation argument
(``transforms`` / ``augmentations``), its word for an augmentation (``transform`` / ``layer``)
and what such an object must be (the Keras messages are read in the torch terms). The
catalogue's objects are built for each framework from the same recipe, as
``tests/test_keras_vs_torch.py`` does for the strategies.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import math
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

import maskmix.keras as mk
import maskmix.torch as mt
from maskmix import integration_options
from maskmix.callbacks import MaskMixCallback, MaskMixMixin, MaskMixModel

Recipe = Callable[[ModuleType], dict[str, Any]]

#: For each rule of maskmix.integration_options, option sets that break it (built per framework).
CATALOGUE: dict[str, list[Recipe]] = {
    "check_transforms": [
        lambda m: {"transforms": ["cutout"]},
        lambda m: {"transforms": [3]},
        lambda m: {"transforms": "cutout"},
        lambda m: {"transforms": [lambda x: x]},
        lambda m: {"transforms": [m.RandomErasing(), m.RandomCutMix()]},
        lambda m: {"transforms": m.RandomMixup()},
        lambda m: {"transforms": [m.RandomCutThumbnail(mix_images=True, num_classes=3)]},
        lambda m: {"transforms": [m.RandomCutPaste(return_labels=True)]},
        lambda m: {"transforms": [m.RandomCutSwap(return_labels=True)]},
        lambda m: {"transforms": [m.RandomCutBlurPair()]},
    ],
    "check_mix": [
        lambda m: {"mix": m.RandomCutout()},
        lambda m: {"mix": [m.RandomMixup(), "cutmix"]},
        lambda m: {"mix": []},
        lambda m: {"mix": ()},
        lambda m: {"mix": 3},
        lambda m: {"mix": m.RandomCutThumbnail()},
        lambda m: {"mix": [m.RandomCutMix(), m.RandomCutThumbnail(mix_images=False)]},
    ],
    "check_mix_weights": [
        lambda m: {"mix_weights": [1.0]},
        lambda m: {"mix_weights": [0, 1]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [1.0]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [1.0, -1.0]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [0, 0]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [1, math.nan]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [math.inf, 1]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [True, 1]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": ["1", 1]},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [None, 1]},
        lambda m: {"mix": m.RandomMixup(), "mix_weights": 0.5},
        lambda m: {"mix": m.RandomMixup(), "mix_weights": "1"},
        lambda m: {"mix": m.RandomMixup(), "mix_weights": {"a": 1}},
    ],
    "check_num_classes": [
        lambda m: {"num_classes": "3"},
        lambda m: {"num_classes": 0},
        lambda m: {"num_classes": -1},
        lambda m: {"num_classes": 2.0},
        lambda m: {"num_classes": True},
        lambda m: {"num_classes": np.bool_(True)},
        lambda m: {"num_classes": np.int64(0)},
        lambda m: {"num_classes": [3]},
        lambda m: {"mix": m.RandomMixup(num_classes=5), "num_classes": 4},
        lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix(num_classes=5)], "num_classes": np.int64(4)},
        lambda m: {"mix": [m.RandomMixup(num_classes=5), m.RandomCutMix(num_classes=4)]},
        lambda m: {"num_classes": 1},  # one class: one_hot would invert binary labels
        lambda m: {"num_classes": np.int64(1)},
        lambda m: {"mix": m.RandomMixup(num_classes=1)},
        lambda m: {"mix": [m.RandomCutMix(), m.RandomMixup(num_classes=1)]},
    ],
    "check_label_smoothing": [
        lambda m: {"label_smoothing": 1.0},
        lambda m: {"label_smoothing": -0.1},
        lambda m: {"label_smoothing": math.nan},
        lambda m: {"label_smoothing": math.inf},
        lambda m: {"label_smoothing": "0.1"},
        lambda m: {"label_smoothing": True},
        lambda m: {"label_smoothing": None},
        lambda m: {"mix": m.RandomMixup(label_smoothing=0.2), "label_smoothing": 0.1},
        lambda m: {"mix": [m.RandomCutMix(), m.RandomMixup(label_smoothing=0.2)], "label_smoothing": 0.1},
    ],
    "check_seed": [
        lambda m: {"seed": -1},
        lambda m: {"seed": np.int64(-1)},
        lambda m: {"seed": 1.5},
        lambda m: {"seed": np.float64(3.0)},
        lambda m: {"seed": True},
        lambda m: {"seed": "0"},
    ],
}

#: Option sets every integration accepts (the divergent cases of the past included).
ACCEPTED: list[Recipe] = [
    lambda m: {},
    lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": [0, 1]},
    lambda m: {"mix": [m.RandomMixup(), m.RandomCutMix()], "mix_weights": (np.float32(1), 2)},
    lambda m: {"label_smoothing": 0.1, "num_classes": 3},  # smoothing alone
    lambda m: {"mix": m.RandomMixup(label_smoothing=0.1), "label_smoothing": 0.1, "num_classes": 3},
    lambda m: {"mix": [m.RandomMixup(num_classes=3), m.RandomCutMix()], "num_classes": np.int64(3)},
    lambda m: {"seed": 0},
    lambda m: {"seed": np.uint8(7)},
    lambda m: {"transforms": m.RandomErasing(), "mix": m.RandomCutThumbnail(mix_images=True)},
]


class _Module(MaskMixMixin, L.LightningModule):
    pass


def _callback(options: dict[str, Any]) -> None:
    MaskMixCallback(**options)


def _mixin(options: dict[str, Any]) -> None:
    _Module().configure_maskmix(**options)


def _model(options: dict[str, Any]) -> None:
    options = dict(options)
    if "transforms" in options:
        options["augmentations"] = options.pop("transforms")
    MaskMixModel(**options)


_TORCH_TERMS: list[tuple[str, str]] = []
#: Keras' words in the torch integration's terms (unambiguous in this direction: "transforms" is
#: both the torch argument and the plural of "transform").
_KERAS_TERMS = [
    (re.escape("a Keras layer"), "a maskmix or torchvision v2 transform"),
    (r"\baugmentations\b", "transforms"),
    (r"\blayer(s?)\b", r"transform\1"),
]

#: name -> (framework module, constructor, vocabulary in the torch terms).
INTEGRATIONS: dict[str, tuple[ModuleType, Callable[[dict[str, Any]], None], list[tuple[str, str]]]] = {
    "MaskMixCallback": (mt, _callback, _TORCH_TERMS),
    "MaskMixMixin": (mt, _mixin, _TORCH_TERMS),
    "MaskMixModel": (mk, _model, _KERAS_TERMS),
}


def normalise(message: str, owner: str, vocabulary: list[tuple[str, str]]) -> str:
    """The message with the integration's name as ``<owner>``, in the torch integration's terms."""
    message = message.replace(owner, "<owner>")
    for pattern, replacement in vocabulary:
        message = re.sub(pattern, replacement, message)
    return message


def outcome(name: str, recipe: Recipe) -> tuple[type[Exception], str] | None:
    module, build, vocabulary = INTEGRATIONS[name]
    options = recipe(module)
    try:
        build(options)
    except (TypeError, ValueError) as error:
        assert str(error).startswith(f"{name}: "), str(error)
        return type(error), normalise(str(error), name, vocabulary)
    return None


CASES = [(rule, i) for rule, recipes in CATALOGUE.items() for i in range(len(recipes))]


def test_the_catalogue_covers_every_shared_rule() -> None:
    shared = {name for name in integration_options.__all__ if name.startswith("check_")}
    assert set(CATALOGUE) == shared - {"check_options", "check_keys"}  # keys: the torch batches only


@pytest.mark.parametrize(("rule", "index"), CASES, ids=[f"{rule}-{i}" for rule, i in CASES])
def test_bad_values_raise_the_same_error_everywhere(rule: str, index: int) -> None:
    recipe = CATALOGUE[rule][index]
    outcomes = {name: outcome(name, recipe) for name in INTEGRATIONS}
    reference = outcomes["MaskMixCallback"]
    assert reference is not None, f"{rule}: accepted by MaskMixCallback"
    for name, got in outcomes.items():
        assert got == reference, f"{name} differs from MaskMixCallback:\n  {got}\n  {reference}"


@pytest.mark.parametrize("module", [mt, mk], ids=["torch", "keras"])
def test_a_pair_transform_is_refused_among_the_augmentations_of_the_pipelines(module: ModuleType) -> None:
    """``RandomCutBlurPair`` takes ``(lr_upsampled, hr)`` pairs: among a pipeline's per-image
    augmentations it used to be accepted and to fail at the first batch."""
    message = r"MaskMixPipeline: \w+\[0\] \(RandomCutBlurPair\) augments \(lr_upsampled, hr\) pairs"
    with pytest.raises(TypeError, match=message):
        module.MaskMixPipeline([module.RandomCutBlurPair()])


@pytest.mark.parametrize("index", range(len(ACCEPTED)))
def test_good_values_are_accepted_everywhere(index: int) -> None:
    for name in INTEGRATIONS:
        assert outcome(name, ACCEPTED[index]) is None, name


def test_smoothing_alone_gives_the_same_targets_on_both_frameworks() -> None:
    labels = np.array([0, 2, 1, 2])
    images = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    _, torch_soft = mt.MaskMixPipeline(label_smoothing=0.1, num_classes=3, seed=0)(
        (torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)))
    _, keras_soft = mk.MaskMixPipeline(label_smoothing=0.1, num_classes=3, seed=0)(images, labels)
    np.testing.assert_allclose(torch_soft.numpy(), np.asarray(keras_soft), rtol=0, atol=1e-7)
    np.testing.assert_allclose(torch_soft.numpy(), np.eye(3)[labels] * 0.9 + 0.1 / 3, rtol=0, atol=1e-7)


def test_one_class_is_refused_and_binary_columns_mix_as_class_one_of_two() -> None:
    # num_classes=1 one-hot encoded binary class indices inverted (label 1 -> [0], label 0 -> [1]):
    # refused by every integration, the torch pipeline included, with what to give instead.
    advice = r"give float labels of shape \(B, 1\) holding 0\.0/1\.0 and leave num_classes unset"
    builds: list[tuple[str, Callable[[], Any]]] = [
        ("MaskMixPipeline", lambda: mt.MaskMixPipeline(mix=mt.RandomCutMix(), num_classes=1, seed=0)),
        ("MaskMixPipeline", lambda: mk.MaskMixPipeline(mix=mk.RandomCutMix(), num_classes=1, seed=0)),
        ("MaskMixCallback", lambda: MaskMixCallback(mix=mt.RandomCutMix(), num_classes=1)),
        ("MaskMixModel", lambda: MaskMixModel(mix=mk.RandomCutMix(), num_classes=1)),
    ]
    for owner, build in builds:
        with pytest.raises(ValueError, match=rf"^{owner}: num_classes must be None or an integer >= 2; got 1: "
                                             rf"one_hot\(y, 1\) maps label 0 to \[1\] and label 1 to \[0\].*{advice}"):
            build()
    with pytest.raises(ValueError, match=rf"^MaskMixPipeline: .* got mix \(RandomCutMix\) num_classes=1: .*{advice}"):
        mt.MaskMixPipeline(mix=mt.RandomCutMix(num_classes=1), seed=0)
    # The advice holds: a float (B, 1) column without num_classes is mixed as the class-1 column of
    # the same labels given as two classes, draw for draw, on both frameworks.
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    images = np.random.default_rng(0).random((8, 8, 8, 3)).astype("float32")
    timages, tlabels = torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)
    _, column = mt.MaskMixPipeline(mix=mt.RandomCutMix(), seed=0)((timages, tlabels.float()[:, None]))
    _, pair = mt.MaskMixPipeline(mix=mt.RandomCutMix(), num_classes=2, seed=0)((timages, tlabels))
    assert column.shape == (8, 1) and ((column > 0) & (column < 1)).any()  # mixed, not passed through
    torch.testing.assert_close(column[:, 0], pair[:, 1], rtol=0, atol=1e-7)
    _, kcolumn = mk.MaskMixPipeline(mix=mk.RandomCutMix(seed=3))(images, labels.astype("float32")[:, None])
    _, kpair = mk.MaskMixPipeline(mix=mk.RandomCutMix(seed=3), num_classes=2)(images, labels)
    kcolumn, kpair = np.asarray(kcolumn), np.asarray(kpair)
    assert kcolumn.shape == (8, 1) and ((kcolumn > 0) & (kcolumn < 1)).any()
    np.testing.assert_allclose(kcolumn[:, 0], kpair[:, 1], rtol=0, atol=1e-7)


def test_zero_weighted_mix_is_never_chosen() -> None:
    pipeline = mt.MaskMixPipeline(mix=[mt.RandomMixup(), mt.RandomCutMix()], mix_weights=[0, 1], seed=0)
    assert {pipeline.choose_mix(rank=0, batch=n) for n in range(200)} == {1}
    keras_pipeline = mk.MaskMixPipeline(mix=[mk.RandomMixup(seed=1), mk.RandomCutMix(seed=5)], mix_weights=[0, 1],
                                        num_classes=3, seed=0)
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0])
    expected = mk.RandomCutMix(seed=5)((images, np.eye(3, dtype="float32")[labels]), training=True)
    got = keras_pipeline(images, labels)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_num_classes_given_by_one_mix_reaches_every_mix_on_both_frameworks() -> None:
    # Valid for class indices (the classes are known), yet the torch pipeline failed on them only
    # when the mix without num_classes was first drawn, maybe deep into a run.
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0])
    torch_pipeline = mt.MaskMixPipeline(mix=[mt.RandomCutMix(num_classes=3), mt.RandomMixup()], mix_weights=[0, 1],
                                        seed=0)
    assert torch_pipeline.num_classes == 3
    _, soft = torch_pipeline((torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)))
    assert soft.shape == (4, 3)
    keras_pipeline = mk.MaskMixPipeline(mix=[mk.RandomCutMix(num_classes=3), mk.RandomMixup()], mix_weights=[0, 1],
                                        seed=0)
    assert np.asarray(keras_pipeline(images, labels)[1]).shape == (4, 3)


def test_the_pipelines_and_the_options_spec_import_without_the_integrations() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import maskmix.integration_options\n"
        "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'lightning') if m in sys.modules))\n"
        "from maskmix.torch import MaskMixPipeline, soft_label_targets, using_generator\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'lightning') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**__import__("os").environ, "PYTHONPATH": str(root)}).stdout
    assert out.split("\n")[:2] == ["[]", "[]"]


@pytest.mark.compile
def test_the_torch_pipeline_compiles_and_leaves_the_transforms_alone() -> None:
    # Under torch.compile no generator is passed (the global RNG draws), as before the split.
    pipeline = mt.MaskMixPipeline([mt.RandomErasing()], mt.RandomCutMix(), num_classes=3, label_smoothing=0.1, seed=0)
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    compiled = torch.compile(lambda a, b: pipeline.augment(a, b), fullgraph=True)
    out, soft = compiled(x, y)
    assert out.shape == x.shape and soft.shape == (4, 3)
    torch.testing.assert_close(soft.sum(1), torch.ones(4))
    assert pipeline.transforms[0].generator is None and pipeline.mixes[0].num_classes is None


def test_num_classes_stops_at_int32_in_every_integration() -> None:
    # One-hot targets of 2**31 classes failed inside torch or TensorFlow (an allocation of
    # gigabytes per image) with a message naming no integration.
    builds: list[tuple[str, Callable[[int], Any]]] = [
        ("MaskMixPipeline", lambda n: mt.MaskMixPipeline(mix=mt.RandomCutMix(), num_classes=n, seed=0)),
        ("MaskMixPipeline", lambda n: mk.MaskMixPipeline(mix=mk.RandomCutMix(), num_classes=n, seed=0)),
        ("MaskMixCallback", lambda n: MaskMixCallback(mix=mt.RandomCutMix(), num_classes=n)),
        ("MaskMixModel", lambda n: MaskMixModel(mix=mk.RandomCutMix(), num_classes=n)),
    ]
    for owner, build in builds:
        build(2**31 - 1)
        with pytest.raises(ValueError, match=rf"^{owner}: num_classes must be at most 2147483647; got 2147483648$"):
            build(2**31)


@pytest.mark.parametrize("module", [mt, mk], ids=["torch", "keras"])
def test_the_pipelines_repr_shows_the_options_given(module: ModuleType) -> None:
    """A printed pipeline (a Lightning hparams dump, a log) read ``<...MaskMixPipeline object at 0x...>``."""
    assert repr(module.MaskMixPipeline()) == "MaskMixPipeline()"
    cutmix = module.RandomCutMix()
    shown = repr(module.MaskMixPipeline(mix=[cutmix], num_classes=3, label_smoothing=0.1, seed=7))
    assert shown == f"MaskMixPipeline(mix=[{cutmix!r}], num_classes=3, label_smoothing=0.1, seed=7)"


def test_the_integrations_type_hints_resolve() -> None:
    """String aliases in the NumPy-number annotations left ``typing.get_type_hints`` failing with a
    NameError, and LightningCLI (jsonargparse) then read no types: ``--num_classes=ten`` parsed."""
    import typing

    from maskmix.torch.pipeline import PipelineOptions

    for owner in (MaskMixCallback.__init__, mt.MaskMixPipeline.__init__, mk.MaskMixPipeline.__init__,
                  MaskMixModel.__init__, PipelineOptions):  # the last: MaskMixMixin.configure_maskmix's keywords
        hints = typing.get_type_hints(owner)
        assert int in typing.get_args(hints["num_classes"]), owner
        assert float in typing.get_args(hints["label_smoothing"]), owner
