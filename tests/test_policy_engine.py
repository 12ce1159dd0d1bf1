"""Policy evaluation over SBOM facts: scopes, deny/require, waivers, lineage, fail-closed."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pytest

from auditor.errors import UsageError
from auditor.policy.engine import cel_value, evaluate, load_policies
from auditor.sbom.factkinds import FACT_FIELDS, SignatureFacts
from auditor.sbom.facts import models_from_sbom
from tests.sbom_factory import (
    ancestor,
    file_component,
    finding,
    model_sbom,
    sha,
    third_party_sbom,
)

ROOT = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2026, 12, 1)


def policy(tmp_path: Path, rules: str, extra: str = "", name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"policy: {path.stem}\n{extra}rules:\n{rules}")
    return path


def rule(rule_id: str, scope: str, kind: str, expr: str, message: str = "m",
         severity: str = "high") -> str:
    return (f"  - id: {rule_id}\n    scope: {scope}\n    severity: {severity}\n"
            f"    {kind}: {json.dumps(expr)}\n    message: {json.dumps(message)}\n")


def judge(paths: list[Path], doc: dict, today: datetime.date = TODAY):
    return evaluate(load_policies(paths), models_from_sbom(doc, "sbom.json"), sbom="sbom.json",
                    today=today)


# --- facts ----------------------------------------------------------------------------------


def test_every_documented_fact_is_a_field_of_its_record_and_the_reader_sets_it():
    for doc in (model_sbom(), third_party_sbom()):
        facts = models_from_sbom(doc, "x")[0]
        records = {"model": [facts.model], "signature": [facts.signature],
                   "file": facts.files, "ancestor": facts.lineage}
        for variable, items in records.items():
            for item in items:
                assert [f.name for f in dataclasses.fields(item)] == list(FACT_FIELDS[variable])
        bound = cel_value(facts.model)
        assert set(bound) == set(FACT_FIELDS["model"])
        assert isinstance(bound["formats"], list) and isinstance(bound["coverage"], dict)


def test_third_party_sbom_facts_are_explicitly_unknown():
    facts = models_from_sbom(third_party_sbom("org/m"), "x")[0]
    assert facts.model.publisher == "org"  # from the Hub-style name
    for key in ("revision", "license", "remote_code", "upstream_match", "verdict", "source"):
        assert getattr(facts.model, key) == "unknown", key
    assert facts.model.pinned is False
    assert facts.signature == SignatureFacts("unknown", "unknown", "unknown", "unknown")
    (f,) = facts.files
    assert (f.format, f.coverage, f.weights, f.sha256) == (
        "unknown", "unknown", "unknown", sha("w"))
    assert facts.model.sbom_tool == "other-tool"


def test_publisher_comes_from_standard_fields_in_order():
    doc = third_party_sbom("x/y", publisher="Real Publisher")
    assert models_from_sbom(doc, "x")[0].model.publisher == "Real Publisher"
    doc["components"][0].pop("publisher")
    doc["components"][0]["purl"] = "pkg:huggingface/purl-org/y@" + "a" * 40
    facts = models_from_sbom(doc, "x")[0]
    assert facts.model.publisher == "purl-org"
    assert facts.model.revision == "a" * 40 and facts.model.pinned is True


def test_an_sbom_without_a_model_is_a_usage_error():
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}
    with pytest.raises(UsageError, match="no machine-learning-model"):
        models_from_sbom(doc, "s.json")
    with pytest.raises(UsageError, match="not a CycloneDX"):
        models_from_sbom({"spdxVersion": "SPDX-2.3"}, "s.json")


def test_findings_attach_to_their_files_and_counts_are_aggregated():
    doc = model_sbom(findings=[finding("AUD-X-001", "critical", "model.safetensors"),
                               finding("AUD-X-002", "low", None)])
    facts = models_from_sbom(doc, "x")[0]
    assert [(f.rule, f.file) for f in facts.findings] == [
        ("AUD-X-001", "model.safetensors"), ("AUD-X-002", "")]
    assert facts.model.findings["critical"] == 1 and facts.model.worst == "critical"
    weights = next(f for f in facts.files if f.path == "model.safetensors")
    assert (weights.findings, weights.worst) == (1, "critical")


# --- evaluation -----------------------------------------------------------------------------


def test_deny_trips_when_true_and_require_when_false(tmp_path):
    p = policy(tmp_path, rule("D-1", "model", "deny", "model.pinned") +
               rule("R-1", "model", "require", "model.pinned") +
               rule("R-2", "model", "require", "!model.pinned"))
    assert sorted(v.rule for v in judge([p], model_sbom()).active()) == ["D-1", "R-2"]


def test_file_rules_run_once_per_file_with_the_message_interpolated(tmp_path):
    p = policy(tmp_path, rule("F-1", "file", "deny", "file.weights == 'false'",
                              "{file.path} ({file.format}) in {model.name}"))
    verdict = judge([p], model_sbom("acme/m"))
    assert [(v.message, v.file) for v in verdict.active()] == [
        ("config.json (json) in acme/m", "config.json")]


def test_finding_rules_run_once_per_finding(tmp_path):
    p = policy(tmp_path, rule("X-1", "finding", "deny", "finding.severity == 'critical'",
                              "{finding.rule} in {finding.file}"))
    doc = model_sbom(findings=[finding("AUD-A-001", "critical", "model.safetensors"),
                               finding("AUD-A-002", "medium", "config.json"),
                               finding("AUD-A-003", "critical", "config.json")])
    assert [v.message for v in judge([p], doc).active()] == [
        "AUD-A-001 in model.safetensors", "AUD-A-003 in config.json"]


def test_a_rule_that_cannot_be_evaluated_fails_closed(tmp_path):
    p = policy(tmp_path, rule("E-1", "model", "deny", "model.files / 0 == 1") +
               rule("E-2", "model", "deny", "model.name"))
    verdict = judge([p], model_sbom())
    errors = {v.rule: v.error for v in verdict.active()}
    assert set(errors) == {"E-1", "E-2"}
    assert "not a bool" in errors["E-2"]
    assert all(errors.values())


def test_data_files_are_bound_as_data(tmp_path):
    (tmp_path / "allow.yaml").write_text("names: [acme/good-7b]\nreviewed: 2026-01-01\n")
    p = policy(tmp_path, rule("D-1", "model", "require",
                              "model.name in data.allow.names && data.allow.reviewed == "
                              "'2026-01-01'"),
               extra="data:\n  allow: allow.yaml\n")
    assert judge([p], model_sbom("acme/good-7b")).active() == []
    assert [v.rule for v in judge([p], model_sbom("acme/other")).active()] == ["D-1"]


# --- waivers --------------------------------------------------------------------------------


def _waiver(target: str, expires: str, rule_id: str = "R-1") -> str:
    return (f"  - rule: {rule_id}\n    {target}\n    reason: reviewed\n"
            f"    approver: alice@example.com\n    expires: {expires}\n")


def test_waiver_applies_until_its_expiry_date_inclusive(tmp_path):
    p = policy(tmp_path, rule("R-1", "model", "require", "model.pinned"),
               extra="waivers:\n" + _waiver("model: acme/unpinned", "2026-12-01"))
    doc = model_sbom("acme/unpinned", revision=None)
    on_the_day = judge([p], doc, TODAY)
    assert on_the_day.active() == [] and on_the_day.violations[0].waiver.approver == (
        "alice@example.com")
    day_after = judge([p], doc, TODAY + datetime.timedelta(days=1))
    (v,) = day_after.active()
    assert v.expired_waiver is not None and v.waiver is None
    assert [w.rule for w in day_after.expired_waivers] == ["R-1"]


def test_unused_waivers_are_reported(tmp_path):
    p = policy(tmp_path, rule("R-1", "model", "require", "model.pinned"),
               extra="waivers:\n" + _waiver("model: someone/else", "2030-01-01"))
    verdict = judge([p], model_sbom())
    assert [w.model for w in verdict.unused_waivers] == ["someone/else"]


def test_waiver_by_file_digest_covers_only_that_file(tmp_path):
    p = policy(tmp_path, rule("R-1", "file", "deny", "file.format == 'pickle'"),
               extra="waivers:\n" + _waiver(f"sha256: {sha('a.pkl')}", "2030-01-01"))
    doc = model_sbom(files=[file_component("a.pkl", fmt="pickle"),
                            file_component("b.pkl", fmt="pickle")])
    verdict = judge([p], doc)
    assert [v.file for v in verdict.active()] == ["b.pkl"]
    assert [v.file for v in verdict.violations if v.waiver] == ["a.pkl"]


def test_waivers_may_live_in_a_second_policy_file(tmp_path):
    main = policy(tmp_path, rule("R-1", "model", "require", "model.pinned"), name="main.yaml")
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text("policy: exceptions\nwaivers:\n" +
                          _waiver("model: acme/unpinned", "2030-01-01"))
    verdict = judge([main, exceptions], model_sbom("acme/unpinned", revision=None))
    assert verdict.active() == [] and len(verdict.violations) == 1


# --- lineage --------------------------------------------------------------------------------

GEO = ROOT / "policies" / "geopolitical-risk.yaml"


def test_declared_parents_extend_the_lineage_and_are_marked(tmp_path):
    exceptions = tmp_path / "lineage.yaml"
    exceptions.write_text("policy: lineage\ndeclared_parents:\n"
                          "  ACME/Distilled-7B: [deepseek-ai/DeepSeek-R1]\n")
    verdict = judge([GEO, exceptions], model_sbom("acme/distilled-7b"))
    lineage = verdict.models[0].lineage
    parent = lineage[1]
    assert (parent["name"], parent["relation"], parent["declared"], parent["depth"]) == (
        "deepseek-ai/DeepSeek-R1", "declared", True, 1)
    assert (parent["jurisdiction"], parent["tier"], parent["tripped"]) == ("CN", "restricted",
                                                                           ["GEO-001"])
    assert verdict.models[0].lineage_tier == "restricted"


def test_lineage_depth_limits_how_far_ancestors_count(tmp_path):
    deep = model_sbom("acme/ft", ancestors=[ancestor("acme/mid", parents=[
        ancestor("deepseek-ai/DeepSeek-V3")])])
    shallow = tmp_path / "shallow.yaml"
    shallow.write_text(GEO.read_text().replace("lineage_depth: 5", "lineage_depth: 1")
                       .replace("data/", f"{GEO.parent}/data/"))
    assert "GEO-001" in {v.rule for v in judge([GEO], deep).active()}
    assert "GEO-001" not in {v.rule for v in judge([shallow], deep).active()}


def test_publisher_lookup_is_case_insensitive_and_unknown_is_elevated():
    verdict = judge([GEO], model_sbom("QWEN/some-model"))
    assert (verdict.models[0].jurisdiction, verdict.models[0].tier) == ("CN", "restricted")
    verdict = judge([GEO], model_sbom("never-heard-of/it"))
    assert (verdict.models[0].jurisdiction, verdict.models[0].tier) == ("unknown", "elevated")


def test_data_with_an_unexpected_shape_is_refused(tmp_path):
    (tmp_path / "j.yaml").write_text("tiers: {CN: forbidden}\ndefault: standard\n"
                                     "unknown: elevated\n")
    p = policy(tmp_path, rule("R-1", "model", "require", "model.pinned"),
               extra="data:\n  jurisdictions: j.yaml\n")
    from auditor.errors import ConfigError

    with pytest.raises(ConfigError, match="data jurisdictions"):
        load_policies([p])


def test_an_origin_named_by_the_files_joins_the_lineage():
    reupload = model_sbom("someuser/R1-GGUF", declared_origins=("Deepseek AI", "someuser"))
    verdict = judge([GEO], reupload)
    entries = {e["name"]: e for e in verdict.models[0].lineage}
    assert set(entries) == {"someuser/R1-GGUF", "Deepseek AI"}  # someuser is the publisher
    stated = entries["Deepseek AI"]
    assert (stated["relation"], stated["jurisdiction"], stated["tripped"]) == (
        "origin", "CN", ["GEO-001"])
