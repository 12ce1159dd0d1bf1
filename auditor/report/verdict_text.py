"""The policy verdict for a person: each violation with its reason and its fix, then the lineage.

Waived violations stay visible (with who approved them and until when), and
expired or unused waivers are called out: a waiver is a decision someone
must revisit, not a way to make a finding disappear.
"""

from __future__ import annotations

from auditor.model import Severity
from auditor.policy.verdict import ModelVerdict, Verdict, Violation
from auditor.report import NOWHERE, Where


def _violation_lines(v: Violation, fail_on: Severity) -> list[str]:
    where = f"  [{v.file}]" if v.file and v.file not in v.message else ""
    mark = v.severity.label.upper() if v.severity >= fail_on else f"({v.severity.label})"
    lines = [f"  {mark:10} {v.rule:10} {v.message}{where}"]
    if v.fix:
        lines.append(f"  {'':10} {'':10} fix: {v.fix}")
    if v.expired_waiver:
        w = v.expired_waiver
        lines.append(f"  {'':10} {'':10} waiver by {w.approver} EXPIRED on {w.expires} "
                     f"({w.mark})")
    return lines


def _lineage_lines(model: ModelVerdict) -> list[str]:
    """The chain of ancestors; with origin and tripped rules when a policy judged origin."""
    judged = any(e["tier"] != "unknown" or e["tripped"] for e in model.lineage)
    if not judged:
        chain = " <- ".join(f"{e['name']} ({e['relation']})" for e in model.lineage[1:])
        return [f"  lineage: {model.name} <- {chain}"]
    lines = ["  lineage:"]
    width = max(len(e["name"]) for e in model.lineage)
    for e in model.lineage:
        tripped = ", ".join(e["tripped"]) or "-"
        relation = e["relation"] + (" (declared by policy)" if e["declared"] else "")
        lines.append(
            f"    {e['depth']}  {e['name']:{width}}  {relation:12} publisher {e['publisher']}, "
            f"jurisdiction {e['jurisdiction']}, tier {e['tier']}; {_evidence(e)}tripped: "
            f"{tripped}"
        )
    return lines


def _evidence(entry: dict[str, object]) -> str:
    """`recorded by git remote origin; `: how strongly the entry is known, and from what."""
    said = entry.get("evidence") or ()
    if entry.get("grade", "unknown") == "unknown" or not said:
        return ""
    return f"{entry['grade']} by {', '.join(str(e) for e in said)}; "  # type: ignore[union-attr]


def to_text(verdict: Verdict, fail_on: Severity, where: Where = NOWHERE) -> str:
    lines = [f"policies: {', '.join(verdict.policies)}", f"sbom: {verdict.sbom}", ""]
    for model in verdict.models:
        pinned = "pinned" if model.pinned else "NOT pinned"
        origin = f", jurisdiction {model.jurisdiction}" if model.jurisdiction != "unknown" else ""
        grade = model.lineage[0].get("publisher_grade", "unknown") if model.lineage else "unknown"
        graded = f" ({grade})" if grade != "unknown" and model.publisher != "unknown" else ""
        lines.append(f"model {model.name}  (revision {model.revision}, {pinned}; publisher "
                     f"{model.publisher}{graded}{origin})")
        mine = [v for v in verdict.active() if v.model == model.name]
        mine.sort(key=lambda v: (-v.severity, v.rule, v.file, v.ancestor))
        for v in mine:
            lines += _violation_lines(v, fail_on)
        for v in verdict.violations:
            if v.model == model.name and v.waiver:
                w = v.waiver
                lines.append(f"  {'waived':10} {v.rule:10} {v.message}")
                lines.append(f"  {'':10} {'':10} by {w.approver} until {w.expires}: {w.reason}")
        if not mine:
            lines.append("  no violations")
        if len(model.lineage) > 1 or any(e["tripped"] for e in model.lineage):
            lines += _lineage_lines(model)
        lines.append("")
    for w in verdict.expired_waivers:
        lines.append(f"expired waiver: {w.rule} for {w.target} (approved by {w.approver}) expired "
                     f"on {w.expires} — it no longer applies ({w.mark})")
    for w in verdict.unused_waivers:
        lines.append(f"unused waiver: {w.rule} for {w.target} matched nothing — remove it "
                     f"({w.mark})")
    failing = verdict.failing(fail_on)
    checked = f"{len(verdict.rules)} rule(s) on {len(verdict.models)} model(s)"
    if failing:
        rules = len({(v.rule, v.model) for v in failing})
        lines.append(f"verdict: FAIL — {len(failing)} violation(s) of {rules} rule(s) at or above "
                     f"{fail_on.label} ({checked})")
    else:
        below = len(verdict.active())
        note = f"; {below} violation(s) below {fail_on.label}" if below else ""
        lines.append(f"verdict: PASS — {checked}, no violation at or above "
                     f"{fail_on.label}{note}")
    return "\n".join(lines) + "\n"
