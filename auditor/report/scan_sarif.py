"""A scan result as SARIF 2.1.0: one result per finding, its rule from the catalogue.

Rules come from `auditor.rules.catalogue()` (title, why as the description,
fix as the help text), only those some finding raised. Each finding is located
at its file as a relative, percent-encoded URI: against SRCROOT, the folder
auditor ran in, for a model inside it (a CI checkout, which code scanning
resolves against), else against the model's root (`uriBaseId` MODEL<n>); both
are declared in `originalUriBaseIds` as absolute URIs. Model-level findings
point at the model root itself. The message is the finding's own
detail (the rule's title is the rule's). A region is given where one is known in
the file itself: the line a detail names (`line N: ...`, text files), else the
byte offset (binaries); a member inside an archive and its offset stay properties.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from auditor.model import Finding, ModelReport, Rule, ScanResult, Severity
from auditor.report import NOWHERE, Where
from auditor.report.sarif_log import (
    SECURITY_SEVERITY,
    SRCROOT,
    level,
    log,
    region,
    relative_uri,
    rule_help,
    within_cwd,
)
from auditor.rules import catalogue


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.id.replace("-", ""),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": rule_help(f"{rule.id}: {rule.title}", rule.why, rule.fix),
        "defaultConfiguration": {"level": level(rule.severity)},
        "properties": {"security-severity": SECURITY_SEVERITY[rule.severity],
                       "tags": ["security", "supply-chain"]},
    }


def _result(f: Finding, model: ModelReport, index: int, base_id: str,
            prefix: str) -> dict[str, Any]:
    path = posixpath.join(prefix, f.file) if f.file else prefix
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": relative_uri(path), "uriBaseId": base_id}}
    if spot := region(f):
        physical["region"] = spot
    properties: dict[str, Any] = {"model": model.name, "severity": f.severity.label}
    if f.location.member is not None:
        properties["member"] = f.location.member
    if f.location.offset is not None:
        properties["offset"] = f.location.offset
    return {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": level(f.severity),
        "message": {"text": f.detail or f.title},
        "locations": [{"physicalLocation": physical,
                       "logicalLocations": [{"name": model.name, "kind": "module"}]}],
        "partialFingerprints": {"auditorFinding/v1": "|".join(
            (f.rule, model.name, f.file, f.location.member or "", f.detail))},
        "properties": properties,
    }


def to_dict(result: ScanResult, fail_on: Severity) -> dict[str, Any]:
    known = catalogue()
    raised = sorted({f.rule for m in result.models for f in m.all_findings()})
    rules = [_rule(known.get(r) or Rule(r, Severity.INFO, r, "", "")) for r in raised]
    index = {r: i for i, r in enumerate(raised)}
    bases: dict[str, str] = {}
    results = []
    for n, model in enumerate(result.models):
        inside = within_cwd(model.root)
        base_id, prefix = (SRCROOT, inside) if inside is not None else (f"MODEL{n}", "")
        bases[base_id] = "." if inside is not None else model.root
        results += [_result(f, model, index[f.rule], base_id, prefix)
                    for f in model.all_findings()]
    return log(rules, results,
               {"verdict": "fail" if result.fails(fail_on) else "pass",
                "failOn": fail_on.label, "target": result.target,
                "rulesVersion": result.rules_version},
               bases)


def to_text(result: ScanResult, fail_on: Severity, where: Where = NOWHERE) -> str:
    return json.dumps(to_dict(result, fail_on), indent=2) + "\n"
