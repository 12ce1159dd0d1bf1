"""Graded identity claims: which record names a model and its revision, and when records disagree.

A model's name and revision are said by several records at once — a git
remote and HEAD, the `huggingface_hub` download record of a `--local-dir`
folder, a cache's `models--org--name/snapshots/<commit>` layout, a mirror's
`org/name` tree, the operator's `--name`/`--revision`, the Hub's API — each
with its own grade (`auditor.model.Grade`). Every source lists what it found
as `Claim`s; the strongest claim wins (ties: the order the source gave), so a
`--name` typed on the command line never overrides what a git remote
recorded. A claim contradicting a stronger (or equally strong) one is a
finding: someone renamed a folder, edited a record, or mislabelled a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from auditor.model import Finding, Grade, Rule, Severity

Subject = Literal["name", "revision"]

CONTRADICTION = Rule(
    "AUD-PROV-011", Severity.HIGH, "Provenance records contradict each other",
    "Two records of where the model comes from disagree (a git remote and a mirror folder, a "
    "download record and --revision, a cache layout and --name): at least one of them is "
    "wrong, and a renamed or relabelled copy is how an origin is hidden from a policy.",
    "Find out which record is true; fetch the model again from its publisher pinned to a "
    "commit, or correct the record (the folder name, the --name/--revision given).",
)
RULES = (CONTRADICTION,)


@dataclass(frozen=True)
class Claim:
    """One record's statement of a model's name (`org/name`) or revision (a commit)."""

    subject: Subject
    value: str
    grade: Grade
    evidence: str  # which record: "git remote origin", "--name", "the Hub (model info)" ...


def strongest(claims: Iterable[Claim], subject: Subject) -> Claim | None:
    """The best-graded claim on `subject`; among equals, the first given."""
    best: Claim | None = None
    for claim in claims:
        if claim.subject == subject and (best is None or claim.grade.rank > best.grade.rank):
            best = claim
    return best


def _comparable(subject: Subject, value: str) -> str | None:
    """The form two claims are compared in; None when the claim cannot contradict another.

    A bare folder name (no `org/`) is a label anyone picks, and a branch name
    is not a commit: neither contradicts a full repository id or commit.
    """
    value = value.strip().lower()
    if subject == "name":
        return value if value.count("/") == 1 else None
    return value if len(value) == 40 and all(c in "0123456789abcdef" for c in value) else None


def contradictions(claims: Sequence[Claim]) -> list[Finding]:
    """A finding for each claim that disagrees with the strongest claim on its subject."""
    findings: list[Finding] = []
    for subject in ("name", "revision"):
        best = strongest(claims, subject)  # type: ignore[arg-type]
        if best is None or (want := _comparable(best.subject, best.value)) is None:
            continue
        for claim in claims:
            if claim is best or claim.subject != subject:
                continue
            said = _comparable(claim.subject, claim.value)
            if said is not None and said != want:
                findings.append(CONTRADICTION.finding("", (
                    f"{subject}: {best.evidence} ({best.grade}) says {best.value}; "
                    f"{claim.evidence} ({claim.grade}) says {claim.value}")))
    return findings


def repo_id_from_url(url: str) -> str | None:
    """`org/name` from a model repository URL on any host (a Hub mirror, ModelScope, a git
    remote over https or ssh); None for datasets, spaces and anything without two segments.

    `https://hf-mirror.com/Qwen/Qwen2.5-7B/tree/main`, `git@hf.co:Qwen/Qwen2.5-7B.git` and
    `https://modelscope.cn/models/Qwen/Qwen2.5-7B` all give `Qwen/Qwen2.5-7B`.
    """
    text = url.strip()
    if len(text) > 2048 or any(c.isspace() for c in text):
        return None
    if "://" in text:
        rest = text.split("://", 1)[1]
        path = rest.split("/", 1)[1] if "/" in rest else ""
    elif ":" in text and "@" in text.split(":", 1)[0]:  # scp-like git@host:org/name
        path = text.split(":", 1)[1]
    else:
        return None
    parts = [p for p in path.split("?", 1)[0].split("#", 1)[0].split("/") if p]
    if parts and parts[0] in ("models", "model"):
        parts = parts[1:]
    if len(parts) < 2 or parts[0] in ("datasets", "spaces", "api"):
        return None
    org, name = parts[0], parts[1].removesuffix(".git")
    return f"{org}/{name}" if _segment(org) and _segment(name) else None


def _segment(text: str) -> bool:
    """A Hub namespace or repository name: letters, digits, `-_.`, not hidden, not too long."""
    return 0 < len(text) <= 96 and not text.startswith(".") and all(
        c.isalnum() or c in "-_." for c in text)
