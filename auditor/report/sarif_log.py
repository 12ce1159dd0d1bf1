"""What both SARIF reporters share: the 2.1.0 log frame, severity → level, rule entries.

A scan (`scan_sarif`) and a policy verdict (`sarif`) are different subjects
but the same kind of log: one run of the auditor driver, its rules, its
results. Keeping the frame here keeps the two alike.
"""

from __future__ import annotations

from typing import Any

from auditor.model import Severity
from auditor.version import __version__

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# GitHub ranks security alerts by this numeric property (CVSS-like scale).
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0", Severity.INFO: "0.0",
}


def level(severity: Severity) -> str:
    """SARIF's three levels: high and critical are errors, medium a warning, the rest notes."""
    if severity >= Severity.HIGH:
        return "error"
    return "warning" if severity == Severity.MEDIUM else "note"


def log(rules: list[dict[str, Any]], results: list[dict[str, Any]],
        invocation: dict[str, Any], **run: Any) -> dict[str, Any]:
    """One SARIF log with one run of auditor; `run` adds run members (originalUriBaseIds)."""
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "auditor", "version": __version__, "semanticVersion": __version__,
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": True, "properties": invocation}],
            **run,
            "results": results,
        }],
    }
