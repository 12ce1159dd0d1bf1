"""What a policy evaluation produced: violations with their reasons, waivers, lineage.

Plain frozen data shared by the engine (which builds it) and the verdict
reporters (text, JSON, SARIF, JUnit), so no reporter re-evaluates anything.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.model import Severity
from auditor.policy.schema import RuleSpec, Waiver

if TYPE_CHECKING:
    from auditor.sbom.factkinds import ModelFacts


@dataclass(frozen=True)
class Violation:
    """One rule tripped by one model component, with the message that says why."""

    rule: str
    policy: str
    severity: Severity
    message: str
    fix: str
    scope: str
    model: str
    file: str = ""  # path, for file and finding scopes
    sha256: str = ""
    ancestor: str = ""  # name, for lineage scope
    # Where in `file` the finding is (finding scope, when the SBOM records it): a text file's
    # line, else a byte offset in the file itself (never one inside an archive member).
    line: int | None = None
    offset: int | None = None
    error: str = ""  # set when the rule could not be evaluated (counts as a violation)
    waiver: Waiver | None = None  # the waiver that applies: not counted
    expired_waiver: Waiver | None = None  # a waiver that would have applied but has expired

    @property
    def active(self) -> bool:
        return self.waiver is None


@dataclass(frozen=True)
class ModelVerdict:
    name: str
    revision: str
    pinned: bool
    publisher: str
    jurisdiction: str
    tier: str
    lineage_tier: str
    # The model (depth 0) and each ancestor, as the facts give them, plus `tripped`:
    # the lineage-scope rules that entry violated.
    lineage: tuple[dict[str, Any], ...]
    # Everything the SBOM said about the model (files, findings, signature, grades), for
    # reporters that show the evidence behind the verdict (HTML) without re-reading the SBOM.
    facts: ModelFacts | None = None


@dataclass(frozen=True)
class Verdict:
    sbom: str
    policies: tuple[str, ...]
    rules: tuple[RuleSpec, ...]
    models: tuple[ModelVerdict, ...]
    violations: tuple[Violation, ...]
    expired_waivers: tuple[Waiver, ...]
    unused_waivers: tuple[Waiver, ...]
    today: datetime.date

    def active(self) -> list[Violation]:
        return [v for v in self.violations if v.active]

    def failing(self, threshold: Severity) -> list[Violation]:
        return [v for v in self.active() if v.severity >= threshold]

    def fails(self, threshold: Severity) -> bool:
        return bool(self.failing(threshold))
