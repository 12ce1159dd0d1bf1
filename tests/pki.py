"""Keys and certificate chains for signing tests, made with `cryptography` on the fly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def ec_key(curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVES[curve]())


def write_private(key, path: Path, password: bytes | None = None) -> Path:
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8, enc))
    return path


def write_public(key, path: Path) -> Path:
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ed25519_key():
    return ed25519.Ed25519PrivateKey.generate()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(
    subject_key, issuer_key, subject: str, issuer: str, *, ca: bool,
    email: str | None = None, code_signing: bool = True,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
    elif code_signing:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False), True)
    if email:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(email)]), False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def chain(tmp: Path, *, code_signing: bool = True, curve: str = "P-256") -> dict[str, Path]:
    """root CA → intermediate CA → leaf; returns the PEM paths and the leaf key."""
    root_key, inter_key, leaf_key = ec_key("P-384"), ec_key("P-256"), ec_key(curve)
    root = certificate(root_key, root_key, "Test Root CA", "Test Root CA", ca=True)
    inter = certificate(inter_key, root_key, "Test Intermediate", "Test Root CA", ca=True)
    leaf = certificate(leaf_key, inter_key, "model-publisher", "Test Intermediate", ca=False,
                       email="release@example.org", code_signing=code_signing)
    return {
        "root": write_cert(root, tmp / "root.pem"),
        "intermediate": write_cert(inter, tmp / "intermediate.pem"),
        "leaf": write_cert(leaf, tmp / "leaf.pem"),
        "key": write_private(leaf_key, tmp / "leaf-key.pem"),
    }
