"""Target strings to sources: a local path, `hf://org/name[@rev]`, `hf-cache://org/name[@rev]`.

The one place that knows the target syntax, so `scan` and `gate` accept the
same targets. A local folder that is a Hugging Face cache (a cache root, a
`models--org--name` folder or one of its snapshots) is verified as a cache.
"""

from __future__ import annotations

import re
from pathlib import Path

from auditor.errors import UsageError
from auditor.model import ScanResult
from auditor.scan.context import ScanOptions
from auditor.scan.engine import Progress, scan_local
from auditor.sources import hfcache
from auditor.sources.hub import HubRef, scan_hub
from auditor.sources.hubclient import HubSettings

HUB_SCHEME = "hf://"
CACHE_SCHEME = "hf-cache://"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def parse_ref(target: str, scheme: str, revision: str | None) -> HubRef:
    """`org/name[@rev]` after the scheme; `--revision` may give the rev, not contradict it."""
    repo, _, rev = target[len(scheme):].partition("@")
    if not _REPO_ID.fullmatch(repo) or ".." in repo:
        raise UsageError(f"{target}: expected {scheme}ORG/NAME[@REVISION]")
    if rev and revision and rev != revision:
        raise UsageError(f"{target}: revision {rev!r} contradicts --revision {revision!r}")
    return HubRef(repo, rev or revision or "main")


def scan_target(
    target: str, options: ScanOptions, settings: HubSettings, progress: Progress | None = None
) -> ScanResult:
    if target.startswith(HUB_SCHEME):
        return scan_hub(parse_ref(target, HUB_SCHEME, options.revision), options, settings,
                        progress)
    if target.startswith(CACHE_SCHEME):
        ref = parse_ref(target, CACHE_SCHEME, options.revision)
        return hfcache.scan_cache_ref(ref.repo_id, ref.revision, settings.cache_dir, options,
                                      progress, target=target)
    path = Path(target)
    if hfcache.cache_kind(path) is not None:
        return hfcache.scan_cache_path(path, options, progress)
    return scan_local(path, options, progress)
