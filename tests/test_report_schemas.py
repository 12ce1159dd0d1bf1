"""The shipped JSON Schemas of `scan --format json` and `gate --format json` hold for real runs.

Outputs come from real scans (a clean model, a model with pickle findings, a remote-only Hub
audit, a folder of several models) and real verdicts (pass, fail with lineage and waivers).
Each schema must also reject what it promises to reject, so a check that passes everything
cannot hide here.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.builders import write_tiny_model

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "auditor" / "report" / "schemas"


def schema(name: str) -> dict:
    doc = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def models(tmp_path: Path) -> list[Path]:
    clean = write_tiny_model(tmp_path / "clean")
    risky = write_tiny_model(tmp_path / "risky")
    (risky / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # a call: findings
    parent = tmp_path / "parent"
    write_tiny_model(parent / "org" / "a")
    write_tiny_model(parent / "org" / "b")
    return [clean, risky, parent]


def test_every_scan_report_matches_the_scan_schema(run_cli, tmp_path):
    validator = jsonschema.Draft202012Validator(schema("scan"))
    for target in models(tmp_path):
        run = run_cli("scan", target, "--format", "json")
        doc = json.loads(run.out)
        errors = sorted(validator.iter_errors(doc), key=str)
        assert not errors, f"{target}: {errors[0].message} at {list(errors[0].path)}"


@pytest.mark.parametrize("policies", [["baseline"], ["baseline", "geopolitical-risk"],
                                      ["production"]])
def test_every_verdict_matches_the_gate_schema(run_cli, tmp_path, policies):
    validator = jsonschema.Draft202012Validator(schema("gate"))
    for target in models(tmp_path):
        args = [a for p in policies for a in ("--policy", p)]
        run = run_cli("gate", target, *args, "--format", "json")
        doc = json.loads(run.out)
        errors = sorted(validator.iter_errors(doc), key=str)
        assert not errors, f"{target}: {errors[0].message} at {list(errors[0].path)}"


def test_verdict_json_uses_real_booleans_for_tri_states(run_cli, tmp_path):
    run = run_cli("gate", write_tiny_model(tmp_path / "m"), "--policy", "geopolitical-risk",
                  "--format", "json")
    lineage = json.loads(run.out)["models"][0]["lineage"]
    assert {type(e["resolved"]) for e in lineage} <= {bool, type(None)}
    assert lineage[0]["resolved"] is True and lineage[0]["score"] is None


def test_the_schemas_reject_wrong_types():
    scan, gate = schema("scan"), schema("gate")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema": 1, "verdict": "true"}, scan)
    bad_entry = {"name": "x", "publisher": "p", "version": "v", "relation": "self", "depth": 0,
                 "resolved": "true", "declared": False, "grade": "declared", "evidence": [],
                 "publisher_grade": "declared", "score": None, "organisation": "o",
                 "jurisdiction": "j", "tier": "standard", "tripped": []}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_entry, {**gate, "$ref": "#/$defs/ancestor"})
