"""The distributions: build the sdist and the wheel, install the wheel into a fresh virtual
environment, and use it.

What is checked, and how it stays honest and fast (no multi-GB download of torch/TensorFlow):

1. ``python -m build --no-isolation`` builds the sdist, then the wheel *from the sdist* (so a
   file missing from the sdist fails here), with the build backend of the project's environment.
2. The wheel holds every subpackage and ``maskmix/py.typed``, no tests; its metadata declares
   the extras (``torch``, ``keras``, ``lightning``, ...); the sdist holds the sources and
   ``py.typed``.
3. A fresh ``python -m venv`` (no site packages of its own) gets the wheel with
   ``pip install --no-deps --no-index``. Only then is the project environment's site-packages
   directory appended to the new environment's ``sys.path`` by a ``.pth`` file, to lend it the
   already installed torch/keras (a directory added this way has its own ``.pth`` files ignored,
   so the project's editable install of maskmix stays invisible).
4. In the new environment: ``maskmix.__file__`` lies inside it (the wheel's copy is the one
   imported, not the checkout), ``py.typed`` ships, ``import maskmix`` imports no framework, the
   requirements of the ``torch`` (and ``keras``) extra as the wheel declares them are satisfied
   by what is visible, and a smoke call runs for each installed framework: a torch transform and
   mixing function, a Keras layer (TensorFlow backend), each in its own process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

HAS_BUILD = importlib.util.find_spec("build") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("torchvision") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None and importlib.util.find_spec("tensorflow") is not None


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAS_BUILD:
        pytest.skip("the 'build' package is not installed (it is in the dev extra)")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    wheels, sdists = sorted(out.glob("maskmix-*.whl")), sorted(out.glob("maskmix-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def venv(dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed, lent the project's site-packages."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=env_dir.parent)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "--quiet", str(dists["wheel"])], cwd=env_dir.parent)
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=env_dir.parent).strip())
    lent = sysconfig.get_paths()["purelib"]  # the project environment's site-packages (torch, keras, ...)
    (purelib / "zz_maskmix_test_lent_site_packages.pth").write_text(lent + "\n")
    return env_dir


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(extra)
    return env


def _run_in(venv: Path, code: str, **env: str) -> str:
    # cwd is the venv's parent: neither the checkout nor the tests are importable from there.
    return _run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code)], cwd=venv.parent,
                env=_clean_env(**env))


def test_wheel_and_sdist_contents(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for required in ("maskmix/__init__.py", "maskmix/py.typed", "maskmix/params.py", "maskmix/registry.py",
                     "maskmix/torch/__init__.py", "maskmix/keras/__init__.py", "maskmix/callbacks/__init__.py"):
        assert required in names, f"the wheel lacks {required}"
    assert not [n for n in names if n.startswith(("tests/", "examples/", "benchmarks/", "docs/"))]
    for extra in ("torch", "keras", "lightning", "examples", "all", "dev"):
        assert f"Provides-Extra: {extra}" in metadata, f"the wheel does not declare the {extra} extra"
    with tarfile.open(dists["sdist"]) as sdist:
        members = {Path(*Path(m).parts[1:]).as_posix() for m in sdist.getnames()}
    for required in ("pyproject.toml", "README.md", "maskmix/py.typed", "maskmix/torch/__init__.py"):
        assert required in members, f"the sdist lacks {required}"


def test_installed_wheel_is_the_one_imported(venv: Path) -> None:
    out = _run_in(venv, """
        import sys, importlib.resources
        import maskmix
        assert maskmix.__file__.startswith(sys.prefix), (maskmix.__file__, sys.prefix)
        assert importlib.resources.files("maskmix").joinpath("py.typed").is_file()
        assert not {"torch", "keras", "tensorflow"} & set(sys.modules), "import maskmix imported a framework"
        from maskmix.params import SPECS
        print(maskmix.__version__, len(SPECS), maskmix.__file__)
    """)
    assert str(venv) in out


def _extra_is_satisfied(venv: Path, extra: str) -> None:
    _run_in(venv, f"""
        from importlib.metadata import PackageNotFoundError, requires, version
        from packaging.requirements import Requirement
        wanted = [Requirement(r) for r in requires("maskmix")]
        wanted = [r for r in wanted if r.marker is not None and r.marker.evaluate({{"extra": {extra!r}}})]
        assert wanted, "the wheel declares no requirement for the {extra} extra"
        for r in wanted:
            if r.name == "maskmix":
                continue  # an extra that pulls in another extra
            try:
                found = version(r.name)
            except PackageNotFoundError:
                raise AssertionError(f"{{r}} of the {extra} extra is not installed") from None
            assert r.specifier.contains(found, prereleases=True), f"{{r}}: found {{found}}"
    """)


@pytest.mark.skipif(not HAS_TORCH, reason="torch/torchvision not installed")
def test_torch_smoke_from_the_wheel(venv: Path) -> None:
    _extra_is_satisfied(venv, "torch")
    out = _run_in(venv, """
        import sys
        import torch
        import maskmix.torch as mt
        assert mt.__file__.startswith(sys.prefix), mt.__file__
        assert "keras" not in sys.modules and "tensorflow" not in sys.modules
        images = torch.rand(4, 3, 16, 16)
        out = mt.RandomErasing(generator=torch.Generator().manual_seed(0))(images)
        assert out.shape == images.shape and not torch.equal(out, images)
        mixed, soft = mt.random_cutmix(images, torch.tensor([0, 1, 2, 3]), num_classes=4)
        assert soft.shape == (4, 4)
        print("torch ok", torch.__version__)
    """)
    assert "torch ok" in out


@pytest.mark.skipif(not HAS_KERAS, reason="keras/tensorflow not installed")
def test_keras_smoke_from_the_wheel(venv: Path) -> None:
    _extra_is_satisfied(venv, "keras")
    out = _run_in(venv, """
        import sys
        import numpy as np
        import maskmix.keras as mk
        assert mk.__file__.startswith(sys.prefix), mk.__file__
        images = np.random.rand(4, 16, 16, 3).astype("float32")
        out = mk.RandomCutout(patch_area=0.25, seed=0)(images)
        assert tuple(out.shape) == images.shape and not np.array_equal(np.asarray(out), images)
        print("keras ok")
    """, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    assert "keras ok" in out
