"""The webhook's HTTPS server: POST /validate (AdmissionReview v1), GET /healthz.

The standard library's threading HTTP server behind a TLS context made from the
certificate and key files the Deployment mounts (TLS 1.2 at least; the
handshake runs in the request's thread, so a slow client holds only its own).

Load is bounded three ways. At most `max_connections` connections are served at
once; further ones wait, unaccepted, in the listen backlog until a slot frees
(the API server is waiting for its answer anyway, and a slot freed within its
timeout still answers it, where an immediate 503 would be a failed call that
`failurePolicy: Fail` turns into a rejected object). A connection gets
`read_deadline` seconds in all for its TLS handshake, and then for each
request's headers and body (idle keep-alive time included): a client
trickling bytes is cut at the deadline, not kept alive by each byte. And each
review has a time budget (`--timeout`, below the API server's 10 s default):
model decisions still running when it is spent are errors; when every decision
worker is held by such overdue decisions (a registry hanging), new decisions
are errors at once rather than queued behind them. Those errors, and a registry
or store that cannot be reached, deny unless the operator chose
`--failure-policy allow`; any other exception is an internal error and denies
whatever the policy. Every answer is one JSON line in the audit log.
"""

from __future__ import annotations

import io
import json
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from auditor.admission.decide import Decider, Decision, failed
from auditor.admission.refs import Named
from auditor.admission.review import MAX_BODY, Answer, refused, review
from auditor.errors import UsageError
from auditor.rawio import RawReader

DEFAULT_TIMEOUT = 8.0  # seconds: under the API server's default webhook timeout of 10 s
IDLE_TIMEOUT = 15  # seconds a socket write may block (a client that stops reading its answer)


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
    max_connections: int = 128  # served at once; more wait in the listen backlog
    read_deadline: float = 10.0  # seconds for a handshake, or for one request's headers and body


@dataclass
class Webhook:
    """The decisions and the audit log behind the HTTP handler; shared by its threads."""

    decider: Decider
    config: ServerConfig
    log: IO[str]
    _pool: ThreadPoolExecutor = field(init=False)
    _log_lock: threading.Lock = field(default_factory=threading.Lock)
    # Decisions still running after their review's budget was spent, each holding a worker.
    _overdue: set[Future[Decision]] = field(default_factory=set)
    _overdue_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="decide")

    def answer(self, body: bytes) -> Answer:
        started = time.monotonic()
        deadline = started + self.config.timeout

        def decide_all(named: Sequence[Named]) -> list[Decision]:
            with self._overdue_lock:
                busy = len(self._overdue)
            if busy >= self.config.workers:  # queued, they would only wait out the budget
                return [Decision(n.ref, False, "error", f"{n.ref}: error: all {busy} decision "
                                 "workers are busy with decisions past their time budget "
                                 "(a registry slow or down?)") for n in named]
            futures = [self._pool.submit(self.decider.decide, n, None, deadline) for n in named]
            wait(futures, timeout=max(0.0, deadline - time.monotonic()))
            return [self._settled(n, f) for n, f in zip(named, futures, strict=True)]

        try:
            answer = review(body, decide_all, self.config.failure_policy)
        except Exception as exc:  # a bug of ours: deny and say so, never crash the server
            answer = refused(" ".join(f"internal error: {type(exc).__name__}: {exc}".split()),
                             status=500)
        self.audit({**answer.audit,
                    "elapsed_ms": round((time.monotonic() - started) * 1000, 1)})
        return answer

    def _settled(self, named: Named, future: Future[Decision]) -> Decision:
        """A finished decision, or the error that stopped it: no model is admitted by
        silence. One still running past the budget is counted until it ends."""
        if not future.done():
            if not future.cancel():
                with self._overdue_lock:
                    self._overdue.add(future)
                future.add_done_callback(self._finished)
            return Decision(named.ref, False, "timeout",
                            f"{named.ref}: error: no verdict within the time budget")
        exc = future.exception()
        return future.result() if exc is None else failed(named.ref, exc)

    def _finished(self, future: Future[Decision]) -> None:
        with self._overdue_lock:
            self._overdue.discard(future)

    def audit(self, line: dict[str, Any]) -> None:
        with self._log_lock:
            self.log.write(json.dumps(line, sort_keys=True) + "\n")
            self.log.flush()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _DeadlineReader(RawReader):
    """The connection's reads, each bounded by what is left of the handler's deadline: the
    deadline holds for a whole request however the client spaces its bytes."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler

    def readinto(self, buffer: Any) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not received within the read deadline")
        self.handler.connection.settimeout(left)
        return self.handler.connection.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    deadline = 0.0  # time.monotonic() by which the request being read must be in

    def setup(self) -> None:
        super().setup()
        limit = self.server.webhook.config.read_deadline
        self.connection.settimeout(limit)  # the SSL handshake keeps one deadline for all reads
        self.connection.do_handshake()  # here, in this connection's thread
        self.connection.settimeout(self.timeout)
        self.rfile.close()
        self.rfile = io.BufferedReader(_DeadlineReader(self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.server.webhook.config.read_deadline
        super().handle_one_request()

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
        if len(body) < size:  # the client closed early
            self.close_connection = True
            return
        self.connection.settimeout(self.timeout)  # writing the answer: not the read deadline
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
    request_queue_size = 512  # connections waiting for a slot wait here, in the kernel
    webhook: Webhook
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection once a slot is free. Waiting here leaves newer connections
        in the listen backlog; one kept waiting past the read deadline has been given up
        by the API server already, and is closed."""
        if not self.slots.acquire(timeout=self.webhook.config.read_deadline):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

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
    server.slots = threading.BoundedSemaphore(config.max_connections)
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
