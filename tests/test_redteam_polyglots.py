"""Red team: polyglots, bytes that are a valid file of one format and a live pickle too.

The sniffer hands a file to the first format that claims it; `pickle.load`
(and torch's legacy path, joblib) does not care what a file claims to be.
A tar header's name field, or a msgpack map whose first key doubles as a
BINBYTES8 length, can carry a pickle the claiming format never looks at.
Controls prove each polyglot parses in its cover format and runs the payload
when unpickled.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest


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


def msgpack_polyglot(canary: Path, skip_hi: int = 0x01) -> bytes:
    """A valid 14-entry msgpack map; to the unpickler its first bytes are BINBYTES8 over
    the map's entries, and the payload's ASCII bytes are msgpack fixints in an array.
    The first key is the 7 length bytes after the fixstr(7) marker, so they stay ASCII."""
    tail = b"0" + payload(canary)  # POP the bytes object, then the payload
    length = 0xA7 | skip_hi << 8
    body = bytearray()
    for i in range(12):
        body += b"\xa3" + f"k{i:02d}".encode() + b"\x01"
    body += b"\xa3end" + b"\xdc" + struct.pack(">H", len(tail))
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
