"""Hugging Face caches and mirrors on disk as a source, fully offline.

Layout (`HF_HUB_CACHE`): `models--{org}--{name}/blobs/{digest}`,
`snapshots/{commit}/{path}` (links into blobs), `refs/{revision}` (a commit),
and `trees/{commit}.json` (the listing the server gave at download). A
snapshot's claims are that listing and the digest each blob is named by; the
pipeline hashes each file once (sha256 and, where a claim needs it, the git
blob id in the same pass) and `auditor.integrity.provenance` checks them
(missing, extra, changed files). This proves the cache is unchanged since
download and consistent with the server it came from — not that the server
was honest; `hf://` scans compare with the Hub itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.integrity.evidence import Claim
from auditor.integrity.provenance import Record, Upstream
from auditor.model import Grade, LineageEdge, is_commit
from auditor.sources.contract import Claims, Identity, Lineage, OnDisk, identity_from
from auditor.sources.local import list_files

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


def blob_claims(snapshot: Path) -> dict[str, Upstream]:
    """What each snapshot link's blob name claims: sha256 (64 hex) or git blob id (40 hex)."""
    claims: dict[str, Upstream] = {}
    for dirpath, _, names in os.walk(snapshot):
        for name in names:
            link = Path(dirpath) / name
            if not link.is_symlink():
                continue
            rel = link.relative_to(snapshot).as_posix()
            blob = Path(os.readlink(link)).name
            if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob):
                claims[rel] = Upstream(rel, None, None, blob)
            elif is_commit(blob):
                claims[rel] = Upstream(rel, None, blob, None)
    return claims


@dataclass(frozen=True)
class CacheSnapshot:
    """One cached snapshot as a source (`hf-cache`): its tree listing and blob names as claims.

    `requested` is the revision asked for (None when the snapshot was named
    directly, by its folder or by a mirror).
    """

    folder: Path
    commit: str
    requested: str | None = None

    @property
    def snapshot(self) -> Path:
        return self.folder / "snapshots" / self.commit

    @cached_property
    def identity(self) -> Identity:
        claims = (
            Claim("name", repo_id_of(self.folder), Grade.RECORDED,
                  "the cache layout (models--org--name)"),
            Claim("revision", self.commit, Grade.RECORDED,
                  "the cache layout (snapshots/<commit>)"),
        )
        return identity_from(claims, "hf-cache", repo_id_of(self.folder),
                             requested=self.requested,
                             pinned=self.requested is None or is_commit(self.requested),
                             resolved_in=" in the local cache")

    @cached_property
    def _listing(self) -> dict[str, Upstream] | None:
        return tree_listing(self.folder, self.commit)

    @cached_property
    def _claims(self) -> Claims:  # read once per audit: the walk costs a stat per file
        listing = self._listing
        return Claims(
            listing=None if listing is None else Record(
                listing, f"trees/{self.commit}.json", Grade.RECORDED),
            records=Record(blob_claims(self.snapshot), "its blob name", Grade.RECORDED),
            every_file_recorded=True)

    def claims(self) -> Claims:
        return self._claims

    def artifacts(self, exclude: tuple[str, ...]) -> OnDisk:
        listing = list_files(self.snapshot, exclude)
        return OnDisk(root=str(self.snapshot), listing=listing, signed_at=self.snapshot)

    def hub_facts(self) -> dict[str, Any]:
        return {"sha": self.commit, "requested_revision": self.requested,
                "pinned": self.identity.pinned, "refs": refs_to(self.folder, self.commit),
                "tree_listing": self._listing is not None}

    def lineage(self, declared: list[LineageEdge]) -> Lineage:
        return declared, []


def snapshots_at(path: Path) -> list[CacheSnapshot]:
    """A cache root (every model), a `models--org--name` folder, or one snapshot folder."""
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
    return [CacheSnapshot(folder, commit) for folder, commit in targets]


def snapshot_of(repo_id: str, revision: str, cache_dir: Path) -> CacheSnapshot:
    """`hf-cache://org/name@rev` (and `hf://` in offline mode): one snapshot, no network."""
    folder = repo_folder(cache_dir, repo_id)
    commit = resolve_ref(folder, revision) if folder.is_dir() else None
    if commit is None or not (folder / "snapshots" / commit).is_dir():
        raise UsageError(f"{repo_id}@{revision}: not in the Hugging Face cache at {cache_dir} "
                         "(download it first, or scan hf://… without --offline)")
    return CacheSnapshot(folder, commit, revision)
