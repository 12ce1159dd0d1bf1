"""ONNX: models written by onnx.helper are clean; each way out of the graph is flagged."""

from __future__ import annotations

import json
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.scan_helpers import rule_ids, scan_files


def _model(nodes, initializers=(), functions=(), opsets=None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    graph = helper.make_graph(nodes, "g", [x], [y], list(initializers))
    opsets = opsets or [helper.make_opsetid("", 17)]
    return helper.make_model(graph, producer_name="unit-test", opset_imports=opsets,
                             functions=list(functions))


def _add_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(2, dtype=np.float32), "W")
    return _model([helper.make_node("Add", ["X", "W"], ["Y"], name="add")], [w])


def test_helper_model_is_clean_with_facts(tmp_path, run_cli):
    onnx.save_model(_add_model(), tmp_path / "model.onnx")
    report = scan_files(tmp_path)["model.onnx"]
    assert report.format == "onnx" and report.findings == ()
    assert report.facts["producer"] == "unit-test"
    assert report.facts["opsets"] == {"ai.onnx": 17}
    assert report.facts["domains"] == ["ai.onnx"] and report.facts["operators"] == 1
    assert run_cli("scan", tmp_path).code == 0


def test_custom_domain_operator_is_high(tmp_path):
    node = helper.make_node("Decrypt", ["X"], ["Y"], domain="evil.ops", name="d")
    model = _model([node], opsets=[helper.make_opsetid("", 17), helper.make_opsetid("evil.ops", 1)])
    onnx.save_model(model, tmp_path / "m.onnx")
    report = scan_files(tmp_path)["m.onnx"]
    assert rule_ids(report) == ["AUD-ONNX-002"]
    assert "evil.ops::Decrypt" in report.findings[0].detail
    assert report.facts["domains"] == ["evil.ops"]


def test_microsoft_contrib_operator_is_low(tmp_path):
    node = helper.make_node("FusedGemm", ["X", "X"], ["Y"], domain="com.microsoft")
    onnx.save_model(_model([node]), tmp_path / "m.onnx")
    (finding,) = scan_files(tmp_path)["m.onnx"].findings
    assert finding.rule == "AUD-ONNX-003" and finding.severity.label == "low"


def test_custom_op_inside_if_subgraph_is_found(tmp_path):
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    then_graph = helper.make_graph(
        [helper.make_node("Run", ["X"], ["Y"], domain="native.lib", name="hidden")], "then", [],
        [out])
    else_graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "else", [], [out])
    cond = helper.make_node("If", ["C"], ["Y"], then_branch=then_graph, else_branch=else_graph)
    onnx.save_model(_model([cond]), tmp_path / "m.onnx")
    report = scan_files(tmp_path)["m.onnx"]
    assert rule_ids(report) == ["AUD-ONNX-002"]
    assert "native.lib::Run" in report.findings[0].detail
    assert "If.then_branch" in report.findings[0].detail
    assert report.facts["graphs"] == 3


def test_model_local_function_is_not_a_custom_op(tmp_path):
    body = [helper.make_node("Relu", ["a"], ["b"])]
    fn = helper.make_function("local.fn", "MyRelu", ["a"], ["b"], body,
                              [helper.make_opsetid("", 17)])
    node = helper.make_node("MyRelu", ["X"], ["Y"], domain="local.fn")
    model = _model([node], functions=[fn],
                   opsets=[helper.make_opsetid("", 17), helper.make_opsetid("local.fn", 1)])
    onnx.save_model(model, tmp_path / "m.onnx")
    report = scan_files(tmp_path)["m.onnx"]
    assert report.findings == ()
    assert report.facts["functions"] == 1 and report.facts["graphs"] == 2


def test_custom_op_inside_a_function_body_is_found(tmp_path):
    body = [helper.make_node("Boom", ["a"], ["b"], domain="evil.ops")]
    fn = helper.make_function("local.fn", "F", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    node = helper.make_node("F", ["X"], ["Y"], domain="local.fn")
    onnx.save_model(_model([node], functions=[fn]), tmp_path / "m.onnx")
    assert rule_ids(scan_files(tmp_path)["m.onnx"]) == ["AUD-ONNX-002"]


def _save_external(folder: Path, name: str = "model.onnx", location: str = "weights.bin") -> None:
    model = _add_model()
    onnx.save_model(model, folder / name, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)


def test_external_data_file_belongs_to_the_model(tmp_path, run_cli):
    _save_external(tmp_path)
    files = scan_files(tmp_path)
    model, data = files["model.onnx"], files["weights.bin"]
    assert model.findings == ()
    assert model.facts["external_data"][0]["location"] == "weights.bin"
    assert data.format == "onnx-external-data" and data.findings == ()
    assert data.coverage.value == "scanned" and data.facts["onnx_model"] == ["model.onnx"]
    assert run_cli("scan", tmp_path).code == 0


def test_unreferenced_binary_stays_unknown(tmp_path):
    _save_external(tmp_path)
    (tmp_path / "other.bin").write_bytes(b"\x01\x02\x03" * 10)
    assert rule_ids(scan_files(tmp_path)["other.bin"]) == ["AUD-SCAN-003"]


def _retarget(path: Path, location: str, extra: dict[str, str] | None = None) -> None:
    model = onnx.load_model(path, load_external_data=False)
    for t in model.graph.initializer:
        entries = {"location": location, **(extra or {})}
        del t.external_data[:]
        for k, v in entries.items():
            t.external_data.add(key=k, value=v)
    onnx.save_model(model, path)


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\x",
                                      "sub/../../up.bin"])
def test_external_location_escaping_the_folder_is_high(tmp_path, location):
    _save_external(tmp_path)
    _retarget(tmp_path / "model.onnx", location)
    report = scan_files(tmp_path)["model.onnx"]
    assert "AUD-ONNX-004" in rule_ids(report)
    assert repr(location) in report.findings[0].detail


def test_missing_external_file_is_flagged(tmp_path):
    _save_external(tmp_path)
    _retarget(tmp_path / "model.onnx", "gone.bin")
    assert rule_ids(scan_files(tmp_path)["model.onnx"]) == ["AUD-ONNX-007"]


def test_external_reference_past_end_of_file_is_flagged(tmp_path):
    _save_external(tmp_path)
    _retarget(tmp_path / "model.onnx", "weights.bin", {"offset": "4", "length": "4096"})
    files = scan_files(tmp_path)
    assert rule_ids(files["model.onnx"]) == ["AUD-ONNX-008"]
    assert "4..4100" in files["model.onnx"].findings[0].detail


def test_external_entry_with_bad_offset_is_flagged(tmp_path):
    _save_external(tmp_path)
    _retarget(tmp_path / "model.onnx", "weights.bin", {"offset": "-1", "evil": "x"})
    detail = scan_files(tmp_path)["model.onnx"].findings[0].detail
    assert "'-1' is not a number" in detail and "unknown key 'evil'" in detail


def test_truncated_model_is_malformed(tmp_path):
    data = _add_model().SerializeToString()
    (tmp_path / "m.onnx").write_bytes(data[: len(data) - 5])
    report = scan_files(tmp_path)["m.onnx"]
    assert report.format == "onnx" and report.coverage.value == "error"
    assert rule_ids(report) == ["AUD-ONNX-001"]


def test_wrong_wire_type_is_malformed(tmp_path):
    data = bytearray(_add_model().SerializeToString())
    # ir_version, producer_name ... then a graph whose first node field is a varint
    data += b"\x3a\x02\x08\x01"
    (tmp_path / "m.onnx").write_bytes(bytes(data))
    report = scan_files(tmp_path)["m.onnx"]
    assert rule_ids(report) == ["AUD-ONNX-001"]
    assert "wire type" in report.findings[0].detail


def test_other_protobufs_are_not_claimed(tmp_path):
    # field 1 varint then a binary field 2: a SavedModel-like head, no graph/opset field
    (tmp_path / "x.bin").write_bytes(b"\x08\x01\x12\x04\x0a\x02\x08\x01")
    assert scan_files(tmp_path)["x.bin"].format != "onnx"


def test_huge_length_fails_fast(tmp_path):
    head = _add_model().SerializeToString()[:12]
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07\x3a\xff\xff\xff\xff\x0f" + head)
    report = scan_files(tmp_path)["m.onnx"]
    assert report.coverage.value == "error" and rule_ids(report) == ["AUD-ONNX-001"]


def test_embedded_weights_are_skipped_not_held(tmp_path):
    big = numpy_helper.from_array(np.zeros(8_000_000, dtype=np.float32), "W")  # 32 MB
    model = _model([helper.make_node("Add", ["X", "W"], ["Y"])], [big])
    onnx.save_model(model, tmp_path / "m.onnx")
    tracemalloc.start()
    report = scan_files(tmp_path)["m.onnx"]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.findings == ()
    assert peak < 4_000_000


def test_json_report_carries_onnx_facts(tmp_path, run_cli):
    onnx.save_model(_add_model(), tmp_path / "model.onnx")
    run = run_cli("scan", tmp_path, "--format", "json")
    doc = json.loads(run.out)
    (file,) = doc["models"][0]["files"]
    assert file["facts"]["ir_version"] >= 7


def test_torch_exported_model_is_clean(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 4),), tmp_path / "net.onnx", dynamo=False)
    report = scan_files(tmp_path)["net.onnx"]
    assert report.format == "onnx" and report.findings == ()
    assert report.facts["producer"].startswith("pytorch")


# --- parts of a model scanned alone: judged with their siblings in view ---------------------------

@pytest.fixture(scope="module")
def external_folder(tmp_path_factory):
    from tests.benign.parts import onnx_external

    folder = tmp_path_factory.mktemp("onnx-parts")
    onnx_external(folder)
    return folder


def test_external_data_file_scanned_alone_belongs_to_the_model_beside_it(external_folder):
    files = scan_files(external_folder / "model.onnx_data")
    assert list(files) == ["model.onnx_data"]  # the .onnx is context, not part of the result
    data = files["model.onnx_data"]
    assert data.format == "onnx-external-data" and data.findings == ()
    assert data.facts["onnx_model"] == ["model.onnx"]


def test_model_scanned_alone_finds_its_external_data_beside_it(external_folder, run_cli):
    files = scan_files(external_folder / "model.onnx")
    assert list(files) == ["model.onnx"] and files["model.onnx"].findings == ()
    assert run_cli("scan", external_folder / "model.onnx").code == 0
    assert run_cli("scan", external_folder / "model.onnx_data").code == 0


def test_model_scanned_alone_still_checks_bounds_and_missing_files(tmp_path):
    _save_external(tmp_path)
    _retarget(tmp_path / "model.onnx", "weights.bin", {"offset": "4", "length": "4096"})
    assert rule_ids(scan_files(tmp_path / "model.onnx")["model.onnx"]) == ["AUD-ONNX-008"]
    (tmp_path / "weights.bin").unlink()
    assert rule_ids(scan_files(tmp_path / "model.onnx")["model.onnx"]) == ["AUD-ONNX-007"]


def test_binary_scanned_alone_that_no_sibling_claims_stays_unknown(tmp_path):
    _save_external(tmp_path)
    (tmp_path / "other.bin").write_bytes(b"\x01\x02\x03" * 10)
    assert rule_ids(scan_files(tmp_path / "other.bin")["other.bin"]) == ["AUD-SCAN-003"]
    (tmp_path / "model.onnx").unlink()
    assert rule_ids(scan_files(tmp_path / "weights.bin")["weights.bin"]) == ["AUD-SCAN-003"]


def test_pickle_named_as_external_data_keeps_its_own_verdict_when_scanned_alone(tmp_path, canary):
    from tests.zip_builders import canary_pickle

    _save_external(tmp_path)
    (tmp_path / "weights.bin").write_bytes(canary_pickle(canary))
    _retarget(tmp_path / "model.onnx", "weights.bin")
    data = scan_files(tmp_path / "weights.bin")["weights.bin"]
    assert data.format != "onnx-external-data"
    assert any(f.severity.label == "critical" for f in data.findings)


def test_safetensors_shard_scanned_alone_is_clean(tmp_path, run_cli):
    import torch
    from huggingface_hub import save_torch_state_dict  # what save_pretrained shards with

    torch.manual_seed(0)
    state = {f"layer{i}.weight": torch.randn(32, 32) for i in range(4)}
    save_torch_state_dict(state, tmp_path, max_shard_size="8KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    shards = sorted(tmp_path.glob("model-0000*-of-*.safetensors"))
    assert len(shards) >= 2
    for shard in shards:
        files = scan_files(shard)
        assert list(files) == [shard.name] and files[shard.name].format == "safetensors"
        assert files[shard.name].findings == ()
        assert run_cli("scan", shard).code == 0


def test_sibling_linked_from_outside_the_folder_is_no_context(tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "model"
    outside.mkdir()
    folder.mkdir()
    _save_external(outside)
    (folder / "model.onnx").symlink_to(outside / "model.onnx")
    (folder / "weights.bin").write_bytes((outside / "weights.bin").read_bytes())
    assert rule_ids(scan_files(folder / "weights.bin")["weights.bin"]) == ["AUD-SCAN-003"]
