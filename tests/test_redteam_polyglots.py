"""Red team: polyglots, bytes that are a valid file of one format and a live pickle too.

The sniffer hands a file to the first format that claims it; `pickle.load`
(and torch's legacy path, joblib) does not care what a file claims to be.
A tar header's name field, or a msgpack map whose first key doubles as a
BINBYTES8 length, can carry a pickle the claiming format never looks at.
Controls prove each polyglot parses in its cover format and runs the payload
when unpickled.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.scanning.options import ScanOptions
from tests.test_archive_zip import scan, write


def payload(canary: Path) -> bytes:
    return b"cos\nsystem\n(S'touch " + str(canary).encode() + b"'\ntR."


def tar_polyglot(canary: Path) -> bytes:
    """A valid tar whose first member is *named* like a protocol 0 pickle."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(payload(canary).decode())
        assert len(info.name) <= 100, "a longer name is split into the ustar prefix field"
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


def msgpack_polyglot(canary: Path, skip_hi: int = 0x01, opcodes: bytes | None = None) -> bytes:
    """A valid 14-entry msgpack map; to the unpickler its first bytes are BINBYTES8 over
    the map's entries, and the payload's ASCII bytes are msgpack fixints in an array.
    The first key is the 7 length bytes after the fixstr(7) marker, so they stay ASCII."""
    tail = b"0" + (payload(canary) if opcodes is None else opcodes)  # POP the bytes, then run
    length = 0xA7 | skip_hi << 8
    body = bytearray()
    for i in range(12):
        body += b"\xa3" + f"k{i:02d}".encode() + b"\x01"
    array = b"\xdc" + struct.pack(">H", len(tail)) if len(tail) < 1 << 16 else (
        b"\xdd" + struct.pack(">I", len(tail)))
    body += b"\xa3end" + array
    pad = length - len(body) - 5
    first_value = b"\xdb" + struct.pack(">I", pad) + b"a" * pad
    return b"\x8e" + struct.pack("<Q", length) + first_value + bytes(body) + tail


POLYGLOTS = {"tar": (tar_polyglot, "tar"), "msgpack": (msgpack_polyglot, "msgpack")}


@pytest.mark.parametrize("kind", sorted(POLYGLOTS))
def test_polyglot_pickle_is_graded_as_a_pickle(tmp_path, run_cli, kind, monkeypatch):
    build, cover = POLYGLOTS[kind]
    folder = tmp_path / "model"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)  # a relative canary keeps the tar name short on any machine
    (folder / "weights.dat").write_bytes(build(Path("CANARY")))
    result = run_cli("scan", folder, "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)["models"][0]["files"][0]
    assert report["format"] == cover  # the cover format is still what the file is named as
    assert any(f["rule"] == "AUD-PKL-001" and f["severity"] == "critical"
               for f in report["findings"])
    assert not (tmp_path / "CANARY").exists()


@pytest.mark.parametrize("kind", sorted(POLYGLOTS))
def test_control_polyglot_runs_when_unpickled(tmp_path, kind):
    code = "import pickle, sys\npickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code], input=POLYGLOTS[kind][0](Path("CANARY")),
                   capture_output=True, timeout=60, cwd=tmp_path)
    assert (tmp_path / "CANARY").exists()


def test_control_polyglots_are_valid_cover_files():
    with tarfile.open(fileobj=io.BytesIO(tar_polyglot(Path("C"))), mode="r") as tar:
        assert tar.getnames()[0].startswith("cos\nsystem")
    msgpack = pytest.importorskip("msgpack")
    assert len(msgpack.unpackb(msgpack_polyglot(Path("C")))) == 14


def test_ordinary_tar_and_msgpack_are_not_pickles(tmp_path, run_cli):
    msgpack = pytest.importorskip("msgpack")
    folder = tmp_path / "model"
    folder.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("config.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    (folder / "bundle.tar").write_bytes(buf.getvalue())
    state = {f"layer_{i}": {"kernel": i} for i in range(14)}  # a 14-entry map, like the polyglot
    (folder / "flax_model.msgpack").write_bytes(msgpack.packb(state))
    result = run_cli("scan", folder, "--format", "json")
    files = json.loads(result.out)["models"][0]["files"]
    assert not any(f["rule"].startswith("AUD-PKL") for fr in files for f in fr["findings"])


def far_msgpack_polyglot(canary: Path) -> bytes:
    """The same polyglot with a BINBYTES8 skip that ends past the engine's 64 KiB head."""
    return msgpack_polyglot(canary, skip_hi=0x0200)


def test_polyglot_with_payload_beyond_the_head(tmp_path, run_cli):
    """The head's pickle reading is still going at 64 KiB: it is followed to the payload."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.dat").write_bytes(far_msgpack_polyglot(tmp_path / "CANARY"))
    result = run_cli("scan", folder, "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)["models"][0]["files"][0]
    assert report["format"] == "msgpack"
    assert any(f["rule"] == "AUD-PKL-001" and f["severity"] == "critical"
               for f in report["findings"])
    assert not (tmp_path / "CANARY").exists()


def test_control_far_polyglot_is_live_and_valid_msgpack(tmp_path):
    msgpack = pytest.importorskip("msgpack")
    canary = tmp_path / "CANARY"
    data = far_msgpack_polyglot(canary)
    assert len(msgpack.unpackb(data)) == 14
    subprocess.run([sys.executable, "-c", "import pickle, sys\n"
                    "pickle.loads(sys.stdin.buffer.read())"], input=data, capture_output=True,
                   timeout=60)
    assert canary.exists()


def msgpack_with_huge_string() -> bytes:
    """The far polyglot whose pickle reading, once past the head, meets a BINUNICODE of
    2 GiB (its length bytes are msgpack fixints too): the reading stops at a limit before
    a payload after it could be ruled out."""
    return msgpack_polyglot(Path("C"), skip_hi=0x0200, opcodes=b"X\x7f\x7f\x7f\x7f")


def test_pickle_reading_stopped_by_a_limit_is_not_clean(tmp_path):
    msgpack = pytest.importorskip("msgpack")
    data = msgpack_with_huge_string()
    assert len(msgpack.unpackb(data)) == 14  # the control: a valid msgpack map
    report = scan(write(tmp_path, data, "flax_model.msgpack"))
    assert report.format == "msgpack"
    assert "AUD-SCAN-008" in {f.rule for f in report.findings}
    assert report.coverage.value == "partial"


# Content after the cover format's end: graded as what it is, wherever it sits.
def _zip_bytes(**kwargs) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/config.json", '{"a": 1}\n')
        zf.writestr("a/notes.txt", "notes\n")
        if "comment" in kwargs:
            zf.comment = kwargs["comment"]
    return buf.getvalue()


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("config.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"ok\n"))
    return buf.getvalue()


def _zip_with_gap(pickle: bytes) -> bytes:
    """A pickle between the members and the central directory (offsets patched)."""
    data = _zip_bytes()
    cd = data.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", data, cd + 16)[0]
    patched = bytearray(data[:cd_offset] + pickle + data[cd_offset:])
    end = cd + len(pickle)
    struct.pack_into("<I", patched, end + 16, cd_offset + len(pickle))
    return bytes(patched)


APPENDED = {
    "msgpack": ("flax_model.msgpack",
                lambda p: bytes.fromhex("81a161c3") + p, "after the msgpack value"),
    "tar": ("bundle.tar", lambda p: _tar_bytes() + p, "after the tar end marker"),
    "tar.gz-inner": ("bundle.tar.gz", lambda p: gzip.compress(_tar_bytes() + p, mtime=0),
                     "after the tar end marker"),
    "gzip": ("model.pkl.gz", lambda p: gzip.compress(b"(lp0\n.", mtime=0) + p,
             "after the gzip stream"),
    "bz2": ("model.pkl.bz2", lambda p: bz2.compress(b"(lp0\n.") + p, "after the bz2 stream"),
    "zip-end": ("bundle.zip", lambda p: _zip_bytes() + p, "after the end record"),
    "zip-gap": ("bundle.zip", _zip_with_gap, "between members"),
}


@pytest.mark.parametrize("kind", sorted(APPENDED))
def test_pickle_after_the_cover_format_is_graded_as_a_pickle(tmp_path, kind):
    name, build, where = APPENDED[kind]
    report = scan(write(tmp_path, build(payload(tmp_path / "CANARY")), name))
    critical = [f for f in report.findings if f.severity.label == "critical"]
    assert critical and all(where in (f.location.member or "") for f in critical), \
        report.findings
    assert not (tmp_path / "CANARY").exists()


@pytest.mark.parametrize(("name", "data"), [
    ("bundle.zip", _zip_bytes(comment=b"built by the release job, 2026-12-01")),
    ("bundle.tar", _tar_bytes()),  # tarfile pads to a 10 KiB record with zeros
    ("bundle.tar.gz", gzip.compress(_tar_bytes(), mtime=0)),
    ("notes.txt.gz",
     gzip.compress(b"first part\n", mtime=0) + gzip.compress(b"second part\n", mtime=0)),
])
def test_padding_comments_and_multi_stream_files_stay_clean(tmp_path, name, data):
    report = scan(write(tmp_path, data, name))
    assert not [f for f in report.findings if f.severity.label in ("medium", "high", "critical")]


# A safetensors header length is 8 little-endian bytes: its first byte is a protocol 0 line
# opcode for many header sizes. The loader stops at a line its opcode cannot parse (PERSID
# without persistent_load, a NUL or '{' in a LONG/FLOAT/GET line, an unquoted STRING, a
# GLOBAL/INST name that is no identifier, PUT on an empty stack), so nothing after the head
# can run and the file is read once. INT of "\0" (strtol of the empty C string) and UNICODE
# do parse: the loader reads on to the first newline, and so does the follow-through.
LINE_OPCODES = b"FLSPgpci"


def line_opcode_safetensors(first: int, floats: int = 40_000) -> bytes:
    """A valid safetensors file (zero weights) whose header length's low byte is `first`."""
    raw = json.dumps({"w": {"dtype": "F32", "shape": [floats],
                            "data_offsets": [0, floats * 4]}}, separators=(",", ":")).encode()
    size = first + 256 * -(-max(0, len(raw) - first) // 256)
    return struct.pack("<Q", size) + raw.ljust(size) + bytes(floats * 4)


@pytest.mark.parametrize("first", [*LINE_OPCODES, 0x149], ids=lambda b: f"0x{b:x}")
def test_safetensors_header_length_as_a_dead_line_opcode_is_read_once(tmp_path, first):
    data = line_opcode_safetensors(first)
    assert data[0] == first & 0xFF
    path = write(tmp_path, data, "model.safetensors")
    result = pipeline.scan(path, ScanOptions(jobs=1))
    (report,) = result.models[0].files
    assert report.format == "safetensors"
    assert not report.findings
    assert result.bytes_read == len(data)


@pytest.mark.parametrize("first", b"IV", ids=lambda b: chr(b))
def test_safetensors_header_length_as_a_live_line_opcode_is_followed(tmp_path, first):
    data = line_opcode_safetensors(first)
    report = scan(write(tmp_path, data, "model.safetensors"))
    assert report.format == "safetensors"
    assert not report.findings  # the line runs to the end of the file: truncated, no payload
