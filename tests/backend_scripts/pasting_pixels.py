"""The pixel semantics of the pasting layers on the Keras backend ``sys.argv[1]``: CutSwap and
CutPaste move exactly their boxes, cutblur_pair's pasted pixels, CutPaste's flags, mixed
thumbnails' label weights (strategies/test_pasting_shared.py::test_keras_torch_backend)."""

import sys

import keras
import numpy as np

from maskmix.keras import RandomCutPaste, RandomCutSwap, RandomCutThumbnail, cutblur_pair

assert keras.backend.backend() == sys.argv[1]
rng = np.random.default_rng(0)
x = rng.uniform(0.1, 0.9, (5, 9, 8, 3)).astype("float32")
y = np.arange(5) % 4
np_ = keras.ops.convert_to_numpy
# CutSwap and CutPaste move exactly their boxes.
layer = RandomCutSwap(return_labels=False, seed=2)
t = layer.get_random_transformation(x)
out = np_(layer.transform_images(x, t))
p = {k: np_(v) for k, v in t.items()}
for b in range(5):
    h, w = p["height"][b], p["width"][b]
    a = (slice(p["top_a"][b], p["top_a"][b] + h), slice(p["left_a"][b], p["left_a"][b] + w))
    c = (slice(p["top_b"][b], p["top_b"][b] + h), slice(p["left_b"][b], p["left_b"][b] + w))
    assert (out[b][a] == x[b][c]).all() and (out[b][c] == x[b][a]).all()
pair, target = cutblur_pair(x * 0.5, x, direction="hr_to_lr", seed=1)
assert target is x and ((np_(pair) == x).any(-1) == (np_(pair) != x * 0.5).any(-1)).all()
out, flags = RandomCutPaste(return_labels=True, augmentation_ratio=0.4, seed=3)(x)
assert np_(flags).tolist().count(1) == 2, np_(flags)
# Mixed thumbnails: labels weigh the thumbnail's pixel area.
layer = RandomCutThumbnail(mix_images=True, thumbnail_area=0.25, num_classes=4, seed=4)
t = layer.get_random_transformation(x)
soft = np_(layer.transform_labels(y, t))
f = np_(t["height"] * t["width"]) / 72
eye = np.eye(4)[y]
np.testing.assert_allclose(soft, (1 - f)[:, None] * eye + f[:, None] * eye[np_(t["partner"])], rtol=1e-6)
print("backend ok", sys.argv[1])
