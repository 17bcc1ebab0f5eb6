"""Render a PNG grid of every maskmix strategy on real photographs, offline.

The photographs are scikit-image's bundled samples (astronaut, chelsea, coffee, rocket in RGB and
camera in grayscale), so nothing is downloaded. The first row shows the originals; each further
row shows one strategy applied to the whole batch at once, every image with its own parameters.
Under the mixing strategies' images, the caption gives the soft label: which photographs the image
now holds, weighted by their exact pixel share (or Mixup's lambda).

Usage:
    python examples/gallery.py --output outputs/gallery.png
    python examples/gallery.py --strategies cutout,gridmask --size 192 --seed 3
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

RGB_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")
GRAY_SAMPLES = ("camera",)


def load_photographs(size: int) -> tuple[np.ndarray, list[str]]:
    """Return ``(N, 3, size, size)`` float32 images in [0, 1] (gray ones replicated to 3 channels)."""
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


#: Strategies that pair images of the batch and return soft labels as well.
MIXING = ("cutmix", "mixup", "thumbnail_mix")


def torch_strategies(seed: int, num_classes: int = len(RGB_SAMPLES + GRAY_SAMPLES)) -> dict[str, Callable]:
    """Gallery settings per strategy: defaults made a little stronger so the effect is visible.

    Each value builds a fresh transform seeded with ``seed``; the mixing ones (:data:`MIXING`) take
    ``(images, labels)`` and return soft labels over ``num_classes`` classes.
    """
    import torch

    import maskmix.torch as mm

    def seeded() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    factories = {
        "cutout": lambda: mm.RandomCutout(patch_area=0.15, generator=seeded()),
        "erasing": lambda: mm.RandomErasing(patch_count=(1, 3), fill_method="noise", generator=seeded()),
        "hide_and_seek": lambda: mm.RandomHideAndSeek(grid_size=[4, 6], hide_prob=0.3, fill_method="gray",
                                                      generator=seeded()),
        "gridmask": lambda: mm.RandomGridMask(rotation=30, generator=seeded()),
        "cutmix": lambda: mm.RandomCutMix(num_classes=num_classes, generator=seeded()),
        "mixup": lambda: mm.RandomMixup(num_classes=num_classes, generator=seeded()),
        "cutblur": lambda: mm.RandomCutBlur(patch_area=(0.2, 0.4), blur_factor=0.08, generator=seeded()),
        "thumbnail": lambda: mm.RandomCutThumbnail(thumbnail_area=0.15, generator=seeded()),
        "thumbnail_mix": lambda: mm.RandomCutThumbnail(thumbnail_area=0.25, mix_images=True,
                                                       num_classes=num_classes, generator=seeded()),
        "cutpaste": lambda: mm.RandomCutPaste(patch_area=(0.1, 0.2), color_jitter=0.2, generator=seeded()),
        "cutswap": lambda: mm.RandomCutSwap(patch_area=(0.1, 0.2), generator=seeded()),
    }
    return factories


def to_gray(images: np.ndarray) -> np.ndarray:
    """``(N, 1, H, W)`` luma of ``(N, 3, H, W)`` images (ITU-R 601 weights)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=images.dtype).reshape(1, 3, 1, 1)
    return (images * weights).sum(axis=1, keepdims=True)


def describe(soft: np.ndarray, names: list[str]) -> str:
    """Caption of one soft-label row: its two largest classes with their weights."""
    order = np.argsort(-soft)[:2]
    parts = [f"{names[k].split()[0]} {soft[k]:.2f}" for k in order if soft[k] > 0.005]
    return " + ".join(parts)


def apply_torch(images: np.ndarray, gray: np.ndarray, name: str, strategy: Callable,
                names: list[str]) -> tuple[np.ndarray, list[str] | None]:
    """Apply a strategy to the RGB photographs as one batch and to grayscale (C=1) copies of all.

    The grayscale columns come from a batch of single-channel images (so mixing strategies have
    partners there too). Returns the augmented ``(N, 3, H, W)`` images and, for the mixing
    strategies, one caption per image naming the classes its soft label mixes.
    """
    import torch

    labels = torch.arange(len(images))
    outputs, captions = np.empty_like(images), [""] * len(images)
    # RGB: the colour photographs as one batch; gray: every photograph in gray, the gray ones shown.
    batches = ((np.flatnonzero(~gray), images), (np.arange(len(images)), to_gray(images)))
    for members, source in batches:
        shown = [position for position, index in enumerate(members) if index in np.flatnonzero(gray)] \
            if source.shape[1] == 1 else list(range(len(members)))
        if not shown:
            continue
        x = torch.from_numpy(np.ascontiguousarray(source[members]))
        transform = strategy()
        if name in MIXING:
            out, soft = transform(x, labels[members])
            soft = soft.numpy()
        else:
            out, soft = transform(x), None
        out = out.numpy()
        for position in shown:
            index = members[position]
            outputs[index] = out[position].repeat(3 // out.shape[1], axis=0)
            if soft is not None:
                captions[index] = describe(soft[position], names)
    return outputs, (captions if name in MIXING else None)


def render(rows: list[tuple[str, np.ndarray, list[str] | None]], names: list[str], output: Path) -> None:
    """Save the grid: one row per strategy, captions under the images of the mixing rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(names)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.15 * n_rows + 0.3), squeeze=False)
    for r, (label, batch, captions) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(np.clip(batch[c].transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if captions:
                ax.set_xlabel(captions[c], fontsize=7, labelpad=2)
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
    parser.add_argument("--framework", choices=["torch"], default="torch")
    parser.add_argument("--strategies", default="all", help="comma-separated strategy names, or 'all'")
    parser.add_argument("--size", type=int, default=160, help="side of the square images in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("outputs/gallery.png"))
    args = parser.parse_args(argv)

    factories = torch_strategies(args.seed)
    wanted = list(factories) if args.strategies == "all" else [s.strip() for s in args.strategies.split(",")]
    unknown = [s for s in wanted if s not in factories]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {sorted(factories)}")

    images, names = load_photographs(args.size)
    gray = np.array([n.endswith("(gray)") for n in names])
    rows: list[tuple[str, np.ndarray, list[str] | None]] = [("original", images, None)]
    for name in wanted:
        rows.append((name, *apply_torch(images, gray, name, factories[name], names)))
    render(rows, names, args.output)
    print(f"wrote {args.output} ({len(wanted)} strategies, {len(names)} images of {args.size}px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
