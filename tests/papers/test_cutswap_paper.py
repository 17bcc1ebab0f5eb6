"""CutSwap's saliency guidance (Qin et al. 2023, arXiv 2311.18332; no official code: the abstract's
"cluster the saliency map, select a pixel pair from the cluster with the highest centroid
saliency, swap the patch pair"), torch and Keras.

The reference is independent of maskmix: scikit-learn's ``KMeans`` clusters each map's values and
NumPy draws the pair uniformly from the most salient cluster. Everything is measured from the
outputs: with 1x1 patches the changed pixels *are* the two centres; with images whose pixel
values are all distinct, a swapped pixel always differs from the one it replaces.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.cluster import KMeans
from torchvision import tv_tensors

from maskmix.keras import RandomCutSwap as KerasCutSwap
from maskmix.torch import RandomCutSwap, SaliencyMap

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = "patch pair uniform over the most salient k-means cluster (scikit-learn reference), cluster count"

ALPHA = 1e-3
SIZE = 16


def distinct_images(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 + 0.6 * rng.random((n, size, size, 3))).astype(np.float32)


def changed_pixels(framework: str, x: np.ndarray, saliency: np.ndarray | None, seed: int, **options) -> np.ndarray:
    """``(n, H, W)`` pixels changed by RandomCutSwap.from_paper("paper", **options)."""
    if framework == "torch":
        t = RandomCutSwap.from_paper("paper", return_labels=False, augmentation_ratio=1.0,
                                     generator=torch.Generator().manual_seed(seed), **options)
        images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        if saliency is None:
            out = t(images)
        else:
            out, maps = t(images, SaliencyMap(torch.from_numpy(saliency)))
            assert isinstance(maps, SaliencyMap) and torch.equal(maps, torch.from_numpy(saliency))
        out = out.permute(0, 2, 3, 1).numpy()
    else:
        layer = KerasCutSwap.from_paper("paper", return_labels=False, augmentation_ratio=1.0, seed=seed, **options)
        out = kh.np_(layer(x) if saliency is None else layer(x, saliency=saliency))
    return (out != x).any(axis=-1)


def reference_cluster(saliency: np.ndarray, clusters: int) -> np.ndarray:
    """The pixels of the k-means cluster with the highest centroid (scikit-learn), as a mask."""
    values = saliency.reshape(-1, 1).astype(np.float64)
    km = KMeans(n_clusters=clusters, n_init=10, random_state=0).fit(values)
    return (km.labels_ == int(np.argmax(km.cluster_centers_[:, 0]))).reshape(saliency.shape)


FRAMEWORKS = [pytest.param("torch", 600, id="torch"), pytest.param("keras", 200, id="keras")]
ONE_PIXEL = {"patch_area": 1 / SIZE**2, "patch_aspect_ratio": 1.0}


@pytest.mark.parametrize(("framework", "n"), FRAMEWORKS)
def test_the_patch_pair_is_uniform_over_the_most_salient_cluster(framework: str, n: int) -> None:
    """1x1 patches: exactly two changed pixels per image, both in the reference's cluster, every
    pixel of the cluster reached, and hit counts uniform over it (chi-square against the
    reference's draws: two distinct pixels of the cluster, uniformly)."""
    rng = np.random.default_rng(0)
    saliency = rng.uniform(0.0, 0.2, (SIZE, SIZE))
    hot = rng.choice(SIZE * SIZE, 10, replace=False)
    saliency.flat[hot] = rng.uniform(0.8, 1.0, 10)
    cluster = reference_cluster(saliency, 2)
    assert cluster.sum() == 10
    maps = np.broadcast_to(saliency, (n, SIZE, SIZE)).astype(np.float32)
    changed = changed_pixels(framework, distinct_images(n, SIZE, seed=1), maps, seed=2, **ONE_PIXEL)
    assert (changed.sum(axis=(1, 2)) == 2).all()
    hits = changed.sum(axis=0)
    assert np.array_equal(hits > 0, cluster)
    # The reference's pair: A uniform over the cluster, B uniform over the rest of it.
    draws = np.random.default_rng(3).permuted(np.tile(np.arange(10), (20000, 1)), axis=1)[:, :2]
    expected = np.bincount(draws.ravel(), minlength=10) / draws.size
    observed = hits[cluster]
    assert stats.chisquare(observed, expected * observed.sum()).pvalue > ALPHA
    # Without the maps the same images get uniform patches: pixels outside the cluster change.
    unguided = changed_pixels(framework, distinct_images(n, SIZE, seed=1), None, seed=2, **ONE_PIXEL)
    assert unguided.sum(axis=0)[~cluster].sum() > 0


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("clusters", [2, 3])
def test_saliency_clusters_is_the_k_of_the_k_means(framework: str, clusters: int) -> None:
    """A map of three levels (0, 0.6 on 40 pixels, 1 on 8 pixels): the most salient cluster is
    {0.6, 1} for k = 2 and {1} for k = 3 (scikit-learn's k-means); the centres cover it exactly."""
    rng = np.random.default_rng(4)
    saliency = np.zeros(SIZE * SIZE)
    order = rng.permutation(SIZE * SIZE)
    saliency[order[:8]] = 1.0
    saliency[order[8:48]] = 0.6
    saliency = (saliency + rng.uniform(0, 0.01, SIZE * SIZE)).reshape(SIZE, SIZE)
    cluster = reference_cluster(saliency, clusters)
    assert cluster.sum() == (48 if clusters == 2 else 8)
    n = 150
    maps = np.broadcast_to(saliency, (n, SIZE, SIZE)).astype(np.float32)
    changed = changed_pixels(framework, distinct_images(n, SIZE, seed=5), maps, seed=6,
                             saliency_clusters=clusters, **ONE_PIXEL)
    assert np.array_equal(changed.any(axis=0), cluster)


@pytest.mark.parametrize(("framework", "n"), FRAMEWORKS)
def test_a_single_hot_pixel_is_covered_by_a_swapped_patch(framework: str, n: int) -> None:
    """One salient pixel per image (a cluster of one, no partner): patch A is centred on it, so it
    is swapped (patches of at most 6 pixels a side on 16 x 16 images always leave room for B; a
    patch that does not falls back to the uniform placement); the two patches stay disjoint and
    of one size (an even number of changed pixels, within their bounding box)."""
    rng = np.random.default_rng(7)
    hot = rng.integers(0, SIZE, (n, 2))
    maps = np.zeros((n, SIZE, SIZE), np.float32)
    maps[np.arange(n), hot[:, 0], hot[:, 1]] = 1.0
    x = distinct_images(n, SIZE, seed=8)
    sizes = {"patch_area": (0.02, 0.08), "patch_aspect_ratio": (0.5, 2.0)}
    changed = changed_pixels(framework, x, maps, seed=9, **sizes)
    assert changed[np.arange(n), hot[:, 0], hot[:, 1]].all()
    rows, cols = changed.any(axis=2).sum(axis=1), changed.any(axis=1).sum(axis=1)
    assert (changed.sum(axis=(1, 2)) % 2 == 0).all() and (changed.sum(axis=(1, 2)) <= rows * cols).all()
    # Without the maps the hot pixel is covered only by chance (the patches are < 1/3 of the image).
    unguided = changed_pixels(framework, x, None, seed=9, **sizes)
    assert unguided[np.arange(n), hot[:, 0], hot[:, 1]].mean() < 0.5


def test_saliency_maps_that_do_not_fit_are_refused() -> None:
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"^RandomCutSwap: the SaliencyMap must be shaped like the images .*"
                                         r"\(2 maps of 8x8, \(2, 8, 8\)\); got shape \(2, 8, 7\)$"):
        RandomCutSwap()(x, SaliencyMap(torch.rand(2, 8, 7)))
    # The right count of maps under other leading dims: which map is whose was a guess (as Keras).
    for shape in ((2, 1, 8, 8), (1, 2, 8, 8)):
        with pytest.raises(ValueError, match=rf"^RandomCutSwap: the SaliencyMap must be shaped like the images .*"
                                             rf"got shape \({shape[0]}, {shape[1]}, 8, 8\)$"):
            RandomCutSwap()(x, SaliencyMap(torch.rand(shape)))
    clips = tv_tensors.Video(torch.rand(2, 3, 3, 8, 8))  # (B, T, C, H, W): maps (B, T, H, W)
    with pytest.raises(ValueError, match=r"\(6 maps of 8x8, \(2, 3, 8, 8\)\); got shape \(6, 8, 8\)$"):
        RandomCutSwap()(clips, SaliencyMap(torch.rand(6, 8, 8)))
    assert RandomCutSwap()(clips, SaliencyMap(torch.rand(2, 3, 8, 8)))[0].shape == clips.shape
    with pytest.raises(TypeError, match=r"^RandomCutSwap: the SaliencyMap must have a real dtype; got torch.bool$"):
        RandomCutSwap()(x, SaliencyMap(torch.ones(2, 8, 8, dtype=torch.bool)))
    layer = KerasCutSwap()
    # Keras wraps the message of an error raised in `call` (hence no anchors).
    with pytest.raises(ValueError, match=r"RandomCutSwap: saliency must be shaped like the images without their "
                                         r"channels, .*got shape \(3, 8, 8\) for images of shape \(2, 8, 8, 3\)"):
        layer(np.zeros((2, 8, 8, 3), np.float32), saliency=np.zeros((3, 8, 8), np.float32))
    with pytest.raises(TypeError, match=r"RandomCutSwap: saliency must be a tensor or a NumPy array; got list"):
        layer(np.zeros((2, 8, 8, 3), np.float32), saliency=[[0.0]])


def test_non_finite_maps_and_a_dict_key_are_refused() -> None:
    """One NaN or inf (log 0, a 0/0 normalisation) made every centroid non-finite and every pixel
    salient: the guidance was off, silently. A Keras dict's "saliency" key was passed through as
    an extra key, the maps ignored."""
    x = torch.rand(2, 3, 8, 8)
    xk = np.zeros((2, 8, 8, 3), np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        maps = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
        maps[0, 0, 0] = bad
        with pytest.raises(ValueError, match=r"^RandomCutSwap: the SaliencyMap must be finite \(no NaN or inf\)"):
            RandomCutSwap()(x, SaliencyMap(torch.from_numpy(maps)))
        with pytest.raises(ValueError, match=r"RandomCutSwap: saliency must be finite \(no NaN or inf\)"):
            KerasCutSwap()(xk, saliency=maps)
    with pytest.raises(TypeError, match=r"RandomCutSwap: the saliency maps go in the call's saliency= argument"):
        KerasCutSwap()({"images": xk, "saliency": np.zeros((2, 8, 8), np.float32)})
    # An empty batch with its (empty) maps works, as without maps (Keras computed their minimum).
    assert tuple(KerasCutSwap(seed=0)(xk[:0], saliency=np.zeros((0, 8, 8), np.float32)).shape) == (0, 8, 8, 3)
    assert tuple(RandomCutSwap()(x[:0], SaliencyMap(torch.zeros(0, 8, 8)))[0].shape) == (0, 3, 8, 8)


def test_keras_maps_of_another_batch_size_are_refused_when_it_is_known_only_at_run_time() -> None:
    """A tf.function (or tf.data) with an unknown batch size: one (1, H, W) map was broadcast to
    every image, silently, and 3 maps for 4 images failed with TensorFlow's own error."""
    import tensorflow as tf

    def graph_of(layer):
        return tf.function(lambda x, maps: layer(x, saliency=maps),
                           input_signature=[tf.TensorSpec((None, 16, 16, 3)), tf.TensorSpec((None, 16, 16))])

    x = distinct_images(4, 16, seed=0)
    maps = np.random.default_rng(1).random((4, 16, 16)).astype(np.float32)
    place = graph_of(KerasCutSwap(patch_area=0.1, patch_aspect_ratio=1.0, seed=0))
    for wrong in (maps[:1], maps[:3]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"RandomCutSwap: saliency must hold one map per "
                                                                 r"image, .*: their shapes differ"):
            place(x, wrong)
    # The right maps in a graph: the output of an eager call with the same seed.
    graph = graph_of(KerasCutSwap(patch_area=0.1, patch_aspect_ratio=1.0, seed=0))(x, maps)
    eager = KerasCutSwap(patch_area=0.1, patch_aspect_ratio=1.0, seed=0)(x, saliency=maps)
    np.testing.assert_array_equal(kh.np_(graph), kh.np_(eager))


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize(("background", "salient"), [(1e-60, 1e-50), (1.0, 1e39)])
def test_float64_maps_are_clustered_in_float64(framework: str, background: float, salient: float) -> None:
    """Clustered in float32, such maps became constant (or inf): every pixel salient, no guidance."""
    x = distinct_images(32, 32, 5)
    maps = np.full((32, 32, 32), background)
    maps[:, 20:, 20:] = salient  # patches of about 4x4 centred there stay in rows and columns >= 16
    options = {"patch_area": 0.02, "patch_aspect_ratio": 1.0}
    if framework == "torch":
        t = RandomCutSwap(generator=torch.Generator().manual_seed(1), **options)
        out = t(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), SaliencyMap(torch.from_numpy(maps)))[0]
        changed = (out.permute(0, 2, 3, 1).numpy() != x).any(axis=-1)
    else:
        changed = (kh.np_(KerasCutSwap(seed=1, **options)(x, saliency=maps)) != x).any(axis=-1)
    assert changed.any() and not changed[:, :16].any() and not changed[:, :, :16].any()


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_the_preset_labels_a_binary_task(framework: str) -> None:
    """The preset returns the labels of the binary normal-vs-swapped task: exactly half the batch
    swapped, labelled 1, the other half unchanged, labelled 0 (with every image swapped, as the
    preset once did, every label was 1 and a classifier learned nothing)."""
    x = distinct_images(8, SIZE, 3)
    if framework == "torch":
        out, labels = RandomCutSwap.from_paper("paper", generator=torch.Generator().manual_seed(0))(
            torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
        changed, labels = (out.permute(0, 2, 3, 1).numpy() != x).any(axis=(1, 2, 3)), labels.numpy()
    else:
        out, labels = KerasCutSwap.from_paper("paper", seed=0)(x)
        changed, labels = (kh.np_(out) != x).any(axis=(1, 2, 3)), kh.np_(labels)
    assert labels.sum() == 4 and set(labels.tolist()) == {0, 1}
    assert np.array_equal(changed, labels == 1)
