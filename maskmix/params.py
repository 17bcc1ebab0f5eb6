"""Framework-free specifications of the built-in strategies, registered in :mod:`maskmix.registry`.

Every strategy's parameter names, defaults, validation rules and test domains live here, once,
with what the rest of the project needs to know about it (family, frameworks, the configurations
the tests, benchmarks and gallery run, the values of its main parameter its documentation picture
sweeps, its training-script flag). The torch transforms
(:mod:`maskmix.torch`) and the Keras layers (:mod:`maskmix.keras`) both call
:meth:`~maskmix.registry.StrategySpec.validate` in their constructors, so a bad argument produces
the same ``ValueError``/``TypeError`` message whatever the framework.

Validated values are *normalised*: ranges become ``(lo, hi)`` tuples of floats, counts become
``(lo, hi)`` tuples of ints, Hide-and-Seek grid sizes become a tuple of ``(rows, cols)``
candidates. Normalised values are themselves valid inputs, so a configuration written out by
``get_config`` (where tuples may become lists) validates back to the same values.

Example:
    >>> from maskmix.params import RANDOM_ERASING
    >>> RANDOM_ERASING.validate({"patch_area": 0.2})["patch_area"]
    (0.2, 0.2)

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._checks import (
    CUTMIX_BOX_ROUNDINGS,
    FILL_METHODS,
    RESIZE_METHODS,
    THUMBNAIL_RESIZE_METHODS,
    Checker,
    boolean,
    choice,
    count_range,
    fill_method,
    fraction_or_range,
    fraction_pair,
    grid_size,
    integer,
    integer_at_least,
    is_real_number,
    normal_fraction,
    number_in,
    optional,
    pixel_range_up_to_image,
    pixel_sizes,
    pixels_range,
    positive_range,
)
from .domains import Booleans, Choice, Integers, Just, ListOf, LogUniform, OneOf, OrRange, TupleOf, Uniform
from .geometry import ASPECT_LAWS, ATTEMPTS, FIT_RULES, MAX_BETA_ALPHA, PARTNER_LAWS, SAMPLING_MODES
from .registry import SPECS, Param, Preset, StrategySpec, Supersession, Variant, register

__all__ = [
    "COMMON_PARAMS",
    "COUNT_MARGIN",
    "CUTBLUR_DIRECTIONS",
    "CUTBLUR_PAIR",
    "FILL_METHODS",
    "LABEL_PARAMS",
    "MASK_FILL_PARAM",
    "MIXUP_OR_CUTMIX_BOX_ROUNDINGS",
    "PARTNER_LAWS",
    "RANDOM_CUTBLUR",
    "RANDOM_CUTMIX",
    "RANDOM_CUTOUT",
    "RANDOM_CUTPASTE",
    "RANDOM_CUTSWAP",
    "RANDOM_CUT_THUMBNAIL",
    "RANDOM_ERASING",
    "RANDOM_GRID_MASK",
    "RANDOM_HIDE_AND_SEEK",
    "RANDOM_MIXUP",
    "RANDOM_MIXUP_OR_CUTMIX",
    "RESIZE_METHODS",
    "SAMPLING_MODES",
    "SPECS",
    "TIMM_MODES",
    "Checker",
    "Param",
    "StrategySpec",
    "boolean",
    "check_mixup_or_cutmix",
    "choice",
    "count_range",
    "fill_method",
    "fraction_or_range",
    "given_arguments",
    "grid_size",
    "integer_at_least",
    "num_selected",
    "number_in",
    "optional",
    "pixels_range",
    "positive_range",
    "timm_mixup_config",
]


#: Relative margin under which a product ``ratio * B`` just below a half still rounds up: the
#: ratio as written, not its binary approximation, decides. ``0.58 * 25`` is 14.5, but
#: 14.499999999999998 in float64 and 14.4999995 with a float32 ratio (a scheduled value read from
#: a float32 variable in a compiled Keras step); every path counts 15. The float32 error of the
#: product (about 1e-7 relative) stays well inside the margin.
COUNT_MARGIN = 1e-6


def num_selected(ratio: float, batch_size: int) -> int:
    """How many images of a batch are augmented when ``bernoulli_mix`` is False.

    ``round(ratio * batch_size)`` with halves rounded up (``0.5 * 3 -> 2``, ``0.5 * 5 -> 3``),
    unlike Python's banker's rounding, so that the count never depends on the parity of the batch,
    and a product within :data:`COUNT_MARGIN` below a half counts as the half it stands for
    (``0.58 * 25 -> 15``), so that float32 and float64 paths agree.
    """
    return math.floor(ratio * batch_size * (1.0 + COUNT_MARGIN) + 0.5)


def given_arguments(frame_locals: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a strategy's constructor received, for ``super().__init__(**...)``.

    ``frame_locals`` is the constructor's ``locals()`` taken first thing: its named parameters
    (``self`` and ``__class__`` left out) and its ``**common`` options, merged into one dict.

    >>> def __init__(self, patch_area=0.1, **common):
    ...     return given_arguments(locals())
    >>> __init__(None, 0.2, augmentation_ratio=0.5)
    {'patch_area': 0.2, 'augmentation_ratio': 0.5}
    """
    named = {key: value for key, value in frame_locals.items() if key not in ("self", "__class__", "common")}
    return {**named, **frame_locals.get("common", {})}


#: Test domains shared by several parameters (see :mod:`maskmix.domains`).
_FRACTION = OrRange(Uniform(0.01, 0.95))
_ASPECT = OrRange(LogUniform(0.1, 10.0))
_FILLS = OneOf((
    Choice(FILL_METHODS),
    Uniform(-1.0, 2.0),
    # One value per channel only fits images with that many channels: a 1-tuple always fits.
    TupleOf((Uniform(-1.0, 2.0),)),
))
_RESIZES = Choice(RESIZE_METHODS)

# Parameters shared by every strategy (the fraction control and value range of design §Conventions).
COMMON_PARAMS: tuple[Param, ...] = (
    Param(
        "augmentation_ratio",
        1.0,
        number_in(0.0, 1.0, lo_open=False, hi_open=False),
        "Fraction of the images of the batch that are augmented.",
        OneOf((Just(1.0), Uniform(0.0, 1.0))),
        schedulable=True,
    ),
    Param(
        "bernoulli_mix",
        False,
        boolean(),
        "False: exactly round(ratio * B) images at random positions (with sampling='pair', "
        "round(ratio * U) of its U = ceil(B / 2) units: the pairs, and the middle image of an odd batch alone; "
        "for the strategies that mix two images, of the B // 2 pairs: the middle image is never mixed); "
        "True: each image (each pair; with sampling='batch' the whole batch) independently with probability "
        "ratio.",
        Booleans(),
    ),
    Param(
        "pixels_range",
        None,
        pixels_range(),
        "(lo, hi) value range of the images; None means (0, 1) for floats and (0, 255) for uint8.",
        OneOf((Just(None), TupleOf((Uniform(-3.0, 0.0), Uniform(0.5, 300.0))))),
    ),
    Param(
        "sampling",
        "image",
        choice(SAMPLING_MODES),
        "What one random draw covers: 'image' (each image its own), 'batch' (one draw shared by the "
        "batch; with bernoulli_mix one coin for the whole batch) or 'pair' (images i and B-1-i share one "
        "draw and one selection, timm's pair mode: augmentation_ratio then counts pairs, e.g. 0.5 of a "
        "batch of 6 selects 2 of its 3 pairs, 4 images).",
        Choice(SAMPLING_MODES),
    ),
)

FILL_PARAM = Param("fill_method", "black", fill_method(), "How erased pixels are filled (design §Conventions).", _FILLS)

# Segmentation masks in the sample (torchvision ``tv_tensors.Mask``, Keras ``segmentation_masks``)
# keep their values by default: an erased region is still the object it was. With an ignore index
# (e.g. 255, or -100 for ``F.cross_entropy``) the erased mask pixels are marked so the loss skips them.
MASK_FILL_PARAM = Param(
    "mask_fill",
    None,
    optional(integer()),
    "Value written on the erased pixels of segmentation masks in the sample (an ignore index such "
    "as 255); None keeps the masks unchanged.",
    OneOf((Just(None), Integers(0, 255))),
)

LABEL_PARAMS: tuple[Param, ...] = (
    Param(
        "num_classes",
        None,
        optional(integer_at_least(1)),
        "Number of classes; required when labels are class indices.",
    ),
    Param(
        "label_smoothing",
        0.0,
        number_in(0.0, 1.0, lo_open=False, hi_open=True),
        "Label smoothing in [0, 1) applied before mixing.",
    ),
    Param(
        "partner",
        "other",
        choice(PARTNER_LAWS),
        "Each image's partner: 'other' (uniform among the other images: the batch shifted cyclically by "
        "a random 1..B-1, so every image is also some image's partner), 'permutation' (a random "
        "permutation, torch.randperm: an image may meet itself and then is not augmented) or 'flip' "
        "(image i with B-1-i); with sampling='pair' the partner is the pair's other image ('flip').",
        Choice(PARTNER_LAWS),
    ),
)

_AREA_RANGE_DOC = "Patch area as a fraction of the image area: a float or a (lo, hi) range drawn uniformly."
_ASPECT_DOC = "Patch aspect ratio height / width: a number or a (lo, hi) range drawn log-uniformly."


def _patch_area(default: object) -> Param:
    return Param("patch_area", default, fraction_or_range(), _AREA_RANGE_DOC, _FRACTION)


def _patch_aspect_ratio() -> Param:
    return Param("patch_aspect_ratio", (0.3, 3.0), positive_range(), _ASPECT_DOC, _ASPECT)


def _return_labels() -> Param:
    return Param("return_labels", False, boolean(), "Also return int64 is-augmented labels.", Booleans())


# Launch budgets (Variant.launches): kernel launches per call of a 64x3x32x32 float32 batch at
# augmentation_ratio 1, measured on the meta device (2026-12-05, masking strategies after issue 19's
# eager host-cost round: bit-pattern fills, box_keep, cached positions; others after the host-cost round: rows and
# columns drawn together, Cut-Thumbnail's kept resampling tables; before: 2026-11-30, after the whole-batch selection
# stopped costing kernels; mixing: issue 19's Beta sampler and (B, 2) CutMix boxes), with about 15%
# headroom. Lower a budget when a change saves
# launches; raise one only with a reason.
# Memory budgets (Variant.memory): the peak bytes one eager call allocates beyond its input, in units
# of the batch's bytes, for uint8 and float32 batches (the larger of contiguous and channels-last), on
# the meta device at 16x3x64x64 (benchmarks/op_counts.py's PeakMemory), measured 2026-12-08 after
# the peak-memory round (in-place rounding and blends, fewer float copies, CutSwap/CutPaste offsets
# in one buffer), with about 10% headroom. The output alone is 1; the same rule applies.

def _is_zero(value: Any) -> bool:
    return value == 0


#: CutBlur's official box (patch_side_normal) replaces the area and aspect ratio of its rectangle.
_BY_PATCH_SIDE_NORMAL = {"patch_area": Supersession("patch_side_normal"),
                         "patch_aspect_ratio": Supersession("patch_side_normal")}


RANDOM_CUTOUT = register(StrategySpec(
    "RandomCutout",
    (
        Param("patch_area", 0.1, fraction_or_range(), "Square area as a fraction of the image area (float or range).",
              _FRACTION),
        Param(
            "allow_partial",
            False,
            boolean(),
            "False: the square lies fully inside; True: its centre is uniform over the image and it is clipped.",
            Booleans(),
        ),
        Param(
            "patch_side",
            None,
            optional(count_range(1)),
            "Square side in pixels (int or range drawn uniformly per square); None: from patch_area, which it "
            "replaces when set (patch_area must then keep its default).",
            OneOf((Just(None), OrRange(Integers(1, 12)))),
        ),
        Param(
            "symmetric_box",
            False,
            boolean(),
            "True: the square spans [c - L//2, c + L//2) about its centre c (the official code: an odd side "
            "L erases 2 * (L//2) pixels); False: [c - L//2, c - L//2 + L).",
            Booleans(),
        ),
        Param(
            "patch_count",
            1,
            count_range(1),
            "Number of squares per image (int or range), each drawn and placed independently; they may overlap.",
            OrRange(Integers(1, 3)),
        ),
        FILL_PARAM,
        MASK_FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Erase one square of a given area per image (DeVries & Taylor, 2017).",
    flag="cutout",
    superseded={"patch_area": Supersession("patch_side")},
    example={"patch_area": 0.3},
    draw_everything={"fill_method": "noise", "augmentation_ratio": 0.7},
    variants={
        "cutout": Variant({}, launches=9, memory=(1.5, 1.2)),
        "cutout_partial": Variant({"patch_area": (0.05, 0.4), "allow_partial": True}, launches=22, memory=(1.5, 1.2)),
        # The options of the paper's code (from_paper), so that every battery runs them.
        "cutout_paper": Variant({"patch_side": (3, 9), "allow_partial": True, "symmetric_box": True,
                                 "patch_count": (1, 3)}, launches=22, memory=(1.5, 1.2)),
    },
    benchmarks={"RandomCutout": {}},
    gallery={"cutout": {"patch_area": 0.15}},
    sweep=("patch_area", (0.05, 0.15, 0.3)),
    # DeVries & Taylor (2017), Table 1 and the official code (uoguelph-mlrg/Cutout, util/cutout.py
    # and the commands at the top of train.py): n_holes=1 square of side L pixels, centre
    # (randint(h), randint(w)), box [c - L//2, c + L//2) clipped at the border; the image is
    # multiplied by the mask after Normalize, i.e. filled with 0.
    papers={
        setting: Preset(
            {"patch_side": side, "allow_partial": True, "symmetric_box": True, "fill_method": "zero"},
            f"DeVries & Taylor 2017, §4 / Table 1: --length {side} on {dataset}; official util/cutout.py",
            "For images normalised with the dataset's mean and std (the 0 fill is the mean); the paper's "
            "images are 32x32.",
        )
        for setting, dataset, side in (("cifar10", "CIFAR-10", 16), ("cifar100", "CIFAR-100", 8),
                                       ("svhn", "SVHN", 20))
    },
))

RANDOM_ERASING = register(StrategySpec(
    "RandomErasing",
    (
        _patch_area((0.05, 0.3)),
        _patch_aspect_ratio(),
        Param(
            "patch_count",
            1,
            count_range(1),
            "Number of rectangles per image (int or range); the drawn area is split between them.",
            OrRange(Integers(1, 4)),
        ),
        Param(
            "aspect_law",
            "log_uniform",
            choice(ASPECT_LAWS),
            "How the aspect ratio is drawn in patch_aspect_ratio: 'log_uniform' or 'uniform' (the paper's code).",
            Choice(ASPECT_LAWS),
        ),
        Param(
            "fit",
            "clamp",
            choice(FIT_RULES),
            "'clamp': a candidate fits when h <= H and w <= W, and if none of the attempts fits the first is "
            "clamped to the image; 'skip' (the paper's code): it fits when h < H and w < W, and if none fits "
            "the patch is not erased.",
            Choice(FIT_RULES),
        ),
        Param(
            "attempts",
            ATTEMPTS,
            integer_at_least(1),
            "Candidate rectangles drawn per patch (the tries of the paper's loop).",
            Integers(1, 12),
        ),
        FILL_PARAM,
        MASK_FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Erase a rectangle of random area and aspect ratio per image (Zhong et al., 2017).",
    flag="erasing",
    example={},
    draw_everything={"patch_count": (1, 3), "fill_method": "normal", "bernoulli_mix": True,
                     "augmentation_ratio": 0.6},
    variants={
        "erasing": Variant({}, launches=22, memory=(1.5, 1.2)),
        "erasing_multi": Variant({"patch_count": (1, 3), "fill_method": "noise"}, launches=31, memory=(10.0, 2.3)),
        "erasing_paper": Variant({"patch_area": (0.02, 0.4), "patch_aspect_ratio": (0.3, 3.33),
                                  "aspect_law": "uniform", "fit": "skip", "attempts": 100},
                                 launches=39, memory=(1.5, 1.2)),
    },
    benchmarks={"RandomErasing": {},
                "RandomErasing(count 1-3, noise)": {"patch_count": (1, 3), "fill_method": "noise"}},
    gallery={"erasing": {"patch_count": (1, 3), "fill_method": "noise"}},
    sweep=("patch_area", (0.05, 0.15, 0.3)),
    # Zhong et al. (AAAI 2020), §5.1 and the official code (zhunzhong07/Random-Erasing,
    # transforms.py with the defaults cifar.py / fashionmnist.py pass, README: --p 0.5): per image
    # with p = 0.5, up to 100 tries of area U(0.02, 0.4), aspect U(0.3, 1/0.3), sides rounded, kept
    # when h < H and w < W, else nothing; erased after Normalize with the raw mean constants.
    papers={
        setting: Preset(
            {"patch_area": (0.02, 0.4), "patch_aspect_ratio": (0.3, 1 / 0.3), "aspect_law": "uniform",
             "fit": "skip", "attempts": 100, "fill_method": fill, "augmentation_ratio": 0.5,
             "bernoulli_mix": True},
            f"Zhong et al. 2020, §5.1 (p=0.5, sl=0.02, sh=0.4, r1=0.3); official transforms.py, {script}",
            "For images normalised with the dataset's mean and std: the official script erases after "
            f"Normalize with the constants {fill} (not 0), which this fill writes.",
        )
        for setting, script, fill in (("cifar", "cifar.py", (0.4914, 0.4822, 0.4465)),
                                      ("fashion_mnist", "fashionmnist.py", (0.4914,)))
    },
))

RANDOM_HIDE_AND_SEEK = register(StrategySpec(
    "RandomHideAndSeek",
    (
        Param("grid_size", (8, 8), grid_size(), "Grid: n, (rows, cols), or a list of candidates drawn per image.",
              OneOf((Integers(1, 9), TupleOf((Integers(1, 9), Integers(1, 9))), ListOf(Integers(1, 9), 1, 3)))),
        Param("erased_patches", (0, 5), count_range(0), "Number of cells erased per image (int or range).",
              OrRange(Integers(0, 6))),
        Param(
            "hide_prob",
            None,
            optional(number_in(0.0, 1.0, lo_open=True, hi_open=True)),
            "If set, each cell is hidden independently with this probability (erased_patches must then keep "
            "its default).",
            OneOf((Just(None), Uniform(0.01, 0.99))),
        ),
        Param(
            "cell_size",
            None,
            optional(pixel_sizes()),
            "Cell side in pixels, or a list of candidates drawn per image (0: hide nothing); the grid starts "
            "at (0, 0) with partial last cells. Replaces grid_size when set (which must then keep its default).",
            OneOf((Just(None), ListOf(Integers(0, 12), 1, 3))),
        ),
        FILL_PARAM,
        MASK_FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Split the image into a grid and hide random cells (Singh et al., 2018).",
    flag="hide_and_seek",
    superseded={"erased_patches": Supersession("hide_prob"), "grid_size": Supersession("cell_size")},
    example={"grid_size": 2, "erased_patches": (1, 3)},
    draw_everything={"grid_size": [2, (3, 4)], "fill_method": "random"},
    variants={
        "hide_and_seek": Variant({"grid_size": [2, (3, 4)], "erased_patches": (1, 3)}, launches=36, memory=(1.5, 1.2)),
        "hide_and_seek_prob": Variant({"hide_prob": 0.9, "fill_method": "white"}, launches=8, memory=(1.5, 1.2)),
        # Sides in pixels; without the 0 candidate, so that every selected image changes (as the
        # batteries check): the paper's "no hiding" is tested in tests/papers.
        "hide_and_seek_paper": Variant({"cell_size": [3, 5], "hide_prob": 0.9}, launches=31, memory=(1.6, 1.2)),
    },
    benchmarks={"RandomHideAndSeek": {}},
    gallery={"hide_and_seek": {"grid_size": [4, 6], "hide_prob": 0.3, "fill_method": "gray"}},
    sweep=("hide_prob", (0.1, 0.3, 0.5)),
    # Singh & Lee (ICCV 2017) and the official code (kkanshul/Hide-and-Seek, hide_patch.py): a cell
    # side drawn per image from {0, 16, 32, 44, 56} pixels (0: no hiding), cells from (0, 0) with
    # partial last ones, each hidden with probability 0.5, on normalised 224x224 images.
    papers={
        "imagenet": Preset(
            {"cell_size": [0, 16, 32, 44, 56], "hide_prob": 0.5, "fill_method": "zero"},
            "Singh & Lee 2017, §3.1 and §4 (ImageNet); official hide_patch.py (grid_sizes, hide_prob)",
            "For 224x224 images normalised with the dataset's mean and std: the paper fills hidden cells "
            "with the dataset mean, 0 after normalisation.",
        ),
    },
))

RANDOM_GRID_MASK = register(StrategySpec(
    "RandomGridMask",
    (
        Param(
            "unit_length",
            (0.2, 0.4),
            fraction_or_range(allow_one=True),
            "Grid unit side as a fraction of min(H, W) (float in (0, 1] or range).",
            OrRange(Uniform(0.05, 1.0)),
        ),
        Param(
            "masked_ratio",
            0.5,
            fraction_or_range(),
            "Side of the masked square divided by the unit side (float or range).",
            Uniform(0.05, 0.95),
        ),
        Param(
            "rotation",
            0.0,
            number_in(0.0, 360.0, lo_open=False, hi_open=False),
            "Maximum rotation of the grid in degrees; the angle is uniform in [-rotation, rotation].",
            OneOf((Just(0.0), Uniform(0.0, 360.0))),
        ),
        Param(
            "unit_pixels",
            None,
            optional(pixel_range_up_to_image(2)),
            "Grid unit side in pixels, uniform over the integers lo..min(hi, min(H, W) - 1) (hi None: "
            "min(H, W) - 1; never below lo); replaces unit_length when set.",
            OneOf((Just(None), TupleOf((Integers(2, 4), OneOf((Just(None), Integers(4, 40))))))),
        ),
        Param(
            "kept_ratio",
            None,
            optional(number_in(0.0, 1.0, lo_open=True, hi_open=True)),
            "If set, the masked square's side is d - ceil(kept_ratio * d) (the kept band of ceil(r d) pixels "
            "per unit of the official code since February 2020); replaces masked_ratio.",
            OneOf((Just(None), Uniform(0.05, 0.95))),
        ),
        Param(
            "whole_degrees",
            False,
            boolean(),
            "True: the angle is a whole number of degrees uniform in {0, ..., ceil(rotation) - 1} (the "
            "official randint(rotate)).",
            Booleans(),
        ),
        Param(
            "invert",
            False,
            boolean(),
            "True: mask everything but the squares (the bands between them), the official code's mode=0.",
            Booleans(),
        ),
        FILL_PARAM,
        MASK_FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Mask a regular grid of squares with random unit size and offset (Chen et al., 2020).",
    flag="gridmask",
    superseded={
        "unit_length": Supersession("unit_pixels"),
        "masked_ratio": Supersession("kept_ratio"),
        "whole_degrees": Supersession("rotation", _is_zero, "rotation is 0 (no rotation)"),
    },
    example={},
    draw_everything={"rotation": 90.0, "fill_method": "normal_per_patch"},
    variants={
        "gridmask": Variant({}, launches=17, memory=(1.5, 1.2)),
        "gridmask_rotated": Variant({"rotation": 90, "fill_method": "mean_per_channel"}, launches=39,
                                    memory=(4.4, 1.2)),
        "gridmask_paper": Variant({"unit_pixels": (3, None), "kept_ratio": 0.6, "rotation": 360,
                                   "whole_degrees": True, "invert": True}, launches=41, memory=(2.3, 1.2)),
    },
    benchmarks={"RandomGridMask": {}, "RandomGridMask(rotation)": {"rotation": 360}},
    gallery={"gridmask": {"rotation": 30}},
    sweep=("masked_ratio", (0.3, 0.5, 0.7)),
    # Chen et al. (2020) and the official code (akuxcw/GridMask): imagenet_grid/utils/grid.py as
    # released with the paper (January 2020: kept band int(ratio * d + 0.5); the ceil(ratio * d) of
    # today's file came in a later pull request, 2020-02-20) with the defaults of imagenet_amp.py
    # (d1=96, d2=224, rotate=360, ratio=0.6, mode=1, prob=0.8, applied to the normalised batch);
    # detection_grid/.../transforms/grid.py with configs/grid_faster_rcnn_R_50_FPN_2x.yaml (d in
    # [2, min side), ratio=0.5, rotate=1, mode=1, prob=0.7; the trainer's per-iteration ramp runs
    # only for GRID.PROB == 0, which no config sets). mode=1 multiplies by the inverse of the band
    # mask: the squares are erased.
    papers={
        "imagenet": Preset(
            {"unit_pixels": (96, 223), "masked_ratio": 0.4, "rotation": 360, "whole_degrees": True,
             "fill_method": "zero", "augmentation_ratio": 0.8, "bernoulli_mix": True},
            "Chen et al. 2020, §4.1 (ImageNet); official imagenet_grid/utils/grid.py as released with the paper "
            "(January 2020), imagenet_amp.py defaults",
            "For 224x224 images normalised with the dataset's mean and std (0 = the mean). The kept band "
            "int(0.6 d + 0.5) of the paper's code leaves squares of round(0.4 d) pixels (masked_ratio=0.4); "
            "kept_ratio=0.6 is today's file, ceil(0.6 d), one pixel smaller squares for 51 of the 128 units. "
            "The official "
            "probability ramps as 0.8 * min(1, epoch / 240): give the integration "
            "schedules={'RandomGridMask': {'augmentation_ratio': ramp(0.0, 0.8, epochs=240)}} "
            "(maskmix.schedules); alone, the preset uses the final 0.8 throughout.",
        ),
        "detection": Preset(
            {"unit_pixels": (2, None), "kept_ratio": 0.5, "fill_method": "zero", "augmentation_ratio": 0.7,
             "bernoulli_mix": True},
            "Chen et al. 2020, §4.3 (COCO detection); official detection_grid/maskrcnn_benchmark/data/"
            "transforms/grid.py, configs/grid_faster_rcnn_R_50_FPN_2x.yaml",
            "For normalised images. The official probability is 0.7 throughout, as here (its trainer "
            "ramps it as PROB * iteration / max_iter only when GRID.PROB is 0, which no released config "
            "sets). The official loop starts its bands at the random offset on a 1.5x canvas and stops "
            "after hh // d of them (no band above or left of the first, none past the last), which "
            "leaves wider masked strips near the borders for large units; this grid is periodic "
            "everywhere.",
        ),
    },
))

#: Beta(alpha, alpha) parameters: beyond MAX_BETA_ALPHA float32 sampling fails (and the law is
#: 0.5 in float32 long before), see maskmix.geometry.
_BETA_ALPHA = number_in(0.0, MAX_BETA_ALPHA, lo_open=True, hi_open=False)


RANDOM_CUTMIX = register(StrategySpec(
    "RandomCutMix",
    (
        Param("alpha", 1.0, _BETA_ALPHA, "Beta(alpha, alpha) parameter of the mixing ratio.",
              Uniform(0.05, 5.0)),
        Param(
            "patch_area",
            None,
            optional(fraction_or_range()),
            "None: the paper's box of area 1 - lambda; a range: area drawn from Beta rescaled into it.",
            OneOf((Just(None), _FRACTION)),
        ),
        Param("patch_aspect_ratio", None, optional(positive_range()), _ASPECT_DOC, OneOf((Just(None), _ASPECT))),
        Param(
            "box_rounding",
            "round",
            choice(CUTMIX_BOX_ROUNDINGS),
            "Sides of the box of area 1 - lambda (patch_area and patch_aspect_ratio None): 'round' rounds "
            "them; 'truncate' is the official code's int() and [c - cut // 2, c + cut // 2) box.",
            Choice(CUTMIX_BOX_ROUNDINGS),
        ),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Paste a box of a partner image and mix labels by pixel fraction (Yun et al., 2019).",
    flag="cutmix",
    # The box of area 1 - lambda is the only one box_rounding rounds.
    superseded={"box_rounding": (Supersession("patch_area"), Supersession("patch_aspect_ratio"))},
    family="mixing",
    example={},
    draw_everything={"num_classes": 3, "label_smoothing": 0.1},
    variants={
        "cutmix": Variant({}, launches=42, memory=(2.6, 2.3)),
        "cutmix_variant": Variant({"alpha": 0.5, "patch_area": (0.1, 0.5), "patch_aspect_ratio": (0.5, 2.0)},
                                  launches=67, memory=(2.6, 2.3)),
    },
    benchmarks={"RandomCutMix": {}},
    gallery={"cutmix": {}},
    sweep=("patch_area", (0.1, 0.25, 0.5)),
    # Yun et al. (2019) and the official code (clovaai/CutMix-PyTorch, train.py: rand_bbox and the
    # cutmix_prob test of the training loop; README: --beta 1.0 --cutmix_prob 0.5 on CIFAR, 1.0 on
    # ImageNet): lambda ~ Beta(1, 1), the box's sides int(side * sqrt(1 - lambda)), its centre
    # uniform over the pixels, [c - cut // 2, c + cut // 2) clipped; labels by the exact pixel ratio.
    papers={
        setting: Preset(
            {"alpha": 1.0, "box_rounding": "truncate", "augmentation_ratio": ratio,
             "bernoulli_mix": ratio < 1.0, "sampling": "batch", "partner": "permutation"},
            f"Yun et al. 2019, §4.1 ({dataset}); official train.py (rand_bbox, --beta 1.0 "
            f"--cutmix_prob {ratio}, torch.randperm)",
            "As the official code: one lambda and one box per batch (sampling='batch'), partners by a random "
            "permutation (an image that meets itself is left as it is, label included)"
            + (f", and the whole batch mixed with probability {ratio} (bernoulli_mix: one coin per batch)."
               if ratio < 1.0 else ", every batch mixed."),
        )
        for setting, dataset, ratio in (("cifar", "CIFAR-10/100", 0.5), ("imagenet", "ImageNet", 1.0))
    },
))

RANDOM_MIXUP = register(StrategySpec(
    "RandomMixup",
    (
        Param("alpha", 1.0, _BETA_ALPHA, "Beta(alpha, alpha) parameter of the mixing ratio.",
              Uniform(0.05, 5.0)),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Blend each image with a partner image and mix labels likewise (Zhang et al., 2017).",
    flag="mixup",
    family="mixing",
    example={},
    draw_everything={"num_classes": 3, "alpha": 0.4},
    variants={
        "mixup": Variant({}, launches=25, memory=(8.8, 1.1)),
        "mixup_alpha": Variant({"alpha": 0.2, "label_smoothing": 0.1}, launches=36, memory=(8.8, 1.1)),
    },
    benchmarks={"RandomMixup": {}},
    gallery={"mixup": {}},
    sweep=("alpha", (0.2, 1.0, 5.0)),
    # Zhang et al. (2018): lambda ~ Beta(alpha, alpha), one per batch, partners by torch.randperm
    # (official facebookresearch/mixup-cifar10, train.py: mixup_data, --alpha 1.0); ImageNet
    # (§3.1, Table 1; no official ImageNet code): alpha = 0.2 for the ResNet-50/101 rows, 0.4 for
    # the ResNeXt-101 32x4d and 64x4d rows.
    papers={
        "cifar10": Preset(
            {"alpha": 1.0, "sampling": "batch", "partner": "permutation"},
            "Zhang et al. 2018, §3.2; official facebookresearch/mixup-cifar10 train.py (mixup_data, --alpha 1.)",
            "As the official code: one lambda per batch (sampling='batch') and partners by a random "
            "permutation (an image that meets itself is left as it is, label included).",
        ),
        "imagenet": Preset(
            {"alpha": 0.2, "sampling": "batch", "partner": "permutation"},
            "Zhang et al. 2018, §3.1 and Table 1 (mixup alpha = 0.2: the ResNet-50 and ResNet-101 rows on "
            "ImageNet-2012); no official ImageNet code",
            "One lambda per batch (sampling='batch') and partners by a random permutation, as the CIFAR-10 code. "
            "The ResNeXt-101 rows use alpha = 0.4: setting 'imagenet_resnext'.",
        ),
        "imagenet_resnext": Preset(
            {"alpha": 0.4, "sampling": "batch", "partner": "permutation"},
            "Zhang et al. 2018, Table 1 (mixup alpha = 0.4: the ResNeXt-101 32x4d and 64x4d rows on "
            "ImageNet-2012); no official ImageNet code",
            "One lambda per batch (sampling='batch') and partners by a random permutation, as the CIFAR-10 code.",
        ),
    },
))

#: Box laws of :class:`~maskmix.torch.RandomMixupOrCutMix`'s box of area ``1 - lambda``: RandomCutMix's
#: two (:data:`CUTMIX_BOX_ROUNDINGS`) and timm's ``rand_bbox`` (sides truncated, the whole side kept).
MIXUP_OR_CUTMIX_BOX_ROUNDINGS: tuple[str, ...] = (*CUTMIX_BOX_ROUNDINGS, "timm")
#: timm's ``Mixup(mode=...)`` -> maskmix's ``sampling`` option (with ``partner="flip"``).
TIMM_MODES: Mapping[str, str] = {"batch": "batch", "pair": "pair", "elem": "image"}

_ALPHA_OR_OFF = number_in(0.0, MAX_BETA_ALPHA, lo_open=False, hi_open=False)


def check_mixup_or_cutmix(owner: str, mixup_alpha: float, cutmix_alpha: float,
                          cutmix_minmax: tuple[float, float] | None) -> None:
    """The rules :class:`RandomMixupOrCutMix` puts on its validated parameters together (its spec's
    ``joint_rules``): at least one branch enabled, and ``cutmix_minmax`` only with the CutMix branch."""
    if mixup_alpha == 0.0 and cutmix_alpha == 0.0:
        raise ValueError(f"{owner}: mixup_alpha and cutmix_alpha are both 0, which disables both Mixup and "
                         "CutMix; set at least one of them > 0")
    if cutmix_minmax is not None and cutmix_alpha == 0.0:
        raise ValueError(f"{owner}: cutmix_minmax={cutmix_minmax!r} sets the CutMix box, but cutmix_alpha=0 "
                         "disables CutMix; set cutmix_alpha > 0 (timm forces it to 1 with cutmix_minmax)")


def timm_mixup_config(
    owner: str,
    *,
    mixup_alpha: float,
    cutmix_alpha: float,
    cutmix_minmax: Any,
    prob: float,
    switch_prob: float,
    mode: str,
    correct_lam: bool,
    label_smoothing: float,
    num_classes: int | None,
    multi_label: bool,
    mixup_off_epoch: Any,
) -> dict[str, Any]:
    """The :class:`RandomMixupOrCutMix` parameters that reproduce ``timm.data.Mixup(...)``.

    What each of timm's arguments becomes: ``prob`` is the probability that a unit (the batch, a
    pair, an image) is mixed (``augmentation_ratio=prob, bernoulli_mix=True``); ``mode``
    ``"batch"``/``"pair"``/``"elem"`` is ``sampling="batch"``/``"pair"``/``"image"``, with
    ``partner="flip"`` (timm mixes image ``i`` with image ``B - 1 - i``); the box of area
    ``1 - lambda`` is timm's (``box_rounding="timm"``); ``cutmix_minmax`` forces ``cutmix_alpha``
    to 1, as timm does. What maskmix cannot do is refused, never ignored: ``correct_lam=False``
    where it would change the labels, ``multi_label=True`` with smoothing, ``mixup_off_epoch``.
    Messages start with ``owner`` (``"RandomMixupOrCutMix.from_timm"``).

    >>> config = timm_mixup_config("f", mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=None, prob=1.0,
    ...     switch_prob=0.5, mode="elem", correct_lam=True, label_smoothing=0.1, num_classes=10,
    ...     multi_label=False, mixup_off_epoch=None)
    >>> config["sampling"], config["partner"], config["bernoulli_mix"], config["box_rounding"]
    ('image', 'flip', True, 'timm')
    """
    if not isinstance(mode, str) or mode not in TIMM_MODES:
        raise ValueError(f"{owner}: mode must be one of {', '.join(map(repr, TIMM_MODES))} (timm's modes); "
                         f"got {mode!r}")
    correct_lam = boolean()(owner, "correct_lam", correct_lam)
    multi_label = boolean()(owner, "multi_label", multi_label)
    if mixup_off_epoch is not None and not (_is_number(mixup_off_epoch) and mixup_off_epoch == 0):
        raise ValueError(
            f"{owner}: mixup_off_epoch (timm's train-script option that stops mixing from that epoch on) "
            "is a schedule of training progress, which a transform does not see: leave it None here and "
            f"give the training integration a schedule that sets augmentation_ratio to 0 from that epoch; "
            f"got {mixup_off_epoch!r}"
        )
    if cutmix_minmax is not None:
        cutmix_alpha = 1.0  # timm: "force cutmix alpha == 1.0 when minmax active"
    cutmix_on = cutmix_minmax is not None or (_is_number(cutmix_alpha) and cutmix_alpha > 0)
    if not correct_lam and cutmix_on and cutmix_minmax is None:
        raise ValueError(
            f"{owner}: correct_lam=False (timm weighs the labels of a clipped CutMix box by the drawn "
            "lambda, not by its area) is not supported: maskmix weighs labels by the exact fraction of "
            "pasted pixels, which is timm's correct_lam=True"
        )
    if multi_label and _is_number(label_smoothing) and label_smoothing > 0:
        raise ValueError(
            f"{owner}: multi_label=True with label_smoothing={label_smoothing!r} is not supported: timm "
            "smooths each multi-label target towards 0.5, maskmix smooths soft rows towards 1/K; pass "
            "label_smoothing=0 (multi-hot float rows are then mixed as timm mixes them)"
        )
    # timm reads switch_prob only with both branches on, and rand_bbox only for the box of area
    # 1 - lambda: maskmix refuses options that have no effect, so they keep their defaults there.
    both_on = _is_number(mixup_alpha) and mixup_alpha > 0 and cutmix_on
    spec = SPECS["RandomMixupOrCutMix"]
    defaults = spec.defaults()
    if not both_on:  # checked before it is set aside: a bad value is refused as timm's own would be
        spec.param("switch_prob").check(owner, "switch_prob", switch_prob)
    return {
        "mixup_alpha": mixup_alpha,
        "cutmix_alpha": cutmix_alpha,
        "cutmix_minmax": cutmix_minmax,
        "switch_prob": switch_prob if both_on else defaults["switch_prob"],
        "box_rounding": "timm" if cutmix_on and cutmix_minmax is None else defaults["box_rounding"],
        "label_smoothing": label_smoothing,
        "num_classes": num_classes,
        "augmentation_ratio": prob,
        "bernoulli_mix": True,
        "sampling": TIMM_MODES[mode],
        "partner": "flip",
    }


#: The parameters of :func:`timm_mixup_config` set by a timm argument of another name.
_TIMM_SOURCES: Mapping[str, str] = {"augmentation_ratio": "prob", "bernoulli_mix": "prob", "sampling": "mode"}


def with_own_options(owner: str, config: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (:func:`timm_mixup_config`) with maskmix's own ``options`` on top (``generator``,
    ``pixels_range``, or a box law or partner law timm has no argument for). An option that would
    replace what one of timm's arguments set is refused: that argument would be dropped silently
    (``mode="elem"`` with ``sampling="batch"``, ``prob=0.5`` with ``augmentation_ratio=1``)."""
    clash = [key for key in options if key in _TIMM_SOURCES]
    if clash:
        sources = ", ".join(f"{key} from timm's {_TIMM_SOURCES[key]}" for key in clash)
        raise ValueError(
            f"{owner}: {sources}: pass timm's argument instead (it would be dropped), or build the "
            "transform directly to choose the maskmix parameter"
        )
    return {**config, **options}


def _is_number(value: Any) -> bool:
    # Any real number, NumPy scalars included (np.float32(0.1) from a config must meet the same
    # refusals as 0.1), bools excluded: the checks themselves (is_real_number).
    return is_real_number(value)


_NO_CUTMIX = Supersession("cutmix_alpha", _is_zero, "cutmix_alpha is 0 (Mixup only)")

RANDOM_MIXUP_OR_CUTMIX = register(StrategySpec(
    "RandomMixupOrCutMix",
    (
        Param("mixup_alpha", 1.0, _ALPHA_OR_OFF,
              "Beta(alpha, alpha) parameter of the Mixup lambda; 0 disables Mixup.",
              OneOf((Just(0.0), Uniform(0.05, 5.0)))),
        Param("cutmix_alpha", 1.0, _ALPHA_OR_OFF,
              "Beta(alpha, alpha) parameter of the CutMix lambda; 0 disables CutMix.",
              Uniform(0.05, 5.0)),
        Param(
            "switch_prob",
            0.5,
            number_in(0.0, 1.0, lo_open=False, hi_open=False),
            "Probability that an image is CutMix-ed rather than Mixup-ed, when both are enabled.",
            OneOf((Just(0.5), Uniform(0.0, 1.0))),
        ),
        Param(
            "cutmix_minmax",
            None,
            optional(fraction_pair()),
            "None: the CutMix box has area 1 - lambda; (lo, hi): timm's box, its sides uniform in "
            "int(lo * side) .. int(hi * side) - 1 pixels, fully inside (lambda unused).",
            OneOf((Just(None), TupleOf((Uniform(0.0, 0.45), Uniform(0.5, 1.0))))),
        ),
        Param(
            "box_rounding",
            "round",
            choice(MIXUP_OR_CUTMIX_BOX_ROUNDINGS),
            "The box of area 1 - lambda: 'round' and 'truncate' as RandomCutMix; 'timm' truncates the "
            "sides and keeps them whole, [c - cut // 2, c - cut // 2 + cut) (timm's rand_bbox).",
            Choice(MIXUP_OR_CUTMIX_BOX_ROUNDINGS),
        ),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Mix each image with a partner by Mixup or by CutMix, chosen per image (timm's Mixup).",
    flag="mixup_or_cutmix",
    superseded={
        "box_rounding": (Supersession("cutmix_minmax"), _NO_CUTMIX),
        "switch_prob": (Supersession("mixup_alpha", _is_zero, "mixup_alpha is 0 (CutMix only)"), _NO_CUTMIX),
    },
    family="mixing",
    example={},
    draw_everything={"num_classes": 3, "mixup_alpha": 0.4, "cutmix_alpha": 0.5, "label_smoothing": 0.1},
    variants={
        "mixup_or_cutmix": Variant({}, launches=59, memory=(10.0, 2.3)),
        "mixup_or_cutmix_timm": Variant({"mixup_alpha": 0.8, "cutmix_minmax": (0.2, 0.8)}, launches=72,
                                        memory=(10.0, 2.3)),
    },
    benchmarks={"RandomMixupOrCutMix": {}},
    gallery={"mixup_or_cutmix": {}},
    sweep=("switch_prob", (0.0, 0.5, 1.0)),
    joint_rules=lambda owner, values: check_mixup_or_cutmix(
        owner, values["mixup_alpha"], values["cutmix_alpha"], values["cutmix_minmax"]),
))


def _patch_side_normal() -> Param:
    return Param(
        "patch_side_normal",
        None,
        optional(normal_fraction()),
        "None: the rectangle of patch_area and patch_aspect_ratio; (mean, std): the official CutBlur box, "
        "of the image's shape with sides int(H r) by int(W r), r ~ Normal(mean, std) clipped to [0, 1], fully "
        "inside (patch_area and patch_aspect_ratio must then keep their defaults).",
        OneOf((Just(None), TupleOf((Uniform(0.05, 1.0), Uniform(0.0, 0.1))))),
    )


# Yoo et al. (2020) and the official code (clovaai/cutblur, augments.py: cutblur; option.py: the
# MoA policy's alpha 0.7 and prob 1.0 for its cutblur entry): one box per batch, its side ratio
# np.random.randn() * 0.01 + alpha, ch = int(h * ratio) by cw = int(w * ratio), its corner
# randint(0, h - ch + 1) by randint(0, w - cw + 1); HR pasted into the LR input or LR into the
# HR image, each with probability 1/2; the LR input is up-sampled with mode="nearest" (solver.py).
_CUTBLUR_SOURCE = ("Yoo et al. 2020, §3 and the official clovaai/cutblur augments.py (cutblur) and option.py "
                   "(alpha 0.7, prob 1.0: CutBlur alone, --augs cutblur --alpha 0.7)")
_CUTBLUR_PER_BATCH = ("As the official code, one side ratio, one box and one direction per batch (sampling='batch'). "
                      "CutBlur alone on every batch: the paper's headline runs use the MoA policy (--use_moa), which "
                      "picks one of seven augmentations per batch (blend, rgb, mixup, cutout, cutmix, cutmixup, "
                      "cutblur; uniformly, CutBlur 0.4 on RealSR; prob 0.6 for DN/JPEG, 0.2 for CARN), so CutBlur "
                      "touches about 1/7 of its batches; the six others are not maskmix's.")

RANDOM_CUTBLUR = register(StrategySpec(
    "RandomCutBlur",
    (
        _patch_area((0.05, 0.3)),
        _patch_aspect_ratio(),
        Param(
            "blur_factor",
            0.1,
            fraction_or_range(),
            "Down-sampling factor of the low-resolution copy (float or range).",
            OrRange(Uniform(0.02, 0.98)),
        ),
        Param("resize_method", "bilinear", choice(RESIZE_METHODS), "Interpolation of the down- and the up-sampling.",
              _RESIZES),
        _patch_side_normal(),
        *COMMON_PARAMS,
    ),
    "Replace a rectangle by a low-resolution copy of the same region (Yoo et al., 2020).",
    flag="cutblur",
    superseded=_BY_PATCH_SIDE_NORMAL,
    family="pasting",
    example={},
    draw_everything={"blur_factor": (0.1, 0.5), "resize_method": "bicubic"},
    variants={
        "cutblur": Variant({}, launches=29, memory=(5.5, 2.3)),
        "cutblur_range": Variant({"blur_factor": (0.05, 0.5), "resize_method": "bicubic"}, launches=48,
                                 memory=(9.6, 2.4)),
    },
    benchmarks={"RandomCutBlur": {}},
    gallery={"cutblur": {"patch_area": (0.2, 0.4), "blur_factor": 0.08}},
    sweep=("patch_area", (0.1, 0.25, 0.45)),
    papers={
        f"sr_x{scale}": Preset(
            {"patch_side_normal": (0.7, 0.01), "blur_factor": 1.0 / scale, "resize_method": "bicubic",
             "augmentation_ratio": 1.0, "sampling": "batch"},
            f"{_CUTBLUR_SOURCE}; x{scale} super-resolution (--scale {scale})",
            "The single-image form: the low-resolution copy is made from the image (bicubic down and up), "
            "where the paper uses the dataset's LR image up-sampled with mode='nearest', and only the LR box "
            "in the HR image is made (the paper also pastes HR into LR with probability 1/2): for "
            "super-resolution pairs use cutblur_pair / RandomCutBlurPair.from_paper('sr'). " + _CUTBLUR_PER_BATCH,
        )
        for scale in (4, 2)
    },
))

#: Directions of :func:`cutblur_pair`: which image of a super-resolution pair the box comes from.
CUTBLUR_DIRECTIONS: tuple[str, ...] = ("random", "hr_to_lr", "lr_to_hr")

#: The parameters of ``cutblur_pair`` and ``RandomCutBlurPair`` (torch and Keras). Not registered:
#: it takes ``(lr_upsampled, hr)`` pairs, not a batch of images, so no battery runs it.
CUTBLUR_PAIR = StrategySpec(
    "cutblur_pair",
    (
        _patch_area((0.05, 0.3)),
        _patch_aspect_ratio(),
        Param("direction", "random", choice(CUTBLUR_DIRECTIONS), "Which image the rectangle comes from.",
              Choice(CUTBLUR_DIRECTIONS)),
        _patch_side_normal(),
        *COMMON_PARAMS,
    ),
    "Swap a rectangle between a super-resolution pair's LR input and HR target (Yoo et al., 2020).",
    family="pasting",
    superseded=_BY_PATCH_SIDE_NORMAL,
    papers={
        "sr": Preset(
            {"patch_side_normal": (0.7, 0.01), "direction": "random", "augmentation_ratio": 1.0, "sampling": "batch"},
            _CUTBLUR_SOURCE,
            "lr_upsampled is the dataset's LR image up-sampled to the HR size (the official code: "
            "F.interpolate(LR, scale_factor=scale, mode='nearest')). " + _CUTBLUR_PER_BATCH,
        ),
    },
)

RANDOM_CUT_THUMBNAIL = register(StrategySpec(
    "RandomCutThumbnail",
    (
        Param("thumbnail_area", 0.1, fraction_or_range(), "Thumbnail area as a fraction of the image (or range).",
              _FRACTION),
        Param("resize_method", "bilinear", choice(THUMBNAIL_RESIZE_METHODS), "Interpolation of the down-sampling.",
              Choice(THUMBNAIL_RESIZE_METHODS)),
        Param(
            "mix_images",
            False,
            boolean(),
            "True: paste the partner's thumbnail and mix labels by its pixel area.",
            Booleans(),
        ),
        Param(
            "thumbnail_weight",
            None,
            optional(number_in(0.0, 1.0, lo_open=False, hi_open=False)),
            "With mix_images: None weighs the partner's label by the thumbnail's exact pixel fraction; a "
            "number in [0, 1] is a fixed weight instead (the paper's lam = 0.25, not a pixel fraction).",
            OneOf((Just(None), Uniform(0.0, 1.0))),
        ),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Paste a shrunken copy of the whole image at a random place (Xie et al., 2021).",
    flag="thumbnail",
    family="pasting",
    mixing_switch="mix_images",
    # num_classes is accepted either way: it tells the number of classes and changes nothing by itself.
    switched={"thumbnail_weight": "mix_images", "label_smoothing": "mix_images"},
    example={"thumbnail_area": (0.1, 0.5)},
    draw_everything={"thumbnail_area": (0.1, 0.5), "mix_images": True, "num_classes": 3},
    variants={
        "thumbnail": Variant({"thumbnail_area": (0.1, 0.5)}, launches=42, memory=(8.6, 4.2)),
        "thumbnail_mix": Variant({"mix_images": True}, launches=45, memory=(6.1, 3.3)),
    },
    benchmarks={"RandomCutThumbnail": {}},
    gallery={"thumbnail": {"thumbnail_area": 0.15}, "thumbnail_mix": {"thumbnail_area": 0.25, "mix_images": True}},
    sweep=("thumbnail_area", (0.05, 0.15, 0.3)),
    # Xie et al. (2021) and the official code (TianshuXie/Cut-Thumbnail, train.py and its README):
    # 224 x 224 crops, a 112 x 112 thumbnail made by F.interpolate's default (legacy) nearest
    # mode, its top-left corner uniform where it fits (rand_bbox: random.randint, both ends
    # included), the batch augmented with probability 0.8 (participation_rate); "mst" pastes a
    # permuted image's thumbnail and weighs its target by lam = 0.25.
    papers={
        setting: Preset(
            {"thumbnail_area": 0.25, "resize_method": "nearest_legacy", "mix_images": mix,
             "thumbnail_weight": 0.25 if mix else None, "augmentation_ratio": 0.8, "bernoulli_mix": True,
             "sampling": "batch", **({"partner": "permutation"} if mix else {})},
            f"Xie et al. 2021, §3 and Table 1 (ImageNet, ResNet-50, {name}); official train.py "
            f"(--mode {mode} --size 112 --lam 0.25 --participation_rate 0.8)",
            "For 224 x 224 images (a 112 x 112 thumbnail). As the official code, one position and one "
            "participation per batch (sampling='batch'; bernoulli_mix: the whole batch with probability 0.8)"
            + (", partners by a random permutation (an image that meets itself is left as it is, where the "
               "official code pastes its own thumbnail)." if mix else ".")
            + (" The label weight 0.25 is the paper's lam, not the pixel fraction (equal only when "
               "the thumbnail is exactly a quarter of the image)." if mix else ""),
        )
        for setting, mix, mode, name in (("imagenet_mst", True, "mst", "mixed single thumbnail"),
                                         ("imagenet_st", False, "st", "self thumbnail"))
    },
))

#: CutPaste's rectangle and jitter in the paper (Li et al. 2021, appendix A).
_CUTPASTE_PATCH: dict[str, Any] = {"patch_area": (0.02, 0.15), "patch_aspect_ratio": (0.3, 3.3),
                                   "color_jitter": 0.1, "hue_jitter": 0.1}
_CUTPASTE_NOTES = (
    "For images in [0, 1] (or set pixels_range), as the paper's 256x256 crops: the scar sizes are "
    "in pixels. torchvision's ColorJitter applies its four adjustments in a random order per call; "
    "here the order is fixed (brightness, contrast, saturation, hue)."
)

RANDOM_CUTPASTE = register(StrategySpec(
    "RandomCutPaste",
    (
        _patch_area((0.05, 0.3)),
        _patch_aspect_ratio(),
        Param(
            "color_jitter",
            0.0,
            number_in(0.0, 1.0, lo_open=False, hi_open=False),
            "Strength in [0, 1] of the brightness/contrast/saturation jitter of the pasted patch.",
            OneOf((Just(0.0), Uniform(0.0, 1.0))),
        ),
        Param(
            "hue_jitter",
            0.0,
            number_in(0.0, 0.5, lo_open=False, hi_open=False),
            "Maximum hue shift in [0, 0.5] (fraction of the colour wheel) of the pasted patch of RGB images.",
            OneOf((Just(0.0), Uniform(0.0, 0.5))),
        ),
        Param(
            "scar_prob",
            0.0,
            number_in(0.0, 1.0, lo_open=False, hi_open=False),
            "Probability that an augmented image gets a rotated thin scar (CutPaste-Scar) instead of the rectangle.",
            OneOf((Just(0.0), Just(1.0), Uniform(0.0, 1.0))),
        ),
        Param("scar_width", (2, 16), count_range(1), "Scar width in pixels (int or range drawn uniformly).",
              OrRange(Integers(1, 6))),
        Param("scar_length", (10, 25), count_range(1), "Scar length in pixels (int or range drawn uniformly).",
              OrRange(Integers(1, 12))),
        Param(
            "scar_rotation",
            45.0,
            number_in(0.0, 180.0, lo_open=False, hi_open=False),
            "Maximum scar rotation in degrees; the angle is uniform in [-scar_rotation, scar_rotation].",
            Uniform(0.0, 180.0),
        ),
        Param(
            "three_way_labels",
            False,
            boolean(),
            "With return_labels: 0 = passed through, 1 = rectangle, 2 = scar (the paper's 3-way task).",
            Booleans(),
        ),
        _return_labels(),
        *COMMON_PARAMS,
    ),
    "Cut a patch and paste it elsewhere in the same image (Li et al., 2021).",
    flag="cutpaste",
    superseded={name: Supersession("scar_prob", _is_zero, "scar_prob is 0 (no scars)")
                for name in ("scar_width", "scar_length", "scar_rotation")},
    family="pasting",
    switched={"three_way_labels": "return_labels"},
    example={},
    draw_everything={"color_jitter": 0.3, "hue_jitter": 0.1, "scar_prob": 0.5, "return_labels": True},
    variants={
        "cutpaste": Variant({}, launches=43, memory=(4.1, 1.9)),
        "cutpaste_jitter": Variant({"color_jitter": 0.5, "patch_area": (0.1, 0.4)}, launches=94, memory=(8.9, 3.4)),
    },
    benchmarks={"RandomCutPaste": {}},
    gallery={"cutpaste": {"patch_area": (0.1, 0.2), "color_jitter": 0.2}},
    sweep=("patch_area", (0.05, 0.15, 0.3)),
    # Li et al., CVPR 2021, §3.1-3.2 and appendix (no official code): the rectangle's area is
    # U(0.02, 0.15) of the image, its aspect ratio in (0.3, 1) U (1, 3.3) (read as log-uniform on
    # (0.3, 3.3), as the common re-implementation does), ColorJitter 0.1 on brightness, contrast,
    # saturation and hue; the scar is 2-16 px wide, 10-25 px long, rotated in [-45, 45] degrees.
    papers={
        "cutpaste": Preset(
            {**_CUTPASTE_PATCH, "augmentation_ratio": 0.5, "return_labels": True},
            "Li et al. 2021, §3.1 and appendix A (CutPaste; no official code)",
            "Binary task: half the batch is cut-pasted; the call returns (images, labels). "
            + _CUTPASTE_NOTES,
        ),
        "scar": Preset(
            {**_CUTPASTE_PATCH, "scar_prob": 1.0, "augmentation_ratio": 0.5, "return_labels": True},
            "Li et al. 2021, §3.2 and appendix A (CutPaste-Scar; no official code)",
            "Binary task with scars only: half the batch gets a scar. " + _CUTPASTE_NOTES,
        ),
        "3way": Preset(
            {**_CUTPASTE_PATCH, "scar_prob": 0.5, "augmentation_ratio": 2 / 3, "three_way_labels": True,
             "return_labels": True},
            "Li et al. 2021, §3.2 and Table 1 (CutPaste (3-way), the best setting; no official code)",
            "Labels 0 (normal), 1 (CutPaste), 2 (Scar) in thirds: 2/3 of the batch is augmented, half of "
            "those with a scar (drawn per image, so the split between 1 and 2 varies per batch). "
            + _CUTPASTE_NOTES,
        ),
    },
))

RANDOM_CUTSWAP = register(StrategySpec(
    "RandomCutSwap",
    (
        _patch_area((0.05, 0.3)),
        _patch_aspect_ratio(),
        Param(
            "saliency_clusters",
            2,
            integer_at_least(1),
            "With saliency maps given at call time: clusters of the 1-D k-means of each map's values; "
            "both patches are centred on pixels of the most salient cluster.",
            Integers(1, 4),
        ),
        _return_labels(),
        *COMMON_PARAMS,
    ),
    "Swap the contents of two non-overlapping patches of the same size (Qin et al., 2023).",
    flag="cutswap",
    family="pasting",
    example={},
    draw_everything={"return_labels": True},
    variants={"cutswap": Variant({}, launches=120, memory=(4.2, 1.9))},
    benchmarks={"RandomCutSwap": {}},
    gallery={"cutswap": {"patch_area": (0.1, 0.2)}},
    sweep=("patch_area", (0.05, 0.12, 0.2)),
    # Qin, Gu, Yu & Zhang, "Multilevel Saliency-Guided Self-Supervised Learning for Image Anomaly
    # Detection" (arXiv 2311.18332, SIVP 2024): LayerCAM saliency maps are clustered and a pixel
    # pair of the cluster with the highest centroid saliency centres the two swapped patches. No
    # official code; only the abstract could be read here, not the patch sizes nor the cluster count.
    papers={
        "paper": Preset(
            {"saliency_clusters": 2, "augmentation_ratio": 0.5, "return_labels": True},
            "Qin et al. 2023 (arXiv 2311.18332), abstract: saliency clustering, a pixel pair of the most "
            "salient cluster, patches swapped (no official code)",
            "Binary self-supervised task, as CutPaste's (the swapped images are the negative samples): half "
            "the batch is swapped and the call returns (images, labels), 1 swapped, 0 normal. Pass each "
            "image's saliency map (e.g. LayerCAM) at call time: torch maskmix.torch.SaliencyMap "
            "in the sample, Keras layer(images, saliency=maps); without maps the patches are placed "
            "uniformly. The paper's patch sizes and cluster count were not available: maskmix's default "
            "patch_area/patch_aspect_ratio and 2 clusters are used.",
        ),
    },
))
