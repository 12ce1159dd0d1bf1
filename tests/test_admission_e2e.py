"""Scan once, enforce at deploy — end to end against a real registry (CNCF Distribution).

A CI pipeline pushes a small model to the local registry with its OMS signature attached
(the publisher signed the folder with `auditor sign`; the Sigstore bundle is a referrer of
the manifest), gates it (`auditor gate oci://…@sha256:… --key … --sbom`: the signature
verifies, so the SBOM grades it `signed` and production's PROD-002 passes), attests the
SBOM bound to the model's digest and pushes the attestation next to the model (`auditor
attest --subject … --push`). The webhook, judging by baseline and production, then admits
an InferenceService that pins that digest and denies: the same model re-tagged after a byte
change, a model never attested, one attested by a key nobody trusts, one whose SBOM fails
production.yaml, and a tag. `auditor verify-attestation` gives the same verdicts with the
gate's exit codes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.admission.decide import Decider, Settings
from auditor.integrity.signing import KeyTrust, load_public_key
from auditor.oci.access import RegistryAccess
from auditor.pipeline import load_policies
from auditor.sources.oci import SIGSTORE_BUNDLE
from tests.admission_fixtures import (
    admission_review,
    cli,
    gate_sbom,
    inference_service,
    keys,
    model_folder,
    pod,
    webhook,
)
from tests.builders import write_tiny_model
from tests.oci_registry import push_modelkit


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def pipeline(oci_registry, tmp_path_factory):
    """What CI leaves behind in the registry; returns (registry, keys, refs by case)."""
    registry = oci_registry("plain")
    root = tmp_path_factory.mktemp("e2e")
    k = keys(root / "keys")
    client = registry.client()
    signed = model_folder(root / "tiny", k.private)
    signature = (signed / "model.sig").read_bytes()
    tiny = {name: data for name, data in _files(signed).items() if name != "model.sig"}
    unlicensed = write_tiny_model(root / "unlicensed")
    card = (unlicensed / "README.md").read_text().replace("license: apache-2.0",
                                                          "license: cc-by-nc-4.0")
    (unlicensed / "README.md").write_text(card)

    def push(repository: str, files: dict[str, bytes], tag: str = "v1") -> str:
        """The model and, for the tiny model's files (changed or not), its signature."""
        pushed = push_modelkit(client, repository, tag, files)
        if files.keys() == tiny.keys():
            client.attach(repository, pushed, SIGSTORE_BUNDLE, signature, SIGSTORE_BUNDLE)
        return registry.ref(repository, pushed.digest)

    def ci(ref: str, name: str, key: Path | None) -> None:
        sbom = gate_sbom(ref, root / f"{name}.cdx.json", "--plain-http", "--key", k.public)
        if key is not None:
            assert cli("attest", sbom, "--key", key, "--subject", ref, "--push", "--plain-http",
                       "-o", root / f"{name}.intoto.json") == 0

    refs = {"good": push("models/tiny", tiny)}
    ci(refs["good"], "good", k.private)
    changed = dict(tiny)
    weights = bytearray(changed["model.safetensors"])
    weights[-1] ^= 0x01  # one byte of one weight, same tag
    changed["model.safetensors"] = bytes(weights)
    refs["retagged"] = push("models/tiny", changed)
    refs["unattested"] = push("models/fresh", tiny)
    ci(refs["unattested"], "unattested", None)
    refs["untrusted"] = push("models/rogue", tiny)
    ci(refs["untrusted"], "untrusted", k.other_private)
    refs["fails-production"] = push("models/unlicensed", _files(unlicensed))
    ci(refs["fails-production"], "fails-production", k.private)
    return registry, k, refs


POLICIES = ("baseline", "production")


@pytest.fixture(scope="module")
def hook(pipeline, tmp_path_factory):
    _, k, _ = pipeline
    decider = Decider(Settings(load_policies(list(POLICIES)),
                               KeyTrust(load_public_key(k.public)),
                               registry=RegistryAccess(plain_http=True)))
    with webhook(decider, tmp_path_factory.mktemp("hook")) as running:
        yield running


def _response(reply) -> dict:
    assert reply.status_code == 200, reply.text
    return reply.json()["response"]


def test_the_webhook_admits_an_inference_service_pinning_the_attested_digest(pipeline, hook):
    _, _, refs = pipeline
    review = admission_review(inference_service(refs["good"]))
    response = _response(hook.post(review))
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True, response["status"]["message"]


def test_the_modelcar_container_of_the_same_digest_is_admitted(pipeline, hook):
    _, _, refs = pipeline
    image = refs["good"].removeprefix("oci://")
    spec = {"containers": [{"name": "kserve-container", "image": "kserve/huggingfaceserver:v0.14"},
                           {"name": "modelcar", "image": image}]}
    assert _response(hook.post(admission_review(pod(spec=spec))))["allowed"] is True


@pytest.mark.parametrize(("case", "check"), [
    ("retagged", "no attestation"),
    ("unattested", "no attestation"),
    ("untrusted", "untrusted signer"),
    ("fails-production", "PROD-004"),  # licence not on production's allowlist
])
def test_the_webhook_denies_naming_the_model_and_the_failed_check(pipeline, hook, case, check):
    _, _, refs = pipeline
    response = _response(hook.post(admission_review(inference_service(refs[case]))))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert refs[case] in message and check in message and "\n" not in message
    if case == "fails-production":
        assert "policy violation:" in message


def test_a_tag_is_denied_with_how_to_pin(pipeline, hook):
    registry, _, _ = pipeline
    tagged = registry.ref("models/tiny", "v1")
    response = _response(hook.post(admission_review(inference_service(tagged))))
    assert response["allowed"] is False
    assert "pin it with @sha256:" in response["status"]["message"]


@pytest.mark.parametrize(("case", "code", "says"), [
    ("good", 0, "allowed:"),
    ("retagged", 1, "no attestation"),
    ("unattested", 1, "no attestation"),
    ("untrusted", 1, "untrusted signer"),
    ("fails-production", 1, "PROD-004"),
])
def test_verify_attestation_gives_the_same_verdicts_with_exit_codes(pipeline, run_cli, case,
                                                                    code, says):
    _, k, refs = pipeline
    policies = [a for p in POLICIES for a in ("--policy", p)]
    run = run_cli("verify-attestation", refs[case], *policies, "--key", k.public,
                  "--plain-http")
    assert run.code == code and says in run.out, run.out + run.err


def test_verify_attestation_denies_a_tag(pipeline, run_cli):
    registry, k, _ = pipeline
    run = run_cli("verify-attestation", registry.ref("models/tiny", "v1"), "--policy",
                  "production", "--key", k.public, "--plain-http")
    assert run.code == 1 and "pin it with @sha256:" in run.out


def test_a_registry_that_cannot_be_reached_is_an_io_error(pipeline, run_cli):
    _, k, refs = pipeline
    gone = refs["good"].replace(pipeline[0].host, "127.0.0.1:9")
    run = run_cli("verify-attestation", gone, "--policy", "production", "--key", k.public,
                  "--plain-http")
    assert run.code == 3 and "127.0.0.1:9" in run.err
