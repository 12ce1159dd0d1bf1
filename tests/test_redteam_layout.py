"""Red team: the model folder itself as the attack — links, indexes, names and wrappers.

A loader reads more than the files a scanner opens: it follows symlinks,
joins shard names from an index to the folder, trusts extensions less than
people do, and users unpack archives a scanner may skip. Each case must fail
the default gate (exit 1, at least one high finding).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import pickle_corpus as pc
from tests.builders import TINY_CONFIG, safetensors_bytes

WEIGHTS = safetensors_bytes({"w": ("F32", [2, 2])}, {"format": "pt"})


def evil(canary: Path) -> bytes:
    return pc.proto(2) + pc.system_call(str(canary), via=pc.glob) + pc.STOP


def scan(run_cli, target: Path) -> tuple[int, list[tuple[str, str]]]:
    result = run_cli("scan", target, "--format", "json")
    doc = json.loads(result.out)
    found = [(f["rule"], f["severity"]) for m in doc["models"] for f in m["findings"]]
    found += [(f["rule"], f["severity"]) for m in doc["models"] for fr in m["files"]
              for f in fr["findings"]]
    return result.code, found


def assert_blocked(run_cli, target: Path, rule: str) -> None:
    code, found = scan(run_cli, target)
    assert code == 1, found
    assert (rule, "high") in found or (rule, "critical") in found, found
    assert not (target.parent / "CANARY").exists()


@pytest.mark.parametrize("shard", ["../../outside/pytorch_model.bin", "/tmp/planted.bin",
                                   "sub/../../escape.bin"])
@pytest.mark.parametrize("index", ["pytorch_model.bin.index.json",
                                   "model.safetensors.index.json"])
def test_shard_index_pointing_outside_the_folder(tmp_path, run_cli, index, shard):
    """transformers joins weight_map names to the folder (os.path.join keeps an absolute
    name): the loader would read a file nobody scanned."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    (folder / index).write_text(json.dumps({"metadata": {"total_size": 16},
                                            "weight_map": {"w": shard}}))
    assert_blocked(run_cli, folder, "AUD-JSON-003")


def test_shard_index_inside_the_folder_passes(tmp_path, run_cli):
    folder = tmp_path / "model"
    (folder / "shards").mkdir(parents=True)
    shard = "shards/model-00001-of-00001.safetensors"
    (folder / shard).write_bytes(WEIGHTS)
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 16}, "weight_map": {"w": shard}}))
    code, found = scan(run_cli, folder)
    assert code == 0, found


@pytest.mark.parametrize("target", ["/etc/hostname", "../outside.bin"])
def test_symlinked_weights_leaving_the_folder(tmp_path, run_cli, target):
    (tmp_path / "outside.bin").write_bytes(evil(tmp_path / "CANARY"))
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(target, folder / "pytorch_model.bin")
    assert_blocked(run_cli, folder, "AUD-SRC-001")


def test_hf_cache_snapshot_link_escaping_blobs(tmp_path, run_cli):
    """A snapshot entry must point into its own blobs/; `../../blobs/../../x` does not."""
    (tmp_path / "planted.bin").write_bytes(evil(tmp_path / "CANARY"))
    repo = tmp_path / "hub" / "models--org--name"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    os.symlink("../../blobs/../../../planted.bin", snapshot / "pytorch_model.bin")
    assert_blocked(run_cli, snapshot, "AUD-SRC-001")


@pytest.mark.parametrize("name", ["model.safetensors", "model.gguf", "model.onnx", "vocab.json",
                                  "weights.npy"])
def test_pickle_behind_a_safe_format_extension(tmp_path, run_cli, name):
    """Content decides: a pickle named like a safe format is still graded as a pickle."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / name).write_bytes(evil(tmp_path / "CANARY"))
    assert_blocked(run_cli, folder, "AUD-PKL-001")


@pytest.mark.parametrize("magic", [b"7z\xbc\xaf\x27\x1c\x00\x04", b"Rar!\x1a\x07\x00",
                                   b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18"])
def test_repack_in_an_archive_the_scanner_cannot_open(tmp_path, run_cli, magic):
    """nullifAI: a checkpoint repacked as 7z (or rar/zstd/lz4) is unaudited, so it fails."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(magic + bytes(24) + evil(tmp_path / "CANARY"))
    code, found = scan(run_cli, folder)
    assert code == 1, found
    assert ("AUD-SCAN-004", "high") in found


ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]


@pytest.mark.parametrize("change", [{"type": "joblib.numpy_pickle"}, {"path": "/tmp/planted"},
                                    {"path": "../outside"}, {"type": "modeling_custom.Layer"}])
def test_sentence_transformers_module_list_leaving_the_library(tmp_path, run_cli, change):
    """sentence-transformers calls import_from_string(type).load(join(folder, path)):
    `joblib.numpy_pickle` + any path unpickles a file the scan never saw."""
    folder = tmp_path / "model"
    folder.mkdir()
    modules = [ST_MODULES[0], {**ST_MODULES[1], **change}]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    assert_blocked(run_cli, folder, "AUD-JSON-004")


def test_sentence_transformers_standard_module_list_passes(tmp_path, run_cli):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "modules.json").write_text(json.dumps(ST_MODULES))
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    code, found = scan(run_cli, folder)
    assert code == 0, found
