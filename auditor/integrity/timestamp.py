"""RFC 3161 timestamps: the one trusted answer to "when was this signature made?".

A certificate-method bundle may carry TimeStampResp tokens over its DSSE
signature bytes (`timestampVerificationData.rfc3161Timestamps`). This module
reads one with a minimal DER reader and checks everything the token itself
can prove: the granted status, that it stamps exactly these signature bytes
(message imprint), that the signed attributes bind the TSTInfo (content type
and message digest) and name the certificate that signed it (ESS
SigningCertificate or SigningCertificateV2, RFC 2634/5035: without it a
certificate could be swapped for another with the same key), and the TSA's
signature over them. Whether the TSA is trusted (its chain, its
timeStamping usage, that it is not the signer) is the caller's question: it
holds the trust anchors. Any doubt raises `TimestampError` with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_SIGNED_DATA = "1.2.840.113549.1.7.2"
_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"  # ESSCertID: SHA-1 of the certificate
_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"  # ESSCertIDv2: stated hash, or SHA-256
# Digest algorithms a stamp may use (SHA-1 is refused: collisions make an imprint meaningless).
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
# Signature algorithms: the hash they fix, or None for "the SignerInfo's digestAlgorithm".
_SIGNATURES: dict[str, type[hashes.HashAlgorithm] | None] = {
    "1.2.840.10045.4.3.2": hashes.SHA256, "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512, "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384, "1.2.840.113549.1.1.13": hashes.SHA512,
    "1.2.840.113549.1.1.1": None, "1.2.840.10045.2.1": None,
}


class TimestampError(ValueError):
    """The token does not prove a signing time; the message says why."""


@dataclass(frozen=True)
class Stamp:
    time: dt.datetime  # TSTInfo genTime, UTC
    signer: x509.Certificate  # the TSA certificate that signed the token
    certificates: tuple[x509.Certificate, ...]  # every certificate the token carries


@dataclass(frozen=True)
class _Der:
    tag: int
    body: bytes
    raw: bytes

    def children(self) -> list[_Der]:
        out, pos = [], 0
        while pos < len(self.body):
            item, pos = _read(self.body, pos)
            out.append(item)
        return out


def _read(data: bytes, pos: int) -> tuple[_Der, int]:
    """One DER element at `pos`: definite lengths only, low tag numbers only."""
    start = pos
    if pos + 2 > len(data) or data[pos] & 0x1F == 0x1F:
        raise TimestampError("timestamp is not DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > len(data):
            raise TimestampError("timestamp is not DER")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise TimestampError("timestamp is truncated")
    return _Der(tag, data[pos:end], data[start:end]), end


def _expect(item: _Der, tag: int, what: str) -> _Der:
    if item.tag != tag:
        raise TimestampError(f"timestamp: {what} has tag 0x{item.tag:02x}, expected 0x{tag:02x}")
    return item


def _oid(item: _Der) -> str:
    body = _expect(item, 0x06, "OBJECT IDENTIFIER").body
    if not body:
        raise TimestampError("timestamp: empty OBJECT IDENTIFIER")
    parts, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    first = min(parts[0] // 40, 2)
    return ".".join(map(str, [first, parts[0] - 40 * first, *parts[1:]]))


def _digest(item: _Der, what: str) -> hashes.HashAlgorithm:
    oid = _oid(_expect(item, 0x30, what).children()[0])
    if oid not in _DIGESTS:
        raise TimestampError(f"timestamp: {what} {oid} is not SHA-256/384/512")
    return _DIGESTS[oid]()


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def verify_stamp(token: bytes, signed: bytes) -> Stamp:
    """Check `token` (a DER TimeStampResp) stamps `signed`; return its time and signer.

    Raises TimestampError naming the first check that fails.
    """
    try:
        return _verify(token, signed)
    except TimestampError:
        raise
    except (IndexError, ValueError, UnsupportedAlgorithm) as exc:
        raise TimestampError(f"timestamp is malformed: {exc}") from None


def _verify(token: bytes, signed: bytes) -> Stamp:
    response, end = _read(token, 0)
    if end != len(token):
        raise TimestampError("timestamp has trailing bytes")
    status, *rest = _expect(response, 0x30, "TimeStampResp").children()
    granted = _expect(status, 0x30, "PKIStatusInfo").children()[0]
    if int.from_bytes(_expect(granted, 0x02, "PKIStatus").body, "big") not in (0, 1) or not rest:
        raise TimestampError("timestamp response was not granted")
    content_type, wrapped = _expect(rest[0], 0x30, "ContentInfo").children()
    if _oid(content_type) != _SIGNED_DATA:
        raise TimestampError("timestamp token is not CMS SignedData")
    signed_data = _expect(_expect(wrapped, 0xA0, "content").children()[0], 0x30, "SignedData")
    fields = signed_data.children()
    encap = _expect(fields[2], 0x30, "encapContentInfo").children()
    if _oid(encap[0]) != _TST_INFO:
        raise TimestampError("timestamp token does not hold a TSTInfo")
    tst_der = _expect(_expect(encap[1], 0xA0, "eContent").children()[0], 0x04, "eContent").body
    tst, _ = _read(tst_der, 0)
    tst_fields = _expect(tst, 0x30, "TSTInfo").children()
    imprint_alg, imprint = _expect(tst_fields[2], 0x30, "messageImprint").children()
    if _expect(imprint, 0x04, "hashedMessage").body != _hash(
            _digest(imprint_alg, "message imprint algorithm"), signed):
        raise TimestampError("timestamp is over other bytes than this signature "
                             "(message imprint differs)")
    when = _generalized_time(_expect(tst_fields[4], 0x18, "genTime").body)
    certs = tuple(x509.load_der_x509_certificate(c.raw)
                  for f in fields[3:] if f.tag == 0xA0 for c in f.children())
    infos = _expect(fields[-1], 0x31, "signerInfos").children()
    if len(infos) != 1:
        raise TimestampError(f"timestamp has {len(infos)} signers, expected exactly 1")
    signer = _check_signer_info(infos[0], tst_der, certs)
    return Stamp(when, signer, certs)


def _check_signer_info(info: _Der, tst_der: bytes, certs: tuple[x509.Certificate, ...]
                       ) -> x509.Certificate:
    parts = _expect(info, 0x30, "SignerInfo").children()
    sid, digest_alg, attrs = parts[1], parts[2], parts[3]
    signer = _find_signer(sid, certs)
    digest = _digest(digest_alg, "SignerInfo digestAlgorithm")
    _expect(attrs, 0xA0, "signedAttrs")
    values: dict[str, _Der] = {}
    for attr in attrs.children():
        oid, value_set = _expect(attr, 0x30, "Attribute").children()
        values[_oid(oid)] = _expect(value_set, 0x31, "attribute values").children()[0]
    if _CONTENT_TYPE not in values or _oid(values[_CONTENT_TYPE]) != _TST_INFO:
        raise TimestampError("timestamp signed attributes do not name TSTInfo as content type")
    if _MESSAGE_DIGEST not in values or values[_MESSAGE_DIGEST].body != _hash(digest, tst_der):
        raise TimestampError("timestamp signature does not cover its TSTInfo (message digest "
                             "differs)")
    _check_signing_certificate(values, signer)
    sig_alg, signature = parts[4], _expect(parts[5], 0x04, "signature").body
    oid = _oid(_expect(sig_alg, 0x30, "signatureAlgorithm").children()[0])
    if oid not in _SIGNATURES:
        raise TimestampError(f"timestamp signature algorithm {oid} is not supported")
    algorithm = (_SIGNATURES[oid] or type(digest))()
    to_verify = b"\x31" + attrs.raw[1:]  # signed as a SET OF, stored as [0] IMPLICIT
    key = signer.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, to_verify, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, to_verify, padding.PKCS1v15(), algorithm)
        else:
            raise TimestampError(f"timestamp signer key {type(key).__name__} is not supported")
    except (InvalidSignature, UnsupportedAlgorithm):
        raise TimestampError("timestamp signature does not verify under its TSA "
                             "certificate") from None
    return signer


def _check_signing_certificate(values: dict[str, _Der], signer: x509.Certificate) -> None:
    """The signed attributes must name `signer` by hash (ESSCertID / ESSCertIDv2).

    The first ESSCertID of the list identifies the signing certificate (RFC 5035
    §5.4). Every attribute present must match; a token with neither is refused.
    """
    if _SIGNING_CERTIFICATE not in values and _SIGNING_CERTIFICATE_V2 not in values:
        raise TimestampError("timestamp signed attributes lack SigningCertificate(V2) "
                             "(ESSCertID): the TSA certificate is not bound to the token")
    der = signer.public_bytes(serialization.Encoding.DER)
    for oid, version in ((_SIGNING_CERTIFICATE, ""), (_SIGNING_CERTIFICATE_V2, "V2")):
        if oid not in values:
            continue
        certs = _expect(values[oid], 0x30, f"SigningCertificate{version}").children()
        first = _expect(_expect(certs[0], 0x30, "certs").children()[0], 0x30, "ESSCertID")
        fields = first.children()
        algorithm: hashes.HashAlgorithm = hashes.SHA1()
        if version:
            algorithm = hashes.SHA256()
            if fields[0].tag == 0x30:
                algorithm = _digest(fields.pop(0), "ESSCertIDv2 hashAlgorithm")
        if _expect(fields[0], 0x04, "certHash").body != _hash(algorithm, der):
            raise TimestampError(f"timestamp SigningCertificate{version} (ESSCertID) names "
                                 "another certificate than the one that signed the token")


def _find_signer(sid: _Der, certs: tuple[x509.Certificate, ...]) -> x509.Certificate:
    for cert in certs:
        if sid.tag == 0x30:
            issuer, serial = sid.children()
            if (issuer.raw == cert.issuer.public_bytes()
                    and int.from_bytes(serial.body, "big", signed=True) == cert.serial_number):
                return cert
        elif sid.tag == 0x80:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sid.body:
                return cert
    raise TimestampError("timestamp does not carry its TSA's certificate")


def _generalized_time(body: bytes) -> dt.datetime:
    text = body.decode("ascii")
    if not text.endswith("Z"):
        raise TimestampError(f"timestamp genTime {text!r} is not UTC")
    whole, _, fraction = text[:-1].partition(".")
    moment = dt.datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return moment + dt.timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0")))
