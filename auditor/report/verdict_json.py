"""The policy verdict as JSON: what failed, why, how to fix it, and the lineage behind it.

Shape (schema 1): `verdict` pass/fail, `fail_on`, `summary` counts, one entry
per model with its lineage (each ancestor's name, publisher, jurisdiction,
tier and the rules it tripped) and its violations, the waived violations,
expired and unused waivers, and every rule with its outcome per model.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.model import Severity
from auditor.policy.schema import Waiver
from auditor.policy.verdict import Verdict, Violation
from auditor.report import NOWHERE, Where
from auditor.version import __version__

SCHEMA_VERSION = 1


def waiver_dict(waiver: Waiver) -> dict[str, Any]:
    return {
        "rule": waiver.rule, "model": waiver.model, "sha256": waiver.sha256,
        "reason": waiver.reason, "approver": waiver.approver,
        "expires": waiver.expires.isoformat(), "defined_at": str(waiver.mark),
    }


def violation_dict(v: Violation) -> dict[str, Any]:
    return {
        "rule": v.rule, "policy": v.policy, "severity": v.severity.label, "scope": v.scope,
        "model": v.model, "file": v.file or None, "sha256": v.sha256 or None,
        "ancestor": v.ancestor or None, "message": v.message, "fix": v.fix,
        "error": v.error or None,
        "waiver": waiver_dict(v.waiver) if v.waiver else None,
        "expired_waiver": waiver_dict(v.expired_waiver) if v.expired_waiver else None,
    }


def outcome(verdict: Verdict, rule: str, model: str) -> str:
    """pass, fail, error or waived: one rule on one model (JUnit and JSON share it)."""
    hits = [v for v in verdict.violations if v.rule == rule and v.model == model]
    if any(v.error and v.active for v in hits):
        return "error"
    if any(v.active for v in hits):
        return "fail"
    return "waived" if hits else "pass"


def _ancestor(entry: dict[str, Any]) -> dict[str, Any]:
    """A lineage entry with JSON types: the tri-state `resolved` as true/false/null, an
    unmeasured `score` (-1 in policies) as null. Policies keep their own spelling."""
    tri = {"true": True, "false": False}
    score = entry.get("score")
    return {**entry, "resolved": tri.get(str(entry.get("resolved"))),
            "score": score if isinstance(score, int | float) and score >= 0 else None}


def to_dict(verdict: Verdict, fail_on: Severity) -> dict[str, Any]:
    active = verdict.active()
    return {
        "schema": SCHEMA_VERSION,
        "auditor": {"version": __version__},
        "verdict": "fail" if verdict.fails(fail_on) else "pass",
        "fail_on": fail_on.label,
        "sbom": verdict.sbom,
        "policies": list(verdict.policies),
        "evaluated_on": verdict.today.isoformat(),
        "summary": {
            "models": len(verdict.models),
            "rules": len(verdict.rules),
            "violations": len(active),
            "failing": len(verdict.failing(fail_on)),
            "waived": len(verdict.violations) - len(active),
            "expired_waivers": len(verdict.expired_waivers),
            "unused_waivers": len(verdict.unused_waivers),
        },
        "models": [
            {
                "name": m.name, "revision": m.revision, "pinned": m.pinned,
                "publisher": m.publisher, "jurisdiction": m.jurisdiction, "tier": m.tier,
                "lineage_tier": m.lineage_tier,
                "lineage": [_ancestor(e) for e in m.lineage],
                "violations": [violation_dict(v) for v in active if v.model == m.name],
            }
            for m in verdict.models
        ],
        "waived": [violation_dict(v) for v in verdict.violations if not v.active],
        "expired_waivers": [waiver_dict(w) for w in verdict.expired_waivers],
        "unused_waivers": [waiver_dict(w) for w in verdict.unused_waivers],
        "rules": [
            {
                "id": r.id, "policy": r.policy, "scope": r.scope, "severity": r.severity.label,
                "description": r.description, "fix": r.fix, "defined_at": str(r.mark),
                "outcomes": {m.name: outcome(verdict, r.id, m.name) for m in verdict.models},
            }
            for r in verdict.rules
        ],
    }


def to_text(verdict: Verdict, fail_on: Severity, where: Where = NOWHERE) -> str:
    return json.dumps(to_dict(verdict, fail_on), indent=2) + "\n"
