"""Where the images and labels are in what a mixing transform is called with (no framework import).

Both frameworks accept the same structures: ``(images, labels)``, a longer tuple or list whose
extra items are passed through, or a mapping with ``"images"``/``"image"`` and
``"labels"``/``"label"`` keys. :func:`split_images_labels` finds the two and returns a function
that rebuilds the same structure around new images and labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["split_images_labels", "usage"]

Rebuild = Callable[[Any, Any], Any]


def usage(name: str) -> str:
    """The start of the error message for a call that is not one of the accepted structures."""
    return (
        f"{name}: expected (images, labels), a tuple/list whose first two items are images and labels, "
        "or a dict with 'image(s)' and 'label(s)' keys"
    )


def split_images_labels(name: str, data: Any) -> tuple[Any, Any, Rebuild]:
    """``(images, labels, rebuild)`` of ``data``; ``rebuild(images, labels)`` gives ``data``'s structure.

    The structure is kept: a tuple stays a tuple, a list a list (extra items untouched), and a
    mapping keeps its other keys and its type. Raises ``ValueError`` for a mapping without the
    keys and ``TypeError`` for anything else; both messages start with ``name``.
    """
    if isinstance(data, Mapping):
        image_key = next((k for k in ("images", "image") if k in data), None)
        label_key = next((k for k in ("labels", "label") if k in data), None)
        if image_key is None or label_key is None:
            raise ValueError(f"{usage(name)}; got a dict with keys {sorted(map(str, data))}")

        def rebuild_mapping(images: Any, labels: Any) -> Any:
            out = {**data, image_key: images, label_key: labels}
            return out if type(data) is dict else type(data)(out)

        return data[image_key], data[label_key], rebuild_mapping
    if isinstance(data, (tuple, list)):
        if len(data) < 2:
            raise TypeError(f"{usage(name)}; got a {type(data).__name__} of {len(data)} item(s)")
        rest = list(data[2:])

        def rebuild_sequence(images: Any, labels: Any) -> Any:
            items = [images, labels, *rest]
            return tuple(items) if isinstance(data, tuple) else items

        return data[0], data[1], rebuild_sequence
    raise TypeError(f"{usage(name)}; got {type(data).__name__}")
