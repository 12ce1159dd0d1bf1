"""Red team: Keras configs that make `load_model` run code, fetch or read files.

Keras resolves `module` + `class_name` (and `registered_name`) from the
config to Python objects; the public safe_mode bypasses (CVE-2025-1550,
CVE-2025-8747, CVE-2025-9906, CVE-2025-12058) all go through that. Each case
is a `.keras` zip built by hand (Keras itself is not needed) and must fail the
gate, under the `.keras` name and under a plain `.zip` name.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

LAYERS = {
    "lambda-bytecode": {"module": "keras.layers", "class_name": "Lambda", "config": {
        "function": {"class_name": "__lambda__", "config": {"code": "4wAAAA==", "defaults": None,
                                                            "closure": None}}}},
    "lambda-os-system": {"module": "keras.layers", "class_name": "Lambda", "config": {
        "function": {"module": "os", "class_name": "function", "config": "system"}}},
    "enable-unsafe-deserialization": {"module": "keras.config", "class_name": "function",
                                      "config": "enable_unsafe_deserialization"},
    "get-file-download": {"module": "keras.utils", "class_name": "function",
                          "config": "get_file"},
    "private-module-gadget": {"module": "keras.src.utils.file_utils", "class_name": "function",
                              "config": "get_file"},
    "nested-load-model": {"module": "keras.src.saving.saving_lib", "class_name": "function",
                          "config": "load_model"},
    "builtins-exec-activation": {"module": "keras.layers", "class_name": "Dense", "config": {
        "units": 1, "activation": {"module": "builtins", "class_name": "function",
                                   "config": "exec"}}},
    "foreign-class": {"module": "subprocess", "class_name": "Popen", "config": {"args": ["id"]}},
    "tensorflow-file-write": {"module": "tensorflow.io", "class_name": "function",
                              "config": "write_file"},
    "vocabulary-path": {"module": "keras.layers", "class_name": "StringLookup",
                        "config": {"vocabulary": "/etc/passwd"}},
}


def keras_zip(layer: dict) -> bytes:
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "s", "layers": [layer]}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        z.writestr("config.json", json.dumps(config))
    return buf.getvalue()


def scan(run_cli, tmp_path, name: str, data: bytes) -> tuple[int, set[str]]:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / name).write_bytes(data)
    result = run_cli("scan", folder, "--format", "json")
    doc = json.loads(result.out)
    return result.code, {f["severity"] for fr in doc["models"][0]["files"]
                         for f in fr["findings"]}


@pytest.mark.parametrize("name", ["model.keras", "model.zip"])
@pytest.mark.parametrize("case", sorted(LAYERS))
def test_keras_config_reaching_code_or_files_is_blocked(tmp_path, run_cli, case, name):
    code, severities = scan(run_cli, tmp_path, name, keras_zip(LAYERS[case]))
    assert code == 1
    assert severities & {"critical", "high"}


def test_plain_dense_model_passes(tmp_path, run_cli):
    dense = {"module": "keras.layers", "class_name": "Dense",
             "config": {"units": 4, "activation": "relu"}}
    code, severities = scan(run_cli, tmp_path, "model.keras", keras_zip(dense))
    assert code == 0, severities
