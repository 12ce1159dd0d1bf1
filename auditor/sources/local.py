"""Files and folders on disk: what the scan will read, and what it refuses to follow.

A symlink is followed only when it stays inside the scanned root, or when it
is a Hugging Face cache snapshot entry pointing into its own repository's
`blobs/` (the cache's normal layout). Anything else that leaves the root is a
finding and is not read: a model folder must not make the scanner (or the
loader) read `/etc/shadow` or another model's files.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import UsageError
from auditor.model import Finding, Rule, Severity

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
RULES = (SYMLINK_ESCAPE, SPECIAL_FILE, BROKEN_LINK, UNLISTABLE)

SKIPPED_DIRS = frozenset({".git"})


@dataclass(frozen=True)
class Entry:
    """One file to scan: `relpath` as reported, `path` as opened (links resolved)."""

    relpath: str
    path: Path
    size: int
    problem: Finding | None = None  # set for entries that must not be opened


@dataclass(frozen=True)
class Listing:
    root: Path
    entries: tuple[Entry, ...]
    findings: tuple[Finding, ...]


def _excluded(relpath: str, patterns: tuple[str, ...]) -> bool:
    base = relpath.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(relpath, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def _hf_blobs_dir(link: Path) -> Path | None:
    """`models--org--name/blobs` when `link` lies under that repo's `snapshots/`."""
    for parent in link.parents:
        if parent.name == "snapshots" and parent.parent.name.startswith(
            ("models--", "datasets--", "spaces--")
        ):
            return parent.parent / "blobs"
    return None


def is_cache_blob_link(link: Path) -> bool:
    """A Hugging Face cache snapshot entry linking into its own repository's `blobs/`."""
    blobs = _hf_blobs_dir(link)
    return blobs is not None and _inside(Path(os.path.realpath(link)), blobs.resolve())


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


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
    entries: list[Entry] = []
    findings: list[Finding] = []
    for path in candidates:
        rel = path.name if single else path.relative_to(root).as_posix()
        if _excluded(rel, exclude):
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
    return Listing(root=root, entries=tuple(entries), findings=tuple(findings))


def _classify(path: Path, rel: str, root: Path) -> tuple[Entry | None, Finding | None]:
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if not (_inside(target, root) or is_cache_blob_link(path)):
            return None, SYMLINK_ESCAPE.finding(rel, f"{rel} -> {os.readlink(path)}")
        if not target.exists():
            return None, BROKEN_LINK.finding(rel, f"{rel} -> {os.readlink(path)}")
        if target.is_dir():
            return None, None  # scanned where it really lives, inside the root
        path = target
    try:
        st = path.stat()
    except OSError:  # the engine opens it and reports the error as AUD-SCAN-006
        return Entry(rel, path, 0), None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "FIFO" if stat.S_ISFIFO(st.st_mode)
            else "socket" if stat.S_ISSOCK(st.st_mode)
            else "device"
        )
        return Entry(rel, path, 0, problem=SPECIAL_FILE.finding(rel, f"{rel} is a {kind}")), None
    return Entry(rel, path, st.st_size), None


def model_identity(target: Path, root: Path) -> tuple[str, str | None]:
    """A model's name and pinned revision, from where it sits on disk.

    Inside a Hugging Face cache (`models--org--name/snapshots/<commit>`) both
    are known; a git checkout gives its commit; otherwise the folder name and
    no revision (unpinned).
    """
    for parent in (root, *root.parents):
        if parent.parent.name == "snapshots" and parent.parent.parent.name.startswith("models--"):
            repo = parent.parent.parent.name.removeprefix("models--").replace("--", "/", 1)
            return repo, parent.name
    name = target.name if target.is_file() else root.name
    return name, _git_commit(root)


def _git_commit(root: Path) -> str | None:
    """The checked-out commit, read from `.git` files (git itself is never run)."""
    git = root / ".git"
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
