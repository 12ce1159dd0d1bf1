"""hf:// with --download: pinned to the commit, every file hashed and compared with the Hub."""

from __future__ import annotations

import json

import pytest

from tests.hubfixtures import (
    C1,
    C2,
    WEIGHTS,
    files_by_path,
    findings,
    serve,  # noqa: F401
    tiny_files,
    tiny_repo,
)
from tests.hubserver import HubFile, HubRepo, git_blob_id


def scan_json(run_cli, *args):
    result = run_cli("scan", *args, "--format", "json")
    return result, (json.loads(result.out) if result.out else None)


@pytest.mark.parametrize(("revision", "commit", "pinned"), [
    ("main", C2, False),
    ("v1.0", C1, False),
    ("refs/pr/1", C2, False),
    (C1, C1, True),
])
def test_branch_tag_pr_and_commit_resolve_to_the_commit(
    run_cli, serve, tmp_path, revision, commit, pinned  # noqa: F811
):
    serve()
    result, report = scan_json(run_cli, f"hf://org/tiny@{revision}", "--cache-dir", tmp_path)
    assert result.code == 0, result.err
    model = report["models"][0]
    assert model["revision"] == commit
    assert model["source"] == "hub"
    assert model["facts"]["hub"]["requested_revision"] == revision
    assert model["facts"]["hub"]["pinned"] is pinned
    assert bool(findings(report, "AUD-PROV-005")) is not pinned
    # downloaded under the commit, never under the branch name
    assert (tmp_path / "models--org--tiny" / "snapshots" / commit / "config.json").is_file()


def test_revision_flag_is_the_same_as_at_sign(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result, report = scan_json(run_cli, "hf://org/tiny", "--revision", "v1.0",
                               "--cache-dir", tmp_path)
    assert result.code == 0, result.err
    assert report["models"][0]["revision"] == C1
    contradiction = run_cli("scan", "hf://org/tiny@main", "--revision", "v1.0")
    assert contradiction.code == 2
    assert "contradicts" in contradiction.err


def test_download_verifies_every_file_against_the_hub(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result, report = scan_json(run_cli, f"hf://org/tiny@{C2}", "--cache-dir", tmp_path)
    assert result.code == 0, result.err
    files = files_by_path(report)
    published = {f.path: f for f in tiny_files({"torch_dtype": "bfloat16"})}
    assert set(files) == set(published)
    for path, f in files.items():
        up = f["facts"]["upstream"]
        assert up["match"] is True, path
        assert up["digest_source"] == "local"
        assert up["blob_id"] == published[path].blob_id
        assert f["sha256"] == published[path].sha256
        assert "git-sha1" not in f["digests"]
    assert files["model.safetensors"]["facts"]["upstream"]["sha256"] == published[
        "model.safetensors"].sha256
    assert report["models"][0]["facts"]["hub"]["mode"] == "download"


def test_same_size_tampered_bytes_are_critical(run_cli, serve, tmp_path):  # noqa: F811
    tampered = bytearray(WEIGHTS)
    tampered[-1] ^= 0xFF  # inside the data area: still a valid safetensors file
    repo = tiny_repo()
    for f in repo.commits[C2]:
        if f.path == "model.safetensors":
            f.serve = bytes(tampered)
        if f.path == "config.json":
            f.serve = f.data.replace(b"llama", b"LLAMA")
    serve([repo])
    result, report = scan_json(run_cli, f"hf://org/tiny@{C2}", "--cache-dir", tmp_path)
    assert result.code == 1
    sha = findings(report, "AUD-PROV-001")
    assert [f["file"] for f in sha] == ["model.safetensors"]
    assert sha[0]["severity"] == "critical"
    blob = findings(report, "AUD-PROV-002")
    assert [f["file"] for f in blob] == ["config.json"]
    files = files_by_path(report)
    assert files["model.safetensors"]["facts"]["upstream"]["match"] is False
    assert files["model.safetensors"]["format"] == "safetensors"  # the scan itself saw no problem


def test_missing_and_extra_files_are_findings(run_cli, serve, tmp_path):  # noqa: F811
    repo = tiny_repo(tree_hide={"generation_config.json"},
                     tree_extra=[HubFile("extra.py", b"import os\n")])
    serve([repo])
    result, report = scan_json(run_cli, f"hf://org/tiny@{C2}", "--cache-dir", tmp_path)
    assert result.code == 1
    assert [f["file"] for f in findings(report, "AUD-PROV-003")] == ["generation_config.json"]
    extra = findings(report, "AUD-PROV-004")
    assert [f["file"] for f in extra] == ["extra.py"]
    assert extra[0]["severity"] == "critical"


def test_sharded_safetensors_index_is_downloaded_and_verified(
    run_cli, serve, tmp_path  # noqa: F811
):
    shard = {"a.weight": ("F32", [64, 64])}
    shards = [HubFile(f"model-0000{i}-of-00002.safetensors",
                      WEIGHTS if i == 1 else bytes(_shard(shard))) for i in (1, 2)]
    index = {"metadata": {"total_size": 1}, "weight_map": {
        "model.embed_tokens.weight": shards[0].path, "a.weight": shards[1].path}}
    files = [*shards, HubFile("model.safetensors.index.json", json.dumps(index).encode()),
             HubFile("config.json", b'{"model_type": "llama"}\n')]
    sha = "5" * 40
    serve([HubRepo("org/sharded", {sha: files}, refs={"main": sha})])
    result, report = scan_json(run_cli, "hf://org/sharded", "--cache-dir", tmp_path)
    assert result.code == 0, result.err
    got = files_by_path(report)
    assert {p: f["format"] for p, f in got.items() if p.endswith(".safetensors")} == {
        s.path: "safetensors" for s in shards}
    assert all(f["facts"]["upstream"]["match"] is True for f in got.values())


def _shard(tensors):
    from tests.builders import safetensors_bytes

    return safetensors_bytes(tensors)


def test_second_scan_reuses_the_cache_and_still_verifies(run_cli, serve, tmp_path):  # noqa: F811
    hub = serve()
    first, _ = scan_json(run_cli, f"hf://org/tiny@{C1}", "--cache-dir", tmp_path)
    assert first.code == 0
    sent = hub.content_bytes
    second, report = scan_json(run_cli, f"hf://org/tiny@{C1}", "--cache-dir", tmp_path)
    assert second.code == 0
    assert hub.content_bytes == sent  # nothing downloaded twice
    assert all(f["facts"]["upstream"]["match"] is True for f in report["models"][0]["files"])


def test_hub_scanner_verdicts_add_findings(run_cli, serve, tmp_path):  # noqa: F811
    repo = tiny_repo(security_repo_status={
        "scansDone": True, "filesWithIssues": [{"path": "config.json", "level": "caution"}]})
    for f in repo.commits[C2]:
        if f.path == "model.safetensors":
            f.security = {"status": "unsafe", "avScan": {"virusFound": False},
                          "pickleImportScan": {"highestSafetyLevel": "dangerous"}}
    serve([repo])
    result, report = scan_json(run_cli, f"hf://org/tiny@{C2}", "--cache-dir", tmp_path)
    assert result.code == 1
    flagged = {f["file"]: f["severity"] for f in findings(report, "AUD-PROV-006")}
    assert flagged == {"model.safetensors": "high", "config.json": "medium"}
    security = report["models"][0]["facts"]["hub"]["security"]
    assert security["files"]["model.safetensors"]["status"] == "unsafe"


def test_blob_ids_in_the_listing_are_git_blob_ids():
    # the server and auditor agree on the git blob id definition
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_excluded_files_are_neither_scanned_nor_missing(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    for mode in ("--download", "--remote-only"):
        result, report = scan_json(run_cli, f"hf://org/tiny@{C2}", "--cache-dir", tmp_path,
                                   "--exclude", "*.md", mode)
        assert result.code == 0, result.err
        assert "README.md" not in files_by_path(report)
        assert not findings(report, "AUD-PROV-003")


def test_endpoint_from_config_file_and_flag(run_cli, serve, tmp_path, monkeypatch):  # noqa: F811
    hub = serve()
    monkeypatch.delenv("HF_ENDPOINT")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "auditor.toml").write_text(f'hub-endpoint = "{hub.url}"\n')
    result, report = scan_json(run_cli, f"hf://org/tiny@{C1}", "--remote-only")
    assert result.code == 0, result.err
    assert report["models"][0]["facts"]["hub"]["endpoint"] == hub.url
    (tmp_path / "auditor.toml").write_text('hub-endpoint = "http://127.0.0.1:9"\n')
    flag, _ = scan_json(run_cli, f"hf://org/tiny@{C1}", "--remote-only", "--endpoint", hub.url)
    assert flag.code == 0, flag.err  # the flag wins over the config file
    (tmp_path / "auditor.toml").write_text('hub-endpoint = "ftp://x"\n')
    bad = run_cli("scan", f"hf://org/tiny@{C1}")
    assert bad.code == 2
    assert "hub-endpoint" in bad.err


def test_files_are_fetched_by_commit_and_nothing_else_is_contacted(
    run_cli, serve, tmp_path  # noqa: F811
):
    hub = serve()
    for mode in ("--download", "--remote-only"):
        result = run_cli("scan", "hf://org/tiny@main", "--cache-dir", tmp_path, mode)
        assert result.code == 0, result.err
    paths = [path.split("?")[0] for _, path, _ in hub.requests]
    files = [p for p in paths if "/resolve/" in p]
    assert files and all(p.startswith(f"/org/tiny/resolve/{C2}/") for p in files)
    assert all(p.startswith(("/api/models/", "/org/tiny/resolve/")) for p in paths)
