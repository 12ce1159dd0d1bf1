"""The policy verdict as one self-contained HTML page (shared page parts: `html_page`).

The verdict, violations and waivers come from the same data as the JSON
verdict (`verdict_json.to_dict`); the evidence behind them (each file's format
and coverage, the findings, the signature, the provenance grades) from the
SBOM facts the policies judged (`ModelVerdict.facts`), so the page shows
what the policy saw and nothing re-derived.
"""

from __future__ import annotations

from typing import Any

from auditor.model import Severity
from auditor.policy.verdict import ModelVerdict, Verdict
from auditor.report import NOWHERE, Where
from auditor.report.html_page import (
    FindingRow,
    findings_section,
    lineage_table,
    location,
    page,
    para,
    section,
    table,
)
from auditor.report.verdict_json import to_dict


def _violations(violations: list[dict[str, Any]]) -> str:
    rows = [[v["severity"], v["rule"], v["policy"], v["model"], v["file"] or v["ancestor"] or "",
             v["message"], v["fix"]] for v in violations]
    return table(("severity", "rule", "policy", "model", "file / ancestor", "message", "fix"),
                 rows, empty="no violation", kind="violations")


def _waivers(data: dict[str, Any]) -> str:
    applied = table(("rule", "model", "file", "reason", "approver", "expires"),
                    [[v["rule"], v["model"], v["file"] or "", v["waiver"]["reason"],
                      v["waiver"]["approver"], v["waiver"]["expires"]] for v in data["waived"]],
                    empty="no waiver applied", table_id="waivers")
    expired = table(("rule", "model", "reason", "approver", "expired on", "defined at"),
                    [[w["rule"], w["model"] or w["sha256"], w["reason"], w["approver"],
                      w["expires"], w["defined_at"]] for w in data["expired_waivers"]],
                    empty="no expired waiver")
    unused = table(("rule", "model", "reason", "defined at"),
                   [[w["rule"], w["model"] or w["sha256"], w["reason"], w["defined_at"]]
                    for w in data["unused_waivers"]], empty="no unused waiver")
    return section("Waivers", "<h3>Applied</h3>", applied,
                   "<h3>Expired (no longer applied)</h3>", expired,
                   "<h3>Unused (matched nothing)</h3>", unused)


def _finding_rows(model: ModelVerdict) -> list[FindingRow]:
    found = model.facts.findings if model.facts else ()
    return [FindingRow(model.name, f.severity, f.rule, f.file,
                       f"{f.title}: {f.detail}" if f.detail else f.title,
                       location(f.member, f.offset)) for f in found]


def _evidence(model: ModelVerdict) -> list[str]:
    """Provenance grades, signature and per-file coverage, as the SBOM states them."""
    facts = model.facts
    if facts is None:
        return [para("The SBOM's facts are not at hand: only the verdict is shown.")]
    info, sig = facts.model, facts.signature
    grades = table(("subject", "value", "grade", "evidence"), [
        ["name", info.name, info.name_grade, info.name_evidence],
        ["revision", info.revision, info.revision_grade, info.revision_evidence],
        ["publisher", info.publisher, info.publisher_grade, info.publisher_evidence],
        ["upstream", info.upstream_match, info.upstream_grade, "the publisher's file digests"],
    ], empty="")
    signature = table(("status", "method", "signer", "grade"),
                      [[sig.status, sig.method, sig.signer, sig.grade]], empty="")
    files = table(("file", "format", "coverage", "verdict", "bytes", "upstream grade", "signed"),
                  [[f.path, f.format, f.coverage, f.verdict, f.size, f.upstream_grade, f.signed]
                   for f in facts.files], empty="no file in the SBOM")
    excluded = [para(f"{info.excluded} file(s) left out by an exclude pattern (not read):"
                     if info.excluded else "No file was excluded.")]
    if info.excluded_files:
        excluded.append(table(("excluded file (pattern)",),
                              [[entry] for entry in info.excluded_files], empty=""))
    return ["<h3>Provenance</h3>", grades, "<h3>Signature</h3>", signature,
            "<h3>Coverage</h3>", files, *excluded]


def _model(model: ModelVerdict, data: dict[str, Any]) -> str:
    pinned = "pinned" if model.pinned else "NOT pinned"
    return section(
        f"Model {model.name}",
        para(f"revision {model.revision} ({pinned}); publisher {model.publisher}, "
             f"jurisdiction {model.jurisdiction}, tier {model.tier}; lineage tier "
             f"{model.lineage_tier}"),
        "<h3>Violations</h3>", _violations(data["violations"]),
        *_evidence(model),
        "<h3>Lineage</h3>", lineage_table(data["lineage"],
                                          ("jurisdiction", "tier", "tripped")),
    )


def to_text(verdict: Verdict, fail_on: Severity, where: Where = NOWHERE) -> str:
    data = to_dict(verdict, fail_on)
    summary = data["summary"]
    failing = verdict.failing(fail_on)
    rules = sorted({v.rule for v in failing})
    headline = (f"FAIL — {len(failing)} violation(s) of {', '.join(rules)} at or above "
                f"{fail_on.label}" if failing else
                f"PASS — no violation at or above {fail_on.label}")
    overview = section(
        "Verdict",
        para(f"policies: {', '.join(data['policies'])}"),
        para(f"SBOM: {data['sbom']}; evaluated on {data['evaluated_on']}; "
             f"auditor {data['auditor']['version']}"),
        para(f"{summary['rules']} rule(s) on {summary['models']} model(s): "
             f"{summary['violations']} violation(s), {summary['failing']} failing, "
             f"{summary['waived']} waived"),
        "<h3>Failed rules</h3>",
        table(("severity", "rule", "model", "message"),
              [[v.severity.label, v.rule, v.model, v.message] for v in failing],
              empty="no rule failed", table_id="failed"),
    )
    rows = [row for model in verdict.models for row in _finding_rows(model)]
    return page(f"auditor gate: {', '.join(m.name for m in verdict.models) or data['sbom']}",
                not failing, headline,
                [overview, findings_section(rows, "Findings in the SBOM")]
                + [_model(m, d) for m, d in zip(verdict.models, data["models"], strict=True)]
                + [_waivers(data)])
