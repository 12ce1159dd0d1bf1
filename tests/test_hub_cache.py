"""Local Hugging Face caches and mirrors, verified offline (no server running in these tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.hubfixtures import C1, C2, files_by_path, findings, tiny_files
from tests.hubserver import HubFile


def make_cache(root: Path, repo_id: str, commit: str, files: list[HubFile],
               refs: dict[str, str] | None = None, trees: bool = True) -> Path:
    """The layout huggingface_hub writes: blobs named by etag, snapshot links, refs, trees."""
    folder = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = folder / "snapshots" / commit
    listing = {}
    for f in files:
        blob = folder / "blobs" / f.etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(f.data)
        link = snapshot / f.path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
        listing[f.path] = {"size": f.size, "blob_id": f.blob_id}
        if f.lfs:
            listing[f.path] |= {"lfs_sha256": f.sha256, "lfs_size": f.size}
    for name, target in (refs or {}).items():
        (folder / "refs" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "refs" / name).write_text(target)
    if trees:
        (folder / "trees").mkdir(exist_ok=True)
        (folder / "trees" / f"{commit}.json").write_text(
            json.dumps({"format_version": 1, "files": listing}))
    return folder


def scan(run_cli, target, *args):
    result = run_cli("scan", target, "--format", "json", *args)
    return result, (json.loads(result.out) if result.out else None)


@pytest.fixture
def cache(tmp_path) -> Path:
    root = tmp_path / "hub"
    make_cache(root, "org/tiny", C2, tiny_files(), refs={"main": C2})
    return root


def blob_of(folder: Path, commit: str, path: str) -> Path:
    return (folder / "snapshots" / commit / path).resolve()


def test_clean_cache_verifies_against_tree_listing(run_cli, cache):
    result, report = scan(run_cli, cache / "models--org--tiny")
    assert result.code == 0, result.err
    model = report["models"][0]
    assert (model["name"], model["source"], model["revision"]) == ("org/tiny", "hf-cache", C2)
    assert model["facts"]["hub"]["refs"] == ["main"]
    assert all(f["facts"]["upstream"]["match"] is True for f in model["files"])
    assert {f["facts"]["upstream"]["grade"] for f in model["files"]} == {"recorded"}
    assert model["facts"]["identity"]["name_grade"] == "recorded"
    assert model["facts"]["lineage"] == [{
        "name": "base-org/mid", "child": "org/tiny", "publisher": "base-org",
        "publisher_grade": "declared", "commit": None, "relation": "finetune",
        "resolved": False, "depth": 1, "grade": "declared", "evidence": ["README.md base_model"]}]


def test_tampered_blob_is_critical_without_network(run_cli, cache):
    blob = blob_of(cache / "models--org--tiny", C2, "model.safetensors")
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    result, report = scan(run_cli, cache)
    assert result.code == 1
    hits = findings(report, "AUD-PROV-001")
    assert [(f["file"], f["severity"]) for f in hits] == [("model.safetensors", "critical")]
    assert not findings(report, "AUD-PROV-007")  # one finding per tampering, not two


def test_tampered_blob_without_tree_listing_is_caught_by_its_name(run_cli, cache):
    folder = cache / "models--org--tiny"
    (folder / "trees" / f"{C2}.json").unlink()
    blob = blob_of(folder, C2, "config.json")
    blob.write_bytes(blob.read_bytes().replace(b"llama", b"LLAMA"))
    result, report = scan(run_cli, folder)
    assert result.code == 1
    assert [f["file"] for f in findings(report, "AUD-PROV-007")] == ["config.json"]
    assert files_by_path(report)["config.json"]["facts"]["upstream"]["match"] is False


def test_file_added_to_a_snapshot_is_extra_and_removed_one_missing(run_cli, cache):
    snapshot = cache / "models--org--tiny" / "snapshots" / C2
    (snapshot / "extra.py").write_text("import os\n")
    (snapshot / "generation_config.json").unlink()
    result, report = scan(run_cli, snapshot)
    assert result.code == 1
    assert [f["file"] for f in findings(report, "AUD-PROV-004")] == ["extra.py"]
    assert [f["file"] for f in findings(report, "AUD-PROV-003")] == ["generation_config.json"]


def test_plain_file_without_listing_is_unverifiable(run_cli, cache):
    folder = cache / "models--org--tiny"
    (folder / "trees" / f"{C2}.json").unlink()
    (folder / "snapshots" / C2 / "notes.txt").write_text("hello\n")
    result, report = scan(run_cli, folder)
    assert [f["file"] for f in findings(report, "AUD-PROV-009")] == ["notes.txt"]
    assert result.code == 0  # medium: reported, below the default gate


def test_cache_root_with_several_models_gives_several_reports(run_cli, cache):
    make_cache(cache, "org/other", C1, tiny_files())
    result, report = scan(run_cli, cache)
    assert result.code == 0, result.err
    assert sorted(m["name"] for m in report["models"]) == ["org/other", "org/tiny"]


def test_hf_cache_scheme_resolves_refs_and_flags_unpinned(run_cli, cache):
    result, report = scan(run_cli, "hf-cache://org/tiny@main", "--cache-dir", cache)
    assert result.code == 0, result.err
    assert report["models"][0]["revision"] == C2
    assert findings(report, "AUD-PROV-005")
    pinned, report = scan(run_cli, f"hf-cache://org/tiny@{C2}", "--cache-dir", cache)
    assert pinned.code == 0
    assert not findings(report, "AUD-PROV-005")
    absent = run_cli("scan", "hf-cache://org/tiny@v9", "--cache-dir", cache)
    assert absent.code == 2
    assert "not in the Hugging Face cache" in absent.err


def test_hf_home_is_the_default_cache(run_cli, cache, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(cache.parent))  # the fixture's cache is HF_HOME/hub
    result, report = scan(run_cli, "hf-cache://org/tiny")
    assert result.code == 0, result.err
    assert report["models"][0]["revision"] == C2


def test_git_blob_id_streams_in_the_same_pass_as_sha256(tmp_path):
    import hashlib

    from auditor.integrity.hashing import HashingReader, digest_file

    data = bytes(range(256)) * 5000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with open(path, "rb", buffering=0) as raw:
        reader = HashingReader(raw, ("sha256", "git-sha1"), chunk=4096)
        reader.seek(70_000)
        reader.read(10)
        reader.seek(0)
        reader.read(100)
        digests, size = reader.finish()
    assert size == len(data)
    git_blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # as git computes it
    assert digests["git-sha1"] == git_blob_id == digest_file(path, "git-sha1")
    assert digests["sha256"] == hashlib.sha256(data).hexdigest()
