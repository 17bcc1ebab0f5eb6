"""Every registered Keras layer on the backend ``sys.argv[1]``: shapes and dtypes kept, pixels
changed, soft labels summing to 1, one image and empty batches, channels_first, pass-through of
the unselected images (contracts/test_keras_conventions.py::test_torch_backend, ::test_jax_backend)."""

import sys

import keras
import numpy as np
from registry_cases import example_cases

assert keras.backend.backend() == sys.argv[1]
np_ = keras.ops.convert_to_numpy
x = np.random.default_rng(0).uniform(0.1, 0.9, (5, 9, 8, 3)).astype("float32")
y = np.arange(5) % 4
for i, (name, case) in enumerate(example_cases("keras").items()):
    layer = case.build("keras", num_classes=4, seed=1)
    # Eager JAX compiles every op per dtype: one dtype per layer keeps that run short.
    dtypes = (("float32", "uint8")[i % 2],) if sys.argv[1] == "jax" else ("float32", "uint8", "bfloat16")
    for dtype in dtypes:
        xi = keras.ops.cast(x * (255 if dtype == "uint8" else 1), dtype)
        out = layer((xi, y)) if case.mixes else layer(xi)
        images = out[0] if isinstance(out, tuple) else out
        assert tuple(images.shape) == x.shape and keras.backend.standardize_dtype(images.dtype) == dtype, name
        changed = (np_(keras.ops.cast(images, "float32")) != np_(keras.ops.cast(xi, "float32"))).any()
        assert changed, name
        if case.mixes:
            assert keras.backend.standardize_dtype(out[1].dtype) == "float32"
            np.testing.assert_allclose(np_(out[1]).sum(1), 1.0, rtol=1e-6)
    if not case.mixes and sys.argv[1] != "jax":  # eager JAX: the layouts are the TF run's code paths
        assert tuple(layer(x[0]).shape) == x.shape[1:], name
        assert tuple(layer(x[:0]).shape) == (0, *x.shape[1:]), name
        cf = type(layer).from_config({**layer.get_config(), "data_format": "channels_first"})
        assert tuple(cf(x.transpose(0, 3, 1, 2)).shape) == (5, 3, 9, 8), name
    # Pass-through on this backend: only the selected images change.
    half = case.build("keras", num_classes=4, seed=2, augmentation_ratio=0.4)
    t = half.get_random_transformation((x, y) if case.mixes else x)
    out = np_(half.transform_images(x, t))
    selected = np_(t["selected"]).astype(bool)
    assert selected.sum() == 2 and (out[~selected] == x[~selected]).all(), name
print("backend ok", sys.argv[1])
