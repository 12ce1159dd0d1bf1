"""A scan result as JUnit XML, for CI test dashboards: a suite per model, a case per file.

A file's case fails when it has a finding at or above `--fail-on` (every such
finding listed in the failure body, worst first); findings below the
threshold are kept in the case's system-out, so nothing is hidden. Findings
about the model as a whole (missing files, signature, pinning) get one more
case, `(model)`, when there are any.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from auditor.model import Finding, ModelReport, ScanResult, Severity
from auditor.report import NOWHERE, Where

MODEL_CASE = "(model)"


def _line(f: Finding) -> str:
    where = f" [{f.location.member}]" if f.location.member else ""
    return f"{f.severity.label.upper()} {f.rule} {f.title}{where}" + (
        f": {f.detail}" if f.detail else "")


def _case(suite: ET.Element, model: ModelReport, name: str, findings: tuple[Finding, ...],
          fail_on: Severity) -> bool:
    """Add one case; return whether it failed."""
    case = ET.SubElement(suite, "testcase", classname=model.name, name=name)
    ordered = sorted(findings, key=lambda f: (-f.severity, f.rule))
    failing = [f for f in ordered if f.severity >= fail_on]
    if failing:
        worst = failing[0]
        failure = ET.SubElement(case, "failure", type=worst.severity.label,
                                message=f"{len(failing)} finding(s) at or above "
                                        f"{fail_on.label}: {worst.rule} {worst.title}")
        failure.text = "\n".join(_line(f) for f in failing)
    below = [f for f in ordered if f.severity < fail_on]
    if below:
        ET.SubElement(case, "system-out").text = "\n".join(_line(f) for f in below)
    return bool(failing)


def to_text(result: ScanResult, fail_on: Severity, where: Where = NOWHERE) -> str:
    root = ET.Element("testsuites", name="auditor scan")
    tests = failures = 0
    for model in result.models:
        suite = ET.SubElement(root, "testsuite", name=model.name)
        cases = [(f.path, f.findings) for f in model.files]
        if model.findings:
            cases.append((MODEL_CASE, model.findings))
        failed = sum(_case(suite, model, name, found, fail_on) for name, found in cases)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failed))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        tests += len(cases)
        failures += failed
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
