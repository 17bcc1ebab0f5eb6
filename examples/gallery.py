"""Render a PNG grid of every maskmix strategy on real photographs, offline.

The photographs are scikit-image's bundled samples (astronaut, chelsea, coffee, rocket in RGB and
camera in grayscale), so nothing is downloaded. The first row shows the originals; each further
row shows one strategy applied to the whole batch at once, every image with its own parameters.

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


def torch_strategies(seed: int) -> dict[str, Callable]:
    """Gallery settings per strategy: defaults made a little stronger so the effect is visible."""
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
    }
    return factories


def apply_torch(images: np.ndarray, gray: np.ndarray, strategy: Callable) -> np.ndarray:
    """Apply a strategy to the RGB images (as a batch) and to the grayscale ones as C=1 images."""
    import torch

    transform = strategy()
    rgb = torch.from_numpy(images[~gray])
    out_rgb = transform(rgb).numpy()
    gray_in = torch.from_numpy(images[gray][:, :1])
    out_gray = strategy()(gray_in).numpy().repeat(3, axis=1)
    out = np.empty_like(images)
    out[~gray] = out_rgb
    out[gray] = out_gray
    return out


def render(rows: list[tuple[str, np.ndarray]], names: list[str], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(names)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.0 * n_rows + 0.3), squeeze=False)
    for r, (label, batch) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(np.clip(batch[c].transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
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
    rows = [("original", images)]
    for name in wanted:
        rows.append((name, apply_torch(images, gray, factories[name])))
    render(rows, names, args.output)
    print(f"wrote {args.output} ({len(wanted)} strategies, {len(names)} images of {args.size}px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
