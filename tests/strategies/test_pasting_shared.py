"""What the pasting strategies (CutBlur, CutPaste, CutSwap, Cut-Thumbnail) share, torch and Keras:
constructor validation, ``return_labels``, out-of-range values surviving outside the region; the
Keras layers' pixel semantics on the torch backend, and their agreement with the torch transforms
(sampled sizes: two-sample KS tests; the same parameters give the same pixels). Each strategy's
semantics: ``test_cutblur.py``, ``test_cutpaste.py``, ``test_cutswap.py``, ``test_thumbnail.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import numpy as np
import pytest
import scipy.stats
import torch
from helpers import changed_pixels, make_images, reference_box_mask, run_with_params
from registry_cases import variant_cases
from torchvision import tv_tensors

from maskmix.torch import RandomCutBlur
from maskmix.torch._base import MaskMixTransform
from maskmix.torch.cutpaste import RandomCutPaste
from maskmix.torch.cutswap import RandomCutSwap

K = 4  # classes of the Keras tests

# The pasting configurations of the shared battery.
FACTORIES = {name: case.build for name, case in variant_cases("torch", mixing=False).items()}
NAMES = [name for name in FACTORIES if name.startswith(("cutblur", "cutpaste", "cutswap"))]


# --------------------------------------------------------------------------------------------
# torch.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: RandomCutBlur(blur_factor=1.0), r"RandomCutBlur: blur_factor must be a float in \(0, 1\)"),
        (lambda: RandomCutBlur(blur_factor=(0.5, 0.2)), r"RandomCutBlur: blur_factor must be .*got \(0.5, 0.2\)"),
        (lambda: RandomCutBlur(resize_method="lanczos"), r"RandomCutBlur: resize_method must be one of 'nearest'"),
        (lambda: RandomCutPaste(color_jitter=1.5), r"RandomCutPaste: color_jitter must be a float in \[0, 1\]"),
        (lambda: RandomCutPaste(patch_area=(0.2, 0.1)), r"RandomCutPaste: patch_area must be"),
        (lambda: RandomCutSwap(patch_aspect_ratio=0), r"RandomCutSwap: patch_aspect_ratio must be a float > 0"),
        (lambda: RandomCutSwap(augmentation_ratio=float("nan")), r"RandomCutSwap: augmentation_ratio must be"),
    ],
)
def test_torch_constructor_validation(factory, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()
    with pytest.raises(TypeError, match=r"RandomCutSwap: return_labels must be a bool; got 1"):
        RandomCutSwap(return_labels=1)


@pytest.mark.parametrize("cls", [RandomCutPaste, RandomCutSwap])
def test_torch_return_labels(cls: type[MaskMixTransform]) -> None:
    x = make_images((10, 3, 12, 12))
    t = cls(return_labels=True, augmentation_ratio=0.3, generator=torch.Generator().manual_seed(0))
    out, labels = t(x)
    assert labels.dtype == torch.int64 and labels.shape == (10,)
    assert torch.equal(labels.bool(), changed_pixels(x, out).flatten(1).any(1)) and int(labels.sum()) == 3
    out, labels = cls(return_labels=True)(x[0])
    assert out.shape == (3, 12, 12) and labels.shape == () and int(labels) == 1
    out, labels = cls(return_labels=True, augmentation_ratio=0.5)(make_images((2, 3, 3, 8, 8)))
    assert labels.shape == (2, 3) and int(labels.sum()) == 3
    image, mask = tv_tensors.Image(x), tv_tensors.Mask(torch.zeros(10, 12, 12, dtype=torch.uint8))
    (out_image, out_mask), labels = cls(return_labels=True)(image, mask)
    assert isinstance(out_image, tv_tensors.Image) and labels.tolist() == [1] * 10
    assert isinstance(out_mask, tv_tensors.Mask) and torch.equal(out_mask, mask)  # moved zeros
    out, labels = cls(return_labels=True)(torch.zeros(0, 3, 8, 8))
    assert out.shape == (0, 3, 8, 8) and labels.shape == (0,)
    assert not isinstance(cls()(x), tuple)
    # A sample without any image is refused, never passed through.
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: no image found in the sample \(got Mask\)"):
        cls(return_labels=True)(mask)


@pytest.mark.parametrize("name", NAMES)
def test_torch_values_outside_range_survive_outside_the_region(name: str) -> None:
    x = torch.full((6, 3, 16, 16), 7.5)
    x[:, :, ::2] = -3.25
    x[:, 0, 0, 1] = float("nan")
    out, p = run_with_params(FACTORIES[name](), x)
    if name.startswith("cutswap"):
        region = reference_box_mask(p["top_a"], p["left_a"], p["height"], p["width"], (16, 16))
        region |= reference_box_mask(p["top_b"], p["left_b"], p["height"], p["width"], (16, 16))
    else:
        region = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (16, 16))
    outside = ~region.unsqueeze(1).expand_as(x)
    torch.testing.assert_close(out[outside], x[outside], rtol=0, atol=0, equal_nan=True)


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (11, 9)


def keras_images(b: int = 6, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((b, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.slow
def test_keras_torch_backend(keras_backend_output):
    """The pasting layers' pixel semantics on Keras' torch backend (every layer's conventions on each
    backend: ``tests/contracts/test_keras_conventions.py``)."""
    assert "backend ok torch" in keras_backend_output("torch", "pasting_pixels")  # tests/backend_scripts


@pytest.mark.slow
def test_keras_agreement_with_the_torch_transforms():
    """Same distributions of sampled sizes and positions (two-sample KS tests) and, for the same
    parameters, the same pixels as the torch transforms."""
    torch = pytest.importorskip("torch")
    import maskmix.torch as mt

    n, size = 3000, (24, 20)
    configs = {
        "cutblur": ("RandomCutBlur", dict(patch_area=(0.05, 0.3), blur_factor=(0.1, 0.5))),
        "cutpaste": ("RandomCutPaste", dict(patch_area=(0.02, 0.15), patch_aspect_ratio=(0.3, 3.3), color_jitter=0.3)),
        "cutswap": ("RandomCutSwap", dict(patch_area=(0.1, 0.45))),
        "thumbnail": ("RandomCutThumbnail", dict(thumbnail_area=(0.05, 0.5), resize_method="bicubic")),
        "thumbnail_mix": ("RandomCutThumbnail", dict(thumbnail_area=(0.05, 0.5), mix_images=True, num_classes=K)),
    }
    zeros = np.zeros((n, *size, 1), "float32")
    x = keras_images(6, size=size, seed=8)
    generator = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    for seed, (name, (cls_name, config)) in enumerate(configs.items()):
        layer = getattr(__import__("maskmix.keras", fromlist=[cls_name]), cls_name)(seed=seed, **config)
        transform = getattr(mt, cls_name)(**config)
        ours = kh.params_np(layer.get_random_transformation(zeros))
        theirs = {k: v.numpy() for k, v in transform.sample(n, 1, *size, dtype=torch.float32, device=cpu,
                                                             generator=generator).items()}

        def ks(values, ours=ours, theirs=theirs, name=name) -> None:
            a, b = values(ours).astype(np.float64), values(theirs).astype(np.float64)
            assert scipy.stats.ks_2samp(a, b).pvalue > 1e-3, (name, a.mean(), b.mean())

        ks(lambda p: p["height"] * p["width"])
        ks(lambda p: p["height"] / p["width"])
        if name == "cutblur":
            ks(lambda p: p["low_height"] * 100 + p["low_width"])
        prefixes = {"cutpaste": ("", "src_"), "cutswap": ("_a", "_b")}.get(name, ("",))
        for fix in prefixes:
            top, left = ("top" + fix, "left" + fix) if fix.startswith("_") else (fix + "top", fix + "left")
            ks(lambda p, top=top, left=left: p[top] * 100 + p[left])
        if name == "thumbnail_mix":  # float32 in Keras, float64 in torch: compared in float32
            ks(lambda p: p["partner_weight"].astype(np.float32))
        # The Keras layer's parameters through the torch transform's pixels.
        out, p = kh.run_with_params(layer, x) if name != "thumbnail_mix" else (None, None)
        if out is None:
            t = layer.get_random_transformation(x)
            out, p = kh.np_(layer.transform_images(x, t)), kh.params_np(t)
        tp = {k: torch.from_numpy(v.astype(np.int64) if v.dtype == np.int32 else v) for k, v in p.items()}
        expected = transform.apply(torch.from_numpy(kh.np_(x)).permute(0, 3, 1, 2), tp).permute(0, 2, 3, 1).numpy()
        exact = name in ("cutswap",) or (name == "cutpaste" and not config.get("color_jitter"))
        np.testing.assert_allclose(out, expected, atol=0 if exact else 2e-6, err_msg=name)


@pytest.mark.parametrize(("strategy", "options"), [
    ("RandomCutBlur", {"blur_factor": (0.1, 0.9), "resize_method": "bicubic"}),
    ("RandomCutBlur", {"blur_factor": (0.1, 0.9), "resize_method": "area"}),
    ("RandomCutThumbnail", {"thumbnail_area": (0.05, 0.5), "resize_method": "bicubic"}),
    ("RandomCutThumbnail", {"thumbnail_area": (0.05, 0.5), "resize_method": "nearest_legacy"}),
])
def test_torch_resampling_tables_beyond_the_cap_are_built_per_image(strategy: str, options: dict, monkeypatch) -> None:
    # A table of every allowed size's resampling matrices grows with the cube of the side (CutBlur
    # with blur_factor=(0.1, 0.5) on a 1356 x 2040 image: 18 GB, the call failed to allocate);
    # beyond the cap each image's matrices are built per call, and they are the table's rows.
    import maskmix.torch as mt
    from maskmix.torch import _patches

    assert not _patches.table_fits(1020 - 204 + 1, 1020, 2040, torch.float32)
    assert _patches.table_fits(112 - 11 + 1, 112, 224, torch.float32)
    x = make_images((4, 2, 24, 30), torch.float32)
    tabled = getattr(mt, strategy)(**options, generator=torch.Generator().manual_seed(1))
    params = tabled.make_params([x])
    expected = tabled.transform(x, params)
    assert len(_patches.kept_tables(tabled)) == 2
    monkeypatch.setattr(_patches, "RESAMPLING_TABLE_BYTES", 0)
    direct = getattr(mt, strategy)(**options)
    assert torch.equal(direct.transform(x, params), expected)
    assert not _patches.kept_tables(direct)


@pytest.mark.parametrize("strategy", ["RandomCutBlur", "RandomCutThumbnail"])
def test_torch_resampling_tables_stay_out_of_pickles_and_copies(strategy: str) -> None:
    """The tables (tens of MiB for large images) were kept in the transform's ``__dict__``: every
    pickle (spawned workers, ``torch.save(model)``) and deep copy (an EMA model) carried them."""
    import copy
    import pickle

    import maskmix.torch as mt
    from maskmix.torch import _patches

    transform = getattr(mt, strategy)(generator=torch.Generator().manual_seed(1))
    size = len(pickle.dumps(transform))
    transform(make_images((2, 3, 64, 64), torch.float32))
    assert _patches.kept_tables(transform)
    assert len(pickle.dumps(transform)) == size
    twin = copy.deepcopy(transform)
    assert not _patches.kept_tables(twin) and not _patches.kept_tables(pickle.loads(pickle.dumps(transform)))
    x = make_images((2, 3, 64, 64), torch.float32)
    twin.generator.manual_seed(5)
    transform.generator.manual_seed(5)
    assert torch.equal(twin(x), transform(x))  # the copy builds its own tables, the same


@pytest.mark.parametrize(("strategy", "keys"), [("RandomCutPaste", ("src_left", "left")),
                                                 ("RandomCutSwap", ("left_a", "left_b"))])
def test_keras_positions_are_uniform_beyond_float32_resolution(strategy: str, keys: tuple[str, str]) -> None:
    # A position among n was floor(U * n) with a float32 U (multiples of 2**-23): beyond 2**23
    # positions some were never drawn (on a 1 x (2**24 + 2) strip only even columns), and from
    # about 1e5 on some were likelier than others. Drawn in float64 now: odd columns half the time.
    import keras

    import maskmix.keras as mk

    layer = getattr(mk, strategy)(patch_area=1e-9, patch_aspect_ratio=1.0)
    params = layer.sample(20_000, 1, 1, 2**24 + 2, dtype="float32", seed=keras.random.SeedGenerator(5))
    assert (kh.np_(params["width"]) == 1).all()
    for key in keys:
        odd = float(np.mean(kh.np_(params[key]) % 2))
        assert abs(odd - 0.5) < 0.02, (key, odd)  # 5.7 standard deviations
