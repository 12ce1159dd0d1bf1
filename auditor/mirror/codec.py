"""File reports to JSON and back: what the state stores per scanned content.

A report is always decoded from this JSON before use, whether it was just
scanned or came from the state, so a model assembled from cached files and
one assembled from fresh scans are the same objects and give the same SBOM
bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from auditor.model import Coverage, FileReport, Finding, FormatId, Location, ModelReport, Severity


def finding_to_json(f: Finding) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity.label, "file": f.file, "title": f.title,
            "detail": f.detail, "member": f.location.member, "offset": f.location.offset}


def finding_from_json(d: dict[str, Any]) -> Finding:
    return Finding(rule=d["rule"], severity=Severity.parse(d["severity"]), file=d["file"],
                   title=d["title"], detail=d["detail"],
                   location=Location(member=d["member"], offset=d["offset"]))


def file_to_json(r: FileReport) -> dict[str, Any]:
    return {"path": r.path, "size": r.size, "digests": r.digests, "format": r.format,
            "coverage": r.coverage.value, "findings": [finding_to_json(f) for f in r.findings],
            "facts": r.facts}


def file_from_json(d: dict[str, Any]) -> FileReport:
    return FileReport(path=d["path"], size=d["size"], digests=d["digests"],
                      format=FormatId(d["format"]), coverage=Coverage(d["coverage"]),
                      findings=tuple(finding_from_json(f) for f in d["findings"]),
                      facts=d["facts"])


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces (stable bytes for storage and fingerprints)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def model_fingerprint(model: ModelReport, scan_key: str) -> str:
    """A digest of everything the model's SBOM is built from: same fingerprint, same SBOM."""
    doc = {"name": model.name, "root": model.root, "source": model.source,
           "revision": model.revision, "facts": model.facts, "scan": scan_key,
           "findings": [finding_to_json(f) for f in model.findings],
           "files": [file_to_json(f) for f in model.files]}
    return hashlib.sha256(dumps(doc).encode()).hexdigest()


def finding_key(f: Finding) -> str:
    """What makes a finding the same one from run to run (offsets and wording may move)."""
    return f"{f.rule}|{f.severity.label}|{f.file}|{f.location.member or ''}"
