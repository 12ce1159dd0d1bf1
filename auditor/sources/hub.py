"""`hf://org/name[@rev]`: the Hub as a source, pinned to a commit and checked against it.

1. The requested revision (branch, tag, `refs/pr/N` or commit) is resolved to
   its commit with `model_info(files_metadata=True)`, which also gives every
   file's size, git blob id and LFS sha256 — the publisher's record for that
   commit — plus card data, author, gated/private flags and the Hub's scan
   status (per file from `list_repo_tree(expand=True)`).
2. `--download` (default): the commit (never the branch) is downloaded into the
   cache and scanned from disk; every file is hashed once (sha256 and git
   blob id in the scan's read pass) and compared with the Hub's record, and the
   set of files with the listing.
3. `--remote-only`: nothing bulky is downloaded. Weight files are parsed in
   place through HTTP range requests (`RemoteFile`), small text-like files are
   fetched whole and verified, everything else is listed as not inspected.
   Digests of range-read files are the Hub's, marked upstream-reported.

The Hub's own scan verdicts can add findings; they never remove one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.atomicio import write_atomic
from auditor.errors import SourceError, UsageError
from auditor.integrity.evidence import Claim
from auditor.integrity.provenance import Record, Upstream
from auditor.model import Grade, LineageEdge, is_commit
from auditor.sources import hfcache, lineage
from auditor.sources.contract import (
    Artifacts,
    Claims,
    Identity,
    Lineage,
    OnDisk,
    Plan,
    Remote,
    RemoteArtifact,
    identity_from,
)
from auditor.sources.hubclient import HubSettings, call, client
from auditor.sources.local import kept, list_files
from auditor.sources.remote import Transfer
from auditor.version import __version__

# Remote-only: which files are read in place, fetched whole, or left alone (data, not branches).
RANGE_READ = frozenset({
    ".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt",  # headers, PyTorch pickle members
    ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".onnx", ".keras", ".h5", ".hdf5",
    ".msgpack", ".tflite",  # read as far as their parser needs, within RANGE_BUDGET
})
WHOLE = frozenset({
    ".json", ".md", ".txt", ".jinja", ".py", ".yaml", ".yml", ".model", ".tiktoken", ".cfg",
    ".toml", ".gitattributes", ".j2",
})
WHOLE_MAX = 32 * 1024 * 1024  # large tokenizer.json files reach tens of MB
ANY_SMALL = 64 * 1024  # anything this small costs less than one read-ahead
RANGE_BUDGET = 64 * 1024 * 1024  # per file: a module wanting more gets a limit finding

@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: str = "main"

    def __str__(self) -> str:
        return f"hf://{self.repo_id}@{self.revision}"


@dataclass(frozen=True)
class RepoRecord:
    """What the Hub records for one commit of a repo."""

    ref: HubRef
    commit: str
    files: dict[str, Upstream]
    facts: dict[str, Any]
    security: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> scan status

    @property
    def total_size(self) -> int:
        return sum(u.size or 0 for u in self.files.values())


def fetch_record(ref: HubRef, settings: HubSettings) -> RepoRecord:
    """Resolve the revision to its commit and read the publisher's record of that commit."""
    api = client().HfApi(endpoint=settings.endpoint, token=settings.token,
                         library_name="auditor", library_version=__version__)
    where = f"{ref.repo_id}@{ref.revision}"
    info = call(settings, f"{where}: model info", lambda: api.model_info(
        ref.repo_id, revision=ref.revision, files_metadata=True, securityStatus=True))
    commit = info.sha
    if not commit or not is_commit(commit):
        raise SourceError(f"{settings.endpoint}: {where}: the Hub gave no commit for the revision")
    files = {
        s.rfilename: Upstream(s.rfilename, s.size, s.blob_id, s.lfs.sha256 if s.lfs else None)
        for s in info.siblings or []
    }
    tree = call(settings, f"{ref.repo_id}@{commit}: file scan status", lambda: list(
        api.list_repo_tree(ref.repo_id, recursive=True, expand=True, revision=commit)))
    security = {
        node.path: {"status": node.security.status, "av_scan": node.security.av_scan,
                    "pickle_import_scan": node.security.pickle_import_scan}
        for node in tree if getattr(node, "security", None) is not None
    }
    card = info.card_data.to_dict() if info.card_data is not None else None
    facts = {
        "author": info.author, "gated": info.gated, "private": info.private, "sha": commit,
        "requested_revision": ref.revision, "pinned": is_commit(ref.revision),
        "card_data": card, "security": {"repo": info.security_repo_status, "files": security},
        "endpoint": settings.endpoint,
    }
    return RepoRecord(ref, commit, files, facts, security)


class HubRepo:
    """`hf://` as a source: the Hub's record of one commit, its files downloaded or read in place.

    The record is fetched when the source is opened; `artifacts` downloads the
    commit into the cache, or (remote-only) plans range reads and counts the
    bytes they transfer.
    """

    def __init__(self, record: RepoRecord, settings: HubSettings, jobs: int) -> None:
        self.record = record
        self.settings = settings
        self.jobs = jobs
        self._transfer: Transfer | None = None  # set once remote-only artifacts are handed out

    @property
    def identity(self) -> Identity:
        ref = self.record.ref
        said = "the Hub (model info)"
        claims = (Claim("name", ref.repo_id, Grade.HUB_VERIFIED, said),
                  Claim("revision", self.record.commit, Grade.HUB_VERIFIED, said))
        return identity_from(claims, "hub", ref.repo_id, requested=ref.revision,
                             pinned=is_commit(ref.revision))

    @property
    def _listing(self) -> Record:
        return Record(self.record.files, f"the Hub's listing for {self.record.commit}",
                      Grade.HUB_VERIFIED)

    def claims(self) -> Claims:
        record = self.record
        return Claims(listing=self._listing, scanner_repo=record.facts["security"]["repo"],
                      scanner_files=record.security)

    def artifacts(self, exclude: tuple[str, ...]) -> Artifacts:
        record, settings = self.record, self.settings
        if not settings.remote_only:
            snapshot = download(record, settings, self.jobs)
            return OnDisk(root=str(snapshot), listing=list_files(snapshot, exclude),
                          signed_at=snapshot)
        transfer = Transfer()
        fetcher = _fetcher(record, settings, transfer)
        files = tuple(
            RemoteArtifact(up.path, up.size or 0, _plan(up), up, fetcher(up.path), RANGE_BUDGET)
            for up in kept(record.files, exclude).values())
        self._transfer = transfer
        return Remote(root=f"{settings.endpoint}/{record.ref.repo_id}/tree/{record.commit}",
                      files=files, listing=self._listing, transfer=transfer)

    def hub_facts(self) -> dict[str, Any]:
        mode: dict[str, Any] = {"mode": "download"}
        if self.settings.remote_only:  # bytes counted while the artifacts were read
            sent, total = self._transfer.bytes if self._transfer else 0, self.record.total_size
            mode = {"mode": "remote-only", "transfer": {
                "bytes": sent, "repo_bytes": total, "ratio": sent / total if total else 0.0}}
        return {**self.record.facts, **mode}

    def lineage(self, declared: list[LineageEdge]) -> Lineage:
        """The declared bases confirmed against the card data the Hub records for the commit,
        then followed through the Hub."""
        settings, record = self.settings, self.record
        return lineage.resolve(record.ref.repo_id, record.commit, declared,
                               record.facts["card_data"], lambda name: _lookup(name, settings),
                               settings.lineage_depth)


def open_hub(ref: HubRef, settings: HubSettings, jobs: int) -> HubRepo:
    """The Hub source for `ref`, its revision resolved to a commit (one metadata request)."""
    return HubRepo(fetch_record(ref, settings), settings, jobs)


def _lookup(name: str, settings: HubSettings) -> lineage.BaseInfo | None:
    """A base model's publisher, commit and card; None when it cannot be looked up."""
    api = client().HfApi(endpoint=settings.endpoint, token=settings.token,
                         library_name="auditor", library_version=__version__)
    try:
        info = call(settings, f"{name}: model info (lineage)", lambda: api.model_info(name))
    except (UsageError, SourceError):
        return None
    card = info.card_data.to_dict() if info.card_data is not None else {}
    return lineage.BaseInfo(info.author, info.sha, card)


class _Quiet:
    """A tqdm stand-in: the client's progress bars would garble our output."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.n = 0
        self.total = kwargs.get("total")

    def update(self, n: float = 1) -> None:
        self.n += n

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def download(record: RepoRecord, settings: HubSettings, jobs: int) -> Path:
    """Download the commit into the cache; the client writes blobs via temp files + rename."""
    hf = client()
    repo = record.ref.repo_id
    folder = hfcache.repo_folder(settings.cache_dir, repo)
    snapshot = folder / "snapshots" / record.commit
    need = sum(u.size or 0 for p, u in record.files.items() if not (snapshot / p).exists())
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(settings.cache_dir).free
    if need > free:
        raise SourceError(f"{settings.cache_dir}: disk full: {repo}@{record.commit} needs "
                          f"{need} bytes, {free} free")
    path = call(settings, f"{repo}@{record.commit}: download", lambda: hf.snapshot_download(
        repo, revision=record.commit, cache_dir=str(settings.cache_dir),
        endpoint=settings.endpoint, token=settings.token, max_workers=max(1, jobs),
        tqdm_class=_Quiet, library_name="auditor", library_version=__version__))
    if not is_commit(record.ref.revision):  # so that --offline finds hf://…@branch later
        ref = folder / "refs" / record.ref.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(ref, record.commit)
    return Path(path)


def _plan(up: Upstream) -> Plan:
    size = up.size or 0
    ext = "." + up.path.rsplit(".", 1)[-1].lower() if "." in up.path else ""
    if size <= ANY_SMALL:
        return "whole"
    if ext in RANGE_READ:
        return "range"
    if (ext in WHOLE or up.path.rsplit("/", 1)[-1].lower().startswith("readme")) and \
            size <= WHOLE_MAX:
        return "whole"
    return "skip"


def _fetcher(
    record: RepoRecord, settings: HubSettings, transfer: Transfer
) -> Callable[[str], Callable[[int, int], bytes]]:
    """Per file: a `fetch(start, end)` doing one Range request with the token, counted."""
    hf = client()
    headers = hf.utils.build_hf_headers(token=settings.token, library_name="auditor",
                                        library_version=__version__)
    repo = record.ref.repo_id

    def for_path(path: str) -> Callable[[int, int], bytes]:
        url = hf.hf_hub_url(repo, path, revision=record.commit, endpoint=settings.endpoint)

        def once(start: int, end: int) -> bytes:
            wanted = {**headers, "Range": f"bytes={start}-{end - 1}"}
            with hf.get_session().stream("GET", url, headers=wanted, timeout=60) as response:
                if response.status_code >= 400:
                    response.read()
                    hf.utils.hf_raise_for_status(response)
                skip = start if response.status_code == 200 else 0  # server ignored the range
                out = bytearray()
                received = 0
                for piece in response.iter_bytes():
                    received += len(piece)
                    lo = max(0, skip - (received - len(piece)))
                    out += piece[lo:]
                    if len(out) >= end - start:
                        break
                transfer.add(received)
            return bytes(out[: end - start])

        def fetch(start: int, end: int) -> bytes:
            return call(settings, f"{repo}@{record.commit}: {path} bytes {start}-{end - 1}",
                        lambda: once(start, end))

        return fetch

    return for_path
