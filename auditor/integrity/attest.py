"""SBOM attestations: an in-toto statement (predicate = the CycloneDX BOM) in a DSSE bundle.

Scan once in a trusted build, `attest` the SBOM there, and let a deploy-time
gate trust that SBOM after verifying the attestation, without rescanning.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from auditor.atomicio import write_atomic
from auditor.errors import UsageError, VerificationFailed
from auditor.integrity import dsse, oms
from auditor.integrity.signing import Trust, _Check, _check_signer, check_signing_certificate

SBOM_PREDICATE = "https://cyclonedx.org/bom"


def attest_sbom(
    sbom: Path, key: object, output: Path, certificates: tuple[x509.Certificate, ...] = ()
) -> str:
    """Sign `sbom` as an attestation written to `output`; return the SBOM's sha256."""
    try:
        data = sbom.read_bytes()
    except OSError as exc:
        raise UsageError(f"{sbom}: cannot read SBOM: {exc.strerror or exc}") from None
    doc = _cyclonedx(data, str(sbom))
    if certificates:
        check_signing_certificate(certificates, key)
    digest = hashlib.sha256(data).hexdigest()
    statement = {
        "_type": oms.STATEMENT_TYPE,
        "subject": [{"name": sbom.name, "digest": {"sha256": digest}}],
        "predicateType": SBOM_PREDICATE,
        "predicate": doc,
    }
    payload = json.dumps(statement, indent=2).encode()
    write_atomic(output, json.dumps(dsse.make_bundle(payload, key, certificates), indent=2)
                 + "\n")  # type: ignore[arg-type]
    return digest


def _cyclonedx(data: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not a JSON SBOM: {exc}") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise UsageError(f"{where}: not a CycloneDX JSON document")
    return doc


def verify_attestation(attestation: Path, trust: Trust, sbom: Path | None = None) -> dict:
    """Return the attested SBOM, or raise VerificationFailed saying exactly why not.

    With `sbom`, that file must be the one attested (same sha256).
    """
    try:
        bundle = dsse.parse_bundle(attestation.read_bytes())
    except OSError as exc:
        raise UsageError(f"{attestation}: cannot read: {exc.strerror or exc}") from None
    except dsse.BundleError as exc:
        raise VerificationFailed(f"{attestation}: malformed attestation: {exc}") from None
    check = _Check()
    _, ok = _check_signer(bundle, trust, check)
    if not ok:
        reasons = "; ".join(p.message for p in check.problems) or "signer not trusted"
        raise VerificationFailed(f"{attestation}: attestation not trusted: {reasons}")
    try:
        statement = json.loads(bundle.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VerificationFailed(f"{attestation}: attested statement is not JSON") from None
    if statement.get("predicateType") != SBOM_PREDICATE:
        raise VerificationFailed(
            f"{attestation}: predicateType {statement.get('predicateType')!r}, expected "
            f"{SBOM_PREDICATE!r}"
        )
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
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict) or predicate.get("bomFormat") != "CycloneDX":
        raise VerificationFailed(f"{attestation}: attested predicate is not a CycloneDX BOM")
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
