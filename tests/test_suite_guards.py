"""The suite's own guards (tests/conftest.py) catch what they promise to catch.

Every SBOM a test makes is validated against the official schema, however
the test reaches the writer: this module imports `to_cyclonedx` by name, the
way that once bypassed the check, and makes the writer emit an invalid
document on purpose.
"""

from __future__ import annotations

import json

import pytest
from cyclonedx.output.json import Json

from auditor.errors import AuditorError
from auditor.model import Coverage, FileReport, ModelReport, ScanResult
from auditor.sbom import cyclonedx
from auditor.sbom.cyclonedx import to_cyclonedx


@pytest.fixture
def invalid_writer(monkeypatch):
    """The library's JSON gains a top-level key the strict schema refuses."""
    real = Json.output_as_string

    def broken(self, *args, **kwargs):
        doc = json.loads(real(self, *args, **kwargs))
        doc["notACycloneDXField"] = True
        return json.dumps(doc)

    monkeypatch.setattr(Json, "output_as_string", broken)


def _result() -> tuple[ModelReport, ScanResult]:
    weights = FileReport(path="model.safetensors", size=8, digests={"sha256": "ab" * 32},
                         format="safetensors", coverage=Coverage.SCANNED)
    model = ModelReport(name="org/model", root="/nowhere", source="local", files=(weights,))
    return model, ScanResult(target="org/model", models=(model,), bytes_read=0, elapsed_s=0.0,
                             rules_version="test")


def test_a_name_imported_from_the_writer_is_the_validating_one():
    assert to_cyclonedx is cyclonedx.to_cyclonedx
    assert to_cyclonedx.__wrapped__ is not to_cyclonedx


def test_the_writer_output_is_valid_without_the_fault():
    model, result = _result()
    assert to_cyclonedx(model, result)["bomFormat"] == "CycloneDX"


def test_an_invalid_document_built_by_a_test_is_caught(invalid_writer):
    model, result = _result()
    with pytest.raises(AuditorError, match="not valid CycloneDX"):
        to_cyclonedx(model, result)


def test_an_invalid_document_written_through_the_cli_is_caught(invalid_writer, run_cli, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    run = run_cli("scan", folder, "--sbom", tmp_path / "out.cdx.json")
    assert run.code not in (0, 1)
    assert "not valid CycloneDX" in run.err
    assert not (tmp_path / "out.cdx.json").exists()
