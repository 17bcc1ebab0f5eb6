"""Train an image classifier with Lightning and maskmix's MaskMixCallback.

The callback augments every training batch on its device, after the transfer: the masking
strategies first (each image its own region), then one mixing strategy per batch whose soft
labels go to ``F.cross_entropy``. Validation and test batches stay clean. Training accuracy is
measured against the dominant class of the soft labels (``soft_label_targets``), validation
accuracy with torchmetrics on the clean labels.

Usage:
    python examples/train_lightning.py                                       # digits, about a minute on a CPU
    python examples/train_lightning.py --reprob 0.25 --remode pixel --mixup 0.8 --cutmix 1.0 --smoothing 0.1
    python examples/train_lightning.py --augment gridmask,cutblur --set gridmask.rotation=360
    python examples/train_lightning.py --compare                             # with vs without augmentation
    python examples/train_lightning.py --dataset cifar10 --data-dir data --epochs 30 --accelerator gpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets
import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
import training_cli
from augment_flags import AugmentPlan
from torch.utils.data import DataLoader, TensorDataset
from torch_training import accuracy, build_model, build_transforms, occlude, to_input

from maskmix.callbacks import MaskMixCallback, soft_label_targets

#: This example's default augmentation: maskmix's RandomErasing (black rectangles, its defaults) on
#: half of each batch, then CutMix or Mixup (timm's flags).
DEFAULT_AUGMENTATION = {"augment": "erasing", "augment_ratio": 0.5, "cutmix": 1.0, "mixup": 0.2}


class Classifier(L.LightningModule):
    """The example model: uint8 batches in (augmented by the callback), logits out."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, *, lr: float,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = build_model(in_channels, num_classes, image_size)
        self.train_accuracy = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.val_accuracy = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_input(images))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch  # labels: indices, or soft (B, K) rows once the callback mixed them
        logits = self(images)
        smoothing = 0.0 if labels.is_floating_point() else self.hparams.label_smoothing
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        self.train_accuracy(logits.argmax(dim=1), soft_label_targets(labels))
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", self.train_accuracy, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.val_accuracy(logits.argmax(dim=1), labels)
        self.log("val_loss", F.cross_entropy(logits, labels), prog_bar=True)
        self.log("val_acc", self.val_accuracy, prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams.lr, total_steps=self.trainer.estimated_stepping_batches
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def loaders(data: datasets.Dataset, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Shuffled training batches (the last, smaller one dropped unless it is the only one) and test batches."""
    train = TensorDataset(torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels))
    test = TensorDataset(torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels))
    return (
        # With fewer images than batch_size, drop_last would leave no batch at all (and OneCycleLR
        # no step): keep the one short batch then.
        DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=len(train) > batch_size,
                   generator=torch.Generator().manual_seed(seed)),
        DataLoader(test, batch_size=512),
    )


def callback_for(plan: AugmentPlan, num_classes: int, seed: int) -> MaskMixCallback | None:
    """The MaskMixCallback of a plan (None when the plan augments nothing)."""
    if plan.empty:
        return None
    masking, mixing = build_transforms(plan, num_classes)
    return MaskMixCallback(
        transforms=masking,
        mix=mixing or None,
        mix_weights=plan.mix_weights if len(mixing) > 1 else None,
        num_classes=num_classes,
        seed=seed,
    )


def train(data: datasets.Dataset, plan: AugmentPlan, args: argparse.Namespace) -> Classifier:
    L.seed_everything(args.seed, workers=True, verbose=False)
    channels, height, _ = data.image_shape
    model = Classifier(channels, data.num_classes, height, lr=args.lr, label_smoothing=plan.label_smoothing)
    callback = callback_for(plan, data.num_classes, args.seed)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator=args.accelerator,
        devices=args.devices,
        precision=args.precision,
        callbacks=[callback] if callback else [],
        fast_dev_run=3 if args.fast_dev_run else False,
        logger=L.pytorch.loggers.CSVLogger(args.log_dir, name=data.name) if not args.fast_dev_run else False,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        deterministic=False,
    )
    train_loader, test_loader = loaders(data, args.batch_size, args.seed)
    trainer.fit(model, train_loader, test_loader)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = training_cli.training_parser(__doc__, DEFAULT_AUGMENTATION)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--devices", default="auto")
    parser.add_argument("--precision", default="32-true", help="e.g. bf16-mixed, 16-mixed")
    parser.add_argument("--log-dir", default="outputs/lightning_logs")
    args, plan = training_cli.parse(parser, argv)
    data = training_cli.load_data(args)
    if data is None:
        return 2

    occluded = occlude(data.test_images)
    results = {}
    for name, run_plan in training_cli.runs(args, plan).items():
        print(f"{name}: {data.name}, {len(data.train_images)} training images, {args.epochs} epochs, "
              f"augmentation: {run_plan.describe()}", flush=True)
        model = train(data, run_plan, args)
        device = next(model.parameters()).device
        results[name] = training_cli.report(
            name,
            clean=accuracy(model.net, data.test_images, data.test_labels, device=device),
            occluded=accuracy(model.net, occluded, data.test_labels, device=device),
        )
    training_cli.write_metrics(args, data, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
