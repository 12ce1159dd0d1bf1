import json

from tests.builders import write_tiny_model


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
