"""Which models a mirror holds: Hugging Face cache snapshots, or an `org/name/` tree.

A cache (`models--org--name/{blobs,snapshots,refs}`) gives one model per
snapshot, pinned to its commit. A plain tree gives one model per folder:
`org/name/` when the first level holds only folders, `name/` when a
first-level folder holds files itself (the rule is `auditor.sources.tree`'s,
shared with the one-off scan). Hidden folders (`.git`, `.locks`, the state's
own folder) are never models, and symlinked folders are not followed out of
the root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import UsageError
from auditor.sources.hfcache import cache_kind, repo_id_of
from auditor.sources.tree import folders, mirror_models


@dataclass(frozen=True)
class MirrorModel:
    """One model of the mirror; `key` names it in the state across runs."""

    key: str
    name: str
    kind: str  # "hf-cache" or "tree"
    root: Path  # the folder scanned: a snapshot, or the model folder
    commit: str | None = None  # the snapshot's commit (hf-cache)


def discover(root: Path, skip: Iterable[Path] = ()) -> list[MirrorModel]:
    """Every model under `root`, sorted by key; `skip` are folders that are ours (sboms)."""
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    skipped = {p.resolve() for p in skip}
    kind = cache_kind(root)
    if kind in ("root", "repo"):
        repos = [root] if kind == "repo" else [
            p for p in folders(root, skipped) if cache_kind(p) == "repo"]
        models = [_snapshot(s) for f in repos for s in folders(f / "snapshots", skipped)]
    elif kind == "snapshot":
        models = [_snapshot(root)]
    else:
        models = [MirrorModel(m.name, m.name, "tree", m.path) for m in mirror_models(root, skip)]
    return sorted(models, key=lambda m: m.key)


def _snapshot(snapshot: Path) -> MirrorModel:
    name = repo_id_of(snapshot.parent.parent)
    return MirrorModel(f"{name}@{snapshot.name}", name, "hf-cache", snapshot, snapshot.name)

