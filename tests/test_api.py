"""The Python API: a pipeline embeds auditor through `auditor.scan` and `auditor.gate` alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import auditor
from tests.builders import write_tiny_model

BASELINE = Path(__file__).resolve().parent.parent / "policies" / "baseline.yaml"


def test_scan_returns_the_report_of_each_model(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    result = auditor.scan(model)
    (report,) = result.models
    assert report.name == "model"
    assert {f.path for f in report.files} >= {"model.safetensors", "config.json"}
    assert result.worst is None


def test_scan_of_a_path_string_finds_what_the_cli_finds(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "extra.safetensors").write_bytes(b"\x00\x01" * 100)  # not safetensors at all
    result = auditor.scan(str(model))
    assert {(f.rule, f.file) for f in result.all_findings()} == {
        ("AUD-SCAN-003", "extra.safetensors"), ("AUD-FILE-001", "extra.safetensors")}
    assert result.fails(result.worst)


def test_gate_judges_the_sbom_against_policy_files(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    judged = auditor.gate(model, [BASELINE], sbom_path=tmp_path / "model.cdx.json")
    assert not judged.fails()
    assert judged.verdict.policies == (str(BASELINE),)
    assert [label for label, _ in judged.documents] == [str(tmp_path / "model.cdx.json")]
    assert (tmp_path / "model.cdx.json").is_file()


def test_gate_fails_a_model_with_a_dangerous_pickle(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "payload.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    judged = auditor.gate(model, [BASELINE])
    assert judged.fails()
    assert judged.verdict.active()


def test_importing_auditor_does_not_load_the_scanner():
    code = ("import sys, auditor, auditor.model; print(any(m.startswith(("
            "'auditor.pipeline', 'auditor.scanning')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_engine_room_and_the_scan_function_live_side_by_side():
    """`auditor.scan` is the function even after the engine room is imported by its path."""
    import auditor.scanning.engine as engine

    assert callable(auditor.scan)
    assert engine.RULES_VERSION


def test_gate_takes_one_policy_path_as_one_policy(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    for policy in (str(BASELINE), BASELINE):
        judged = auditor.gate(model, policy)
        assert judged.verdict.policies == (str(BASELINE),)
        assert not judged.fails()


def test_write_sboms_into_an_existing_folder_or_to_a_file(tmp_path):
    from auditor.pipeline import write_sboms

    result = auditor.scan(write_tiny_model(tmp_path / "model"))
    folder = tmp_path / "sboms"
    folder.mkdir()
    assert write_sboms(result, folder) == [folder / "model.cdx.json"]
    assert write_sboms(result, tmp_path / "one.json") == [tmp_path / "one.json"]
    assert (tmp_path / "one.json").is_file()
