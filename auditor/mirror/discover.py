"""Which models a mirror holds: Hugging Face cache snapshots, or an `org/name/` tree.

A cache (`models--org--name/{blobs,snapshots,refs}`) gives one model per
snapshot, pinned to its commit. A plain tree gives one model per folder:
`org/name/` when the first level holds only folders, `name/` when a
first-level folder holds files itself. Hidden folders (`.git`, `.locks`,
the state's own folder) are never models, and symlinked folders are not
followed out of the root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import UsageError
from auditor.sources.hfcache import cache_kind, repo_id_of


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
        folders = [root] if kind == "repo" else [
            p for p in _folders(root, skipped) if cache_kind(p) == "repo"]
        models = [_snapshot(s) for f in folders for s in _folders(f / "snapshots", skipped)]
    elif kind == "snapshot":
        models = [_snapshot(root)]
    else:
        models = [m for top in _folders(root, skipped) for m in _tree(top, skipped)]
    return sorted(models, key=lambda m: m.key)


def _folders(path: Path, skipped: set[Path]) -> list[Path]:
    """Visible, real (not symlinked) sub-folders, sorted."""
    return sorted(p for p in path.iterdir()
                  if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()
                  and p.resolve() not in skipped)


def _snapshot(snapshot: Path) -> MirrorModel:
    name = repo_id_of(snapshot.parent.parent)
    return MirrorModel(f"{name}@{snapshot.name}", name, "hf-cache", snapshot, snapshot.name)


def _tree(top: Path, skipped: set[Path]) -> list[MirrorModel]:
    if any(not p.name.startswith(".") and not p.is_dir() for p in top.iterdir()):
        return [MirrorModel(top.name, top.name, "tree", top)]
    return [MirrorModel(f"{top.name}/{p.name}", f"{top.name}/{p.name}", "tree", p)
            for p in _folders(top, skipped)]
