"""maskmix for Keras 3: layers built on keras.ops / keras.random (TensorFlow, torch and JAX backends).

Importing this package imports keras (and its backend), never torch unless torch is the Keras
backend. Every layer is registered for serialisation under the package name ``"maskmix"``.
"""

# ruff: noqa: E402  (the imports below follow the optional-dependency check)
from maskmix._optional import require

# Before the first submodule import: a missing Keras (or its backend) names the extra to install.
require("keras", "maskmix.keras")

from . import _compat
from ._base import SUPPORTED_DTYPES, CommonOptions, MaskingLayer, MaskMixLayer
from ._mixing import MixingLayer
from .cut_thumbnail import RandomCutThumbnail
from .cutblur import RandomCutBlur
from .cutblur_pairs import RandomCutBlurPair, cutblur_pair
from .cutmix import RandomCutMix, random_cutmix
from .cutout import RandomCutout
from .cutpaste import RandomCutPaste
from .cutswap import RandomCutSwap
from .erasing import RandomErasing
from .grid_mask import RandomGridMask
from .hide_and_seek import RandomHideAndSeek
from .mixup import RandomMixup, random_mixup
from .mixup_or_cutmix import RandomMixupOrCutMix, random_mixup_or_cutmix
from .pipeline import MaskMixPipeline

_compat.keep_out_of_autograph()

__all__ = [
    "SUPPORTED_DTYPES",
    "CommonOptions",
    "MaskMixLayer",
    "MaskMixPipeline",
    "MaskingLayer",
    "MixingLayer",
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
    "cutblur_pair",
    "random_cutmix",
    "random_mixup",
    "random_mixup_or_cutmix",
]
