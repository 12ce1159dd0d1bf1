"""OMS signing and verification: every failure is detected with its own reason."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from auditor.integrity import dsse, oms
from tests import pki

DATA = Path(__file__).parent / "data"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (root / "sub" / "tokenizer.json").write_text("{}")
    (root / "a-b").write_text("dash")
    return root


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    key = pki.ec_key("P-256")
    other = pki.ec_key("P-256")
    return {
        "private": pki.write_private(key, tmp_path / "key.pem"),
        "public": pki.write_public(key, tmp_path / "pub.pem"),
        "other_public": pki.write_public(other, tmp_path / "other.pem"),
    }


def sign(run_cli, model, keys, *extra):
    run = run_cli("sign", model, "--key", keys["private"], *extra)
    assert run.code == 0, run.err
    return model / "model.sig"


def verify(run_cli, model, key, *extra):
    return run_cli("verify", model, "--key", key, "--format", "json", *extra)


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
def test_sign_then_verify_each_allowed_curve(run_cli, model, tmp_path, curve):
    key = pki.ec_key(curve)
    priv = pki.write_private(key, tmp_path / f"{curve}.pem")
    pub = pki.write_public(key, tmp_path / f"{curve}.pub")
    assert run_cli("sign", model, "--key", priv).code == 0
    run = verify(run_cli, model, pub)
    assert run.code == 0, run.out
    doc = json.loads(run.out)
    assert doc["status"] == "verified"
    assert sorted(doc["covered"]) == ["a-b", "config.json", "sub/tokenizer.json", "weights.bin"]


def test_signature_is_an_oms_v1_bundle_with_the_reference_conventions(run_cli, model, keys):
    sig = sign(run_cli, model, keys)
    bundle = json.loads(sig.read_text())
    assert bundle["mediaType"] == dsse.BUNDLE_MEDIA_TYPE
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == oms.PREDICATE_V1
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == ["a-b", "config.json", "sub/tokenizer.json", "weights.bin"]
    assert "model.sig" in statement["predicate"]["serialization"]["ignore_paths"]
    assert statement["subject"][0]["name"] == "model"
    pub = dsse.check_public_key(pki.ec_key().public_key())
    assert len(dsse.key_hint(pub)) == 64


def test_spec_compat_orders_by_code_point(run_cli, model, keys):
    (model / "sub" / "z").write_text("z")
    sig = sign(run_cli, model, keys, "--compat", "spec")
    statement = json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == sorted(names)
    assert verify(run_cli, model, keys["public"]).code == 0


def test_changed_file_names_file_and_both_digests(run_cli, model, keys):
    sign(run_cli, model, keys)
    (model / "weights.bin").write_bytes(b"tampered")
    run = verify(run_cli, model, keys["public"])
    assert run.code == 1
    doc = json.loads(run.out)
    assert doc["status"] == "invalid"
    (problem,) = doc["problems"]
    assert problem["kind"] == "changed" and problem["path"] == "weights.bin"
    assert "changed since signing" in problem["message"] and "file has" in problem["message"]


def test_missing_extra_and_renamed_files_are_each_reported(run_cli, model, keys):
    sign(run_cli, model, keys)
    (model / "a-b").unlink()
    (model / "new.py").write_text("print(1)")
    (model / "config.json").rename(model / "config2.json")
    doc = json.loads(verify(run_cli, model, keys["public"]).out)
    kinds = {(p["kind"], p["path"]) for p in doc["problems"]}
    assert kinds == {("missing", "a-b"), ("missing", "config.json"),
                     ("not-covered", "new.py"), ("not-covered", "config2.json")}


def test_unsigned_files_can_be_explicitly_allowed(run_cli, model, keys):
    sign(run_cli, model, keys)
    (model / "notes.txt").write_text("added later")
    assert verify(run_cli, model, keys["public"]).code == 1
    assert verify(run_cli, model, keys["public"], "--allow-unsigned-files").code == 0


def test_wrong_key_is_untrusted_and_names_both_keys(run_cli, model, keys):
    sign(run_cli, model, keys)
    run = verify(run_cli, model, keys["other_public"])
    doc = json.loads(run.out)
    assert run.code == 1 and doc["status"] == "untrusted"
    assert "signed by key sha256:" in doc["problems"][0]["message"]
    assert "expected key sha256:" in doc["problems"][0]["message"]


def test_truncated_bundle_is_malformed(run_cli, model, keys):
    sig = sign(run_cli, model, keys)
    sig.write_bytes(sig.read_bytes()[:200])
    doc = json.loads(verify(run_cli, model, keys["public"]).out)
    assert doc["status"] == "invalid"
    assert doc["problems"][0]["kind"] == "bundle"
    assert "malformed signature bundle" in doc["problems"][0]["message"]


def _resign(sig: Path, private: Path, mutate) -> None:
    """Rewrite the statement inside a signature and sign it again with the same key."""
    from auditor.integrity.signing import load_private_key

    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    mutate(statement)
    key = load_private_key(private, None)
    sig.write_text(json.dumps(dsse.make_bundle(json.dumps(statement).encode(), key)))


def test_statement_altered_after_signing_fails_the_signature(run_cli, model, keys):
    sig = sign(run_cli, model, keys)
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    doc = json.loads(verify(run_cli, model, keys["public"]).out)
    assert doc["status"] == "invalid"
    assert "does not verify" in doc["problems"][0]["message"]


def test_dotdot_resource_name_is_rejected(run_cli, model, keys):
    sig = sign(run_cli, model, keys)

    def escape(st):
        st["predicate"]["resources"][0]["name"] = "../outside"
        resources = [oms.Resource(r["name"], r["digest"]) for r in st["predicate"]["resources"]]
        st["subject"][0]["digest"]["sha256"] = oms.root_digest(tuple(resources))

    _resign(sig, keys["private"], escape)
    doc = json.loads(verify(run_cli, model, keys["public"]).out)
    assert doc["status"] == "invalid"
    assert "not a plain relative path" in doc["problems"][0]["message"]


def test_ignored_path_drop_is_warned_about(run_cli, model, keys):
    sig = sign(run_cli, model, keys)
    _resign(sig, keys["private"],
            lambda st: st["predicate"]["serialization"]["ignore_paths"].append("extras"))
    (model / "extras").mkdir()
    (model / "extras" / "payload.pkl").write_bytes(b"dropped after signing")
    doc = json.loads(verify(run_cli, model, keys["public"]).out)
    assert doc["status"] == "verified"  # what any OMS verifier concludes ...
    assert any("extras" in w and "not verified" in w for w in doc["warnings"])  # ... and why not


def test_root_digest_must_match_resources(run_cli, model, keys):
    sig = sign(run_cli, model, keys)
    _resign(sig, keys["private"],
            lambda st: st["subject"][0]["digest"].update(sha256="11" * 32))
    doc = json.loads(verify(run_cli, model, keys["public"]).out)
    assert "subject digest" in doc["problems"][0]["message"]


def test_single_file_model(run_cli, model, keys, tmp_path):
    single = tmp_path / "one.safetensors"
    single.write_bytes(b"weights")
    assert run_cli("sign", single, "--key", keys["private"], "-o", tmp_path / "one.sig").code == 0
    ok = run_cli("verify", single, "--key", keys["public"], "--signature", tmp_path / "one.sig")
    assert ok.code == 0, ok.out
    single.write_bytes(b"weightz")
    bad = run_cli("verify", single, "--key", keys["public"], "--signature", tmp_path / "one.sig")
    assert bad.code == 1 and "changed since signing" in bad.out


@pytest.mark.parametrize("make", [pki.rsa_key, pki.ed25519_key])
def test_keys_oms_does_not_allow_are_refused_clearly(run_cli, model, tmp_path, make):
    key = pki.write_private(make(), tmp_path / "k.pem")
    run = run_cli("sign", model, "--key", key)
    assert run.code == 2
    assert "unsupported key type" in run.err and "ECDSA" in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_encrypted_key_needs_password_env(run_cli, model, tmp_path, monkeypatch):
    key = pki.write_private(pki.ec_key(), tmp_path / "enc.pem", password=b"s3cret")
    assert run_cli("sign", model, "--key", key).code == 2
    monkeypatch.setenv("KEYPASS", "s3cret")
    assert run_cli("sign", model, "--key", key, "--password-env", "KEYPASS").code == 0
    assert "s3cret" not in (model / "model.sig").read_text()


def test_verify_without_trust_material_is_a_usage_error(run_cli, model, keys):
    sign(run_cli, model, keys)
    run = run_cli("verify", model)
    assert run.code == 2 and "--key" in run.err


# ------------------------------------------------------------------ certificate method

def test_certificate_method_verifies_against_the_root(run_cli, model, tmp_path):
    c = pki.chain(tmp_path)
    assert run_cli("sign", model, "--key", c["key"], "--certificate", c["leaf"],
                   "--certificate-chain", c["intermediate"]).code == 0
    run = run_cli("verify", model, "--certificate-chain", c["root"], "--identity",
                  "release@example.org", "--format", "json")
    assert run.code == 0, run.out
    doc = json.loads(run.out)
    assert doc["method"] == "certificate" and "model-publisher" in doc["signer"]


def test_certificate_from_another_root_is_untrusted(run_cli, model, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    c = pki.chain(tmp_path / "a")
    other = pki.chain(tmp_path / "b")
    run_cli("sign", model, "--key", c["key"], "--certificate", c["leaf"],
            "--certificate-chain", c["intermediate"])
    run = run_cli("verify", model, "--certificate-chain", other["root"], "--format", "json")
    doc = json.loads(run.out)
    assert run.code == 1 and doc["status"] == "untrusted"
    assert "not issued by any trusted certificate" in doc["problems"][0]["message"]


def test_certificate_without_code_signing_usage_cannot_sign(run_cli, model, tmp_path):
    # verification refuses such a certificate too: tests/test_signing_certificates.py
    c = pki.chain(tmp_path, code_signing=False)
    run = run_cli("sign", model, "--key", c["key"], "--certificate", c["leaf"],
                  "--certificate-chain", c["intermediate"])
    assert run.code == 2 and "not digitalSignature" in run.err


def test_certificate_identity_mismatch_is_untrusted(run_cli, model, tmp_path):
    c = pki.chain(tmp_path)
    run_cli("sign", model, "--key", c["key"], "--certificate", c["leaf"],
            "--certificate-chain", c["intermediate"])
    doc = json.loads(run_cli("verify", model, "--certificate-chain", c["root"], "--identity",
                             "mallory@example.org", "--format", "json").out)
    assert doc["status"] == "untrusted"
    assert "mallory@example.org" in doc["problems"][0]["message"]


# ------------------------------------------------------------------ Sigstore keyless

@pytest.fixture
def sigstore_vector(tmp_path: Path) -> Path:
    pytest.importorskip("sigstore")
    folder = tmp_path / "v1.0.0-sigstore"
    shutil.copytree(DATA / "oms-sigstore-v1.0.0", folder)
    return folder


TRUST = DATA / "sigstore-public-good.trustconfig.json"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"


def test_public_keyless_vector_verifies_offline(run_cli, sigstore_vector):
    run = run_cli("verify", sigstore_vector, "--trust-config", TRUST, "--identity",
                  "stefanb@us.ibm.com", "--issuer", ISSUER, "--format", "json")
    assert run.code == 0, run.out
    assert json.loads(run.out)["method"] == "sigstore"


def test_public_keyless_vector_with_wrong_identity_fails(run_cli, sigstore_vector):
    run = run_cli("verify", sigstore_vector, "--trust-config", TRUST, "--identity",
                  "mallory@example.com", "--issuer", ISSUER, "--format", "json")
    doc = json.loads(run.out)
    assert run.code == 1 and doc["status"] == "untrusted"
    assert "mallory@example.com" in doc["problems"][0]["message"]


def test_keyless_vector_with_a_tampered_file_is_invalid(run_cli, sigstore_vector):
    (sigstore_vector / "signme-2").write_text("signme-X")
    run = run_cli("verify", sigstore_vector, "--trust-config", TRUST, "--identity",
                  "stefanb@us.ibm.com", "--issuer", ISSUER, "--format", "json")
    doc = json.loads(run.out)
    assert run.code == 1 and doc["problems"][0]["path"] == "signme-2"
