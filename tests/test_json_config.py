"""JSON configs are parsed strictly: valid files give facts, invalid ones fail with a position."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor import pipeline
from auditor.errors import FormatError
from auditor.formats._lib.jsonstream import scan_json
from auditor.formats._lib.limits import Limits
from auditor.formats.code.json_config import FULL_PARSE_BYTES, MAX_DUPLICATE_FINDINGS
from auditor.model import Coverage, FileReport, Severity
from auditor.scanning.options import ScanOptions
from tests.builders import TINY_CONFIG


def scan_json_file(tmp_path, content: bytes, name: str = "config.json", **options) -> FileReport:
    path = tmp_path / name
    path.write_bytes(content)
    (report,) = pipeline.scan(path, ScanOptions(jobs=1, **options)).models[0].files
    return report


def test_valid_config_is_scanned_with_its_facts(tmp_path):
    report = scan_json_file(tmp_path, json.dumps(TINY_CONFIG, indent=2).encode())
    assert report.format == "json"
    assert report.coverage == Coverage.SCANNED
    assert report.findings == ()
    assert report.facts["model_type"] == "llama"
    assert report.facts["architectures"] == ["LlamaForCausalLM"]
    assert report.facts["torch_dtype"] == "float32"


def test_invalid_json_fails_the_scan_with_line_and_column(tmp_path, run_cli):
    (tmp_path / "config.json").write_text('{\n  "model_type": "llama",\n  "hidden": 16,,\n}\n')
    run = run_cli("scan", tmp_path, "--format", "json")
    assert run.code == 1
    (report,) = json.loads(run.out)["models"][0]["files"]
    assert report["coverage"] == "error"
    (finding,) = report["findings"]
    assert (finding["rule"], finding["severity"]) == ("AUD-JSON-001", "high")
    assert "line 3 column 16" in finding["detail"]
    assert finding["offset"] == len(b'{\n  "model_type": "llama",\n  "hidden": 16,')


def test_error_offset_is_in_bytes_after_non_ascii_text_and_a_bom(tmp_path):
    content = '\ufeff{"name": "modèle — ünïcode", oops}'.encode()
    report = scan_json_file(tmp_path, content)
    (finding,) = report.findings
    assert finding.rule == "AUD-JSON-001"
    assert content[finding.location.offset : finding.location.offset + 4] == b"oops"


def test_duplicate_keys_are_reported_and_the_file_still_parsed(tmp_path):
    content = b'{"model_type": "llama", "hidden_size": 8, "model_type": "evil"}'
    report = scan_json_file(tmp_path, content)
    assert [f.rule for f in report.findings] == ["AUD-JSON-002"]
    assert report.findings[0].severity == Severity.MEDIUM
    assert "'model_type'" in report.findings[0].detail
    assert report.coverage == Coverage.SCANNED


def test_json_with_a_byte_order_mark_is_valid(tmp_path):
    report = scan_json_file(tmp_path, b"\xef\xbb\xbf" + json.dumps(TINY_CONFIG).encode())
    assert report.format == "json"
    assert report.findings == ()


def test_json_that_is_not_utf8_is_invalid(tmp_path):
    report = scan_json_file(tmp_path, b'{"name": "caf\xe9"}')
    assert [f.rule for f in report.findings] == ["AUD-JSON-001"]
    assert "UTF-8" in report.findings[0].detail
    assert report.findings[0].location.offset == 13


def test_top_level_array_is_valid_json_without_config_facts(tmp_path):
    report = scan_json_file(tmp_path, b'[1, 2, {"model_type": "x"}]', name="list.json")
    assert report.findings == ()
    assert "model_type" not in report.facts


def test_nesting_beyond_the_parser_is_a_limit_not_a_crash(tmp_path):
    report = scan_json_file(tmp_path, b"[" * 100_000 + b"]" * 100_000, name="deep.json")
    assert [f.rule for f in report.findings] == ["AUD-SCAN-002"]
    assert report.coverage == Coverage.PARTIAL


def test_json_larger_than_the_limit_is_partial(tmp_path):
    content = json.dumps({"pad": "x" * 500}).encode()
    report = scan_json_file(tmp_path, content, limits=Limits(max_json_bytes=100))
    assert [f.rule for f in report.findings] == ["AUD-SCAN-002"]
    assert report.coverage == Coverage.PARTIAL
    assert report.size == len(content)  # still hashed whole


# -- big JSON (tokenizer.json, vocabularies) is validated in bounded memory ----------------

KEEP = frozenset({"model_type", "auto_map", "chat_template"})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from(["a", "b", "é", "model_type", "auto_map", "x\"y"])
                      | st.text(max_size=4), children, max_size=5),
    max_leaves=25,
)


def chunked(data: bytes, size: int):
    """A `read(n)` that hands out at most `size` bytes at a time (window boundaries)."""
    stream = io.BytesIO(data)
    return lambda n: stream.read(min(n, size))


@given(value=json_values, indent=st.sampled_from([None, 1, "\t"]), size=st.integers(1, 40))
def test_streamed_validation_agrees_with_json_loads_on_valid_documents(value, indent, size):
    data = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    scanned = scan_json(chunked(data, size), 1 << 20, KEEP)
    assert scanned.is_object == isinstance(value, dict)
    assert scanned.duplicates == []
    if isinstance(value, dict):
        assert scanned.kept == {k: v for k, v in value.items() if k in KEEP}


@given(value=json_values, cut=st.integers(0, 10_000), junk=st.sampled_from(
    [b"", b",", b"}", b"]", b"\"", b":", b"1", b"x", b" ", b"\\", b"\x01", b"\xff"]),
    size=st.integers(1, 40))
def test_streamed_validation_agrees_with_json_loads_on_damaged_documents(value, cut, junk, size):
    data = json.dumps(value).encode()
    at = cut % (len(data) + 1)
    damaged = data[:at] + junk + data[at + 1 :]
    try:
        json.loads(damaged.decode("utf-8"))
        valid = True
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        valid = False
    try:
        scan_json(chunked(damaged, size), 1 << 20, KEEP)
        streamed = True
    except FormatError:
        streamed = False
    assert streamed == valid


def test_streamed_validation_finds_duplicates_at_any_depth_and_reports_positions():
    data = b'{"v": {"a": 1, "b": 2, "a": 3}, "v": [1, 2, 3]}'
    assert scan_json(chunked(data, 3), 1 << 20, KEEP).duplicates == ["a", "v"]
    bad = b'{\n  "v": {"a": 1,\n  "b" 2}}'
    with pytest.raises(FormatError, match="line 3 column 7") as caught:
        scan_json(chunked(bad, 4), 1 << 20, KEEP)
    assert caught.value.offset == bad.index(b"2}")


def test_big_tokenizer_json_is_scanned_in_bounded_memory(tmp_path):
    vocab = {f"tok{i}_" + "x" * 48: i for i in range(80_000)}
    merges = [f"a{i} b{i}" for i in range(20_000)]
    content = json.dumps({"version": "1.0", "model": {"vocab": vocab, "merges": merges}}).encode()
    content = content[:-1] + b', "model_type": "bpe", "model": 1}'  # a late duplicate
    del vocab, merges
    assert len(content) > FULL_PARSE_BYTES
    # Modules the scan imports on first use are not the file's cost: import them first.
    scan_json_file(tmp_path, b'{"model": {"vocab": {"a": 0}, "merges": []}}', name="tokenizer.json")
    tracemalloc.start()
    report = scan_json_file(tmp_path, content, name="tokenizer.json")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.coverage == Coverage.SCANNED
    assert [(f.rule, f.detail) for f in report.findings] == [
        ("AUD-JSON-002", "key 'model' appears more than once")]
    assert report.facts["model_type"] == "bpe"
    assert peak < 20 * 1024 * 1024  # json.loads would peak near 30 MB on this 5.5 MB file


def test_big_invalid_json_is_invalid_with_its_byte_offset(tmp_path):
    content = json.dumps({"vocab": {f"t{i}_" + "x" * 48: i for i in range(80_000)}}).encode()
    at = content.rindex(b":", 0, len(content) - 100)
    content = content[:at] + b"!" + content[at + 1 :]
    report = scan_json_file(tmp_path, content, name="vocab.json")
    (finding,) = report.findings
    assert finding.rule == "AUD-JSON-001"
    assert finding.location.offset == at
    assert report.coverage == Coverage.ERROR


def test_many_duplicate_keys_give_a_bounded_number_of_findings(tmp_path):
    members = ", ".join(f'"k{i}": 1, "k{i}": 2' for i in range(100))
    report = scan_json_file(tmp_path, f"{{{members}}}".encode())
    assert len(report.findings) == MAX_DUPLICATE_FINDINGS + 1
    assert report.findings[-1].detail == "and 80 more duplicated keys"


# -- what is claimed as JSON: a leading bracket alone does not make a file JSON --------------

@pytest.mark.parametrize("content", [
    b"[]", b"[1, 2]", b'[\n  {"a": 1}]', b"{}", b"{ }", b'\xef\xbb\xbf{"a": 1}', b"[-1.5]",
    b"[[[0]]]", b"[true, false]", b"[null]", b'  \n["x"]',
])
def test_text_that_starts_like_json_is_claimed_and_valid(tmp_path, content):
    report = scan_json_file(tmp_path, content, name="data.json")
    assert (report.format, report.coverage, report.findings) == ("json", Coverage.SCANNED, ())


@pytest.mark.parametrize("content", [
    b'{"a": 1,,}', b"[1, 2", b"[null, nul]", b'{"a": tru}', b'\xef\xbb\xbf[ "x" "y"]',
])
def test_damaged_file_shaped_like_json_is_still_invalid_json(tmp_path, content):
    report = scan_json_file(tmp_path, content, name="data.json")
    assert report.format == "json"
    assert [(f.rule, f.severity) for f in report.findings] == [("AUD-JSON-001", Severity.HIGH)]


@pytest.mark.parametrize(("name", "content"), [
    ("vocab.txt", b"[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n"),
    ("vocab.txt", b"\xef\xbb\xbf[UNK]\n[CLS]\n"),
    ("config.toml", b"[model]\nlr = 0.1\n"),
    ("config.toml", b"[[servers]]\nname = 'a'\n"),
    ("settings.ini", b"[ section ]\nkey=value\n"),
    ("words.txt", b"[nullable]\n[true_north]\n"),
    ("brace.txt", b"{name}\n{other}\n"),
])
def test_bracketed_text_that_is_not_json_is_text(tmp_path, name, content):
    report = scan_json_file(tmp_path, content, name=name)
    assert report.format == "text"
    assert {f.severity for f in report.findings} <= {Severity.INFO}


def test_bert_tokenizer_folder_with_a_bracketed_vocab_scans_clean_at_high(tmp_path):
    folder = tmp_path / "bert-tokenizer"
    folder.mkdir()
    (folder / "vocab.txt").write_text("[PAD]\n" + "".join(f"[unused{i}]\n" for i in range(5))
                                      + "[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": 512}))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"unk_token": "[UNK]", "cls_token": "[CLS]", "pad_token": "[PAD]"}))
    result = pipeline.scan(folder, ScanOptions(jobs=1))
    files = {f.path: f for f in result.models[0].files}
    assert files["vocab.txt"].format == "text"
    assert all(f.severity < Severity.HIGH for r in files.values() for f in r.findings)
    assert all(r.coverage != Coverage.ERROR for r in files.values())
