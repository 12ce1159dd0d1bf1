"""Tar read header by header, as a stream, with bounded pax and GNU long-name records.

`tarfile` reads whole pax and long-name records into memory whatever size
they claim, so the headers are parsed here: ustar, GNU long names and links,
pax records (path, linkpath, size). Each member is handed to the engine in
place (a window on the file) or, inside a compressed stream, as a bounded
forward reader; nothing is extracted.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.streams import ReplayReader, SliceReader
from auditor.formats.archives import leftover, members
from auditor.formats.archives.compressed import BOMB, CORRUPT
from auditor.formats.archives.links import Links
from auditor.formats.archives.members import Layout, add_at
from auditor.formats.contract import ScanContext
from auditor.model import FormatId, Rule, Severity
from auditor.rawio import RawReader

MALFORMED = Rule(
    "AUD-ARC-018", Severity.HIGH, "Malformed tar header",
    "A header with a bad checksum, size or record ends the archive for some readers and not "
    "for others; members after it may be seen by the loader and not the scanner.",
    "Re-create the archive.",
)
SPARSE = Rule(
    "AUD-ARC-009", Severity.HIGH, "Tar member in a form the scanner does not read",
    "GNU sparse and multi-volume members are reassembled by tar tools; the scanner sees only "
    "fragments, so the member is unaudited.",
    "Re-create the archive with plain members.",
)
TRAILING = Rule(
    "AUD-ARC-021", Severity.MEDIUM, "Data after the end of the tar archive",
    "Readers stop at the end-of-archive marker; tools that ignore it (tar -i) find what was "
    "hidden after it.",
    "Re-create the archive.",
)
RULES = (MALFORMED, SPARSE, TRAILING)

BLOCK = 512
MAX_RECORD = 1024 * 1024  # pax and GNU long-name records
_LINKS = frozenset(b"12")
_SPECIAL = frozenset(b"346")
_DIRECTORY = ord("5")
_NO_DATA = _LINKS | _SPECIAL | {_DIRECTORY}  # types whose size field does not count data
_ZEROS = bytes(BLOCK)
_UNREAD = frozenset(b"SMV")  # GNU sparse, multi-volume continuation, volume label
_LONG_NAME, _LONG_LINK, _PAX, _GLOBAL_PAX = ord("L"), ord("K"), ord("x"), ord("g")


def is_tar(head: bytes) -> bool:
    """A ustar/GNU magic and a valid checksum in the first header block."""
    return len(head) >= BLOCK and head[257:262] == b"ustar" and _checksum_ok(head[:BLOCK])


def first_name(head: bytes) -> str:
    """The name in the first header block (without pax or GNU long-name records)."""
    return _text(head[0:100])


def _checksum_ok(block: bytes) -> bool:
    """The stored checksum is the byte sum of the header with its own field read as spaces
    (unsigned, or signed as some old tars wrote it)."""
    try:
        stored = _number(block[148:156])
    except ValueError:
        return False
    # The usual case without a Python loop over 512 bytes (the costliest step of a header):
    # the byte sum the stored value implies is checked through two residues computed in C,
    # adler32's (the sum mod 65521) and the block as one integer mod 255 (256 = 1 mod 255).
    # Together they fix any sum below 65521 * 255; a header's is at most 512 * 255.
    implied = stored - 8 * 32 + sum(block[148:156])
    if (0 <= implied <= BLOCK * 255
            and ((zlib.adler32(block) & 0xFFFF) - 1) % 65521 == implied % 65521
            and int.from_bytes(block, "little") % 255 == implied % 255):
        return True
    unsigned = sum(block) - sum(block[148:156]) + 8 * 32
    if stored == unsigned:
        return True  # the usual case: skip the slow signed sum
    return stored == unsigned - 2 * sum(b for b in block[:148] + block[156:] if b >= 128)


def _number(field: bytes) -> int:
    """Octal text, or GNU base-256 when the first byte has its high bit set."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] == 0xFF else value
    text = field.split(b"\x00", 1)[0].strip(b" ")
    return int(text, 8) if text else 0


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


@dataclass(slots=True)
class Member:
    """One header's member (not frozen: its frozen __init__ cost a third of a header's parse)."""

    name: str
    type: int
    size: int
    mode: int
    linkname: str  # links only
    header: int  # offset of its header block
    data: int  # offset of its data


class Cursor:
    """Position-tracking forward reader over a seekable or streaming source."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.pos = 0
        self.seekable = f.seekable()

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        self.pos += len(data)
        return data

    def skip_to(self, target: int) -> None:
        if self.seekable:
            self.f.seek(target)
            self.pos = target
            return
        while self.pos < target and self.read(min(1 << 20, target - self.pos)):
            pass


def _records(cursor: Cursor, size: int, offset: int) -> bytes:
    if size > MAX_RECORD:
        raise LimitExceeded(f"tar extended header of {size} bytes", offset)
    data = cursor.read(size)
    if len(data) < size:
        raise FormatError("truncated extended header", offset, MALFORMED)
    cursor.skip_to(cursor.pos + (-size % BLOCK))
    return data


def _pax(data: bytes, offset: int) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FormatError("bad pax record length", offset, MALFORMED) from None
        if space < 0 or length <= 0 or pos + length > len(data):
            raise FormatError("bad pax record", offset, MALFORMED)
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def iter_members(cursor: Cursor, hidden: Callable[[str, int], None]) -> Iterator[Member]:
    """Yield members in order; after each, the cursor is moved past its data.

    `hidden(name, header)` is told the ustar name a reader ignoring pax and GNU
    names would use, when it is not the member's name: each caller judges it its
    own way (a scan's check_name, the OCI source's unsafe-member finding).
    """
    long_name = long_link = None
    pax: dict[str, str] = {}
    while True:
        header = cursor.pos
        block = cursor.read(BLOCK)
        if len(block) < BLOCK:
            if block or header == 0:
                raise FormatError("truncated tar header", header, MALFORMED)
            return  # no end marker; tarfile accepts that too
        if block == _ZEROS:
            return
        if not _checksum_ok(block):
            raise FormatError("bad tar header checksum", header, MALFORMED)
        try:
            size, mode = _number(block[124:136]), _number(block[100:108])
        except ValueError:
            raise FormatError("bad number in tar header", header, MALFORMED) from None
        kind = block[156]
        if kind in (_LONG_NAME, _LONG_LINK, _PAX, _GLOBAL_PAX):
            data = _records(cursor, size, header)
            if kind == _LONG_NAME:
                long_name = _text(data)
            elif kind == _LONG_LINK:
                long_link = _text(data)
            elif kind == _PAX:
                pax = _pax(data, header)
            continue
        name = _text(block[0:100])
        if block[257:262] == b"ustar" and block[345:346] != b"\x00":
            name = _text(block[345:500]) + "/" + name
        if pax.get("path", long_name) not in (None, name):
            hidden(name, header)  # what a reader ignoring pax/GNU names uses
        name = pax.get("path", long_name or name)
        link = pax.get("linkpath", long_link or _text(block[157:257])) if kind in _LINKS else ""
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise FormatError("bad pax size", header, MALFORMED) from None
        if size < 0:
            raise FormatError("negative member size", header, MALFORMED)
        data = cursor.pos
        yield Member(name, kind, size, mode, link, header, data)
        cursor.skip_to(data + (size + (-size % BLOCK) if kind not in _NO_DATA else 0))
        long_name = long_link = None
        pax = {}


class Window(RawReader):
    """The next `size` bytes of a forward-only stream, never more."""

    def __init__(self, cursor: Cursor, size: int) -> None:
        super().__init__()
        self._cursor = cursor
        self._left = size

    def readinto(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        data = self._cursor.read(min(len(view), self._left))
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)


def scan_tar(f: BinaryIO, ctx: ScanContext, layouts: Sequence[Layout]) -> None:
    """Scan every member of a tar, streaming: the layout is chosen from the first name."""
    cursor = Cursor(f)
    layout, fmt = members.GENERIC, FormatId.TAR
    ctx.result.format = fmt
    names: list[str] = []
    links = Links()
    limit = ctx.limits.max_members
    for member in iter_members(cursor, lambda name, at: members.check_name(ctx, name, at)):
        if len(names) >= limit:
            add_at(ctx, members.TOO_MANY, None, f"more than {limit} members; the rest were not "
                   f"inspected", member.header)
            ctx.limit_hit()
            break
        if not names:
            layout, fmt = members.choose_layout(layouts, [member.name], FormatId.TAR)
            ctx.result.format = fmt
        names.append(member.name)
        _scan_member(f, cursor, member, layout, ctx, links)
    else:
        _check_end(cursor, ctx)
    links.report(ctx)
    members.check_duplicates(ctx, names)
    ctx.result.format = members.choose_layout(layouts, names, fmt)[1]
    ctx.result.facts["members"] = len(names)


def _scan_member(
    f: BinaryIO, cursor: Cursor, member: Member, layout: Layout, ctx: ScanContext, links: Links
) -> None:
    members.check_name(ctx, member.name, member.header)
    if member.type in _LINKS:
        links.add(member.name, member.linkname, member.type == ord("1"), member.header)
        return
    if member.type in _SPECIAL:
        add_at(ctx, members.SPECIAL, member.name, "device or FIFO member", member.header)
        return
    if member.type == _DIRECTORY:
        return
    if member.type in _UNREAD:
        add_at(ctx, SPARSE, member.name, f"member type {chr(member.type)!r}", member.header)
        ctx.limit_hit()
        return
    stream = (io.BytesIO() if member.size == 0  # nothing stored: no window to read through
              else SliceReader(f, member.data, member.size) if cursor.seekable
              else Window(cursor, member.size))
    try:
        members.hand_over(ctx, layout, member.name, stream, member.size)  # type: ignore[arg-type]
    except LimitExceeded as exc:
        add_at(ctx, BOMB, member.name, str(exc), member.header)
        ctx.limit_hit()
    except FormatError as exc:
        add_at(ctx, CORRUPT, member.name, str(exc), member.header)


def _check_end(cursor: Cursor, ctx: ScanContext) -> None:
    """Anything but zero padding after the end marker is hidden from tar readers: flagged,
    and scanned from its first non-zero byte as what it is."""
    while chunk := cursor.read(1 << 20):
        rest = chunk.lstrip(b"\x00")
        if rest:
            at = cursor.pos - len(rest)
            add_at(ctx, TRAILING, None, f"non-zero bytes after the end-of-archive marker "
                   f"(from offset {at})", at)
            where = "after the tar end marker"
            if cursor.seekable:
                leftover.scan_range(ctx, cursor.f, at, cursor.f.seek(0, 2), where)
            else:
                leftover.scan_rest(ctx, ReplayReader(rest, cursor.f), at,  # type: ignore[arg-type]
                                   where)
            return
