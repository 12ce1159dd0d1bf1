"""Tar containers: headers parsed here, members scanned in place or streamed."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from tests.builders import damaged
from tests.test_archive_zip import at, rules, scan
from tests.zip_builders import canary_pickle


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]], fmt=tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
                continue
            name, data = m
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def write(tmp_path, data: bytes, name: str = "a.tar"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_plain_tar_members_are_scanned(tmp_path, canary):
    data = make_tar([("docs/readme.txt", b"hello\n"), ("weights/evil.pkl", canary_pickle(canary))])
    report = scan(write(tmp_path, data))
    assert report.format == "tar"
    assert report.facts["members"] == 2
    assert any(f.severity.label == "critical" and f.location.member == "weights/evil.pkl"
               for f in report.findings)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_member_names_are_read(tmp_path, canary, fmt):
    name = "deep/" * 40 + "evil.pkl"
    report = scan(write(tmp_path, make_tar([(name, canary_pickle(canary))], fmt)))
    assert report.facts["members"] == 1
    assert any(f.location.member == name for f in report.findings)


def test_compressed_tar_is_streamed(tmp_path, canary):
    data = gzip.compress(make_tar([("evil.pkl", canary_pickle(canary)), ("a.txt", b"x\n")]))
    report = scan(write(tmp_path, data, "a.tar.gz"))
    assert report.format == "gzip"
    assert any(f.location.member == "a.tar/evil.pkl" and f.severity.label == "critical"
               for f in report.findings)


@pytest.mark.parametrize(("member", "rule"), [
    (special("link", tarfile.SYMTYPE, "/home/user/.ssh/authorized_keys"), "AUD-ARC-012"),
    (special("hard", tarfile.LNKTYPE, "../../etc/passwd"), "AUD-ARC-012"),
    (special("dev", tarfile.CHRTYPE), "AUD-ARC-013"),
    (special("fifo", tarfile.FIFOTYPE), "AUD-ARC-013"),
])
def test_links_and_special_files_are_flagged(tmp_path, member, rule):
    report = scan(write(tmp_path, make_tar([member])))
    assert at(report, rule)[0].location.member == member.name


@pytest.mark.parametrize(("name", "rule"), [("../../x.pkl", "AUD-ARC-010"),
                                            ("/etc/cron.d/job", "AUD-ARC-011")])
def test_escaping_paths_are_flagged(tmp_path, name, rule):
    report = scan(write(tmp_path, make_tar([(name, b"x\n")])))
    assert at(report, rule)[0].location.member == name


def test_duplicate_names_are_flagged(tmp_path):
    data = make_tar([("pickle", b"a\n"), ("pickle", b"b\n")])
    assert "AUD-ARC-008" in rules(scan(write(tmp_path, data)))


def test_bad_checksum_is_flagged(tmp_path):
    data = bytearray(make_tar([("a.txt", b"x\n"), ("b.txt", b"y\n")], tarfile.USTAR_FORMAT))
    data[1024 + 10] ^= 0x01  # name byte of the second header
    report = scan(write(tmp_path, bytes(data)))
    assert "AUD-ARC-018" in rules(report)


def test_member_limit_is_enforced(tmp_path):
    data = make_tar([(f"f{i}", b"") for i in range(50)], tarfile.USTAR_FORMAT)
    report = scan(write(tmp_path, data), max_members=10)
    assert "AUD-ARC-014" in rules(report)
    assert report.coverage.value == "partial"


def test_data_after_the_end_marker_is_flagged(tmp_path):
    data = make_tar([("a.txt", b"x\n")], tarfile.USTAR_FORMAT) + b"hidden payload"
    assert "AUD-ARC-021" in rules(scan(write(tmp_path, data)))


def test_huge_pax_record_is_a_limit_not_an_allocation(tmp_path):
    data = bytearray(make_tar([("a.txt", b"x\n")], tarfile.PAX_FORMAT))
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = 8**11 - 1  # ~8 GiB claimed
    header = info.tobuf(tarfile.USTAR_FORMAT)
    report = scan(write(tmp_path, header + bytes(data)))
    assert "AUD-SCAN-002" in rules(report)
    assert report.coverage.value == "partial"


def test_corrupted_tars_never_crash_the_scanner(tmp_path):
    import random

    base = make_tar([("a.txt", b"x" * 700), ("dir/" * 30 + "b.pkl", b"\x80\x02N."),
                     special("l", tarfile.SYMTYPE, "a.txt")])
    path = tmp_path / "a.tar"
    for data in damaged(base, random.Random(3), 150, flips=6):
        path.write_bytes(data)
        assert "AUD-SCAN-007" not in rules(scan(path))
