"""DDP run of MaskMixCallback on CPU, used by tests/integrations/test_lightning_callback.py (run as a script).

``python tests/ddp_script.py OUT_DIR`` fits a tiny model with ``Trainer(accelerator="cpu",
devices=2, strategy="ddp")``; Lightning re-launches this script for rank 1. Both ranks read the
same batches (a plain iterable, so no distributed sampler), and each rank saves what its
``training_step`` / ``validation_step`` received, and its callback state, to ``OUT_DIR/rank{R}.pt``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from maskmix.callbacks import MaskMixCallback, soft_label_targets
from maskmix.torch import RandomCutMix, RandomErasing, RandomMixup

NUM_CLASSES = 4


class FixedBatches:
    """A loader that yields the same batch objects every epoch (Lightning takes any sized iterable)."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_batches(count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(6, 3, 8, 8, generator=gen), torch.randint(0, NUM_CLASSES, (6,), generator=gen))
        for _ in range(count)
    ]


class Probe(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3 * 8 * 8, NUM_CLASSES)
        self.seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": [], "sanity": []}

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen["train"].append((x.detach().clone(), y.detach().clone()))
        logits = self.net(x.flatten(1))
        self.log("train_acc", (logits.argmax(1) == soft_label_targets(y)).float().mean(), sync_dist=True)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        key = "sanity" if self.trainer.sanity_checking else "val"
        self.seen[key].append((batch[0].clone(), batch[1].clone()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(out_dir: Path) -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    train, val = make_batches(3, seed=0), make_batches(1, seed=1)
    callback = MaskMixCallback(
        transforms=[RandomErasing()], mix=[RandomCutMix(), RandomMixup()], num_classes=NUM_CLASSES, seed=7
    )
    model = Probe()
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, callbacks=[callback], logger=False,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        num_sanity_val_steps=1,
    )
    trainer.fit(model, FixedBatches(train), FixedBatches(val))
    torch.save(
        {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "seen": model.seen,
            "train_inputs": train,
            "val_inputs": val,
            "state": callback.state_dict(),
            "hook_left": "on_after_batch_transfer" in vars(model),
        },
        out_dir / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
