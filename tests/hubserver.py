"""A Hugging Face Hub of our own on 127.0.0.1: the five requests huggingface_hub 2.x makes.

Serves repos described by `HubRepo`/`HubFile` (built by fixtures, never
downloaded): model info, tree listings, HEAD/GET on `resolve/` with byte
ranges, and the Hub's error codes. It can lie in the ways a compromised
mirror would (same-size tampered bytes, listings that disagree), drop
connections, and counts the content bytes it sends so tests can assert how
little a remote-only audit transferred.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def _import_client_online() -> None:
    """Import huggingface_hub now, at collection, with the network allowed.

    The client reads HF_HUB_OFFLINE once, at import; conftest turns it on for
    every test, so a first import inside a test would leave the client offline
    for the whole session.
    """
    saved = os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    try:
        import huggingface_hub  # noqa: F401
    finally:
        if saved is not None:
            os.environ["HF_HUB_OFFLINE"] = saved


_import_client_online()

LFS_EXTENSIONS = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".pkl")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    spec = "https://git-lfs.github.com/spec/v1"
    return f"version {spec}\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class HubFile:
    """One file of a commit.

    `data` is the published content. Huge files give `size` and `chunk(start,
    end)` instead (generated on the fly) plus a declared `sha256`. `serve`
    replaces what is actually sent (a lying server), keeping the claimed digests.
    """

    path: str
    data: bytes = b""
    lfs: bool | None = None
    size: int | None = None
    chunk: Callable[[int, int], bytes] | None = None
    sha256: str | None = None
    serve: bytes | None = None
    security: dict[str, Any] | None = None  # securityFileStatus

    def __post_init__(self) -> None:
        if self.size is None:
            self.size = len(self.data)
        if self.lfs is None:
            self.lfs = self.path.endswith(LFS_EXTENSIONS)
        if self.sha256 is None:
            self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def blob_id(self) -> str:
        if self.lfs:
            return git_blob_id(lfs_pointer(self.sha256, self.size))
        return git_blob_id(self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end) as served."""
        if self.serve is not None:
            return self.serve[start:end]
        if self.chunk is not None:
            return self.chunk(start, end)
        return self.data[start:end]

    def tree_entry(self, expand: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size,
                                 "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size,
                            "pointerSize": len(lfs_pointer(self.sha256, self.size))}
        if expand and self.security is not None:
            entry["securityFileStatus"] = self.security
        return entry

    def sibling(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.path, "size": self.size, "blobId": self.blob_id}
        if self.lfs:
            entry["lfs"] = {"sha256": self.sha256, "size": self.size,
                            "pointerSize": len(lfs_pointer(self.sha256, self.size))}
        return entry


@dataclass
class HubRepo:
    repo_id: str
    commits: dict[str, list[HubFile]]
    refs: dict[str, str] = field(default_factory=dict)
    author: str | None = None
    gated: bool | str = False
    private: bool = False
    card_data: dict[str, Any] | None = None
    security_repo_status: dict[str, Any] | None = None
    tree_hide: set[str] = field(default_factory=set)  # listed in model info, absent from the tree
    tree_extra: list[HubFile] = field(default_factory=list)  # in the tree only

    def commit_for(self, rev: str) -> str | None:
        if rev in self.commits:
            return rev
        return self.refs.get(rev)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are part of the tests


class HubServer:
    """Start with `with HubServer(repos) as hub:`; `hub.url` is the endpoint."""

    def __init__(self, repos: list[HubRepo], tokens: tuple[str, ...] = ()) -> None:
        self.repos = {r.repo_id: r for r in repos}
        self.tokens = set(tokens)
        self.lock = threading.Lock()
        self.content_bytes = 0  # file bytes sent by GET resolve/
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, authorization
        self.drop: dict[str, int] = {}  # path prefix -> connections still to drop
        # path prefix -> (status, body) answered instead of the real one (a broken Hub)
        self.answer: dict[str, tuple[int, bytes]] = {}
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def take_drop(self, path: str) -> bool:
        with self.lock:
            for prefix, left in self.drop.items():
                if path.startswith(prefix) and left > 0:
                    self.drop[prefix] = left - 1
                    return True
        return False


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            raw_path = self.path.partition("?")[0]
            auth = self.headers.get("Authorization")
            with hub.lock:
                hub.requests.append((self.command, self.path, auth))
            if hub.take_drop(unquote(raw_path)):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            broken = next((a for p, a in hub.answer.items() if unquote(raw_path).startswith(p)),
                          None)
            if broken is not None:
                self._raw(*broken, head)
                return
            parts = raw_path.split("/")
            params = parse_qs(urlsplit(self.path).query)
            if parts[1:3] == ["api", "models"]:
                self._api(parts[3:], params)
            elif len(parts) >= 6 and parts[3] == "resolve":
                self._resolve(f"{parts[1]}/{parts[2]}", unquote(parts[4]),
                              unquote("/".join(parts[5:])), head)
            else:
                self._error(404, "EntryNotFound", "no such route")

        def _authorised(self, repo: HubRepo) -> bool:
            auth = self.headers.get("Authorization", "")
            return auth.startswith("Bearer ") and auth[7:] in hub.tokens

        def _repo(self, repo_id: str) -> HubRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.private and not self._authorised(repo)):
                self._error(404 if repo is None else 401, "RepoNotFound",
                            "Repository not found")
                return None
            return repo

        def _api(self, parts: list[str], params: dict[str, list[str]]) -> None:
            if len(parts) < 2:
                self._error(404, "RepoNotFound", "Repository not found")
                return
            repo = self._repo(f"{parts[0]}/{parts[1]}")
            if repo is None:
                return
            rest = parts[2:]
            rev = unquote(rest[1]) if len(rest) >= 2 else "main"
            commit = repo.commit_for(rev)
            if commit is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return
            files = repo.commits[commit]
            if rest and rest[0] == "tree":
                prefix = unquote("/".join(rest[2:]))
                self._json(_tree(repo, files, prefix, params))
                return
            info: dict[str, Any] = {
                "id": repo.repo_id, "author": repo.author or repo.repo_id.split("/")[0],
                "sha": commit, "private": repo.private, "gated": repo.gated,
                "createdAt": "2025-01-01T00:00:00.000Z", "lastModified": "2025-01-02T00:00:00.000Z",
                "siblings": [f.sibling() if params.get("blobs") == ["true"]
                             else {"rfilename": f.path} for f in files],
            }
            if repo.card_data is not None:
                info["cardData"] = repo.card_data
            if params.get("securityStatus") == ["true"] and repo.security_repo_status is not None:
                info["securityRepoStatus"] = repo.security_repo_status
            self._json(info)

        def _resolve(self, repo_id: str, rev: str, path: str, head: bool) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return
            if (repo.gated or repo.private) and not self._authorised(repo):
                self._error(401, "GatedRepo", "Access to this gated repo is restricted")
                return
            commit = repo.commit_for(rev)
            if commit is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return
            hub_file = next((f for f in repo.commits[commit] + repo.tree_extra
                             if f.path == path), None)
            if hub_file is None:
                self._error(404, "EntryNotFound", f"{path} does not exist")
                return
            size = hub_file.size
            start, end, status = 0, size, 200
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and not head:
                first, _, last = rng[6:].partition("-")
                start = int(first) if first else max(size - int(last), 0)
                end = min(int(last) + 1, size) if first and last else size
                status = 206
            self.send_response(status)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{hub_file.etag}"')
            if hub_file.lfs:
                self.send_header("X-Linked-Etag", f'"{hub_file.sha256}"')
                self.send_header("X-Linked-Size", str(size))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.send_header("Content-Length", str(end - start))
            self.end_headers()
            if head:
                return
            pos = start
            while pos < end:
                piece = hub_file.read(pos, min(pos + (1 << 20), end))
                with hub.lock:  # counted before sending: the client may finish before we return
                    hub.content_bytes += len(piece)
                self.wfile.write(piece)
                pos += len(piece)

        def _json(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _raw(self, status: int, body: bytes, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _tree(
    repo: HubRepo, files: list[HubFile], prefix: str, params: dict[str, list[str]]
) -> list[dict[str, Any]]:
    recursive = params.get("recursive") == ["true"]
    expand = params.get("expand") == ["true"]
    listed = [f for f in files if f.path not in repo.tree_hide] + repo.tree_extra
    base = f"{prefix}/" if prefix else ""
    out: list[dict[str, Any]] = []
    dirs: set[str] = set()
    for f in sorted(listed, key=lambda f: f.path):
        if not f.path.startswith(base):
            continue
        rest = f.path[len(base):]
        folders = rest.split("/")[:-1]
        for i in range(len(folders) if recursive else min(len(folders), 1)):
            dirs.add(base + "/".join(folders[: i + 1]))
        if recursive or not folders:
            out.append(f.tree_entry(expand))
    out += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(dirs)]
    return out
