"""hf:// with --remote-only: headers read in place with range requests, bytes counted."""

from __future__ import annotations

import hashlib
import io
import json
import struct

import pytest

from tests.builders import safetensors_bytes
from tests.hubfixtures import files_by_path, findings, serve  # noqa: F401
from tests.hubserver import HubFile, HubRepo

SHA = "7" * 40
MiB = 1024 * 1024


def big_safetensors(path: str, data_bytes: int, first: int | None = None) -> HubFile:
    """A valid safetensors file whose data area is generated on the fly, never stored;
    `first` sets the header length's low byte (padding the header up to it)."""
    floats = data_bytes // 4
    header = json.dumps({"w": {"dtype": "F32", "shape": [floats],
                               "data_offsets": [0, floats * 4]}}).encode()
    pad = -len(header) % 8 if first is None else (first - len(header)) % 256
    header += b" " * pad
    head = struct.pack("<Q", len(header)) + header
    size = len(head) + floats * 4

    def chunk(start: int, end: int) -> bytes:
        out = head[start:end]
        return out + bytes(max(0, end - max(start, len(head))))

    digest = hashlib.sha256(chunk(0, size)).hexdigest()
    return HubFile(path, size=size, chunk=chunk, sha256=digest, lfs=True)


def repo_with(files: list[HubFile], repo_id: str = "org/remote") -> HubRepo:
    return HubRepo(repo_id, {SHA: files}, refs={"main": SHA})


def scan_remote(run_cli, tmp_path, target: str = f"hf://org/remote@{SHA}", *extra):
    result = run_cli("scan", target, "--remote-only", "--format", "json",
                     "--cache-dir", tmp_path / "cache", *extra)
    return result, (json.loads(result.out) if result.out else None)


def test_remote_only_reads_headers_not_weights(run_cli, serve, tmp_path):  # noqa: F811
    big = big_safetensors("model.safetensors", 16 * MiB)
    hub = serve([repo_with([
        big,
        HubFile("config.json", b'{"model_type": "llama"}\n'),
        HubFile("README.md", b"---\nlicense: mit\n---\n# remote\n"),
        HubFile("weights.tar", bytes(MiB), lfs=True),
    ])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 0, result.err
    files = files_by_path(report)
    weights = files["model.safetensors"]
    assert (weights["format"], weights["coverage"]) == ("safetensors", "scanned")
    assert weights["sha256"] == ""  # not hashed here: the Hub's digest is only a claim
    upstream = weights["facts"]["upstream"]
    assert (upstream["sha256"], upstream["grade"]) == (big.sha256, "hub-verified")
    assert upstream["digest_source"] == "upstream-reported"
    assert upstream["match"] is None
    assert files["config.json"]["facts"]["upstream"]["match"] is True  # small: fetched, verified
    skipped = files["weights.tar"]
    assert (skipped["coverage"], skipped["format"]) == ("unsupported", "not-fetched")
    assert [f["file"] for f in findings(report, "AUD-PROV-008")] == ["weights.tar"]
    transfer = report["models"][0]["facts"]["hub"]["transfer"]
    assert transfer["bytes"] == hub.content_bytes == report["summary"]["bytes_read"]
    assert transfer["repo_bytes"] == big.size + MiB + 24 + 30
    assert hub.content_bytes < 200 * 1024  # 16 MiB of weights: a 64 KiB read-ahead, not the file
    assert not (tmp_path / "cache").exists()  # nothing written to the cache


def test_remote_only_verifies_small_files_and_catches_tampering(
    run_cli, serve, tmp_path  # noqa: F811
):
    config = HubFile("config.json", b'{"model_type": "llama"}\n')
    config.serve = b'{"model_type": "LLAMA"}\n'
    serve([repo_with([config])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 1
    assert [f["file"] for f in findings(report, "AUD-PROV-002")] == ["config.json"]


def test_remote_only_runs_the_same_format_checks(run_cli, serve, tmp_path):  # noqa: F811
    bad = safetensors_bytes({"w": ("F32", [4])}, trailing=b"\x00" * 70_000)
    serve([repo_with([HubFile("model.safetensors", bad)])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 1
    assert findings(report, "AUD-ST-006")  # trailing bytes after the last tensor


def test_remote_only_sharded_index(run_cli, serve, tmp_path):  # noqa: F811
    shards = [big_safetensors(f"model-0000{i}-of-00002.safetensors", 4 * MiB) for i in (1, 2)]
    index = {"metadata": {"total_size": 8 * MiB},
             "weight_map": {"w": shards[0].path, "v": shards[1].path}}
    hub = serve([repo_with([*shards, HubFile("model.safetensors.index.json",
                                             json.dumps(index).encode())])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 0, result.err
    files = files_by_path(report)
    assert [files[s.path]["format"] for s in shards] == ["safetensors", "safetensors"]
    assert files["model.safetensors.index.json"]["facts"]["upstream"]["match"] is True
    assert hub.content_bytes < 2 * 70 * 1024


def test_remote_only_gguf_header(run_cli, serve, tmp_path):  # noqa: F811
    import gguf
    import numpy as np

    out = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name("remote-test")
    writer.add_tensor("w", np.zeros((1024, 1024), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = out.read_bytes()
    hub = serve([repo_with([HubFile("model.gguf", data)])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 0, result.err
    assert files_by_path(report)["model.gguf"]["format"] == "gguf"
    assert hub.content_bytes < len(data) // 8


def test_a_parser_wanting_more_than_the_budget_is_a_limit_finding(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    from auditor.sources import hub as hub_source

    monkeypatch.setattr(hub_source, "RANGE_BUDGET", 1024)
    serve([repo_with([big_safetensors("model.safetensors", 4 * MiB)])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 1
    weights = files_by_path(report)["model.safetensors"]
    assert weights["coverage"] == "partial"
    assert "remote-only" in findings(report, "AUD-SCAN-002")[0]["detail"]


def test_remote_only_pytorch_zip_reads_the_pickle_not_the_storages(
    run_cli, serve, tmp_path  # noqa: F811
):
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2 * MiB)}, buf)  # 8 MiB of storage
    data = buf.getvalue()
    hub = serve([repo_with([HubFile("pytorch_model.bin", data)])])
    result, report = scan_remote(run_cli, tmp_path)
    assert report is not None, result.err
    assert files_by_path(report)["pytorch_model.bin"]["format"] == "pytorch-zip"
    assert hub.content_bytes < len(data) // 10


def test_text_summary_reports_bytes_transferred(run_cli, serve, tmp_path):  # noqa: F811
    big = big_safetensors("model.safetensors", 16 * MiB)
    hub = serve([repo_with([big])])
    result = run_cli("scan", f"hf://org/remote@{SHA}", "--remote-only")
    assert result.code == 0, result.err
    assert f"remote-only: {hub.content_bytes} of {big.size} bytes transferred" in result.out


class _Canary:
    """Would create the canary file if anything ever unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_remote_only_flags_a_malicious_pickle_without_running_it(
    run_cli, serve, tmp_path  # noqa: F811
):
    import pickle

    canary = tmp_path / "canary"
    data = pickle.dumps({"pad": bytes(200_000), "x": _Canary(str(canary))}, protocol=4)
    hub = serve([repo_with([HubFile("model.pkl", data)])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 1
    weights = files_by_path(report)["model.pkl"]
    assert weights["format"] == "pickle"
    assert any(f["severity"] == "critical" for f in weights["findings"])
    assert not canary.exists()
    assert hub.content_bytes < len(data) + 64 * 1024


def test_remote_only_audits_run_the_cross_file_checks_too(run_cli, serve, tmp_path):  # noqa: F811
    """An auto_map module missing from the repository is seen without downloading anything."""
    config = b'{"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}\n'
    serve([repo_with([HubFile("config.json", config)])])
    _, report = scan_remote(run_cli, tmp_path)
    missing = findings(report, "AUD-CODE-015")
    assert [f["file"] for f in missing] == ["config.json"]


def test_a_remote_module_that_is_present_is_not_reported_missing(run_cli, serve, tmp_path):  # noqa: F811
    config = b'{"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}\n'
    serve([repo_with([HubFile("config.json", config),
                      HubFile("modeling_x.py", b"class XModel:\n    pass\n")])])
    _, report = scan_remote(run_cli, tmp_path)
    assert findings(report, "AUD-CODE-015") == []
    assert findings(report, "AUD-CODE-012")  # the auto_map itself is still remote code


@pytest.mark.parametrize("first", b"FLSPgpci", ids=chr)
def test_remote_only_header_length_as_a_line_opcode(run_cli, serve, tmp_path, first):  # noqa: F811
    """A header length whose first byte is a line opcode the loader cannot finish: the
    pickle reading ends in the head, the weights are not downloaded."""
    big = big_safetensors("model.safetensors", 4 * MiB, first)
    hub = serve([repo_with([big])])
    result, report = scan_remote(run_cli, tmp_path)
    assert result.code == 0, result.err
    weights = files_by_path(report)["model.safetensors"]
    assert (weights["format"], weights["coverage"], weights["findings"]) == (
        "safetensors", "scanned", [])
    assert hub.content_bytes < 200 * 1024
