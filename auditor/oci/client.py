"""A small OCI distribution client: manifests, blobs, referrers, pushes; digests verified.

Built on `httpx` (already installed as `huggingface_hub`'s HTTP client, so no
new dependency): it streams responses, keeps HTTP/1.1 connections alive across
the many small requests of a pull, and takes an `ssl.SSLContext`, so a private
CA is exactly what `--registry-ca` names. It moves bytes and checks them; it
never judges and never scans.

What it guarantees:
- every manifest is read within `MAX_MANIFEST` bytes and its sha256 is the
  digest it is known by (a tag's answer is checked against the registry's
  `Docker-Content-Digest`, a digest request against the digest asked for);
- every blob is checked against its descriptor's sha256 and size while it is
  read: the mismatch is a `SourceError` naming the blob and both digests;
- credentials go only to the registry's own host (a redirect to blob storage
  carries none) and to a token service on that host or on a host
  `AUDITOR_REGISTRY_TOKEN_HOSTS` names; only a 401 from the registry's own host
  and scheme is answered (one from a redirect target is a `SourceError`, so a
  host the registry redirects to cannot name a token service of its own); the
  environment's credentials only to the host `AUDITOR_REGISTRY_HOST` names;
- no URL the registry hands back (a redirect, an upload location) leaves
  https unless the registry itself was named plain-http; no token or password
  is ever part of a message;
- TLS is checked against the system's CAs, plus `--registry-ca`'s;
- every failure is one `SourceError` line naming the host and the cause.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from auditor.errors import SourceError, UsageError
from auditor.oci.access import RegistryAccess
from auditor.oci.reference import DIGEST, Reference
from auditor.rawio import RawReader

if TYPE_CHECKING:
    import ssl

    import httpx

MAX_MANIFEST = 4 << 20  # manifests and indexes; real ones are a few KiB
MAX_TOKEN = 64 << 10
MAX_ERROR_BODY = 8 << 10
MAX_REDIRECTS = 5
CHUNK = 1 << 16

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
_EMPTY_JSON = b"{}"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says a blob or manifest is."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, Any] | None = None  # in an index: the manifest's os/architecture

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it is written into a manifest or index."""
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        if self.platform:
            doc["platform"] = dict(self.platform)
        return doc


def descriptor_from(doc: Any, where: str) -> Descriptor:
    """A descriptor read from a document; anything malformed is a SourceError naming `where`."""
    if not isinstance(doc, dict):
        raise SourceError(f"{where}: a descriptor is not a JSON object")
    media_type, digest, size = doc.get("mediaType"), doc.get("digest"), doc.get("size")
    annotations = doc.get("annotations") or {}
    artifact_type = doc.get("artifactType")
    platform = doc.get("platform")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise SourceError(f"{where}: a descriptor without mediaType or digest")
    if not DIGEST.fullmatch(digest):
        raise SourceError(f"{where}: digest {digest[:80]!r} is not sha256:<64 hex> (the only "
                          "algorithm verified)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SourceError(f"{where}: descriptor {digest} has no valid size")
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise SourceError(f"{where}: descriptor {digest} has malformed annotations")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise SourceError(f"{where}: descriptor {digest} has a malformed artifactType")
    if platform is not None and not isinstance(platform, dict):
        raise SourceError(f"{where}: descriptor {digest} has a malformed platform")
    return Descriptor(media_type, digest, size, artifact_type, annotations, platform)


def parse_json(data: bytes, where: str) -> dict[str, Any]:
    """A manifest, index or token response as a JSON object, or a SourceError naming it."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{where}: not a JSON object")
    return doc


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """A registry user name and password (or token); the password never appears in a repr."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


_HUB_CONFIG_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")


def credentials_for(host: str) -> Credentials | None:
    """Credentials for `host`: the environment's if they are for it, else the docker config.

    `AUDITOR_REGISTRY_USERNAME`/`_PASSWORD` go only to the registry named by
    `AUDITOR_REGISTRY_HOST` (host[:port]): a reference chosen by someone else
    (a pod author's image, a scanned model's registry) must never receive
    them by naming a registry of its own. Without `AUDITOR_REGISTRY_HOST` they
    are a UsageError, not a guess. Otherwise the docker config,
    `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `auths[host].auth`
    (base64 of `user:password`), the file `docker login` writes: per host by
    construction. Credential helpers (`credsStore`) are not run: running a
    program named by a config file is not something an auditor does on its own.
    """
    named = env_credentials()
    if named is not None and named[0] == host.lower():
        return named[1]
    folder = os.environ.get("DOCKER_CONFIG")
    path = Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"
    try:
        config = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot read the docker config ({exc})") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    keys = (host, f"https://{host}", f"http://{host}")
    keys += _HUB_CONFIG_KEYS if host == "docker.io" else ()
    for key in keys:
        entry = auths.get(key)
        token = entry.get("auth") if isinstance(entry, dict) else None
        if isinstance(token, str) and token:
            try:
                user, sep, password = base64.b64decode(token).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise SourceError(f"{path}: auths[{key!r}].auth is not base64 of "
                                  "user:password") from None
            if sep:
                return Credentials(user, password)
    return None


def env_credentials() -> tuple[str, Credentials] | None:
    """(host, credentials) from `AUDITOR_REGISTRY_HOST`/`_USERNAME`/`_PASSWORD`, or None.

    A user name or password without the host they are for is a UsageError: the
    commands that reach registries call this up front so the mistake is said
    once, before any request.
    """
    user = os.environ.get("AUDITOR_REGISTRY_USERNAME")
    password = os.environ.get("AUDITOR_REGISTRY_PASSWORD")
    if not user and password is None:
        return None
    host = os.environ.get("AUDITOR_REGISTRY_HOST", "").strip().lower()
    if not host:
        raise UsageError("AUDITOR_REGISTRY_USERNAME/_PASSWORD are set without "
                         "AUDITOR_REGISTRY_HOST: set it to the registry (host[:port]) they are "
                         "for; they are sent to no other")
    if not user or password is None:
        raise UsageError("AUDITOR_REGISTRY_HOST needs both AUDITOR_REGISTRY_USERNAME and "
                         "AUDITOR_REGISTRY_PASSWORD")
    return host, Credentials(user, password)


def connect(host: str, access: RegistryAccess | None = None) -> Registry:
    """A client for the registry at `host`, reached as `access` says, with its credentials."""
    access = access or RegistryAccess()
    return Registry(host, plain_http=access.plain_http, ca_file=access.ca_file,
                    auth=credentials_for(host), timeout=access.timeout)


def tls_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """The trust a registry's certificate is checked against: the system's (OpenSSL's
    default paths, so `SSL_CERT_FILE`/`SSL_CERT_DIR` and the distribution's CA bundle,
    which is what an organisation with a private CA configures), plus `ca_file`."""
    import ssl

    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"{ca_file}: cannot load the registry CA ({exc})") from None
    return context


def _tls_reason(exc: BaseException) -> str | None:
    """The TLS failure behind a connection error, in one line (None: not a TLS failure)."""
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS handshake failed ({seen.reason or seen})"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return text if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text else None


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…",scope="…"` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    while rest:
        key, eq, rest = rest.strip().partition("=")
        if not eq:
            break
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
        else:
            value, _, rest = rest.partition(",")
        params[key.strip().lower()] = value
        rest = rest.lstrip(", ")
    return scheme.lower(), params


@dataclass(frozen=True)
class Referred:
    """What a referrer carries: its blob's bytes, or (`data` None) why they could not be read."""

    referrer: Descriptor
    data: bytes | None
    problem: str = ""


class BlobStream(RawReader):
    """A blob as it arrives, hashed on the way: at its end, size and sha256 must match.

    Reading past the declared size, or an end with another digest, raises a
    SourceError naming the blob; `drain()` reads what a consumer left unread
    so the check always runs before a blob is trusted.
    """

    def __init__(self, response: httpx.Response, expected: Descriptor, where: str):
        super().__init__()
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_raw(CHUNK)
        self._expected = expected
        self._where = where
        self._hash = hashlib.sha256()
        self._seen = 0
        self._pending = memoryview(b"")  # the rest of the last chunk, not yet handed out
        self._done = False

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._done:
            self._next()
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]  # a view: no copy of the chunk's rest
        return n

    def _next(self) -> None:
        try:
            chunk = next(self._chunks, b"")
        except Exception as exc:  # httpx stream errors: one line naming the blob
            raise SourceError(f"{self._where}: the transfer broke off ({exc})") from None
        if not chunk:
            self._finish()
            return
        self._seen += len(chunk)
        if self._seen > self._expected.size:
            raise SourceError(f"{self._where}: more than the {self._expected.size} bytes its "
                              "descriptor declares")
        self._hash.update(chunk)
        self._pending = memoryview(chunk)

    def _finish(self) -> None:
        self._done = True
        self._response.close()
        if self._seen != self._expected.size:
            raise SourceError(f"{self._where}: {self._seen} bytes, its descriptor declares "
                              f"{self._expected.size}")
        found = "sha256:" + self._hash.hexdigest()
        if found != self._expected.digest:
            raise SourceError(f"{self._where}: digest mismatch: expected "
                              f"{self._expected.digest}, the bytes have {found}")

    def drain(self) -> None:
        """Read the rest (unkept) so the digest is checked even if the consumer stopped."""
        while not self._done:
            self._pending = memoryview(b"")
            self._next()
        self._pending = memoryview(b"")

    def close(self) -> None:
        self._response.close()
        super().close()


class Registry:
    """One registry host: anonymous, Basic or Bearer-token access over https (or plain http).

    `plain_http` is an explicit opt-in (a registry on 127.0.0.1 in a lab);
    `ca_file` adds a private CA to the system's; `auth` None means anonymous.
    Use as a context manager, or `close()`.
    """

    def __init__(self, host: str, *, plain_http: bool = False, ca_file: str | Path | None = None,
                 auth: Credentials | None = None, timeout: float = 30.0):
        import httpx

        if plain_http and ca_file is not None:
            raise UsageError("--registry-ca and --plain-http exclude each other (plain HTTP has "
                             "no TLS to check)")
        self.host = host
        self.plain_http = plain_http
        self._api_host = "registry-1.docker.io" if host in ("docker.io", "index.docker.io") \
            else host
        self._base = f"{'http' if plain_http else 'https'}://{self._api_host}"
        self._auth = auth
        self._basic = False  # the registry asked for Basic: send it up front from then on
        self._tokens: dict[str, str] = {}  # scope -> bearer token (never printed)
        self._client = httpx.Client(verify=tls_context(ca_file), timeout=httpx.Timeout(timeout),
                                    follow_redirects=False, trust_env=False,
                                    headers={"User-Agent": "auditor",
                                             "Accept-Encoding": "identity"})

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- transport -----------------------------------------------------------------------

    def _authorization(self, scope: str) -> str | None:
        token = self._tokens.get(scope)
        if token:
            return f"Bearer {token}"
        if self._basic and self._auth:
            return self._auth.basic()
        return None

    def _allowed(self, url: str, what: str) -> None:
        """Every absolute URL the registry hands us (a redirect, an upload location) is
        checked before anything is sent to it: https only, unless the registry itself was
        named plain-http (then http too)."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.plain_http):
            raise SourceError(f"{self.host}: refused {what} to {parts.scheme or '?'}://"
                              f"{parts.netloc} (only https is followed)")

    def _own(self, url: str) -> bool:
        """The registry's own host and scheme: the only place credentials and the
        challenges that ask for them are taken from."""
        parts = urlsplit(url)
        return parts.netloc == self._api_host and parts.scheme == urlsplit(self._base).scheme

    def _hop(self, method: str, url: str, headers: dict[str, str], content: bytes | None,
             scope: str, stream: bool, what: str = "a request") -> httpx.Response:
        """One request with redirects followed by hand: credentials only to the registry's
        host over the registry's scheme, never from https down to http (unless the
        registry is plain-http)."""
        import httpx

        for _ in range(MAX_REDIRECTS + 1):
            self._allowed(url, what)
            parts = urlsplit(url)
            send = dict(headers)
            if self._own(url):
                authorization = self._authorization(scope)
                if authorization:
                    send["Authorization"] = authorization
            try:
                request = self._client.build_request(method, url, headers=send, content=content)
                response = self._client.send(request, stream=stream)
            except httpx.HTTPError as exc:
                raise self._network_error(parts.netloc, exc) from None
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("location", "")
            response.close()
            url, what = urljoin(url, location), "a redirect"
            if response.status_code == 303:
                method, content = "GET", None
        raise SourceError(f"{self.host}: more than {MAX_REDIRECTS} redirects for "
                          f"{urlsplit(url).path}")

    def _network_error(self, netloc: str, exc: Exception) -> SourceError:
        tls = _tls_reason(exc)
        if tls:
            hint = " (a private CA: --registry-ca FILE)" if "not trusted" in tls else \
                " (a plain-http registry: --plain-http)"
            return SourceError(f"{netloc}: TLS: {tls}{hint}")
        return SourceError(f"{netloc}: cannot reach the registry ({type(exc).__name__}: "
                           f"{str(exc) or 'no detail'})")

    def _request(self, method: str, path: str, *, repository: str, push: bool = False,
                 headers: dict[str, str] | None = None, content: bytes | None = None,
                 stream: bool = False) -> httpx.Response:
        """A request to the registry, answering one 401 challenge (Basic or Bearer)."""
        absolute = not path.startswith("/")  # a URL the registry gave (an upload location)
        url = path if absolute else self._base + path
        what = "a location the registry gave" if absolute else "a request"
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        response = self._hop(method, url, headers or {}, content, scope, stream, what)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("www-authenticate", "")
        response.close()
        self._own_401(response, urlsplit(url).path)
        self._answer(challenge, scope, urlsplit(url).path)
        response = self._hop(method, url, headers or {}, content, scope, stream, what)
        if response.status_code == 401:
            response.close()
            self._own_401(response, urlsplit(url).path)
            raise self._unauthorized(urlsplit(url).path)
        return response

    def _own_401(self, response: httpx.Response, path: str) -> None:
        """A 401 from a host the registry redirected to is not the registry's challenge:
        answering it would let that host name a token service and receive credentials."""
        final = str(response.request.url)
        if not self._own(final):
            parts = urlsplit(final)
            raise SourceError(f"{self.host}: 401 Unauthorized from {parts.scheme}://"
                              f"{parts.netloc} (a redirect target, not the registry) for "
                              f"{path}; its challenge is not answered")

    def _unauthorized(self, path: str) -> SourceError:
        if self._auth is None:
            return SourceError(f"{self.host}: 401 Unauthorized for {path}: the registry wants "
                               "credentials (AUDITOR_REGISTRY_HOST/_USERNAME/_PASSWORD or "
                               "docker login)")
        return SourceError(f"{self.host}: 401 Unauthorized for {path}: the credentials of "
                           f"{self._auth.username!r} were rejected")

    def _answer(self, header: str, scope: str, path: str) -> None:
        """Take up a 401 challenge: Basic sends the credentials; Bearer fetches a token."""
        scheme, params = _challenge(header)
        if scheme == "basic":
            if self._auth is None or self._basic:
                raise self._unauthorized(path)
            self._basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise SourceError(f"{self.host}: 401 for {path} with an authentication scheme "
                              f"auditor does not speak ({scheme or 'none'})")
        self._tokens[scope] = self._token(params, scope, path)

    def _token(self, params: dict[str, str], scope: str, path: str) -> str:
        import httpx

        realm = params["realm"]
        parts = urlsplit(realm)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.plain_http):
            raise SourceError(f"{self.host}: refused the token service {parts.scheme}://"
                              f"{parts.netloc} (not https)")
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        if self._auth is not None and not self._token_host(parts.scheme, parts.netloc):
            raise SourceError(f"{self.host}: the token service {parts.netloc} is not on the "
                              "registry's host: credentials go there only if "
                              "AUDITOR_REGISTRY_TOKEN_HOSTS names it (e.g. auth.docker.io)")
        headers = {"Authorization": self._auth.basic()} if self._auth else {}
        try:
            with self._client.stream("GET", realm, params=query, headers=headers) as response:
                if response.status_code != 200:
                    who = f"the credentials of {self._auth.username!r}" if self._auth \
                        else "anonymous access"
                    raise SourceError(f"{self.host}: the token service {parts.netloc} answered "
                                      f"{response.status_code} for {path} ({who})")
                body = _read_capped(response, MAX_TOKEN, f"{parts.netloc} token response")
        except httpx.HTTPError as exc:
            raise self._network_error(parts.netloc, exc) from None
        doc = parse_json(body, f"{parts.netloc} token response")
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise SourceError(f"{parts.netloc} token response: no token")
        return token

    def _token_host(self, scheme: str, netloc: str) -> bool:
        """May the credentials go to this token service? Its realm is the registry's say,
        and the registry may be someone else's choice (a pod's image): only its own host,
        or a host the operator named in `AUDITOR_REGISTRY_TOKEN_HOSTS` (Docker Hub's
        auth.docker.io, a cloud registry's token endpoint)."""
        if self._own(f"{scheme}://{netloc}/"):
            return True
        named = os.environ.get("AUDITOR_REGISTRY_TOKEN_HOSTS", "")
        hosts = {h.strip().lower() for h in named.split(",") if h.strip()}
        return scheme == "https" and netloc.lower() in hosts

    def _fail(self, response: httpx.Response, path: str) -> SourceError:
        """An HTTP error as one line: status, the path, and the registry's error code."""
        try:
            body = _read_capped(response, MAX_ERROR_BODY, path, truncate=True)
        finally:
            response.close()
        code = ""
        try:
            errors = json.loads(body).get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                code = f" {str(errors[0].get('code', ''))[:40]}".rstrip()
        except (ValueError, AttributeError, RecursionError):
            pass
        return SourceError(f"{self.host}: HTTP {response.status_code}{code} for {path}")

    # -- pulling -------------------------------------------------------------------------

    def manifest(self, repository: str, digest_or_tag: str) -> tuple[Descriptor, bytes]:
        """A manifest or index and its descriptor; its sha256 is checked against what names it."""
        found = self._manifest(repository, digest_or_tag)
        if found is None:
            raise SourceError(f"{self.host}: no manifest {repository}:{digest_or_tag} "
                              "(HTTP 404)")
        return found

    def _manifest(self, repository: str, reference: str) -> tuple[Descriptor, bytes] | None:
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._request("GET", path, repository=repository, stream=True,
                                 headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            raise self._fail(response, path)
        try:
            data = _read_capped(response, MAX_MANIFEST, f"{self.host}{path}")
        finally:
            response.close()
        digest = sha256_digest(data)
        claimed = reference if DIGEST.fullmatch(reference) else \
            response.headers.get("docker-content-digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise SourceError(f"{self.host}{path}: manifest digest mismatch: expected "
                              f"{claimed}, the bytes have {digest}")
        doc = parse_json(data, f"{self.host}{path}")
        media_type = doc.get("mediaType") or response.headers.get("content-type", "")
        media_type = media_type.split(";")[0].strip() if isinstance(media_type, str) else ""
        artifact_type = doc.get("artifactType")
        return Descriptor(media_type, digest, len(data),
                          artifact_type if isinstance(artifact_type, str) else None), data

    def resolve(self, ref: Reference) -> Descriptor:
        """The manifest `ref` names: a tag becomes the digest of the bytes it points at now."""
        return self.manifest(ref.repository, ref.digest or ref.tag or "latest")[0]

    def open_blob(self, repository: str, descriptor: Descriptor) -> BlobStream:
        """A blob as a stream, verified against the descriptor's sha256 and size as it is read."""
        digest = descriptor.digest
        if not DIGEST.fullmatch(digest):
            raise SourceError(f"{self.host}: blob digest {digest[:80]!r} is not sha256:<64 hex>")
        path = f"/v2/{repository}/blobs/{digest}"
        response = self._request("GET", path, repository=repository, stream=True)
        if response.status_code != 200:
            raise self._fail(response, path)
        return BlobStream(response, descriptor, f"{self.host}/{repository} blob {digest}")

    def blob_bytes(self, repository: str, descriptor: Descriptor, limit: int) -> bytes:
        """A small blob whole (a config, an attestation), verified; more than `limit`: refused."""
        if descriptor.size > limit:
            raise SourceError(f"{self.host}/{repository} blob {descriptor.digest}: "
                              f"{descriptor.size} bytes, more than the {limit} allowed")
        with self.open_blob(repository, descriptor) as blob:
            data = blob.read()
            blob.drain()
        return data

    # -- pushing -------------------------------------------------------------------------

    def push_blob(self, repository: str, data: bytes,
                  media_type: str = "application/octet-stream") -> Descriptor:
        """Upload a blob (monolithic: POST, then PUT with its digest); skipped if present."""
        descriptor = Descriptor(media_type, sha256_digest(data), len(data))
        path = f"/v2/{repository}/blobs/{descriptor.digest}"
        head = self._request("HEAD", path, repository=repository, push=True)
        head.close()
        if head.status_code == 200:
            return descriptor
        start = f"/v2/{repository}/blobs/uploads/"
        response = self._request("POST", start, repository=repository, push=True)
        if response.status_code != 202:
            raise self._fail(response, start)
        location = response.headers.get("location", "")
        response.close()
        url = urljoin(self._base + start, location)
        joiner = "&" if urlsplit(url).query else "?"
        response = self._request("PUT", f"{url}{joiner}digest={descriptor.digest}",
                                 repository=repository, push=True, content=data,
                                 headers={"Content-Type": "application/octet-stream"})
        if response.status_code != 201:
            raise self._fail(response, urlsplit(url).path)
        response.close()
        return descriptor

    def push_manifest(self, repository: str, manifest: bytes, media_type: str,
                      tag: str | None = None) -> Descriptor:
        """Upload a manifest or index, by tag if given, else by its digest."""
        descriptor = Descriptor(media_type, sha256_digest(manifest), len(manifest))
        path = f"/v2/{repository}/manifests/{tag or descriptor.digest}"
        response = self._request("PUT", path, repository=repository, push=True, content=manifest,
                                 headers={"Content-Type": media_type})
        if response.status_code != 201:
            raise self._fail(response, path)
        response.close()
        return descriptor

    # -- referrers -----------------------------------------------------------------------

    def referrers(self, repository: str, digest: str,
                  artifact_type: str | None = None) -> list[Descriptor]:
        """The manifests whose `subject` is `digest`: the referrers API, or (404) the
        fallback tag `sha256-<hex>` that clients maintain where the API is missing."""
        if not DIGEST.fullmatch(digest):
            raise SourceError(f"{self.host}: {digest[:80]!r} is not sha256:<64 hex>")
        path = f"/v2/{repository}/referrers/{digest}"
        response = self._request("GET", path, repository=repository, stream=True,
                                 headers={"Accept": OCI_INDEX})
        if response.status_code == 200:
            try:
                data = _read_capped(response, MAX_MANIFEST, f"{self.host}{path}")
            finally:
                response.close()
            found = _index_entries(data, f"{self.host}{path}")
        elif response.status_code == 404:
            response.close()
            index = self._manifest(repository, _fallback_tag(digest))
            found = _index_entries(index[1], f"{self.host}/{repository}:"
                                   f"{_fallback_tag(digest)}") if index else []
        else:
            raise self._fail(response, path)
        return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]

    def referred_blobs(self, repository: str, digest: str, artifact_type: str,
                       media_type: str | None, cap: int,
                       limit: int | None = None) -> Iterator[Referred]:
        """The blob each referrer of `digest` (of `artifact_type`) carries: its first layer of
        `media_type` (None: its first layer), verified and at most `cap` bytes, for at most
        `limit` referrers in the registry's order.

        One referrer that cannot be read (its manifest, its layers, its blob) is one
        `Referred` saying why, so a caller decides whether that is fatal; the listing
        itself failing is a SourceError, since then nothing was looked at.
        """
        for count, referrer in enumerate(self.referrers(repository, digest, artifact_type)):
            if limit is not None and count == limit:
                return
            where = f"{self.host}/{repository} referrer {referrer.digest}"
            try:
                _, raw = self.manifest(repository, referrer.digest)
                layers = parse_json(raw, where).get("layers")
                found = (descriptor_from(layer, f"{where} layers[{i}]")
                         for i, layer in enumerate(layers if isinstance(layers, list) else []))
                chosen = next((d for d in found if media_type in (None, d.media_type)), None)
                if chosen is None:
                    raise SourceError(f"{where}: the referrer manifest has no "
                                      f"{media_type or 'layers'}{' layer' if media_type else ''}")
                yield Referred(referrer, self.blob_bytes(repository, chosen, cap))
            except SourceError as exc:
                yield Referred(referrer, None, str(exc))

    def attach(self, repository: str, subject: Descriptor, artifact_type: str, blob: bytes,
               blob_media_type: str, annotations: Mapping[str, str] | None = None) -> Descriptor:
        """Attach `blob` to `subject` as a referrer: an image manifest with `subject` and
        `artifactType`. A registry without the referrers API (no `OCI-Subject` header in
        its answer) gets the fallback tag index updated too, so `referrers` finds it."""
        empty = self.push_blob(repository, _EMPTY_JSON, OCI_EMPTY)
        layer = self.push_blob(repository, blob, blob_media_type)
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": empty.to_json(), "layers": [layer.to_json()],
            "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
        }
        if annotations:
            manifest["annotations"] = dict(annotations)
        data = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        digest = sha256_digest(data)
        path = f"/v2/{repository}/manifests/{digest}"
        response = self._request("PUT", path, repository=repository, push=True, content=data,
                                 headers={"Content-Type": OCI_MANIFEST})
        if response.status_code != 201:
            raise self._fail(response, path)
        response.close()
        pushed = Descriptor(OCI_MANIFEST, digest, len(data), artifact_type,
                            dict(annotations or {}))
        if "oci-subject" not in response.headers:
            self._add_to_fallback(repository, subject.digest, pushed)
        return pushed

    def _add_to_fallback(self, repository: str, subject: str, entry: Descriptor) -> None:
        tag = _fallback_tag(subject)
        current = self._manifest(repository, tag)
        entries = _index_entries(current[1], f"{self.host}/{repository}:{tag}") if current \
            else []
        if any(e.digest == entry.digest for e in entries):
            return
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [e.to_json() for e in [*entries, entry]]}
        self.push_manifest(repository, json.dumps(index, separators=(",", ":")).encode(),
                           OCI_INDEX, tag=tag)


def _fallback_tag(digest: str) -> str:
    """The referrers tag schema: `sha256:<hex>` -> `sha256-<hex>`."""
    return digest.replace(":", "-", 1)


def _index_entries(data: bytes, where: str) -> list[Descriptor]:
    doc = parse_json(data, where)
    manifests = doc.get("manifests", [])
    if not isinstance(manifests, list):
        raise SourceError(f"{where}: `manifests` is not a list")
    return [descriptor_from(m, where) for m in manifests]


def _read_capped(response: httpx.Response, limit: int, where: str,
                 truncate: bool = False) -> bytes:
    """A response body of at most `limit` bytes (more: refused, or cut when `truncate`)."""
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > limit:
        raise SourceError(f"{where}: {length} bytes, more than the {limit} allowed")
    body = bytearray()
    try:
        for chunk in response.iter_bytes(CHUNK):
            body += chunk
            if len(body) > limit:
                if truncate:
                    return bytes(body[:limit])
                raise SourceError(f"{where}: more than the {limit} bytes allowed")
    except SourceError:
        raise
    except Exception as exc:  # httpx stream errors
        raise SourceError(f"{where}: the transfer broke off ({exc})") from None
    return bytes(body)
