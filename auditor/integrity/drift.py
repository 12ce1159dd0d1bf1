"""Drift: a model's files now against what the state recorded for the same model.

Under a pinned revision (a cache snapshot's commit, a checkout's commit)
content must never change: the digests first seen stay the baseline, and
every later difference is reported on every run until the bytes are
restored (a tampered file does not become normal by being seen twice). An
unpinned model may legitimately change; its changes are reported once and
become the new baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from auditor.model import Finding, Rule, Severity

CHANGED = Rule(
    "AUD-MIR-001", Severity.CRITICAL, "Content changed under the same pinned revision",
    "A revision names fixed bytes: content that differs from what the mirror held when this "
    "revision was first audited was altered in place (a tampered mirror, cache or disk).",
    "Restore the file from the publisher pinned to the revision and find out who changed it.",
)
ADDED = Rule(
    "AUD-MIR-002", Severity.CRITICAL, "File appeared in a pinned revision after it was audited",
    "Loaders pick up extra code, weights or configs by name; a file slipped into a revision "
    "already audited is how a payload is planted in a mirror.",
    "Remove the file, or obtain the revision again from the publisher.",
)
REMOVED = Rule(
    "AUD-MIR-003", Severity.HIGH, "File disappeared from a pinned revision after it was audited",
    "A revision that lost files is not the one published or audited; loaders may fall back "
    "to other files (for example a pickle instead of safetensors weights).",
    "Obtain the revision again from the publisher.",
)
UNPINNED_CHANGED = Rule(
    "AUD-MIR-004", Severity.MEDIUM, "Unpinned model changed since the last scan",
    "Without a revision nothing says which bytes are the right ones: the change may be an "
    "update or an alteration, and consumers cannot tell which version they load.",
    "Pin the model (mirror it as a cache snapshot or a git checkout) and review the change.",
)
RULES = (CHANGED, ADDED, REMOVED, UNPINNED_CHANGED)
TAMPERING = frozenset({CHANGED.id, ADDED.id, REMOVED.id})
NOT_IN_BASELINE = ""  # baseline of a file that appeared after the audit / digest of one gone


@dataclass(frozen=True)
class Drift:
    findings: tuple[Finding, ...]
    files: dict[str, tuple[str, str]]  # path -> (baseline, latest digest) to record
    changed: tuple[str, ...]  # paths whose content differs from the previous scan


def compare(
    current: Mapping[str, str], previous: Mapping[str, tuple[str, str]] | None, pinned: bool
) -> Drift:
    """`current`: path -> sha256 now; `previous`: the state's record (None: new revision)."""
    if previous is None:
        return Drift((), {p: (d, d) for p, d in current.items()}, ())
    changed = tuple(sorted(p for p in set(current) | set(previous)
                           if current.get(p, NOT_IN_BASELINE) != previous.get(p, ("", ""))[1]))
    if not pinned:
        findings = [UNPINNED_CHANGED.finding(
            p, _change(p, previous.get(p, ("", ""))[1], current.get(p, ""), "at the last scan"))
            for p in changed]
        return Drift(tuple(findings), {p: (d, d) for p, d in current.items()}, changed)
    findings: list[Finding] = []
    files: dict[str, tuple[str, str]] = {}
    for path in sorted(set(current) | set(previous)):
        baseline = previous.get(path, (NOT_IN_BASELINE, ""))[0]
        now = current.get(path, NOT_IN_BASELINE)
        if baseline == NOT_IN_BASELINE and now != NOT_IN_BASELINE:
            findings.append(ADDED.finding(path, f"{path}: not in the revision when first "
                                                f"audited; now sha256 {now}"))
        elif baseline != NOT_IN_BASELINE and now == NOT_IN_BASELINE:
            findings.append(REMOVED.finding(path, f"{path}: gone; was sha256 {baseline} when "
                                                  "first audited"))
        elif baseline != now:
            findings.append(CHANGED.finding(path, _change(path, baseline, now,
                                                          "when first audited")))
        if baseline or now:
            files[path] = (baseline, now)
    return Drift(tuple(findings), files, changed)


def _change(path: str, before: str, after: str, since: str) -> str:
    """The detail names the file itself: it is read where the finding's file field is not shown
    (an SBOM's vulnerability text, a log line)."""
    if not before:
        return f"{path}: new file, sha256 {after}"
    if not after:
        return f"{path}: removed, was sha256 {before} {since}"
    return f"{path}: sha256 was {before} {since}, now {after}"
