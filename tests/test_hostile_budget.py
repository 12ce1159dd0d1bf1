"""The hostile-input budget: each input built to exhaust a parser is a finding, at bounded cost.

Cost is asserted with the analyser's own work counters (pickle opcodes run,
archive members visited, bytes decompressed, bytes read from disk) and the
`tracemalloc` peak of the whole scan, never with wall-clock time; the times
are in bench/README.md ("Fuzzing and hostile inputs"). Inputs are built
here, in memory, before measuring.
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import struct
import tarfile
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.formats._lib.limits import Limits
from auditor.model import Coverage, FileReport, Severity
from auditor.scanning.options import ScanOptions
from tests import pickle_corpus as corpus

PEAK_BYTES = 50 * 1024 * 1024


def q(n: int) -> bytes:
    return struct.pack("<Q", n)


def gguf(tensors: int, kvs: int, body: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<I", 3) + q(tensors) + q(kvs) + body


def gguf_key(key: str, gtype: int) -> bytes:
    return q(len(key)) + key.encode() + struct.pack("<I", gtype)


def nested_zip(depth: int) -> bytes:
    data = b"\x80\x02cos\nsystem\n."
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("inner.zip" if level else "x.pkl", data)
        data = buf.getvalue()
    return data


def zip_bomb(expanded: int) -> bytes:
    """A pickle of `expanded` zero bytes, deflated ~1000:1: the machine must read all of it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(bytes(expanded), protocol=4))
    return buf.getvalue()


def zip_of_empty_members(n: int, declared: int) -> bytes:
    """n stored empty members; the end record declares `declared` (0xFFFF: a lie past 65535)."""
    out, central = io.BytesIO(), []
    for i in range(n):
        name, offset = b"m%d" % i, out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0))
        out.write(name)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, 0, 0, 0,
                                   len(name), 0, 0, 0, 0, 0, offset) + name)
    start, directory = out.tell(), b"".join(central)
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, declared, declared, len(directory),
                          start, 0))
    return out.getvalue()


def tar_of_empty_members(n: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for i in range(n):
            tf.addfile(tarfile.TarInfo(f"m{i}"), io.BytesIO(b""))
    return buf.getvalue()


def laughs() -> bytes:
    (case,) = [c for c in corpus.malicious("/nonexistent") if c.name == "billion-laughs"]
    return case.data


@dataclass
class Measured:
    report: FileReport
    bytes_read: int
    size: int
    peak: int

    @property
    def rules(self) -> set[str]:
        return {f.rule for f in self.report.findings}


def measure(tmp_path: Path, name: str, data: bytes, limits: Limits | None = None) -> Measured:
    path = tmp_path / name
    path.write_bytes(data)
    options = ScanOptions(jobs=1, limits=limits or Limits())
    tracemalloc.start()
    try:
        result = pipeline.scan(path, options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (report,) = result.models[0].files
    return Measured(report, result.bytes_read, len(data), peak)


def assert_budget(m: Measured, *, read_factor: int = 6) -> None:
    """A finding, the stream not passed as clean, memory bounded, I/O a few passes at most
    (the digest pass reads every file to its end, whatever the parser stopped at)."""
    assert m.report.worst is not None and m.report.worst >= Severity.HIGH, m.report.findings
    assert m.report.coverage in (Coverage.PARTIAL, Coverage.ERROR) or m.report.findings
    assert m.peak < PEAK_BYTES, f"peak {m.peak / 1e6:.1f} MB"
    assert m.bytes_read <= read_factor * max(m.size, 4096)


# ---- a 2^63 length field ----------------------------------------------------------------

@pytest.mark.parametrize(("name", "data", "rule"), [
    ("model.safetensors", q(2**63) + b"{}", "AUD-ST-"),
    ("model.gguf", gguf(2**63, 0), "AUD-GGUF-"),
    ("model.pkl", b"\x80\x04\x8e" + q(2**63) + b"xx", "AUD-SCAN-002"),
    ("frame.pkl", b"\x80\x04\x95" + q(2**63) + b"N.", "AUD-SCAN-002"),
], ids=["safetensors-header", "gguf-tensor-count", "pickle-binbytes8", "pickle-frame"])
def test_a_2_63_length_field_is_a_finding_without_reading_or_allocating(tmp_path, name, data,
                                                                         rule):
    m = measure(tmp_path, name, data)
    assert_budget(m)
    assert any(r.startswith(rule) for r in m.rules), m.rules
    assert m.report.facts.get("opcodes", 0) <= 2


# ---- a 10^9 count -------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    gguf(0, 10**9),
    gguf(0, 1, gguf_key("tokenizer.ggml.tokens", 9) + struct.pack("<I", 8) + q(10**9)),
], ids=["gguf-metadata-count", "gguf-array-length"])
def test_a_10_9_count_is_a_finding_without_iterating(tmp_path, data):
    m = measure(tmp_path, "model.gguf", data)
    assert_budget(m)
    assert "AUD-GGUF-002" in m.rules


# ---- a 1 GB string length -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "data"), [
    ("model.gguf", gguf(0, 1, gguf_key("general.name", 8) + q(1 << 30) + b"x" * 64)),
    ("model.pkl", b"\x80\x02X" + struct.pack("<I", 1 << 30) + b"abc"),
], ids=["gguf-string", "pickle-binunicode"])
def test_a_1_gb_string_length_is_a_finding_without_allocating(tmp_path, name, data):
    m = measure(tmp_path, name, data)
    assert_budget(m)
    assert m.report.facts.get("opcodes", 0) <= 2


# ---- 10^6-deep nesting --------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"\x80\x02" + b"(" * 10**6 + b"N.",
    b"\x80\x02" + b"]" * 10**6 + b"a" * (10**6 - 1) + b".",
], ids=["marks", "lists"])
def test_a_million_deep_pickle_stops_at_the_stack_limit(tmp_path, data):
    m = measure(tmp_path, "model.pkl", data)
    assert_budget(m)
    assert "AUD-SCAN-002" in m.rules
    assert any("stack deeper" in f.detail for f in m.report.findings)
    # Limits are checked every 65,536 opcodes: the machine stops within one interval.
    assert m.report.facts["opcodes"] <= Limits().max_pickle_stack + 2 * 65_536


def test_a_million_deep_json_stops_at_the_nesting_limit(tmp_path):
    m = measure(tmp_path, "config.json", b"[" * 10**6 + b"]" * 10**6)
    assert_budget(m)
    assert any("nests deeper" in f.detail for f in m.report.findings)


def test_zip_in_zip_stops_at_the_container_depth(tmp_path):
    m = measure(tmp_path, "model.zip", nested_zip(12), None)
    assert_budget(m, read_factor=24)  # each level re-reads its (tiny) member
    assert any("nesting deeper than" in f.detail for f in m.report.findings)


# ---- a 1000:1 compression bomb ------------------------------------------------------------

def test_a_1000_to_1_zip_bomb_stops_at_the_ratio_limit(tmp_path):
    data = zip_bomb(64 << 20)
    assert len(data) * 900 < 64 << 20  # it is a 1000:1 bomb
    m = measure(tmp_path, "model.pt", data)
    assert_budget(m)
    assert "AUD-ARC-015" in m.rules or "AUD-SCAN-002" in m.rules, m.rules
    assert any("ratio above" in f.detail for f in m.report.findings)


def test_a_1000_to_1_gzip_bomb_stops_at_the_ratio_limit(tmp_path):
    data = gzip.compress(bytes(64 << 20), 9)
    m = measure(tmp_path, "weights.gz", data)
    assert_budget(m)
    (bomb,) = [f for f in m.report.findings if f.rule == "AUD-ARC-015"]
    produced = int(re.search(r"(\d+) bytes from", bomb.detail).group(1))  # the reader's count
    assert produced <= Limits().max_compression_ratio * len(data) + (4 << 20)
    assert produced < 64 << 20


# ---- DUP / GET amplification --------------------------------------------------------------

def test_billion_laughs_costs_one_opcode_per_byte(tmp_path):
    data = laughs()
    m = measure(tmp_path, "model.pkl", data)
    assert_budget(m)
    assert m.report.facts["opcodes"] < len(data)


@pytest.mark.parametrize("data", [
    b"\x80\x02N" + b"2" * 10**6 + b".",
    b"\x80\x02]q\x00" + b"h\x00" * 10**6 + b".",
], ids=["dup", "get"])
def test_a_million_dups_or_gets_stop_at_the_stack_limit(tmp_path, data):
    m = measure(tmp_path, "model.pkl", data)
    assert_budget(m)
    assert m.report.facts["opcodes"] <= Limits().max_pickle_stack + 2 * 65_536


# ---- a 100,000-member archive -------------------------------------------------------------
# With the default limit (65,536) every member up to it is visited (bench/README.md quotes
# the time); the tests lower the limit so that the suite stays fast: what is asserted is that
# the work stops at the limit, whatever the archive declares.

MEMBER_LIMIT = Limits(max_members=1000)


@pytest.mark.parametrize("declared", [0xFFFF, 100_000 & 0xFFFF], ids=["capped", "wrapped"])
def test_a_100k_member_zip_stops_at_the_member_limit(tmp_path, declared):
    m = measure(tmp_path, "model.zip", zip_of_empty_members(100_000, declared), MEMBER_LIMIT)
    assert_budget(m)
    assert "AUD-ARC-014" in m.rules
    assert m.report.facts["members"] == MEMBER_LIMIT.max_members
    assert m.report.facts["hidden_members"] == 0  # unread entries are not "hidden"
    assert "AUD-ARC-004" not in m.rules


def test_a_100k_member_tar_stops_at_the_member_limit(tmp_path):
    data = tar_of_empty_members(100_000)
    m = measure(tmp_path, "model.tar", data, MEMBER_LIMIT)
    assert_budget(m)
    assert "AUD-ARC-014" in m.rules
    assert m.report.facts["members"] <= MEMBER_LIMIT.max_members
