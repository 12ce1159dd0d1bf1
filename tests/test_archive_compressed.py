"""Compressed wrappers: streamed, bounded, every decompressed byte handed to the engine."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tracemalloc
import zlib

import pytest

from tests.builders import damaged
from tests.test_archive_zip import at, rules, scan
from tests.zip_builders import benign_pickle, canary_pickle

COMPRESSORS = {
    "gzip": (gzip.compress, "x.pkl.gz"),
    "bz2": (bz2.compress, "x.pkl.bz2"),
    "xz": (lzma.compress, "x.pkl.xz"),
    "lzma": (lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "x.pkl.lzma"),
    "zlib": (zlib.compress, "x.joblib"),
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_wrapped_malicious_pickle_is_found(tmp_path, canary, kind):
    compress, name = COMPRESSORS[kind]
    path = tmp_path / name
    path.write_bytes(compress(canary_pickle(canary)))
    report = scan(path)
    assert report.format == kind
    inner = name.rsplit(".", 1)[0] if kind != "zlib" else name
    assert report.facts["decompressed_bytes"] == len(canary_pickle(canary))
    assert any(f.severity.label == "critical" and f.location.member == inner
               for f in report.findings), report.findings


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_wrapped_benign_pickle_passes(tmp_path, kind):
    compress, name = COMPRESSORS[kind]
    path = tmp_path / name
    path.write_bytes(compress(benign_pickle(4)))
    report = scan(path)
    assert not {r for r in rules(report) if r.startswith("AUD-ARC")}
    assert report.worst is None or report.worst.label in ("info", "low", "medium")


@pytest.mark.parametrize("compress", ["zlib", "gzip", "bz2", "xz", "lzma"])
def test_joblib_compressed_numeric_dumps_pass(tmp_path, run_cli, compress):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = tmp_path / "model.joblib"
    joblib.dump({"w": np.arange(1000.0), "n": 3}, path, compress=(compress, 3))
    report = scan(path)
    assert report.format == compress
    assert not {r for r in rules(report) if r.startswith("AUD-ARC")}
    assert run_cli("scan", path).code == 0, report.findings


def test_old_joblib_zf_stream_is_read(tmp_path, canary):
    payload = canary_pickle(canary)
    header = b"ZF" + hex(len(payload)).encode().ljust(19)
    path = tmp_path / "old.pkl"
    path.write_bytes(header + zlib.compress(payload))
    report = scan(path)
    assert report.format == "zlib"
    assert "AUD-ARC-020" not in rules(report)
    assert any(f.severity.label == "critical" for f in report.findings)


def test_zf_length_mismatch_is_flagged(tmp_path):
    payload = benign_pickle()
    path = tmp_path / "old.pkl"
    path.write_bytes(b"ZF" + hex(len(payload) + 5).encode().ljust(19) + zlib.compress(payload))
    assert "AUD-ARC-020" in rules(scan(path))


def _zeros_gzip(total: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    out = [comp.compress(chunk) for _ in range(total >> 20)]
    return b"".join(out) + comp.flush()


def test_thousand_to_one_bomb_is_stopped_in_bounded_memory(tmp_path):
    data = _zeros_gzip(256 << 20)  # 256 MiB of zeros in about 256 KB: ~1000:1
    assert len(data) * 900 < 256 << 20
    path = tmp_path / "bomb.pkl.gz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        report = scan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (finding,) = at(report, "AUD-ARC-015")
    assert "ratio" in finding.detail
    assert report.coverage.value == "partial"
    assert peak < 16 << 20, peak


def test_total_decompressed_limit_is_enforced(tmp_path):
    path = tmp_path / "big.bin.gz"
    path.write_bytes(gzip.compress(bytes(range(256)) * 20_000, compresslevel=1))
    report = scan(path, max_decompressed_bytes=1_000_000)
    assert "decompressed more than" in at(report, "AUD-ARC-015")[0].detail


def test_corrupt_stream_is_flagged(tmp_path):
    data = bytearray(gzip.compress(benign_pickle() * 50))
    data[-6] ^= 0xFF  # inside the CRC-32 trailer
    path = tmp_path / "x.pkl.gz"
    path.write_bytes(bytes(data))
    assert "AUD-ARC-020" in rules(scan(path))


def test_truncated_stream_is_flagged(tmp_path):
    data = gzip.compress(bytes(range(256)) * 100)
    path = tmp_path / "x.bin.gz"
    path.write_bytes(data[: len(data) // 2])
    assert "AUD-ARC-020" in rules(scan(path))


def test_trailing_bytes_after_the_stream_are_flagged(tmp_path):
    path = tmp_path / "x.pkl.gz"
    path.write_bytes(gzip.compress(benign_pickle()) + b"not gzip at all")
    (finding,) = at(scan(path), "AUD-ARC-019")
    assert "15 bytes" in finding.detail


def test_concatenated_gzip_members_are_all_read(tmp_path):
    first, second = b"A" * 1000, b"B" * 1000
    path = tmp_path / "x.txt.gz"
    path.write_bytes(gzip.compress(first) + gzip.compress(second))
    report = scan(path)
    assert report.facts["decompressed_bytes"] == 2000
    assert "AUD-ARC-019" not in rules(report)


def test_text_starting_like_a_zlib_header_is_not_taken_for_zlib(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x^2 + y^2 = r^2\n")
    assert scan(path).format == "text"


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_corrupted_streams_never_crash_the_scanner(tmp_path, kind):
    import random

    compress, name = COMPRESSORS[kind]
    base = compress(benign_pickle() * 20)
    path = tmp_path / name
    for data in damaged(base, random.Random(11), 60, flips=4):
        path.write_bytes(data)
        assert "AUD-SCAN-007" not in rules(scan(path))
