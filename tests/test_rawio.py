"""Our raw streams read without resizing a buffer someone may still be viewing.

A sampling profiler (Dask's worker profiler) can hold the frame of a `readinto`
that has just returned, and with it the memoryviews of the caller's buffer;
`io.RawIOBase.read` then failed to shrink that buffer (BufferError) and the
mirror scan on a Dask cluster died now and then. Holding every frame with
`sys.setprofile` makes that moment deterministic.
"""

from __future__ import annotations

import ast
import io
import sys
from pathlib import Path

from auditor.formats._lib.streams import ReplayReader
from auditor.integrity.hashing import HashingReader

PACKAGE = Path(__file__).resolve().parent.parent / "auditor"


def _with_frames_held(read):
    held = []

    def keep(frame, event, arg):
        if event == "return":
            held.append(frame)  # as a sampling profiler may: the frame's views stay alive

    sys.setprofile(keep)
    try:
        return read()
    finally:
        sys.setprofile(None)


def test_a_hashing_read_shorter_than_asked_survives_a_profiler_holding_its_frames(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 10)
    with path.open("rb", buffering=0) as raw:
        assert _with_frames_held(lambda: HashingReader(raw, ["sha256"]).read(100)) == b"abc" * 10


def test_a_stream_of_ours_reads_short_while_a_profiler_holds_its_frames():
    reader = ReplayReader(b"head-", io.BytesIO(b"rest"))
    assert _with_frames_held(lambda: reader.read(100)) == b"head-"
    assert _with_frames_held(lambda: reader.read()) == b"rest"


def test_every_raw_stream_of_ours_is_a_raw_reader():
    """A new stream class on io.RawIOBase would bring the resizing `read` back."""
    direct = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "rawio.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(base) in ("io.RawIOBase", "RawIOBase") for base in node.bases):
                direct.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert direct == []
