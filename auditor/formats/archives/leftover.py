"""Bytes a format's structure does not account for, scanned as a member of their own.

A parser that stops at its format's end (the msgpack value, the tar end
marker, the last compressed stream, the zip end record) leaves whatever
follows unread. Flagging those bytes says they exist; handing them to the
engine says what they are, so a pickle or archive appended after the cover
format is graded as itself (critical for a live pickle) and not only as
"trailing data". Where the bytes cannot be re-read (a forward-only member
stream), the container is marked as partly analysed instead.
"""

from __future__ import annotations

from typing import BinaryIO

from auditor.formats._lib.streams import SliceReader
from auditor.formats.contract import ScanContext


def name_for(start: int, end: int | None, where: str) -> str:
    """The pseudo-member name of a byte range: no dots, so no extension is read into it."""
    span = f"{start}-{end}" if end is not None else f"{start}-"
    return f"(bytes {span} {where})"


def scan_range(ctx: ScanContext, f: BinaryIO, start: int, end: int, where: str) -> None:
    """Hand bytes [start, end) of a seekable `f` to the engine, in place."""
    stream = SliceReader(f, start, end - start)
    ctx.merge_member(ctx.scan_member(name_for(start, end, where), stream,  # type: ignore[arg-type]
                                     end - start))


def scan_rest(ctx: ScanContext, f: BinaryIO, start: int, where: str) -> None:
    """Hand everything from `start` to the end of `f` to the engine (seekable or not: a
    forward-only `f` must be positioned at `start`)."""
    if f.seekable():
        end = f.seek(0, 2)
        scan_range(ctx, f, start, end, where)
        return
    ctx.merge_member(ctx.scan_member(name_for(start, None, where), f, None))
