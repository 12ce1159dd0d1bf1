"""Graded provenance end to end (issue 16): what each kind of evidence proves, through the CLI.

A cache anyone can write (blobs renamed to whatever digest their bytes have) is only
`recorded` and fails production; the same bytes compared with the Hub at a pinned commit
are `hub-verified`, and a trusted signature makes them `signed`. Remote-only SBOMs keep
claimed digests out of `hashes`. A local folder's identity comes from its records (a
`--local-dir` download record, a git checkout) and a contradiction with `--name` or
`--revision` is a finding.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.builders import safetensors_bytes, write_tiny_model
from tests.hubfixtures import commit, files_by_path, findings, serve  # noqa: F401
from tests.hubserver import HubFile, HubRepo

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ROOT / "policies" / "production.yaml"
GEO = ROOT / "policies" / "geopolitical-risk.yaml"
DEEPSEEK = "deepseek-ai/DeepSeek-V3"
INVENTED = commit("an invented DeepSeek-V3 commit")
HEAD = commit("the checked-out commit")
SHARD = "model-00001-of-00002.safetensors"


def deepseek_files() -> list[HubFile]:
    """A DeepSeek-V3-shaped repository in miniature: sharded safetensors, index, config, card."""
    shards = [safetensors_bytes({f"model.layers.{i}.mlp.gate.weight": ("F32", [8, 4])},
                                {"format": "pt"}) for i in (0, 1)]
    index = {"metadata": {"total_size": 256}, "weight_map": {
        "model.layers.0.mlp.gate.weight": SHARD,
        "model.layers.1.mlp.gate.weight": "model-00002-of-00002.safetensors"}}
    config = {"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"],
              "n_routed_experts": 256, "num_hidden_layers": 2}
    return [HubFile(SHARD, shards[0]),
            HubFile("model-00002-of-00002.safetensors", shards[1]),
            HubFile("model.safetensors.index.json", json.dumps(index).encode()),
            HubFile("config.json", json.dumps(config, indent=2).encode()),
            HubFile("README.md", b"---\nlicense: mit\nlibrary_name: transformers\n---\n"
                                 b"# DeepSeek-V3\n")]


def forge_cache(root: Path, files: list[HubFile]) -> Path:
    """A cache written by hand: an invented commit, every blob named by its own sha256."""
    folder = root / ("models--" + DEEPSEEK.replace("/", "--"))
    for f in files:
        link_to(folder, f.path, f.data)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(INVENTED)
    return folder


def link_to(folder: Path, path: str, data: bytes) -> None:
    """Store `data` as the blob named by its sha256 and point the snapshot's `path` at it."""
    blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = folder / "snapshots" / INVENTED / path
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(os.path.relpath(blob, link.parent))


def flip_a_byte(folder: Path, path: str) -> None:
    """The attacker's edit: one byte of the weights changed, its blob renamed to the new digest."""
    old = (folder / "snapshots" / INVENTED / path).resolve()
    data = bytearray(old.read_bytes())
    data[-1] ^= 0x01  # inside the tensor data: still a valid safetensors file
    link_to(folder, path, bytes(data))
    old.unlink()


def keypair(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "key.pem", folder / "pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def gate(run_cli, target, *args) -> tuple[int, dict]:
    result = run_cli("gate", target, *args, "--format", "json")
    assert result.out, result.err
    return result.code, json.loads(result.out)


def violations(doc: dict) -> dict[str, str]:
    return {v["rule"]: v["message"] for v in doc["models"][0]["violations"]}


def props(component: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in component.get("properties", []):
        out.setdefault(p["name"], []).append(p["value"])
    return out


def sbom_model(path: Path) -> dict[str, list[str]]:
    return props(json.loads(path.read_text())["metadata"]["component"])


def scan_json(run_cli, target, *args) -> tuple[int, dict]:
    result = run_cli("scan", target, "--format", "json", *args)
    assert result.out, result.err
    return result.code, json.loads(result.out)


# --- 1. a forged cache is only `recorded`; the Hub and a signature prove the bytes ------------


def test_forged_cache_fails_production_naming_the_grade_recorded(run_cli, tmp_path):
    published = deepseek_files()
    folder = forge_cache(tmp_path / "hub", published)
    flip_a_byte(folder, SHARD)
    shard = (folder / "snapshots" / INVENTED / SHARD).resolve()
    assert shard.name != next(f.sha256 for f in published if f.path == SHARD)  # really forged

    sbom = tmp_path / "forged.cdx.json"
    code, doc = gate(run_cli, tmp_path / "hub", "--policy", PRODUCTION, "--sbom", sbom)
    assert code == 1
    assert doc["models"][0]["name"] == DEEPSEEK
    assert set(violations(doc)) == {"PROD-002"}  # pinned, licensed, safetensors: only this
    assert "strongest evidence every file reaches is recorded" in violations(doc)["PROD-002"]
    model = sbom_model(sbom)
    assert model["auditor:upstream:grade"] == ["recorded"]
    assert model["auditor:identity:name-grade"] == ["recorded"]
    assert model["auditor:revision:grade"] == ["recorded"]
    # the renamed blob "matches" its own name: a match proves nothing about who made it
    files = {c["name"]: props(c) for c in json.loads(sbom.read_text())["components"]}
    assert files[SHARD]["auditor:upstream:sha256-match"] == ["true"]
    assert files[SHARD]["auditor:upstream:record-grade"] == ["recorded"]


def test_same_files_from_the_hub_at_a_pinned_commit_pass_as_hub_verified(
    run_cli, serve, tmp_path  # noqa: F811
):
    serve([HubRepo(DEEPSEEK, {INVENTED: deepseek_files()}, refs={"main": INVENTED},
                   author="deepseek-ai")])
    sbom = tmp_path / "hub.cdx.json"
    code, doc = gate(run_cli, f"hf://{DEEPSEEK}@{INVENTED}", "--policy", PRODUCTION,
                     "--sbom", sbom, "--cache-dir", tmp_path / "cache")
    assert "PROD-002" not in violations(doc)
    assert (code, doc["verdict"]) == (0, "pass"), violations(doc)
    model = sbom_model(sbom)
    assert model["auditor:upstream:grade"] == ["hub-verified"]
    assert model["auditor:identity:name-grade"] == ["hub-verified"]


def test_forged_cache_signed_by_a_trusted_key_passes_as_signed(run_cli, tmp_path):
    folder = forge_cache(tmp_path / "hub", deepseek_files())
    flip_a_byte(folder, SHARD)
    private, public = keypair(tmp_path / "trusted")
    assert run_cli("sign", folder / "snapshots" / INVENTED, "--key", private).code == 0
    sbom = tmp_path / "signed.cdx.json"
    code, doc = gate(run_cli, tmp_path / "hub", "--policy", PRODUCTION, "--key", public,
                     "--sbom", sbom)
    assert (code, violations(doc)) == (0, {})
    model = sbom_model(sbom)
    assert model["auditor:upstream:grade"] == ["signed"]
    assert model["auditor:signature:status"] == ["verified"]
    # the same signature checked against another key proves nothing
    _, other = keypair(tmp_path / "other")
    code, doc = gate(run_cli, tmp_path / "hub", "--policy", PRODUCTION, "--key", other)
    assert (code, set(violations(doc))) == (1, {"PROD-002"})
    assert "signature untrusted" in violations(doc)["PROD-002"]


# --- 2. remote-only: `hashes` hold only what auditor computed ---------------------------------


def test_remote_only_sbom_keeps_claimed_digests_out_of_hashes(run_cli, serve, tmp_path):  # noqa: F811
    big = safetensors_bytes({"w": ("F32", [128, 256])})  # 128 KiB: read in ranges, not whole
    published = [HubFile("model.safetensors", big),
                 HubFile("tiny.safetensors", safetensors_bytes({"b": ("F32", [4])})),
                 HubFile("weights.tar", bytes(100_000), lfs=True),  # never fetched
                 HubFile("config.json", b'{"model_type": "deepseek_v3"}\n'),
                 HubFile("README.md", b"---\nlicense: mit\n---\n# remote\n")]
    serve([HubRepo(DEEPSEEK, {INVENTED: published}, refs={"main": INVENTED})])
    sbom = tmp_path / "remote.cdx.json"
    code, report = scan_json(run_cli, f"hf://{DEEPSEEK}@{INVENTED}", "--remote-only",
                             "--sbom", sbom, "--cache-dir", tmp_path / "cache")
    assert code == 0
    assert report["models"][0]["facts"]["hub"]["mode"] == "remote-only"
    whole = {p for p, f in files_by_path(report).items()
             if f["facts"]["upstream"]["digest_source"] == "local"}
    assert whole == {"tiny.safetensors", "config.json", "README.md"}
    components = {c["name"]: c for c in json.loads(sbom.read_text())["components"]}
    assert set(components) == {f.path for f in published}
    for f in published:
        component, p = components[f.path], props(components[f.path])
        if f.lfs:  # the Hub records a sha256 for LFS files only (others: a git blob id)
            assert p["auditor:upstream:sha256"] == [f.sha256], f.path
            assert p["auditor:upstream:record-grade"] == ["hub-verified"], f.path
        if f.path in whole:
            assert component["hashes"] == [{"alg": "SHA-256", "content": f.sha256}], f.path
            assert p["auditor:upstream:sha256-match"] == ["true"], f.path
            assert p["auditor:upstream:grade"] == ["hub-verified"], f.path
        else:
            assert f.lfs and not component.get("hashes"), f.path
            assert p["auditor:upstream:sha256-match"] == ["unknown"], f.path
            assert p["auditor:upstream:grade"] == ["unknown"], f.path
    # not every file's bytes were compared: the model as a whole is not proven
    assert sbom_model(sbom)["auditor:upstream:grade"] == ["unknown"]


# --- 3. a --local-dir download's record -------------------------------------------------------


def test_local_dir_download_record_grades_and_catches_an_edit(run_cli, serve, tmp_path):  # noqa: F811
    from huggingface_hub import snapshot_download

    published = deepseek_files()
    hub = serve([HubRepo(DEEPSEEK, {INVENTED: published}, refs={"main": INVENTED})])
    folder = tmp_path / "DeepSeek-V3"
    snapshot_download(DEEPSEEK, revision=INVENTED, local_dir=folder, endpoint=hub.url)
    assert (folder / ".cache" / "huggingface" / "download" / f"{SHARD}.metadata").is_file()

    code, report = scan_json(run_cli, folder)
    assert code == 0, report
    identity = report["models"][0]["facts"]["identity"]
    assert report["models"][0]["revision"] == INVENTED
    assert (identity["revision_grade"], identity["revision_evidence"]) == (
        "recorded", "the download record (.cache/huggingface/download)")
    assert identity["name_grade"] == "declared"  # the record holds no repository name
    files = files_by_path(report)
    assert set(files) == {f.path for f in published}  # the record itself is no model file
    for path, f in files.items():
        assert (f["facts"]["upstream"]["grade"], f["facts"]["upstream"]["match"]) == (
            "recorded", True), path
    assert files[SHARD]["facts"]["upstream"]["sha256"] == published[0].sha256

    shard = folder / SHARD
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x01
    shard.write_bytes(bytes(data))
    code, report = scan_json(run_cli, folder)
    assert code == 1
    edited = findings(report, "AUD-PROV-007")
    assert [(f["file"], f["severity"]) for f in edited] == [(SHARD, "critical")]
    assert edited[0]["detail"].startswith(
        f"the download record (.cache/huggingface/download) names {published[0].sha256};")
    assert files_by_path(report)[SHARD]["facts"]["upstream"]["match"] is False


# --- 4. a git checkout names itself; --name and --revision that disagree are findings ---------


def git_checkout(folder: Path, remote: str) -> Path:
    """A checkout's `.git` as git leaves it (git itself never runs): origin and a HEAD ref."""
    write_tiny_model(folder)
    git = folder / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n"
        f'[remote "upstream"]\n\turl = https://huggingface.co/decoy/other\n'
        f'[remote "origin"]\n\turl = {remote}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'
        '[branch "main"]\n\tremote = origin\n')
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(HEAD + "\n")
    return folder


@pytest.mark.parametrize("remote", ["https://huggingface.co/org/x", "git@hf.co:org/x.git"])
def test_git_checkout_identity_and_contradictions(run_cli, tmp_path, remote):
    folder = git_checkout(tmp_path / "checkout", remote)
    code, report = scan_json(run_cli, folder)
    model = report["models"][0]
    assert (model["name"], model["revision"]) == ("org/x", HEAD)
    identity = model["facts"]["identity"]
    assert (identity["name_grade"], identity["name_evidence"]) == ("recorded", "git remote origin")
    assert (identity["revision_grade"], identity["revision_evidence"]) == ("recorded", "git HEAD")
    assert model["facts"]["origin"]["publisher"] == "org"
    assert not findings(report, "AUD-PROV-011")

    _, report = scan_json(run_cli, folder, "--name", "other/y")
    assert report["models"][0]["name"] == "org/x"  # the record outranks the operator
    [contradiction] = findings(report, "AUD-PROV-011")
    assert "other/y" in contradiction["detail"] and "org/x" in contradiction["detail"]
    code, doc = gate(run_cli, folder, "--policy", GEO, "--name", "other/y")
    assert code == 1
    assert "GEO-007" in violations(doc)
    assert "other/y" in violations(doc)["GEO-007"]

    _, report = scan_json(run_cli, folder, "--name", "org/x")
    assert not findings(report, "AUD-PROV-011")
    _, doc = gate(run_cli, folder, "--policy", GEO, "--name", "org/x")
    assert "GEO-007" not in violations(doc)

    other = commit("another commit")
    _, report = scan_json(run_cli, folder, "--revision", other)
    assert report["models"][0]["revision"] == HEAD
    [contradiction] = findings(report, "AUD-PROV-011")
    assert other in contradiction["detail"] and HEAD in contradiction["detail"]
    assert "revision" in contradiction["detail"]


# --- 5. --name is declared evidence: enough to judge a publisher, never to prove bytes --------


def test_plain_folder_named_deepseek_is_restricted_and_unnamed_is_unknown(run_cli, tmp_path):
    folder = write_tiny_model(tmp_path / "DeepSeek-V3")
    card = folder / "README.md"
    card.write_text(card.read_text().replace("base_model: example-org/tiny-base\n", "")
                    .replace("base_model_relation: finetune\n", ""))
    code, doc = gate(run_cli, folder, "--policy", GEO, "--name", DEEPSEEK)
    assert code == 1
    model = doc["models"][0]
    assert (model["name"], model["publisher"], model["tier"]) == (DEEPSEEK, "deepseek-ai",
                                                                  "restricted")
    assert "GEO-002" not in violations(doc)
    assert violations(doc)["GEO-001"] == (
        f"{DEEPSEEK} (self, depth 0, declared by --name) is published by deepseek-ai "
        "(DeepSeek (Hangzhou DeepSeek Artificial Intelligence), CN): tier restricted")
    [self_edge] = model["lineage"]
    assert (self_edge["publisher_grade"], self_edge["tripped"]) == ("declared", ["GEO-001"])

    code, doc = gate(run_cli, folder, "--policy", GEO)
    assert code == 1
    model = doc["models"][0]
    assert (model["name"], model["publisher"], model["tier"]) == ("DeepSeek-V3", "unknown",
                                                                  "elevated")
    assert "GEO-001" not in violations(doc)
    assert violations(doc)["GEO-002"] == (
        "DeepSeek-V3 (self, depth 0, declared by the folder name): publisher unknown "
        "(unknown), jurisdiction unknown, tier elevated")


def test_files_downloaded_at_two_commits_are_no_snapshot_not_a_contradiction(run_cli, tmp_path):
    """Two `hf download --include` runs at different times: honest, but not one revision."""
    folder = write_tiny_model(tmp_path / "dl")
    record = folder / ".cache" / "huggingface" / "download"
    record.mkdir(parents=True)
    for i, path in enumerate(["config.json", "model.safetensors"]):
        digest = hashlib.sha256((folder / path).read_bytes()).hexdigest()
        (record / f"{path}.metadata").write_text(f"{commit(f'run {i}')}\n{digest}\n1.0\n")
    _, doc = scan_json(run_cli, folder)
    model = doc["models"][0]
    rules = [f["rule"] for f in model["findings"]]
    assert "AUD-SRC-005" in rules and "AUD-PROV-011" not in rules
    assert model["revision"] is None  # no one commit: not pinned
    assert files_by_path(doc)["model.safetensors"]["facts"]["upstream"]["match"] is True


def test_a_git_folder_linked_from_elsewhere_is_not_this_folders_record(run_cli, tmp_path):
    other = git_checkout(tmp_path / "elsewhere", "https://huggingface.co/deepseek-ai/DeepSeek-V3")
    folder = write_tiny_model(tmp_path / "mine")
    (folder / ".git").symlink_to(other / ".git")
    _, doc = scan_json(run_cli, folder)
    identity = doc["models"][0]["facts"]["identity"]
    assert (doc["models"][0]["name"], identity["name_evidence"]) == ("mine", "the folder name")
