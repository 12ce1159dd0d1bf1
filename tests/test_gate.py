"""`auditor gate`: scan → SBOM → policy on real folders, and the CI integrations that run it."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from tests.builders import write_tiny_model
from tests.hubfixtures import C1, serve  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tiny-model"
BASELINE = ROOT / "policies" / "baseline.yaml"
PRODUCTION = ROOT / "policies" / "production.yaml"
GEO = ROOT / "policies" / "geopolitical-risk.yaml"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())


def test_bundled_example_passes_baseline(run_cli):
    run = run_cli("gate", EXAMPLE, "--policy", BASELINE)
    assert run.code == 0, run.out + run.err
    assert "verdict: PASS" in run.out


def test_bundled_example_fails_production_with_each_reason_and_fix(run_cli):
    run = run_cli("gate", EXAMPLE, "--policy", PRODUCTION)
    assert run.code == 1, run.err
    assert "PROD-002" in run.out and "provenance not proven" in run.out
    assert "PROD-003" in run.out and "not pinned" in run.out
    assert run.out.count("fix: ") == 2
    assert "verdict: FAIL" in run.out
    # weights are safetensors, licence apache-2.0 is allowed, no remote code
    assert not re.search(r"PROD-00[145]", run.out)


def test_revision_flag_pins_a_local_folder(run_cli):
    run = run_cli("gate", EXAMPLE, "--policy", PRODUCTION, "--revision", COMMIT,
                  "--format", "json")
    doc = json.loads(run.out)
    assert [v["rule"] for v in doc["models"][0]["violations"]] == ["PROD-002"]
    assert doc["models"][0]["pinned"] is True


def test_git_checkout_commit_pins_the_revision(tmp_path, run_cli):
    model = write_tiny_model(tmp_path / "model")
    (model / ".git" / "refs" / "heads").mkdir(parents=True)
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model / ".git" / "refs" / "heads" / "main").write_text(COMMIT + "\n")
    doc = json.loads(run_cli("gate", model, "--policy", PRODUCTION, "--format", "json").out)
    assert doc["models"][0]["revision"] == COMMIT
    assert "PROD-003" not in {v["rule"] for v in doc["models"][0]["violations"]}


def test_hf_cache_snapshot_name_pins_the_revision(tmp_path, run_cli):
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / COMMIT
    write_tiny_model(snapshot)
    doc = json.loads(run_cli("gate", snapshot, "--policy", PRODUCTION, "--format", "json").out)
    assert doc["models"][0]["name"] == "acme/tiny"
    assert doc["models"][0]["pinned"] is True


def test_sbom_written_by_gate_gives_the_same_verdict_to_policy_check(tmp_path, run_cli):
    sbom = tmp_path / "tiny.cdx.json"
    gate = run_cli("gate", EXAMPLE, "--policy", PRODUCTION, "--sbom", sbom, "--format", "json")
    check = run_cli("policy", "check", sbom, "--policy", PRODUCTION, "--format", "json")
    assert gate.code == check.code == 1
    strip = lambda d: [(v["rule"], v["message"]) for v in d["models"][0]["violations"]]  # noqa: E731
    assert strip(json.loads(gate.out)) == strip(json.loads(check.out))
    assert json.loads(sbom.read_text())["bomFormat"] == "CycloneDX"


def test_broken_policy_is_exit_2_before_any_scan(tmp_path, run_cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: x\nrules:\n  - id: X-1\n    scope: model\n    severity: high\n"
                   "    deny: model.nmae == 'a'\n    message: m\n")
    run = run_cli("gate", tmp_path / "does-not-exist", "--policy", bad)
    assert run.code == 2
    assert re.search(r"bad\.yaml:6:\d+: unknown fact model\.nmae", run.err), run.err
    assert "does-not-exist" not in run.err


def test_fail_on_threshold_controls_the_exit_code(run_cli):
    assert run_cli("gate", EXAMPLE, "--policy", PRODUCTION, "--fail-on", "critical").code == 0
    assert run_cli("gate", EXAMPLE, "--policy", PRODUCTION, "--fail-on", "high").code == 1


def test_verdict_written_atomically_with_output(tmp_path, run_cli):
    out = tmp_path / "verdict.json"
    run = run_cli("gate", EXAMPLE, "--policy", BASELINE, "--format", "json", "-o", out)
    assert run.code == 0 and run.out == ""
    assert json.loads(out.read_text())["verdict"] == "pass"


class _Canary:
    """Unpickling this would create the canary file: the gate must never do it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_gate_blocks_a_malicious_pickle_without_running_it(tmp_path, run_cli):
    canary = tmp_path / "CANARY"
    model = write_tiny_model(tmp_path / "model")
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(_Canary(str(canary))))
    run = run_cli("gate", model, "--policy", BASELINE, "--policy", PRODUCTION,
                  "--format", "json")
    assert run.code == 1
    rules = {v["rule"] for v in json.loads(run.out)["models"][0]["violations"]}
    assert {"BASE-001", "PROD-001"} <= rules
    assert not canary.exists()


def test_geopolitical_policy_reports_lineage_in_json(tmp_path, run_cli):
    model = write_tiny_model(tmp_path / "model")
    card = (model / "README.md").read_text().replace("example-org/tiny-base",
                                                      "deepseek-ai/DeepSeek-R1")
    (model / "README.md").write_text(card)
    doc = json.loads(run_cli("gate", model, "--policy", GEO, "--format", "json").out)
    lineage = {e["name"]: e for e in doc["models"][0]["lineage"]}
    base = lineage["deepseek-ai/DeepSeek-R1"]
    assert (base["publisher"], base["jurisdiction"], base["tier"]) == ("deepseek-ai", "CN",
                                                                      "restricted")
    assert "GEO-001" in base["tripped"]
    assert doc["verdict"] == "fail"


# --- the shipped CI integrations run their own command lines ---------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GITHUB_OUTPUT"] = str(tmp_path / "github_output")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _action_gate_step(inputs: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The action's gate step: its script and env with `${{ }}` expressions substituted."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    defaults = {k: v.get("default", "") for k, v in action["inputs"].items()}
    values = {**defaults, **inputs}

    def substitute(text: str) -> str:
        text = text.replace("${{ github.action_path }}", str(ROOT))
        return re.sub(r"\$\{\{ inputs\.([\w-]+) \}\}", lambda m: values[m.group(1)], text)

    step = next(s for s in action["runs"]["steps"] if s.get("id") == "gate")
    return step["run"], {k: substitute(v) for k, v in step["env"].items()}


def test_action_gate_step_runs_against_the_example(tmp_path):
    script, step_env = _action_gate_step({"target": str(EXAMPLE),
                                          "policies": "production\n baseline \n"})
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path,
                          env={**_env(tmp_path), **step_env}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr  # the verdict fails the job in a later step
    assert (tmp_path / "github_output").read_text().strip() == "exit-code=1"
    sarif = json.loads((tmp_path / "auditor.sarif").read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"PROD-002", "PROD-003"}
    assert json.loads((tmp_path / "auditor.cdx.json").read_text())["bomFormat"] == "CycloneDX"
    assert "verdict: FAIL" in proc.stdout  # the readable verdict is printed in the job log


def test_action_defaults_to_the_shipped_baseline_policy(tmp_path):
    """The input plumbing alone, with a stand-in `auditor` that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "auditor"
    stub.write_text('#!/bin/sh\necho "$@" >> "$STUB_LOG"\n')
    stub.chmod(0o755)
    script, step_env = _action_gate_step({"target": "models/m"})
    env = {**_env(tmp_path), **step_env, "STUB_LOG": str(tmp_path / "log")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    gate = (tmp_path / "log").read_text().splitlines()[0]
    assert gate == (f"gate models/m --policy {ROOT}/policies/baseline.yaml --fail-on low "
                    "--sbom auditor.cdx.json --format sarif -o auditor.sarif")


def test_action_uploads_sarif_and_fails_the_job_on_the_verdict():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    steps = action["runs"]["steps"]
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif }}"
    assert steps[-1]["run"] == 'exit "${{ steps.gate.outputs.exit-code }}"'


def test_pre_commit_hook_entry_runs_against_a_fixture(tmp_path):
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    model = write_tiny_model(tmp_path / "model")
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(_Canary(str(tmp_path / "C"))))
    args = [str(model) if a == "." else a for a in hook["args"]]
    proc = subprocess.run([*hook["entry"].split(), *args], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # blocks the commit
    assert "BASE-001" in proc.stdout
    assert not (tmp_path / "C").exists()
    assert re.search(hook["files"], "weights/model.safetensors")


def test_gitlab_example_commands_run(tmp_path):
    job = yaml.safe_load((ROOT / "examples/ci/gitlab-ci.yml").read_text())["model-gate"]
    lines = [line for line in job["script"] + job["after_script"] if line.startswith("auditor ")]
    assert len(lines) == 3
    script = "\n".join(lines).replace("policies/", f"{ROOT}/policies/")
    env = {**_env(tmp_path), "MODEL": str(EXAMPLE)}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # the last command tolerates the failing verdict
    assert (tmp_path / "auditor-junit.xml").read_text().startswith("<?xml")
    sarif = json.loads((tmp_path / "auditor.sarif").read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert sarif["runs"][0]["results"]
    assert set(job["artifacts"]["paths"]) == {"auditor.cdx.json", "auditor.sarif",
                                              "auditor-junit.xml"}


def test_github_workflow_example_uses_the_action_with_sarif_permissions():
    flow = yaml.safe_load((ROOT / "examples/ci/github-actions.yml").read_text())
    assert flow["permissions"]["security-events"] == "write"
    steps = flow["jobs"]["gate"]["steps"]
    gate = next(s for s in steps if "auditor" in s.get("uses", ""))
    action_inputs = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
    assert set(gate["with"]) <= set(action_inputs)


def test_following_the_production_fixes_makes_the_example_pass(tmp_path, run_cli):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    model = write_tiny_model(tmp_path / "model")
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert run_cli("sign", model, "--key", tmp_path / "key.pem").code == 0
    run = run_cli("gate", model, "--policy", PRODUCTION, "--key", tmp_path / "pub.pem",
                  "--revision", COMMIT)
    assert run.code == 0, run.out + run.err
    assert "verdict: PASS" in run.out


def test_hub_model_at_a_commit_passes_production_by_upstream_digests(run_cli, serve):  # noqa: F811
    serve()
    pinned = run_cli("gate", f"hf://org/tiny@{C1}", "--policy", PRODUCTION, "--format", "json")
    assert pinned.code == 0, pinned.out + pinned.err
    doc = json.loads(pinned.out)
    assert doc["models"][0]["name"] == "org/tiny" and doc["models"][0]["pinned"] is True
    branch = run_cli("gate", "hf://org/tiny@main", "--policy", PRODUCTION, "--format", "json")
    assert branch.code == 1
    assert [v["rule"] for v in json.loads(branch.out)["models"][0]["violations"]] == ["PROD-003"]
