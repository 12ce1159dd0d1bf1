"""A PEFT LoRA adapter folder, written by peft's save_pretrained on a tiny local GPT-2.

No download: the base model is built from a local GPT2Config with random
weights; the adapter folder holds adapter_config.json and
adapter_model.safetensors, as published adapters do.
"""

from __future__ import annotations

from pathlib import Path

from tests.benign import Writer


def _lora(folder: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16,
                        bos_token_id=0, eos_token_id=0)
    base = GPT2LMHeadModel(config)
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    get_peft_model(base, lora).save_pretrained(folder)


WRITERS: tuple[Writer, ...] = (Writer("peft-lora", "peft.save_pretrained", _lora),)
