"""What the admission tests and bench share: AdmissionReview documents as the API server
sends them, a webhook server on a free port with a test CA, and a models' store built
through the CLI exactly as a CI pipeline would (gate → SBOM → attest)."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from auditor.cli import main
from tests import pki
from tests.builders import write_tiny_model

GVR = {  # kind -> (group, version, resource)
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "Job": ("batch", "v1", "jobs"),
    "InferenceService": ("serving.kserve.io", "v1beta1", "inferenceservices"),
}


def admission_review(obj: dict[str, Any], operation: str = "CREATE",
                     namespace: str = "ml-serving") -> dict[str, Any]:
    """An AdmissionReview v1 request for `obj`, shaped as kube-apiserver sends it."""
    kind = obj["kind"]
    group, version, resource = GVR[kind]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    name = obj.get("metadata", {}).get("name", "")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": name, "namespace": namespace, "operation": operation,
            "userInfo": {"username": "system:serviceaccount:ci:deployer",
                         "uid": "6c6b2c3e-0d7a-4b8e-9d8e-2f3b7a1c9e01",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": obj if operation != "DELETE" else None,
            "oldObject": None if operation == "CREATE" else obj,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def pod_spec(image: str = "ghcr.io/example/server:1.4@sha256:" + "ab" * 32) -> dict[str, Any]:
    return {"containers": [{"name": "server", "image": image,
                            "ports": [{"containerPort": 8080}]}]}


def pod(models: str | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "llm-0", "namespace": "ml-serving"}
    if models is not None:
        meta["annotations"] = {"auditor.dev/models": models}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec or pod_spec()}


def templated(kind: str, models: str) -> dict[str, Any]:
    """A Deployment, StatefulSet or Job whose pod template names `models` by annotation."""
    api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1"}[kind]
    template = {"metadata": {"labels": {"app": "llm"},
                             "annotations": {"auditor.dev/models": models}},
                "spec": pod_spec()}
    spec: dict[str, Any] = {"template": template}
    if kind != "Job":
        spec |= {"replicas": 2, "selector": {"matchLabels": {"app": "llm"}}}
    if kind == "StatefulSet":
        spec["serviceName"] = "llm"
    if kind == "Job":
        template["spec"]["restartPolicy"] = "Never"
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": "llm", "namespace": "ml-serving"}, "spec": spec}


def inference_service(storage_uri: str, framework: str = "model") -> dict[str, Any]:
    """A KServe v1beta1 InferenceService (`model` with modelFormat, or an older framework key)."""
    predictor: dict[str, Any] = {framework: {"storageUri": storage_uri,
                                             "resources": {"limits": {"cpu": "1"}}}}
    if framework == "model":
        predictor["model"]["modelFormat"] = {"name": "huggingface"}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "tiny", "namespace": "ml-serving"},
            "spec": {"predictor": predictor}}


def cli(*args: object) -> int:
    """Run the CLI in-process; its exit code."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return -1


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path
    other_private: Path  # a key nobody trusts
    other_public: Path


def keys(folder: Path) -> Keys:
    folder.mkdir(parents=True, exist_ok=True)
    a, b = pki.ec_key(), pki.ec_key()
    return Keys(pki.write_private(a, folder / "attest.pem"),
                pki.write_public(a, folder / "trust.pem"),
                pki.write_private(b, folder / "other.pem"),
                pki.write_public(b, folder / "other-pub.pem"))


def model_folder(folder: Path, signing_key: Path | None) -> Path:
    """The tiny example model; signed (OMS) when a key is given, which production requires."""
    model = write_tiny_model(folder)
    if signing_key is not None:
        assert cli("sign", model, "--key", signing_key) == 0
    return model


def gate_sbom(target: Path | str, sbom: Path, *extra: object) -> Path:
    """`auditor gate TARGET --policy baseline --sbom SBOM …`: the SBOM CI writes (the gate's
    own verdict is not the point here, so its exit code is not asserted)."""
    cli("gate", target, "--policy", "baseline", "--sbom", sbom, "--quiet", *extra)
    assert sbom.is_file(), f"gate wrote no SBOM for {target}"
    return sbom


@dataclass
class RunningWebhook:
    url: str
    ca: Path
    server: Any

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(verify=self.tls(), timeout=20, **kwargs)

    def post(self, review: dict[str, Any] | bytes, **kwargs: Any) -> httpx.Response:
        with self.client() as c:
            if isinstance(review, bytes):
                return c.post(self.url, content=review,
                              headers={"Content-Type": "application/json"}, **kwargs)
            return c.post(self.url, json=review, **kwargs)


@contextmanager
def webhook(decider: Any, folder: Path, **config: Any) -> Iterator[RunningWebhook]:
    """The webhook server on 127.0.0.1 (free port, TLS from a test CA), in a thread."""
    from auditor.admission.server import ServerConfig, make_server
    from tests.oci_registry import write_test_ca

    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = write_test_ca(folder)
    log = (folder / "audit.log").open("a", encoding="utf-8")
    server = make_server(ServerConfig(cert, key, "127.0.0.1", 0, **config), decider, log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningWebhook(f"https://127.0.0.1:{server.server_address[1]}/validate", ca,
                             server)
    finally:
        server.shutdown()
        server.webhook.close()
        server.server_close()
        log.close()
