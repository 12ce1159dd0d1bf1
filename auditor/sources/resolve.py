"""Target strings to sources: a local path, `hf://org/name[@rev]`, `hf-cache://org/name[@rev]`,
`oci://host/repo[:tag][@sha256:…]`.

The one place that knows the target syntax, so `scan` and `gate` accept the
same targets. A local folder that is a Hugging Face cache (a cache root, a
`models--org--name` folder or one of its snapshots) is verified as a cache; a
plain folder of model folders is several models (`auditor.sources.tree`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.errors import UsageError
from auditor.sources import hfcache, tree
from auditor.sources.contract import Source
from auditor.sources.hubclient import HubSettings
from auditor.sources.local import LocalFolder
from auditor.sources.registry import SCHEME as OCI_SCHEME
from auditor.sources.registry import RegistrySettings

if TYPE_CHECKING:
    from auditor.sources.hub import HubRef

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
    from auditor.sources.hub import HubRef  # the Hub client's side: only for Hub targets

    return HubRef(repo, rev or revision or "main")


def is_local(target: str) -> bool:
    """Whether a target string names a local file or folder (it has no `hf://`-like scheme)."""
    return not target.startswith((HUB_SCHEME, CACHE_SCHEME, OCI_SCHEME))


def model_folder(folder: Path, name: str) -> Source:
    """A model folder of a mirror: a cache snapshot is verified as one, pinned to its commit;
    any other folder is a local model known as `name`, possibly with no files left."""
    if hfcache.cache_kind(folder) == "snapshot":
        return hfcache.CacheSnapshot(folder.parent.parent, folder.name)
    return LocalFolder(folder, name=name, allow_empty=True, named_by="mirror tree")


def open_target(
    target: str | Path, revision: str | None, settings: HubSettings, jobs: int,
    name: str | None = None, registry: RegistrySettings | None = None,
) -> tuple[str, list[Source]]:
    """The target as reported, and the source of each model it names (a cache root or a
    folder of model folders: many).

    A `Path` is always a local file or folder; a string may name a Hub or cache
    repository. `hf://` in offline mode is read from the cache, never the network.
    `name` is what the operator says a local folder holds (`--name`); a Hub or
    cache target names itself. `registry`: how `oci://` registries are reached.
    """
    if name is not None and not _REPO_ID.fullmatch(name):
        raise UsageError(f"--name {name!r}: expected ORG/NAME or NAME")
    if name is not None and not is_local(str(target)):
        raise UsageError(f"{target}: --name applies to a local folder; a Hub or cache target "
                         "is named by its repository")
    if isinstance(target, str) and target.startswith(HUB_SCHEME):
        ref = parse_ref(target, HUB_SCHEME, revision)
        if settings.offline:
            return str(ref), [hfcache.snapshot_of(ref.repo_id, ref.revision, settings.cache_dir)]
        from auditor.sources.hub import open_hub

        return str(ref), [open_hub(ref, settings, jobs)]
    if isinstance(target, str) and target.startswith(OCI_SCHEME):
        from auditor.sources.oci import open_oci  # the registry client, tar and TLS: only here

        label, model = open_oci(target, revision, registry or RegistrySettings())
        return label, [model]
    if isinstance(target, str) and target.startswith(CACHE_SCHEME):
        ref = parse_ref(target, CACHE_SCHEME, revision)
        return target, [hfcache.snapshot_of(ref.repo_id, ref.revision, settings.cache_dir)]
    path = Path(target)
    if hfcache.cache_kind(path) is not None:
        if name is not None:
            raise UsageError(f"{path}: --name applies to a plain folder; a Hugging Face cache "
                             "is named by its models--org--name folders")
        return str(path), list(hfcache.snapshots_at(path))
    models = tree.scanned_models(path)
    if not models:
        return str(path), [LocalFolder(path, revision, name=name)]
    if (revision or name) and len(models) > 1:
        flag = "--revision" if revision else "--name"
        raise UsageError(f"{path}: holds {len(models)} models; one {flag} cannot name them "
                         f"all (scan each model folder with its own {flag})")
    return str(path), [LocalFolder(m.path, revision, name=m.name, named_by="folder tree")
                       for m in models]
