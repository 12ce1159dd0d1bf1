"""CycloneDX ML-BOMs: valid against the official schema, complete, reproducible."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator
from cyclonedx.validation.json import JsonStrictValidator

from auditor.model import Coverage, FileReport, Finding, Location, ModelReport, ScanResult, Severity
from auditor.sbom.cyclonedx import check_references, to_cyclonedx, to_text, write_sboms
from auditor.sbom.schemas import SbomError
from tests.builders import write_tiny_model
from tests.sbom_models import write_merged, write_with_findings

COMMIT = "0123456789abcdef0123456789abcdef01234567"
VERSIONS = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}


def assert_valid_json(text: str, spec: str = "1.6") -> dict:
    assert JsonStrictValidator(VERSIONS[spec]).validate_str(text) is None
    doc = json.loads(text)
    check_references(doc)
    return doc


def assert_valid_xml(text: str, spec: str = "1.6") -> None:
    assert make_schemabased_validator(OutputFormat.XML, VERSIONS[spec]).validate_str(text) is None


def _sbom(run_cli, folder: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    out = tmp_path / "out.cdx"
    run = run_cli("scan", folder, "--format", "json", "--sbom", out, *args)
    assert run.code in (0, 1), run.err
    return run.code, out.read_text()


def _props(component: dict) -> dict[str, list[str]]:
    props: dict[str, list[str]] = {}
    for p in component.get("properties", []):
        props.setdefault(p["name"], []).append(p["value"])
    return {k: v[0] if len(v) == 1 else v for k, v in props.items()}


def _report(name: str = "org/model", files=(), findings=(), facts=None, revision=COMMIT,
            source: str = "hub") -> tuple[ModelReport, ScanResult]:
    model = ModelReport(name=name, root="/nowhere", source=source, files=tuple(files),
                        findings=tuple(findings), facts=facts or {}, revision=revision)
    return model, ScanResult(target=name, models=(model,), bytes_read=0, elapsed_s=0.0,
                             rules_version="test+rules.1")


def _file(path: str, fmt: str = "safetensors", findings=(), facts=None) -> FileReport:
    return FileReport(path=path, size=8, digests={"sha256": "ab" * 32}, format=fmt,
                      coverage=Coverage.SCANNED, findings=tuple(findings), facts=facts or {})


# --- a clean model -----------------------------------------------------------------------------


def test_clean_model_sbom_is_valid_and_describes_model_and_files(run_cli, tmp_path):
    folder = write_tiny_model(tmp_path / "tiny-model")
    code, text = _sbom(run_cli, folder, tmp_path)
    assert code == 0
    doc = assert_valid_json(text)
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "tiny-model"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert doc["metadata"]["tools"]["components"][0]["name"] == "auditor"
    props = _props(model)
    assert props["auditor:scan:verdict"] == "clean"
    assert props["auditor:scan:coverage:scanned"] == "4"
    assert props["auditor:signature:status"] == "unsigned"  # no signature file in the folder
    assert props["auditor:upstream:sha256-match"] == "unknown"
    assert props["auditor:revision:pinned"] == "false"
    assert props["auditor:formats"] == "safetensors"
    assert props["auditor:remote-code"] == "false"
    card = model["modelCard"]["modelParameters"]
    assert card["task"] == "text-generation"
    assert card["architectureFamily"] == "llama"
    assert card["modelArchitecture"] == "LlamaForCausalLM"
    assert card["datasets"] == [{"ref": "dataset:example-org/tiny-corpus"}]
    data = [c for c in doc["components"] if c["type"] == "data"]
    assert data[0]["data"][0]["type"] == "dataset"
    files = {c["name"]: c for c in doc["components"] if c["type"] == "file"}
    assert set(files) == {"README.md", "config.json", "generation_config.json",
                          "model.safetensors"}
    weights = files["model.safetensors"]
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert weights["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert _props(weights) | {"auditor:size": "-"} == {
        "auditor:size": "-", "auditor:format": "safetensors", "auditor:weights": "true",
        "auditor:scan:coverage": "scanned", "auditor:scan:verdict": "clean",
        "auditor:upstream:sha256-match": "unknown", "auditor:signature:covered": "false",
        "auditor:remote-code": "false", "auditor:upstream:grade": "unknown",
    }
    assert props["auditor:upstream:grade"] == "unknown"  # nothing proves the bytes
    assert "vulnerabilities" not in doc


def test_sha512_adds_a_second_hash_from_the_same_pass(run_cli, tmp_path):
    folder = write_tiny_model(tmp_path / "tiny-model")
    _, text = _sbom(run_cli, folder, tmp_path, "--hash", "sha512")
    doc = assert_valid_json(text)
    weights = next(c for c in doc["components"] if c["name"] == "model.safetensors")
    data = (folder / "model.safetensors").read_bytes()
    assert weights["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()},
        {"alg": "SHA-512", "content": hashlib.sha512(data).hexdigest()},
    ]


@pytest.mark.parametrize("spec", ["1.5", "1.6"])
def test_xml_variant_validates_against_the_xsd(run_cli, tmp_path, spec):
    folder = write_merged(tmp_path / "merged-model")
    _, text = _sbom(run_cli, folder, tmp_path, "--output-format", "xml", "--spec", spec)
    assert_valid_xml(text, spec)
    assert "<modelCard bom-ref=\"modelcard:merged-model\">" in text
    assert "<ref>dataset:other-org/tiny-instructions</ref>" in text
    assert "<technicalLimitation>" in text


def test_xml_with_findings_and_nested_lineage_validates():
    finding = Finding("AUD-PKL-001", Severity.CRITICAL, "model.bin", "Dangerous import",
                      "os.system", Location(member="archive/data.pkl", offset=12))
    lineage = [
        {"name": "org/ft", "commit": "a" * 40, "relation": "finetune", "resolved": True,
         "depth": 1},
        {"name": "base/root", "commit": "b" * 40, "relation": "quantized", "resolved": True,
         "depth": 2},
    ]
    model, result = _report(files=[_file("model.bin", "pytorch-zip", [finding])],
                            facts={"lineage": lineage, "card": {"datasets": ["org/data"]}})
    text = to_text(to_cyclonedx(model, result), "xml")
    assert_valid_xml(text)
    assert "<id>AUD-PKL-001</id>" in text and "<cwe>502</cwe>" in text
    assert f"pkg:huggingface/base/root@{'b' * 40}" in text
    assert "<type>dataset</type>" in text


def test_an_invalid_item_in_a_later_validation_slice_is_caught():
    from auditor.sbom.cyclonedx import validate
    from auditor.sbom.schemas import VALIDATE_SLICE

    files = [_file(f"shard-{i:04d}.safetensors") for i in range(VALIDATE_SLICE + 20)]
    model, result = _report(files=files)
    doc = to_cyclonedx(model, result)
    doc["components"][VALIDATE_SLICE + 10]["unexpected"] = True
    with pytest.raises(SbomError, match="unexpected"):
        validate(doc)


def test_spec_1_5_json_validates(run_cli, tmp_path):
    _, text = _sbom(run_cli, write_merged(tmp_path / "m"), tmp_path, "--spec", "1.5")
    doc = assert_valid_json(text, "1.5")
    assert doc["specVersion"] == "1.5"


# --- findings ----------------------------------------------------------------------------------


def test_findings_become_vulnerabilities_affecting_their_file(run_cli, tmp_path):
    code, text = _sbom(run_cli, write_with_findings(tmp_path / "with-findings"), tmp_path)
    assert code == 1
    doc = assert_valid_json(text)
    by_id = {v["id"]: v for v in doc["vulnerabilities"]}
    layout = by_id["AUD-ST-006"]
    assert layout["affects"] == [{"ref": "file:extra.safetensors"}]
    assert layout["source"] == {"name": "auditor"}
    assert layout["ratings"][0]["severity"] == "high"
    assert "8 trailing bytes" in layout["detail"]
    assert layout["recommendation"]
    files = {c["name"]: _props(c) for c in doc["components"] if c["type"] == "file"}
    assert files["extra.safetensors"]["auditor:scan:verdict"] == "high"
    assert files["blob.bin"]["auditor:scan:coverage"] == "unsupported"
    assert _props(doc["metadata"]["component"])["auditor:scan:verdict"] == "high"


def test_deserialization_findings_carry_cwe_502_and_their_location():
    finding = Finding("AUD-PKL-001", Severity.CRITICAL, "model.bin", "Dangerous import",
                      "os.system", Location(member="archive/data.pkl", offset=12))
    model, result = _report(files=[_file("model.bin", "pytorch-zip", [finding])])
    doc = to_cyclonedx(model, result)
    [vuln] = doc["vulnerabilities"]
    assert vuln["cwes"] == [502]
    assert _props(vuln) == {"auditor:location:file": "model.bin",
                            "auditor:location:member": "archive/data.pkl",
                            "auditor:location:offset": "12"}
    assert vuln["ratings"][0]["severity"] == "critical"


def test_unchecked_signature_reads_unknown():
    model, result = _report(files=[_file("a.safetensors")])
    doc = to_cyclonedx(model, result)
    assert _props(doc["metadata"]["component"])["auditor:signature:status"] == "unknown"
    assert _props(doc["components"][0])["auditor:signature:covered"] == "unknown"


def test_model_level_finding_without_a_file_component_affects_the_model():
    finding = Finding("AUD-SRC-001", Severity.HIGH, "link", "Symlink escapes", "link -> /etc")
    model, result = _report(files=[_file("a.safetensors")], findings=[finding])
    doc = to_cyclonedx(model, result)
    assert doc["vulnerabilities"][0]["affects"] == [{"ref": "model:org/model"}]


# --- identity, lineage, provenance facts -------------------------------------------------------


def test_hub_model_has_purl_version_publisher_and_links():
    model, result = _report(files=[_file("a.safetensors")],
                            facts={"hub": {"author": "org", "requested_revision": "main"},
                                   "origin": {"publisher": "org", "grade": "hub-verified",
                                              "evidence": "the Hub (model info author)"}})
    doc = to_cyclonedx(model, result)
    component = doc["metadata"]["component"]
    assert component["purl"] == f"pkg:huggingface/org/model@{COMMIT}"
    assert component["version"] == COMMIT
    assert component["publisher"] == "org"
    assert component["supplier"] == {"name": "org"}
    refs = {r["type"]: r["url"] for r in component["externalReferences"]}
    assert refs["website"] == "https://huggingface.co/org/model"
    assert refs["distribution"] == f"https://huggingface.co/org/model/tree/{COMMIT}"
    props = _props(component)
    assert props["auditor:revision:requested"] == "main"
    assert props["auditor:revision:commit"] == COMMIT
    assert props["auditor:revision:pinned"] == "false"  # asked for a branch
    assert props["auditor:origin:publisher"] == "org"
    assert props["auditor:origin:publisher-grade"] == "hub-verified"
    assert props["auditor:origin:publisher-evidence"] == "the Hub (model info author)"


def test_no_purl_without_a_commit():
    model, result = _report(revision=None)
    component = to_cyclonedx(model, result)["metadata"]["component"]
    assert "purl" not in component
    assert _props(component)["auditor:revision:pinned"] == "false"


def test_lineage_chain_nests_ancestors_with_relation_and_resolution():
    lineage = [
        {"name": "org/ft", "publisher": "org", "commit": "a" * 40, "relation": "finetune",
         "resolved": True, "depth": 1},
        {"name": "base/root", "publisher": "base", "commit": "b" * 40, "relation": "quantized",
         "resolved": True, "depth": 2},
        {"name": "x/other", "publisher": "x", "commit": None, "relation": "adapter",
         "resolved": False, "depth": 1, "grade": "declared", "publisher_grade": "declared",
         "evidence": ["adapter_config.json base_model_name_or_path", "README.md base_model"]},
    ]
    model, result = _report(facts={"lineage": lineage})
    doc = to_cyclonedx(model, result)
    ancestors = doc["metadata"]["component"]["pedigree"]["ancestors"]
    by_name = {a["name"]: a for a in ancestors}
    assert set(by_name) == {"org/ft", "x/other"}
    [grand] = by_name["org/ft"]["pedigree"]["ancestors"]
    assert grand["name"] == "base/root"
    assert grand["purl"] == f"pkg:huggingface/base/root@{'b' * 40}"
    assert _props(grand)["auditor:lineage:relation"] == "quantized"
    assert _props(grand)["auditor:lineage:depth"] == "2"
    other = by_name["x/other"]
    assert "purl" not in other
    assert _props(other) == {"auditor:lineage:relation": "adapter",
                             "auditor:lineage:resolved": "false",
                             "auditor:lineage:depth": "1", "auditor:lineage:grade": "declared",
                             "auditor:lineage:evidence": [
                                 "README.md base_model",
                                 "adapter_config.json base_model_name_or_path"],
                             "auditor:origin:publisher-grade": "declared"}


def test_breadth_first_lineage_nests_by_child_name():
    lineage = [
        {"name": "a/one", "relation": "merge", "resolved": True, "depth": 1},
        {"name": "b/two", "relation": "merge", "resolved": True, "depth": 1},
        {"name": "a/root", "relation": "finetune", "resolved": True, "depth": 2,
         "child": "a/one"},
        {"name": "b/root", "relation": "quantized", "resolved": True, "depth": 2,
         "child": "b/two"},
    ]
    model, result = _report(facts={"lineage": lineage})
    ancestors = to_cyclonedx(model, result)["metadata"]["component"]["pedigree"]["ancestors"]
    nested = {a["name"]: [g["name"] for g in a["pedigree"]["ancestors"]] for a in ancestors}
    assert nested == {"a/one": ["a/root"], "b/two": ["b/root"]}


def test_card_base_models_become_unresolved_ancestors(run_cli, tmp_path):
    _, text = _sbom(run_cli, write_merged(tmp_path / "merged-model"), tmp_path)
    doc = assert_valid_json(text)
    ancestors = doc["metadata"]["component"]["pedigree"]["ancestors"]
    assert sorted(a["name"] for a in ancestors) == ["example-org/tiny-base", "other-org/tiny-chat"]
    for a in ancestors:
        assert _props(a)["auditor:lineage:relation"] == "merge"
        assert _props(a)["auditor:lineage:resolved"] == "false"
    considerations = doc["metadata"]["component"]["modelCard"]["considerations"]
    assert considerations["technicalLimitations"] == [
        "Its weights are a counting pattern; it generates nothing meaningful."
    ]


def _write_gguf(path: Path) -> Path:
    gguf = pytest.importorskip("gguf")
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_organization("example-org")
    w.add_license("mit")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_base_model_count(1)
    w.add_base_model_name(0, "Tiny Base")
    w.add_base_model_repo_url(0, "https://huggingface.co/example-org/tiny-base")
    w.add_tensor("token_embd.weight", np.ones((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_only_model_gets_licence_lineage_and_quantization_from_gguf(run_cli, tmp_path):
    folder = tmp_path / "gguf-model"
    folder.mkdir()
    _write_gguf(folder / "model-q8_0.gguf")
    _, text = _sbom(run_cli, folder, tmp_path)
    doc = assert_valid_json(text)
    component = doc["metadata"]["component"]
    assert component["licenses"] == [{"license": {"id": "MIT"}}]
    [base] = component["pedigree"]["ancestors"]
    assert base["name"] == "example-org/tiny-base"
    assert _props(base)["auditor:lineage:resolved"] == "false"
    assert _props(component)["auditor:origin:declared"] == "example-org"
    assert _props(component)["auditor:formats"] == "gguf"
    card = component["modelCard"]
    assert card["modelParameters"]["architectureFamily"] == "llama"
    assert _props(card)["cdx:ai-ml:model:hyperparameter:quantization"] == "Q8_0"
    assert _props(card)["cdx:ai-ml:model:parameter:count"] == "32"


def test_oddly_shaped_card_facts_from_other_sources_still_give_a_valid_sbom():
    card = {"tags": ["ok", 3, None], "language": 7, "datasets": ["d/one", {"x": 1}],
            "base_model": [None, "a/b"], "base_model_relation": 5, "considerations": [1],
            "pipeline_tag": ["x"], "license": {"id": "mit"}}
    model, result = _report(facts={"card": card})
    component = to_cyclonedx(model, result)["metadata"]["component"]
    assert component["tags"] == ["ok"]
    assert "pedigree" not in component  # lineage comes from scanning.declared, not the card
    assert component["modelCard"]["modelParameters"] == {"datasets": [{"ref": "dataset:d/one"}]}
    assert "licenses" not in component


def test_signature_and_upstream_facts_are_mapped():
    files = [
        _file("a.safetensors", facts={"upstream": {"sha256": "ab" * 32, "match": True}}),
        _file("b.safetensors", facts={"upstream": {"sha256": "cd" * 32, "match": False}}),
    ]
    facts = {"signature": {"status": "verified", "method": "key", "signer": "ci@example.org",
                           "covered": ["a.safetensors"]}}
    model, result = _report(files=files, facts=facts)
    doc = to_cyclonedx(model, result)
    props = _props(doc["metadata"]["component"])
    assert props["auditor:signature:status"] == "verified"
    assert props["auditor:signature:method"] == "key"
    assert props["auditor:signature:signer"] == "ci@example.org"
    assert props["auditor:upstream:sha256-match"] == "false"
    by_name = {c["name"]: _props(c) for c in doc["components"]}
    assert by_name["a.safetensors"]["auditor:upstream:sha256-match"] == "true"
    assert by_name["a.safetensors"]["auditor:signature:covered"] == "true"
    assert by_name["b.safetensors"]["auditor:upstream:sha256-match"] == "false"
    assert by_name["b.safetensors"]["auditor:signature:covered"] == "false"
    assert by_name["b.safetensors"]["auditor:upstream:sha256"] == "cd" * 32


def test_every_file_matching_upstream_makes_the_model_match():
    files = [_file("a.safetensors", facts={"upstream": {"sha256": "ab" * 32, "match": True}})]
    model, result = _report(files=files)
    props = _props(to_cyclonedx(model, result)["metadata"]["component"])
    assert props["auditor:upstream:sha256-match"] == "true"


def test_remote_code_files_are_flagged():
    files = [_file("modeling_x.py", "python"), _file("config.json", "json",
                                                    facts={"auto_map": {"AutoModel": "m.X"}})]
    model, result = _report(files=files)
    doc = to_cyclonedx(model, result)
    props = _props(doc["metadata"]["component"])
    assert props["auditor:remote-code"] == "true"
    assert props["auditor:remote-code:file"] == "modeling_x.py"
    by_name = {c["name"]: _props(c) for c in doc["components"]}
    assert by_name["modeling_x.py"]["auditor:remote-code"] == "true"
    assert by_name["config.json"]["auditor:remote-code"] == "false"


@pytest.mark.parametrize(("card", "expected"), [
    ({"license": "apache-2.0"}, [{"license": {"id": "Apache-2.0"}}]),
    ({"license": "mit"}, [{"license": {"id": "MIT"}}]),
    ({"license": "llama3.1"}, [{"license": {"name": "llama3.1"}}]),
    ({"license": "gpl-3.0"}, [{"license": {"id": "GPL-3.0-only"}}]),
    ({"license": "other", "license_name": "acme-license",
      "license_link": "https://example.org/LICENSE"},
     [{"license": {"name": "acme-license", "url": "https://example.org/LICENSE"}}]),
    ({"license": ["mit", "cc-by-4.0"]},
     [{"license": {"id": "CC-BY-4.0"}}, {"license": {"id": "MIT"}}]),
    ({"license": "unknown"}, None),
])
def test_card_licences_map_to_spdx_ids_or_names(card, expected):
    model, result = _report(facts={"card": card})
    component = to_cyclonedx(model, result)["metadata"]["component"]
    licences = component.get("licenses")
    ordered = sorted(licences, key=lambda x: json.dumps(x, sort_keys=True)) if licences else None
    assert ordered == expected


# --- reproducibility and writing -----------------------------------------------------------------


def test_reproducible_output_is_byte_identical_and_content_addressed(run_cli, tmp_path):
    folder = write_tiny_model(tmp_path / "tiny-model")
    _, first = _sbom(run_cli, folder, tmp_path, "--reproducible")
    _, second = _sbom(run_cli, folder, tmp_path, "--reproducible", "--jobs", "1")
    assert first == second
    doc = json.loads(first)
    assert doc["metadata"]["timestamp"] == "1970-01-01T00:00:00Z"
    (folder / "config.json").write_text("{}\n")
    _, changed = _sbom(run_cli, folder, tmp_path, "--reproducible")
    assert json.loads(changed)["serialNumber"] != doc["serialNumber"]


def test_source_date_epoch_fixes_the_timestamp(run_cli, tmp_path, monkeypatch):
    folder = write_tiny_model(tmp_path / "tiny-model")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    _, first = _sbom(run_cli, folder, tmp_path)
    _, second = _sbom(run_cli, folder, tmp_path)
    assert first == second
    assert json.loads(first)["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"


def test_bad_source_date_epoch_is_a_usage_error(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    run = run_cli("scan", write_tiny_model(tmp_path / "m"), "--sbom", tmp_path / "o.json")
    assert run.code == 2
    assert "SOURCE_DATE_EPOCH" in run.err


def test_default_output_has_a_fresh_serial_and_current_time(run_cli, tmp_path):
    folder = write_tiny_model(tmp_path / "tiny-model")
    _, first = _sbom(run_cli, folder, tmp_path)
    _, second = _sbom(run_cli, folder, tmp_path)
    assert json.loads(first)["serialNumber"] != json.loads(second)["serialNumber"]
    assert not json.loads(first)["metadata"]["timestamp"].startswith("1970")


def test_sbom_folder_gets_one_file_per_model(tmp_path):
    a, _ = _report(name="org/a", files=[_file("w.safetensors")])
    b, _ = _report(name="org/b", files=[_file("w.safetensors")])
    result = ScanResult(target="cache", models=(a, b), bytes_read=0, elapsed_s=0.0,
                        rules_version="t")
    out = tmp_path / "sboms"
    out.mkdir()
    paths = write_sboms(result, out, spec="1.6", output_format="json", reproducible=True)
    assert sorted(p.name for p in paths) == ["org__a.cdx.json", "org__b.cdx.json"]
    for path in paths:
        assert_valid_json(path.read_text())
    assert json.loads(paths[0].read_text())["metadata"]["component"]["name"] == "org/a"


def test_cli_sbom_into_an_existing_folder_names_the_file_after_the_model(run_cli, tmp_path):
    out = tmp_path / "sboms"
    out.mkdir()
    run = run_cli("scan", write_tiny_model(tmp_path / "tiny-model"), "--sbom", out,
                  "--output-format", "xml")
    assert run.code == 0, run.err
    assert [p.name for p in out.iterdir()] == ["tiny-model.cdx.xml"]
    assert_valid_xml((out / "tiny-model.cdx.xml").read_text())


def test_several_models_need_an_sbom_folder(tmp_path):
    from auditor.errors import UsageError

    a, _ = _report(name="org/a")
    b, _ = _report(name="org/b")
    result = ScanResult(target="cache", models=(a, b), bytes_read=0, elapsed_s=0.0,
                        rules_version="t")
    with pytest.raises(UsageError, match="folder"):
        write_sboms(result, tmp_path / "one.json", spec="1.6", output_format="json",
                    reproducible=True)
    assert not (tmp_path / "one.json").exists()


def test_unwritable_sbom_path_is_an_io_error(run_cli, tmp_path):
    run = run_cli("scan", write_tiny_model(tmp_path / "m"), "--sbom",
                  tmp_path / "missing" / "x.json")
    assert run.code == 3
    assert "cannot write" in run.err


def test_reference_check_catches_dangling_affects():
    model, result = _report(files=[_file("a.safetensors")])
    doc = to_cyclonedx(model, result)
    doc["vulnerabilities"] = [{"bom-ref": "v", "id": "AUD-X-001", "affects": [{"ref": "nope"}]}]
    with pytest.raises(SbomError, match="nope"):
        check_references(doc)


def test_render_json_round_trips_the_document():
    model, result = _report(files=[_file("a.safetensors")])
    doc = to_cyclonedx(model, result, reproducible=True)
    assert json.loads(to_text(doc, "json")) == doc


def test_writing_a_many_file_sbom_never_searches_the_dependency_graph_per_component(monkeypatch):
    """The library's pre-output validation re-registers every component with a linear search
    each (minutes for 10,000 files); the entries are built directly, so none may reach it."""
    from cyclonedx.model.bom import Bom

    searches = []
    library = Bom.register_dependency
    monkeypatch.setattr(Bom, "register_dependency",
                        lambda self, *a, **k: searches.append(1) or library(self, *a, **k))
    model, result = _report(files=[_file(f"shard-{i:04d}.safetensors") for i in range(300)])
    doc = json.loads(to_text(to_cyclonedx(model, result), "json"))
    assert len(doc["components"]) == 300 and len(doc["dependencies"]) == 301
    assert searches == []
