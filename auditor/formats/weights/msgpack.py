"""Flax `.msgpack` checkpoints: msgpack maps of arrays, read by a bounded hand-written reader.

msgpack is data only, but its extension types are handed to whatever
`ext_hook` the loader installs. Flax defines three (1 ndarray, 2 complex,
3 numpy scalar), each itself a small msgpack value; any other code is
reported, since it means a loader-specific hook decides what it becomes.
Array payloads are checked against their shape and dtype and skipped, never
read into memory, so memory stays flat however large the checkpoint is.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.bounded import ForwardReader
from auditor.formats._lib.streams import ReplayReader
from auditor.formats.archives import leftover
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

MALFORMED = Rule(
    "AUD-MSGP-001", Severity.HIGH, "msgpack data is malformed",
    "An invalid marker, text that is not UTF-8 or bytes after the top-level value are read "
    "differently (or refused) by msgpack implementations, so the loader may see other data.",
    "Re-save the checkpoint with flax.serialization.",
)
BOUNDS = Rule(
    "AUD-MSGP-002", Severity.HIGH, "msgpack length or count beyond the file or limits",
    "A length or element count larger than the file, or nesting deeper than any checkpoint, "
    "is a truncated file or an attempt to make a reader allocate or recurse without bound.",
    "Obtain the checkpoint again; re-save it with flax.serialization.",
)
EXTENSION = Rule(
    "AUD-MSGP-003", Severity.MEDIUM, "msgpack extension type Flax does not define",
    "Extension payloads are turned into objects by the loader's ext_hook; a code outside "
    "Flax's ndarray/complex/scalar set depends on whatever hook a custom loader installs.",
    "Re-save the checkpoint with flax.serialization.",
)
ARRAY = Rule(
    "AUD-MSGP-004", Severity.HIGH, "Flax array payload inconsistent with its shape and dtype",
    "An array whose byte length does not match shape x dtype, or whose dtype is not numeric "
    "(object arrays), hides extra bytes or asks numpy for something other than numbers.",
    "Re-save the checkpoint with flax.serialization.",
)
RULES = (MALFORMED, BOUNDS, EXTENSION, ARRAY)

MAX_DEPTH = 64
MAX_VALUES = 10_000_000  # values per file: checkpoints hold thousands of leaves, not millions
EXT_NDARRAY, EXT_COMPLEX, EXT_SCALAR = 1, 2, 3

# dtype name -> item size in bits (what flax writes with arr.dtype.name)
DTYPE_BITS: dict[str, int] = {
    "bool": 8, "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "int32": 32, "uint32": 32,
    "int64": 64, "uint64": 64, "float16": 16, "bfloat16": 16, "float32": 32, "float64": 64,
    "complex64": 64, "complex128": 128, "int4": 4, "uint4": 4, "int2": 2, "uint2": 2,
    "float8_e4m3fn": 8, "float8_e5m2": 8, "float8_e4m3b11fnuz": 8, "float8_e4m3fnuz": 8,
    "float8_e5m2fnuz": 8, "float8_e3m4": 8, "float8_e4m3": 8, "float8_e8m0fnu": 8,
    "float4_e2m1fn": 4,
}


@dataclass
class _Reader(ForwardReader):
    bounds_rule = BOUNDS
    f: BinaryIO
    end: int | None  # bytes this value may use, None when unknown
    pos: int = 0

    def room(self, n: int, what: str) -> None:
        if self.end is not None and n > self.end - self.pos:
            raise FormatError(f"{what} of {n} bytes at offset {self.pos} runs past the end "
                              f"({self.end - self.pos} bytes left)", self.pos, BOUNDS)

    def uint(self, width: int, what: str) -> int:
        return int.from_bytes(self.take(width, what), "big")


@dataclass
class _Facts:
    values: int = 0
    tensors: int = 0
    parameters: int = 0
    dtypes: set[str] = field(default_factory=set)


def sniff(head: bytes, name: str) -> bool:
    """A map with at least one entry whose first key is a string (Flax state dicts).

    0x80 (an empty map) is excluded: it is also the start of every pickle.
    """
    if len(head) < 2:
        return False
    first, second = head[0], head[1]
    is_map = 0x81 <= first <= 0x8F or first in (0xDE, 0xDF)
    if first in (0xDE, 0xDF):
        width = 2 if first == 0xDE else 4
        if len(head) < 1 + width + 1 or int.from_bytes(head[1:1 + width], "big") == 0:
            return False
        second = head[1 + width]
    return is_map and (0xA0 <= second <= 0xBF or second in (0xD9, 0xDA, 0xDB))


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    r = _Reader(f, ctx.size)
    facts = _Facts()
    _value(r, ctx, facts, 0)
    _after_value(f, r.pos, ctx)
    ctx.result.facts.update({"tensors": facts.tensors, "parameters": facts.parameters,
                             "dtypes": sorted(facts.dtypes)})
    return ctx.result


def _after_value(f: BinaryIO, pos: int, ctx: ScanContext) -> None:
    """Bytes after the top-level value: flagged, and scanned as what they are (a pickle
    appended to a checkpoint is graded as a pickle, not only as trailing bytes)."""
    where = "after the msgpack value"
    if ctx.size is not None and f.seekable():
        if pos < ctx.size:
            ctx.add(MALFORMED, f"{ctx.size - pos} bytes after the top-level value", offset=pos)
            leftover.scan_range(ctx, f, pos, ctx.size, where)
        return
    first = f.read(1)
    if first:
        ctx.add(MALFORMED, "bytes after the top-level value", offset=pos)
        leftover.scan_rest(ctx, ReplayReader(first, f), pos, where)  # type: ignore[arg-type]


def _value(r: _Reader, ctx: ScanContext, facts: _Facts, depth: int) -> Any:
    """Read one value; return it when it is small (ints, strings, lists of those), else None."""
    if depth > MAX_DEPTH:
        raise FormatError(f"values nested deeper than {MAX_DEPTH}", r.pos, BOUNDS)
    facts.values += 1
    if facts.values > MAX_VALUES:
        raise LimitExceeded(f"more than {MAX_VALUES} values", r.pos)
    at = r.pos
    b = r.take(1, "marker")[0]
    if b <= 0x7F:
        return b
    if b >= 0xE0:
        return b - 0x100
    if b <= 0x8F:
        return _map(r, b & 0x0F, ctx, facts, depth)
    if b <= 0x9F:
        return _array(r, b & 0x0F, ctx, facts, depth)
    if b <= 0xBF:
        return _str(r, b & 0x1F, at, ctx)
    if b in (0xC0, 0xC2, 0xC3):
        return None if b == 0xC0 else b == 0xC3
    if b in (0xC4, 0xC5, 0xC6):
        n = r.uint(1 << (b - 0xC4), "bin length")
        r.skip(n, "bin payload")
        return None
    if b in (0xC7, 0xC8, 0xC9):
        n = r.uint(1 << (b - 0xC7), "ext length")
        return _ext(r, n, at, ctx, facts, depth)
    if b in (0xCA, 0xCB):
        return struct.unpack(">f" if b == 0xCA else ">d", r.take(4 if b == 0xCA else 8, "float"))[0]
    if 0xCC <= b <= 0xD3:
        width = 1 << ((b - 0xCC) % 4)
        return int.from_bytes(r.take(width, "integer"), "big", signed=b >= 0xD0)
    if 0xD4 <= b <= 0xD8:
        return _ext(r, 1 << (b - 0xD4), at, ctx, facts, depth)
    if b in (0xD9, 0xDA, 0xDB):
        return _str(r, r.uint(1 << (b - 0xD9), "str length"), at, ctx)
    if b in (0xDC, 0xDD):
        return _array(r, r.uint(2 if b == 0xDC else 4, "array length"), ctx, facts, depth)
    if b in (0xDE, 0xDF):
        return _map(r, r.uint(2 if b == 0xDE else 4, "map length"), ctx, facts, depth)
    raise FormatError(f"invalid marker 0x{b:02x}", at, MALFORMED)  # 0xc1


def _count(r: _Reader, n: int, per_item: int, ctx: ScanContext, what: str) -> None:
    """Refuse a count whose items cannot fit in the bytes left, or beyond the element limit."""
    r.room(n * per_item, f"{what} of {n} items")
    if n > ctx.limits.max_elements:
        raise LimitExceeded(f"{what} of {n} items exceeds the limit of {ctx.limits.max_elements}",
                            r.pos)


def _array(r: _Reader, n: int, ctx: ScanContext, facts: _Facts, depth: int) -> Any:
    _count(r, n, 1, ctx, "array")
    items = [_value(r, ctx, facts, depth + 1) for _ in range(n)]
    return items if n <= 64 else None


def _map(r: _Reader, n: int, ctx: ScanContext, facts: _Facts, depth: int) -> None:
    _count(r, n, 2, ctx, "map")
    for _ in range(n):
        _value(r, ctx, facts, depth + 1)
        _value(r, ctx, facts, depth + 1)


def _str(r: _Reader, n: int, at: int, ctx: ScanContext) -> str | None:
    if n > ctx.limits.max_string_bytes:
        r.room(n, "str")
        raise LimitExceeded(f"str of {n} bytes exceeds the {ctx.limits.max_string_bytes}-byte "
                            "limit", at)
    raw = r.take(n, "str")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        ctx.add(MALFORMED, "str is not valid UTF-8", offset=at)
        return None
    return text if n <= 256 else None


def _ext(r: _Reader, n: int, at: int, ctx: ScanContext, facts: _Facts, depth: int) -> None:
    code = int.from_bytes(r.take(1, "ext type"), "big", signed=True)
    r.room(n, "ext payload")
    if code not in (EXT_NDARRAY, EXT_COMPLEX, EXT_SCALAR):
        ctx.add(EXTENSION, f"extension type {code} ({n} bytes)", offset=at)
        r.skip(n, "ext payload")
        return
    inner = _Reader(r.f, r.pos + n, r.pos)
    if code == EXT_COMPLEX:
        parts = _value(inner, ctx, facts, depth + 1)
        if not (isinstance(parts, list) and len(parts) == 2
                and all(isinstance(p, (int, float)) for p in parts)):
            ctx.add(ARRAY, "complex payload is not a (real, imag) pair", offset=at)
    else:
        _ndarray(inner, at, ctx, facts, depth + 1)
    if inner.pos != inner.end:
        raise FormatError(f"ext payload declares {n} bytes but its value ends after "
                          f"{inner.pos - r.pos}", at, MALFORMED)
    r.pos = inner.pos


def _ndarray(r: _Reader, at: int, ctx: ScanContext, facts: _Facts, depth: int) -> None:
    """Flax's ndarray payload: msgpack [shape, dtype name, buffer]; the buffer is skipped."""
    head = r.take(1, "ndarray payload")[0]
    if head != 0x93:
        raise FormatError("ndarray payload is not a 3-element array", at, ARRAY)
    shape = _value(r, ctx, facts, depth + 1)
    dtype = _value(r, ctx, facts, depth + 1)
    marker = r.take(1, "ndarray buffer")[0]
    if marker not in (0xC4, 0xC5, 0xC6):
        raise FormatError("ndarray buffer is not bin data", at, ARRAY)
    nbytes = r.uint(1 << (marker - 0xC4), "ndarray buffer length")
    r.skip(nbytes, "ndarray buffer")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        ctx.add(ARRAY, f"shape {shape!r} is not a list of sizes", offset=at)
        return
    bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
    if bits is None:
        ctx.add(ARRAY, f"dtype {dtype!r} is not a numeric dtype", offset=at)
        return
    count = math.prod(shape)
    if count * bits != nbytes * 8:
        ctx.add(ARRAY, f"{dtype}{shape} needs {count * bits / 8:g} bytes, buffer has {nbytes}",
                offset=at)
    facts.tensors += 1
    facts.parameters += count
    facts.dtypes.add(dtype)


SPEC = FormatSpec(
    id=FormatId.MSGPACK, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("tensors", "parameters", "dtypes"),
)
