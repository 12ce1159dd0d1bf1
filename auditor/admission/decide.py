"""May this model run here? The one check the webhook and `auditor verify-attestation` share.

In order, each failure a one-line reason naming the model and the check:
the reference is pinned (a digest or a commit: what is checked is what runs);
an attestation for that digest exists (registry referrers, or a local store
for air-gapped clusters); its signature verifies and its signer is trusted;
its subject is the digest being deployed; the named policy passes over the
attested SBOM. Nothing is rescanned: the SBOM the build attested is judged.
Verdicts over a verified attestation are cached by (digest, policy digest,
trust) for a while, so a rollout of many pods asks the registry once.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import AuditorError, SourceError, UsageError
from auditor.model import Severity
from auditor.oci.access import RegistryAccess

if TYPE_CHECKING:
    from cryptography import x509

    from auditor.admission.refs import Named
    from auditor.integrity.attest import Subject
    from auditor.integrity.signing import Trust
    from auditor.policy.engine import PolicySet

# Checks, in the order they run; `pass` when all did; `error` (a registry or store
# unreachable) and `timeout`: no verdict, an outage; `internal`: no verdict, our code failed.
CHECKS = ("pin", "attestation", "malformed", "signature", "signer", "predicate", "digest",
          "policy", "error", "timeout", "internal", "pass")
MAX_INTERNAL = 200  # characters of an internal error's message kept in a reason
# When several attestations exist and none admits, the one that got furthest explains best.
_FURTHEST = ("digest", "predicate", "signer", "signature", "malformed")
MAX_ATTESTATION_BYTES = 16 * 1024 * 1024
EXPIRED_ACCEPTED = "signer's certificate expired; accepted by --accept-expired-certificates"


@dataclass(frozen=True)
class Decision:
    """The verdict on one model reference: `reason` is one line naming the model and check."""

    model: str
    allowed: bool
    check: str
    reason: str
    warnings: tuple[str, ...] = ()
    cached: bool = False

    def __post_init__(self) -> None:
        if self.check not in CHECKS:  # the audit log's `check` is a closed vocabulary
            raise ValueError(f"unknown check {self.check!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "allowed": self.allowed, "check": self.check,
                "reason": self.reason, "warnings": list(self.warnings), "cached": self.cached}


@dataclass(frozen=True)
class Settings:
    """What a decision is made against; fixed for the life of a webhook process."""

    policies: PolicySet
    trust: Trust
    store: Path | None = None  # a folder of attestation bundles (*.json)
    registries: bool = True  # look up OCI referrers (off: the local store only)
    registry: RegistryAccess = field(default_factory=RegistryAccess)  # each request's timeout too
    fail_on: Severity = Severity.LOW
    warn_days: int = 14  # warn about waivers that expire within this many days
    cache_size: int = 4096
    cache_ttl: float = 300.0  # seconds: a revoked attestation stops counting after this


@dataclass(frozen=True)
class Candidate:
    """An attestation found for a digest, not yet verified (`data` None: it could not be
    fetched, `problem` says why)."""

    where: str
    data: bytes | None
    problem: str = ""


class Unpinned(AuditorError):
    """A mutable reference: what it names can change after the check."""


def subject_of(named: Named) -> Subject:
    """The content-addressed subject a reference names; Unpinned or UsageError (saying how to
    pin it) if none.

    A bare `sha256:<hex>` (the annotation's form for other servers) has no name:
    the digest alone identifies the model, and only the local store can hold it.
    """
    from auditor.integrity.attest import Subject, model_subject, oci_subject

    ref = named.ref
    if named.image:
        from auditor.oci.reference import parse_image

        image = parse_image(ref)
        if image.digest is None:
            raise Unpinned(f"{ref} is mutable (a tag); pin it with @sha256:<digest>")
        return oci_subject(image.registry, image.repository, image.digest)
    if ref.startswith("sha256:"):
        from auditor.oci.reference import DIGEST

        if not DIGEST.fullmatch(ref.lower()):
            raise UsageError(f"{ref}: not a sha256 digest (sha256:<64 hex>)")
        return Subject("", "sha256", ref[len("sha256:"):].lower())
    if ref.startswith("hf://"):
        ref = _kserve_hf(ref)
    if not ref.startswith(("oci://", "hf://")):
        scheme = ref.split("://", 1)[0] + "://" if "://" in ref else "a bare name"
        raise Unpinned(f"{ref}: {scheme} names no content digest; publish the model as an OCI "
                       "artifact and deploy oci://…@sha256:<digest>, or hf://org/name@<commit>")
    return model_subject(ref)  # a tag or branch: UsageError saying how to pin


def _kserve_hf(ref: str) -> str:
    """KServe writes `hf://org/name:<revision>`; auditor `hf://org/name@<revision>`."""
    body = ref[len("hf://"):]
    if "@" not in body and body.count(":") == 1:
        name, revision = body.split(":")
        return f"hf://{name}@{revision}"
    return ref


def policy_digest(policies: PolicySet) -> str:
    """What the policy set is, as a cache key: its files' bytes and its data."""
    h = hashlib.sha256()
    for f in policies.files:
        h.update(f.path.encode() + b"\0")
        try:
            h.update(Path(f.path).read_bytes())
        except OSError:
            h.update(json.dumps(f.name).encode())
    h.update(json.dumps(policies.data, sort_keys=True, default=str).encode())
    return h.hexdigest()


def trust_id(trust: Trust) -> str:
    """Who is trusted, as a cache key."""
    from auditor.integrity import dsse
    from auditor.integrity.signing import CertificateTrust, KeyTrust

    if isinstance(trust, KeyTrust):
        return "key:" + dsse.key_hint(trust.public_key)  # type: ignore[arg-type]
    if isinstance(trust, CertificateTrust):
        from cryptography.hazmat.primitives import hashes

        def prints(certificates: tuple[x509.Certificate, ...]) -> str:
            return ",".join(c.fingerprint(hashes.SHA256()).hex() for c in certificates)

        # Every setting that can change a verdict is in the key: a cached allow made with
        # timestamps or expired certificates accepted never answers a stricter configuration.
        return (f"certificate:{prints(trust.anchors)}:{trust.identity}:{trust.issuer}:"
                f"tsa={prints(trust.tsa_anchors)}:expired-ok={trust.accept_expired}")
    return f"sigstore:{trust.trust_config}:{trust.identity}:{trust.issuer}"


@dataclass
class Decider:
    """Decides model references against `settings`; safe to share between threads."""

    settings: Settings
    _cache: OrderedDict[tuple[str, ...], tuple[float, Decision]] = field(
        default_factory=OrderedDict)
    _inflight: dict[tuple[str, ...], Future[Decision]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _policy: str = ""
    _trust: str = ""
    _store: AttestationStore | None = None

    def __post_init__(self) -> None:
        self._policy = policy_digest(self.settings.policies)
        self._trust = trust_id(self.settings.trust)
        if self.settings.store is not None:
            self._store = AttestationStore(self.settings.store)

    def decide(self, named: Named, today: datetime.date | None = None,
               deadline: float | None = None) -> Decision:
        """The decision on one reference. AuditorError (I/O, a registry down) propagates:
        the caller applies its failure policy. `deadline` (time.monotonic()) bounds the wait
        for the same digest being decided by another review, so waiters never pile up
        holding the webhook's workers."""
        try:
            subject = subject_of(named)
        except (Unpinned, UsageError) as exc:
            text = str(exc)
            return Decision(named.ref, False, "pin", text if text.startswith(named.ref)
                            else f"{named.ref}: {text}")
        day = today or datetime.date.today()
        key = (subject.algorithm, subject.digest, self._policy, self._trust, day.isoformat())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.settings.cache_ttl:
                self._cache.move_to_end(key)
                return _as_cached(hit[1], named.ref)
            waiting = self._inflight.get(key)
            if waiting is None:
                mine: Future[Decision] = Future()
                self._inflight[key] = mine
        if waiting is not None:  # the same digest is being decided: wait for that answer
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return _as_cached(waiting.result(left), named.ref)
            except TimeoutError:
                return Decision(named.ref, False, "timeout",
                                f"{named.ref}: error: no verdict within the time budget")
        try:
            decision, final = self._decide(named.ref, subject, day)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)
        if final:
            with self._lock:
                self._cache[key] = (time.monotonic(), decision)
                while len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
        mine.set_result(decision)
        return decision

    def _decide(self, ref: str, subject: Subject, today: datetime.date) -> tuple[Decision, bool]:
        """(decision, whether it may be cached: only verdicts over a verified attestation)."""
        from auditor.integrity.attest import AttestationRejected, verify_model_attestation

        candidates = self._candidates(subject)
        if not candidates:
            return Decision(ref, False, "attestation", f"{ref}: no attestation: none for "
                            f"{subject.revision} in {self._looked_in(subject)}"), False
        rejected: list[AttestationRejected] = []
        for candidate in candidates:
            if candidate.data is None:
                rejected.append(AttestationRejected("malformed", candidate.problem))
                continue
            try:
                sbom = verify_model_attestation(candidate.data, self.settings.trust, subject,
                                                candidate.where)
            except AttestationRejected as exc:
                rejected.append(exc)
                continue
            expired = bool(getattr(sbom, "accepted_expired", False))
            return self._judge(ref, candidate.where, sbom, today, expired), True
        worst = min(rejected, key=lambda e: _FURTHEST.index(e.check)
                    if e.check in _FURTHEST else len(_FURTHEST))
        label = {"signer": "untrusted signer", "signature": "bad signature",
                 "digest": "digest mismatch"}.get(worst.check, worst.check)
        return Decision(ref, False, worst.check, f"{ref}: {label}: {worst}"), False

    def _judge(self, ref: str, where: str, sbom: dict[str, Any], today: datetime.date,
               expired: bool = False) -> Decision:
        """The policy's verdict over the attested SBOM; `expired`: the signer's certificate
        was accepted only because the operator waived its validity, said on every answer."""
        from auditor.pipeline import judge

        verdict = judge(self.settings.policies, [(f"{where} (attested)", sbom)], today)
        waived = (f"{ref}: {EXPIRED_ACCEPTED}",) if expired else ()
        warnings = waived + tuple(
            f"{ref}: waiver for {v.rule} expires {v.waiver.expires.isoformat()} "
            f"({v.waiver.reason})"
            for v in verdict.violations
            if v.waiver is not None
            and (v.waiver.expires - today).days <= self.settings.warn_days)
        failing = verdict.failing(self.settings.fail_on)
        if failing:
            rules = ", ".join(dict.fromkeys(v.rule for v in failing))
            return Decision(ref, False, "policy", f"{ref}: policy violation: {rules} "
                            f"({failing[0].message})", warnings)
        names = ", ".join(Path(p).stem for p in verdict.policies)
        return Decision(ref, True, "pass", f"{ref}: attested and passes {names}", warnings)

    def _candidates(self, subject: Subject) -> list[Candidate]:
        found: list[Candidate] = []
        if self._store is not None:
            found += self._store.find(subject)
        if self.settings.registries and subject.name.startswith("oci://"):
            found += _referrers(subject, self.settings)
        return found

    def _looked_in(self, subject: Subject) -> str:
        places = []
        if self._store is not None:
            places.append(f"the store {self.settings.store}")
        if self.settings.registries and subject.name.startswith("oci://"):
            places.append(f"the referrers of {subject}")
        return " or ".join(places) or "nowhere (no --attestations store, and not in a registry)"


def failed(ref: str, exc: BaseException) -> Decision:
    """The decision on a reference whose check raised `exc`.

    Only SourceError (a registry or the store could not be reached or read) is an
    outage, check `error`, which `--failure-policy allow` may admit. Anything else
    is check `internal`, denied under every policy: it may have been raised by
    bytes the deployer chose (an attestation, a referrer), so admitting it would
    let anyone who can break our parser past the check. Its message is one line,
    cut short, since it may quote those bytes.
    """
    if isinstance(exc, SourceError):
        return Decision(ref, False, "error", f"{ref}: error: {' '.join(str(exc).split())}")
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(text) > MAX_INTERNAL:
        text = text[:MAX_INTERNAL - 1] + "…"
    return Decision(ref, False, "internal", f"{ref}: internal error: {text} (denied under "
                    "every failure policy)")


def _as_cached(decision: Decision, ref: str) -> Decision:
    """A decision made for the same digest, said of this reference."""
    reason = decision.reason.replace(decision.model, ref, 1)
    warnings = tuple(w.replace(decision.model, ref, 1) for w in decision.warnings)
    return Decision(ref, decision.allowed, decision.check, reason, warnings, cached=True)


@dataclass
class AttestationStore:
    """A folder of attestation bundles (`*.json`), indexed by the model digests they claim.

    The claims are read unverified, only to find candidates; each is verified
    before it counts. The index is rebuilt when any file's name, size or
    modification time changes (a file added, or rewritten in place, by the
    air-gapped import job is seen without a restart).
    """

    folder: Path
    _index: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    _stamp: tuple[tuple[str, int, int], ...] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, subject: Subject) -> list[Candidate]:
        with self._lock:
            self._refresh()
            paths = list(self._index.get((subject.algorithm, subject.digest), []))
        out = []
        for path in paths:
            try:
                out.append(Candidate(str(path), path.read_bytes()))
            except OSError as exc:
                raise SourceError(f"{path}: cannot read attestation: "
                                  f"{exc.strerror or exc}") from None
        return out

    def _refresh(self) -> None:
        from auditor.integrity.attest import statement_subjects

        try:
            files = sorted(p for p in self.folder.iterdir() if p.name.endswith(".json"))
        except OSError as exc:
            raise SourceError(f"{self.folder}: cannot read the attestation store: "
                              f"{exc.strerror or exc}") from None
        sizes: dict[Path, int] = {}
        stamp = []
        for path in files:
            try:
                st = path.stat()
            except OSError:  # removed since the listing
                continue
            sizes[path] = st.st_size
            stamp.append((path.name, st.st_size, st.st_mtime_ns))
        if tuple(stamp) == self._stamp:
            return
        index: dict[tuple[str, str], list[Path]] = {}
        for path, size in sizes.items():
            if size > MAX_ATTESTATION_BYTES:
                continue
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            for s in statement_subjects(raw):
                index.setdefault((s.algorithm, s.digest), []).append(path)
        self._index, self._stamp = index, tuple(stamp)


def _referrers(subject: Subject, settings: Settings) -> list[Candidate]:
    """Attestation bundles attached to the model's manifest in its registry (each blob
    verified against its digest by the client, and capped in size); one that cannot be read
    is a rejected candidate, not a reason to deny them all."""
    from auditor.integrity.attest import ARTIFACT_TYPE
    from auditor.oci.client import connect
    from auditor.oci.reference import parse

    model = parse(subject.name)
    with connect(model.registry, settings.registry) as registry:
        return [Candidate(f"{subject.name}@{item.referrer.digest}", item.data, item.problem)
                for item in registry.referred_blobs(model.repository, subject.revision,
                                                    ARTIFACT_TYPE, None, MAX_ATTESTATION_BYTES)]
