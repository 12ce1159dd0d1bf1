"""The human report: one line per file, findings with where/why/fix, and a summary.

The summary always states coverage, so "no findings" is never printed over
files that were not looked inside.
"""

from __future__ import annotations

from auditor.model import Coverage, FileReport, Finding, ModelReport, ScanResult, Severity
from auditor.report import NOWHERE, Where
from auditor.report.json import excluded_count, severity_counts
from auditor.rules import catalogue


def _finding_lines(finding: Finding, verbose: bool) -> list[str]:
    where = str(finding.location)
    head = f"    {finding.severity.label.upper():8} {finding.rule}  {finding.title}"
    lines = [head + (f"  [{where}]" if where else "")]
    if finding.detail:
        lines.append(f"             {finding.detail}")
    rule = catalogue().get(finding.rule)
    if rule and verbose:
        lines.append(f"             why: {rule.why}")
        lines.append(f"             fix: {rule.fix}")
    return lines


def _file_line(report: FileReport, width: int) -> str:
    return f"  {report.verdict:8} {report.path:{width}}  {report.format:14} {report.coverage.value}"


def _model_lines(model: ModelReport, fail_on: Severity) -> list[str]:
    revision = model.revision or "unpinned"
    lines = [f"model {model.name}  (revision {revision}, {model.source}: {model.root})", ""]
    identity = model.facts.get("identity", {})
    said = [f"{subject} {identity[subject + '_grade']} by {identity[subject + '_evidence']}"
            for subject in ("name", "revision") if identity.get(subject + "_grade")]
    if said:  # which record named the model: a folder name is not a git remote
        lines.insert(1, "identity: " + "; ".join(said))
    transfer = model.facts.get("hub", {}).get("transfer")
    if transfer:  # a remote-only Hub audit: how little was fetched
        lines.insert(1, f"remote-only: {transfer['bytes']} of {transfer['repo_bytes']} bytes "
                     f"transferred ({transfer['ratio']:.4%}); range-read files are not hashed "
                     "here: their Hub digests are recorded as claims")
    lines += _excluded_lines(model)
    width = max((len(f.path) for f in model.files), default=10)
    for finding in model.findings:
        lines += _finding_lines(finding, finding.severity >= fail_on)
    for report in model.files:
        lines.append(_file_line(report, width))
        for finding in report.findings:
            if finding.severity > Severity.INFO:
                lines += _finding_lines(finding, finding.severity >= fail_on)
    return lines


def _excluded_lines(model: ModelReport) -> list[str]:
    """The files an exclude pattern left out, each with its pattern: not read, so named."""
    left_out = model.facts.get("excluded")
    if not left_out:
        return []
    count = excluded_count(model)
    lines = [f"excluded: {count} file(s) by --exclude/config exclude "
             f"({', '.join(left_out['patterns'])}); not read"]
    lines += [f"  excluded {e['path']}  ({e['pattern']})" for e in left_out["files"]]
    if count > len(left_out["files"]):
        lines.append(f"  ... and {count - len(left_out['files'])} more excluded")
    return [*lines, ""]


def to_text(result: ScanResult, fail_on: Severity, where: Where = NOWHERE) -> str:
    lines: list[str] = []
    for model in result.models:
        lines += _model_lines(model, fail_on)
        lines.append("")
    coverage = {c.value: 0 for c in Coverage}
    for model in result.models:
        for key, n in model.coverage_counts().items():
            coverage[key] += n
    total = sum(coverage.values())
    excluded = sum(excluded_count(m) for m in result.models)
    lines.append(
        f"coverage: {total} files — {coverage['scanned']} scanned, {coverage['partial']} partial "
        f"(limit hit), {coverage['unsupported']} unsupported (hashed only), "
        f"{coverage['error']} error"
        + (f"; {excluded} excluded by --exclude (not read)"
           if any("excluded" in m.facts for m in result.models) else "")
    )
    counts = severity_counts(result.all_findings())
    lines.append("findings: " + ", ".join(f"{n} {sev}" for sev, n in counts.items()))
    failing = sum(1 for f in result.all_findings() if f.severity >= fail_on)
    if failing:
        verdict = f"FAIL — {failing} finding(s) at or above {fail_on.label}"
    elif total == 0:
        verdict = f"PASS — no finding at or above {fail_on.label}; but no file was scanned"
    elif coverage["scanned"] == total:
        verdict = f"PASS — no finding at or above {fail_on.label}; every file fully scanned"
    else:
        verdict = (
            f"PASS — no finding at or above {fail_on.label}; "
            f"{total - coverage['scanned']} file(s) not fully scanned (see coverage)"
        )
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines) + "\n"
