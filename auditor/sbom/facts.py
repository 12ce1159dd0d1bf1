"""Any CycloneDX document (JSON or XML) → the typed facts that policies see.

Policies read the SBOM only, never scanner objects, so that `auditor policy
check` judges SBOMs made by other tools by the same rules. An SBOM written by
auditor carries `auditor:` properties (properties.py); another tool's SBOM
gives what its standard fields give (publisher, supplier, purl, pedigree,
hashes, vulnerabilities). Whatever neither says is the explicit string
`unknown` (factkinds.py). The layout of the document (which files and
findings belong to which model) and its well-formedness are document.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.sbom import properties as P
from auditor.sbom.document import ModelLayout, layout
from auditor.sbom.factkinds import (
    COVERAGES,
    SEVERITIES,
    FileFacts,
    FindingFacts,
    LineageEntry,
    ModelFacts,
    ModelInfo,
    SignatureFacts,
)
from auditor.sbom.loading import parse, read_bytes
from auditor.sbom.properties import TRI_STATES, UNKNOWN

# A finding's severity is the worst its ratings give (several raters may score one
# vulnerability). CycloneDX's `none` is a rating of no severity: info. A rating that gives
# none (`unknown`, missing, or a value outside the enum) is unknown, which ranks below
# critical and high and above medium: it may be either, so it must not lose to a medium.
_SEVERITY_ALIASES = {"none": "info"}
_SEVERITY_RANK = ("critical", "high", UNKNOWN, "medium", "low", "info")
# AIsbom (github.com/Lab700xOrg/aisbom) writes each model file as a machine-learning-model
# component and its verdict on it in this property, e.g. "CRITICAL (RCE Detected: ...)",
# "MEDIUM (Pickle Present)", "LOW" or "UNKNOWN"; it writes no `vulnerabilities`.
AISBOM_RISK = "aisbom:risk"
AISBOM_LEVELS = ("critical", "high", "medium", "low")
Props = dict[str, list[str]]
# SPDX (auditor's `--output-format spdx-json` or another tool's) is written, never judged.
_SPDX_REFUSED = ("{path}: is an SPDX document; policy check reads CycloneDX — write one with "
                 "--output-format json")


def read_sbom(path: Path) -> dict[str, Any]:
    """A CycloneDX JSON or XML file from disk as its JSON shape, or UsageError naming the file.

    The one reader for every command that takes an SBOM (policy check, gate,
    sbom diff, mirror), so they refuse the same inputs with the same messages;
    the limits are loading.py's, shared with `auditor sbom validate`.
    """
    data = read_bytes(path)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"SPDXVersion:"):  # SPDX 2 tag-value
        raise UsageError(_SPDX_REFUSED.format(path=path))
    doc = parse(data, str(path))
    if is_spdx(doc):
        raise UsageError(_SPDX_REFUSED.format(path=path))
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise UsageError(f"{path}: not a CycloneDX document (no \"bomFormat\": \"CycloneDX\")")
    return doc


def is_spdx(doc: Any) -> bool:
    """An SPDX 3 JSON-LD document (its `@context` is SPDX's) or an SPDX 2 JSON one."""
    if not isinstance(doc, dict):
        return False
    context = doc.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if any(isinstance(c, str) and "spdx.org/rdf/" in c for c in contexts):
        return True
    version = doc.get("spdxVersion")
    return isinstance(version, str) and version.startswith("SPDX-")


def models_from_sbom(doc: Any, where: str) -> list[ModelFacts]:
    """Every machine-learning-model component of a CycloneDX document, as facts.

    Raises UsageError (exit 2) when the document is malformed (naming the
    JSON path) or describes no model: judging nothing must not look like a pass.
    """
    try:
        models = layout(doc, where)
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply to be an SBOM") from None
    tool = _tool_name(doc.get("metadata") or {})
    return [_model_facts(m, tool) for m in models]


def _model_facts(found: ModelLayout, tool: str) -> ModelFacts:
    comp = found.component
    props = _props(comp)
    findings = [_finding_facts(f.data, f.file) for f in found.findings]
    findings += _aisbom_findings(comp, "")
    for part in found.files:
        findings += _aisbom_findings(part, _str(part.get("name")))
    by_file: dict[str, list[str]] = {}
    for finding in findings:
        by_file.setdefault(finding.file, []).append(finding.severity)
    files = [_file_facts(c, by_file) for c in found.files]
    counts = {s: 0 for s in SEVERITIES}
    for finding in findings:
        counts[finding.severity] += 1
    coverage = {c: 0 for c in COVERAGES}
    for f in files:
        coverage[f.coverage] += 1
    # What was audited before what was asked for: an OCI tag resolves to the digest the
    # component's version records (a commit has its own property).
    revision = _first(_get(props, P.REVISION_COMMIT), _str(comp.get("version")),
                      _get(props, P.REVISION_REQUESTED), _purl_version(comp))
    pinned_prop = _first(_get(props, P.REVISION_PINNED))
    pinned = pinned_prop == "true" if pinned_prop != UNKNOWN else bool(P.COMMIT.match(revision))
    formats = _split(_get(props, P.FORMATS)) or sorted(
        {f.format for f in files if f.format != UNKNOWN}
    )
    code = [f for f in files if f.remote_code == "true"]
    model = ModelInfo(
        name=_str(comp.get("name")),
        publisher=_first(_get(props, P.ORIGIN_PUBLISHER), _publisher(comp)),
        purl=_str(comp.get("purl")),
        revision=revision,
        pinned=pinned,
        license=_license(comp),
        formats=tuple(formats),
        remote_code=_tri(_get(props, P.REMOTE_CODE))
        if P.REMOTE_CODE.name in props else ("true" if code else UNKNOWN),
        code_sha256=tuple(sorted(f.sha256 for f in code)),
        source=_first(_get(props, P.SOURCE)),
        verdict=_first(_get(props, P.SCAN_VERDICT)),
        coverage=coverage,
        files=len(files),
        findings=counts,
        worst=_worst([f.severity for f in findings]),
        upstream_match=_tri(_get(props, P.UPSTREAM_MATCH))
        if P.UPSTREAM_MATCH.name in props else _all_match(files),
        sbom_tool=tool,
        declared_origins=tuple(dict.fromkeys(
            v for v in _get(props, P.ORIGIN_DECLARED) if v.strip())),
        publisher_grade=_grade(props, P.ORIGIN_PUBLISHER_GRADE),
        publisher_evidence=_first(_get(props, P.ORIGIN_PUBLISHER_EVIDENCE)),
        name_grade=_grade(props, P.IDENTITY_NAME_GRADE),
        name_evidence=_first(_get(props, P.IDENTITY_NAME_EVIDENCE)),
        revision_grade=_grade(props, P.REVISION_GRADE),
        revision_evidence=_first(_get(props, P.REVISION_EVIDENCE)),
        upstream_grade=_grade(props, P.UPSTREAM_GRADE),
        excluded=_count(props, P.SCAN_COVERAGE_EXCLUDED),
        excluded_files=tuple(_get(props, P.SCAN_EXCLUDED)),
    )
    status = _first(_get(props, P.SIGNATURE_STATUS))
    signature = SignatureFacts(
        status=status,
        method=_first(_get(props, P.SIGNATURE_METHOD)),
        signer=_first(_get(props, P.SIGNATURE_SIGNER)),
        grade="signed" if status == "verified" else UNKNOWN,
    )
    lineage = [_ancestor(comp, props, 0, "self")]
    _walk_ancestors(comp, 1, lineage)
    return ModelFacts(model, signature, tuple(lineage), tuple(files), tuple(findings))


def _file_facts(comp: dict[str, Any], by_file: dict[str, list[str]]) -> FileFacts:
    props = _props(comp)
    path = _str(comp.get("name"))
    name = path.rsplit("/", 1)[-1]
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""
    size = _first(_get(props, P.SIZE))
    coverage = _first(_get(props, P.SCAN_COVERAGE))
    severities = by_file.get(path, [])
    return FileFacts(
        path=path,
        name=name,
        extension=ext,
        format=_first(_get(props, P.FORMAT)),
        sha256=_sha256(comp),
        size=int(size) if size.isdigit() else -1,
        verdict=_first(_get(props, P.SCAN_VERDICT)),
        coverage=coverage if coverage in COVERAGES else UNKNOWN,
        weights=_tri(_get(props, P.WEIGHTS)),
        upstream_sha256=_first(_get(props, P.UPSTREAM_SHA256)),
        upstream_match=_tri(_get(props, P.UPSTREAM_MATCH)),
        upstream_grade=_grade(props, P.UPSTREAM_GRADE),
        upstream_record_grade=_grade(props, P.UPSTREAM_RECORD_GRADE),
        signed=_tri(_get(props, P.SIGNATURE_COVERED)),
        remote_code=_tri(_get(props, P.REMOTE_CODE)),
        findings=len(severities),
        worst=_worst(severities),
    )


def _finding_facts(vuln: dict[str, Any], path: str) -> FindingFacts:
    props = _props(vuln)
    offset = _first(_get(props, P.LOCATION_OFFSET))
    source = vuln.get("source") or {}
    return FindingFacts(
        rule=_str(vuln.get("id")),
        severity=_rated(vuln.get("ratings") or []),
        file=path,
        title=_text(vuln.get("description")),
        detail=_text(vuln.get("detail")),
        fix=_text(vuln.get("recommendation")),
        member=next(iter(_get(props, P.LOCATION_MEMBER)), ""),  # documented: empty when none
        offset=int(offset) if offset.isdigit() else -1,
        source=_str(source.get("name")),
    )


def _rated(ratings: list[dict[str, Any]]) -> str:
    """The worst severity any rating gives; unknown when there is none (see _SEVERITY_RANK)."""
    found = set()
    for rating in ratings:
        value = _str(rating.get("severity")).lower()
        value = _SEVERITY_ALIASES.get(value, value)
        found.add(value if value in SEVERITIES else UNKNOWN)
    return next((s for s in _SEVERITY_RANK if s in found), UNKNOWN)


def _aisbom_findings(comp: dict[str, Any], path: str) -> list[FindingFacts]:
    """AIsbom's risk verdict on a component as a finding on it (source `aisbom`)."""
    out = []
    for value in _props(comp).get(AISBOM_RISK, []):
        level = value.strip().split(" ", 1)[0].lower()
        out.append(FindingFacts(
            rule="AISBOM-RISK", severity=level if level in AISBOM_LEVELS else UNKNOWN,
            file=path, title=f"AIsbom risk: {value.strip() or UNKNOWN}", detail=value,
            fix="", member="", offset=-1, source="aisbom"))
    return out


def _ancestor(comp: dict[str, Any], props: Props, depth: int, relation: str) -> LineageEntry:
    """The model itself (depth 0: its grade is its name's) or one pedigree ancestor."""
    grade = P.IDENTITY_NAME_GRADE if depth == 0 else P.LINEAGE_GRADE
    return LineageEntry(
        name=_str(comp.get("name")),
        publisher=_first(_get(props, P.ORIGIN_PUBLISHER), _publisher(comp)),
        version=_first(_str(comp.get("version")), _purl_version(comp)),
        relation=relation,
        depth=depth,
        resolved="true" if depth == 0 else _tri(_get(props, P.LINEAGE_RESOLVED)),
        declared=False,
        grade=_grade(props, grade),
        evidence=tuple(v for v in _get(props, P.LINEAGE_EVIDENCE) if v.strip())
        if depth else tuple(v for v in _get(props, P.IDENTITY_NAME_EVIDENCE) if v.strip()),
        publisher_grade=_grade(props, P.ORIGIN_PUBLISHER_GRADE),
        score=_score(_first(_get(props, P.LINEAGE_SCORE))),
    )


def _score(value: str) -> float:
    """A measured ancestor's score; -1 when absent or not a number in [0, 1]."""
    try:
        score = float(value)
    except ValueError:
        return -1.0
    return score if 0.0 <= score <= 1.0 else -1.0


def _walk_ancestors(comp: dict[str, Any], depth: int, out: list[LineageEntry]) -> None:
    for parent in (comp.get("pedigree") or {}).get("ancestors") or []:
        props = _props(parent)
        out.append(_ancestor(parent, props, depth, _first(_get(props, P.LINEAGE_RELATION))))
        _walk_ancestors(parent, depth + 1, out)


# --- small readers over a checked document: each returns the documented type, never None ---


def _get(props: Props, prop: P.Property) -> list[str]:
    return props.get(prop.name, [])


def _grade(props: Props, prop: P.Property) -> str:
    """A grade property's value; unknown when absent or not a grade (another tool's SBOM)."""
    value = _first(_get(props, prop))
    return value if value in P.GRADES else UNKNOWN


def _count(props: Props, prop: P.Property) -> int:
    """An integer property's value; -1 when absent or not a count (fails `!= 0` closed)."""
    value = _first(_get(props, prop))
    return int(value) if value.isdigit() else -1


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


def _tri(values: list[str]) -> str:
    value = _first(values).lower()
    return value if value in TRI_STATES else UNKNOWN


def _split(values: list[str]) -> list[str]:
    return sorted({p.strip() for v in values for p in v.split(",") if p.strip()})


def _props(comp: dict[str, Any]) -> Props:
    """Properties by name (repeated names keep every value), component and modelCard alike."""
    out: Props = {}
    card = comp.get("modelCard") or {}
    for prop in (comp.get("properties") or []) + (card.get("properties") or []):
        out.setdefault(prop["name"], []).append(prop.get("value") or "")
    return out


def _purl_parts(comp: dict[str, Any]) -> tuple[str, str] | None:
    """(namespace, version) of a purl with a namespace, e.g. pkg:huggingface/org/name@sha."""
    purl = comp.get("purl")
    if not isinstance(purl, str) or not purl.startswith("pkg:"):
        return None
    body = purl[4:].split("?", 1)[0].split("#", 1)[0]
    body, _, version = body.partition("@")
    parts = body.split("/")
    return (parts[1] if len(parts) >= 3 else "", version)


def _purl_version(comp: dict[str, Any]) -> str:
    parts = _purl_parts(comp)
    return parts[1] if parts and parts[1] else UNKNOWN


def _publisher(comp: dict[str, Any]) -> str:
    supplier = comp.get("supplier") or {}
    parts = _purl_parts(comp)
    name = comp.get("name") or ""
    return _first(
        comp.get("publisher"),
        supplier.get("name"),
        parts[0] if parts else None,
        name.split("/", 1)[0] if "/" in name else None,
    )


def _license(comp: dict[str, Any]) -> str:
    found = []
    for entry in comp.get("licenses") or []:
        if isinstance(entry.get("expression"), str):
            found.append(entry["expression"])
        elif isinstance(entry.get("license"), dict):
            lic = entry["license"]
            found.append(_first(lic.get("id"), lic.get("name")))
    found = [f for f in found if f != UNKNOWN]
    return " AND ".join(found).lower() if found else UNKNOWN


def _sha256(comp: dict[str, Any]) -> str:
    for h in comp.get("hashes") or []:
        if h["alg"] == "SHA-256":
            return h["content"].lower()
    return UNKNOWN


def _tool_name(metadata: dict[str, Any]) -> str:
    tools = metadata.get("tools")
    if isinstance(tools, dict):  # CycloneDX 1.5+: {components: [...], services: [...]}
        tools = (tools.get("components") or []) + (tools.get("services") or [])
    names = [t.get("name") for t in tools or []]
    return _first(*names) if names else UNKNOWN


def _worst(severities: list[str]) -> str:
    for severity in _SEVERITY_RANK:
        if severity in severities:
            return severity
    return "none"


def _all_match(files: list[FileFacts]) -> str:
    states = {f.upstream_match for f in files}
    if not files or UNKNOWN in states:
        return UNKNOWN
    return "false" if "false" in states else "true"
