"""Schedules in a real ``Trainer.fit`` (MaskMixCallback, MaskMixMixin), eager and compiled: the
fraction of augmented images follows the schedule epoch by epoch, and the compiled step is traced
once for every value (the values are inputs of the graph, never constants baked into it).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from maskmix.callbacks import MaskMixCallback, MaskMixMixin
from maskmix.schedules import piecewise, switch_off
from maskmix.torch import RandomCutMix, RandomCutout

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
]

K, B, SIDE, EPOCHS = 3, 8, 8, 4
#: Cut-out images per batch from epoch 2 (ratio 0.5) and 3 (ratio 1); none before.
CUTOUT = piecewise({0: 0.0, 2: 0.5, 3: 1.0})
#: CutMix on for epochs 0 and 1 (timm's mixup_off_epoch = 2).
CUTMIX = switch_off(1.0, epoch=2)


class Recorder(L.LightningModule):
    """Counts, per epoch, the cut-out images (a pixel at -1) and the mixed label rows it trains on."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3 * SIDE * SIDE, K)
        self.cut: dict[int, list[int]] = {}
        self.mixed: dict[int, list[int]] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        epoch = self.current_epoch
        self.cut.setdefault(epoch, []).append(int((x == -1).flatten(1).any(1).sum()))
        self.mixed.setdefault(epoch, []).append(int((y.max(dim=1).values < 1).sum()))
        return F.cross_entropy(self.net(x.flatten(1)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class MixinRecorder(MaskMixMixin, Recorder):
    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.configure_maskmix(**options)


class Batches:
    """Two ready-made batches per epoch (Lightning takes any sized iterable as a loader); pixels at
    0.5, so that only the cut-out fill (-1) is ever -1."""

    def __init__(self) -> None:
        self.batches = [(torch.full((B, 3, SIDE, SIDE), 0.5), torch.arange(B) % K) for _ in range(2)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def options(compile: Any) -> dict[str, Any]:
    return dict(transforms=[RandomCutout(fill_method=-1.0)], mix=RandomCutMix(alpha=1.0), num_classes=K, seed=0,
                compile=compile, schedules={"RandomCutout": {"augmentation_ratio": CUTOUT},
                                            "RandomCutMix": {"augmentation_ratio": CUTMIX}})


def fit(model: Recorder, callbacks: list[Any]) -> None:
    trainer = L.Trainer(max_epochs=EPOCHS, callbacks=callbacks, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, Batches())


def assert_follows_the_schedules(model: Recorder) -> None:
    # Mixing on: no image is cut out (ratio 0), and CutMix mixes labels in every batch.
    for epoch in (0, 1):
        assert model.cut[epoch] == [0, 0]
        assert all(count > 0 for count in model.mixed[epoch])
    # Mixing off: exactly round(ratio * B) images cut out, labels one-hot.
    assert model.cut[2] == [4, 4] and model.cut[3] == [8, 8]
    assert model.mixed[2] == [0, 0] and model.mixed[3] == [0, 0]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_callback_fit_follows_the_schedules(compiled: bool) -> None:
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    counter = CompileCounterWithBackend("inductor")  # the real compiler, which counts each compilation
    callback = MaskMixCallback(**options({"backend": counter} if compiled else False))
    model = Recorder()
    fit(model, [callback])
    assert_follows_the_schedules(model)
    assert callback.pipeline.scheduled_values() == {"RandomCutout": {"augmentation_ratio": 1.0},
                                                    "RandomCutMix": {"augmentation_ratio": 0.0}}
    if compiled:
        # Four epochs, three cut-out ratios and two CutMix ratios: one graph, compiled once.
        assert counter.frame_count == 1


def test_mixin_fit_follows_the_schedules() -> None:
    model = MixinRecorder(**options(False))
    fit(model, [])
    assert_follows_the_schedules(model)
