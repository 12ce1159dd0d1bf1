"""The bytes of an SBOM file → its JSON shape, with the same limits for every command.

`read_sbom` (policy check, gate, sbom diff, mirror) and `auditor sbom
validate` both read through here, so a document one of them refuses the other
does not accept: the same size cap, the same nesting limit, the same refusal
of duplicate JSON keys (JSON readers disagree on which of two values counts,
so a document could show one tool a finding and hide it from another) and of
XML document type declarations (cdxml.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.sbom.cdxml import MAX_DEPTH, looks_like_xml, to_json_shape

MAX_SBOM_BYTES = 256 * 1024 * 1024


def read_bytes(path: Path) -> bytes:
    """The file's bytes (at most one past MAX_SBOM_BYTES: `parse` refuses those), or
    UsageError when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_SBOM_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read SBOM: {exc.strerror or exc}") from None


def parse(data: bytes, where: str) -> Any:
    """CycloneDX JSON or XML bytes as the JSON shape; UsageError naming `where` if refused."""
    if len(data) > MAX_SBOM_BYTES:
        raise UsageError(f"{where}: larger than {MAX_SBOM_BYTES} bytes")
    if looks_like_xml(data):
        return to_json_shape(data, where)
    return parse_json(data, where)


def parse_json(data: bytes, where: str) -> Any:
    """JSON text with no duplicate key and nested at most MAX_DEPTH deep, else UsageError."""
    repeated: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            repeated.append(True)
            return _Repeated(items)
        return out

    try:
        doc = json.loads(data.decode("utf-8-sig"), object_pairs_hook=pairs)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg} "
                         "(SBOMs are read as CycloneDX JSON or XML)") from None
    except RecursionError:
        raise UsageError(_too_deep(where)) from None
    _check_tree(doc, where, bool(repeated))
    return doc


class _Repeated(dict):  # type: ignore[type-arg]
    """An object in which a key appears twice; remembers which key."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__(items)
        seen: set[str] = set()
        self.key = ""
        for key, _ in items:
            if key in seen:
                self.key = key
                break
            seen.add(key)


def _check_tree(doc: Any, where: str, repeated: bool) -> None:
    """Refuse nesting past MAX_DEPTH and name the first duplicate key (walked without
    recursion, so a hostile document cannot exhaust the stack here)."""
    stack: list[tuple[Any, str, int]] = [(doc, "$", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UsageError(_too_deep(where))
        if isinstance(value, dict):
            if repeated and isinstance(value, _Repeated):
                raise UsageError(f"{where}: {path}.{value.key}: duplicate key (JSON readers "
                                 "disagree on which value counts)")
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in reversed(
                list(enumerate(value))))


def _too_deep(where: str) -> str:
    return f"{where}: nested too deeply to be an SBOM (more than {MAX_DEPTH} levels)"
