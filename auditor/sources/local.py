"""Files and folders on disk: what the scan will read, and what it refuses to follow.

A symlink is followed only when it stays inside the scanned root, or when it
is a Hugging Face cache snapshot entry pointing into its own repository's
`blobs/` (the cache's normal layout). Anything else that leaves the root is a
finding and is not read: a model folder must not make the scanner (or the
loader) read `/etc/shadow` or another model's files.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from auditor.errors import UsageError
from auditor.integrity.cachelinks import inside, is_cache_blob_link
from auditor.integrity.evidence import Claim, repo_id_from_url
from auditor.integrity.provenance import Record, Upstream
from auditor.model import Artifact, Finding, Grade, LineageEdge, Rule, Severity
from auditor.sources.contract import (
    Claims,
    Excluded,
    Identity,
    Lineage,
    Listing,
    OnDisk,
    identity_from,
)

SYMLINK_ESCAPE = Rule(
    "AUD-SRC-001", Severity.HIGH, "Symlink points outside the model folder (not followed)",
    "A loader follows the link and reads whatever it points at: another model's weights, or "
    "files of the host. The scanner does not follow it, so that content is unaudited.",
    "Replace the link with the file it should contain, or remove it.",
)
SPECIAL_FILE = Rule(
    "AUD-SRC-002", Severity.HIGH, "Not a regular file (FIFO, socket or device)",
    "Special files block or feed endless data to whoever opens them; they have no place in a "
    "model folder and are not read.",
    "Remove the special file from the model folder.",
)
BROKEN_LINK = Rule(
    "AUD-SRC-003", Severity.MEDIUM, "Broken symlink",
    "A dangling link is an incomplete download or a link whose target was removed; the loader "
    "will fail or read something else if the target reappears.",
    "Fetch the missing target again or remove the link.",
)
UNLISTABLE = Rule(
    "AUD-SRC-004", Severity.HIGH, "Folder could not be listed (its files were not scanned)",
    "Files the scanner cannot see are unaudited, yet a loader with other permissions, or "
    "after the storage recovers, may still read them.",
    "Fix the folder's permissions or the storage, then rerun the scan.",
)
MIXED_COMMITS = Rule(
    "AUD-SRC-005", Severity.MEDIUM, "Files downloaded at different commits",
    "The folder's download record shows files fetched from several commits of the repository "
    "(downloads at different times): together they are no snapshot the publisher released, "
    "so the folder has no one revision and is not pinned.",
    "Download the whole model again at one commit (hf download REPO --revision COMMIT "
    "--local-dir DIR).",
)
RULES = (SYMLINK_ESCAPE, SPECIAL_FILE, BROKEN_LINK, UNLISTABLE, MIXED_COMMITS)

SKIPPED_DIRS = frozenset({".git"})
MAX_SIBLINGS = 10_000  # files beside a single-file target listed as its context
# `huggingface_hub` downloads into a --local-dir record each file's commit and etag here;
# the record is read as claims, never as part of the model.
DOWNLOAD_RECORD = ".cache/huggingface/download"
RECORD_FILES = (".cache/huggingface/.gitignore", ".cache/huggingface/CACHEDIR.TAG")
# newer huggingface_hub (2.4 here) also keeps the commit's tree listing there (trees/<commit>.json).
TREE_RECORD = ".cache/huggingface/trees/"
MAX_RECORDS = 100_000
MAX_GIT_CONFIG = 64 * 1024
T = TypeVar("T")


def excluded_by(relpath: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern that excludes `relpath` (matched against the path or its last
    segment), or None when the file is kept."""
    base = relpath.rsplit("/", 1)[-1]
    return next((p for p in patterns
                 if fnmatch.fnmatchcase(relpath, p) or fnmatch.fnmatchcase(base, p)), None)


def kept(listing: Mapping[str, T], exclude: tuple[str, ...]) -> dict[str, T]:
    """A listing without the files the user excluded (they are neither scanned nor missing)."""
    return {path: v for path, v in listing.items() if excluded_by(path, exclude) is None}


def excluded(paths: Iterable[str], exclude: tuple[str, ...]) -> tuple[Excluded, ...]:
    """Each of `paths` an exclude pattern leaves out, with that pattern (for the report)."""
    out = []
    for path in paths:
        pattern = excluded_by(path, exclude)
        if pattern is not None:
            out.append(Excluded(path, pattern))
    return tuple(out)


def list_files(target: Path, exclude: tuple[str, ...] = ()) -> Listing:
    """Walk a file or folder; raise UsageError when there is nothing there."""
    if not target.exists() and not target.is_symlink():
        raise UsageError(f"{target}: no such file or folder")
    unlisted: list[OSError] = []  # folders os.walk could not read: findings, not silence
    single = not target.is_dir()  # a file, a link to one, or a FIFO/device named directly
    if single:
        root = target.parent.resolve()
        candidates = [target]
    else:
        root = target.resolve()
        candidates = []
        for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted.append):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            here = Path(dirpath)
            for d in dirnames:
                if (here / d).is_symlink():
                    candidates.append(here / d)
            candidates.extend(here / f for f in sorted(filenames))
    entries: list[Artifact] = []
    findings: list[Finding] = []
    left_out: list[Excluded] = []
    for path in candidates:
        rel = path.name if single else path.relative_to(root).as_posix()
        if not single and _is_download_record(rel):
            continue
        pattern = excluded_by(rel, exclude)
        if pattern is not None:
            left_out.append(Excluded(rel, pattern))
            continue
        entry, finding = _classify(path, rel, root)
        if entry is not None:
            entries.append(entry)
        if finding is not None:
            findings.append(finding)
    for exc in unlisted:
        rel = Path(os.path.relpath(exc.filename or root, root)).as_posix()
        findings.append(UNLISTABLE.finding(rel, f"{rel}: {exc.strerror or exc}"))
    entries.sort(key=lambda e: e.relpath)
    context = _siblings(target, root, exclude) if single else ()
    return Listing(root=root, entries=tuple(entries), findings=tuple(findings), context=context,
                   excluded=tuple(sorted(left_out, key=lambda e: e.path)))


def _is_download_record(rel: str) -> bool:
    """The files `huggingface_hub` keeps about a --local-dir download (not model files)."""
    if rel in RECORD_FILES:
        return True
    if rel.startswith(TREE_RECORD) and rel.endswith(".json"):
        return _is_commit(rel.removeprefix(TREE_RECORD).removesuffix(".json"))
    return rel.startswith(DOWNLOAD_RECORD + "/") and rel.endswith((".metadata", ".lock"))


def _siblings(target: Path, root: Path, exclude: tuple[str, ...]) -> tuple[Artifact, ...]:
    """The regular files beside a single-file target (the rest of its model, if any).

    A part of a model (one shard, an ONNX external-data file, a .onnx whose
    data sits beside it) is judged with the files that can claim it; they
    are context for the cross-file checks, never scanned as part of the
    target. Links that leave the folder and special files are left out, as
    they would be from a folder scan.
    """
    try:
        names = sorted(p for p in os.listdir(root) if p != target.name)
    except OSError:
        return ()
    context = []
    for name in names[:MAX_SIBLINGS]:
        if excluded_by(name, exclude) is not None:
            continue
        entry, finding = _classify(root / name, name, root)
        if entry is not None and entry.problem is None and finding is None:
            context.append(entry)
    return tuple(context)


def _classify(path: Path, rel: str, root: Path) -> tuple[Artifact | None, Finding | None]:
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if not (inside(target, root) or is_cache_blob_link(path)):
            return None, SYMLINK_ESCAPE.finding(rel, f"{rel} -> {os.readlink(path)}")
        if not target.exists():
            return None, BROKEN_LINK.finding(rel, f"{rel} -> {os.readlink(path)}")
        if target.is_dir():
            return None, None  # scanned where it really lives, inside the root
        path = target
    try:
        st = path.stat()
    except OSError:  # the engine opens it and reports the error as AUD-SCAN-006
        return Artifact(rel, path, 0), None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "FIFO" if stat.S_ISFIFO(st.st_mode)
            else "socket" if stat.S_ISSOCK(st.st_mode)
            else "device"
        )
        return Artifact(rel, path, 0, problem=SPECIAL_FILE.finding(rel, f"{rel} is a {kind}")), None
    return Artifact(rel, path, st.st_size), None


def _place_claims(target: Path, root: Path) -> list[Claim]:
    """Name and revision from where the folder sits: inside a Hugging Face cache snapshot
    (`models--org--name/snapshots/<commit>`) the cache layout records both."""
    for parent in (root, *root.parents):
        if parent.parent.name == "snapshots" and parent.parent.parent.name.startswith("models--"):
            repo = parent.parent.parent.name.removeprefix("models--").replace("--", "/", 1)
            return [Claim("name", repo, Grade.RECORDED, "the cache layout (models--org--name)"),
                    Claim("revision", parent.name, Grade.RECORDED,
                          "the cache layout (snapshots/<commit>)")]
    return []


def _own_git(root: Path) -> Path | None:
    """The folder's own `.git` directory; a link (to another checkout) is not its record."""
    git = root / ".git"
    return git if git.is_dir() and not git.is_symlink() else None


def _git_remote(root: Path) -> str | None:
    """The repository `origin` points at, read from `.git/config` (git itself is never run)."""
    if _own_git(root) is None:
        return None
    try:
        with open(root / ".git" / "config", "rb") as f:
            text = f.read(MAX_GIT_CONFIG).decode("utf-8", "replace")
    except OSError:
        return None
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]").replace('"', "").strip()
        elif section == "remote origin" and line.partition("=")[0].strip() == "url":
            return repo_id_from_url(line.partition("=")[2].strip())
    return None


def download_record(root: Path) -> tuple[Record | None, list[str]]:
    """A --local-dir download's record: each file's recorded etag (sha256 for LFS files, git
    blob id otherwise) as claims, and the commits the files were downloaded at."""
    base = root / DOWNLOAD_RECORD
    if not base.is_dir():
        return None, []
    files: dict[str, Upstream] = {}
    commits: list[str] = []
    for dirpath, _, names in os.walk(base):
        for name in sorted(names):
            if not name.endswith(".metadata") or len(files) >= MAX_RECORDS:
                continue
            meta = Path(dirpath) / name
            if meta.is_symlink():  # a record is a file the download tool wrote, here
                continue
            rel = meta.relative_to(base).as_posix().removesuffix(".metadata")
            try:
                with open(meta, "rb") as f:
                    lines = f.read(1024).decode("ascii", "replace").splitlines()
            except OSError:
                continue
            commit, etag = [*lines, "", ""][:2]
            etag = etag.strip().strip('"').lower()
            if _is_commit(commit.strip()) and commit.strip().lower() not in commits:
                commits.append(commit.strip().lower())
            if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag):
                files[rel] = Upstream(rel, None, None, etag)
            elif _is_commit(etag):
                files[rel] = Upstream(rel, None, etag)
    record = Record(files, f"the download record ({DOWNLOAD_RECORD})", Grade.RECORDED)
    return (record if files else None), commits


def _git_commit(root: Path) -> str | None:
    """The checked-out commit, read from `.git` files (git itself is never run)."""
    git = _own_git(root)
    if git is None:
        return None
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head.lower() if _is_commit(head) else None
        ref = head[5:]
        loose = git / ref
        if loose.is_file():
            commit = loose.read_text().strip()
            return commit.lower() if _is_commit(commit) else None
        for line in (git / "packed-refs").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref and _is_commit(parts[0]):
                return parts[0].lower()
    except OSError:
        return None
    return None


def _is_commit(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass(frozen=True)
class LocalFolder:
    """A file or folder on disk as a source; its name and revision from the best record there.

    Records, strongest first: a cache layout around it, a git checkout's
    `origin` remote and HEAD, a --local-dir download record
    (`.cache/huggingface/download`), the mirror's `org/name` tree (all
    `recorded`); then what the operator or a folder tree says (`--name`,
    `--revision`, the folder's own name: `declared`). `allow_empty`: a folder
    with nothing to scan is a model without files (a mirror's model folder may
    be emptied), not a usage error.
    """

    target: Path
    revision: str | None = None
    name: str | None = None
    allow_empty: bool = False
    # Who gave `name`: "--name" (the operator, declared), "folder tree" (a model folder found
    # inside a scanned parent folder, declared), "mirror tree" (the mirror's org/name layout,
    # recorded).
    named_by: str = "--name"

    @cached_property
    def _root(self) -> Path:
        return self.target.resolve() if self.target.is_dir() else self.target.parent.resolve()

    @cached_property
    def _record(self) -> tuple[Record | None, list[str]]:
        return download_record(self._root) if self.target.is_dir() else (None, [])

    @cached_property
    def identity(self) -> Identity:
        root = self._root
        claims = _place_claims(self.target, root)
        remote = _git_remote(root)
        if remote:
            claims.append(Claim("name", remote, Grade.RECORDED, "git remote origin"))
        if self.name:
            grade = Grade.RECORDED if self.named_by == "mirror tree" else Grade.DECLARED
            claims.append(Claim("name", self.name, grade, self.named_by))
        head = _git_commit(root)
        if head:
            claims.append(Claim("revision", head, Grade.RECORDED, "git HEAD"))
        commits = self._record[1]
        if len(commits) == 1:  # files fetched at several commits are no one snapshot
            claims.append(Claim("revision", commits[0], Grade.RECORDED,
                                f"the download record ({DOWNLOAD_RECORD})"))
        if self.revision:
            claims.append(Claim("revision", self.revision, Grade.DECLARED, "--revision"))
        single = self.target.is_file()
        own = self.target.name if single else root.name
        claims.append(Claim("name", own, Grade.DECLARED,
                            "the file name" if single else "the folder name"))
        return identity_from(tuple(claims), "local", own)

    def claims(self) -> Claims:
        return Claims(records=self._record[0])

    def artifacts(self, exclude: tuple[str, ...]) -> OnDisk:
        listing = list_files(self.target, exclude)
        commits = self._record[1]
        if len(commits) > 1:
            mixed = MIXED_COMMITS.finding("", f"{DOWNLOAD_RECORD} records {len(commits)} "
                                          f"commits: {', '.join(commits[:5])}")
            listing = dataclasses.replace(listing, findings=(*listing.findings, mixed))
        if not listing.entries and not listing.findings and not self.allow_empty:
            raise UsageError(f"{self.target}: nothing to scan (empty folder, or everything "
                             "excluded)")
        signed_at = self.target if self.target.is_file() else listing.root
        return OnDisk(root=str(listing.root), listing=listing, signed_at=signed_at)

    def hub_facts(self) -> None:
        return None

    def lineage(self, declared: list[LineageEdge]) -> Lineage:
        return declared, []
