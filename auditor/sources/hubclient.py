"""Talking to a Hugging Face Hub: settings, the client, retries, and its errors in our words.

Every setting is resolved here, at call time, and passed explicitly to every
`huggingface_hub` call (`endpoint=`, `token=`, `cache_dir=`), so the order in
which modules were imported never changes where auditor connects. The token
is held only in `HubSettings` (never in its repr) and scrubbed from every
message we produce.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from auditor.errors import AuditorError, SourceError, UsageError

DEFAULT_ENDPOINT = "https://huggingface.co"
T = TypeVar("T")


@dataclass(frozen=True)
class HubSettings:
    """Where and how to reach the Hub; built by the CLI from flags, environment and config."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)
    cache_dir: Path = Path("~/.cache/huggingface/hub")
    offline: bool = False
    remote_only: bool = False
    lineage_depth: int = 3
    retries: int = 3  # extra attempts after a network failure
    backoff_s: float = 0.5  # first wait; doubles each attempt


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def default_cache_dir() -> Path:
    """The standard cache (`HF_HUB_CACHE`, `HF_HOME/hub`, or XDG), read now, not at import."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hub_settings(
    *,
    endpoint: str | None = None,
    config_endpoint: str | None = None,
    token: str | None = None,
    cache_dir: Path | None = None,
    offline: bool = False,
    remote_only: bool = False,
) -> HubSettings:
    """Flags first, then the standard environment variables, then the config file."""
    env = os.environ
    chosen = endpoint or env.get("HF_ENDPOINT") or config_endpoint or DEFAULT_ENDPOINT
    return HubSettings(
        endpoint=chosen.rstrip("/"),
        token=token or env.get("HF_TOKEN") or None,
        cache_dir=(cache_dir or default_cache_dir()).expanduser(),
        offline=offline or _truthy(env.get("HF_HUB_OFFLINE")),
        remote_only=remote_only,
    )


def client() -> ModuleType:
    """`huggingface_hub`, imported with its telemetry switched off (auditor never phones home)."""
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # read by the client when first imported
    import huggingface_hub
    from huggingface_hub.utils import logging as hub_logging

    # Its retry warnings would print one line per attempt around our one-line error.
    hub_logging.set_verbosity_error()
    return huggingface_hub


def scrub(text: str, settings: HubSettings) -> str:
    """One line, with the token (if any) removed."""
    line = " ".join(str(text).split())
    if settings.token:
        line = line.replace(settings.token, "***")
    return line


def call(settings: HubSettings, what: str, fn: Callable[[], T]) -> T:
    """Run one client operation: retry network failures with backoff, translate errors.

    `what` names the operation and the repo for the one-line message
    (e.g. "org/name@main: model info").
    """
    for attempt in range(settings.retries + 1):
        try:
            return fn()
        except AuditorError:
            raise
        except Exception as exc:
            if not transient(exc) or attempt == settings.retries:
                raise translate(exc, settings, what) from None
            time.sleep(settings.backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def transient(exc: BaseException) -> bool:
    """Network down, connection dropped, timeouts, and the Hub's 5xx/429 answers."""
    import httpx2

    errors = client().errors
    if isinstance(exc, errors.OfflineModeIsEnabled) or _retried_by_client(exc):
        return False
    if isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, errors.LocalEntryNotFoundError) and isinstance(
        exc.__cause__, httpx2.TransportError
    ):
        return True
    status = _status(exc)
    return status is not None and (status >= 500 or status == 429)


def _response(exc: BaseException) -> object | None:
    """The HTTP answer behind an error, however deep the client wrapped it (a download's
    LocalEntryNotFoundError carries the failed request's error as its cause)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain of wrappers, never a cycle we follow for long
        if seen is None:
            return None
        if getattr(seen, "response", None) is not None:
            return seen.response  # type: ignore[attr-defined]
        seen = seen.__cause__ or seen.__context__
    return None


def _status(exc: BaseException) -> int | None:
    return getattr(_response(exc), "status_code", None)


def _retried_by_client(exc: BaseException) -> bool:
    """huggingface_hub retries a file's metadata request (HEAD) itself, with backoff, on 429,
    5xx and network errors: retrying the whole download on top multiplied the waiting
    (4 x 6 requests, about 90 s) and the noise for one broken file."""
    request = getattr(_response(exc), "request", None)
    return getattr(request, "method", "") == "HEAD"


def translate(exc: BaseException, settings: HubSettings, what: str) -> AuditorError:
    """A client exception as one of ours: one line, exit 2 for what the user can fix, else 3."""
    import httpx2

    errors = client().errors
    where = f"{settings.endpoint}: {what}"
    access = "pass a token with --token or HF_TOKEN"
    if isinstance(exc, errors.GatedRepoError):
        repo = what.split("@", 1)[0].split(":", 1)[0]
        msg = (f"{where}: gated repository: request access at {settings.endpoint}/{repo} "
               f"and {access}" if not settings.token else
               f"{where}: gated repository: the token has no access yet; request it at "
               f"{settings.endpoint}/{repo}")
        return UsageError(scrub(msg, settings))
    if isinstance(exc, errors.RepositoryNotFoundError):
        hint = "or the token has no access to it" if settings.token else f"if private, {access}"
        return UsageError(scrub(f"{where}: repository not found ({hint})", settings))
    if isinstance(exc, errors.RevisionNotFoundError):
        return UsageError(scrub(f"{where}: revision not found", settings))
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return SourceError(scrub(f"{where}: file not found on the Hub", settings))
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return UsageError(scrub(f"{where}: offline mode is on (HF_HUB_OFFLINE)", settings))
    status = _status(exc)
    if status in (401, 403):
        return UsageError(scrub(f"{where}: unauthorised (HTTP {status}): {access} "
                                "with access to this repository", settings))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SourceError(scrub(f"{where}: disk full writing to {settings.cache_dir}", settings))
    if status is not None:  # the Hub was reached: a protocol fault, not the network
        after = (f" (after {settings.retries + 1} attempts)"
                 if status >= 500 or status == 429 else "")
        return SourceError(scrub(f"{where}: the Hub answered HTTP {status}{after}", settings))
    if isinstance(exc, json.JSONDecodeError):
        return SourceError(scrub(f"{where}: the Hub's answer is not JSON ({exc.msg} at "
                                 f"character {exc.pos}); check {settings.endpoint}", settings))
    if transient(exc) or isinstance(exc, httpx2.HTTPError | errors.LocalEntryNotFoundError):
        return SourceError(scrub(f"{where}: cannot reach the Hub after {settings.retries + 1} "
                                 f"attempts ({type(exc).__name__}); check the network and "
                                 f"{settings.endpoint}", settings))
    if isinstance(exc, OSError):
        return SourceError(scrub(f"{where}: {exc.strerror or exc}", settings))
    return SourceError(scrub(f"{where}: {type(exc).__name__}: {exc}", settings))
