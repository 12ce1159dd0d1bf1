"""One incremental pass over a mirror: discover, rescan what changed, judge, record.

Per model: its source (`sources.resolve.model_folder`) lists its files, and
the pipeline says which digests each gets (`pipeline.hashing`); a file whose
stat the state knows, with a result for this rules version, is not read; the
others go to the executor. Once a model's files are in, they are compared with
the state for drift, and the pipeline assembles the model report exactly as a
one-off scan would (cross-file checks, cache verification, model facts), with
the drift findings passed in; its SBOM is rewritten if its bytes change and
judged by the policies, and everything is committed in one transaction. Scans
of later models run while earlier ones are committed.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.atomicio import write_atomic
from auditor.errors import OutputError, UsageError
from auditor.integrity import drift
from auditor.mirror import codec
from auditor.mirror.discover import MirrorModel, discover
from auditor.mirror.executor import Executor, Future, Scanned, open_executor, scan_path
from auditor.mirror.state import ModelRow, State, StatKey, exclusive, stat_key
from auditor.model import Artifact, FileReport, Finding, ModelReport, Severity
from auditor.pipeline import (
    add_reference,
    hashing,
    judge,
    load_references,
    model_from_files,
    model_sbom,
)
from auditor.scanning.engine import RULES_VERSION
from auditor.scanning.options import ScanOptions
from auditor.sources.contract import OnDisk, Source
from auditor.sources.resolve import model_folder

if TYPE_CHECKING:
    from auditor.fingerprint.measure import Reference

SCHEMA_VERSION = 1
POLICY_THRESHOLD = Severity.LOW  # as `auditor gate`: any active violation from low up counts


@dataclass(frozen=True)
class MirrorOptions:
    root: Path
    state: Path
    sboms: Path
    policies: tuple[Path, ...] = ()
    fail_on: Severity = Severity.HIGH
    executor: str | None = None
    scan: ScanOptions = field(default_factory=ScanOptions)
    # Add every scanned model to the reference store `scan.fingerprints` (a mirror of base
    # models builds the store its derivatives are measured against).
    add_fingerprints: bool = False
    today: datetime.date = field(default_factory=datetime.date.today)


@dataclass
class _Plan:
    """A model's files: reports already known (JSON) or futures of scans in flight."""

    model: MirrorModel
    source: Source
    artifacts: OnDisk
    reading: ScanOptions  # the run's options with this model's hashing choice
    # (entry, its report when known, the scan in flight, whether this model submitted it)
    files: list[tuple[Artifact, dict[str, Any] | None, Future | None, bool]]


def scan_key(options: ScanOptions) -> str:
    """The rules version plus the options that change what a file's scan finds."""
    settings = {"limits": dataclasses.asdict(options.limits),
                "safe_imports": sorted(options.safe_imports),
                "known_ml_imports": sorted(options.known_ml_imports)}
    return f"{RULES_VERSION}/{hashlib.sha256(codec.dumps(settings).encode()).hexdigest()[:16]}"


def run(opts: MirrorOptions) -> dict[str, Any]:
    """Scan the mirror once; return the run summary (see `summary.render_run`)."""
    policies = None
    if opts.policies:
        from auditor.policy.engine import load_policies

        policies = load_policies(list(opts.policies))  # a broken policy fails before scanning
    started = time.monotonic()
    models = discover(opts.root, skip=(opts.sboms, opts.state.parent))
    if not models:
        raise UsageError(f"{opts.root}: no models found (expected a Hugging Face cache or "
                         "org/name/ folders)")
    store = opts.scan.fingerprints
    references = load_references(opts.scan) if store is not None and store.is_dir() else []
    key = scan_key(opts.scan)
    policy_key = _policy_key(opts, policies.data) if policies is not None else None
    with exclusive(opts.state):
        _sweep_temps(opts.sboms)
        state = State(opts.state)
        try:
            run_id = state.begin_run(str(opts.root), key)
            unfinished = state.unfinished_runs(run_id)
            with open_executor(opts.executor, opts.scan.jobs) as executor:
                inflight: dict[tuple[Any, ...], Future] = {}
                plans = [_plan(m, state, opts, key, executor, inflight) for m in models]
                inflight.clear()
                outcomes = []
                for plan in plans:
                    outcomes.append(_finish(plan, state, opts, key, run_id, policies,
                                            policy_key, references))
                    plan.files.clear()  # a finished model's reports are in the state now
            with state.transaction():
                removed = state.mark_removed({m.key for m in models}, run_id)
            for row in removed:
                (opts.sboms / row.sbom).unlink(missing_ok=True)
            carried = [o for o in state.outcomes_of(unfinished) if o["fails"] or o["events"]]
            summary = _summary(opts, run_id, outcomes, removed, carried, unfinished,
                               time.monotonic() - started)
            state.finish_run(run_id, summary["summary"], unfinished)
            state.prune(key)
        finally:
            state.close()
    return summary


# --- planning: what must be read -----------------------------------------------------------


def _plan(model: MirrorModel, state: State, opts: MirrorOptions, key: str, executor: Executor,
          inflight: dict[tuple[Any, ...], Future]) -> _Plan:
    source = model_folder(model.root, model.name)
    artifacts = source.artifacts(opts.scan.exclude)
    assert isinstance(artifacts, OnDisk)  # a mirror's models are folders on disk
    reading = hashing(opts.scan, artifacts.listing.entries, source.claims())
    files: list[tuple[Artifact, dict[str, Any] | None, Future | None, bool]] = []
    for entry in sorted(artifacts.listing.entries, key=lambda e: -e.size):
        algorithms = reading.algorithms_for(entry.relpath)
        if entry.problem is not None:  # never opened: nothing to read, nothing to cache
            files.append((entry, scan_path(entry, reading).report, None, False))
            continue
        cached = _cached(entry, state, key, algorithms)
        if cached is not None:
            files.append((entry, cached, None, False))
            continue
        ident = (entry.path, entry.relpath, algorithms)  # a blob shared by snapshots: once
        owner = ident not in inflight
        if owner:
            inflight[ident] = executor.submit(scan_path, entry, reading)
        files.append((entry, None, inflight[ident], owner))
    return _Plan(model, source, artifacts, reading, files)


def _cached(entry: Artifact, state: State, key: str, algorithms: tuple[str, ...]
            ) -> dict[str, Any] | None:
    try:
        stat = stat_key(entry.path)
    except OSError:
        return None  # the scan reports why it cannot be read
    digest = state.digest_of(stat)
    report = state.result(digest, entry.relpath, key) if digest else None
    if report is None or not all(a in report["digests"] for a in algorithms):
        return None
    return report


# --- finishing: one model, one transaction -------------------------------------------------


def _a_fit_reference(report: ModelReport) -> bool:
    """Whether the mirror may add a model to the reference store on its own: it has a
    fingerprint and a known publisher, and nothing says its bytes come from another (no
    AUD-LIN-001, no measured base of another publisher). A relabelled derivative added under
    its claimed name would launder every copy of it measured later."""
    publisher = (report.facts.get("origin") or {}).get("publisher")
    if not report.facts.get("fingerprint") or not publisher:
        return False
    if any(f.rule == "AUD-LIN-001" for f in report.all_findings()):
        return False
    return all(str(e.get("publisher") or "").lower() == str(publisher).lower()
               for e in report.facts.get("lineage", []) if e.get("grade") == "measured")


def _finish(plan: _Plan, state: State, opts: MirrorOptions, key: str, run_id: int,
            policies: Any, policy_key: str | None,
            references: Sequence[Reference] = ()) -> dict[str, Any]:
    model = plan.model
    reports: list[FileReport] = []
    fresh: list[tuple[StatKey | None, dict[str, Any]]] = []
    read = 0
    for _, known, future, owner in plan.files:
        if future is not None:
            scanned: Scanned = future.result()
            known = scanned.report
            if owner:
                fresh.append((scanned.stat, known))
                read += scanned.bytes_read
        assert known is not None  # a file is either known or being scanned
        reports.append(codec.file_from_json(known))
    files = reports
    if not model.commit:  # a result cached for a cache snapshot may carry its git blob id
        files = [dataclasses.replace(f, digests={k: v for k, v in f.digests.items()
                                                 if k in plan.reading.hash_algorithms})
                 for f in files]
    revision = plan.source.identity.revision
    previous = state.model(model.key)
    same_revision = previous is not None and previous.revision == revision
    recorded = state.baseline(model.key) if same_revision else None
    current = {f.path: f.sha256 or (recorded or {}).get(f.path, ("", ""))[1]
               for f in sorted(files, key=lambda f: f.path)}
    moved = drift.compare(current, recorded, pinned=revision is not None)
    report = model_from_files(plan.source, plan.artifacts, files, opts.scan, also=moved.findings,
                              references=references)
    if opts.add_fingerprints and opts.scan.fingerprints is not None and _a_fit_reference(report):
        add_reference(report, opts.scan.fingerprints)
    fingerprint = codec.model_fingerprint(report, key)
    sbom_name = _sbom_name(model)
    unchanged = previous is not None and previous.fingerprint == fingerprint
    doc, sbom_sha256, written = _sbom(report, opts.sboms / sbom_name,
                                      previous.sbom_sha256 if unchanged and previous else None)
    policy = _policy(policies, opts, report, doc, opts.sboms / sbom_name,
                     previous.policy if unchanged and previous and
                     previous.policy_key == policy_key else None)
    row, outcome = _judge(model, report, previous, policy, opts.fail_on, run_id,
                          fingerprint, policy_key, sbom_name, sbom_sha256)
    outcome |= {"files": len(report.files), "files_read": len(fresh), "bytes_read": read,
                "sbom_written": written, "changed_files": list(moved.changed)}
    if moved.changed and outcome["change"] == "changed":
        outcome["events"].insert(0, f"{len(moved.changed)} file(s) changed")
    with state.transaction():
        for stat, known in fresh:
            state.record_file(stat, known, key)
        if outcome["change"] == "unchanged" and previous is not None and not outcome["events"]:
            state.touch_model(model.key, run_id)
        else:
            state.save_model(row, moved.files)
            state.add_history(run_id, row, outcome)
    return outcome


def _sbom(report: ModelReport, path: Path, known_sha256: str | None
          ) -> tuple[dict[str, Any] | None, str, bool]:
    """(document when it was built, sha256 of the SBOM bytes, whether the file was written).

    An unchanged model's SBOM is not rebuilt: its bytes would be identical
    (reproducible SBOMs), so it is enough that the file still holds them.
    """
    on_disk = _sha256_of(path)
    if known_sha256 is not None and on_disk == known_sha256:
        return None, known_sha256, False
    doc, json_text = model_sbom(report)
    text = json_text.encode()
    digest = hashlib.sha256(text).hexdigest()
    if digest == on_disk:
        return doc, digest, False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return doc, digest, True


def _policy(policies: Any, opts: MirrorOptions, report: ModelReport, doc: dict[str, Any] | None,
            sbom: Path, known: dict[str, Any] | None) -> dict[str, Any] | None:
    """The policy outcome, judged from the SBOM as written (reused when nothing changed)."""
    if policies is None:
        return None
    if known is not None:
        return known
    from auditor.sbom.facts import read_sbom

    verdict = judge(policies, [(str(sbom), doc or read_sbom(sbom))], today=opts.today)
    violations = sorted(
        ({"rule": v.rule, "severity": v.severity.label, "file": v.file, "message": v.message}
         for v in verdict.failing(POLICY_THRESHOLD)),
        key=lambda v: (v["rule"], v["file"], v["message"]))
    return {"status": "fail" if violations else "pass", "violations": violations}


def _judge(model: MirrorModel, report: ModelReport, previous: ModelRow | None,
           policy: dict[str, Any] | None, fail_on: Severity, run_id: int, fingerprint: str,
           policy_key: str | None, sbom_name: str, sbom_sha256: str
           ) -> tuple[ModelRow, dict[str, Any]]:
    """The model's new state row and what changed since `previous`."""
    findings = report.all_findings()
    keys = tuple(sorted({codec.finding_key(f) for f in findings}))
    known = set(previous.findings) if previous is not None else set()
    # AUD-MIR-004 exists only in the run that saw the change: a later change to the same file
    # is news again, though its key is the one recorded last time.
    new = [f for f in findings if f.severity > Severity.INFO and (
        codec.finding_key(f) not in known or f.rule == drift.UNPINNED_CHANGED.id)]
    old_violations = {_violation_key(v) for v in (previous.policy or {}).get("violations", [])
                      } if previous is not None and previous.policy else set()
    new_violations = [v for v in (policy or {}).get("violations", [])
                      if _violation_key(v) not in old_violations]
    tampering = [f for f in findings if f.rule in drift.TAMPERING]
    worst = report.worst
    verdict = "clean" if worst is None else worst.label
    failing = ((worst is not None and worst >= fail_on) or bool(tampering)
               or (policy is not None and policy["status"] == "fail"))
    status = "fail" if failing else "pass"
    added = previous is None or previous.removed_run is not None
    events: list[str] = []
    if added:
        events.append("added")
    elif previous is not None:
        if previous.revision != report.revision:
            events.append(f"revision {previous.revision} -> {report.revision}")
        if previous.verdict != verdict:
            events.append(f"verdict {previous.verdict} -> {verdict}")
        old_policy = previous.policy["status"] if previous.policy else None
        if policy is not None and old_policy != policy["status"]:
            events.append(f"policy {old_policy or 'not judged'} -> {policy['status']}")
    change = ("added" if added else
              "unchanged" if previous is not None and previous.fingerprint == fingerprint
              and previous.policy == policy else "changed")
    row = ModelRow(
        key=model.key, name=model.name, kind=model.kind, revision=report.revision,
        first_run=run_id if added or previous is None else previous.first_run, last_run=run_id,
        removed_run=None, status=status, verdict=verdict, findings=keys, policy=policy,
        fingerprint=fingerprint, policy_key=policy_key, sbom=sbom_name, sbom_sha256=sbom_sha256)
    violations = [f for f in new if f.severity >= fail_on]
    outcome = {
        "key": model.key, "name": model.name, "revision": report.revision, "kind": model.kind,
        "change": change, "status": status, "verdict": verdict,
        "policy": policy["status"] if policy else None, "sbom": sbom_name, "events": events,
        "new_findings": [_finding(f) for f in new],
        "new_violations": new_violations,
        "drift": [_finding(f) for f in tampering],
        "fails": bool(violations or new_violations or tampering),
    }
    return row, outcome


def _finding(f: Finding) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity.label, "file": f.file, "title": f.title,
            "detail": f.detail}


def _violation_key(v: dict[str, Any]) -> str:
    return f"{v['rule']}|{v['file']}|{v['message']}"


def _sbom_name(model: MirrorModel) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", model.key.replace("/", "__")) + ".cdx.json"


# `write_atomic`'s temporary name for an SBOM: `.<name>.cdx.json.<mkstemp letters>.tmp`
_SBOM_TEMP = re.compile(r"\.[A-Za-z0-9._@-]+\.cdx\.json\.[A-Za-z0-9_]+\.tmp")


def _sweep_temps(sboms: Path) -> None:
    """Remove the half-written SBOMs a killed run (SIGKILL, OOM, a reboot) left behind.

    Only names of our own temporaries are touched, and only under the state lock, so no
    other run of ours can be writing them; whoever reads the folder sees real SBOMs only.
    """
    try:
        entries = list(sboms.iterdir())
    except OSError:
        return  # no folder yet: nothing left over; an unusable one fails when written
    for entry in entries:
        if _SBOM_TEMP.fullmatch(entry.name) and not entry.is_symlink() and entry.is_file():
            try:
                entry.unlink(missing_ok=True)
            except OSError as exc:
                raise OutputError(f"{entry}: cannot remove a temporary SBOM left by an "
                                  f"interrupted run: {exc.strerror or exc}") from None


def _sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _policy_key(opts: MirrorOptions, data: dict[str, Any]) -> str:
    """Policies, their data files and today's date (waivers expire): a change re-judges all."""
    h = hashlib.sha256(opts.today.isoformat().encode())
    for path in opts.policies:
        h.update(path.read_bytes())
    h.update(json.dumps(data, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _summary(opts: MirrorOptions, run_id: int, outcomes: list[dict[str, Any]],
             removed: list[ModelRow], carried: list[dict[str, Any]], resumed: list[int],
             elapsed: float) -> dict[str, Any]:
    def count(change: str) -> int:
        return sum(1 for o in outcomes if o["change"] == change)

    fails = any(o["fails"] for o in outcomes) or any(o["fails"] for o in carried)
    return {
        "schema": SCHEMA_VERSION,
        "run": run_id,
        "root": str(opts.root),
        "state": str(opts.state),
        "rules_version": RULES_VERSION,
        "verdict": "fail" if fails else "pass",
        "fail_on": opts.fail_on.label,
        "summary": {
            "models": len(outcomes), "added": count("added"), "changed": count("changed"),
            "unchanged": count("unchanged"), "removed": len(removed),
            "failing": sum(1 for o in outcomes if o["status"] == "fail"),
            "files": sum(o["files"] for o in outcomes),
            "files_read": sum(o["files_read"] for o in outcomes),
            "bytes_read": sum(o["bytes_read"] for o in outcomes),
            "sboms_written": sum(1 for o in outcomes if o["sbom_written"]),
            "elapsed_s": round(elapsed, 3),
        },
        "models": outcomes,
        "removed": [{"key": r.key, "name": r.name, "revision": r.revision} for r in removed],
        "resumed": {"runs": resumed, "outcomes": carried},
    }


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2) + "\n"
