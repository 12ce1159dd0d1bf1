"""Any CycloneDX JSON document → the facts object that policies see.

Policies read the SBOM only, never scanner objects, so that `auditor policy
check` judges SBOMs made by other tools by the same rules. An SBOM written by
auditor carries `auditor:` properties (docs/architecture.md, "SBOM
properties"); another tool's SBOM gives what its standard fields give
(publisher, supplier, purl, pedigree, hashes, vulnerabilities). Whatever
neither says is the explicit string `unknown`: a rule comparing against a
real value then fails instead of passing on a missing key.

Tri-state facts (`weights`, `upstream_match`, `signed`, `remote_code`) are the
strings `true`, `false` or `unknown`, as in the SBOM itself. The field tables
below are the single list of documented facts: the policy linter checks every
fact name a rule uses against them, and docs/policy.md describes each one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.errors import UsageError

UNKNOWN = "unknown"
TRI_STATES = ("true", "false", UNKNOWN)
SEVERITIES = ("critical", "high", "medium", "low", "info", UNKNOWN)
COVERAGES = ("scanned", "partial", "unsupported", "error", UNKNOWN)
MAX_SBOM_BYTES = 256 * 1024 * 1024

# The documented facts: variable -> field -> one-line meaning (docs/policy.md has the detail).
MODEL_FIELDS: dict[str, str] = {
    "name": "model name (Hub id `org/name` when known)",
    "publisher": "who published it: auditor's origin property, else publisher, supplier, "
                 "purl namespace or the `org/` part of the name; else unknown",
    "purl": "package URL, or unknown",
    "revision": "commit or requested revision, or unknown",
    "pinned": "bool: the revision is a full 40-hex commit",
    "license": "SPDX id or expression, lower-cased (SPDX ids compare case-insensitively)",
    "formats": "list of the content formats of its files",
    "remote_code": "tri-state: the model ships code that a loader runs (trust_remote_code)",
    "code_sha256": "list of SHA-256 digests of the files that are remote code",
    "source": "where the bytes came from (local, hf, ...), or unknown",
    "verdict": "the scan verdict recorded in the SBOM (clean or worst severity), or unknown",
    "coverage": "map coverage -> number of files (scanned, partial, unsupported, error, unknown)",
    "files": "number of file components",
    "findings": "map severity -> number of findings (critical ... info, unknown)",
    "worst": "highest finding severity, or none",
    "upstream_match": "tri-state: every file matches the publisher's upstream digests",
    "sbom_tool": "name of the tool that wrote the SBOM, or unknown",
    "declared_origins": "organisations the files name as their origin (card model_creator, "
                        "GGUF general.organization); each is also a lineage entry",
    "jurisdiction": "ISO 3166 country of the publisher (from data.publishers), or unknown",
    "tier": "risk tier of that jurisdiction (from data.jurisdictions), or unknown",
    "lineage_tier": "worst tier over the whole lineage (restricted > elevated > standard)",
}
FILE_FIELDS: dict[str, str] = {
    "path": "path relative to the model root",
    "name": "file name (last path segment)",
    "extension": "lower-case extension with its dot (`.bin`), or empty",
    "format": "content format (by magic bytes, not by name), or unknown",
    "sha256": "SHA-256 of the content, or unknown",
    "size": "size in bytes, or -1 when unknown",
    "verdict": "scan verdict of the file (clean or worst severity), or unknown",
    "coverage": "scanned, partial, unsupported, error or unknown",
    "weights": "tri-state: the file holds weights",
    "upstream_sha256": "digest the publisher's repository lists for this path, or unknown",
    "upstream_match": "tri-state: the content matches the upstream digest",
    "signed": "tri-state: the file is covered by a verified signature",
    "remote_code": "tri-state: the file is code a loader would run",
    "findings": "number of findings on this file",
    "worst": "highest finding severity on this file, or none",
}
FINDING_FIELDS: dict[str, str] = {
    "rule": "rule id (AUD-... for auditor, else the vulnerability id)",
    "severity": "critical, high, medium, low, info or unknown",
    "file": "path of the affected file, or empty when it affects the model",
    "title": "short description",
    "detail": "what exactly was found",
    "fix": "recommendation, or empty",
    "member": "archive member path, or empty",
    "offset": "byte offset, or -1",
    "source": "the tool that reported it, or unknown",
}
SIGNATURE_FIELDS: dict[str, str] = {
    "status": "verified, failed, unsigned or unknown",
    "method": "signing method (e.g. key, certificate, sigstore), or unknown",
    "signer": "identity of the signer, or unknown",
}
ANCESTOR_FIELDS: dict[str, str] = {
    "name": "model name",
    "publisher": "publisher (as for model.publisher), or unknown",
    "version": "revision of that ancestor, or unknown",
    "relation": "self (the model itself), finetune, adapter, merge, quantized, "
                "distillation, declared (policy declared_parents), origin (named by the "
                "files as their origin) or unknown",
    "depth": "0 for the model itself, 1 for its parents, 2 for theirs ...",
    "resolved": "tri-state: the ancestor was identified on the Hub (not only named)",
    "declared": "bool: added by the policy's declared_parents, not found in the SBOM",
    "organisation": "organisation behind the publisher (from data.publishers), or unknown",
    "jurisdiction": "ISO 3166 country (from data.publishers), or unknown",
    "tier": "risk tier (from data.jurisdictions), or unknown",
}
FACT_FIELDS: dict[str, dict[str, str]] = {
    "model": MODEL_FIELDS,
    "file": FILE_FIELDS,
    "finding": FINDING_FIELDS,
    "signature": SIGNATURE_FIELDS,
    "ancestor": ANCESTOR_FIELDS,
}

_COMMIT = re.compile(r"^[0-9a-fA-F]{40}$")
_SEVERITY_ALIASES = {"none": "info"}


@dataclass(frozen=True)
class ModelFacts:
    """Facts about one model as the SBOM states them (before policy data is applied).

    `lineage` starts with the model itself (depth 0) and lists the ancestors
    found in `pedigree.ancestors`, depth-first.
    """

    model: dict[str, Any]
    signature: dict[str, str]
    lineage: tuple[dict[str, Any], ...]
    files: tuple[dict[str, Any], ...]
    findings: tuple[dict[str, Any], ...]


def read_sbom(path: Path) -> dict[str, Any]:
    """A CycloneDX JSON file from disk, or UsageError naming the file (exit 2).

    The one reader for every command that takes an SBOM (policy check, gate,
    sbom diff, mirror), so they refuse the same inputs with the same messages.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SBOM_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read SBOM: {exc.strerror or exc}") from None
    if len(data) > MAX_SBOM_BYTES:
        raise UsageError(f"{path}: larger than {MAX_SBOM_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg} "
                         "(SBOMs are read as CycloneDX JSON)") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise UsageError(f"{path}: not a CycloneDX document (no \"bomFormat\": \"CycloneDX\")")
    return doc


def models_from_sbom(doc: Any, where: str) -> list[ModelFacts]:
    """Every machine-learning-model component of a CycloneDX JSON document, as facts.

    Raises UsageError (exit 2) when the document is not CycloneDX or describes
    no model: judging nothing must not look like a pass.
    """
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise UsageError(f"{where}: not a CycloneDX JSON document (no bomFormat: CycloneDX)")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    top = [c for c in _list(doc.get("components")) if isinstance(c, dict)]
    root = metadata.get("component")
    models: list[tuple[dict, list[dict]]] = []
    if isinstance(root, dict) and root.get("type") == "machine-learning-model":
        # auditor's layout: the model in metadata.component, its files in components.
        models.append((root, [c for c in top if c.get("type") == "file"]))
    for comp in top:
        if comp.get("type") == "machine-learning-model":
            nested = [c for c in _list(comp.get("components")) if isinstance(c, dict)]
            models.append((comp, [c for c in nested if c.get("type") == "file"]))
    if not models:
        raise UsageError(f"{where}: the SBOM describes no machine-learning-model component")
    tool = _tool_name(metadata)
    vulns = [v for v in _list(doc.get("vulnerabilities")) if isinstance(v, dict)]
    return [_model_facts(comp, files, vulns, tool, len(models) == 1) for comp, files in models]


def _model_facts(
    comp: dict, file_comps: list[dict], vulns: list[dict], tool: str, only_model: bool
) -> ModelFacts:
    props = _props(comp)
    files = [_file_facts(c) for c in file_comps]
    refs = {c.get("bom-ref"): f["path"] for c, f in zip(file_comps, files, strict=True)}
    model_ref = comp.get("bom-ref")
    findings = []
    for vuln in vulns:
        targets = [a.get("ref") for a in _list(vuln.get("affects")) if isinstance(a, dict)]
        hit = [refs[t] for t in targets if t in refs]
        if hit:
            findings += [_finding_facts(vuln, path) for path in hit]
        elif model_ref in targets or (only_model and not targets):
            findings.append(_finding_facts(vuln, ""))
    by_file: dict[str, list[str]] = {}
    for finding in findings:
        by_file.setdefault(finding["file"], []).append(finding["severity"])
    for f in files:
        sevs = by_file.get(f["path"], [])
        f["findings"] = len(sevs)
        f["worst"] = _worst(sevs)
    counts = {s: 0 for s in SEVERITIES}
    for finding in findings:
        counts[finding["severity"]] += 1
    coverage = {c: 0 for c in COVERAGES}
    for f in files:
        coverage[f["coverage"]] += 1
    revision = _first(props.get("auditor:revision:commit"), props.get("auditor:revision:requested"),
                      _str(comp.get("version")), _purl_version(comp))
    pinned_prop = _first(props.get("auditor:revision:pinned"))
    pinned = pinned_prop == "true" if pinned_prop != UNKNOWN else bool(_COMMIT.match(revision))
    formats = _split(props.get("auditor:formats")) or sorted(
        {f["format"] for f in files if f["format"] != UNKNOWN}
    )
    code = [f for f in files if f["remote_code"] == "true"]
    model = {
        "name": _str(comp.get("name")),
        "publisher": _first(props.get("auditor:origin:publisher"), _publisher(comp)),
        "purl": _str(comp.get("purl")),
        "revision": revision,
        "pinned": pinned,
        "license": _license(comp),
        "formats": formats,
        "remote_code": _tri(props.get("auditor:remote-code"))
        if "auditor:remote-code" in props else ("true" if code else UNKNOWN),
        "code_sha256": sorted(f["sha256"] for f in code),
        "source": _first(props.get("auditor:source")),
        "verdict": _first(props.get("auditor:scan:verdict")),
        "coverage": coverage,
        "files": len(files),
        "findings": counts,
        "worst": _worst([f["severity"] for f in findings]),
        "upstream_match": _tri(props.get("auditor:upstream:sha256-match"))
        if "auditor:upstream:sha256-match" in props else _all_match(files),
        "sbom_tool": tool,
        "declared_origins": list(dict.fromkeys(v for v in props.get("auditor:origin:declared", [])
                                               if v.strip())),
    }
    signature = {
        "status": _first(props.get("auditor:signature:status")),
        "method": _first(props.get("auditor:signature:method")),
        "signer": _first(props.get("auditor:signature:signer")),
    }
    lineage = [_ancestor(comp, props, 0, "self")]
    _walk_ancestors(comp, 1, lineage)
    return ModelFacts(model, signature, tuple(lineage), tuple(files), tuple(findings))


def _file_facts(comp: dict) -> dict[str, Any]:
    props = _props(comp)
    path = _str(comp.get("name"))
    name = path.rsplit("/", 1)[-1]
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""
    size = _first(props.get("auditor:size"))
    coverage = _first(props.get("auditor:scan:coverage"))
    return {
        "path": path,
        "name": name,
        "extension": ext,
        "format": _first(props.get("auditor:format")),
        "sha256": _sha256(comp),
        "size": int(size) if size.isdigit() else -1,
        "verdict": _first(props.get("auditor:scan:verdict")),
        "coverage": coverage if coverage in COVERAGES else UNKNOWN,
        "weights": _tri(props.get("auditor:weights")),
        "upstream_sha256": _first(props.get("auditor:upstream:sha256")),
        "upstream_match": _tri(props.get("auditor:upstream:sha256-match")),
        "signed": _tri(props.get("auditor:signature:covered")),
        "remote_code": _tri(props.get("auditor:remote-code")),
    }


def _finding_facts(vuln: dict, path: str) -> dict[str, Any]:
    props = _props(vuln)
    ratings = [r for r in _list(vuln.get("ratings")) if isinstance(r, dict)]
    severity = _str(ratings[0].get("severity")).lower() if ratings else UNKNOWN
    severity = _SEVERITY_ALIASES.get(severity, severity)
    offset = _first(props.get("auditor:location:offset"))
    source = vuln.get("source") if isinstance(vuln.get("source"), dict) else {}
    return {
        "rule": _str(vuln.get("id")),
        "severity": severity if severity in SEVERITIES else UNKNOWN,
        "file": path,
        "title": _text(vuln.get("description")),
        "detail": _text(vuln.get("detail")),
        "fix": _text(vuln.get("recommendation")),
        "member": _text(_first(props.get("auditor:location:member"), "")),
        "offset": int(offset) if offset.isdigit() else -1,
        "source": _str(source.get("name")),
    }


def _ancestor(comp: dict, props: dict[str, list[str]], depth: int, relation: str) -> dict:
    return {
        "name": _str(comp.get("name")),
        "publisher": _first(props.get("auditor:origin:publisher"), _publisher(comp)),
        "version": _first(_str(comp.get("version")), _purl_version(comp)),
        "relation": relation,
        "depth": depth,
        "resolved": "true" if depth == 0 else _tri(props.get("auditor:lineage:resolved")),
        "declared": False,
    }


def _walk_ancestors(comp: dict, depth: int, out: list[dict]) -> None:
    pedigree = comp.get("pedigree") if isinstance(comp.get("pedigree"), dict) else {}
    for parent in _list(pedigree.get("ancestors")):
        if not isinstance(parent, dict):
            continue
        props = _props(parent)
        out.append(_ancestor(parent, props, depth, _first(props.get("auditor:lineage:relation"))))
        _walk_ancestors(parent, depth + 1, out)


# --- small readers: every one returns a value of the documented type, never None ---


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) and value.strip() else UNKNOWN


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first(*values: Any) -> str:
    """The first known value; lists (repeated properties) give their first element."""
    for value in values:
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value.strip() and value != UNKNOWN:
            return value.strip()
    return UNKNOWN


def _tri(values: list[str] | None) -> str:
    value = _first(values).lower()
    return value if value in TRI_STATES else UNKNOWN


def _split(values: list[str] | None) -> list[str]:
    return sorted({p.strip() for v in values or [] for p in v.split(",") if p.strip()})


def _props(comp: dict) -> dict[str, list[str]]:
    """Properties by name (repeated names keep every value), component and modelCard alike."""
    out: dict[str, list[str]] = {}
    card = comp.get("modelCard") if isinstance(comp.get("modelCard"), dict) else {}
    for prop in _list(comp.get("properties")) + _list(card.get("properties")):
        if isinstance(prop, dict) and isinstance(prop.get("name"), str):
            value = prop.get("value")
            out.setdefault(prop["name"], []).append(value if isinstance(value, str) else "")
    return out


def _purl_parts(comp: dict) -> tuple[str, str] | None:
    """(namespace, version) of a purl with a namespace, e.g. pkg:huggingface/org/name@sha."""
    purl = comp.get("purl")
    if not isinstance(purl, str) or not purl.startswith("pkg:"):
        return None
    body = purl[4:].split("?", 1)[0].split("#", 1)[0]
    body, _, version = body.partition("@")
    parts = body.split("/")
    return (parts[1] if len(parts) >= 3 else "", version)


def _purl_version(comp: dict) -> str:
    parts = _purl_parts(comp)
    return parts[1] if parts and parts[1] else UNKNOWN


def _publisher(comp: dict) -> str:
    supplier = comp.get("supplier") if isinstance(comp.get("supplier"), dict) else {}
    parts = _purl_parts(comp)
    name = comp.get("name") if isinstance(comp.get("name"), str) else ""
    return _first(
        comp.get("publisher"),
        supplier.get("name"),
        parts[0] if parts else None,
        name.split("/", 1)[0] if "/" in name else None,
    )


def _license(comp: dict) -> str:
    found = []
    for entry in _list(comp.get("licenses")):
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("expression"), str):
            found.append(entry["expression"])
        elif isinstance(entry.get("license"), dict):
            lic = entry["license"]
            found.append(_first(lic.get("id"), lic.get("name")))
    found = [f for f in found if f != UNKNOWN]
    return " AND ".join(found).lower() if found else UNKNOWN


def _sha256(comp: dict) -> str:
    for h in _list(comp.get("hashes")):
        if isinstance(h, dict) and h.get("alg") == "SHA-256" and isinstance(h.get("content"), str):
            return h["content"].lower()
    return UNKNOWN


def _tool_name(metadata: dict) -> str:
    tools = metadata.get("tools")
    if isinstance(tools, dict):  # CycloneDX 1.5+: {components: [...], services: [...]}
        tools = _list(tools.get("components")) + _list(tools.get("services"))
    names = [t.get("name") for t in _list(tools) if isinstance(t, dict)]
    return _first(*names) if names else UNKNOWN


def _worst(severities: list[str]) -> str:
    for severity in SEVERITIES:
        if severity in severities:
            return severity
    return "none"


def _all_match(files: list[dict]) -> str:
    states = {f["upstream_match"] for f in files}
    if not files or UNKNOWN in states:
        return UNKNOWN
    return "false" if "false" in states else "true"
