"""The Kubernetes objects that run the webhook: ValidatingWebhookConfiguration, Service, Deployment.

Built as data and rendered with `yaml.safe_dump`, so what is printed is what
was built. The rules name exactly the kinds `refs.py` understands, for CREATE
and UPDATE; `failurePolicy: Fail` (no answer, no admission) and a timeout the
server's own budget stays under. The webhook's namespace and kube-system are
left out, so the webhook never has to admit its own pods.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

WEBHOOK_NAME = "models.auditor.dev"
PORT = 8443
RULES = (
    ("", "v1", ("pods",)),
    ("apps", "v1", ("deployments", "statefulsets")),
    ("batch", "v1", ("jobs",)),
    ("serving.kserve.io", "v1beta1", ("inferenceservices",)),
)


@dataclass(frozen=True)
class Deployment:
    """What the operator chooses; the rest is fixed by how the server works."""

    namespace: str
    image: str
    name: str = "auditor-admission"
    policies: tuple[str, ...] = ("baseline", "production")
    timeout_seconds: int = 10  # the API server's wait; the server's budget is 2 s less
    ca_bundle: bytes | None = None  # PEM of the CA that signed the serving certificate
    replicas: int = 2


def render(d: Deployment) -> str:
    """The three documents as one YAML stream."""
    import yaml

    docs = [_webhook_configuration(d), _service(d), _deployment(d)]
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def _labels(d: Deployment) -> dict[str, str]:
    return {"app.kubernetes.io/name": d.name}


def _webhook_configuration(d: Deployment) -> dict[str, Any]:
    client: dict[str, Any] = {"service": {"namespace": d.namespace, "name": d.name,
                                          "path": "/validate", "port": 443}}
    meta: dict[str, Any] = {"name": d.name, "labels": _labels(d)}
    if d.ca_bundle is not None:
        client["caBundle"] = base64.b64encode(d.ca_bundle).decode()
    else:  # cert-manager's CA injector fills caBundle from the serving certificate
        meta["annotations"] = {"cert-manager.io/inject-ca-from": f"{d.namespace}/{d.name}"}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": meta,
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": client,
            "rules": [{"apiGroups": [group], "apiVersions": [version],
                       "resources": list(resources), "operations": ["CREATE", "UPDATE"],
                       "scope": "Namespaced"} for group, version, resources in RULES],
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": [d.namespace, "kube-system"]}]},
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": d.timeout_seconds,
        }],
    }


def _service(d: Deployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": d.name, "namespace": d.namespace, "labels": _labels(d)},
        "spec": {"selector": _labels(d),
                 "ports": [{"name": "https", "port": 443, "targetPort": PORT}]},
    }


def _deployment(d: Deployment) -> dict[str, Any]:
    args = ["admission", "serve", "--port", str(PORT),
            "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key",
            "--key", "/trust/key.pem", "--timeout", str(max(1, d.timeout_seconds - 2))]
    for policy in d.policies:
        args += ["--policy", policy]
    probe = {"httpGet": {"path": "/healthz", "port": PORT, "scheme": "HTTPS"},
             "periodSeconds": 10}
    container = {
        "name": "auditor",
        "image": d.image,
        "args": args,
        "ports": [{"name": "https", "containerPort": PORT}],
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True},
                         {"name": "trust", "mountPath": "/trust", "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": d.name, "namespace": d.namespace, "labels": _labels(d)},
        "spec": {
            "replicas": d.replicas,
            "selector": {"matchLabels": _labels(d)},
            "template": {
                "metadata": {"labels": _labels(d)},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "tls", "secret": {"secretName": f"{d.name}-tls"}},
                                {"name": "trust",
                                 "secret": {"secretName": f"{d.name}-trust"}}],
                },
            },
        },
    }
