""".npy arrays and .npz archives, read without numpy.

An .npy file is a magic, a version, a header that is a Python dict literal
(`descr`, `fortran_order`, `shape`) and the array bytes. The header is read
with `ast.literal_eval` on at most the size numpy itself accepts, which
builds literals and never calls anything. An object array (`|O` anywhere in
the dtype) is a pickle after the header — `np.load` with `allow_pickle` enabled
unpickles it — so those bytes go to the engine as a member. A numeric
array's byte count must match its shape and dtype: a shorter file does not
load, a longer one carries bytes nothing reads. An .npz is a zip of .npy
members, each scanned.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO

from auditor.errors import FormatError
from auditor.formats._lib.streams import SliceReader
from auditor.formats.archives import zip as archive_zip
from auditor.formats.archives.members import Layout, Role, peek
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

HEADER = Rule(
    "AUD-NPY-001", Severity.HIGH, "Invalid .npy header",
    "numpy refuses a header that is not a dict of descr, fortran_order and shape; a file that "
    "claims to be an array and is not one is hiding what it is.",
    "Re-save the array with numpy.save.",
)
SIZE = Rule(
    "AUD-NPY-002", Severity.HIGH, "Array data size does not match shape and dtype",
    "Bytes beyond what shape × itemsize needs are read by nothing and can carry a payload; "
    "fewer bytes mean a truncated or altered file.",
    "Re-save the array with numpy.save.",
)
OBJECT = Rule(
    "AUD-NPY-003", Severity.MEDIUM, "Object array: loading needs allow_pickle enabled",
    "An object-dtype array is stored as a pickle, and np.load with allow_pickle enabled runs "
    "it; the pickle was scanned, but whoever loads it must switch numpy's protection off.",
    "Store numeric arrays, or convert the objects to a data format (JSON, safetensors).",
    benign="numpy itself writes ragged arrays and Python objects this way; the embedded pickle "
    "was analysed on its own, the medium only says the loader must enable allow_pickle.",
)
HEADER_SIZE = Rule(
    "AUD-NPY-004", Severity.HIGH, ".npy header larger than numpy accepts",
    "numpy refuses headers over 10,000 bytes unless allow_pickle is enabled, which also "
    "enables pickles: an oversized header pushes users to switch protection off.",
    "Re-save the array with numpy.save.",
)
RULES = (HEADER, SIZE, OBJECT, HEADER_SIZE)

MAGIC = b"\x93NUMPY"
NUMPY_MAX_HEADER = 10_000  # numpy's default max_header_size
_HARD_MAX_HEADER = 1024 * 1024
_OBJECT_MEMBER = "object-array.pkl"
_DESCR = re.compile(r"([<>|=]?)([a-zA-Z?])(\d*)(\[\w+\])?")
_FIXED_SIZE = {"?": 1, "O": 8}
_SIZED_KINDS = frozenset("biufcSaVmM")


def sniff(head: bytes, name: str) -> bool:
    if head.startswith(MAGIC):
        return True
    if head.startswith(archive_zip.LOCAL_SIG) and len(head) >= 30:
        (nlen,) = struct.unpack_from("<H", head, 26)
        return head[30 : 30 + nlen].endswith(b".npy")
    return False


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    head, f = peek(f, len(MAGIC))
    if head != MAGIC:
        archive_zip.scan_zip(f, ctx, (NPZ_LAYOUT,))
        return ctx.result
    f.read(len(MAGIC))
    _scan_npy(f, ctx)
    return ctx.result


def _scan_npy(f: BinaryIO, ctx: ScanContext) -> None:
    version = f.read(2)
    if len(version) < 2 or version[0] not in (1, 2, 3):
        raise FormatError(f"unknown .npy version {version.hex()}", 6, HEADER)
    width = 2 if version[0] == 1 else 4
    raw_len = f.read(width)
    if len(raw_len) < width:
        raise FormatError("truncated .npy header", 8, HEADER)
    length = int.from_bytes(raw_len, "little")
    start = 8 + width
    if length > _HARD_MAX_HEADER:
        raise FormatError(f"header of {length} bytes", 8, HEADER_SIZE)
    if length > NUMPY_MAX_HEADER:
        ctx.add(HEADER_SIZE, f"header of {length} bytes (numpy accepts {NUMPY_MAX_HEADER})",
                offset=8)
    raw = f.read(length)
    if len(raw) < length:
        raise FormatError("truncated .npy header", start, HEADER)
    header = _parse_header(raw, version[0], start)
    itemsize, has_object = _dtype(header["descr"], start)
    shape = header["shape"]
    ctx.result.facts.update({"dtype": str(header["descr"]), "shape": list(shape)})
    data_start = start + length
    payload = None if ctx.size is None else ctx.size - data_start
    if has_object:
        ctx.add(OBJECT, f"dtype {header['descr']!r}", offset=data_start)
        seekable = f.seekable() and payload is not None
        stream = SliceReader(f, data_start, payload) if seekable else f  # type: ignore[arg-type]
        ctx.merge_member(ctx.scan_member(_OBJECT_MEMBER, stream, payload))  # type: ignore[arg-type]
        return
    needed = math.prod(shape) * itemsize
    if payload is None:
        payload = _count(f)
    if payload != needed:
        what = "trailing bytes" if payload > needed else "missing bytes"
        ctx.add(SIZE, f"shape {tuple(shape)} × {itemsize} bytes needs {needed} bytes of data, "
                f"the file has {payload} ({what})", offset=data_start)


def _count(f: BinaryIO) -> int:
    """Bytes left in a stream of unknown size (a member being decompressed)."""
    total, buf = 0, bytearray(1 << 20)
    while n := f.readinto(buf):  # type: ignore[attr-defined]
        total += n
    return total


def _parse_header(raw: bytes, version: int, offset: int) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8" if version >= 3 else "latin-1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError,
            UnicodeDecodeError) as exc:
        raise FormatError(f"header is not a Python literal: {type(exc).__name__}", offset,
                          HEADER) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError("header must be a dict of exactly descr, fortran_order, shape",
                          offset, HEADER)
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(_uint(d) for d in shape):
        raise FormatError(f"shape {shape!r} is not a tuple of sizes", offset, HEADER)
    if not isinstance(header["fortran_order"], bool):
        raise FormatError("fortran_order is not a bool", offset, HEADER)
    return header


def _dtype(descr: Any, offset: int, depth: int = 0) -> tuple[int, bool]:
    """(itemsize, contains objects) of a numpy array-protocol type description."""
    if depth > 32:
        raise FormatError("dtype nested too deeply", offset, HEADER)
    if isinstance(descr, str):
        match = _DESCR.fullmatch(descr)
        if match is None:
            raise FormatError(f"unknown dtype {descr!r}", offset, HEADER)
        _, kind, digits, _ = match.groups()
        if kind in _FIXED_SIZE:
            return _FIXED_SIZE[kind], kind == "O"
        if kind == "U" and digits:
            return 4 * int(digits), False
        if kind in _SIZED_KINDS and digits:
            return int(digits), False
        raise FormatError(f"unknown dtype {descr!r}", offset, HEADER)
    if isinstance(descr, list) and descr:
        total, has_object = 0, False
        for field in descr:
            if not isinstance(field, tuple) or len(field) not in (2, 3):
                raise FormatError(f"bad structured dtype field {field!r}", offset, HEADER)
            size, obj = _dtype(field[1], offset, depth + 1)
            count = 1
            if len(field) == 3:
                if not isinstance(field[2], tuple) or not all(_uint(d) for d in field[2]):
                    raise FormatError(f"bad field shape {field[2]!r}", offset, HEADER)
                count = math.prod(field[2])
            total += size * count
            has_object |= obj
        return total, has_object
    raise FormatError(f"unknown dtype {descr!r}", offset, HEADER)


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def detect_npz(names: Sequence[str]) -> FormatId | None:
    """np.savez writes only `<key>.npy` members."""
    return FormatId.NPZ if names and all(n.endswith(".npy") for n in names) else None


NPZ_LAYOUT = Layout(detect=detect_npz, role=lambda name: Role.SCAN, formats=(FormatId.NPZ,))


SPEC = FormatSpec(
    id=FormatId.NUMPY, sniff=sniff, scan=scan, container=True, rules=RULES,
    facts=("dtype", "shape", "members", "hidden_members", "crc_unverified"),
    refines=(FormatId.NPZ,),
)
