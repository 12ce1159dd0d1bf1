"""Architecture fingerprint and the shipped family table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.errors import ConfigError
from auditor.fingerprint import families
from auditor.fingerprint.architecture import ArchPrint, similarity
from auditor.model import Coverage, FileReport, FormatId
from auditor.scanning.options import ScanOptions

DS_BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"


def _config(family: families.Family, shape: ArchPrint, **extra: object) -> dict:
    """A config.json built from the table's own values for one of its flagship shapes."""
    doc: dict = {"model_type": family.model_types[0], "hidden_size": shape.hidden,
                 "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
                 "num_key_value_heads": shape.kv_heads, "intermediate_size": shape.intermediate,
                 "rope_theta": shape.rope_theta}
    if family.vocab_sizes:
        doc["vocab_size"] = family.vocab_sizes[-1]
    if shape.experts:
        doc[next(k for k in family.keys if k in ("n_routed_experts", "num_experts",
                                                   "num_local_experts"))] = shape.experts
        doc["num_experts_per_tok"] = shape.experts_per_tok
        doc["moe_intermediate_size"] = shape.expert_intermediate
    for key in family.keys:
        doc.setdefault(key, 1)
    doc.update(extra)
    return {k: v for k, v in doc.items() if v is not None}


def _report(path: str, facts: dict) -> FileReport:
    return FileReport(path=path, size=0, digests={}, format=FormatId.JSON,
                      coverage=Coverage.SCANNED, facts=facts)


def _family(key: str) -> families.Family:
    return next(f for f in families.table() if f.key == key)


def _specials(family: families.Family) -> dict:
    out = {}
    for k, v in family.specials.items():
        out[k] = v[0] if isinstance(v, list) else v
    return out


@pytest.mark.parametrize("key", ["deepseek-v3", "qwen2", "qwen3-moe", "llama3", "mixtral",
                                 "gemma2", "yi", "glm4", "kimi-k2", "gpt-oss", "command-r",
                                 "olmo2", "phi3", "mistral-nemo", "baichuan2"])
def test_a_config_from_the_table_is_recognised_as_its_family(key):
    family = _family(key)
    for shape in family.shapes:
        arch = ArchPrint.from_config(_config(family, shape))
        best = families.nearest(arch, _specials(family))[0]
        assert best[0].key == key, (shape, families.nearest(arch, _specials(family))[:3])


def test_a_renamed_model_with_the_same_shapes_is_still_recognised():
    family = _family("deepseek-v3")
    doc = _config(family, family.shapes[0], model_type="totally_original",
                  architectures=["OriginalForCausalLM"], _name_or_path="acme/original-1")
    best, score = families.nearest(ArchPrint.from_config(doc))[0]
    assert best.key == "deepseek-v3" and score > 0.6


def test_r1_distill_qwen_is_told_apart_from_qwen_and_from_deepseek():
    r1 = _family("deepseek-r1-distill-qwen")
    arch = ArchPrint.from_config(_config(r1, r1.shapes[0]))
    ranked = {f.key: s for f, s in families.nearest(
        arch, {"bos": DS_BOS, "bos_id": 151646, "eos_id": 151643})}
    assert max(ranked, key=ranked.get) == "deepseek-r1-distill-qwen"
    assert ranked["deepseek-r1-distill-qwen"] > ranked["qwen2"] > ranked["deepseek-v3"]
    # the same shapes without the teacher's tokens: the base family, not the distill
    plain = families.nearest(arch, {"eos_id": 151645})
    assert plain[0][0].key == "qwen2"
    # DeepSeek's own BOS at id 0 is DeepSeek-V3, not the distill
    v3 = _family("deepseek-v3")
    native = families.nearest(ArchPrint.from_config(_config(v3, v3.shapes[0])),
                              {"bos": DS_BOS, "bos_id": 0})
    assert native[0][0].key == "deepseek-v3"


def test_r1_distill_llama_is_told_apart_from_llama3():
    r1 = _family("deepseek-r1-distill-llama")
    arch = ArchPrint.from_config(_config(r1, r1.shapes[0]))
    assert families.nearest(arch, {"bos": DS_BOS, "bos_id": 128000})[0][0].key == r1.key
    assert families.nearest(arch, {"bos": "<|begin_of_text|>", "bos_id": 128000})[0][0].key \
        == "llama3"


def test_vocab_padding_and_edited_context_are_tolerated():
    family = _family("llama3")
    base = ArchPrint.from_config(_config(family, family.shapes[0]))
    tuned = ArchPrint.from_config(_config(family, family.shapes[0], vocab_size=128258,
                                          max_position_embeddings=131072))
    assert similarity(base, tuned) > 0.97
    assert families.nearest(tuned, {"bos": "<|begin_of_text|>"})[0][0].key == "llama3"


def test_layer_count_weighs_less_than_per_layer_shapes():
    family = _family("qwen2")
    shape = family.shapes[1]
    base = ArchPrint.from_config(_config(family, shape))
    upscaled = ArchPrint.from_config(_config(family, shape, num_hidden_layers=105))
    other = ArchPrint.from_config(_config(family, shape, hidden_size=7168))
    assert similarity(base, upscaled) > 0.9 > similarity(base, other)


def test_multimodal_text_config_is_the_language_model():
    family = _family("qwen2")
    text = _config(family, family.shapes[0])
    doc = {"model_type": "llava", "text_config": text}
    assert ArchPrint.from_config(doc) == ArchPrint.from_config(text)


def test_gguf_metadata_and_config_json_give_the_same_print(tmp_path: Path):
    import gguf
    import numpy as np

    family = _family("qwen2")
    shape = family.shapes[0]
    doc = _config(family, shape)
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "qwen2")
    w.add_embedding_length(shape.hidden)
    w.add_block_count(shape.layers)
    w.add_head_count(shape.heads)
    w.add_head_count_kv(shape.kv_heads)
    w.add_feed_forward_length(shape.intermediate)
    w.add_rope_freq_base(shape.rope_theta)
    w.add_vocab_size(doc["vocab_size"])
    w.add_uint32("llama.block_count", 99)  # another architecture's key: not this file's shape
    w.add_tensor("output_norm.weight", np.ones((8,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    scanned = pipeline.scan(tmp_path / "m.gguf", ScanOptions(jobs=1)).models[0].files[0]
    assert scanned.facts["hparams"]["block_count"] == shape.layers
    from_gguf = ArchPrint.from_files([scanned])
    from_config = ArchPrint.from_files([_report("config.json", doc)])
    assert from_gguf == from_config
    assert similarity(from_gguf, from_config) == 1.0


def test_safetensors_pattern_fills_what_the_config_lacks():
    pattern = {"shapes": {"model.embed_tokens.weight": [[152064, 3584]],
                          "model.layers.N.mlp.up_proj.weight": [[18944, 3584]]},
               "blocks": {"model.layers": 28}}
    arch = ArchPrint.from_files([_report("model-00001-of-00002.safetensors",
                                         {"tensor_pattern": pattern})])
    assert (arch.vocab, arch.hidden, arch.layers) == (152064, 3584, 28)
    assert arch.pattern and len(arch.pattern) == 64
    assert ArchPrint.from_files([_report("README.md", {})]) is None


def test_every_family_has_sources_and_the_table_validates():
    table = families.table()
    assert len(table) >= 24
    refs = json.dumps([f.sources for f in table])
    for family in table:
        assert family.sources and family.publishers, family.key
    assert "H-DSV3" in refs
    ds = _family("deepseek-v3")
    assert "\uff5c" in ds.specials["bos"] and "\u2581" in ds.specials["bos"]


def test_a_malformed_table_fails_closed(tmp_path: Path):
    bad = tmp_path / "f.yaml"
    bad.write_text("families:\n  - {key: x, label: X, publishers: [acme], sources: []}\n")
    with pytest.raises(ConfigError, match="sources"):
        families.load(bad)
    bad.write_text("families:\n  - {key: x, label: X, publishers: [acme], sources: [nowhere]}\n")
    with pytest.raises(ConfigError, match="neither a URL"):
        families.load(bad)
    bad.write_text("!!python/object:os.system {}\n")
    with pytest.raises(ConfigError):
        families.load(bad)
