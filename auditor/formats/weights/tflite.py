"""TensorFlow Lite (`.tflite`): a FlatBuffer walked by hand to its operator codes.

A TFLite model runs built-in kernels unless an operator code says otherwise:
a custom code needs a native kernel the application registers (someone's
compiled code), and `Flex*` codes run full TensorFlow kernels through the
Flex delegate — including the file and Python operators a SavedModel can
hold. Only the tables needed are read (Model, OperatorCode, SubGraph,
Operator, Metadata), each offset checked against the file before use; tensor
buffers are never read.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.weights import tf_savedmodel
from auditor.model import FormatId, FormatResult, Rule, Severity

CUSTOM_OP = Rule(
    "AUD-TFL-001", Severity.HIGH, "TFLite custom operator (native kernel required)",
    "A custom operator runs only with a kernel the application registers: running the model "
    "means running that native code, which is not in the model and was not reviewed.",
    "Use built-in operators, or review and pin the custom kernel library.",
)
FLEX_OP = Rule(
    "AUD-TFL-002", Severity.MEDIUM, "TFLite Flex operator (runs TensorFlow kernels)",
    "Flex operators run TensorFlow kernels through the Flex delegate: a much larger attack "
    "surface than TFLite's built-ins, and a way to reach TensorFlow operators.",
    "Convert the model with built-in operators only, if possible.",
)
FLEX_DANGEROUS = Rule(
    "AUD-TFL-003", Severity.HIGH, "TFLite Flex operator that touches files or runs Python",
    "The Flex delegate runs this TensorFlow operator as it would in a SavedModel: it reads or "
    "writes host files or calls Python.",
    "Refuse the model unless this access is expected.",
)
MALFORMED = Rule(
    "AUD-TFL-004", Severity.HIGH, "TFLite FlatBuffer is malformed",
    "Offsets outside the file or broken tables crash or mislead interpreters that trust them "
    "(the TFLite runtime verifies little).",
    "Re-convert the model with the TFLite converter.",
)
RULES = (CUSTOM_OP, FLEX_OP, FLEX_DANGEROUS, MALFORMED)

IDENTIFIER = b"TFL3"
BUILTIN_CUSTOM = 32
MAX_VECTOR = 1_000_000  # entries in one vector we walk (operators, codes)
MAX_TEXT = 1 << 20


def sniff(head: bytes, name: str) -> bool:
    return len(head) >= 8 and head[4:8] == IDENTIFIER


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    if ctx.size is None or not f.seekable():
        raise FormatError("a FlatBuffer needs a seekable stream of known size", 0, MALFORMED)
    fb = _FlatBuffer(f, ctx.size)
    model = fb.table(fb.u32(0))
    codes = [_opcode(fb, fb.table(t)) for t in fb.tables(model, 1)]
    operators = 0
    for sub in fb.tables(model, 2):
        for op in fb.tables(fb.table(sub), 3):
            operators += 1
            index = fb.scalar(fb.table(op), 0, "<I", 0)
            if index >= len(codes):
                raise FormatError(f"operator uses opcode {index} of {len(codes)}", op, MALFORMED)
    custom = sorted({c for b, c in codes if b == BUILTIN_CUSTOM and c})
    for name in custom:
        if name.startswith("Flex"):
            tf_rule = tf_savedmodel.OPS.get(name[4:])
            if tf_rule is not None:
                ctx.add(FLEX_DANGEROUS, f"{name}: {tf_rule.title}")
            else:
                ctx.add(FLEX_OP, name)
        else:
            ctx.add(CUSTOM_OP, name)
    if any(b == BUILTIN_CUSTOM and not c for b, c in codes):
        ctx.add(CUSTOM_OP, "custom operator without a name")
    for k, buffer in enumerate(fb.tables(model, 4)):
        _check_buffer(fb, fb.table(buffer), k)
    metadata = [fb.string(fb.table(t), 0) for t in fb.tables(model, 6)]
    ctx.result.facts.update({
        "schema_version": fb.scalar(model, 0, "<I", 0),
        "description": fb.string(model, 3),
        "subgraphs": len(fb.tables(model, 2)),
        "operator_codes": len(codes),
        "operators": operators,
        "builtin_codes": sorted({b for b, _ in codes if b != BUILTIN_CUSTOM}),
        "custom_ops": custom,
        "metadata": sorted(m for m in metadata if m),
    })
    return ctx.result


def _check_buffer(fb: _FlatBuffer, table: int, index: int) -> None:
    """Tensor bytes stay inside the file: inline `data`, or `offset`/`size` (models > 2 GB)."""
    data = fb.field(table, 0)
    if data is not None:
        start = data + fb.u32(data)
        fb.check(start + 4, fb.u32(start))
    offset, size = fb.scalar(table, 1, "<Q", 0), fb.scalar(table, 2, "<Q", 0)
    if offset and offset + size > fb.size:
        raise FormatError(f"buffer {index}: bytes {offset}..{offset + size} beyond the file",
                          table, MALFORMED)


def _opcode(fb: _FlatBuffer, table: int) -> tuple[int, str]:
    deprecated = fb.scalar(table, 0, "<b", 0)
    builtin = fb.scalar(table, 3, "<i", 0)
    return max(deprecated, builtin), fb.string(table, 1)


class _FlatBuffer:
    """Bounded FlatBuffer access: every offset is checked against the file size first."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size

    def check(self, at: int, n: int) -> None:
        if at < 0 or n < 0 or at + n > self.size:
            raise FormatError(f"offset {at} (+{n}) outside the {self.size}-byte file", at,
                              MALFORMED)

    def read(self, at: int, n: int) -> bytes:
        self.check(at, n)
        self.f.seek(at)
        data = self.f.read(n)
        if len(data) < n:
            raise FormatError("file shorter than its size", at, MALFORMED)
        return data

    def u32(self, at: int) -> int:
        return int(struct.unpack("<I", self.read(at, 4))[0])

    def table(self, at: int) -> int:
        """Validate the table at `at` and its vtable; return `at`."""
        vtable = at - struct.unpack("<i", self.read(at, 4))[0]
        vsize, _ = struct.unpack("<HH", self.read(vtable, 4))
        if vsize < 4 or vsize % 2:
            raise FormatError(f"vtable of size {vsize}", vtable, MALFORMED)
        self.read(vtable, vsize)
        return at

    def field(self, table: int, index: int) -> int | None:
        vtable = table - struct.unpack("<i", self.read(table, 4))[0]
        vsize = struct.unpack("<H", self.read(vtable, 2))[0]
        if 4 + 2 * index + 2 > vsize:
            return None
        offset = struct.unpack("<H", self.read(vtable + 4 + 2 * index, 2))[0]
        return table + offset if offset else None

    def scalar(self, table: int, index: int, fmt: str, default: Any) -> Any:
        at = self.field(table, index)
        if at is None:
            return default
        return struct.unpack(fmt, self.read(at, struct.calcsize(fmt)))[0]

    def _vector(self, table: int, index: int) -> tuple[int, int] | None:
        at = self.field(table, index)
        if at is None:
            return None
        vec = at + self.u32(at)
        length = self.u32(vec)
        if length > MAX_VECTOR:
            raise LimitExceeded(f"vector of {length} entries", vec)
        return vec + 4, length

    def tables(self, table: int, index: int) -> list[int]:
        """The tables a vector-of-tables field points to."""
        vec = self._vector(table, index)
        if vec is None:
            return []
        start, length = vec
        raw = self.read(start, 4 * length)
        return [start + 4 * k + v for k, v in enumerate(struct.unpack(f"<{length}I", raw))]

    def string(self, table: int, index: int) -> str:
        vec = self._vector(table, index)
        if vec is None:
            return ""
        start, length = vec
        if length > MAX_TEXT:
            raise LimitExceeded(f"{length}-byte string", start)
        try:
            return self.read(start, length).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("string is not valid UTF-8", start, MALFORMED) from None


SPEC = FormatSpec(
    id=FormatId.TFLITE, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("schema_version", "description", "subgraphs", "operator_codes", "operators",
           "builtin_codes", "custom_ops", "metadata"),
)
