"""JUnit XML output: one test case per rule × model; failures, errors and waived skips."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

from auditor.model import Severity
from auditor.policy.engine import evaluate, load_policies
from auditor.report import junit
from auditor.sbom.facts import models_from_sbom
from tests.sbom_factory import model_sbom

ROOT = Path(__file__).resolve().parent.parent


def _two_models() -> dict:
    """A third-party style SBOM with two models (each with its own files)."""
    doc = model_sbom("acme/a", revision=None)
    second = dict(doc["metadata"]["component"], name="acme/b", **{"bom-ref": "model-b"})
    doc["components"].append(second)
    return doc


def _render(tmp_path: Path, doc: dict, extra: str = "") -> ET.Element:
    paths = [ROOT / "policies" / "production.yaml"]
    if extra:
        (tmp_path / "x.yaml").write_text(extra)
        paths.append(tmp_path / "x.yaml")
    verdict = evaluate(load_policies(paths), models_from_sbom(doc, "s.json"), sbom="s.json",
                       today=datetime.date(2026, 12, 1))
    return ET.fromstring(junit.to_text(verdict, Severity.LOW))


def test_one_test_case_per_rule_and_model(tmp_path):
    root = _render(tmp_path, _two_models())
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 5 * 2
    assert {c.get("classname") for c in cases} == {"acme/a", "acme/b"}
    assert root.get("tests") == "10"
    failed = {(c.get("classname"), c.get("name").split(":")[0]) for c in cases
              if c.find("failure") is not None}
    assert ("acme/a", "PROD-003") in failed and ("acme/a", "PROD-002") in failed
    assert root.get("failures") == str(len(failed))
    failure = next(c for c in cases if c.get("name").startswith("PROD-003")).find("failure")
    assert failure.get("type") == "high" and "fix: " in failure.text


def test_waived_cases_are_skipped_and_broken_rules_are_errors(tmp_path):
    extra = ("policy: x\nrules:\n  - id: X-1\n    scope: model\n    severity: low\n"
             "    deny: model.name\n    message: broken\n"
             "waivers:\n  - rule: PROD-003\n    model: acme/a\n    reason: r\n"
             "    approver: carol@example.com\n    expires: 2027-01-01\n")
    root = _render(tmp_path, model_sbom("acme/a", revision=None), extra)
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"production", "x"}
    skipped = suites["production"].find("./testcase/skipped")
    assert "carol@example.com until 2027-01-01" in skipped.get("message")
    assert suites["production"].get("skipped") == "1"
    assert suites["x"].find("./testcase/error") is not None
    assert root.get("errors") == "1"


# --- the scan result as JUnit (`auditor scan --format junit`) ---------------------------------


def test_scan_junit_suite_per_model_case_per_file_failing_at_fail_on(run_cli, tmp_path):
    import pickle
    import xml.etree.ElementTree as ET

    from tests.builders import write_tiny_model

    model = write_tiny_model(tmp_path / "model")
    (model / "evil.pkl").write_bytes(pickle.dumps(eval, protocol=2)[:-1] + b"(S'1'\ntR.")
    files = sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file())
    run = run_cli("scan", model, "--format", "junit", "--fail-on", "critical")
    root = ET.fromstring(run.out)
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "model"
    cases = {c.get("name"): c for c in suites[0].findall("testcase")}
    assert set(cases) - {"(model)"} == set(files)
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {"evil.pkl"}
    assert "AUD-PKL" in cases["evil.pkl"].find("failure").text
    assert suites[0].get("failures") == root.get("failures") == "1"
    assert suites[0].get("tests") == str(len(cases))
    assert run.code == 1
