"""TensorFlow SavedModel: graphs written byte by byte with a tiny protobuf encoder (no TF)."""

from __future__ import annotations

import base64
import json
import marshal
from pathlib import Path

import pytest

from auditor.model import FileReport
from tests.builders import varint
from tests.scan_helpers import rule_ids, scan_files


def i(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def s(num: int, value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return varint(num << 3 | 2) + varint(len(raw)) + raw


def m(num: int, *parts: bytes) -> bytes:
    return s(num, b"".join(parts))


def node(name: str, op: str, *inputs: str, attrs: dict[str, bytes] | None = None,
         field: int = 1) -> bytes:
    """NodeDef (field 1 of GraphDef, field 3 of FunctionDef); attrs are AttrValue bytes."""
    parts = [s(1, name), s(2, op), *(s(3, x) for x in inputs)]
    for key, value in (attrs or {}).items():
        parts.append(m(5, s(1, key), s(2, value)))
    return m(field, *parts)


def const_string(name: str, value: str) -> bytes:
    tensor = m(8, i(1, 7), s(8, value))  # AttrValue.tensor: dtype DT_STRING, string_val
    return node(name, "Const", attrs={"value": tensor})


def saved_model(*graph_nodes: bytes, functions: bytes = b"", assets: tuple[str, ...] = ()) -> bytes:
    meta_info = m(1, s(4, "serve"), s(5, "2.16.1"))
    graph = m(2, *graph_nodes, m(2, functions) if functions else b"", m(4, i(1, 1700)))
    asset_defs = b"".join(m(6, m(1, s(1, "asset:0")), s(2, a)) for a in assets)
    return i(1, 1) + m(2, meta_info, graph, asset_defs)


def function(name: str, *nodes: bytes) -> bytes:
    return m(1, m(1, s(1, name)), *nodes)


CHECKPOINT = (
    node("saver_filename", "Placeholder"),
    const_string("tensor_names", "w"),
    node("save", "SaveV2", "saver_filename", "tensor_names"),
    node("restore", "RestoreV2", "saver_filename:0", "tensor_names"),
    node("x", "Placeholder"),
    node("y", "MatMul", "x", "x"),
)


def _write(tmp_path: Path, data: bytes, name: str = "saved_model.pb") -> FileReport:
    (tmp_path / name).write_bytes(data)
    return scan_files(tmp_path)[name]


def test_plain_savedmodel_with_checkpoint_ops_is_clean(tmp_path, run_cli):
    report = _write(tmp_path, saved_model(*CHECKPOINT))
    assert report.format == "tf-savedmodel" and report.findings == ()
    assert report.facts["tags"] == ["serve"]
    assert report.facts["tensorflow_version"] == "2.16.1"
    assert {"SaveV2", "RestoreV2", "MatMul"} <= set(report.facts["op_types"])
    assert run_cli("scan", tmp_path).code == 0


def test_read_file_is_flagged_with_its_path(tmp_path):
    report = _write(tmp_path, saved_model(*CHECKPOINT, const_string("p", "/etc/passwd"),
                                          node("leak", "ReadFile", "p")))
    (finding,) = report.findings
    assert finding.rule == "AUD-TF-002" and "/etc/passwd" in finding.detail


def test_pyfunc_in_the_function_library_is_flagged(tmp_path):
    fn = function("__inference_call_7", node("pf", "EagerPyFunc", "x", field=3))
    report = _write(tmp_path, saved_model(*CHECKPOINT, functions=fn))
    (finding,) = report.findings
    assert finding.rule == "AUD-TF-001" and "function __inference_call_7" in finding.detail


@pytest.mark.parametrize("op", ["WriteFile", "CreateSummaryFileWriter", "DebugIdentityV2"])
def test_file_writing_ops_are_flagged(tmp_path, op):
    report = _write(tmp_path, saved_model(*CHECKPOINT, node("w", op, "x")))
    assert rule_ids(report) == ["AUD-TF-003"]


def test_checkpoint_op_with_constant_outside_path_is_flagged(tmp_path):
    report = _write(tmp_path, saved_model(const_string("prefix", "/tmp/stolen/ckpt"),
                                          const_string("names", "w"),
                                          node("save", "SaveV2", "prefix", "names")))
    (finding,) = report.findings
    assert finding.rule == "AUD-TF-004" and "/tmp/stolen/ckpt" in finding.detail


@pytest.mark.parametrize(("stream", "flagged"), [("file:///tmp/out.log", True),
                                                 ("stderr", False)])
def test_print_to_file_is_flagged(tmp_path, stream, flagged):
    report = _write(tmp_path, saved_model(
        node("print", "PrintV2", "x", attrs={"output_stream": s(2, stream)})))
    assert rule_ids(report) == (["AUD-TF-003"] if flagged else [])


def test_asset_path_escaping_is_flagged(tmp_path):
    report = _write(tmp_path, saved_model(*CHECKPOINT, assets=("vocab.txt", "../../etc/shadow")))
    (finding,) = report.findings
    assert finding.rule == "AUD-TF-006" and "shadow" in finding.detail


def test_truncated_savedmodel_is_malformed(tmp_path):
    data = saved_model(*CHECKPOINT)
    report = _write(tmp_path, data[:-7])
    assert report.format == "tf-savedmodel" and report.coverage.value == "error"
    assert rule_ids(report) == ["AUD-TF-005"]


def test_hostile_length_fails_fast(tmp_path):
    report = _write(tmp_path, i(1, 1) + b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x0a")
    assert rule_ids(report) == ["AUD-TF-005"]


def test_variables_folder_belongs_to_the_savedmodel(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(saved_model(*CHECKPOINT))
    (tmp_path / "variables").mkdir()
    (tmp_path / "variables" / "variables.index").write_bytes(b"\x00\x01\x02\x03" * 8)
    (tmp_path / "variables" / "variables.data-00000-of-00001").write_bytes(bytes(range(256)))
    files = scan_files(tmp_path)
    for name in ("variables/variables.index", "variables/variables.data-00000-of-00001"):
        assert files[name].format == "tf-variables" and files[name].findings == ()


def test_fingerprint_is_recognised(tmp_path):
    data = i(1, 2**60 + 5) + i(2, 77) + i(3, 9) + m(6, i(1, 1))
    report = _write(tmp_path, data, "fingerprint.pb")
    assert report.format == "tf-fingerprint" and report.findings == ()


def test_keras_metadata_lambda_is_critical(tmp_path):
    code = base64.b64encode(marshal.dumps(compile("lambda x: x", "l", "eval").co_consts[0]))
    layer = {"class_name": "Lambda", "config": {"name": "l", "function": [code.decode(), None,
                                                                           None],
                                                 "function_type": "lambda"}}
    data = m(1, i(2, 1), s(3, "root.layer-1"), s(4, "_tf_keras_layer"),
             s(5, json.dumps(layer)))
    report = _write(tmp_path, data, "keras_metadata.pb")
    assert report.format == "tf-keras-metadata"
    assert rule_ids(report) == ["AUD-KERAS-001"]


def test_frozen_graphdef_is_checked_too(tmp_path):
    graph = b"".join(CHECKPOINT) + const_string("p", "/etc/hosts") + node("r", "ReadFile", "p")
    report = _write(tmp_path, graph, "frozen_graph.pb")
    assert report.format == "tf-graphdef"
    (finding,) = report.findings
    assert finding.rule == "AUD-TF-002" and "/etc/hosts" in finding.detail


def test_clean_frozen_graphdef(tmp_path):
    report = _write(tmp_path, b"".join(CHECKPOINT), "frozen_graph.pb")
    assert report.format == "tf-graphdef" and report.findings == ()
    assert report.facts["operators"] == len(CHECKPOINT)


PBTXT = """saved_model_schema_version: 1
meta_graphs {
  graph_def {
    node {
      name: "x"
      op: "Placeholder"
    }
    node {
      name: "leak"
      op: "%s"
      input: "x"
    }
  }
}
"""


def test_text_format_graph_is_reviewed(tmp_path):
    report = _write(tmp_path, (PBTXT % "ReadFile").encode(), "saved_model.pbtxt")
    assert report.format == "tf-pbtxt"
    (finding,) = report.findings
    assert finding.rule == "AUD-TF-002"
    assert finding.detail == "graph: ReadFile node 'leak' (value from an input of the graph)"


def test_clean_text_format_graph(tmp_path):
    report = _write(tmp_path, (PBTXT % "Identity").encode(), "saved_model.pbtxt")
    assert report.findings == () and report.facts["op_types"] == ["Identity", "Placeholder"]


def test_text_format_tricks_do_not_hide_an_operator(tmp_path):
    text = b'node { name: "a" op: "Read" \'File\' }\nnode {\n  op # c\n  :\n  "Py\\x46unc"\n}\n'
    report = _write(tmp_path, text, "graph.pbtxt")
    assert [(f.rule, f.detail) for f in report.findings] == [
        ("AUD-TF-002", "graph: ReadFile node 'a'"), ("AUD-TF-001", "graph: PyFunc node ''")]


def test_text_the_parser_refuses_still_has_its_operators_listed(tmp_path):
    text = b'node { name: "a" op: "ReadFile" \n node { op: "PyFunc" } }}} garbage'
    report = _write(tmp_path, text, "graph.pbtxt")
    assert [(f.rule, f.detail) for f in report.findings] == [
        ("AUD-TF-002", "line 1: ReadFile"), ("AUD-TF-001", "line 2: PyFunc")]


TEXT_FLOW = """# saved_model.pbtxt as TensorFlow writes it, with a path built from constants
saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" any_info { [type.googleapis.com/x.Y] { v: 1 } } }
  graph_def {
    node { name: "dir" op: "Const"
      attr { key: "value" value { tensor { dtype: DT_STRING tensor_shape { }
                                           string_val: "/etc" } } } }
    node { name: "j" op: "StringJoin" input: "dir" input: "f:0"
      attr { key: "separator" value { s: "/" } } }
    node { name: "r" op: "PartitionedCall" input: "j"
      attr { key: "f" value { func { name: "reader" } } } }
    node < name: 'f' op: "Const" attr { key: "value" value { tensor {
      string_val: "pass" "wd" } } } >
    library { function { signature { name: "reader" input_arg { name: "p" type: DT_STRING } }
      node_def { name: "rf" op: "ReadFile" input: ["p", "^dir"] } } }
    versions { producer: 1700 min_consumer: -1 }
  }
}
"""


def test_text_format_path_is_followed_like_binary(tmp_path):
    report = _write(tmp_path, TEXT_FLOW.encode(), "saved_model.pbtxt")
    assert [(f.rule, f.detail) for f in report.findings] == [
        ("AUD-TF-002", "function reader: ReadFile node 'rf' reads '/etc/passwd' (Const 'dir' → "
         "Const 'f' → StringJoin 'j' → function reader argument 'p')")]
    assert report.facts["operators"] == 5 and report.facts["tags"] == ["serve"]


def test_text_format_asset_escaping_is_flagged(tmp_path):
    text = b'meta_graphs { asset_file_def { filename: "../../etc/shadow" } graph_def { } }'
    report = _write(tmp_path, text, "saved_model.pbtxt")
    assert [f.rule for f in report.findings] == ["AUD-TF-006"]
