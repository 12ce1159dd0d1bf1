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

import dataclasses
import io
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.atomicio import write_atomic
from auditor.errors import LimitExceeded, SourceError, UsageError
from auditor.formats import scan_rules
from auditor.integrity.hashing import GIT_SHA1, new_hasher
from auditor.integrity.model_signature import check_model_signature
from auditor.model import Coverage, FileReport, Finding, ModelReport, ScanResult, Severity
from auditor.scan.context import ScanOptions
from auditor.scan.engine import RULES_VERSION, NoProgress, Progress, scan_stream
from auditor.scan.modelfacts import model_facts
from auditor.sources import hfcache, lineage
from auditor.sources.hubclient import HubSettings, call, client, is_commit
from auditor.sources.provenance import (
    HUB_FLAGGED,
    NOT_FETCHED,
    UNPINNED,
    Upstream,
    compare,
    kept,
)
from auditor.sources.remote import RemoteFile, Transfer

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

# The Hub's scan levels and statuses -> the severity of our corroborating finding.
HUB_LEVELS: dict[str, Severity] = {
    "unsafe": Severity.HIGH,
    "dangerous": Severity.HIGH,
    "infected": Severity.CRITICAL,
    "caution": Severity.MEDIUM,
    "suspicious": Severity.MEDIUM,
}


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


def hub_findings(record: RepoRecord) -> dict[str, list[Finding]]:
    """Corroborating findings from the Hub's own scanners and the revision's pinning, by file."""
    out: dict[str, list[Finding]] = {}
    if not is_commit(record.ref.revision):
        out.setdefault("", []).append(UNPINNED.finding(
            "", f"{record.ref.revision!r} resolved to commit {record.commit}"))
    levels: dict[str, list[str]] = {}
    repo_status = record.facts["security"]["repo"] or {}
    for issue in repo_status.get("filesWithIssues") or []:
        if isinstance(issue, dict) and isinstance(issue.get("path"), str):
            levels.setdefault(issue["path"], []).append(str(issue.get("level", "")))
    for path, status in record.security.items():
        levels.setdefault(path, []).append(str(status.get("status", "")))
        pickles = status.get("pickle_import_scan") or {}
        if isinstance(pickles, dict):
            levels[path].append(str(pickles.get("highestSafetyLevel", "")))
        av = status.get("av_scan") or {}
        if isinstance(av, dict) and av.get("virusFound"):
            levels[path].append("infected")
    for path, said in sorted(levels.items()):
        graded = [s.lower() for s in said if s.lower() in HUB_LEVELS]
        if graded:
            worst = max(graded, key=lambda s: HUB_LEVELS[s])
            out.setdefault(path, []).append(HUB_FLAGGED.finding(
                path, f"the Hub's scanners report: {', '.join(sorted(set(graded)))}",
                severity=HUB_LEVELS[worst]))
    return out


def scan_hub(
    ref: HubRef, options: ScanOptions, settings: HubSettings, progress: Progress | None = None
) -> ScanResult:
    """Scan `hf://` — from the cache when offline, never touching the network then."""
    if settings.offline:
        return hfcache.scan_cache_ref(ref.repo_id, ref.revision, settings.cache_dir, options,
                                      progress, target=str(ref))
    started = time.monotonic()
    record = fetch_record(ref, settings)
    if settings.remote_only:
        files, findings, read = scan_remote(record, options, settings)  # bytes transferred
        root = f"{settings.endpoint}/{ref.repo_id}/tree/{record.commit}"
        mode = {"mode": "remote-only", "transfer": {
            "bytes": read, "repo_bytes": record.total_size,
            "ratio": read / record.total_size if record.total_size else 0.0}}
    else:
        snapshot = download(record, settings, options.jobs)
        files, findings, read = hfcache.scan_snapshot(
            snapshot, options, progress or NoProgress(), record.files,
            f"the Hub's listing for {record.commit}", check_blob_names=False)
        root = str(snapshot)
        mode = {"mode": "download"}
    files, findings = _attach(files, findings, hub_findings(record))
    facts = model_facts(files)
    if not settings.remote_only:
        facts["signature"], sig_findings = check_model_signature(
            Path(root), files, options.signature, options.trust)  # type: ignore[arg-type]
        findings += sig_findings
    facts["hub"] = {**record.facts, **mode}
    facts["lineage"], cycles = lineage.resolve(
        ref.repo_id, record.facts["card_data"], lambda name: _lookup(name, settings),
        settings.lineage_depth)
    model = ModelReport(
        name=ref.repo_id, root=root, source="hub", files=tuple(files),
        findings=tuple(findings + cycles), facts=facts, revision=record.commit,
    )
    return ScanResult(target=str(ref), models=(model,), bytes_read=read,
                      elapsed_s=time.monotonic() - started, rules_version=RULES_VERSION)


def _attach(
    files: list[FileReport], findings: list[Finding], extra: dict[str, list[Finding]]
) -> tuple[list[FileReport], list[Finding]]:
    """Put per-file findings on their file report; the rest stay model-level."""
    by_path = {r.path: r for r in files}
    model_level = list(findings)
    for path, found in extra.items():
        if path in by_path:
            r = by_path[path]
            by_path[path] = dataclasses.replace(r, findings=(*r.findings, *found))
        else:
            model_level += found
    return [by_path[r.path] for r in files], model_level


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


def scan_remote(
    record: RepoRecord, options: ScanOptions, settings: HubSettings
) -> tuple[list[FileReport], list[Finding], int]:
    """Header-only audit: range reads and small whole files; bytes transferred are counted."""
    transfer = Transfer()
    fetcher = _fetcher(record, settings, transfer)

    def one(up: Upstream) -> FileReport:
        return _remote_file(up, fetcher(up.path), options)

    ups = sorted(kept(record.files, options.exclude).values(), key=lambda u: -(u.size or 0))
    if options.jobs > 1 and len(ups) > 1:
        with ThreadPoolExecutor(max_workers=options.jobs) as pool:
            files = list(pool.map(one, ups))
    else:
        files = [one(u) for u in ups]
    return sorted(files, key=lambda r: r.path), [], transfer.bytes


def _plan(up: Upstream) -> str:
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


def _remote_file(
    up: Upstream, fetch: Callable[[int, int], bytes], options: ScanOptions
) -> FileReport:
    size = up.size or 0
    plan = _plan(up)
    if plan == "whole":
        data = fetch(0, size) if size else b""
        digests = {name: new_hasher(name, len(data)) for name in (*options.hash_algorithms,
                                                                  GIT_SHA1)}
        for h in digests.values():
            h.update(data)
        hexes = {k: h.hexdigest() for k, h in digests.items()}
        result = scan_stream(up.path, io.BytesIO(data), len(data), options)
        report = FileReport(up.path, len(data), hexes, result.format, result.coverage,
                            tuple(result.findings), result.facts)
        match, mismatches = compare(report, up, "the Hub's listing")
        facts = {**result.facts, "upstream": up.facts(match, "local")}
        return dataclasses.replace(
            report, findings=(*report.findings, *mismatches), facts=facts,
            digests={k: v for k, v in hexes.items() if k != GIT_SHA1})
    digests = {"sha256": up.sha256} if up.sha256 else {}
    facts: dict[str, Any] = {"upstream": up.facts(None, "upstream-reported")}
    if plan == "skip":
        finding = NOT_FETCHED.finding(up.path, f"{size} bytes; its upstream digest is recorded")
        return FileReport(up.path, size, digests, "not-fetched", Coverage.UNSUPPORTED,
                          (finding,), facts)
    stream = io.BufferedReader(RemoteFile(fetch, size, RANGE_BUDGET, up.path), 1 << 16)
    try:
        result = scan_stream(up.path, stream, size, options)
    except LimitExceeded as exc:  # the budget ran out while sniffing, before any module ran
        limit = scan_rules.LIMIT.finding(up.path, str(exc), offset=exc.offset)
        return FileReport(up.path, size, digests, "unknown", Coverage.PARTIAL, (limit,), facts)
    return FileReport(up.path, size, digests, result.format, result.coverage,
                      tuple(result.findings), {**result.facts, **facts})


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
