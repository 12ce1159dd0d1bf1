"""TensorFlow graphs in protobuf text format (`saved_model.pbtxt`, `*.pbtxt`).

TensorFlow loads `saved_model.pbtxt` as readily as `saved_model.pb`, so a
graph in text form must not escape the operator review by being "just text".
The text is parsed into the same shape the binary reader gives (the fields
of `tf_savedmodel.SCHEMAS`, all others skipped) and reviewed by the same
code, data flow included. A text the parser does not accept is not loaded by
TensorFlow either, but its operators are still listed: every `op: "Name"`
field is extracted token by token and looked up in the same table. The name
decides the format here, as text has no signature; the content must still be
text.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from auditor.formats._lib.streams import read_capped
from auditor.formats._lib.text import is_text
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.weights import tf_savedmodel
from auditor.model import FormatId, FormatResult

RULES = ()  # raises the TensorFlow rules of tf_savedmodel
MAX_DEPTH = 64
_PUNCTUATION = frozenset({b"{", b"}", b"<", b">", b"[", b"]", b":", b";", b","})

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
    try:
        fields = _Parser(text).message(0)
    except _Unparsed:
        fields = None
    if fields is not None:
        root = "SavedModel" if "meta_graphs" in fields else "GraphDef"
        doc = _shape(fields, root)
        graphs = ([m.get("graph_def", {}) for m in doc.get("meta_graphs", [])]
                  if root == "SavedModel" else [doc])
        count, ops = 0, set()
        for graph in graphs:
            graph_count, graph_ops = tf_savedmodel.check_graph(graph, ctx)
            count += graph_count
            ops |= graph_ops
        ctx.result.facts.update({"operators": count, "op_types": sorted(ops)})
        return ctx.result
    counts: dict[str, int] = {}
    for line, op in operators(text):
        counts[op] = counts.get(op, 0) + 1
        rule = tf_savedmodel.OPS.get(op)
        if rule is not None:
            ctx.add(rule, f"line {line}: {op}")
    ctx.result.facts.update({"operators": sum(counts.values()), "op_types": sorted(counts)})
    return ctx.result


class _Unparsed(Exception):
    """The text is not a protobuf text message this reader accepts."""


class _Parser:
    """Text format → {field: [values]}: scalars as bytes, messages as dicts; bounded nesting."""

    def __init__(self, text: bytes) -> None:
        found = [m for m in _TOKEN.finditer(text) if m.lastgroup not in ("space", "comment")]
        self.tokens = [(m.lastgroup, m.group()) for m in found]
        self.glued = [i > 0 and found[i - 1].end() == m.start() for i, m in enumerate(found)]
        self.at = 0

    def peek(self) -> bytes:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else b""

    def take(self) -> tuple[str | None, bytes]:
        if self.at >= len(self.tokens):
            raise _Unparsed("unexpected end")
        self.at += 1
        return self.tokens[self.at - 1]

    def message(self, depth: int, close: bytes = b"") -> dict[str, list[Any]]:
        if depth > MAX_DEPTH:
            raise _Unparsed("nested too deep")
        fields: dict[str, list[Any]] = {}
        while self.peek() != close:
            kind, name = self.take()
            if name == b"[":  # an extension or Any type URL: [type.googleapis.com/x.Y]
                while self.take()[1] != b"]":
                    pass
            elif kind != "name":
                raise _Unparsed(f"field name expected, got {name!r}")
            colon = self.peek() == b":"
            if colon:
                self.take()
            values = fields.setdefault(name.decode(), [])
            if self.peek() == b"[" and colon:
                self.take()
                while self.peek() != b"]":
                    values.append(self.value(depth))
                    if self.peek() == b",":
                        self.take()
                self.take()
            else:
                values.append(self.value(depth))
            if self.peek() in (b";", b","):
                self.take()
        if close:
            self.take()
        return fields

    def value(self, depth: int) -> Any:
        kind, token = self.take()
        if token in (b"{", b"<"):
            return self.message(depth + 1, b"}" if token == b"{" else b">")
        if kind == "string":
            pieces = [_unquote(token)]
            while self.at < len(self.tokens) and self.tokens[self.at][0] == "string":
                pieces.append(_unquote(self.take()[1]))
            return b"".join(pieces)
        raw = token
        while (self.at < len(self.tokens) and self.glued[self.at]
               and self.peek() not in _PUNCTUATION):
            raw += self.take()[1]  # a number comes as several touching tokens: 1, e, -, 5 ...
        return raw


def _shape(fields: dict[str, list[Any]], schema: str) -> dict[str, Any]:
    """Keep the fields the binary reader keeps, with the same names and value kinds."""
    out: dict[str, Any] = {}
    for spec in tf_savedmodel.SCHEMAS[schema].values():
        values = [_kind(v, spec.kind) for v in fields.get(spec.name, [])]
        values = [v for v in values if v is not None]
        if values:
            out[spec.name] = values if spec.repeated else values[-1]
    return out


def _kind(value: Any, kind: str) -> Any:
    if isinstance(value, dict):
        return _shape(value, kind) if kind in tf_savedmodel.SCHEMAS else None
    if kind == "bytes":
        return value
    if kind == "str":
        return value.decode("utf-8", "replace")
    if kind == "int":
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


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
