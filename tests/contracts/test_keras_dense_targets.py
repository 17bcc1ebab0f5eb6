"""Keras dense targets (SPEC §8 "Keras 3 conventions", "Segmentation masks", "Boxes"), over the registry.

The masking layers take a dict as Keras' image preprocessing layers do: the images are erased,
``segmentation_masks`` get ``mask_fill`` on exactly the erased pixels (or are kept when it is None),
``labels``, ``bounding_boxes`` and any other key pass through unchanged. The erased pixels are read
back from the images (the fill differs from every image value), so the mask check is independent
of the layer's own mask computation.

Every other layer takes the dict too, classified by what its class declares (``dense_targets``:
``keep`` / ``move`` / ``refuse``), never by a hand list: the movers' images carry each pixel's id
(distinct over the batch) and the masks are derived from the same ids, so masks follow the
pixels exactly when every output mask value is still the id of the image pixel at its place.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from registry_cases import NUM_CLASSES, example_cases

from maskmix import registry
from maskmix.keras import random_cutmix, random_mixup

MASKING = registry.specs(framework="keras", family="masking")
IGNORE = 255


def _layer(spec: registry.StrategySpec, **overrides: object) -> object:
    config = {**spec.example, "fill_method": "black", "seed": 3, **overrides}
    return registry.implementation(spec.name, "keras")(**config)


def _batch(channels_first: bool = False) -> dict[str, object]:
    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 0.9, (4, 8, 8, 3)).astype("float32")
    masks = rng.integers(0, 5, (4, 8, 8, 1)).astype("int32")
    if channels_first:
        images, masks = images.transpose(0, 3, 1, 2), masks.transpose(0, 3, 1, 2)
    return {
        "images": images,
        "labels": np.arange(4, dtype="int64"),
        "segmentation_masks": masks,
        "bounding_boxes": {"boxes": rng.uniform(0, 8, (4, 2, 4)).astype("float32"),
                           "labels": np.ones((4, 2), "int32")},
        "extra": np.full((4,), 7.0, "float32"),
    }


@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
@pytest.mark.parametrize(("dtype", "fill", "low", "high"),
                         [("uint8", -1, 0, 255), ("uint8", 300, 0, 255), ("int8", 255, -128, 127), ("bool", 255, 0, 1)])
def test_a_mask_fill_outside_the_masks_dtype_is_refused(spec, dtype, fill, low, high):
    """A cast wrapped it, silently: an ignore index -1 on uint8 masks became class 255, 300 became
    44 (torch refused them). Refused, eagerly and when traced."""
    data = {**_batch(), "segmentation_masks": np.zeros((4, 8, 8, 1), dtype)}
    message = rf"{spec.name}: mask_fill={fill} does not fit the masks' dtype {dtype} \(\[{low}, {high}\]\)"
    with pytest.raises(ValueError, match=message):
        _layer(spec, mask_fill=fill)(data)
    layer = _layer(spec, mask_fill=fill)
    with pytest.raises(ValueError, match=message):
        tf.function(lambda: layer(data))()


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
def test_masking_writes_mask_fill_exactly_on_erased_pixels(spec, data_format):
    first = data_format == "channels_first"
    data = _batch(first)
    # Half the images selected: the unselected ones keep their masks whole.
    out = _layer(spec, mask_fill=IGNORE, data_format=data_format, augmentation_ratio=0.5)(data)
    axis = 1 if first else -1
    erased = np.any(np.asarray(out["images"]) != data["images"], axis=axis)
    assert erased.any() and not erased.all(axis=(1, 2)).any() and (~erased.any(axis=(1, 2))).any()
    masks = np.asarray(out["segmentation_masks"])
    assert masks.dtype == np.int32 and masks.shape == data["segmentation_masks"].shape
    masks, given = np.squeeze(masks, axis), np.squeeze(data["segmentation_masks"], axis)
    np.testing.assert_array_equal(masks == IGNORE, erased)
    np.testing.assert_array_equal(masks[~erased], given[~erased])
    for key in ("labels", "extra"):
        np.testing.assert_array_equal(np.asarray(out[key]), data[key])
    for key in ("boxes", "labels"):
        np.testing.assert_array_equal(np.asarray(out["bounding_boxes"][key]), data["bounding_boxes"][key])


@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
def test_masking_keeps_masks_by_default_and_matches_the_plain_call(spec):
    data = _batch()
    out = _layer(spec)(data)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), data["segmentation_masks"])
    # The dict call draws what the images-only call draws: the same pixels change.
    np.testing.assert_array_equal(np.asarray(out["images"]), np.asarray(_layer(spec)(data["images"])))


@pytest.mark.parametrize("spec", MASKING[:1], ids=lambda s: s.flag)
def test_masking_dict_in_tf_data_map_and_single_images(spec):
    data = _batch()
    del data["bounding_boxes"]
    layer = _layer(spec, mask_fill=IGNORE)
    for batched in (True, False):
        ds = tf.data.Dataset.from_tensor_slices(data)
        ds = ds.batch(2).map(layer) if batched else ds.map(layer).batch(2)
        for out in ds:
            erased = np.all(out["images"].numpy() == 0, axis=-1)  # black fill; images lie in [0.1, 0.9]
            assert erased.any()
            np.testing.assert_array_equal(out["segmentation_masks"].numpy()[..., 0] == IGNORE, erased)


@pytest.mark.parametrize("spec", MASKING[:1], ids=lambda s: s.flag)
def test_masking_dict_errors(spec):
    layer = _layer(spec, mask_fill=IGNORE)
    with pytest.raises(ValueError, match=f"{spec.name}: a dict input must have an 'images' key"):
        layer({"image_batch": np.zeros((2, 4, 4, 3), "float32")})
    data = _batch()
    data["segmentation_masks"] = data["segmentation_masks"][:, :4]
    with pytest.raises(ValueError, match=f"{spec.name}: segmentation_masks must be \\(B, H, W, 1\\)"):
        layer(data)


def _mixing_layer(spec: registry.StrategySpec, **overrides: object) -> object:
    config = {**spec.example, "num_classes": 4, "seed": 5, **overrides}
    return registry.implementation(spec.name, "keras")(**config)


MIXING = registry.specs(framework="keras", family="mixing")


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_mixing_images_alone_are_mixed_and_returned_alone(spec):
    images = _batch()["images"]
    out = _mixing_layer(spec)(images)
    assert not isinstance(out, (tuple, list, dict))
    # Same seed, same draws: the images-only call mixes what the (images, labels) call mixes.
    mixed, _ = _mixing_layer(spec)((images, np.arange(4)))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(mixed))
    assert np.any(np.asarray(out) != images)


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_a_mixing_layer_inside_a_model_warns_that_fit_labels_stay_unmixed(spec):
    """As a layer of a model it gets the images alone: fit trained on mixed images with their labels
    unmixed, without a word (as Keras' own CutMix / MixUp do). A warning, once per layer."""
    import warnings

    layer = _mixing_layer(spec)
    with pytest.warns(UserWarning, match=rf"{spec.name} is called on images alone inside a model: it mixes the "
                                         r"images, but fit's labels are not mixed"):
        keras.Sequential([keras.Input((8, 8, 3)), layer, keras.layers.Flatten(), keras.layers.Dense(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras.Sequential([keras.Input((8, 8, 3)), layer])  # once per layer
        _mixing_layer(spec)((keras.Input((8, 8, 3)), keras.Input((4,))))  # labels beside: mixed together
        _mixing_layer(spec)(_batch()["images"])  # eager images alone (Keras' own convention): no warning


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_mixing_dict_in_tf_data_map(spec):
    # Keras' CutMix/MixUp pattern: ds.batch(n).map(layer) over {"images", "labels"} dicts, labels
    # class indices in, soft rows out, other keys passed through.
    data = _batch()
    del data["bounding_boxes"], data["segmentation_masks"]
    ds = tf.data.Dataset.from_tensor_slices(data).batch(2).map(_mixing_layer(spec))
    outs = list(ds)
    assert len(outs) == 2
    for i, out in enumerate(outs):
        assert sorted(out) == ["extra", "images", "labels"]
        assert out["labels"].shape == (2, 4) and out["labels"].dtype == tf.float32
        np.testing.assert_allclose(out["labels"].numpy().sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(out["extra"].numpy(), data["extra"][2 * i:2 * i + 2])
    images = np.concatenate([out["images"].numpy() for out in outs])
    labels = np.concatenate([out["labels"].numpy() for out in outs])
    assert np.any(images != data["images"]) and np.any(labels.max(axis=1) < 1)


def test_cutmix_masks_follow_the_pasted_pixels():
    data = _batch()
    del data["bounding_boxes"]
    layer = registry.implementation("RandomCutMix", "keras")(num_classes=4, seed=5, augmentation_ratio=0.5)
    # The partner of each image is recovered from the pixels: the pasted box equals the partner's.
    out = layer(data)
    images, masks = np.asarray(out["images"]), np.asarray(out["segmentation_masks"])[..., 0]
    given_images, given_masks = data["images"], data["segmentation_masks"][..., 0]
    assert masks.dtype == np.int32
    moved_any = False
    for i in range(4):
        changed = np.any(images[i] != given_images[i], axis=-1)
        if not changed.any():
            np.testing.assert_array_equal(masks[i], given_masks[i])
            continue
        moved_any = True
        partner = next(j for j in range(4) if np.array_equal(images[i][changed], given_images[j][changed]))
        np.testing.assert_array_equal(masks[i][changed], given_masks[partner][changed])
        np.testing.assert_array_equal(masks[i][~changed], given_masks[i][~changed])
    assert moved_any


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_dense_targets_beside_the_labels_are_mixed_as_in_a_dict_or_refused(spec):
    """torchvision's (images, targets) form, the labels in the targets dict: its masks came back
    unmoved while the images were mixed (boxes too, where a flat dict refuses them); an extra
    tuple item laid out on the pixels (masks) was returned untouched."""
    data = _batch()
    images, labels, masks, boxes = data["images"], data["labels"], data["segmentation_masks"], data["bounding_boxes"]
    name = spec.name
    with pytest.raises(ValueError, match=rf"{name}: bounding_boxes cannot follow pixels moved"):
        _mixing_layer(spec)((images, {"labels": labels, "bounding_boxes": boxes}))
    with pytest.raises(ValueError, match=rf"{name}: the tuple holds an item of shape \(4, 8, 8, 1\) laid out on the "
                                         r"pixels of the images \(4, 8, 8, 3\)"):
        _mixing_layer(spec)((images, labels, masks))
    # Nested in an extra item: Keras' boxes dict, masks or boxes by their key, a pixel-shaped leaf.
    nested = ((boxes, "boxes"), ({"bounding_boxes": boxes}, "boxes"), ({"keypoints": data["extra"]}, "keypoints"),
              ({"segmentation_masks": masks}, "segmentation_masks"))
    for extra, key in nested:
        with pytest.raises(ValueError, match=rf"{name}: the tuple holds an extra item with '{key}'"):
            _mixing_layer(spec)((images, labels, extra))
    with pytest.raises(ValueError, match=rf"{name}: the tuple holds an item of shape \(4, 8, 8, 1\) laid out"):
        _mixing_layer(spec)((images, labels, [masks]))
    targets = {"labels": labels, "segmentation_masks": masks, "extra": data["extra"]}
    if _mixing_layer(spec).dense_targets == "refuse":
        with pytest.raises(ValueError, match=rf"{name}: segmentation_masks cannot be mixed"):
            _mixing_layer(spec)((images, targets))
        return
    out_images, out_targets = _mixing_layer(spec)((images, targets))
    flat = _mixing_layer(spec)({"images": images, **targets})  # the same seed: the same draws
    np.testing.assert_array_equal(np.asarray(out_images), np.asarray(flat["images"]))
    for key in ("labels", "segmentation_masks", "extra"):
        np.testing.assert_array_equal(np.asarray(out_targets[key]), np.asarray(flat[key]))
    assert np.any(np.asarray(out_targets["segmentation_masks"]) != masks)


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_a_second_label_tensor_is_refused_other_extra_keys_pass(spec):
    """{"images", "labels", "label_fine"}: the images and "labels" were mixed and "label_fine" went
    on naming the unmixed images (the torch transforms refuse it too); other extra keys pass."""
    data = _batch()
    images, labels = data["images"], data["labels"]
    for sample in ({"images": images, "labels": labels, "label_fine": labels},
                   (images, {"labels": labels, "Coarse_Label": labels})):
        with pytest.raises(ValueError, match=rf"{spec.name}: the sample holds other labels \('\w+'\) besides 'labels'"):
            _mixing_layer(spec)(sample)
    out = _mixing_layer(spec)({"images": images, "labels": labels, "ids": data["extra"]})
    np.testing.assert_array_equal(np.asarray(out["ids"]), data["extra"])


def test_mixup_refuses_masks_saying_why():
    data = _batch()
    del data["bounding_boxes"]
    with pytest.raises(ValueError, match="RandomMixup: segmentation_masks cannot be mixed: Mixup blends every pixel"):
        _mixing_layer(registry.get("RandomMixup"))(data)


@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
def test_value_range_is_keras_name_for_pixels_range(spec):
    # Float images in [0, 255], as image_dataset_from_directory yields them: white is 255, not 1.
    images = _batch()["images"] * 255.0
    layer = _layer(spec, fill_method="white", value_range=(0, 255))
    out = np.asarray(layer(images))
    erased = out != images
    assert erased.any() and np.all(out[erased] == 255.0)
    clone = type(layer).from_config(layer.get_config())
    assert clone.pixels_range == (0, 255) and "value_range" not in layer.get_config()
    np.testing.assert_array_equal(np.asarray(clone(images)), out)
    with pytest.raises(ValueError, match=f"{spec.name}: value_range is Keras' name for pixels_range; give one"):
        _layer(spec, value_range=(0, 255), pixels_range=(0, 1))


# --------------------------------------------------------------------------------------------
# Every layer: masks follow the pixels (or are kept), boxes pass or are refused.
# --------------------------------------------------------------------------------------------

CASES = example_cases("keras")
NAMES = list(CASES)
SHAPE = (4, 6, 8)  # B, H, W: 192 ids, exact in float32


def build(name: str, **options: object) -> object:
    """The case's layer with exact pixel moves (nearest thumbnails, no jitter, a fill that is no id)."""
    case = CASES[name]
    params = {p.name for p in case.spec.params}
    exact = {"resize_method": "nearest", "color_jitter": 0.0, "fill_method": -1.0}
    return case.build("keras", **{**{k: v for k, v in exact.items() if k in params}, "seed": 11, **options})


def id_batch(channels_first: bool = False, shape: tuple[int, int, int] = SHAPE) -> dict[str, np.ndarray]:
    """Images whose 3 channels hold each pixel's id; masks ``3 id + 1``; labels; an extra key."""
    batch, height, width = shape
    ids = np.arange(batch * height * width).reshape(batch, height, width, 1)
    images, masks = np.repeat(ids, 3, axis=-1).astype("float32"), (3 * ids + 1).astype("int32")
    if channels_first:
        images, masks = images.transpose(0, 3, 1, 2), masks.transpose(0, 3, 1, 2)
    return {"images": images, "segmentation_masks": masks, "labels": np.arange(batch) % NUM_CLASSES,
            "extra": np.full((batch,), 7.0, "float32")}


def outputs(layer: object, data: dict) -> dict:
    out = layer(data)
    return out[0] if isinstance(out, tuple) else out


def moves(layer: object) -> bool:
    return layer.dense_targets == "move"


@pytest.mark.parametrize("ratio", [1.0, 0.5])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name", NAMES)
def test_masks_follow_the_pixels_or_are_kept(name, data_format, ratio):
    first = data_format == "channels_first"
    layer = build(name, data_format=data_format, augmentation_ratio=ratio)
    data = id_batch(first)
    if layer.dense_targets == "refuse":
        with pytest.raises(ValueError, match=f"{type(layer).__name__}: segmentation_masks cannot be mixed"):
            layer(data)
        return
    out = outputs(layer, data)
    axis = 1 if first else -1
    images, masks = np.asarray(out["images"]), np.asarray(out["segmentation_masks"])
    assert masks.dtype == np.int32 and masks.shape == data["segmentation_masks"].shape
    changed = np.any(images != data["images"], axis=axis)
    assert changed.any()
    if ratio < 1:  # unselected images keep their pixels and their masks
        assert (~changed.any(axis=(1, 2))).any()
    masks, given = np.squeeze(masks, axis), np.squeeze(data["segmentation_masks"], axis)
    if moves(layer):
        # Every mask value is the id of the image pixel now at its place: moved with it, from the
        # same source image (the partner's for the mixers), kept where the pixel stayed.
        ids = np.take(images, 0, axis=axis).astype("int64")
        np.testing.assert_array_equal(masks, 3 * ids + 1)
    else:
        np.testing.assert_array_equal(masks, given)
    np.testing.assert_array_equal(np.asarray(out["extra"]), data["extra"])
    if getattr(layer, "mixes", False):
        assert np.asarray(out["labels"]).shape == (SHAPE[0], NUM_CLASSES)
    else:
        np.testing.assert_array_equal(np.asarray(out["labels"]), data["labels"])


@pytest.mark.parametrize("name", [name for name in NAMES if "thumbnail_area" in CASES[name].spec.param_names])
def test_masks_copy_the_source_pixels_of_a_legacy_nearest_thumbnail(name):
    # The masks were gathered with nearest-exact whatever the images' method: with the legacy rule
    # (the paper presets') every box pixel of the mask came from the neighbouring source pixel.
    out = outputs(build(name, resize_method="nearest_legacy", thumbnail_area=0.25), id_batch())
    ids = np.asarray(out["images"])[..., 0].astype("int64")
    assert (ids != id_batch()["images"][..., 0]).any()
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"])[..., 0], 3 * ids + 1)


def test_cutpaste_scars_move_their_masks():
    name = next(n for n in NAMES if "scar_prob" in CASES[n].spec.param_names)
    layer = build(name, scar_prob=1.0, scar_length=(2, 5), scar_width=(1, 3), scar_rotation=45.0)
    out = outputs(layer, id_batch())
    ids = np.asarray(out["images"])[..., 0].astype("int64")
    assert (ids != id_batch()["images"][..., 0]).any()
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"])[..., 0], 3 * ids + 1)


@pytest.mark.parametrize("name", NAMES)
def test_boxes_pass_or_are_refused(name):
    layer = build(name)
    data = id_batch()
    del data["segmentation_masks"]
    data["bounding_boxes"] = {"boxes": np.ones((SHAPE[0], 2, 4), "float32"), "labels": np.ones((SHAPE[0], 2), "int32")}
    if layer.dense_targets == "keep":
        out = outputs(layer, data)
        for key in ("boxes", "labels"):
            np.testing.assert_array_equal(np.asarray(out["bounding_boxes"][key]), data["bounding_boxes"][key])
    else:
        with pytest.raises(ValueError, match=f"{type(layer).__name__}: bounding_boxes cannot follow pixels"):
            layer(data)


MOVERS = [name for name in NAMES if build(name).dense_targets == "move"]


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int64", "bool"])
@pytest.mark.parametrize("name", MOVERS)
def test_mask_dtypes_are_kept(name, dtype):
    data = id_batch(shape=(2, 4, 6))  # 48 ids: they fit int8
    ids = data["images"][..., :1].astype("int64")
    data["segmentation_masks"] = (ids % 2 if dtype == "bool" else ids).astype(dtype)
    out = outputs(build(name), data)
    masks = np.asarray(out["segmentation_masks"])
    assert masks.dtype == np.dtype(dtype)
    moved = np.asarray(out["images"])[..., :1].astype("int64")
    np.testing.assert_array_equal(masks, (moved % 2 if dtype == "bool" else moved).astype(dtype))


@pytest.mark.parametrize("name", [name for name in NAMES if not build(name).needs_batch])
def test_one_image_dict_and_training_false(name):
    data = {key: value[0] for key, value in id_batch().items() if key in ("images", "segmentation_masks")}
    # The masking layers mark the erased pixels: a one-image dict reaches the mask path too.
    marks = "mask_fill" in CASES[name].spec.param_names and not moves(build(name))
    layer = build(name, **({"mask_fill": IGNORE} if marks else {}))
    out = outputs(layer, data)
    assert np.asarray(out["segmentation_masks"]).shape == data["segmentation_masks"].shape
    changed = np.any(np.asarray(out["images"]) != data["images"], axis=-1)
    assert changed.any()  # one image at ratio 1 is augmented: the dict path did not skip it
    masks = np.asarray(out["segmentation_masks"])[..., 0]
    if moves(layer):
        ids = np.asarray(out["images"])[..., 0].astype("int64")
        np.testing.assert_array_equal(masks, 3 * ids + 1)
    elif marks:
        np.testing.assert_array_equal(masks == IGNORE, changed)
        np.testing.assert_array_equal(masks[~changed], data["segmentation_masks"][..., 0][~changed])
    kept = layer(data, training=False)
    for key in data:
        np.testing.assert_array_equal(np.asarray(kept[key]), data[key])


@pytest.mark.parametrize("name", NAMES)
def test_mask_shape_and_dtype_errors(name):
    layer = build(name)
    data = id_batch()
    cls = type(layer).__name__
    wrong = dict(data, segmentation_masks=data["segmentation_masks"][:, :4])
    with pytest.raises(ValueError, match=rf"{cls}: segmentation_masks must be \(B, H, W, 1\) with the images' batch "
                                         rf"size, height and width .*got shape \(4, 4, 8, 1\) for images of "
                                         rf"shape \(4, 6, 8, 3\)"):
        layer(wrong)
    with pytest.raises(TypeError, match=f"{cls}: segmentation_masks must have an integer or bool dtype"):
        layer(dict(data, segmentation_masks=data["segmentation_masks"].astype("float32")))
    with pytest.raises(ValueError, match=f"{cls}: segmentation_masks must be"):
        layer(dict(data, segmentation_masks=data["segmentation_masks"][..., 0]))


@pytest.mark.parametrize("name", [n for n in NAMES if build(n).dense_targets != "refuse"])
def test_masks_of_another_size_are_refused_when_the_sizes_are_known_only_at_run_time(name):
    """tf.data from a generator (or padded batches): the spatial sizes are unknown when the map is
    traced, and 3 x 4 masks went through with 6 x 8 images, cut at coordinates drawn for them."""
    layer = build(name)
    data = id_batch()
    # The masks' sizes unknown (the images' too, but for the layers that resample them).
    spec = {key: tf.TensorSpec((None,) * value.ndim, tf.as_dtype(value.dtype)) for key, value in data.items()}
    if type(layer).__name__ in ("RandomCutBlur", "RandomCutThumbnail"):
        spec["images"] = tf.TensorSpec((None, *data["images"].shape[1:]), tf.float32)

    def dataset(masks):
        given = dict(data, segmentation_masks=masks)
        return tf.data.Dataset.from_generator(lambda: iter([given]), output_signature=spec).map(layer)

    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{type(layer).__name__}: segmentation_masks must be "
                                                             r"\(B, H, W, 1\) .*: their shapes differ"):
        next(iter(dataset(data["segmentation_masks"][:, ::2, ::2])))
    out = next(iter(dataset(data["segmentation_masks"])))
    out = out[0] if isinstance(out, tuple) else out
    assert tuple(out["segmentation_masks"].shape) == data["segmentation_masks"].shape


@pytest.mark.parametrize("name", [n for n in NAMES if "return_labels" in CASES[n].spec.param_names])
def test_return_labels_with_a_dict(name):
    data = id_batch()
    out, flags = build(name, return_labels=True, augmentation_ratio=0.5)(data)
    changed = np.any(np.asarray(out["images"]) != data["images"], axis=(1, 2, 3))
    np.testing.assert_array_equal(np.asarray(flags), changed.astype("int64"))
    ids = np.asarray(out["images"])[..., 0].astype("int64")
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"])[..., 0], 3 * ids + 1)


@pytest.mark.parametrize("name", NAMES)
def test_functional_dict_inputs(name):
    # compute_output_spec: a dict of keras.Input through the layer builds a model, whose outputs
    # have the structure, shapes and dtypes of the eager call's.
    layer = build(name)
    data = id_batch()
    del data["labels"]
    if getattr(layer, "mixes", False):
        data["labels"] = np.eye(NUM_CLASSES, dtype="float32")[np.arange(SHAPE[0]) % NUM_CLASSES]
    if layer.dense_targets == "refuse":
        del data["segmentation_masks"]
    inputs = {key: keras.Input(value.shape[1:], dtype=str(value.dtype), name=key) for key, value in data.items()}
    symbolic = layer(inputs)
    model = keras.Model(inputs, symbolic)
    eager = layer(data)
    run = model(data, training=True)
    for tensor, spec, value in zip(keras.tree.flatten(run), keras.tree.flatten(symbolic), keras.tree.flatten(eager),
                                   strict=True):
        assert tuple(tensor.shape) == tuple(value.shape) and tensor.dtype == value.dtype
        assert spec.shape[1:] == tuple(value.shape)[1:] and spec.dtype == keras.backend.standardize_dtype(value.dtype)
    assert isinstance(symbolic, tuple) == isinstance(eager, tuple)


def _bad_dicts(layer: object) -> dict[str, dict[str, np.ndarray]]:
    """Dicts each call of ``layer`` refuses: one wrong item at a time."""
    base = id_batch()
    del base["labels"]
    if getattr(layer, "mixes", False):
        base["labels"] = np.eye(NUM_CLASSES, dtype="float32")[np.arange(SHAPE[0]) % NUM_CLASSES]
    masks = base.pop("segmentation_masks")
    bad = {
        "masks of another size": {**base, "segmentation_masks": masks[:, :3]},
        "float masks": {**base, "segmentation_masks": masks.astype("float32")},
    }
    if not getattr(layer, "mixes", False):  # the mixing layers find images under other keys too
        bad["no images key"] = {**{k: v for k, v in base.items() if k != "images"}, "image": base["images"]}
    if layer.dense_targets != "keep":
        bad["boxes"] = {**base, "bounding_boxes": {"boxes": np.zeros((SHAPE[0], 2, 4), "float32"),
                                                   "labels": np.ones((SHAPE[0], 2), "int32")}}
    if layer.dense_targets == "refuse":
        bad["masks"] = {**base, "segmentation_masks": masks}
    if getattr(layer, "mask_fill", "absent") is None:
        layer.mask_fill = 300
        bad["mask_fill beyond uint8"] = {**base, "segmentation_masks": masks.astype("uint8")}
    return bad


def _own_message(error: BaseException) -> str:
    """The layer's message, without the call details Keras wraps around it."""
    wrapped = re.search(r"\x1b\[1m(.*?)\x1b\[0m", str(error), re.DOTALL)
    return wrapped.group(1) if wrapped else str(error)


@pytest.mark.parametrize("name", NAMES)
def test_functional_dict_inputs_are_refused_when_the_model_is_built(name):
    # A dict of keras.Input with masks of another size, float masks, boxes a mover cannot move,
    # masks for Mixup or a mask_fill the masks cannot hold built a model without a word, which
    # failed at its first batch (or at predict); without an 'images' key it was a bare KeyError.
    # The symbolic call now raises what the eager call raises.
    layer = build(name)
    for case, data in _bad_dicts(layer).items():
        with pytest.raises((TypeError, ValueError)) as eager:
            layer(data)
        inputs = keras.tree.map_structure(lambda v: keras.Input(v.shape[1:], dtype=str(v.dtype)), data)
        # The same message, shapes aside (the symbolic batch size is None).
        with pytest.raises(type(eager.value), match=re.escape(_own_message(eager.value).split("; got shape")[0])):
            layer(inputs)
            pytest.fail(f"{case}: the symbolic call passed")


# --------------------------------------------------------------------------------------------
# Labels and the functional forms.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].mixes])
def test_integer_one_hot_labels_are_soft_labels(name):
    images = id_batch()["images"]
    classes = np.arange(SHAPE[0]) % NUM_CLASSES
    reference = build(name)((images, keras.utils.to_categorical(classes, NUM_CLASSES).astype("float32")))
    for labels in (keras.utils.to_categorical(classes, NUM_CLASSES).astype("int32"),
                   tf.cast(tf.one_hot(classes, NUM_CLASSES), "int64")):
        out = build(name)((images, labels))
        assert keras.backend.standardize_dtype(out[1].dtype) == "float32"
        np.testing.assert_array_equal(np.asarray(out[1]), np.asarray(reference[1]))
        np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(reference[0]))
    # Integer (B, 1) labels are one column of binary labels (as torch reads them), not class indices:
    # the message says how to give class indices.
    column = (classes % 2)[:, None].astype("int32")
    binary = build(name, num_classes=None)((images, column))[1]
    assert tuple(binary.shape) == (SHAPE[0], 1)
    layer = build(name)
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}: labels have 1 classes but num_classes is "
                                         rf"{NUM_CLASSES} \(integer labels of shape \(B, 1\) are one column of "
                                         r"binary labels.*shape \(B,\)"):
        layer((images, column))


FUNCTIONS = [random_cutmix, random_mixup]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_functions_run_in_jit_compile_with_stateless_seeds(function):
    data = id_batch()
    images, labels = tf.constant(data["images"] / 192.0), tf.constant(data["labels"])
    step = tf.function(lambda x, y, seed: function(x, y, num_classes=NUM_CLASSES, seed=seed), jit_compile=True)
    first = step(images, labels, tf.constant([7, 0], "int64"))
    again = step(images, labels, tf.constant([7, 0], "int64"))
    other = step(images, labels, tf.constant([7, 1], "int64"))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert np.any(first[0].numpy() != other[0].numpy())
    assert np.any(first[0].numpy() != images.numpy())
    np.testing.assert_allclose(first[1].numpy().sum(axis=1), 1.0, rtol=1e-6)
    assert step.experimental_get_tracing_count() == 1
    # An int seed is stateless too: the same draws at every call, as keras.random's.
    np.testing.assert_array_equal(np.asarray(function(images, labels, num_classes=NUM_CLASSES, seed=3)[0]),
                                  np.asarray(function(images, labels, num_classes=NUM_CLASSES, seed=3)[0]))
    with pytest.raises(ValueError, match=f"{function.__name__}: seed is required inside a traced function"):
        tf.function(lambda x, y: function(x, y, num_classes=NUM_CLASSES))(images, labels)


def test_pair_seeds_of_consecutive_steps_share_no_draw():
    """``seed=(7, step)``, the documented use of the functions: draw ``i`` of a call had the seed
    ``(7, step + i)``, so step ``k + 1`` repeated step ``k``'s draws shifted by one (its lambdas
    were the previous step's box centres)."""
    from maskmix.keras import RandomMixup
    from maskmix.keras._seeds import StatelessSeeds

    backend = RandomMixup().backend
    seeds = set()
    for step in range(4):
        stream = StatelessSeeds((7, step)).bind(backend)
        seeds.update(tuple(np.asarray(stream.next()).tolist()) for _ in range(16))
    assert len(seeds) == 4 * 16


@pytest.mark.parametrize("seed", [3, (3, 1), tf.constant([3, 1], "int64")], ids=["int", "pair", "tensor"])
def test_function_draws_of_one_call_are_independent(seed):
    # Mixup's lambda is G1 / (G1 + G2) of two gamma draws: were the draws of one call to share a
    # seed, G1 = G2 and every lambda would be 0.5. Eight classes: each row holds lam and 1 - lam.
    images = np.random.default_rng(0).random((8, 2, 2, 1)).astype("float32")
    _, soft = random_mixup(images, np.arange(8), num_classes=8, seed=seed)
    weights = np.sort(np.asarray(soft), axis=1)[:, -2:]  # (partner weight, own weight) or (0, 1)
    assert np.all(weights[:, 0] > 0)
    assert np.ptp(weights[:, 1]) > 0.05 and not np.allclose(weights, 0.5, atol=1e-3)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_functions_in_tf_data_map(function):
    data = id_batch()
    ds = tf.data.Dataset.from_tensor_slices((data["images"] / 192.0, data["labels"])).batch(2).enumerate()
    ds = ds.map(lambda i, batch: function(*batch, num_classes=NUM_CLASSES, seed=(5, i)))
    runs = [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(2)]
    for (x, y), (x2, y2) in zip(*runs, strict=True):  # deterministic
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        assert y.shape == (2, NUM_CLASSES) and np.allclose(y.sum(axis=1), 1.0)
    batches = np.concatenate([x for x, _ in runs[0]])
    assert np.any(batches != data["images"] / 192.0)
    # The map runs the eager call's computation with the seed of its batch: (5, i) per batch i.
    for i, (x, y) in enumerate(runs[0]):
        eager = function(data["images"][2 * i:2 * i + 2] / 192.0, data["labels"][2 * i:2 * i + 2],
                         num_classes=NUM_CLASSES, seed=(5, i))
        np.testing.assert_allclose(x, np.asarray(eager[0]), rtol=1e-6)
        np.testing.assert_allclose(y, np.asarray(eager[1]), rtol=1e-6)
    # One batch repeated: the seed (5, i) changes with the batch index, and so do the draws.
    same = tf.data.Dataset.from_tensors((data["images"][:2] / 192.0, data["labels"][:2])).repeat(3).enumerate()
    same = same.map(lambda i, batch: function(*batch, num_classes=NUM_CLASSES, seed=(5, i)))
    labels = [y.numpy() for _, y in same]
    assert not all(np.array_equal(labels[0], other) for other in labels[1:])


SEED_ERRORS = [
    (True, TypeError, r"seed must be an int, a pair of integers or None; got True"),
    (-1, ValueError, r"an int seed must lie in \[0, 2\*\*31\); got -1"),
    (2**31, ValueError, r"an int seed must lie in \[0, 2\*\*31\); got 2147483648"),
    ((1, 2, 3), ValueError, r"seed must be an int, a pair of integers or None; got \(1, 2, 3\)"),
    ((1.0, 2), ValueError, r"seed must be an int, a pair of integers or None; got \(1.0, 2\)"),
    ((1, False), ValueError, r"seed must be an int, a pair of integers or None; got \(1, False\)"),
    (np.zeros(2, "float32"), ValueError, r"seed must be an int, a pair of integers \(\(2,\) integer tensor\) or "
                                         r"None; got float32 of shape \(2,\)"),
    (np.zeros(3, "int64"), ValueError, r"seed must be .*; got int64 of shape \(3,\)"),
    ("7", ValueError, r"seed must be .*; got str of shape None"),
]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_function_seed_errors(function):
    images, labels = id_batch()["images"], np.arange(SHAPE[0]) % NUM_CLASSES
    for seed, error, message in SEED_ERRORS:
        with pytest.raises(error, match=f"^{function.__name__}: {message}"):
            function(images, labels, num_classes=NUM_CLASSES, seed=seed)
