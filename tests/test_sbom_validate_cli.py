import json

from auditor.sbom import loading
from tests import sbom_documents as D
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


def _one_invalid_line(run, path):
    """`sbom validate` answered INVALID (exit 1) in one line naming the file."""
    assert run.code == 1, run.out + run.err
    (line,) = run.out.strip().splitlines()
    assert line.startswith(f"{path}: INVALID: ")
    return line


def test_sbom_validate_refuses_what_the_reader_refuses(run_cli, tmp_path):
    cases = {
        "dup.json": (D.duplicate_key("vulnerabilities"), "$.vulnerabilities: duplicate key"),
        "deep.json": (D.deep_json(900), "nested too deeply"),
        "deep.xml": (D.deep_xml(900), "nested too deeply"),
        "laughs.xml": (D.hostile_xml(D.LAUGHS, "UTF-16LE"), "DOCTYPE or ENTITY"),
        "xxe.xml": (D.hostile_xml(D.XXE, "UTF-8"), "DOCTYPE or ENTITY"),
    }
    for name, (doc, why) in cases.items():
        path = tmp_path / name
        path.write_bytes(doc if isinstance(doc, bytes) else doc.encode())
        assert why in _one_invalid_line(run_cli("sbom", "validate", path), path)


def test_sbom_validate_has_the_readers_size_cap(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "MAX_SBOM_BYTES", 1000)
    path, _ = _golden(tmp_path)
    assert "larger than 1000 bytes" in _one_invalid_line(run_cli("sbom", "validate", path), path)


def test_sbom_validate_gives_a_schema_error_in_one_short_line(run_cli, tmp_path):
    path, doc = _golden(tmp_path)
    doc["components"][0]["type"] = "not-a-type"
    path.write_text(json.dumps(doc))
    line = _one_invalid_line(run_cli("sbom", "validate", path), path)
    assert "$.components[0].type: 'not-a-type' is not one of" in line and len(line) < 400


def test_sbom_validate_reads_utf_16_xml(run_cli, tmp_path):
    path = tmp_path / "bom.xml"
    text = (GOLDEN / "tiny-model-xml.cdx.xml").read_text()
    path.write_bytes(text.replace("encoding='UTF-8'", "encoding='UTF-16'").encode("utf-16"))
    run = run_cli("sbom", "validate", path)
    assert run.code == 0 and run.out.strip().endswith(": valid"), run.out + run.err
