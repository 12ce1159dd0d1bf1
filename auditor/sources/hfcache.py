"""Hugging Face caches and mirrors on disk, verified fully offline.

Layout (`HF_HUB_CACHE`): `models--{org}--{name}/blobs/{digest}`,
`snapshots/{commit}/{path}` (links into blobs), `refs/{revision}` (a commit),
and `trees/{commit}.json` (the listing the server gave at download). Each
snapshot file is scanned once, computing sha256 and the git blob id in the
same pass, then checked against the tree listing (missing, extra, changed
files) and against the digest its blob is named by. This proves the cache is
unchanged since download and consistent with the server it came from — not
that the server was honest; `hf://` scans compare with the Hub itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from auditor.errors import UsageError
from auditor.integrity.hashing import GIT_SHA1
from auditor.integrity.model_signature import check_model_signature
from auditor.model import FileReport, Finding, ModelReport, ScanResult
from auditor.scan.context import ScanOptions
from auditor.scan.engine import RULES_VERSION, NoProgress, Progress, scan_entries
from auditor.scan.modelfacts import model_facts
from auditor.sources import lineage
from auditor.sources.hubclient import is_commit
from auditor.sources.local import list_files
from auditor.sources.provenance import (
    BLOB_TAMPERED,
    UNPINNED,
    UNVERIFIABLE,
    Upstream,
    compare,
    kept,
    verify_files,
)

REPO_PREFIX = "models--"


def repo_folder(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / (REPO_PREFIX + repo_id.replace("/", "--"))


def repo_id_of(folder: Path) -> str:
    return folder.name.removeprefix(REPO_PREFIX).replace("--", "/", 1)


def _is_repo_folder(path: Path) -> bool:
    return path.name.startswith(REPO_PREFIX) and (path / "snapshots").is_dir()


def cache_kind(path: Path) -> str | None:
    """`snapshot`, `repo` or `root` when `path` is part of an HF cache, else None."""
    if not path.is_dir():
        return None
    if path.parent.name == "snapshots" and _is_repo_folder(path.parent.parent):
        return "snapshot"
    if _is_repo_folder(path):
        return "repo"
    if any(_is_repo_folder(p) for p in path.iterdir() if p.is_dir()):
        return "root"
    return None


def resolve_ref(folder: Path, revision: str) -> str | None:
    """The commit a revision names in this cache (a commit names itself if its snapshot exists)."""
    if is_commit(revision) and (folder / "snapshots" / revision).is_dir():
        return revision
    ref = folder / "refs" / revision
    try:
        commit = ref.read_text().strip()
    except OSError:
        return None
    return commit if is_commit(commit) else None


def refs_to(folder: Path, commit: str) -> list[str]:
    refs = folder / "refs"
    out = []
    for dirpath, _, names in os.walk(refs):
        for name in names:
            path = Path(dirpath) / name
            try:
                if path.read_text().strip() == commit:
                    out.append(path.relative_to(refs).as_posix())
            except OSError:
                continue
    return sorted(out)


def tree_listing(folder: Path, commit: str) -> dict[str, Upstream] | None:
    """`trees/{commit}.json` as upstream claims; None when absent or unreadable."""
    try:
        doc = json.loads((folder / "trees" / f"{commit}.json").read_text())
        files = doc["files"]
        return {
            path: Upstream(path, info.get("size"), info.get("blob_id"), info.get("lfs_sha256"))
            for path, info in files.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def blob_claims(snapshot: Path, entries: list[tuple[str, Path]]) -> dict[str, Upstream]:
    """What each snapshot link's blob name claims: sha256 (64 hex) or git blob id (40 hex)."""
    claims: dict[str, Upstream] = {}
    for rel, link in entries:
        if not link.is_symlink():
            continue
        name = Path(os.readlink(link)).name
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            claims[rel] = Upstream(rel, None, None, name)
        elif is_commit(name):
            claims[rel] = Upstream(rel, None, name, None)
    return claims


def scan_snapshot(
    snapshot: Path,
    options: ScanOptions,
    progress: Progress,
    listing: Mapping[str, Upstream] | None,
    origin: str,
    check_blob_names: bool,
) -> tuple[list[FileReport], list[Finding], int]:
    """Scan a snapshot folder, verifying each file against `listing` and its blob name.

    The git blob id costs as much as sha256 to compute, so it is computed
    (in the same pass) only for files whose claimed digest is a blob id.
    """
    found = list_files(snapshot, options.exclude)
    claims = blob_claims(snapshot, [(e.relpath, snapshot / e.relpath) for e in found.entries])
    if not (check_blob_names or listing is None):
        claims = {}
    hashing = dataclasses.replace(options, git_blob_paths=frozenset(
        e.relpath for e in found.entries if needs_blob_id(e.relpath, listing, claims)))
    files, read = scan_entries(found.entries, hashing, progress)  # one pass: cross-file checks
    files, missing = verify_snapshot(files, claims, listing, origin, options.exclude,
                                     check_blob_names)
    return files, [*found.findings, *missing], read


def needs_blob_id(
    rel: str, listing: Mapping[str, Upstream] | None, claims: Mapping[str, Upstream]
) -> bool:
    """Whether the file's claimed digest is a git blob id (hashed only where it is needed)."""
    up = listing.get(rel) if listing is not None else None
    claim = claims.get(rel)
    return (up is not None and not up.sha256) or (claim is not None and bool(claim.blob_id))


def verify_snapshot(
    files: list[FileReport], claims: Mapping[str, Upstream],
    listing: Mapping[str, Upstream] | None, origin: str, exclude: tuple[str, ...],
    check_blob_names: bool,
) -> tuple[list[FileReport], list[Finding]]:
    """Scanned files checked against their blob names and `listing`; plus missing files."""
    if check_blob_names:
        files = [_check_blob(r, claims.get(r.path), listing) for r in files]
    if listing is not None:
        return verify_files(files, kept(listing, exclude), origin)
    return [_blob_facts(r, claims.get(r.path)) for r in files], []


def _check_blob(
    report: FileReport, claim: Upstream | None, listing: Mapping[str, Upstream] | None
) -> FileReport:
    if claim is None:
        if listing is None or report.path not in listing:
            finding = UNVERIFIABLE.finding(report.path, "not a link to a digest-named blob and "
                                           "not in the tree listing")
            return dataclasses.replace(report, findings=(*report.findings, finding))
        return report
    match, _ = compare(report, claim, "its blob name")
    listed = listing.get(report.path) if listing is not None else None
    caught_by_listing = listed is not None and compare(report, listed, "")[0] is False
    if match is False and not caught_by_listing:
        local = report.digests.get("sha256") if claim.sha256 else report.digests.get(GIT_SHA1)
        finding = BLOB_TAMPERED.finding(
            report.path, f"blob named {claim.sha256 or claim.blob_id} holds content with "
            f"{'sha256' if claim.sha256 else 'git blob id'} {local}")
        return dataclasses.replace(report, findings=(*report.findings, finding))
    return report


def _blob_facts(report: FileReport, claim: Upstream | None) -> FileReport:
    facts = dict(report.facts)
    if claim is not None:
        facts["upstream"] = claim.facts(compare(report, claim, "")[0], "local")
    digests = {k: v for k, v in report.digests.items() if k != GIT_SHA1}
    return dataclasses.replace(report, facts=facts, digests=digests)


def snapshot_model(
    folder: Path, commit: str, requested: str | None, options: ScanOptions, progress: Progress
) -> tuple[ModelReport, int]:
    """One cached snapshot as a model report (source `hf-cache`)."""
    snapshot = folder / "snapshots" / commit
    listing = tree_listing(folder, commit)
    files, findings, read = scan_snapshot(
        snapshot, options, progress, listing, f"trees/{commit}.json", check_blob_names=True)
    return snapshot_report(folder, commit, requested, files, findings, listing, options), read


def snapshot_report(
    folder: Path, commit: str, requested: str | None, files: list[FileReport],
    findings: list[Finding], listing: Mapping[str, Upstream] | None, options: ScanOptions,
) -> ModelReport:
    """A scanned snapshot's model report: hub facts, lineage, signature (the mirror reuses it)."""
    snapshot = folder / "snapshots" / commit
    repo_id = repo_id_of(folder)
    if requested is not None and not is_commit(requested):
        findings.append(UNPINNED.finding("", f"{requested!r} resolved to commit {commit} "
                                         "in the local cache"))
    facts = model_facts(files)
    facts["hub"] = {"sha": commit, "requested_revision": requested,
                    "pinned": requested is None or is_commit(requested),
                    "refs": refs_to(folder, commit), "tree_listing": listing is not None}
    facts["lineage"] = lineage.declared(facts.get("card"))
    facts["signature"], sig_findings = check_model_signature(
        snapshot, files, options.signature, options.trust)  # type: ignore[arg-type]
    return ModelReport(
        name=repo_id, root=str(snapshot), source="hf-cache", files=tuple(files),
        findings=tuple(findings + sig_findings), facts=facts, revision=commit,
    )


def scan_cache_path(path: Path, options: ScanOptions, progress: Progress | None = None
                    ) -> ScanResult:
    """A cache root (every model), a `models--org--name` folder, or one snapshot folder."""
    started = time.monotonic()
    kind = cache_kind(path)
    if kind == "snapshot":
        targets = [(path.parent.parent, path.name)]
    else:
        folders = [path] if kind == "repo" else sorted(
            p for p in path.iterdir() if p.is_dir() and _is_repo_folder(p))
        targets = [(f, s.name) for f in folders
                   for s in sorted((f / "snapshots").iterdir()) if s.is_dir()]
    if not targets:
        raise UsageError(f"{path}: Hugging Face cache without any snapshot to scan")
    return _result(str(path), targets, None, options, progress or NoProgress(), started)


def scan_cache_ref(
    repo_id: str, revision: str, cache_dir: Path, options: ScanOptions,
    progress: Progress | None = None, target: str | None = None,
) -> ScanResult:
    """`hf-cache://org/name@rev` (and `hf://` in offline mode): one snapshot, no network."""
    started = time.monotonic()
    folder = repo_folder(cache_dir, repo_id)
    commit = resolve_ref(folder, revision) if folder.is_dir() else None
    if commit is None or not (folder / "snapshots" / commit).is_dir():
        raise UsageError(f"{repo_id}@{revision}: not in the Hugging Face cache at {cache_dir} "
                         "(download it first, or scan hf://… without --offline)")
    return _result(target or f"hf-cache://{repo_id}@{revision}", [(folder, commit)], revision,
                   options, progress or NoProgress(), started)


def _result(
    target: str, snapshots: list[tuple[Path, str]], requested: str | None,
    options: ScanOptions, progress: Progress, started: float,
) -> ScanResult:
    models: list[ModelReport] = []
    total = 0
    for folder, commit in snapshots:
        model, read = snapshot_model(folder, commit, requested, options, progress)
        models.append(model)
        total += read
    return ScanResult(target=target, models=tuple(models), bytes_read=total,
                      elapsed_s=time.monotonic() - started, rules_version=RULES_VERSION)
