"""The admission webhook and verify-attestation: references out of Kubernetes objects, the
shared decision (pin → attestation → signer → digest → policy), AdmissionReview v1 over
TLS for every kind the webhook is configured for, hostile input, and the manifest."""

from __future__ import annotations

import base64
import json
import socket
import ssl
from pathlib import Path

import pytest
import yaml

from auditor.admission.decide import Decider, Settings
from auditor.admission.refs import Named, model_refs
from auditor.admission.review import MAX_BODY
from auditor.errors import ConfigError
from auditor.integrity.signing import KeyTrust, load_public_key
from auditor.pipeline import load_policies
from tests.admission_fixtures import (
    admission_review,
    cli,
    gate_sbom,
    inference_service,
    keys,
    model_folder,
    pod,
    templated,
    webhook,
)

GOOD, FAILS_PRODUCTION, UNTRUSTED, MISSING, TAMPERED = (c * 40 for c in "12345")


def hf(commit: str) -> str:
    return f"hf://acme/tiny@{commit}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A CI pipeline's output: SBOMs from `auditor gate`, attested with `auditor attest
    --subject` into an air-gapped store, one model per way of being denied."""
    root = tmp_path_factory.mktemp("admission")
    k = keys(root / "keys")
    store = root / "store"
    store.mkdir()
    signed = model_folder(root / "signed", k.private)
    unsigned = model_folder(root / "unsigned", None)

    def attest(model: Path, commit: str, key: Path, name: str) -> Path:
        sbom = gate_sbom(model, root / f"{name}.cdx.json", "--name", "acme/tiny", "--revision",
                         commit, "--key", k.public)
        assert cli("attest", sbom, "--key", key, "--subject", hf(commit),
                   "-o", store / f"{name}.json") == 0
        return store / f"{name}.json"

    attest(signed, GOOD, k.private, "good")
    attest(unsigned, FAILS_PRODUCTION, k.private, "fails-production")
    attest(signed, UNTRUSTED, k.other_private, "untrusted")
    tampered = attest(signed, TAMPERED, k.private, "tampered")
    bundle = json.loads(tampered.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["metadata"]["timestamp"] = "2020-01-01T00:00:00Z"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered.write_text(json.dumps(bundle))
    return root, k, store


@pytest.fixture(scope="module")
def decider(world):
    _, k, store = world
    return Decider(Settings(load_policies(["baseline", "production"]),
                            KeyTrust(load_public_key(k.public)), store=store, registries=False))


# ------------------------------------------------------------------ references in objects

def test_references_are_found_in_every_kind_the_webhook_is_configured_for():
    assert model_refs("Pod", pod(f"{hf(GOOD)}, sha256:{'a' * 64}")) == [
        Named(hf(GOOD), "metadata.annotations[auditor.dev/models]"),
        Named(f"sha256:{'a' * 64}", "metadata.annotations[auditor.dev/models]")]
    for kind in ("Deployment", "StatefulSet", "Job"):
        assert [n.ref for n in model_refs(kind, templated(kind, hf(GOOD)))] == [hf(GOOD)]
    assert model_refs("InferenceService", inference_service(hf(GOOD))) == [
        Named(hf(GOOD), "spec.predictor.model.storageUri")]
    older = model_refs("InferenceService", inference_service("oci://r.example/m:v1", "sklearn"))
    assert [n.where for n in older] == ["spec.predictor.sklearn.storageUri"]


def test_kserve_modelcar_and_storage_initializer_in_a_pod_are_models():
    spec = {"initContainers": [{"name": "storage-initializer", "image": "kserve/storage:v0.14",
                                "args": ["hf://acme/tiny", "/mnt/models"]}],
            "containers": [{"name": "kserve-container", "image": "kserve/hf:v0.14"},
                           {"name": "modelcar", "image": "registry.example/models/tiny:v1"},
                           {"name": "sidecar", "image": "registry.example/tools:v1"}]}
    found = model_refs("Pod", pod(spec=spec))
    assert [(n.ref, n.image) for n in found] == [("hf://acme/tiny", False),
                                                  ("registry.example/models/tiny:v1", True)]


def test_an_annotation_names_other_containers_as_model_images():
    obj = pod(spec={"containers": [{"name": "weights", "image": "r.example/w@sha256:" + "c" * 64},
                                   {"name": "server", "image": "r.example/srv:1"}]})
    obj["metadata"]["annotations"] = {"auditor.dev/model-containers": "weights"}
    assert [n.ref for n in model_refs("Pod", obj)] == ["r.example/w@sha256:" + "c" * 64]


def test_a_kind_auditor_does_not_know_is_refused_not_waved_through():
    with pytest.raises(ConfigError, match="does not know where a ConfigMap names its models"):
        model_refs("ConfigMap", {"data": {}})


def test_malformed_object_shapes_name_no_models_and_never_crash():
    for obj in (None, [], {"spec": []}, {"spec": {"containers": "x"}},
                {"metadata": {"annotations": {"auditor.dev/models": 7}}}):
        assert model_refs("Pod", obj) == []


# ------------------------------------------------------------------ the shared decision

@pytest.mark.parametrize(("ref", "check", "says"), [
    (hf(GOOD), "pass", "attested and passes baseline, production"),
    (hf(FAILS_PRODUCTION), "policy", "PROD-002"),
    (hf(UNTRUSTED), "signer", "untrusted signer"),
    (hf(TAMPERED), "signature", "bad signature"),
    (hf(MISSING), "attestation", "no attestation"),
    ("hf://acme/tiny", "pin", "pin it with @<40-hex commit>"),
    ("hf://acme/tiny@main", "pin", "pin it with"),
    ("oci://registry.example/models/tiny:v1", "pin", "pin it with @sha256:"),
    ("s3://bucket/models/tiny", "pin", "names no content digest"),
])
def test_each_model_gets_its_verdict_with_a_one_line_reason(decider, ref, check, says):
    decision = decider.decide(Named(ref, "test"))
    assert (decision.check, decision.allowed) == (check, check == "pass"), decision.reason
    assert says in decision.reason and decision.reason.startswith(ref)
    assert "\n" not in decision.reason


def test_kserve_hf_revision_syntax_is_accepted_as_a_pin(decider):
    assert decider.decide(Named(f"hf://acme/tiny:{GOOD}", "test")).allowed


def test_an_attestation_of_another_model_is_a_digest_mismatch(world, tmp_path):
    _, k, _ = world
    store = tmp_path / "store"
    store.mkdir()
    bundle = json.loads((world[2] / "good.json").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][1]["digest"]["gitCommit"] = MISSING  # claims another commit …
    from auditor.integrity import dsse
    from auditor.integrity.signing import load_private_key

    key = load_private_key(k.private, None)
    resigned = dsse.make_bundle(json.dumps(statement).encode(), key)  # … and is signed
    (store / "x.json").write_text(json.dumps(resigned))
    one = Decider(Settings(load_policies(["baseline"]), KeyTrust(load_public_key(k.public)),
                           store=store, registries=False))
    decision = one.decide(Named(hf(MISSING), "test"))
    assert decision.check == "digest" and "records revision " + GOOD in decision.reason


def test_a_store_file_rewritten_in_place_is_indexed_again(world, tmp_path):
    """Same name, same count, folder mtime unchanged: the file's own size and mtime tell."""
    import os

    from auditor.admission.decide import AttestationStore, subject_of

    store = tmp_path / "store"
    store.mkdir()
    bundle = store / "model.json"
    bundle.write_bytes((world[2] / "good.json").read_bytes())
    index = AttestationStore(store)
    assert index.find(subject_of(Named(hf(GOOD), "test")))
    folder_mtime = store.stat().st_mtime_ns
    bundle.write_bytes((world[2] / "untrusted.json").read_bytes())
    os.utime(store, ns=(folder_mtime, folder_mtime))
    assert index.find(subject_of(Named(hf(UNTRUSTED), "test")))
    assert not index.find(subject_of(Named(hf(GOOD), "test")))


def test_verdicts_are_cached_by_digest(decider, monkeypatch):
    first = decider.decide(Named(hf(GOOD), "a"))
    from auditor.admission import decide as module

    monkeypatch.setattr(module.Decider, "_decide",
                        lambda *a: pytest.fail("a cached digest was decided again"))
    again = decider.decide(Named(f"hf://acme/tiny:{GOOD}", "b"))
    assert again.allowed and again.cached and first.check == again.check
    assert again.reason.startswith(f"hf://acme/tiny:{GOOD}")


def test_a_waiver_near_expiry_is_a_warning(world, tmp_path):
    import datetime

    _, k, store = world
    soon = datetime.date.today() + datetime.timedelta(days=3)
    waiver = tmp_path / "waive.yaml"
    waiver.write_text(f"""policy: waivers
description: Temporary exception for the tiny model.
waivers:
  - rule: PROD-002
    model: acme/tiny
    reason: signing key rotation in progress
    approver: security@example.org
    expires: {soon.isoformat()}
""")
    d = Decider(Settings(load_policies(["baseline", "production", str(waiver)]),
                         KeyTrust(load_public_key(k.public)), store=store, registries=False))
    decision = d.decide(Named(hf(FAILS_PRODUCTION), "test"))
    assert decision.allowed, decision.reason
    assert any(f"waiver for PROD-002 expires {soon}" in w for w in decision.warnings)


# ------------------------------------------------------------------ verify-attestation (CLI)

@pytest.mark.parametrize(("commit", "code", "says"), [
    (GOOD, 0, "allowed:"), (FAILS_PRODUCTION, 1, "policy violation: PROD-002"),
    (UNTRUSTED, 1, "untrusted signer"), (MISSING, 1, "no attestation"),
])
def test_verify_attestation_gives_the_webhook_s_verdicts_with_the_gate_s_exit_codes(
        world, run_cli, commit, code, says):
    _, k, store = world
    run = run_cli("verify-attestation", hf(commit), "--policy", "baseline", "--policy",
                  "production", "--attestations", store, "--key", k.public)
    assert run.code == code and says in run.out, run.out + run.err


def test_an_expired_certificate_accepted_by_the_operator_is_said_on_every_answer(
        world, run_cli, monkeypatch, tmp_path):
    """attest.py marks an SBOM whose signer's expired certificate --accept-expired-certificates
    waived; the decision warns, the audit line records it, verify-attestation prints it."""
    from auditor.integrity import attest

    real = attest.verify_model_attestation

    def waived(*args, **kwargs):
        sbom = real(*args, **kwargs)
        sbom.accepted_expired = True
        return sbom

    monkeypatch.setattr(attest, "verify_model_attestation", waived)
    _, k, store = world
    fresh = Decider(Settings(load_policies(["baseline", "production"]),
                             KeyTrust(load_public_key(k.public)), store=store, registries=False))
    says = "signer's certificate expired; accepted by --accept-expired-certificates"
    decision = fresh.decide(Named(hf(GOOD), "test"))
    assert decision.allowed and any(says in w for w in decision.warnings)
    with webhook(fresh, tmp_path / "expired") as hook:
        review = admission_review(pod(hf(GOOD)))
        response = _response(hook.post(review))
        line = json.loads(Path(hook.server.webhook.log.name).read_text().splitlines()[-1])
    assert response["allowed"] is True and any(says in w for w in response["warnings"])
    assert any(says in w for w in line["warnings"])
    run = run_cli("verify-attestation", hf(GOOD), "--policy", "production",
                  "--attestations", store, "--key", k.public)
    assert run.code == 0 and says in run.err


def test_verify_attestation_denies_a_tag_with_how_to_pin(world, run_cli):
    _, k, store = world
    run = run_cli("verify-attestation", "oci://registry.example/models/tiny:v1", "--policy",
                  "production", "--attestations", store, "--key", k.public, "--no-registry")
    assert run.code == 1 and "pin it with @sha256:" in run.out


def test_verify_attestation_without_trust_is_a_usage_error(world, run_cli):
    run = run_cli("verify-attestation", hf(GOOD), "--policy", "production", "--attestations",
                  world[2])
    assert run.code == 2 and "who may attest" in run.err


def test_attest_refuses_a_subject_the_sbom_does_not_describe(world, run_cli):
    root, k, _ = world
    run = run_cli("attest", root / "good.cdx.json", "--key", k.private, "--subject", hf(MISSING),
                  "-o", root / "wrong.json")
    assert run.code == 2 and f"records revision {GOOD}" in run.err
    run = run_cli("attest", root / "good.cdx.json", "--key", k.private, "--subject",
                  "hf://acme/tiny@main", "-o", root / "wrong.json")
    assert run.code == 2 and "mutable" in run.err


# ------------------------------------------------------------------ the webhook over TLS

@pytest.fixture(scope="module")
def running(decider, tmp_path_factory):
    with webhook(decider, tmp_path_factory.mktemp("webhook")) as hook:
        yield hook


def _response(reply):
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
    return doc["response"]


@pytest.mark.parametrize("obj", [
    pod(hf(GOOD)), templated("Deployment", hf(GOOD)), templated("StatefulSet", hf(GOOD)),
    templated("Job", hf(GOOD)), inference_service(hf(GOOD)),
], ids=lambda o: o["kind"])
def test_every_kind_naming_an_attested_passing_model_is_admitted(running, obj):
    review = admission_review(obj)
    response = _response(running.post(review))
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True, response


@pytest.mark.parametrize(("obj", "says"), [
    (pod(hf(FAILS_PRODUCTION)), "policy violation: PROD-002"),
    (templated("Deployment", hf(UNTRUSTED)), "untrusted signer"),
    (templated("StatefulSet", hf(MISSING)), "no attestation"),
    (templated("Job", hf(TAMPERED)), "bad signature"),
    (inference_service("hf://acme/tiny"), "pin it with @<40-hex commit>"),
    (inference_service("oci://registry.example/models/tiny:v1"), "pin it with @sha256:"),
], ids=["pod-policy", "deployment-signer", "statefulset-none", "job-signature", "isvc-hf-pin",
        "isvc-oci-tag"])
def test_denials_name_the_model_and_the_failed_check_in_one_line(running, obj, says):
    review = admission_review(obj)
    response = _response(running.post(review))
    assert response["uid"] == review["request"]["uid"] and response["allowed"] is False
    message = response["status"]["message"]
    assert says in message and "\n" not in message and response["status"]["code"] == 403


def test_one_bad_model_among_good_ones_denies_the_object(running):
    response = _response(running.post(admission_review(pod(f"{hf(GOOD)},{hf(MISSING)}"))))
    assert response["allowed"] is False and hf(MISSING) in response["status"]["message"]


def test_objects_naming_no_model_and_deletes_are_admitted(running):
    assert _response(running.post(admission_review(pod())))["allowed"] is True
    deleting = admission_review(pod(hf(MISSING)), operation="DELETE")
    assert _response(running.post(deleting))["allowed"] is True


def test_an_update_keeping_the_admitted_models_is_not_checked_again(running, monkeypatch):
    """A label change on a running pod passes even with the registry down (fail-closed)."""
    from auditor.admission import decide as module

    monkeypatch.setattr(module.Decider, "decide",
                        lambda *a, **k: pytest.fail("an unchanged model was checked again"))
    review = admission_review(pod(hf(MISSING)), operation="UPDATE")
    review["request"]["object"]["metadata"]["labels"] = {"team": "search"}
    response = _response(running.post(review))
    assert response["allowed"] is True and "not checked again" in response["status"]["message"]
    lines = Path(running.server.webhook.log.name).read_text().splitlines()
    entry = next(json.loads(x) for x in lines if json.loads(x)["uid"] == review["request"]["uid"])
    assert entry["unchanged_models"] == [hf(MISSING)] and entry["models"] == []


@pytest.mark.parametrize("obj", [
    pod("oci://registry.example/models/tiny:latest"),
    pod(f"{hf(GOOD)},oci://registry.example/models/tiny:latest"),
    pod(spec={"containers": [{"name": "kserve-container", "image": "kserve/hf:v0.14"},
                             {"name": "modelcar", "image": "registry.example/models/tiny:v1"}]}),
], ids=["oci-tag", "pinned-and-tag", "modelcar-tag"])
def test_an_update_keeping_an_unpinned_reference_judges_it_again(running, obj):
    """The old object may never have been admitted (made before the webhook, in an excluded
    namespace, or under --failure-policy allow): a tag it named is no proof of a verdict."""
    review = admission_review(obj, operation="UPDATE")
    review["request"]["object"]["metadata"]["labels"] = {"team": "search"}
    response = _response(running.post(review))
    assert response["allowed"] is False, response
    assert "pin it with @sha256:" in response["status"]["message"]


def test_an_update_that_changes_the_model_judges_the_new_one(running):
    review = admission_review(pod(f"{hf(GOOD)},{hf(UNTRUSTED)}"), operation="UPDATE")
    review["request"]["oldObject"] = pod(hf(GOOD))
    response = _response(running.post(review))
    assert response["allowed"] is False and "untrusted signer" in response["status"]["message"]
    review = admission_review(pod(hf(GOOD)), operation="UPDATE")
    review["request"]["oldObject"] = pod(hf(UNTRUSTED))
    response = _response(running.post(review))
    assert response["allowed"] is True and "attested and passes" in response["status"]["message"]


def test_a_kserve_storage_spec_is_denied_as_unverifiable(running):
    isvc = inference_service(hf(GOOD))
    isvc["spec"]["predictor"]["model"] = {
        "modelFormat": {"name": "sklearn"},
        "storage": {"key": "localMinIO", "path": "sklearn/model.joblib"}}
    response = _response(running.post(admission_review(isvc)))
    message = response["status"]["message"]
    assert response["allowed"] is False and "spec.predictor.model.storage" in message
    assert "pinned by digest" in message and "storageUri" in message


def test_every_decision_is_one_json_audit_line(running):
    review = admission_review(templated("Deployment", hf(GOOD)))
    running.post(review)
    lines = Path(running.server.webhook.log.name).read_text().splitlines()
    entry = next(json.loads(line) for line in lines
                 if json.loads(line)["uid"] == review["request"]["uid"])
    assert entry["allowed"] is True and entry["kind"] == "Deployment"
    assert entry["user"] == "system:serviceaccount:ci:deployer"
    assert entry["models"][0]["model"] == hf(GOOD) and "elapsed_ms" in entry


def test_healthz(running):
    with running.client() as c:
        assert c.get(running.url.replace("/validate", "/healthz")).text == "ok\n"


# ------------------------------------------------------------------ hostile input

def test_a_body_over_the_api_server_limit_is_refused_unread(running):
    reply = running.post(b"{" + b" " * (MAX_BODY + 1) + b"}")
    assert reply.status_code == 413
    assert reply.json()["response"]["allowed"] is False
    assert "limit" in reply.json()["response"]["status"]["message"]


@pytest.mark.parametrize(("body", "says"), [
    (b"\xff\xfe not json", "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                 "request": {"uid": "u"}}).encode(), "not an AdmissionReview admission.k8s.io/v1"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"kind": {"kind": "Pod"}}}).encode(), "without a uid"),
    (b"null", "not an object"),
])
def test_malformed_reviews_get_a_denial_with_a_reason_never_a_crash(running, body, says):
    reply = running.post(body)
    assert reply.status_code == 400  # no uid to echo: the API server applies failurePolicy
    response = reply.json()["response"]
    assert response["allowed"] is False and says in response["status"]["message"]


def test_an_object_naming_too_many_models_is_denied_without_looking_them_up(running):
    many = ",".join(f"sha256:{n:064x}" for n in range(65))
    response = _response(running.post(admission_review(pod(many))))
    assert response["allowed"] is False and "65 models" in response["status"]["message"]


def test_a_review_of_an_unknown_kind_is_denied_with_its_uid(running):
    review = admission_review(pod(hf(GOOD)))
    review["request"]["kind"]["kind"] = "ConfigMap"
    response = _response(running.post(review))
    assert response["uid"] == review["request"]["uid"] and response["allowed"] is False
    assert "ConfigMap" in response["status"]["message"]


def test_the_server_survives_a_client_that_fails_the_handshake_and_one_that_drops(running):
    port = int(running.url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"POST /validate HTTP/1.1\r\nContent-Length: 10\r\n\r\n")  # not TLS
    context = running.tls()
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert _response(running.post(admission_review(pod(hf(GOOD)))))["allowed"] is True


def test_an_error_denies_unless_the_failure_policy_allows(decider, tmp_path, monkeypatch):
    from auditor.admission import decide as module
    from auditor.errors import SourceError

    def down(self, subject):
        raise SourceError("registry.example: connection refused")

    monkeypatch.setattr(module.Decider, "_candidates", down)
    fresh = Decider(decider.settings)
    review = admission_review(pod(hf(MISSING)))
    with webhook(fresh, tmp_path / "fail") as hook:
        response = _response(hook.post(review))
    assert response["allowed"] is False and "connection refused" in response["status"]["message"]
    with webhook(fresh, tmp_path / "allow", failure_policy="allow") as hook:
        response = _response(hook.post(review))
    assert response["allowed"] is True
    assert any("failure policy allow" in w for w in response["warnings"])


def _answer_under(decider, policy: str, review: dict):
    """The webhook's answer to `review` under `--failure-policy policy` (no HTTP needed)."""
    import io

    from auditor.admission.server import ServerConfig, Webhook

    log = io.StringIO()
    hook = Webhook(decider, ServerConfig(Path("cert"), Path("key"), failure_policy=policy), log)
    try:
        answer = hook.answer(json.dumps(review).encode())
    finally:
        hook.close()
    return answer.body["response"], json.loads(log.getvalue())


@pytest.mark.parametrize("policy", ["fail", "allow"])
def test_an_internal_error_denies_whatever_the_failure_policy(decider, monkeypatch, policy):
    """Attestation or referrer bytes that break our code are not an outage: `allow` must not
    turn them into an admission."""
    from auditor.admission import decide as module

    def broken(self, subject):
        raise ValueError("bad\nbytes")

    monkeypatch.setattr(module.Decider, "_candidates", broken)
    response, audit = _answer_under(Decider(decider.settings), policy,
                                    admission_review(pod(hf(MISSING))))
    message = response["status"]["message"]
    assert response["allowed"] is False and "internal error: ValueError: bad bytes" in message
    assert "warnings" not in response
    assert audit["allowed"] is False and audit["models"][0]["check"] == "internal"
    assert "\n" not in audit["models"][0]["reason"]


@pytest.mark.parametrize(("policy", "allowed"), [("fail", False), ("allow", True)])
def test_an_unreachable_registry_follows_the_failure_policy(decider, monkeypatch, policy,
                                                            allowed):
    from auditor.admission import decide as module
    from auditor.errors import SourceError

    def down(self, subject):
        raise SourceError("registry.example: connection refused")

    monkeypatch.setattr(module.Decider, "_candidates", down)
    response, audit = _answer_under(Decider(decider.settings), policy,
                                    admission_review(pod(hf(MISSING))))
    assert response["allowed"] is allowed and audit["models"][0]["check"] == "error"
    assert "connection refused" in response["status"]["message"]
    assert any("failure policy allow" in w for w in response.get("warnings", [])) is allowed


def test_a_decision_over_the_time_budget_is_an_error(decider, tmp_path, monkeypatch):
    import threading

    from auditor.admission import decide as module

    release = threading.Event()

    def slow(self, subject):
        release.wait(10)
        return []

    monkeypatch.setattr(module.Decider, "_candidates", slow)
    with webhook(Decider(decider.settings), tmp_path / "slow", timeout=0.3) as hook:
        response = _response(hook.post(admission_review(pod(hf(MISSING)))))
        release.set()
    assert response["allowed"] is False and "time budget" in response["status"]["message"]


def test_trickling_clients_are_cut_at_the_read_deadline_and_do_not_block_a_review(
        decider, tmp_path):
    """Both connection slots held by clients sending a byte every 0.1 s (each read is quick,
    so a per-read timeout never fires): they are cut at the deadline, and the review waiting
    in the backlog is answered."""
    import threading
    import time

    cut: list[float] = []

    def trickle(port: int, context: ssl.SSLContext, started: float) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            try:
                for byte in b"POST /validate HTTP/1.1\r\nHost: x\r\n" * 10:
                    tls.sendall(bytes([byte]))
                    time.sleep(0.1)
                tls.settimeout(0.2)
                tls.recv(1)  # the server closed: b"" (or an error below)
            except OSError:
                pass
            cut.append(time.monotonic() - started)

    with webhook(decider, tmp_path / "trickle", max_connections=2, read_deadline=1.0) as hook:
        port = int(hook.url.split(":")[2].split("/")[0])
        started = time.monotonic()
        clients = [threading.Thread(target=trickle, args=(port, hook.tls(), started))
                   for _ in range(2)]
        for client in clients:
            client.start()
        time.sleep(0.3)  # both slots taken
        response = _response(hook.post(admission_review(pod(hf(GOOD)))))
        answered = time.monotonic() - started
        for client in clients:
            client.join(10)
    assert response["allowed"] is True and answered < 6, answered
    assert len(cut) == 2 and max(cut) < 5, cut  # not the 34 s the bytes would have lasted


def test_when_overdue_decisions_hold_every_worker_new_ones_are_errors_at_once(
        decider, tmp_path, monkeypatch):
    import threading
    import time

    from auditor.admission import decide as module

    release = threading.Event()

    def hanging(self, subject):
        release.wait(10)
        return []

    monkeypatch.setattr(module.Decider, "_candidates", hanging)
    with webhook(Decider(decider.settings), tmp_path / "busy", timeout=4.0, workers=1) as hook:
        first = _response(hook.post(admission_review(pod(hf(MISSING)))))
        started = time.monotonic()
        second = _response(hook.post(admission_review(pod(hf(UNTRUSTED)))))
        elapsed = time.monotonic() - started
        release.set()
    assert "time budget" in first["status"]["message"]
    assert second["allowed"] is False and "workers are busy" in second["status"]["message"]
    assert elapsed < 2.5  # not queued behind the hanging decision for its whole 4 s budget


def test_a_review_waiting_for_the_same_digest_gives_up_at_its_deadline(decider, monkeypatch):
    import threading
    import time

    from auditor.admission import decide as module

    release, entered = threading.Event(), threading.Event()

    def hanging(self, subject):
        entered.set()
        release.wait(10)
        return []

    monkeypatch.setattr(module.Decider, "_candidates", hanging)
    fresh = Decider(decider.settings)
    first = threading.Thread(target=fresh.decide, args=(Named(hf(MISSING), "a"),))
    first.start()
    assert entered.wait(5)
    waited = fresh.decide(Named(hf(MISSING), "b"), None, time.monotonic() + 0.2)
    release.set()
    first.join(5)
    assert waited.check == "timeout" and not waited.allowed


# ------------------------------------------------------------------ the manifest

def test_the_manifest_is_a_webhook_configuration_service_and_deployment(run_cli, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    run = run_cli("admission", "manifest", "--namespace", "auditor", "--image",
                  "ghcr.io/example/auditor:1.0", "--ca-bundle", ca)
    assert run.code == 0, run.err
    config, service, deployment = yaml.safe_load_all(run.out)
    assert config["apiVersion"] == "admissionregistration.k8s.io/v1"
    hook = config["webhooks"][0]
    assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
    assert hook["failurePolicy"] == "Fail" and hook["timeoutSeconds"] == 10
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca.read_bytes()
    resources = {r for rule in hook["rules"] for r in rule["resources"]}
    assert resources == {"pods", "deployments", "statefulsets", "jobs", "inferenceservices"}
    assert {"serving.kserve.io"} <= {g for rule in hook["rules"] for g in rule["apiGroups"]}
    assert "auditor" in hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert service["kind"] == "Service" and service["spec"]["ports"][0]["port"] == 443
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["admission", "serve"] and args[args.index("--timeout") + 1] == "8"


def test_every_kind_the_manifest_sends_is_one_the_webhook_understands():
    from auditor.admission.manifest import RULES
    from auditor.admission.refs import KNOWN_KINDS
    from tests.admission_fixtures import GVR

    sent = {(g, r) for g, _, resources in RULES for r in resources}
    assert sent == {(g, r) for g, _, r in GVR.values()}
    assert set(GVR) <= set(KNOWN_KINDS)


# ------------------------------------------------------------------ the command as deployed

def test_admission_serve_runs_as_its_own_process_over_tls(world, tmp_path):
    import subprocess
    import sys

    import httpx

    from tests.oci_registry import write_test_ca

    _, k, store = world
    ca, cert, key = write_test_ca(tmp_path)
    audit = tmp_path / "audit.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", "admission", "serve", "--host", "127.0.0.1", "--port",
         "0", "--tls-cert", cert, "--tls-key", key, "--policy", "baseline", "--policy",
         "production", "--key", k.public, "--attestations", store, "--no-registry",
         "--audit-log", audit], stderr=subprocess.PIPE, text=True)
    try:
        import select

        # the server's first line, or a failure after 30 s rather than a hung test
        ready, _, _ = select.select([process.stderr], [], [], 30)
        assert ready, "admission serve printed nothing within 30 s"
        line = process.stderr.readline()
        assert "listening on https://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].strip()
        context = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(verify=context, timeout=30) as client:
            good = client.post(url, json=admission_review(inference_service(hf(GOOD))))
            bad = client.post(url, json=admission_review(inference_service(hf(UNTRUSTED))))
    finally:
        process.terminate()
        process.wait(10)
    assert _response(good)["allowed"] is True
    assert "untrusted signer" in _response(bad)["status"]["message"]
    assert [json.loads(x)["allowed"] for x in audit.read_text().splitlines()] == [True, False]


def test_attest_push_needs_an_oci_subject(world, run_cli):
    root, k, _ = world
    run = run_cli("attest", root / "good.cdx.json", "--key", k.private, "--subject", hf(GOOD),
                  "--push", "-o", root / "pushed.json")
    assert run.code == 2 and "--push needs --subject oci://" in run.err


def test_verify_attestation_json_is_the_decision_as_data(world, run_cli):
    _, k, store = world
    run = run_cli("verify-attestation", hf(FAILS_PRODUCTION), "--policy", "production",
                  "--attestations", store, "--key", k.public, "--format", "json")
    doc = json.loads(run.out)
    assert run.code == 1 and doc["allowed"] is False and doc["check"] == "policy"


def test_the_verdict_cache_key_changes_with_every_trust_setting(tmp_path):
    """A verdict cached under a lenient trust (expired certificates accepted, a timestamp
    authority trusted) must never answer for a stricter one."""
    import dataclasses
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from auditor.admission.decide import trust_id
    from auditor.integrity.signing import CertificateTrust

    def root(name: str) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(1).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))

    strict = CertificateTrust(anchors=(root("signers"),))
    variants = [strict, dataclasses.replace(strict, accept_expired=True),
                dataclasses.replace(strict, tsa_anchors=(root("tsa"),)),
                dataclasses.replace(strict, identity="ci@example.com")]
    assert len({trust_id(t) for t in variants}) == len(variants)
