"""Red team: pickles hidden where a scanner may not look but a loader does.

Each test builds a live payload (it would `touch` a canary file if loaded),
scans it with the default gate and expects exit 1 with a finding of at least
high severity; the canary must never appear. Controls prove the hiding places
are real: the stock loader runs the payload from the same bytes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from tests import pickle_corpus as pc

BLOCKING = {"critical", "high"}


def evil0(canary: Path) -> bytes:
    """Protocol 0: no PROTO opcode, so nothing but the opcodes says it is a pickle."""
    return b"cos\nsystem\n(S'touch " + str(canary).encode() + b"'\ntR."


def evil2(canary: Path) -> bytes:
    return pc.proto(2) + pc.system_call(str(canary), via=pc.glob) + pc.STOP


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def npy_bytes(descr: str, payload: bytes) -> bytes:
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def scan(run_cli, folder: Path) -> tuple[int, set[str], list[str]]:
    """Exit code, severities and rule ids of one scan of `folder`."""
    result = run_cli("scan", folder, "--format", "json")
    doc = json.loads(result.out)
    found = [f for m in doc["models"] for fr in m["files"] for f in fr["findings"]]
    found += [f for m in doc["models"] for f in m["findings"]]
    return result.code, {f["severity"] for f in found}, [f["rule"] for f in found]


def assert_blocked(run_cli, tmp_path: Path, files: dict[str, bytes], rule: str) -> None:
    folder = tmp_path / "model"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    code, severities, rules = scan(run_cli, folder)
    assert code == 1, rules
    assert severities & BLOCKING
    assert rule in rules
    assert not (tmp_path / "CANARY").exists()


def loads_in_child(data: bytes) -> None:
    """What `pickle.load` / `torch.load`'s legacy path does with the bytes (in a child)."""
    code = "import io, pickle, sys\npickle.load(io.BytesIO(sys.stdin.buffer.read()))"
    subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60)


def broken_protocol0(canary: Path) -> bytes:
    return evil0(canary)[:-1] + b" and then some words of plain text\n"


def long_first_opcode(canary: Path, length: int = 5000) -> bytes:
    return b"S'" + b"a" * length + b"'\n0" + evil0(canary)


def test_protocol0_payload_then_garbage_is_not_text(tmp_path, run_cli):
    """nullifAI broken stream, protocol 0 flavour: payload first, then text; the loader runs
    the payload before it fails, so the file is a pickle, not a text file, whatever its name."""
    assert_blocked(run_cli, tmp_path, {"weights.dat": broken_protocol0(tmp_path / "CANARY")},
                   "AUD-PKL-001")


@pytest.mark.parametrize("length", [5000, 70_000])
def test_protocol0_first_opcode_longer_than_the_sniff_window(tmp_path, run_cli, length):
    """A first string longer than the sniffing window (or the whole sniffed head) leaves the
    sniffer undecided; the loader reads on and runs the payload after it."""
    data = long_first_opcode(tmp_path / "CANARY", length)
    assert_blocked(run_cli, tmp_path, {"weights.dat": data}, "AUD-PKL-001")


def broken_inst(canary: Path) -> bytes:
    """INST imports and calls in one opcode; garbage follows."""
    return b"(S'touch " + str(canary).encode() + b"'\nios\nsystem\n" + b"trailing words\n"


def broken_obj(canary: Path) -> bytes:
    return b"(cos\nsystem\nS'touch " + str(canary).encode() + b"'\no" + b"trailing words\n"


@pytest.mark.parametrize("build", [broken_inst, broken_obj])
def test_protocol0_call_opcodes_then_garbage_are_not_text(tmp_path, run_cli, build):
    assert_blocked(run_cli, tmp_path, {"notes": build(tmp_path / "CANARY")}, "AUD-PKL-001")


@pytest.mark.parametrize("build", [broken_protocol0, long_first_opcode, broken_inst, broken_obj])
def test_control_protocol0_hiding_places_run_in_the_loader(tmp_path, build):
    canary = tmp_path / "CANARY"
    loads_in_child(build(canary))
    assert canary.exists()


def test_text_files_that_start_like_opcodes_stay_text(tmp_path, run_cli):
    """Benign control: a YAML/vocab file starting with an opcode letter is not claimed."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "vocab.txt").write_text("cat\ndog\nbird\n" * 50)
    (folder / "notes.txt").write_text("checkpoint: best\nmodel: tiny\n" + "S" * 6000 + "\n")
    (folder / "merges.txt").write_text("#version: 0.2\nI Q\nV ersion\n")
    code, severities, rules = scan(run_cli, folder)
    assert code == 0, rules
    assert not severities & BLOCKING


COMPRESSORS = {
    "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zlib": zlib.compress,
    "lzma-alone": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_pickle_under_a_weights_name(tmp_path, run_cli, kind):
    """A `.bin` that is a compressed pickle: joblib and users decompress and load it."""
    data = COMPRESSORS[kind](evil2(tmp_path / "CANARY"))
    assert_blocked(run_cli, tmp_path, {"pytorch_model.bin": data}, "AUD-PKL-001")


def test_pickle_in_zip_in_zip_in_gzip(tmp_path, run_cli):
    inner = zip_bytes({"archive/data.pkl": evil2(tmp_path / "CANARY")})
    data = gzip.compress(zip_bytes({"inner.zip": inner}))
    assert_blocked(run_cli, tmp_path, {"model.gz": data}, "AUD-PKL-001")


def test_pickle_in_gzipped_tar(tmp_path, run_cli):
    data = gzip.compress(tar_bytes({"model/data.pkl": evil2(tmp_path / "CANARY")}))
    assert_blocked(run_cli, tmp_path, {"model.tar.gz": data}, "AUD-PKL-001")


@pytest.mark.parametrize("member", ["archive/constants.pkl", "archive/extra", "archive/version",
                                    "weird prefix/data.pkl"])
def test_pickle_in_torch_zip_under_an_unusual_member_name(tmp_path, run_cli, member):
    """Every member is sniffed by content, whatever its name (TorchScript reads
    constants.pkl; other readers pick members by their own rules)."""
    data = zip_bytes({"archive/data.pkl": pc.proto(2) + pc.NONE + pc.STOP,
                      member: evil2(tmp_path / "CANARY")})
    assert_blocked(run_cli, tmp_path, {"model.pt": data}, "AUD-PKL-001")


def test_second_pickle_after_a_benign_stop(tmp_path, run_cli):
    data = pc.proto(2) + pc.NONE + pc.STOP + evil2(tmp_path / "CANARY")
    assert_blocked(run_cli, tmp_path, {"model.pkl": data}, "AUD-PKL-001")


def test_legacy_torch_payload_in_the_main_pickle(tmp_path, run_cli):
    """Legacy torch.load unpickles magic, protocol and sys_info, then the main pickle."""
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    data = magic + pickle.dumps(1001, protocol=2) + sys_info + evil2(tmp_path / "CANARY")
    assert_blocked(run_cli, tmp_path, {"model.pt": data}, "AUD-PKL-001")


@pytest.mark.parametrize("descr", ["'|O'", "[('a', '|O')]"])
def test_object_array_pickle_in_npy(tmp_path, run_cli, descr):
    """np.load(allow_pickle=True) unpickles what follows an object-dtype header."""
    data = npy_bytes(descr, evil2(tmp_path / "CANARY"))
    assert_blocked(run_cli, tmp_path, {"arr.npy": data}, "AUD-PKL-001")


def test_npz_member_without_npy_extension(tmp_path, run_cli):
    """NpzFile parses any member that starts with the .npy magic, whatever its name."""
    data = zip_bytes({"arr": npy_bytes("'|O'", broken_protocol0(tmp_path / "CANARY"))})
    assert_blocked(run_cli, tmp_path, {"arrays.npz": data}, "AUD-PKL-001")


@pytest.mark.parametrize("compress", [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_joblib_dump_with_payload_in_every_compression(tmp_path, run_cli, compress):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = tmp_path / "model.joblib"
    joblib.dump([np.arange(4), _Payload(str(tmp_path / "CANARY"))], path, compress=compress)
    assert_blocked(run_cli, tmp_path, {"model.joblib": path.read_bytes()}, "AUD-PKL-001")


class _Payload:
    """Pickles as os.system(touch canary); never unpickled here."""

    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.canary}",)
