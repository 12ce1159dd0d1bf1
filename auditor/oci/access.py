"""How a registry is reached, as settings: kept apart from the client so the sources, the
attestation code and the webhook can carry them without loading HTTP, TLS or the client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RegistryAccess:
    """How a registry is reached: plain http (an explicit opt-in, a lab registry) or https
    with `ca_file` trusted besides the system's CAs, and how long one request may take.
    Credentials are not a setting: `connect` finds them for each host, so a host chosen by
    someone else (a pod's image) never receives another's."""

    plain_http: bool = False
    ca_file: Path | None = None
    timeout: float = 30.0
