"""HashingReader: whatever a format module does with the stream, the digest is the file's."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st

from auditor.integrity.hashing import HashingReader, digest_file

# An operation on the stream: ("seek", offset, whence) or ("read", size).
seek_op = st.one_of(
    st.tuples(st.just("seek"), st.integers(0, 600), st.just(os.SEEK_SET)),
    st.tuples(st.just("seek"), st.integers(-300, 300), st.just(os.SEEK_CUR)),
    st.tuples(st.just("seek"), st.integers(-600, 50), st.just(os.SEEK_END)),
)
read_op = st.tuples(st.just("read"), st.integers(-1, 700))
operations = st.lists(st.one_of(seek_op, read_op), max_size=25)


@contextmanager
def file_with(data: bytes) -> Iterator[io.FileIO]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.bin")
        with open(path, "wb") as f:
            f.write(data)
        with open(path, "rb", buffering=0) as raw:
            yield raw


def apply(stream, data: bytes, ops) -> int:
    """Run `ops`, checking every read against `data`; return the bytes re-read below the mark.

    The mark is how far the file has been hashed: a read starting below it
    re-reads what it overlaps; a read starting past it first hashes the gap.
    """
    pos = mark = reread = 0
    for op in ops:
        if op[0] == "seek":
            _, offset, whence = op
            base = {os.SEEK_SET: 0, os.SEEK_CUR: pos, os.SEEK_END: len(data)}[whence]
            if base + offset < 0:
                continue
            pos = stream.seek(offset, whence)
            assert pos == base + offset
        else:
            got = stream.read(op[1])
            want = data[pos:] if op[1] < 0 else data[pos : pos + op[1]]
            assert got == want
            reread += max(0, min(pos + len(got), mark) - pos)
            mark = max(mark, min(pos, len(data)), pos + len(got))
            pos += len(got)
        assert stream.tell() == pos
    return reread


@given(data=st.binary(max_size=500), ops=operations, chunk=st.integers(1, 64))
def test_any_seeks_and_reads_then_finish_give_the_file_digest(data, ops, chunk):
    with file_with(data) as raw:
        progress: list[int] = []
        reader = HashingReader(raw, ("sha256", "sha512"), progress.append, chunk=chunk)
        reread = apply(reader, data, ops)
        digests, size = reader.finish()
    assert digests == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest(),
    }
    assert size == len(data)
    assert sum(progress) == len(data)  # every byte hashed exactly once
    assert reader.bytes_read <= len(data) + reread


@given(data=st.binary(max_size=3000), ops=operations)
def test_digest_is_right_through_the_engines_read_buffer(data, ops):
    with file_with(data) as raw:
        reader = HashingReader(raw, chunk=256)
        apply(io.BufferedReader(reader, 128), data, ops)
        digests, _ = reader.finish()
    assert digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_bulk_of_a_file_is_read_once_when_only_the_head_is_parsed():
    data = os.urandom(3 * 1024 * 1024 + 17)
    with file_with(data) as raw:
        reader = HashingReader(raw)
        buffered = io.BufferedReader(reader, 1 << 16)
        buffered.read(64 * 1024)  # sniff
        buffered.seek(0)
        buffered.read(4096)  # a header parser re-reads the head
        digests, _ = reader.finish()
    assert digests["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(data) <= reader.bytes_read <= len(data) + 2 * (1 << 16)


def test_seek_past_the_end_reads_nothing_and_the_digest_still_covers_the_file():
    data = b"abc" * 1000
    with file_with(data) as raw:
        reader = HashingReader(raw, chunk=7)
        reader.seek(len(data) + 100)
        assert reader.read(10) == b""
        digests, size = reader.finish()
    assert size == len(data)
    assert digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_digest_file_matches_hashlib(tmp_path):
    path = tmp_path / "w.bin"
    data = os.urandom(2 * 1024 * 1024 + 3)
    path.write_bytes(data)
    assert digest_file(path) == hashlib.sha256(data).hexdigest()
    assert digest_file(path, "sha384") == hashlib.sha384(data).hexdigest()
