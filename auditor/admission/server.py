"""The webhook's HTTPS server: POST /validate (AdmissionReview v1), GET /healthz.

The standard library's threading HTTP server behind a TLS context made from the
certificate and key files the Deployment mounts (TLS 1.2 at least; the
handshake runs in the request's thread, so a slow client holds only its own).
Each review has a time budget (`--timeout`, below the API server's 10 s
default): model decisions still running when it is spent are errors, and
errors deny unless the operator chose `--failure-policy allow`. Every answer
is one JSON line in the audit log.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from auditor.admission.decide import Decider, Decision
from auditor.admission.refs import Named
from auditor.admission.review import MAX_BODY, Answer, refused, review
from auditor.errors import AuditorError, UsageError

DEFAULT_TIMEOUT = 8.0  # seconds: under the API server's default webhook timeout of 10 s


@dataclass(frozen=True)
class ServerConfig:
    cert: Path
    key: Path
    host: str = "0.0.0.0"
    port: int = 8443
    timeout: float = DEFAULT_TIMEOUT
    failure_policy: str = "fail"
    audit_log: Path | None = None
    workers: int = 32


@dataclass
class Webhook:
    """The decisions and the audit log behind the HTTP handler; shared by its threads."""

    decider: Decider
    config: ServerConfig
    log: IO[str]
    _pool: ThreadPoolExecutor = field(init=False)
    _log_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="decide")

    def answer(self, body: bytes) -> Answer:
        started = time.monotonic()
        deadline = started + self.config.timeout

        def decide_all(named: Sequence[Named]) -> list[Decision]:
            futures = [self._pool.submit(self.decider.decide, n) for n in named]
            wait(futures, timeout=max(0.0, deadline - time.monotonic()))
            return [_settled(n, f) for n, f in zip(named, futures, strict=True)]

        try:
            answer = review(body, decide_all, self.config.failure_policy)
        except Exception as exc:  # a bug of ours: deny and say so, never crash the server
            answer = refused(f"internal error: {type(exc).__name__}: {exc}", status=500)
        self.audit({**answer.audit,
                    "elapsed_ms": round((time.monotonic() - started) * 1000, 1)})
        return answer

    def audit(self, line: dict[str, Any]) -> None:
        with self._log_lock:
            self.log.write(json.dumps(line, sort_keys=True) + "\n")
            self.log.flush()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _settled(named: Named, future: Any) -> Decision:
    """A finished decision, or the error that stopped it: no model is admitted by silence."""
    if not future.done():
        future.cancel()
        return Decision(named.ref, False, "timeout",
                        f"{named.ref}: error: no verdict within the time budget")
    exc = future.exception()
    if exc is None:
        return future.result()
    kind = "" if isinstance(exc, AuditorError) else f"{type(exc).__name__}: "
    return Decision(named.ref, False, "error", f"{named.ref}: error: {kind}{exc}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 15  # seconds a connection may sit idle or trickle bytes

    def setup(self) -> None:
        super().setup()
        self.connection.do_handshake()  # here, in this connection's thread, under its timeout

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/validate":
            self._send(404, b"not found\n", "text/plain")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(refused("request without a Content-Length", status=411))
            return
        size = int(length)
        if size > MAX_BODY:  # refused unread; the connection is closed after the answer
            self.close_connection = True
            self._reply(refused(f"AdmissionReview of {size} bytes is over the {MAX_BODY}-byte "
                                "limit", status=413))
            return
        body = self.rfile.read(size)
        self._reply(self.server.webhook.answer(body))

    def _reply(self, answer: Answer) -> None:
        self._send(answer.status, json.dumps(answer.body).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the audit log holds one line per decision."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    webhook: Webhook

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops, or fails the TLS handshake, ends its own connection only."""


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-cert {cert} / --tls-key {key}: cannot load: {exc}") from None
    return context


def make_server(config: ServerConfig, decider: Decider, log: IO[str] | None = None) -> _Server:
    """A bound, TLS-wrapped server (port 0 picks a free port: `server.server_address`)."""
    context = tls_context(config.cert, config.key)
    if config.failure_policy not in ("fail", "allow"):
        raise UsageError(f"--failure-policy {config.failure_policy}: expected fail or allow")
    if log is None:
        log = (sys.stderr if config.audit_log is None
               else config.audit_log.open("a", encoding="utf-8"))
    try:
        server = _Server((config.host, config.port), _Handler)
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: "
                         f"{exc.strerror or exc}") from None
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    server.webhook = Webhook(decider, config, log)
    return server


def serve(config: ServerConfig, decider: Decider) -> None:
    """Answer reviews until interrupted."""
    server = make_server(config, decider)
    host, port = server.server_address[:2]
    print(f"auditor admission: listening on https://{host}:{port}/validate", file=sys.stderr)
    try:
        server.serve_forever()
    finally:
        server.webhook.close()
        server.server_close()
