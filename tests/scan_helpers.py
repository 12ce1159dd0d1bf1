"""Scan a folder in-process and read the result: the helpers format tests share."""

from __future__ import annotations

from pathlib import Path

from auditor import pipeline
from auditor.model import FileReport
from auditor.scanning.options import ScanOptions


def scan_files(target: Path) -> dict[str, FileReport]:
    """Each file's report by its path, from a one-thread scan of `target` (one model)."""
    result = pipeline.scan(target, ScanOptions(jobs=1))
    return {f.path: f for f in result.models[0].files}


def rule_ids(report: FileReport) -> list[str]:
    """The rule ids of a report's findings, sorted (repeats kept)."""
    return sorted(f.rule for f in report.findings)
