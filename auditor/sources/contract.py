"""What every source says: who the model is, what upstream claims, and which artifacts it has.

A source never scans and never judges. It names the model (name, revision,
the revision asked for), states what upstream claims about it — the file
listing with sizes and digests, the digest each cache blob is named by, the
Hub's own record and scanner verdicts — each claim with where it came from,
and hands over its artifacts: files on disk for the engine to read, or, for a
remote-only audit, ranged readers with a plan per file (read whole, read in
place, skip) and the digest each file is expected to have, or a stream of
files that exist on disk one at a time (the members of OCI layers). The pipeline scans
the artifacts and the verifiers in `auditor.integrity` hold the result
against the claims.

Adding a source is one module with one class that satisfies `Source`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from auditor.integrity.evidence import Claim, strongest
from auditor.integrity.model_signature import Found
from auditor.integrity.provenance import Record, Upstream
from auditor.model import Artifact, FileReport, Finding, LineageEdge
from auditor.sources.remote import Fetch, RemoteFile, Transfer

Plan = Literal["whole", "range", "skip"]
Lineage = tuple[list[LineageEdge], list[Finding]]


@dataclass(frozen=True)
class Identity:
    """Who the model is: `kind` is the report's source (`local`, `hf-cache`, `hub`).

    `claims` are every record's statement of the name and revision, graded;
    `name` and `revision` are the strongest of them (`identity_from`), and the
    pipeline reports the claims that contradict them.
    """

    name: str
    kind: str
    revision: str | None  # the commit the artifacts are at; None for an unpinned folder
    requested: str | None = None  # the revision asked for (a branch or tag, or a commit)
    pinned: bool = True  # False: `requested` named a branch or tag, resolved to `revision`
    resolved_in: str = ""  # where the name was resolved, for the message (" in the local cache")
    # What `revision` is: a "commit" (the Hub's, its form says it is pinned) or a "digest"
    # (a manifest's, which no property of its own says was asked for: the identity facts do).
    revision_kind: Literal["commit", "digest"] = "commit"
    claims: tuple[Claim, ...] = ()

    def chosen(self, subject: str) -> Claim | None:
        """The claim `name` or `revision` was taken from (None: nothing recorded one)."""
        return strongest(self.claims, subject)  # type: ignore[arg-type]


def identity_from(
    claims: tuple[Claim, ...], kind: str, fallback_name: str, **rest: Any
) -> Identity:
    """An identity whose name and revision are the strongest claims (ties: first given)."""
    name = strongest(claims, "name")
    revision = strongest(claims, "revision")
    return Identity(name=name.value if name else fallback_name, kind=kind,
                    revision=revision.value if revision else None, claims=claims, **rest)


@dataclass(frozen=True)
class Claims:
    """What upstream states about the files, each statement with where it came from."""

    # Files upstream lists at this revision (missing and extra files are judged); None: none.
    listing: Record | None = None
    # Digests recorded beside each file: a cache's blob names, a --local-dir download record.
    records: Record | None = None
    every_file_recorded: bool = False  # a cache: a file with no record is unverifiable
    # The Hub's scanners: the repository's status and each file's, as the Hub reports them.
    scanner_repo: Mapping[str, Any] | None = None
    scanner_files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Excluded:
    """A file an exclude pattern (`--exclude`, config `exclude`) left out, and that pattern.

    Kept so the report and the SBOM say what was not read: an exclusion that
    leaves no trace would make a partial audit look like a whole one.
    """

    path: str
    pattern: str


@dataclass(frozen=True)
class Listing:
    """A folder walk: the files to read, what the walk itself found (links, FIFOs), and the
    files the user's exclude patterns left out (never read, never judged missing)."""

    root: Path
    entries: tuple[Artifact, ...]
    findings: tuple[Finding, ...]
    # A single-file target's siblings: read by the cross-file checks to judge it (the ONNX
    # model an external-data file belongs to), never part of the reported model.
    context: tuple[Artifact, ...] = ()
    excluded: tuple[Excluded, ...] = ()


@dataclass(frozen=True)
class OnDisk:
    """Artifacts as files on disk, read by the engine in one pass each."""

    root: str  # where the model is, as reported
    listing: Listing
    signed_at: Path  # the folder (or single file) whose OMS signature is checked


@dataclass(frozen=True)
class RemoteArtifact:
    """One file of a remote-only audit: how it is read, and the digest upstream reports."""

    path: str
    size: int
    plan: Plan  # whole: fetched and hashed; range: parsed in place; skip: listed only
    expected: Upstream
    fetch: Fetch
    budget: int  # bytes a range read may transfer before the parser gets a limit finding

    def read_all(self) -> bytes:
        return self.fetch(0, self.size) if self.size else b""

    def open(self) -> BinaryIO:
        raw = RemoteFile(self.fetch, self.size, self.budget, self.path)
        return io.BufferedReader(raw, 1 << 16)  # type: ignore[return-value]


@dataclass(frozen=True)
class Remote:
    """Artifacts left where they are: read through range requests, counted in `transfer`."""

    root: str
    files: tuple[RemoteArtifact, ...]
    listing: Record  # what the fetched files' digests are compared with
    transfer: Transfer


@dataclass(frozen=True)
class StreamOutcome:
    """What a streamed source knows once every file went by: the reports as they stand
    (later layers replace or delete earlier files, links resolved), its own findings, and
    the files the exclude patterns left out."""

    files: list[FileReport]
    findings: list[Finding]
    excluded: tuple[Excluded, ...] = ()
    # OMS bundles found with the model (a `model.sig` among the files, registry referrers),
    # in the order they are tried; their bytes are kept since the files are gone.
    signatures: tuple[Found, ...] = ()


@dataclass(frozen=True)
class Streamed:
    """Artifacts that arrive as a sequence (the layers of an OCI image, tar members in order):
    `files` yields one `Artifact` at a time, its bytes in a temporary file that exists only
    until the next is asked for, so disk use is one file and memory stays flat. The engine
    reads each as it reads a file on disk; `settle` gets the reports in the order yielded."""

    root: str
    files: Generator[Artifact, None, None]
    settle: Callable[[list[FileReport]], StreamOutcome]
    total_bytes: int  # for the progress display: the bytes to be transferred


Artifacts = OnDisk | Remote | Streamed


class Source(Protocol):
    """A model's origin: identity and claims first, artifacts when asked (they may download)."""

    @property
    def identity(self) -> Identity: ...

    def claims(self) -> Claims: ...

    def artifacts(self, exclude: tuple[str, ...]) -> Artifacts: ...

    def hub_facts(self) -> dict[str, Any] | None:
        """The model's `hub` fact (None when not from a Hub), complete once artifacts were read."""
        ...

    def lineage(self, declared: list[LineageEdge]) -> Lineage:
        """The base models the artifacts declare, resolved where the source can look them up
        (the Hub: their publisher, commit and own bases, graded hub-verified)."""
        ...
