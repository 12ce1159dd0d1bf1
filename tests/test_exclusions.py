"""Exclusions are visible: every file an exclude pattern leaves out is named with its pattern
in the JSON and text reports and the SBOM, counted in coverage, and never read."""

from __future__ import annotations

import json

from auditor.sbom.facts import models_from_sbom
from tests.builders import write_tiny_model
from tests.hubfixtures import files_by_path, serve  # noqa: F401
from tests.hubserver import HubFile, HubRepo

SHA = "7" * 40
# A pickle that would run `os.system` when loaded: a critical finding whenever it is read.
EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."


def _model(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "payload.bin").write_bytes(EVIL)
    (model / "notes").mkdir()
    (model / "notes" / "a.txt").write_text("a\n")
    (model / "notes" / "b.txt").write_text("b\n")
    return model


def _props(sbom: dict, name: str) -> list[str]:
    model = sbom["metadata"]["component"]
    comps = [model, *sbom.get("components", [])]
    return [p["value"] for c in comps if c.get("type") == "machine-learning-model"
            for p in c.get("properties", []) if p["name"] == name]


def test_excluded_files_are_named_with_their_pattern_everywhere_and_never_read(
    run_cli, tmp_path
):
    model = _model(tmp_path)
    sbom_path = tmp_path / "bom.cdx.json"
    run = run_cli("scan", model, "--format", "json", "--exclude", "*.bin",
                  "--exclude", "notes/*", "--sbom", sbom_path)
    assert run.code == 0, run.err  # the malicious pickle was excluded, so never read
    doc = json.loads(run.out)
    (report,) = doc["models"]
    assert "payload.bin" not in files_by_path(doc)
    assert not any(p.startswith("notes/") for p in files_by_path(doc))
    assert report["facts"]["excluded"] == {
        "patterns": ["*.bin", "notes/*"], "count": 3,
        "files": [{"path": "notes/a.txt", "pattern": "notes/*"},
                  {"path": "notes/b.txt", "pattern": "notes/*"},
                  {"path": "payload.bin", "pattern": "*.bin"}]}
    assert doc["summary"]["excluded"] == 3

    sbom = json.loads(sbom_path.read_text())
    assert _props(sbom, "auditor:scan:coverage:excluded") == ["3"]
    assert _props(sbom, "auditor:scan:excluded") == [
        "notes/a.txt (notes/*)", "notes/b.txt (notes/*)", "payload.bin (*.bin)"]
    (facts,) = models_from_sbom(sbom, "bom")
    assert facts.model.excluded == 3
    assert all(f.path != "payload.bin" for f in facts.files)
    assert run_cli("sbom", "validate", sbom_path).code == 0

    text = run_cli("scan", model, "--exclude", "*.bin", "--exclude", "notes/*").out
    assert "excluded: 3 file(s) by --exclude/config exclude (*.bin, notes/*); not read" in text
    assert "  excluded payload.bin  (*.bin)" in text
    assert "  excluded notes/a.txt  (notes/*)" in text
    coverage = next(line for line in text.splitlines() if line.startswith("coverage:"))
    assert coverage.endswith("; 3 excluded by --exclude (not read)")


def test_without_the_exclusion_the_payload_is_read(run_cli, tmp_path):
    """The control for the test above: the same folder fails when nothing is excluded, and
    its SBOM says that nothing was left out."""
    model = _model(tmp_path)
    sbom_path = tmp_path / "bom.cdx.json"
    run = run_cli("scan", model, "--format", "json", "--sbom", sbom_path)
    assert run.code == 1
    doc = json.loads(run.out)
    assert "excluded" not in doc["models"][0]["facts"]
    assert doc["summary"]["excluded"] == 0
    sbom = json.loads(sbom_path.read_text())
    assert _props(sbom, "auditor:scan:coverage:excluded") == ["0"]
    assert _props(sbom, "auditor:scan:excluded") == []
    assert "excluded" not in run_cli("scan", model).out


def test_config_exclude_is_recorded_too_and_a_pattern_matching_nothing_says_zero(
    run_cli, tmp_path
):
    model = _model(tmp_path)
    config = tmp_path / "auditor.toml"
    config.write_text('exclude = ["*.bin", "*.nothing"]\n')
    doc = json.loads(run_cli("scan", model, "--format", "json", "--config", config).out)
    assert doc["models"][0]["facts"]["excluded"]["files"] == [
        {"path": "payload.bin", "pattern": "*.bin"}]
    empty = json.loads(run_cli("scan", model, "--format", "json", "--config", config,
                               "--exclude", "*.nothing").out)
    assert empty["models"][0]["facts"]["excluded"]["count"] == 1


def test_a_huge_exclusion_is_counted_in_full_and_named_up_to_the_bound(run_cli, tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "logs").mkdir()
    for i in range(1005):
        (model / "logs" / f"{i:04}.log").write_text("x")
    sbom_path = tmp_path / "bom.cdx.json"
    doc = json.loads(run_cli("scan", model, "--format", "json", "--exclude", "*.log",
                             "--sbom", sbom_path).out)
    left_out = doc["models"][0]["facts"]["excluded"]
    assert (left_out["count"], len(left_out["files"])) == (1005, 1000)
    sbom = json.loads(sbom_path.read_text())
    assert _props(sbom, "auditor:scan:coverage:excluded") == ["1005"]
    assert len(_props(sbom, "auditor:scan:excluded")) == 1000
    assert "... and 5 more excluded" in run_cli("scan", model, "--exclude", "*.log").out


def _hub_repo() -> HubRepo:
    files = [HubFile("config.json", b'{"model_type": "llama"}\n'),
             HubFile("payload.bin", EVIL, lfs=True),
             HubFile("README.md", b"---\nlicense: mit\n---\n# remote\n")]
    return HubRepo("org/remote", {SHA: files}, refs={"main": SHA})


def test_remote_only_hub_files_excluded_by_pattern_are_counted(
    run_cli, serve, tmp_path  # noqa: F811
):
    serve([_hub_repo()])
    run = run_cli("scan", f"hf://org/remote@{SHA}", "--remote-only", "--format", "json",
                  "--cache-dir", tmp_path / "cache", "--exclude", "*.bin")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert "payload.bin" not in files_by_path(doc)
    assert doc["models"][0]["facts"]["excluded"]["files"] == [
        {"path": "payload.bin", "pattern": "*.bin"}]
    assert doc["summary"]["excluded"] == 1


def test_a_downloaded_hub_file_excluded_is_counted_once(run_cli, serve, tmp_path):  # noqa: F811
    serve([_hub_repo()])
    run = run_cli("scan", f"hf://org/remote@{SHA}", "--format", "json",
                  "--cache-dir", tmp_path / "cache", "--exclude", "payload.bin")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert "payload.bin" not in files_by_path(doc)
    assert doc["models"][0]["facts"]["excluded"]["count"] == 1
