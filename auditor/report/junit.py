"""The policy verdict as JUnit XML: one test case per rule × model, for CI test dashboards.

A test suite per policy; a case fails when the rule has an unwaived
violation on that model (every violation listed in the failure body with its
fix), errors when the rule could not be evaluated, and is skipped when all of
its violations are waived (the message names the approver and expiry).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from auditor.model import Severity
from auditor.policy.schema import RuleSpec
from auditor.policy.verdict import Verdict
from auditor.report import NOWHERE, Where
from auditor.report.verdict_json import outcome

_COUNTED = {"fail": "failures", "error": "errors", "waived": "skipped"}


def _case(suite: ET.Element, verdict: Verdict, rule: RuleSpec, model: str,
          fail_on: Severity) -> str:
    """Add one test case; return its outcome (pass, fail, error, waived)."""
    case = ET.SubElement(suite, "testcase", classname=model,
                         name=f"{rule.id}: {rule.description or rule.message}")
    hits = [v for v in verdict.violations if v.rule == rule.id and v.model == model]
    state = outcome(verdict, rule.id, model)
    if state == "waived":
        waivers = sorted({f"{v.waiver.approver} until {v.waiver.expires}" for v in hits
                          if v.waiver})
        ET.SubElement(case, "skipped", message="waived by " + "; ".join(waivers))
    elif state != "pass":
        active = [v for v in hits if v.active]
        gating = "" if rule.severity >= fail_on else f" (below --fail-on {fail_on.label})"
        element = ET.SubElement(case, "error" if state == "error" else "failure",
                                type=rule.severity.label, message=active[0].message + gating)
        element.text = "\n".join(v.message + (f"\nfix: {v.fix}" if v.fix else "") for v in active)
    return state


def to_text(verdict: Verdict, fail_on: Severity, where: Where = NOWHERE) -> str:
    root = ET.Element("testsuites", name="auditor policy")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for policy in dict.fromkeys(r.policy for r in verdict.rules):
        suite = ET.SubElement(root, "testsuite", name=policy)
        counts = dict.fromkeys(totals, 0)
        for rule in (r for r in verdict.rules if r.policy == policy):
            for model in verdict.models:
                counts["tests"] += 1
                state = _case(suite, verdict, rule, model.name, fail_on)
                if state in _COUNTED:
                    counts[_COUNTED[state]] += 1
        for key, n in counts.items():
            suite.set(key, str(n))
            totals[key] += n
    for key, n in totals.items():
        root.set(key, str(n))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
