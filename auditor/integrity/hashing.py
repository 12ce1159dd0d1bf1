"""Streaming digests: the file is hashed in the same pass that scans it.

`HashingReader` is a seekable raw stream over a file. Bytes are hashed the
first time the read position passes them, in file order: a forward seek hashes
the bytes it skips, a backward seek re-reads already hashed bytes (from the
page cache) without hashing them again. `finish()` hashes whatever the format
module never asked for. So the bulk of a file is read once, whatever the
format module does, and memory stays at one chunk buffer.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable

from auditor.rawio import RawReader

CHUNK = 1 << 20
GIT_SHA1 = "git-sha1"  # git's blob id (the Hub's `blobId`): sha1 over "blob <size>\0" + content


def new_hasher(name: str, size: int) -> hashlib._Hash:
    """A hashlib object for `name`; git's blob id needs the size up front, so it streams too."""
    if name == GIT_SHA1:
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % size)
        return h
    return hashlib.new(name)


class HashingReader(RawReader):
    def __init__(
        self,
        raw: io.RawIOBase,
        algorithms: Iterable[str] = ("sha256",),
        on_progress: Callable[[int], None] | None = None,
        chunk: int = CHUNK,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._hashers = {
            name: new_hasher(name, self.size if name == GIT_SHA1 else 0) for name in algorithms
        }
        self._on_progress = on_progress
        self._pos = 0
        self._hashed = 0
        self._raw_pos = 0
        self._buf = bytearray(chunk)
        self.bytes_read = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    @property
    def size(self) -> int:
        return os.fstat(self._raw.fileno()).st_size

    def _raw_readinto(self, view: memoryview) -> int:
        if self._raw_pos != self._pos:
            self._raw.seek(self._pos)
            self._raw_pos = self._pos
        n = self._raw.readinto(view) or 0
        self._raw_pos += n
        self.bytes_read += n
        return n

    def _update(self, view: memoryview) -> None:
        for h in self._hashers.values():
            h.update(view)
        if self._on_progress is not None:
            self._on_progress(len(view))

    def _advance(self, target: int | None) -> None:
        """Hash from the hashed mark up to `target` (or EOF when None)."""
        keep = self._pos
        self._pos = self._hashed
        view = memoryview(self._buf)
        try:
            while target is None or self._hashed < target:
                want = len(view) if target is None else min(len(view), target - self._hashed)
                n = self._raw_readinto(view[:want])
                if n == 0:
                    break
                self._update(view[:n])
                self._hashed += n
                self._pos += n
        finally:
            self._pos = keep

    def readinto(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if self._pos > self._hashed:
            self._advance(self._pos)
            if self._pos > self._hashed:  # seeked past EOF
                return 0
        start = self._pos
        total = 0
        while total < len(view):
            n = self._raw_readinto(view[total:])
            if n == 0:
                break
            total += n
            self._pos += n
        end = start + total
        if end > self._hashed:
            self._update(view[self._hashed - start : total])
            self._hashed = end
        return total

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self.size - self._pos, 0)
        return super().read(size)

    def finish(self) -> tuple[dict[str, str], int]:
        """Hash the rest of the file; return the digests and the hashed length."""
        self._advance(None)
        return {name: h.hexdigest() for name, h in self._hashers.items()}, self._hashed


def digest_file(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hash a whole file outside a scan (signing, verification, cache checks)."""
    h = new_hasher(algorithm, os.path.getsize(path) if algorithm == GIT_SHA1 else 0)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    return h.hexdigest()
