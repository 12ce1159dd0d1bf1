import json

from tests.builders import write_tiny_model
from tests.sbom_models import GOLDEN


def test_sbom_validate_accepts_our_sboms_and_rejects_broken_ones(run_cli, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    good = tmp_path / "bom.json"
    assert run_cli("scan", model, "--sbom", good).code == 0
    xml = tmp_path / "bom.xml"
    assert run_cli("scan", model, "--sbom", xml, "--output-format", "xml").code == 0
    run = run_cli("sbom", "validate", good, xml)
    assert run.code == 0, run.out
    assert run.out.count(": valid") == 2
    doc = json.loads(good.read_text())
    doc["components"][0]["type"] = "not-a-type"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    run = run_cli("sbom", "validate", bad)
    assert run.code == 1 and "INVALID" in run.out


def test_sbom_validate_names_an_unreadable_file(run_cli, tmp_path):
    run = run_cli("sbom", "validate", tmp_path / "missing.json")
    assert run.code == 2 and "missing.json" in run.err


def _golden(tmp_path, **changes):
    doc = json.loads((GOLDEN / "tiny-model.cdx.json").read_text())
    doc.update(changes)
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(doc))
    return path, doc


def test_sbom_validate_checks_spec_1_7_and_refuses_unknown_versions(run_cli, tmp_path):
    path, _ = _golden(tmp_path, specVersion="1.7")
    run = run_cli("sbom", "validate", path)
    assert run.code == 0 and run.out.strip().endswith(": valid"), run.out + run.err
    path, _ = _golden(tmp_path, specVersion="9.9")
    run = run_cli("sbom", "validate", path)
    assert run.code == 1 and "unsupported CycloneDX version '9.9'" in run.out, run.err
    path, _ = _golden(tmp_path, specVersion="1.99")
    run = run_cli("sbom", "validate", path)
    assert run.code == 0 and "checked against the 1.7 schema" in run.out, run.out + run.err


def test_sbom_validate_checks_auditor_properties_against_the_table(run_cli, tmp_path):
    path, doc = _golden(tmp_path)
    props = doc["metadata"]["component"]["properties"]
    status = next(p for p in props if p["name"] == "auditor:signature:status")
    status["value"] = "failed"
    doc["components"][1]["properties"].append({"name": "auditor:made-up", "value": "x"})
    path.write_text(json.dumps(doc))
    run = run_cli("sbom", "validate", path)
    assert run.code == 1
    assert "auditor:signature:status: 'failed' is not one of" in run.out
    assert "$.components[1].properties[" in run.out and "'auditor:made-up'" in run.out
