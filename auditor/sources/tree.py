"""Which model folders a plain folder holds (a Hugging Face cache is `hfcache`'s concern).

Two readings of the same layout, one module so they cannot drift apart:

- A stored tree (`mirror_models`, the mirror's layout): every first-level
  folder that holds files is a model `name`; one holding only folders is an
  organisation whose sub-folders are models `org/name`.
- A folder given to `scan`/`gate` (`scanned_models`): a folder with a visible
  file at its top is ONE model (a repository has parts such as `onnx/` or
  `unet/`); a folder with none, whose sub-folders are model folders (a model
  marker at their top), is several models named by their path below it
  (`name`, or `org/name` two levels down).

In both, hidden folders and symlinked folders are never models. A one-off
scan also guarantees that splitting loses nothing: a stray sub-folder next to
real models is a model of its own, and a folder holding anything no model
would cover (a hidden file or folder other than `.git`, which no scan reads, or
a link leaving the folder) is not split at all but scanned whole, as one model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from auditor.integrity.cachelinks import inside
from auditor.sources.local import SKIPPED_DIRS

# A file at a folder's top that makes the folder a model of its own.
MARKER_NAMES = frozenset({
    "config.json", "README.md", "adapter_config.json", "model_index.json", "params.json",
})
MARKER_SUFFIXES = frozenset({
    ".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".keras", ".pkl",
    ".npz",
})


@dataclass(frozen=True)
class ModelFolder:
    """One model found in a tree: `name` is its path below the tree's root (`org/name`)."""

    name: str
    path: Path


def folders(path: Path, skipped: Iterable[Path] = ()) -> list[Path]:
    """Visible, real (not symlinked) sub-folders, sorted, but for `skipped` (resolved paths)."""
    skip = set(skipped)
    return sorted(p for p in path.iterdir()
                  if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()
                  and p.resolve() not in skip)


def _has_files(folder: Path) -> bool:
    """A visible entry that is not a folder (a file, a link to one, a FIFO, a broken link)."""
    return any(not p.name.startswith(".") and not p.is_dir() for p in folder.iterdir())


def mirror_models(root: Path, skip: Iterable[Path] = ()) -> list[ModelFolder]:
    """The models of a stored `name/` or `org/name/` tree; `skip`: folders that are not models."""
    skipped = {p.resolve() for p in skip}
    models = []
    for top in folders(root, skipped):
        if _has_files(top):
            models.append(ModelFolder(top.name, top))
        else:
            models.extend(ModelFolder(f"{top.name}/{p.name}", p) for p in folders(top, skipped))
    return models


def is_model_folder(folder: Path) -> bool:
    """A model marker at the folder's top: a config, a card, or a weight file."""
    return any(p.is_file() and (p.name in MARKER_NAMES or p.suffix.lower() in MARKER_SUFFIXES)
               for p in folder.iterdir() if not p.name.startswith("."))


def scanned_models(root: Path) -> list[ModelFolder]:
    """The models a folder given to a one-off scan holds; empty when the folder is one model.

    Every file under `root` is in exactly one of the returned folders (or the
    list is empty and `root` is scanned whole), so splitting never drops a file.
    """
    real = root.resolve()
    try:
        if not root.is_dir() or _has_files(root) or not _only_folders(root, real):
            return []
        models = []
        for top in folders(root):
            if is_model_folder(top) or not _is_org(top, real):
                models.append(ModelFolder(top.name, top))
            else:
                models.extend(ModelFolder(f"{top.name}/{p.name}", p) for p in folders(top))
    except OSError:  # a folder that cannot be listed: scanned whole, its errors are findings
        return []
    if not any(is_model_folder(m.path) for m in models):
        return []  # no model below: the folder is one model with sub-folders
    return models


def _is_org(folder: Path, real_root: Path) -> bool:
    """A folder of model folders: no file at its top, nothing uncovered, a model below."""
    return (not _has_files(folder) and _only_folders(folder, real_root)
            and any(is_model_folder(p) for p in folders(folder)))


def _only_folders(folder: Path, real_root: Path) -> bool:
    """Nothing at the top that no sub-folder's scan would cover.

    `.git` is never read by a scan, and a link to a folder inside the scanned
    root is read where it lives; any other hidden entry or link would be lost.
    """
    for p in folder.iterdir():
        if p.is_symlink():
            if not (p.is_dir() and inside(Path(os.path.realpath(p)), real_root)):
                return False
        elif p.name.startswith(".") and not (p.name in SKIPPED_DIRS and p.is_dir()):
            return False
    return True
