"""Zip read twice: the way loaders read it, and strictly; every disagreement is a finding.

PyTorch (miniz, built without CRC checks) and most loaders take the member
list, sizes and method from the central directory at the end and use the
local header only to skip to the data. Strict readers (Python's `zipfile`,
numpy's npz) also require the local header to agree and the CRC to match;
streaming readers walk local headers from the start. A scanner that reads
differently from the loader can be shown a different file, so here:

- members come from the central directory (the loader's reading);
- each local header is compared with its central entry (name, flags,
  method, sizes, CRC in the data descriptor), and each scanned member's
  CRC is checked while it streams;
- bytes no central entry accounts for are searched for local headers:
  members only a streaming reader sees are scanned too, and flagged;
- overlaps, prepended or trailing data and extra end records are flagged.

Nothing here trusts a length before checking it against the file size, and a
broken directory falls back to the local-header search, so a malformed zip is
findings plus whatever members can still be found, never a crash.
"""

from __future__ import annotations

import bisect
import io
import stat
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.streams import SliceReader
from auditor.formats.archives import leftover, members
from auditor.formats.archives.compressed import (
    BOMB,
    CORRUPT,
    DEFLATE,
    Budget,
    Codec,
    DecompressReader,
)
from auditor.formats.archives.links import MAX_TARGET, Links
from auditor.formats.archives.members import CrcReader, Layout, Role, add_at
from auditor.formats.contract import ScanContext
from auditor.model import FormatId, Rule, Severity

DIFFERENTIAL = Rule(
    "AUD-ARC-001", Severity.HIGH, "Zip local header disagrees with the central directory",
    "PyTorch reads names, sizes and flags from the central directory while strict readers "
    "also check the local header; a mismatch (CVE-2025-1944) makes scanners fail or look at "
    "other bytes than the loader.",
    "Re-save the checkpoint with its framework; do not load a file crafted this way.",
)
BAD_CRC = Rule(
    "AUD-ARC-002", Severity.HIGH, "Zip member CRC does not match its data",
    "PyTorch ignores CRCs while strict readers stop on them (CVE-2025-10156): a wrong CRC "
    "makes scanners give up on a member the loader still unpickles.",
    "Re-save the checkpoint with its framework.",
)
FLAGS = Rule(
    "AUD-ARC-003", Severity.HIGH, "Zip member has unusual general-purpose flags",
    "Encryption, patch-data and reserved flag bits make strict readers refuse a member that "
    "lenient loaders read anyway (CVE-2025-1945); model writers never set them.",
    "Re-save the checkpoint with its framework.",
)
HIDDEN = Rule(
    "AUD-ARC-004", Severity.HIGH, "Zip member missing from the central directory",
    "A local header that no central entry points to is seen by streaming readers but not by "
    "directory readers: a place to hide a pickle from one of them.",
    "Re-create the archive; do not load a file crafted this way.",
)
OVERLAP = Rule(
    "AUD-ARC-005", Severity.HIGH, "Zip members overlap",
    "Overlapping members share bytes: the classic zip bomb construction, and a way to make "
    "two names read different views of the same data.",
    "Re-create the archive.",
)
OUTSIDE = Rule(
    "AUD-ARC-006", Severity.HIGH, "Bytes outside the zip structure",
    "Bytes before the first member, between members or after the end record belong to no "
    "member: polyglot files and appended payloads live there.",
    "Re-create the archive from its members.",
)
EXTRA_END = Rule(
    "AUD-ARC-007", Severity.HIGH, "Several zip directories or end records",
    "A second central directory or end record (two zips in one file) means readers that "
    "search from the end and readers that walk from the start see different archives.",
    "Re-create the archive.",
)
METHOD = Rule(
    "AUD-ARC-016", Severity.HIGH, "Zip member compression method not supported",
    "A member the scanner cannot decompress is unaudited.",
    "Re-create the archive with stored or deflated members.",
)
MALFORMED = Rule(
    "AUD-ARC-017", Severity.HIGH, "Malformed zip structure",
    "A zip whose directory cannot be read is read differently by every tool; members found "
    "by their local headers were still scanned.",
    "Re-create the archive.",
)
RULES = (DIFFERENTIAL, BAD_CRC, FLAGS, HIDDEN, OVERLAP, OUTSIDE, EXTRA_END, METHOD, MALFORMED)

LOCAL_SIG = b"PK\x03\x04"
CENTRAL_SIG = b"PK\x01\x02"
END_SIG = b"PK\x05\x06"
END64_SIG = b"PK\x06\x06"
LOCATOR_SIG = b"PK\x06\x07"
DESCRIPTOR_SIG = b"PK\x07\x08"
_LOCAL = struct.Struct("<4s5H3L2H")  # 30 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # 46 bytes
_END = struct.Struct("<4s4H2LH")  # 22 bytes
_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
_END64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_MAX_COMMENT = 0xFFFF
_DIRECTORY_SIGS = (CENTRAL_SIG, END_SIG, END64_SIG, LOCATOR_SIG)

# General-purpose flag bits writers legitimately set: deflate options (1, 2),
# data descriptor (3), UTF-8 names (11). Anything else is suspicious.
_FLAG_NAMES = {0: "encrypted", 4: "enhanced deflate", 5: "patched data",
               6: "strong encryption", 13: "masked header"}
_USUAL_FLAGS = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 11)
_UNIX = 3
_METHODS: dict[int, Codec | None] = {0: None, 8: DEFLATE, 12: FormatId.BZ2}
_SPOOL_MEMORY = 8 * 1024 * 1024
_RUN_SLACK = 64  # bytes between neighbouring local headers read in one run (`_local_heads`)
_RUN_BYTES = 64 * 1024
_SCAN_CHUNK = 1 << 20


@dataclass
class Entry:
    """One member as the central directory (or, for hidden ones, its local header) says."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    offset: int  # local header
    mode: int | None = None  # unix mode, when the writer recorded one
    data: int | None = None  # data offset, once the local header was read
    end: int | None = None  # end of data (and data descriptor)
    hidden: bool = False


class _At:
    """Positioned reads through `_read_at`: member windows that never read ahead."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._pos = 0

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset
        return offset

    def read(self, n: int) -> bytes:
        data = _read_at(self._f, self._pos, n)
        self._pos += len(data)
        return data


def _decode(raw: bytes, flags: int) -> str:
    if raw.isascii():  # the same in both encodings, and cp437's Python codec is slow
        return raw.decode("ascii")
    return raw.decode("utf-8", "replace") if flags & 0x800 else raw.decode("cp437")


def _zip64(extra: bytes, fields: list[int], sentinels: list[int]) -> list[int]:
    """Replace the 0xFFFFFFFF fields with the zip64 extra field's values, in order."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        if tag == 1:
            out, at = list(fields), 0
            for i, (value, sentinel) in enumerate(zip(fields, sentinels, strict=True)):
                if value == sentinel and at + 8 <= len(body):
                    out[i] = struct.unpack_from("<Q", body, at)[0]
                    at += 8
            return out
        pos += 4 + size
    return fields


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    """Read a few header bytes without filling a read-ahead buffer with member data.

    Through a BufferedReader every small read would pull a whole buffer of the
    tensor data that follows a local header; reading the raw stream directly,
    then putting its position back, keeps the buffer valid and the file read once.
    """
    raw = getattr(f, "raw", None)
    if isinstance(f, io.BufferedReader) and raw is not None and raw.seekable():
        keep = raw.tell()
        raw.seek(offset)
        data = b""
        while len(data) < n and (chunk := raw.read(n - len(data))):
            data += chunk
        raw.seek(keep)
        return data
    f.seek(offset)
    return f.read(n)


@dataclass
class Directory:
    entries: list[Entry]
    start: int  # central directory start
    end: int  # end of the end record and its comment
    declared: int  # member count the end record declares
    truncated: bool  # more members than the limit: the rest were not read


def read_directory(f: BinaryIO, size: int, ctx: ScanContext) -> Directory:
    """The central directory as a loader finds it: from the last end record in the file."""
    tail_len = min(size, _END.size + _MAX_COMMENT)
    tail = _read_at(f, size - tail_len, tail_len)
    pos = tail.rfind(END_SIG)
    if pos < 0 or len(tail) - pos < _END.size:
        raise FormatError("no end-of-central-directory record", size, MALFORMED)
    end_at = size - tail_len + pos
    _, disk, _, _, count, cd_size, cd_offset, comment = _END.unpack_from(tail, pos)
    record_end = end_at + _END.size + comment
    if disk != 0:
        raise FormatError("multi-disk zip archives are not supported", end_at, MALFORMED)
    cd_end = end_at
    locator = _read_at(f, end_at - _LOCATOR.size, _LOCATOR.size) if end_at >= 20 else b""
    if locator.startswith(LOCATOR_SIG):
        _, _, end64_at, _ = _LOCATOR.unpack(locator)
        end64 = _read_at(f, end64_at, _END64.size) if end64_at < size else b""
        if len(end64) < _END64.size or not end64.startswith(END64_SIG):
            raise FormatError("zip64 locator points to no zip64 end record", end_at, MALFORMED)
        fields = _END64.unpack(end64)
        count64, cd_size64, cd_offset64 = fields[7], fields[8], fields[9]
        for small, big, what in ((count, count64, "member count"), (cd_size, cd_size64,
                                 "directory size"), (cd_offset, cd_offset64, "directory offset")):
            if small not in (0xFFFF, 0xFFFFFFFF) and small != big:
                add_at(ctx, DIFFERENTIAL, None, f"end record {what} {small} differs from the "
                       f"zip64 end record's {big}", end_at)
        count, cd_size, cd_offset, cd_end = count64, cd_size64, cd_offset64, end64_at
    if cd_offset + cd_size > cd_end:
        raise FormatError(f"central directory ({cd_offset}+{cd_size}) runs past its end record "
                          f"at {cd_end}", end_at, MALFORMED)
    prefix = cd_end - cd_size - cd_offset
    if prefix:
        add_at(ctx, OUTSIDE, None, f"{prefix} bytes between the central directory and the end "
               f"record (data prepended to the archive?)", cd_offset)
    entries = _central_entries(f, cd_offset, cd_size, count, ctx)
    # The declared count may lie (0xFFFF without zip64): the directory itself says when
    # reading stopped at the limit.
    truncated = len(entries) >= ctx.limits.max_members and any(
        f.rule == members.TOO_MANY.id for f in ctx.result.findings)
    return Directory(entries, cd_offset, max(record_end, end_at + _END.size), count, truncated)


def _central_entries(
    f: BinaryIO, start: int, length: int, declared: int, ctx: ScanContext
) -> list[Entry]:
    f.seek(start)
    entries: list[Entry] = []
    pos, end, limit = start, start + length, ctx.limits.max_members
    while pos < end:
        fixed = f.read(_CENTRAL.size)
        if len(fixed) < _CENTRAL.size or not fixed.startswith(CENTRAL_SIG):
            raise FormatError("bad central directory entry", pos, MALFORMED)
        (_, made_by, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, eattr,
         offset) = _CENTRAL.unpack(fixed)
        variable = f.read(nlen + xlen)
        raw_name, extra = variable[:nlen], variable[nlen:]
        if clen:
            f.seek(clen, 1)
        pos += _CENTRAL.size + nlen + xlen + clen
        if len(entries) >= limit:
            add_at(ctx, members.TOO_MANY, None, f"more than {limit} members; the rest were not "
                   f"inspected", pos)
            ctx.limit_hit()
            return entries
        name = _decode(raw_name, flags)
        if extra:
            usize, csize, offset = _zip64(extra, [usize, csize, offset], [0xFFFFFFFF] * 3)
            _check_unicode_path(ctx, name, raw_name, extra, offset)
        mode = (eattr >> 16) if made_by >> 8 == _UNIX and eattr >> 16 else None
        entries.append(Entry(name, raw_name, flags, method, crc, csize, usize, offset, mode))
    if pos != end:
        raise FormatError("central directory entries overrun its declared size", pos, MALFORMED)
    if len(entries) != declared:
        add_at(ctx, DIFFERENTIAL, None, f"end record declares {declared} members, the central "
               f"directory holds {len(entries)}", start)
    return entries


def _check_unicode_path(
    ctx: ScanContext, name: str, raw_name: bytes, extra: bytes, offset: int
) -> None:
    """Info-ZIP's Unicode Path field (0x7075, central or local): `unzip` writes the member
    under this name, not the header's, so it is checked for escapes too and a different name
    is flagged (Info-ZIP also writes it for non-ASCII names already in UTF-8: not a change)."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x7075 and size >= 5:
            upath = extra[pos + 9 : pos + 4 + size].decode("utf-8", "replace")
            members.check_name(ctx, upath, offset)
            if upath != name and upath.encode("utf-8") != raw_name:
                add_at(ctx, DIFFERENTIAL, name, f"Info-ZIP Unicode Path field names it "
                       f"{upath!r}; unzip extracts it under that name", offset)
        pos += 4 + size


def _local_heads(f: BinaryIO, ordered: Sequence[Entry]) -> Iterator[bytes | None]:
    """For each entry (sorted by offset), its local header's bytes when read with its
    neighbours', else None (`read_local` reads it alone).

    Members whose local headers follow each other within `_RUN_SLACK` bytes (empty or
    tiny members: 100,000 of them make a hostile archive) are read a run at a time, up to
    `_RUN_BYTES`, instead of one positioned read each. The bytes between two headers in a
    run (a tiny member's data, a descriptor) are at most `_RUN_SLACK`, so little is read
    twice; a tensor's data never is.
    """
    i = 0
    while i < len(ordered):
        start = ordered[i].offset
        j = i
        while j + 1 < len(ordered):
            here, after = ordered[j], ordered[j + 1]
            expected = here.offset + _LOCAL.size + len(here.raw_name)
            if not (expected <= after.offset <= expected + _RUN_SLACK
                    and after.offset + _LOCAL.size + len(after.raw_name) - start <= _RUN_BYTES):
                break
            j += 1
        if j == i:
            yield None
            i += 1
            continue
        last = ordered[j]
        run = _read_at(f, start, last.offset + _LOCAL.size + len(last.raw_name) - start)
        for entry in ordered[i : j + 1]:
            at = entry.offset - start
            yield run[at : at + _LOCAL.size + len(entry.raw_name) + _RUN_SLACK]
        i = j + 1


def read_local(
    f: BinaryIO, entry: Entry, size: int, ctx: ScanContext, head: bytes | None = None
) -> bool:
    """Read `entry`'s local header, compare it with the central entry, locate its data.

    `head`, when given, is what the file holds from the header on (`_local_heads`).
    """
    # One read for the fixed header and the name the directory expects (usually all of it:
    # a second read per member is a cost 100,000 empty members multiply).
    if head is None:
        head = _read_at(f, entry.offset, _LOCAL.size + len(entry.raw_name))
    if len(head) < _LOCAL.size or not head.startswith(LOCAL_SIG):
        add_at(ctx, DIFFERENTIAL, entry.name, "no local header where the central directory "
               "points; the member cannot be read", entry.offset)
        ctx.limit_hit()
        return False
    _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = _LOCAL.unpack_from(head)
    variable = head[_LOCAL.size : _LOCAL.size + nlen + xlen]
    if len(variable) < nlen + xlen:
        variable += _read_at(f, entry.offset + len(head), nlen + xlen - len(variable))
    raw_name, extra = variable[:nlen], variable[nlen:]
    if extra:
        _check_unicode_path(ctx, entry.name, entry.raw_name, extra, entry.offset)
        usize, csize = _zip64(extra, [usize, csize], [0xFFFFFFFF] * 2)
    entry.data = entry.offset + _LOCAL.size + nlen + xlen
    diffs = []
    if raw_name != entry.raw_name:
        local_name = _decode(raw_name, flags)
        diffs.append(f"local name {local_name!r}")
        members.check_name(ctx, local_name, entry.offset)
    if flags != entry.flags:
        diffs.append(f"local flags {flags:#06x} vs central {entry.flags:#06x}")
    if method != entry.method:
        diffs.append(f"local method {method} vs central {entry.method}")
    if not flags & 0x8 and (crc, csize, usize) != (entry.crc, entry.csize, entry.usize):
        diffs.append(f"local crc/sizes {crc:08x}/{csize}/{usize} vs central "
                     f"{entry.crc:08x}/{entry.csize}/{entry.usize}")
    _check_flags(ctx, entry, flags | entry.flags)
    entry.end = entry.data + entry.csize
    if entry.end > size:
        add_at(ctx, MALFORMED, entry.name, f"member data runs past the end of the file "
               f"({entry.end} > {size})", entry.offset)
        ctx.limit_hit()
        return False
    if entry.flags & 0x8:
        diffs += _read_descriptor(f, entry)
    if diffs:
        add_at(ctx, DIFFERENTIAL, entry.name, "; ".join(diffs), entry.offset)
    return True


def _read_descriptor(f: BinaryIO, entry: Entry) -> list[str]:
    """Find the data descriptor after the data; compare it with the central entry.

    Writers use 8-byte sizes in the descriptor when the member needed zip64
    fields, which includes a small member that merely starts past 4 GiB, so
    both widths are tried before calling it a disagreement.
    """
    assert entry.end is not None
    raw = _read_at(f, entry.end, 24)
    sig = len(DESCRIPTOR_SIG) if raw.startswith(DESCRIPTOR_SIG) else 0
    expected = (entry.crc, entry.csize, entry.usize)
    readings = []
    for fmt in ("<LLL", "<LQQ"):
        width = struct.calcsize(fmt)
        if len(raw) >= sig + width:
            readings.append((struct.unpack_from(fmt, raw, sig), sig + width))
    for values, length in readings:
        if values == expected:
            entry.end += length
            return []
    if not readings:
        return ["data descriptor missing at the end of the file"]
    values, length = readings[-1] if entry.offset >= 0xFFFFFFFF else readings[0]
    entry.end += length
    crc, csize, usize = values
    return [f"data descriptor crc/sizes {crc:08x}/{csize}/{usize} vs central "
            f"{entry.crc:08x}/{entry.csize}/{entry.usize}"]


def _check_flags(ctx: ScanContext, entry: Entry, flags: int) -> None:
    odd = flags & ~_USUAL_FLAGS
    if odd:
        names = [_FLAG_NAMES.get(bit, f"bit {bit}") for bit in range(16) if odd >> bit & 1]
        add_at(ctx, FLAGS, entry.name, f"flags {flags:#06x}: {', '.join(names)}", entry.offset)


def _gaps(spans: list[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of [0, size) that no span covers."""
    cursor = 0
    for start, end in sorted(spans):
        if start > cursor:
            yield cursor, start
        cursor = max(cursor, end)
    if cursor < size:
        yield cursor, size


def _find_sigs(f: BinaryIO, start: int, end: int, sigs: Sequence[bytes]) -> list[int]:
    """Offsets of any of `sigs` within [start, end), read in bounded chunks."""
    found: list[int] = []
    pos, keep = start, b""
    f.seek(start)
    while pos < end:
        chunk = f.read(min(_SCAN_CHUNK, end - pos))
        if not chunk:
            break
        window, base = keep + chunk, pos - len(keep)
        found += (base + i for sig in sigs for i in _all(window, sig))
        keep = window[-3:]
        pos += len(chunk)
    return sorted(set(found))


def _all(data: bytes, sig: bytes) -> Iterator[int]:
    i = data.find(sig)
    while i >= 0:
        yield i
        i = data.find(sig, i + 1)


def _hidden_entries(
    f: BinaryIO, directory: Directory | None, size: int, ctx: ScanContext
) -> list[Entry]:
    """Search every byte range no member accounts for: local headers there are hidden members."""
    spans = []
    if directory is not None:
        spans = [(e.offset, e.end) for e in directory.entries if e.end is not None]
        spans.append((directory.start, directory.end))
    hidden: list[Entry] = []
    for start, end in list(_gaps(spans, size)):
        hits = [(at, _read_at(f, at, 4)) for at in _find_sigs(f, start, end,
                                                               (LOCAL_SIG, *_DIRECTORY_SIGS))]
        if directory is not None and any(sig in (CENTRAL_SIG, END_SIG) for _, sig in hits):
            add_at(ctx, EXTRA_END, None, f"a second central directory or end record in bytes "
                   f"{start}-{end} that the directory does not account for", start)
        locals_ = [at for at, sig in hits if sig == LOCAL_SIG]
        if not locals_:
            where = "before the first member" if start == 0 else (
                "after the end record" if end == size else "between members")
            add_at(ctx, OUTSIDE, None, f"{end - start} bytes {where} (offset {start})", start)
            leftover.scan_range(ctx, f, start, end, where)
        cursor = start
        offsets = [h for h, _ in hits]
        for at in locals_:
            if at < cursor:
                continue  # inside the previous hidden member's data (a zip within it)
            later = bisect.bisect_right(offsets, at)
            entry = _local_only(f, at, end, offsets[later] if later < len(offsets) else end)
            if entry is None:
                continue
            if len(hidden) >= ctx.limits.max_members:
                add_at(ctx, members.TOO_MANY, None, "too many hidden members", at)
                ctx.limit_hit()
                return hidden
            hidden.append(entry)
            cursor = entry.end or at + 4
    return hidden


def _local_only(f: BinaryIO, at: int, end: int, next_header: int) -> Entry | None:
    """A member known only from its local header, within a gap ending at `end`.

    Without sizes (a data descriptor), its data is taken to run to the next header.
    """
    fixed = _read_at(f, at, _LOCAL.size)
    if len(fixed) < _LOCAL.size:
        return None
    _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = _LOCAL.unpack(fixed)
    variable = _read_at(f, at + _LOCAL.size, nlen + xlen)
    raw_name, extra = variable[:nlen], variable[nlen:]
    usize, csize = _zip64(extra, [usize, csize], [0xFFFFFFFF] * 2)
    data = at + _LOCAL.size + nlen + xlen
    if data > end:
        return None
    if flags & 0x8 or data + csize > end:
        csize = max(data, next_header) - data
        usize = csize if method == 0 else usize
    return Entry(_decode(raw_name, flags), raw_name, flags, method, crc, csize, usize, at,
                 data=data, end=data + csize, hidden=True)


def open_entry(f: BinaryIO, entry: Entry, budget: Budget, ctx: ScanContext) -> BinaryIO | None:
    """The member's uncompressed bytes as a stream; None when its method is unsupported."""
    assert entry.data is not None
    raw = SliceReader(_At(f), entry.data, entry.csize)  # type: ignore[arg-type]
    if entry.method == 0:
        return raw  # type: ignore[return-value]
    kind = _METHODS.get(entry.method)
    if kind is None:
        add_at(ctx, METHOD, entry.name, f"compression method {entry.method}", entry.offset)
        ctx.limit_hit()
        return None
    return DecompressReader(raw, kind, ctx.limits, budget,  # type: ignore[return-value]
                            what=f"member {entry.name!r}")


def scan_zip(f: BinaryIO, ctx: ScanContext, layouts: Sequence[Layout]) -> None:
    """Read the zip both ways, flag every disagreement, scan every member either way sees."""
    if not f.seekable():
        with tempfile.SpooledTemporaryFile(_SPOOL_MEMORY) as spool:
            _spool(f, spool, ctx)
            spool.seek(0)
            _scan_seekable(spool, ctx, layouts)  # type: ignore[arg-type]
        return
    _scan_seekable(f, ctx, layouts)


def _spool(f: BinaryIO, spool: BinaryIO, ctx: ScanContext) -> None:
    """A zip inside a compressed stream: its directory is at the end, so keep it on disk."""
    total, limit = 0, ctx.limits.max_decompressed_bytes
    while chunk := f.read(_SCAN_CHUNK):
        total += len(chunk)
        if total > limit:
            raise LimitExceeded(f"zip member stream larger than {limit} bytes")
        spool.write(chunk)


def _scan_seekable(f: BinaryIO, ctx: ScanContext, layouts: Sequence[Layout]) -> None:
    size = f.seek(0, 2)
    directory: Directory | None
    try:
        directory = read_directory(f, size, ctx)
    except FormatError as exc:
        add_at(ctx, MALFORMED, None, f"{exc}; searching local headers instead", exc.offset)
        ctx.limit_hit()
        directory = None
    entries = directory.entries if directory else []
    ordered = sorted(entries, key=lambda e: e.offset)
    readable = [e for e, head in zip(ordered, _local_heads(f, ordered), strict=True)
                if read_local(f, e, size, ctx, head)]
    _check_overlaps(ctx, readable)
    # Past the member limit, the unread entries' bytes are not "hidden", just not inspected.
    hidden = [] if directory and directory.truncated else _hidden_entries(f, directory, size, ctx)
    for entry in hidden:
        add_at(ctx, HIDDEN, entry.name, "local header with no central directory entry",
               entry.offset)
    names = [e.name for e in entries]
    layout, fmt = members.choose_layout(layouts, names, FormatId.ZIP)
    ctx.result.format = fmt
    members.check_duplicates(ctx, names)
    budget = Budget(ctx.limits, size)
    stats = {"members": len(entries), "hidden_members": len(hidden), "crc_unverified": 0}
    links = Links()
    for entry in readable:
        _scan_entry(f, entry, layout, budget, ctx, stats, links)
    for entry in hidden:  # whatever its name says, a hidden member is scanned in full
        _scan_entry(f, entry, members.GENERIC, budget, ctx, stats, links)
    links.report(ctx)
    ctx.result.facts.update(stats)


def _stream_failed(ctx: ScanContext, entry: Entry, exc: FormatError) -> None:
    rule = BOMB if isinstance(exc, LimitExceeded) else CORRUPT
    if not any(f.rule == rule.id and f.location.member == members.member_path(ctx, entry.name)
               for f in ctx.result.findings):
        add_at(ctx, rule, entry.name, str(exc), entry.offset)
    if rule is BOMB:
        ctx.limit_hit()


def _check_overlaps(ctx: ScanContext, entries: list[Entry]) -> None:
    """Entries sorted by offset overlap when one starts before an earlier one has ended."""
    reach, owner = 0, ""
    for entry in entries:
        assert entry.end is not None
        if entry.offset < reach:
            add_at(ctx, OVERLAP, entry.name, f"starts at {entry.offset}, inside member "
                   f"{owner!r} (which ends at {reach})", entry.offset)
        if entry.end > reach:
            reach, owner = entry.end, entry.name


def _add_link(
    f: BinaryIO, entry: Entry, budget: Budget, ctx: ScanContext, links: Links
) -> bool:
    """A unix symlink entry (Info-ZIP `zip -y`): its data is the target `unzip` creates.

    Only `unzip`-style extractors make it a link; Python's zipfile and torch read
    the same bytes as a file. True when those bytes are a plain path (printable
    UTF-8, no newline: no pickle or other payload fits); otherwise the caller
    scans them as a member too.
    """
    stream = open_entry(f, entry, budget, ctx)
    if stream is None:
        return True
    try:
        data = stream.read(MAX_TARGET + 1)
    except FormatError as exc:
        _stream_failed(ctx, entry, exc)
        return True
    target = data.decode("utf-8", "surrogateescape")
    links.add(entry.name, target, False, entry.offset)
    return len(data) <= MAX_TARGET and target.isprintable()


def _scan_entry(
    f: BinaryIO, entry: Entry, layout: Layout, budget: Budget, ctx: ScanContext,
    stats: dict[str, int], links: Links,
) -> None:
    members.check_name(ctx, entry.name, entry.offset)
    if entry.mode is not None and stat.S_ISLNK(entry.mode):
        if _add_link(f, entry, budget, ctx, links):
            return
    elif entry.mode is not None and not members.check_mode(ctx, entry.name, entry.mode,
                                                           entry.offset):
        return
    if entry.name.endswith("/") and entry.csize == 0:
        return  # a directory
    checked: CrcReader | None = None
    if entry.method == 0 and entry.csize == 0:
        stream: BinaryIO | None = io.BytesIO()  # nothing stored: nothing to read or CRC
    else:
        stream = open_entry(f, entry, budget, ctx)
        if stream is None:
            return
        checked = CrcReader(stream, entry.csize if entry.method == 0 else entry.usize)
    size = entry.csize if entry.method == 0 else entry.usize
    if entry.method == 0 and entry.csize != entry.usize and not entry.hidden:
        add_at(ctx, DIFFERENTIAL, entry.name, f"stored member with compressed size "
               f"{entry.csize} but uncompressed size {entry.usize}", entry.offset)
    role = Role.SCAN
    try:
        role = members.hand_over(ctx, layout, entry.name, checked or stream,  # type: ignore[arg-type]
                                 size)
        complete = role is not Role.STORAGE and (checked is None or checked.finish())
    except FormatError as exc:
        complete = False
        _stream_failed(ctx, entry, exc)
    if isinstance(stream, DecompressReader) and stream.error is not None:
        _stream_failed(ctx, entry, stream.error)  # also when the member's module caught it
        return
    if not complete:
        stats["crc_unverified"] += role is not Role.STORAGE
        return
    crc, covered = (checked.crc, checked.covered) if checked else (0, 0)
    if crc != entry.crc and not entry.hidden:
        add_at(ctx, BAD_CRC, entry.name, f"CRC-32 {crc:08x}, directory says "
               f"{entry.crc:08x}", entry.offset)
    if covered != size and not entry.hidden:
        add_at(ctx, DIFFERENTIAL, entry.name, f"{covered} bytes of data, directory "
               f"says {entry.usize}", entry.offset)
