"""Model cards: front matter read as data with a safe loader, broken cards are findings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.builders import write_tiny_model


def _scan(run_cli, folder: Path) -> dict:
    run = run_cli("scan", folder, "--format", "json", "--fail-on", "critical")
    assert run.code == 0, run.err
    return json.loads(run.out)["models"][0]


def _card(run_cli, tmp_path: Path, text: str, name: str = "README.md") -> dict:
    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    model = _scan(run_cli, folder)
    return next(f for f in model["files"] if f["path"] == name)


def test_example_card_facts_reach_the_model_facts(run_cli, tmp_path):
    model = _scan(run_cli, write_tiny_model(tmp_path / "m"))
    card = model["facts"]["card"]
    assert card == {
        "license": "apache-2.0", "base_model": "example-org/tiny-base",
        "base_model_relation": "finetune", "pipeline_tag": "text-generation",
        "language": ["en"], "tags": ["example"], "datasets": ["example-org/tiny-corpus"],
    }
    assert model["facts"]["config"]["model_type"] == "llama"
    assert model["facts"]["formats"] == ["safetensors"]
    assert model["facts"]["remote_code"]["present"] is False


def test_base_model_list_and_considerations_are_read(run_cli, tmp_path):
    text = (
        "---\nbase_model:\n- a/b\n- c/d\nbase_model_relation: merge\n---\n"
        "# Card\n\n## Limitations\n\nShort context only.\n\n## Other\n\nignored\n"
    )
    report = _card(run_cli, tmp_path, text)
    assert report["format"] == "modelcard"
    assert report["facts"]["base_model"] == ["a/b", "c/d"]
    assert report["facts"]["considerations"] == {"technicalLimitations": "Short context only."}
    assert report["findings"] == []


def test_crlf_card_is_read(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "---\r\nlicense: mit\r\n---\r\n## Limitations\r\nNone.\r\n")
    assert report["facts"] == {
        "license": "mit", "considerations": {"technicalLimitations": "None."},
    }


def test_malformed_yaml_is_a_medium_finding_naming_the_line(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "---\nlicense: mit\ntags: [a, b\n---\n# x\n")
    assert report["coverage"] == "error"
    [finding] = report["findings"]
    assert finding["rule"] == "AUD-CARD-001"
    assert finding["severity"] == "medium"
    assert "line 4" in finding["detail"]  # the card's own line numbers (the fence is line 1)


def test_unterminated_front_matter_is_malformed(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "---\nlicense: mit\n# no closing fence\n")
    assert [f["rule"] for f in report["findings"]] == ["AUD-CARD-001"]
    assert "closing" in report["findings"][0]["detail"]


def test_alias_bomb_is_refused_fast(run_cli, tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.monotonic()
    report = _card(run_cli, tmp_path, "---\n" + "\n".join(lines) + "\n---\n")
    assert time.monotonic() - started < 5
    assert [f["rule"] for f in report["findings"]] == ["AUD-CARD-001"]
    assert "aliases" in report["findings"][0]["detail"]


def test_python_tags_are_not_constructed(run_cli, tmp_path):
    canary = tmp_path / "canary"
    text = f"---\nlicense: !!python/object/apply:os.system ['touch {canary}']\n---\n"
    report = _card(run_cli, tmp_path, text)
    assert not canary.exists()
    assert [f["rule"] for f in report["findings"]] == ["AUD-CARD-001"]


def test_wrong_field_type_is_a_low_finding_and_left_out(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "---\nlicense: {id: mit}\nbase_model: [1, 2]\n"
                   "pipeline_tag: text-generation\n---\n")
    assert sorted(f["rule"] for f in report["findings"]) == ["AUD-CARD-002", "AUD-CARD-002"]
    assert {f["severity"] for f in report["findings"]} == {"low"}
    assert report["facts"] == {"pipeline_tag": "text-generation", "base_model": []}


def test_a_list_mixing_strings_and_junk_keeps_the_strings(run_cli, tmp_path):
    """Junk beside a real base must not hide it: `base_model` decides the model's origin."""
    report = _card(run_cli, tmp_path, "---\nbase_model: [meta-llama/Llama-3.1-8B, 123, {x: 1}, "
                   "null, deepseek-ai/DeepSeek-V3]\n---\n")
    assert [f["rule"] for f in report["findings"]] == ["AUD-CARD-002"]
    assert "3 of 5 entries are not strings" in report["findings"][0]["detail"]
    assert report["facts"]["base_model"] == ["meta-llama/Llama-3.1-8B", "deepseek-ai/DeepSeek-V3"]


def test_front_matter_over_the_limit_is_partial(run_cli, tmp_path):
    from auditor.formats.code.modelcard import MAX_FRONT_MATTER

    text = "---\n" + "# padding line\n" * (MAX_FRONT_MATTER // 15 + 10) + "---\n"
    report = _card(run_cli, tmp_path, text)
    assert report["coverage"] == "partial"
    assert [f["rule"] for f in report["findings"]] == ["AUD-SCAN-002"]


@pytest.mark.parametrize("name", ["notes.txt", "config.yaml"])
def test_front_matter_outside_markdown_is_not_a_card(run_cli, tmp_path, name):
    report = _card(run_cli, tmp_path, "---\nlicense: mit\n---\n", name=name)
    assert report["format"] == {"notes.txt": "text", "config.yaml": "yaml"}[name]
    assert not any(f["rule"].startswith("AUD-FILE") for f in report["findings"])


def test_markdown_without_front_matter_is_plain_text(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "# Just a readme\n")
    assert report["format"] == "text"
    assert [f["rule"] for f in report["findings"]] == ["AUD-SCAN-005"]


def test_empty_front_matter_is_a_card_without_facts(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "---\n---\n# Title\n")
    assert report["format"] == "modelcard"
    assert report["facts"] == {}
    assert report["findings"] == []


def test_front_matter_that_is_not_a_mapping_is_malformed(run_cli, tmp_path):
    report = _card(run_cli, tmp_path, "---\n- just\n- a list\n---\n")
    assert [f["rule"] for f in report["findings"]] == ["AUD-CARD-001"]
    assert "not a mapping" in report["findings"][0]["detail"]
