"""`auditor scan oci://…`: a model in a real registry, as a ModelKit, a modelcar and an ORAS
artifact, read by streaming its layers; tags resolved and recorded; tampering, TLS and
credentials failing in one line."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import random
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.builders import write_tiny_model
from tests.oci_registry import (
    OCI_LAYER_GZIP,
    PASSWORD,
    USER,
    push_modelcar,
    push_modelkit,
    push_oras,
    tar_bytes,
)
from tests.test_report_schemas import schema

EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."  # runs os.system when unpickled
TOKENIZER = json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1},
                                                     "merges": []}}).encode()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, bytes]:
    folder = write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    (folder / "tokenizer.json").write_bytes(TOKENIZER)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _scan(run_cli, ref: str, *extra: object) -> tuple[int, dict, str]:
    result = run_cli("scan", ref, "--format", "json", "--quiet", *extra)
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def _model(report: dict) -> dict:
    (model,) = report["models"]
    return model


def _paths(model: dict) -> list[str]:
    return sorted(f["path"] for f in model["files"])


def _rules(model: dict) -> set[str]:
    found = {f["rule"] for f in model.get("findings", [])}
    for file in model["files"]:
        found |= {f["rule"] for f in file.get("findings", [])}
    return found


def test_a_modelkit_is_scanned_file_by_file_at_the_digest_its_tag_names(
        oci_registry, run_cli, model_files):
    server = oci_registry("plain")
    with server.client() as registry:
        pushed = push_modelkit(registry, "org/kit", "v1", model_files)
    _, report, err = _scan(run_cli, server.ref("org/kit", "v1"), "--plain-http")
    model = _model(report)
    assert _paths(model) == sorted(model_files), err
    assert model["revision"] == pushed.digest
    assert model["name"] == f"{server.host}/org/kit" and model["source"] == "oci"
    weights = next(f for f in model["files"] if f["path"] == "model.safetensors")
    assert weights["digests"]["sha256"] == hashlib.sha256(model_files["model.safetensors"]) \
        .hexdigest()
    identity = model["facts"]["identity"]
    assert identity["requested"] == "v1" and identity["pinned"] is False
    jsonschema.Draft202012Validator(schema("scan")).validate(report)
    pinned = _model(_scan(run_cli, server.ref("org/kit", pushed.digest), "--plain-http")[1])
    assert pinned["facts"]["identity"]["pinned"] is True
    assert pinned["revision"] == pushed.digest


def test_a_modelcar_index_is_read_at_its_linux_amd64_image_under_models(
        oci_registry, run_cli, model_files):
    server = oci_registry("plain")
    with server.client() as registry:
        pushed = push_modelcar(registry, "org/car", "v1", model_files)
    _, report, err = _scan(run_cli, server.ref("org/car", "v1"), "--plain-http")
    model = _model(report)
    assert _paths(model) == sorted(model_files), err  # not bin/busybox, not etc/passwd
    assert model["revision"] == pushed.digest  # the index's digest: what a pod names
    assert "index entry linux/amd64: manifest sha256:" in model["facts"]["identity"]["resolved"]


def test_an_oras_artifact_is_one_file_per_layer_named_by_its_title(
        oci_registry, run_cli, model_files):
    server = oci_registry("plain")
    with server.client() as registry:
        push_oras(registry, "org/oras", "v1", model_files)
    _, report, err = _scan(run_cli, server.ref("org/oras", "v1"), "--plain-http")
    assert _paths(_model(report)) == sorted(model_files), err


def test_a_malicious_pickle_in_a_layer_is_found_as_in_a_folder(
        oci_registry, run_cli, model_files, tmp_path):
    files = {**model_files, "extra/pytorch_model.bin": EVIL}
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelkit(registry, "org/evil", "v1", files)
    code, report, _ = _scan(run_cli, server.ref("org/evil", "v1"), "--plain-http")
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    local_code, local, _ = _scan(run_cli, tmp_path)
    oci_file = next(f for f in _model(report)["files"] if f["path"] == "extra/pytorch_model.bin")
    local_file = next(f for f in _model(local)["files"] if f["path"] == "extra/pytorch_model.bin")
    assert {f["rule"] for f in oci_file["findings"]} == {f["rule"] for f in local_file["findings"]}
    assert any(f["severity"] == "critical" for f in oci_file["findings"])
    assert code == local_code == 1


def test_whiteouts_and_links_apply_as_a_runtime_applies_them(oci_registry, run_cli, model_files):
    top = tar_bytes({"models/.wh.README.md": b""}, compress=True, links={
        "models/escape": ("sym", "/etc/passwd"),
        "models/copy.safetensors": ("hard", "models/model.safetensors"),
        "models/alias.json": ("sym", "config.json")})
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, "org/layers", "v1", model_files, more_layers=(top,), index=False)
    _, report, err = _scan(run_cli, server.ref("org/layers", "v1"), "--plain-http")
    model = _model(report)
    paths = _paths(model)
    assert "README.md" not in paths and "escape" not in paths, err
    assert {"copy.safetensors", "alias.json"} <= set(paths)
    copy = next(f for f in model["files"] if f["path"] == "copy.safetensors")
    assert copy["digests"]["sha256"] == hashlib.sha256(model_files["model.safetensors"]) \
        .hexdigest()
    rules = _rules(model)
    assert {"AUD-OCI-001", "AUD-SRC-001"} <= rules


def test_a_layer_whose_path_leaves_it_is_a_finding(oci_registry, run_cli, model_files):
    server = oci_registry("plain")
    with server.client() as registry:
        push_oras(registry, "org/traversal", "v1",
                  {**model_files, "../../etc/cron.d/x": b"* * * * * root id\n"})
        push_modelkit(registry, "org/absolute", "v1",
                      {**model_files, "/etc/cron.d/y": b"* * * * * root id\n"})
    for repository in ("org/traversal", "org/absolute"):
        _, report, _ = _scan(run_cli, server.ref(repository, "v1"), "--plain-http")
        model = _model(report)
        assert "AUD-OCI-003" in _rules(model)
        assert not any("cron" in path for path in _paths(model))


def test_gate_judges_an_oci_model_and_its_sbom_records_the_digest(
        oci_registry, run_cli, model_files, tmp_path):
    server = oci_registry("plain")
    with server.client() as registry:
        pushed = push_oras(registry, "org/gated", "v1", model_files)
    sbom = tmp_path / "bom.json"
    result = run_cli("gate", server.ref("org/gated", "v1"), "--policy", "baseline",
                     "--plain-http", "--sbom", sbom, "--quiet")
    assert result.code in (0, 1), result.err
    model = json.loads(sbom.read_text())["metadata"]["component"]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert model["version"] == pushed.digest
    assert (props["auditor:revision:requested"], props["auditor:revision:pinned"]) == (
        "v1", "false")


# -- TLS and credentials --------------------------------------------------------------------

def test_https_with_the_registry_ca_and_without_it(oci_registry, run_cli, model_files):
    server = oci_registry("tls")
    with server.client() as registry:
        push_oras(registry, "org/tls", "v1", model_files)
    _, report, err = _scan(run_cli, server.ref("org/tls", "v1"), "--registry-ca",
                              server.ca_file)
    assert _paths(_model(report)) == sorted(model_files), err
    result = run_cli("scan", server.ref("org/tls", "v1"), "--quiet")
    assert result.code == 3
    line = result.err.strip()
    assert "\n" not in line and server.host in line and "TLS" in line


def test_basic_auth_from_the_environment(oci_registry, run_cli, model_files, monkeypatch):
    server = oci_registry("auth")
    with server.client() as registry:
        push_oras(registry, "org/private", "v1", model_files)
    ref = server.ref("org/private", "v1")
    monkeypatch.setenv("AUDITOR_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("AUDITOR_REGISTRY_PASSWORD", PASSWORD)
    unnamed = run_cli("scan", ref, "--registry-ca", server.ca_file, "--quiet")
    assert unnamed.code == 2 and "AUDITOR_REGISTRY_HOST" in unnamed.err
    monkeypatch.setenv("AUDITOR_REGISTRY_HOST", "registry.example")  # for another registry
    elsewhere = run_cli("scan", ref, "--registry-ca", server.ca_file, "--quiet")
    assert elsewhere.code == 3 and "wants credentials" in elsewhere.err
    monkeypatch.setenv("AUDITOR_REGISTRY_HOST", server.host)
    _, report, err = _scan(run_cli, ref, "--registry-ca", server.ca_file)
    assert _paths(_model(report)) == sorted(model_files), err
    monkeypatch.setenv("AUDITOR_REGISTRY_PASSWORD", "not-the-password")
    result = run_cli("scan", ref, "--registry-ca", server.ca_file, "--quiet")
    line = result.err.strip()
    assert result.code == 3 and "\n" not in line
    assert server.host in line and "401" in line and "not-the-password" not in line


@pytest.mark.parametrize("command", [
    ("scan", "oci://127.0.0.1:1/a/b:v1"),
    ("gate", "oci://127.0.0.1:1/a/b:v1", "--policy", "baseline"),
    ("verify-attestation", "oci://127.0.0.1:1/a/b@sha256:" + "a" * 64, "--policy", "baseline"),
    ("admission", "serve", "--policy", "baseline", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
    ("attest", "sbom.json", "--key", "key.pem", "--subject",
     "oci://127.0.0.1:1/a/b@sha256:" + "a" * 64, "--push"),
])
def test_plain_http_and_a_registry_ca_exclude_each_other(run_cli, tmp_path, command):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    result = run_cli(*command, "--plain-http", "--registry-ca", ca)
    assert result.code == 2 and "exclude each other" in result.err, result.err


# -- a registry that serves bytes other than the manifest says ------------------------------

def _lying_manifest(layer: bytes) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                   "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "size": len(layer),
                    "digest": "sha256:" + "0" * 64}]}).encode()


class _Tampered(http.server.BaseHTTPRequestHandler):
    """A manifest naming a gzip tar layer by a digest its bytes do not have."""

    layer = tar_bytes({"model.safetensors": b"changed after the audit"}, compress=True)
    manifest = _lying_manifest(layer)

    def do_GET(self) -> None:
        body = self.manifest if "/manifests/" in self.path else self.layer
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _TamperedLarge(_Tampered):
    """The same lie over a layer large enough that its first member is written out (and
    scanned) before the layer's end, where the digest is found wrong."""

    layer = tar_bytes({"a.bin": random.Random(1).randbytes(2 << 20),
                       "b.bin": random.Random(2).randbytes(2 << 20)}, compress=True)
    manifest = _lying_manifest(layer)


@pytest.fixture(params=[_Tampered])
def tampered(request) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_layer_whose_bytes_are_not_its_digest_stops_the_scan_naming_it(run_cli, tampered):
    result = run_cli("scan", f"oci://{tampered}/org/model:v1", "--plain-http", "--quiet")
    assert result.code == 3
    line = result.err.strip()
    assert "\n" not in line and "sha256:" + "0" * 64 in line
    assert "sha256:" + hashlib.sha256(_Tampered.layer).hexdigest() in line


@pytest.mark.parametrize("tampered", [_Tampered, _TamperedLarge], indirect=True)
def test_a_kept_pull_whose_layer_fails_its_digest_keeps_nothing(run_cli, tampered, tmp_path):
    kept = tmp_path / "pulled"
    result = run_cli("scan", f"oci://{tampered}/org/model:v1", "--plain-http", "--quiet",
                     "--pull-to", kept)
    assert result.code == 3 and "digest mismatch" in result.err
    assert list(kept.rglob("*")) == []


def test_nothing_is_left_in_the_spool_after_a_scan(oci_registry, run_cli, model_files,
                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelkit(registry, "org/spool", "v1", model_files)
    _scan(run_cli, server.ref("org/spool", "v1"), "--plain-http")
    assert list(Path(tmp_path).iterdir()) == []


def test_a_layer_that_inflates_like_a_bomb_stops_with_a_limit_finding(oci_registry, run_cli):
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelkit(registry, "org/bomb", "v1", {"zeros.bin": bytes(24 << 20)})
    _, report, err = _scan(run_cli, server.ref("org/bomb", "v1"), "--plain-http")
    model = _model(report)
    assert model["files"] == [], err
    limit = [f for f in model["findings"] if f["rule"] == "AUD-SCAN-002"]
    assert limit and "decompression bomb" in limit[0]["detail"]


def test_excluded_files_are_neither_spooled_nor_scanned_and_are_listed(
        oci_registry, run_cli, model_files):
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelkit(registry, "org/excl", "v1", model_files)
    _, report, err = _scan(run_cli, server.ref("org/excl", "v1"), "--plain-http",
                           "--exclude", "*.md")
    model = _model(report)
    assert "README.md" not in _paths(model), err
    assert model["facts"]["excluded"]["files"] == [{"path": "README.md", "pattern": "*.md"}]


def test_the_python_api_scans_an_oci_target_with_registry_settings(oci_registry, model_files):
    import auditor
    from auditor.sources.registry import RegistrySettings

    server = oci_registry("tls")
    with server.client() as registry:
        pushed = push_oras(registry, "org/api", "v1", model_files)
    result = auditor.scan(server.ref("org/api", "v1"),
                          registry=RegistrySettings(ca_file=server.ca_file))
    (model,) = result.models
    assert (model.source, model.revision) == ("oci", pushed.digest)
    assert sorted(f.path for f in model.files) == sorted(model_files)


def test_pull_to_keeps_the_files_the_runtime_would_mount(oci_registry, run_cli, model_files,
                                                         tmp_path):
    top = tar_bytes({"models/.wh.README.md": b""}, compress=True)
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, "org/kept", "v1", model_files, more_layers=(top,))
    kept = tmp_path / "pulled"
    _, report, err = _scan(run_cli, server.ref("org/kept", "v1"), "--plain-http",
                           "--pull-to", kept)
    assert _paths(_model(report)) == sorted(set(model_files) - {"README.md"}), err
    on_disk = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert on_disk == _paths(_model(report))
    assert (kept / "model.safetensors").read_bytes() == model_files["model.safetensors"]
    again = run_cli("scan", server.ref("org/kept", "v1"), "--plain-http", "--pull-to", kept)
    assert again.code == 2 and "new or empty folder" in again.err


@pytest.mark.parametrize("whiteout", [".wh.models", ".wh..wh..opq", "models/.wh..wh..opq"])
def test_a_modelcar_whiteout_of_models_or_above_removes_the_lower_model(
        oci_registry, run_cli, model_files, whiteout):
    top = tar_bytes({whiteout: b""}, compress=True)
    repository = "org/gone-" + hashlib.sha256(whiteout.encode()).hexdigest()[:8]
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, repository, "v1", model_files, more_layers=(top,))
    _, report, err = _scan(run_cli, server.ref(repository, "v1"), "--plain-http")
    model = _model(report)
    assert model["files"] == [], err
    deleted = sorted(f.get("file") for f in model["findings"] if f["rule"] == "AUD-OCI-001")
    assert deleted == sorted(model_files)


@pytest.mark.parametrize("kind", ["sym", "hard", "file"])
def test_a_modelcar_whose_models_is_not_a_folder_fails_closed(oci_registry, run_cli, kind):
    """`/models -> /payload`: KServe serves /payload, which no scan of models/ sees."""
    files = {"payload/model.pkl": EVIL}
    links = {}
    if kind == "file":
        files["models"] = b"not a folder"
    else:
        links["models"] = (kind, "/payload" if kind == "sym" else "payload/model.pkl")
    top = tar_bytes(files, compress=True, links=links)
    repository = f"org/linked-{kind}"
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, repository, "v1", {}, more_layers=(top,), index=False)
    code, report, err = _scan(run_cli, server.ref(repository, "v1"), "--plain-http")
    model = _model(report)
    found = [f for f in model["findings"] if f["rule"] == "AUD-OCI-004"]
    assert len(found) == 1 and found[0]["severity"] == "high", err
    assert "/models" in found[0]["detail"]
    assert code == 1



def _pax_header_claiming(size: int) -> bytes:
    """A pax extended header block whose size field claims `size` bytes of records."""
    block = bytearray(512)
    block[0:14] = b"PaxHeaders/big"
    block[100:108] = b"0000644\x00"
    block[124:136] = b"%011o\x00" % size
    block[156:157] = b"x"
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def test_a_layer_whose_pax_header_claims_gigabytes_stops_with_a_limit_finding(
        oci_registry, run_cli, model_files):
    """The records are refused by their claim, never read into memory (tarfile would)."""
    hostile = _pax_header_claiming((8 << 30) - 1) + b"30 path=models/evil.bin\n".ljust(512, b"\0")
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, "org/pax", "v1", model_files,
                      more_layers=(gzip.compress(hostile, mtime=0),), index=False)
    _, report, err = _scan(run_cli, server.ref("org/pax", "v1"), "--plain-http")
    model = _model(report)
    assert "model.safetensors" in _paths(model), err
    limit = [f for f in model["findings"] if f["rule"] == "AUD-SCAN-002"]
    assert limit and "extended header of 8589934591 bytes" in limit[0]["detail"], err


def test_a_ustar_name_under_a_pax_path_that_leaves_the_layer_is_a_finding(
        oci_registry, run_cli, model_files):
    """A runtime that ignores pax names unpacks the member at its ustar name."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        info = tarfile.TarInfo("models/" + "a" * 120)  # too long for ustar: a pax path
        info.size = 2
        layer.addfile(info, io.BytesIO(b"{}"))
    data = bytearray(out.getvalue())
    header = data.index(b"models/aaa", 1024)  # the ustar block after the pax records
    data[header:header + 100] = b"../../etc/cron.d/x".ljust(100, b"\0")
    data[header + 148:header + 156] = b" " * 8
    data[header + 148:header + 156] = b"%06o\x00 " % sum(data[header:header + 512])
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, "org/hidden", "v1", model_files,
                      more_layers=(gzip.compress(bytes(data), mtime=0),), index=False)
    _, report, err = _scan(run_cli, server.ref("org/hidden", "v1"), "--plain-http")
    model = _model(report)
    assert "a" * 120 in _paths(model), err
    unsafe = [f for f in model["findings"] if f["rule"] == "AUD-OCI-003"]
    assert unsafe and "cron" in str(unsafe), model["findings"]


def test_links_resolve_component_by_component_as_the_runtime_mounts_them(
        oci_registry, run_cli, model_files):
    """A link through a linked folder lands on the file; a loop is a broken link."""
    top = tar_bytes({"models/ckpt/weights.safetensors": model_files["model.safetensors"]},
                    compress=True, links={
                        "models/latest": ("sym", "ckpt"),
                        "models/served.safetensors": ("sym", "latest/weights.safetensors"),
                        "models/loop-a": ("sym", "loop-b"), "models/loop-b": ("sym", "loop-a")})
    server = oci_registry("plain")
    with server.client() as registry:
        push_modelcar(registry, "org/folders", "v1", model_files, more_layers=(top,),
                      index=False)
    _, report, err = _scan(run_cli, server.ref("org/folders", "v1"), "--plain-http")
    model = _model(report)
    assert "served.safetensors" in _paths(model), err
    served = next(f for f in model["files"] if f["path"] == "served.safetensors")
    assert served["digests"]["sha256"] == hashlib.sha256(
        model_files["model.safetensors"]).hexdigest()
    assert "loop-a" not in _paths(model) and "AUD-SRC-003" in str(model["findings"]), err
