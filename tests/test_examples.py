"""The examples: real data loaders on tiny files in the real on-disk formats, the augmentation
flags, and end-to-end runs of the training scripts in their fast modes."""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from maskmix import registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import augment_flags  # noqa: E402
import datasets  # noqa: E402

# A proxy on a closed local port: any download attempt fails at once, as it does offline.
OFFLINE_ENV = {**os.environ, "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


def run_example(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env or OFFLINE_ENV, check=check, timeout=600)


# --------------------------------------------------------------------------------------------
# Loaders.
# --------------------------------------------------------------------------------------------


def test_digits_are_the_real_scikit_learn_digits_upsampled() -> None:
    data = datasets.load("digits")
    assert data.train_images.shape == (1437, 1, 32, 32) and data.test_images.shape == (360, 1, 32, 32)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int64
    assert data.num_classes == 10 and set(np.unique(data.test_labels)) == set(range(10))
    assert data.train_images.max() == 255 and data.train_images.min() == 0
    # Stratified: every class has about a tenth of the test split.
    assert np.bincount(data.test_labels).min() >= 34


def _write_cifar(root: Path, name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Pickled batches exactly as the official python archives hold them (bytes keys, uint8 rows)."""
    written = {}
    if name == "cifar10":
        folder, files, key = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], b"labels"
        files.append("test_batch")
    else:
        folder, files, key = root / "cifar-100-python", ["train", "test"], b"fine_labels"
    folder.mkdir(parents=True)
    for file in files:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10 if name == "cifar10" else 100, 3).tolist()
        batch = {b"batch_label": file.encode(), key: labels, b"data": data, b"filenames": [b"x.png"] * 3}
        if name == "cifar100":
            batch[b"coarse_labels"] = [0, 0, 0]
        with (folder / file).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
        written[file] = (data, np.array(labels))
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loader_reads_the_pickled_batches(tmp_path: Path, name: str) -> None:
    written = _write_cifar(tmp_path, name, np.random.default_rng(0))
    data = datasets.load(name, tmp_path, download=False)
    train_files = [f for f in written if f not in ("test_batch", "test")]
    assert data.train_images.shape == (3 * len(train_files), 3, 32, 32)
    assert data.num_classes == (10 if name == "cifar10" else 100)
    first_rows, first_labels = written[train_files[0]]
    # Row layout of the archive: 1024 red, then 1024 green, then 1024 blue values, row-major.
    assert np.array_equal(data.train_images[0, 1, 2, 5], first_rows[0, 1024 + 2 * 32 + 5])
    assert np.array_equal(data.train_labels[:3], first_labels)
    test_rows, test_labels = written["test_batch" if name == "cifar10" else "test"]
    assert np.array_equal(data.test_images.reshape(3, -1), test_rows)
    assert np.array_equal(data.test_labels, test_labels)


def test_cifar_archive_in_data_dir_is_extracted(tmp_path: Path) -> None:
    import tarfile

    source = tmp_path / "src"
    _write_cifar(source, "cifar10", np.random.default_rng(1))
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    data = datasets.load("cifar10", tmp_path, download=False)
    assert data.train_images.shape == (15, 3, 32, 32) and (tmp_path / "cifar-10-batches-py").is_dir()


def test_flowers_loader_reads_jpgs_and_mat_files(tmp_path: Path) -> None:
    from PIL import Image
    from scipy.io import savemat

    root = tmp_path / "flowers102"
    (root / "jpg").mkdir(parents=True)
    sizes = [(50, 40), (30, 60), (64, 64), (41, 33), (80, 20), (25, 25)]
    for i, (w, h) in enumerate(sizes, start=1):
        # A flat colour per image so that crop and resize keep it exactly.
        colour = np.array([i * 30, 255 - i * 30, 7 * i], dtype=np.uint8)
        Image.fromarray(np.tile(colour, (h, w, 1))).save(root / "jpg" / f"image_{i:05d}.jpg", quality=100)
    labels = np.array([[3, 1, 102, 5, 3, 7]])  # 1-based, as in the official imagelabels.mat
    savemat(root / "imagelabels.mat", {"labels": labels})
    savemat(root / "setid.mat", {"trnid": np.array([[2, 1]]), "valid": np.array([[5]]), "tstid": np.array([[6, 3, 4]])})
    data = datasets.load("flowers102", tmp_path, image_size=16, download=False)
    assert data.train_images.shape == (3, 3, 16, 16) and data.test_images.shape == (3, 3, 16, 16)
    assert data.num_classes == 102
    assert data.train_labels.tolist() == [2, 0, 2]  # ids 1, 2, 5 -> labels 3, 1, 3 (1-based)
    assert data.test_labels.tolist() == [101, 4, 6]  # ids 3, 4, 6
    # Image 3's colour, JPEG-rounded: (90, 165, 21).
    np.testing.assert_allclose(data.test_images[0].reshape(3, -1).mean(axis=1), [90, 165, 21], atol=3)


def _extractall_before_3_10_12(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make tarfile look like Python < 3.10.12 / 3.11.4: no data_filter, no ``filter`` argument."""
    import tarfile

    real = tarfile.TarFile.extractall

    def extractall(self, path=".", members=None, *, numeric_owner=False, **kwargs):
        if kwargs:
            raise TypeError(f"extractall() got an unexpected keyword argument {next(iter(kwargs))!r}")
        return real(self, path, members, numeric_owner=numeric_owner, filter="fully_trusted")

    monkeypatch.delattr(tarfile, "data_filter")
    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)


def test_cifar_archive_is_extracted_on_pythons_without_tar_filters(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    source = tmp_path / "src"
    written = _write_cifar(source, "cifar10", np.random.default_rng(2))
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    _extractall_before_3_10_12(monkeypatch)
    data = datasets.load("cifar10", tmp_path, download=False)
    assert data.train_images.shape == (15, 3, 32, 32)
    assert np.array_equal(data.test_images.reshape(3, -1), written["test_batch"][0])


@pytest.mark.parametrize("old_python", [False, True], ids=["data_filter", "no_data_filter"])
@pytest.mark.parametrize("attack", ["parent", "absolute", "symlink"])
def test_unsafe_archive_members_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attack: str,
                                            old_python: bool) -> None:
    import io
    import tarfile

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    outside = tmp_path / "evil.txt"
    with tarfile.open(data_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        if attack == "symlink":
            member = tarfile.TarInfo("cifar-10-batches-py/test_batch")
            member.type, member.linkname = tarfile.SYMTYPE, str(outside)
            tar.addfile(member)
        else:
            name = "cifar-10-batches-py/../../evil.txt" if attack == "parent" else str(outside)
            member = tarfile.TarInfo(name)
            member.size = 4
            tar.addfile(member, io.BytesIO(b"evil"))
    if old_python:
        _extractall_before_3_10_12(monkeypatch)
    # Refused outright, or (an absolute name under the data filter) extracted inside data_dir.
    with pytest.raises(datasets.DatasetUnavailable, match=r"refusing to extract|missing after extracting"):
        datasets.load("cifar10", data_dir, download=False)
    assert not outside.exists()
    assert not (data_dir / "cifar-10-batches-py" / "test_batch").is_symlink()


def test_missing_data_offline_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    for name in ("cifar10", "cifar100", "flowers102"):
        with pytest.raises(datasets.DatasetUnavailable, match=rf"{name}: cannot download .*--dataset digits") as info:
            datasets.load(name, tmp_path / "data")
        assert "\n" not in str(info.value)
        assert not list((tmp_path / "data").rglob("*.part")), "no partial download is left behind"
    with pytest.raises(datasets.DatasetUnavailable, match=r"cifar10: .* not found; put cifar-10-python.tar.gz"):
        datasets.load("cifar10", tmp_path / "none", download=False)


@pytest.mark.parametrize("script", ["manual_loop", "train_lightning", "train_keras"])
def test_script_without_data_prints_one_line_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], script: str) -> None:
    # In this process (the scripts' `sys.exit(main())` runs in the fast-dev-run tests below).
    for variable in ("https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, OFFLINE_ENV[variable])
    main = importlib.import_module(script).main
    assert main(["--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cifar10: cannot download"), err


# --------------------------------------------------------------------------------------------
# Flags.
# --------------------------------------------------------------------------------------------


def _plan(*argv: str) -> augment_flags.AugmentPlan:
    parser = argparse.ArgumentParser()
    augment_flags.add_augment_flags(parser)
    return augment_flags.plan_from_args(parser.parse_args(list(argv)), parser)


def test_timm_flags_map_to_the_strategies() -> None:
    plan = _plan("--reprob", "0.25", "--remode", "rand", "--recount", "3", "--mixup", "0.8", "--cutmix", "1.0",
                 "--mixup-prob", "0.6", "--mixup-switch-prob", "0.3", "--smoothing", "0.1")
    (name, erasing), = plan.masking
    assert name == "RandomErasing" and erasing["augmentation_ratio"] == 0.25 and erasing["bernoulli_mix"]
    # timm's --recount is max_count: the count per image is uniform in 1..recount.
    assert erasing["fill_method"] == "random" and erasing["patch_count"] == (1, 3)
    assert [m[0] for m in plan.mixing] == ["RandomMixup", "RandomCutMix"]
    assert plan.mix_weights == pytest.approx([0.7, 0.3])
    assert all(m[1]["augmentation_ratio"] == 0.6 and m[1]["label_smoothing"] == 0.1 for m in plan.mixing)
    # timm's box (rand_bbox truncates the sides): the examples' CutMix had RandomCutMix's rounded
    # box, 0.32 of a 32 x 32 image pasted on average against timm's 0.31.
    assert plan.mixing[1][1]["box_rounding"] == "truncate"
    assert _plan("--mixup-or-cutmix", "1").mixing[0][1]["box_rounding"] == "timm"
    assert _plan().empty
    # The script's timm defaults only where they act: beside a --set option that replaces them they
    # were refused (box_rounding, which the user never set, "has no effect when patch_area is set").
    for argv, absent in (
        (("--cutmix", "1.0", "--set", "cutmix.patch_area=(0.1, 0.3)"), "box_rounding"),
        (("--mixup-or-cutmix", "1", "--set", "mixup_or_cutmix.cutmix_minmax=(0.2, 0.8)"), "box_rounding"),
        (("--mixup-or-cutmix", "1", "--set", "mixup_or_cutmix.cutmix_alpha=0"), "box_rounding"),
        (("--mixup-or-cutmix", "1", "--mixup-switch-prob", "0.3", "--set", "mixup_or_cutmix.mixup_alpha=0"),
         "switch_prob"),
    ):
        (name, kwargs), = _plan(*argv).mixing
        assert absent not in kwargs
        registry.implementation(name, "torch")(**kwargs)  # builds


def test_a_mixing_flag_without_an_alpha_says_so_in_its_help() -> None:
    parser = argparse.ArgumentParser()
    augment_flags.add_augment_flags(parser)
    helps = {action.dest: action.help for action in parser._actions}
    assert helps["cutmix"] == "cutmix alpha; 0 disables (timm)"
    assert helps["mixup_or_cutmix"].startswith("any value > 0 enables RandomMixupOrCutMix (the value is not an alpha")
    (name, kwargs), = _plan("--mixup-or-cutmix", "1", "--set", "mixup_or_cutmix.switch_prob=0.25").mixing
    assert name == "RandomMixupOrCutMix" and kwargs["switch_prob"] == 0.25 and "alpha" not in kwargs
    # timm's --mixup-switch-prob is this transform's switch_prob (it was silently left at 0.5).
    (_, kwargs), = _plan("--mixup-or-cutmix", "1", "--mixup-switch-prob", "0.9").mixing
    assert kwargs["switch_prob"] == 0.9


def test_recount_one_is_one_patch_and_remode_maps_to_pixel_space_fills() -> None:
    (_, erasing), = _plan("--reprob", "0.5", "--recount", "1").masking
    assert erasing["patch_count"] == 1
    fills = {mode: _plan("--reprob", "0.5", "--remode", mode).masking[0][1]["fill_method"]
             for mode in ("const", "rand", "pixel")}
    assert fills == {"const": "gray", "rand": "random", "pixel": "noise"}


@pytest.mark.parametrize("remode", ["const", "rand", "pixel"])
def test_remode_fills_are_not_black_on_the_examples_uint8_images(remode: str) -> None:
    """The examples erase uint8 [0, 255] images before normalising them: timm's fills must land
    mid-range there (timm's const 0 is the normalisation mean, 127.5), not near 0."""
    import torch

    import maskmix.torch as mm

    (name, kwargs), = _plan("--reprob", "1", "--remode", remode).masking
    erasing = getattr(mm, name)(**kwargs, generator=torch.Generator().manual_seed(0))
    out = erasing(torch.zeros(64, 3, 32, 32, dtype=torch.uint8))
    erased = out[out != 0].float()
    assert erased.numel() > 64 * 3 * 32 * 32 * 0.02  # every image erased at least 2% of its area
    assert 100 < float(erased.mean()) < 155
    if remode == "const":
        assert set(erased.unique().tolist()) <= {127.0, 128.0}
    else:
        assert float(erased.std()) > 40  # uniform over 0..255 (std 74), per image or per pixel


@pytest.mark.parametrize(("argv", "message"), [
    (["--reprob", "1.5"], "--reprob must be in [0, 1]; got 1.5"),
    (["--reprob", "nan"], "--reprob must be in [0, 1]"),
    (["--recount", "0", "--reprob", ".5"], "--recount must be an integer >= 1; got 0"),
    (["--smoothing", "1.0", "--cutmix", "1"], "--smoothing must be in [0, 1); got 1.0"),
    (["--smoothing", "-0.1"], "--smoothing must be in [0, 1)"),
    (["--mixup", "1", "--cutmix", "1", "--mixup-switch-prob", "1.5"], "--mixup-switch-prob must be in [0, 1]"),
    (["--mixup", "1", "--mixup-prob", "-0.5"], "--mixup-prob must be in [0, 1]"),
    (["--mixup", "-1"], "--mixup must be an alpha >= 0"),
    (["--augment", "cutout", "--augment-ratio", "2"], "--augment-ratio must be in [0, 1]"),
    (["--augment", "cutout", "--set", "cutout.patch_area=2"], "RandomCutout: patch_area must be"),
    (["--augment", "cutout", "--set", "cutout.bogus=1"], "RandomCutout: unexpected parameter(s) bogus"),
    (["--augment", "gridmask", "--set", "gridmask.fill_method=nope"], "RandomGridMask: fill_method must be"),
    (["--augment", "thumbnail", "--set", "thumbnail.mix_images=True"], "mix with --mixup ALPHA / --cutmix ALPHA"),
    (["--augment", "cutpaste", "--set", "cutpaste.return_labels=True"], "RandomCutPaste: return_labels=True"),
    (["--set", "cutmix.alpha=0.5"], "cutmix is disabled; enable it with --cutmix ALPHA"),
    (["--cutmix", "0", "--set", "mixup.alpha=0.5"], "mixup is disabled; enable it with --mixup ALPHA"),
    (["--cutmix", "1", "--set", "cutmix.alpha=-1"], "RandomCutMix: alpha must be a float in (0, 1e+30]; got -1"),
    (["--mixup", "1", "--set", "mixup.num_classes=5"], "num_classes comes from the data set"),
    # The loops smooth with --smoothing as well: a second value crashed one loop after the data loaded.
    (["--mixup", "1", "--smoothing", "0.1", "--set", "mixup.label_smoothing=0.2"],
     "RandomMixup: label_smoothing=0.2 disagrees with --smoothing 0.1"),
    (["--set", "mixup_or_cutmix.mixup_alpha=1"], "mixup_or_cutmix is disabled; enable it with --mixup-or-cutmix 1"),
])
def test_bad_flag_values_are_one_line_parser_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                    message: str) -> None:
    with pytest.raises(SystemExit) as info:
        _plan(*argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0] and err.endswith(errors[0] + "\n"), err


@pytest.mark.parametrize("script", ["manual_loop", "train_lightning", "train_keras"])
def test_default_augmentation_is_valid_and_erases_in_black(script: str) -> None:
    import importlib

    module = importlib.import_module(script)
    parser = module.training_cli.training_parser(None, module.DEFAULT_AUGMENTATION)
    _, plan = module.training_cli.parse(parser, [])
    (name, erasing), = plan.masking
    assert name == "RandomErasing" and erasing == {"augmentation_ratio": 0.5}  # its defaults: black fill
    assert [m[0] for m in plan.mixing] == ["RandomMixup", "RandomCutMix"]


@pytest.mark.parametrize("script", ["manual_loop", "train_lightning", "train_keras"])
def test_reprob_replaces_the_examples_own_erasing(script: str) -> None:
    """timm's --reprob is timm's erasing: it was added on top of the example's default black
    erasing (62% of the images erased, some twice); an explicit --augment still adds to it."""
    import importlib

    module = importlib.import_module(script)
    parser = module.training_cli.training_parser(None, module.DEFAULT_AUGMENTATION)
    _, plan = module.training_cli.parse(parser, ["--reprob", "0.25", "--remode", "const"])
    (name, erasing), = plan.masking
    assert name == "RandomErasing" and erasing["augmentation_ratio"] == 0.25 and erasing["fill_method"] == "gray"
    _, plan = module.training_cli.parse(parser, ["--reprob", "0.25", "--augment", "cutout"])
    assert [step[0] for step in plan.masking] == ["RandomCutout", "RandomErasing"]


@pytest.mark.parametrize("script", ["manual_loop", "train_lightning", "train_keras"])
@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--epochs", "0", "--epochs must be >= 1; got 0"), ("--batch-size", "0", "--batch-size must be >= 1; got 0"),
    ("--seed", "-1", "--seed must be in [0, 2**32); got -1"), ("--lr", "-1", "--lr must be a finite number > 0"),
    ("--lr", "nan", "--lr must be a finite number > 0"),
])
def test_bad_training_flags_are_parser_errors(capsys: pytest.CaptureFixture[str], script: str, flag: str,
                                              value: str, message: str) -> None:
    # A negative seed failed deep in Lightning / NumPy; a negative --lr trained Keras by gradient ascent.
    import importlib

    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as info:
        module.main([flag, value, "--reprob", "0", "--cutmix", "0", "--mixup", "0"])
    assert info.value.code == 2
    assert f"error: {message}" in capsys.readouterr().err


def test_lightning_loader_keeps_a_short_batch_when_it_is_the_only_one() -> None:
    import train_lightning

    data = datasets.load("digits")
    few, _ = train_lightning.loaders(data.subset(train=10), batch_size=64, seed=0)
    assert len(few) == 1 and len(next(iter(few))[0]) == 10
    many, _ = train_lightning.loaders(data.subset(train=130), batch_size=64, seed=0)
    assert len(many) == 2  # the short last batch is dropped as before


def test_augment_and_set_flags(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan("--augment", "cutout,gridmask", "--set", "cutout.patch_area=0.25", "--set", "gridmask.rotation=360",
                 "--set", "gridmask.fill_method=noise", "--augment-ratio", "0.5")
    assert plan.masking == [
        ("RandomCutout", {"augmentation_ratio": 0.5, "patch_area": 0.25}),
        ("RandomGridMask", {"augmentation_ratio": 0.5, "rotation": 360, "fill_method": "noise"}),
    ]
    for argv, message in [
        (["--augment", "nope"], "unknown strategies"),
        (["--set", "cutout.patch_area=0.2"], "not in --augment"),
        (["--augment", "cutout", "--set", "cutout"], "STRATEGY.PARAM=VALUE"),
    ]:
        with pytest.raises(SystemExit):
            _plan(*argv)
        assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Scripts end to end.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_manual_loop_fast_dev_run_compares_a_baseline_with_every_masking_strategy(tmp_path: Path) -> None:
    import json

    metrics = tmp_path / "m.json"
    every = ",".join(augment_flags.STRATEGIES)
    proc = run_example(str(EXAMPLES / "manual_loop.py"), "--fast-dev-run", "--compare", "--augment", every,
                       "--reprob", "0.5", "--cutmix", "1.0", "--mixup", "0.5", "--batch-size", "16",
                       "--metrics", str(metrics))
    assert "baseline: test accuracy clean" in proc.stdout and "augmented: test accuracy clean" in proc.stdout
    results = json.loads(metrics.read_text())["results"]
    assert set(results) == {"baseline", "augmented"}
    assert all(0.0 <= r[k] <= 1.0 for r in results.values() for k in ("clean", "occluded"))


@pytest.mark.slow
def test_train_lightning_fast_dev_run_and_compare(tmp_path: Path) -> None:
    import json

    metrics = tmp_path / "m.json"
    proc = run_example(str(EXAMPLES / "train_lightning.py"), "--fast-dev-run", "--compare", "--augment",
                       "gridmask,cutswap", "--smoothing", "0.1", "--batch-size", "16", "--metrics", str(metrics))
    assert "baseline: test accuracy clean" in proc.stdout and "augmented: test accuracy clean" in proc.stdout
    saved = json.loads(metrics.read_text())
    assert set(saved["results"]) == {"baseline", "augmented"}
    assert saved["epochs"] == 1 and "1 epochs" in proc.stdout  # it reported the default 15


@pytest.mark.slow
def test_train_keras_fast_dev_run_and_compare(tmp_path: Path) -> None:
    import json

    metrics = tmp_path / "m.json"
    proc = run_example(str(EXAMPLES / "train_keras.py"), "--fast-dev-run", "--compare", "--augment",
                       "cutout,hide_and_seek,cutblur", "--smoothing", "0.1", "--batch-size", "16",
                       "--metrics", str(metrics))
    assert "baseline: test accuracy clean" in proc.stdout and "augmented: test accuracy clean" in proc.stdout
    saved = json.loads(metrics.read_text())
    assert saved["backend"] == "tensorflow" and set(saved["results"]) == {"baseline", "augmented"}


@pytest.mark.slow
def test_train_keras_on_the_torch_backend(keras_backend_output) -> None:
    # tests/backend_scripts/train_keras_example.py: --fast-dev-run --augment gridmask,cutswap --cutmix 1.0
    output = keras_backend_output("torch", "train_keras_example")
    assert "Keras backend: torch" in output and "augmented: test accuracy clean" in output
