"""Where the images and labels are in a sample or a batch (no framework import).

One reading of batch structures for the mixing transforms of both frameworks and for the training
pipelines: ``(images, labels)``, a longer tuple or list whose extra items are passed through (a
namedtuple stays that namedtuple), or a mapping whose images and labels are found by key, in any
case: ``"images"``, ``"image"``, ``"img"``, ``"pixel_values"`` for the images; ``"labels"``, then
the first key containing "label" for the labels (torchvision's heuristic, in its order:
``"LABELS"``, then ``"class_label"`` before ``"label"``) (:func:`find_key`); the mapping keeps its
type and its other keys.
:func:`split_images_labels` finds the two for a transform; the pipelines
(:class:`maskmix.torch.MaskMixPipeline`) choose their keys and positions with :func:`find_key` and
rebuild with :func:`rebuild_sequence` / :func:`rebuild_mapping`, so that both read and rebuild
batches the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

__all__ = [
    "COORDINATE_WORDS",
    "IMAGE_KEYS",
    "LABEL_KEYS",
    "LABEL_SUBSTRING",
    "coordinate_keys",
    "find_key",
    "image_key_values",
    "other_label_keys",
    "rebuild_mapping",
    "rebuild_sequence",
    "refuse_other_labels",
    "split_images_labels",
    "usage",
]

Rebuild = Callable[[Any, Any], Any]

#: The keys of a mapping that hold the images, and the labels, in the order they are looked up.
IMAGE_KEYS: tuple[str, ...] = ("images", "image", "img", "pixel_values")
LABEL_KEYS: tuple[str, ...] = ("labels",)
#: Failing the label keys, the first key whose text contains this, in any case (torchvision).
LABEL_SUBSTRING = "label"

#: Words that make a mapping's key name coordinates on the pixels (boxes, keypoints), in any case:
#: ``"boxes"``, ``"bbox"``, ``"bounding_boxes"``, ``"keypoints"`` (torchvision's detection targets,
#: COCO, Keras).
COORDINATE_WORDS: tuple[str, ...] = ("box", "keypoint")


#: The last side of a tensor of coordinates: points (x, y) or (x, y, visibility), boxes (4 numbers),
#: rotated boxes (5, or 8 for four corners).
COORDINATE_SIDES = frozenset({2, 3, 4, 5, 8})


def _coordinates_shaped(value: Any) -> bool:
    """Rank 2 or more, a last side of :data:`COORDINATE_SIDES`, not bool: ``num_boxes`` counts
    ``(B,)`` or ``has_box`` flags are not coordinates."""
    shape = tuple(getattr(value, "shape", ()))
    return (len(shape) >= 2 and shape[-1] in COORDINATE_SIDES
            and "bool" not in str(getattr(value, "dtype", "")))  # torch.bool, bool, <dtype: 'bool'>


def coordinate_keys(data: Any, is_tensor: Callable[[Any], bool], words: tuple[str, ...] = COORDINATE_WORDS
                    ) -> list[str]:
    """The keys, at any depth of ``data`` (mappings, tuples, lists), that name coordinates
    (contain one of ``words``, in any case: by default :data:`COORDINATE_WORDS`) and hold a tensor
    (``is_tensor``) shaped like coordinates (by default; for other ``words`` any tensor),
    directly or in a list/tuple of them (torchvision's per-image target dicts hold ``"boxes"``; a
    per-image list of boxes)."""
    shaped = words == COORDINATE_WORDS
    found: list[str] = []
    stack: list[tuple[Any, str | None]] = [(data, None)]
    while stack:
        item, key = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((value, str(k)) for k, value in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((entry, key) for entry in item)
        elif (key is not None and key not in found and is_tensor(item)
              and any(word in key.lower() for word in words) and (not shaped or _coordinates_shaped(item))):
            found.append(key)
    return found


def image_key_values(data: Any) -> list[Any]:
    """The values of ``data``'s mappings, at any depth, under an image key (:data:`IMAGE_KEYS`, in
    any case)."""
    found: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            found.extend(value for k, value in item.items() if isinstance(k, str) and k.lower() in IMAGE_KEYS)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def other_label_keys(data: Mapping[Any, Any], label_key: Hashable, is_tensor: Callable[[Any], bool]) -> list[str]:
    """The keys of ``data`` other than ``label_key`` that name labels too (contain "label", in any
    case: ``"label_fine"``, ``"labels_coarse"``) and hold labels (``is_tensor``: a tensor shaped as
    labels, class indices ``(B,)`` or rows ``(B, K)``, not an ``is_labeled`` flag): a mix that
    mixes the images and ``data[label_key]`` would leave them naming the unmixed images."""
    return [str(k) for k, value in data.items()
            if k != label_key and isinstance(k, str) and LABEL_SUBSTRING in k.lower() and is_tensor(value)
            and _labels_shaped(value)]


def _labels_shaped(value: Any) -> bool:
    """Integer class indices ``(B,)`` or float rows ``(B, K)`` (by the dtype's name, whatever the
    framework); a bool flag or a float per-image weight is not."""
    rank, dtype = len(tuple(getattr(value, "shape", ()))), str(getattr(value, "dtype", ""))
    if "bool" in dtype:
        return False
    return (rank == 1 and "int" in dtype) or (rank == 2 and "float" in dtype)


def find_key(data: Mapping[Any, Any], key: Hashable, defaults: tuple[str, ...], default: Hashable, *,
             containing: str | None = None) -> Hashable | None:
    """The key of ``data`` that ``key`` designates, or None.

    ``key`` itself when ``data`` has it; when ``key`` is the caller's ``default`` (a position, as
    given for tuple batches) the key of ``data`` equal to the first of ``defaults`` it has, in any
    case, else (``containing`` given) the first key of ``data``, in its order, whose text contains
    ``containing`` in any case.
    """
    if key in data:
        return key
    if key == default:
        lowered = {k.lower(): k for k in reversed(list(data)) if isinstance(k, str)}  # the first of equal ones
        found = next((lowered[k] for k in defaults if k in lowered), None)
        if found is None and containing is not None:
            found = next((k for k in data if isinstance(k, str) and containing in k.lower()), None)
        return found
    return None


def rebuild_sequence(data: tuple[Any, ...] | list[Any], replaced: Mapping[int, Any]) -> Any:
    """``data`` with the items at the positions of ``replaced`` replaced: a tuple stays a tuple, a
    namedtuple that namedtuple, a list a list (a list subclass is rebuilt from the items)."""
    items = list(data)
    for position, value in replaced.items():
        items[position] = value
    if isinstance(data, tuple):
        return type(data)(*items) if hasattr(data, "_fields") else tuple(items)
    return items if type(data) is list else type(data)(items)


def rebuild_mapping(data: Mapping[Any, Any], replaced: Mapping[Hashable, Any]) -> Any:
    """A copy of ``data`` with ``replaced`` over its items (``data`` untouched): its own ``copy()``
    where it has one (a dict subclass keeps its type and state, e.g. a ``defaultdict`` its
    factory), else a dict."""
    out = data.copy() if hasattr(data, "copy") else dict(data)
    out.update(replaced)
    return out


def usage(name: str) -> str:
    """The start of the error message for a call that is not one of the accepted structures."""
    return (
        f"{name}: expected (images, labels), a tuple/list whose first two items are images and labels "
        "(or images and a dict holding the labels), or a dict with 'image(s)' (or 'img', 'pixel_values') "
        "and 'labels' (or any key containing 'label') keys"
    )


def refuse_other_labels(name: str, data: Mapping[Any, Any], label_key: Hashable,
                        is_tensor: Callable[[Any], bool] | None, *, holder: str = "sample") -> None:
    """Raise a ``ValueError`` when ``data`` holds other labels than ``data[label_key]``
    (:func:`other_label_keys`; ``is_tensor`` None: no check); ``holder`` names ``data`` in the
    message (the mixing transforms' "sample", the pipelines' "batch")."""
    others = other_label_keys(data, label_key, is_tensor) if is_tensor is not None else []
    if others:
        raise ValueError(
            f"{name}: the {holder} holds other labels ({', '.join(map(repr, others))}) besides {str(label_key)!r}; "
            f"the images and {str(label_key)!r} are mixed, and the others would go on naming the unmixed images. "
            "Drop them, or mix one tensor holding every label set (concatenated one-hot rows)"
        )


def split_images_labels(name: str, data: Any, *, image_key: Hashable | None = None,
                        labels_like: Callable[[Any], bool] | None = None) -> tuple[Any, Any, Rebuild]:
    """``(images, labels, rebuild)`` of ``data``; ``rebuild(images, labels)`` gives ``data``'s structure.

    The structure is kept: a tuple stays a tuple, a list a list (extra items untouched), and a
    mapping keeps its other keys and its type. A tuple/list whose second item is a mapping holds
    the labels in it, under a label key (torchvision's ``(images, targets)``). Raises
    ``ValueError`` for a mapping without the keys and ``TypeError`` for anything else; both
    messages start with ``name``. ``image_key`` (a mapping's key that the caller found the images
    under, e.g. by their type) comes before the key conventions. With ``labels_like`` (what counts
    as a tensor), a mapping holding the labels that has other label keys (``"label_fine"``) is
    refused with a ``ValueError``: they would not be mixed.
    """
    if isinstance(data, Mapping):
        image_key = find_key(data, 0 if image_key is None else image_key, IMAGE_KEYS, 0)
        label_key = find_key(data, 1, LABEL_KEYS, 1, containing=LABEL_SUBSTRING)
        if image_key is None or label_key is None:
            raise ValueError(f"{usage(name)}; got a dict with keys {sorted(map(str, data))}")
        refuse_other_labels(name, data, label_key, labels_like)
        return (data[image_key], data[label_key],
                lambda images, labels: rebuild_mapping(data, {image_key: images, label_key: labels}))
    if isinstance(data, (tuple, list)):
        if len(data) < 2:
            raise TypeError(f"{usage(name)}; got a {type(data).__name__} of {len(data)} item(s)")
        targets = data[1]
        if isinstance(targets, Mapping):
            # torchvision's second convention: (images, targets) with the labels in the targets
            # dict under a label key (detection-style samples); the dict keeps its other keys.
            label_key = find_key(targets, 1, LABEL_KEYS, 1, containing=LABEL_SUBSTRING)
            if label_key is None:
                raise ValueError(f"{usage(name)}; got (images, dict) whose dict has keys {sorted(map(str, targets))}, "
                                 "none of them 'labels' or containing 'label'")
            refuse_other_labels(name, targets, label_key, labels_like)
            return data[0], targets[label_key], lambda images, labels: rebuild_sequence(
                data, {0: images, 1: rebuild_mapping(targets, {label_key: labels})})
        return data[0], data[1], lambda images, labels: rebuild_sequence(data, {0: images, 1: labels})
    raise TypeError(f"{usage(name)}; got {type(data).__name__}")
