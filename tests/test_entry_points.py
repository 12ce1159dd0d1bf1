"""End to end: one repository, four entry points, one origin; lineage from every declaration.

Issue 16 "Done when": a DeepSeek-shaped repository scanned as a git checkout, a
Hugging Face cache snapshot, a mirror's `org/name` tree and `hf://` from the
local fake Hub gets the same identity, lineage and geopolitical verdict (only
the grade of the evidence differs); a folder of repositories is one SBOM per
model; a standalone GGUF keeps its base's origin; relations are named; a
converter namespace inherits its base's origin.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import safetensors_bytes
from tests.hubfixtures import commit, serve, simple_repo  # noqa: F401
from tests.hubserver import HubFile, HubRepo
from tests.test_declared_lineage import gguf_file
from tests.test_hub_cache import make_cache

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "policies" / "geopolitical-risk.yaml"
REPO = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
BASE = "Qwen/Qwen2.5-Math-7B"
SHA = commit(REPO)
CARD = f"---\nlicense: mit\nlibrary_name: transformers\nbase_model: {BASE}\n---\n\n# R1 distill\n"
CONFIG = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 16,
          "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 32}


def deepseek_files() -> list[HubFile]:
    return [
        HubFile("config.json", (json.dumps(CONFIG, indent=2) + "\n").encode()),
        HubFile("model.safetensors", safetensors_bytes(
            {"model.embed_tokens.weight": ("F32", [32, 16])}, {"format": "pt"})),
        HubFile("tokenizer_config.json", b'{"model_max_length": 131072}\n'),
        HubFile("README.md", CARD.encode()),
    ]


def write_files(folder: Path, files: list[HubFile]) -> Path:
    for f in files:
        (folder / f.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / f.path).write_bytes(f.data)
    return folder


def gate(run_cli, target: object, *args: object) -> tuple[int, dict]:
    run = run_cli("gate", target, "--policy", GEO, "--format", "json", *args)
    assert run.out, run.err
    return run.code, json.loads(run.out)


def check(run_cli, sbom: Path) -> tuple[int, dict]:
    run = run_cli("policy", "check", sbom, "--policy", GEO, "--format", "json")
    assert run.out, run.err
    return run.code, json.loads(run.out)


def verdict(doc: dict) -> dict:
    """What must not depend on the entry point: identity, origin, lineage, violated rules
    (but GEO-004, which judges the grade of the digests: asserted apart)."""
    (model,) = doc["models"]
    return {
        "model": {k: model[k] for k in ("name", "publisher", "jurisdiction", "tier",
                                        "lineage_tier")},
        "lineage": [(e["name"], e["relation"], e["publisher"], e["jurisdiction"], e["tier"])
                    for e in model["lineage"]],
        "rules": sorted({v["rule"] for v in model["violations"]} - {"GEO-004"}),
        "geo001": sorted(v["ancestor"] for v in model["violations"] if v["rule"] == "GEO-001"),
    }


def self_entry(doc: dict) -> dict:
    (entry,) = [e for e in doc["models"][0]["lineage"] if e["relation"] == "self"]
    return entry


def rules(doc: dict) -> set[str]:
    return {v["rule"] for m in doc["models"] for v in m["violations"]}


# -- 1. four entry points ----------------------------------------------------------------------

def test_one_repository_through_four_entry_points_has_one_origin_and_one_verdict(
    run_cli, serve, tmp_path  # noqa: F811
):
    files = deepseek_files()
    # (a) a git checkout of the repository
    checkout = write_files(tmp_path / "checkout" / "R1-distill", files)
    (checkout / ".git").mkdir()
    (checkout / ".git" / "config").write_text(
        f'[remote "origin"]\n\turl = https://huggingface.co/{REPO}\n'
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n")
    (checkout / ".git" / "HEAD").write_text(SHA + "\n")
    # (b) a Hugging Face cache snapshot
    cached = make_cache(tmp_path / "hub", REPO, SHA, files, refs={"main": SHA})
    # (c) a mirror holding it as org/name (a clone: HEAD gives its commit, as the others have)
    mirror_root = tmp_path / "mirror"
    (write_files(mirror_root / REPO, files) / ".git").mkdir()
    (mirror_root / REPO / ".git" / "HEAD").write_text(SHA + "\n")
    state = tmp_path / "state" / "mirror.db"
    run = run_cli("mirror", "scan", mirror_root, "--state", state, "--format", "json",
                  "-j", "1")
    assert run.code == 0, run.err
    (sbom,) = (state.parent / "sboms").iterdir()
    assert sbom.name == "deepseek-ai__DeepSeek-R1-Distill-Qwen-7B.cdx.json"
    # (d) hf:// at the commit from the local fake Hub
    serve([HubRepo(REPO, {SHA: files}, refs={"main": SHA}, author="deepseek-ai",
                   card_data={"license": "mit", "base_model": BASE}),
           simple_repo(BASE, author="Qwen")])

    runs = {
        "local": gate(run_cli, checkout),
        "cache": gate(run_cli, cached / "snapshots" / SHA),
        "mirror": check(run_cli, sbom),
        "hf": gate(run_cli, f"hf://{REPO}@{SHA}", "--cache-dir", tmp_path / "dl"),
    }
    expected = {
        "model": {"name": REPO, "publisher": "deepseek-ai", "jurisdiction": "CN",
                  "tier": "restricted", "lineage_tier": "restricted"},
        "lineage": [(REPO, "self", "deepseek-ai", "CN", "restricted"),
                    (BASE, "finetune", "Qwen", "CN", "restricted")],
        "rules": ["GEO-001"],
        "geo001": sorted([REPO, BASE]),
    }
    for entry, (code, doc) in runs.items():
        assert code == 1, entry
        assert verdict(doc) == expected, entry
        assert doc["models"][0]["revision"] == SHA, entry

    # Grades differ by design: the same name is recorded by a git remote, a cache layout or a
    # mirror tree (anyone who can write the folder can forge those), hub-verified from the Hub.
    grades = {k: (self_entry(d)["grade"], self_entry(d)["evidence"]) for k, (_, d) in runs.items()}
    assert grades == {
        "local": ("recorded", ["git remote origin"]),
        "cache": ("recorded", ["the cache layout (models--org--name)"]),
        "mirror": ("recorded", ["mirror tree"]),
        "hf": ("hub-verified", ["the Hub (model info)"]),
    }
    # ... so only the Hub proves the files the publisher's: GEO-004 (restricted lineage needs
    # hub-verified or signed digests) fails every entry point but hf://.
    assert {k for k, (_, d) in runs.items() if "GEO-004" in rules(d)} == {
        "local", "cache", "mirror"}
    base = {k: next(e for e in d["models"][0]["lineage"] if e["name"] == BASE)
            for k, (_, d) in runs.items()}
    assert {k: e["grade"] for k, e in base.items()} == {
        "local": "declared", "cache": "declared", "mirror": "declared", "hf": "hub-verified"}


# -- 2. a folder of repositories ---------------------------------------------------------------

def test_a_folder_of_several_repositories_writes_one_sbom_per_model(run_cli, tmp_path):
    parent = tmp_path / "models"
    write_files(parent / REPO, deepseek_files())
    write_files(parent / "meta-llama" / "Llama-3.2-1B", deepseek_files())
    write_files(parent / "my-finetune", deepseek_files())
    out = tmp_path / "sboms"
    out.mkdir()
    run = run_cli("scan", parent, "--sbom", out, "--format", "json")
    assert run.code == 0, run.err
    names = sorted(json.loads(p.read_text())["metadata"]["component"]["name"]
                   for p in out.iterdir())
    assert names == sorted([REPO, "meta-llama/Llama-3.2-1B", "my-finetune"])
    assert len(list(out.iterdir())) == 3


# -- 3. a standalone GGUF keeps its base's origin ----------------------------------------------

def sbom_of(run_cli, target: object, tmp_path: Path, *args: object) -> dict:
    path = tmp_path / "out.cdx.json"
    run = run_cli("scan", target, "--sbom", path, *args)
    assert run.code in (0, 1), run.err
    return json.loads(path.read_text())


def ancestors(sbom: dict) -> dict[str, dict[str, list[str]]]:
    """Ancestor name -> property name -> values (evidence is repeated)."""
    out: dict[str, dict[str, list[str]]] = {}
    for a in sbom["metadata"]["component"].get("pedigree", {}).get("ancestors", []):
        props: dict[str, list[str]] = {}
        for p in a.get("properties", []):
            props.setdefault(p["name"], []).append(p["value"])
        out[a["name"]] = props
    return out


QWEN_GGUF = {"organization": "Qwen", "name": "Qwen2.5 7B Instruct",
             "repo_url": "https://hf-mirror.com/Qwen/Qwen2.5-7B-Instruct"}


def test_a_standalone_qwen_gguf_with_a_mirror_url_fails_geo_001(run_cli, tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    gguf = folder / "qwen2.5-7b-instruct-q4_k_m.gguf"
    gguf_file(gguf, [QWEN_GGUF])
    code, doc = gate(run_cli, gguf)
    assert code == 1
    geo001 = [v for v in doc["models"][0]["violations"] if v["rule"] == "GEO-001"]
    assert [v["ancestor"] for v in geo001] == ["Qwen/Qwen2.5-7B-Instruct"]
    assert "published by Qwen (Alibaba Cloud" in geo001[0]["message"]
    assert "GEO-002" in rules(doc)  # the file itself names no publisher
    anc = ancestors(sbom_of(run_cli, gguf, tmp_path))["Qwen/Qwen2.5-7B-Instruct"]
    assert anc["auditor:lineage:relation"] == ["quantized"]
    assert anc["auditor:lineage:evidence"] == [f"{gguf.name} general.base_model.0"]


def test_a_gguf_naming_only_the_organization_fails_geo_001(run_cli, tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf_file(gguf, [{"organization": "Qwen", "name": "Qwen2.5 7B Instruct"}])
    code, doc = gate(run_cli, gguf)
    assert code == 1
    (v,) = [v for v in doc["models"][0]["violations"] if v["rule"] == "GEO-001"]
    assert v["ancestor"] == "Qwen2.5 7B Instruct" and "published by Qwen" in v["message"]
    base = next(e for e in doc["models"][0]["lineage"] if e["name"] == v["ancestor"])
    assert (base["relation"], base["publisher"], base["jurisdiction"]) == (
        "quantized", "Qwen", "CN")


# -- 4. relations --------------------------------------------------------------------------------

def card_only(folder: Path, base: str, relation: str | None = None) -> None:
    extra = f"base_model_relation: {relation}\n" if relation else ""
    (folder / "README.md").write_text(f"---\nbase_model: {base}\n{extra}---\n\n# m\n")


def weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2, 2])}, {"format": "pt"}))


def by_card(folder: Path, relation: str) -> str:
    weights(folder)
    card_only(folder, "meta-llama/Llama-3.1-8B", relation)
    return "meta-llama/Llama-3.1-8B"


def by_adapter(folder: Path) -> str:
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": "mistralai/Mistral-7B-v0.1", "r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2, 2])}, {"format": "pt"}))
    return "mistralai/Mistral-7B-v0.1"


def by_gguf(folder: Path) -> str:
    gguf_file(folder / "m-Q4_K_M.gguf", [{"repo_url": "https://huggingface.co/google/gemma-2b"}])
    return "google/gemma-2b"


def by_mergekit(folder: Path) -> str:
    weights(folder)
    (folder / "mergekit_config.yml").write_text(
        "merge_method: slerp\nbase_model: google/gemma-2-2b\nslices:\n  - sources:\n"
        "      - model: google/gemma-2-2b\n        layer_range: [0, 2]\n"
        "      - model: google/gemma-2-2b-it\n        layer_range: [0, 2]\n"
        "parameters:\n  t: 0.5\ndtype: bfloat16\n")
    return "google/gemma-2-2b"


@pytest.mark.parametrize(("build", "relation"), [
    (lambda f: by_card(f, "adapter"), "adapter"),
    (lambda f: by_card(f, "merge"), "merge"),
    (lambda f: by_card(f, "quantized"), "quantized"),
    (by_adapter, "adapter"),
    (by_gguf, "quantized"),
    (by_mergekit, "merge"),
], ids=["card-adapter", "card-merge", "card-quantized", "peft", "gguf", "mergekit"])
def test_every_declaration_names_its_relation_in_the_sbom(run_cli, tmp_path, build, relation):
    folder = tmp_path / "acme" / "derived"
    folder.mkdir(parents=True)
    base = build(folder)
    found = ancestors(sbom_of(run_cli, folder, tmp_path, "--name", "acme/derived"))
    assert found[base]["auditor:lineage:relation"] == [relation]
    assert all(a["auditor:lineage:relation"] != ["unknown"] for a in found.values())


# -- 5. converters inherit their base's origin -------------------------------------------------

def converter(tmp_path: Path, base: str | None) -> Path:
    folder = tmp_path / "bartowski" / "Qwen2.5-7B-Instruct-GGUF"
    folder.mkdir(parents=True)
    gguf_file(folder / "Qwen2.5-7B-Instruct-Q4_K_M.gguf")
    if base:
        card_only(folder, base)
    else:
        (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n\n# quants\n")
    return folder


def test_a_converter_of_a_restricted_base_is_restricted(run_cli, tmp_path):
    folder = converter(tmp_path, "Qwen/Qwen2.5-7B-Instruct")
    code, doc = gate(run_cli, folder, "--name", "bartowski/Qwen2.5-7B-Instruct-GGUF")
    assert code == 1
    assert rules(doc) == {"GEO-001", "GEO-004", "GEO-005"}  # restricted: nothing proven, unpinned
    me = self_entry(doc)
    assert (me["name"], me["publisher"]) == ("bartowski/Qwen2.5-7B-Instruct-GGUF", "bartowski")
    assert (me["jurisdiction"], me["tier"]) == ("inherited", "restricted")
    assert "GEO-001" in me["tripped"]
    base = next(e for e in doc["models"][0]["lineage"] if e["name"] == "Qwen/Qwen2.5-7B-Instruct")
    assert (base["relation"], base["tier"]) == ("quantized", "restricted")


def test_a_converter_of_a_standard_base_is_standard(run_cli, tmp_path):
    folder = converter(tmp_path, "meta-llama/Llama-3.1-8B")
    code, doc = gate(run_cli, folder, "--name", "bartowski/Qwen2.5-7B-Instruct-GGUF")
    assert (code, rules(doc)) == (0, set())
    me = self_entry(doc)
    assert (me["jurisdiction"], me["tier"]) == ("inherited", "standard")
    assert "GEO-002" not in me["tripped"]
    assert doc["models"][0]["lineage_tier"] == "standard"


def test_a_converter_with_no_base_has_the_unknown_tier(run_cli, tmp_path):
    folder = converter(tmp_path, None)
    code, doc = gate(run_cli, folder, "--name", "bartowski/Qwen2.5-7B-Instruct-GGUF")
    assert code == 1
    me = self_entry(doc)
    # nothing below it to inherit from: the tier of an unknown origin (jurisdictions.yaml
    # `unknown: elevated`), waivable only by GEO-002
    assert (me["jurisdiction"], me["tier"]) == ("unknown", "elevated")
    assert me["tripped"] == ["GEO-002"]
    assert [v["ancestor"] for v in doc["models"][0]["violations"] if v["rule"] == "GEO-002"] == [
        "bartowski/Qwen2.5-7B-Instruct-GGUF"]
