"""Start-up stays cheap: a command imports only what it uses.

Each case runs in a fresh interpreter and lists `sys.modules` at its end: the
CLI module and `auditor --version` load no heavy library, and a scan or gate
of a safetensors-only folder loads no format module but the ones its files
need (and the pickle machine, which reads every file for polyglots). Timings
are in bench/README.md (`bench/bench_startup.py`), never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.builders import safetensors_bytes

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("cel", "cryptography", "huggingface_hub", "httpx", "httpx2", "numpy", "onnx", "cyclonedx",
         "jinja2", "yaml", "rich", "gguf", "h5py", "typer", "prompt_toolkit",
         "license_expression")
# Format modules a safetensors-only model never needs (none of its files is of their format).
OTHER_FORMATS = (
    "auditor.formats.weights.gguf", "auditor.formats.weights.onnx", "auditor.formats.weights.hdf5",
    "auditor.formats.weights.hdf5_reader", "auditor.formats.weights.keras",
    "auditor.formats.weights.tflite", "auditor.formats.weights.msgpack",
    "auditor.formats.weights.tf_savedmodel", "auditor.formats.weights.tf_pbtxt",
    "auditor.formats.archives.archive", "auditor.formats.archives.zip",
    "auditor.formats.archives.tar", "auditor.formats.code.python", "auditor.formats.code.jinja",
    "auditor.formats.code.json_config", "auditor.formats.code.yaml_config",
    "auditor.formats.code.modelcard", "auditor.formats.code.sentencepiece",
    "auditor.formats.code.tiktoken", "auditor.formats.pickle.torch_zip",
    "auditor.formats.pickle.numpy", "auditor.formats.pickle.torch_legacy",
)
_RUN = """
import json, sys
listing, argv = sys.argv[1], sys.argv[2:]
if argv:
    from auditor.cli import main
    sys.argv = ["auditor", *argv]
    try:
        main()
    except SystemExit:
        pass
else:
    import auditor.cli
with open(listing, "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def _modules(tmp_path: Path, *argv: str) -> set[str]:
    listing = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", _RUN, str(listing), *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert listing.exists(), done.stderr
    return set(json.loads(listing.read_text()))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def _safetensors_model(tmp_path: Path) -> Path:
    folder = tmp_path / "plain-model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2, 2]), "b": ("F32", [2])}, {"format": "pt"}))
    return folder


def test_importing_the_cli_loads_no_heavy_library_and_no_scanner(tmp_path):
    modules = _modules(tmp_path)
    assert not _heavy(modules)
    assert not {m for m in modules if m.startswith(("auditor.formats", "auditor.pipeline"))}


def test_version_loads_no_heavy_library(tmp_path):
    modules = _modules(tmp_path, "--version")
    assert not _heavy(modules)
    assert "auditor.pipeline" not in modules


def test_a_safetensors_only_scan_loads_only_the_formats_it_meets(tmp_path):
    modules = _modules(tmp_path, "scan", str(_safetensors_model(tmp_path)))
    assert "auditor.formats.weights.safetensors" in modules  # the scan did run
    assert not [m for m in OTHER_FORMATS if m in modules]
    assert not _heavy(modules - {m for m in modules if m.split(".")[0] == "yaml"})
    # a local scan never reaches a registry or the Hub: no OCI source, client, tar, TLS, Hub
    assert not {"auditor.sources.oci", "auditor.oci.client", "tarfile", "ssl",
                "auditor.sources.hub"} & modules


def test_a_safetensors_only_gate_builds_its_sbom_without_the_spdx_expression_parser(tmp_path):
    modules = _modules(tmp_path, "gate", str(_safetensors_model(tmp_path)),
                       "--policy", str(ROOT / "policies/baseline.yaml"))
    assert "cyclonedx.model.bom" in modules  # the gate did build its SBOM
    assert not [m for m in OTHER_FORMATS if m in modules]
    assert not {"cyclonedx.spdx", "license_expression", "numpy", "onnx", "jinja2"} & modules
