"""Render a PNG grid of every maskmix strategy on real photographs, offline.

The photographs are scikit-image's bundled samples (astronaut, chelsea, coffee, rocket in RGB and
camera in grayscale), so nothing is downloaded. The first row shows the originals; each further
row shows one strategy applied to the whole batch at once, every image with its own parameters.
Under the mixing strategies' images, the caption gives the soft label: which photographs the image
now holds, weighted by their exact pixel share (or Mixup's lambda).

Both frameworks render the same grid from the same settings (:func:`settings`, each registered
strategy's ``gallery`` pictures in registry order, :mod:`maskmix.registry`): ``--framework
torch`` (the default) with the transforms of :mod:`maskmix.torch`, ``--framework keras`` with the
Keras 3 layers of :mod:`maskmix.keras` (channels-last, called with ``training=True``; the Keras
backend is TensorFlow unless ``KERAS_BACKEND`` says otherwise); a strategy implemented in one
framework only is shown in that framework's grid. Each path imports only its own framework.
The random draws differ between the two, so the pictures differ in detail.

Usage:
    python examples/gallery.py --output outputs/gallery.png
    python examples/gallery.py --strategies cutout,gridmask --size 192 --seed 3
    python examples/gallery.py --framework keras --output outputs/gallery_keras.png
    KERAS_BACKEND=jax python examples/gallery.py --framework keras --strategies cutmix,mixup
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from maskmix import registry  # framework-free: imports neither torch nor keras

RGB_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")
GRAY_SAMPLES = ("camera",)


def load_photographs(size: int) -> tuple[np.ndarray, list[str]]:
    """Return ``(N, 3, size, size)`` float32 images in [0, 1] (gray ones replicated to 3 channels)."""
    from maskmix._optional import require

    require("skimage", "examples/gallery.py (the photographs)")
    from skimage import data
    from skimage.transform import resize

    images, names = [], []
    for name in RGB_SAMPLES + GRAY_SAMPLES:
        img = getattr(data, name)().astype(np.float32) / 255.0
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = resize(img[top : top + side, left : left + side], (size, size), anti_aliasing=True)
        images.append(img.transpose(2, 0, 1))
        names.append(name if name in RGB_SAMPLES else f"{name} (gray)")
    return np.stack(images).astype(np.float32), names


NUM_CLASSES = len(RGB_SAMPLES + GRAY_SAMPLES)


def settings(framework: str = "torch") -> dict[str, tuple[str, dict[str, Any]]]:
    """Every picture of the gallery for ``framework``, in registry order: ``{label: (class name,
    settings)}`` from each registered strategy's ``gallery`` (its defaults made a little stronger,
    so that the effect is visible), for the strategies ``framework`` implements."""
    return {label: (spec.name, dict(config))
            for spec in registry.specs(framework=framework) for label, config in spec.gallery.items()}


def mixing(framework: str = "torch") -> frozenset[str]:
    """The labels of :func:`settings` whose strategy pairs images of the batch and returns soft
    labels as well."""
    return frozenset(label for label, (class_name, config) in settings(framework).items()
                     if registry.get(class_name).mixes_images(config))


def _factories(framework: str, num_classes: int, **seeding: Callable[[], Any]) -> dict[str, Callable]:
    """One factory per picture of :func:`settings`, building the ``framework`` class afresh on
    every call.

    ``seeding`` maps the framework's seeding argument to a function giving a fresh value, so that
    each built transform starts from the same seed.
    """
    pictures, mixes = settings(framework), mixing(framework)

    def factory(name: str) -> Callable:
        class_name, config = pictures[name]
        cls = registry.implementation(class_name, framework)
        labels = {"num_classes": num_classes} if name in mixes else {}
        return lambda: cls(
            **config, **labels, augmentation_ratio=1.0, **{key: make() for key, make in seeding.items()}
        )

    return {name: factory(name) for name in pictures}


def torch_strategies(seed: int, num_classes: int = NUM_CLASSES) -> dict[str, Callable]:
    """Factories of the :mod:`maskmix.torch` transforms, each seeded with its own ``torch.Generator``.

    The mixing ones (:func:`mixing`) take ``(images, labels)`` and return soft labels over
    ``num_classes`` classes.
    """
    import torch

    return _factories("torch", num_classes, generator=lambda: torch.Generator().manual_seed(seed))


def keras_strategies(seed: int, num_classes: int = NUM_CLASSES) -> dict[str, Callable]:
    """Factories of the :mod:`maskmix.keras` layers, each with ``seed=seed``.

    The Keras backend is TensorFlow unless ``KERAS_BACKEND`` is set; torch is never imported here
    (TensorFlow loaded before Triton would abort a later torch.compile in the same process).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")

    return _factories("keras", num_classes, seed=lambda: seed)


def apply_torch(transform: Callable, x: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Run a torch transform on ``(N, C, H, W)`` images (and class indices for the mixing ones)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(x))
    if labels is None:
        return transform(x).numpy(), None
    out, soft = transform(x, torch.from_numpy(labels))
    return out.numpy(), soft.numpy()


def apply_keras(layer: Callable, x: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Run a Keras layer (channels-last, ``training=True``) on ``(N, C, H, W)`` images."""
    from keras import ops

    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if labels is None:
        out, soft = layer(x, training=True), None
    else:
        out, soft = layer((x, labels), training=True)
        soft = ops.convert_to_numpy(soft)
    return ops.convert_to_numpy(out).transpose(0, 3, 1, 2), soft


#: ``--framework`` -> (strategy factories, how to run one of them on a batch).
FRAMEWORKS: dict[str, tuple[Callable[..., dict[str, Callable]], Callable]] = {
    "torch": (torch_strategies, apply_torch),
    "keras": (keras_strategies, apply_keras),
}


def to_gray(images: np.ndarray) -> np.ndarray:
    """``(N, 1, H, W)`` luma of ``(N, 3, H, W)`` images (ITU-R 601 weights)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=images.dtype).reshape(1, 3, 1, 1)
    return (images * weights).sum(axis=1, keepdims=True)


def describe(soft: np.ndarray, names: list[str]) -> str:
    """Caption of one soft-label row: its two largest classes with their weights."""
    order = np.argsort(-soft)[:2]
    parts = [f"{names[k].split()[0]} {soft[k]:.2f}" for k in order if soft[k] > 0.005]
    return " + ".join(parts)


def augment(images: np.ndarray, gray: np.ndarray, mixes: bool, strategy: Callable, names: list[str],
            run: Callable) -> tuple[np.ndarray, list[str] | None]:
    """Apply a strategy to the RGB photographs as one batch and to grayscale (C=1) copies of all.

    ``run(transform, images, labels)`` applies a freshly built ``strategy()`` to an ``(N, C, H, W)``
    batch (:func:`apply_torch`, :func:`apply_keras`). The grayscale columns come from a batch of
    single-channel images (so mixing strategies have partners there too). Returns the augmented
    ``(N, 3, H, W)`` images and, when the strategy ``mixes`` (see :func:`mixing`), one caption per
    image naming the classes its soft label mixes.
    """
    labels = np.arange(len(images))
    outputs, captions = np.empty_like(images), [""] * len(images)
    # RGB: the colour photographs as one batch; gray: every photograph in gray, the gray ones shown.
    batches = ((np.flatnonzero(~gray), images), (np.arange(len(images)), to_gray(images)))
    for members, source in batches:
        shown = [position for position, index in enumerate(members) if index in np.flatnonzero(gray)] \
            if source.shape[1] == 1 else list(range(len(members)))
        if not shown:
            continue
        out, soft = run(strategy(), source[members], labels[members] if mixes else None)
        for position in shown:
            index = members[position]
            outputs[index] = out[position].repeat(3 // out.shape[1], axis=0)
            if soft is not None:
                captions[index] = describe(soft[position], names)
    return outputs, (captions if mixes else None)


def render(rows: list[tuple[str, np.ndarray, list[str] | None]], names: list[str], output: Path,
           cell: float = 2.0) -> None:
    """Save the grid: one row per strategy, captions under the images of the mixing rows; each
    image takes ``cell`` inches (80 pixels an inch)."""
    from maskmix._optional import require

    matplotlib = require("matplotlib", "examples/gallery.py (the picture)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(names)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols, (cell + 0.15) * n_rows + 0.3), squeeze=False)
    for r, (label, batch, captions) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(np.clip(batch[c].transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if captions:
                ax.set_xlabel(captions[c], fontsize=3.5 * cell, labelpad=2)
            if r == 0:
                ax.set_title(names[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=sorted(FRAMEWORKS), default="torch",
                        help="maskmix.torch transforms or maskmix.keras layers (default: torch)")
    parser.add_argument("--strategies", default="all", help="comma-separated strategy names, or 'all'")
    parser.add_argument("--size", type=int, default=160, help="side of the square images in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("outputs/gallery.png"))
    args = parser.parse_args(argv)
    if args.size < 8:  # the pictures' strategies need room for their patches and grids
        parser.error(f"--size must be >= 8 pixels; got {args.size}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0; got {args.seed}")

    pictures = settings(args.framework)
    wanted = list(pictures) if args.strategies == "all" else [s.strip() for s in args.strategies.split(",")]
    unknown = [s for s in wanted if s not in pictures]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {sorted(pictures)}")

    build, run = FRAMEWORKS[args.framework]
    factories, mixes = build(args.seed), mixing(args.framework)

    images, names = load_photographs(args.size)
    gray = np.array([n.endswith("(gray)") for n in names])
    rows: list[tuple[str, np.ndarray, list[str] | None]] = [("original", images, None)]
    for name in wanted:
        rows.append((name, *augment(images, gray, name in mixes, factories[name], names, run)))
    render(rows, names, args.output)
    print(f"wrote {args.output} ({len(wanted)} strategies with {args.framework}, {len(names)} images of "
          f"{args.size}px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
