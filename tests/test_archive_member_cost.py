"""Per-member work in zip and tar is a constant, and small: counted, never timed.

An archive of 100,000 empty members is a hostile input (AUD-ARC-014 past
`max_members`); every member up to the limit is still checked, so what each
one costs decides the scan time (bench/README.md, "Archives of 100,000
members"). Here the expensive steps are counted with monkeypatched wrappers:
an empty member needs no reader stack (window, CRC reader, read buffer),
neighbouring zip local headers are read together, the CRC drain allocates what is left of the
member, not a 1 MiB buffer. The checks on that shortcut still fire.
"""

from __future__ import annotations

import io
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.formats.archives import members
from auditor.formats.archives import tar as archive_tar
from auditor.formats.archives import zip as archive_zip
from auditor.model import FileReport
from auditor.scanning.options import ScanOptions
from tests.zip_builders import ZMember, build_zip

N = 500


def scan(tmp_path: Path, name: str, data: bytes) -> FileReport:
    path = tmp_path / name
    path.write_bytes(data)
    (report,) = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files
    return report


def zip_of(n: int, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"m{i}", data)
    return buf.getvalue()


def tar_of(n: int, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for i in range(n):
            info = tarfile.TarInfo(f"m{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    """Replace `module.name` by a wrapper that counts its calls (in calls[0])."""
    calls = [0]
    real = getattr(module, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_empty_zip_members_build_no_reader_stack(tmp_path, monkeypatch):
    crc_readers = counting(monkeypatch, archive_zip, "CrcReader")
    windows = counting(monkeypatch, archive_zip, "SliceReader")
    report = scan(tmp_path, "model.zip", zip_of(N, b""))
    assert report.facts["members"] == N
    assert crc_readers[0] == 0
    assert windows[0] == 0


def test_neighbouring_zip_local_headers_are_read_in_runs(tmp_path, monkeypatch):
    """Not one positioned read per member: headers a few bytes apart come in one read."""
    reads = counting(monkeypatch, archive_zip, "_read_at")
    report = scan(tmp_path, "model.zip", zip_of(N, b""))
    assert report.facts["members"] == N
    assert reads[0] <= 16  # the end records' few, and one per run of headers


def test_empty_tar_members_build_no_window(tmp_path, monkeypatch):
    windows = counting(monkeypatch, archive_tar, "SliceReader")
    report = scan(tmp_path, "model.tar", tar_of(N, b""))
    assert report.facts["members"] == N
    assert windows[0] == 0


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_the_crc_drain_allocates_what_is_left_not_a_megabyte(tmp_path, monkeypatch, kind):
    """One-byte members: the CRC drain (zip) and any buffer behind it stay small."""
    allocated = [0]

    def sized_bytearray(*args: object) -> bytearray:
        buf = bytearray(*args)  # type: ignore[call-overload]
        allocated[0] += len(buf)
        return buf

    monkeypatch.setattr(members, "bytearray", sized_bytearray, raising=False)
    data = zip_of(N, b"x") if kind == "zip" else tar_of(N, b"x")
    report = scan(tmp_path, f"model.{kind}", data)
    assert report.facts["members"] == N
    assert allocated[0] <= 64 * N


def test_an_empty_member_is_still_checked(tmp_path):
    """The shortcut for members with no stored bytes keeps every check on them."""
    data = build_zip([
        ZMember("short", b"hello", compressed=b""),  # directory: 0 stored, 5 uncompressed
        ZMember("badcrc", b"", crc=0x1234),
        ZMember("../up", b""),
        ZMember("model.pkl", b""),  # an empty file is no pickle
    ])
    found = {(f.rule, f.location.member) for f in scan(tmp_path, "model.zip", data).findings}
    assert ("AUD-ARC-001", "short") in found  # stored sizes disagree
    assert ("AUD-ARC-002", "short") in found  # CRC of no bytes is 0
    assert ("AUD-ARC-002", "badcrc") in found
    assert ("AUD-ARC-010", "../up") in found
    assert ("AUD-FILE-001", "model.pkl") in found


def test_an_empty_tar_member_is_still_checked(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in ("../up", "model.pkl"):
            tf.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    found = {(f.rule, f.location.member) for f in scan(tmp_path, "model.tar",
                                                       buf.getvalue()).findings}
    assert ("AUD-ARC-010", "../up") in found
    assert ("AUD-FILE-001", "model.pkl") in found


def _reference_checksum_ok(block: bytes) -> bool:
    """The checksum rule as POSIX states it: a byte sum, with the field itself as spaces."""
    try:
        stored = archive_tar._number(block[148:156])
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b >= 128)
    return stored in (unsigned, signed)


def test_the_tar_checksum_shortcut_agrees_with_the_byte_sum():
    """The residue check (adler32 and mod 255) accepts exactly the sums the rule accepts,
    including stored values off by either modulus or by their product."""
    rnd = random.Random(7)
    for i in range(3000):
        block = bytearray(rnd.randbytes(512) if i % 3 == 0 else bytes(512))
        for _ in range(rnd.randrange(200)):
            block[rnd.randrange(512)] = rnd.randrange(256)
        unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
        value = unsigned + rnd.choice([0, 0, 1, -1, 255, -255, 65521, -65521, 65521 * 255])
        block[148:156] = b"%06o\x00 " % (max(value, 0) % 8**6) if i % 7 else b"\xff" * 8
        assert archive_tar._checksum_ok(bytes(block)) == _reference_checksum_ok(bytes(block))
