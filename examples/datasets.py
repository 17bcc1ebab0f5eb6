"""Data sets of the training examples, loaded into NumPy arrays (no torch, no keras here).

Every loader returns a :class:`Dataset`: ``uint8`` images shaped ``(N, C, H, W)`` (channels
first; the Keras example transposes) and ``int64`` class indices, split into train and test.

* ``digits``: scikit-learn's bundled handwritten digits (1797 real 8x8 scans, 16 grey levels),
  up-sampled to 32x32. Always available offline; trains on a CPU in about a minute.
* ``cifar10`` / ``cifar100``: the official "python version" archives (pickled batches:
  ``cifar-10-batches-py/data_batch_1..5``, ``test_batch``; ``cifar-100-python/train``, ``test``).
* ``flowers102``: Oxford Flowers-102 (``jpg/image_00001.jpg``..., ``imagelabels.mat``,
  ``setid.mat``); images are centre-cropped and resized to ``image_size``. The official split
  trains on ``trnid`` + ``valid`` (2040 images) and tests on ``tstid`` (6149 images).

CIFAR and Flowers are read from ``data_dir`` (the archives' extracted folders, or the archives
themselves, which are extracted there), and downloaded into it when they are missing and the
network allows. Without them and without network, :class:`DatasetUnavailable` carries a one-line
message saying how to get the data; the example scripts print it and exit with status 2.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "cifar10", "cifar100", "flowers102")

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
FLOWERS_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS_FILES = {"102flowers.tgz": "jpg", "imagelabels.mat": None, "setid.mat": None}
#: MD5 sums of the official archives (as published with them), checked after a download.
MD5 = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85",
}


class DatasetUnavailable(RuntimeError):
    """The data set is neither on disk nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class Dataset:
    """Train and test splits: ``uint8`` ``(N, C, H, W)`` images and ``int64`` ``(N,)`` labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    def subset(self, train: int | None = None, test: int | None = None) -> Dataset:
        """The first ``train`` / ``test`` examples of each split (for quick runs and tests)."""
        return Dataset(self.name, self.train_images[:train], self.train_labels[:train],
                       self.test_images[:test], self.test_labels[:test], self.num_classes)


def load(name: str, data_dir: str | Path = "data", *, image_size: int = 64, download: bool = True) -> Dataset:
    """Load a data set by name (see the module docstring); ``image_size`` is Flowers' side."""
    if name == "digits":
        return load_digits()
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, Path(data_dir), download=download)
    if name == "flowers102":
        return load_flowers102(Path(data_dir), image_size=image_size, download=download)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


# --------------------------------------------------------------------------------------------
# digits (offline default)
# --------------------------------------------------------------------------------------------


def load_digits(size: int = 32, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits, bilinearly up-sampled to ``size``, stratified split."""
    from PIL import Image

    from maskmix._optional import require

    require("sklearn", "examples/datasets.py (the digits)")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    scans = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 16 grey levels -> 0..255
    images = np.stack(
        [np.asarray(Image.fromarray(scan).resize((size, size), Image.BILINEAR)) for scan in scans]
    )[:, None]
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return Dataset("digits", train_x, train_y, test_x, test_y, 10)


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100
# --------------------------------------------------------------------------------------------


def _unpickle(path: Path) -> dict:
    with path.open("rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar_arrays(batches: list[dict], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar(name: str, data_dir: Path, *, download: bool = True) -> Dataset:
    """CIFAR-10 or CIFAR-100 from the official pickled batches under ``data_dir``."""
    if name == "cifar10":
        folder, url, train_files, test_file, key, classes = (
            "cifar-10-batches-py", CIFAR10_URL, [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels", 10
        )
    else:
        folder, url, train_files, test_file, key, classes = (
            "cifar-100-python", CIFAR100_URL, ["train"], "test", b"fine_labels", 100
        )
    root = data_dir / folder
    if not (root / test_file).exists():
        archive = _fetch(url, data_dir, name, download=download)
        _extract(archive, data_dir, name)
    if not (root / test_file).exists():
        raise DatasetUnavailable(f"{name}: {root / test_file} is missing after extracting {url}")
    train_x, train_y = _cifar_arrays([_unpickle(root / f) for f in train_files], key)
    test_x, test_y = _cifar_arrays([_unpickle(root / test_file)], key)
    return Dataset(name, train_x, train_y, test_x, test_y, classes)


# --------------------------------------------------------------------------------------------
# Flowers-102
# --------------------------------------------------------------------------------------------


def _load_flower_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        return np.asarray(img).transpose(2, 0, 1)


def load_flowers102(data_dir: Path, *, image_size: int = 64, download: bool = True) -> Dataset:
    """Oxford Flowers-102 (official split: train = trnid + valid, test = tstid)."""
    from scipy.io import loadmat

    root = data_dir / "flowers102"
    for filename, extracted in FLOWERS_FILES.items():
        target = root / (extracted or filename)
        if target.exists():
            continue
        archive = _fetch(FLOWERS_URL + filename, root, "flowers102", download=download)
        if extracted:
            _extract(archive, root, "flowers102")
    labels = loadmat(root / "imagelabels.mat")["labels"].ravel().astype(np.int64) - 1  # 1-based in the file
    split = loadmat(root / "setid.mat")

    def images_of(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.sort(ids.ravel().astype(np.int64))
        images = np.stack([_load_flower_image(root / "jpg" / f"image_{i:05d}.jpg", image_size) for i in ids])
        return images, labels[ids - 1]

    train_x, train_y = images_of(np.concatenate([split["trnid"].ravel(), split["valid"].ravel()]))
    test_x, test_y = images_of(split["tstid"])
    return Dataset("flowers102", train_x, train_y, test_x, test_y, 102)


# --------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------


def _extract(archive: Path, directory: Path, name: str) -> None:
    """Extract a tar archive into ``directory`` safely: only regular files and directories, all inside.

    Uses tarfile's ``"data"`` filter where this Python has it (3.10.12+, 3.11.4+, 3.12+); on older
    patch releases, checks every member first and writes the files itself (no links, devices,
    owners or mode bits from the archive). An unsafe member is a :class:`DatasetUnavailable`.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            try:
                tar.extractall(directory, filter="data")
            except tarfile.FilterError as error:
                raise DatasetUnavailable(f"{name}: refusing to extract {archive}: {error}") from None
            return
        target = directory.resolve()
        members = tar.getmembers()
        for member in members:
            path = (target / member.name).resolve()
            inside = path == target or target in path.parents
            if not inside or not (member.isfile() or member.isdir()):
                kind = "a link or special file" if inside else "outside the target directory"
                raise DatasetUnavailable(f"{name}: refusing to extract {archive}: member {member.name!r} is {kind}")
        for member in members:
            path = (target / member.name).resolve()
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            with source, path.open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)


def _fetch(url: str, directory: Path, name: str, *, download: bool) -> Path:
    """The file at ``url`` in ``directory``: already there, or downloaded (MD5-checked when known)."""
    filename = url.rsplit("/", 1)[-1]
    path = directory / filename
    if path.exists():
        return path
    hint = (f"put {filename} (from {url}) or its extracted contents in {directory}, "
            "pass --data-dir, or use --dataset digits, which needs no download")
    if not download:
        raise DatasetUnavailable(f"{name}: {path} not found; {hint}")
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise DatasetUnavailable(f"{name}: cannot download {url} ({reason}); {hint}") from None
    expected = MD5.get(filename)
    if expected is not None:
        digest = hashlib.md5(partial.read_bytes()).hexdigest()
        if digest != expected:
            partial.unlink()
            raise DatasetUnavailable(f"{name}: {filename} downloaded with MD5 {digest}, expected {expected}; retry")
    partial.rename(path)
    return path
