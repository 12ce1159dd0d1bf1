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
import functools
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from auditor.formats._lib.protowire import Field
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
    root = {**_fields("GraphDef"), **_fields("SavedModel")}  # a text file may hold either
    try:
        doc: dict[str, Any] | None = _Parser(text).message(root, 0)
    except _Unparsed:
        doc = None
    if doc is not None and "meta_graphs" in doc:
        tf_savedmodel.review_saved_model(doc, ctx)
        return ctx.result
    if doc is not None:
        count, ops = tf_savedmodel.check_graph(doc, ctx)
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
    """Text format read against the binary reader's schemas, one token of lookahead.

    Fields a schema names are kept (same names, same value kinds); the rest
    are parsed and dropped, so memory follows the graph's structure, not the
    size of its constants. Nesting is bounded.
    """

    def __init__(self, text: bytes) -> None:
        self.tokens = _TOKEN.finditer(text)
        self.end = 0
        self.current: tuple[str | None, bytes, bool] | None = None
        self.advance()

    def advance(self) -> None:
        for match in self.tokens:
            if match.lastgroup in ("space", "comment"):
                continue
            self.current = (match.lastgroup, match.group(), match.start() == self.end)
            self.end = match.end()
            return
        self.current = None

    def peek(self) -> bytes:
        return self.current[1] if self.current else b""

    def take(self) -> tuple[str | None, bytes]:
        if self.current is None:
            raise _Unparsed("unexpected end")
        kind, token, _ = self.current
        self.advance()
        return kind, token

    def message(self, fields: dict[str, Field] | None, depth: int,
                close: bytes = b"") -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _Unparsed("nested too deep")
        out: dict[str, Any] = {}
        while self.peek() != close:
            kind, name = self.take()
            if name == b"[":  # an extension or Any type URL: [type.googleapis.com/x.Y]
                while self.take()[1] != b"]":
                    pass
            elif kind != "name":
                raise _Unparsed(f"field name expected, got {name!r}")
            spec = (fields or {}).get(name.decode())
            colon = self.peek() == b":"
            if colon:
                self.take()
            values = []
            if self.peek() == b"[" and colon:
                self.take()
                while self.peek() != b"]":
                    values.append(self.value(spec, depth))
                    if self.peek() == b",":
                        self.take()
                self.take()
            else:
                values.append(self.value(spec, depth))
            if self.peek() in (b";", b","):
                self.take()
            kept = [v for v in values if v is not None]
            if spec is not None and kept:
                if spec.repeated:
                    out.setdefault(spec.name, []).extend(kept)
                else:
                    out[spec.name] = kept[-1]
        if close:
            self.take()
        return out

    def value(self, spec: Field | None, depth: int) -> Any:
        kind, token = self.take()
        if token in (b"{", b"<"):
            schema = _fields(spec.kind) if spec and spec.kind in tf_savedmodel.SCHEMAS else None
            found = self.message(schema, depth + 1, b"}" if token == b"{" else b">")
            return found if schema is not None else None
        if kind == "string":
            pieces = [_unquote(token)]
            while self.current is not None and self.current[0] == "string":
                pieces.append(_unquote(self.take()[1]))
            raw = b"".join(pieces)
        else:
            raw = token
            while self.current is not None and self.current[2] and self.peek() not in _PUNCTUATION:
                raw += self.take()[1]  # a number comes as several touching tokens: 1, e, -, 5
        return _scalar(raw, spec.kind if spec else "", kind == "string")


@functools.cache
def _fields(schema: str) -> dict[str, Field]:
    """A message's fields by name (built once per schema; callers only read it)."""
    return {f.name: f for f in tf_savedmodel.SCHEMAS[schema].values()}


def _scalar(raw: bytes, kind: str, quoted: bool) -> Any:
    if kind == "bytes":
        return raw
    if kind == "str":
        return raw.decode("utf-8", "replace")
    if kind == "int" and not quoted:
        try:
            return int(raw, 0)
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
    facts=("schema_version", "tensorflow_version", "tags", "operators", "op_types"),
)
