"""Kubernetes AdmissionReview v1 in, AdmissionReview v1 out.

The API server posts `{"apiVersion": "admission.k8s.io/v1", "kind":
"AdmissionReview", "request": {uid, kind, resource, operation, object,
userInfo, …}}` and expects the same envelope back with `response.uid` echoed.
Every answer here is such an envelope: allowed, or denied with one line naming
the model and the check that failed; warnings (waivers near expiry, errors
admitted under `--failure-policy allow`) go to the client as kubectl warnings.
Only an outage (a registry or store unreachable, the time budget spent) is an
error that policy may admit; an internal error always denies.

Hostile or broken input never crashes and never admits: a body over the API
server's own request limit (3 MiB) is refused unread (HTTP 413); a body that is
not an AdmissionReview v1 with a uid gets HTTP 400 with a denial in the body
(no uid can be echoed, so the API server counts it as a webhook failure and
`failurePolicy: Fail` rejects); a well-formed review of a kind auditor does not
know is denied with the reason, since the webhook configuration never sends one.

An UPDATE is judged against its `oldObject`: a reference pinned by digest or
commit that the old object already named is not checked again (a registry
outage or an expired cache entry must not block a label change or a finalizer's
removal on a running pod). The old object may never have been admitted (made
before the webhook existed, in an excluded namespace, or under `--failure-policy
allow`), so only what a pin fixes carries over: an unpinned reference is judged
again on every UPDATE, and so denied, since what a tag names can have moved.
References the update adds are judged like a CREATE's.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor.admission.decide import Decision, subject_of
from auditor.admission.refs import Named, model_refs
from auditor.errors import AuditorError

MAX_BODY = 3 * 1024 * 1024  # the API server's limit on a request body
API_VERSION = "admission.k8s.io/v1"
JUDGED_OPERATIONS = ("CREATE", "UPDATE")
MAX_MODELS = 64  # per object: more is not a model server, it is an attempt to exhaust the budget
MAX_WARNING = 256  # kubectl shows each warning on a line; the API server truncates long ones
FAILURE_POLICIES = ("fail", "allow")
# Checks that are not verdicts on the model but an outage kept one from being reached:
# the only ones `--failure-policy allow` may admit (never `internal`).
ERRORS = ("error", "timeout")


@dataclass(frozen=True)
class Request:
    """The parts of an AdmissionReview request a decision and its audit line need."""

    uid: str
    kind: str
    namespace: str
    name: str
    operation: str
    user: str
    obj: Any
    old: Any = None  # oldObject: set for UPDATE


@dataclass(frozen=True)
class Answer:
    """What to send back (HTTP status, JSON body) and what to write to the audit log."""

    status: int
    body: dict[str, Any]
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return bool(self.body.get("response", {}).get("allowed"))


class Malformed(AuditorError):
    """Not an AdmissionReview v1 request (the message says what is wrong)."""


def review(body: bytes, decide_all: Callable[[Sequence[Named]], list[Decision]],
           failure_policy: str = "fail") -> Answer:
    """The answer to one posted body; `decide_all` decides a request's model references."""
    if len(body) > MAX_BODY:
        return refused(f"AdmissionReview of {len(body)} bytes is over the {MAX_BODY}-byte "
                       "limit", status=413)
    try:
        request = parse(body)
    except Malformed as exc:
        return refused(str(exc))
    subject = f"{request.kind} {request.namespace}/{request.name}".replace(" /", " ")
    if request.operation not in JUDGED_OPERATIONS:
        return _answer(request, True, f"{request.operation} runs no model", [])
    try:
        named = model_refs(request.kind, request.obj)
    except AuditorError as exc:
        return _answer(request, False, f"{subject}: {exc}", [])
    if not named:
        return _answer(request, True, f"{subject} names no model", [])
    admitted = _already_admitted(request, named)
    kept = [n.ref for n in admitted]
    if admitted:
        named = [n for n in named if n not in admitted]
        if not named:
            return _answer(request, True, f"{subject}: {request.operation} keeps the model "
                           "references already admitted (not checked again): "
                           + ", ".join(kept), [], kept)
    if len(named) > MAX_MODELS:
        return _answer(request, False, f"{subject} names {len(named)} models, more than the "
                       f"{MAX_MODELS} one review may check", [])
    decisions = [settle(d, failure_policy) for d in decide_all(named)]
    denied = [d for d in decisions if not d.allowed]
    if denied:
        more = f" (+{len(denied) - 1} more denied)" if len(denied) > 1 else ""
        return _answer(request, False, f"{subject}: {denied[0].reason}{more}", decisions, kept)
    unchanged = f"; unchanged, not checked again: {', '.join(kept)}" if kept else ""
    return _answer(request, True, f"{subject}: " + "; ".join(d.reason for d in decisions)
                   + unchanged, decisions, kept)


def _already_admitted(request: Request, named: Sequence[Named]) -> list[Named]:
    """The pinned references of an UPDATE that its oldObject named too (in the same role):
    the same string then names the same bytes, which were admitted or are denied alike.
    An unpinned one is never among them: its old self proves no verdict on what it names now."""
    if request.operation != "UPDATE" or not isinstance(request.old, dict):
        return []
    try:
        old = {(n.ref, n.image) for n in model_refs(request.kind, request.old)}
    except AuditorError:  # the old object could not have been admitted by its models
        return []
    return [n for n in named if (n.ref, n.image) in old and _pinned(n)]


def _pinned(named: Named) -> bool:
    """The decision's own pin test: a digest or a commit, not a tag or a branch."""
    try:
        subject_of(named)
    except AuditorError:  # Unpinned, or a UsageError saying how to pin it
        return False
    return True


def settle(decision: Decision, failure_policy: str) -> Decision:
    """An error (a registry or store unreachable) or a timeout under `--failure-policy allow`
    admits, loudly; nothing else changes. An internal error (check `internal`: our code broke,
    perhaps on attestation bytes a deployer chose) is no outage and always denies."""
    if decision.check not in ERRORS or failure_policy != "allow":
        return decision
    return Decision(decision.model, True, decision.check, decision.reason,
                    (*decision.warnings,
                     f"admitted without a verdict (failure policy allow): {decision.reason}"),
                    decision.cached)


def parse(body: bytes) -> Request:
    """The request of an AdmissionReview v1 document, or Malformed naming what is wrong."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Malformed("not an AdmissionReview: the document is not an object")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "AdmissionReview":
        raise Malformed(f"not an AdmissionReview {API_VERSION}: apiVersion "
                        f"{doc.get('apiVersion')!r}, kind {doc.get('kind')!r}")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise Malformed("AdmissionReview without a request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise Malformed("AdmissionReview request without a uid")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise Malformed(f"AdmissionReview {uid}: request.kind is not a GroupVersionKind")
    user = request.get("userInfo")
    return Request(
        uid=uid, kind=kind["kind"], namespace=_text(request.get("namespace")),
        name=_text(request.get("name")) or _generated_name(request.get("object")),
        operation=_text(request.get("operation")),
        user=_text(user.get("username")) if isinstance(user, dict) else "",
        obj=request.get("object"), old=request.get("oldObject"),
    )


def refused(message: str, uid: str = "", status: int = 400) -> Answer:
    """A denial of a body that is not a usable AdmissionReview (HTTP 400 or 413)."""
    body = _envelope(uid, False, message, [])
    return Answer(status, body, {"uid": uid, "allowed": False, "reason": message,
                                 "http_status": status, "models": []})


def _answer(request: Request, allowed: bool, message: str,
            decisions: list[Decision], unchanged: Sequence[str] = ()) -> Answer:
    warnings = [w for d in decisions for w in d.warnings]
    body = _envelope(request.uid, allowed, message, warnings)
    audit = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        "uid": request.uid, "kind": request.kind, "namespace": request.namespace,
        "name": request.name, "operation": request.operation, "user": request.user,
        "allowed": allowed, "reason": message, "models": [d.as_dict() for d in decisions],
    }
    if warnings:  # each model's are in `models` too; here they are easy to alert on
        audit["warnings"] = warnings
    if unchanged:  # an UPDATE's references admitted before, not checked again
        audit["unchanged_models"] = list(unchanged)
    return Answer(200, body, audit)


def _envelope(uid: str, allowed: bool, message: str, warnings: list[str]) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    one_line = " ".join(message.split())
    if allowed:
        response["status"] = {"code": 200, "message": one_line}
    else:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": one_line}
    if warnings:
        response["warnings"] = [_cut(" ".join(w.split())) for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _cut(text: str) -> str:
    return text if len(text) <= MAX_WARNING else text[:MAX_WARNING - 1] + "…"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _generated_name(obj: Any) -> str:
    """A pod made by a controller has no name yet at CREATE, only generateName."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return _text(meta.get("generateName")) if isinstance(meta, dict) else ""
