"""Which symlinks belong to a Hugging Face cache's own layout.

A cache snapshot (`models--org--name/snapshots/<commit>/…`) is made of links
into the repository's `blobs/`. Both the folder walk (which refuses links that
leave the model) and the signature's file list (which refuses symlinks a
signer chose) must tell those layout links apart from a link planted in a
model, so the answer is given once, here, below both.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_PREFIXES = ("models--", "datasets--", "spaces--")


def inside(path: Path, root: Path) -> bool:
    """`path` is `root` or lies under it (both already resolved)."""
    return path == root or root in path.parents


def _blobs_dir(link: Path) -> Path | None:
    """`models--org--name/blobs` when `link` lies under that repo's `snapshots/`."""
    for parent in link.parents:
        if parent.name == "snapshots" and parent.parent.name.startswith(REPO_PREFIXES):
            return parent.parent / "blobs"
    return None


def is_cache_blob_link(link: Path) -> bool:
    """A Hugging Face cache snapshot entry linking into its own repository's `blobs/`."""
    blobs = _blobs_dir(link)
    return blobs is not None and inside(Path(os.path.realpath(link)), blobs.resolve())
