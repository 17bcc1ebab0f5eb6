"""LightningCLI builds MaskMixCallback from a config: nested transforms are validated and appendable.

``MaskMixCallback``'s ``transforms`` and ``mix`` are typed with classes (``torch.nn.Module``,
``MixingTransform``), so jsonargparse resolves each list item's ``class_path``/``init_args``
against that class's signature: a misspelt init_arg is jsonargparse's own error naming the key
(not the callback's type error about a ``Namespace``), and ``--trainer.callbacks.transforms+=``
appends a transform to the last callback's list. The runs are ``fast_dev_run`` on 8 images.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LightningCLI
from torch.utils.data import DataLoader, TensorDataset

import maskmix.torch as mt
from maskmix.callbacks import MaskMixCallback

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore:.*LeafSpec.*")


class TinyModel(pl.LightningModule):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, num_classes))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self.net(images), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TinyData(pl.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        images, labels = torch.rand(8, 3, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
        return DataLoader(TensorDataset(images, labels), batch_size=4)


CONFIG = """\
trainer:
  fast_dev_run: true
  accelerator: cpu
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: maskmix.callbacks.MaskMixCallback
      init_args:
        num_classes: 3
        seed: 0
        transforms:
          - class_path: maskmix.torch.RandomErasing
            init_args: {{augmentation_ratio: 0.5, {erasing_arg}: [0.1, 0.2]}}
          - class_path: maskmix.torch.RandomCutout
            init_args: {{patch_area: 0.2}}
        mix:
          - class_path: maskmix.torch.RandomCutMix
          - class_path: maskmix.torch.RandomMixup
            init_args: {{alpha: 0.4}}
        mix_weights: [0.7, 0.3]
"""


def run_cli(tmp_path: Path, *extra: str, erasing_arg: str = "patch_area") -> MaskMixCallback:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(erasing_arg=erasing_arg))
    cli = LightningCLI(TinyModel, TinyData, save_config_callback=None,
                       args=["fit", "--config", str(config), *extra])
    [callback] = [c for c in cli.trainer.callbacks if isinstance(c, MaskMixCallback)]
    return callback


def test_config_builds_the_transforms_and_the_weighted_mixes(tmp_path: Path) -> None:
    callback = run_cli(tmp_path)
    pipeline = callback.pipeline
    erasing, cutout = pipeline.transforms
    assert type(erasing) is mt.RandomErasing and type(cutout) is mt.RandomCutout
    assert erasing.patch_area == (0.1, 0.2) and erasing.augmentation_ratio == 0.5
    assert cutout.patch_area == (0.2, 0.2)
    cutmix, mixup = pipeline.mixes
    assert type(cutmix) is mt.RandomCutMix and type(mixup) is mt.RandomMixup and mixup.alpha == 0.4
    assert list(pipeline.mix_weights) == pytest.approx([0.7, 0.3])
    assert pipeline.batches == 1  # fast_dev_run: the one training batch went through it


def test_a_misspelt_init_arg_is_jsonargparses_error_naming_the_key(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli(tmp_path, erasing_arg="scale")
    error = capsys.readouterr().err
    assert "Option 'scale' is not accepted" in error
    assert "Namespace(" not in error and "must be a maskmix" not in error


def test_transforms_append_from_the_command_line(tmp_path: Path) -> None:
    callback = run_cli(tmp_path, "--trainer.callbacks.transforms+=maskmix.torch.RandomGridMask")
    assert [type(t) for t in callback.pipeline.transforms] == [mt.RandomErasing, mt.RandomCutout,
                                                                mt.RandomGridMask]
