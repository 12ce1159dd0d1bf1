"""DSSE envelopes inside Sigstore bundles (v0.3): the wire format OMS and attestations share.

Only the bundle shapes the OpenSSF Model Signing reference accepts are
produced: `mediaType` v0.3, standard base64 with padding, one signature,
ECDSA over NIST P-256/384/521 with the curve's matching hash. Parsing is
strict and every failure names what was expected and what was found.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
ACCEPTED_MEDIA_TYPES = (BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3")
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
CURVE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


class BundleError(ValueError):
    """The bundle is malformed or unsupported; the message says exactly how."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _hash_for(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> hashes.HashAlgorithm:
    name = key.curve.name
    if name not in CURVE_HASHES:
        raise BundleError(f"unsupported curve {name} (OMS allows P-256, P-384, P-521)")
    return CURVE_HASHES[name]()


def check_signing_key(key: object) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        kind = type(key).__name__.lstrip("_")
        raise BundleError(f"unsupported key type {kind}: OMS signatures use ECDSA P-256/384/521")
    _hash_for(key)
    return key


def check_public_key(key: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        kind = type(key).__name__.lstrip("_")
        raise BundleError(f"unsupported public key type {kind}: expected ECDSA P-256/384/521")
    _hash_for(key)
    return key


def key_hint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the PEM SubjectPublicKeyInfo text, as the OMS reference writes it."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


@dataclass(frozen=True)
class Bundle:
    payload_type: str
    payload: bytes
    signature: bytes
    public_key_hint: str | None = None
    certificates: tuple[x509.Certificate, ...] = ()  # leaf first
    keyless: bool = False  # Sigstore: Fulcio certificate + transparency log entries
    raw: bytes = b""  # the bundle as read, for the sigstore library to parse itself
    # RFC 3161 timestamp tokens the bundle carries (DER); claims until a TSA is verified
    timestamps: tuple[bytes, ...] = ()

    @property
    def method(self) -> str:
        if self.keyless:
            return "sigstore"
        return "certificate" if self.certificates else "key"


def make_bundle(
    payload: bytes,
    key: ec.EllipticCurvePrivateKey,
    certificates: tuple[x509.Certificate, ...] = (),
    payload_type: str = INTOTO_PAYLOAD_TYPE,
) -> dict[str, Any]:
    """Sign `payload` and wrap it as the OMS reference does (key or certificate method)."""
    signature = key.sign(pae(payload_type, payload), ec.ECDSA(_hash_for(key)))
    if certificates:
        material: dict[str, Any] = {
            "x509CertificateChain": {
                "certificates": [
                    {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER))
                     .decode()}
                    for c in certificates
                ]
            },
            "tlogEntries": [],
        }
    else:
        material = {"publicKey": {"hint": key_hint(key.public_key())}, "tlogEntries": []}
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{what} is not standard base64") from None


def parse_bundle(data: bytes) -> Bundle:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BundleError("bundle is not a JSON object")
    unknown = set(doc) - {"mediaType", "verificationMaterial", "dsseEnvelope"}
    if unknown:
        raise BundleError(f"unexpected top-level key(s): {', '.join(sorted(unknown))}")
    if doc.get("mediaType") not in ACCEPTED_MEDIA_TYPES:
        raise BundleError(
            f"mediaType {doc.get('mediaType')!r}, expected {BUNDLE_MEDIA_TYPE!r}"
        )
    env = doc.get("dsseEnvelope")
    if not isinstance(env, dict):
        raise BundleError("no dsseEnvelope (message-signature bundles are not OMS signatures)")
    payload = _b64(env.get("payload"), "dsseEnvelope.payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs or not isinstance(sigs[0], dict):
        raise BundleError("dsseEnvelope.signatures is empty")
    signature = _b64(sigs[0].get("sig"), "dsseEnvelope.signatures[0].sig")
    payload_type = env.get("payloadType")
    if not isinstance(payload_type, str):
        raise BundleError("dsseEnvelope.payloadType missing")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise BundleError("verificationMaterial missing")
    if "publicKey" in material:
        pk = material["publicKey"]
        hint = pk.get("hint") if isinstance(pk, dict) else None
        return Bundle(payload_type, payload, signature, public_key_hint=hint)
    if "x509CertificateChain" in material:
        certs = material["x509CertificateChain"]
        raw = certs.get("certificates") if isinstance(certs, dict) else None
        if not isinstance(raw, list) or not raw:
            raise BundleError("x509CertificateChain.certificates is empty")
        chain = tuple(_certificate(c, i) for i, c in enumerate(raw))
        return Bundle(payload_type, payload, signature, certificates=chain,
                      timestamps=_timestamps(material))
    if "certificate" in material:
        leaf = _certificate(material["certificate"], 0)
        return Bundle(payload_type, payload, signature, certificates=(leaf,), keyless=True,
                      raw=data)
    raise BundleError("verificationMaterial has no publicKey, certificate or x509CertificateChain")


def _timestamps(material: dict[str, Any]) -> tuple[bytes, ...]:
    data = material.get("timestampVerificationData")
    entries = data.get("rfc3161Timestamps") if isinstance(data, dict) else None
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise BundleError("timestampVerificationData.rfc3161Timestamps is not a list")
    return tuple(_b64(e.get("signedTimestamp") if isinstance(e, dict) else None,
                      f"rfc3161Timestamps[{i}].signedTimestamp") for i, e in enumerate(entries))


def _certificate(entry: Any, index: int) -> x509.Certificate:
    raw = _b64(entry.get("rawBytes") if isinstance(entry, dict) else None,
               f"certificate[{index}].rawBytes")
    try:
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise BundleError(f"certificate[{index}] is not DER X.509: {exc}") from None


def verify_signature(bundle: Bundle, public_key: ec.EllipticCurvePublicKey) -> bool:
    """True when `bundle`'s DSSE signature verifies under `public_key`."""
    try:
        public_key.verify(
            bundle.signature, pae(bundle.payload_type, bundle.payload),
            ec.ECDSA(_hash_for(public_key)),
        )
    except InvalidSignature:
        return False
    return True
