"""The (images, labels) structures both frameworks' mixing transforms accept (maskmix._structure)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from maskmix._structure import split_images_labels


def test_sequences_keep_their_type_and_extra_items() -> None:
    images, labels, rebuild = split_images_labels("T", ("x", "y", "meta"))
    assert (images, labels) == ("x", "y") and rebuild("X", "Y") == ("X", "Y", "meta")
    assert split_images_labels("T", ["x", "y"])[2]("X", "Y") == ["X", "Y"]


def test_mappings_keep_their_type_and_other_keys() -> None:
    data = OrderedDict([("id", 7), ("image", "x"), ("labels", "y")])
    images, labels, rebuild = split_images_labels("T", data)
    out = rebuild("X", "Y")
    assert (images, labels) == ("x", "y") and type(out) is OrderedDict
    assert out == OrderedDict([("id", 7), ("image", "X"), ("labels", "Y")]) and data["image"] == "x"


@pytest.mark.parametrize(("data", "error", "ending"), [
    ({"x": 1}, ValueError, r"got a dict with keys \['x'\]$"),
    (("x",), TypeError, r"got a tuple of 1 item\(s\)$"),
    ("images", TypeError, r"got str$"),
])
def test_other_structures_are_refused_naming_the_transform(data: object, error: type, ending: str) -> None:
    with pytest.raises(error, match=r"^RandomCutMix: expected \(images, labels\).*" + ending):
        split_images_labels("RandomCutMix", data)
