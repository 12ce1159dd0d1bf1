"""The base of every raw byte stream auditor implements: slices, archive members,
decompressors, remote ranges, registry blobs, request bodies.

`io.RawIOBase.read(n)` fills a new bytearray through `readinto` and then shrinks
it to what was read. Shrinking fails (BufferError) while any view of that
bytearray is alive, and a sampling profiler that holds the frame of a `readinto`
that has just returned keeps that frame's views alive: Dask's worker profiler
does, so mirror scans on a Dask cluster failed now and then. `read` here copies
out what was read and never resizes.
"""

from __future__ import annotations

import io


class RawReader(io.RawIOBase):
    """A readable raw stream whose subclasses implement `readinto` only."""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        buf = bytearray(size)
        n = self.readinto(buf) or 0
        return bytes(buf) if n == size else bytes(memoryview(buf)[:n])
