"""The one composition: target → source → artifacts → scan → verifiers → ModelReport → SBOM →
policy → reporter.

Every command (scan, gate, policy check, mirror scan) and the Python API
(`auditor.scan`, `auditor.gate`) go through these functions, so the order of
the stages, and what each stage is given, is written down once:

1. the target names one source per model (`auditor.sources`), which says who
   the model is and what upstream claims, and hands over its artifacts;
2. the engine reads each artifact once (`auditor.scanning`), hashing as it parses;
3. the verifiers (`auditor.integrity`) hold the scanned files against the
   claims (upstream digests, blob names, the Hub's scanners) and the OMS
   signature;
4. the `ModelReport` is built here, and only here;
5. the SBOM is written from the report, and policy judges the SBOM, never the
   report;
6. a reporter from `auditor.report` renders the result or the verdict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.integrity import evidence, provenance
from auditor.integrity.hashing import GIT_SHA1
from auditor.integrity.model_signature import Found, check_found_signature, check_model_signature
from auditor.integrity.provenance import Record, Upstream
from auditor.model import (
    Artifact,
    Coverage,
    FileReport,
    Finding,
    FormatId,
    Grade,
    LineageEdge,
    ModelReport,
    ScanResult,
    Severity,
)
from auditor.scanning import crossfile, engine
from auditor.scanning.declared import declared_lineage
from auditor.scanning.modelfacts import model_facts
from auditor.scanning.options import ScanOptions
from auditor.sources.contract import (
    Claims,
    Excluded,
    Identity,
    OnDisk,
    Remote,
    RemoteArtifact,
    Source,
    Streamed,
)
from auditor.sources.hubclient import HubSettings, hub_settings
from auditor.sources.local import excluded, kept
from auditor.sources.registry import RegistrySettings
from auditor.sources.resolve import open_target

if TYPE_CHECKING:
    from auditor.fingerprint.measure import Reference
    from auditor.integrity.signing import Trust
    from auditor.policy.engine import PolicySet
    from auditor.policy.verdict import Verdict

Document = tuple[str, dict[str, Any]]  # (label shown in verdicts, CycloneDX JSON)
MAX_EXCLUDED_LISTED = 1000  # excluded files named in the report; the count covers them all


# --- scan: source → artifacts → engine → verifiers → ModelReport --------------------------------


def scan(
    target: str | os.PathLike[str],
    options: ScanOptions | None = None,
    hub: HubSettings | None = None,
    progress: engine.Progress | None = None,
    registry: RegistrySettings | None = None,
) -> ScanResult:
    """Scan a model: a local file or folder, a Hugging Face cache, or `hf://org/name[@rev]`.

    A path-like target is always local; a string may use the `hf://`,
    `hf-cache://` and `oci://` schemes. `hub` defaults to the standard Hugging Face
    environment variables (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HUB_OFFLINE);
    `registry` says how an `oci://` registry is reached (TLS, plain http).
    """
    options = options or ScanOptions()
    hub = hub or hub_settings()
    progress = progress or engine.NoProgress()
    started = time.monotonic()
    label, sources = open_target(
        target if isinstance(target, str) else Path(target), options.revision, hub, options.jobs,
        options.name, registry)
    references = load_references(options)
    models: list[ModelReport] = []
    total = 0
    for source in sources:
        model, read = scan_source(source, options, progress, references)
        models.append(model)
        total += read
    return ScanResult(target=label, models=tuple(models), bytes_read=total,
                      elapsed_s=time.monotonic() - started, rules_version=engine.RULES_VERSION)


def scan_source(
    source: Source, options: ScanOptions, progress: engine.Progress,
    references: Sequence[Reference] = (),
) -> tuple[ModelReport, int]:
    """One model: its artifacts read once each, verified, assembled; and the bytes read."""
    artifacts = source.artifacts(options.exclude)
    if isinstance(artifacts, Remote):
        files = crossfile.link(_read_remote(artifacts, options))
        left_out = excluded(artifacts.listing.files, options.exclude)
        model = _assemble(source, files, [], artifacts.root, None, options, references=references,
                          left_out=left_out)
        return model, artifacts.transfer.bytes
    if isinstance(artifacts, Streamed):
        return _read_streamed(source, artifacts, options, progress, references)
    entries = artifacts.listing.entries
    reading = hashing(options, entries, source.claims())
    files, read = engine.scan_entries(entries, reading, progress)  # one pass per file
    return model_from_files(source, artifacts, files, options, references=references), read


def load_references(options: ScanOptions) -> list[Reference]:
    """The reference store the options name (`--fingerprints`), read once per run."""
    if options.fingerprints is None:
        return []
    from auditor.fingerprint import store

    return store.load(options.fingerprints)


def hashing(options: ScanOptions, entries: Sequence[Artifact], claims: Claims) -> ScanOptions:
    """The options a model's files are read with: wherever a claim names a file by its git
    blob id (a cache blob name, a tree or Hub listing), that id is hashed in the same pass.

    `ScanOptions.algorithms_for(relpath)` then says which digests one file gets.
    """
    return dataclasses.replace(options, git_blob_paths=frozenset(
        e.relpath for e in entries
        if provenance.needs_blob_id(e.relpath, claims.listing, claims.records)))


def model_from_files(
    source: Source, artifacts: OnDisk, files: list[FileReport], options: ScanOptions,
    also: Sequence[Finding] = (), references: Sequence[Reference] = (),
) -> ModelReport:
    """A model report from its scanned files on disk (the mirror scans them its own way).

    The cross-file checks run here, once every file of the model is in, so the
    one-off scan and the mirror's incremental one see the same model. `also`:
    model-level findings the caller made about these files (the mirror's drift
    between runs), listed after the model's own.
    """
    files = crossfile.link(files, artifacts.listing.context, options)
    claims = source.claims()
    listing = claims.listing
    left_out = list(artifacts.listing.excluded)
    if listing is not None:  # the files the user excluded are neither scanned nor missing
        left_out += excluded(listing.files, options.exclude)  # upstream's, if not downloaded
        listing = dataclasses.replace(listing, files=kept(listing.files, options.exclude))
    files, missing = provenance.verify_snapshot(files, listing, claims.records,
                                                claims.every_file_recorded)
    findings = [*artifacts.listing.findings, *missing]
    return _assemble(source, files, findings, artifacts.root, artifacts.signed_at, options, also,
                     references, left_out)


def _read_remote(remote: Remote, options: ScanOptions) -> list[FileReport]:
    """Remote-only: each file read whole, parsed in place or only listed, biggest first."""

    def one(artifact: RemoteArtifact) -> FileReport:
        expected = artifact.expected
        if artifact.plan == "whole":
            report = engine.scan_bytes(artifact.path, artifact.read_all(), options, (GIT_SHA1,))
            return provenance.verify_fetched(report, expected, remote.listing)
        if artifact.plan == "skip":
            return _not_fetched(expected, remote.listing)
        report = engine.scan_reader(artifact.path, artifact.open(), artifact.size, options)
        return provenance.upstream_reported(report, expected, remote.listing.grade)

    order = sorted(remote.files, key=lambda a: -a.size)
    if options.jobs > 1 and len(order) > 1:
        with ThreadPoolExecutor(max_workers=options.jobs) as pool:
            files = list(pool.map(one, order))
    else:
        files = [one(a) for a in order]
    return sorted(files, key=lambda r: r.path)


def _read_streamed(
    source: Source, streamed: Streamed, options: ScanOptions, progress: engine.Progress,
    references: Sequence[Reference],
) -> tuple[ModelReport, int]:
    """Files that exist one at a time (OCI layer members): each read in one pass while it is
    on disk, then the source settles what the layers add up to (replaced, deleted, linked)."""
    reports: list[FileReport] = []
    read = 0
    progress.start(streamed.total_bytes, 0)
    try:
        with contextlib.closing(streamed.files) as stream:
            for entry in stream:
                report, n = engine.scan_file(entry, options, progress)
                reports.append(report)
                read += n
    finally:
        progress.finish()
    outcome = streamed.settle(reports)
    files = crossfile.link(outcome.files, (), options)
    model = _assemble(source, files, list(outcome.findings), streamed.root, None, options,
                      references=references, left_out=outcome.excluded,
                      streamed_signatures=outcome.signatures)
    return model, read


def _not_fetched(up: Upstream, listing: Record) -> FileReport:
    """A file a remote-only audit did not read: listed with upstream's claimed digest (a claim,
    not a digest of ours), not inspected."""
    size = up.size or 0
    finding = provenance.NOT_FETCHED.finding(
        up.path, f"{size} bytes; its upstream digest is recorded as a claim")
    return FileReport(up.path, size, {}, FormatId.NOT_FETCHED, Coverage.UNSUPPORTED, (finding,),
                      {"upstream": up.facts(None, "upstream-reported", listing.grade)})


def _assemble(
    source: Source, files: list[FileReport], findings: list[Finding], root: str,
    signed_at: Path | None, options: ScanOptions, also: Sequence[Finding] = (),
    references: Sequence[Reference] = (), left_out: Sequence[Excluded] = (),
    streamed_signatures: Sequence[Found] | None = None,
) -> ModelReport:
    """The one place a `ModelReport` is built: pinning, Hub scanners, signature, lineage
    (declared, resolved where the source can, and measured from the bytes).

    `signed_at` is where the OMS signature is looked for; None when the files
    were not read from disk (a remote-only audit has no signature to check).
    `streamed_signatures`: for files that existed one at a time (an OCI model), the bundles
    the source found with them, checked against the digests computed as they streamed.
    `left_out`: the files the exclude patterns left out, on disk or upstream.
    """
    identity, claims = source.identity, source.claims()
    extra: dict[str, list[Finding]] = {}
    if not identity.pinned and identity.requested and identity.revision:
        extra[""] = [provenance.unpinned(identity.requested, identity.revision,
                                         identity.resolved_in, identity.revision_kind)]
    for path, flagged in provenance.hub_scanner_findings(
            claims.scanner_repo, claims.scanner_files).items():
        extra.setdefault(path, []).extend(flagged)
    files, findings = _attach(files, findings, extra)
    findings += evidence.contradictions(identity.claims)
    facts = model_facts(files)
    if signed_at is not None:
        facts["signature"], signature_findings = check_model_signature(
            signed_at, files, options.signature, options.trust)
        findings += signature_findings
    elif streamed_signatures is not None:
        facts["signature"], signature_findings = check_found_signature(
            streamed_signatures, files, options.signature, options.trust)
        findings += signature_findings
    hub = source.hub_facts()
    if hub is not None:
        facts["hub"] = hub
    facts["identity"] = _identity_facts(identity)
    if options.exclude:
        facts["excluded"] = _excluded_facts(left_out, options.exclude)
    origin = _origin(identity, hub)
    if origin is not None:
        facts["origin"] = origin
    declared = declared_lineage(files, identity.name)
    edges, cycles = source.lineage(declared.edges)
    measured, relabelled = _measured(files, identity.name, edges, origin, references, facts)
    facts["lineage"] = [_edge_facts(e, identity.name) for e in (*edges, *measured)]
    findings += declared.findings + cycles + relabelled
    findings += also
    return ModelReport(name=identity.name, root=root, source=identity.kind, files=tuple(files),
                       findings=tuple(findings), facts=facts, revision=identity.revision)


def _excluded_facts(left_out: Sequence[Excluded], patterns: tuple[str, ...]) -> dict[str, Any]:
    """What the exclude patterns left out: every file once (a downloaded Hub file is both on
    disk and in the listing), named up to MAX_EXCLUDED_LISTED, counted in full."""
    unique = sorted({e.path: e for e in left_out}.values(), key=lambda e: e.path)
    return {"patterns": list(patterns), "count": len(unique),
            "files": [{"path": e.path, "pattern": e.pattern}
                      for e in unique[:MAX_EXCLUDED_LISTED]]}


def _identity_facts(identity: Identity) -> dict[str, Any]:
    """Which record named the model and its revision, and every record that said something."""
    out: dict[str, Any] = {}
    for subject in ("name", "revision"):
        chosen = identity.chosen(subject)
        if chosen is not None:
            out[f"{subject}_grade"] = chosen.grade.value
            out[f"{subject}_evidence"] = chosen.evidence
    out["claims"] = [{"subject": c.subject, "value": c.value, "grade": c.grade.value,
                      "evidence": c.evidence} for c in identity.claims]
    if identity.revision_kind != "commit":  # a digest: what was asked for, and where (an
        # index: which entry) it led; a commit's request is the Hub facts' or the commit itself
        out["requested"] = identity.requested
        out["pinned"] = identity.pinned
        out["resolved"] = identity.resolved_in.strip()
    return out


def _origin(identity: Identity, hub: dict[str, Any] | None) -> dict[str, str] | None:
    """The publisher by the strongest evidence: the Hub's author of the repository, else the
    organisation part of the model's name as its strongest record gives it."""
    author = (hub or {}).get("author")
    if isinstance(author, str) and author:
        return {"publisher": author, "grade": Grade.HUB_VERIFIED.value,
                "evidence": "the Hub (model info author)"}
    chosen = identity.chosen("name")
    if chosen is None or chosen.value.count("/") != 1:
        return None
    return {"publisher": chosen.value.split("/")[0], "grade": chosen.grade.value,
            "evidence": chosen.evidence}


def _measured(
    files: list[FileReport], name: str, edges: list[LineageEdge],
    origin: dict[str, str] | None, references: Sequence[Reference], facts: dict[str, Any],
) -> tuple[list[LineageEdge], list[Finding]]:
    """Lineage measured from the bytes (tokenizer, shape, sampled embedding rows) against the
    family table and the reference store; a measurement that names other publishers than the
    declared bases (or than the lab the model is named after) is a contradiction."""
    from auditor.fingerprint import measure

    fp = measure.fingerprint(files)
    if fp.empty:
        return [], []
    facts["fingerprint"] = measure.summary(fp)
    found = measure.measure(fp, references, name)
    own = origin["publisher"] if origin else None
    relabelled = measure.contradictions(found, edges, own, measure.known_labs())
    return measure.edges(found, name), relabelled


def _edge_facts(edge: LineageEdge, model: str) -> dict[str, Any]:
    """A lineage edge as the plain data `ModelReport.facts` holds (JSON, the SBOM writer);
    `child` names the model it is a base of (the scanned model for the first generation)."""
    return {
        "name": edge.name, "child": edge.child or model, "publisher": edge.publisher,
        "publisher_grade": edge.publisher_grade.value if edge.publisher_grade else None,
        "commit": edge.commit, "relation": edge.relation, "resolved": edge.resolved,
        "depth": edge.depth, "grade": edge.grade.value, "evidence": list(edge.evidence),
        **({"score": edge.score} if edge.score is not None else {}),
    }


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


# --- fingerprints: `auditor fingerprint show|add` ---------------------------------------------


@dataclass(frozen=True)
class Fingerprinted:
    """A scanned model with what its bytes measure as (its `facts["fingerprint"]` and
    measured lineage are in the report; the print itself goes into a reference store)."""

    model: ModelReport
    fingerprint: Any  # auditor.fingerprint.measure.Fingerprint


def fingerprint(
    target: str | os.PathLike[str], options: ScanOptions | None = None,
    hub: HubSettings | None = None,
) -> list[Fingerprinted]:
    """Scan `target` (measured against `options.fingerprints` when given) and fingerprint each
    model."""
    from auditor.fingerprint import measure

    result = scan(target, options, hub)
    return [Fingerprinted(m, measure.fingerprint(list(m.files))) for m in result.models]


def add_references(
    target: str | os.PathLike[str], store: Path, options: ScanOptions | None = None,
    hub: HubSettings | None = None,
) -> list[Path]:
    """`auditor fingerprint add`: each model of `target` into the reference store at `store`,
    under its name and publisher as the strongest record gives them."""
    return [add_reference(done.model, store, done.fingerprint)
            for done in fingerprint(target, options, hub)]


def add_reference(model: ModelReport, store: Path, print_: Any = None) -> Path:
    """One scanned model into the reference store (the mirror adds each model it scans)."""
    from auditor.fingerprint import measure
    from auditor.fingerprint import store as references

    origin = model.facts.get("origin") or {}
    publisher = str(origin.get("publisher") or "unknown")
    grade = Grade(origin["grade"]) if origin.get("grade") in {g.value for g in Grade} else (
        Grade.DECLARED)
    fp = print_ if print_ is not None else measure.fingerprint(list(model.files))
    return references.add(store, model.name, publisher, model.revision, fp, grade)


# --- SBOM → policy → verdict ---------------------------------------------------------------


def write_sboms(
    result: ScanResult, path: Path, *, spec: str = "1.6", output_format: str = "json",
    reproducible: bool = False,
) -> list[Path]:
    """One CycloneDX ML-BOM per model, as `auditor scan --sbom` writes them.

    An existing folder gets one file per model, named after it; any other
    `path` is the file itself (a target holding several models needs a folder).
    """
    from auditor.sbom.cyclonedx import write_sboms as write

    return write(result, path, spec=spec, output_format=output_format, reproducible=reproducible)


def sbom_documents(
    result: ScanResult, sbom_path: Path | None, *, reproducible: bool
) -> list[Document]:
    """(label, CycloneDX JSON) per model; written first and read back when `sbom_path` is set.

    What policy judges is the SBOM exactly as handed on, never the scanner's objects.
    """
    from auditor.sbom import cyclonedx
    from auditor.sbom.facts import read_sbom

    if sbom_path is None:
        return [
            (f"{result.target} (SBOM of {m.name}, not written)",
             cyclonedx.to_cyclonedx(m, result, reproducible=reproducible))
            for m in result.models
        ]
    paths = write_sboms(result, sbom_path, reproducible=reproducible)
    return [(str(p), read_sbom(p)) for p in paths]


def model_sbom(model: ModelReport) -> tuple[dict[str, Any], str]:
    """A reproducible SBOM of one model on its own (the mirror keeps one per model): (doc, JSON)."""
    from auditor.sbom.cyclonedx import to_cyclonedx, to_text

    result = ScanResult(target=model.root, models=(model,), bytes_read=0, elapsed_s=0.0,
                        rules_version=engine.RULES_VERSION)
    doc = to_cyclonedx(model, result, reproducible=True)
    return doc, to_text(doc, "json")


PolicyPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def load_policies(paths: PolicyPaths) -> PolicySet:
    """Policy files, validated and compiled (a broken policy fails before anything is scanned).

    One path (a `str` or a path object) is one policy file, never a sequence of characters.
    A bare name (`baseline`) that is not a file is the installed policy of that name.
    """
    from auditor.policy.engine import load_policies as load
    from auditor.policy.installed import resolve

    if isinstance(paths, str | os.PathLike):
        return load([resolve(paths)])
    return load([resolve(p) for p in paths])


def judge(
    policies: PolicySet, documents: Sequence[Document], today: datetime.date | None = None
) -> Verdict:
    """The verdict of `policies` over SBOM documents (auditor's or another tool's)."""
    from auditor.policy.engine import evaluate
    from auditor.sbom.facts import models_from_sbom

    models = [m for label, doc in documents for m in models_from_sbom(doc, label)]
    label = ", ".join(label for label, _ in documents)
    return evaluate(policies, models, sbom=label, today=today or datetime.date.today())


def check_sboms(
    policies: PolicySet, sboms: Sequence[Path], today: datetime.date | None = None
) -> Verdict:
    """`auditor policy check`: SBOM files read from disk and judged."""
    from auditor.sbom.facts import read_sbom

    return judge(policies, [(str(p), read_sbom(p)) for p in sboms], today)


@dataclass(frozen=True)
class GateResult:
    """What `gate` decided, and from what: the scan (None when an attested SBOM was judged),
    the SBOM documents policy read, and the verdict."""

    scan: ScanResult | None
    documents: tuple[Document, ...]
    verdict: Verdict

    def fails(self, fail_on: Severity = Severity.LOW) -> bool:
        return self.verdict.fails(fail_on)


def gate(
    target: str | os.PathLike[str],
    policies: PolicySet | PolicyPaths,
    options: ScanOptions | None = None,
    hub: HubSettings | None = None,
    *,
    sbom_path: Path | None = None,
    reproducible: bool = False,
    today: datetime.date | None = None,
    progress: engine.Progress | None = None,
    registry: RegistrySettings | None = None,
) -> GateResult:
    """Scan → SBOM → policy: may this model be deployed? (`auditor gate`).

    The policies are loaded first: a broken policy fails before anything is scanned.
    """
    loaded = _loaded(policies)
    result = scan(target, options, hub, progress, registry)
    documents = sbom_documents(result, sbom_path, reproducible=reproducible)
    return GateResult(result, tuple(documents), judge(loaded, documents, today))


def gate_attested(
    target: Path, policies: PolicySet | PolicyPaths, attestation: Path,
    trust: Trust, today: datetime.date | None = None,
) -> GateResult:
    """Judge an attested SBOM instead of rescanning; `target`'s files must match its hashes."""
    from auditor.integrity import attest

    loaded = _loaded(policies)
    attested = attest.verify_attestation(attestation, trust)
    attest.check_target_matches(attested, target)
    documents = ((f"{attestation} (attested)", attested),)
    return GateResult(None, documents, judge(loaded, documents, today))


def _loaded(policies: PolicySet | PolicyPaths) -> PolicySet:
    """Policies as given: already loaded (the CLI loads them before anything else), or paths."""
    from auditor.policy.engine import PolicySet

    return policies if isinstance(policies, PolicySet) else load_policies(policies)
