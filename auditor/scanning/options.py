"""The settings of one scan run; the formats' share of them is `FormatOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.formats._lib.limits import Limits
from auditor.formats.contract import FormatOptions
from auditor.integrity.hashing import GIT_SHA1

if TYPE_CHECKING:
    from auditor.integrity.signing import Trust


@dataclass(frozen=True)
class ScanOptions:
    """Settings that change what a scan does; the CLI builds them from flags + config."""

    jobs: int = 2
    exclude: tuple[str, ...] = ()
    hash_algorithms: tuple[str, ...] = ("sha256",)
    # Files whose git blob id is also computed in the same pass (a cache or Hub listing names
    # them by it); by relative path, so one scan of a folder serves both kinds of file.
    git_blob_paths: frozenset[str] = frozenset()
    limits: Limits = field(default_factory=Limits)
    # Pickle import tiers added by the user's config, as "module.qualname" or "module.*".
    safe_imports: tuple[str, ...] = ()
    known_ml_imports: tuple[str, ...] = ()
    revision: str | None = None
    name: str | None = None  # what the operator says a local folder holds (`org/name`)
    fingerprints: Path | None = None  # the reference store measured lineage compares with
    # OMS signature to check (default: model.sig in the model folder) and who is trusted.
    signature: Path | None = None
    trust: Trust | None = None

    def algorithms_for(self, relpath: str) -> tuple[str, ...]:
        """The digests a file is read with: ours, plus its git blob id where a claim needs it."""
        if relpath in self.git_blob_paths:
            return tuple(dict.fromkeys((*self.hash_algorithms, GIT_SHA1)))
        return self.hash_algorithms

    @property
    def formats(self) -> FormatOptions:
        """What the format modules see of these options (`ScanContext.options`)."""
        return FormatOptions(self.limits, self.safe_imports, self.known_ml_imports)
