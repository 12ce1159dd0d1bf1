"""The policy verdict as SARIF 2.1.0, for code-scanning dashboards (GitHub, GitLab, ...).

One SARIF rule per policy rule (with its description and fix as help text),
one result per violation, its message the violation's own, located at the
offending file (or at the SBOM / model folder for model-wide rules) as a
percent-encoded relative URI against SRCROOT, the folder auditor ran in, with
the region (line, else byte offset) the SBOM records for a finding-scope rule.
Waived violations are kept as results with an accepted external suppression,
so the dashboard shows them as dismissed with the approver's reason instead
of losing them.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any

from auditor.model import Severity
from auditor.policy.verdict import Verdict, Violation
from auditor.report import NOWHERE, Where
from auditor.report.sarif_log import (
    SECURITY_SEVERITY,
    SRCROOT,
    level,
    log,
    relative_uri,
    rule_help,
    spot,
    within_cwd,
)


def _artifact(path: str) -> dict[str, str]:
    """A path as SARIF's artifact location: relative to the working folder where it can be.

    A path under the folder auditor ran in becomes a percent-encoded relative URI
    against SRCROOT (declared in `originalUriBaseIds`), which is what code
    scanning resolves against the checkout; any other path becomes an absolute
    file URI, and a URL stays as it is.
    """
    if "://" in path:
        return {"uri": path}
    inside = within_cwd(path)
    if inside is None:
        return {"uri": Path(os.path.abspath(path)).as_uri()}
    return {"uri": relative_uri(inside), "uriBaseId": SRCROOT}


def _region(v: Violation) -> dict[str, Any]:
    """The finding's place in its file, when the SBOM recorded one (finding-scope rules)."""
    where = spot(v.line, v.offset) if v.file else {}
    return {"region": where} if where else {}


def _result(v: Violation, index: int, base: str, model_location: str) -> dict[str, Any]:
    if not v.file:
        artifact = _artifact(model_location)
    elif base:
        artifact = _artifact(posixpath.join(base, v.file))
    else:  # a remote model: its files are relative to the model, not to any local folder
        artifact = {"uri": relative_uri(v.file), "uriBaseId": "MODEL"}
    result: dict[str, Any] = {
        "ruleId": v.rule,
        "ruleIndex": index,
        "level": level(v.severity),
        "message": {"text": v.message},
        "locations": [{
            "physicalLocation": {"artifactLocation": artifact, **_region(v)},
            "logicalLocations": [{"name": v.model, "kind": "module"}],
        }],
        "partialFingerprints": {
            "auditorViolation/v1": "|".join((v.rule, v.model, v.file, v.ancestor)),
        },
        "properties": {"model": v.model, "policy": v.policy, "scope": v.scope,
                       "severity": v.severity.label},
    }
    if v.ancestor:
        result["properties"]["ancestor"] = v.ancestor
    if v.sha256:
        result["properties"]["sha256"] = v.sha256
    if v.waiver:
        w = v.waiver
        result["suppressions"] = [{
            "kind": "external", "status": "accepted",
            "justification": f"{w.reason} (approved by {w.approver}, expires {w.expires})",
        }]
    return result


def to_dict(verdict: Verdict, fail_on: Severity, *, base: str = "",
            model_location: str = "") -> dict[str, Any]:
    """`base`: path prefix for file locations; `model_location`: where model-wide results point."""
    index = {r.id: i for i, r in enumerate(verdict.rules)}
    rules = [
        {
            "id": r.id,
            "name": r.id.replace("-", ""),
            "shortDescription": {"text": r.description or r.message},
            "fullDescription": {"text": r.description or r.message},
            "help": rule_help(f"{r.id} ({r.policy})", r.description, r.fix),
            "defaultConfiguration": {"level": level(r.severity)},
            "properties": {"policy": r.policy, "scope": r.scope,
                           "security-severity": SECURITY_SEVERITY[r.severity],
                           "tags": ["security", "supply-chain", r.policy]},
        }
        for r in verdict.rules
    ]
    location = model_location or verdict.sbom
    return log(rules, [_result(v, index[v.rule], base, location) for v in verdict.violations],
               {"verdict": "fail" if verdict.fails(fail_on) else "pass",
                "failOn": fail_on.label, "policies": list(verdict.policies)},
               {SRCROOT: "."})


def to_text(verdict: Verdict, fail_on: Severity, where: Where = NOWHERE) -> str:
    return json.dumps(to_dict(verdict, fail_on, base=where.base,
                              model_location=where.model_location), indent=2) + "\n"
