"""Fixture builders: every test artifact is made by code here, never downloaded."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}


def damaged(base: bytes, rng: random.Random, count: int, flips: int) -> Iterator[bytes]:
    """`count` copies of `base` with 1 to `flips` random bytes changed, one in five also cut short.

    The damage of the never-crash tests: whatever comes out, the scanner must
    answer with findings, never an internal error.
    """
    for _ in range(count):
        data = bytearray(base)
        for _ in range(rng.randint(1, flips)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        yield bytes(data[: rng.randrange(len(data))] if rng.random() < 0.2 else data)


def varint(n: int) -> bytes:
    """A protobuf base-128 varint: the one encoder of the hand-written protobuf fixtures."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def safetensors_bytes(
    tensors: dict[str, tuple[str, list[int]]],
    metadata: dict[str, str] | None = None,
    *,
    header_override: dict | None = None,
    trailing: bytes = b"",
) -> bytes:
    """A safetensors file with deterministic tensor contents (a counting byte pattern)."""
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = bytearray()
    for name, (dtype, shape) in tensors.items():
        n = DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes(i % 251 for i in range(n))
    if header_override is not None:
        header = header_override
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(data) + trailing


TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 16,
    "num_attention_heads": 2,
    "num_hidden_layers": 1,
    "vocab_size": 32,
    "torch_dtype": "float32",
}

TINY_CARD = """---
license: apache-2.0
base_model: example-org/tiny-base
base_model_relation: finetune
pipeline_tag: text-generation
language:
- en
tags:
- example
datasets:
- example-org/tiny-corpus
---

# tiny-model

A deliberately tiny Llama-shaped model bundled with auditor as a scan example.
Its weights are a counting byte pattern, not a trained network.
"""


def write_tiny_model(folder: Path) -> Path:
    """The bundled example: safetensors weights, config.json and a model card."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(
        safetensors_bytes(
            {
                "model.embed_tokens.weight": ("F32", [32, 16]),
                "model.layers.0.mlp.down_proj.weight": ("F32", [16, 16]),
                "lm_head.weight": ("F32", [32, 16]),
            },
            {"format": "pt"},
        )
    )
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG, indent=2) + "\n")
    (folder / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 1, "eos_token_id": 2}, indent=2) + "\n"
    )
    (folder / "README.md").write_text(TINY_CARD)
    return folder


if __name__ == "__main__":
    import sys

    write_tiny_model(Path(sys.argv[1] if len(sys.argv) > 1 else "examples/tiny-model"))
