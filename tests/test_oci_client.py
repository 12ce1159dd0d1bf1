"""The OCI client against a real Distribution registry: references, pushes, pulls, digests
verified, TLS with a private CA, Basic auth, referrers through the fallback tag schema."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from auditor.errors import SourceError, UsageError
from auditor.oci import reference
from auditor.oci.client import (
    OCI_INDEX,
    OCI_MANIFEST,
    Credentials,
    Descriptor,
    Registry,
    credentials_for,
)

HEX = "a" * 64


def _image(registry: Registry, repository: str, tag: str, payload: bytes) -> Descriptor:
    config = registry.push_blob(repository, b"{}", "application/vnd.oci.empty.v1+json")
    layer = registry.push_blob(repository, payload, "application/octet-stream")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(),
                "layers": [layer.to_json()]}
    return registry.push_manifest(repository, json.dumps(manifest).encode(), OCI_MANIFEST, tag)


# -- references ------------------------------------------------------------------------------

def test_a_reference_round_trips_and_knows_whether_it_is_pinned() -> None:
    text = f"oci://registry.example.com:5000/org/model:v1@sha256:{HEX}"
    ref = reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "registry.example.com:5000", "org/model", "v1", f"sha256:{HEX}")
    assert str(ref) == text and ref.pinned and ref.name == "registry.example.com:5000/org/model"
    tagged = reference.parse("oci://127.0.0.1:5000/org/model")
    assert tagged.tag == "latest" and not tagged.pinned
    assert tagged.with_digest(f"sha256:{HEX}").pinned


@pytest.mark.parametrize("text", [
    "oci://org/model:v1",  # no host: a model reference never defaults to Docker Hub
    "oci://host.example/Org/Model",  # upper case repository
    "oci://host.example/org/model@sha256:abc",
    "oci://host.example/org/model:bad tag",
    "oci://host.example/",
])
def test_a_malformed_reference_is_a_usage_error_naming_it(text: str) -> None:
    with pytest.raises(UsageError, match="oci://"):
        reference.parse(text)


def test_a_pod_image_takes_docker_s_defaults() -> None:
    assert str(reference.parse_image("nginx")) == "oci://docker.io/library/nginx:latest"
    ref = reference.parse_image(f"ghcr.io/org/app@sha256:{HEX}")
    assert ref.registry == "ghcr.io" and ref.digest and ref.tag is None
    assert reference.parse_image("localhost:5000/app:1").registry == "localhost:5000"


# -- credentials -----------------------------------------------------------------------------

def test_credentials_come_from_the_environment_then_the_docker_config(tmp_path, monkeypatch):
    assert credentials_for("r.example") is None
    config = {"auths": {"r.example": {"auth": base64.b64encode(b"u:p:w").decode()}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials_for("r.example") == Credentials("u", "p:w")
    assert credentials_for("other.example") is None
    monkeypatch.setenv("AUDITOR_REGISTRY_USERNAME", "env")
    monkeypatch.setenv("AUDITOR_REGISTRY_PASSWORD", "secret")
    monkeypatch.setenv("AUDITOR_REGISTRY_HOST", "R.example")
    creds = credentials_for("r.example")
    assert creds == Credentials("env", "secret") and "secret" not in repr(creds)


def test_environment_credentials_go_only_to_the_host_they_name(tmp_path, monkeypatch):
    """A reference someone else chose (a pod's image, a scanned model) must not receive the
    operator's password by naming a registry of its own."""
    monkeypatch.setenv("AUDITOR_REGISTRY_USERNAME", "env")
    monkeypatch.setenv("AUDITOR_REGISTRY_PASSWORD", "secret")
    with pytest.raises(UsageError, match="AUDITOR_REGISTRY_HOST") as caught:
        credentials_for("attacker.example")
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)
    monkeypatch.setenv("AUDITOR_REGISTRY_HOST", "registry.internal:5000")
    assert credentials_for("attacker.example") is None
    assert credentials_for("registry.internal") is None  # another port is another registry
    assert credentials_for("registry.internal:5000") == Credentials("env", "secret")


# -- the real registry -----------------------------------------------------------------------

def test_push_resolve_and_pull_over_plain_http(oci_registry) -> None:
    server = oci_registry("plain")
    with server.client() as registry:
        pushed = _image(registry, "org/model", "v1", b"weights")
        resolved = registry.resolve(reference.parse(server.ref("org/model", "v1")))
        assert resolved.digest == pushed.digest and resolved.media_type == OCI_MANIFEST
        _, data = registry.manifest("org/model", pushed.digest)
        layer = json.loads(data)["layers"][0]
        with registry.open_blob("org/model", Descriptor(**{
                "media_type": layer["mediaType"], "digest": layer["digest"],
                "size": layer["size"]})) as blob:
            assert blob.read() == b"weights"


def test_a_missing_manifest_is_a_source_error_naming_it(oci_registry) -> None:
    with oci_registry("plain").client() as registry, pytest.raises(SourceError, match="nope"):
        registry.manifest("org/model", "nope")


def test_a_blob_whose_bytes_do_not_match_its_descriptor_is_refused(oci_registry) -> None:
    server = oci_registry("plain")
    with server.client() as registry:
        real = registry.push_blob("org/model", b"the real bytes")
        lying = Descriptor(real.media_type, real.digest, real.size + 1)
        with pytest.raises(SourceError, match=f"blob {real.digest}.*declares"):
            registry.open_blob("org/model", lying).read()


def test_https_with_the_ca_works_and_without_it_fails_in_one_line(oci_registry) -> None:
    server = oci_registry("tls")
    with server.client() as registry:
        assert _image(registry, "org/tls", "v1", b"x").digest
    with server.client(ca_file=None) as registry, pytest.raises(SourceError) as caught:
        registry.resolve(reference.parse(server.ref("org/tls", "v1")))
    message = str(caught.value)
    assert "\n" not in message and server.host in message and "TLS" in message
    assert "--registry-ca" in message


def test_the_registry_ca_is_trusted_besides_the_system_s_not_instead(oci_registry, tmp_path,
                                                                      monkeypatch) -> None:
    """The system's trust (here SSL_CERT_FILE, as OpenSSL reads it) stays when --registry-ca
    adds a CA: an organisation's CA installed system-wide keeps working beside it."""
    from tests.oci_registry import write_test_ca

    server = oci_registry("tls")
    with server.client() as registry:
        _image(registry, "org/systrust", "v1", b"x")
    other_ca, _, _ = write_test_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
    ref = reference.parse(server.ref("org/systrust", "v1"))
    with Registry(server.host) as registry:  # the default: the system's CAs
        assert registry.resolve(ref).digest
    with Registry(server.host, ca_file=other_ca) as registry:
        assert registry.resolve(ref).digest


def test_plain_http_with_a_registry_ca_is_refused() -> None:
    with pytest.raises(UsageError, match="exclude each other"):
        Registry("127.0.0.1:1", plain_http=True, ca_file="ca.pem")


def test_basic_auth_right_credentials_work_wrong_ones_fail_naming_the_host(oci_registry):
    server = oci_registry("auth")
    with server.client() as registry:
        assert _image(registry, "org/private", "v1", b"x").digest
    ref = reference.parse(server.ref("org/private", "v1"))
    with server.client(auth=Credentials("auditor", "wrong")) as registry, \
            pytest.raises(SourceError) as caught:
        registry.resolve(ref)
    message = str(caught.value)
    assert "\n" not in message and server.host in message and "401" in message
    assert "rejected" in message and "wrong" not in message
    with server.client(auth=None) as registry, pytest.raises(SourceError, match=r"401.*wants"):
        registry.resolve(ref)


def test_an_attached_artifact_is_found_through_the_fallback_tag(oci_registry) -> None:
    server = oci_registry("plain")
    kind = "application/vnd.auditor.attestation.v1+json"
    with server.client() as registry:
        subject = _image(registry, "org/attested", "v1", b"model bytes")
        assert registry.referrers("org/attested", subject.digest) == []
        first = registry.attach("org/attested", subject, kind, b'{"one":1}',
                                "application/vnd.dev.sigstore.bundle.v0.3+json")
        second = registry.attach("org/attested", subject, "application/other", b"2",
                                 "application/octet-stream")
        found = registry.referrers("org/attested", subject.digest)
        assert {d.digest for d in found} == {first.digest, second.digest}
        assert [d.digest for d in registry.referrers("org/attested", subject.digest, kind)] \
            == [first.digest]
        _, index = registry.manifest("org/attested", "sha256-" + subject.digest[7:])
        assert json.loads(index)["mediaType"] == OCI_INDEX


def test_referred_blobs_yield_each_referrer_s_bytes_or_why_not(oci_registry) -> None:
    server = oci_registry("plain")
    kind, bundle = "application/x-test-attestation", "application/x-test-bundle"
    with server.client() as registry:
        subject = _image(registry, "org/referred", "v1", b"model bytes")
        good = registry.attach("org/referred", subject, kind, b"bundle bytes", bundle)
        wrong = registry.attach("org/referred", subject, kind, b"other", "application/other")
        items = {i.referrer.digest: i for i in registry.referred_blobs(
            "org/referred", subject.digest, kind, bundle, cap=1 << 10)}
        assert items[good.digest].data == b"bundle bytes"
        assert items[wrong.digest].data is None
        assert "no application/x-test-bundle layer" in items[wrong.digest].problem
        capped = registry.referred_blobs("org/referred", subject.digest, kind, None, cap=3)
        assert all(i.data is None and "more than the 3" in i.problem for i in capped)
        assert len(list(registry.referred_blobs("org/referred", subject.digest, kind, None,
                                                cap=1 << 10, limit=1))) == 1


# -- a registry that lies: a tiny local HTTP handler -----------------------------------------

class _Lying(http.server.BaseHTTPRequestHandler):
    """Serves one manifest whose bytes do not match the digest asked for, a blob whose bytes
    differ from their digest, and a referrers API answer."""

    blob = b"tampered layer bytes"
    manifest = b'{"schemaVersion":2}'

    def do_GET(self) -> None:
        if "/referrers/" in self.path:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": f"sha256:{HEX}", "size": 10,
                 "artifactType": "application/x-test"}]}
            body = json.dumps(index).encode()
        elif "/blobs/" in self.path:
            body = self.blob
        elif "/manifests/" in self.path:
            body = self.manifest
        else:
            body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", OCI_INDEX if "/referrers/" in self.path else OCI_MANIFEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def lying_registry() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lying)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_tampered_blob_is_caught_naming_the_blob_and_both_digests(lying_registry) -> None:
    claimed = Descriptor("application/octet-stream", f"sha256:{HEX}", len(_Lying.blob))
    with Registry(lying_registry, plain_http=True) as registry:
        stream = registry.open_blob("org/model", claimed)
        with pytest.raises(SourceError) as caught:
            stream.read()
    actual = "sha256:" + hashlib.sha256(_Lying.blob).hexdigest()
    assert claimed.digest in str(caught.value) and actual in str(caught.value)


def test_a_manifest_whose_bytes_are_not_its_digest_is_refused(lying_registry) -> None:
    with Registry(lying_registry, plain_http=True) as registry, \
            pytest.raises(SourceError, match="manifest digest mismatch"):
        registry.manifest("org/model", f"sha256:{HEX}")


def test_the_referrers_api_is_used_where_the_registry_has_it(lying_registry) -> None:
    with Registry(lying_registry, plain_http=True) as registry:
        found = registry.referrers("org/model", f"sha256:{'b' * 64}", "application/x-test")
    assert [d.digest for d in found] == [f"sha256:{HEX}"]


# -- the Bearer token flow and redirects to blob storage -------------------------------------

class _TokenRegistry(http.server.BaseHTTPRequestHandler):
    """Wants a Bearer token from its /token service; redirects blobs to another host name
    (localhost instead of 127.0.0.1), where it records whether credentials arrived."""

    token = "tok-3f9a"
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    blob = b"weights behind a redirect"
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        authorization = self.headers.get("Authorization")
        self.seen.append((self.path, authorization))
        if self.path.startswith("/token"):
            ok = authorization == "Basic " + base64.b64encode(b"u:pw").decode()
            return self._send(200 if ok else 401, json.dumps({"token": self.token}).encode())
        if self.path.startswith("/storage/"):
            return self._send(200, self.blob)
        if authorization != f"Bearer {self.token}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",'
                             'service="fake",scope="repository:org/model:pull"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if "/blobs/" in self.path:
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{port}/storage/x?sig=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._send(200, self.manifest)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def token_registry() -> Iterator[str]:
    _TokenRegistry.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_bearer_challenge_is_answered_and_blob_storage_gets_no_credentials(token_registry):
    creds = Credentials("u", "pw")
    with Registry(token_registry, plain_http=True, auth=creds) as registry:
        found = registry.resolve(reference.parse(f"oci://{token_registry}/org/model:v1"))
        assert found.digest == "sha256:" + hashlib.sha256(_TokenRegistry.manifest).hexdigest()
        blob = Descriptor("application/octet-stream",
                          "sha256:" + hashlib.sha256(_TokenRegistry.blob).hexdigest(),
                          len(_TokenRegistry.blob))
        with registry.open_blob("org/model", blob) as stream:
            assert stream.read() == _TokenRegistry.blob
    storage = [auth for path, auth in _TokenRegistry.seen if path.startswith("/storage/")]
    assert storage == [None]
    token_requests = [path for path, _ in _TokenRegistry.seen if path.startswith("/token")]
    assert token_requests and "scope=repository%3Aorg%2Fmodel%3Apull" in token_requests[0]


def test_a_refused_token_is_one_line_without_the_secret(token_registry):
    with Registry(token_registry, plain_http=True, auth=Credentials("u", "bad-secret")) as reg, \
            pytest.raises(SourceError) as caught:
        reg.resolve(reference.parse(f"oci://{token_registry}/org/model:v1"))
    message = str(caught.value)
    assert "token service" in message and "401" in message and "'u'" in message
    assert "bad-secret" not in message and _TokenRegistry.token not in message


# -- limits and downgrades -------------------------------------------------------------------

class _Odd(http.server.BaseHTTPRequestHandler):
    """/v2/org/big/…: a 5 MiB manifest; /v2/org/bad/…: not JSON; blobs: redirected to http;
    an upload: asks for Basic credentials, then hands out an http:// location on its own
    host and port (where a client that follows it sends the password in cleartext)."""

    uploads: ClassVar[list[str]] = []

    def do_HEAD(self) -> None:
        if self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="odd"')
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        port = self.server.server_address[1]
        self.send_response(202)
        self.send_header("Location", f"http://127.0.0.1:{port}/v2/org/model/blobs/uploads/u1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self.uploads.append(self.path)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if "/blobs/" in self.path:
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/storage/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b" " * (5 << 20) if "/org/big/" in self.path else b"{not json"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def odd_https(tmp_path_factory) -> Iterator[tuple[str, object]]:
    """`_Odd` over TLS with a test CA: (host, ca_file)."""
    import ssl

    from tests.oci_registry import write_test_ca

    ca, cert, key = write_test_ca(tmp_path_factory.mktemp("odd-ca"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", ca
    server.shutdown()
    server.server_close()


def test_a_manifest_over_the_size_limit_is_refused(odd_https) -> None:
    host, ca = odd_https
    with Registry(host, ca_file=ca) as registry, pytest.raises(SourceError, match="allowed"):
        registry.manifest("org/big", "v1")


def test_a_manifest_that_is_not_json_is_refused_naming_it(odd_https) -> None:
    host, ca = odd_https
    with Registry(host, ca_file=ca) as registry, \
            pytest.raises(SourceError, match=r"org/bad/manifests/v1: not valid JSON"):
        registry.manifest("org/bad", "v1")


def test_a_redirect_from_https_down_to_http_is_refused(odd_https) -> None:
    host, ca = odd_https
    blob = Descriptor("application/octet-stream", f"sha256:{HEX}", 1)
    with Registry(host, ca_file=ca) as registry, \
            pytest.raises(SourceError, match=r"refused a redirect to http://127\.0\.0\.1:9"):
        registry.open_blob("org/model", blob)


def test_an_upload_location_down_to_http_is_refused_before_credentials_go(odd_https) -> None:
    host, ca = odd_https
    _Odd.uploads.clear()
    with Registry(host, ca_file=ca, auth=Credentials("u", "pw")) as registry, \
            pytest.raises(SourceError) as caught:
        registry.push_blob("org/model", b"weights")
    message = str(caught.value)
    assert f"refused a location the registry gave to http://{host}" in message
    assert "pw" not in message and _Odd.uploads == []


def test_the_test_registry_starts_again_on_another_port_when_its_port_is_taken(
        tmp_path, monkeypatch) -> None:
    """The port is picked before the registry binds it: a squatter in between costs a retry,
    not a failed session."""
    import socket

    from tests import oci_registry

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken, oci_registry._candidate_port()])
    monkeypatch.setattr(oci_registry, "_candidate_port", lambda: next(ports))
    try:
        server = oci_registry.start("plain", tmp_path / "retry")
        try:
            assert server.host != f"127.0.0.1:{taken}"
            with server.client() as registry:
                assert registry.push_blob("org/retry", b"x").digest
        finally:
            server.stop()
    finally:
        squatter.close()


# -- where credentials may go: challenges and token services ----------------------------------

def _mock(registry: Registry, handler) -> list[tuple[str, str | None]]:
    """Route the registry's requests to `handler`; returns (url, Authorization) as sent."""
    import httpx

    seen: list[tuple[str, str | None]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return handler(request)

    registry._client.close()
    registry._client = httpx.Client(transport=httpx.MockTransport(record),
                                    follow_redirects=False)
    return seen


_BLOB = Descriptor("application/octet-stream", "sha256:" + HEX, 1)


def test_a_401_from_a_redirect_target_is_not_answered_and_no_credentials_leave() -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "reg.example":
            return httpx.Response(307, headers={"location": "https://cdn.other/blob"})
        if request.url.host == "cdn.other":
            return httpx.Response(401, headers={
                "www-authenticate": 'Bearer realm="https://evil.example/token",service="x"'})
        return httpx.Response(200, json={"token": "t"})

    with Registry("reg.example", auth=Credentials("alice", "s3cret")) as registry:
        seen = _mock(registry, handler)
        with pytest.raises(SourceError) as caught:
            registry.open_blob("repo", _BLOB)
    message = str(caught.value)
    assert "cdn.other" in message and "redirect target" in message and "\n" not in message
    assert not [url for url, _ in seen if "evil.example" in url]
    assert [auth for _, auth in seen] == [None, None]


def _hub_like(request) -> object:
    """A registry whose token service is on another host, as Docker Hub's is."""
    import httpx

    if request.url.host == "auth.example":
        return httpx.Response(200, json={"token": "t"})
    if request.headers.get("authorization") != "Bearer t":
        return httpx.Response(401, headers={
            "www-authenticate": 'Bearer realm="https://auth.example/token",service="reg"'})
    return httpx.Response(200, content=b"x")


def test_credentials_go_to_a_token_service_elsewhere_only_if_the_operator_names_it(
        monkeypatch) -> None:
    monkeypatch.delenv("AUDITOR_REGISTRY_TOKEN_HOSTS", raising=False)
    with Registry("reg.example", auth=Credentials("alice", "s3cret")) as registry:
        seen = _mock(registry, _hub_like)
        with pytest.raises(SourceError) as caught:
            registry.open_blob("repo", _BLOB)
    assert "AUDITOR_REGISTRY_TOKEN_HOSTS" in str(caught.value)
    assert "auth.example" in str(caught.value) and "s3cret" not in str(caught.value)
    assert not [url for url, _ in seen if "auth.example" in url]

    monkeypatch.setenv("AUDITOR_REGISTRY_TOKEN_HOSTS", "other.example, AUTH.example")
    with Registry("reg.example", auth=Credentials("alice", "s3cret")) as registry:
        seen = _mock(registry, _hub_like)
        registry.open_blob("repo", _BLOB).close()
    token = [auth for url, auth in seen if "auth.example" in url]
    assert token == [Credentials("alice", "s3cret").basic()]


def test_an_anonymous_token_request_may_go_to_any_https_realm(monkeypatch) -> None:
    monkeypatch.delenv("AUDITOR_REGISTRY_TOKEN_HOSTS", raising=False)
    with Registry("reg.example") as registry:
        seen = _mock(registry, _hub_like)
        registry.open_blob("repo", _BLOB).close()
    assert [auth for url, auth in seen if "auth.example" in url] == [None]
