"""The SBOM reader: every valid CycloneDX layout is read, every malformed document refused.

One table, each row a document and what the reader must make of it: the
facts a policy would see, or exit 2 with one line naming the file and the
JSON path. Key rows also run through `auditor policy check --policy
policies/baseline.yaml`, which must never PASS a malformed document nor
crash on one (exit 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auditor.errors import UsageError
from auditor.sbom.cdxml import REPEATABLE
from auditor.sbom.facts import models_from_sbom, read_sbom
from auditor.sbom.schemas import READ_SPECS
from tests import sbom_documents as D

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "policies" / "baseline.yaml"


@dataclass(frozen=True)
class Seen:
    """Per model: (name, [(file path, sha256, findings on it)], [(rule, severity, file)])."""

    models: list[tuple[str, list[tuple[str, str, int]], list[tuple[str, str, str]]]]


@dataclass(frozen=True)
class Refused:
    message: str  # must appear in the one-line error, after the file name


def summary(doc_or_path: Any, where: str = "sbom.json") -> list:
    models = models_from_sbom(doc_or_path, where)
    return [
        (m.model.name, sorted((f.path, f.sha256, f.findings) for f in m.files),
         sorted((f.rule, f.severity, f.file) for f in m.findings))
        for m in models
    ]


WITH_FINDINGS_FILES = [
    (f["name"], f["hashes"][0]["content"], 1 if f["name"] in ("blob.bin", "extra.safetensors")
     else 0)
    for f in D.golden("with-findings.cdx.json")["components"] if f["type"] == "file"
]
WITH_FINDINGS = Seen([("with-findings", sorted(WITH_FINDINGS_FILES), [
    ("AUD-SCAN-003", "high", "blob.bin"), ("AUD-ST-006", "high", "extra.safetensors")])])

good = D.lib4sbom()
FOREIGN_XML = Seen([("acme/xml-model", [("model.pkl", D.SHA_A, 1)],
                     [("X-1", "critical", "model.pkl")])])
SYFT_FILES = [("/models/evil.pkl", D.SHA_B, 1), ("/models/qwen.gguf", D.SHA_A, 0)]


def lib4sbom_rated(severity: str) -> Seen:
    return Seen([("acme/model", [("config.json", D.SHA_B, 0), ("model.bin", D.SHA_A, 1)],
                  [("PICKLE-1", severity, "model.bin")])])


ROWS: dict[str, tuple[Any, Seen | Refused]] = {
    # --- valid, foreign and ours -------------------------------------------------------------
    "golden-json": (D.golden("with-findings.cdx.json"), WITH_FINDINGS),
    "golden-xml": ((D.GOLDEN / "tiny-model-xml.cdx.xml").read_bytes(),
                   Seen(summary(D.golden("tiny-model.cdx.json")))),
    "lib4sbom-dependencies": (good, Seen([("acme/model", [
        ("config.json", D.SHA_B, 0), ("model.bin", D.SHA_A, 1)],
        [("PICKLE-1", "critical", "model.bin")])])),
    "cdxgen-metadata-model": (D.cdxgen(), Seen([("acme/model", [
        ("weights.safetensors", D.SHA_A, 0)], [])])),
    "syft-spec-1.4": (D.syft_1_4(), Seen([("acme/model", [("model.onnx", D.SHA_A, 1)],
                                           [("CVE-X", "medium", "model.onnx")])])),
    # Syft: the scanned directory is the subject, not a file; the files nobody links belong
    # to every model found, and so does the finding on one of them.
    "syft-directory": (D.syft(), Seen([("qwen", SYFT_FILES, [
        ("GRYPE-1", "high", "/models/evil.pkl")])])),
    "syft-two-models": (D.syft("qwen", "llama"), Seen([
        (name, SYFT_FILES, [("GRYPE-1", "high", "/models/evil.pkl")])
        for name in ("qwen", "llama")])),
    # AIsbom: each model file is a model with no file; its verdict is a finding on it.
    "aisbom": (D.aisbom(), Seen([
        ("bert_finetune.pt", [], [("AISBOM-RISK", "critical", "")]),
        ("model.safetensors", [], [("AISBOM-RISK", "low", "")])])),
    "nested-files": (D.nested_files(), Seen([("acme/model", [("pytorch_model.bin", D.SHA_A, 1)],
                                              [("NESTED-PICKLE", "high", "pytorch_model.bin")])])),
    "orphan-file-among-models": (
        D.mutate(D.two_models(), ("components", 2), D.file("f-9", "loose.bin")), Seen([
            ("org/one", [("a.bin", D.SHA_A, 0), ("loose.bin", D.SHA_A, 0)], []),
            ("org/two", [("b.bin", D.SHA_B, 1), ("loose.bin", D.SHA_A, 0)],
             [("CVE-X", "critical", "b.bin")])])),
    # Several ratings: the worst counts; a rating without a severity is unknown (above medium).
    "ratings-low-then-critical": (D.rated("low", "critical"), lib4sbom_rated("critical")),
    "ratings-none-then-high": (D.rated("none", "high"), lib4sbom_rated("high")),
    "ratings-medium-and-unrated": (D.rated("medium", None), lib4sbom_rated("unknown")),
    "ratings-high-and-unknown": (D.rated("unknown", "high"), lib4sbom_rated("high")),
    "ratings-none-only": (D.rated("none"), lib4sbom_rated("info")),
    "ratings-empty": (D.rated(), lib4sbom_rated("unknown")),
    # BOM-Links: into this document resolve; into another BOM bear on every model.
    "bom-link-to-itself": (D.self_link("f-1"), lib4sbom_rated("critical")),
    "bom-link-to-another-bom": (
        D.self_link("f-1", serial="00000000-0000-4000-8000-000000000000"),
        Seen([("acme/model", [("config.json", D.SHA_B, 0), ("model.bin", D.SHA_A, 0)],
               [("PICKLE-1", "critical", "")])])),
    "bom-link-to-another-version": (
        D.self_link("f-1", version=2),
        Seen([("acme/model", [("config.json", D.SHA_B, 0), ("model.bin", D.SHA_A, 0)],
               [("PICKLE-1", "critical", "")])])),
    "xml-two-vulnerability-blocks": (
        D.xml_with(D.vuln_xml(("critical",), "v-1") + D.vuln_xml(("info",), "v-2")),
        Seen([("acme/xml-model", [("model.pkl", D.SHA_A, 2)],
               [("v-1", "critical", "model.pkl"), ("v-2", "info", "model.pkl")])])),
    "xml-two-ratings": (D.xml_with(D.vuln_xml(("low", "critical"))), Seen([
        ("acme/xml-model", [("model.pkl", D.SHA_A, 1)], [("v-1", "critical", "model.pkl")])])),
    "xml-utf-16": (D.foreign_xml().decode().replace('"UTF-8"', '"UTF-16"').encode("utf-16"),
                   FOREIGN_XML),
    "files-nested-in-metadata-model": (D.nested_in_metadata(), WITH_FINDINGS),
    "two-models": (D.two_models(), Seen([
        ("org/one", [("a.bin", D.SHA_A, 0)], []),
        ("org/two", [("b.bin", D.SHA_B, 1)], [("CVE-X", "critical", "b.bin")])])),
    "spec-1.2": (D.spec_1_2(), Seen([("acme/model", [("w.bin", D.SHA_A, 0)], [])])),
    "spec-1.7": (D.spec_1_7(), Seen([("acme/model", [("w.bin", D.SHA_A, 0)], [])])),
    "finding-without-affects": (D.unaffected_finding(), Seen([
        ("acme/model", [], [("CVE-X", "high", "")])])),
    "foreign-xml": (D.foreign_xml(), FOREIGN_XML),
    # --- malformed ---------------------------------------------------------------------------
    "components-as-object": (D.mutate(good, ("components",), {"a": good["components"][0]}),
                             Refused("$.components: expected a list, got an object")),
    "component-as-string": (D.mutate(good, ("components", 1), "model.bin"),
                            Refused("$.components[1]: expected an object, got a string")),
    "bom-ref-list": (D.mutate(good, ("components", 1, "bom-ref"), ["f-1"]),
                     Refused("$.components[1].bom-ref: expected a string, got a list")),
    "duplicate-bom-ref": (D.mutate(good, ("components", 2, "bom-ref"), "f-1"),
                          Refused("$.components[2].bom-ref: duplicate 'f-1'")),
    "dangling-affects": (D.mutate(good, ("vulnerabilities", 0, "affects", 0, "ref"), "ghost"),
                         Refused("$.vulnerabilities[0].affects[0].ref: 'ghost' names no "
                                 "component")),
    "dangling-depends-on": (D.mutate(good, ("dependencies", 1, "dependsOn", 0), "gone"),
                            Refused("$.dependencies[1].dependsOn[0]: 'gone' names no")),
    "missing-bom-ref-linked-file": (D.mutate(good, ("components", 1, "bom-ref"), None),
                                    Refused("$.dependencies[1].dependsOn[0]: 'f-1' names no")),
    "spec-9.9": (D.mutate(good, ("specVersion",), "9.9"),
                 Refused("$.specVersion: unsupported CycloneDX version '9.9'")),
    "spec-missing": (D.mutate(good, ("specVersion",), None), Refused("$.specVersion: missing")),
    "spec-number": (D.mutate(good, ("specVersion",), 1.6),
                    Refused("$.specVersion: unsupported CycloneDX version a number")),
    "property-value-list": (
        D.mutate(good, ("components", 1, "properties"), [{"name": "x", "value": ["a"]}]),
        Refused("$.components[1].properties[0].value: expected a string, got a list")),
    "property-without-name": (D.mutate(good, ("components", 1, "properties"), [{"value": "v"}]),
                              Refused("$.components[1].properties[0].name: missing")),
    "component-without-name": (D.mutate(good, ("components", 2, "name"), None),
                               Refused("$.components[2].name: missing")),
    "vulnerabilities-as-object": (D.mutate(good, ("vulnerabilities",), {}),
                                  Refused("$.vulnerabilities: expected a list, got an object")),
    "ratings-as-string": (D.mutate(good, ("vulnerabilities", 0, "ratings"), "high"),
                          Refused("$.vulnerabilities[0].ratings: expected a list")),
    "affects-without-ref": (D.mutate(good, ("vulnerabilities", 0, "affects"), [{}]),
                            Refused("$.vulnerabilities[0].affects[0].ref: missing")),
    "hash-content-number": (D.mutate(good, ("components", 1, "hashes", 0, "content"), 5),
                            Refused("$.components[1].hashes[0].content: expected a string")),
    "metadata-as-list": (D.mutate(good, ("metadata",), []),
                         Refused("$.metadata: expected an object, got a list")),
    "nested-components-as-object": (
        D.mutate(D.nested_files(), ("components", 0, "components"), {}),
        Refused("$.components[0].components: expected a list")),
    "doctype-xml": (D.doctype_xml(), Refused("DOCTYPE or ENTITY declaration is refused")),
    "nested-too-deeply": (D.deep_json(5000), Refused("nested too deeply")),
    "xml-nested-too-deeply": (D.deep_xml(5000), Refused("nested too deeply")),
    "xml-unknown-version": (D.foreign_xml().replace(b"bom/1.5", b"bom/9.9"),
                            Refused("$.specVersion: unsupported CycloneDX version '9.9'")),
    "duplicate-json-key": (D.duplicate_key("vulnerabilities"),
                           Refused("$.vulnerabilities: duplicate key")),
    "duplicate-json-key-nested": (D.duplicate_key("name"),
                                  Refused("$.components[0].name: duplicate key")),
    "bom-link-to-itself-dangling": (D.self_link("ghost"),
                                    Refused("links into this BOM but names no component")),
    "bom-link-malformed": (D.mutate(good, ("vulnerabilities", 0, "affects", 0, "ref"),
                                    "urn:cdx:not-a-serial#f-1"),
                           Refused("$.vulnerabilities[0].affects[0].ref: 'urn:cdx:not-a-serial"
                                   "#f-1' is not a BOM-Link")),
    "xml-repeated-metadata": (D.foreign_xml().replace(b"</metadata>", b"</metadata><metadata/>"),
                              Refused("$.metadata: repeated")),
    "xml-repeated-severity": (
        D.xml_with(D.vuln_xml(("critical",)).replace(
            "</severity>", "</severity><severity>info</severity>")),
        Refused("$.vulnerabilities[0].ratings[0].severity: repeated")),
    "json-150-deep": (D.deep_json(75), Refused("nested too deeply")),
    "xml-150-deep": (D.deep_xml(150), Refused("nested too deeply")),
    **{f"xml-{name}-{encoding}": (D.hostile_xml(dtd, encoding), Refused(
        "" if encoding == "cp037" else "DOCTYPE or ENTITY declaration is refused"))
       for name, dtd in (("laughs", D.LAUGHS), ("xxe", D.XXE))
       for encoding in ("UTF-8", "UTF-16", "UTF-16LE", "UTF-16BE", "cp037")},
}


def write(tmp_path: Path, doc: Any) -> Path:
    if isinstance(doc, bytes):
        path = tmp_path / "sbom.xml"
        path.write_bytes(doc)
    else:
        path = tmp_path / "sbom.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_the_table_has_at_least_twenty_documents_foreign_and_malformed():
    kinds = [type(expected) for _, expected in ROWS.values()]
    assert len(ROWS) >= 20 and kinds.count(Seen) >= 8 and kinds.count(Refused) >= 12


@pytest.mark.parametrize("row", sorted(ROWS))
def test_reader(row, tmp_path):
    doc, expected = ROWS[row]
    path = write(tmp_path, doc)
    if isinstance(expected, Seen):
        assert summary(read_sbom(path), str(path)) == expected.models
        return
    with pytest.raises(UsageError) as caught:
        models_from_sbom(read_sbom(path), str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert expected.message in message


# The measured cases of issue 14, through the command line: exit 2 (refused) or a verdict that
# sees what the document holds, never PASS on what it could not read and never exit 3.
CLI_ROWS = {
    "components-as-object": 2, "bom-ref-list": 2, "dangling-affects": 2, "spec-9.9": 2,
    "property-value-list": 2, "doctype-xml": 2, "duplicate-json-key": 2,
    "xml-laughs-UTF-16LE": 2, "xml-xxe-UTF-16BE": 2, "xml-laughs-cp037": 2,
    "json-150-deep": 2, "xml-150-deep": 2, "xml-repeated-severity": 2,
    "files-nested-in-metadata-model": "BASE-001", "lib4sbom-dependencies": "BASE-001",
    "nested-files": "BASE-001", "ratings-low-then-critical": "BASE-001",
    "ratings-medium-and-unrated": "BASE-001", "bom-link-to-itself": "BASE-001",
    "bom-link-to-another-bom": "BASE-001", "xml-two-vulnerability-blocks": "BASE-001",
    "syft-directory": "BASE-001", "syft-two-models": "BASE-001", "aisbom": "BASE-001",
    "model-without-files": "BASE-005",
}


@pytest.mark.parametrize("row", sorted(CLI_ROWS))
def test_policy_check_exit_codes(row, run_cli, tmp_path):
    doc = ROWS[row][0] if row in ROWS else D.bom(components=[D.model()])
    path = write(tmp_path, doc)
    run = run_cli("policy", "check", path, "--policy", BASELINE, "--format", "json")
    if CLI_ROWS[row] == 2:
        assert run.code == 2, run.err
        (line,) = run.err.strip().splitlines()
        assert str(path) in line
        return
    assert run.code == 1, run.err
    rules = {v["rule"] for m in json.loads(run.out)["models"] for v in m["violations"]}
    assert CLI_ROWS[row] in rules  # what the document holds was seen


def test_golden_xml_gives_exactly_the_facts_of_its_json():
    facts = [models_from_sbom(read_sbom(D.GOLDEN / name), name)
             for name in ("tiny-model.cdx.json", "tiny-model-xml.cdx.xml")]
    assert facts[0] == facts[1]


def test_golden_xml_is_judged_like_its_json(run_cli):
    runs = [run_cli("policy", "check", D.GOLDEN / name, "--policy", BASELINE)
            for name in ("tiny-model.cdx.json", "tiny-model-xml.cdx.xml")]
    assert [r.code for r in runs] == [0, 0], [r.err for r in runs]


def test_lib4sbom_file_hashes_reach_the_verdict(run_cli, tmp_path):
    path = write(tmp_path, D.lib4sbom())
    run = run_cli("policy", "check", path, "--policy", BASELINE, "--format", "json")
    violations = json.loads(run.out)["models"][0]["violations"]
    assert {(v["rule"], v["file"], v["sha256"]) for v in violations
            if v["rule"] == "BASE-001"} == {("BASE-001", "model.bin", D.SHA_A)}


def test_repeatable_xml_elements_are_those_the_bundled_schemas_let_repeat():
    """cdxml.REPEATABLE: every element a CycloneDX 1.2-1.7 XSD allows more than once under one
    parent (an unbounded element, or one inside an unbounded sequence or choice)."""
    import xml.etree.ElementTree as ET

    import cyclonedx.schema

    xs = "{http://www.w3.org/2001/XMLSchema}"
    found = set()
    for spec in READ_SPECS:
        xsd = Path(cyclonedx.schema.__file__).parent / "_res" / f"bom-{spec}.SNAPSHOT.xsd"
        root = ET.parse(xsd).getroot()
        parent = {child: node for node in root.iter() for child in node}
        for element in root.iter(xs + "element"):
            if parent.get(element) is root:
                continue
            node, many = element, False
            while node is not None and node.tag in (xs + "element", xs + "sequence",
                                                    xs + "choice", xs + "all"):
                many = many or node.get("maxOccurs") not in (None, "1")
                node = parent.get(node)
                if node is not None and node.tag == xs + "element":
                    break
            if many:
                found.add(element.get("name") or element.get("ref", "").split(":")[-1])
    assert found == REPEATABLE


def test_an_element_of_another_namespace_is_an_extension_not_data(tmp_path):
    extension = b'<x:vulnerabilities xmlns:x="urn:example:ext"><x:v/></x:vulnerabilities>'
    doc = D.foreign_xml().replace(b"</bom>", extension + b"</bom>")
    path = write(tmp_path, doc)
    assert summary(read_sbom(path), str(path)) == FOREIGN_XML.models


def test_an_oci_models_revision_is_the_digest_audited_not_the_tag_asked_for():
    from tests.sbom_factory import model_sbom

    digest = "sha256:" + "5e" * 32
    doc = model_sbom("registry.example.com/acme/tiny", revision=None, source="oci")
    model = doc["metadata"]["component"]
    model["version"] = digest
    model["properties"] += [{"name": "auditor:revision:requested", "value": "v1"}]
    (facts,) = models_from_sbom(doc, "s.json")
    assert facts.model.revision == digest and not facts.model.pinned
