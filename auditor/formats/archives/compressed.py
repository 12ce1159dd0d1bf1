"""Compressed streams (gzip, bz2, xz, lzma, zlib, deflate) decompressed as bounded streams.

Every decompressor in auditor goes through `DecompressReader`: it never holds
more than one chunk in memory and it stops with `LimitExceeded` when the
output passes the total limit or the expansion ratio (checked once the output
passes `RATIO_FLOOR`, so small well-compressed files are never refused). A
whole compressed file is handed to the engine as one member; the stream is
then read to its end, so corruption, trailing bytes and bombs are caught
whatever the member's format module read.

joblib writes its compressed pickles with these same compressors: zlib
(a bare zlib stream, first byte 0x78), gzip, bz2, xz and lzma-alone; pickles
made before joblib 0.9.3 start with b"ZF", a 19-byte hexadecimal length and
an optional space before the zlib stream.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, Literal

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.limits import Limits
from auditor.formats._lib.streams import ReplayReader
from auditor.formats.archives import leftover
from auditor.formats.archives.members import add_at
from auditor.formats.contract import ScanContext
from auditor.model import FormatId, Rule, Severity
from auditor.rawio import RawReader

BOMB = Rule(
    "AUD-ARC-015", Severity.HIGH, "Decompression limit exceeded (possible bomb)",
    "A stream that expands far beyond its compressed size, or beyond the total limit, is built "
    "to exhaust memory or disk; what lies beyond the limit was not inspected.",
    "Inspect the file by hand; if it is legitimate, raise max_compression_ratio or "
    "max_decompressed_bytes.",
)
CORRUPT = Rule(
    "AUD-ARC-020", Severity.HIGH, "Compressed stream is corrupt or truncated",
    "A stream that fails its checksum or ends early was altered after it was written; "
    "loaders that stream-decompress act on the bytes before the error.",
    "Obtain the file again from its publisher.",
)
TRAILING = Rule(
    "AUD-ARC-019", Severity.MEDIUM, "Bytes after the end of a compressed stream",
    "Bytes after the compressed stream are ignored by some readers and rejected by others: "
    "room for content no reader accounts for.",
    "Re-compress the file.",
)
RULES = (BOMB, CORRUPT, TRAILING)

RATIO_FLOOR = 10 * 1024 * 1024
CHUNK = 64 * 1024
ZF_HEADER = 2 + 19  # b"ZF" + the hex length field joblib pads to 19 bytes

# Raw deflate, as zip members hold it: a codec only, never the format of a file.
DEFLATE = "deflate"
Codec = FormatId | Literal["deflate"]

_FACTORIES: dict[Codec, Callable[[], Any]] = {
    FormatId.GZIP: lambda: zlib.decompressobj(31),
    FormatId.ZLIB: lambda: zlib.decompressobj(15),
    DEFLATE: lambda: zlib.decompressobj(-15),
    FormatId.BZ2: bz2.BZ2Decompressor,
    FormatId.XZ: lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
    FormatId.LZMA: lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
}
# Formats whose readers accept several streams one after another, by the stream's magic.
_NEXT_STREAM_MAGIC = {FormatId.GZIP: b"\x1f\x8b", FormatId.BZ2: b"BZh",
                      FormatId.XZ: b"\xfd7zXZ\x00"}
_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError)
# File-name endings a compressor adds, stripped to name the member inside.
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z", ".zlib")


class Budget:
    """Expansion shared by all the streams of one container, checked like a single stream."""

    def __init__(self, limits: Limits, compressed: int | None) -> None:
        self._limits = limits
        self._compressed = compressed
        self.produced = 0

    def charge(self, n: int) -> None:
        self.produced += n
        _check(self.produced, self._compressed, self._limits, "archive total")


def _check(produced: int, consumed: int | None, limits: Limits, what: str) -> None:
    if produced > limits.max_decompressed_bytes:
        raise LimitExceeded(f"{what}: decompressed more than {limits.max_decompressed_bytes} "
                            f"bytes")
    ratio = limits.max_compression_ratio
    if consumed is not None and produced > RATIO_FLOOR and produced > ratio * max(consumed, 1):
        raise LimitExceeded(f"{what}: {produced} bytes from {consumed} compressed "
                            f"(ratio above {ratio}:1)")


class DecompressReader(RawReader):
    """Forward-only decompressed view of `source`, bounded in memory, output and ratio.

    After the first error (corrupt data or a limit) every further read raises it
    again, so neither the member's format module nor the container can read past it.
    `trailing` counts bytes after the last stream that are not another stream.
    """

    def __init__(
        self, source: BinaryIO, kind: Codec, limits: Limits, budget: Budget | None = None,
        what: str = "",
    ) -> None:
        super().__init__()
        self._source = source
        self._kind = kind
        self._limits = limits
        self._budget = budget
        self._what = what or kind
        self._d = _FACTORIES[kind]()
        self._pending = b""
        self._done = False
        self.consumed = 0
        self.produced = 0
        self.trailing = 0
        self.error: FormatError | None = None

    def tell(self) -> int:
        return self.produced

    def readinto(self, b) -> int:  # type: ignore[override]
        if self.error is not None:
            raise self.error
        view = memoryview(b).cast("B")
        try:
            out = self._next(len(view))
            self._account(len(out))
        except FormatError as exc:
            self.error = exc
            raise
        except _ERRORS as exc:
            self.error = FormatError(f"corrupt {self._kind} stream: {exc}", self.produced)
            raise self.error from None
        view[: len(out)] = out
        return len(out)

    def _account(self, n: int) -> None:
        self.produced += n
        _check(self.produced, self.consumed, self._limits, self._what)
        if self._budget is not None:
            self._budget.charge(n)

    def _next(self, n: int) -> bytes:
        while not self._done and n:
            if self._d.eof:
                self._next_stream()
                continue
            data, self._pending = self._pending, b""
            out = self._d.decompress(data, n)
            self._pending = getattr(self._d, "unconsumed_tail", b"")
            if out:
                return out
            if not self._d.eof and not self._pending and not self._feed():
                raise FormatError(f"truncated {self._kind} stream", self.produced)
        return b""

    def _feed(self) -> bool:
        chunk = self._source.read(CHUNK)
        self.consumed += len(chunk)
        self._pending += chunk
        return bool(chunk)

    def _next_stream(self) -> None:
        rest = self._d.unused_data
        self._pending = b""
        if not rest and self._feed():
            rest, self._pending = self._pending, b""
        magic = _NEXT_STREAM_MAGIC.get(self._kind)
        if rest and magic is not None and rest.startswith(magic[: len(rest)]):
            self._d = _FACTORIES[self._kind]()
            self._pending = rest
            return
        self._done = True
        self.trailing = len(rest)
        while chunk := self._source.read(CHUNK):
            self.consumed += len(chunk)
            self.trailing += len(chunk)


def drain(reader: BinaryIO) -> None:
    """Read a stream to its end in bounded chunks (raising what the stream raises)."""
    buf = bytearray(CHUNK * 4)
    while reader.readinto(buf):  # type: ignore[attr-defined]
        pass


def kind_of(head: bytes) -> FormatId | None:
    """The compression format of a stream by its magic, checked by decoding a little."""
    if head.startswith(b"\x1f\x8b\x08"):
        return FormatId.GZIP
    if head.startswith(b"BZh") and head[3:4] in b"123456789" and head[4:10] in (
        b"1AY&SY", b"\x17rE8P\x90"
    ):
        return FormatId.BZ2
    if head.startswith(b"\xfd7zXZ\x00"):
        return FormatId.XZ
    if _is_zf(head):
        return FormatId.ZLIB
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return FormatId.ZLIB if _decodes(FormatId.ZLIB, head) else None
    if head[:1] == b"\x5d" and len(head) >= 13 and _plausible_lzma_alone(head):
        return FormatId.LZMA if _decodes(FormatId.LZMA, head) else None
    return None


def _is_zf(head: bytes) -> bool:
    field = head[2:ZF_HEADER].rstrip(b" ")
    return head.startswith(b"ZF0x") and len(head) > ZF_HEADER and all(
        c in b"0123456789abcdefx" for c in field
    )


def _plausible_lzma_alone(head: bytes) -> bool:
    dict_size = int.from_bytes(head[1:5], "little")
    unpacked = int.from_bytes(head[5:13], "little")
    return dict_size >= 4096 and (unpacked == 2**64 - 1 or unpacked < 2**48)


def _decodes(kind: FormatId, head: bytes) -> bool:
    """A weak magic (zlib's two bytes, lzma-alone's one) confirmed by decoding the head."""
    try:
        _FACTORIES[kind]().decompress(head[:CHUNK], 256)
    except _ERRORS:
        return False
    return True


def inner_name(name: str) -> str:
    """`model.pkl.gz` → `model.pkl`; names without a compression suffix are kept."""
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    if lower.endswith(".tgz"):
        return name[:-4] + ".tar"
    return name


def scan_compressed(f: BinaryIO, ctx: ScanContext, kind: FormatId) -> None:
    """Hand the decompressed stream to the engine, then read it to its end."""
    ctx.result.format = kind
    declared = None
    head = f.read(ZF_HEADER + 1)
    if _is_zf(head):
        declared = int(head[2:ZF_HEADER].rstrip(b" "), 16)
        rest = head[ZF_HEADER:] if head[ZF_HEADER:] != b" " else b""
    else:
        rest = head
    source = ReplayReader(rest, f)
    reader = DecompressReader(source, kind, ctx.limits, what=f"{kind} stream")  # type: ignore[arg-type]
    name = inner_name(ctx.name)
    try:
        ctx.merge_member(ctx.scan_member(name, reader, None))  # type: ignore[arg-type]
        drain(reader)  # type: ignore[arg-type]
    except LimitExceeded as exc:
        add_at(ctx, BOMB, None, str(exc), reader.consumed)
        ctx.limit_hit()
        return
    except FormatError as exc:
        add_at(ctx, CORRUPT, None, str(exc), reader.consumed)
        return
    if reader.trailing:
        _trailing(f, ctx, reader.trailing, kind)
    if declared is not None and declared != reader.produced:
        add_at(ctx, CORRUPT, None, f"joblib ZF header declares {declared} bytes, stream holds "
               f"{reader.produced}")
    ctx.result.facts["decompressed_bytes"] = reader.produced


def _trailing(f: BinaryIO, ctx: ScanContext, count: int, kind: FormatId) -> None:
    """Bytes after the last stream: flagged, and scanned as what they are when they can be
    read again; from a forward-only stream they are gone, so the file is partly analysed."""
    if not f.seekable():
        add_at(ctx, TRAILING, None, f"{count} bytes after the {kind} stream (not re-readable: "
               f"not inspected)")
        ctx.limit_hit()
        return
    end = f.seek(0, 2)
    add_at(ctx, TRAILING, None, f"{count} bytes after the {kind} stream", end - count)
    leftover.scan_range(ctx, f, end - count, end, f"after the {kind} stream")
