"""The format modules, in the order their `sniff` is tried.

Each module named here exposes:

- `NAME: str` — the format name used in reports and the SBOM;
- `RULES: tuple[Rule, ...]` — every rule it can raise (the rule catalogue);
- `sniff(head: bytes, name: str) -> bool` — does this content belong to me?
  Decided from the first bytes (`head`), never from the extension alone;
- `scan(f: BinaryIO, ctx: ScanContext) -> FormatResult` — parse without
  executing anything; fill and return `ctx.result`; raise `FormatError` for a
  malformed stream and `LimitExceeded` for a limit hit. Heavy libraries are
  imported inside `scan`, so start-up stays fast.

Adding a format is adding a module and one line here. More specific sniffers
come first (a PyTorch zip before a generic zip).
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

FORMAT_MODULES: tuple[str, ...] = (
    "weights.safetensors",
    "weights.gguf",
    "pickle.numpy",
    "pickle.torch_zip",
    "weights.keras",
    "weights.hdf5",
    "weights.onnx",
    "weights.tf_savedmodel",
    "weights.tflite",
    "code.sentencepiece",
    "weights.msgpack",
    "archives.archive",
    "pickle.torch_legacy",
    "pickle.plain",
    "code.modelcard",
    "code.jinja",
    "code.python",
    "weights.tf_pbtxt",
    "code.yaml_config",
    "code.json_config",
)


@cache
def registry() -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"auditor.formats.{name}") for name in FORMAT_MODULES)
