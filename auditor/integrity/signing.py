"""Sign and verify models with OpenSSF Model Signing (OMS) bundles, via `cryptography` only.

Verification explains itself: every failure is a `Problem` naming what was
expected and what was found (which file changed, its signed and actual
digests; which key signed; which certificate check failed). Nothing is
"verified" unless the signature, the trust in the signer and every file
check out; what could not be checked is said, never assumed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditor.atomicio import write_atomic
from auditor.errors import UsageError
from auditor.integrity import dsse, oms, timestamp
from auditor.integrity.hashing import CHUNK, digest_file
from auditor.integrity.oms import DEFAULT_SIGNATURE


@dataclass(frozen=True)
class KeyTrust:
    public_key: object


@dataclass(frozen=True)
class CertificateTrust:
    anchors: tuple[x509.Certificate, ...]
    identity: str | None = None
    issuer: str | None = None
    # --accept-expired-certificates: the reference tool's check at the leaf's own notBefore
    accept_expired: bool = False
    # --tsa-certificate-chain: the only anchors an RFC 3161 timestamp authority may chain to
    # (never `anchors`: a TSA root must not also vouch for signers, nor the signing CA for TSAs)
    tsa_anchors: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class SigstoreTrust:
    trust_config: Path
    identity: str
    issuer: str


Trust = KeyTrust | CertificateTrust | SigstoreTrust


@dataclass(frozen=True)
class Problem:
    kind: str  # changed | missing | not-covered | bundle | statement | key | certificate | identity
    message: str
    path: str | None = None


@dataclass(frozen=True)
class Verification:
    status: str  # verified | invalid | untrusted | unknown
    method: str
    signer: str
    covered: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    signature: str = ""
    # checks the user waived (--accept-expired-certificates) that would otherwise have failed
    accepted: tuple[str, ...] = ()
    # what the verdict rests on but is no problem, e.g. a timestamp that was not used
    notes: tuple[str, ...] = ()

    @property
    def status_detail(self) -> str:
        """The status as shown: a waived certificate check is never a plain `verified`."""
        if self.accepted and self.status == "verified":
            return "verified (expired certificate accepted)"
        return self.status

    def as_facts(self) -> dict[str, object]:
        return {
            "status": self.status, "status_detail": self.status_detail, "method": self.method,
            "signer": self.signer, "signature": self.signature, "covered": list(self.covered),
            "problems": [{"kind": p.kind, "path": p.path, "message": p.message}
                         for p in self.problems],
            "warnings": list(self.warnings), "accepted": list(self.accepted),
            "notes": list(self.notes),
        }

    def render_text(self, model: Path) -> str:
        """The human summary `auditor verify` prints: status line, then problems and warnings."""
        lines = [f"{self.status_detail}: {model} signed by {self.signer} ({self.method} method, "
                 f"{len(self.covered)} file(s) covered)"]
        lines += [f"  problem: {p.message}" for p in self.problems]
        lines += [f"  accepted: {a}" for a in self.accepted]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def default_signature(model: Path) -> Path:
    """Where a model's signature lives unless told: inside a folder, beside a single file."""
    return model / DEFAULT_SIGNATURE if model.is_dir() else model.with_name(DEFAULT_SIGNATURE)


# ---------------------------------------------------------------- keys and certificates

def load_private_key(path: Path, password: bytes | None) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read key: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        raise UsageError(f"{path}: key is encrypted: give its password with --password-env VAR"
                         ) from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a usable PEM private key ({exc})") from None
    try:
        return dsse.check_signing_key(key)
    except dsse.BundleError as exc:
        raise UsageError(f"{path}: {exc}") from None


def load_public_key(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read key: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            raise UsageError(f"{path}: not a PEM public key or certificate") from None
    try:
        return dsse.check_public_key(key)
    except dsse.BundleError as exc:
        raise UsageError(f"{path}: {exc}") from None


def load_certificates(paths: Iterable[Path]) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            certs.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except OSError as exc:
            raise UsageError(f"{path}: cannot read certificate: {exc.strerror or exc}") from None
        except ValueError:
            raise UsageError(f"{path}: not a PEM certificate") from None
    return tuple(certs)


def describe_certificate(cert: x509.Certificate) -> str:
    names = _sans(cert)
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    return subject + (f" [{', '.join(sorted(names))}]" if names else "")


def check_signing_certificate(
    chain: tuple[x509.Certificate, ...], key: object, now: dt.datetime | None = None
) -> None:
    """Refuse (UsageError) to sign with a certificate no strict verifier would accept.

    The leaf must hold the signing key's public half and allow code signing
    (`signing_usage_problem`), and every certificate given must be within its
    validity now: a signature made outside it fails verification everywhere
    but in lenient tools.
    """
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    public = key.public_key()  # type: ignore[attr-defined]
    if leaf.public_key().public_bytes(der, spki) != public.public_bytes(der, spki):
        raise UsageError(f"cannot sign: the certificate's public key does not match the private "
                         f"key ({describe_certificate(leaf)})")
    problem = signing_usage_problem(leaf)
    if problem:
        raise UsageError(f"cannot sign: {problem}")
    at = now or dt.datetime.now(dt.UTC)
    for index, cert in enumerate(chain):
        problem = validity_problem(cert, at, leaf=index == 0)
        if problem:
            raise UsageError(f"cannot sign: {problem}")


# What each extended key usage is called in messages (RFC 5280 names).
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_KEY_USAGES = (
    ("digital_signature", "digitalSignature"), ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"), ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"), ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)


def signing_usage_problem(cert: x509.Certificate) -> str | None:
    """Why `cert` may not sign models, or None. One rule for signing and verifying.

    A key usage, when present, must include digitalSignature; an extended key
    usage, when present, must include codeSigning (anyExtendedKeyUsage is not
    enough: a TLS or catch-all certificate is not a code-signing one); and at
    least one of the two must be present, as the OMS reference requires.
    """
    try:
        ku: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    try:
        eku: x509.ExtendedKeyUsage | None = cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if ku is None and eku is None:
        return ("certificate states no key usage: it needs the digitalSignature key usage or "
                "the codeSigning extended key usage")
    if ku is not None and not ku.digital_signature:
        names = [label for attr, label in _KEY_USAGES if getattr(ku, attr)]
        return f"certificate's key usage is {', '.join(names) or 'empty'}, not digitalSignature"
    if eku is not None and ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        names = [_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku]
        return f"certificate's extended key usage is {', '.join(names)}, not codeSigning"
    return None


def validity_problem(cert: x509.Certificate, at: dt.datetime, *, leaf: bool) -> str | None:
    """Why `cert` is not valid at `at` (naming notBefore or notAfter), or None."""
    what = "certificate" if leaf else f"certificate {cert.subject.rfc4514_string()!r}"
    if at < cert.not_valid_before_utc:
        return f"{what} is not valid before {_when(cert.not_valid_before_utc)} (notBefore)"
    if at > cert.not_valid_after_utc:
        return f"{what} expired on {_when(cert.not_valid_after_utc)} (notAfter)"
    return None


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    out: set[str] = set()
    for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
        out.update(ext.get_values_for_type(kind))
    return out


# ---------------------------------------------------------------- hashing

def hash_files(root: Path, names: list[str], algorithm: str = "sha256") -> dict[str, str]:
    """Digest each file once, in parallel (hashlib releases the GIL)."""

    def one(name: str) -> tuple[str, str]:
        return name, digest_file(root if name == "." else root / name, algorithm)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(pool.map(one, names))


def _hash_span(path: Path, start: int, end: int, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                break
            h.update(data)
            left -= len(data)
    return h.hexdigest()


# ---------------------------------------------------------------- signing

def sign_model(
    model: Path,
    key: object,
    output: Path,
    *,
    certificates: tuple[x509.Certificate, ...] = (),
    compat: str = "model_signing",
    ignore_paths: tuple[str, ...] = (),
) -> dict[str, str]:
    """Write an OMS v1.0 signature of `model` to `output`; return the signed digests."""
    model = model.resolve()
    if not model.exists():
        raise UsageError(f"{model}: no such file or folder")
    ignore = set(oms.DEFAULT_IGNORED) | set(ignore_paths)
    out = output.resolve()
    if model.is_dir() and model in out.parents:
        ignore.add(out.relative_to(model).as_posix())
    try:
        names = oms.model_files(model, frozenset(ignore), allow_symlinks=False)
    except oms.StatementError as exc:
        raise UsageError(f"{model}: {exc}") from None
    if not names:
        raise UsageError(f"{model}: no files to sign")
    if certificates:
        check_signing_certificate(certificates, key)
    digests = hash_files(model, names)
    if model.is_file():
        digests = {model.name: digests["."]}
    statement = oms.build_statement(
        model.name, digests, ignore_paths=tuple(sorted(ignore)) if model.is_dir() else
        tuple(sorted(oms.DEFAULT_IGNORED)), single_file=model.is_file(), compat=compat,
    )
    bundle = dsse.make_bundle(statement, key, certificates)  # type: ignore[arg-type]
    write_atomic(output, json.dumps(bundle, indent=2) + "\n")
    return digests


# ---------------------------------------------------------------- verification

@dataclass
class _Check:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, kind: str, message: str, path: str | None = None) -> None:
        self.problems.append(Problem(kind, message, path))


def verify_model(
    model: Path,
    signature: Path,
    trust: Trust | None,
    *,
    allow_unsigned_files: bool = False,
    digests: dict[str, str] | None = None,
) -> Verification:
    """Verify `signature` over `model`; `digests` (relpath → sha256) reuse a scan's hashes."""
    model = model.resolve()
    try:
        raw = signature.read_bytes()
    except OSError as exc:
        raise UsageError(f"{signature}: cannot read signature: {exc.strerror or exc}") from None

    def files(statement: oms.Statement, check: _Check) -> tuple[str, ...]:
        return _check_files(model, signature, statement, check, allow_unsigned_files, digests)

    return _verify(raw, str(signature), trust, files)


def verify_listing(
    raw: bytes, where: str, trust: Trust | None, digests: dict[str, str]
) -> Verification:
    """Verify an OMS bundle over files that are no longer on disk (the members of OCI
    layers, hashed as they streamed): `digests` is every file of the model, path → sha256,
    the signature's own file left out by the caller. The same checks as a folder's, by the
    same code, except that shard signatures need the bytes and are refused."""

    def files(statement: oms.Statement, check: _Check) -> tuple[str, ...]:
        _check_statement(statement, DEFAULT_SIGNATURE, check)
        if statement.method != "files" or statement.hash_type != "sha256":
            check.fail("statement", f"{where}: a {statement.method}/{statement.hash_type} "
                       "signature is checked against files on disk only; pull the model "
                       "(--pull-to DIR) and verify the folder")
            return ()
        ignore = frozenset(statement.ignore_paths) | oms.DEFAULT_IGNORED
        present = [p for p in sorted(digests) if not oms.is_ignored(p, ignore)]
        return _check_named(statement, check, present, False, lambda todo: digests)

    return _verify(raw, where, trust, files)


def _verify(
    raw: bytes, where: str, trust: Trust | None,
    check_files: Callable[[oms.Statement, _Check], tuple[str, ...]],
) -> Verification:
    """Bundle, signer, statement, then the files as `check_files` sees them."""
    check = _Check()
    try:
        bundle = dsse.parse_bundle(raw)
    except dsse.BundleError as exc:
        check.fail("bundle", f"{where}: malformed signature bundle: {exc}")
        return _result("invalid", "unknown", "", check, where)
    signer, trusted = _check_signer(bundle, trust, check)
    if trust is None:
        check.fail("unchecked", "no key, certificate chain or trust config given: the "
                   "signature was not checked")
        return _result("unknown", bundle.method, signer, check, where)
    if not trusted:
        status = "untrusted" if any(p.kind in ("key", "certificate", "identity")
                                    for p in check.problems) else "invalid"
        return _result(status, bundle.method, signer, check, where)
    if bundle.payload_type != dsse.INTOTO_PAYLOAD_TYPE:
        check.fail("statement", f"payloadType {bundle.payload_type!r}, expected "
                   f"{dsse.INTOTO_PAYLOAD_TYPE!r}")
        return _result("invalid", bundle.method, signer, check, where)
    try:
        statement = oms.parse_statement(bundle.payload)
    except oms.StatementError as exc:
        check.fail("statement", str(exc))
        return _result("invalid", bundle.method, signer, check, where)
    covered = check_files(statement, check)
    status = "invalid" if check.problems else "verified"
    return _result(status, bundle.method, signer, check, where, covered)


def _result(status: str, method: str, signer: str, check: _Check, sig: str,
            covered: tuple[str, ...] = ()) -> Verification:
    return Verification(status, method, signer, covered, tuple(check.problems),
                        tuple(check.warnings), sig, tuple(check.accepted), tuple(check.notes))


def _check_signer(bundle: dsse.Bundle, trust: Trust | None, check: _Check) -> tuple[str, bool]:
    """Is the signature made by someone we trust? Returns (signer description, ok)."""
    if bundle.method == "key":
        signer = f"key sha256:{bundle.public_key_hint or '?'}"
        if not isinstance(trust, KeyTrust):
            if trust is not None:
                check.fail("key", "signature uses the key method: verify it with --key")
            return signer, False
        expected = dsse.key_hint(trust.public_key)  # type: ignore[arg-type]
        if bundle.public_key_hint and bundle.public_key_hint != expected:
            check.fail("key", f"signed by key sha256:{bundle.public_key_hint}, expected key "
                       f"sha256:{expected}")
            return signer, False
        if not dsse.verify_signature(bundle, trust.public_key):  # type: ignore[arg-type]
            check.fail("bundle", "DSSE signature does not verify under the given key (the "
                       "statement was altered, or another key signed it)")
            return signer, False
        return f"key sha256:{expected}", True
    leaf = bundle.certificates[0]
    signer = describe_certificate(leaf)
    if bundle.method == "sigstore":
        if not isinstance(trust, SigstoreTrust):
            if trust is not None:
                check.fail("certificate", "Sigstore (keyless) bundle: verify it with "
                           "--trust-config, --identity and --issuer")
            return signer, False
        from auditor.integrity.keyless import verify_keyless

        failure = verify_keyless(bundle, trust.trust_config, trust.identity, trust.issuer)
        if failure is not None:
            check.fail(*failure)
        return signer, failure is None
    if not isinstance(trust, CertificateTrust):
        if trust is not None:
            check.fail("certificate", "signature uses the certificate method: verify it with "
                       "--certificate-chain")
        return signer, False
    if not dsse.verify_signature(bundle, leaf.public_key()):  # type: ignore[arg-type]
        check.fail("bundle", "DSSE signature does not verify under the leaf certificate's key")
        return signer, False
    ok = verify_chain(bundle.certificates, trust.anchors, check,
                      accept_expired=trust.accept_expired, timestamps=bundle.timestamps,
                      signature=bundle.signature, tsa_anchors=trust.tsa_anchors)
    if trust.identity and trust.identity not in _sans(leaf) | _common_names(leaf.subject):
        check.fail("identity", f"certificate identity {sorted(_sans(leaf))} does not include "
                   f"{trust.identity!r}")
        ok = False
    if trust.issuer and trust.issuer not in (leaf.issuer.rfc4514_string(),
                                             *_common_names(leaf.issuer)):
        check.fail("identity", f"certificate issuer {leaf.issuer.rfc4514_string()!r} is not "
                   f"{trust.issuer!r}")
        ok = False
    return signer, ok


def _common_names(name: x509.Name) -> set[str]:
    return {str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)}


def verify_chain(
    chain: tuple[x509.Certificate, ...], anchors: tuple[x509.Certificate, ...], check: _Check,
    *, accept_expired: bool = False, timestamps: tuple[bytes, ...] = (),
    signature: bytes = b"", now: dt.datetime | None = None,
    tsa_anchors: tuple[x509.Certificate, ...] = (),
) -> bool:
    """Leaf → intermediates → a trusted anchor, each valid at a trusted signing time.

    The trusted time is that of the first RFC 3161 timestamp over `signature`
    whose TSA chains to `tsa_anchors` (`trusted_stamp_time`), otherwise now:
    without TSA anchors a timestamp is not used at all, and a timestamp that is
    not trusted is said (`check.notes`, or in the failure). With
    `accept_expired` a chain valid at the leaf's own notBefore passes, as in
    the OMS reference tool, and the waiver is recorded in `check.accepted`.
    """
    if not anchors:
        check.fail("certificate", "no trusted certificates given (--certificate-chain)")
        return False
    leaf = chain[0]
    path = _path_to_anchor(leaf, chain[1:], anchors)
    if isinstance(path, str):
        check.fail("certificate", path)
        return False
    usage = signing_usage_problem(leaf)
    if usage:
        check.fail("certificate", usage)
        return False
    at: dt.datetime | None = None
    note = ""
    if timestamps and not tsa_anchors:
        note = "timestamp present but no --tsa-certificate-chain given; checked at now"
    elif timestamps:
        at, untrusted = trusted_stamp_time(timestamps, signature, tsa_anchors, signer=leaf)
        if at is None:
            note = f"the bundle's RFC 3161 timestamp is not trusted: {untrusted}; checked at now"
    if at is not None:
        basis = f" at the time of its trusted RFC 3161 timestamp ({_when(at)})"
    else:
        at = now or dt.datetime.now(dt.UTC)
        basis = "; no trusted timestamp" + (f" ({note})" if note else "")
    invalid = next(filter(None, (validity_problem(c, at, leaf=c is leaf) for c in path)), None)
    if invalid is None:
        if note:
            check.notes.append(note)
        return True
    why = invalid + basis
    if accept_expired:
        at = leaf.not_valid_before_utc
        lenient = next(filter(None, (validity_problem(c, at, leaf=c is leaf) for c in path)),
                       None)
        if lenient is None:
            check.accepted.append(f"{why}; accepted by --accept-expired-certificates")
            return True
    check.fail("certificate", why)
    return False


def trusted_stamp_time(
    timestamps: tuple[bytes, ...], signature: bytes, tsa_anchors: tuple[x509.Certificate, ...],
    *, signer: x509.Certificate | None = None,
) -> tuple[dt.datetime | None, str]:
    """(time, "") from the first timestamp that proves when `signature` existed, else
    (None, why none does).

    A TSA is trusted when it is another key than the `signer` (a key must not vouch
    for its own signing time: a stolen or expired key would back-date itself), its
    extended key usage is critical and only timeStamping (RFC 3161 §2.3), the token
    names it (ESSCertID, checked by `timestamp.verify_stamp`), and it chains, within
    the token's certificates, to one of `tsa_anchors` (--tsa-certificate-chain, kept
    apart from the signers' anchors), every link valid at the stamped time.
    """
    reasons: list[str] = []
    for token in timestamps:
        try:
            stamp = timestamp.verify_stamp(token, signature)
        except timestamp.TimestampError as exc:
            reasons.append(str(exc))
            continue
        try:
            problem = _tsa_problem(stamp, tsa_anchors, signer)
        except (ValueError, UnsupportedAlgorithm) as exc:  # a certificate cryptography rejects
            problem = f"timestamp signer certificate is unusable: {exc}"
        if problem is None:
            return stamp.time, ""
        reasons.append(problem)
    return None, "; ".join(reasons)


def _tsa_problem(stamp: timestamp.Stamp, anchors: tuple[x509.Certificate, ...],
                 signer: x509.Certificate | None) -> str | None:
    tsa = stamp.signer
    name = tsa.subject.rfc4514_string()
    if signer is not None and (tsa == signer or _spki(tsa) == _spki(signer)):
        return (f"timestamp signer {name!r} is the signing certificate's own key: a TSA must "
                "be another key than the signer")
    try:
        ext = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return f"timestamp signer {name!r} has no extended key usage (needs critical timeStamping)"
    if list(ext.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        names = [_EKU_NAMES.get(oid, oid.dotted_string) for oid in ext.value]
        return (f"timestamp signer {name!r} extended key usage is {', '.join(names) or 'empty'}, "
                "not timeStamping only")
    if not ext.critical:
        return f"timestamp signer {name!r} extended key usage is not critical (RFC 3161 §2.3)"
    path = _path_to_anchor(tsa, stamp.certificates, anchors)
    if isinstance(path, str):
        return f"timestamp signer {name!r} does not chain to a trusted certificate"
    return next(filter(None, (validity_problem(c, stamp.time, leaf=False) for c in path)), None)


_MAX_PATH = 9  # leaf, at most seven intermediates, anchor: longer is a loop or an attack


def _path_to_anchor(
    leaf: x509.Certificate, pool: Iterable[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
) -> list[x509.Certificate] | str:
    """`leaf`, its issuers taken from `pool` (the certificates the artifact carried) and
    the trusted anchor they end at; else why no such path exists.

    One walker for signer and TSA chains, so both hold the same rules: every link is
    signed by the next, and the next is a CA. The pool's order is not trusted and
    certificates off the path are ignored: only the path's links are vouched for.
    """
    path = [leaf]
    candidates = (*pool, *anchors)
    while path[-1] not in anchors:
        child = path[-1]
        issuers = [c for c in candidates if c not in path and _issued_by(child, c)]
        parent = next((c for c in issuers if _is_ca(c)), None)
        if parent is None and issuers:
            return f"{issuers[0].subject.rfc4514_string()!r} is not a CA"
        if parent is None:
            return (f"chain ends at {child.subject.rfc4514_string()!r}, which is not issued "
                    "by any trusted certificate")
        if len(path) >= _MAX_PATH:
            return f"chain is longer than {_MAX_PATH} certificates without a trusted one"
        path.append(parent)
    return path


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_files(
    model: Path, signature: Path, st: oms.Statement, check: _Check,
    allow_unsigned: bool, digests: dict[str, str] | None,
) -> tuple[str, ...]:
    _check_statement(st, signature.name, check)
    ignore = set(st.ignore_paths) | oms.DEFAULT_IGNORED
    sig = signature.resolve()
    if model.is_dir() and model in sig.parents:
        ignore.add(sig.relative_to(model).as_posix())
    try:
        present = oms.model_files(model, frozenset(ignore), allow_symlinks=st.allow_symlinks)
    except oms.StatementError as exc:
        check.fail("statement", str(exc))
        return ()
    if model.is_file():
        return _check_single_file(model, st, check, digests)
    if st.method == "shards":
        return _check_shards(model, st, check, present, allow_unsigned)

    def hashes(todo: list[str]) -> dict[str, str]:
        if st.hash_type == "sha256" and digests is not None and all(n in digests for n in todo):
            return {n: digests[n] for n in todo}
        return hash_files(model, todo, st.hash_type)

    return _check_named(st, check, present, allow_unsigned, hashes)


def _check_statement(st: oms.Statement, signature_name: str, check: _Check) -> None:
    """What the statement says about itself: its root digest, and what it leaves unchecked."""
    recomputed = oms.root_digest(st.resources)
    if st.root_digest and st.root_digest != recomputed:
        check.fail("statement", f"subject digest {st.root_digest} does not match its resources "
                   f"({recomputed})")
    extra_ignored = sorted(set(st.ignore_paths) - oms.DEFAULT_IGNORED - {signature_name})
    if extra_ignored:
        check.warnings.append(
            "signature re-applies non-default ignore_paths " + ", ".join(extra_ignored)
            + ": files dropped there are not verified"
        )
    if st.allow_symlinks:
        check.warnings.append("signature allows symlinks: linked content outside the model "
                              "may be what was signed")


def _check_named(
    st: oms.Statement, check: _Check, present: list[str], allow_unsigned: bool,
    hashes: Callable[[list[str]], dict[str, str]],
) -> tuple[str, ...]:
    """The files signed against the files present: missing, not covered, changed."""
    expected = {r.name: r.digest for r in st.resources}
    if len(expected) != len(st.resources):
        check.fail("statement", "a file is listed more than once")
    on_disk = set(present)
    missing = sorted(set(expected) - on_disk)
    for name in missing:
        check.fail("missing", f"{name}: signed but missing", name)
    if not allow_unsigned:
        for name in sorted(on_disk - set(expected)):
            check.fail("not-covered", f"{name}: present but not covered by the signature", name)
    todo = sorted(on_disk & set(expected))
    actual = hashes(todo)
    for name in todo:
        if actual[name] != expected[name]:
            check.fail("changed", f"{name}: changed since signing (signed {st.hash_type} "
                       f"{expected[name]}, file has {actual[name]})", name)
    return tuple(todo)


def _check_single_file(model: Path, st: oms.Statement, check: _Check,
                       digests: dict[str, str] | None) -> tuple[str, ...]:
    if len(st.resources) != 1 or st.resources[0].name not in (".", model.name):
        check.fail("statement", f"signature is not over the single file {model.name}")
        return ()
    actual = (digests or {}).get(model.name) if st.hash_type == "sha256" else None
    actual = actual or hash_files(model, ["."], st.hash_type)["."]
    if actual != st.resources[0].digest:
        check.fail("changed", f"{model.name}: changed since signing (signed {st.hash_type} "
                   f"{st.resources[0].digest}, file has {actual})", model.name)
    return (model.name,)


def _check_shards(model: Path, st: oms.Statement, check: _Check, present: list[str],
                  allow_unsigned: bool) -> tuple[str, ...]:
    covered: dict[str, list[tuple[int, int, str]]] = {}
    for r in st.resources:
        path, _, span = r.name.partition(":")
        start, _, end = span.partition(":")
        covered.setdefault(path, []).append((int(start), int(end), r.digest))
    for name in sorted(set(covered) - set(present)):
        check.fail("missing", f"{name}: signed but missing", name)
    if not allow_unsigned:
        for name in sorted(set(present) - set(covered)):
            check.fail("not-covered", f"{name}: present but not covered by the signature", name)
    for name in sorted(set(covered) & set(present)):
        spans = sorted(covered[name])
        size = (model / name).stat().st_size
        if spans[0][0] != 0 or spans[-1][1] != size or any(
            a[1] != b[0] for a, b in pairwise(spans)
        ):
            check.fail("changed", f"{name}: shards do not cover the file's {size} bytes", name)
            continue
        for start, end, digest in spans:
            actual = _hash_span(model / name, start, end, st.hash_type)
            if actual != digest:
                check.fail("changed", f"{name}: bytes {start}-{end} changed since signing "
                           f"(signed {digest}, file has {actual})", name)
    return tuple(sorted(set(covered) & set(present)))


def trust_from_options(
    key: Path | None,
    certificate_chain: tuple[Path, ...],
    trust_config: Path | None,
    identity: str | None,
    issuer: str | None,
    accept_expired: bool = False,
    tsa_certificate_chain: tuple[Path, ...] = (),
) -> Trust | None:
    """The one mapping from the shared verify flags to what is trusted (None: nothing given)."""
    given = [bool(key), bool(certificate_chain), bool(trust_config)]
    if sum(given) > 1:
        raise UsageError("give one of --key, --certificate-chain or --trust-config")
    if accept_expired and not certificate_chain:
        raise UsageError("--accept-expired-certificates applies only to certificate-method "
                         "signatures checked with --certificate-chain")
    if tsa_certificate_chain and not certificate_chain:
        raise UsageError("--tsa-certificate-chain applies only to certificate-method "
                         "signatures checked with --certificate-chain")
    if key:
        return KeyTrust(load_public_key(key))
    if certificate_chain:
        return CertificateTrust(load_certificates(certificate_chain), identity, issuer,
                                accept_expired, load_certificates(tsa_certificate_chain))
    if trust_config:
        if not identity or not issuer:
            raise UsageError("--trust-config (Sigstore) needs both --identity and --issuer")
        return SigstoreTrust(trust_config, identity, issuer)
    return None
