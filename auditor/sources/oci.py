"""`oci://host/repo[:tag][@sha256:…]`: a model stored in an OCI registry, read as a stream.

The reference is resolved to the manifest's digest (a tag is recorded as what
was asked for, not pinned); an index is narrowed to its linux/amd64 manifest
(or its only one), which is said where the model was resolved. The layers are
read in order, each through `auditor.oci.client` (its sha256 and size checked
while it streams: a tampered layer stops the scan with the layer named):

- a layer that is one file (an ORAS artifact: `org.opencontainers.image.title`;
  a ModelPack layer: `org.cncf.model.filepath` on a non-tar layer) is that file;
- a tar layer, gzip-compressed or not (ModelKit `application/vnd.kitops.modelkit.
  *.v1.tar[+gzip]`, ModelPack `application/vnd.cncf.model.*.v1.tar[+gzip]`, an
  ORAS directory, an image layer) is its members, by their path in the layer;
- a modelcar (a container image: its config is an image config) is the files
  under `/models/`, reported relative to it, as KServe mounts them; the rest of
  the image (its base system) is counted, not scanned.

Tar members are read sequentially: each regular file is copied to a temporary
file, scanned by the engine like a file of a folder, and deleted before the
next member is read, so disk use is one member and memory stays flat; nothing
is extracted. Later layers apply as a container runtime applies them (a file
replaces the one below, a `.wh.` whiteout deletes it: a finding, since the
bytes shipped are not the model served); links resolve within the layers, and
a link that leaves them is a finding and is not followed.

The model's OMS signature travels with it: a `model.sig` among the files (its
bytes kept, since the file is gone once scanned) or, failing that, Sigstore
bundles attached to the manifest as referrers; the pipeline verifies them
against the digests computed as the files streamed (`StreamOutcome.signatures`).
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.errors import FormatError, LimitExceeded, SourceError, UsageError
from auditor.formats._lib.limits import Limits
from auditor.formats.archives import links as archive_links
from auditor.formats.archives import tar
from auditor.formats.archives.compressed import DecompressReader
from auditor.formats.scan_rules import LIMIT
from auditor.integrity.evidence import Claim
from auditor.integrity.model_signature import Found
from auditor.integrity.oms import DEFAULT_SIGNATURE
from auditor.model import Artifact, FileReport, Finding, FormatId, Grade, LineageEdge
from auditor.oci import reference
from auditor.oci.client import (
    INDEX_TYPES,
    Descriptor,
    connect,
    descriptor_from,
    parse_json,
)
from auditor.sources.contract import (
    Claims,
    Excluded,
    Identity,
    Lineage,
    Streamed,
    StreamOutcome,
)
from auditor.sources.local import BROKEN_LINK, SPECIAL_FILE, SYMLINK_ESCAPE, excluded_by
from auditor.sources.registry import (
    LAYER_NOT_READ,
    MODELS_NOT_FOLDER,
    UNSAFE_MEMBER,
    WHITEOUT,
    RegistrySettings,
)

TITLE = "org.opencontainers.image.title"
FILEPATH = "org.cncf.model.filepath"
ORAS_UNPACK = "io.deis.oras.content.unpack"
MODELKIT_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"
MODELPACK_CONFIG = "application/vnd.cncf.model.config.v1+json"
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json",
                 "application/vnd.docker.container.image.v1+json")
MODELCAR_ROOT = "models/"
LIMITS = Limits()
COPY_CHUNK = 1 << 20
# The Sigstore bundle media type, as cosign uses it for OCI 1.1 referrers: the referrer's
# artifactType and the media type of its layer holding the bundle JSON.
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MAX_SIGNATURE = 1 << 20  # a bundle is a few KiB; a certificate chain and timestamps fit
MAX_REFERRED = 16  # signature referrers fetched per model (more: the rest are not tried)
# Tar member types (tarfile's reading of them: an old-style file whose name ends in "/" is a
# folder; contiguous files are regular files).
_FILE_TYPES = frozenset(b"0\x007")
_DIRECTORY, _SYMLINK, _HARD_LINK = ord("5"), ord("2"), ord("1")

@dataclass(frozen=True)
class _Layout:
    kind: str  # modelkit, modelpack, modelcar, artifact
    layers: tuple[Descriptor, ...]
    manifest: str  # the image manifest's digest (an index's chosen entry, or the same)
    platform: str | None  # the platform chosen from an index


class OciModel:
    """A model in a registry, resolved to its manifest digest when opened."""

    def __init__(self, ref: reference.Reference, settings: RegistrySettings):
        self._ref = ref
        self._keep = settings.keep
        self._registry = connect(ref.registry, settings)
        try:
            self._descriptor, top = self._registry.manifest(
                ref.repository, ref.digest or ref.tag or "latest")
            self._layout = self._layout_of(self._descriptor, top)
        except BaseException:
            self._registry.close()
            raise
        chosen = ""
        if self._layout.platform:
            chosen = (f" (index entry {self._layout.platform}: manifest "
                      f"{self._layout.manifest})")
        self._identity = Identity(
            name=ref.name, kind="oci", revision=self._descriptor.digest,
            requested=ref.tag if ref.tag and not ref.digest else ref.digest,
            pinned=ref.digest is not None, resolved_in=f" in {ref.registry}{chosen}",
            revision_kind="digest",
            claims=(Claim("name", ref.name, Grade.RECORDED, "the registry reference"),
                    Claim("revision", self._descriptor.digest, Grade.MEASURED,
                          "sha256 of the manifest")))

    @property
    def identity(self) -> Identity:
        return self._identity

    def claims(self) -> Claims:
        return Claims()

    def hub_facts(self) -> dict[str, Any] | None:
        return None

    def lineage(self, declared: list[LineageEdge]) -> Lineage:
        return declared, []

    # -- the manifest --------------------------------------------------------------------

    def _layout_of(self, top: Descriptor, data: bytes) -> _Layout:
        """Which layout the manifest (an index: its linux/amd64 entry) has, and its layers."""
        repository = self._ref.repository
        where = f"{self._ref.name}@{top.digest}"
        doc = parse_json(data, where)
        platform = None
        manifest_digest = top.digest
        if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            entry, platform = _choose(doc, where)
            manifest_digest = entry.digest
            _, data = self._registry.manifest(repository, entry.digest)
            where = f"{self._ref.name}@{entry.digest}"
            doc = parse_json(data, where)
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise SourceError(f"{where}: not an image manifest (no layers)")
        config = descriptor_from(doc.get("config"), where) if "config" in doc else None
        config_type = config.media_type if config else ""
        kind = ("modelkit" if config_type == MODELKIT_CONFIG
                else "modelpack" if config_type == MODELPACK_CONFIG
                else "modelcar" if config_type in IMAGE_CONFIGS else "artifact")
        return _Layout(kind, tuple(descriptor_from(layer, where) for layer in layers),
                       manifest_digest, platform)

    # -- the files -----------------------------------------------------------------------

    def artifacts(self, exclude: tuple[str, ...]) -> Streamed:
        state = _State(exclude, _kept_in(self._keep) if self._keep else None)
        return Streamed(root=str(self._ref.with_digest(self._descriptor.digest)),
                        files=self._files(state), settle=state.settle,
                        total_bytes=sum(layer.size for layer in self._layout.layers))

    def _files(self, state: _State) -> Iterator[Artifact]:
        spool = Path(tempfile.mkdtemp(prefix="auditor-oci-"))
        try:
            for index, layer in enumerate(self._layout.layers):
                state.layer = index
                yield from self._layer(layer, state, spool)
            if state.signature is None:
                state.referred = self._referred_signatures()
        except SourceError:
            if state.keep is not None:  # what a failed layer wrote is unverified: keep nothing
                _discard_contents(state.keep)
            raise
        finally:
            shutil.rmtree(spool, ignore_errors=True)
            self._registry.close()

    def _layer(self, layer: Descriptor, state: _State, spool: Path) -> Iterator[Artifact]:
        named = layer.annotations.get(TITLE) or layer.annotations.get(FILEPATH)
        unpack = layer.annotations.get(ORAS_UNPACK) == "true"
        is_tar = ".tar" in layer.media_type or layer.media_type.endswith("rootfs.diff.tar")
        where = f"layer {layer.digest}"
        if named and not (unpack or (is_tar and self._layout.kind != "artifact")):
            path = _clean(named)
            if path is None:
                state.findings.append(UNSAFE_MEMBER.finding(named, f"{where} names it"))
                return
            yield from state.spool_file(path, self._open(layer), spool)
            return
        if not is_tar:
            path = f"blobs/{layer.digest.replace(':', '-')}"
            yield from state.spool_file(path, self._open(layer), spool)
            return
        if "zstd" in layer.media_type or "encrypted" in layer.media_type:
            state.findings.append(LAYER_NOT_READ.finding(
                "", f"{where} ({layer.media_type}, {layer.size} bytes)"))
            return
        modelcar = self._layout.kind == "modelcar"
        blob = self._registry.open_blob(self._ref.repository, layer)
        with blob:
            raw: Any = blob
            if "gzip" in layer.media_type:  # a bomb stops at the limits of any scanned stream
                raw = DecompressReader(blob, FormatId.GZIP, LIMITS,
                                       what="the gzip stream (a decompression bomb)")
            # the project's tar reader (pax and long-name records bounded), over whole reads
            cursor = tar.Cursor(io.BufferedReader(raw, COPY_CHUNK))
            try:
                members = tar.iter_members(
                    cursor, lambda name, _: state.hidden_name(name, where, modelcar))
                for count, member in enumerate(members, 1):
                    if count > LIMITS.max_members:
                        raise LimitExceeded(f"more than {LIMITS.max_members} entries")
                    yield from state.member(cursor, member, where, spool, modelcar)
            except LimitExceeded as exc:
                state.findings.append(LIMIT.finding("", f"{where}: {exc}; the rest of the "
                                                    "layer was not read"))
            except (FormatError, OSError, EOFError) as exc:
                raise SourceError(f"{self._ref.name} {where}: not a readable tar "
                                  f"({layer.media_type}): {exc}") from None
            blob.drain()  # the digest is checked over every byte, the tar padding too

    def _referred_signatures(self) -> list[Found]:
        """OMS bundles attached to the model's manifest (and, for an index, to the entry
        chosen) as referrers, in the registry's order, up to MAX_REFERRED. One that cannot
        be read stops the scan (a SourceError): a signature is never silently dropped."""
        found: list[Found] = []
        for subject in dict.fromkeys((self._descriptor.digest, self._layout.manifest)):
            for item in self._registry.referred_blobs(
                    self._ref.repository, subject, SIGSTORE_BUNDLE, SIGSTORE_BUNDLE,
                    MAX_SIGNATURE, MAX_REFERRED - len(found)):
                if item.data is None:
                    raise SourceError(item.problem)
                found.append(Found(f"referrer {item.referrer.digest}", item.data))
        return found

    def _open(self, layer: Descriptor) -> Any:
        return self._registry.open_blob(self._ref.repository, layer)


def _kept_in(folder: Path) -> Path:
    """The folder a pull is kept in: new or empty, so no file of the user's is overwritten."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            raise UsageError(f"{folder}: --pull-to needs a new or empty folder")
    except OSError as exc:
        raise UsageError(f"{folder}: cannot keep the pulled files there ({exc})") from None
    return folder


def _discard_contents(folder: Path) -> None:
    """Empty the --pull-to folder after a failed pull: it was new or empty (`_kept_in`), so
    everything in it is what this pull wrote, some of it not verified."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _choose(index: dict[str, Any], where: str) -> tuple[Descriptor, str]:
    """The manifest of an index a linux/amd64 node would run (or the only one)."""
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise SourceError(f"{where}: an index with no manifests")
    described = [descriptor_from(e, where) for e in entries]

    def platform(d: Descriptor) -> str:
        p = d.platform or {}
        return f"{p.get('os', '?')}/{p.get('architecture', '?')}"

    for d in described:
        if platform(d) == "linux/amd64":
            return d, "linux/amd64"
    if len(described) == 1:
        return described[0], platform(described[0])
    raise SourceError(f"{where}: an index of {len(described)} manifests and none for "
                      f"linux/amd64 ({', '.join(platform(d) for d in described)}); name one "
                      "by its digest")


def _clean(name: str, rooted: bool = False) -> str | None:
    """A member or annotation path relative to the layer root; None if it leaves the layer
    (`..`, a backslash, or absolute where the layer is not an image's filesystem: `rooted`,
    a modelcar, whose `/` is the container's root)."""
    if name.startswith("/"):
        if not rooted:
            return None
        name = name.lstrip("/")
    if "\\" in name:
        return None
    parts = archive_links.parts(name)
    return "/".join(parts) if parts and ".." not in parts else None


def _under(path: str, folder: str, opaque: bool) -> bool:
    """Whether a whiteout of `folder` (opaque: its contents only) removes `path`."""
    if opaque:
        return folder == "" or path.startswith(folder + "/")
    return path == folder or path.startswith(folder + "/")


def _modelcar_whiteout(kind: str, full: str) -> tuple[str, str] | None:
    """A modelcar whiteout of `full` (a path from the image root) in the terms of the model
    under /models/: deleting /models, or a folder above it, or an opaque whiteout of it or
    above, removes every lower file of the model (an opaque "" folder); one under /models/
    keeps its relative path; one elsewhere does not touch the model (None)."""
    root = MODELCAR_ROOT.rstrip("/")
    above = MODELCAR_ROOT.startswith(full + "/") if full else kind == "opaque"
    if full == root or above:
        return ("opaque", "")
    if full.startswith(MODELCAR_ROOT):
        return (kind, full[len(MODELCAR_ROOT):])
    return None


def _from_folder(path: str, target: str) -> str:
    """A link's target (a path from the model root) as read from the link's own folder."""
    return "../" * path.count("/") + target


class _State:
    """What the stream has shown so far: events in order, replayed by `settle`."""

    def __init__(self, exclude: tuple[str, ...], keep: Path | None = None):
        self.exclude = exclude
        self.keep = keep
        self.layer = 0
        self.findings: list[Finding] = []
        self.excluded: list[Excluded] = []
        self.signature: bytes | None = None  # the last `model.sig` streamed, kept to verify
        self.referred: list[Found] = []
        # ("file", path, layer) | ("delete", path, layer) | ("opaque", folder, layer) |
        # ("link", path, target)
        self.events: list[tuple[str, str, Any]] = []

    def _kept(self, path: str) -> bool:
        pattern = excluded_by(path, self.exclude)
        if pattern is not None:
            self.excluded.append(Excluded(path, pattern))
        return pattern is None

    def spool_file(self, path: str, blob: Any, spool: Path) -> Iterator[Artifact]:
        """A layer that is one file: copied to the spool as it streams (verified at its end)."""
        with blob:
            if not self._kept(path):
                blob.drain()
                return
            target = self._target(path, spool)
            with target.open("wb") as out:
                shutil.copyfileobj(blob, out, COPY_CHUNK)
            blob.drain()
        yield from self._yield(path, target)

    def hidden_name(self, name: str, where: str, modelcar: bool) -> None:
        """A header's ustar name that its pax or GNU name overrides: a runtime that ignores
        those names unpacks the member there, so one leaving the layer is a finding too."""
        if _clean(name, rooted=modelcar) is None:
            self.findings.append(UNSAFE_MEMBER.finding(name[:200], f"in {where} (the name "
                                                       "under its pax or GNU long name)"))

    def member(self, cursor: tar.Cursor, member: tar.Member, where: str, spool: Path,
               modelcar: bool) -> Iterator[Artifact]:
        path = _clean(member.name, rooted=modelcar)
        if path is None:
            self.findings.append(UNSAFE_MEMBER.finding(member.name[:200], f"in {where}"))
            return
        folder, base = posixpath.split(path)
        if base.startswith(".wh."):  # on the full path: a whiteout of /models or above counts
            kind = "opaque" if base == ".wh..wh..opq" else "delete"
            gone = folder if kind == "opaque" else posixpath.join(folder, base[4:])
            event = _modelcar_whiteout(kind, gone) if modelcar else (kind, gone)
            if event is not None:
                self.events.append((*event, self.layer))
            return
        is_dir = member.type == _DIRECTORY or (member.type == 0 and member.name.endswith("/"))
        if modelcar:
            if path + "/" == MODELCAR_ROOT and not is_dir:
                self._models_not_folder(member, where)
                return
            if not (path + "/").startswith(MODELCAR_ROOT) or path + "/" == MODELCAR_ROOT:
                return
            path = path[len(MODELCAR_ROOT):]
        if is_dir:
            return
        if member.type in (_SYMLINK, _HARD_LINK):
            self._link(path, member, where, modelcar)
            return
        if member.type not in _FILE_TYPES:
            self.findings.append(SPECIAL_FILE.finding(path, f"in {where} (tar type "
                                                      f"{chr(member.type)!r})"))
            return
        if not self._kept(path):
            return
        target = self._target(path, spool)
        with tar.Window(cursor, member.size) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
        yield from self._yield(path, target)

    def _models_not_folder(self, member: tar.Member, where: str) -> None:
        """/models as a link or a file: KServe serves what it resolves to, which the files
        under models/ (all that is read) are not; the served model is unknown, a finding
        that fails the gate rather than a scan of the wrong files that passes it."""
        kind = "symlink" if member.type == _SYMLINK else \
            "hard link" if member.type == _HARD_LINK else \
            "regular file" if member.type in _FILE_TYPES else f"tar type {chr(member.type)!r}"
        target = f" to {member.linkname[:200]!r}" if member.type in (_SYMLINK, _HARD_LINK) \
            else ""
        self.findings.append(MODELS_NOT_FOLDER.finding(
            "", f"/models in {where} is a {kind}{target}; the files KServe serves were "
            "not scanned"))

    def _link(self, path: str, member: tar.Member, where: str, modelcar: bool) -> None:
        """A symlink resolves from its folder, a hard link from the layer root; either must
        stay inside the layers (an absolute symlink is the host's, except in a modelcar
        image, whose root is the container's; a modelcar's target must be under /models/)."""
        name = member.linkname
        target: str | None
        if member.type == _SYMLINK:
            if name.startswith("/"):
                target = _clean(name, rooted=True) if modelcar else None
            else:
                full = _clean(member.name, rooted=modelcar) or ""
                joined = posixpath.normpath(posixpath.join(posixpath.dirname(full), name))
                target = None if joined == ".." or joined.startswith("../") else _clean(joined)
        else:
            target = _clean(name, rooted=modelcar)
        if target is not None and modelcar:
            target = target[len(MODELCAR_ROOT):] if target.startswith(MODELCAR_ROOT) else None
        if target is None:
            kind = "symlink" if member.type == _SYMLINK else "hard link"
            self.findings.append(SYMLINK_ESCAPE.finding(
                path, f"in {where}: {kind} to {name[:200]!r}, outside the model; not followed"))
            return
        self.events.append(("link", path, target))

    def _target(self, path: str, spool: Path) -> Path:
        """Where a file's bytes go while it is scanned: the spool (one file at a time), or
        its path under the folder the pull is kept in (paths are clean: no `..`, relative)."""
        if self.keep is None:
            return spool / "current"
        target = self.keep.joinpath(*path.split("/"))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.is_dir():
                raise FileExistsError(f"{path} is a folder of another entry")
        except OSError as exc:
            raise SourceError(f"{self.keep}: cannot keep {path} ({exc})") from None
        return target

    def _yield(self, path: str, spooled: Path) -> Iterator[Artifact]:
        self.events.append(("file", path, self.layer))
        if path == DEFAULT_SIGNATURE:
            with spooled.open("rb") as sig:
                self.signature = sig.read(MAX_SIGNATURE)
        try:
            yield Artifact(relpath=path, path=spooled, size=spooled.stat().st_size)
        finally:
            if self.keep is None:
                spooled.unlink(missing_ok=True)

    def settle(self, reports: list[FileReport]) -> StreamOutcome:
        """Replay the layers: later files replace earlier, whiteouts delete, links resolve."""
        pending = iter(reports)
        files: dict[str, tuple[FileReport, int]] = {}
        links: dict[str, str] = {}
        for kind, path, extra in self.events:
            if kind == "file":
                files[path] = (next(pending), extra)
                links.pop(path, None)
            elif kind == "link":
                links[path] = extra
                files.pop(path, None)
            else:
                gone = [p for p, (_, layer) in files.items()
                        if layer < extra and _under(p, path, kind == "opaque")]
                for p in gone:
                    del files[p]
                    if self.keep is not None:  # the kept folder is what the runtime mounts
                        self.keep.joinpath(*p.split("/")).unlink(missing_ok=True)
                    self.findings.append(WHITEOUT.finding(p, f"deleted by layer {extra + 1}"))
        out = {p: report for p, (report, _) in files.items()}
        # Each link resolved component by component, as the runtime's file system does: a
        # link to a folder leads on, a chain that climbs out (or loops) is not followed.
        table = {archive_links.parts(p): _from_folder(p, t) for p, t in links.items()}
        steps = [0]  # shared by every link, as in an archive
        for path, target in links.items():
            walk = archive_links.Walk(table, steps)
            landed = walk.resolve((), path)
            if landed is None and walk.hops <= archive_links.MAX_HOPS \
                    and steps[0] <= archive_links.MAX_STEPS:
                self.findings.append(SYMLINK_ESCAPE.finding(
                    path, f"its target {target}, followed through the other links, leaves the "
                    "model; not followed"))
            elif landed is None:
                self.findings.append(BROKEN_LINK.finding(path, f"its target {target} loops "
                                                         "or does not end; not followed"))
            elif "/".join(landed) in out:
                out[path] = dataclasses.replace(out["/".join(landed)], path=path)
            else:
                self.findings.append(BROKEN_LINK.finding(path, f"its target {target} is in no "
                                                         "layer"))
        in_files = [] if self.signature is None or DEFAULT_SIGNATURE not in files else [
            Found(DEFAULT_SIGNATURE, self.signature)]  # whited out or a link: not the model's
        return StreamOutcome(sorted(out.values(), key=lambda r: r.path), self.findings,
                             tuple(self.excluded), (*in_files, *self.referred))


def open_oci(target: str, revision: str | None, settings: RegistrySettings) -> tuple[str, OciModel]:
    """The target as reported and its source; `--revision` may give a tag or digest."""
    ref = reference.parse(target)
    if revision:
        if revision.startswith("sha256:"):
            ref = ref.with_digest(revision) if ref.digest in (None, revision) else ref
        elif ref.tag in (None, "latest") and not ref.digest:
            ref = dataclasses.replace(ref, tag=revision)
        if revision not in (ref.tag, ref.digest):
            raise UsageError(f"{target}: revision {revision!r} contradicts the "
                                       "reference")
    return str(ref), OciModel(ref, settings)

