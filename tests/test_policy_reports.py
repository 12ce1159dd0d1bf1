"""Text and JSON verdicts: reasons, fixes, waivers (applied, expired, unused) and lineage."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from auditor.model import Severity
from auditor.policy.engine import evaluate, load_policies
from auditor.report import verdict_json, verdict_text
from auditor.sbom.facts import models_from_sbom
from tests.sbom_factory import ancestor, model_sbom

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "policies" / "geopolitical-risk.yaml"
WAIVERS = """policy: exceptions
waivers:
  - rule: GEO-002
    model: acme/ft
    reason: vendor reviewed
    approver: dana@example.com
    expires: 2027-01-31
  - rule: GEO-005
    model: acme/ft
    reason: pilot
    approver: erin@example.com
    expires: 2026-06-30
  - rule: GEO-006
    model: nobody/else
    reason: stale
    approver: frank@example.com
    expires: 2027-01-31
"""


def _verdict(tmp_path: Path):
    (tmp_path / "w.yaml").write_text(WAIVERS)
    doc = model_sbom("acme/ft", revision=None, signature="verified", upstream_grade="signed",
                     ancestors=[ancestor("Qwen/Qwen2.5-7B", relation="finetune")])
    return evaluate(load_policies([GEO, tmp_path / "w.yaml"]), models_from_sbom(doc, "s.json"),
                    sbom="s.json", today=datetime.date(2026, 12, 1))


def test_text_verdict_gives_reasons_fixes_and_every_waiver_state(tmp_path):
    text = verdict_text.to_text(_verdict(tmp_path), Severity.LOW)
    assert ("CRITICAL   GEO-001    Qwen/Qwen2.5-7B (finetune, depth 1, hub-verified by README.md "
            "base_model) is published by Qwen") in text
    assert "fix: Choose a model whose whole lineage is outside restricted jurisdictions." in text
    assert "waived     GEO-002" in text and "by dana@example.com until 2027-01-31" in text
    assert "waiver by erin@example.com EXPIRED on 2026-06-30" in text
    assert "expired waiver: GEO-005 for acme/ft (approved by erin@example.com)" in text
    assert "unused waiver: GEO-006 for nobody/else matched nothing" in text
    assert "1  Qwen/Qwen2.5-7B  finetune     publisher Qwen, jurisdiction CN, tier restricted; " \
           "hub-verified by README.md base_model; tripped: GEO-001" in text
    assert text.rstrip().endswith("(7 rule(s) on 1 model(s))")
    assert "verdict: FAIL" in text


def test_json_verdict_lists_the_lineage_with_tripped_rules_and_outcomes(tmp_path):
    doc = json.loads(verdict_json.to_text(_verdict(tmp_path), Severity.LOW))
    assert doc["verdict"] == "fail"
    (model,) = doc["models"]
    assert [(e["name"], e["publisher"], e["jurisdiction"], e["tier"], e["tripped"])
            for e in model["lineage"]] == [
        ("acme/ft", "acme", "unknown", "elevated", ["GEO-002"]),
        ("Qwen/Qwen2.5-7B", "Qwen", "CN", "restricted", ["GEO-001"]),
    ]
    assert {v["rule"] for v in model["violations"]} == {"GEO-001", "GEO-005"}
    expired = next(v for v in model["violations"] if v["rule"] == "GEO-005")
    assert expired["expired_waiver"]["approver"] == "erin@example.com"
    assert {v["rule"] for v in doc["waived"]} == {"GEO-002"}
    assert [w["rule"] for w in doc["unused_waivers"]] == ["GEO-006"]
    assert [w["rule"] for w in doc["expired_waivers"]] == ["GEO-005"]
    outcomes = {r["id"]: r["outcomes"]["acme/ft"] for r in doc["rules"]}
    assert outcomes == {"GEO-001": "fail", "GEO-002": "waived", "GEO-003": "pass",
                        "GEO-004": "pass", "GEO-005": "fail", "GEO-006": "pass",
                        "GEO-007": "pass"}


def test_a_fail_on_threshold_above_every_violation_passes(tmp_path):
    verdict = _verdict(tmp_path)
    assert verdict.fails(Severity.CRITICAL)
    assert json.loads(verdict_json.to_text(verdict, Severity.CRITICAL))["summary"]["failing"] == 1
    passing = model_sbom("meta-llama/Llama-3.1-8B", signature="verified", upstream_grade="signed")
    ok = evaluate(load_policies([GEO]), models_from_sbom(passing, "s"), sbom="s",
                  today=datetime.date(2026, 12, 1))
    assert "verdict: PASS" in verdict_text.to_text(ok, Severity.LOW)
