"""Malformed policies: every problem is `file:line:col: message`, and exit 2 everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.policy.lint import lint_policy
from tests.sbom_factory import model_sbom

ROOT = Path(__file__).resolve().parent.parent
GOOD_RULE = """\
  - id: T-001
    scope: model
    severity: high
    deny: model.pinned == false
    message: "{model.name} is not pinned"
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    return [str(p) for p in lint_policy(path)[1]]


@pytest.mark.parametrize(("body", "expected"), [
    ("policy: t\nrules:\n  - id: [unclosed\n", r"p\.yaml:4:1: YAML syntax error"),
    ("policy: t\nrulez: []\n", r"p\.yaml:2:1: unknown key 'rulez' in policy"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("    message", "    mesage"),
     r"p\.yaml:7:5: unknown key 'mesage' in rule"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("model.pinned == false", "model.pinned =="),
     r"p\.yaml:6:\d+: rule T-001: invalid CEL: Syntax error"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("model.pinned", "model.pined"),
     r"p\.yaml:6:17: unknown fact model\.pined \(known: name, publisher"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("model.pinned", "modle.pinned"),
     r"p\.yaml:6:11: unknown fact 'modle' in a model-scope rule"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("model.pinned == false", "file.weights == 'x'"),
     r"p\.yaml:6:11: unknown fact 'file' in a model-scope rule .*only file-scope"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("{model.name}", "{model.nam}"),
     r"p\.yaml:7:14: message \{model\.nam\}: unknown fact model\.nam"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("scope: model", "scope: everything"),
     r"p\.yaml:4:12: unknown scope 'everything'"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("severity: high", "severity: severe"),
     r"p\.yaml:5:15: unknown severity 'severe'"),
    ("policy: t\nrules:\n" + GOOD_RULE + GOOD_RULE, r"p\.yaml:8:5: duplicate rule id 'T-001'"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("    deny:", "    require: true\n    deny:"),
     r"p\.yaml:3:5: a rule has exactly one of deny"),
    ("policy: t\nrules: []\n", r"p\.yaml:2:8: rules must be a non-empty list"),
    ("policy: t\nrules:\n" + GOOD_RULE + "waivers:\n  - rule: T-001\n    model: a/b\n"
     "    reason: r\n    approver: me\n    expires: '2026-01-01'\n",
     r"p\.yaml:13:14: expires must be a date"),
    ("policy: t\nrules:\n" + GOOD_RULE + "waivers:\n  - rule: T-001\n    reason: r\n"
     "    approver: me\n    expires: 2026-01-01\n", r"p\.yaml:9:5: a waiver names exactly one"),
    ("policy: t\nrules:\n" + GOOD_RULE + "waivers:\n  - rule: T-001\n    model: a/b\n"
     "    expires: 2026-01-01\n", r"p\.yaml:9:5: waiver is missing required key 'approver'"),
    ("policy: t\ndata:\n  pubs: nowhere.yaml\nrules:\n" + GOOD_RULE,
     r"p\.yaml:3:9: data pubs: no such file"),
    ("policy: t\nrules:\n" + GOOD_RULE.replace("model.pinned == false", "data.nope.x"),
     r"p\.yaml:6:16: unknown data file 'nope'"),
])
def test_malformed_policy_problem_is_located(tmp_path, body, expected):
    found = problems(write(tmp_path, body))
    assert found, "expected a problem"
    assert any(__import__("re").search(expected, p) for p in found), found


def test_block_scalar_expression_errors_point_into_the_block(tmp_path):
    body = ("policy: t\nrules:\n  - id: T-1\n    scope: lineage\n    severity: high\n"
            "    deny: >-\n      ancestor.tier == \"x\" &&\n      ancestor.tierr == \"y\"\n"
            "    message: m\n")
    assert problems(write(tmp_path, body)) == [
        f"{tmp_path}/p.yaml:8:16: unknown fact ancestor.tierr (known: name, publisher, version, "
        "relation, depth, resolved, declared, grade, evidence, publisher_grade, score, "
        "organisation, jurisdiction, tier)"
    ]


def test_macro_variables_over_the_lineage_are_checked_as_ancestors(tmp_path):
    body = ("policy: t\nrules:\n  - id: T-1\n    scope: model\n    severity: high\n"
            "    deny: lineage.exists(a, a.tier == 'restricted') && lineage.exists(b, b.tire)\n"
            "    message: m\n")
    found = problems(write(tmp_path, body))
    assert len(found) == 1 and "unknown fact ancestor.tire" in found[0]


def test_strings_and_comments_are_not_taken_for_facts(tmp_path):
    body = ("policy: t\nrules:\n  - id: T-1\n    scope: model\n    severity: high\n"
            "    deny: |\n      model.name == \"model.bogus\" // model.other\n    message: m\n")
    assert problems(write(tmp_path, body)) == []


def test_shipped_policies_lint_clean(run_cli):
    policies = sorted((ROOT / "policies").glob("*.yaml"))
    assert len(policies) == 3
    run = run_cli("policy", "lint", *policies)
    assert run.code == 0, run.err
    assert "3 policy file(s) OK" in run.out


def test_lint_cli_lists_every_problem_and_exits_2(tmp_path, run_cli):
    path = write(tmp_path, "policy: t\nextra: 1\nrules:\n" + GOOD_RULE.replace(
        "model.pinned", "model.pined"))
    run = run_cli("policy", "lint", path)
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:2:1: unknown key 'extra'")
    assert lines[1].startswith(f"{path}:7:17: unknown fact model.pined")


@pytest.mark.parametrize("command", ["check", "gate"])
def test_commands_refuse_a_broken_policy_with_exit_2(tmp_path, run_cli, command):
    path = write(tmp_path, "policy: t\nrules:\n" + GOOD_RULE.replace("severity: high",
                                                                     "severity: nope"))
    sbom = tmp_path / "s.json"
    sbom.write_text(json.dumps(model_sbom()))
    args = ("policy", "check", sbom) if command == "check" else ("gate", tmp_path)
    run = run_cli(*args, "--policy", path)
    assert run.code == 2
    assert run.err.startswith(f"auditor: error: {path}:5:15: unknown severity 'nope'")
    assert len(run.err.strip().splitlines()) == 1


def test_a_waivers_only_file_alone_is_refused(tmp_path, run_cli):
    path = write(tmp_path, "policy: exceptions\nwaivers:\n  - rule: X\n    model: a/b\n"
                 "    reason: r\n    approver: me\n    expires: 2030-01-01\n")
    sbom = tmp_path / "s.json"
    sbom.write_text(json.dumps(model_sbom()))
    run = run_cli("policy", "check", sbom, "--policy", path)
    assert run.code == 2 and "no rules to evaluate" in run.err


def test_rule_ids_must_be_unique_across_policy_files(tmp_path, run_cli):
    a = write(tmp_path, "policy: a\nrules:\n" + GOOD_RULE, "a.yaml")
    b = write(tmp_path, "policy: b\nrules:\n" + GOOD_RULE, "b.yaml")
    sbom = tmp_path / "s.json"
    sbom.write_text(json.dumps(model_sbom()))
    run = run_cli("policy", "check", sbom, "--policy", a, "--policy", b)
    assert run.code == 2
    assert f"{b}:3:5: rule id 'T-001' also defined at {a}:3:5" in run.err


def test_duplicate_keys_in_data_files_are_errors(tmp_path):
    (tmp_path / "d.yaml").write_text("allowed: [a]\nallowed: [b]\n")
    found = problems(write(tmp_path, "policy: t\ndata:\n  lic: d.yaml\nrules:\n" + GOOD_RULE))
    assert found == [f"{tmp_path}/d.yaml:2:1: duplicate key 'allowed'"]


def test_an_alias_bomb_in_a_data_file_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
              f"*a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    found = problems(write(tmp_path, "policy: t\ndata:\n  bomb: bomb.yaml\nrules:\n" + GOOD_RULE))
    assert found == [f"{tmp_path}/bomb.yaml:1:1: more than 1,000,000 YAML nodes once aliases "
                     "are expanded (an alias bomb?)"]
