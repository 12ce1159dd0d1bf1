"""SARIF 2.1.0 output: valid against the official schema, one result per violation, located.

`tests/data/sarif-schema-2.1.0.json` is the OASIS SARIF 2.1.0 (rtm.5) JSON
schema, vendored unchanged from the npm package @microsoft/jest-sarif 1.0.0-beta.0
(lib/schemas/sarif-2.1.0-rtm.5.json) so validation runs offline.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

import jsonschema
import pytest

from auditor.model import Severity
from auditor.policy.engine import evaluate, load_policies
from auditor.report import sarif
from auditor.sbom.facts import models_from_sbom
from tests.sbom_factory import file_component, finding, model_sbom

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
POLICIES = [ROOT / "policies" / n for n in ("baseline.yaml", "production.yaml")]


def _verdict(tmp_path: Path, doc: dict, waiver: str = ""):
    paths = list(POLICIES)
    if waiver:
        (tmp_path / "w.yaml").write_text("policy: w\nwaivers:\n" + waiver)
        paths.append(tmp_path / "w.yaml")
    return evaluate(load_policies(paths), models_from_sbom(doc, "s.json"), sbom="s.json",
                    today=datetime.date(2026, 12, 1))


def _pickled(weights: str = "pytorch_model.bin") -> dict:
    return model_sbom("acme/pickled", revision=None, files=[
        file_component(weights, fmt="pytorch-zip", verdict="critical"),
        file_component("config.json", fmt="json", weights="false")],
        findings=[finding("AUD-PKL-001", "critical", weights, "Pickle runs code")])


def test_sarif_validates_against_the_2_1_0_schema(tmp_path):
    doc = sarif.to_dict(_verdict(tmp_path, _pickled()), Severity.LOW, base="models/pickled",
                        model_location="s.json")
    jsonschema.validate(doc, SCHEMA)
    assert doc["version"] == "2.1.0"


def test_each_violation_is_a_result_with_rule_metadata_and_location(tmp_path):
    doc = sarif.to_dict(_verdict(tmp_path, _pickled()), Severity.LOW, base="models/pickled",
                        model_location="models/pickled.cdx.json")
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules][:2] == ["BASE-001", "BASE-002"]
    assert all(r["help"]["text"] and r["properties"]["security-severity"] for r in rules)
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert set(by_rule) == {"BASE-001", "PROD-001", "PROD-002", "PROD-003"}
    base = by_rule["BASE-001"]
    assert rules[base["ruleIndex"]]["id"] == "BASE-001"
    assert base["level"] == "error"
    uri = base["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "models/pickled/pytorch_model.bin"
    model_wide = by_rule["PROD-003"]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert model_wide["uri"] == "models/pickled.cdx.json"
    assert model_wide["uriBaseId"] == "SRCROOT"
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == Path.cwd().as_uri() + "/"
    violation = next(v for v in _verdict(tmp_path, _pickled()).violations
                     if v.rule == "PROD-003")
    assert by_rule["PROD-003"]["message"]["text"] == violation.message  # its own, no boilerplate


def _decoded(location: dict) -> str:
    """The path a consumer gets back from an artifact location's URI."""
    uri = location["uri"]
    assert urlsplit(uri).path == uri, uri  # all path: no scheme, query or fragment sneaked in
    return unquote(uri)


@pytest.mark.parametrize("name", ["with space.bin", "a#b.bin", "100%.bin", "modèle-δ.bin",
                                  "a?b:c.bin"])
def test_verdict_sarif_uris_are_encoded_relative_references(tmp_path, name):
    verdict = _verdict(tmp_path, _pickled(name))
    sarif_doc = sarif.to_dict(verdict, Severity.LOW, base="models/my model",
                              model_location="s.json")
    jsonschema.validate(sarif_doc, SCHEMA)
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"]
                 for r in sarif_doc["runs"][0]["results"]]
    paths = {_decoded(a) for a in locations}
    assert f"models/my model/{name}" in paths
    assert all(a["uriBaseId"] == "SRCROOT" for a in locations)


def test_waived_violations_are_suppressed_with_the_approvers_reason(tmp_path):
    waiver = ("  - rule: PROD-003\n    model: acme/pickled\n    reason: pinned by digest\n"
              "    approver: bob@example.com\n    expires: 2027-01-01\n")
    doc = sarif.to_dict(_verdict(tmp_path, _pickled(), waiver), Severity.LOW)
    jsonschema.validate(doc, SCHEMA)
    (result,) = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "PROD-003"]
    (suppression,) = result["suppressions"]
    assert suppression["status"] == "accepted"
    assert "bob@example.com" in suppression["justification"]
    others = [r for r in doc["runs"][0]["results"] if r["ruleId"] != "PROD-003"]
    assert all("suppressions" not in r for r in others)


def test_a_passing_verdict_is_valid_sarif_with_no_results(tmp_path):
    passing = model_sbom(signature="verified", upstream_grade="signed")
    doc = sarif.to_dict(_verdict(tmp_path, passing), Severity.LOW)
    jsonschema.validate(doc, SCHEMA)
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["invocations"][0]["properties"]["verdict"] == "pass"


# --- the scan result as SARIF (`auditor scan --format sarif`) ---------------------------------


def _scanned_sarif(run_cli, tmp_path: Path) -> tuple[dict, Path]:
    import pickle

    from tests.builders import write_tiny_model

    model = write_tiny_model(tmp_path / "model")
    (model / "sub dir").mkdir()
    (model / "sub dir" / "evil #1.pkl").write_bytes(
        pickle.dumps(eval, protocol=2)[:-1] + b"(S'1'\ntR.")  # a call: not a safe global
    run = run_cli("scan", model, "--format", "sarif")
    assert run.code == 1, run.err
    return json.loads(run.out), model


def test_scan_sarif_is_valid_and_one_result_per_finding(run_cli, tmp_path):
    from auditor.pipeline import scan

    doc, model = _scanned_sarif(run_cli, tmp_path)
    jsonschema.validate(doc, SCHEMA)
    run = doc["runs"][0]
    findings = scan(model).all_findings()
    assert len(run["results"]) == len(findings) > 0
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
    assert {r["ruleId"] for r in run["results"]} == {r["id"] for r in rules}


def test_scan_sarif_rules_come_from_the_catalogue_and_locations_are_relative(run_cli, tmp_path):
    from auditor.rules import catalogue

    doc, model = _scanned_sarif(run_cli, tmp_path)
    run = doc["runs"][0]
    known = catalogue()
    for rule in run["tool"]["driver"]["rules"]:  # help: the catalogue's why and fix
        entry = known[rule["id"]]
        assert rule["help"]["text"] == f"{entry.why} Fix: {entry.fix}"
        assert entry.why in rule["help"]["markdown"]
        assert f"**Fix:** {entry.fix}" in rule["help"]["markdown"]
        assert rule["fullDescription"]["text"] == known[rule["id"]].why
    evil = [r for r in run["results"]
            if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "sub%20dir/evil%20%231.pkl"]
    assert evil and all(r["level"] == "error" for r in evil)  # critical/high → error
    base = evil[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"]
    root = run["originalUriBaseIds"][base]["uri"]
    assert root == model.resolve().as_uri() + "/"
    assert run["invocations"][0]["properties"]["verdict"] == "fail"


def test_every_command_offers_the_formats_of_its_subject(run_cli):
    from auditor.report import DATA_FORMATS, SCAN_REPORTERS, VERDICT_REPORTERS

    assert set(SCAN_REPORTERS) == set(VERDICT_REPORTERS) == {"text", "json", "sarif", "junit",
                                                               "html"}
    for command, formats in ((("scan",), SCAN_REPORTERS), (("gate",), VERDICT_REPORTERS),
                             (("policy", "check"), VERDICT_REPORTERS),
                             (("mirror", "scan"), DATA_FORMATS),
                             (("mirror", "status"), DATA_FORMATS), (("verify",), DATA_FORMATS),
                             (("sbom", "diff"), DATA_FORMATS)):
        help_text = run_cli(*command, "--help").out
        choice = help_text.split("--format", 1)[1].split("]", 1)[0]
        assert choice.strip(" [").split("|") == list(formats), (command, choice)
    assert run_cli("scan", ".", "--format", "xml").code == 2


def test_scan_sarif_uris_are_encoded_relative_references(tmp_path):
    import pickle

    from auditor.pipeline import scan
    from auditor.report import scan_sarif

    names = ["with space.pkl", "a#b.pkl", "100%.pkl", "modèle-δ.pkl", "a?b:c.pkl"]
    for name in names:
        (tmp_path / name).write_bytes(pickle.dumps(eval, protocol=2)[:-1] + b"(S'1'\ntR.")
    doc = scan_sarif.to_dict(scan(tmp_path), Severity.LOW)
    jsonschema.validate(doc, SCHEMA)
    run = doc["runs"][0]
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"]
                 for r in run["results"]]
    assert {_decoded(a) for a in locations} >= set(names)
    for a in locations:  # joined to its base, each names the scanned file again
        base = run["originalUriBaseIds"][a["uriBaseId"]]["uri"]
        if a["uri"]:
            assert Path(url2pathname(urlsplit(urljoin(base, a["uri"])).path)).is_file()


def test_scan_sarif_results_carry_the_findings_detail_and_region(tmp_path):
    import pickle

    from auditor.pipeline import scan
    from auditor.report import scan_sarif

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(eval, protocol=2)[:-1] + b"(S'1'\ntR.")
    (tmp_path / "modeling_x.py").write_text("import os\n\n\nos.system('ls')\n")
    (tmp_path / "config.yaml").write_text("a: 1\nb: !!python/object/apply:os.system ['ls']\n")
    result = scan(tmp_path)
    doc = scan_sarif.to_dict(result, Severity.LOW)
    jsonschema.validate(doc, SCHEMA)
    results = doc["runs"][0]["results"]
    findings = result.all_findings()
    assert [r["message"]["text"] for r in results] == [f.detail or f.title for f in findings]
    regions = {(r["ruleId"], json.dumps(r["locations"][0]["physicalLocation"].get("region")))
               for r in results}
    assert ("AUD-CODE-002", '{"startLine": 4}') in regions  # a Python file: the line
    assert ("AUD-YAML-001", '{"startLine": 2}') in regions  # a config: the line
    pkl = next(f for f in findings if f.file == "evil.pkl" and f.location.offset is not None)
    assert (pkl.rule, json.dumps({"byteOffset": pkl.location.offset})) in regions  # a binary
    assert ("AUD-CODE-001", "null") in regions  # the file as a whole: no region


def test_a_region_comes_only_from_the_documented_line_form_in_the_file_itself():
    from auditor.model import Finding, Location
    from auditor.report.sarif_log import region

    def at(detail: str, **where) -> dict:
        return region(Finding("R", Severity.HIGH, "f.py", "t", detail, Location(**where)))

    assert at("line 12: eval") == {"startLine": 12}
    assert at("line 12: eval", offset=40) == {"startLine": 12}
    assert at("calls eval on line 12") == {} and at("line 0: x") == {} and at("") == {}
    assert at("line 3: x", member="a.zip/b.py") == {}  # inside a member: not a line of the zip
    assert at("GLOBAL @2", offset=2) == {"byteOffset": 2}
    assert at("GLOBAL @2", member="a.zip/data.pkl", offset=2) == {}


def test_rule_help_leaves_out_what_a_rule_does_not_say():
    from auditor.report.sarif_log import rule_help

    assert rule_help("X-1 (mine)", "", "") == {"text": "X-1 (mine)", "markdown": "**X-1 (mine)**"}
    assert "Fix" not in str(rule_help("X-1", "Because.", ""))
    assert rule_help("X-1", "", "Do it.")["text"] == "Fix: Do it."


def test_a_model_inside_the_working_folder_is_located_from_it(tmp_path, monkeypatch):
    """Code scanning resolves relative URIs against the checkout: where auditor ran in CI."""
    import pickle

    from auditor.pipeline import scan
    from auditor.report import scan_sarif

    model = tmp_path / "models" / "my model"
    model.mkdir(parents=True)
    (model / "evil.pkl").write_bytes(pickle.dumps(eval, protocol=2)[:-1] + b"(S'1'\ntR.")
    monkeypatch.chdir(tmp_path)
    doc = scan_sarif.to_dict(scan(Path("models/my model")), Severity.LOW)
    jsonschema.validate(doc, SCHEMA)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": tmp_path.resolve().as_uri() + "/"}}
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in run["results"]}
    assert "models/my%20model/evil.pkl" in uris

    outside = sarif.to_dict(_verdict(tmp_path, _pickled()), Severity.LOW, base="/elsewhere/m",
                            model_location="s.json")
    jsonschema.validate(outside, SCHEMA)
    artifacts = [r["locations"][0]["physicalLocation"]["artifactLocation"]
                 for r in outside["runs"][0]["results"]]
    assert {"uri": "file:///elsewhere/m/pytorch_model.bin"} in artifacts  # absolute: no base
    assert {"uri": "s.json", "uriBaseId": "SRCROOT"} in artifacts


def test_a_relative_uri_never_reads_as_another_host_or_scheme():
    from auditor.report.sarif_log import relative_uri

    for path, uri in (("//evil.example/x", "evil.example/x"), ("/etc/x", "etc/x"),
                      ("c:/x", "c%3A/x"), ("a/./b/../c d", "a/c%20d"), ("", "")):
        assert relative_uri(path) == uri
        assert not urlsplit(uri).scheme and not urlsplit(uri).netloc


def test_verdict_sarif_results_of_findings_carry_their_region(run_cli, tmp_path, monkeypatch):
    import pickle

    model = tmp_path / "m"
    model.mkdir()
    (model / "evil.pkl").write_bytes(pickle.dumps(eval, protocol=2)[:-1] + b"(S'1'\ntR.")
    (model / "config.yaml").write_text("a: 1\nb: !!python/object/apply:os.system ['ls']\n")
    monkeypatch.chdir(tmp_path)
    out = run_cli("gate", "m", "--policy", POLICIES[0], "--format", "sarif")
    assert out.code == 1, out.err
    doc = json.loads(out.out)
    jsonschema.validate(doc, SCHEMA)
    spots = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
              json.dumps(r["locations"][0]["physicalLocation"].get("region")))
             for r in doc["runs"][0]["results"]}
    assert ("m/config.yaml", '{"startLine": 2}') in spots  # a text file: the finding's line
    assert any(uri == "m/evil.pkl" and '"byteOffset"' in where for uri, where in spots)
