"""The format plug-in contract: what a format module declares, and what the engine hands it.

A format is one `FormatSpec` (its id, sniff, scan, whether it is a container, the
rules it owns and the facts it emits); `auditor.formats.registry` lists the formats
in sniff order, each module imported only when a head may be of its format. At
scan time the engine gives `scan` the stream and a `ScanContext`: where the bytes
are, the `FormatOptions` of this run, and a way back into the engine for archive
members. Every format name the scanner can
report is an `auditor.model.FormatId`, so no module spells one as a string;
the sets of them the sniffer classifies into (`UNPARSED`, …) are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from auditor.formats._lib.limits import Limits
from auditor.model import Coverage, Finding, FormatId, FormatResult, Rule, Severity

# How many first bytes the engine reads to sniff; a sniffer's `head` is at most this long.
HEAD_BYTES = 64 * 1024


# Archives we recognise by magic but do not open (their members stay unaudited).
UNPARSED_ARCHIVES = frozenset({
    FormatId.SEVEN_Z, FormatId.RAR, FormatId.ZSTD, FormatId.LZ4, FormatId.CAB,
})
UNPARSED = frozenset({FormatId.EMPTY, FormatId.TEXT, FormatId.IMAGE, FormatId.UNKNOWN}
                     ) | UNPARSED_ARCHIVES


@dataclass(frozen=True)
class FormatOptions:
    """What of a run's settings a format reads: its limits and the user's pickle import tiers."""

    limits: Limits = field(default_factory=Limits)
    # Pickle import tiers added by the user's config, as "module.qualname" or "module.*".
    safe_imports: tuple[str, ...] = ()
    known_ml_imports: tuple[str, ...] = ()


Dispatch = Callable[[BinaryIO, "ScanContext"], FormatResult]


@dataclass
class ScanContext:
    """What a format module is given besides the bytes: where it is, its options, a way back in.

    Format modules fill `ctx.result` (so whatever they found before an exception
    is kept) and hand archive members back to the engine with `scan_member`.
    """

    file: str  # the top-level file, relative to the model root
    name: str  # basename of this file or member: for sniffing and extension checks
    size: int | None  # byte length of this stream, when known
    options: FormatOptions
    dispatch: Dispatch
    member: str | None = None  # path of this member inside `file`, None at top level
    depth: int = 0
    container: str | None = None  # format of the enclosing container (e.g. torchscript)
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


Sniff = Callable[[bytes, str], bool]
Scan = Callable[[BinaryIO, ScanContext], FormatResult]


@dataclass(frozen=True)
class FormatSpec:
    """One format, declared once: the engine, the rule catalogue and the docs read it.

    `sniff(head, name)` decides from the first bytes (at most HEAD_BYTES), never
    from the extension alone. `scan(f, ctx)` parses without executing anything,
    fills and returns `ctx.result`, raises `FormatError` for a malformed stream
    and `LimitExceeded` for a limit hit; heavy libraries are imported inside it.
    `refines` are the more precise ids `scan` may report instead of `id` once
    it has seen more than the head (a zip that is a PyTorch checkpoint).
    """

    id: FormatId
    sniff: Sniff
    scan: Scan
    container: bool  # hands members back to the engine (`ctx.scan_member`)
    rules: tuple[Rule, ...]
    facts: tuple[str, ...]  # the keys `scan` may set in `ctx.result.facts`
    refines: tuple[FormatId, ...] = ()
