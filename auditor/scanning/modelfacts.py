"""Facts about a model as a whole, gathered from the facts of its files.

Format modules only see one file; the SBOM and policies need the model's view:
what its card declares, which weight formats it ships, whether loading it may
import code. This module derives that view from the file reports alone, so
every source (local folder, cache, Hub) gets the same facts the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditor.model import FileReport, FormatId

# Content formats that hold weights.
WEIGHT_FORMATS = frozenset({
    FormatId.SAFETENSORS, FormatId.GGUF, FormatId.PICKLE, FormatId.PYTORCH_ZIP,
    FormatId.PYTORCH_LEGACY, FormatId.PYTORCH_TAR, FormatId.TORCHSCRIPT, FormatId.NUMPY,
    FormatId.NPZ, FormatId.JOBLIB, FormatId.ONNX, FormatId.KERAS, FormatId.KERAS_H5,
    FormatId.HDF5, FormatId.TFLITE, FormatId.TF_SAVEDMODEL, FormatId.MSGPACK,
})

# Top-level file name (lower-cased) and the format it must have -> the model fact it provides.
FILE_FACTS: tuple[tuple[str, FormatId, str], ...] = (
    ("readme.md", FormatId.MODELCARD, "card"),
    ("config.json", FormatId.JSON, "config"),
    ("generation_config.json", FormatId.JSON, "generation_config"),
    ("tokenizer_config.json", FormatId.JSON, "tokenizer_config"),
)

# (format, fact key) of organisations the artifacts themselves name as their origin.
DECLARED_ORIGIN: tuple[tuple[FormatId, str], ...] = (
    (FormatId.MODELCARD, "model_creator"),
    (FormatId.GGUF, "organization"),
)


def is_weights(fmt: str) -> bool:
    return fmt in WEIGHT_FORMATS


def is_code(report: FileReport) -> bool:
    """A Python file a `trust_remote_code` loader could import."""
    return report.format == FormatId.PYTHON or report.path.lower().endswith(".py")


def model_facts(files: Sequence[FileReport]) -> dict[str, Any]:
    """`ModelReport.facts` from the file reports (keys documented in docs/architecture.md)."""
    facts: dict[str, Any] = {}
    for report in files:
        for name, fmt, key in FILE_FACTS:
            if report.path.lower() == name and report.format == fmt:
                facts[key] = dict(report.facts)
    facts["formats"] = sorted({f.format for f in files if is_weights(f.format)})
    facts["remote_code"] = _remote_code(files, facts)
    parameters = _parameters(files)
    if parameters:
        facts["parameters"] = parameters
    origins = sorted({
        str(f.facts[key]) for f in files for fmt, key in DECLARED_ORIGIN
        if f.format == fmt and isinstance(f.facts.get(key), str) and f.facts[key].strip()
    })
    if origins:
        facts["declared_origins"] = origins
    templates = sorted(f.path for f in files if f.facts.get("has_chat_template") is True)
    if templates:
        facts["chat_templates"] = templates
    gguf = _gguf(files)
    if gguf:
        facts["gguf"] = gguf
    return facts


def _remote_code(files: Sequence[FileReport], facts: dict[str, Any]) -> dict[str, Any]:
    auto_map: dict[str, Any] = {}
    for source in ("config", "tokenizer_config"):
        entries = facts.get(source, {}).get("auto_map")
        if isinstance(entries, dict):
            auto_map.update(entries)
    code = sorted(f.path for f in files if is_code(f))
    return {"present": bool(code or auto_map), "files": code, "auto_map": auto_map}


def _gguf(files: Sequence[FileReport]) -> dict[str, Any]:
    """What the GGUF files say of the model: llama.cpp repositories often have no config.json."""
    ggufs = [f.facts for f in files if f.format == FormatId.GGUF]
    if not ggufs:
        return {}
    bases: list[Any] = []
    for g in ggufs:
        bases += [b for b in g.get("base_models", []) if b not in bases]
    return {
        "architectures": sorted({g["architecture"] for g in ggufs
                                 if isinstance(g.get("architecture"), str)}),
        "quantizations": sorted({g["quantization"] for g in ggufs
                                 if isinstance(g.get("quantization"), str)}),
        "base_models": bases,
    }


def _parameters(files: Sequence[FileReport]) -> int:
    """Parameter count of the largest weight set (a repo may ship the same weights twice)."""
    by_format: dict[str, int] = {}
    for f in files:
        count = f.facts.get("parameters")
        if is_weights(f.format) and isinstance(count, int) and not isinstance(count, bool):
            by_format[f.format] = by_format.get(f.format, 0) + count
    return max(by_format.values(), default=0)
