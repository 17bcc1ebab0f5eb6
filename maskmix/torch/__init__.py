"""maskmix for PyTorch: torchvision v2 transforms that run per image on the batch's device.

Importing this package imports torch and torchvision, never keras or tensorflow.
"""

# ruff: noqa: E402  (the imports below follow the optional-dependency check)
from maskmix._optional import require

# Before the first submodule import: a missing framework names the extra to install.
require("torch", "maskmix.torch")
require("torchvision", "maskmix.torch")

from ._base import SUPPORTED_DTYPES, CommonOptions, MaskingTransform, MaskMixTransform, using_generator
from ._mixing import MixingTransform
from .cut_thumbnail import RandomCutThumbnail
from .cutblur import RandomCutBlur
from .cutblur_pairs import RandomCutBlurPair, cutblur_pair
from .cutmix import RandomCutMix, random_cutmix
from .cutout import RandomCutout
from .cutpaste import RandomCutPaste
from .cutswap import RandomCutSwap, SaliencyMap
from .erasing import RandomErasing
from .grid_mask import RandomGridMask
from .hide_and_seek import RandomHideAndSeek
from .mixup import RandomMixup, random_mixup
from .mixup_or_cutmix import RandomMixupOrCutMix, random_mixup_or_cutmix
from .pipeline import MaskMixPipeline, soft_label_targets

__all__ = [
    "SUPPORTED_DTYPES",
    "CommonOptions",
    "MaskMixPipeline",
    "MaskMixTransform",
    "MaskingTransform",
    "MixingTransform",
    "RandomCutBlur",
    "RandomCutBlurPair",
    "RandomCutMix",
    "RandomCutPaste",
    "RandomCutSwap",
    "RandomCutThumbnail",
    "RandomCutout",
    "RandomErasing",
    "RandomGridMask",
    "RandomHideAndSeek",
    "RandomMixup",
    "RandomMixupOrCutMix",
    "SaliencyMap",
    "cutblur_pair",
    "random_cutmix",
    "random_mixup",
    "random_mixup_or_cutmix",
    "soft_label_targets",
    "using_generator",
]
