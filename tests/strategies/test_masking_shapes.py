"""Pixel accounting of the four torch masking strategies (Cutout, Random Erasing, Hide-and-Seek,
GridMask) on arbitrary batch, channel and image sizes, 1x1 included, drawn by hypothesis: the
changed pixels are exactly the region rebuilt from the sampled parameters (``tests/references.py``).
Each strategy's own semantics: ``test_<strategy>.py``.
"""

from __future__ import annotations

import torch
from helpers import changed_pixels, gen, make_images, run_with_params
from hypothesis import given, settings
from hypothesis import strategies as st
from masking_cases import reference_region

from maskmix.torch import RandomCutout, RandomErasing, RandomGridMask, RandomHideAndSeek


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_torch_pixel_accounting_on_arbitrary_shapes(data) -> None:
    kind = data.draw(st.sampled_from(["cutout", "cutout_partial", "erasing", "hide_and_seek", "grid_mask"]))
    batch, channels = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    height, width = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    if kind == "hide_and_seek":  # grids finer than the image included: some cells are then empty
        rows, cols = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
        transform = RandomHideAndSeek(grid_size=(rows, cols), erased_patches=(0, 20), generator=gen(3))
    else:
        transform = {
            "cutout": lambda: RandomCutout(patch_area=(0.01, 0.99), generator=gen(3)),
            "cutout_partial": lambda: RandomCutout(patch_area=(0.01, 0.99), allow_partial=True, generator=gen(3)),
            "erasing": lambda: RandomErasing(patch_area=(0.01, 0.9), patch_count=(1, 3), generator=gen(3)),
            "grid_mask": lambda: RandomGridMask(unit_length=(0.05, 1.0), masked_ratio=(0.01, 0.99), generator=gen(3)),
        }[kind]()
    images = make_images((batch, channels, height, width), seed=data.draw(st.integers(0, 100)))
    out, params = run_with_params(transform, images)
    region, _ = reference_region(params, (height, width))
    assert torch.equal(changed_pixels(images, out), region)
    if "top" in params:  # boxes lie inside the image
        assert (params["top"] >= 0).all() and (params["left"] >= 0).all()
        assert (params["top"] + params["height"] <= height).all()
        assert (params["left"] + params["width"] <= width).all()
