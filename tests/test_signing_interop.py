"""auditor and the OMS reference (model_signing 1.1.1) accept each other's signatures.

Runs when the `interop` extra is installed (`pip install -e '.[interop]'`); CI installs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pki

model_signing = pytest.importorskip("model_signing")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "weights.safetensors").write_bytes(bytes(range(256)) * 1024)
    (root / "nested" / "deeper" / "x.bin").write_bytes(b"\x00" * 10)
    (root / "a-b.txt").write_text("order matters")
    (root / "empty").write_bytes(b"")
    return root


def _ms_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model_signing", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("curve", ["P-256", "P-384"])
def test_reference_key_signature_verified_by_auditor(run_cli, model, tmp_path, curve):
    key = pki.ec_key(curve)
    priv = pki.write_private(key, tmp_path / "k.pem")
    pub = pki.write_public(key, tmp_path / "p.pem")
    sig = tmp_path / "model.sig"
    done = _ms_cli("sign", "key", model, "--private_key", priv, "--signature", sig)
    assert done.returncode == 0, done.stderr
    run = run_cli("verify", model, "--key", pub, "--signature", sig, "--format", "json")
    assert run.code == 0, run.out
    assert json.loads(run.out)["status"] == "verified"
    (model / "config.json").write_text("{}")
    assert run_cli("verify", model, "--key", pub, "--signature", sig).code == 1


@pytest.mark.parametrize("curve", ["P-256", "P-384"])
def test_reference_certificate_signature_verified_by_auditor(run_cli, model, tmp_path, curve):
    c = pki.chain(tmp_path, curve=curve)
    sig = tmp_path / "model.sig"
    done = _ms_cli("sign", "certificate", model, "--private_key", c["key"],
                   "--signing_certificate", c["leaf"], "--certificate_chain", c["intermediate"],
                   "--signature", sig)
    assert done.returncode == 0, done.stderr
    run = run_cli("verify", model, "--certificate-chain", c["root"], "--signature", sig)
    assert run.code == 0, run.out


@pytest.mark.parametrize("curve", ["P-256", "P-384"])
def test_auditor_key_signature_verified_by_reference_cli_and_api(run_cli, model, tmp_path, curve):
    key = pki.ec_key(curve)
    priv = pki.write_private(key, tmp_path / "k.pem")
    pub = pki.write_public(key, tmp_path / "p.pem")
    sig = tmp_path / "model.sig"
    assert run_cli("sign", model, "--key", priv, "-o", sig).code == 0
    done = _ms_cli("verify", "key", model, "--signature", sig, "--public_key", pub)
    assert done.returncode == 0, done.stderr + done.stdout
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)


def test_auditor_signature_inside_the_folder_verified_by_reference(run_cli, model, tmp_path):
    key = pki.ec_key()
    priv = pki.write_private(key, tmp_path / "k.pem")
    pub = pki.write_public(key, tmp_path / "p.pem")
    assert run_cli("sign", model, "--key", priv).code == 0
    done = _ms_cli("verify", "key", model, "--signature", model / "model.sig",
                   "--public_key", pub)
    assert done.returncode == 0, done.stderr + done.stdout


def test_auditor_certificate_signature_verified_by_reference(run_cli, model, tmp_path):
    c = pki.chain(tmp_path)
    sig = tmp_path / "model.sig"
    assert run_cli("sign", model, "--key", c["key"], "--certificate", c["leaf"],
                   "--certificate-chain", c["intermediate"], "-o", sig).code == 0
    done = _ms_cli("verify", "certificate", model, "--signature", sig,
                   "--certificate_chain", c["root"])
    assert done.returncode == 0, done.stderr + done.stdout


def test_reference_rejects_auditor_signature_after_tampering(run_cli, model, tmp_path):
    key = pki.ec_key()
    priv = pki.write_private(key, tmp_path / "k.pem")
    pub = pki.write_public(key, tmp_path / "p.pem")
    sig = tmp_path / "model.sig"
    run_cli("sign", model, "--key", priv, "-o", sig)
    (model / "weights.safetensors").write_bytes(b"evil")
    done = _ms_cli("verify", "key", model, "--signature", sig, "--public_key", pub)
    assert done.returncode != 0


def test_reference_accepts_an_expired_leaf_auditor_refuses_unless_told(run_cli, model, tmp_path):
    """model_signing checks the chain at the leaf's notBefore; auditor at a trusted time (now)."""
    import datetime as dt

    from tests.test_signing_certificates import CA, NOW

    ca = CA(tmp_path)
    expired = NOW - dt.timedelta(days=30)
    leaf = ca.leaf("expired", not_after=expired)
    sig = tmp_path / "model.sig"
    done = _ms_cli("sign", "certificate", model, "--private_key", ca.key_pem,
                   "--signing_certificate", leaf, "--certificate_chain", ca.inter_pem,
                   "--signature", sig)
    assert done.returncode == 0, done.stderr
    done = _ms_cli("verify", "certificate", model, "--signature", sig,
                   "--certificate_chain", ca.root_pem)
    assert done.returncode == 0, done.stderr + done.stdout
    run = run_cli("verify", model, "--certificate-chain", ca.root_pem, "--signature", sig)
    assert run.code == 1
    assert f"certificate expired on {expired:%Y-%m-%d}" in run.out
    assert "no trusted timestamp" in run.out
    run = run_cli("verify", model, "--certificate-chain", ca.root_pem, "--signature", sig,
                  "--accept-expired-certificates")
    assert run.code == 0 and run.out.startswith("verified (expired certificate accepted)")
    assert "WARNING" in run.err


def test_reference_accepts_a_server_auth_leaf_auditor_refuses(run_cli, model, tmp_path):
    """model_signing wants digitalSignature OR codeSigning; auditor: an EKU must say codeSigning."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from tests.test_signing_certificates import CA

    ca = CA(tmp_path)
    leaf = ca.leaf("tls", eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    sig = tmp_path / "model.sig"
    done = _ms_cli("sign", "certificate", model, "--private_key", ca.key_pem,
                   "--signing_certificate", leaf, "--certificate_chain", ca.inter_pem,
                   "--signature", sig)
    assert done.returncode == 0, done.stderr
    run = run_cli("verify", model, "--certificate-chain", ca.root_pem, "--signature", sig)
    assert run.code == 1 and "extended key usage is serverAuth, not codeSigning" in run.out
    assert ca.sign(run_cli, model, leaf, "-o", tmp_path / "ours.sig").code == 2
