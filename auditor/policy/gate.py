"""The gate pipeline after the scan: SBOM per model → facts → policy verdict.

The verdict is computed from the SBOM documents exactly as written (read back
from disk when `--sbom` asks for them), so what the gate judged is what it
hands on: policy never sees the scanner's objects.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from auditor.model import ScanResult, Severity
from auditor.policy.engine import PolicySet, evaluate
from auditor.policy.verdict import Verdict
from auditor.sbom.facts import models_from_sbom, read_sbom


def sbom_documents(
    result: ScanResult, sbom_path: Path | None, *, reproducible: bool
) -> list[tuple[str, dict[str, Any]]]:
    """(label, CycloneDX JSON) per model; written first and read back when `sbom_path` is set."""
    from auditor.sbom import cyclonedx

    if sbom_path is None:
        return [
            (f"{result.target} (SBOM of {m.name}, not written)",
             cyclonedx.to_cyclonedx(m, result, reproducible=reproducible))
            for m in result.models
        ]
    paths = cyclonedx.write_sboms(result, sbom_path, spec="1.6", output_format="json",
                                  reproducible=reproducible)
    return [(str(p), read_sbom(p)) for p in paths]


def judge(
    policies: PolicySet, documents: list[tuple[str, dict[str, Any]]],
    today: datetime.date | None = None,
) -> Verdict:
    models = [m for label, doc in documents for m in models_from_sbom(doc, label)]
    label = ", ".join(label for label, _ in documents)
    return evaluate(policies, models, sbom=label, today=today or datetime.date.today())


def to_text(verdict: Verdict, fmt: str, fail_on: Severity, *, base: str = "",
           model_location: str = "") -> str:
    """The verdict as text, json, sarif or junit (reporters are imported only when chosen)."""
    if fmt == "json":
        from auditor.report import verdict_json

        return verdict_json.to_text(verdict, fail_on)
    if fmt == "sarif":
        from auditor.report import sarif

        return sarif.to_text(verdict, fail_on, base=base, model_location=model_location)
    if fmt == "junit":
        from auditor.report import junit

        return junit.to_text(verdict, fail_on)
    from auditor.report import verdict_text

    return verdict_text.to_text(verdict, fail_on)
