"""`auditor policy test DIR`: policy unit tests, SBOM fixtures with the outcomes they must give.

A policy is code a security team owns, so it gets tests like code (the idea
of `opa test`). Each `*_test.yaml` file under DIR names the policies it
exercises and a list of cases:

    policies: [../baseline.yaml]      # relative to the test file
    today: 2026-12-01                 # the evaluation date (waiver expiry); default: today
    cases:
      - name: a pickled model fails
        sbom: sboms/pickle-weights.json
        violations: [BASE-001]        # exactly these rules tripped (unwaived); [] = passes
        waived: [GEO-002]             # optional: exactly these rules waived
        expired: [GEO-002]            # optional: rules whose waiver had expired

Outcomes compare as sets of rule ids, so a case says *which* rules trip,
not how many components tripped them.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from auditor.errors import ConfigError
from auditor.policy.engine import PolicySet, evaluate, load_policies
from auditor.policy.schema import Mark, Problem, compose_yaml, mapping, mark_of, scalar
from auditor.sbom.facts import models_from_sbom

_FILE_KEYS = {"policies", "today", "cases"}
_CASE_KEYS = {"name", "sbom", "violations", "waived", "expired"}


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    mark: Mark
    failures: tuple[str, ...]  # empty when the case passed

    @property
    def passed(self) -> bool:
        return not self.failures


def run_tests(folder: Path) -> list[CaseResult]:
    """Run every `*_test.yaml` under `folder`; a broken test file is a ConfigError (exit 2)."""
    files = sorted(folder.rglob("*_test.yaml")) if folder.is_dir() else [folder]
    if not files:
        raise ConfigError(f"{folder}: no *_test.yaml files")
    results: list[CaseResult] = []
    for path in files:
        results += _run_file(path)
    return results


def _run_file(path: Path) -> list[CaseResult]:
    where = str(path)
    problems: list[Problem] = []
    root = compose_yaml(path, problems)
    if root is None:
        raise ConfigError(str(problems[0]))
    top = mapping(where, root, _FILE_KEYS, {"policies", "cases"}, problems, "policy test file")
    policies = _strings(where, top.get("policies"), problems, "policies")
    today = scalar(top["today"]) if "today" in top else datetime.date.today()
    if not isinstance(today, datetime.date) or isinstance(today, datetime.datetime):
        problems.append(Problem(mark_of(where, top["today"]), "today must be a date YYYY-MM-DD"))
    cases = top.get("cases")
    if cases is not None and (not isinstance(cases, yaml.SequenceNode) or not cases.value):
        problems.append(Problem(mark_of(where, cases), "cases must be a non-empty list"))
    if problems:
        raise ConfigError(str(problems[0]))
    assert isinstance(cases, yaml.SequenceNode) and isinstance(today, datetime.date)
    specs = [_parse_case(where, node) for node in cases.value]  # all checked before running
    policy_set = load_policies([path.parent / p for p in policies])
    return [_run_case(where, path.parent, case, policy_set, today) for case in specs]


@dataclass(frozen=True)
class _Case:
    name: str
    sbom: str
    sbom_mark: Mark
    expected: dict[str, list[str]]
    mark: Mark


def _parse_case(where: str, node: yaml.Node) -> _Case:
    problems: list[Problem] = []
    keys = mapping(where, node, _CASE_KEYS, {"name", "sbom", "violations"}, problems, "case")
    name = scalar(keys["name"]) if "name" in keys else None
    sbom = scalar(keys["sbom"]) if "sbom" in keys else None
    expected = {k: _strings(where, keys.get(k), problems, k) for k in ("violations", "waived",
                                                                        "expired") if k in keys}
    if not problems and (not isinstance(name, str) or not isinstance(sbom, str)):
        problems.append(Problem(mark_of(where, node), "a case needs name: and sbom: strings"))
    if problems:
        raise ConfigError(str(problems[0]))
    assert isinstance(name, str) and isinstance(sbom, str)
    return _Case(name, sbom, mark_of(where, keys["sbom"]), expected, mark_of(where, node))


def _run_case(
    where: str, base: Path, case: _Case, policies: PolicySet, today: datetime.date
) -> CaseResult:
    sbom_path = base / case.sbom
    try:
        doc = json.loads(sbom_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{case.sbom_mark}: cannot read SBOM {sbom_path}: {exc}") from None
    verdict = evaluate(policies, models_from_sbom(doc, str(sbom_path)), sbom=str(sbom_path),
                       today=today)
    got = {
        "violations": sorted({v.rule for v in verdict.active()}),
        "waived": sorted({v.rule for v in verdict.violations if not v.active}),
        "expired": sorted({v.rule for v in verdict.violations if v.expired_waiver}),
    }
    failures = tuple(
        f"{key}: expected {sorted(set(want)) or 'none'}, got {got[key] or 'none'}"
        for key, want in case.expected.items() if sorted(set(want)) != got[key]
    )
    return CaseResult(where, case.name, case.mark, failures)


def _strings(where: str, node: yaml.Node | None, problems: list[Problem], what: str) -> list[str]:
    value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(node, yaml.SequenceNode):
        value = [scalar(item) for item in node.value]
    if node is None or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        at = mark_of(where, node) if node is not None else Mark(where, 1, 1)
        problems.append(Problem(at, f"{what} must be a list of strings"))
        return []
    return value


def to_text(results: list[CaseResult]) -> str:
    """One line per case (like `opa test -v`), failures explained, then a count."""
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.mark}: {r.name}")
        lines += [f"        {failure}" for failure in r.failures]
    passed = sum(r.passed for r in results)
    lines.append("-" * 40)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines) + "\n"
