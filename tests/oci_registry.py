"""A real OCI registry for tests: the CNCF Distribution registry (`docker-registry` 2.8).

Started on 127.0.0.1 on a free port with its storage in a temporary folder,
in one of three modes: `plain` (HTTP, anonymous), `tls` (HTTPS with a test CA
made here; the CA file is handed to the client), `auth` (HTTPS and Basic auth
from a bcrypt htpasswd file — the only hash the registry accepts). One process
per mode per test session; the `oci_registry` fixture in conftest.py stops
them all at the end. Without /usr/bin/docker-registry the tests fail, saying
which package to install (CI installs it in .ci/run).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from auditor.oci.client import OCI_INDEX, OCI_MANIFEST, Credentials, Registry

BINARY = "docker-registry"
USER, PASSWORD = "auditor", "s3cret-pass"
MODES = ("plain", "tls", "auth")


@dataclass
class RegistryServer:
    """A running registry: where it listens and what a client needs to talk to it."""

    mode: str
    host: str  # 127.0.0.1:PORT
    root: Path
    process: subprocess.Popen = field(repr=False)
    ca_file: Path | None = None
    credentials: Credentials | None = None

    @property
    def plain_http(self) -> bool:
        return self.mode == "plain"

    def client(self, **overrides: object) -> Registry:
        """A client configured as a user of this registry would configure it."""
        options: dict[str, object] = {"plain_http": self.plain_http, "ca_file": self.ca_file,
                                      "auth": self.credentials}
        options.update(overrides)
        return Registry(self.host, **options)  # type: ignore[arg-type]

    def ref(self, repository: str, tag_or_digest: str) -> str:
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"oci://{self.host}/{repository}{sep}{tag_or_digest}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def binary() -> str:
    """The registry program, or a test failure that says how to get it."""
    found = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/bin:/usr/sbin")
    if not found:
        pytest.fail("the OCI tests need the CNCF Distribution registry: install the Debian "
                    "package `docker-registry` (apt-get install -y docker-registry)")
    return str(found)


def _candidate_port() -> int:
    """A port free a moment ago; another process may take it before the registry binds it,
    which `start` notices (the registry exits: address in use) and answers with another."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost: (ca.pem, server.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditor test registry CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(hours=1))
              .not_valid_after(now + dt.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName([
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                  critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(server.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def _htpasswd(path: Path) -> None:
    import bcrypt

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    path.write_text(f"{USER}:{hashed}\n")


BIND_ATTEMPTS = 5


def start(mode: str, folder: Path) -> RegistryServer:
    """Start a registry in `mode` with everything it keeps under `folder`; wait until it answers.

    The port is chosen before the registry binds it, so another process can take it in
    between: the registry then exits saying the address is in use, and it is started again
    on another port, up to BIND_ATTEMPTS times."""
    assert mode in MODES, mode
    program = binary()
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = credentials = None
    tls: list[str] = []
    auth: list[str] = []
    if mode in ("tls", "auth"):
        ca_file, cert, key = write_test_ca(folder)
        tls = ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
    if mode == "auth":
        _htpasswd(folder / "htpasswd")
        credentials = Credentials(USER, PASSWORD)
        auth = ["auth:", "  htpasswd:", "    realm: auditor-tests",
                f"    path: {folder / 'htpasswd'}"]
    for _ in range(BIND_ATTEMPTS):
        host = f"127.0.0.1:{_candidate_port()}"
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
                 "storage:", "  filesystem:", f"    rootdirectory: {folder / 'data'}",
                 "  delete:", "    enabled: true",
                 "http:", f"  addr: {host}", "  secret: auditor-tests", *tls, *auth]
        config = folder / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        log_path = folder / "registry.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([program, "serve", str(config)], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = RegistryServer(mode, host, folder, process, ca_file, credentials)
        if _wait_ready(server, log_path):
            return server
    pytest.fail(f"docker-registry found no free port in {BIND_ATTEMPTS} attempts")


def _wait_ready(server: RegistryServer, log: Path) -> bool:
    """Poll /v2/ until the registry answers (200, or 401 when it wants credentials); False
    when it exited because its port was taken (the caller tries another)."""
    scheme = "http" if server.plain_http else "https"
    verify = ssl.create_default_context(cafile=str(server.ca_file)) if server.ca_file else False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            text = log.read_text(errors="replace")
            if "address already in use" in text:
                return False
            pytest.fail(f"docker-registry exited ({server.process.returncode}): {text[-2000:]}")
        try:
            url = f"{scheme}://{server.host}/v2/"
            status = httpx.get(url, verify=verify, timeout=1).status_code
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if status in (200, 401) and server.process.poll() is None:  # ours, not a squatter
            return True
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"docker-registry did not answer on {server.host} within 20 s")


class Registries:
    """The session's registries, one per mode, started on first use."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._running: dict[str, RegistryServer] = {}

    def __call__(self, mode: str = "plain") -> RegistryServer:
        if mode not in self._running:
            self._running[mode] = start(mode, self._folder / mode)
        return self._running[mode]

    def stop_all(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()


# -- pushing models the way the tools that make them lay them out ---------------------------

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
MODELKIT_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"


def tar_bytes(files: dict[str, bytes], *, compress: bool = False,
              links: dict[str, tuple[str, str]] | None = None) -> bytes:
    """A tar (gzip-compressed when asked) of `files`; `links`: name -> ("sym" | "hard", target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
    data = out.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def _manifest(registry: Registry, repository: str, tag: str | None, config: bytes,
              config_type: str, layers: list, artifact_type: str | None = None):
    pushed_config = registry.push_blob(repository, config, config_type)
    doc: dict = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": pushed_config.to_json(), "layers": [d.to_json() for d in layers]}
    if artifact_type:
        doc["artifactType"] = artifact_type
    return registry.push_manifest(repository, json.dumps(doc).encode(), OCI_MANIFEST, tag)


def _layer(registry: Registry, repository: str, data: bytes, media_type: str,
           annotations: dict[str, str] | None = None):
    pushed = registry.push_blob(repository, data, media_type)
    return replace(pushed, annotations=annotations or {})


def push_oras(registry: Registry, repository: str, tag: str | None, files: dict[str, bytes]):
    """An ORAS artifact (`oras push`): one layer per file, named by its title annotation."""
    layers = [_layer(registry, repository, data, OCI_LAYER,
                     {"org.opencontainers.image.title": name}) for name, data in files.items()]
    return _manifest(registry, repository, tag, b"{}", "application/vnd.oci.empty.v1+json",
                     layers, "application/vnd.example.model.v1")


def push_modelkit(registry: Registry, repository: str, tag: str | None,
                  files: dict[str, bytes]):
    """A KitOps ModelKit: a Kitfile config, the weights in a model layer, the rest in code
    and docs layers, each a tar+gzip of its files at their paths."""
    weights = {n: d for n, d in files.items() if n.endswith((".safetensors", ".bin", ".pt"))}
    docs = {n: d for n, d in files.items() if n.endswith(".md")}
    code = {n: d for n, d in files.items() if n not in weights and n not in docs}
    kitfile = json.dumps({"manifestVersion": "1.0", "package": {"name": repository},
                          "model": {"path": next(iter(weights), "")}}).encode()
    layers = []
    for kind, group in (("model", weights), ("code", code), ("docs", docs)):
        if group:
            layers.append(_layer(registry, repository, tar_bytes(group, compress=True),
                                 f"application/vnd.kitops.modelkit.{kind}.v1.tar+gzip"))
    return _manifest(registry, repository, tag, kitfile, MODELKIT_CONFIG, layers)


def push_modelcar(registry: Registry, repository: str, tag: str | None, files: dict[str, bytes],
                  *, more_layers: tuple[bytes, ...] = (), index: bool = True):
    """A KServe modelcar: a container image (a base system layer, the model under /models/,
    `more_layers` on top), wrapped in a linux/amd64 + linux/arm64 index when `index`."""
    base = tar_bytes({"bin/busybox": b"\x7fELF not really", "etc/passwd": b"root:x:0:0\n"},
                     compress=True)
    model = tar_bytes({f"models/{n}": d for n, d in files.items()}, compress=True)
    blobs = [base, model, *more_layers]
    layers = [_layer(registry, repository, b, OCI_LAYER_GZIP) for b in blobs]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(b)).hexdigest() for b in blobs]},
        "config": {"Cmd": ["sh"]}}).encode()
    image = _manifest(registry, repository, None if index else tag, config, IMAGE_CONFIG, layers)
    if not index:
        return image
    arm = _manifest(registry, repository, None, config.replace(b"amd64", b"arm64"),
                    IMAGE_CONFIG, layers)
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        replace(arm, platform={"os": "linux", "architecture": "arm64"}).to_json(),
        replace(image, platform={"os": "linux", "architecture": "amd64"}).to_json()]}
    return registry.push_manifest(repository, json.dumps(doc).encode(), OCI_INDEX, tag)
