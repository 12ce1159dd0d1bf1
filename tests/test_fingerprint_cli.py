"""Measured lineage end to end (issue 17), through the CLI as an operator runs it.

1. The attack the issue names: a DeepSeek-R1-Distill-Qwen-7B whose card is rewritten to claim
   a Mistral base, put in a Hugging Face cache under `mistralai/`. Its config, tokenizer and
   special tokens are the distill's own (the weights are tiny: the config decides the shape).
   The family table measures it as R1-Distill-Qwen, so `geopolitical-risk.yaml` fails on a
   measured ancestor (GEO-001) and on the contradiction with the card (AUD-LIN-001, GEO-007).
   The honest counterparts (a real Mistral-7B fine-tune, a Qwen2.5-7B fine-tune, an unknown
   user's model without a card) get no contradiction.
2. The reference store: `auditor fingerprint add` of a small base with random weights, then a
   fine-tune of it (small noise) whose card declares nothing is measured as same-base from the
   sampled embedding rows, in the SBOM (CycloneDX 1.6, valid) and by the policy.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.test_fingerprint_weights import weights, write_safetensors

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "policies" / "geopolitical-risk.yaml"
SNAPSHOT = "b" * 40
# DeepSeek's specials use U+FF5C FULLWIDTH VERTICAL LINE and U+2581 LOWER ONE EIGHTH BLOCK.
DS_BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
DS_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
MISTRAL_BASE = "mistralai/Mistral-7B-v0.1"


# --- builders: the files each kind of model ships, as their publishers write them ---------------


def tokenizer_json(added: list[tuple[int, str]], bos: str | None, *, n: int = 500,
                   spm: bool = False) -> bytes:
    """A tokenizer.json: a small vocabulary, the added special tokens at their real ids, and
    (when the tokenizer adds a BOS) the post-processor template that puts it first."""
    vocab = {("\u2581" if spm else "\u0120") + f"w{i}": i + 3 for i in range(n)}
    doc: dict = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i, c in added],
        "model": {"type": "BPE", "vocab": vocab, "merges": []},
        "decoder": ({"type": "Sequence", "decoders": [{"type": "ByteFallback"}]} if spm
                    else {"type": "ByteLevel"}),
        "pre_tokenizer": None if spm else {"type": "Sequence", "pretokenizers": [
            {"type": "ByteLevel"}]},
    }
    if bos is not None:
        doc["post_processor"] = {"type": "TemplateProcessing", "single": [
            {"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {}}
    return json.dumps(doc).encode()


def tokenizer_config(bos: str | None, eos: str) -> bytes:
    return json.dumps({"bos_token": bos, "eos_token": eos, "model_max_length": 16384}).encode()


def tiny_safetensors() -> bytes:
    """Weights in miniature: the scan reads the config for the shape, not these."""
    import safetensors.numpy

    return safetensors.numpy.save({"model.embed_tokens.weight": np.zeros((64, 16), np.float16),
                                   "model.norm.weight": np.ones(16, np.float16)},
                                  metadata={"format": "pt"})


def card(base: str | None, title: str) -> bytes:
    front = f"base_model: {base}\n" if base else ""
    return f"---\nlicense: apache-2.0\n{front}library_name: transformers\n---\n# {title}\n".encode()


def r1_distill_qwen_7b() -> dict[str, bytes]:
    """DeepSeek-R1-Distill-Qwen-7B's config (its config.json keeps Qwen's BOS id 151643; the
    tokenizer puts its own BOS at 151646), tokenizer and special tokens."""
    config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
              "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu",
              "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
              "num_attention_heads": 28, "num_key_value_heads": 4, "rope_theta": 10000,
              "max_position_embeddings": 131072, "max_window_layers": 28,
              "sliding_window": 4096, "use_sliding_window": False, "rms_norm_eps": 1e-06,
              "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 152064}
    added = [(151643, DS_EOS), (151644, "<\uff5cUser\uff5c>"), (151645, "<\uff5cAssistant\uff5c>"),
             (151646, DS_BOS)]
    return {"config.json": json.dumps(config, indent=2).encode(),
            "generation_config.json": json.dumps({"bos_token_id": 151646,
                                                  "eos_token_id": 151643}).encode(),
            "tokenizer.json": tokenizer_json(added, DS_BOS),
            "tokenizer_config.json": tokenizer_config(DS_BOS, DS_EOS),
            "model.safetensors": tiny_safetensors()}


def mistral_7b() -> dict[str, bytes]:
    config = {"architectures": ["MistralForCausalLM"], "model_type": "mistral",
              "bos_token_id": 1, "eos_token_id": 2, "hidden_size": 4096,
              "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "rope_theta": 10000.0, "sliding_window": 4096,
              "max_position_embeddings": 32768, "torch_dtype": "bfloat16", "vocab_size": 32000}
    return {"config.json": json.dumps(config, indent=2).encode(),
            "tokenizer.json": tokenizer_json([(0, "<unk>"), (1, "<s>"), (2, "</s>")], "<s>",
                                             spm=True),
            "tokenizer_config.json": tokenizer_config("<s>", "</s>"),
            "model.safetensors": tiny_safetensors()}


def qwen25_7b() -> dict[str, bytes]:
    config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
              "bos_token_id": 151643, "eos_token_id": 151643, "hidden_size": 3584,
              "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
              "num_key_value_heads": 4, "rope_theta": 1000000.0, "sliding_window": 131072,
              "use_sliding_window": False, "torch_dtype": "bfloat16", "vocab_size": 152064}
    added = [(151643, "<|endoftext|>"), (151644, "<|im_start|>"), (151645, "<|im_end|>")]
    return {"config.json": json.dumps(config, indent=2).encode(),
            "tokenizer.json": tokenizer_json(added, None),
            "tokenizer_config.json": tokenizer_config(None, "<|endoftext|>"),
            "model.safetensors": tiny_safetensors()}


def cache(root: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache entry written by hand: blobs named by their sha256, one snapshot."""
    folder = root / ("models--" + repo.replace("/", "--"))
    for path, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / SNAPSHOT / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(SNAPSHOT)
    return folder


def gate(run_cli, target, *args) -> tuple[int, dict]:
    result = run_cli("gate", target, "--policy", GEO, *args, "--format", "json")
    assert result.out, result.err
    return result.code, json.loads(result.out)


def violations(doc: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in doc["models"][0]["violations"]:
        out.setdefault(v["rule"], []).append(v["message"])
    return out


def props(component: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in component.get("properties", []):
        out.setdefault(p["name"], []).append(p["value"])
    return out


def lin001(run_cli, target, *args) -> list[str]:
    result = run_cli("scan", target, "--format", "json", *args)
    assert result.out, result.err
    return [f["detail"] for m in json.loads(result.out)["models"] for f in m["findings"]
            if f["rule"] == "AUD-LIN-001"]


# --- 1. the re-carded R1 distill fails through measured lineage --------------------------------


def test_recarded_r1_distill_in_a_mistralai_cache_fails_geo_on_measured_lineage(run_cli, tmp_path):
    files = r1_distill_qwen_7b() | {"README.md": card(MISTRAL_BASE, "Mistral-7B-Reasoner")}
    target = cache(tmp_path / "hub", "mistralai/Mistral-7B-Reasoner", files)

    shown = run_cli("fingerprint", "show", target)
    assert shown.code == 0, shown.err
    assert "DeepSeek-R1-Distill-Qwen (family, publisher deepseek-ai" in shown.out

    code, doc = gate(run_cli, target)
    assert code == 1
    model = doc["models"][0]
    assert (model["name"], model["publisher"]) == ("mistralai/Mistral-7B-Reasoner", "mistralai")
    [measured] = [e for e in model["lineage"] if e["grade"] == "measured"]
    assert (measured["name"], measured["relation"], measured["publisher"]) == (
        "DeepSeek-R1-Distill-Qwen", "family", "deepseek-ai")
    assert measured["tripped"] == ["GEO-001"]
    found = violations(doc)
    [geo1] = found["GEO-001"]
    assert geo1.startswith("DeepSeek-R1-Distill-Qwen (family, depth 1, measured by the family "
                           "table: tokenizer specials and architecture 0.9")
    assert "published by deepseek-ai" in geo1 and "tier restricted" in geo1
    [geo7] = found["GEO-007"]
    assert f"declared: {MISTRAL_BASE} (declared by README.md base_model)" in geo7
    assert "measured: DeepSeek-R1-Distill-Qwen of deepseek-ai (the family table" in geo7
    # the declared base is still listed: the verdict shows both claims side by side
    assert any(e["name"] == MISTRAL_BASE and e["grade"] == "declared" for e in model["lineage"])


def test_the_distill_renamed_as_a_mistralai_original_is_a_contradiction_too(run_cli, tmp_path):
    """No base declared: the model presents itself as mistralai's own, which the bytes deny."""
    files = r1_distill_qwen_7b() | {"README.md": card(None, "Mistral-7B-Reasoner")}
    target = cache(tmp_path / "hub", "mistralai/Mistral-7B-Reasoner", files)
    [detail] = lin001(run_cli, target)
    assert "declared: the model's own name (mistralai)" in detail
    assert "measured: DeepSeek-R1-Distill-Qwen of deepseek-ai" in detail


@pytest.mark.parametrize("repo, files, base, family", [
    ("mistralai/Mistral-7B-Instruct-v0.1", mistral_7b, MISTRAL_BASE, ("Mistral 7B", "mistralai")),
    ("someuser/qwen2.5-7b-sft", qwen25_7b, "Qwen/Qwen2.5-7B", ("Qwen2 / Qwen2.5", "Qwen")),
    ("someuser/my-model", qwen25_7b, None, ("Qwen2 / Qwen2.5", "Qwen")),
], ids=["mistral-finetune", "qwen-finetune", "no-card"])
def test_honest_models_get_no_contradiction(run_cli, tmp_path, repo, files, base, family):
    """Each is measured as the family it is (so the absence of a finding is not blindness)."""
    shipped = files() | ({"README.md": card(base, repo)} if base else {})
    target = cache(tmp_path / "hub", repo, shipped)
    assert lin001(run_cli, target) == []
    _, doc = gate(run_cli, target)
    assert "GEO-007" not in violations(doc)
    assert [(e["name"], e["publisher"]) for e in doc["models"][0]["lineage"]
            if e["grade"] == "measured"] == [family]


def test_the_real_r1_distill_declaring_its_qwen_base_is_no_contradiction(run_cli, tmp_path):
    """A distilled family keeps its student base: declaring that base is the truth."""
    files = r1_distill_qwen_7b() | {"README.md": card("Qwen/Qwen2.5-Math-7B", "R1-Distill")}
    target = cache(tmp_path / "hub", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", files)
    assert lin001(run_cli, target) == []


def test_a_merge_is_judged_against_all_its_declared_bases(run_cli, tmp_path):
    """One declared base matching the measurement is enough; none matching is a contradiction."""
    merge = "---\nbase_model: [deepseek-ai/DeepSeek-R1-Distill-Qwen-7B, Qwen/Qwen2.5-7B]\n---\n"
    target = cache(tmp_path / "hub", "someuser/merge", qwen25_7b() | {"README.md": merge.encode()})
    assert lin001(run_cli, target) == []
    lie = "---\nbase_model: [mistralai/Mistral-7B-v0.1, google/gemma-2-9b]\n---\n"
    other = cache(tmp_path / "hub2", "someuser/merge", qwen25_7b() | {"README.md": lie.encode()})
    [detail] = lin001(run_cli, other)
    assert "mistralai/Mistral-7B-v0.1" in detail and "google/gemma-2-9b" in detail


def test_the_honest_mistral_finetune_passes_geopolitical_risk(run_cli, tmp_path):
    shipped = mistral_7b() | {"README.md": card(MISTRAL_BASE, "Mistral-7B-Instruct")}
    target = cache(tmp_path / "hub", "mistralai/Mistral-7B-Instruct-v0.1", shipped)
    code, doc = gate(run_cli, target)
    assert code == 0, violations(doc)
    assert all(e["publisher"] == "mistralai" for e in doc["models"][0]["lineage"])


# --- 2. the reference store: a fine-tune measured from its sampled embedding rows ---------------


def model_folder(folder: Path, embedding: np.ndarray, card_text: str | None = None) -> Path:
    """A small model: a real safetensors embedding (V=32768, so the fixed rows are sampled)."""
    folder.mkdir(parents=True)
    write_safetensors(folder / "model.safetensors",
                      {"model.embed_tokens.weight": embedding.astype(np.float16),
                       "model.norm.weight": np.ones(embedding.shape[1], np.float16)})
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": embedding.shape[1], "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 512, "vocab_size": embedding.shape[0]}))
    if card_text is not None:
        (folder / "README.md").write_text(card_text)
    return folder


@pytest.fixture(scope="module")
def store_and_models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A store holding Qwen/tiny-base, a fine-tune of it that declares nothing, an unrelated one."""
    root = tmp_path_factory.mktemp("store")
    base = weights(1)
    noise = np.random.default_rng(7).standard_normal(base.shape).astype(np.float32) * 0.004
    model_folder(root / "tiny-base", base)
    finetune = model_folder(root / "finetune", base + noise,
                            "---\nlicense: apache-2.0\n---\n# My own model\n")
    unrelated = model_folder(root / "unrelated", weights(99))
    return root / "refs", finetune, unrelated


@pytest.fixture
def store(run_cli, store_and_models) -> Path:
    refs = store_and_models[0]
    if not refs.exists():
        added = run_cli("fingerprint", "add", refs.parent / "tiny-base", "--store", refs,
                        "--name", "Qwen/tiny-base")
        assert added.code == 0, added.err
    assert [p.name for p in refs.iterdir()] == ["Qwen--tiny-base.fingerprint.json"]
    return refs


def test_a_finetune_is_measured_same_base_in_a_valid_sbom(run_cli, store, store_and_models,
                                                          tmp_path):
    _, finetune, _ = store_and_models
    sbom = tmp_path / "finetune.cdx.json"
    scanned = run_cli("scan", finetune, "--fingerprints", store, "--sbom", sbom)
    assert scanned.code == 0, scanned.err
    doc = json.loads(sbom.read_text())
    assert doc["specVersion"] == "1.6"
    ancestors = doc["metadata"]["component"]["pedigree"]["ancestors"]
    [measured] = [a for a in ancestors
                  if props(a).get("auditor:lineage:grade") == ["measured"]]
    p = props(measured)
    assert measured["name"] == "Qwen/tiny-base"
    assert p["auditor:lineage:relation"] == ["same-base"]
    assert float(p["auditor:lineage:score"][0]) > 0.9
    assert "the reference store: embedding rows" in p["auditor:lineage:evidence"][0]
    valid = run_cli("sbom", "validate", sbom)
    assert valid.code == 0, valid.out + valid.err


def test_the_measured_restricted_base_fails_geo_001_though_the_card_is_silent(
        run_cli, store, store_and_models):
    _, finetune, _ = store_and_models
    code, doc = gate(run_cli, finetune, "--fingerprints", store)
    assert code == 1
    [geo1] = violations(doc)["GEO-001"]
    assert geo1.startswith("Qwen/tiny-base (same-base, depth 1, measured by the reference "
                           "store: embedding rows 0.9")
    assert "tier restricted" in geo1
    # the same fine-tune without the store: nothing measured, nothing restricted
    code, doc = gate(run_cli, finetune)
    assert "GEO-001" not in violations(doc)


def test_an_unrelated_model_has_no_measured_ancestor(run_cli, store, store_and_models):
    _, _, unrelated = store_and_models
    _, doc = gate(run_cli, unrelated, "--fingerprints", store)
    assert [e["name"] for e in doc["models"][0]["lineage"] if e["grade"] == "measured"] == []
    assert "GEO-001" not in violations(doc)


def test_the_base_is_not_its_own_ancestor(run_cli, store, store_and_models):
    refs = store_and_models[0]
    _, doc = gate(run_cli, refs.parent / "tiny-base", "--fingerprints", store,
                     "--name", "Qwen/tiny-base")
    assert [e for e in doc["models"][0]["lineage"] if e["grade"] == "measured"] == []


def test_a_corrupt_store_file_is_one_line_exit_2(run_cli, store, store_and_models, tmp_path):
    _, finetune, _ = store_and_models
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Qwen--tiny-base.fingerprint.json").write_bytes(
        (store / "Qwen--tiny-base.fingerprint.json").read_bytes()[:200])
    for command in (("scan", finetune), ("gate", finetune, "--policy", GEO)):
        result = run_cli(*command, "--fingerprints", broken)
        assert result.code == 2, result.out + result.err
        [line] = result.err.strip().splitlines()
        assert "Qwen--tiny-base.fingerprint.json" in line and "unreadable fingerprint" in line


def test_a_decoy_file_does_not_hide_the_embedding_the_loader_uses(
        run_cli, store, store_and_models, tmp_path):
    """An unlisted file sorting first with a random embedding: every sample is compared."""
    _, finetune, _ = store_and_models
    decoyed = tmp_path / "decoyed"
    decoyed.mkdir()
    for f in finetune.iterdir():
        (decoyed / f.name).write_bytes(f.read_bytes())
    write_safetensors(decoyed / "aaa-unused.safetensors",
                      {"model.embed_tokens.weight": weights(5).astype(np.float16)})
    _, doc = gate(run_cli, decoyed, "--fingerprints", store)
    assert [e["name"] for e in doc["models"][0]["lineage"] if e["grade"] == "measured"] == [
        "Qwen/tiny-base"]


def test_a_measured_base_keeps_the_grade_its_publisher_had_in_the_store(
        run_cli, store, store_and_models):
    """The bytes are measured; who published the base is only as strong as when it was added."""
    _, finetune, _ = store_and_models
    _, doc = gate(run_cli, finetune, "--fingerprints", store)
    [measured] = [e for e in doc["models"][0]["lineage"] if e["grade"] == "measured"]
    assert measured["publisher_grade"] == "declared"  # added with --name


@pytest.mark.parametrize("field, value", [
    ("architecture", {"layers": {"a": 1}}), ("weights", {"ids": [1, 1], "sketch": "x"}),
    ("tokenizer", {"size": 3, "digest": "d", "minhash": ["no"]}), ("specials", [1]),
    ("publisher_grade", "certain"),
])
def test_a_hostile_store_entry_is_an_error_naming_the_file_and_field(
        run_cli, store, store_and_models, tmp_path, field, value):
    _, finetune, _ = store_and_models
    bad = tmp_path / "bad"
    bad.mkdir()
    doc = json.loads((store / "Qwen--tiny-base.fingerprint.json").read_text())
    doc[field] = value
    (bad / "Qwen--tiny-base.fingerprint.json").write_text(json.dumps(doc))
    result = run_cli("scan", finetune, "--fingerprints", bad)
    assert result.code == 2, result.out + result.err
    [line] = result.err.strip().splitlines()
    assert "Qwen--tiny-base.fingerprint.json" in line and field in line


def test_a_tensor_that_could_not_be_sampled_is_named_in_the_report():
    """A reviewer must see what was not measured, and why (an IQ* quant type, an I8 tensor)."""
    from auditor.fingerprint import measure
    from auditor.model import Coverage, FileReport, FormatId
    from auditor.report.fingerprints import render

    files = [FileReport("model.gguf", 1, {}, FormatId.GGUF, Coverage.SCANNED, (),
                        {"embedding_sample_skipped": "token_embd.weight is IQ2_XS"}),
             FileReport("config.json", 1, {}, FormatId.JSON, Coverage.SCANNED, (),
                        {"model_type": "llama", "hidden_size": 4096})]
    summary = measure.summary(measure.fingerprint(files))
    assert summary["skipped"] == ["model.gguf: token_embd.weight is IQ2_XS"]
    from auditor.model import ModelReport

    shown = render([ModelReport("m", "/m", "local", tuple(files), facts={"fingerprint": summary})],
                   "text")
    assert "weights       not measured (model.gguf: token_embd.weight is IQ2_XS)" in shown
