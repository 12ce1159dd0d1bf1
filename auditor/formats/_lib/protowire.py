"""A bounded protobuf wire reader driven by schema tables: ONNX and SavedModel share it.

Why not the generated message classes: they need the whole message in memory
(an ONNX file with embedded weights is up to 2 GB) and parse everything. This
reader streams, keeps only the fields a schema table names (operator types,
domains, external-data entries, ...) and skips the rest (tensor bytes) by
seeking, so memory stays flat however large the weights are. Small
sub-messages are read into memory in one go, which keeps it fast.

Every length is checked against its enclosing message before anything is
read; counts, nesting and string sizes have limits. A violation is a
`FormatError` (malformed) or `LimitExceeded` (limit) with the byte offset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded

VARINT, I64, LEN, I32 = 0, 1, 2, 5
INLINE_BYTES = 16 << 20  # sub-messages up to this size are parsed from memory
MAX_TEXT = 1 << 20  # a kept string field (names, paths): real ones are short
MAX_DEPTH = 64  # message nesting (graphs inside attributes inside graphs ...)
MAX_MESSAGES = 5_000_000  # kept messages per file: a model's structure, not its weights


@dataclass(frozen=True)
class Field:
    """One kept field: `kind` is "int", "str", "bytes" or the name of a message schema."""

    name: str
    kind: str
    repeated: bool = False


Schema = dict[int, Field]


@dataclass
class _Budget:
    messages: int = 0
    limit: int = MAX_MESSAGES


class _Stream:
    """Reads a seekable (or forward-only) stream, tracking the absolute offset."""

    def __init__(self, f: BinaryIO, start: int = 0) -> None:
        self.f = f
        self.pos = start

    def byte(self) -> int:
        b = self.f.read(1)
        if not b:
            raise FormatError("truncated protobuf (unexpected end of file)", self.pos)
        self.pos += 1
        return b[0]

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) < n:
            raise FormatError("truncated protobuf (unexpected end of file)", self.pos + len(data))
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if self.f.seekable():
            self.f.seek(n, os.SEEK_CUR)
            self.pos += n
            return
        while n:
            self.take(min(n, 1 << 20))
            n -= min(n, 1 << 20)


class _Buffer:
    """The same interface over bytes already in memory; `base` is their file offset."""

    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.base = base
        self.i = 0

    @property
    def pos(self) -> int:
        return self.base + self.i

    def byte(self) -> int:
        if self.i >= len(self.data):
            raise FormatError("truncated protobuf", self.pos)
        self.i += 1
        return self.data[self.i - 1]

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.data):
            raise FormatError("truncated protobuf", self.pos)
        self.i += n
        return self.data[self.i - n : self.i]

    def skip(self, n: int) -> None:
        if self.i + n > len(self.data):
            raise FormatError("truncated protobuf", self.pos)
        self.i += n

    def varint(self) -> int:
        """Decoded in a local loop: this is the parser's innermost step."""
        data, i = self.data, self.i
        value = shift = 0
        while i < len(data):
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                self.i = i
                return value
            shift += 7
            if shift >= 70:
                raise FormatError("varint longer than 10 bytes", self.pos)
        raise FormatError("truncated protobuf", self.pos)


def _varint(r: _Stream | _Buffer) -> int:
    if isinstance(r, _Buffer):
        return r.varint()
    at = r.pos
    value = shift = 0
    while True:
        b = r.byte()
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7
        if shift >= 70:
            raise FormatError("varint longer than 10 bytes", at)


def read_message(
    f: BinaryIO, size: int, schemas: dict[str, Schema], root: str, *, start: int = 0
) -> dict[str, Any]:
    """Parse `size` bytes of `f` as message `root`; return the kept fields as nested dicts.

    Repeated fields are lists; absent fields are absent. Raises FormatError
    on malformed wire data and LimitExceeded past the limits above.
    """
    return _message(_Stream(f, start), start + size, schemas, root, 0, _Budget())


def read_head_fields(head: bytes, limit: int = 64) -> list[tuple[int, int, int, int]]:
    """The top-level (field number, wire type, value or length, offset) of `head`, for sniffing.

    Stops quietly at the end of `head` or at the first byte that cannot start
    a field; a length-delimited field may extend past `head`.
    """
    out: list[tuple[int, int, int, int]] = []
    r = _Buffer(head, 0)
    try:
        while r.i < len(head) and len(out) < limit:
            key = _varint(r)
            number, wire = key >> 3, key & 7
            if number == 0 or wire not in (VARINT, I64, LEN, I32):
                break
            value = _varint(r) if wire in (VARINT, LEN) else 0
            out.append((number, wire, value, r.i))
            if wire == LEN:
                if r.i + value > len(head):
                    break
                r.skip(value)
            elif wire != VARINT:
                r.skip(8 if wire == I64 else 4)
    except FormatError:
        pass
    return out


def _message(
    r: _Stream | _Buffer, end: int, schemas: dict[str, Schema], name: str, depth: int,
    budget: _Budget,
) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"protobuf messages nested deeper than {MAX_DEPTH}", r.pos)
    budget.messages += 1
    if budget.messages > budget.limit:
        raise LimitExceeded(f"more than {budget.limit} protobuf messages", r.pos)
    schema = schemas[name]
    out: dict[str, Any] = {}
    while r.pos < end:
        at = r.pos
        key = _varint(r)
        number, wire = key >> 3, key & 7
        if number == 0 or wire not in (VARINT, I64, LEN, I32):
            raise FormatError(f"{name}: invalid field key {key} (field {number}, wire type "
                              f"{wire})", at)
        value: Any
        if wire == VARINT:
            value = _varint(r)
        elif wire == LEN:
            length = _varint(r)
            if r.pos + length > end:
                raise FormatError(f"{name}: field {number} length {length} runs past its "
                                  "enclosing message", at)
        else:
            width = 8 if wire == I64 else 4
            if r.pos + width > end:
                raise FormatError(f"{name}: field {number} runs past its enclosing message", at)
            r.skip(width)
            continue
        spec = schema.get(number)
        if spec is None or (spec.kind == "int" and wire == LEN):
            if wire == LEN:  # unknown field, or a packed repeated number we do not keep
                r.skip(length)
            continue
        if (spec.kind == "int") != (wire == VARINT):
            raise FormatError(f"{name}.{spec.name}: wire type {wire} does not match the schema",
                              at)
        if spec.kind == "int":
            pass
        elif spec.kind in ("str", "bytes"):
            if length > MAX_TEXT:
                raise LimitExceeded(f"{name}.{spec.name}: {length}-byte string exceeds the "
                                    f"{MAX_TEXT}-byte limit", at)
            value = r.take(length)
            if spec.kind == "str":
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise FormatError(f"{name}.{spec.name}: string is not valid UTF-8",
                                      at) from None
        elif isinstance(r, _Stream) and length <= INLINE_BYTES:
            sub = _Buffer(r.take(length), r.pos - length)
            value = _message(sub, sub.base + length, schemas, spec.kind, depth + 1, budget)
        else:
            value = _message(r, r.pos + length, schemas, spec.kind, depth + 1, budget)
        if spec.repeated:
            out.setdefault(spec.name, []).append(value)
        else:
            out[spec.name] = value
    if r.pos != end:
        raise FormatError(f"{name}: last field runs past the end of the message", r.pos)
    return out

