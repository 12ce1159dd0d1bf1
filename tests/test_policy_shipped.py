"""The shipped policies, their data and their unit tests (`auditor policy test policies/tests`)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import yaml

from tests.sbom_factory import fixtures

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
MAJOR_PUBLISHERS = {
    "deepseek-ai", "Qwen", "meta-llama", "mistralai", "google", "microsoft", "zai-org", "THUDM",
    "01-ai", "moonshotai", "MiniMaxAI", "tiiuae", "CohereForAI", "ibm-granite", "nvidia",
    "allenai", "HuggingFaceTB",
}


def test_shipped_policy_unit_tests_pass(run_cli):
    run = run_cli("policy", "test", POLICIES / "tests")
    assert run.code == 0, run.out + run.err
    assert "27 passed, 0 failed" in run.out


def test_policy_test_fixtures_are_generated_by_the_factory():
    folder = POLICIES / "tests" / "sboms"
    made = fixtures()
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(made)
    for name, doc in made.items():
        assert json.loads((folder / name).read_text()) == doc, (
            f"{name}: regenerate with python -m tests.sbom_factory")


def test_a_failing_case_is_explained_and_exits_1(tmp_path, run_cli):
    (tmp_path / "x_test.yaml").write_text(
        f"policies: [{POLICIES / 'production.yaml'}]\ntoday: 2026-12-01\ncases:\n"
        f"  - name: wrong expectation\n    sbom: {POLICIES / 'tests/sboms/unpinned.json'}\n"
        "    violations: [PROD-002]\n")
    run = run_cli("policy", "test", tmp_path)
    assert run.code == 1
    assert "FAIL" in run.out
    assert "violations: expected ['PROD-002'], got ['PROD-003']" in run.out
    assert "0 passed, 1 failed" in run.out


def test_a_malformed_test_file_exits_2_with_its_location(tmp_path, run_cli):
    (tmp_path / "x_test.yaml").write_text("policies: [a.yaml]\ncases:\n  - name: n\n    sbm: s\n")
    run = run_cli("policy", "test", tmp_path)
    assert run.code == 2
    assert f"{tmp_path / 'x_test.yaml'}:4:5: unknown key 'sbm' in case" in run.err


def test_publishers_data_covers_the_major_publishers_with_sources():
    data = yaml.safe_load((POLICIES / "data" / "publishers.yaml").read_text())
    publishers = data["publishers"]
    assert set(publishers) >= MAJOR_PUBLISHERS
    for name, entry in publishers.items():
        if entry.get("role") != "converter":  # converters take their bases' origin
            assert len(entry["country"]) == 2 and entry["country"].isupper(), name
        assert entry["source"].startswith("https://"), name
        assert isinstance(entry["reviewed"], datetime.date), name
        assert entry["organisation"], name


def test_jurisdictions_are_an_example_with_fail_closed_unknown():
    text = (POLICIES / "data" / "jurisdictions.yaml").read_text()
    assert "EXAMPLE" in text and "NOT A POLITICAL STATEMENT" in text
    data = yaml.safe_load(text)
    assert data["unknown"] == "elevated"
    assert set(data["tiers"].values()) <= {"restricted", "elevated", "standard"}


def test_policy_check_judges_a_third_party_sbom_without_passing_unknowns(run_cli):
    sbom = POLICIES / "tests" / "sboms" / "third-party.json"
    run = run_cli("policy", "check", sbom, "--policy", POLICIES / "geopolitical-risk.yaml",
                  "--format", "json")
    assert run.code == 1
    doc = json.loads(run.out)
    (model,) = doc["models"]
    assert (model["publisher"], model["jurisdiction"], model["tier"]) == (
        "someone", "unknown", "elevated")
    assert {v["rule"] for v in model["violations"]} >= {"GEO-002", "GEO-004", "GEO-005"}


def test_every_fact_is_documented_field_by_field():
    from auditor.sbom.factkinds import FACT_FIELDS

    text = (ROOT / "docs" / "policy.md").read_text()
    missing = [f"{var}.{name}" for var, fields in FACT_FIELDS.items() for name in fields
               if f"`{var}.{name}`" not in text]
    assert missing == []
