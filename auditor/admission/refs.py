"""Where a Kubernetes object names the models it will run.

Only references are read here, never judged: KServe's `storageUri`
(`InferenceService` v1beta1 `predictor.model`, the older
`predictor.<framework>`, transformer and explainer), KServe's modelcar container
and storage-initializer in pods it created, containers an annotation names as
modelcars, and the `auditor.dev/models` annotation (pinned references or bare
`sha256:` digests) for servers that fetch their model some other way.
An object kind this module does not know is refused, not waved through: the
webhook configuration (`admission manifest`) sends only the kinds listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditor.errors import AuditorError, ConfigError

MODELS_ANNOTATION = "auditor.dev/models"
# Comma-separated container names whose images are models (modelcar images).
MODEL_CONTAINERS_ANNOTATION = "auditor.dev/model-containers"
# The container KServe injects to serve a modelcar (`oci://` storageUri) from its image.
MODELCAR_CONTAINER = "modelcar"
# KServe's init container: its first argument is the storageUri it downloads.
STORAGE_INITIALIZER = "storage-initializer"

# Kinds whose pod template is at spec.template (a Pod's own spec is handled apart).
TEMPLATED = ("Deployment", "StatefulSet", "Job", "ReplicaSet", "DaemonSet")
KNOWN_KINDS = ("Pod", *TEMPLATED, "CronJob", "InferenceService")
ISVC_COMPONENTS = ("predictor", "transformer", "explainer")


class Unverifiable(AuditorError):
    """The object names a model in a way no digest can be checked against (KServe's
    `storage:` spec): denied, never waved through as "no model"."""


@dataclass(frozen=True)
class Named:
    """One model reference as written in the object, and where (a dotted path)."""

    ref: str
    where: str
    image: bool = False  # a container image reference (no oci:// scheme, docker defaults)


def model_refs(kind: str, obj: Any) -> list[Named]:
    """Every model reference `obj` (of `kind`) names, in document order, without duplicates."""
    if kind not in KNOWN_KINDS:
        raise ConfigError(f"auditor does not know where a {kind} names its models; remove it "
                          "from the webhook's rules (auditor admission manifest)")
    doc = _dict(obj)
    found = _annotated(_dict(doc.get("metadata")), "metadata")
    spec = _dict(doc.get("spec"))
    if kind == "Pod":
        found += _pod(doc, "")
    elif kind in TEMPLATED:
        found += _pod(_dict(spec.get("template")), "spec.template.")
    elif kind == "CronJob":
        job = _dict(_dict(spec.get("jobTemplate")).get("spec"))
        found += _pod(_dict(job.get("template")), "spec.jobTemplate.spec.template.")
    else:
        found += _inference_service(spec, _containers_named(_dict(doc.get("metadata"))))
    seen: set[tuple[str, bool]] = set()
    out = []
    for named in found:
        if (named.ref, named.image) not in seen:
            seen.add((named.ref, named.image))
            out.append(named)
    return out


def _pod(template: dict[str, Any], prefix: str) -> list[Named]:
    """A pod (or pod template): its annotations, then its containers' model references."""
    meta = _dict(template.get("metadata"))
    found = _annotated(meta, f"{prefix}metadata")
    return found + _pod_spec(_dict(template.get("spec")), f"{prefix}spec",
                             _containers_named(meta))


def _pod_spec(spec: dict[str, Any], where: str, model_containers: set[str]) -> list[Named]:
    found = []
    for field in ("initContainers", "containers"):
        for i, container in enumerate(_list(spec.get(field))):
            c = _dict(container)
            at = f"{where}.{field}[{i}]"
            name = c.get("name")
            image = c.get("image")
            if (name == MODELCAR_CONTAINER or name in model_containers) and isinstance(image, str):
                found.append(Named(image, f"{at}.image", image=True))
            if name == STORAGE_INITIALIZER:
                args = [a for a in _list(c.get("args")) if isinstance(a, str)]
                if args and "://" in args[0]:
                    found.append(Named(args[0], f"{at}.args[0]"))
    return found


def _inference_service(spec: dict[str, Any], model_containers: set[str]) -> list[Named]:
    """KServe v1beta1: each component's model spec (`model`, or a framework key such as
    `sklearn`), whose `storageUri` names the model; the component is a pod spec too."""
    found = []
    for component in ISVC_COMPONENTS:
        part = _dict(spec.get(component))
        for key, value in part.items():
            uri = _dict(value).get("storageUri")
            if isinstance(uri, str):
                found.append(Named(uri, f"spec.{component}.{key}.storageUri"))
            elif "storage" in _dict(value):
                raise Unverifiable(
                    f"spec.{component}.{key}.storage names a model by storage key and path, "
                    "which has no digest to check; the webhook admits only models pinned by "
                    "digest: set storageUri to oci://…@sha256:<digest> or "
                    "hf://org/name@<commit> (or name the digest in the auditor.dev/models "
                    "annotation)")
        uri = part.get("storageUri")
        if isinstance(uri, str):
            found.append(Named(uri, f"spec.{component}.storageUri"))
        found += _pod_spec(part, f"spec.{component}", model_containers)
    return found


def _annotated(meta: dict[str, Any], where: str) -> list[Named]:
    value = _dict(meta.get("annotations")).get(MODELS_ANNOTATION)
    if not isinstance(value, str):
        return []
    at = f"{where}.annotations[{MODELS_ANNOTATION}]"
    return [Named(part.strip(), at) for part in value.split(",") if part.strip()]


def _containers_named(meta: dict[str, Any]) -> set[str]:
    value = _dict(meta.get("annotations")).get(MODEL_CONTAINERS_ANNOTATION)
    if not isinstance(value, str):
        return set()
    return {part.strip() for part in value.split(",") if part.strip()}


def _dict(value: Any) -> dict[str, Any]:
    """A mapping, or empty: a malformed object names no models here (the API server has
    already validated its schema; nothing is guessed from a wrong shape)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
