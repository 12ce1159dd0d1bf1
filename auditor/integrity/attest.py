"""SBOM attestations: an in-toto statement (predicate = the CycloneDX BOM) in a DSSE bundle.

Scan once in a trusted build, `attest` the SBOM there, and let a deploy-time
gate trust that SBOM after verifying the attestation, without rescanning.
With a model subject (`--subject oci://host/repo@sha256:…` or
`hf://org/name@<commit>`) the statement also names the model's digest, so a
cluster can check that the attested SBOM is of the bytes it is about to run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from auditor.atomicio import write_atomic
from auditor.errors import UsageError, VerificationFailed
from auditor.integrity import dsse, oms
from auditor.integrity.signing import Trust, _Check, _check_signer, check_signing_certificate
from auditor.model import is_commit
from auditor.oci.reference import DIGEST

if TYPE_CHECKING:
    from auditor.oci.access import RegistryAccess

SBOM_PREDICATE = "https://cyclonedx.org/bom"
# The OCI artifactType of an attestation attached to a model as a referrer.
ARTIFACT_TYPE = "application/vnd.auditor.attestation.v1+json"
MODEL_SCHEMES = ("oci://", "hf://")
# A model property of the SBOM that records the revision audited (auditor:revision:*).
_REVISION_PROPERTIES = ("auditor:revision:commit", "auditor:revision:requested")


@dataclass(frozen=True)
class Subject:
    """A model named by content: `oci://host/repo` + sha256 of its manifest, or `hf://org/name`
    + its git commit. `revision` is how an SBOM of that model records it."""

    name: str
    algorithm: str  # sha256 | gitCommit
    digest: str  # lower-case hex

    @property
    def revision(self) -> str:
        return f"sha256:{self.digest}" if self.algorithm == "sha256" else self.digest

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}"

    def statement(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {self.algorithm: self.digest}}


class AttestedSbom(dict[str, Any]):
    """The attested CycloneDX BOM (still the plain dict callers judge) and how far its
    signer was trusted: `accepted_expired` is True when --accept-expired-certificates
    waived the certificate's validity, so the caller can warn (`accepted` says what)."""

    accepted_expired: bool = False
    accepted: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Trusted:
    statement: dict[str, Any]
    accepted: tuple[str, ...]  # the waivers the signer's check needed (empty: none)

    def attested(self, predicate: dict[str, Any]) -> AttestedSbom:
        sbom = AttestedSbom(predicate)
        sbom.accepted_expired = bool(self.accepted)
        sbom.accepted = self.accepted
        return sbom


class AttestationRejected(VerificationFailed):
    """An attestation that does not admit the model; `check` names which check failed
    (malformed, signature, signer, digest, predicate), for a one-line reason at deploy time."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


def model_subject(ref: str) -> Subject:
    """The subject a pinned model reference names; a tag, branch or bare name is refused.

    `oci://host/repo@sha256:<hex>` (a tag may precede the digest; the digest is
    what counts) and `hf://org/name@<40-hex commit>`.
    """
    if ref.startswith("hf://"):
        name, sep, revision = ref[len("hf://"):].partition("@")
        if not sep or not is_commit(revision.lower()):
            raise UsageError(f"{ref} is mutable (a branch, tag or no revision); pin it with "
                             "@<40-hex commit>")
        if name.count("/") != 1 or not all(name.split("/")):
            raise UsageError(f"{ref}: expected hf://org/name@<commit>")
        return Subject(f"hf://{name}", "gitCommit", revision.lower())
    if ref.startswith("oci://"):
        from auditor.oci.reference import parse

        parsed = parse(ref)
        if not parsed.pinned or parsed.digest is None:
            raise UsageError(f"{ref} is mutable (a tag); pin it with @sha256:<digest>")
        return oci_subject(parsed.registry, parsed.repository, parsed.digest)
    raise UsageError(f"{ref}: a model subject is oci://host/repo@sha256:<hex> or "
                     "hf://org/name@<commit>")


def oci_subject(registry: str, repository: str, digest: str) -> Subject:
    """The subject of an OCI model: its repository and manifest digest (`sha256:<hex>`)."""
    digest = digest.lower()
    if not DIGEST.fullmatch(digest):
        raise UsageError(f"{registry}/{repository}@{digest}: not a sha256 digest")
    return Subject(f"oci://{registry}/{repository}", "sha256", digest[len("sha256:"):])


def attest_sbom(
    sbom: Path, key: object, output: Path, certificates: tuple[x509.Certificate, ...] = (),
    subject: Subject | None = None,
) -> tuple[str, bytes]:
    """Sign `sbom` as an attestation written to `output`; return (the SBOM's sha256, bundle).

    With `subject`, the statement names the model too, and the SBOM must be of that
    model: its recorded revision is the subject's digest, else it is refused.
    """
    try:
        data = sbom.read_bytes()
    except OSError as exc:
        raise UsageError(f"{sbom}: cannot read SBOM: {exc.strerror or exc}") from None
    doc = _cyclonedx(data, str(sbom))
    if certificates:
        check_signing_certificate(certificates, key)
    digest = hashlib.sha256(data).hexdigest()
    subjects = [{"name": sbom.name, "digest": {"sha256": digest}}]
    if subject is not None:
        recorded = sbom_revisions(doc)
        if subject.revision not in recorded:
            raise UsageError(
                f"{sbom} is not an SBOM of {subject}: it records revision "
                f"{', '.join(sorted(recorded)) or 'none'} (scan the pinned model and attest "
                "that SBOM)")
        subjects.append(subject.statement())
    statement = {
        "_type": oms.STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SBOM_PREDICATE,
        "predicate": doc,
    }
    payload = json.dumps(statement, indent=2).encode()
    bundle = (json.dumps(dsse.make_bundle(payload, key, certificates), indent=2)  # type: ignore[arg-type]
              + "\n")
    write_atomic(output, bundle)
    return digest, bundle.encode()


def push_attestation(subject: Subject, bundle: bytes,
                     access: RegistryAccess | None = None) -> str:
    """Attach `bundle` to the model's manifest as a referrer; return the referrer's digest."""
    from auditor.oci.client import connect
    from auditor.oci.reference import parse

    model = parse(subject.name)
    with connect(model.registry, access) as registry:
        manifest, _ = registry.manifest(model.repository, subject.revision)
        if manifest.digest != subject.revision:
            raise VerificationFailed(f"{subject}: the registry answers {manifest.digest} for it")
        pushed = registry.attach(model.repository, manifest, ARTIFACT_TYPE, bundle,
                                 dsse.BUNDLE_MEDIA_TYPE)
    return f"{subject.name}@{pushed.digest}"


def sbom_revisions(doc: dict[str, Any]) -> set[str]:
    """Every revision the SBOM's model components record (version, auditor:revision:*),
    lower-cased: what a model subject's digest must be one of."""
    components = [c for c in doc.get("components") or [] if isinstance(c, dict)]
    meta = (doc.get("metadata") or {}).get("component") if isinstance(
        doc.get("metadata"), dict) else None
    if isinstance(meta, dict):
        components.append(meta)
    out: set[str] = set()
    for comp in components:
        if comp.get("type") != "machine-learning-model":
            continue
        if isinstance(comp.get("version"), str):
            out.add(comp["version"].lower())
        for prop in comp.get("properties") or []:
            if isinstance(prop, dict) and prop.get("name") in _REVISION_PROPERTIES and isinstance(
                    prop.get("value"), str):
                out.add(prop["value"].lower())
    return out


def statement_subjects(bundle_bytes: bytes) -> list[Subject]:
    """The model subjects an attestation *claims*, read without verifying anything.

    Only for indexing a store of attestations: every claim is checked again by
    `verify_model_attestation` before it counts.
    """
    try:
        statement = json.loads(dsse.parse_bundle(bundle_bytes).payload)
    except (dsse.BundleError, json.JSONDecodeError, UnicodeDecodeError):
        return []
    return _model_subjects(statement)


def _model_subjects(statement: Any) -> list[Subject]:
    if not isinstance(statement, dict) or not isinstance(statement.get("subject"), list):
        return []
    out = []
    for entry in statement["subject"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), dict):
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.startswith(MODEL_SCHEMES):
            continue
        for algorithm in ("sha256", "gitCommit"):
            value = entry["digest"].get(algorithm)
            if isinstance(value, str):
                out.append(Subject(name, algorithm, value.lower()))
    return out


def verify_model_attestation(bundle_bytes: bytes, trust: Trust, subject: Subject,
                             where: str) -> AttestedSbom:
    """The attested SBOM of the model `subject` names, or AttestationRejected saying why not.

    In order: the bundle parses, the signature verifies and the signer is trusted,
    the statement is a CycloneDX attestation, one of its model subjects has the
    deployed digest, and the attested SBOM records that digest as its revision. The
    digest alone identifies the model (a registry may be reached by several names).
    The result's `accepted_expired` says whether a certificate's validity was waived.
    """
    trusted = _trusted_statement(bundle_bytes, trust, where)
    statement = trusted.statement
    claimed = _model_subjects(statement)
    if not any(s.algorithm == subject.algorithm and s.digest == subject.digest
               for s in claimed):
        shown = ", ".join(str(s) for s in claimed) or "no model"
        raise AttestationRejected("digest", f"{where}: digest mismatch: attests {shown}, "
                                  f"deploying {subject.revision}")
    predicate = _predicate(statement, where)
    recorded = sbom_revisions(predicate)
    if subject.revision not in recorded:
        raise AttestationRejected(
            "digest", f"{where}: digest mismatch: the attested SBOM records revision "
            f"{', '.join(sorted(recorded)) or 'none'}, deploying {subject.revision}")
    return trusted.attested(predicate)


def _cyclonedx(data: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not a JSON SBOM: {exc}") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise UsageError(f"{where}: not a CycloneDX JSON document")
    return doc


def verify_attestation(attestation: Path, trust: Trust, sbom: Path | None = None
                       ) -> AttestedSbom:
    """Return the attested SBOM, or raise VerificationFailed saying exactly why not.

    With `sbom`, that file must be the one attested (same sha256). The result's
    `accepted_expired` says whether a certificate's validity was waived.
    """
    try:
        raw = attestation.read_bytes()
    except OSError as exc:
        raise UsageError(f"{attestation}: cannot read: {exc.strerror or exc}") from None
    trusted = _trusted_statement(raw, trust, str(attestation))
    statement = trusted.statement
    subjects = statement.get("subject") or [{}]
    attested = (subjects[0].get("digest") or {}).get("sha256")
    if sbom is not None:
        try:
            actual = hashlib.sha256(sbom.read_bytes()).hexdigest()
        except OSError as exc:
            raise UsageError(f"{sbom}: cannot read SBOM: {exc.strerror or exc}") from None
        if actual != attested:
            raise VerificationFailed(
                f"{sbom}: not the attested SBOM (attested sha256 {attested}, file has {actual})"
            )
    return trusted.attested(_predicate(statement, str(attestation)))


def _trusted_statement(raw: bytes, trust: Trust, where: str) -> _Trusted:
    """The in-toto statement of a bundle whose signature verifies under `trust`, with the
    waivers (--accept-expired-certificates) that trust needed: never dropped silently."""
    try:
        bundle = dsse.parse_bundle(raw)
    except dsse.BundleError as exc:
        raise AttestationRejected("malformed", f"{where}: malformed attestation: {exc}") from None
    check = _Check()
    signer, ok = _check_signer(bundle, trust, check)
    if not ok:
        reasons = "; ".join(p.message for p in check.problems) or "signer not trusted"
        bad = any(p.kind == "bundle" for p in check.problems)
        what = "bad signature" if bad else f"untrusted signer {signer}"
        raise AttestationRejected("signature" if bad else "signer",
                                  f"{where}: attestation not trusted ({what}): {reasons}")
    try:
        statement = json.loads(bundle.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AttestationRejected("predicate", f"{where}: attested statement is not JSON") from None
    if not isinstance(statement, dict) or statement.get("predicateType") != SBOM_PREDICATE:
        found = statement.get("predicateType") if isinstance(statement, dict) else None
        raise AttestationRejected(
            "predicate", f"{where}: predicateType {found!r}, expected {SBOM_PREDICATE!r}")
    return _Trusted(statement, tuple(check.accepted))


def _predicate(statement: dict[str, Any], where: str) -> dict[str, Any]:
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict) or predicate.get("bomFormat") != "CycloneDX":
        raise AttestationRejected("predicate",
                                  f"{where}: attested predicate is not a CycloneDX BOM")
    return predicate


def check_target_matches(sbom: dict, target: Path) -> None:
    """Raise VerificationFailed unless `target`'s files are exactly the SBOM's (by SHA-256).

    This is what makes an attested SBOM usable at deploy time without a
    rescan: the bytes on disk are hashed (one pass, in parallel) and must be
    the ones the trusted pipeline scanned.
    """
    from auditor.integrity.signing import hash_files

    expected: dict[str, str] = {}
    for component in sbom.get("components", []):
        if component.get("type") != "file":
            continue
        digest = next((h.get("content") for h in component.get("hashes", [])
                       if h.get("alg") == "SHA-256"), None)
        if digest:
            expected[component.get("name", "")] = digest
    if not expected:
        raise VerificationFailed("attested SBOM lists no files with SHA-256 hashes")
    if not target.exists():
        raise UsageError(f"{target}: no such file or folder")
    if target.is_file():
        present = {target.name: target}
    else:
        present = {p.relative_to(target).as_posix(): p for p in sorted(target.rglob("*"))
                   if p.is_file() and ".git" not in p.relative_to(target).parts}
    problems = [f"{name}: in the attested SBOM but missing" for name in sorted(
        set(expected) - set(present))]
    problems += [f"{name}: present but not in the attested SBOM" for name in sorted(
        set(present) - set(expected))]
    common = sorted(set(expected) & set(present))
    root = target.parent if target.is_file() else target
    actual = hash_files(root, common)
    problems += [f"{name}: sha256 {actual[name]}, attested {expected[name]}" for name in common
                 if actual[name] != expected[name]]
    if problems:
        raise VerificationFailed(f"{target} is not what the attested SBOM describes: "
                                 + "; ".join(problems[:5])
                                 + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
