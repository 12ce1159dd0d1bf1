"""The regression corpus: every public scanner bypass class is flagged; real pickles pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor import pipeline
from auditor.model import Severity
from auditor.scanning.options import ScanOptions
from tests import pickle_corpus as corpus

CANARY = "/nonexistent/auditor-canary"


def scan_case(tmp_path: Path, case: corpus.Case):
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    result = pipeline.scan(path, ScanOptions(jobs=1))
    (report,) = result.models[0].files
    return report


@pytest.mark.parametrize("case", corpus.malicious(CANARY), ids=lambda c: c.name)
def test_bypass_class_is_flagged(tmp_path, case):
    report = scan_case(tmp_path, case)
    expected = Severity.parse(case.expect)
    assert report.worst is not None and report.worst >= expected, (
        f"{case.attack}: worst {report.verdict}, findings "
        f"{[(f.rule, f.severity.label, f.detail) for f in report.findings]}"
    )


def test_corpus_covers_every_section_of_known_bypasses():
    attacks = " ".join(c.attack for c in corpus.malicious(CANARY))
    for marker in ("CVE-2025-1716", "CVE-2025-10155", "CVE-2025-10157", "GHSA-9gvj",
                   "GHSA-84r2", "GHSA-9726", "GHSA-9m3x", "GHSA-m7j5", "GHSA-97f8",
                   "GHSA-7wx9", "picklescan#14", "ModelScan #85", "ModelScan #330",
                   "ModelScan #331", "ModelScan #267", "ModelScan #338", "MEMOIZE right after POP",
                   "CVE-2026-22606", "CVE-2026-14534", "CVE-2026-14535", "GHSA-mxhj",
                   "GHSA-5j3x", "GHSA-6ggj", "GHSA-wccx", "fickling #317", "fickling #211",
                   "ShadowPickle", "nullifAI", "CVE-2025-1944", "CVE-2025-10156"):
        assert marker in attacks, marker


@pytest.mark.parametrize("case", corpus.benign_plain(), ids=lambda c: c.name)
def test_plain_container_pickles_are_clean(tmp_path, case):
    report = scan_case(tmp_path, case)
    assert report.findings == (), [(f.rule, f.detail) for f in report.findings]
    assert report.format == "pickle"


def test_real_legacy_torch_saves_are_clean(tmp_path):
    pytest.importorskip("torch")
    for case in corpus.benign_torch_legacy():
        report = scan_case(tmp_path, case)
        assert report.format == "pytorch-legacy", case.name
        assert report.findings == (), (case.name, [(f.rule, f.detail) for f in report.findings])


def test_joblib_numeric_dumps_are_clean(tmp_path):
    pytest.importorskip("joblib")
    for case in corpus.benign_joblib(str(tmp_path)):
        report = scan_case(tmp_path, case)
        assert report.worst is None, (case.name, [(f.rule, f.detail) for f in report.findings])


def test_sklearn_estimator_is_known_ml_and_passes_the_default_gate(tmp_path):
    pytest.importorskip("sklearn")
    case = corpus.sklearn_estimator(str(tmp_path))
    report = scan_case(tmp_path, case)
    assert report.worst == Severity.MEDIUM, [(f.rule, f.severity.label, f.detail)
                                             for f in report.findings]
    assert {f.rule for f in report.findings} == {"AUD-PKL-003"}
