"""What a format module is given besides the bytes: where it is, its limits, a way back in.

Format modules fill `ctx.result` (so whatever they found before an exception
is kept) and hand archive members back to the engine with `scan_member`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from auditor.model import Coverage, Finding, FormatResult, Rule, Severity
from auditor.scan.limits import Limits


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
    # OMS signature to check (default: model.sig in the model folder) and who is trusted.
    signature: Path | None = None
    trust: object | None = None  # auditor.integrity.signing.Trust


Dispatch = Callable[[BinaryIO, "ScanContext"], FormatResult]


@dataclass
class ScanContext:
    file: str  # the top-level file, relative to the model root
    name: str  # basename of this file or member: for sniffing and extension checks
    size: int | None  # byte length of this stream, when known
    options: ScanOptions
    dispatch: Dispatch
    member: str | None = None  # path of this member inside `file`, None at top level
    depth: int = 0
    container: str | None = None  # format of the enclosing container (e.g. "torchscript")
    result: FormatResult = field(default_factory=FormatResult)

    @property
    def limits(self) -> Limits:
        return self.options.limits

    def add(
        self,
        rule: Rule,
        detail: str = "",
        *,
        offset: int | None = None,
        severity: Severity | None = None,
        title: str | None = None,
    ) -> Finding:
        """Record a finding at this file/member (and byte offset within it)."""
        finding = rule.finding(
            self.file, detail, member=self.member, offset=offset, severity=severity, title=title
        )
        self.result.findings.append(finding)
        return finding

    def limit_hit(self) -> None:
        """Mark this stream as only partly analysed."""
        if self.result.coverage == Coverage.SCANNED:
            self.result.coverage = Coverage.PARTIAL

    def scan_member(self, name: str, stream: BinaryIO, size: int | None = None) -> FormatResult:
        """Sniff and scan a member through the engine, one level deeper.

        The returned result's findings are already located at `file` +
        `outer/member`; the caller merges them (see `merge_member`).
        """
        member = f"{self.member}/{name}" if self.member else name
        child = ScanContext(
            file=self.file,
            name=name.rsplit("/", 1)[-1],
            size=size,
            options=self.options,
            dispatch=self.dispatch,
            member=member,
            depth=self.depth + 1,
            container=self.result.format or None,
        )
        return self.dispatch(stream, child)

    def merge_member(self, member_result: FormatResult) -> None:
        """Fold a member's findings and coverage into this container's result."""
        self.result.findings.extend(member_result.findings)
        if member_result.coverage in (Coverage.PARTIAL, Coverage.ERROR):
            self.limit_hit()
