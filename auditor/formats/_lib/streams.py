"""Stream helpers: adapters that let containers hand members to the engine without copying,
and the capped read of formats parsed whole."""

from __future__ import annotations

import os
from typing import BinaryIO

from auditor.errors import LimitExceeded
from auditor.rawio import RawReader


def read_capped(f: BinaryIO, limit: int, what: str) -> bytes:
    """All of a stream that a format parses whole, or LimitExceeded past `limit` bytes.

    Reads one byte more than the limit, so an over-limit file is refused
    without ever holding more than `limit` + 1 bytes.
    """
    data = f.read(limit + 1)
    if len(data) > limit:
        raise LimitExceeded(f"{what} larger than {limit} bytes")
    return data


class SizedReader(RawReader):
    """A readable, seekable raw stream of known size: position and seeking written once.

    Subclasses set `_size` and `_pos` and implement `readinto`.
    """

    _size: int
    _pos: int

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        pos = base + offset
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos


class SliceReader(SizedReader):
    """A seekable window [start, start+length) over a seekable stream.

    Used for members stored uncompressed inside a container: the member is
    scanned in place, never copied to memory or disk.
    """

    def __init__(self, base: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._base = base
        self._start = start
        self._size = length
        self._pos = 0

    def readinto(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        want = max(0, min(len(view), self._size - self._pos))
        if want == 0:
            return 0
        self._base.seek(self._start + self._pos)
        data = self._base.read(want)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


class ReplayReader(RawReader):
    """Forward-only stream that replays an already-read head before the rest.

    Lets the engine sniff a non-seekable member (a decompressing stream) and
    still give the format module the stream from byte 0.
    """

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._rest = rest
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if self._pos < len(self._head):
            chunk = self._head[self._pos : self._pos + len(view)]
            view[: len(chunk)] = chunk
            self._pos += len(chunk)
            return len(chunk)
        data = self._rest.read(len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)
