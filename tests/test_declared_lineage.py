"""Declared lineage: every base model a model's own files name, with relation and evidence.

Real files are written (a card, adapter_config.json, config.json, GGUF files by
the `gguf` package's writer, a mergekit recipe), scanned by `auditor.scan`, and
the file reports handed to `declared_lineage`; hostile shapes are fed as facts
directly, since the format modules already refuse most of them.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

import auditor
from auditor.model import Coverage, FileReport, FormatId, Grade, LineageEdge
from auditor.scanning.declared import MAX_EDGES, MAX_NAME, declared_lineage
from auditor.scanning.options import ScanOptions

MODEL = "acme/tiny"


# -- builders ----------------------------------------------------------------------------------

def card(folder: Path, **fields: object) -> None:
    """README.md with the given front matter fields (JSON is valid YAML)."""
    lines = [f"{k}: {json.dumps(v)}" for k, v in fields.items()]
    (folder / "README.md").write_text("\n".join(["---", *lines, "---", "", "# model", ""]))


def config(folder: Path, name: str = "config.json", **keys: object) -> None:
    (folder / name).write_text(json.dumps({"model_type": "llama", **keys}, indent=2))


def gguf_file(path: Path, bases: list[dict[str, str]] = (), **general: str) -> None:
    """A small GGUF written by the gguf package, with base models and `general.*` strings."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny")
    if bases:
        w.add_base_model_count(len(bases))
    for i, base in enumerate(bases):
        for part, value in base.items():
            w.add_string(f"general.base_model.{i}.{part}", value)
    for key, value in general.items():
        w.add_string(f"general.{key.replace('__', '.')}", value)
    w.add_tensor("token_embd.weight", np.ones((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def weights(folder: Path) -> None:
    from tests.builders import safetensors_bytes

    (folder / "model.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2, 2])}, {"format": "pt"}))


def scan(folder: Path) -> tuple[FileReport, ...]:
    return auditor.scan(folder, ScanOptions(jobs=1)).models[0].files


def lineage(folder: Path, name: str = MODEL) -> list[LineageEdge]:
    return declared_lineage(scan(folder), name).edges


def by_name(edges: list[LineageEdge]) -> dict[str, LineageEdge]:
    return {e.name: e for e in edges}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    return folder


# -- model card --------------------------------------------------------------------------------

def test_card_base_model_string_with_relation_is_one_declared_edge(repo):
    card(repo, base_model="Qwen/Qwen2.5-7B", base_model_relation="quantized")
    weights(repo)
    assert lineage(repo) == [LineageEdge(
        name="Qwen/Qwen2.5-7B", relation="quantized", grade=Grade.DECLARED,
        evidence=("README.md base_model",), publisher="Qwen", publisher_grade=Grade.DECLARED,
        child=None, depth=1, commit=None, resolved=False)]


def test_card_base_model_list_without_relation_is_finetune_in_card_order(repo):
    card(repo, base_model=["org-b/two", "org-a/one"])
    weights(repo)
    edges = lineage(repo)
    assert [(e.name, e.relation, e.publisher) for e in edges] == [
        ("org-b/two", "finetune", "org-b"), ("org-a/one", "finetune", "org-a")]


@pytest.mark.parametrize("relation", ["adapter", "merge", "quantized", "finetune",
                                      "distillation"])
def test_card_relation_is_taken_when_it_is_one_the_hub_knows(repo, relation):
    card(repo, base_model="org/base", base_model_relation=relation)
    assert lineage(repo)[0].relation == relation


def test_unknown_card_relation_falls_back_to_inference(repo):
    card(repo, base_model="org/base", base_model_relation="sideways")
    assert lineage(repo)[0].relation == "finetune"


def test_distillation_tag_makes_card_bases_distillations(repo):
    card(repo, base_model="deepseek-ai/DeepSeek-R1", tags=["reasoning", "distillation"])
    assert lineage(repo)[0].relation == "distillation"


def test_card_base_without_org_has_no_publisher(repo):
    card(repo, base_model="gpt2")
    (edge,) = lineage(repo)
    assert (edge.name, edge.publisher, edge.publisher_grade) == ("gpt2", None, None)


def test_card_base_given_as_hub_url_is_the_repository(repo):
    card(repo, base_model="https://huggingface.co/Org/Base")
    assert lineage(repo)[0].name == "Org/Base"


def test_quantization_config_makes_card_bases_quantized(repo):
    card(repo, base_model="org/base")
    config(repo, quantization_config={"quant_method": "gptq", "bits": 4})
    assert lineage(repo)[0].relation == "quantized"


def test_card_in_a_subfolder_is_not_the_models_card_but_its_bases_count(repo):
    (repo / "docs").mkdir()
    card(repo / "docs", base_model="org/base")
    weights(repo)
    (edge,) = lineage(repo)
    assert (edge.name, edge.relation, edge.evidence) == (
        "org/base", "unknown", ("docs/README.md base_model",))


# -- adapter_config.json -----------------------------------------------------------------------

def test_adapter_config_base_is_an_adapter_edge(repo):
    config(repo, "adapter_config.json", peft_type="LORA",
           base_model_name_or_path="meta-llama/Llama-3.1-8B")
    (edge,) = lineage(repo)
    assert (edge.name, edge.relation, edge.publisher) == (
        "meta-llama/Llama-3.1-8B", "adapter", "meta-llama")
    assert edge.evidence == ("adapter_config.json base_model_name_or_path",)


def test_adapter_config_facts_are_kept(repo):
    config(repo, "adapter_config.json", peft_type="LORA", base_model_name_or_path="org/base")
    (report,) = scan(repo)
    assert report.facts["peft_type"] == "LORA"
    assert report.facts["base_model_name_or_path"] == "org/base"


@pytest.mark.parametrize("path", ["/mnt/models/llama", "./llama", "../llama", "C:\\models\\x",
                                  "~/llama", "org/../etc", ""])
def test_adapter_config_local_path_is_not_a_repository(repo, path):
    config(repo, "adapter_config.json", peft_type="LORA", base_model_name_or_path=path)
    assert lineage(repo) == []


def test_card_bases_of_an_adapter_trained_on_a_local_copy_are_adapter_bases(repo):
    card(repo, base_model="mistralai/Mistral-7B-v0.1")
    config(repo, "adapter_config.json", peft_type="LORA", base_model_name_or_path="/data/m7b")
    (edge,) = lineage(repo)
    assert (edge.name, edge.relation, edge.evidence) == (
        "mistralai/Mistral-7B-v0.1", "adapter", ("README.md base_model",))


# -- GGUF --------------------------------------------------------------------------------------

def test_gguf_base_model_repo_url_on_a_mirror_host_is_the_repository(repo):
    gguf_file(repo / "qwen-Q4_K_M.gguf", [{
        "name": "Qwen2.5 7B", "organization": "Qwen",
        "repo_url": "https://hf-mirror.com/Qwen/Qwen2.5-7B/tree/main"}])
    (edge,) = lineage(repo)
    assert (edge.name, edge.relation, edge.publisher, edge.publisher_grade) == (
        "Qwen/Qwen2.5-7B", "quantized", "Qwen", Grade.DECLARED)
    assert edge.evidence == ("qwen-Q4_K_M.gguf general.base_model.0",)


@pytest.mark.parametrize("url", [
    "https://huggingface.co/Qwen/Qwen2.5-7B",
    "https://modelscope.cn/models/Qwen/Qwen2.5-7B",
    "https://www.modelscope.cn/models/Qwen/Qwen2.5-7B/files",
    "http://mirror.internal:8080/Qwen/Qwen2.5-7B/resolve/main/config.json",
])
def test_gguf_repo_url_on_any_host_gives_the_repository(repo, url):
    gguf_file(repo / "m.gguf", [{"name": "whatever", "repo_url": url}])
    assert [e.name for e in lineage(repo)] == ["Qwen/Qwen2.5-7B"]


def test_gguf_base_without_url_is_its_name_published_by_its_organization(repo):
    gguf_file(repo / "m.gguf", [{"name": "DeepSeek V3", "organization": "deepseek-ai"},
                                {"name": "Mystery", "repo_url": "https://example.com/"}])
    edges = by_name(lineage(repo))
    assert edges["DeepSeek V3"].publisher == "deepseek-ai"
    assert edges["DeepSeek V3"].publisher_grade == Grade.DECLARED
    assert edges["Mystery"].publisher is None and edges["Mystery"].publisher_grade is None
    assert edges["Mystery"].evidence == ("m.gguf general.base_model.1",)


def test_gguf_source_repository_is_the_model_it_was_converted_from(repo):
    gguf_file(repo / "m.gguf", source__repo_url="https://huggingface.co/mistralai/Mistral-7B",
              source__huggingface__repository="google/gemma-2b")
    (report,) = scan(repo)
    assert report.facts["source_repo_url"] == "https://huggingface.co/mistralai/Mistral-7B"
    assert report.facts["source_repository"] == "google/gemma-2b"
    edges = declared_lineage([report], MODEL).edges
    assert [(e.name, e.relation, e.evidence) for e in edges] == [
        ("mistralai/Mistral-7B", "quantized", ("m.gguf general.source.repo_url",)),
        ("google/gemma-2b", "quantized", ("m.gguf general.source.huggingface.repository",))]


def test_gguf_files_in_subfolders_declare_too_and_quants_share_one_edge(repo):
    (repo / "Q8").mkdir()
    base = {"name": "Llama 3", "repo_url": "https://huggingface.co/meta-llama/Meta-Llama-3-8B"}
    gguf_file(repo / "llama-Q4_0.gguf", [base])
    gguf_file(repo / "Q8" / "llama-Q8_0.gguf", [base])
    (edge,) = lineage(repo)
    assert edge.evidence == ("Q8/llama-Q8_0.gguf general.base_model.0",
                             "llama-Q4_0.gguf general.base_model.0")


def test_card_base_of_a_gguf_repository_is_quantized(repo):
    card(repo, base_model="Qwen/Qwen2.5-7B-Instruct")
    gguf_file(repo / "m.gguf")
    assert lineage(repo)[0].relation == "quantized"


# -- config.json _name_or_path -----------------------------------------------------------------

def test_config_name_or_path_naming_another_repository_is_an_unknown_edge(repo):
    config(repo, _name_or_path="mistralai/Mistral-7B-v0.1")
    (edge,) = lineage(repo)
    assert (edge.name, edge.relation, edge.evidence, edge.publisher) == (
        "mistralai/Mistral-7B-v0.1", "unknown", ("config.json _name_or_path",), "mistralai")


@pytest.mark.parametrize("value", ["ACME/Tiny", "/home/me/ckpt", "./out", "ckpt",
                                   "output/checkpoint-500", "runs/final", "out/step_1200"])
def test_config_name_or_path_naming_itself_or_a_local_path_is_not_lineage(repo, value):
    config(repo, _name_or_path=value)
    assert lineage(repo) == []


# -- mergekit ----------------------------------------------------------------------------------

MERGEKIT = """\
merge_method: ties
base_model: mistralai/Mistral-7B-v0.1
models:
  - model: org/alpha+org/alpha-lora
    parameters: {weight: 0.5}
  - model:
      model: {path: org/beta, revision: main}
      lora: {path: org/beta-lora}
  - model: mistralai/mistral-7b-v0.1
slices:
  - sources:
      - model: org/gamma@v2
        layer_range: [0, 16]
      - {model: 7, layer_range: [0, 16]}
parameters:
  model: not/a-model
dtype: bfloat16
"""


def test_mergekit_recipe_models_are_merge_edges(repo):
    (repo / "mergekit_config.yml").write_text(MERGEKIT)
    edges = lineage(repo)
    assert [e.name for e in edges] == [
        "mistralai/Mistral-7B-v0.1", "org/alpha", "org/alpha-lora", "org/beta", "org/beta-lora",
        "org/gamma"]
    assert {e.relation for e in edges} == {"merge"}
    assert {e.evidence for e in edges} == {("mergekit_config.yml",)}


def test_mergekit_scalars_become_a_bounded_fact_and_tags_build_nothing(repo, tmp_path):
    canary = tmp_path / "CANARY"
    models = "\n".join(f"  - model: org/m{i}" for i in range(200))
    (repo / "mergekit_config.yml").write_text(
        f"merge_method: linear\nbase_model: !!python/object/apply:os.system ['touch {canary}']\n"
        f"models:\n{models}\n")
    (report,) = scan(repo)
    assert report.facts["merge_models"] == [f"org/m{i}" for i in range(64)]
    assert not canary.exists()
    assert len(declared_lineage([report], MODEL).edges) == 64


def test_yaml_without_merge_method_has_no_merge_models(repo):
    (repo / "config.yml").write_text("base_model: org/base\nmodels:\n  - model: org/x\n")
    (report,) = scan(repo)
    assert "merge_models" not in report.facts


def test_several_card_bases_with_a_mergekit_recipe_are_merges(repo):
    card(repo, base_model=["org/one", "org/two"])
    (repo / "mergekit_config.yml").write_text("merge_method: slerp\nmodels:\n  - model: org/one\n")
    edges = by_name(lineage(repo))
    assert edges["org/two"].relation == "merge"
    assert edges["org/two"].evidence == ("README.md base_model",)
    assert edges["org/one"].evidence == ("README.md base_model", "mergekit_config.yml")


# -- one edge per base -------------------------------------------------------------------------

def test_one_base_named_everywhere_is_one_edge_with_every_evidence(repo):
    card(repo, base_model="Org/Base")
    config(repo, _name_or_path="ORG/BASE")
    config(repo, "adapter_config.json", peft_type="LORA", base_model_name_or_path="org/base")
    gguf_file(repo / "b.gguf", [{"repo_url": "https://hf-mirror.com/org/Base"}])
    gguf_file(repo / "a.gguf", [{"repo_url": "https://huggingface.co/org/base"}])
    (edge,) = lineage(repo)
    assert edge.name == "Org/Base" and edge.publisher == "Org"
    assert edge.evidence == ("README.md base_model", "adapter_config.json base_model_name_or_path",
                             "config.json _name_or_path", "a.gguf general.base_model.0",
                             "b.gguf general.base_model.0")
    assert edge.relation == "adapter"  # adapter outranks quantized (GGUF) and finetune


def test_explicit_card_relation_outranks_every_inference(repo):
    card(repo, base_model="org/base", base_model_relation="finetune")
    config(repo, "adapter_config.json", peft_type="LORA", base_model_name_or_path="org/base")
    (repo / "mergekit_config.yml").write_text("merge_method: ties\nbase_model: org/base\n")
    (edge,) = lineage(repo)
    assert edge.relation == "finetune"
    assert edge.evidence == ("README.md base_model",
                             "adapter_config.json base_model_name_or_path", "mergekit_config.yml")


def test_merge_outranks_quantized(repo):
    gguf_file(repo / "m.gguf", [{"repo_url": "https://huggingface.co/org/base"}])
    (repo / "mergekit_config.yml").write_text("merge_method: ties\nbase_model: org/base\n")
    (edge,) = lineage(repo)
    assert edge.relation == "merge"


def test_no_declarations_no_lineage(repo):
    weights(repo)
    config(repo)
    assert lineage(repo) == []


# -- hostile shapes ----------------------------------------------------------------------------

def test_ten_thousand_card_bases_are_bounded(repo):
    card(repo, base_model=[f"org/m{i}" for i in range(10_000)])
    started = time.monotonic()
    edges = lineage(repo)
    assert len(edges) == MAX_EDGES
    assert edges[0].name == "org/m0"
    assert time.monotonic() - started < 30


def test_ten_thousand_gguf_base_models_are_bounded(repo):
    bases = [{"name": f"m{i}", "organization": "org"} for i in range(10_000)]
    gguf_file(repo / "m.gguf", bases)
    edges = lineage(repo)
    assert 0 < len(edges) <= MAX_EDGES


def test_huge_names_are_cut_and_keep_their_publisher(repo):
    huge = "deepseek-ai/" + "x" * 100_000
    card(repo, base_model=[huge, "y" * 100_000])
    edges = lineage(repo)
    assert [len(e.name) for e in edges] == [MAX_NAME, MAX_NAME]
    assert edges[0].publisher == "deepseek-ai"


def _report(path: str, fmt: FormatId, facts: object) -> FileReport:
    return FileReport(path=path, size=0, digests={}, format=fmt, coverage=Coverage.SCANNED,
                      facts=facts)  # type: ignore[arg-type]


SHAPES: list[object] = [
    None, True, 0, -1, 2**70, 1.5, float("nan"), "", " ", "org/x", "x" * 50_000, "\x00/\udcff",
    "https://[bad", "https://h/models/", "a+b+@", [], [None], [1, "org/y", {"a": 1}], [[["z"]]],
    {}, {"name": 1}, {"repo_url": ["u"]}, [{"name": None, "organization": 5, "repo_url": {}}],
    [{"repo_url": "https://h/models/a/b"}, 7, "s"], ("t",), {1, 2}, b"org/bytes",
    ["org/m"] * 5000,
]
KEYS = ["base_model", "base_model_relation", "tags", "base_model_name_or_path", "peft_type",
        "_name_or_path", "quantization_config", "merge_models", "base_models", "source_repo_url",
        "source_repository", "name", "organization"]
PLACES = [("README.md", FormatId.MODELCARD), ("adapter_config.json", FormatId.JSON),
          ("config.json", FormatId.JSON), ("mergekit_config.yml", FormatId.YAML),
          ("mergekit_config.yaml", FormatId.YAML), ("sub/q.gguf", FormatId.GGUF),
          ("README.md", FormatId.JSON)]


def test_declared_lineage_never_raises_on_any_facts_shape():
    for (path, fmt), key, value in itertools.product(PLACES, KEYS, SHAPES):
        edges = declared_lineage([_report(path, fmt, {key: value})], MODEL).edges
        assert len(edges) <= MAX_EDGES
        assert all(isinstance(e.name, str) and len(e.name) <= MAX_NAME for e in edges)
    everything = {key: value for key, value in zip(KEYS, itertools.cycle(SHAPES), strict=False)}
    reports = [_report(path, fmt, everything) for path, fmt in PLACES]
    reports += [_report(path, fmt, shape) for (path, fmt), shape in zip(
        PLACES, [None, [], "x", 3, {"x"}, ("a",), b""], strict=True)]
    for shift in range(len(SHAPES)):
        facts = {key: SHAPES[(i + shift) % len(SHAPES)] for i, key in enumerate(KEYS)}
        declared_lineage([*reports, *(_report(p, f, facts) for p, f in PLACES)], shift)


def test_a_card_listing_more_bases_than_are_read_is_a_finding(repo):
    bases = "".join(f"  - org/m{i}\n" for i in range(300)) + "  - deepseek-ai/DeepSeek-V3\n"
    (repo / "README.md").write_text(f"---\nbase_model:\n{bases}---\n")
    declared = declared_lineage(scan(repo), MODEL)
    assert [f.rule for f in declared.findings] == ["AUD-PROV-012", "AUD-PROV-012"]
    assert "301 card base_model entries" in declared.findings[0].detail


def test_bases_declared_in_sub_folders_count(repo):
    """A diffusers text encoder, or a model copied into another's folder, keeps its origin."""
    (repo / "README.md").write_text("---\nbase_model: meta-llama/Llama-3.1-8B\n---\n")
    (repo / "text_encoder").mkdir()
    (repo / "text_encoder" / "config.json").write_text(
        '{"_name_or_path": "Qwen/Qwen2.5-VL-7B-Instruct"}')
    (repo / "extra").mkdir()
    (repo / "extra" / "README.md").write_text(
        "---\nbase_model: deepseek-ai/DeepSeek-V3\nbase_model_relation: finetune\n---\n")
    edges = by_name(lineage(repo))
    assert edges["Qwen/Qwen2.5-VL-7B-Instruct"].evidence == (
        "text_encoder/config.json _name_or_path",)
    assert edges["Qwen/Qwen2.5-VL-7B-Instruct"].relation == "unknown"
    assert (edges["deepseek-ai/DeepSeek-V3"].evidence, edges["deepseek-ai/DeepSeek-V3"].relation
            ) == (("extra/README.md base_model",), "finetune")
    assert edges["meta-llama/Llama-3.1-8B"].relation == "finetune"
