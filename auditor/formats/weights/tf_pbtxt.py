"""TensorFlow graphs in protobuf text format (`saved_model.pbtxt`, `*.pbtxt`).

TensorFlow loads `saved_model.pbtxt` as readily as `saved_model.pb`, so a
graph in text form must not escape the operator review by being "just text".
The text format is not parsed in full: every `op: "Name"` field (the NodeDef
operator, in graphs and function bodies alike) is extracted and looked up in
the same table as binary graphs. The name decides the format here, as text
has no signature; the content must still be text.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO

from auditor.formats._lib.streams import read_capped
from auditor.formats._lib.text import is_text
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.weights import tf_savedmodel
from auditor.model import FormatId, FormatResult

RULES = ()  # raises the TensorFlow rules of tf_savedmodel

# Text-format tokens: whitespace, comments, quoted strings (either quote, C escapes), names.
_TOKEN = re.compile(
    rb"""(?P<space>\s+)|(?P<comment>#[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    rb"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.)",
    re.DOTALL,
)


def sniff(head: bytes, name: str) -> bool:
    return name.lower().endswith(".pbtxt") and is_text(head)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    text = read_capped(f, ctx.limits.max_json_bytes, "text graph")
    ops: dict[str, int] = {}
    for line, op in operators(text):
        ops[op] = ops.get(op, 0) + 1
        rule = tf_savedmodel.OPS.get(op)
        if rule is not None:
            ctx.add(rule, f"line {line}: {op}")
    ctx.result.facts.update({"operators": sum(ops.values()), "op_types": sorted(ops)})
    return ctx.result


def operators(text: bytes) -> Iterator[tuple[int, str]]:
    """(line, value) of every `op` field, however it is spaced, commented, quoted or split.

    The text format lets a string be written as adjacent quoted pieces
    (`op: "Read" 'File'`) with comments between tokens, so fields are found
    by tokenizing (one pass, constant memory), not by matching lines.
    """
    line, counted = 1, 0
    prev = b""
    pieces: list[bytes] | None = None  # collecting the value of an `op` field
    at = 0
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind in ("space", "comment"):
            continue
        if pieces is not None:
            if kind == "string":
                pieces.append(_unquote(value))
                continue
            if not (value == b":" and not pieces):
                if pieces:
                    line += text.count(b"\n", counted, at)
                    counted = at
                    yield line, b"".join(pieces).decode("utf-8", "replace")
                pieces = None
        if kind == "name" and value == b"op" and prev != b":":
            pieces, at = [], match.start()
        prev = value
    if pieces:
        yield line + text.count(b"\n", counted, at), b"".join(pieces).decode("utf-8", "replace")


def _unquote(token: bytes) -> bytes:
    try:
        return codecs.escape_decode(token[1:-1])[0]
    except ValueError:  # an invalid escape: the loader rejects it; keep the raw text
        return token[1:-1]


SPEC = FormatSpec(
    id=FormatId.TF_PBTXT, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("operators", "op_types"),
)
