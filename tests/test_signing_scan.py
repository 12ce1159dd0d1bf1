"""Scanning a signed model: signature status in the report, tampering as findings, attestations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import pki
from tests.builders import write_tiny_model


@pytest.fixture
def signed(tmp_path: Path, run_cli):
    model = write_tiny_model(tmp_path / "tiny")
    key = pki.ec_key()
    priv = pki.write_private(key, tmp_path / "key.pem")
    pub = pki.write_public(key, tmp_path / "pub.pem")
    assert run_cli("sign", model, "--key", priv).code == 0
    return model, priv, pub


def _scan(run_cli, model, *extra):
    run = run_cli("scan", model, "--format", "json", *extra)
    return run, json.loads(run.out) if run.out else None


def test_signed_model_scans_as_verified_reusing_the_scan_hashes(run_cli, signed):
    model, _, pub = signed
    run, doc = _scan(run_cli, model, "--key", pub)
    assert run.code == 0, run.err
    sig = doc["models"][0]["facts"]["signature"]
    assert sig["status"] == "verified"
    assert "model.safetensors" in sig["covered"]


def test_unsigned_model_records_unsigned_without_failing(run_cli, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    run, doc = _scan(run_cli, model)
    assert run.code == 0
    assert doc["models"][0]["facts"]["signature"]["status"] == "unsigned"


def test_signature_without_trust_material_is_unknown_not_verified(run_cli, signed):
    model, _, _ = signed
    _, doc = _scan(run_cli, model)
    assert doc["models"][0]["facts"]["signature"]["status"] == "unknown"
    assert any(f["rule"] == "AUD-SIG-006" for f in doc["models"][0]["findings"])


def test_tampered_signed_model_fails_the_scan_with_a_critical_finding(run_cli, signed):
    model, _, pub = signed
    (model / "config.json").write_text('{"model_type": "llama", "auto_map": {}}')
    run, doc = _scan(run_cli, model, "--key", pub)
    assert run.code == 1
    findings = doc["models"][0]["findings"]
    assert any(f["rule"] == "AUD-SIG-001" and f["file"] == "config.json"
               and f["severity"] == "critical" for f in findings)
    assert doc["models"][0]["facts"]["signature"]["status"] == "invalid"


def test_file_added_after_signing_is_reported_as_not_covered(run_cli, signed):
    model, _, pub = signed
    (model / "chat_template.jinja").write_text("{{ messages }}")
    _, doc = _scan(run_cli, model, "--key", pub)
    assert any(f["rule"] == "AUD-SIG-002" and f["file"] == "chat_template.jinja"
               for f in doc["models"][0]["findings"])


def test_scan_with_the_wrong_key_reports_untrusted(run_cli, signed, tmp_path):
    model, _, _ = signed
    other = pki.write_public(pki.ec_key(), tmp_path / "other.pem")
    run, doc = _scan(run_cli, model, "--key", other)
    assert doc["models"][0]["facts"]["signature"]["status"] == "untrusted"
    assert run.code == 1


# ------------------------------------------------------------------ attestations

def test_attest_then_verify_round_trip(tmp_path, signed, run_cli):
    from auditor.integrity.attest import verify_attestation
    from auditor.integrity.signing import KeyTrust, load_public_key

    _, priv, pub = signed
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}))
    run = run_cli("attest", sbom, "--key", priv)
    assert run.code == 0, run.err
    att = tmp_path / "bom.json.intoto.json"
    doc = verify_attestation(att, KeyTrust(load_public_key(pub)), sbom)
    assert doc["bomFormat"] == "CycloneDX"


def test_tampered_sbom_is_rejected_by_its_attestation(tmp_path, signed, run_cli):
    from auditor.errors import VerificationFailed
    from auditor.integrity.attest import verify_attestation
    from auditor.integrity.signing import KeyTrust, load_public_key

    _, priv, pub = signed
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}))
    run_cli("attest", sbom, "--key", priv, "-o", tmp_path / "att.json")
    shutil.copy(sbom, tmp_path / "orig.json")
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 2}))
    with pytest.raises(VerificationFailed, match="not the attested SBOM"):
        verify_attestation(tmp_path / "att.json", KeyTrust(load_public_key(pub)), sbom)
    other = pki.write_public(pki.ec_key(), tmp_path / "other.pem")
    with pytest.raises(VerificationFailed, match="not trusted"):
        verify_attestation(tmp_path / "att.json", KeyTrust(load_public_key(other)),
                           tmp_path / "orig.json")


def test_attest_refuses_a_non_cyclonedx_file(tmp_path, signed, run_cli):
    _, priv, _ = signed
    bad = tmp_path / "notes.json"
    bad.write_text("{}")
    run = run_cli("attest", bad, "--key", priv)
    assert run.code == 2 and "not a CycloneDX" in run.err


# ------------------------------------------------------------------ scan once, verify at deploy

BASELINE = Path(__file__).resolve().parent.parent / "policies" / "baseline.yaml"


@pytest.fixture
def attested(tmp_path, signed, run_cli):
    model, priv, pub = signed
    sbom = tmp_path / "build" / "model.cdx.json"
    sbom.parent.mkdir()
    assert run_cli("scan", model, "--key", pub, "--sbom", sbom).code == 0
    assert run_cli("attest", sbom, "--key", priv, "-o", tmp_path / "build" / "att.json").code == 0
    return model, pub, sbom, tmp_path / "build" / "att.json"


def test_gate_trusts_an_attested_sbom_without_rescanning(run_cli, attested, monkeypatch):
    model, pub, _, att = attested
    from auditor import pipeline

    monkeypatch.setattr(pipeline, "scan", lambda *a, **k: pytest.fail("rescanned"))
    run = run_cli("gate", model, "--policy", BASELINE, "--attestation", att, "--key", pub)
    assert run.code == 0, run.out + run.err


def test_gate_rejects_a_model_that_differs_from_its_attested_sbom(run_cli, attested):
    model, pub, _, att = attested
    (model / "model.safetensors").write_bytes(b"swapped after the trusted build")
    run = run_cli("gate", model, "--policy", BASELINE, "--attestation", att, "--key", pub)
    assert run.code == 1
    assert "model.safetensors" in run.err and "attested" in run.err


def test_gate_rejects_an_attestation_from_an_untrusted_key(run_cli, attested, tmp_path):
    model, _, _, att = attested
    other = pki.write_public(pki.ec_key(), tmp_path / "other.pem")
    run = run_cli("gate", model, "--policy", BASELINE, "--attestation", att, "--key", other)
    assert run.code == 1 and "not trusted" in run.err


def test_policy_check_rejects_a_tampered_attested_sbom(run_cli, attested):
    _, pub, sbom, att = attested
    assert run_cli("policy", "check", sbom, "--policy", BASELINE, "--attestation", att,
                   "--key", pub).code == 0
    doc = json.loads(sbom.read_text())
    doc["components"] = doc["components"][1:]
    sbom.write_text(json.dumps(doc))
    run = run_cli("policy", "check", sbom, "--policy", BASELINE, "--attestation", att,
                  "--key", pub)
    assert run.code == 1 and "not the attested SBOM" in run.err


def _cache_snapshot(root: Path, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache repo whose snapshot entries link into its blobs/."""
    import hashlib

    repo = root / "models--acme--tiny"
    commit = "a" * 40
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../blobs") / blob.name if "/" not in name
                        else Path("../../../blobs") / blob.name)
    return snap


def test_signed_hf_cache_snapshot_verifies_through_its_blob_links(run_cli, tmp_path):
    from tests.builders import safetensors_bytes

    snap = _cache_snapshot(tmp_path / "hub", {
        "config.json": b'{"model_type": "llama"}',
        "model.safetensors": safetensors_bytes({"w": ("F32", [4, 4])}),
    })
    key = pki.ec_key()
    priv = pki.write_private(key, tmp_path / "key.pem")
    pub = pki.write_public(key, tmp_path / "pub.pem")
    sig = tmp_path / "model.sig"
    assert run_cli("sign", snap, "--key", priv, "-o", sig).code == 0
    run, doc = _scan(run_cli, snap, "--key", pub, "--signature", sig)
    assert doc["models"][0]["facts"]["signature"]["status"] == "verified", doc["models"][0]
    assert run.code == 0, run.out
