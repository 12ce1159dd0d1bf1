"""SPDX 3.0.1 JSON-LD: valid for the official SPDX bindings, the same facts as the CycloneDX BOM.

Validation uses spdx-python-model, the SPDX project's Python bindings generated
(shacl2code) from the 3.0.1 SHACL model: it refuses unknown types and
properties (every 3.0.1 class is closed), wrong value types, enum values and
datetime formats while reading; `link` names every reference to an element the
document lacks; and writing the objects back enforces each property's minimum
and maximum count. The whole document must survive that round trip unchanged.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from spdx_python_model import v3_0_1 as spdx3

from auditor.model import Coverage, FileReport, Finding, Location, ModelReport, ScanResult, Severity
from auditor.sbom.cyclonedx import to_cyclonedx, write_sboms
from auditor.sbom.spdx import to_spdx
from tests.builders import write_tiny_model
from tests.sbom_models import write_merged, write_with_findings

COMMIT = "0123456789abcdef0123456789abcdef01234567"
T = "https://spdx.org/rdf/3.0.1/terms/"


def assert_valid_spdx(doc: dict) -> dict[str, dict]:
    """Validate with the official 3.0.1 bindings; the elements by spdxId."""
    objects = spdx3.SHACLObjectSet()
    spdx3.JSONLDDeserializer().deserialize_data(doc, objects)
    assert objects.link() == set(), "references to elements the document lacks"
    out = io.BytesIO()
    spdx3.JSONLDSerializer().write(objects, out)  # raises on a missing required property
    written = json.loads(out.getvalue())
    assert written["@context"] == doc["@context"]
    ids = {e.get("spdxId") for e in written["@graph"]} - {None}
    assert ids == {e["spdxId"] for e in doc["@graph"] if "spdxId" in e}
    return {e["spdxId"]: e for e in doc["@graph"] if "spdxId" in e}


def _of(elements: dict[str, dict], kind: str) -> list[dict]:
    return [e for e in elements.values() if e["type"] == kind]


def _relations(elements: dict[str, dict], kind: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rel in _of(elements, "Relationship"):
        if rel["relationshipType"] == kind:
            out.setdefault(rel["from"], []).extend(rel["to"])
    return out


def _scan(run_cli, folder: Path, out: Path, *args: str) -> str:
    run = run_cli("scan", folder, "--format", "json", "--sbom", out, "--reproducible", *args)
    assert run.code in (0, 1), run.err
    return out.read_text()


def _report(name: str = "org/model", files=(), findings=(), facts=None) -> tuple[
        ModelReport, ScanResult]:
    model = ModelReport(name=name, root="/nowhere", source="hub", files=tuple(files),
                        findings=tuple(findings), facts=facts or {}, revision=COMMIT)
    return model, ScanResult(target=name, models=(model,), bytes_read=0, elapsed_s=0.0,
                             rules_version="test+rules.1")


def _file(path: str, findings=()) -> FileReport:
    return FileReport(path=path, size=8, digests={"sha256": "ab" * 32, "sha512": "cd" * 64},
                      format="safetensors", coverage=Coverage.SCANNED, findings=tuple(findings))


def test_spdx_of_a_merged_model_validates_with_the_official_3_0_1_bindings(run_cli, tmp_path):
    folder = write_merged(tmp_path / "merged-model")
    doc = json.loads(_scan(run_cli, folder, tmp_path / "m.spdx.json",
                           "--output-format", "spdx-json", "--hash", "sha512"))
    assert doc["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    elements = assert_valid_spdx(doc)
    creation = doc["@graph"][0]
    assert creation["specVersion"] == "3.0.1"
    assert creation["created"] == "1970-01-01T00:00:00Z"
    assert [elements[a]["name"] for a in creation["createdBy"]] == ["auditor"]
    [document] = _of(elements, "SpdxDocument")
    [model] = [elements[r] for r in document["rootElement"]]
    assert model["type"] == "ai_AIPackage"
    assert model["name"] == "merged-model"
    assert model["software_primaryPurpose"] == "model"
    assert model["ai_domain"] == ["text-generation"]
    assert model["comment"].startswith("auditor scan verdict: clean")
    files = {f["name"]: f for f in _of(elements, "software_File")}
    assert set(_relations(elements, "contains")[model["spdxId"]]) == {
        f["spdxId"] for f in files.values()}
    weights = files["model.safetensors"]
    assert [h["algorithm"] for h in weights["verifiedUsing"]] == ["sha256", "sha512"]
    assert weights["software_primaryPurpose"] == "model"
    datasets = {d["spdxId"]: d for d in _of(elements, "dataset_DatasetPackage")}
    assert sorted(d["name"] for d in datasets.values()) == [
        "example-org/tiny-corpus", "other-org/tiny-instructions"]
    assert set(_relations(elements, "trainedOn")[model["spdxId"]]) == set(datasets)
    [licence] = [elements[i] for i in _relations(elements, "hasDeclaredLicense")[model["spdxId"]]]
    assert licence["simplelicensing_licenseExpression"] == "LicenseRef-llama3.1"
    bases = [elements[i] for i in _relations(elements, "descendantOf")[model["spdxId"]]]
    assert sorted(b["name"] for b in bases) == ["example-org/tiny-base", "other-org/tiny-chat"]
    assert all(b["type"] == "ai_AIPackage" for b in bases)
    assert {elements[b["suppliedBy"]]["name"] for b in bases} == {"example-org", "other-org"}


def test_spdx_states_the_same_facts_as_the_cyclonedx_bom(run_cli, tmp_path):
    folder = write_merged(tmp_path / "merged-model")
    cdx = json.loads(_scan(run_cli, folder, tmp_path / "m.cdx.json", "--hash", "sha512"))
    spdx = assert_valid_spdx(json.loads(_scan(
        run_cli, folder, tmp_path / "m.spdx.json", "--hash", "sha512",
        "--output-format", "spdx-json")))
    component = cdx["metadata"]["component"]
    [model] = [e for e in _of(spdx, "ai_AIPackage") if e["name"] == component["name"]]
    assert model.get("software_packageVersion") == component.get("version")
    cdx_files = {c["name"]: {h["alg"].replace("SHA-", "sha"): h["content"] for h in c["hashes"]}
                 for c in cdx["components"] if c["type"] == "file"}
    spdx_files = {f["name"]: {h["algorithm"]: h["hashValue"] for h in f["verifiedUsing"]}
                  for f in _of(spdx, "software_File")}
    assert spdx_files == cdx_files
    ancestors = {a["name"] for a in component["pedigree"]["ancestors"]}
    assert {e["name"] for e in _of(spdx, "ai_AIPackage")} - {model["name"]} == ancestors
    licences = [lic["license"].get("id") or "LicenseRef-" + lic["license"]["name"]
                for lic in component["licenses"]]
    assert [e["simplelicensing_licenseExpression"]
            for e in _of(spdx, "simplelicensing_LicenseExpression")] == [" AND ".join(licences)]
    cdx_data = {c["name"] for c in cdx["components"] if c["type"] == "data"}
    assert {d["name"] for d in _of(spdx, "dataset_DatasetPackage")} == cdx_data


def test_hub_model_lineage_chain_and_identity_are_mapped():
    lineage = [
        {"name": "org/ft", "publisher": "org", "commit": "a" * 40, "relation": "finetune",
         "resolved": True, "depth": 1},
        {"name": "base/root", "publisher": "base", "commit": "b" * 40, "relation": "quantized",
         "resolved": True, "depth": 2},
        {"name": "x/other", "relation": "adapter", "resolved": False, "depth": 1},
    ]
    model, result = _report(files=[_file("a.safetensors")], facts={
        "lineage": lineage, "card": {"license": "apache-2.0"},
        "origin": {"publisher": "org", "grade": "hub-verified", "evidence": "the Hub"}})
    elements = assert_valid_spdx(to_spdx(to_cyclonedx(model, result, reproducible=True)))
    by_name = {e["name"]: e for e in _of(elements, "ai_AIPackage")}
    root = by_name["org/model"]
    assert root["software_packageVersion"] == COMMIT
    assert root["software_packageUrl"] == f"pkg:huggingface/org/model@{COMMIT}"
    assert root["externalIdentifier"] == [{
        "type": "ExternalIdentifier", "externalIdentifierType": "packageUrl",
        "identifier": f"pkg:huggingface/org/model@{COMMIT}"}]
    assert root["software_downloadLocation"] == f"https://huggingface.co/org/model/tree/{COMMIT}"
    assert elements[root["suppliedBy"]] == {**elements[root["suppliedBy"]], "name": "org"}
    descends = _relations(elements, "descendantOf")
    names = {k: sorted(elements[t]["name"] for t in v) for k, v in descends.items()}
    assert names[root["spdxId"]] == ["org/ft", "x/other"]
    assert names[by_name["org/ft"]["spdxId"]] == ["base/root"]
    assert by_name["base/root"]["software_packageVersion"] == "b" * 40
    assert "software_packageVersion" not in by_name["x/other"]
    [licence] = _of(elements, "simplelicensing_LicenseExpression")
    assert licence["simplelicensing_licenseExpression"] == "Apache-2.0"


def test_findings_become_review_annotations_on_their_file():
    bad = Finding(rule="AUD-PKL-001", severity=Severity.CRITICAL, file="w.bin",
                  title="pickle calls os.system", detail="GLOBAL os system",
                  location=Location(member="data.pkl", offset=12))
    model, result = _report(files=[_file("w.bin", findings=[bad])])
    elements = assert_valid_spdx(to_spdx(to_cyclonedx(model, result, reproducible=True)))
    [note] = _of(elements, "Annotation")
    assert note["annotationType"] == "review"
    assert elements[note["subject"]]["name"] == "w.bin"
    assert note["statement"].startswith("AUD-PKL-001 (critical) [data.pkl]: pickle calls os.system")
    [root] = [e for e in _of(elements, "ai_AIPackage")]
    assert "findings: critical 1" in root["comment"]


def test_reproducible_spdx_is_byte_identical_and_follows_the_content(run_cli, tmp_path):
    folder = write_with_findings(tmp_path / "with-findings")
    first = _scan(run_cli, folder, tmp_path / "a.json", "--output-format", "spdx-json")
    second = _scan(run_cli, folder, tmp_path / "b.json", "--output-format", "spdx-json",
                   "--jobs", "1")
    assert first == second
    assert_valid_spdx(json.loads(first))
    (folder / "config.json").write_text("{}\n")
    changed = _scan(run_cli, folder, tmp_path / "c.json", "--output-format", "spdx-json")
    assert json.loads(changed)["@graph"][1]["spdxId"] != json.loads(first)["@graph"][1]["spdxId"]


def test_a_hostile_model_name_is_only_a_string(tmp_path):
    name = 'evil"/<script>alert(1)</script> #?%{}'
    model, result = _report(name=name, files=[_file("we ird#1.bin")])
    doc = to_spdx(to_cyclonedx(model, result, reproducible=True))
    elements = assert_valid_spdx(doc)
    [root] = _of(elements, "ai_AIPackage")
    assert root["name"] == name
    assert " " not in root["spdxId"] and "<" not in root["spdxId"] and "#" not in root["spdxId"]
    assert [f["name"] for f in _of(elements, "software_File")] == ["we ird#1.bin"]


def test_an_sbom_folder_gets_spdx_json_files(tmp_path):
    a, _ = _report(name="org/a", files=[_file("w.safetensors")])
    b, _ = _report(name="org/b", files=[_file("w.safetensors")])
    result = ScanResult(target="cache", models=(a, b), bytes_read=0, elapsed_s=0.0,
                        rules_version="t")
    out = tmp_path / "sboms"
    out.mkdir()
    paths = write_sboms(result, out, spec="1.6", output_format="spdx-json", reproducible=True)
    assert sorted(p.name for p in paths) == ["org__a.spdx.json", "org__b.spdx.json"]
    for path in paths:
        assert_valid_spdx(json.loads(path.read_text()))


@pytest.mark.parametrize("broken", ["no-creation-info", "unknown-property", "dangling",
                                    "purpose-outside-the-enum", "created-not-a-datetime"])
def test_the_validator_refuses_what_3_0_1_does_not_allow(broken):
    model, result = _report(files=[_file("w.safetensors")])
    doc = to_spdx(to_cyclonedx(model, result, reproducible=True))
    [file_element] = [e for e in doc["@graph"] if e["type"] == "software_File"]
    if broken == "no-creation-info":
        del file_element["creationInfo"]
    elif broken == "unknown-property":
        file_element["auditor_format"] = "safetensors"
    elif broken == "dangling":
        file_element["suppliedBy"] = "https://example.invalid/nobody"
    elif broken == "purpose-outside-the-enum":
        file_element["software_primaryPurpose"] = "weights"
    else:
        doc["@graph"][0]["created"] = "yesterday"
    with pytest.raises((AssertionError, KeyError, ValueError)):
        assert_valid_spdx(doc)


SPDX2 = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x"}


@pytest.mark.parametrize("kind", ["spdx3", "spdx2-json", "spdx2-tag-value"])
def test_policy_check_refuses_spdx_in_one_line(run_cli, tmp_path, kind):
    path = tmp_path / "model.spdx"
    if kind == "spdx3":
        model, result = _report(files=[_file("w.safetensors")])
        path.write_text(json.dumps(to_spdx(to_cyclonedx(model, result))))
    elif kind == "spdx2-json":
        path.write_text(json.dumps(SPDX2))
    else:
        path.write_text("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n")
    run = run_cli("policy", "check", path, "--policy", "policies/baseline.yaml")
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        f"auditor: error: {path}: is an SPDX document; policy check reads CycloneDX — write "
        "one with --output-format json"]


def test_cyclonedx_written_beside_still_passes_policy_check(run_cli, tmp_path):
    folder = write_tiny_model(tmp_path / "tiny-model")
    _scan(run_cli, folder, tmp_path / "m.cdx.json")
    run = run_cli("policy", "check", tmp_path / "m.cdx.json", "--policy",
                  "policies/baseline.yaml")
    assert run.code in (0, 1), run.err
    assert "SPDX" not in run.err


def test_two_revisions_of_one_model_in_a_document_are_two_packages_with_their_own_files():
    """Model, file and finding ids name the revision: nothing of one merges into the other."""
    other = "f" * 40
    first = to_cyclonedx(*_report(files=[_file("a.safetensors")]), reproducible=True)
    model, result = _report(files=[_file("a.safetensors")])
    second = to_cyclonedx(model.__class__(**{**model.__dict__, "revision": other}), result,
                          reproducible=True)
    refs = {c["bom-ref"] for c in [second["metadata"]["component"], *second["components"]]}
    text = json.dumps(second)
    for ref in sorted(refs, key=len, reverse=True):
        text = text.replace(json.dumps(ref), json.dumps(f"second-{ref}"))
    second = json.loads(text)
    first["components"] = [*first["components"], second["metadata"]["component"],
                           *second["components"]]
    first["dependencies"] = [*first.get("dependencies", []), *second.get("dependencies", [])]
    elements = assert_valid_spdx(to_spdx(first))
    packages = [e for e in _of(elements, "ai_AIPackage") if e["name"] == "org/model"]
    assert sorted(p["software_packageVersion"] for p in packages) == sorted([COMMIT, other])
    contains = _relations(elements, "contains")
    held = [contains[p["spdxId"]] for p in packages]
    assert len(held[0]) == len(held[1]) == 1 and held[0] != held[1]
