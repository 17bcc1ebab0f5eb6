"""Bad and unusual call-time input that only torch has (design §Conventions, errors).

What both frameworks check (unsupported dtypes, images without pixels, bad labels, labels without
``num_classes``, NaN/inf pixels, uint8 saturation, gradients) is written once in
``contracts/test_call_errors.py``. Here, for every strategy (the mixing ones and the mixed
Cut-Thumbnail included): ranks in torch's words (``(..., C, H, W)``), images without pixels under
leading dims, drawn fills over a sample of several images, labels that are not tensors or on
another device, non-contiguous inputs (same output as the contiguous copy); samples that hold no image are
refused in ``contracts/test_torch_samples.py``. See also
``contracts/test_torch_conventions.py::test_call_time_validation`` (rank 2, five dtypes, PIL
images, generator device, mismatched sample shapes) and
``strategies/test_mixing_base.py::test_torch_call_time_errors`` (labels of CutMix/Mixup).
"""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest
import torch
from helpers import make_images
from registry_cases import example_cases

import maskmix.torch as mm
from maskmix._checks import UINT8_UNIT_FILLS

#: Every strategy torch implements, in a configuration that changes every selected image of 2x2
#: or more pixels (the registry's ``example``), and the mixing form of those that have one.
CASES = example_cases("torch")
FACTORIES = {name: partial(case.build, "torch") for name, case in CASES.items()}
#: The ways of calling a mixing transform (CutMix, Mixup, the mixed Cut-Thumbnail...).
MIXING = {name: factory for name, factory in FACTORIES.items() if CASES[name].mixes}

def call(name: str, transform, images: torch.Tensor, labels: torch.Tensor | None = None):
    """Call a transform the normal way: images only, or (images, labels) for the mixing ones."""
    if name in MIXING:
        if labels is None:
            labels = torch.arange(images.shape[-4] if images.ndim >= 4 else 1) % 3
        return transform(images, labels)
    return transform(images)


def images_of(result):
    return result[0] if isinstance(result, tuple) else result


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape", [(), (5,), (8, 8)], ids=["rank0", "rank1", "rank2"])
def test_wrong_rank_raises_value_error(name: str, shape: tuple[int, ...]) -> None:
    cls = FACTORIES[name]().__class__.__name__
    if name in MIXING:
        layout = r"a batch \(\.\.\., B, C, H, W\) with at least 4"
    else:
        layout = r"\(\.\.\., C, H, W\) with at least 3"
    with pytest.raises(ValueError, match=rf"^{cls}: images must be {layout} dims; got shape {re_shape(shape)}$"):
        call(name, FACTORIES[name](), torch.rand(shape), torch.zeros(1, dtype=torch.int64))
    if name in MIXING:  # one (C, H, W) image is not a batch
        with pytest.raises(ValueError, match=rf"^{cls}: images must be {layout} dims; got shape \(3, 8, 8\)$"):
            call(name, FACTORIES[name](), torch.rand(3, 8, 8), torch.zeros(1, dtype=torch.int64))


@pytest.mark.parametrize("name", FACTORIES)
def test_channels_last_images_are_refused(name: str) -> None:
    """A (B, H, W, C) batch stacked from NumPy images would be erased or mixed along the wrong
    axes (32 'channels' of 32 x 3 pixels): refused with the permutation to apply, two-channel
    images (optical flow) too; grey, RGBA and multispectral (..., C, H, W) images and a Video's
    clips pass."""
    from torchvision import tv_tensors

    cls = FACTORIES[name]().__class__.__name__
    shapes = [(4, 12, 12, 3), (4, 12, 12, 2), (2, 4, 12, 12, 1)] + ([] if name in MIXING else [(12, 12, 4)])
    for shape in shapes:
        message = (rf"^{cls}: images of shape {re_shape(shape)} look channels-last \(\.\.\., H, W, C\): 12 values "
                   rf"on the channel axis \(-3\) and {shape[-1]} on the last; permute them to \(\.\.\., C, H, W\)")
        with pytest.raises(ValueError, match=message):
            call(name, FACTORIES[name](), make_images(shape), torch.arange(shape[-4] if len(shape) > 3 else 1) % 3)
    for shape in [(4, 1, 12, 12), (4, 2, 12, 12), (4, 4, 12, 12), (4, 13, 12, 12), (4, 3, 1, 1)]:
        assert images_of(call(name, FACTORIES[name](), make_images(shape))).shape == shape
    # A batch of clips 3 pixels wide: the frames times the channels next to the width are no sign.
    video = tv_tensors.Video(make_images((4, 4, 3, 12, 3)))
    assert images_of(call(name, FACTORIES[name](), video)).shape == video.shape


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape", [(2, 3, 3, 0, 5), (2, 3, 0, 4, 5)], ids=["5d-H0", "5d-C0"])
def test_images_without_pixels_under_leading_dims_raise_value_error(name: str, shape: tuple[int, ...]) -> None:
    """Under leading dims too (C, H, W of 4-D batches: ``contracts/test_call_errors.py``)."""
    cls = FACTORIES[name]().__class__.__name__
    message = rf"^{cls}: images must have at least one channel, row and column \(C, H, W >= 1\); got shape "
    with pytest.raises(ValueError, match=message + re_shape(shape) + "$"):
        call(name, FACTORIES[name](), torch.rand(shape), torch.arange(shape[0]) % 3)


@pytest.mark.parametrize("fill_method", ["noise", "random", "normal", "normal_per_patch"])
def test_drawn_fills_need_the_images_of_a_sample_to_agree(fill_method: str) -> None:
    """Random fill values are drawn once per call from the first image of a sample: an image of
    other channels or dtype beside it is refused (constant fills still work for such samples)."""
    from torchvision import tv_tensors

    rgb = tv_tensors.Image(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8))
    depth = tv_tensors.Image(torch.rand(1, 16, 16))
    unit = tv_tensors.Image(torch.rand(3, 16, 16))
    erase = mm.RandomErasing(fill_method=fill_method)
    # Standard-normal fills refuse uint8 images outright (see test_torch_conventions): floats only.
    pairs = ((unit, depth),) if fill_method in UINT8_UNIT_FILLS else ((rgb, depth), (rgb, unit), (unit, rgb))
    for first, other in pairs:
        with pytest.raises(ValueError, match=rf"^RandomErasing: fill_method='{fill_method}' draws its values "
                                             r"from the first image of a sample, so all its images must share"):
            erase(first, other)
    out_rgb, out_depth = mm.RandomErasing(fill_method="black")(rgb, depth)
    assert (out_rgb == 0).all(0).sum() > 0 and (out_depth == 0).all(0).sum() > 0


FILLING = [name for name in FACTORIES if "fill_method" in CASES[name].spec.param_names]


@pytest.mark.parametrize("name", FILLING)
def test_fills_beyond_the_image_dtype_are_refused(name: str) -> None:
    """fill_method=1e5 on float16 images (largest finite value 65504) wrote inf, silently; 1e39
    on float32 images raised a bare RuntimeError; a white fill of pixels_range (0, 1e5) on float16
    images wrote inf. float64 images (and float32 ones for 1e5) hold them."""
    cls = type(FACTORIES[name]()).__name__
    x = make_images((2, 3, 8, 8), seed=0)
    for dtype, fill in ((torch.float16, 1e5), (torch.float32, 1e39), (torch.bfloat16, 1e39)):
        dtype_name = str(dtype).removeprefix("torch.")
        message = rf"^{cls}: fill_method {re.escape(repr(fill))} exceeds what {dtype_name} images hold"
        with pytest.raises(ValueError, match=message):
            call(name, FACTORIES[name](fill_method=fill), x.to(dtype))
    with pytest.raises(ValueError, match=rf"^{cls}: pixels_range \(0\.0, 100000\.0\) gives fill_method 'white' "
                                         r"values beyond what float16 images hold \(largest finite value 65504\)"):
        call(name, FACTORIES[name](fill_method="white", pixels_range=(0.0, 1e5)), x.half())
    for fill in ("black", "gray", "zero", "normal"):  # they never reach the range's upper end
        out = images_of(call(name, FACTORIES[name](fill_method=fill, pixels_range=(0.0, 65535.0)), x.half()))
        assert torch.isfinite(out).all()
    assert torch.isfinite(images_of(call(name, FACTORIES[name](fill_method=1e5), x))).all()
    assert torch.isfinite(images_of(call(name, FACTORIES[name](fill_method=1e39), x.double()))).all()


def re_shape(shape: tuple[int, ...]) -> str:
    return re.escape(str(tuple(shape)))


# --------------------------------------------------------------------------------------------
# Labels (every mixing transform).
# --------------------------------------------------------------------------------------------

#: Labels only torch can get wrong (the rest: ``contracts/test_call_errors.py::test_bad_labels``).
LABEL_ERRORS = [
    (torch.zeros(4, dtype=torch.int64, device="meta"), ValueError, "labels are on meta but the images are on cpu"),
    ([0, 1, 2, 0], TypeError, "labels must be a tensor; got list"),
    (np.arange(4), TypeError, "labels must be a tensor; got ndarray"),
    (None, TypeError, "labels must be a tensor; got NoneType"),
]


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize(("labels", "error", "message"), LABEL_ERRORS,
                         ids=[f"{i}-{m[:24]}" for i, (_, _, m) in enumerate(LABEL_ERRORS)])
def test_bad_labels(name: str, labels, error: type, message: str) -> None:
    cls = FACTORIES[name]().__class__.__name__
    with pytest.raises(error, match=rf"^{cls}: {message}"):
        FACTORIES[name]()(make_images((4, 3, 8, 8)), labels)


@pytest.mark.compile
def test_bad_labels_in_a_compiled_graph_give_nan_rows() -> None:
    """A graph ``torch.compile`` traces can neither raise nor read the labels: a class index
    outside ``[0, K)`` or a soft row with a value outside ``[0, 1]`` gets a NaN row, which the
    loss shows. Before, Inductor's scatter dropped the bad index (a row of smoothing only) and
    soft rows of class numbers were mixed as probabilities: both trained silently. The other rows
    are the eager ones, bit for bit (nothing is mixed: ``augmentation_ratio=0``). The pipeline's
    ``compile=True`` and the Lightning callback compile this same label code."""
    torch._dynamo.reset()
    transform = mm.RandomCutMix(num_classes=3, label_smoothing=0.1, augmentation_ratio=0.0)
    compiled = torch.compile(transform, fullgraph=True)
    images = make_images((4, 3, 8, 8))
    nan = [float("nan")] * 3
    indices, rows = torch.tensor([0, 1, 2, 1]), torch.tensor([[0.0, 1, 0], [1, 0, 0], [0.2, 0.8, 0], [0, 0.5, 0.5]])
    cases = [  # the valid labels, then with rows 1 and 3 (indices) or 0 and 3 (soft rows) made bad
        (indices, torch.tensor([0, 7, 2, -1]), [1, 3]),
        (rows, torch.tensor([[0.0, 7, 0], [1, 0, 0], [0.2, 0.8, 0], [0, -0.5, 1.5]]), [0, 3]),
    ]
    for valid, labels, bad in cases:
        _, soft = compiled(images, labels)
        good = [i for i in range(4) if i not in bad]
        _, eager = transform(images, valid)
        torch.testing.assert_close(soft[good], eager[good], rtol=0, atol=0)
        torch.testing.assert_close(soft[bad], torch.tensor([nan] * len(bad)), equal_nan=True)


# --------------------------------------------------------------------------------------------
# Memory layouts, no image.
# --------------------------------------------------------------------------------------------

LAYOUTS = {
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "transposed": lambda x: x.transpose(-1, -2).contiguous().transpose(-1, -2),
    "expanded": lambda x: x[:1].expand_as(x),
    "strided": lambda x: torch.stack([x, x], dim=-1)[..., 0],
    "sliced": lambda x: torch.cat([x, x], dim=0)[1::2],
}


def special_values(images: torch.Tensor) -> torch.Tensor:
    """``images`` with a NaN and a -0.0 in every image (other rows and columns in each)."""
    images = images.clone()
    images[:, :, 1, 2] = float("nan")
    images[:, :, 3, 4] = -0.0
    return images


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_non_contiguous_inputs_give_the_contiguous_result(name: str, layout: str, dtype: torch.dtype) -> None:
    """Same seed, same values, another memory layout: bit-identical output, contiguous or not,
    NaN payloads and signs of zero included (Mixup's blend of a strided view wrote other bfloat16
    NaN payloads and float16 zero signs: torch's lerp loops differ)."""
    x = LAYOUTS[layout](special_values(make_images((4, 3, 9, 11), dtype, seed=2)))
    assert not x.is_contiguous() or layout == "sliced"

    def run(images):
        return images_of(call(name, FACTORIES[name](generator=torch.Generator().manual_seed(5)), images))

    expected = run(x.contiguous())
    out = run(x)
    assert out.shape == x.shape
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    assert torch.equal(out.contiguous().view(bits), expected.contiguous().view(bits)), (
        f"{int((out.contiguous().view(bits) != expected.contiguous().view(bits)).sum())} elements differ")


NOT_DENSE = {
    "sparse_coo": lambda x: x.to_sparse(),
    "sparse_csr": lambda x: x.to_sparse_csr(),
    "mkldnn": lambda x: x.to_mkldnn(),
    "nested": lambda x: torch.nested.nested_tensor(list(x)),
}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("kind", NOT_DENSE)
def test_tensors_that_are_not_dense_are_refused_by_name(name: str, kind: str) -> None:
    """Sparse, MKLDNN and nested tensors failed deep inside torch (NotImplementedError, "Cannot
    access storage of SparseTensorImpl", "NestedTensorImpl doesn't support sizes")."""
    x = NOT_DENSE[kind](make_images((4, 3, 8, 8), seed=1))
    cls = type(FACTORIES[name]()).__name__
    label = kind.removeprefix("torch.")
    with pytest.raises(TypeError, match=rf"^{cls}: images must be a dense \(strided\) tensor; got a {label} tensor"):
        call(name, FACTORIES[name](), x, torch.arange(4) % 3)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("kind", NOT_DENSE)
def test_the_pipeline_and_cutblur_pair_refuse_tensors_that_are_not_dense(kind: str) -> None:
    x = NOT_DENSE[kind](make_images((4, 3, 8, 8), seed=1))
    pipeline = mm.MaskMixPipeline([mm.RandomErasing()], mm.RandomCutMix(), num_classes=3, seed=0)
    with pytest.raises(TypeError, match=rf"^MaskMixPipeline: the images of the batch must be a dense \(strided\) "
                                        rf"tensor; got a {kind} tensor"):
        pipeline((x, torch.arange(4) % 3))
    with pytest.raises(TypeError, match=r"^cutblur_pair: lr_upsampled must be a dense \(strided\) tensor"):
        mm.cutblur_pair(x, x)


@pytest.mark.parametrize("name", MIXING)
def test_mixing_transforms_refuse_non_tensor_images(name: str) -> None:
    cls = FACTORIES[name]().__class__.__name__
    with pytest.raises(TypeError, match=rf"^{cls}: expected \(images, labels\).*; images are a ndarray$"):
        FACTORIES[name]()(np.zeros((4, 3, 8, 8), np.float32), torch.arange(4) % 3)
