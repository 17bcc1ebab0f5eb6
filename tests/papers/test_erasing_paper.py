"""Random Erasing's presets against the official sampler (Zhong et al., AAAI 2020).

The reference below re-implements ``RandomErasing.__call__`` of the official ``transforms.py``
(zhunzhong07/Random-Erasing) in NumPy: with probability ``p`` per image, up to 100 tries of an
area ``U(sl, sh) * H * W`` and an aspect ``U(r1, 1 / r1)`` (uniform, not log-uniform), sides
``round(sqrt(area * r))`` by ``round(sqrt(area / r))``, accepted only when ``h < H`` and
``w < W``, placed at ``randint(0, H - h)``, ``randint(0, W - w)``; nothing is erased when every
try fails. maskmix's erased rectangles are read back from the changed pixels of its outputs.
"""

from __future__ import annotations

import paper_helpers as ph

# isort: split

import numpy as np
import pytest

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = (
    "area, aspect law (uniform h/w), strict fit and skip of the erased rectangles; the log-uniform law "
    "and clamped fit rejected"
)

SIZE = 32
N_OFFICIAL = 20000


def official_sides(n: int, height: int, width: int, rng: np.random.Generator, *, p: float = 0.5,
                   sl: float = 0.02, sh: float = 0.4, r1: float = 0.3, tries: int = 100
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(h, w)`` of the official erasing of ``n`` images; ``(0, 0)`` where nothing is erased."""
    hs, ws = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for i in range(n):
        if rng.uniform(0, 1) > p:
            continue
        for _ in range(tries):
            target = rng.uniform(sl, sh) * height * width
            aspect = rng.uniform(r1, 1 / r1)
            h, w = round(float(np.sqrt(target * aspect))), round(float(np.sqrt(target / aspect)))
            if w < width and h < height:
                hs[i], ws[i] = h, w
                break
    return hs, ws


@pytest.fixture(scope="module")
def official() -> tuple[np.ndarray, np.ndarray]:
    return official_sides(N_OFFICIAL, SIZE, SIZE, np.random.default_rng(0))


def measured(framework: str, setting: str, count: int, **options: object) -> tuple[np.ndarray, np.ndarray]:
    channels = 3 if setting == "cifar" else 1
    masks = ph.erased(framework, "RandomErasing", setting, count, SIZE, SIZE, channels=channels, **options)
    h, w = ph.bounding_sides(masks)
    # One rectangle per image: the changed pixels fill their bounding box exactly.
    assert np.array_equal(masks.sum(axis=(1, 2)), h * w)
    return h, w


@pytest.mark.parametrize("setting", ["cifar", "fashion_mnist"])
@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_erased_rectangles_follow_the_official_sampler(framework: str, setting: str,
                                                       official: tuple[np.ndarray, np.ndarray]) -> None:
    n = 2000 if framework == "torch" else 1500
    h, w = measured(framework, setting, n)
    ref_h, ref_w = official
    done, ref_done = h > 0, ref_h > 0
    # Per-image probability 0.5 (the 100 tries essentially always succeed at 32x32).
    assert ph.same_proportion(int(done.sum()), n, int(ref_done.sum()), N_OFFICIAL) > ph.ALPHA
    # Strict fit: never as tall or as wide as the image (maskmix's clamp gives 32-pixel sides).
    assert h.max() < SIZE and w.max() < SIZE
    # Box sides, their product and the aspect law: uniform aspect puts 3/4 of the boxes taller
    # than wide where the log-uniform law puts half.
    for ours, ref in ((h, ref_h), (w, ref_w), (h * w, ref_h * ref_w)):
        assert ph.same_discrete_law(ours[done], ref[ref_done]) > ph.ALPHA
    assert ph.same_proportion(int((h[done] > w[done]).sum()), int(done.sum()),
                              int((ref_h[ref_done] > ref_w[ref_done]).sum()), int(ref_done.sum())) > ph.ALPHA


@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_the_old_laws_are_rejected_by_the_same_measurements(framework: str,
                                                            official: tuple[np.ndarray, np.ndarray]) -> None:
    """The mutation check of the test above: maskmix's defaults (log-uniform aspect; clamp
    after 10 candidates) are told apart from the official sampler by the same statistics."""
    n = 2000 if framework == "torch" else 1500
    ref_h, ref_w = official
    ref_done = ref_h > 0
    h, w = measured(framework, "cifar", n, aspect_law="log_uniform")
    done = h > 0
    assert ph.same_proportion(int((h[done] > w[done]).sum()), int(done.sum()),
                              int((ref_h[ref_done] > ref_w[ref_done]).sum()), int(ref_done.sum())) < ph.ALPHA
    h, w = measured(framework, "cifar", n, fit="clamp", attempts=10)
    assert max(h.max(), w.max()) == SIZE


def test_a_patch_that_never_fits_is_not_erased() -> None:
    """The official loop gives up: with areas beyond the image, 'skip' erases nothing at all."""
    for framework in ph.FRAMEWORKS:
        masks = ph.erased(framework, "RandomErasing", "fashion_mnist", 50, 8, 8, patch_area=(0.9, 0.95),
                          patch_aspect_ratio=(2.0, 3.0), augmentation_ratio=1.0)
        assert not masks.any()
