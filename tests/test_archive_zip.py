"""Zip containers: both readings, every differential its own rule, every member scanned."""

from __future__ import annotations

import io
import random
import stat
import zipfile

import pytest

from auditor import pipeline
from auditor.formats._lib.limits import Limits
from auditor.scanning.options import ScanOptions
from tests.builders import damaged
from tests.zip_builders import ZMember, benign_pickle, build_zip, canary_pickle


def scan(path, **limits):
    result = pipeline.scan(path, ScanOptions(jobs=1, limits=Limits(**limits)))
    (report,) = result.models[0].files
    return report


def rules(report) -> set[str]:
    return {f.rule for f in report.findings}


def at(report, rule: str) -> list:
    return [f for f in report.findings if f.rule == rule]


def write(tmp_path, data: bytes, name: str = "a.zip"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_payload_found(report, member: str) -> None:
    """The malicious pickle member reached the pickle analysis (when it exists)."""
    assert any(f.severity.label == "critical" and f.location.member == member
               for f in report.findings), report.findings


def test_clean_zip_scans_every_member_through_the_engine(tmp_path):
    data = build_zip([ZMember("notes.txt", b"hello\n"), ZMember("w.pkl", benign_pickle(), 8)])
    report = scan(write(tmp_path, data))
    assert report.format == "zip"
    assert report.coverage.value == "scanned"
    assert report.facts["members"] == 2
    assert not {r for r in rules(report) if r.startswith("AUD-ARC")}
    assert report.verdict == "clean" or report.worst.label in ("info", "low")


def test_malicious_member_is_located_inside_the_zip(tmp_path, canary):
    report = scan(write(tmp_path, build_zip([ZMember("dir/x.pkl", canary_pickle(canary), 8)])))
    assert_payload_found(report, "dir/x.pkl")


def test_bad_crc_is_flagged_and_member_still_scanned(tmp_path, canary):
    data = build_zip([ZMember("x.pkl", canary_pickle(canary), crc=0x1234)])
    report = scan(write(tmp_path, data))
    (finding,) = at(report, "AUD-ARC-002")
    assert finding.location.member == "x.pkl"
    assert_payload_found(report, "x.pkl")


def test_zipfile_would_refuse_what_we_scan(tmp_path, canary):
    """The strict reader stops on the CRC; the loader reading (and ours) goes on."""
    data = build_zip([ZMember("x.pkl", canary_pickle(canary), crc=0x1234)])
    with zipfile.ZipFile(io.BytesIO(data)) as z, pytest.raises(zipfile.BadZipFile):
        z.read("x.pkl")
    assert "AUD-ARC-002" in rules(scan(write(tmp_path, data)))


@pytest.mark.parametrize("bit", [0, 5, 6, 13])
def test_flipped_local_flag_bits_are_flagged(tmp_path, canary, bit):
    data = build_zip([ZMember("x.pkl", canary_pickle(canary), local_flags=1 << bit)])
    report = scan(write(tmp_path, data))
    assert {"AUD-ARC-003", "AUD-ARC-001"} <= rules(report)
    assert_payload_found(report, "x.pkl")


def test_encrypted_flag_in_both_headers_is_flagged(tmp_path, canary):
    data = build_zip([ZMember("x.pkl", canary_pickle(canary), flags=1)])
    report = scan(write(tmp_path, data))
    assert "encrypted" in at(report, "AUD-ARC-003")[0].detail
    assert "AUD-ARC-001" not in rules(report)
    assert_payload_found(report, "x.pkl")


def test_local_name_differing_from_central_name_is_flagged(tmp_path, canary):
    data = build_zip([ZMember("archive/data.pkl", canary_pickle(canary),
                              local_name="archive/other.pkl")])
    report = scan(write(tmp_path, data))
    (finding,) = at(report, "AUD-ARC-001")
    assert "archive/other.pkl" in finding.detail
    assert_payload_found(report, "archive/data.pkl")


def test_member_only_the_local_header_walk_sees_is_scanned(tmp_path, canary):
    data = build_zip([
        ZMember("a.txt", b"visible\n"),
        ZMember("hidden.pkl", canary_pickle(canary), in_central=False),
        ZMember("b.txt", b"visible too\n"),
    ])
    report = scan(write(tmp_path, data))
    (finding,) = at(report, "AUD-ARC-004")
    assert finding.location.member == "hidden.pkl"
    assert report.facts["hidden_members"] == 1
    assert_payload_found(report, "hidden.pkl")


def test_hidden_member_with_data_descriptor_is_still_found(tmp_path, canary):
    data = build_zip([ZMember("a.txt", b"x"),
                      ZMember("h.pkl", canary_pickle(canary), 8, in_central=False,
                              descriptor=True)])
    report = scan(write(tmp_path, data))
    assert "AUD-ARC-004" in rules(report)
    assert_payload_found(report, "h.pkl")


def test_data_descriptor_members_like_torch_writes_are_clean(tmp_path):
    data = build_zip([ZMember("a/b.txt", b"text\n", descriptor=True),
                      ZMember("a/c.txt", b"more\n", 8, descriptor=True)])
    report = scan(write(tmp_path, data))
    assert not {r for r in rules(report) if r.startswith("AUD-ARC")}


def test_zip64_width_data_descriptors_are_accepted(tmp_path):
    data = build_zip([ZMember("a/b.txt", b"text\n", descriptor=True, wide_descriptor=True),
                      ZMember("a/c.txt", b"more\n", 8, descriptor=True, wide_descriptor=True)])
    report = scan(write(tmp_path, data))
    assert not {r for r in rules(report) if r.startswith("AUD-ARC")}


def test_descriptor_disagreeing_with_directory_is_flagged(tmp_path):
    member = ZMember("a.txt", b"text\n", descriptor=True)
    data = bytearray(build_zip([member]))
    at_dd = data.find(b"PK\x07\x08")
    data[at_dd + 4] ^= 0xFF  # CRC in the descriptor only
    assert "AUD-ARC-001" in rules(scan(write(tmp_path, bytes(data))))


@pytest.mark.parametrize(("name", "rule"), [
    ("../../etc/cron.d/x", "AUD-ARC-010"),
    ("a/../../x.txt", "AUD-ARC-010"),
    ("/etc/passwd", "AUD-ARC-011"),
    ("C:\\Windows\\x.txt", "AUD-ARC-011"),
])
def test_escaping_member_paths_are_flagged(tmp_path, name, rule):
    report = scan(write(tmp_path, build_zip([ZMember(name, b"x\n")])))
    assert at(report, rule)[0].location.member == name


def test_symlink_member_is_flagged(tmp_path):
    data = build_zip([ZMember("link", b"/home/user/.ssh/id_rsa", mode=stat.S_IFLNK | 0o777)])
    assert "AUD-ARC-012" in rules(scan(write(tmp_path, data)))


def test_device_member_is_flagged(tmp_path):
    data = build_zip([ZMember("fifo", b"", mode=stat.S_IFIFO | 0o644)])
    assert "AUD-ARC-013" in rules(scan(write(tmp_path, data)))


def test_regular_unix_mode_is_not_flagged(tmp_path):
    data = build_zip([ZMember("f.txt", b"x\n", mode=stat.S_IFREG | 0o644)])
    assert not {r for r in rules(scan(write(tmp_path, data))) if r.startswith("AUD-ARC")}


def test_overlapping_members_are_flagged(tmp_path):
    data = build_zip([ZMember("a.txt", b"A" * 100), ZMember("b.txt", b"A" * 100,
                                                             offset_override=0)])
    assert "AUD-ARC-005" in rules(scan(write(tmp_path, data)))


def test_duplicate_names_are_flagged(tmp_path, canary):
    data = build_zip([ZMember("x.pkl", benign_pickle()), ZMember("x.pkl", canary_pickle(canary))])
    report = scan(write(tmp_path, data))
    assert "AUD-ARC-008" in rules(report)
    assert_payload_found(report, "x.pkl")


def test_zip_behind_a_prefix_is_not_passed(tmp_path):
    """A polyglot (script or pickle, then a zip) is not sniffed as a zip: unknown, high."""
    data = build_zip([ZMember("a.txt", b"x\n")], prefix=b"\x00\x01binary prefix")
    assert scan(write(tmp_path, data)).worst.label in ("high", "critical")


@pytest.mark.parametrize(("kwargs", "where"), [
    ({"trailing": b"appended payload"}, "after the end record"),
    ({"between": b"JUNK"}, "between members"),
])
def test_bytes_outside_the_structure_are_flagged(tmp_path, kwargs, where):
    data = build_zip([ZMember("a.txt", b"x\n"), ZMember("b.txt", b"y\n")], **kwargs)
    report = scan(write(tmp_path, data))
    assert any(where in f.detail for f in at(report, "AUD-ARC-006")), report.findings


def test_two_zips_in_one_file_are_flagged_and_both_scanned(tmp_path, canary):
    first = build_zip([ZMember("evil.pkl", canary_pickle(canary))])
    second = build_zip([ZMember("fine.txt", b"ok\n")])
    data = first + _shifted(second, len(first))  # loaders see the second (last end record)
    report = scan(write(tmp_path, data))
    assert "AUD-ARC-007" in rules(report)
    assert "AUD-ARC-004" in rules(report)
    assert_payload_found(report, "evil.pkl")


def _shifted(zip_bytes: bytes, by: int) -> bytes:
    """Rewrite a one-member zip's offsets as if it started `by` bytes into a file."""
    import struct

    data = bytearray(zip_bytes)
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, cd + 42, struct.unpack_from("<L", data, cd + 42)[0] + by)
    end = data.find(b"PK\x05\x06")
    struct.pack_into("<L", data, end + 16, struct.unpack_from("<L", data, end + 16)[0] + by)
    return bytes(data)


def test_zip_without_directory_fails_closed_and_members_are_still_scanned(tmp_path, canary):
    data = build_zip([ZMember("x.pkl", canary_pickle(canary))])
    broken = data[: data.find(b"PK\x01\x02")]  # cut the central directory and end record
    report = scan(write(tmp_path, broken))
    assert "AUD-ARC-017" in rules(report)
    assert "AUD-ARC-004" in rules(report)
    assert report.coverage.value != "scanned"
    assert_payload_found(report, "x.pkl")


def test_unsupported_compression_method_is_flagged(tmp_path):
    data = build_zip([ZMember("x.bin", b"data", method=99)])
    report = scan(write(tmp_path, data))
    assert "AUD-ARC-016" in rules(report)
    assert report.coverage.value == "partial"


def test_deflate_bomb_member_is_stopped(tmp_path):
    """A pickle of 40 MiB of zeros, deflated ~1000:1: reading it trips the ratio limit."""
    zeros = 40 * 1024 * 1024
    bomb = b"\x80\x04\x8e" + zeros.to_bytes(8, "little") + bytes(zeros) + b"."
    data = build_zip([ZMember("zeros.pkl", bomb, 8)])
    assert len(data) < 100_000
    report = scan(write(tmp_path, data))
    (finding,) = at(report, "AUD-ARC-015")
    assert finding.location.member == "zeros.pkl"
    assert report.coverage.value == "partial"


def test_large_member_nobody_reads_is_not_expanded_for_its_crc(tmp_path):
    data = build_zip([ZMember("zeros.bin", bytes(40 * 1024 * 1024), 8)])
    report = scan(write(tmp_path, data))
    assert report.facts["crc_unverified"] == 1
    assert "AUD-ARC-015" not in rules(report)


def test_member_count_limit_bounds_a_100k_member_archive(tmp_path):
    members = [ZMember(f"m{i}", b"") for i in range(100_000)]
    path = write(tmp_path, build_zip(members))
    report = scan(path, max_members=2_000)
    (finding,) = at(report, "AUD-ARC-014")
    assert "2000" in finding.detail
    assert report.coverage.value == "partial"
    assert report.facts["members"] == 2_000


def test_nested_zips_beyond_the_depth_limit_are_flagged(tmp_path):
    data = build_zip([ZMember("x.txt", b"core\n")])
    for level in range(5):
        data = build_zip([ZMember(f"level{level}.zip", data)])
    report = scan(write(tmp_path, data), max_depth=3)
    assert any("nesting" in f.detail for f in at(report, "AUD-SCAN-002"))
    assert report.coverage.value == "partial"


def test_zip_inside_a_compressed_stream_is_read_from_a_spool(tmp_path, canary):
    import gzip

    inner = build_zip([ZMember("x.pkl", canary_pickle(canary), crc=1)])
    report = scan(write(tmp_path, gzip.compress(inner), "a.zip.gz"))
    assert report.format == "gzip"
    assert "AUD-ARC-002" in rules(report)
    assert_payload_found(report, "a.zip/x.pkl")


@pytest.mark.parametrize("magic", [b"7z\xbc\xaf\x27\x1c\x00\x04", b"Rar!\x1a\x07\x01\x00"])
def test_checkpoint_repacked_as_7z_or_rar_is_unsupported_high(tmp_path, magic):
    report = scan(write(tmp_path, magic + bytes(range(256)) * 4, "model.pt"))
    assert report.coverage.value == "unsupported"
    assert at(report, "AUD-SCAN-004")[0].severity.label == "high"


def test_random_corruption_never_crashes_the_scanner(tmp_path):
    """Fail closed: mutated zips give findings, never an internal error."""
    base = build_zip([ZMember("a.txt", b"hello\n" * 20), ZMember("b.pkl", benign_pickle(), 8),
                      ZMember("c/d.txt", b"x" * 300, 8, descriptor=True)])
    path = tmp_path / "m.zip"
    for data in damaged(base, random.Random(1234), 150, flips=6):
        path.write_bytes(data)
        report = scan(path)
        assert "AUD-SCAN-007" not in rules(report), report.findings


@pytest.mark.parametrize("protocol", [0, 2, 3, 4])
def test_control_the_canary_payload_is_live(tmp_path, protocol):
    """The container tests' payload really creates the canary when unpickled (in a child)."""
    import subprocess
    import sys

    canary = tmp_path / "CANARY"
    loader = "import pickle, sys\npickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", loader], input=canary_pickle(canary, protocol),
                   capture_output=True, timeout=60)
    assert canary.exists()


def test_many_small_bombs_add_up_to_the_archive_budget(tmp_path):
    """Each member stays under the per-stream floor; together they pass 200× the archive."""
    data = build_zip([ZMember(f"z{i}.bin", bytes(1 << 20), 8) for i in range(60)])
    assert len(data) < 150_000
    report = scan(write(tmp_path, data))
    assert any("archive total" in f.detail for f in at(report, "AUD-ARC-015")), report.findings
    assert report.coverage.value == "partial"
