"""Where per-file scans run: local threads, or Dask workers sharing the mirror's filesystem.

Workers only read model files and return reports as JSON-ready dicts; the
coordinator alone touches the state database. A Dask cluster runs whatever
its clients submit, so it must be one you control: auditor sends it only
`scan_path` calls (file paths and scan options), never artifact bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from auditor.errors import SourceError, UsageError
from auditor.mirror import codec
from auditor.mirror.state import StatKey, stat_key
from auditor.model import Artifact
from auditor.scanning.engine import NoProgress, scan_file
from auditor.scanning.options import ScanOptions

DASK_SCHEME = "dask://"


@dataclass(frozen=True)
class Scanned:
    """One file scanned by a worker: its report, bytes read, and the stat it was read under."""

    report: dict[str, Any]
    bytes_read: int
    stat: StatKey | None  # None when the file changed while it was read: not cached


def scan_path(entry: Artifact, options: ScanOptions) -> Scanned:
    """Scan one file (runs on a worker). The stat is trusted only if reading did not change it."""
    try:
        before: StatKey | None = stat_key(entry.path)
    except OSError:
        before = None
    report, read = scan_file(entry, options, NoProgress())
    try:
        after: StatKey | None = stat_key(entry.path)
    except OSError:
        after = None
    return Scanned(codec.file_to_json(report), read, before if before == after else None)


class Future(Protocol):
    def result(self) -> Any: ...


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future: ...


class _Threads:
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._pool.submit(fn, *args)


class _Dask:
    def __init__(self, client: Any) -> None:
        self._client = client

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._client.submit(fn, *args, pure=False)


@contextlib.contextmanager
def open_executor(spec: str | None, jobs: int) -> Iterator[Executor]:
    """`None`: `jobs` local threads; `dask://HOST:PORT`: the Dask scheduler there."""
    if spec is None:
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            yield _Threads(pool)
        finally:  # on an error or Ctrl-C, drop the scans not started
            pool.shutdown(wait=False, cancel_futures=True)
        return
    if not spec.startswith(DASK_SCHEME) or not spec[len(DASK_SCHEME):]:
        raise UsageError(f"--executor {spec!r}: expected dask://HOST:PORT")
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--executor dask://… needs Dask: pip install "
                         "'model-auditor[dask]'") from None
    address = "tcp://" + spec[len(DASK_SCHEME):]
    try:
        client = Client(address, timeout="5s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SourceError(f"{spec}: cannot reach the Dask scheduler: {exc}") from None
    try:
        yield _Dask(client)
    finally:
        client.close()
