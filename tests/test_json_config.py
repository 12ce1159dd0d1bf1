"""JSON configs are parsed strictly: valid files give facts, invalid ones fail with a position."""

from __future__ import annotations

import json

from auditor.model import Coverage, FileReport, Severity
from auditor.scan.context import ScanOptions
from auditor.scan.engine import scan_local
from auditor.scan.limits import Limits
from tests.builders import TINY_CONFIG


def scan_json_file(tmp_path, content: bytes, name: str = "config.json", **options) -> FileReport:
    path = tmp_path / name
    path.write_bytes(content)
    (report,) = scan_local(path, ScanOptions(jobs=1, **options)).models[0].files
    return report


def test_valid_config_is_scanned_with_its_facts(tmp_path):
    report = scan_json_file(tmp_path, json.dumps(TINY_CONFIG, indent=2).encode())
    assert report.format == "json"
    assert report.coverage == Coverage.SCANNED
    assert report.findings == ()
    assert report.facts["model_type"] == "llama"
    assert report.facts["architectures"] == ["LlamaForCausalLM"]
    assert report.facts["torch_dtype"] == "float32"


def test_invalid_json_fails_the_scan_with_line_and_column(tmp_path, run_cli):
    (tmp_path / "config.json").write_text('{\n  "model_type": "llama",\n  "hidden": 16,,\n}\n')
    run = run_cli("scan", tmp_path, "--format", "json")
    assert run.code == 1
    (report,) = json.loads(run.out)["models"][0]["files"]
    assert report["coverage"] == "error"
    (finding,) = report["findings"]
    assert (finding["rule"], finding["severity"]) == ("AUD-JSON-001", "high")
    assert "line 3 column 16" in finding["detail"]
    assert finding["offset"] == len(b'{\n  "model_type": "llama",\n  "hidden": 16,')


def test_error_offset_is_in_bytes_after_non_ascii_text_and_a_bom(tmp_path):
    content = '\ufeff{"name": "modèle — ünïcode", oops}'.encode()
    report = scan_json_file(tmp_path, content)
    (finding,) = report.findings
    assert finding.rule == "AUD-JSON-001"
    assert content[finding.location.offset : finding.location.offset + 4] == b"oops"


def test_duplicate_keys_are_reported_and_the_file_still_parsed(tmp_path):
    content = b'{"model_type": "llama", "hidden_size": 8, "model_type": "evil"}'
    report = scan_json_file(tmp_path, content)
    assert [f.rule for f in report.findings] == ["AUD-JSON-002"]
    assert report.findings[0].severity == Severity.MEDIUM
    assert "'model_type'" in report.findings[0].detail
    assert report.coverage == Coverage.SCANNED


def test_json_with_a_byte_order_mark_is_valid(tmp_path):
    report = scan_json_file(tmp_path, b"\xef\xbb\xbf" + json.dumps(TINY_CONFIG).encode())
    assert report.format == "json"
    assert report.findings == ()


def test_json_that_is_not_utf8_is_invalid(tmp_path):
    report = scan_json_file(tmp_path, b'{"name": "caf\xe9"}')
    assert [f.rule for f in report.findings] == ["AUD-JSON-001"]
    assert "UTF-8" in report.findings[0].detail
    assert report.findings[0].location.offset == 13


def test_top_level_array_is_valid_json_without_config_facts(tmp_path):
    report = scan_json_file(tmp_path, b'[1, 2, {"model_type": "x"}]', name="list.json")
    assert report.findings == ()
    assert "model_type" not in report.facts


def test_nesting_beyond_the_parser_is_a_limit_not_a_crash(tmp_path):
    report = scan_json_file(tmp_path, b"[" * 100_000 + b"]" * 100_000, name="deep.json")
    assert [f.rule for f in report.findings] == ["AUD-SCAN-002"]
    assert report.coverage == Coverage.PARTIAL


def test_json_larger_than_the_limit_is_partial(tmp_path):
    content = json.dumps({"pad": "x" * 500}).encode()
    report = scan_json_file(tmp_path, content, limits=Limits(max_json_bytes=100))
    assert [f.rule for f in report.findings] == ["AUD-SCAN-002"]
    assert report.coverage == Coverage.PARTIAL
    assert report.size == len(content)  # still hashed whole
