"""Upstream provenance: are these bytes the ones the publisher released at this commit?

Rules `AUD-PROV-*` and the verifiers shared by every Hub-shaped source: each
scanned file's locally computed digests (sha256 and git blob id, from the
scan's single read pass) against what a source claims — the Hub's
`lfs.sha256` / `blobId` for the pinned commit, a cache's `trees/{commit}.json`,
the digest a cache blob is named by — plus the set of files itself (missing
and extra files), and the Hub's own scanners as corroboration. Sources only
state claims; the comparison is made here, after the scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.integrity.hashing import GIT_SHA1
from auditor.model import FileReport, Finding, Grade, Rule, Severity

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
    "AUD-PROV-007", Severity.CRITICAL,
    "Downloaded file does not match the digest its download recorded",
    "A Hugging Face cache names each blob by the digest the server announced, and a "
    "`--local-dir` download records it in .cache/huggingface/download; content that no longer "
    "matches was altered after download, or a lying server sent it.",
    "Delete the file (the blob and its snapshot link) and download again, pinned to the commit.",
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

    def facts(self, match: bool | None, digest_source: str, grade: Grade) -> dict[str, object]:
        """`FileReport.facts["upstream"]`: the claim, whether the bytes matched it (None: not
        compared), whether auditor computed the compared digest (`local`) or only has the
        claim (`upstream-reported`), and the grade of the record that made the claim."""
        return {"sha256": self.sha256, "blob_id": self.blob_id, "size": self.size,
                "match": match, "digest_source": digest_source, "grade": grade.value}


@dataclass(frozen=True)
class Record:
    """Digests one record claims for files: a listing, blob names, a download record.

    `origin` names the record in messages (`trees/<commit>.json`, `the Hub's
    listing for <commit>`); `grade` is who could have forged it: a cache's or
    download tool's record is `recorded`, the Hub's answer this run
    `hub-verified`.
    """

    files: Mapping[str, Upstream]
    origin: str
    grade: Grade


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
    reports: Iterable[FileReport], listing: Record
) -> tuple[list[FileReport], list[Finding]]:
    """Each report gains `facts["upstream"]` and any mismatch finding; missing files are returned.

    The git blob id is a verification aid, not an artifact digest: it is
    dropped from `digests` once compared.
    """
    out: list[FileReport] = []
    seen: set[str] = set()
    for report in reports:
        seen.add(report.path)
        up = listing.files.get(report.path)
        if up is not None:
            out.append(verify_fetched(report, up, listing))
            continue
        extra = EXTRA_FILE.finding(report.path, f"{report.path} is not in {listing.origin}")
        unlisted = Upstream(report.path, None, None).facts(False, "local", listing.grade)
        out.append(dataclasses.replace(
            report, findings=(*report.findings, extra),
            facts={**report.facts, "upstream": unlisted},
            digests={k: v for k, v in report.digests.items() if k != GIT_SHA1}))
    missing = [
        MISSING_FILE.finding(path, f"{listing.origin} lists {path} ({listing.files[path].size} "
                             "bytes); it is not present")
        for path in sorted(set(listing.files) - seen)
    ]
    return out, missing


def needs_blob_id(rel: str, listing: Record | None, records: Record | None) -> bool:
    """Whether the file's claimed digest is a git blob id (hashed only where it is needed)."""
    up = listing.files.get(rel) if listing is not None else None
    claim = records.files.get(rel) if records is not None else None
    return (up is not None and not up.sha256) or (claim is not None and bool(claim.blob_id))


def verify_snapshot(
    files: list[FileReport], listing: Record | None, records: Record | None,
    every_file_recorded: bool,
) -> tuple[list[FileReport], list[Finding]]:
    """Scanned files checked against per-file records and a listing; plus missing files.

    `records` are digests recorded beside each file (a cache's blob names, the
    download record of a `--local-dir` folder); `every_file_recorded`: a file
    with neither a record nor a listing entry is unverifiable (a cache, where
    every snapshot entry links to a digest-named blob). `listing` is already
    without the files the user excluded.
    """
    if records is not None:
        files = [_check_record(r, records, listing, every_file_recorded) for r in files]
    if listing is not None:
        return verify_files(files, listing)
    if records is None:
        return files, []
    return [_record_facts(r, records) for r in files], []


def _check_record(
    report: FileReport, records: Record, listing: Record | None, every_file_recorded: bool
) -> FileReport:
    claim = records.files.get(report.path)
    listed = listing.files.get(report.path) if listing is not None else None
    if claim is None:
        if every_file_recorded and listed is None:
            finding = UNVERIFIABLE.finding(report.path, "not a link to a digest-named blob and "
                                           "not in the tree listing")
            return dataclasses.replace(report, findings=(*report.findings, finding))
        return report
    match, _ = compare(report, claim, "")
    caught_by_listing = listed is not None and compare(report, listed, "")[0] is False
    if match is False and not caught_by_listing:
        local = report.digests.get("sha256") if claim.sha256 else report.digests.get(GIT_SHA1)
        finding = BLOB_TAMPERED.finding(
            report.path, f"{records.origin} names {claim.sha256 or claim.blob_id}; the content "
            f"has {'sha256' if claim.sha256 else 'git blob id'} {local}")
        return dataclasses.replace(report, findings=(*report.findings, finding))
    return report


def _record_facts(report: FileReport, records: Record) -> FileReport:
    facts = dict(report.facts)
    claim = records.files.get(report.path)
    if claim is not None:
        facts["upstream"] = claim.facts(compare(report, claim, "")[0], "local", records.grade)
    digests = {k: v for k, v in report.digests.items() if k != GIT_SHA1}
    return dataclasses.replace(report, facts=facts, digests=digests)


def verify_fetched(report: FileReport, up: Upstream, listing: Record) -> FileReport:
    """A file hashed here (read from disk or fetched whole), checked against upstream's claim
    for it; the git blob id, a verification aid, is dropped from `digests` once compared."""
    match, mismatches = compare(report, up, listing.origin)
    return dataclasses.replace(
        report, findings=(*report.findings, *mismatches),
        facts={**report.facts, "upstream": up.facts(match, "local", listing.grade)},
        digests={k: v for k, v in report.digests.items() if k != GIT_SHA1})


def upstream_reported(report: FileReport, up: Upstream, grade: Grade) -> FileReport:
    """A file parsed in place but not hashed: upstream's digest is a claim, never a digest of
    ours, so it stays out of `digests` (and the SBOM's `hashes`)."""
    return dataclasses.replace(
        report, facts={**report.facts, "upstream": up.facts(None, "upstream-reported", grade)})


def proven_grade(upstream: Mapping[str, Any] | None, signed: bool) -> Grade | None:
    """How strongly a file's bytes are proven the publisher's: `signed` when a verified
    signature covers them, else the grade of the record their computed digest matched;
    None when nothing proves them (no record, a mismatch, or only a claimed digest)."""
    if signed:
        return Grade.SIGNED
    computed = upstream and upstream.get("digest_source") == "local"
    if not computed or upstream.get("match") is not True:  # type: ignore[union-attr]
        return None
    try:
        return Grade(upstream.get("grade"))
    except ValueError:
        return None


def weakest(grades: Iterable[Grade | None]) -> Grade | None:
    """The grade every one of `grades` reaches (None if any is None, or there are none)."""
    out: Grade | None = None
    for grade in grades:
        if grade is None:
            return None
        out = grade if out is None or grade.rank < out.rank else out
    return out


def unpinned(requested: str, commit: str, where: str = "", pinned_by: str = "commit"
             ) -> Finding:
    """A branch or tag was asked for: the audit holds for `commit` only (`pinned_by`: what
    names it, a Hub commit or an OCI manifest digest)."""
    return UNPINNED.finding("", f"{requested!r} resolved to {pinned_by} {commit}{where}")


# The Hub's scan levels and statuses -> the severity of our corroborating finding.
HUB_LEVELS: dict[str, Severity] = {
    "unsafe": Severity.HIGH,
    "dangerous": Severity.HIGH,
    "infected": Severity.CRITICAL,
    "caution": Severity.MEDIUM,
    "suspicious": Severity.MEDIUM,
}


def hub_scanner_findings(
    repo_status: Mapping[str, Any] | None, file_status: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[Finding]]:
    """Corroborating findings from the Hub's own scanners, by file (never clearing ours)."""
    out: dict[str, list[Finding]] = {}
    levels: dict[str, list[str]] = {}
    for issue in (repo_status or {}).get("filesWithIssues") or []:
        if isinstance(issue, dict) and isinstance(issue.get("path"), str):
            levels.setdefault(issue["path"], []).append(str(issue.get("level", "")))
    for path, status in file_status.items():
        levels.setdefault(path, []).append(str(status.get("status", "")))
        pickles = status.get("pickle_import_scan") or {}
        if isinstance(pickles, dict):
            levels[path].append(str(pickles.get("highestSafetyLevel", "")))
        av = status.get("av_scan") or {}
        if isinstance(av, dict) and av.get("virusFound"):
            levels[path].append("infected")
    for path, said in sorted(levels.items()):
        graded = [s.lower() for s in said if s.lower() in HUB_LEVELS]
        if graded:
            worst = max(graded, key=lambda s: HUB_LEVELS[s])
            out.setdefault(path, []).append(HUB_FLAGGED.finding(
                path, f"the Hub's scanners report: {', '.join(sorted(set(graded)))}",
                severity=HUB_LEVELS[worst]))
    return out
