"""Reporters: one module per output format, one table choosing them by `--format`.

Every reporter module has `to_text(subject, fail_on, where) -> str`, where the
subject is a `ScanResult` (scan reports) or a `Verdict` (policy verdicts). A
module is imported only when its format is chosen, so `auditor --version`
and the other commands do not pay for reporters they do not use. Adding a
reporter is one module and one line in a table below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditor.model import ScanResult, Severity
    from auditor.policy.verdict import Verdict


@dataclass(frozen=True)
class Where:
    """Where the judged things are, for formats that link to them (SARIF locations).

    `base`: the folder file paths are relative to ("" when not local);
    `model_location`: the SBOM or target that model-level results point at.
    """

    base: str = ""
    model_location: str = ""


NOWHERE = Where()

# --format value -> module under auditor.report; the keys are the commands' --format choices.
SCAN_REPORTERS: dict[str, str] = {
    "text": "text", "json": "json", "sarif": "scan_sarif", "junit": "scan_junit",
    "html": "scan_html",
}
VERDICT_REPORTERS: dict[str, str] = {
    "text": "verdict_text", "json": "verdict_json", "sarif": "sarif", "junit": "junit",
    "html": "verdict_html",
}
# Commands whose subject is neither a scan nor a verdict (mirror runs, signature checks, SBOM
# diffs) print it as text or as JSON, under the same two names.
DATA_FORMATS = ("text", "json")


def render_scan(result: ScanResult, fmt: str, fail_on: Severity) -> str:
    """A scan result in the chosen format."""
    module = importlib.import_module(f"auditor.report.{SCAN_REPORTERS[fmt]}")
    return module.to_text(result, fail_on, NOWHERE)  # type: ignore[no-any-return]


def render_verdict(verdict: Verdict, fmt: str, fail_on: Severity, where: Where = NOWHERE) -> str:
    """A policy verdict in the chosen format."""
    module = importlib.import_module(f"auditor.report.{VERDICT_REPORTERS[fmt]}")
    return module.to_text(verdict, fail_on, where)  # type: ignore[no-any-return]
