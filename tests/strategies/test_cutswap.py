"""CutSwap (``RandomCutSwap``), torch and Keras: the two boxes (rebuilt by slicing,
``tests/references.py``) exchange their pixels exactly and nothing else changes; the boxes never
overlap and stay inside; positions are uniform; sizes follow area and aspect and shrink when two
patches cannot fit; 1x1 images pass through unaugmented.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import keras
import numpy as np
import pytest
import torch
from helpers import make_images, reference_box_mask, run_with_params

from maskmix.keras import RandomCutSwap as keras_RandomCutSwap
from maskmix.torch.cutswap import RandomCutSwap

# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.uint8], ids=str)
def test_torch_cutswap_exchanges_the_two_regions_exactly(dtype: torch.dtype) -> None:
    x = make_images((100, 3, 10, 13), dtype, seed=8)
    out, p = run_with_params(RandomCutSwap(generator=torch.Generator().manual_seed(0)), x)
    a = reference_box_mask(p["top_a"], p["left_a"], p["height"], p["width"], (10, 13))
    b = reference_box_mask(p["top_b"], p["left_b"], p["height"], p["width"], (10, 13))
    assert not (a & b).any()
    outside = ~(a | b)
    assert torch.equal(out.permute(1, 0, 2, 3)[:, outside], x.permute(1, 0, 2, 3)[:, outside])
    for i, (h, w, ta, la, tb, lb) in enumerate(
        zip(*(p[k].tolist() for k in ("height", "width", "top_a", "left_a", "top_b", "left_b")), strict=True)
    ):
        assert torch.equal(out[i, :, ta : ta + h, la : la + w], x[i, :, tb : tb + h, lb : lb + w])
        assert torch.equal(out[i, :, tb : tb + h, lb : lb + w], x[i, :, ta : ta + h, la : la + w])


@pytest.mark.parametrize(
    ("size", "area"),
    [((2, 2), (0.05, 0.9)), ((1, 9), (0.3, 0.9)), ((9, 1), 0.5), ((3, 5), (0.2, 0.9)), ((4, 4), 0.25),
     ((24, 17), (0.05, 0.3)), ((10, 10), 0.9), ((1, 2), 0.5)],
)
def test_torch_cutswap_patches_never_overlap_and_stay_inside(size: tuple[int, int], area) -> None:
    height, width = size
    t = RandomCutSwap(patch_area=area, generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, height, width).expand(5000, 1, height, width)])
    h, w = p["height"], p["width"]
    assert ((2 * h <= height) | (2 * w <= width)).all() and (h >= 1).all() and (w >= 1).all()
    for top, left in (("top_a", "left_a"), ("top_b", "left_b")):
        assert (p[top] >= 0).all() and (p[top] + h <= height).all()
        assert (p[left] >= 0).all() and (p[left] + w <= width).all()
    disjoint = ((p["top_a"] - p["top_b"]).abs() >= h) | ((p["left_a"] - p["left_b"]).abs() >= w)
    assert disjoint.all()
    assert p["selected"].all()


def test_torch_cutswap_pair_positions_are_uniform() -> None:
    # 2x2 patches in 4x4 images: every disjoint ordered pair of positions is equally likely given A;
    # A is uniform over the 8 corners that leave room for B (all but the centre (1, 1)).
    t = RandomCutSwap(patch_area=0.25, patch_aspect_ratio=1.0, generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 4, 4).expand(16000, 1, 4, 4)])
    a = p["top_a"] * 3 + p["left_a"]
    counts_a = torch.bincount(a, minlength=9).double()
    assert counts_a[4] == 0 and (counts_a[counts_a > 0] - 2000).abs().max() < 5 * 41.8
    # Given A at the corner (0, 0), B is uniform over the 5 positions not overlapping it.
    corner = a == 0
    b = (p["top_b"] * 3 + p["left_b"])[corner]
    counts_b = torch.bincount(b, minlength=9)
    assert set(counts_b.nonzero().flatten().tolist()) == {2, 5, 6, 7, 8}
    expected = corner.sum() / 5
    assert (counts_b[counts_b > 0] - expected).abs().max() < 5 * math.sqrt(expected * 0.8)


def test_torch_cutswap_sizes_follow_area_and_aspect_and_shrink_when_needed() -> None:
    gen = torch.Generator().manual_seed(0)
    t = RandomCutSwap(patch_area=(0.05, 0.25), patch_aspect_ratio=(0.5, 2.0), generator=gen)
    p = t.make_params([torch.zeros(1, 1, 100, 100).expand(2000, 1, 100, 100)])
    area = (p["height"] * p["width"]).double() / 1e4
    aspect = p["height"].double() / p["width"].double()
    assert area.min() > 0.045 and area.max() < 0.26 and aspect.min() > 0.47 and aspect.max() < 2.1
    assert area.mean() > 0.13  # ~uniform over the range: no candidate was rejected
    # 90% of the image cannot hold two patches: the side whose halving keeps more is halved.
    p = RandomCutSwap(patch_area=0.9, patch_aspect_ratio=2.0).make_params([torch.zeros(3, 1, 10, 10)])
    assert p["height"].tolist() == [10] * 3 and p["width"].tolist() == [5] * 3  # 13x7 -> 10x7 -> 10x5
    p = RandomCutSwap(patch_area=0.9, patch_aspect_ratio=0.1).make_params([torch.zeros(2, 1, 1, 10)])
    assert p["height"].tolist() == [1, 1] and p["width"].tolist() == [5, 5]


def test_torch_cutswap_one_by_one_images_pass_through_unaugmented() -> None:
    x = make_images((3, 3, 1, 1))
    out, labels = RandomCutSwap(return_labels=True)(x)
    assert torch.equal(out, x) and labels.tolist() == [0, 0, 0]
    out, labels = RandomCutSwap(return_labels=True)(make_images((3, 3, 1, 2)))
    assert labels.tolist() == [1, 1, 1] and torch.equal(out[..., 0], make_images((3, 3, 1, 2))[..., 1])


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (11, 9)


def keras_images(b: int = 6, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((b, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float64"])
@pytest.mark.parametrize("channels_first", [False, True])
def test_keras_cutswap_exchanges_the_two_regions_exactly(dtype, channels_first):
    x = keras_images(24, dtype, seed=6)
    xs = kh.np_(x)
    layout = "channels_first" if channels_first else None
    layer = keras_RandomCutSwap(patch_area=(0.05, 0.45), seed=8, data_format=layout)
    out, p = kh.run_with_params(layer, keras.ops.transpose(x, (0, 3, 1, 2)) if channels_first else x)
    if channels_first:
        out = out.transpose(0, 2, 3, 1)
    for b in range(24):
        a, c = kh.box_slices(p, b, suffix="_a"), kh.box_slices(p, b, suffix="_b")
        np.testing.assert_array_equal(out[b][a], xs[b][c])
        np.testing.assert_array_equal(out[b][c], xs[b][a])
        keep = kh.outside(KERAS_SIZE, a, c)
        np.testing.assert_array_equal(out[b][keep], xs[b][keep])


@pytest.mark.parametrize("size", [(11, 9), (2, 9), (1, 5), (5, 1), (2, 2), (16, 3)])
@pytest.mark.parametrize("area", [(0.05, 0.3), (0.4, 0.9), 0.49])
def test_keras_cutswap_patches_never_overlap_and_stay_inside(size, area):
    height, width = size
    for seed in range(3):
        layer = keras_RandomCutSwap(patch_area=area, patch_aspect_ratio=(0.2, 5.0), seed=seed)
        p = kh.params_np(layer.get_random_transformation(np.zeros((400, *size, 1), "float32")))
        h, w = p["height"], p["width"]
        assert (h >= 1).all() and (w >= 1).all()
        for s in ("_a", "_b"):
            top, left = p["top" + s], p["left" + s]
            assert (top >= 0).all() and (left >= 0).all()
            assert (top + h <= height).all() and (left + w <= width).all()
        disjoint = (np.abs(p["top_a"] - p["top_b"]) >= h) | (np.abs(p["left_a"] - p["left_b"]) >= w)
        assert disjoint.all()
        assert p["selected"].all()


def test_keras_cutswap_one_pixel_images_pass_through_unaugmented():
    x = keras_images(3, size=(1, 1))
    out, flags = keras_RandomCutSwap(return_labels=True, seed=0)(x)
    np.testing.assert_array_equal(kh.np_(out), kh.np_(x))
    np.testing.assert_array_equal(kh.np_(flags), [0, 0, 0])


@pytest.mark.parametrize("sampling", ["image", "batch", "pair"])
def test_the_frames_of_a_clip_share_the_salient_placement(sampling: str) -> None:
    """In a Video every draw is per clip, shared by its frames: with saliency maps the salient
    pixels and the fallback placement were drawn per frame, so identical frames got different
    patches. Each clip is placed by its first frame's map (the other frames' maps differ here)."""
    from torchvision import tv_tensors

    from maskmix.torch import SaliencyMap

    clips = torch.arange(144.0).view(1, 1, 1, 12, 12).expand(4, 3, 2, 12, 12).contiguous()
    maps = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    out, returned = RandomCutSwap(sampling=sampling, patch_area=0.05)(tv_tensors.Video(clips), SaliencyMap(maps))
    changed = (out != clips).any(dim=2)  # (clips, frames, H, W)
    assert bool(changed.any()) and torch.equal(returned, maps)
    for frame in (1, 2):
        assert torch.equal(out[:, frame], out[:, 0])
    # The first frame's map decides: the same clips with every frame given that map.
    torch.manual_seed(0)
    first = RandomCutSwap(sampling=sampling, patch_area=0.05)(
        tv_tensors.Video(clips), SaliencyMap(maps[:, :1].expand(4, 3, 12, 12).contiguous()))[0]
    assert torch.equal(first, out)


@pytest.mark.parametrize("devices", [("meta", "cpu"), ("cpu", "meta")], ids=["map_on_cpu", "map_on_meta"])
def test_a_saliency_map_on_another_device_than_the_images(devices: tuple[str, str]) -> None:
    """A raw torch error, or (map on meta, images and generator on cpu) one that said the images
    were on meta and told to move the generator."""
    from maskmix.torch import SaliencyMap

    image_device, map_device = devices
    images = torch.rand(2, 3, 12, 12, device=image_device)
    saliency = SaliencyMap(torch.rand(2, 12, 12, device=map_device))
    generator = torch.Generator(image_device) if image_device == "cpu" else None
    with pytest.raises(ValueError, match=rf"^RandomCutSwap: the SaliencyMap is on {map_device} but the images are "
                                         rf"on {image_device}; move it to the images' device$"):
        RandomCutSwap(generator=generator)(images, saliency)
