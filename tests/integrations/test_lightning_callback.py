"""MaskMixCallback / MaskMixMixin: real Trainer.fit runs on CPU with probe modules (design §Layers, integrations).

The probe module records what ``training_step``, ``validation_step`` and the sanity check receive;
the loaders are plain iterables that yield the very batch objects the test built, so that
untouched batches can be compared bit for bit (and by identity) with the loader's.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.callbacks import ModelCheckpoint
from torchvision.transforms import v2

from maskmix.callbacks import MaskMixCallback, MaskMixMixin, soft_label_targets
from maskmix.torch import (
    MaskMixPipeline,
    RandomCutMix,
    RandomCutout,
    RandomCutPaste,
    RandomCutThumbnail,
    RandomErasing,
    RandomMixup,
)
from maskmix.torch.pipeline import derive_seed

ROOT = Path(__file__).resolve().parents[2]
K = 4  # classes
B = 6  # images per batch
HOOK = "on_after_batch_transfer"

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*number of training batches.*smaller than the logging interval.*"),
    pytest.mark.filterwarnings("ignore:.*Checkpoint directory.*exists and is not empty.*"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`.*"),
    pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`, callbacks used to create.*"),
]

Sample = collections.namedtuple("Sample", ["image", "label", "index"])


class FixedBatches:
    """A loader that yields the same batch objects every epoch (Lightning takes any sized iterable)."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_batches(count: int, *, seed: int, kind: str = "tuple", onehot: bool = False) -> list[Any]:
    gen = torch.Generator().manual_seed(seed)
    batches: list[Any] = []
    for i in range(count):
        x = torch.rand(B, 3, 8, 8, generator=gen)
        y = torch.randint(0, K, (B,), generator=gen)
        if onehot:
            y = F.one_hot(y, K).float()
        extra = torch.arange(B) + 100 * i
        if kind == "tuple":
            batches.append((x, y, extra))
        elif kind == "list":
            batches.append([x, y, extra, f"note{i}"])
        elif kind == "dict":
            batches.append({"image": x, "label": y, "index": extra, "name": f"batch{i}"})
        elif kind == "namedtuple":
            batches.append(Sample(x, y, extra))
        elif kind == "pair":
            batches.append((x, y))
        else:
            raise AssertionError(kind)
    return batches


def parts(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        return batch["image"], batch["label"]
    return batch[0], batch[1]


def snapshot(batches: list[Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [tuple(t.clone() for t in parts(b)) for b in batches]


class Probe(L.LightningModule):
    """Records every batch its steps receive; trains a linear layer on soft labels."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3 * 8 * 8, K)
        self.train_acc = torchmetrics.classification.MulticlassAccuracy(num_classes=K)
        self.seen: dict[str, list[Any]] = {"train": [], "val": [], "sanity": []}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.seen["train"].append(batch)
        x, y = parts(batch)
        logits = self.net(x.float().flatten(1))
        self.train_acc(logits, soft_label_targets(y))
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=False)
        return F.cross_entropy(logits.float(), y if y.dtype.is_floating_point else y.long())

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.seen["sanity" if self.trainer.sanity_checking else "val"].append(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def make_trainer(callbacks: list[Any], **kwargs: Any) -> L.Trainer:
    options: dict[str, Any] = dict(
        accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=1,
    )
    options.update(kwargs)
    return L.Trainer(callbacks=callbacks, **options)


def default_callback(**kwargs: Any) -> MaskMixCallback:
    options: dict[str, Any] = dict(
        transforms=[RandomErasing()], mix=[RandomCutMix(), RandomMixup()], num_classes=K, seed=3
    )
    options.update(kwargs)
    return MaskMixCallback(**options)


def assert_augmented(seen: list[Any], loader: list[Any], *, mixed: bool = True) -> None:
    assert len(seen) == len(loader)
    for got, original in zip(seen, loader, strict=True):
        assert type(got) is type(original)
        x, y = parts(got)
        x0, _ = parts(original)
        assert x.shape == x0.shape and x.dtype == x0.dtype
        assert not torch.equal(x, x0), "training images must be augmented"
        if mixed:
            assert y.shape == (B, K) and y.dtype == torch.float32
            torch.testing.assert_close(y.sum(dim=1), torch.ones(B))
        # Extra elements are kept as they were.
        if isinstance(original, dict):
            assert set(got) == set(original)
            assert got["index"] is original["index"] and got["name"] == original["name"]
        else:
            assert len(got) == len(original)
            for a, b in zip(list(got)[2:], list(original)[2:], strict=True):
                assert a is b


def assert_untouched(seen: list[Any], loader: list[Any]) -> None:
    assert len(seen) == len(loader)
    for got, original in zip(seen, loader, strict=True):
        x, y = parts(got)
        x0, y0 = parts(original)
        assert x is x0 and y is y0  # the loader's very tensors
        assert torch.equal(x, x0) and torch.equal(y, y0)


# --------------------------------------------------------------------------------------------
# Real fits.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tuple", "list", "dict", "namedtuple"])
def test_fit_augments_and_mixes_training_batches_only(kind: str) -> None:
    train, val = make_batches(3, seed=0, kind=kind), make_batches(2, seed=1, kind=kind)
    before_train, before_val = snapshot(train), snapshot(val)
    model, callback = Probe(), default_callback()
    make_trainer([callback]).fit(model, FixedBatches(train), FixedBatches(val))

    assert_augmented(model.seen["train"], train)
    # Some rows are really mixed (two non-zero classes), and the loss took them.
    rows = torch.cat([parts(b)[1] for b in model.seen["train"]])
    assert ((rows > 0).sum(dim=1) > 1).any()
    assert_untouched(model.seen["val"], val)
    assert_untouched(model.seen["sanity"], val[:1])
    # The loader's tensors were not modified in place.
    for (x, y), b in zip(before_train + before_val, train + val, strict=True):
        assert torch.equal(x, parts(b)[0]) and torch.equal(y, parts(b)[1])
    # Teardown removed the hook; the state counted the training batches only.
    assert HOOK not in vars(model)
    assert callback.state_dict()["batches"] == 3


def test_one_hot_labels_and_masking_only_keeps_labels() -> None:
    train, val = make_batches(2, seed=0, onehot=True), make_batches(1, seed=1)
    model = Probe()
    callback = MaskMixCallback(transforms=[RandomCutout(patch_area=0.2), v2.RandomHorizontalFlip(p=1.0)], seed=1)
    make_trainer([callback]).fit(model, FixedBatches(train), FixedBatches(val))
    assert_augmented(model.seen["train"], train, mixed=False)
    for got, original in zip(model.seen["train"], train, strict=True):
        assert got[1] is original[1]  # no mix: labels are left as they are

    model = Probe()
    callback = MaskMixCallback(mix=RandomMixup(), seed=1)  # one-hot labels need no num_classes
    make_trainer([callback]).fit(model, FixedBatches(train), FixedBatches(val))
    assert_augmented(model.seen["train"], train)


def test_bare_image_batches_with_masking_only() -> None:
    class ImagesOnly(Probe):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.seen["train"].append(batch)
            return self.net(batch.flatten(1)).square().mean()

    images = [b[0] for b in make_batches(2, seed=0)]
    model = ImagesOnly()
    make_trainer([MaskMixCallback(transforms=RandomErasing(), seed=0)], limit_val_batches=0).fit(
        model, FixedBatches(images)
    )
    assert all(not torch.equal(a, b) for a, b in zip(model.seen["train"], images, strict=True))


class UserHookData(L.LightningDataModule):
    """A datamodule whose own on_after_batch_transfer doubles the images and records its input."""

    def __init__(self, train: list[Any], val: list[Any]) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.received: list[Any] = []
        self.installed_during_fit: tuple[bool, bool] | None = None

    def train_dataloader(self) -> FixedBatches:
        return FixedBatches(self.train)

    def val_dataloader(self) -> FixedBatches:
        return FixedBatches(self.val)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.received.append(batch)
        x, y, *rest = batch
        return (x * 2, y, *rest)


class PlainData(L.LightningDataModule):
    def __init__(self, train: list[Any], val: list[Any]) -> None:
        super().__init__()
        self.train, self.val = train, val

    def train_dataloader(self) -> FixedBatches:
        return FixedBatches(self.train)

    def val_dataloader(self) -> FixedBatches:
        return FixedBatches(self.val)


def test_datamodule_hook_is_chained_first_and_kept() -> None:
    train, val = make_batches(3, seed=0), make_batches(2, seed=1)
    data = UserHookData(train, val)

    class Where(Probe):
        def on_train_start(self) -> None:
            data.installed_during_fit = (HOOK in vars(data), HOOK in vars(self))

    model = Where()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer([default_callback()]).fit(model, datamodule=data)
    assert not [w for w in caught if HOOK in str(w.message)]  # Lightning saw no extra override
    assert data.installed_during_fit == (True, False)  # installed on the datamodule, not the module
    assert HOOK not in vars(data) and HOOK not in vars(model)

    # The user's hook ran first on every batch (training ones included) and got the loader's batch.
    assert [r[0] for r in data.received] == [b[0] for b in val[:1] + train + val]
    # Validation keeps the user's effect exactly; training batches are augmented on top of it.
    for got, original in zip(model.seen["val"], val, strict=True):
        assert torch.equal(got[0], original[0] * 2) and got[1] is original[1]
    doubled = [(b[0] * 2, b[1], b[2]) for b in train]
    assert_augmented(model.seen["train"], doubled)
    # The user's doubling survives the augmentation (the loader's pixels are below 1).
    assert all(float(got[0].max()) > 1.2 for got in model.seen["train"])


def test_module_hook_is_chained_first_and_kept_with_a_plain_datamodule() -> None:
    train, val = make_batches(2, seed=0), make_batches(1, seed=1)
    received: list[Any] = []

    class UserHookModule(Probe):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            received.append(batch)
            x, y, *rest = batch
            return (x + 10, y, *rest)

    for data in (None, PlainData(train, val)):
        received.clear()
        model = UserHookModule()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if data is None:
                make_trainer([default_callback()]).fit(model, FixedBatches(train), FixedBatches(val))
            else:
                make_trainer([default_callback()]).fit(model, datamodule=data)
        hook_warnings = [str(w.message) for w in caught if HOOK in str(w.message)]
        # With a datamodule Lightning warns about the user's own override, as it would without us.
        assert len(hook_warnings) == (0 if data is None else 1)
        assert [r[0] for r in received] == [b[0] for b in val + train + val]
        assert torch.equal(model.seen["val"][0][0], val[0][0] + 10)
        assert all(float(got[0].max()) > 9 for got in model.seen["train"])  # the user's +10 is kept
        assert_augmented(model.seen["train"], [(b[0] + 10, b[1], b[2]) for b in train])
        assert HOOK not in vars(model)


def test_plain_datamodule_installs_on_the_module() -> None:
    train, val = make_batches(2, seed=0), make_batches(1, seed=1)

    class Where(Probe):
        def on_train_start(self) -> None:
            self.where = (HOOK in vars(self), HOOK in vars(self.trainer.datamodule))

    model, data = Where(), PlainData(train, val)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer([default_callback()]).fit(model, datamodule=data)
    assert not [w for w in caught if HOOK in str(w.message)]
    assert model.where == (True, False)
    assert_augmented(model.seen["train"], train)
    assert HOOK not in vars(model) and HOOK not in vars(data)


def test_validate_test_predict_are_never_augmented() -> None:
    val = make_batches(2, seed=1)

    class Steps(Probe):
        def test_step(self, batch: Any, batch_idx: int) -> None:
            self.seen.setdefault("test", []).append(batch)

        def predict_step(self, batch: Any, batch_idx: int) -> Any:
            self.seen.setdefault("predict", []).append(batch)
            return batch

    model, callback = Steps(), default_callback()
    trainer = make_trainer([callback])
    trainer.validate(model, FixedBatches(val))
    trainer.test(model, FixedBatches(val))
    trainer.predict(model, FixedBatches(val))
    for stage in ("val", "test", "predict"):
        assert_untouched(model.seen[stage], val)
    assert callback.state_dict()["batches"] == 0
    assert HOOK not in vars(model)


def test_hook_is_removed_when_fit_fails() -> None:
    class Failing(Probe):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            raise RuntimeError("boom")

    model = Failing()
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer([default_callback()], num_sanity_val_steps=0).fit(model, FixedBatches(make_batches(1, seed=0)))
    assert HOOK not in vars(model)


def test_two_callbacks_chain_and_keep_separate_state(tmp_path: Path) -> None:
    train = make_batches(2, seed=0)
    first = MaskMixCallback(transforms=[RandomCutout(fill_method=5.0)], seed=1)
    second = default_callback(seed=2)
    assert first.state_key != second.state_key
    model = Probe()
    trainer = make_trainer([first, second], limit_val_batches=0)
    trainer.fit(model, FixedBatches(train))
    for got in model.seen["train"]:
        assert (got[0] == 5.0).any()  # the first callback ran ...
        assert got[1].shape == (B, K)  # ... then the second one mixed
    assert HOOK not in vars(model)
    path = tmp_path / "two.ckpt"
    trainer.save_checkpoint(path)
    states = torch.load(path, weights_only=False)["callbacks"]
    assert states[first.state_key] == first.state_dict() == {"version": 1, "seed": 1, "batches": 2}
    assert states[second.state_key]["seed"] == 2
    # Identically configured callbacks share a state key: Lightning refuses them.
    with pytest.raises(RuntimeError, match="more than one stateful callback of type `MaskMixCallback`"):
        make_trainer([default_callback(), default_callback()], limit_val_batches=0).fit(Probe(), FixedBatches(train))


def test_callbacks_removed_out_of_order_leave_the_chain_intact() -> None:
    from maskmix.callbacks.lightning import _install_hook, _remove_hook

    class Target:
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return [*batch, "user"]

    target = Target()
    a = _install_hook(target, lambda b: [*b, "a"])
    b = _install_hook(target, lambda b: [*b, "b"])
    assert target.on_after_batch_transfer([], 0) == ["user", "a", "b"]
    _remove_hook(target, a)
    assert target.on_after_batch_transfer([], 0) == ["user", "b"]
    _remove_hook(target, b)
    assert HOOK not in vars(target)
    assert target.on_after_batch_transfer([], 0) == ["user"]


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision(precision: str) -> None:
    train, val = make_batches(2, seed=0), make_batches(1, seed=1)
    model = Probe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 16-mixed on CPU: Lightning switches to bf16-mixed with a warning
        trainer = make_trainer([default_callback()], precision=precision)
    trainer.fit(model, FixedBatches(train), FixedBatches(val))
    assert trainer.precision == "bf16-mixed"
    assert_augmented(model.seen["train"], train)
    assert_untouched(model.seen["val"], val)


def test_accumulate_grad_batches() -> None:
    train = make_batches(4, seed=0)
    model, callback = Probe(), default_callback()
    trainer = make_trainer([callback], accumulate_grad_batches=2, limit_val_batches=0)
    trainer.fit(model, FixedBatches(train))
    assert trainer.global_step == 2
    assert callback.state_dict()["batches"] == 4
    assert_augmented(model.seen["train"], train)
    # Every batch draws fresh parameters: no two batches share their erased/mixed layout.
    changed = [(parts(g)[0] != parts(o)[0]) for g, o in zip(model.seen["train"], train, strict=True)]
    assert not torch.equal(changed[0], changed[1])


# --------------------------------------------------------------------------------------------
# Reproducibility and resuming.
# --------------------------------------------------------------------------------------------


def train_images(model: Probe) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(parts(b)[0], parts(b)[1]) for b in model.seen["train"]]


def assert_same_batches(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for (x1, y1), (x2, y2) in zip(a, b, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, None])
def test_resume_from_checkpoint_continues_the_same_stream(tmp_path: Path, seed: int | None) -> None:
    train = make_batches(3, seed=0)

    def run(max_epochs: int, torch_seed: int, ckpt_path: str | None = None,
            checkpoint: ModelCheckpoint | None = None) -> Probe:
        torch.manual_seed(torch_seed)  # seed=None follows torch.initial_seed()
        model = Probe()
        callbacks: list[Any] = [default_callback(seed=seed)]
        if checkpoint is not None:
            callbacks.append(checkpoint)
        trainer = make_trainer(callbacks, max_epochs=max_epochs, limit_val_batches=0,
                               enable_checkpointing=checkpoint is not None)
        trainer.fit(model, FixedBatches(train), ckpt_path=ckpt_path)
        return model

    uninterrupted = train_images(run(2, torch_seed=5))
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="epoch{epoch}", save_top_k=-1)
    first_half = train_images(run(1, torch_seed=5, checkpoint=checkpoint))
    ckpt = tmp_path / "epoch0.ckpt" if (tmp_path / "epoch0.ckpt").exists() else next(tmp_path.glob("*.ckpt"))
    # The resumed run starts from another global seed: the checkpoint's state must win.
    second_half = train_images(run(2, torch_seed=99, ckpt_path=str(ckpt)))
    assert_same_batches(first_half, uninterrupted[:3])
    assert_same_batches(second_half, uninterrupted[3:])
    # Epoch 2 really is a new part of the stream, not a replay of epoch 1.
    assert not torch.equal(uninterrupted[0][0], uninterrupted[3][0])


def test_same_seed_same_augmentations_other_seed_other_ones() -> None:
    train = make_batches(2, seed=0)

    def run(seed: int) -> list[Any]:
        model = Probe()
        make_trainer([default_callback(seed=seed)], limit_val_batches=0).fit(model, FixedBatches(train))
        return train_images(model)

    a, b, c = run(1), run(1), run(2)
    assert_same_batches(a, b)
    assert not torch.equal(a[0][0], c[0][0])


def fit_seeded(callback: MaskMixCallback | None, global_seed: int, train: list[Any],
               model: Probe | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``seed_everything(global_seed)``, then one epoch on a new Trainer; the batches this fit trained on."""
    L.seed_everything(global_seed, verbose=False)
    model = Probe() if model is None else model
    start = len(model.seen["train"])
    make_trainer([] if callback is None else [callback], limit_val_batches=0).fit(model, FixedBatches(train))
    return train_images(model)[start:]


def test_seed_none_is_read_again_and_the_stream_restarts_on_every_fit() -> None:
    train = make_batches(2, seed=0)
    reused = default_callback(seed=None)
    first = fit_seeded(reused, 1, train)
    second = fit_seeded(reused, 2, train)
    assert reused.state_dict() == {"version": 1, "seed": 2, "batches": 2}
    # The second fit is what a new callback gives under seed_everything(2) ...
    assert_same_batches(second, fit_seeded(default_callback(seed=None), 2, train))
    assert not torch.equal(first[0][0], second[0][0])
    # ... and seed_everything(1) reproduces the first fit.
    assert_same_batches(fit_seeded(reused, 1, train), first)
    assert reused.state_dict() == {"version": 1, "seed": 1, "batches": 2}


def test_explicit_seed_restarts_the_stream_on_every_new_trainers_fit() -> None:
    train = make_batches(2, seed=0)
    reused = default_callback(seed=5)
    first = fit_seeded(reused, 1, train)
    # The global seed does not matter with an explicit seed, and the stream starts again at batch 0.
    assert_same_batches(fit_seeded(reused, 2, train), first)
    assert_same_batches(fit_seeded(default_callback(seed=5), 3, train), first)
    assert reused.state_dict() == {"version": 1, "seed": 5, "batches": 2}
    # Fitting again on the same Trainer (more epochs) continues Lightning's loops and the streams
    # with them, as one longer fit would (a fresh start gave the new epoch the first one's draws).
    model = Probe()
    trainer = make_trainer([reused], limit_val_batches=0)
    trainer.fit(model, FixedBatches(train))
    trainer.fit_loop.max_epochs = 2
    trainer.fit(model, FixedBatches(train))
    images = train_images(model)
    longer = Probe()
    make_trainer([default_callback(seed=5)], max_epochs=2, limit_val_batches=0).fit(longer, FixedBatches(train))
    assert len(images) == 4
    assert_same_batches(images[:2], first)
    assert_same_batches(images, train_images(longer))
    assert not torch.equal(images[2][0], images[0][0])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, None])
def test_resume_with_a_reused_callback_continues_the_checkpoint(tmp_path: Path, seed: int | None) -> None:
    train = make_batches(2, seed=0)
    callback = default_callback(seed=seed)
    L.seed_everything(1, verbose=False)
    uninterrupted = Probe()
    make_trainer([callback], max_epochs=2, limit_val_batches=0).fit(uninterrupted, FixedBatches(train))
    L.seed_everything(1, verbose=False)
    trainer = make_trainer([callback], limit_val_batches=0)
    trainer.fit(Probe(), FixedBatches(train))
    trainer.save_checkpoint(tmp_path / "one.ckpt")
    fit_seeded(callback, 7, train)  # another fit in between: its position must not leak into the resume
    # The fresh start of the resumed fit is replaced by the checkpoint's position (and seed).
    L.seed_everything(99, verbose=False)
    resumed = Probe()
    make_trainer([callback], max_epochs=2, limit_val_batches=0).fit(
        resumed, FixedBatches(train), ckpt_path=str(tmp_path / "one.ckpt")
    )
    assert_same_batches(train_images(resumed), train_images(uninterrupted)[2:])
    assert callback.state_dict() == {"version": 1, "seed": 1 if seed is None else seed, "batches": 4}


def test_engine_streams_depend_on_seed_rank_and_batch() -> None:
    batch = make_batches(1, seed=0)[0]

    def out(seed: int, rank: int, start: int = 0) -> torch.Tensor:
        engine = MaskMixPipeline([RandomErasing()], RandomCutMix(), num_classes=K, seed=seed)
        engine.batches = start
        return engine(batch, rank=rank)[0]

    assert torch.equal(out(0, 0), out(0, 0))
    assert not torch.equal(out(0, 0), out(0, 1))
    assert not torch.equal(out(0, 0), out(1, 0))
    assert not torch.equal(out(0, 0), out(0, 0, start=1))
    assert len({derive_seed(s, r, n, 0) for s in range(3) for r in range(3) for n in range(50)}) == 450


def test_mix_choice_follows_weights_on_the_host() -> None:
    engine = MaskMixPipeline(mix=[RandomCutMix(), RandomMixup(), RandomCutMix()], mix_weights=[1, 3, 0], seed=0)
    picks = [engine.choose_mix(rank=0, batch=n) for n in range(4000)]
    counts = collections.Counter(picks)
    assert counts[2] == 0
    assert 0.72 < counts[1] / 4000 < 0.78
    assert picks == [engine.choose_mix(rank=0, batch=n) for n in range(4000)]
    assert picks != [engine.choose_mix(rank=1, batch=n) for n in range(4000)]


def test_generators_and_mix_options_are_passed_at_call_time_not_written_on_the_transforms() -> None:
    seen: list[Any] = []

    class Recording(RandomCutMix):
        def sample_mixing(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            seen.append(("mix", self.generator, self.num_classes, self.label_smoothing))
            return super().sample_mixing(*args, **kwargs)

    erasing, cutmix = RandomErasing(), Recording()
    spy = v2.Lambda(lambda images: seen.append(("erasing", erasing.generator)) or images)
    engine = MaskMixPipeline([erasing, spy], cutmix, num_classes=K, label_smoothing=0.1, seed=0)
    x, y = make_batches(1, seed=0, kind="pair")[0]
    _, soft = engine((x, y))
    # During the call too, the user's transforms keep their own attributes.
    assert seen == [("erasing", None), ("mix", None, None, 0.0)]
    assert erasing.generator is None and cutmix.generator is None
    # Transforms nested in torchvision containers get the generator too: same seed, same output.
    nested = MaskMixPipeline([v2.Compose([RandomErasing()])], seed=0)
    assert torch.equal(nested((x, y))[0], MaskMixPipeline([RandomErasing()], seed=0)((x, y))[0])
    assert cutmix.num_classes is None and cutmix.label_smoothing == 0.0
    assert float(soft.min()) >= 0.1 / K - 1e-7  # smoothing applied once
    with pytest.warns(UserWarning, match="generator of RandomErasing is not used"):
        MaskMixCallback(transforms=[RandomErasing(generator=torch.Generator())])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_engine_on_cuda_never_synchronises() -> None:
    x, y = make_batches(1, seed=0, kind="pair")[0]
    x, y = x.cuda(), y.cuda()
    engine = MaskMixPipeline([RandomErasing()], [RandomCutMix(), RandomMixup()], num_classes=K, seed=0)
    engine((x, y))  # warm-up: creates the device generator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, soft = engine((x, y))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device == x.device and soft.shape == (B, K)
    assert engine._generators[x.device].device == x.device


def test_state_dict_round_trip() -> None:
    callback = default_callback(seed=None)
    assert callback.state_dict() == {"version": 1, "seed": None, "batches": 0}
    callback.load_state_dict({"version": 1, "seed": 42, "batches": 7})
    assert callback.pipeline.seed == 42 and callback.pipeline.batches == 7
    assert callback.state_dict() == {"version": 1, "seed": 42, "batches": 7}
    with pytest.raises(ValueError, match="MaskMixCallback: not a MaskMixCallback state"):
        callback.load_state_dict({"foo": 1})
    # Foreign or malformed states resumed another stream, silently (a float or bool truncated, a
    # negative position, unknown keys and versions ignored).
    bad = [({"version": 1, "seed": 1, "batches": 3, "more": 0}, "not a MaskMixCallback state"),
           ({"seed": 1, "batches": 3}, "not a MaskMixCallback state"),
           ({"version": 99, "seed": 1, "batches": 3}, "the state is of version 99"),
           ({"version": 1, "seed": -1, "batches": 3}, "the state's seed must be None or an integer in"),
           ({"version": 1, "seed": 1.9, "batches": 3}, "the state's seed must be None or an integer in"),
           ({"version": 1, "seed": torch.tensor(1.0), "batches": 3}, "the state's seed must be None or an integer"),
           ({"version": 1, "seed": 2**64, "batches": 3}, "the state's seed must be None or an integer in"),
           ({"version": 1, "seed": 1, "batches": 2.7}, "the state's batches must be an integer >= 0"),
           ({"version": 1, "seed": 1, "batches": True}, "the state's batches must be an integer >= 0"),
           ({"version": 1, "seed": 1, "batches": -5}, "the state's batches must be an integer >= 0")]
    for state, message in bad:
        with pytest.raises(ValueError, match=f"^MaskMixCallback: {re.escape(message)}"):
            callback.load_state_dict(state)
    assert callback.state_dict() == {"version": 1, "seed": 42, "batches": 7}  # untouched by the refusals
    callback.load_state_dict({"version": 1, "seed": np.uint64(5), "batches": torch.tensor(3).item()})
    assert callback.state_dict() == {"version": 1, "seed": 5, "batches": 3}
    # What a checkpoint may hold after torch.load: 0-d integer tensors; and any seed the
    # constructor takes (an int in [0, 2**64)) loads back.
    callback.load_state_dict({"version": 1, "seed": torch.tensor(6), "batches": torch.tensor(4)})
    assert callback.state_dict() == {"version": 1, "seed": 6, "batches": 4}
    callback.load_state_dict({"version": 1, "seed": 2**64 - 1, "batches": 0})
    assert callback.state_dict()["seed"] == 2**64 - 1
    assert default_callback(seed=1).state_key != default_callback(seed=2).state_key
    assert default_callback(seed=1).state_key == default_callback(seed=1).state_key


# --------------------------------------------------------------------------------------------
# The mixin.
# --------------------------------------------------------------------------------------------


class MixinProbe(MaskMixMixin, Probe):
    def __init__(self, seed: int | None = 3) -> None:
        super().__init__()
        self.configure_maskmix(transforms=[RandomErasing()], mix=[RandomCutMix(), RandomMixup()], num_classes=K,
                               seed=seed)


def test_mixin_matches_the_callback() -> None:
    train, val = make_batches(3, seed=0), make_batches(1, seed=1)
    mixin = MixinProbe()
    make_trainer([]).fit(mixin, FixedBatches(train), FixedBatches(val))
    with_callback = Probe()
    make_trainer([default_callback()]).fit(with_callback, FixedBatches(train), FixedBatches(val))
    assert_same_batches(train_images(mixin), train_images(with_callback))  # one engine, one stream
    assert_untouched(mixin.seen["val"], val)
    assert_untouched(mixin.seen["sanity"], val)


@pytest.mark.slow
def test_mixin_resumes_from_checkpoint(tmp_path: Path) -> None:
    train = make_batches(2, seed=0)
    uninterrupted = MixinProbe(seed=None)
    make_trainer([], max_epochs=2, limit_val_batches=0).fit(uninterrupted, FixedBatches(train))
    first = MixinProbe(seed=None)
    trainer = make_trainer([], limit_val_batches=0)
    trainer.fit(first, FixedBatches(train))
    trainer.save_checkpoint(tmp_path / "mixin.ckpt")
    assert torch.load(tmp_path / "mixin.ckpt", weights_only=False)["maskmix"]["batches"] == 2
    torch.manual_seed(1234)
    resumed = MixinProbe(seed=None)
    make_trainer([], max_epochs=2, limit_val_batches=0).fit(
        resumed, FixedBatches(train), ckpt_path=str(tmp_path / "mixin.ckpt")
    )
    assert_same_batches(train_images(resumed), train_images(uninterrupted)[2:])


def test_mixin_seed_none_is_read_again_and_the_stream_restarts_on_every_fit(tmp_path: Path) -> None:
    train = make_batches(2, seed=0)
    reused = MixinProbe(seed=None)
    first = fit_seeded(None, 1, train, model=reused)
    second = fit_seeded(None, 2, train, model=reused)
    assert reused.maskmix_pipeline.state_dict() == {"version": 1, "seed": 2, "batches": 2}
    assert_same_batches(second, fit_seeded(None, 2, train, model=MixinProbe(seed=None)))
    assert_same_batches(fit_seeded(None, 1, train, model=reused), first)
    # With an explicit seed every fit starts again at batch 0 as well.
    explicit = MixinProbe(seed=4)
    assert_same_batches(fit_seeded(None, 1, train, model=explicit), fit_seeded(None, 2, train, model=explicit))
    # Resuming the reused module from a checkpoint continues the checkpoint's stream.
    L.seed_everything(1, verbose=False)
    trainer = make_trainer([], limit_val_batches=0)
    trainer.fit(reused, FixedBatches(train))
    trainer.save_checkpoint(tmp_path / "mixin.ckpt")
    L.seed_everything(1, verbose=False)
    uninterrupted = MixinProbe(seed=None)
    make_trainer([], max_epochs=2, limit_val_batches=0).fit(uninterrupted, FixedBatches(train))
    L.seed_everything(99, verbose=False)
    start = len(reused.seen["train"])
    make_trainer([], max_epochs=2, limit_val_batches=0).fit(
        reused, FixedBatches(train), ckpt_path=str(tmp_path / "mixin.ckpt")
    )
    assert_same_batches(train_images(reused)[start:], train_images(uninterrupted)[2:])
    assert reused.maskmix_pipeline.state_dict() == {"version": 1, "seed": 1, "batches": 4}


def test_mixin_errors() -> None:
    class Unconfigured(MaskMixMixin, Probe):
        pass

    with pytest.raises(ValueError, match=r"MaskMixMixin: Unconfigured has no augmentations; call self\.configure"):
        make_trainer([], limit_val_batches=0).fit(Unconfigured(), FixedBatches(make_batches(1, seed=0)))
    with pytest.raises(ValueError, match="MaskMixCallback: the LightningModule MixinProbe already augments"):
        make_trainer([default_callback()], limit_val_batches=0).fit(MixinProbe(), FixedBatches(make_batches(1, seed=0)))
    with pytest.raises(ValueError, match="MaskMixMixin: mix_weights must have one weight per mix transform"):
        MixinProbe().configure_maskmix(mix=[RandomMixup()], mix_weights=[1, 2])


def test_mixin_hooks_that_never_run_are_refused() -> None:
    """After LightningModule in the bases, or behind a subclass hook that forgets super(), the
    mixin's on_after_batch_transfer never ran: fit trained on unaugmented batches, silently."""
    with pytest.raises(TypeError, match=r"^MaskMixMixin: put MaskMixMixin before LightningModule in the bases of "
                                        r"AfterModule"):
        class AfterModule(Probe, MaskMixMixin):
            pass

    class NoSuper(MixinProbe):
        def on_after_batch_transfer(self, batch, dataloader_idx):
            return batch  # e.g. a normalisation step that forgot super()

    with pytest.raises(RuntimeError, match=r"^MaskMixMixin: the training batch did not go through the augmentations: "
                                           r"NoSuper\.on_after_batch_transfer must call super\(\)"):
        make_trainer([], limit_val_batches=0).fit(NoSuper(), FixedBatches(make_batches(2, seed=0)))


class HookedData(L.LightningDataModule):
    """A datamodule with its own on_after_batch_transfer: Lightning calls it, not the module's."""

    def train_dataloader(self) -> FixedBatches:
        return FixedBatches(make_batches(1, seed=0))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch


class IteratorStep(Probe):
    """A training_step that pulls its batches from ``dataloader_iter``: Lightning then skips
    on_after_batch_transfer."""

    def training_step(self, dataloader_iter):  # type: ignore[override]
        batch, batch_idx, _ = next(dataloader_iter)
        return super().training_step(batch, batch_idx)


class MixinIteratorStep(MaskMixMixin, IteratorStep):
    def __init__(self) -> None:
        super().__init__()
        self.configure_maskmix(transforms=[RandomErasing()], seed=0)


@pytest.mark.parametrize("integration", ["callback", "mixin"])
def test_setups_that_would_train_on_unaugmented_batches_are_refused(integration: str) -> None:
    """Each of these ran the whole fit on the loader's batches unchanged, without a word: a
    training_step taking dataloader_iter (Lightning skips the batch hooks), several training
    loaders (the second loader's image-only batches were taken for labels and passed through)
    and, for the mixin, a datamodule whose own hook Lightning calls instead of the module's."""
    def run(model: Any, data: Any, callbacks: list[Any] | None = None) -> None:
        make_trainer(callbacks if callbacks is not None else ([MaskMixCallback(transforms=[RandomErasing()], seed=0)]
                                                           if integration == "callback" else []),
                     limit_val_batches=0).fit(model, data)

    owner = "MaskMixCallback" if integration == "callback" else "MaskMixMixin"
    with pytest.raises(ValueError, match=rf"^{owner}: .*IteratorStep\.training_step takes dataloader_iter"):
        run(IteratorStep() if integration == "callback" else MixinIteratorStep(), FixedBatches(make_batches(1, seed=0)))
    images = [torch.rand(B, 3, 8, 8) for _ in range(2)]
    two = [FixedBatches(images), FixedBatches(images)]
    for loaders in (two, dict(zip("ab", two, strict=True))):
        model = Probe() if integration == "callback" else MixinImagesOnly()
        with pytest.raises(ValueError, match=rf"^{owner}: fit got 2 training dataloader\(s\) as a "):
            run(model, loaders)
    if integration == "mixin":
        with pytest.raises(ValueError, match=r"^MaskMixMixin: the LightningDataModule HookedData overrides "
                                             r"on_after_batch_transfer"):
            make_trainer([], limit_val_batches=0).fit(MixinProbe(), datamodule=HookedData())
    else:  # the callback augments after the datamodule's hook
        model = Probe()
        make_trainer([default_callback()], limit_val_batches=0).fit(model, datamodule=HookedData())
        assert train_images(model)[0][1].dtype == torch.float32  # mixed: soft labels


class MixinImagesOnly(MaskMixMixin, Probe):
    def __init__(self) -> None:
        super().__init__()
        self.configure_maskmix(transforms=[RandomErasing()], seed=0)


# --------------------------------------------------------------------------------------------
# Argument validation.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(transforms=[lambda x: x]), TypeError, r"transforms\[0\] must be a maskmix or torchvision v2 transform; "
         r"got function$"),
        (dict(transforms=[torch.nn.Identity()]), TypeError, r"transforms\[0\] must be a maskmix or torchvision"),
        (dict(transforms=[RandomErasing(), RandomCutMix()]), ValueError,
         r"transforms\[1\] is or contains the mixing transform RandomCutMix; .*mix="),
        (dict(transforms=[v2.Compose([RandomErasing(), RandomMixup()])]), ValueError,
         r"transforms\[0\] is or contains the mixing transform RandomMixup"),
        (dict(transforms=[v2.CutMix(num_classes=4)]), ValueError, r"transforms\[0\] is or contains the mixing"),
        (dict(transforms=[RandomCutPaste(return_labels=True)]), ValueError, r"transforms\[0\].*return_labels=True"),
        (dict(mix=RandomErasing()), TypeError, r"mix must be a maskmix mixing transform .*; got RandomErasing$"),
        (dict(mix=[RandomMixup(), "cutmix"]), TypeError, r"mix\[1\] must be a maskmix mixing transform"),
        (dict(mix=v2.MixUp(num_classes=4)), TypeError, r"mix must be a maskmix mixing transform .*torchvision's MixUp"),
        (dict(mix=RandomCutThumbnail()), ValueError, r"mix is RandomCutThumbnail with mix_images=False"),
        (dict(mix=[]), ValueError, r"mix must be None, a mixing transform or a non-empty list"),
        (dict(mix=[RandomMixup(), RandomCutMix()], mix_weights=[1.0]), ValueError,
         r"mix_weights must have one weight per mix transform \(2\); got 1"),
        (dict(mix=[RandomMixup(), RandomCutMix()], mix_weights=[1.0, -1.0]), ValueError,
         r"mix_weights\[1\] must be a finite number >= 0; got -1.0$"),
        (dict(mix=[RandomMixup(), RandomCutMix()], mix_weights=[0, 0]), ValueError,
         r"mix_weights must have at least one positive weight"),
        (dict(mix=[RandomMixup(), RandomCutMix()], mix_weights=[1, float("nan")]), ValueError,
         r"mix_weights\[1\] must be a finite number >= 0; got nan"),
        (dict(mix=[RandomMixup(), RandomCutMix()], mix_weights=[True, 1]), TypeError, r"mix_weights\[0\]"),
        (dict(mix=RandomMixup(), mix_weights=0.5), TypeError, r"mix_weights must be a list of numbers"),
        (dict(mix_weights=[1.0]), ValueError, r"mix_weights needs mix"),
        (dict(mix=RandomMixup(), num_classes=0), ValueError, r"num_classes must be None or an integer >= 2; got 0"),
        (dict(mix=RandomMixup(), num_classes=2.0), TypeError, r"num_classes must be None or an integer >= 2"),
        (dict(mix=RandomMixup(), num_classes="3"), TypeError, r"num_classes must be None or an integer >= 2; got '3'"),
        (dict(mix=RandomMixup(num_classes=5), num_classes=4), ValueError,
         r"num_classes must agree .*; got num_classes=4, mix \(RandomMixup\) num_classes=5$"),
        (dict(mix=[RandomMixup(num_classes=5), RandomCutMix(num_classes=4)]), ValueError,
         r"num_classes must agree .*; got mix\[0\] \(RandomMixup\) num_classes=5, mix\[1\]"),
        (dict(mix=RandomMixup(label_smoothing=0.2), label_smoothing=0.1), ValueError,
         r"label_smoothing must agree .*; got label_smoothing=0.1, mix \(RandomMixup\) label_smoothing=0.2$"),
        (dict(mix=RandomMixup(), label_smoothing=1.0), ValueError, r"label_smoothing must be a float in \[0, 1\)"),
        (dict(mix=RandomMixup(), label_smoothing="0.1"), TypeError, r"label_smoothing must be a float in \[0, 1\)"),
        (dict(image_key=1.5), TypeError, r"image_key must be a position >= 0 .* or a key \(a str"),
        (dict(label_key=True), TypeError, r"label_key must be a position"),
        (dict(image_key=-1), ValueError, r"image_key must be a position >= 0"),
        (dict(image_key="x", label_key="x"), ValueError, r"image_key and label_key must differ"),
        (dict(seed=-3), ValueError, r"seed must be None or an integer in \[0, 2\*\*64\); got -3$"),
        (dict(seed=1.0), TypeError, r"seed must be None or an integer in \[0, 2\*\*64\)"),
        (dict(seed=True), TypeError, r"seed must be None or an integer in \[0, 2\*\*64\)"),
        (dict(seed=np.int64(-1)), ValueError, r"seed must be None or an integer in \[0, 2\*\*64\)"),
        (dict(seed=np.float64(3.0)), TypeError, r"seed must be None or an integer in \[0, 2\*\*64\)"),
        # Cut to its low 64 bits (2**64 + 5 drew seed 5's stream), silently; Keras failed in TensorFlow.
        (dict(seed=2**64 + 5), ValueError, r"seed must be None or an integer in \[0, 2\*\*64\); got 1844674407"),
        (dict(mix=RandomMixup(), num_classes=np.int64(0)), ValueError, r"num_classes must be None or an integer >= 2"),
        (dict(mix=RandomMixup(), num_classes=np.bool_(True)), TypeError, r"num_classes must be None or an integer"),
        (dict(mix=RandomMixup(), num_classes=True), TypeError, r"num_classes must be None or an integer >= 2"),
        (dict(mix=RandomMixup(num_classes=5), num_classes=np.int64(4)), ValueError,
         r"num_classes must agree .*; got num_classes=4, mix \(RandomMixup\) num_classes=5$"),
        (dict(image_key=np.int64(-2)), ValueError, r"image_key must be a position >= 0 .*; got np.int64\(-2\)$"),
        (dict(label_key=np.float32(1.0)), TypeError, r"label_key must be a position"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=f"^MaskMixCallback: {match}"):
        MaskMixCallback(**kwargs)


@pytest.mark.parametrize("integer", [np.int64, np.int32, np.uint8])
def test_numpy_integers_are_accepted_as_ints(integer: type[np.integer[Any]]) -> None:
    callback = MaskMixCallback(transforms=[RandomErasing()], mix=RandomCutMix(num_classes=K), num_classes=integer(K),
                               image_key=integer(0), label_key=integer(1), seed=integer(3))
    engine = callback.pipeline
    for value, expected in ((engine.num_classes, K), (engine.image_key, 0), (engine.label_key, 1),
                            (engine.seed_argument, 3)):
        assert type(value) is int and value == expected
    plain = MaskMixCallback(transforms=[RandomErasing()], mix=RandomCutMix(num_classes=K), num_classes=K, seed=3)
    assert callback.state_key == plain.state_key
    mixin = MixinProbe()
    mixin.configure_maskmix(mix=RandomMixup(), num_classes=integer(K), label_key=integer(1), seed=integer(3))
    assert type(mixin.maskmix_pipeline.num_classes) is int and type(mixin.maskmix_pipeline.seed_argument) is int
    # A real fit: the same augmentations as with plain ints, and an int seed in the state.
    train = make_batches(2, seed=0)
    got, want = fit_seeded(callback, 1, train), fit_seeded(plain, 2, train)
    assert_same_batches(got, want)
    assert callback.state_dict() == {"version": 1, "seed": 3, "batches": 2}
    assert type(callback.state_dict()["seed"]) is int


def test_matching_options_are_accepted() -> None:
    MaskMixCallback(mix=RandomMixup(num_classes=K, label_smoothing=0.1), num_classes=K, label_smoothing=0.1)
    MaskMixCallback(transforms=RandomErasing(), mix=RandomCutThumbnail(mix_images=True), num_classes=K)
    MaskMixCallback(transforms=[v2.RandomHorizontalFlip(), RandomCutThumbnail()])
    MaskMixCallback(mix=[RandomMixup(), RandomCutMix()], mix_weights=[0, 1])  # never the first
    MaskMixCallback(label_smoothing=0.1, num_classes=K)  # smoothing alone


@pytest.mark.parametrize(
    ("kwargs", "batch", "error", "match"),
    [
        (dict(mix=RandomMixup(), num_classes=K), torch.rand(2, 3, 4, 4), TypeError, "mix needs labels"),
        (dict(image_key="img"), {"image": torch.rand(2, 3, 4, 4)}, ValueError,
         r"image_key 'img' is not a key of the batch; its keys are \['image'\]"),
        (dict(mix=RandomMixup(), num_classes=K, label_key="y"), {"image": torch.rand(2, 3, 4, 4)}, ValueError,
         r"label_key 'y' is not a key"),
        (dict(image_key="x"), (torch.rand(2, 3, 4, 4),), TypeError, r"image_key is 'x' but the batch is a tuple"),
        (dict(image_key=3), [torch.rand(2, 3, 4, 4)], ValueError, r"image_key 3 is out of range for a batch of 1"),
        (dict(mix=RandomMixup(), num_classes=K), (torch.rand(2, 3, 4, 4),), ValueError,
         r"label_key 1 is out of range"),
        (dict(), ("not images", 1), TypeError, r"the images of the batch \(image_key=0\) must be a tensor"),
        (dict(mix=RandomMixup(), num_classes=K), (torch.rand(2, 3, 4, 4), [0, 1]), TypeError,
         r"the labels of the batch \(label_key=1\) must be a tensor"),
        (dict(), 3, TypeError, r"a batch must be a tensor of images, a tuple/list .* got int"),
    ],
)
def test_invalid_batches(kwargs: dict[str, Any], batch: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=f"^MaskMixCallback: {match}"):
        MaskMixCallback(**kwargs).pipeline(batch)


def test_dict_keys_and_defaults() -> None:
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    engine = MaskMixPipeline(mix=RandomMixup(), num_classes=K, seed=0)
    out = engine({"images": x, "labels": y, "meta": "m"})
    assert set(out) == {"images", "labels", "meta"} and out["labels"].shape == (4, K)
    engine = MaskMixPipeline(mix=RandomMixup(), num_classes=K, image_key="pixels", label_key="target", seed=0)
    out = engine({"pixels": x, "target": y})
    assert out["target"].shape == (4, K)
    engine = MaskMixPipeline([RandomErasing()], image_key=1, label_key=0, seed=0)
    y2, x2 = engine((y, x))
    assert y2 is y and not torch.equal(x2, x)


def test_soft_label_targets() -> None:
    soft = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    assert torch.equal(soft_label_targets(soft), torch.tensor([1, 0]))
    index = torch.tensor([2, 0])
    assert soft_label_targets(index) is index
    with pytest.raises(TypeError, match="soft_label_targets: labels must be a tensor"):
        soft_label_targets([0.1, 0.9])  # type: ignore[arg-type]
    assert torch.equal(soft_label_targets(soft.half().unsqueeze(0)), torch.tensor([[1, 0]]))
    # 1-D (or 0-d) floating labels are not rows of K classes: no argmax over the whole batch.
    for bad in (torch.tensor([0.0, 2.0, 1.0]), torch.tensor(0.5)):
        shape = re.escape(str(tuple(bad.shape)))
        with pytest.raises(ValueError, match=rf"^soft_label_targets: .*at least 2 dims; got shape {shape}"):
            soft_label_targets(bad)


# --------------------------------------------------------------------------------------------
# Imports and DDP.
# --------------------------------------------------------------------------------------------


def run_python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          env=env).stdout


@pytest.mark.slow
def test_callback_import_is_lazy_and_keras_free() -> None:
    out = run_python(
        "import sys\n"
        "import maskmix.callbacks\n"
        "print(sorted(m for m in ('lightning', 'keras', 'tensorflow', 'torch') if m in sys.modules))\n"
        "from maskmix.callbacks import MaskMixCallback, MaskMixMixin, soft_label_targets\n"
        "print(sorted(m for m in ('lightning', 'keras', 'tensorflow') if m in sys.modules))\n"
        "import maskmix.callbacks as c; print('MaskMixModel' in dir(c))\n"
    )
    assert out.split("\n")[:3] == ["[]", "['lightning']", "True"]


@pytest.mark.slow
def test_ddp_on_cpu_ranks_augment_differently(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "ddp_script.py"), str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for r, result in enumerate(ranks):
        assert result["rank"] == r and result["world_size"] == 2
        assert result["state"] == {"version": 1, "seed": 7, "batches": 3}
        assert not result["hook_left"]
        seen, inputs = result["seen"], result["train_inputs"]
        assert len(seen["train"]) == len(inputs) == 3
        for (x, y), (x0, _) in zip(seen["train"], inputs, strict=True):
            assert not torch.equal(x, x0) and y.shape == (B, K)
            torch.testing.assert_close(y.sum(1), torch.ones(B))
        for (x, y), (x0, y0) in zip(seen["val"] + seen["sanity"], result["val_inputs"] * 2, strict=True):
            assert torch.equal(x, x0) and torch.equal(y, y0)
    # Both ranks read the same batches; their augmentations differ.
    for (x_a, _), (x_b, _) in zip(ranks[0]["seen"]["train"], ranks[1]["seen"]["train"], strict=True):
        assert not torch.equal(x_a, x_b)


def test_copies_of_the_module_made_during_fit_carry_no_maskmix_hook() -> None:
    """The hook was a local function set on the module: pickle.dumps / torch.save of the module
    during fit (a checkpointing or EMA callback) failed with "Can't pickle local object", and a
    deepcopy kept the hook, the callback and the original module alive in it, after fit too.
    A copy now gets the hook that was there before: the class's own."""
    import copy
    import io
    import pickle

    train, val = make_batches(2, seed=0), make_batches(1, seed=1)
    copies: list[Any] = []

    class CopyDuringFit(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            assert HOOK in vars(pl_module)  # the maskmix hook is installed now
            buffer = io.BytesIO()
            torch.save(pl_module, buffer)
            copies.extend([pickle.loads(pickle.dumps(pl_module)), copy.deepcopy(pl_module)])

    model = Probe()
    make_trainer([default_callback(), CopyDuringFit()]).fit(model, FixedBatches(train), FixedBatches(val))
    assert len(copies) == 2 and HOOK not in vars(model)
    for copied in copies:
        hook = getattr(copied, HOOK)
        assert getattr(hook, "__self__", None) is copied and hook.__func__ is Probe.on_after_batch_transfer
        batch = train[0]
        assert hook(batch, 0) is batch  # passes the batch through, unaugmented


def test_a_hook_another_callback_puts_back_after_teardown_stays_inert() -> None:
    """A callback after ours that saves ``on_after_batch_transfer`` at setup and restores it at
    teardown (Lightning tears down in list order) put our hook back on the module: the next fit
    with the callback augmented every batch twice."""
    class SaveAndRestore(L.Callback):
        def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
            self.saved = pl_module.on_after_batch_transfer
            pl_module.on_after_batch_transfer = lambda batch, index: self.saved(batch, index)

        def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
            pl_module.on_after_batch_transfer = self.saved

    train = make_batches(2, seed=0)
    callback, model = default_callback(), Probe()
    make_trainer([callback, SaveAndRestore()], limit_val_batches=0).fit(model, FixedBatches(train))
    model.seen["train"].clear()
    make_trainer([callback], limit_val_batches=0).fit(model, FixedBatches(train))
    assert callback.state_dict()["batches"] == 2
    reference = Probe()
    make_trainer([default_callback()], limit_val_batches=0).fit(reference, FixedBatches(train))
    assert_same_batches(train_images(model), train_images(reference))


@pytest.mark.slow
@pytest.mark.parametrize("integration", ["callback", "mixin"])
def test_a_checkpoint_written_inside_a_batch_resumes_that_batchs_draws(tmp_path: Path, integration: str) -> None:
    """OnExceptionCheckpoint (a crash or Ctrl-C in training_step) saved the count with the crashed
    batch in it, while Lightning runs that batch again: the resumed run was one batch ahead of the
    uninterrupted one (none of its batches matched)."""
    from lightning.pytorch.callbacks import OnExceptionCheckpoint

    # One batch four times: Lightning restarts a plain iterable's epoch from its start on resume.
    train = make_batches(1, seed=0) * 4

    class Crashing(MixinProbe if integration == "mixin" else Probe):  # type: ignore[misc]
        crash_at: int | None = None

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.global_step == self.crash_at:
                raise RuntimeError("crash in step")
            return super().training_step(batch, batch_idx)

    def fit(model: Probe, extra: list[Any], **kwargs: Any) -> None:
        callbacks = extra + ([default_callback()] if integration == "callback" else [])
        make_trainer(callbacks, limit_val_batches=0, enable_checkpointing=bool(extra)).fit(
            model, FixedBatches(train), **kwargs)

    uninterrupted = Crashing()
    fit(uninterrupted, [])
    crashed = Crashing()
    crashed.crash_at = 2
    with pytest.raises(RuntimeError, match="crash in step"):
        fit(crashed, [OnExceptionCheckpoint(dirpath=tmp_path, filename="crash")])
    resumed = Crashing()
    fit(resumed, [], ckpt_path=str(tmp_path / "crash.ckpt"))
    assert len(resumed.seen["train"]) == 2  # batches 2 and 3 again
    assert_same_batches(train_images(resumed), train_images(uninterrupted)[2:])
    # A crash caught and fit again on the same Trainer: Lightning's progress keeps the fetched,
    # unprocessed batch for good, and a count read from it alone stayed one short at every later save.
    again = Crashing()
    again.crash_at = 2
    callbacks = [default_callback()] if integration == "callback" else []
    trainer = make_trainer(callbacks, limit_val_batches=0, max_epochs=2)
    with pytest.raises(RuntimeError, match="crash in step"):
        trainer.fit(again, FixedBatches(train))
    again.crash_at = None
    trainer.fit(again, FixedBatches(train))
    pipeline = callbacks[0].pipeline if callbacks else again.maskmix_pipeline
    assert pipeline.batches > 3  # the crashed fit augmented 3, the second fit more
    saved = callbacks[0].state_dict() if callbacks else {}
    if not callbacks:
        again.on_save_checkpoint(saved)
        saved = saved["maskmix"]
    assert saved["batches"] == pipeline.batches
