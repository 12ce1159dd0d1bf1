"""A file on the Hub read through HTTP range requests, so format modules can parse it in place.

`RemoteFile` is a seekable raw stream: each read fetches only the bytes asked
for (plus a read-ahead that doubles while reads stay sequential), keeps a
bounded cache of fetched segments, counts every byte transferred, and refuses
to transfer more than a per-file budget — a format module that wanted the
whole of a multi-GB file gets a limit finding, not a silent full download.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from auditor.errors import LimitExceeded
from auditor.formats._lib.streams import SizedReader

MIN_CHUNK = 64 * 1024
MAX_CHUNK = 8 * 1024 * 1024
CACHE_BYTES = 32 * 1024 * 1024

Fetch = Callable[[int, int], bytes]  # (start, end) -> bytes [start, end)


@dataclass
class Transfer:
    """Bytes received from the Hub by one scan, across threads."""

    bytes: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
            self.requests += 1


class RemoteFile(SizedReader):
    def __init__(self, fetch: Fetch, size: int, budget: int, name: str = "") -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._budget = budget
        self._name = name
        self._pos = 0
        self._segments: list[tuple[int, bytes]] = []  # oldest first
        self._cached = 0
        self._chunk = MIN_CHUNK
        self._last_end = -1
        self.fetched = 0

    def readinto(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        total = 0
        while total < len(view) and self._pos < self._size:
            start, data = self._segment_at(self._pos) or self._load(len(view) - total)
            offset = self._pos - start
            n = min(len(data) - offset, len(view) - total)
            view[total : total + n] = data[offset : offset + n]
            total += n
            self._pos += n
        return total

    def _segment_at(self, pos: int) -> tuple[int, bytes] | None:
        for start, data in reversed(self._segments):
            if start <= pos < start + len(data):
                return start, data
        return None

    def _load(self, want: int) -> tuple[int, bytes]:
        start = self._pos
        self._chunk = min(self._chunk * 2, MAX_CHUNK) if start == self._last_end else MIN_CHUNK
        end = min(self._size, start + max(want, self._chunk))
        if self.fetched + (end - start) > self._budget:
            raise LimitExceeded(
                f"remote-only: parsing {self._name or 'this file'} needs more than "
                f"{self._budget} bytes of it; download the model to scan it fully", start)
        data = self._fetch(start, end)
        if len(data) != end - start:
            raise OSError(f"short read from the Hub: {len(data)} of {end - start} bytes "
                          f"at offset {start}")
        self.fetched += len(data)
        self._last_end = end
        self._segments.append((start, data))
        self._cached += len(data)
        while self._cached > CACHE_BYTES and len(self._segments) > 1:
            self._cached -= len(self._segments.pop(0)[1])
        return start, data
