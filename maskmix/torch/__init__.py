"""maskmix for PyTorch: torchvision v2 transforms that run per image on the batch's device.

Importing this package imports torch and torchvision, never keras or tensorflow.
"""

from ._base import SUPPORTED_DTYPES, CommonOptions, MaskingTransform, MaskMixTransform
from .cutout import RandomCutout
from .erasing import RandomErasing
from .grid_mask import RandomGridMask
from .hide_and_seek import RandomHideAndSeek

__all__ = [
    "SUPPORTED_DTYPES",
    "CommonOptions",
    "MaskMixTransform",
    "MaskingTransform",
    "RandomCutout",
    "RandomErasing",
    "RandomGridMask",
    "RandomHideAndSeek",
]
