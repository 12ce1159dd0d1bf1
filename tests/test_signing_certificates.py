"""Certificates are checked strictly, at signing and at verification; each refusal says why.

A test CA is built here with `cryptography`: root → intermediate → leaf, where
each test varies the leaf (validity, key usage, extended key usage, key).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from auditor.integrity.attest import verify_attestation
from auditor.integrity.signing import (
    CertificateTrust,
    _Check,
    load_certificates,
    trusted_stamp_time,
    verify_chain,
)
from auditor.integrity.timestamp import TimestampError, verify_stamp
from tests import pki

DOCS = Path(__file__).parent.parent / "docs" / "signing.md"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
KEY_ENCIPHERMENT = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
CODE_SIGNING = [ExtendedKeyUsageOID.CODE_SIGNING]
NO_TSA = "timestamp present but no --tsa-certificate-chain given; checked at now"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "weights.bin").write_bytes(bytes(range(256)) * 16)
    return root


class CA:
    """A root and an intermediate CA that issue leaves made to order."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root_key, self.inter_key = pki.ec_key("P-384"), pki.ec_key("P-256")
        root = pki.certificate(self.root_key, self.root_key, "Test Root CA", "Test Root CA",
                               ca=True)
        self.inter = pki.certificate(self.inter_key, self.root_key, "Test Intermediate",
                                     "Test Root CA", ca=True)
        self.root_pem = pki.write_cert(root, tmp / "root.pem")
        self.inter_pem = pki.write_cert(self.inter, tmp / "intermediate.pem")
        self.key = pki.ec_key()
        self.key_pem = pki.write_private(self.key, tmp / "leaf-key.pem")

    def leaf(self, name: str = "leaf", *, not_before: dt.datetime | None = None,
             not_after: dt.datetime | None = None, key_usage: x509.KeyUsage | None =
             DIGITAL_SIGNATURE, eku: list | None = CODE_SIGNING, key=None) -> Path:
        builder = (
            x509.CertificateBuilder()
            .subject_name(pki._name("model-publisher"))
            .issuer_name(self.inter.subject)
            .public_key((key or self.key).public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or pki.NOW)
            .not_valid_after(not_after or NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        cert = builder.sign(self.inter_key, hashes.SHA256())
        return pki.write_cert(cert, self.tmp / f"{name}.pem")

    def sign(self, run_cli, model: Path, leaf: Path, *extra: object):
        return run_cli("sign", model, "--key", self.key_pem, "--certificate", leaf,
                       "--certificate-chain", self.inter_pem, *extra)

    def verify(self, run_cli, model: Path, *extra: object):
        return run_cli("verify", model, "--certificate-chain", self.root_pem, *extra)


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return CA(tmp_path)


def rewrap(signature: Path, leaf: Path, *, timestamp: bytes | None = None) -> None:
    """Put another leaf (same key) into a bundle: how a bad certificate reaches a verifier.

    The DSSE signature covers the payload only, so it still verifies under the new leaf.
    """
    doc = json.loads(signature.read_text())
    der = x509.load_pem_x509_certificate(leaf.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    material = doc["verificationMaterial"]
    material["x509CertificateChain"]["certificates"][0] = {
        "rawBytes": base64.b64encode(der).decode()}
    if timestamp is not None:
        material["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": base64.b64encode(timestamp).decode()}]}
    signature.write_text(json.dumps(doc))


def signed_then_swapped(ca: CA, run_cli, model: Path, bad_leaf: Path, **kw) -> None:
    assert ca.sign(run_cli, model, ca.leaf("good")).code == 0
    rewrap(model / "model.sig", bad_leaf, **kw)


# ------------------------------------------------------------------ signing refuses

def test_sign_refuses_an_expired_leaf_naming_its_not_after(run_cli, model, ca):
    leaf = ca.leaf(not_after=NOW - dt.timedelta(days=30))
    run = ca.sign(run_cli, model, leaf)
    assert run.code == 2
    assert "expired" in run.err and "notAfter" in run.err and len(run.err.splitlines()) == 1
    assert not (model / "model.sig").exists()


def test_sign_refuses_a_leaf_not_yet_valid_naming_its_not_before(run_cli, model, ca):
    leaf = ca.leaf(not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=9))
    run = ca.sign(run_cli, model, leaf)
    assert run.code == 2 and "not valid before" in run.err and "notBefore" in run.err


def test_sign_refuses_a_server_auth_only_leaf(run_cli, model, ca):
    run = ca.sign(run_cli, model, ca.leaf(eku=[ExtendedKeyUsageOID.SERVER_AUTH]))
    assert run.code == 2
    assert "extended key usage is serverAuth, not codeSigning" in run.err


def test_sign_refuses_key_usage_without_digital_signature(run_cli, model, ca):
    run = ca.sign(run_cli, model, ca.leaf(key_usage=KEY_ENCIPHERMENT))
    assert run.code == 2
    assert "key usage is keyEncipherment, not digitalSignature" in run.err


def test_sign_refuses_a_certificate_for_another_key(run_cli, model, ca):
    run = ca.sign(run_cli, model, ca.leaf(key=pki.ec_key()))
    assert run.code == 2 and "public key does not match the private key" in run.err


def test_attest_refuses_a_server_auth_only_leaf(run_cli, ca, tmp_path):
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6"}))
    run = run_cli("attest", sbom, "--key", ca.key_pem, "--certificate",
                  ca.leaf(eku=[ExtendedKeyUsageOID.SERVER_AUTH]))
    assert run.code == 2 and "not codeSigning" in run.err


def test_leaf_without_eku_but_with_digital_signature_signs_and_verifies(run_cli, model, ca):
    assert ca.sign(run_cli, model, ca.leaf(eku=None)).code == 0
    assert ca.verify(run_cli, model).code == 0


def test_leaf_stating_no_usage_at_all_is_refused(run_cli, model, ca):
    run = ca.sign(run_cli, model, ca.leaf(eku=None, key_usage=None))
    assert run.code == 2 and "digitalSignature" in run.err and "codeSigning" in run.err


# ------------------------------------------------------------------ verification refuses

def _verify_json(ca: CA, run_cli, model: Path, *extra: object) -> tuple[int, dict]:
    run = ca.verify(run_cli, model, "--format", "json", *extra)
    return run.code, json.loads(run.out)


def test_server_auth_only_leaf_does_not_verify(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(eku=[ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]))
    code, doc = _verify_json(ca, run_cli, model)
    assert code == 1 and doc["status"] == "untrusted"
    assert ("extended key usage is serverAuth, clientAuth, not codeSigning"
            in doc["problems"][0]["message"])


def test_key_usage_without_digital_signature_does_not_verify(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(key_usage=KEY_ENCIPHERMENT))
    code, doc = _verify_json(ca, run_cli, model)
    assert code == 1 and "not digitalSignature" in doc["problems"][0]["message"]


def test_leaf_expired_30_days_ago_is_refused_without_a_trusted_timestamp(run_cli, model, ca):
    expired = NOW - dt.timedelta(days=30)
    signed_then_swapped(ca, run_cli, model, ca.leaf(not_after=expired))
    code, doc = _verify_json(ca, run_cli, model)
    assert code == 1 and doc["status"] == "untrusted"
    message = doc["problems"][0]["message"]
    assert f"certificate expired on {expired:%Y-%m-%d}" in message
    assert "no trusted timestamp" in message


def test_expired_intermediate_is_refused_naming_it(run_cli, model, ca, tmp_path):
    assert ca.sign(run_cli, model, ca.leaf()).code == 0
    expired = (x509.CertificateBuilder().subject_name(ca.inter.subject)
               .issuer_name(ca.inter.issuer).public_key(ca.inter_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=900))
               .not_valid_after(NOW - dt.timedelta(days=3))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca.root_key, hashes.SHA256()))
    doc = json.loads((model / "model.sig").read_text())
    doc["verificationMaterial"]["x509CertificateChain"]["certificates"][1] = {
        "rawBytes": base64.b64encode(expired.public_bytes(serialization.Encoding.DER)).decode()}
    (model / "model.sig").write_text(json.dumps(doc))
    code, out = _verify_json(ca, run_cli, model)
    assert code == 1
    assert "'CN=Test Intermediate' expired on" in out["problems"][0]["message"]


def test_malformed_rfc3161_timestamp_is_not_trusted(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(not_after=NOW - dt.timedelta(days=30)),
                        timestamp=b"\x30\x03\x02\x01\x00")
    code, doc = _verify_json(ca, run_cli, model, "--tsa-certificate-chain", ca.root_pem)
    assert code == 1
    message = doc["problems"][0]["message"]
    assert "no trusted timestamp (the bundle's RFC 3161 timestamp is not trusted: " in message


def _tsa(ca: CA, issuer_key, issuer: x509.Certificate, name: str, *, key=None,
         critical: bool = True) -> tuple[Path, Path]:
    """A TSA certificate as openssl's `ts -reply` requires: critical timeStamping EKU only."""
    key = key or pki.ec_key()
    cert = (x509.CertificateBuilder().subject_name(pki._name(name))
            .issuer_name(issuer.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(pki.NOW).not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(DIGITAL_SIGNATURE, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=critical)
            .sign(issuer_key, hashes.SHA256()))
    return (pki.write_cert(cert, ca.tmp / f"{name}.pem"),
            pki.write_private(key, ca.tmp / f"{name}-key.pem"))


def _openssl_stamp(ca: CA, data: bytes, tsa: tuple[Path, Path], ess: str = "sha256") -> bytes:
    """A real RFC 3161 TimeStampResp over `data`, made by `openssl ts -reply` now."""
    work = ca.tmp
    (work / "data.bin").write_bytes(data)
    (work / "serial.txt").write_text("01\n")
    (work / "ts.cnf").write_text(
        "[tsa_config]\nserial = serial.txt\nsigner_digest = sha256\n"
        f"default_policy = 1.2.3.4.1\ndigests = sha256\ness_cert_id_alg = {ess}\n")
    for args in (["ts", "-query", "-data", "data.bin", "-sha256", "-cert", "-no_nonce",
                  "-out", "req.tsq"],
                 ["ts", "-reply", "-queryfile", "req.tsq", "-config", "ts.cnf", "-section",
                  "tsa_config", "-signer", str(tsa[0]), "-inkey", str(tsa[1]),
                  "-out", "resp.tsr"]):
        done = subprocess.run(["openssl", *args], cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    return (work / "resp.tsr").read_bytes()


def _der(tag: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    count = (size.bit_length() + 7) // 8
    return bytes([tag, 0x80 | count]) + size.to_bytes(count, "big") + body


def _oid(dotted: str) -> bytes:
    first, second, *rest = map(int, dotted.split("."))
    body = bytes([40 * first + second])
    for number in rest:
        chunk = [number & 0x7F]
        while number > 0x7F:
            number >>= 7
            chunk.append(0x80 | (number & 0x7F))
        body += bytes(reversed(chunk))
    return _der(0x06, body)


def _sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def _restamp(token: bytes, tsa: tuple[Path, Path], *, ess: Path | None) -> bytes:
    """`token`'s TSTInfo (time, imprint) signed again by `tsa`, as openssl would refuse to:
    any certificate, and the SigningCertificateV2 naming `ess` (None: no such attribute)."""
    from auditor.integrity import timestamp as ts

    signed_data = ts._read(token, 0)[0].children()[1].children()[1].children()[0]
    tst = signed_data.children()[2].children()[1].children()[0].body
    cert = x509.load_pem_x509_certificate(tsa[0].read_bytes())
    key = serialization.load_pem_private_key(tsa[1].read_bytes(), None)
    sha256 = _der(0x30, _oid("2.16.840.1.101.3.4.2.1"))
    tst_oid = "1.2.840.113549.1.9.16.1.4"
    attrs = [_der(0x30, _oid("1.2.840.113549.1.9.3"), _der(0x31, _oid(tst_oid))),
             _der(0x30, _oid("1.2.840.113549.1.9.4"), _der(0x31, _der(0x04, _sha256(tst))))]
    if ess is not None:
        named = x509.load_pem_x509_certificate(ess.read_bytes())
        cert_hash = _sha256(named.public_bytes(serialization.Encoding.DER))
        attrs.append(_der(0x30, _oid("1.2.840.113549.1.9.16.2.47"), _der(
            0x31, _der(0x30, _der(0x30, _der(0x30, _der(0x04, cert_hash)))))))
    signed_attrs = _der(0x31, *attrs)
    signature = key.sign(signed_attrs, ec.ECDSA(hashes.SHA256()))
    serial = cert.serial_number.to_bytes(cert.serial_number.bit_length() // 8 + 1, "big")
    signer_info = _der(0x30, _der(0x02, b"\x01"),
                       _der(0x30, cert.issuer.public_bytes(), _der(0x02, serial)), sha256,
                       b"\xa0" + signed_attrs[1:], _der(0x30, _oid("1.2.840.10045.4.3.2")),
                       _der(0x04, signature))
    content = _der(0x30, _der(0x02, b"\x03"), _der(0x31, sha256),
                   _der(0x30, _oid(tst_oid), _der(0xA0, _der(0x04, tst))),
                   _der(0xA0, cert.public_bytes(serialization.Encoding.DER)),
                   _der(0x31, signer_info))
    return _der(0x30, _der(0x30, _der(0x02, b"\x00")),
                _der(0x30, _oid("1.2.840.113549.1.7.2"), _der(0xA0, content)))


def test_trusted_rfc3161_timestamp_decides_validity(run_cli, model, ca, tmp_path):
    """A leaf that expired after a TSA stamped the signature verifies only if that TSA
    chains to --tsa-certificate-chain (not to the signers' anchors), is another key than
    the signer, has a critical timeStamping-only EKU and is named by the token (ESSCertID)."""
    import shutil
    import time

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    leaf = ca.leaf("short", not_after=expires)
    assert ca.sign(run_cli, model, leaf).code == 0
    sig_file = model / "model.sig"
    signature = base64.b64decode(
        json.loads(sig_file.read_text())["dsseEnvelope"]["signatures"][0]["sig"])
    tsa_root_key = pki.ec_key()
    tsa_root = pki.certificate(tsa_root_key, tsa_root_key, "TSA Root", "TSA Root", ca=True)
    tsa_root_pem = pki.write_cert(tsa_root, tmp_path / "tsa-root.pem")
    trusted = _tsa(ca, tsa_root_key, tsa_root, "tsa")
    signing_ca_tsa = _tsa(ca, ca.root_key,
                          x509.load_pem_x509_certificate(ca.root_pem.read_bytes()), "ca-tsa")
    other_root_key = pki.ec_key()
    other_root = pki.certificate(other_root_key, other_root_key, "Other Root", "Other Root",
                                 ca=True)
    stranger = _tsa(ca, other_root_key, other_root, "stranger-tsa")
    signer_key_tsa = _tsa(ca, tsa_root_key, tsa_root, "signer-key-tsa", key=ca.key)
    lax = _tsa(ca, tsa_root_key, tsa_root, "lax-tsa", critical=False)
    good = _openssl_stamp(ca, signature, trusted)
    stamps = {"trusted": good, "ess-v1": _openssl_stamp(ca, signature, trusted, "sha1"),
              "stranger": _openssl_stamp(ca, signature, stranger),
              "signing-ca-tsa": _openssl_stamp(ca, signature, signing_ca_tsa),
              "signer-key": _openssl_stamp(ca, signature, signer_key_tsa),
              "other-bytes": _openssl_stamp(ca, signature + b"x", trusted)}
    assert dt.datetime.now(dt.UTC) < expires, "machine too slow: stamped after the leaf expired"
    stamps |= {"rebuilt": _restamp(good, trusted, ess=trusted[0]),
               "signer-leaf": _restamp(good, (leaf, ca.key_pem), ess=leaf),
               "eku-not-critical": _restamp(good, lax, ess=lax[0]),
               "no-ess": _restamp(good, trusted, ess=None),
               "ess-other-cert": _restamp(good, trusted, ess=lax[0])}
    chain = tuple(x509.load_pem_x509_certificates(p.read_bytes())[0]
                  for p in (leaf, ca.inter_pem))
    check = _Check()  # before expiry, without TSA anchors: verified at now, and said so
    assert verify_chain(chain, (x509.load_pem_x509_certificate(ca.root_pem.read_bytes()),),
                        check, timestamps=(good,), signature=signature)
    assert check.notes == [NO_TSA] and not check.problems
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
    results = {}
    for name, stamp in stamps.items():
        copy = tmp_path / name
        shutil.copytree(model, copy)
        rewrap(copy / "model.sig", leaf, timestamp=stamp)
        anchors = ca.root_pem if name == "signer-leaf" else tsa_root_pem
        results[name] = _verify_json(ca, run_cli, copy, "--tsa-certificate-chain", anchors)
    for name in ("trusted", "ess-v1", "rebuilt"):
        code, doc = results[name]
        assert code == 0 and doc["status"] == "verified", (name, doc)
    refusals = {
        "stranger": "'CN=stranger-tsa' does not chain to a trusted certificate",
        "signing-ca-tsa": "'CN=ca-tsa' does not chain to a trusted certificate",
        "signer-key": "'CN=signer-key-tsa' is the signing certificate's own key",
        "signer-leaf": "'CN=model-publisher' is the signing certificate's own key",
        "eku-not-critical": "'CN=lax-tsa' extended key usage is not critical",
        "no-ess": "lack SigningCertificate(V2) (ESSCertID)",
        "ess-other-cert": "names another certificate than the one that signed the token",
        "other-bytes": "message imprint differs",
    }
    for name, reason in refusals.items():
        code, doc = results[name]
        message = doc["problems"][0]["message"]
        assert code == 1 and doc["status"] == "untrusted", (name, doc)
        assert reason in message and "expired on" in message, (name, message)
        assert "\n" not in message
    for anchors in ((), ("--certificate-chain", tsa_root_pem)):  # the TSA root as a signer CA
        code, doc = _verify_json(ca, run_cli, tmp_path / "trusted", *anchors)
        message = doc["problems"][0]["message"]
        assert code == 1 and "expired on" in message and NO_TSA in message, doc
    tsa_anchor = (tsa_root,)
    assert trusted_stamp_time((good,), signature, tsa_anchor)[0] is not None
    for cut in range(len(good)):  # a truncated token never parses
        with pytest.raises(TimestampError):
            verify_stamp(good[:cut], signature)
    for n in range(0, len(good), 5):  # a flipped byte fails with a reason, never a crash
        flipped = good[:n] + bytes([good[n] ^ 0x41]) + good[n + 1:]
        with contextlib.suppress(TimestampError):
            verify_stamp(flipped, signature)
        trusted_stamp_time((flipped,), signature, tsa_anchor)


def test_tsa_certificate_chain_needs_a_certificate_chain(run_cli, model, ca):
    assert ca.sign(run_cli, model, ca.leaf()).code == 0
    run = run_cli("verify", model, "--tsa-certificate-chain", ca.root_pem)
    assert run.code == 2 and "--certificate-chain" in run.err


def test_expired_attestation_accepted_is_said_to_the_caller(run_cli, ca, tmp_path):
    """verify-attestation and the admission webhook warn on `accepted_expired`."""
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6",
                                "components": []}))
    att = tmp_path / "bom.att"
    assert run_cli("attest", sbom, "--key", ca.key_pem, "--certificate", ca.leaf("good"),
                   "-o", att).code == 0
    roots = load_certificates((ca.root_pem, ca.inter_pem))
    current = verify_attestation(att, CertificateTrust(roots, accept_expired=True), sbom)
    assert current.accepted_expired is False and current["bomFormat"] == "CycloneDX"
    rewrap(att, ca.leaf(not_after=NOW - dt.timedelta(days=30)))
    waived = verify_attestation(att, CertificateTrust(roots, accept_expired=True), sbom)
    assert waived.accepted_expired is True and "expired on" in waived.accepted[0]
    assert waived == current


def test_accept_expired_certificates_restores_acceptance_loudly(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(not_after=NOW - dt.timedelta(days=30)))
    run = ca.verify(run_cli, model, "--accept-expired-certificates")
    assert run.code == 0, run.out + run.err
    assert run.out.startswith("verified (expired certificate accepted):")
    assert "WARNING" in run.err and "expired" in run.err
    code, doc = _verify_json(ca, run_cli, model, "--accept-expired-certificates")
    assert code == 0 and doc["status"] == "verified"
    assert doc["status_detail"] == "verified (expired certificate accepted)"
    assert "expired on" in doc["accepted"][0]


def test_accept_expired_certificates_does_not_excuse_a_wrong_usage(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(eku=[ExtendedKeyUsageOID.SERVER_AUTH]))
    assert ca.verify(run_cli, model, "--accept-expired-certificates").code == 1


def test_accept_expired_certificates_needs_a_certificate_chain(run_cli, model, tmp_path):
    pub = pki.write_public(pki.ec_key(), tmp_path / "pub.pem")
    run = run_cli("verify", model, "--key", pub, "--accept-expired-certificates")
    assert run.code == 2 and "--certificate-chain" in run.err


def test_scan_signature_with_an_expired_leaf_is_untrusted(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(not_after=NOW - dt.timedelta(days=30)))
    run = run_cli("scan", model, "--certificate-chain", ca.root_pem, "--format", "json")
    assert "AUD-SIG-003" in run.out and "no trusted timestamp" in run.out


def test_attestation_by_an_expired_leaf_is_refused(run_cli, ca, tmp_path):
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6",
                                "components": []}))
    att = tmp_path / "bom.att"
    assert run_cli("attest", sbom, "--key", ca.key_pem, "--certificate", ca.leaf("good"),
                   "-o", att).code == 0
    rewrap(att, ca.leaf(not_after=NOW - dt.timedelta(days=30)))
    run = run_cli("policy", "check", sbom, "--policy", "baseline", "--attestation", att,
                  "--certificate-chain", ca.root_pem, "--certificate-chain", ca.inter_pem)
    assert run.code == 1 and "no trusted timestamp" in run.err


# ------------------------------------------------------------------ the documented recipes

def _doc_block(marker: str, lang: str) -> str:
    """The fenced block right after `<!-- test: marker -->` in docs/signing.md."""
    text = DOCS.read_text()
    found = re.search(rf"<!-- test: {marker} -->\s*```{lang}\n(.*?)```", text, re.S)
    assert found, f"docs/signing.md has no `{marker}` block"
    return found.group(1)


def _sign_and_verify_with(run_cli, model: Path, folder: Path) -> None:
    assert run_cli("sign", model, "--key", folder / "leaf-key.pem", "--certificate",
                   folder / "leaf.pem", "--certificate-chain", folder / "ca.pem").code == 0
    run = run_cli("verify", model, "--certificate-chain", folder / "ca.pem", "--identity",
                  "release@example.org")
    assert run.code == 0, run.out + run.err


def test_documented_openssl_commands_make_a_chain_that_signs_and_verifies(run_cli, model,
                                                                         tmp_path):
    work = tmp_path / "openssl"
    work.mkdir()
    script = _doc_block("openssl-chain", "sh")
    done = subprocess.run(["sh", "-e", "-c", script], cwd=work, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    _sign_and_verify_with(run_cli, model, work)
    leaf = x509.load_pem_x509_certificate((work / "leaf.pem").read_bytes())
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == CODE_SIGNING


def test_documented_openssl_key_pair_signs_and_verifies(run_cli, model, tmp_path):
    work = tmp_path / "keys"
    work.mkdir()
    done = subprocess.run(["sh", "-e", "-c", _doc_block("openssl-key", "sh")], cwd=work,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert run_cli("sign", model, "--key", work / "private.pem").code == 0
    assert run_cli("verify", model, "--key", work / "public.pem").code == 0


def test_documented_python_script_makes_a_chain_that_signs_and_verifies(run_cli, model,
                                                                        tmp_path):
    work = tmp_path / "python"
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", _doc_block("python-chain", "python")],
                          cwd=work, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _sign_and_verify_with(run_cli, model, work)


def test_scan_accepting_an_expired_leaf_records_the_waiver(run_cli, model, ca):
    signed_then_swapped(ca, run_cli, model, ca.leaf(not_after=NOW - dt.timedelta(days=30)))
    run = run_cli("scan", model, "--certificate-chain", ca.root_pem, "--format", "json",
                  "--accept-expired-certificates")
    doc = json.loads(run.out)["models"][0]
    assert "WARNING" in run.err
    assert doc["facts"]["signature"]["status_detail"] == "verified (expired certificate accepted)"
    assert [f["rule"] for f in doc["findings"] if f["rule"].startswith("AUD-SIG")] == [
        "AUD-SIG-007"]
