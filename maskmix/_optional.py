"""Optional dependencies: a missing one raises an ``ImportError`` that names the extra to install.

maskmix's frameworks are extras (``pyproject.toml``): ``maskmix[torch]``, ``maskmix[keras]``,
``maskmix[lightning]``, ``maskmix[examples]``. Each entry point that needs one calls
:func:`require` before its first import of it, so a plain ``ModuleNotFoundError`` deep inside a
submodule never reaches the user.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that provides each optional top-level module (mirrors ``[project.optional-dependencies]``).
EXTRAS: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torch",
    "keras": "keras",
    "tensorflow": "keras",
    "lightning": "lightning",
    "torchmetrics": "lightning",
    "matplotlib": "examples",
    "skimage": "examples",
    "sklearn": "examples",
}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module``; if it (or its package) is missing, name the extra that installs it.

    Args:
        module: the dotted module name to import, e.g. ``"lightning.pytorch"``.
        feature: what needs it, for the message, e.g. ``"maskmix.callbacks.MaskMixCallback"``.

    Returns:
        The imported module.

    Raises:
        ImportError: ``module``'s top-level package, or an optional dependency it imports (Keras
            without its TensorFlow backend), is not installed or is blocked; the message says
            ``pip install "maskmix[<extra>]"``. Any other missing module propagates unchanged.
    """
    root = module.split(".", 1)[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        missing = (err.name or root).split(".", 1)[0]
        if missing != root and missing not in EXTRAS:
            raise  # a dependency of the dependency, not one of ours: its own message is the useful one
        extra = EXTRAS.get(missing, EXTRAS.get(root, root))
        raise ImportError(
            f"{feature} needs the optional dependency {missing!r}, which is not installed; "
            f'install it with: pip install "maskmix[{extra}]"'
        ) from err
