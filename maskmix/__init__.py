"""maskmix: cutting, masking and mixing image augmentations that run inside the training step.

``import maskmix`` is light: it imports neither torch nor keras. Use :mod:`maskmix.torch` for
torchvision v2 transforms and :mod:`maskmix.keras` for Keras 3 layers. The framework-free
parameter specifications live in :mod:`maskmix.params`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
