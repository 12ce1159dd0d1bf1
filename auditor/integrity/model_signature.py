"""A scan's view of a model's OMS signature: status facts for the SBOM, findings for the gate.

Verification reuses the digests the scan already computed, so a signed model
is still read once. A signature found without trust material to check it
against is `unknown`, never `verified`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import UsageError
from auditor.integrity.oms import DEFAULT_SIGNATURE
from auditor.model import FileReport, Finding, Rule, Severity

if TYPE_CHECKING:
    from auditor.integrity.signing import Trust, Verification


CHANGED = Rule(
    "AUD-SIG-001", Severity.CRITICAL, "File does not match its signature",
    "The file was changed, removed or replaced after the publisher signed the model: these "
    "are not the bytes that were released.",
    "Obtain the model again from the publisher and verify it before use.",
)
NOT_COVERED = Rule(
    "AUD-SIG-002", Severity.HIGH, "File not covered by the signature",
    "A file added after signing is unvouched for; loaders pick up extra files (code, "
    "pickles, templates) by name.",
    "Remove the file, or have the publisher sign the model including it.",
)
UNTRUSTED = Rule(
    "AUD-SIG-003", Severity.HIGH, "Signature not made by a trusted signer",
    "A valid signature by an unknown key or certificate proves nothing about origin: anyone "
    "can sign a tampered model with their own key.",
    "Verify with the publisher's key or CA (--key / --certificate-chain / --trust-config) and "
    "expected identity.",
)
MALFORMED = Rule(
    "AUD-SIG-004", Severity.HIGH, "Signature malformed or unsupported",
    "A signature that cannot be parsed or uses an unsupported format verifies nothing.",
    "Re-sign the model with an OMS v1.0 tool (auditor sign, model_signing).",
)
WEAKENED = Rule(
    "AUD-SIG-005", Severity.MEDIUM, "Signature leaves parts of the model unverified",
    "Verifiers re-apply the ignore_paths and allow_symlinks recorded in a signature: a file "
    "dropped into an ignored path, or content behind a link, passes verification.",
    "Re-sign without extra ignore paths or symlinks.",
)
UNCHECKED = Rule(
    "AUD-SIG-006", Severity.LOW, "Signature present but not checked",
    "Without the publisher's key, CA or Sigstore identity the signature cannot be checked; "
    "its presence alone proves nothing.",
    "Pass --key, --certificate-chain or --trust-config (and --identity/--issuer).",
)
EXPIRED_ACCEPTED = Rule(
    "AUD-SIG-007", Severity.MEDIUM, "Signature accepted from a certificate outside its validity",
    "--accept-expired-certificates waived the validity check (as model_signing does): a "
    "certificate that lapsed still vouches for the model, so a key that may have leaked "
    "since keeps signing.",
    "Have the publisher re-sign with a current code-signing certificate, or drop "
    "--accept-expired-certificates.",
)
RULES = (CHANGED, NOT_COVERED, UNTRUSTED, MALFORMED, WEAKENED, UNCHECKED, EXPIRED_ACCEPTED)

_PROBLEM_RULES = {
    "changed": CHANGED, "missing": CHANGED, "not-covered": NOT_COVERED, "key": UNTRUSTED,
    "certificate": UNTRUSTED, "identity": UNTRUSTED, "bundle": MALFORMED, "statement": MALFORMED,
    "unchecked": UNCHECKED,
}


@dataclass(frozen=True)
class Found:
    """An OMS bundle a streamed source found with the model: where (`model.sig` among the
    files, or the registry referrer it was attached as) and its bytes."""

    where: str
    bundle: bytes


def check_model_signature(
    root: Path, files: list[FileReport], signature: Path | None, trust: Trust | None
) -> tuple[dict[str, Any], list[Finding]]:
    """`ModelReport.facts["signature"]` and the findings for one scanned model."""
    sig = signature or (root / DEFAULT_SIGNATURE if root.is_dir() else None)
    if sig is None or not sig.is_file():
        if signature is not None:
            raise UsageError(f"{signature}: signature file not found")
        return {"status": "unsigned", "method": None, "signer": None, "covered": []}, []
    from auditor.integrity.signing import verify_model  # cryptography: only for signed models

    digests = {f.path: f.sha256 for f in files if f.sha256}
    result = verify_model(root, sig, trust, digests=digests)
    return result.as_facts(), _findings(result, _display(sig, root))


def check_found_signature(
    found: Sequence[Found], files: list[FileReport], signature: Path | None,
    trust: Trust | None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The signature of a model whose files are gone once read (an OCI model): `--signature`
    if given, else the bundles `found` in order (the first that verifies is the model's; none
    does: the first one's result). Held against the digests computed as the files streamed,
    the signature's own file left out as it is in a folder."""
    if signature is not None:
        try:
            found = [Found(str(signature), signature.read_bytes())]
        except OSError as exc:
            raise UsageError(f"{signature}: signature file not found ({exc.strerror or exc})"
                             ) from None
    if not found:
        return {"status": "unsigned", "method": None, "signer": None, "covered": []}, []
    from auditor.integrity.signing import verify_listing  # cryptography: only for signed models

    digests = {f.path: f.sha256 for f in files if f.sha256 and f.path != DEFAULT_SIGNATURE}
    results = [verify_listing(one.bundle, one.where, trust, digests) for one in found]
    result = next((r for r in results if r.status == "verified"), results[0])
    return result.as_facts(), _findings(result, result.signature)


def _findings(result: Verification, sig_name: str) -> list[Finding]:
    findings = [
        _PROBLEM_RULES.get(p.kind, MALFORMED).finding(p.path or sig_name, p.message)
        for p in result.problems
    ]
    findings += [WEAKENED.finding(sig_name, w) for w in result.warnings]
    findings += [EXPIRED_ACCEPTED.finding(sig_name, a) for a in result.accepted]
    return findings


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
