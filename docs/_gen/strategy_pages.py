"""The strategy pages of the documentation site, generated from the registry.

Two uses:

* **mkdocs hook** (``hooks:`` in ``mkdocs.yml``): at build time, one page per registered strategy
  (``strategies/<flag>.md``: summary, picture, parameters with defaults and documentation, a
  PyTorch and a Keras example, links into the API reference) and an index
  (``strategies/index.md``) are added to the site and to the navigation. They are generated
  from :data:`maskmix.registry.SPECS`, so a new strategy gets its page without editing the docs.
* **picture script**: ``python docs/_gen/strategy_pages.py`` renders one picture per strategy,
  ``docs/img/strategies/<flag>.png`` (the original photographs, then one row per value of the
  spec's ``sweep``, its main parameter, labelled ``param=value``; a spec without a sweep gets one
  row per gallery configuration), with the gallery machinery of ``examples/gallery.py``
  (scikit-image's sample photographs, offline, maskmix.torch), every row drawn from the same fixed
  seed so the pictures are reproducible. The pictures are committed: the site build does not need
  torch. ``tests/test_docs.py`` checks that the committed pictures are those this script renders
  for the registry (one per strategy, one row per swept value). ``--only cutout,mixup`` renders
  some.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the hook runs from mkdocs; maskmix may not be installed
    sys.path.insert(0, str(ROOT))

from maskmix.registry import SPECS, StrategySpec  # noqa: E402 - standard library only

IMAGE_DIR = ROOT / "docs" / "img" / "strategies"
PAGE_DIR = "strategies"
#: Side of one photograph in the pictures, in inches of 80 pixels (smaller than the gallery's 2.0:
#: a picture has a row per swept value, and the pictures are committed).
CELL_INCHES = 1.6
FRAMEWORK_NAMES = {"torch": "PyTorch", "keras": "Keras 3"}
FAMILY_TEXT = {
    "masking": "masking: erases regions and fills them",
    "mixing": "mixing: combines each image with a partner of the batch, and their labels",
    "pasting": "pasting: moves or resamples pixels within the image",
}
#: Shared options each framework adds to the registry's parameters.
FRAMEWORK_OPTIONS = {
    "torch": "`generator` (a `torch.Generator` on the images' device, default None: the global RNG)",
    "keras": "`seed` (default None), `data_format` (default None: Keras' image data format) and "
             "Keras' layer arguments (`name`, `dtype`, `trainable`)",
}


def _has_picture(spec: StrategySpec) -> bool:
    """The pictures are rendered with the PyTorch classes, from the spec's sweep or gallery settings."""
    return bool(spec.gallery or spec.sweep) and "torch" in spec.frameworks


def picture_rows(spec: StrategySpec) -> dict[str, dict[str, Any]]:
    """The rows of a strategy's picture after the originals, ``{label: configuration}``: one per
    value of its sweep (``"param=value"``), or one per gallery configuration when it has none."""
    return spec.sweep_configs() or {label: dict(config) for label, config in spec.gallery.items()}


def image_names(specs: Mapping[str, StrategySpec] = SPECS) -> list[str]:
    """File names of the pictures: one per strategy with gallery settings and a PyTorch class."""
    return [f"{spec.flag}.png" for spec in specs.values() if _has_picture(spec)]


def _call_args(config: Mapping[str, Any], extra: str = "") -> str:
    parts = [f"{key}={value!r}" for key, value in config.items()]
    if extra:
        parts.append(extra)
    return ", ".join(parts)


def _examples(spec: StrategySpec) -> list[str]:
    """A PyTorch and a Keras example of the strategy with its registry example configuration."""
    config = dict(spec.example)
    mixes = spec.mixes_images(config)
    returns_flags = bool(config.get("return_labels"))
    lines: list[str] = []
    if "torch" in spec.frameworks:
        torch_args = _call_args(config, "num_classes=10" if mixes else "")
        call = f"{spec.name}({torch_args})"
        body = ["import torch", "", f"from maskmix.torch import {spec.name}", "",
                "images = torch.rand(8, 3, 64, 64)  # (B, C, H, W), values in [0, 1]"]
        if mixes:
            body += ["labels = torch.randint(0, 10, (8,))",
                     f"out, soft = {call}(images, labels)  # soft: (8, 10) mixed labels"]
        elif returns_flags:
            body += [f"out, is_augmented = {call}(images)"]
        else:
            body += [f"out = {call}(images)"]
        body += ["assert out.shape == images.shape"]
        lines += ["=== \"PyTorch\"", "", "    ```python", *[f"    {b}" if b else "" for b in body], "    ```", ""]
    if "keras" in spec.frameworks:
        keras_args = _call_args(config, ("num_classes=10, " if mixes else "") + "seed=0")
        call = f"{spec.name}({keras_args})"
        body = ["import numpy as np", "", f"from maskmix.keras import {spec.name}", "",
                "images = np.random.rand(8, 64, 64, 3).astype(\"float32\")  # (B, H, W, C)"]
        if mixes:
            body += ["labels = np.random.randint(0, 10, (8,))",
                     f"out, soft = {call}((images, labels))  # soft: (8, 10) mixed labels"]
        elif returns_flags:
            body += [f"out, is_augmented = {call}(images)"]
        else:
            body += [f"out = {call}(images)"]
        body += ["assert tuple(out.shape) == images.shape"]
        lines += ["=== \"Keras 3\"", "", "    ```python", *[f"    {b}" if b else "" for b in body], "    ```", ""]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows_text(spec: StrategySpec) -> str:
    """What the rows of a strategy's picture show: the swept parameter and its values, or the
    gallery settings."""
    if spec.sweep is None:
        settings = "; ".join(f"`{label}`: {_call_args(config) or 'defaults'}" for label, config in spec.gallery.items())
        return f"Settings: {settings}."
    name, values = spec.sweep
    shown = ", ".join(f"`{value!r}`" for value in values)
    base = {key: value for key, value in next(iter(spec.gallery.values()), {}).items() if key != name}
    others = f"; the other settings: {_call_args(base)}" if base else "; the other parameters at their defaults"
    return f"The rows sweep `{name}`, the strategy's main parameter, over {shown} (one row per value{others})."


#: The marker a page puts where the table of every published setting goes (``docs/papers.md``).
PRESETS_MARKER = "<!-- maskmix: published settings -->"


def _paper_test(spec: StrategySpec) -> str | None:
    """The test file that checks a strategy's published settings against the official sampler."""
    path = ROOT / "tests" / "papers" / f"test_{spec.flag}_paper.py"
    return f"tests/papers/{path.name}" if path.exists() else None


def presets_table(specs: Mapping[str, StrategySpec] = SPECS, *, link_prefix: str = f"{PAGE_DIR}/") -> str:
    """A Markdown table of every published setting in the registry (``StrategySpec.papers``):
    the call that builds it, where its values come from, what the user must supply, and the
    test that checks it against an independent re-implementation of the official sampler."""
    lines = ["| strategy | setting | call | source | notes | checked by |", "|---|---|---|---|---|---|"]
    for spec in specs.values():
        test = _paper_test(spec)
        checked = f"`{test}`" if test else "`tests/test_presets.py` (builds it)"
        for setting, preset in spec.papers.items():
            lines.append(f"| [{spec.name}]({link_prefix}{spec.flag}.md) | `{setting}` | "
                         f"`{spec.name}.from_paper(\"{setting}\")` | {_cell(preset.source)} | "
                         f"{_cell(preset.notes) or '–'} | {checked} |")
    return "\n".join(lines) + "\n"


#: The README's "Reproducing the papers" table lies between these two lines (written by
#: ``python docs/_gen/strategy_pages.py --readme``; ``tests/test_readme.py`` checks it is current).
README_TABLE_BEGIN = "<!-- maskmix: papers table (generated: python docs/_gen/strategy_pages.py --readme) -->"
README_TABLE_END = "<!-- maskmix: end of papers table -->"


def _verified(test: str) -> str:
    """What a paper test verifies: its module-level ``VERIFIED`` string (a few words)."""
    import ast

    for node in ast.parse((ROOT / test).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VERIFIED" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str) and value:
                return value
    raise LookupError(f"{test} has no VERIFIED string saying what it verifies")


def readme_papers_table(specs: Mapping[str, StrategySpec] = SPECS) -> str:
    """The README's table: one row per strategy with published settings, the call for each setting
    and what its settings were verified against (the paper test's own summary and file)."""
    lines = ["| strategy | settings | the call | verified, torch and Keras, against a re-implementation of the "
             "official sampler | test |", "|---|---|---|---|---|"]
    for spec in specs.values():
        if not spec.papers:
            continue
        settings = ", ".join(f"`{setting}`" for setting in spec.papers)
        call = f"`{spec.name}.from_paper(\"{next(iter(spec.papers))}\")`"
        test = _paper_test(spec)
        verified = _cell(_verified(test)) if test else "built, not sampled"
        lines.append(f"| {spec.name} | {settings} | {call} | {verified} | `{test or 'tests/test_presets.py'}` |")
    return "\n".join([README_TABLE_BEGIN, *lines, README_TABLE_END])


def write_readme_table(readme: Path = ROOT / "README.md") -> bool:
    """Replace the README's papers table by :func:`readme_papers_table`; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_TABLE_BEGIN), text.index(README_TABLE_END) + len(README_TABLE_END)
    updated = text[:start] + readme_papers_table() + text[end:]
    readme.write_text(updated, encoding="utf-8")
    return updated != text


def _papers_section(spec: StrategySpec) -> list[str]:
    if not spec.papers:
        return []
    lines = ["## Published settings", "",
             f"`{spec.name}.from_paper(setting)` builds the configuration of the paper's official code "
             "(or of the paper where no code exists), in both frameworks; options given next to the "
             "setting go on top of it (e.g. `generator=`, `seed=`). Without a setting: "
             f"`{next(iter(spec.papers))!r}`.", "",
             "| setting | parameters | source | notes |", "|---|---|---|---|"]
    for setting, preset in spec.papers.items():
        lines.append(f"| `{setting}` | {_call_args(preset.config)} | {_cell(preset.source)} | "
                     f"{_cell(preset.notes) or '–'} |")
    test = _paper_test(spec)
    if test:
        lines += ["", f"`{test}` checks each setting against an independent re-implementation of the "
                  "official sampler (two-sample tests on the quantities that define it)."]
    return [*lines, ""]


def strategy_page(spec: StrategySpec) -> str:
    """The Markdown of one strategy's page."""
    refs = ", ".join(
        f"{FRAMEWORK_NAMES[fw]}: [`maskmix.{fw}.{spec.name}`][maskmix.{fw}.{spec.name}]" for fw in spec.frameworks
    )
    lines = [f"# {spec.name}", "", spec.summary, "",
             "| | |", "|---|---|",
             f"| family | {FAMILY_TEXT.get(spec.family, spec.family)} |",
             f"| classes | {refs} |",
             f"| short name | `{spec.flag}` (the gallery label; the training scripts' `--augment` name) |",
             ""]
    if _has_picture(spec):
        lines += [f"![{spec.name} on scikit-image's sample photographs](../img/strategies/{spec.flag}.png)", "",
                  "The first row shows scikit-image's sample photographs; each further row applies the "
                  "transform (PyTorch, `augmentation_ratio=1`) to the whole batch, every image with its own "
                  "random draws (the same seed on every row). " + _rows_text(spec), ""]
        if spec.mixes_labels:
            lines += ["Under the mixed images, the caption gives the soft label: which photographs the image "
                      "holds, weighted by their exact pixel share.", ""]
    lines += ["## Parameters", "",
              "Keyword arguments of both frameworks' classes, with their defaults; every value is validated "
              "at construction (the same message in both frameworks).", "",
              "| parameter | default | meaning |", "|---|---|---|"]
    lines += [f"| `{p.name}` | `{_cell(repr(p.default))}` | {_cell(p.doc)} |" for p in spec.params]
    lines += ["", "Each framework adds its own: " + "; ".join(
        f"{FRAMEWORK_NAMES[fw]}: {FRAMEWORK_OPTIONS[fw]}" for fw in spec.frameworks) + ".", ""]
    lines += _papers_section(spec)
    lines += ["## Example", "", *_examples(spec)]
    lines += ["The API reference of each class gives the exact sampling law, the paper's settings and "
              "the shapes it accepts.", ""]
    return "\n".join(lines)


def index_page(specs: Mapping[str, StrategySpec] = SPECS) -> str:
    lines = ["# Strategies", "",
             "Every strategy is declared once, framework-free, in the registry (`maskmix.registry`); "
             "these pages are generated from it. The same class name exists in `maskmix.torch` and "
             "`maskmix.keras`, with the same parameters, defaults and validation messages.", "",
             "![every strategy on scikit-image's sample photographs](../gallery.png)", "",
             "| strategy | family | what it does | frameworks |", "|---|---|---|---|"]
    for spec in specs.values():
        frameworks = ", ".join(FRAMEWORK_NAMES[fw] for fw in spec.frameworks)
        lines.append(f"| [{spec.name}]({spec.flag}.md) | {spec.family} | {_cell(spec.summary)} | {frameworks} |")
    return "\n".join(lines) + "\n"


def pages(specs: Mapping[str, StrategySpec] = SPECS) -> dict[str, str]:
    """``{path relative to docs/: Markdown}`` of the generated pages."""
    out = {f"{PAGE_DIR}/index.md": index_page(specs)}
    out.update({f"{PAGE_DIR}/{spec.flag}.md": strategy_page(spec) for spec in specs.values()})
    return out


# ------------------------------------------------------------------------------------------------
# mkdocs hook
# ------------------------------------------------------------------------------------------------

def on_config(config: Any, **kwargs: Any) -> Any:
    """Replace the ``Strategies: strategies/index.md`` entry of the nav by the generated section."""
    section = [f"{PAGE_DIR}/index.md", *({spec.name: f"{PAGE_DIR}/{spec.flag}.md"} for spec in SPECS.values())]
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and entry.get("Strategies") == f"{PAGE_DIR}/index.md":
            entry["Strategies"] = section
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Put the table of every published setting where a page has :data:`PRESETS_MARKER`."""
    if PRESETS_MARKER in markdown:
        markdown = markdown.replace(PRESETS_MARKER, presets_table())
    return markdown


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    return files


# ------------------------------------------------------------------------------------------------
# picture script
# ------------------------------------------------------------------------------------------------

def render_images(names: list[str] | None = None, size: int = 112, seed: int = 0,
                  directory: Path = IMAGE_DIR) -> list[Path]:
    """Render ``<directory>/<flag>.png`` (by default the committed ``docs/img/strategies``) for the
    strategies (all, or the given flags): the originals, then one row per :func:`picture_rows`
    entry, each transform seeded with ``seed``."""
    import numpy as np
    import torch

    from maskmix.registry import implementation

    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))
    import gallery

    images, photo_names = gallery.load_photographs(size)
    labels = np.arange(len(images))
    written = []
    directory.mkdir(parents=True, exist_ok=True)
    for spec in SPECS.values():
        if not _has_picture(spec) or (names and spec.flag not in names):
            continue
        rows: list[tuple[str, np.ndarray, list[str] | None]] = [("original", images, None)]
        for label, config in picture_rows(spec).items():
            mixes = spec.mixes_images(config)
            transform = implementation(spec.name, "torch")(
                **config, **({"num_classes": len(images)} if mixes else {}), augmentation_ratio=1.0,
                generator=torch.Generator().manual_seed(seed),
            )
            out, soft = gallery.apply_torch(transform, images, labels if mixes else None)
            captions = [gallery.describe(row, photo_names) for row in soft] if soft is not None else None
            rows.append((label, out, captions))
        path = directory / f"{spec.flag}.png"
        gallery.render(rows, photo_names, path, cell=CELL_INCHES)
        _compress(path)
        written.append(path)
    return written


def _compress(path: Path) -> None:
    """Re-save with a 128-colour adaptive palette (a quarter of the size; the pictures are committed)."""
    from PIL import Image

    with Image.open(path) as image:
        quantized = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT,
                                                  dither=Image.Dither.FLOYDSTEINBERG)
    quantized.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated strategy flags (default: all)")
    parser.add_argument("--size", type=int, default=112, help="side of the photographs in pixels")
    parser.add_argument("--readme", action="store_true",
                        help="rewrite README.md's 'Reproducing the papers' table from the registry (no pictures)")
    args = parser.parse_args(argv)
    if args.readme:
        print("README.md papers table " + ("updated" if write_readme_table() else "already current"))
        return 0
    only = [name.strip() for name in args.only.split(",") if name.strip()] or None
    for path in render_images(only, size=args.size):
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
