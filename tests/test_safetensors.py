"""safetensors is parsed strictly: real files are clean, every malformed variant has its rule."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from auditor import pipeline
from auditor.formats.contract import FormatOptions, ScanContext
from auditor.model import Coverage, FileReport, Severity
from auditor.scanning.engine import dispatch
from auditor.scanning.options import ScanOptions

F32X2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def raw_file(header: dict | list | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    """A safetensors byte string from a header (dict or raw bytes) and a data area, unchecked."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def scan_bytes(tmp_path: Path, content: bytes, name: str = "model.safetensors") -> FileReport:
    path = tmp_path / name
    path.write_bytes(content)
    (report,) = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files
    return report


def rules_of(report: FileReport) -> list[str]:
    return [f.rule for f in report.findings]


def test_files_written_by_the_safetensors_library_are_clean(tmp_path):
    tensors = {
        "embed.weight": np.arange(32 * 16, dtype=np.float32).reshape(32, 16),
        "norm.weight": np.ones(16, dtype=np.float16),
        "position_ids": np.arange(8, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.zeros((3, 0), dtype=np.uint8),
        "scalar": np.array(1.5, dtype=np.float64),
    }
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (report,) = pipeline.scan(tmp_path, ScanOptions(jobs=1)).models[0].files
    assert report.findings == ()
    assert report.coverage == Coverage.SCANNED
    assert report.format == "safetensors"
    assert report.facts["tensors"] == 6
    assert report.facts["parameters"] == 32 * 16 + 16 + 8 + 3 + 0 + 1
    assert report.facts["dtypes"] == ["BOOL", "F16", "F32", "F64", "I64", "U8"]
    assert report.facts["metadata"] == {"format": "pt"}


def test_header_with_leading_whitespace_is_still_safetensors(tmp_path):
    # The reference loader accepts JSON whitespace before the header object.
    report = scan_bytes(tmp_path, raw_file(b"  " + json.dumps({"a": F32X2}).encode(), bytes(8)))
    assert report.format == "safetensors"
    assert report.findings == ()


def test_json_text_whose_ninth_byte_is_a_brace_is_not_safetensors(tmp_path):
    report = scan_bytes(tmp_path, b'{"abcd":{"x": 1}}\n', name="config.json")
    assert report.format == "json"
    assert report.findings == ()


def test_header_length_beyond_the_file_is_out_of_bounds(tmp_path):
    report = scan_bytes(tmp_path, raw_file({"a": F32X2}, bytes(8), length=10_000))
    assert rules_of(report) == ["AUD-ST-002"]
    assert report.coverage == Coverage.ERROR
    assert "exceeds file size" in report.findings[0].detail


def test_huge_header_length_is_refused_fast_without_allocating(tmp_path):
    content = raw_file({"a": F32X2}, bytes(8), length=2**63)
    tracemalloc.start()
    started = time.monotonic()
    report = scan_bytes(tmp_path, content)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rules_of(report) == ["AUD-ST-002"]
    assert elapsed < 1.0
    assert peak < 16 * 1024 * 1024


def test_huge_header_length_in_a_stream_of_unknown_size_hits_the_limit():
    # Members of containers may have no known size: the header limit still applies.
    ctx = ScanContext(file="a.zip", name="w.safetensors", size=None, options=FormatOptions(),
                      dispatch=dispatch, member="w.safetensors")
    result = dispatch(io.BytesIO(raw_file({"a": F32X2}, bytes(8), length=2**63)), ctx)
    assert [f.rule for f in result.findings] == ["AUD-ST-002"]
    assert "limit" in result.findings[0].detail
    assert result.findings[0].location.member == "w.safetensors"


def test_duplicate_tensor_key_is_reported(tmp_path):
    entry = json.dumps(F32X2)
    header = f'{{"a":{entry},"a":{entry}}}'.encode()
    report = scan_bytes(tmp_path, raw_file(header, bytes(8)))
    assert "AUD-ST-003" in rules_of(report)
    assert "'a'" in next(f.detail for f in report.findings if f.rule == "AUD-ST-003")


def test_unknown_dtype_is_reported(tmp_path):
    header = {"a": {"dtype": "F128", "shape": [2], "data_offsets": [0, 8]}}
    report = scan_bytes(tmp_path, raw_file(header, bytes(8)))
    assert rules_of(report) == ["AUD-ST-004"]
    assert report.worst == Severity.HIGH


def test_span_that_does_not_match_shape_and_dtype_is_reported(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    report = scan_bytes(tmp_path, raw_file(header, bytes(8)))
    assert rules_of(report) == ["AUD-ST-005"]
    assert "needs 12 bytes" in report.findings[0].detail


@pytest.mark.parametrize(
    ("tensors", "data_len", "expected"),
    [
        pytest.param({"a": [0, 8], "b": [4, 12]}, 12, "overlaps", id="overlap"),
        pytest.param({"a": [0, 8], "b": [12, 20]}, 20, "4 unaccounted bytes", id="gap"),
        pytest.param({"a": [0, 8]}, 16, "8 trailing bytes", id="trailing"),
        pytest.param({"a": [0, 8], "b": [8, 16]}, 8, "past the data area", id="past-end"),
    ],
)
def test_data_area_layout_must_be_exact(tmp_path, tensors, data_len, expected):
    header = {k: {"dtype": "F32", "shape": [2], "data_offsets": v} for k, v in tensors.items()}
    report = scan_bytes(tmp_path, raw_file(header, bytes(data_len)))
    assert rules_of(report) == ["AUD-ST-006"]
    assert expected in report.findings[0].detail


def test_truncated_data_area_is_reported(tmp_path):
    full = raw_file({"a": F32X2, "b": {**F32X2, "data_offsets": [8, 16]}}, bytes(16))
    report = scan_bytes(tmp_path, full[:-5])
    assert rules_of(report) == ["AUD-ST-006"]
    assert "past the data area" in report.findings[0].detail


def test_file_truncated_inside_the_header_is_reported(tmp_path):
    full = raw_file({"a": F32X2}, bytes(8))
    report = scan_bytes(tmp_path, full[:20])
    assert rules_of(report) == ["AUD-ST-002"]
    assert report.coverage == Coverage.ERROR


def test_non_string_metadata_is_reported_at_medium(tmp_path):
    header = {"__metadata__": {"format": "pt", "epoch": 3}, "a": F32X2}
    report = scan_bytes(tmp_path, raw_file(header, bytes(8)))
    assert rules_of(report) == ["AUD-ST-007"]
    assert report.findings[0].severity == Severity.MEDIUM


def test_header_that_is_not_an_object_is_invalid(tmp_path):
    report = scan_bytes(tmp_path, raw_file([], b""))
    assert report.format == "safetensors"
    assert rules_of(report) == ["AUD-ST-001"]
    assert "not a JSON object" in report.findings[0].detail
    assert report.coverage == Coverage.ERROR


def test_header_with_invalid_utf8_is_invalid(tmp_path):
    header = b'{"a\xff":' + json.dumps(F32X2).encode() + b"}"
    report = scan_bytes(tmp_path, raw_file(header, bytes(8)))
    assert rules_of(report) == ["AUD-ST-001"]
    assert "UTF-8" in report.findings[0].detail
    assert report.findings[0].location.offset == 8 + 3  # the bad byte, in file coordinates


def test_header_that_is_not_json_is_invalid_with_its_position(tmp_path):
    report = scan_bytes(tmp_path, raw_file(b'{"a": {"dtype": }}', b""))
    assert rules_of(report) == ["AUD-ST-001"]
    assert "line 1 column 17" in report.findings[0].detail


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"dtype": "F32", "shape": [2]}, id="missing-offsets"),
        pytest.param({**F32X2, "extra": 1}, id="extra-key"),
        pytest.param({**F32X2, "shape": [-2]}, id="negative-dim"),
        pytest.param({**F32X2, "shape": "2"}, id="shape-not-list"),
        pytest.param({**F32X2, "data_offsets": [8, 0]}, id="offsets-reversed"),
        pytest.param({**F32X2, "data_offsets": [0, True]}, id="offset-bool"),
    ],
)
def test_malformed_tensor_entries_are_invalid(tmp_path, entry):
    report = scan_bytes(tmp_path, raw_file({"a": entry}, bytes(8)))
    assert "AUD-ST-001" in rules_of(report)
    assert report.worst == Severity.HIGH
