"""OCI references: `oci://host[:port]/repo/path[:tag][@sha256:<hex>]`, and container images.

A reference names where a model is and, when pinned, exactly which bytes: the
digest is the sha256 of the manifest, so a tag (mutable) is only a pointer to
be resolved and recorded. The grammar is the OCI distribution spec's: lower
case repository components, tags of at most 128 characters, sha256 digests
(the one algorithm the client verifies). Bad text is a usage error naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from auditor.errors import UsageError

SCHEME = "oci://"
DOCKER_HUB = "docker.io"

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*"
                   r"|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Reference:
    """A registry, a repository in it, and a tag and/or a manifest digest."""

    registry: str  # host[:port], as written (docker.io for Docker Hub)
    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """Whether the reference names the bytes (a digest), not a movable tag."""
        return self.digest is not None

    @property
    def name(self) -> str:
        """`host/repo`: the model's name in reports and SBOMs (no tag, no digest)."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        """The same reference pinned to `digest` (the tag is kept as what was asked for)."""
        if not DIGEST.fullmatch(digest):
            raise UsageError(f"{digest!r}: expected sha256:<64 lower-case hex digits>")
        return replace(self, digest=digest)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{SCHEME}{self.name}{tag}{digest}"


def _split(text: str, body: str, default_registry: str | None) -> Reference:
    """`body` is `[host/]repo[:tag][@digest]`; `default_registry` None: the host is required."""
    rest, at, digest = body.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise UsageError(f"{text}: the digest must be sha256:<64 lower-case hex digits>")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise UsageError(f"{text}: {tag!r} is not a valid tag")
    first, _, path = rest.partition("/")
    is_host = bool(path) and ("." in first or ":" in first or first == "localhost"
                              or first.startswith("["))
    if is_host:
        registry, repository = first, path
    elif default_registry is None:
        raise UsageError(f"{text}: expected {SCHEME}HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]")
    else:
        registry, repository = default_registry, rest
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
    if not _HOST.fullmatch(registry):
        raise UsageError(f"{text}: {registry!r} is not a registry host")
    if not _REPOSITORY.fullmatch(repository):
        raise UsageError(f"{text}: {repository!r} is not a repository name (lower-case "
                         "components separated by '/')")
    return Reference(registry, repository, tag, digest or None)


def parse(text: str) -> Reference:
    """`oci://host[:port]/repo/path[:tag][@sha256:<hex>]` (the scheme may be left out).

    The host is required: a model reference never silently means Docker Hub.
    Neither tag nor digest means the tag `latest`, as every OCI client reads it.
    """
    body = text[len(SCHEME):] if text.startswith(SCHEME) else text
    ref = _split(text, body, None)
    return ref if ref.tag or ref.digest else replace(ref, tag="latest")


def parse_image(text: str) -> Reference:
    """A container image as a pod names it: `nginx`, `org/app:1`, `host:5000/a/b@sha256:…`.

    Docker's defaults apply: no host means `docker.io`, a one-component name
    there is under `library/`, and no tag or digest means `latest`.
    """
    body = text[len(SCHEME):] if text.startswith(SCHEME) else text
    ref = _split(text, body, DOCKER_HUB)
    return ref if ref.tag or ref.digest else replace(ref, tag="latest")
