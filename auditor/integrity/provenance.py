"""Upstream provenance: are these bytes the ones the publisher released at this commit?

Rules `AUD-PROV-*` and the comparison shared by every Hub-shaped source:
each scanned file's locally computed digests (sha256 and git blob id, from
the scan's single read pass) against what a listing claims — the Hub's
`lfs.sha256` / `blobId` for the pinned commit, or a cache's `trees/{commit}.json`
— plus the set of files itself (missing and extra files).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auditor.integrity.hashing import GIT_SHA1
from auditor.model import FileReport, Finding, Rule, Severity
from auditor.sources.local import _excluded

SHA256_MISMATCH = Rule(
    "AUD-PROV-001", Severity.CRITICAL, "File content differs from the publisher's (sha256)",
    "The Hub records the sha256 of every LFS file at each commit; different bytes under the "
    "same name were changed after publication (a tampering mirror, proxy or cache).",
    "Delete the cached copy and download again from the Hub pinned to the commit; find out who "
    "served the altered bytes.",
)
BLOB_MISMATCH = Rule(
    "AUD-PROV-002", Severity.CRITICAL, "File content differs from the publisher's (git blob id)",
    "Regular (non-LFS) files are identified by their git blob id; a different id means the "
    "config, code or card is not the one published at this commit.",
    "Delete the cached copy and download again from the Hub pinned to the commit.",
)
MISSING_FILE = Rule(
    "AUD-PROV-003", Severity.HIGH, "File published upstream is missing locally",
    "The listing for the commit names a file that is not present; the model that loads is not "
    "the one published, and the audit cannot vouch for the missing part.",
    "Download the model again; check that no filter or failed transfer dropped files.",
)
EXTRA_FILE = Rule(
    "AUD-PROV-004", Severity.CRITICAL, "File not published upstream at this commit",
    "A file the publisher never released sits in the model folder; loaders pick up extra "
    "code, weights or configs by name, so this is how a payload is slipped into a mirror.",
    "Remove the file, or obtain the model again from the publisher.",
)
UNPINNED = Rule(
    "AUD-PROV-005", Severity.LOW, "Revision is a branch or tag, not a commit",
    "A branch or tag can be moved to other bytes at any time; only a 40-hex commit pins what "
    "was audited to what will be deployed.",
    "Pin the model to the commit the audit resolved (shown as the revision).",
)
HUB_FLAGGED = Rule(
    "AUD-PROV-006", Severity.HIGH, "The Hub's own scanners flag this file",
    "The Hub scans uploads for malware and dangerous pickle imports; its verdict adds to ours "
    "(it never clears a finding of ours).",
    "Inspect the file and the Hub's scan report; do not load it until the flag is explained.",
)
BLOB_TAMPERED = Rule(
    "AUD-PROV-007", Severity.CRITICAL, "Cached file does not match the digest its blob is named by",
    "A Hugging Face cache names each blob by the digest the server announced; content that no "
    "longer matches its name was altered after download, or a lying server sent it.",
    "Delete the blob and its snapshot link and download again, pinned to the commit.",
)
NOT_FETCHED = Rule(
    "AUD-PROV-008", Severity.MEDIUM, "Not inspected in a remote-only audit",
    "A header-only audit reads headers, pickle members and small files; other content is "
    "listed with its upstream digest but not looked inside.",
    "Run the audit with --download to hash and scan every byte.",
)
UNVERIFIABLE = Rule(
    "AUD-PROV-009", Severity.MEDIUM, "Cached file cannot be checked against any digest",
    "The file is neither a link to a digest-named blob nor listed in the cache's tree "
    "listing, so nothing proves it is what was downloaded.",
    "Re-download the model into a standard cache (or with a tree listing) and scan again.",
)
LINEAGE_CYCLE = Rule(
    "AUD-PROV-010", Severity.LOW, "Model lineage forms a cycle",
    "base_model declarations that loop back cannot describe a real derivation; the declared "
    "pedigree is wrong and should not be trusted for policy decisions.",
    "Correct the base_model fields of the model cards involved.",
)
RULES = (
    SHA256_MISMATCH, BLOB_MISMATCH, MISSING_FILE, EXTRA_FILE, UNPINNED, HUB_FLAGGED,
    BLOB_TAMPERED, NOT_FETCHED, UNVERIFIABLE, LINEAGE_CYCLE,
)


@dataclass(frozen=True)
class Upstream:
    """What a listing claims for one file: size, git blob id, and sha256 for LFS files."""

    path: str
    size: int | None
    blob_id: str | None
    sha256: str | None = None

    def facts(self, match: bool | None, digest_source: str) -> dict[str, object]:
        return {"sha256": self.sha256, "blob_id": self.blob_id, "size": self.size,
                "match": match, "digest_source": digest_source}


def kept(listing: Mapping[str, Upstream], exclude: tuple[str, ...]) -> dict[str, Upstream]:
    """The listing without the files the user excluded (they are neither scanned nor missing)."""
    return {path: up for path, up in listing.items() if not _excluded(path, exclude)}


def compare(report: FileReport, up: Upstream, origin: str) -> tuple[bool | None, list[Finding]]:
    """Match the local digests against the claimed ones; None when nothing could be compared."""
    sha256 = report.digests.get("sha256")
    blob = report.digests.get(GIT_SHA1)
    if up.sha256 and sha256:
        if sha256 == up.sha256:
            return True, []
        return False, [SHA256_MISMATCH.finding(
            report.path, f"{origin} lists sha256 {up.sha256} ({up.size} bytes); the file has "
            f"{sha256} ({report.size} bytes)")]
    if up.blob_id and blob:
        if blob == up.blob_id:
            return True, []
        return False, [BLOB_MISMATCH.finding(
            report.path, f"{origin} lists git blob {up.blob_id} ({up.size} bytes); the file has "
            f"{blob} ({report.size} bytes)")]
    return None, []


def verify_files(
    reports: Iterable[FileReport], listing: Mapping[str, Upstream], origin: str
) -> tuple[list[FileReport], list[Finding]]:
    """Each report gains `facts["upstream"]` and any mismatch finding; missing files are returned.

    The git blob id is a verification aid, not an artifact digest: it is
    dropped from `digests` once compared.
    """
    out: list[FileReport] = []
    seen: set[str] = set()
    for report in reports:
        seen.add(report.path)
        up = listing.get(report.path)
        findings = list(report.findings)
        facts = dict(report.facts)
        if up is None:
            findings.append(EXTRA_FILE.finding(report.path, f"{report.path} is not in {origin}"))
            facts["upstream"] = {"sha256": None, "blob_id": None, "size": None, "match": False,
                                 "digest_source": "local"}
        else:
            match, mismatches = compare(report, up, origin)
            findings += mismatches
            facts["upstream"] = up.facts(match, "local")
        digests = {k: v for k, v in report.digests.items() if k != GIT_SHA1}
        out.append(dataclasses.replace(report, findings=tuple(findings), facts=facts,
                                       digests=digests))
    missing = [
        MISSING_FILE.finding(path, f"{origin} lists {path} ({listing[path].size} bytes); "
                             "it is not present")
        for path in sorted(set(listing) - seen)
    ]
    return out, missing
