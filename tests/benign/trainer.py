"""Hugging Face Trainer output folders, written by a real two-step `Trainer.train()`.

A checkpoint folder holds what the Trainer's own `_save_checkpoint` writes:
`training_args.bin` (torch.save of `TrainingArguments`, with its enums,
dataclasses and accelerate's `PartialState`), `optimizer.pt`, `scheduler.pt`,
`rng_state.pth` (Python, numpy and torch RNG states), `trainer_state.json`
and the model's safetensors and config; `save_model` writes the final folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.benign import Writer


def _train(out: Path, model_kind: str) -> None:
    """Two optimiser steps of a tiny randomly initialised model on four fixed examples."""
    import torch
    from torch.utils.data import Dataset
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
        Trainer,
        TrainingArguments,
    )

    class Examples(Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            ids = torch.tensor([1, 2, 3, 4])
            label = torch.tensor(i % 2) if model_kind == "bert" else ids
            return {"input_ids": ids, "attention_mask": torch.ones(4, dtype=torch.long),
                    "labels": label}

    torch.manual_seed(0)
    if model_kind == "bert":
        model = BertForSequenceClassification(BertConfig(
            vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=8, max_position_embeddings=16))
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_embd=8, n_layer=1, n_head=2,
                                           n_positions=16))
    args = TrainingArguments(
        output_dir=str(out / "run"), max_steps=2, per_device_train_batch_size=2, save_steps=2,
        save_strategy="steps", report_to=[], use_cpu=True, logging_steps=1, seed=0,
        disable_tqdm=True, lr_scheduler_type="cosine" if model_kind == "gpt2" else "linear")
    trainer = Trainer(model=model, args=args, train_dataset=Examples())
    trainer.train()
    shutil.move(str(out / "run" / "checkpoint-2"), str(out / "checkpoint-2"))
    shutil.rmtree(out / "run")
    trainer.save_model(str(out))


def _bert(folder: Path) -> None:
    _train(folder, "bert")


def _gpt2(folder: Path) -> None:
    _train(folder, "gpt2")


WRITERS: tuple[Writer, ...] = (
    Writer("trainer-bert", "transformers.Trainer", _bert),
    Writer("trainer-gpt2", "transformers.Trainer", _gpt2),
)
