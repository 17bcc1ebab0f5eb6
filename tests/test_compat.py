"""The private torch / torchvision / Keras APIs maskmix uses (``maskmix.torch._compat``,
``maskmix.keras._compat``), each checked against the installed release.

Each test exercises the behaviour maskmix relies on and fails with a message naming the private
API, so that a new torchvision or Keras release that removes or changes one is reported here, by
name, rather than as an obscure failure deep in a transform. torch and Keras run in separate
subprocesses (TensorFlow and torch in one process can crash on import), each script checking
every private name of its framework and printing ``ok <name>`` or ``BROKEN <name>: <why>``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TORCH_CHECKS = r'''
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch import RandomCutout, _compat


def pytree():
    sample = (torch.zeros(2), {"label": 3, "boxes": [torch.ones(1)]})
    flat, spec = _compat.tree_flatten(sample)
    assert len(flat) == 3 and flat[1] == 3, f"flattened to {flat!r}"
    back = _compat.tree_unflatten([f for f in flat], spec)
    assert back[1]["label"] == 3 and torch.equal(back[1]["boxes"][0], torch.ones(1)), back


def transformed_types():
    class AddOne(v2.Transform):
        def transform(self, inpt, params):
            return inpt + 1

    _compat.declare_transformed_types(AddOne, (int,))
    out = AddOne()(3, "text", 4.5)
    assert out == (4, "text", 4.5), f"declared types (int,) but the transform returned {out!r}"
    assert RandomCutout._transformed_types == (torch.Tensor, PIL.Image.Image)


def needs_transform_list():
    t = RandomCutout()
    plain, image = torch.zeros(3, 4, 4), tv_tensors.Image(torch.zeros(3, 4, 4))
    got = _compat.needs_transform_list(t, [plain, plain, 7])
    assert got == [True, False, False], f"first plain tensor only expected; got {got}"
    got = _compat.needs_transform_list(t, [plain, image])
    assert got == [False, True], f"a tv_tensors.Image makes plain tensors pass through; got {got}"


def assert_async():
    _compat.assert_async(torch.tensor(True), "fine")
    try:
        _compat.assert_async(torch.tensor(False), "class index out of range")
    except RuntimeError:
        return
    raise AssertionError("a False condition did not raise on CPU")


def kornia_container():
    import kornia.augmentation as K

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, images):
            seen.append(_compat.calling_kornia_data_keys())
            return images

    images, masks = torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4)
    K.AugmentationSequential(Probe(), data_keys=["input", "mask"])(images, masks)
    K.AugmentationSequential(K.ImageSequential(Probe()), data_keys=["input", "mask"])(images, masks)
    Probe()(images)
    assert [keys and keys[1:] for keys in seen] == [["MASK"], ["MASK"], None], f"data keys seen: {seen}"
    assert seen[0][0] in ("INPUT", "IMAGE"), seen


def inference_mode_guard():
    assert not torch.is_inference_mode_enabled()
    with _compat.inference_mode():
        assert torch.is_inference_mode_enabled(), "the guard did not enable inference mode"
        inside = torch.zeros(2) + 1
    assert inside.is_inference(), "a tensor made under the guard is not an inference tensor"
    assert not torch.is_inference_mode_enabled(), "inference mode still on after the block"


def derivative_modes():
    # records_gradients must see forward-mode AD and torch.func transforms, under_vmap vmap alone.
    from torch.autograd import forward_ad

    plain = torch.zeros(2)
    assert not _compat.records_gradients(plain) and not _compat.under_vmap()
    assert _compat.records_gradients(plain.clone().requires_grad_())
    with forward_ad.dual_level():
        assert _compat.records_gradients(forward_ad.make_dual(plain, torch.ones(2)))
    seen = []

    def probe(x):
        seen.append((_compat.records_gradients(x), _compat.under_vmap()))
        return x * 2

    torch.func.jvp(probe, (plain,), (torch.ones(2),))
    torch.func.vmap(probe)(torch.zeros(3, 2))
    torch.func.vmap(torch.func.grad(lambda x: probe(x).sum()))(torch.zeros(3, 2))
    assert seen == [(True, False), (True, True), (True, True)], seen


def pixel_mover_modules():
    # The geometric and auto-augment transforms must still live where torchvision_pixel_mover looks.
    from torchvision import transforms as v1

    movers = [v2.RandomHorizontalFlip(), v2.RandomResizedCrop(8), v2.RandAugment(), v2.AugMix(),
              v2.UniformTemporalSubsample(2), v1.RandomVerticalFlip(), v1.RandomAffine(5.0)]
    keepers = [v2.ColorJitter(0.1), v2.GaussianBlur(3), v2.RandomErasing(), v2.Normalize([0.5], [0.5]),
               v1.ColorJitter(0.1)]
    assert all(map(_compat.torchvision_pixel_mover, movers)), [type(t).__name__ for t in movers
                                                               if not _compat.torchvision_pixel_mover(t)]
    assert not any(map(_compat.torchvision_pixel_mover, keepers))


CHECKS = {
    "kornia.augmentation.container.AugmentationSequential.data_keys": kornia_container,
    "torchvision.transforms.v2._geometry": pixel_mover_modules,
    "torchvision.transforms.v2._auto_augment": pixel_mover_modules,
    "torchvision.transforms.v2._temporal": pixel_mover_modules,
    "torch._C._InferenceMode": inference_mode_guard,
    "torch.autograd.forward_ad._current_level": derivative_modes,
    "torch._C._functorch.peek_interpreter_stack": derivative_modes,
    "torch._C._functorch.get_interpreter_stack": derivative_modes,
    "torch.utils._pytree.tree_flatten": pytree,
    "torch.utils._pytree.tree_unflatten": pytree,
    "torchvision.transforms.v2.Transform._transformed_types": transformed_types,
    "torchvision.transforms.v2.Transform._needs_transform_list": needs_transform_list,
    "torch._assert_async": assert_async,
}
'''

KERAS_CHECKS = r'''
import keras
import numpy as np
import tensorflow as tf

from maskmix.keras import _compat


def dynamic_backend():
    backend = _compat.DynamicBackend()
    assert backend.name == keras.backend.backend(), backend.name
    backend.set_backend("tensorflow")
    assert backend.name == "tensorflow", backend.name
    x = backend.numpy.ones((2,))
    assert isinstance(x, tf.Tensor), type(x)
    assert callable(backend.random.uniform) and callable(backend.cast)
    backend.reset()
    assert backend.name == keras.backend.backend(), backend.name


def in_tf_graph():
    assert _compat.in_tf_graph() is False, "True in eager mode"
    inside = tf.function(lambda: tf.constant(_compat.in_tf_graph()))()
    assert bool(inside), "False inside tf.function"


def jax_tracing_scope():
    assert _compat.is_in_jax_tracing_scope(np.zeros(2)) is False
    if keras.backend.backend() == "jax":
        import jax

        seen = []
        jax.jit(lambda x: seen.append(_compat.is_in_jax_tracing_scope(x)) or x)(np.zeros(2))
        assert seen == [True], seen


def dependency_tracking():
    class Layer(keras.layers.Layer):
        @_compat.no_automatic_dependency_tracking
        def untracked(self):
            self.cache = {"tf": keras.random.SeedGenerator(1)}

        def tracked(self):
            self.other = {"tf": keras.random.SeedGenerator(2)}

    layer = Layer()
    layer.untracked()
    assert not layer.variables, f"decorated: {layer.variables} tracked"
    layer.tracked()
    assert len(layer.variables) == 1, "Keras no longer tracks seed generators: the decorator is moot"


def functional():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert isinstance(model, _compat.Functional), type(model)
    assert issubclass(_compat.Functional, keras.Model)

    class Sub(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    class Other(keras.Model):
        def __init__(self, units):
            super().__init__()

    assert _compat.functional_like_constructor(Sub) and not _compat.functional_like_constructor(Other)
    assert callable(getattr(_compat.Functional, "_run_through_graph", None)), "Functional._run_through_graph"


def convert_input_args():
    class Probe(keras.layers.Layer):
        def call(self, x):
            self.seen = x
            return x

    layer = Probe(dtype="float32")
    assert layer._convert_input_args is True
    x = keras.ops.convert_to_tensor(np.arange(3, dtype="float64"))
    given = keras.backend.standardize_dtype(x.dtype)
    layer(x)
    assert keras.backend.standardize_dtype(layer.seen.dtype) == "float32", "Keras stopped casting inputs"
    with _compat.inputs_kept_as_given(layer):
        layer(x)
    assert keras.backend.standardize_dtype(layer.seen.dtype) == given, layer.seen.dtype
    assert layer._convert_input_args is True, "not restored"


def autograph_rules():
    from tensorflow.python.autograph.core import config
    from tensorflow.python.autograph.impl import conversion

    from maskmix.keras import RandomCutMix, random_cutmix

    assert any(isinstance(rule, config.DoNotConvert) and rule.matches("maskmix.keras.cutmix")
               for rule in config.CONVERSION_RULES), config.CONVERSION_RULES
    layer = RandomCutMix(seed=0)
    for function in (layer.get_random_transformation, layer.transform_images, random_cutmix):
        assert conversion.is_allowlisted(function), function


def symbolic_build():
    import numpy as np

    seen = []

    def convert(batch):
        seen.append(batch)
        return batch

    batch = (np.zeros((2, 2), "float32"), np.zeros((2, 1), "float32"))
    for batches in ([batch], iter([batch])):  # a list of a step's batches, or an iterator of them
        inputs = keras.Input((2,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        model.compile("sgd", "mse")
        seen.clear()
        model._symbolic_build(iterator=_compat.converted_epoch_batches([(0, 0, batches)], convert))
        assert len(seen) == 1 and seen[0] is batch, f"read {len(seen)} batches through the iterator"
        assert model._compile_loss.built, "the compiled loss was not built from the batch"


def stateless_scope():
    assert not _compat.in_stateless_scope()
    with keras.StatelessScope():
        assert _compat.in_stateless_scope()
    assert not _compat.in_stateless_scope()


def seed_dtype():
    expected = {"tensorflow": "int64", "torch": "int32", "jax": "uint32"}[keras.backend.backend()]
    assert _compat.random_seed_dtype() == expected, _compat.random_seed_dtype()
    assert keras.backend.standardize_dtype(keras.random.SeedGenerator(5).state.dtype) == expected


def image_layers():
    import numpy as np

    assert issubclass(keras.layers.RandomFlip, _compat.BaseImagePreprocessingLayer)
    assert not issubclass(keras.layers.Rescaling, _compat.BaseImagePreprocessingLayer)
    images = np.full((2, 4, 4, 3), 200, "uint8")
    flipped = keras.layers.RandomFlip(seed=0)(images, training=True)
    assert keras.backend.standardize_dtype(flipped.dtype) == "float32", flipped.dtype
    assert float(keras.ops.max(flipped)) == 200.0, "the values are no longer kept"


CHECKS = {
    "keras.src.backend.common.stateless_scope.in_stateless_scope": stateless_scope,
    "keras.src.backend.random_seed_dtype": seed_dtype,
    "keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer.BaseImagePreprocessingLayer":
        image_layers,
    "keras.src.trainers.trainer.Trainer._symbolic_build": symbolic_build,
    "keras.src.utils.backend_utils.DynamicBackend": dynamic_backend,
    "keras.src.utils.backend_utils.in_tf_graph": in_tf_graph,
    "keras.src.utils.jax_utils.is_in_jax_tracing_scope": jax_tracing_scope,
    "keras.src.utils.tracking.no_automatic_dependency_tracking": dependency_tracking,
    "keras.src.models.functional.Functional": functional,
    "keras.src.models.functional.functional_like_constructor": functional,
    "keras.layers.Layer._convert_input_args": convert_input_args,
    "tensorflow.python.autograph.core.config.CONVERSION_RULES": autograph_rules,
}
'''

RUNNER = r'''
import sys
import traceback

assert sorted(CHECKS) == sorted(_compat.PRIVATE_APIS), (sorted(CHECKS), sorted(_compat.PRIVATE_APIS))
for name, check in CHECKS.items():
    try:
        check()
    except Exception as error:  # noqa: BLE001 - every failure is reported by name
        last = traceback.extract_tb(error.__traceback__)[-1]
        print(f"BROKEN {name}: {type(error).__name__}: {error} (line {last.lineno})")
    else:
        print(f"ok {name}")
'''


def _run(checks: str, module: str) -> dict[str, str]:
    """Run one framework's checks in a fresh interpreter; ``{private name: "ok" or why it broke}``."""
    script = textwrap.dedent(checks) + textwrap.dedent(RUNNER)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"{module} could not be checked (its import of a private API may have broken):\n"
                             f"{result.stdout}\n{result.stderr[-3000:]}")
    report = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "BROKEN"):
            name, _, why = rest.partition(": ")
            report[name] = "ok" if status == "ok" else why
    return report


def _private_apis(path: str) -> list[str]:
    """``PRIVATE_APIS`` of a compat module, read from its source (no import)."""
    for node in ast.parse((ROOT / path).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "PRIVATE_APIS":
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no PRIVATE_APIS")


@pytest.mark.parametrize(
    ("checks", "module", "path"),
    [(TORCH_CHECKS, "maskmix.torch._compat", "maskmix/torch/_compat.py"),
     (KERAS_CHECKS, "maskmix.keras._compat", "maskmix/keras/_compat.py")],
    ids=["torch", "keras"],
)
def test_every_private_api_still_behaves(checks: str, module: str, path: str) -> None:
    report = _run(checks, module)
    names = _private_apis(path)
    assert sorted(report) == sorted(names), f"{module}: checked {sorted(report)}, declared {names}"
    broken = {name: why for name, why in report.items() if why != "ok"}
    assert not broken, "private APIs changed by the installed release: " + "; ".join(
        f"{name} ({why})" for name, why in broken.items()
    )


def test_private_apis_are_used_only_through_the_compat_modules() -> None:
    """No other module of the package imports ``keras.src``, ``tensorflow.python``,
    ``torch.utils._pytree`` or ``torchvision.transforms.v2._utils``, nor touches the private
    v2.Transform attributes."""
    allowed = {"maskmix/torch/_compat.py", "maskmix/keras/_compat.py"}
    needles = ("keras.src", "torch.utils._pytree", "transforms.v2._", "._needs_transform_list",
               "._transformed_types", "._convert_input_args", "torch._assert_async(", "tensorflow.python")
    offenders = []
    for path in sorted((ROOT / "maskmix").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#")[0]
            if any(needle in code for needle in needles) and "``" not in code:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "private API used outside the compat modules:\n" + "\n".join(offenders)


def test_geometry_is_framework_free() -> None:
    """maskmix.geometry (host sizes and constants of both frameworks) imports neither torch nor keras."""
    script = ("import sys, maskmix.geometry; "
              "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'jax') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
