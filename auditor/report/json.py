"""The JSON report: the scan result as data (shape documented in docs/report-json.md)."""

from __future__ import annotations

import json
from typing import Any

from auditor.model import FileReport, Finding, ModelReport, ScanResult, Severity
from auditor.report import NOWHERE, Where
from auditor.rules import catalogue
from auditor.version import __version__

SCHEMA_VERSION = 1


def finding_dict(finding: Finding) -> dict[str, Any]:
    rule = catalogue().get(finding.rule)
    return {
        "rule": finding.rule,
        "severity": finding.severity.label,
        "title": finding.title,
        "detail": finding.detail,
        "file": finding.file,
        "member": finding.location.member,
        "offset": finding.location.offset,
        "why": rule.why if rule else "",
        "fix": rule.fix if rule else "",
    }


def severity_counts(findings: list[Finding]) -> dict[str, int]:
    counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for f in findings:
        counts[f.severity.label] += 1
    return counts


def excluded_count(model: ModelReport) -> int:
    """Files the exclude patterns left out of this model (not read, not judged)."""
    count = model.facts.get("excluded", {}).get("count", 0)
    return count if isinstance(count, int) else 0


def _file(report: FileReport) -> dict[str, Any]:
    return {
        "path": report.path,
        "size": report.size,
        "sha256": report.sha256,
        "digests": report.digests,
        "format": report.format,
        "coverage": report.coverage.value,
        "verdict": report.verdict,
        "findings": [finding_dict(f) for f in report.findings],
        "facts": report.facts,
    }


def _model(model: ModelReport) -> dict[str, Any]:
    worst = model.worst
    return {
        "name": model.name,
        "root": model.root,
        "source": model.source,
        "revision": model.revision,
        "verdict": "clean" if worst is None else worst.label,
        "coverage": model.coverage_counts(),
        "findings": [finding_dict(f) for f in model.findings],
        "facts": model.facts,
        "files": [_file(f) for f in model.files],
    }


def to_dict(result: ScanResult, fail_on: Severity) -> dict[str, Any]:
    findings = result.all_findings()
    coverage: dict[str, int] = {}
    for model in result.models:
        for key, n in model.coverage_counts().items():
            coverage[key] = coverage.get(key, 0) + n
    worst = result.worst
    return {
        "schema": SCHEMA_VERSION,
        "auditor": {"version": __version__, "rules_version": result.rules_version},
        "target": result.target,
        "verdict": "fail" if result.fails(fail_on) else "pass",
        "fail_on": fail_on.label,
        "worst": None if worst is None else worst.label,
        "summary": {
            "models": len(result.models),
            "files": sum(len(m.files) for m in result.models),
            "bytes": sum(f.size for m in result.models for f in m.files),
            "bytes_read": result.bytes_read,
            "elapsed_s": round(result.elapsed_s, 3),
            "coverage": coverage,
            "excluded": sum(excluded_count(m) for m in result.models),
            "findings": severity_counts(findings),
        },
        "models": [_model(m) for m in result.models],
    }


def to_text(result: ScanResult, fail_on: Severity, where: Where = NOWHERE) -> str:
    return json.dumps(to_dict(result, fail_on), indent=2, sort_keys=False) + "\n"
