"""The scan report as one self-contained HTML page (shared page parts: `html_page`).

Built from the same data as the JSON report (`json.to_dict`), so the page
shows exactly what a program reading the JSON sees: the verdict, every
finding (filterable by severity and rule), each file's format and coverage,
the files an exclude pattern left out, identity and provenance grades,
lineage with its evidence, and the signature status.
"""

from __future__ import annotations

from typing import Any

from auditor.model import ScanResult, Severity
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
from auditor.report.json import to_dict


def _finding_rows(model: dict[str, Any]) -> list[FindingRow]:
    found = model["findings"] + [f for file in model["files"] for f in file["findings"]]
    return [FindingRow(model["name"], f["severity"], f["rule"], f["file"],
                       f"{f['title']}: {f['detail']}" if f["detail"] else f["title"],
                       location(f["member"], f["offset"])) for f in found]


def _provenance(model: dict[str, Any]) -> str:
    facts = model["facts"]
    claims = facts.get("identity", {}).get("claims", [])
    rows = [[c.get("subject"), c.get("value"), c.get("grade"), c.get("evidence")] for c in claims]
    origin = facts.get("origin", {})
    if origin.get("publisher"):
        rows.append(["publisher", origin["publisher"], origin.get("grade", ""),
                     origin.get("evidence", "")])
    return table(("subject", "value", "grade", "evidence"), rows,
                 empty="no record names this model beyond the scanned path")


def _files(model: dict[str, Any]) -> str:
    rows = [[f["path"], f["format"], f["coverage"], f["verdict"], f["size"],
             (f["facts"].get("upstream") or {}).get("match", "not checked")]
            for f in model["files"]]
    return table(("file", "format", "coverage", "verdict", "bytes", "matches upstream"), rows,
                 empty="no file was scanned")


def _excluded(model: dict[str, Any]) -> str:
    left_out = model["facts"].get("excluded")
    if not left_out:
        return para("No file was excluded.")
    shown = table(("excluded file", "pattern"),
                  [[e["path"], e["pattern"]] for e in left_out["files"]], empty="")
    more = left_out.get("count", 0) - len(left_out["files"])
    return "\n".join([para(f"{left_out.get('count', 0)} file(s) left out by --exclude or the "
                           f"config exclude ({', '.join(left_out['patterns'])}); not read."),
                      shown] + ([para(f"... and {more} more excluded")] if more > 0 else []))


def _signature(model: dict[str, Any]) -> str:
    sig = model["facts"].get("signature", {})
    return table(("status", "method", "signer", "files covered"),
                 [[sig.get("status", "unknown"), sig.get("method") or "",
                   sig.get("signer") or "", len(sig.get("covered") or [])]],
                 empty="")


def _model(model: dict[str, Any]) -> str:
    revision = model["revision"] or "unpinned"
    return section(
        f"Model {model['name']}",
        para(f"revision {revision}; source {model['source']}: {model['root']}; "
             f"scan verdict {model['verdict']}"),
        "<h3>Provenance</h3>", _provenance(model),
        "<h3>Signature</h3>", _signature(model),
        "<h3>Lineage</h3>", lineage_table(model["facts"].get("lineage", [])),
        "<h3>Coverage</h3>", _files(model), _excluded(model),
    )


def to_text(result: ScanResult, fail_on: Severity, where: Where = NOWHERE) -> str:
    data = to_dict(result, fail_on)
    summary = data["summary"]
    failing = sum(1 for f in result.all_findings() if f.severity >= fail_on)
    headline = (f"FAIL — {failing} finding(s) at or above {fail_on.label}" if failing else
                f"PASS — no finding at or above {fail_on.label}")
    counts = ", ".join(f"{n} {sev}" for sev, n in summary["findings"].items())
    coverage = ", ".join(f"{n} {kind}" for kind, n in summary["coverage"].items())
    overview = section(
        "Summary",
        para(f"target {data['target']}; {summary['models']} model(s), {summary['files']} "
             f"file(s), {summary['excluded']} excluded; auditor {data['auditor']['version']}"),
        para(f"findings: {counts}"), para(f"coverage: {coverage or 'no file'}"),
    )
    rows = [row for model in data["models"] for row in _finding_rows(model)]
    waivers = section("Waivers", para("A scan applies no policy, so no waiver; "
                                      "`auditor gate` reports the waivers it applied."))
    return page(f"auditor scan: {data['target']}", not failing, headline,
                [overview, findings_section(rows)]
                + [_model(m) for m in data["models"]] + [waivers])
