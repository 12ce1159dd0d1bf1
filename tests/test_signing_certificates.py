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
from cryptography.x509.oid import ExtendedKeyUsageOID

from auditor.integrity.signing import trusted_stamp_time
from auditor.integrity.timestamp import TimestampError, verify_stamp
from tests import pki

DOCS = Path(__file__).parent.parent / "docs" / "signing.md"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
KEY_ENCIPHERMENT = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
CODE_SIGNING = [ExtendedKeyUsageOID.CODE_SIGNING]


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
    code, doc = _verify_json(ca, run_cli, model)
    assert code == 1
    message = doc["problems"][0]["message"]
    assert "no trusted timestamp (the bundle's RFC 3161 timestamp is not trusted: " in message


def _tsa(ca: CA, issuer_key, issuer: x509.Certificate, name: str) -> tuple[Path, Path]:
    """A TSA certificate as openssl's `ts -reply` requires: critical timeStamping EKU only."""
    key = pki.ec_key()
    cert = (x509.CertificateBuilder().subject_name(pki._name(name))
            .issuer_name(issuer.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(pki.NOW).not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(DIGITAL_SIGNATURE, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True)
            .sign(issuer_key, hashes.SHA256()))
    return (pki.write_cert(cert, ca.tmp / f"{name}.pem"),
            pki.write_private(key, ca.tmp / f"{name}-key.pem"))


def _openssl_stamp(ca: CA, data: bytes, tsa: tuple[Path, Path]) -> bytes:
    """A real RFC 3161 TimeStampResp over `data`, made by `openssl ts -reply` now."""
    work = ca.tmp
    (work / "data.bin").write_bytes(data)
    (work / "serial.txt").write_text("01\n")
    (work / "ts.cnf").write_text(
        "[tsa_config]\nserial = serial.txt\nsigner_digest = sha256\n"
        "default_policy = 1.2.3.4.1\ndigests = sha256\ness_cert_id_alg = sha256\n")
    for args in (["ts", "-query", "-data", "data.bin", "-sha256", "-cert", "-no_nonce",
                  "-out", "req.tsq"],
                 ["ts", "-reply", "-queryfile", "req.tsq", "-config", "ts.cnf", "-section",
                  "tsa_config", "-signer", str(tsa[0]), "-inkey", str(tsa[1]),
                  "-out", "resp.tsr"]):
        done = subprocess.run(["openssl", *args], cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    return (work / "resp.tsr").read_bytes()


def test_trusted_rfc3161_timestamp_decides_validity(run_cli, model, ca, tmp_path):
    """A leaf that expired after a trusted TSA stamped the signature still verifies."""
    import shutil
    import time

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    leaf = ca.leaf("short", not_after=expires)
    assert ca.sign(run_cli, model, leaf).code == 0
    sig_file = model / "model.sig"
    signature = base64.b64decode(
        json.loads(sig_file.read_text())["dsseEnvelope"]["signatures"][0]["sig"])
    trusted = _tsa(ca, ca.root_key, x509.load_pem_x509_certificate(ca.root_pem.read_bytes()),
                   "tsa")
    other_root_key = pki.ec_key()
    other_root = pki.certificate(other_root_key, other_root_key, "Other Root", "Other Root",
                                 ca=True)
    stranger = _tsa(ca, other_root_key, other_root, "stranger-tsa")
    stamps = {"trusted": _openssl_stamp(ca, signature, trusted),
              "stranger": _openssl_stamp(ca, signature, stranger),
              "other-bytes": _openssl_stamp(ca, signature + b"x", trusted)}
    assert dt.datetime.now(dt.UTC) < expires, "machine too slow: stamped after the leaf expired"
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
    results = {}
    for name, stamp in stamps.items():
        copy = tmp_path / name
        shutil.copytree(model, copy)
        rewrap(copy / "model.sig", leaf, timestamp=stamp)
        results[name] = _verify_json(ca, run_cli, copy)
    code, doc = results["trusted"]
    assert code == 0 and doc["status"] == "verified", doc
    code, doc = results["stranger"]
    assert code == 1 and "'CN=stranger-tsa' does not chain to a trusted certificate" in (
        doc["problems"][0]["message"])
    code, doc = results["other-bytes"]
    assert code == 1 and "message imprint differs" in doc["problems"][0]["message"]
    assert "expired on" in doc["problems"][0]["message"]
    good = stamps["trusted"]
    root = x509.load_pem_x509_certificate(ca.root_pem.read_bytes())
    assert trusted_stamp_time((good,), signature, (root,))[0] is not None
    for cut in range(len(good)):  # a truncated token never parses
        with pytest.raises(TimestampError):
            verify_stamp(good[:cut], signature)
    for n in range(0, len(good), 5):  # a flipped byte fails with a reason, never a crash
        flipped = good[:n] + bytes([good[n] ^ 0x41]) + good[n + 1:]
        with contextlib.suppress(TimestampError):
            verify_stamp(flipped, signature)
        trusted_stamp_time((flipped,), signature, (root,))


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
