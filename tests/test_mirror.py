"""`auditor mirror scan` / `status`: incremental rescans, drift, SBOMs, resume, locking."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditor.mirror import scan as mirror_scan
from auditor.mirror.state import exclusive
from auditor.scanning import engine
from tests.builders import write_tiny_model
from tests.hubfixtures import C1, C2, tiny_files
from tests.test_hub_cache import blob_of, make_cache

PICKLE_RCE = (b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93"
              b"\x8c\x02id\x85R.")
POLICY = """\
policy: mirror-test
rules:
  - id: MT-001
    description: No notes shipped with weights.
    scope: file
    severity: medium
    deny: file.path == "notes.txt"
    message: "{file.path} is not allowed"
"""


@pytest.fixture
def tree(tmp_path) -> Path:
    """A plain org/name tree: three clean models."""
    root = tmp_path / "mirror"
    for name in ("org/a", "org/b", "other/c"):
        write_tiny_model(root / name)
    return root


@pytest.fixture
def hub(tmp_path) -> Path:
    """A Hugging Face cache: two snapshots of org/tiny sharing blobs, one of org/other."""
    root = tmp_path / "hub"
    make_cache(root, "org/tiny", C1, tiny_files(), refs={"main": C1}, trees=False)
    make_cache(root, "org/tiny", C2, tiny_files(), refs={"main": C2}, trees=False)
    make_cache(root, "org/other", C2, tiny_files(), trees=False)
    return root


def mirror(run_cli, root: Path, state: Path, *args):
    result = run_cli("mirror", "scan", root, "--state", state, "--format", "json", "-j", "2",
                     *args)
    return result, (json.loads(result.out) if result.out else None)


def by_key(summary: dict) -> dict[str, dict]:
    return {o["key"]: o for o in summary["models"]}


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def files_of(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file())


def sbom_stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_first_scan_reads_every_file_and_writes_one_sbom_per_model(run_cli, tree, tmp_path):
    state = tmp_path / "state" / "mirror.db"
    result, summary = mirror(run_cli, tree, state)
    assert result.code == 0, result.err
    s = summary["summary"]
    assert (s["models"], s["added"], s["files"]) == (3, 3, 3 * files_of(tree / "org" / "a"))
    assert s["files_read"] == s["files"] and s["bytes_read"] >= tree_bytes(tree)
    assert sorted(p.name for p in (state.parent / "sboms").iterdir()) == [
        "org__a.cdx.json", "org__b.cdx.json", "other__c.cdx.json"]
    doc = json.loads((state.parent / "sboms" / "org__a.cdx.json").read_text())
    assert doc["metadata"]["component"]["name"] == "org/a"


def test_unchanged_rescan_reads_no_file_content(run_cli, tree, tmp_path, monkeypatch):
    state = tmp_path / "mirror.db"
    mirror(run_cli, tree, state)
    stamps = sbom_stamps(tmp_path / "sboms")

    def no_reading(path):
        raise AssertionError(f"{path} was opened for scanning")

    monkeypatch.setattr(engine, "_open_regular", no_reading)
    result, summary = mirror(run_cli, tree, state)
    assert result.code == 0, result.err
    s = summary["summary"]
    assert (s["files_read"], s["bytes_read"], s["unchanged"], s["sboms_written"]) == (0, 0, 3, 0)
    assert sbom_stamps(tmp_path / "sboms") == stamps  # not even rewritten with the same bytes


def test_one_changed_file_is_the_only_one_read_again(run_cli, tree, tmp_path):
    state = tmp_path / "mirror.db"
    mirror(run_cli, tree, state)
    stamps = sbom_stamps(tmp_path / "sboms")
    config = tree / "org" / "a" / "config.json"
    config.write_text(config.read_text().replace('"llama"', '"mistral"'))
    result, summary = mirror(run_cli, tree, state)
    s = summary["summary"]
    assert s["files_read"] == 1 and s["bytes_read"] >= config.stat().st_size
    a = by_key(summary)["org/a"]
    assert a["change"] == "changed" and a["changed_files"] == ["config.json"]
    # An unpinned folder may change: reported (medium), not a tampering failure.
    assert [f["rule"] for f in a["new_findings"]] == ["AUD-MIR-004"] and not a["drift"]
    assert result.code == 0
    now = sbom_stamps(tmp_path / "sboms")
    assert now["org__a.cdx.json"] != stamps["org__a.cdx.json"]
    assert {k: v for k, v in now.items() if k != "org__a.cdx.json"} == {
        k: v for k, v in stamps.items() if k != "org__a.cdx.json"}


def test_blob_shared_by_snapshots_is_read_once(run_cli, hub, tmp_path):
    result, summary = mirror(run_cli, hub, tmp_path / "mirror.db")
    assert result.code == 0, result.err
    s = summary["summary"]
    assert s["models"] == 3 and s["files"] == 12
    assert s["files_read"] == 8  # org/tiny's two snapshots link the same four blobs
    assert sorted(by_key(summary)) == [f"org/other@{C2}", f"org/tiny@{C1}", f"org/tiny@{C2}"]


def test_tampered_cache_blob_is_critical_drift_on_every_run(run_cli, hub, tmp_path):
    state = tmp_path / "mirror.db"
    mirror(run_cli, hub, state)
    folder = hub / "models--org--other"
    blob = blob_of(folder, C2, "config.json")
    blob.write_bytes(blob.read_bytes().replace(b"llama", b"evil!"))
    result, summary = mirror(run_cli, hub, state)
    assert result.code == 1
    other = by_key(summary)[f"org/other@{C2}"]
    rules = {f["rule"] for f in other["new_findings"]}
    assert {"AUD-PROV-007", "AUD-MIR-001"} <= rules  # blob name and recorded digest disagree
    assert [d["file"] for d in other["drift"]] == ["config.json"]
    assert summary["summary"]["files_read"] == 1
    # Seeing the tampered bytes twice does not make them the baseline.
    result, summary = mirror(run_cli, hub, state)
    assert result.code == 1 and by_key(summary)[f"org/other@{C2}"]["drift"]


def test_new_rules_version_rescans_everything(run_cli, tree, tmp_path, monkeypatch):
    state = tmp_path / "mirror.db"
    mirror(run_cli, tree, state)
    monkeypatch.setattr(mirror_scan, "RULES_VERSION", "9.9.9+rules.99")
    result, summary = mirror(run_cli, tree, state)
    assert result.code == 0
    assert summary["summary"]["files_read"] == summary["summary"]["files"]
    assert summary["rules_version"] == "9.9.9+rules.99"
    _, summary = mirror(run_cli, tree, state)
    assert summary["summary"]["files_read"] == 0


def test_models_added_and_removed_are_reported(run_cli, tree, tmp_path):
    state = tmp_path / "mirror.db"
    mirror(run_cli, tree, state)
    shutil.rmtree(tree / "org" / "b")
    write_tiny_model(tree / "org" / "d")
    result, summary = mirror(run_cli, tree, state)
    assert result.code == 0
    assert [r["key"] for r in summary["removed"]] == ["org/b"]
    assert by_key(summary)["org/d"]["change"] == "added"
    assert summary["summary"]["files_read"] == files_of(tree / "org" / "d")
    assert not (tmp_path / "sboms" / "org__b.cdx.json").exists()


def test_new_dangerous_file_and_newly_failing_policy_exit_1_once(run_cli, tree, tmp_path):
    state = tmp_path / "mirror.db"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    result, _ = mirror(run_cli, tree, state, "--policy", policy)
    assert result.code == 0, result.err
    (tree / "org" / "b" / "notes.txt").write_text("hello\n")
    (tree / "other" / "c" / "extra.pkl").write_bytes(PICKLE_RCE)
    result, summary = mirror(run_cli, tree, state, "--policy", policy)
    assert result.code == 1
    b, c = by_key(summary)["org/b"], by_key(summary)["other/c"]
    assert b["policy"] == "fail" and "policy pass -> fail" in b["events"]
    assert [v["rule"] for v in b["new_violations"]] == ["MT-001"]
    assert "AUD-PKL-001" in {f["rule"] for f in c["new_findings"]} and c["fails"]
    # The same violations on the next run are not new: the nightly run passes again.
    result, summary = mirror(run_cli, tree, state, "--policy", policy)
    assert result.code == 0
    assert summary["summary"]["failing"] == 2


def test_killed_run_keeps_committed_models_and_resume_reports_their_deltas(
        run_cli, tree, tmp_path, monkeypatch):
    state = tmp_path / "mirror.db"
    (tree / "org" / "a" / "extra.pkl").write_bytes(PICKLE_RCE)
    finish = mirror_scan._finish
    calls = []

    def dies_on_the_third_model(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return finish(*args, **kwargs)

    monkeypatch.setattr(mirror_scan, "_finish", dies_on_the_third_model)
    result, _ = mirror(run_cli, tree, state)
    assert result.code == 3 and "killed" in result.err
    monkeypatch.setattr(mirror_scan, "_finish", finish)
    result, summary = mirror(run_cli, tree, state)
    # org/a and org/b were committed: only other/c is read again.
    assert summary["summary"]["files_read"] == files_of(tree / "other" / "c")
    assert tree_bytes(tree / "other" / "c") <= summary["summary"]["bytes_read"]
    assert summary["summary"]["bytes_read"] < tree_bytes(tree / "org")
    assert summary["resumed"]["runs"] == [1]
    carried = {o["key"]: o for o in summary["resumed"]["outcomes"]}
    assert carried["org/a"]["fails"]  # the killed run found it and never said so
    assert result.code == 1
    _, summary = mirror(run_cli, tree, state)
    assert summary["resumed"]["runs"] == [] and summary["verdict"] == "pass"


def test_second_concurrent_scan_is_refused(run_cli, tree, tmp_path):
    state = tmp_path / "mirror.db"
    with exclusive(state):
        result, _ = mirror(run_cli, tree, state)
    assert result.code == 2
    assert "another 'auditor mirror scan' is running" in result.err
    assert len(result.err.strip().splitlines()) == 1
    result, _ = mirror(run_cli, tree, state)
    assert result.code == 0


def test_status_shows_latest_verdicts_and_history(run_cli, tree, tmp_path):
    state = tmp_path / "mirror.db"
    (tree / "org" / "b" / "extra.pkl").write_bytes(PICKLE_RCE)
    mirror(run_cli, tree, state)
    (tree / "org" / "b" / "extra.pkl").unlink()
    mirror(run_cli, tree, state)
    result = run_cli("mirror", "status", "--state", state, "--format", "json")
    assert result.code == 0
    models = {m["key"]: m for m in json.loads(result.out)["models"]}
    b = models["org/b"]
    # The pickle is gone; its removal from an unpinned folder is reported (medium).
    assert (b["status"], b["verdict"]) == ("pass", "medium")
    assert [h["verdict"] for h in b["history"]] == ["medium", "critical"]
    assert "verdict critical -> medium" in b["history"][0]["events"]
    assert models["org/a"]["history"][0]["events"] == ["added"]
    text = run_cli("mirror", "status", "--state", state).out
    assert "org/b  verdict medium" in text and "run 1" in text


def test_status_without_state_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("mirror", "status", "--state", tmp_path / "none.db")
    assert result.code == 2 and "no mirror state" in result.err


def test_empty_root_is_refused_rather_than_marking_everything_removed(run_cli, tree, tmp_path):
    state = tmp_path / "mirror.db"
    mirror(run_cli, tree, state)
    empty = tmp_path / "unmounted"
    empty.mkdir()
    result, _ = mirror(run_cli, empty, state)
    assert result.code == 2 and "no models found" in result.err


def test_text_summary_names_the_failing_model(run_cli, tree, tmp_path):
    (tree / "org" / "a" / "extra.pkl").write_bytes(PICKLE_RCE)
    result = run_cli("mirror", "scan", tree, "--state", tmp_path / "m.db")
    assert result.code == 1
    assert "FAIL org/a  [added] verdict critical" in result.out
    assert "new AUD-PKL-001 critical extra.pkl" in result.out
    assert result.out.rstrip().endswith("fail-on high)")


def test_scan_killed_with_sigkill_resumes_without_rereading_committed_models(run_cli, tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    root = tmp_path / "mirror"
    for i in range(12):
        write_tiny_model(root / "org" / f"m{i:02}")
    state = tmp_path / "mirror.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", "mirror", "scan", str(root), "--state", str(state),
         "-j", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    committed: list[str] = []
    deadline = time.monotonic() + 60
    while len(committed) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if state.exists():
            try:
                with sqlite3.connect(state) as db:
                    committed = [k for (k,) in db.execute("SELECT key FROM models")]
            except sqlite3.OperationalError:  # schema not created yet
                continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(state) as db:
        committed = [k for (k,) in db.execute("SELECT key FROM models")]
    assert 2 <= len(committed) < 12, "the scan finished before it could be killed"
    result, summary = mirror(run_cli, root, state)
    assert result.code == 0, result.err
    assert summary["resumed"]["runs"] == [1]
    per_model = files_of(root / "org" / "m00")
    assert summary["summary"]["files_read"] == (12 - len(committed)) * per_model
    assert summary["summary"]["models"] == 12
    assert {o["key"] for o in summary["models"] if o["change"] == "unchanged"} == set(committed)


def test_file_added_to_or_removed_from_a_pinned_snapshot_is_drift(run_cli, hub, tmp_path):
    state = tmp_path / "mirror.db"
    mirror(run_cli, hub, state)
    snapshot = hub / "models--org--other" / "snapshots" / C2
    (snapshot / "config.json").unlink()
    (snapshot / "helper.py").write_text("print('hi')\n")
    result, summary = mirror(run_cli, hub, state)
    assert result.code == 1
    drift = {(d["rule"], d["file"]) for d in by_key(summary)[f"org/other@{C2}"]["drift"]}
    assert drift == {("AUD-MIR-002", "helper.py"), ("AUD-MIR-003", "config.json")}
    assert not by_key(summary)[f"org/tiny@{C2}"]["drift"]


def test_a_report_read_back_from_the_state_names_its_format_by_format_id():
    from auditor.mirror import codec
    from auditor.model import Coverage, FileReport, FormatId

    report = FileReport("m.safetensors", 8, {"sha256": "ab" * 32}, FormatId.SAFETENSORS,
                        Coverage.SCANNED)
    back = codec.file_from_json(json.loads(codec.dumps(codec.file_to_json(report))))
    assert back == report and type(back.format) is FormatId


def test_a_mirror_of_bases_builds_the_store_its_derivatives_are_measured_against(
        run_cli, tmp_path):
    """Run 1 adds every model to the store; run 2 measures a fine-tune against its base."""
    import numpy as np

    from tests.test_fingerprint_weights import BASE, EMBED, write_safetensors

    root = tmp_path / "mirror"
    (root / "Qwen" / "tiny-base").mkdir(parents=True)
    write_safetensors(root / "Qwen" / "tiny-base" / "model.safetensors", {EMBED: BASE})
    store = tmp_path / "store"
    first, _ = mirror(run_cli, root, tmp_path / "m.db", "--fingerprints", store,
                      "--add-fingerprints")
    assert first.code == 0, first.err
    assert [p.name for p in store.iterdir()] == ["Qwen--tiny-base.fingerprint.json"]
    (root / "acme" / "tuned").mkdir(parents=True)
    noise = np.random.default_rng(7).standard_normal(BASE.shape).astype(np.float32) * 0.002
    write_safetensors(root / "acme" / "tuned" / "model.safetensors", {EMBED: BASE + noise})
    second, _ = mirror(run_cli, root, tmp_path / "m.db", "--fingerprints", store)
    assert second.code == 0, second.err
    sbom = json.loads(next((tmp_path / "sboms").glob("acme*")).read_text())
    (ancestor,) = sbom["metadata"]["component"]["pedigree"]["ancestors"]
    props = {p["name"]: p["value"] for p in ancestor["properties"]}
    assert (ancestor["name"], props["auditor:lineage:grade"],
            props["auditor:lineage:relation"]) == ("Qwen/tiny-base", "measured", "same-base")
    assert float(props["auditor:lineage:score"]) > 0.9


def test_the_mirror_never_adds_a_model_measured_as_another_publishers(run_cli, tmp_path):
    """A relabelled derivative added under its claimed name would launder later copies."""
    import numpy as np

    from tests.test_fingerprint_weights import BASE, EMBED, write_safetensors

    root = tmp_path / "mirror"
    (root / "Qwen" / "tiny-base").mkdir(parents=True)
    write_safetensors(root / "Qwen" / "tiny-base" / "model.safetensors", {EMBED: BASE})
    store = tmp_path / "store"
    assert mirror(run_cli, root, tmp_path / "m.db", "--fingerprints", store,
                  "--add-fingerprints")[0].code == 0
    (root / "mistralai" / "relabelled").mkdir(parents=True)
    noise = np.random.default_rng(3).standard_normal(BASE.shape).astype(np.float32) * 0.002
    write_safetensors(root / "mistralai" / "relabelled" / "model.safetensors",
                      {EMBED: BASE + noise})
    second, _ = mirror(run_cli, root, tmp_path / "m.db", "--fingerprints", store,
                       "--add-fingerprints")
    assert second.code == 1  # mistralai's name on Qwen's bytes: AUD-LIN-001, a new high finding
    assert [p.name for p in store.iterdir()] == ["Qwen--tiny-base.fingerprint.json"]


def test_add_fingerprints_needs_a_store(run_cli, tmp_path):
    run = run_cli("mirror", "scan", tmp_path, "--add-fingerprints")
    assert run.code == 2 and "--add-fingerprints needs --fingerprints" in run.err
