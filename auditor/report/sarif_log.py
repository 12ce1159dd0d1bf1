"""What both SARIF reporters share: the 2.1.0 log frame, levels, locations, regions, help.

A scan (`scan_sarif`) and a policy verdict (`sarif`) are different subjects
but the same kind of log: one run of the auditor driver, its rules, its
results. Keeping the frame, the URI encoding (relative to SRCROOT or a model
root), regions and rule help here keeps the two alike.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import quote

from auditor.model import Finding, Severity, detail_line
from auditor.version import __version__

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# GitHub ranks security alerts by this numeric property (CVSS-like scale).
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0", Severity.INFO: "0.0",
}


def relative_uri(path: str) -> str:
    """A relative path as a URI reference: each segment percent-encoded, slashes kept.

    Everything outside the unreserved set is encoded (space, `#`, `%`, `?`, `:`,
    non-ASCII as UTF-8), so the result is a valid relative reference whatever the
    artifact named its files and a consumer decodes it back to the same path. A
    leading slash is dropped: the path is relative to its base, and `//host/x`
    would otherwise read as another machine.
    """
    return quote(posixpath.normpath(path).lstrip("/") if path else "", safe="/")


# The folder auditor ran in: in CI, the checkout code scanning resolves relative URIs against.
SRCROOT = "SRCROOT"


def within_cwd(path: str) -> str | None:
    """A local path relative to the working folder, or None when it lies outside it (or is a URL).

    Code scanning maps a result to a repository file by its URI relative to the
    checkout, so a path under the folder auditor ran in is best written that way.
    """
    if "://" in path:
        return None
    try:
        inside = Path(os.path.relpath(os.path.abspath(path), Path.cwd()))
    except ValueError:  # another drive (Windows): no relative path at all
        return None
    return None if inside.parts[:1] == ("..",) else inside.as_posix()


def base_uri(root: str) -> str:
    """A folder as an absolute URI ending in a slash (SARIF's rule for base URIs)."""
    if "://" in root:
        return root.rstrip("/") + "/"
    return Path(root).resolve().as_uri().rstrip("/") + "/"


def region(finding: Finding) -> dict[str, int]:
    """Where in its file a finding is, when known: the line its detail names, else its offset.

    Only positions in the file itself count: an offset or line inside an archive
    member is not a position in the archive, so it stays a property of the result.
    """
    if not finding.file or finding.location.member is not None:
        return {}
    return spot(detail_line(finding.detail), finding.location.offset)


def spot(line: int | None, offset: int | None) -> dict[str, int]:
    """A SARIF region: the line for a text file (an offset too could disagree with it), else
    the byte offset for a binary, else nothing."""
    if line is not None:
        return {"startLine": line}
    return {"byteOffset": offset} if offset is not None else {}


def rule_help(heading: str, why: str, fix: str) -> dict[str, str]:
    """A rule's help as plain text and markdown: why it matters, then the fix (parts it has)."""
    text = " ".join(part for part in (why, f"Fix: {fix}" if fix else "") if part)
    markdown = "\n\n".join(part for part in (f"**{heading}**", why,
                                               f"**Fix:** {fix}" if fix else "") if part)
    return {"text": text or heading, "markdown": markdown}


def level(severity: Severity) -> str:
    """SARIF's three levels: high and critical are errors, medium a warning, the rest notes."""
    if severity >= Severity.HIGH:
        return "error"
    return "warning" if severity == Severity.MEDIUM else "note"


def log(rules: list[dict[str, Any]], results: list[dict[str, Any]],
        invocation: dict[str, Any], bases: dict[str, str]) -> dict[str, Any]:
    """One SARIF log with one run of auditor; `bases`: uriBaseId -> the folder it stands for."""
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "auditor", "version": __version__, "semanticVersion": __version__,
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": True, "properties": invocation}],
            "originalUriBaseIds": {k: {"uri": base_uri(v)} for k, v in bases.items()},
            "results": results,
        }],
    }
