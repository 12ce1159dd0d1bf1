"""What zip and tar share: member safety rules, member roles, handing members to the engine.

Zip and tar differ in how members are found. What makes a member dangerous
(a path that escapes the extraction folder, a link, a device, a name used
twice, too many members) and how a member is handed back to the engine are
the same, so they live here once. A container layout (a PyTorch checkpoint,
an npz) only says which members are not ordinary files to scan.
"""

from __future__ import annotations

import enum
import io
import re
import stat
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from auditor.formats._lib.streams import ReplayReader
from auditor.formats.contract import ScanContext
from auditor.model import FormatId, Rule, Severity
from auditor.rawio import RawReader

TRAVERSAL = Rule(
    "AUD-ARC-010", Severity.HIGH, "Archive member path escapes the extraction folder",
    "A member named with '..' components is written outside the folder it is extracted to "
    "(zip-slip): it can overwrite code or configuration that runs later.",
    "Repack the archive with relative member paths that stay inside it.",
)
ABSOLUTE = Rule(
    "AUD-ARC-011", Severity.HIGH, "Archive member has an absolute path",
    "An absolute member path ('/etc/...', 'C:\\...') targets a fixed location on the machine "
    "that unpacks it.",
    "Repack the archive with relative member paths.",
)
LINK = Rule(
    "AUD-ARC-012", Severity.HIGH, "Archive link points outside the extraction folder",
    "A symbolic or hard link whose target is absolute or climbs out of the folder (directly "
    "or through other links) makes the extractor, later members and the loader read or write "
    "outside it (a link to ~/.ssh, to site-packages). Links that stay inside are not flagged.",
    "Repack the archive with regular files, or links to members inside it.",
)
SPECIAL = Rule(
    "AUD-ARC-013", Severity.HIGH, "Archive member is a device, FIFO or socket",
    "Device and FIFO members create special files when unpacked; they have no place in a "
    "model archive and can hang or attack the machine that unpacks them.",
    "Repack the archive with regular files only.",
)
TOO_MANY = Rule(
    "AUD-ARC-014", Severity.HIGH, "Archive has more members than the scan limit",
    "Millions of members exhaust scanners and unpackers; members beyond the limit were not "
    "inspected.",
    "Inspect the archive by hand; if it is legitimate, raise max_members.",
)
DUPLICATE = Rule(
    "AUD-ARC-008", Severity.HIGH, "Archive holds two members with the same name",
    "Readers disagree on which copy of a duplicated name they return (first or last), so a "
    "scanner and a loader can read different bytes under the same name.",
    "Repack the archive so that every member name is unique.",
)
RULES = (DUPLICATE, TRAVERSAL, ABSOLUTE, LINK, SPECIAL, TOO_MANY)

# Member CRCs are checked by finishing the read of a member the format module
# did not read to its end, up to this many bytes (larger members: unverified,
# so that a big numeric array is not read a second time just for its CRC).
CRC_DRAIN_LIMIT = 16 * 1024 * 1024
_CHUNK = 1 << 20
_BUFFER = 1 << 16


class Role(enum.Enum):
    """What a container layout says a member is; everything not special is scanned."""

    SCAN = "scan"  # an ordinary member: sniffed and scanned by the engine
    STORAGE = "storage"  # raw tensor bytes: only the head is sniffed
    METADATA = "metadata"  # a few bytes of framework bookkeeping
    CODE = "code"  # source code shipped in the container (TorchScript)
    RECORDS = "records"  # pickles with raw bytes between them, walked by the layout


Handler = Callable[[ScanContext, str, BinaryIO, "int | None"], None]


@dataclass(frozen=True)
class Layout:
    """A kind of container recognised from its member names.

    `detect(names)` returns the format (e.g. torchscript) or None, one of
    `formats`; `role(name)` classifies a member; `handlers` handle the non-SCAN roles.
    """

    detect: Callable[[Sequence[str]], FormatId | None]
    role: Callable[[str], Role]
    formats: tuple[FormatId, ...]
    handlers: dict[Role, Handler] = field(default_factory=dict)


GENERIC = Layout(detect=lambda names: None, role=lambda name: Role.SCAN, formats=())


def choose_layout(
    layouts: Sequence[Layout], names: Sequence[str], default: FormatId
) -> tuple[Layout, FormatId]:
    """The first layout that recognises `names`, else the generic one named `default`."""
    for layout in layouts:
        fmt = layout.detect(names)
        if fmt is not None:
            return layout, fmt
    return GENERIC, default


def peek(f: BinaryIO, n: int) -> tuple[bytes, BinaryIO]:
    """The first `n` bytes, and a stream that still starts at byte 0 (seekable or not)."""
    head = f.read(n)
    if f.seekable():
        f.seek(0)
        return head, f
    return head, ReplayReader(head, f)  # type: ignore[return-value]


def member_path(ctx: ScanContext, name: str) -> str:
    return f"{ctx.member}/{name}" if ctx.member else name


def add_at(
    ctx: ScanContext, rule: Rule, name: str | None, detail: str, offset: int | None = None
) -> None:
    """A finding located at member `name` of this container (or the container itself)."""
    member = ctx.member if name is None else member_path(ctx, name)
    ctx.result.findings.append(rule.finding(ctx.file, detail, member=member, offset=offset))


DRIVE = re.compile(r"^[A-Za-z]:")  # a Windows drive: absolute on extraction


def check_name(ctx: ScanContext, name: str, offset: int | None = None) -> None:
    """Flag member names that escape the folder they are unpacked into."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or DRIVE.match(norm):
        add_at(ctx, ABSOLUTE, name, f"absolute member path {name!r}", offset)
    if ".." in norm and ".." in norm.split("/"):  # split only names that may climb
        add_at(ctx, TRAVERSAL, name, f"member path {name!r} climbs out with '..'", offset)


def check_mode(ctx: ScanContext, name: str, mode: int, offset: int | None = None) -> bool:
    """Flag special-file members by their unix mode (links are judged by `links`); True when
    it is a regular file."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        add_at(ctx, SPECIAL, name, f"special file member (mode {mode:o})", offset)
        return False
    return True


def check_duplicates(ctx: ScanContext, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            add_at(ctx, DUPLICATE, name, f"member name {name!r} appears more than once")
        seen.add(name)


def hand_over(
    ctx: ScanContext, layout: Layout, name: str, stream: BinaryIO, size: int | None
) -> Role:
    """Give one member to its layout handler or, by default, to the engine.

    A member with no stored bytes comes as an empty `io.BytesIO`: it is
    sniffed and handled like any other, without the per-member readers a window on
    the archive needs (what 100,000 empty members would cost).
    """
    role = layout.role(name)
    handler = layout.handlers.get(role) if layout.handlers else None
    if handler is None:
        buffered = stream if isinstance(stream, io.BytesIO) else io.BufferedReader(
            stream, _BUFFER)  # type: ignore[arg-type]
        ctx.merge_member(ctx.scan_member(name, buffered, size))  # type: ignore[arg-type]
    else:
        handler(ctx, name, stream, size)
    return role


class CrcReader(RawReader):
    """Pass-through that CRC-32s a member's bytes the first time they are read in order.

    Format modules read members as they like (seeking or not); `finish()` reads
    whatever was not yet covered so the CRC can be compared, within a bound.
    """

    def __init__(self, base: BinaryIO, size: int | None) -> None:
        super().__init__()
        self._base = base
        self._size = size
        self._pos = 0
        self.crc = 0
        self.covered = 0  # bytes [0, covered) went through the CRC

    def seekable(self) -> bool:
        return self._base.seekable()

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._base.seek(offset, whence)
        return self._pos

    def readinto(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        n = self._base.readinto(view) or 0  # type: ignore[attr-defined]
        start, end = self._pos, self._pos + n
        if start <= self.covered < end:
            self.crc = zlib.crc32(view[self.covered - start : n], self.crc)
            self.covered = end
        self._pos = end
        return n

    def finish(self, limit: int = CRC_DRAIN_LIMIT) -> bool:
        """Read the rest so the CRC covers the whole member; False when over `limit`."""
        if self._size is not None and self._size - self.covered > limit:
            return False
        if self._pos != self.covered:
            if not self.seekable():
                return False
            self.seek(self.covered)
        # Sized to what is left (plus one byte, to see data past the declared end), so a
        # finished member costs no 1 MiB allocation; it grows if the member runs on.
        left = _CHUNK if self._size is None else max(self._size - self.covered, 0) + 1
        buf = bytearray(min(left, _CHUNK))
        read = 0
        while n := self.readinto(buf):
            read += n
            if read > limit:
                return False
            if len(buf) < _CHUNK:
                buf = bytearray(_CHUNK)
        return True
