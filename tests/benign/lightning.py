"""PyTorch Lightning `.ckpt` files written by `Trainer.fit` and `save_checkpoint`.

Real LightningModules keep their hyper-parameters in the checkpoint, and real
ones hold `pathlib` paths, `argparse.Namespace` and OmegaConf containers;
the checkpoint also carries the optimizer and loop states Lightning writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.benign import Writer


def _fit(folder: Path, hparams: object) -> None:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(L.LightningModule):
        def __init__(self, config: object) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def configure_optimizers(self) -> object:
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            return {"optimizer": opt,
                    "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1)}

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, 4), torch.tensor([0, 1] * 4))
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", default_root_dir=str(folder))
    trainer.fit(Tiny(hparams), DataLoader(data, batch_size=4))
    trainer.save_checkpoint(folder / "last.ckpt")
    trainer.save_checkpoint(folder / "weights-only.ckpt", weights_only=True)


def _namespace(folder: Path) -> None:
    _fit(folder, argparse.Namespace(data_dir=Path("/data/train"), lr=1e-3, layers=[4, 2],
                                    out=Path("runs") / "exp1"))


def _omegaconf(folder: Path) -> None:
    from omegaconf import OmegaConf

    _fit(folder, OmegaConf.create({"model": {"hidden": [4, 2], "dropout": 0.1},
                                   "paths": {"root": "/data"}, "tags": ["a", "b"]}))


def _paths(folder: Path) -> None:
    _fit(folder, {"root": Path("/data"), "cache": Path.home() / ".cache", "seed": 0})


WRITERS: tuple[Writer, ...] = (
    Writer("lightning-namespace", "lightning.Trainer", _namespace),
    Writer("lightning-omegaconf", "lightning.Trainer", _omegaconf),
    Writer("lightning-paths", "lightning.Trainer", _paths),
)
