"""ModelReport → CycloneDX ML-BOM: every fact the scan learned, in the standard form.

The SBOM is the contract between scanning and policy: policies read nothing
else. The document is built with cyclonedx-python-lib, which lacks the ML
parts of the standard (`modelCard`, component `data`); those are added to the
serialised JSON afterwards, and the finished document is validated against
the official schema. A post-processed document is never loaded back through
the library (it would drop the added parts); XML is made from the library's
own XML of the same document, with the same parts added in schema order.

Every `auditor:*` property is emitted through the table in properties.py,
which docs/sbom.md is tested against.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.atomicio import write_atomic
from auditor.errors import UsageError
from auditor.integrity.provenance import proven_grade, weakest
from auditor.model import FileReport, Finding, FormatId, ModelReport, ScanResult
from auditor.sbom import licenses
from auditor.sbom import properties as P
from auditor.sbom.schemas import WRITE_SPECS, SbomError, json_error, schema_version
from auditor.scanning.modelfacts import is_code, is_weights, model_facts
from auditor.version import __version__

if TYPE_CHECKING:
    from cyclonedx.model.component import Component

HUB_URL = "https://huggingface.co"
# UUID5 namespace for serial numbers derived from content (a fixed random UUID of our own).
SERIAL_NAMESPACE = uuid.UUID("6f1c0b5e-2d7a-4c8e-9b3f-5a4e8d2c1f07")

# Our digest names -> CycloneDX hash algorithms (others, e.g. git blob ids, are not file hashes).
HASH_ALGORITHMS = {"sha256": "SHA-256", "sha512": "SHA-512"}
# Rule area -> CWE of the weakness the finding points at.
CWE_BY_AREA = {
    "PKL": 502, "PT": 502, "JOB": 502, "NPY": 502, "KERAS": 502,  # deserialization
    "TPL": 1336,  # template injection
    "CODE": 94,  # code injection
}
QUANTIZATION = "cdx:ai-ml:model:hyperparameter:quantization"
# --output-format → the file name ending of each model's SBOM in an --sbom folder.
SUFFIXES = {"json": ".cdx.json", "xml": ".cdx.xml", "spdx-json": ".spdx.json"}


def to_cyclonedx(
    model: ModelReport, result: ScanResult, *, spec: str = "1.6", reproducible: bool = False
) -> dict[str, Any]:
    """The model's SBOM as a JSON-ready dict with every reference checked.

    Schema validity is a property of this code, proven by the test suite for
    every shape it produces (each SBOM a test makes is validated) and on demand
    by `auditor sbom validate`; it is not re-proven on every run, because the
    validator's imports alone cost seconds per process (gates, mirror runs).

    With `reproducible` (or SOURCE_DATE_EPOCH set), the timestamp is fixed
    and the serial number is a UUID5 of the content: the same scan gives the
    same bytes.
    """
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat

    if spec not in WRITE_SPECS:
        raise UsageError(f"unsupported CycloneDX version {spec!r} "
                         f"(expected {', '.join(WRITE_SPECS)})")
    facts = {**model_facts(model.files), **model.facts}
    bom = _bom(model, result, facts)
    text = make_outputter(bom, OutputFormat.JSON, schema_version(spec)).output_as_string()
    doc = json.loads(text)
    _add_model_card(doc["metadata"]["component"], model, facts)
    _add_dataset_data(doc.get("components", []))
    epoch = _source_date_epoch()
    reproducible = reproducible or epoch is not None
    if reproducible:
        stamp = datetime.datetime.fromtimestamp(epoch or 0, datetime.UTC)
    else:
        stamp = datetime.datetime.now(datetime.UTC)
    doc["metadata"]["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if reproducible:
        doc["metadata"].setdefault("properties", []).append(
            {"name": "cdx:reproducible", "value": "true"}
        )
    doc.pop("serialNumber", None)
    serial = uuid.uuid5(SERIAL_NAMESPACE, _canonical(doc)) if reproducible else uuid.uuid4()
    doc = _ordered(doc, f"urn:uuid:{serial}")
    check_references(doc)
    return doc


def to_text(doc: dict[str, Any], output_format: str) -> str:
    """The document as text: JSON as built, XML (validated against the XSD), or the same
    facts as SPDX 3.0.1 JSON-LD (`spdx-json`, sbom/spdx.py)."""
    if output_format == "spdx-json":
        from auditor.sbom import spdx

        return spdx.to_json(spdx.to_spdx(doc))
    if output_format == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if output_format == "xml":
        from auditor.sbom.xml_render import to_xml

        return to_xml(doc)
    raise UsageError(f"unsupported SBOM output format {output_format!r}")


def validate(doc: dict[str, Any]) -> None:
    """Raise SbomError unless `doc` validates against its spec's strict JSON schema."""
    error = json_error(doc, doc["specVersion"])
    if error is not None:
        raise SbomError(f"generated SBOM is not valid CycloneDX {doc['specVersion']}: {error}")


def check_references(doc: dict[str, Any]) -> None:
    """Every bom-ref unique, every reference resolving (the schema does not check this)."""
    refs: list[str] = []
    pointers: list[str] = []
    for key, value in _walk(doc):
        if key == "bom-ref":
            refs.append(value)
        elif key in ("ref", "dependsOn"):
            pointers.extend(value if isinstance(value, list) else [value])
    dupes = sorted(r for r, n in Counter(refs).items() if n > 1)
    dangling = sorted(set(pointers) - set(refs))
    if dupes or dangling:
        raise SbomError(f"generated SBOM has duplicate bom-refs {dupes} "
                        f"or dangling references {dangling}")


def write_sboms(
    result: ScanResult, dest: Path, *, spec: str, output_format: str, reproducible: bool
) -> list[Path]:
    """Write one SBOM per model: to `dest`, or into the folder `dest` when it is one.

    A target holding several models needs a folder; each model's file is
    named after the model (`org__name.cdx.json`).
    """
    if dest.is_dir():
        paths = [dest / f"{_file_stem(m.name)}{SUFFIXES[output_format]}" for m in result.models]
        if len(set(paths)) < len(paths):
            raise UsageError(f"{dest}: two models would write the same SBOM file name")
    elif len(result.models) == 1:
        paths = [dest]
    else:
        raise UsageError(f"{dest}: the target holds {len(result.models)} models; give --sbom an "
                         "existing folder to get one SBOM per model")
    for model, path in zip(result.models, paths, strict=True):
        doc = to_cyclonedx(model, result, spec=spec, reproducible=reproducible)
        write_atomic(path, to_text(doc, output_format))
    return paths


# --- building the library document ---------------------------------------------------------------


def _bom(model: ModelReport, result: ScanResult, facts: dict[str, Any]) -> Any:
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.model.tool import ToolRepository

    tool = Component(type=ComponentType.APPLICATION, name="auditor", version=__version__,
                     bom_ref="tool:auditor")
    root = _model_component(model, result, facts)
    files = [_file_component(f, facts) for f in model.files]
    datasets = [
        Component(type=ComponentType.DATA, name=name, bom_ref=_dataset_ref(name))
        for name in _datasets(facts)
    ]
    parts = files + datasets
    bom = Bom(
        metadata=BomMetaData(tools=ToolRepository(components=[tool]), component=root),
        components=parts,
        vulnerabilities=_vulnerabilities(model, {f.path for f in model.files}),
    )
    # Built directly: Bom.register_dependency searches linearly, quadratic in the file count.
    bom.dependencies.update(
        [Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in parts])]
        + [Dependency(ref=c.bom_ref) for c in parts]
    )
    _skip_known_registrations(bom, {root.bom_ref.value, *(c.bom_ref.value for c in parts)})
    return bom


def _skip_known_registrations(bom: Any, registered: set[str]) -> None:
    """Make the library's pre-output validation linear in the component count.

    Writing a Bom calls `validate()`, which registers every component's
    dependency entry again through `register_dependency` — a linear search
    each, so minutes for a 10,000-file model. Every entry is already there
    (built above), so a registration of a known component with nothing new to
    add is answered from a set; anything else goes to the library as before.
    """
    library = bom.register_dependency

    def register(target: Any, depends_on: Any = None) -> None:
        if depends_on or target.bom_ref.value not in registered:
            library(target, depends_on)

    bom.register_dependency = register


def _model_component(model: ModelReport, result: ScanResult, facts: dict[str, Any]) -> Component:
    from cyclonedx.model.component import Component, ComponentType, Pedigree
    from cyclonedx.model.contact import OrganizationalEntity

    card = facts.get("card", {})
    publisher = _publisher(facts)
    commit = _commit(model, facts)
    ancestors = _ancestors([e for e in facts.get("lineage", []) if isinstance(e, dict)])
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=model.name,
        bom_ref=_model_ref(model),
        version=commit or model.revision,
        publisher=publisher,
        supplier=OrganizationalEntity(name=publisher) if publisher else None,
        purl=_purl(model.name, commit),
        licenses=_licences(model, facts),
        external_references=_model_links(model, commit, card),
        pedigree=Pedigree(ancestors=ancestors) if ancestors else None,
        tags=_strings(card.get("tags")) or None,
        properties=_properties(_model_properties(model, result, facts)),
    )


def _model_properties(
    model: ModelReport, result: ScanResult, facts: dict[str, Any]
) -> Iterator[tuple[P.Property, str]]:
    hub = facts.get("hub", {})
    identity = facts.get("identity", {})
    # A revision that is not a commit (a manifest digest) has its request in the identity facts.
    requested = hub.get("requested_revision") or identity.get("requested") or model.revision
    commit = _commit(model, facts)
    yield P.SOURCE, model.source
    if requested:
        yield P.REVISION_REQUESTED, str(requested)
    if commit:
        yield P.REVISION_COMMIT, commit
    recorded = identity.get("pinned")
    pinned = recorded if isinstance(recorded, bool) else (
        isinstance(requested, str) and P.COMMIT.match(requested) is not None)
    yield P.REVISION_PINNED, P.tri(pinned)
    for prop, key in ((P.REVISION_GRADE, "revision_grade"), (P.REVISION_EVIDENCE,
                      "revision_evidence"), (P.IDENTITY_NAME_GRADE, "name_grade"),
                      (P.IDENTITY_NAME_EVIDENCE, "name_evidence")):
        if isinstance(identity.get(key), str):
            yield prop, identity[key]
    origin = facts.get("origin", {})
    if origin.get("publisher"):
        yield P.ORIGIN_PUBLISHER, str(origin["publisher"])
        yield P.ORIGIN_PUBLISHER_GRADE, str(origin["grade"])
        yield P.ORIGIN_PUBLISHER_EVIDENCE, str(origin["evidence"])
    for origin in facts.get("declared_origins", []):
        yield P.ORIGIN_DECLARED, origin
    worst = model.worst
    yield P.SCAN_VERDICT, "clean" if worst is None else worst.label
    for coverage, count in model.coverage_counts().items():
        yield P.SCAN_COVERAGE_COUNT[coverage], str(count)
    left_out = facts.get("excluded", {})
    yield P.SCAN_COVERAGE_EXCLUDED, str(left_out.get("count", 0))
    for entry in left_out.get("files", []):
        yield P.SCAN_EXCLUDED, f"{entry['path']} ({entry['pattern']})"
    limits = model.coverage_counts()["partial"] > 0 or any(
        f.rule == "AUD-SCAN-002" for f in model.all_findings()
    )
    yield P.SCAN_LIMITS_HIT, P.tri(limits)
    yield P.SCAN_RULES_VERSION, result.rules_version
    yield P.FORMATS, ",".join(facts.get("formats", []))
    remote = facts.get("remote_code", {})
    yield P.REMOTE_CODE, P.tri(bool(remote.get("present")))
    for path in remote.get("files", []):
        yield P.REMOTE_CODE_FILE, path
    signature = facts.get("signature", {})
    yield P.SIGNATURE_STATUS, str(signature.get("status") or P.UNKNOWN)
    if signature.get("method"):
        yield P.SIGNATURE_METHOD, str(signature["method"])
    if signature.get("signer"):
        yield P.SIGNATURE_SIGNER, str(signature["signer"])
    yield P.UPSTREAM_MATCH, _model_upstream(model)
    grade = _model_proven(model, facts)
    yield P.UPSTREAM_GRADE, grade.value if grade else P.UNKNOWN


def _model_proven(model: ModelReport, facts: dict[str, Any]) -> Any:
    """The grade every file's bytes are proven to. A verified signature covers every file
    it does not deliberately ignore (itself, .gitattributes ...), so those are not weighed."""
    signature = facts.get("signature", {})
    covered = signature.get("covered") if signature.get("status") == "verified" else None
    files = [f for f in model.files if not isinstance(covered, list) or f.path in covered]
    return weakest(_proven(f, facts) for f in files) if files else None


def _proven(report: FileReport, facts: dict[str, Any]) -> Any:
    """How strongly one file's bytes are proven the publisher's (integrity.provenance)."""
    signature = facts.get("signature", {})
    covered = signature.get("covered")
    signed = signature.get("status") == "verified" and isinstance(covered, list) and (
        report.path in covered)
    return proven_grade(report.facts.get("upstream"), signed)


def _file_component(report: FileReport, facts: dict[str, Any]) -> Component:
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType

    hashes = [
        HashType(alg=HashAlgorithm(HASH_ALGORITHMS[alg]), content=digest)
        for alg, digest in sorted(report.digests.items()) if alg in HASH_ALGORITHMS
    ]
    upstream = report.facts.get("upstream") or {}
    covered = facts.get("signature", {}).get("covered")
    props = [
        (P.SIZE, str(report.size)),
        (P.FORMAT, report.format),
        (P.WEIGHTS, P.tri(is_weights(report.format))),
        (P.SCAN_COVERAGE, report.coverage.value),
        (P.SCAN_VERDICT, report.verdict),
        (P.UPSTREAM_MATCH, P.tri(upstream.get("match"))),
        (P.SIGNATURE_COVERED,
         P.tri(report.path in covered) if isinstance(covered, list) else P.UNKNOWN),
        (P.REMOTE_CODE, P.tri(is_code(report))),
    ]
    proven = _proven(report, facts)
    props.append((P.UPSTREAM_GRADE, proven.value if proven else P.UNKNOWN))
    if upstream.get("sha256"):
        props.append((P.UPSTREAM_SHA256, str(upstream["sha256"])))
    if upstream.get("grade") and (upstream.get("sha256") or upstream.get("blob_id")):
        props.append((P.UPSTREAM_RECORD_GRADE, str(upstream["grade"])))
    return Component(
        type=ComponentType.FILE, name=report.path, bom_ref=_file_ref(report.path),
        hashes=hashes, properties=_properties(props),
    )


def _vulnerabilities(model: ModelReport, paths: set[str]) -> list[Any]:
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )

    from auditor.rules import catalogue

    source = VulnerabilitySource(name="auditor")
    findings = sorted(model.all_findings(), key=_finding_key)
    out = []
    for n, finding in enumerate(findings, 1):
        rule = catalogue().get(finding.rule)  # asked per finding: no finding, no format imported
        target = _file_ref(finding.file) if finding.file in paths else _model_ref(model)
        props = [(P.LOCATION_FILE, finding.file)]
        if finding.location.member:
            props.append((P.LOCATION_MEMBER, finding.location.member))
        if finding.location.offset is not None:
            props.append((P.LOCATION_OFFSET, str(finding.location.offset)))
        cwe = CWE_BY_AREA.get(finding.rule.split("-")[1])
        out.append(Vulnerability(
            bom_ref=f"finding-{n}",
            id=finding.rule,
            source=source,
            ratings=[VulnerabilityRating(
                source=source, severity=VulnerabilitySeverity(finding.severity.label),
                method=VulnerabilityScoreSource.OTHER,
            )],
            cwes=[cwe] if cwe else None,
            description=finding.title,
            detail=_evidence(finding),
            recommendation=rule.fix if rule else None,
            affects=[BomTarget(ref=target)],
            properties=_properties(props),
        ))
    return out


def _ancestors(lineage: list[dict[str, Any]]) -> list[Component]:
    """Lineage entries (`depth` 1 = direct base) → nested ancestor components.

    An entry of depth d+1 is a base of the entry named by its `child` key, or
    (without one) of the nearest preceding entry of depth d: depth-first order.
    """
    from cyclonedx.model.component import Component, ComponentType, Pedigree

    depths = [d if isinstance(d := e.get("depth", 1), int) and d > 0 else 1 for e in lineage]
    bases: dict[int | None, list[int]] = {}
    for i, entry in enumerate(lineage):
        parent = None
        if depths[i] > 1:
            candidates = [j for j in range(i) if depths[j] == depths[i] - 1]
            named = [j for j in candidates if lineage[j].get("name") == entry.get("child")]
            parent = (named or candidates or [None])[-1]
        bases.setdefault(parent, []).append(i)

    def component(i: int) -> Component:
        entry = lineage[i]
        name = str(entry.get("name") or "unknown")
        commit = entry.get("commit") if P.COMMIT.match(str(entry.get("commit") or "")) else None
        publisher = entry.get("publisher") or None
        parents = [component(j) for j in bases.get(i, [])]
        props = [
            (P.LINEAGE_RELATION, str(entry.get("relation") or P.UNKNOWN)),
            (P.LINEAGE_RESOLVED, P.tri(entry.get("resolved"))),
            (P.LINEAGE_DEPTH, str(depths[i])),
            (P.LINEAGE_GRADE, str(entry.get("grade") or "declared")),
            *(((P.LINEAGE_SCORE, f"{entry['score']:.3f}"),)
              if isinstance(entry.get("score"), float | int) else ()),
            *((P.LINEAGE_EVIDENCE, str(e)) for e in entry.get("evidence") or ()),
        ]
        if publisher and entry.get("publisher_grade"):
            props.append((P.ORIGIN_PUBLISHER_GRADE, str(entry["publisher_grade"])))
        return Component(
            type=ComponentType.MACHINE_LEARNING_MODEL, name=name, bom_ref=f"ancestor-{i + 1}",
            version=commit, publisher=publisher, purl=_purl(name, commit),
            pedigree=Pedigree(ancestors=parents) if parents else None,
            properties=_properties(props),
        )

    return [component(i) for i in bases.get(None, [])]


# --- post-processing: what the library cannot express --------------------------------------------


def _add_model_card(component: dict[str, Any], model: ModelReport, facts: dict[str, Any]) -> None:
    """`modelCard`, keys in XSD order (the XML writer relies on it)."""
    card = facts.get("card", {})
    config = facts.get("config", {})
    params: dict[str, Any] = {}
    if isinstance(card.get("pipeline_tag"), str):
        params["task"] = card["pipeline_tag"]
    gguf = facts.get("gguf", {})
    if isinstance(config.get("model_type"), str):
        params["architectureFamily"] = config["model_type"]
    elif gguf.get("architectures"):
        params["architectureFamily"] = ", ".join(gguf["architectures"])
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures:
        params["modelArchitecture"] = ", ".join(str(a) for a in architectures)
    datasets = _datasets(facts)
    if datasets:
        params["datasets"] = [{"ref": _dataset_ref(d)} for d in datasets]
    considerations: dict[str, Any] = {}
    raw = card.get("considerations")
    stated: dict[str, str] = {}
    if isinstance(raw, dict):
        stated = {k: v for k, v in raw.items() if isinstance(v, str) and v}
    for key in ("users", "useCases", "technicalLimitations"):
        if key in stated:
            considerations[key] = [stated[key]]
    if "ethicalConsiderations" in stated:
        considerations["ethicalConsiderations"] = [{"name": stated["ethicalConsiderations"]}]
    props = list(_card_properties(facts))
    model_card: dict[str, Any] = {"bom-ref": f"modelcard:{model.name}"}
    if params:
        model_card["modelParameters"] = params
    if considerations:
        model_card["considerations"] = considerations
    if props:
        model_card["properties"] = props
    if len(model_card) > 1:
        component["modelCard"] = model_card


def _card_properties(facts: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Standard `cdx:ai-ml` properties where the facts give them, then the card's own."""
    card = facts.get("card", {})
    config = facts.get("config", {})
    if facts.get("parameters"):
        yield {"name": "cdx:ai-ml:model:parameter:count", "value": str(facts["parameters"])}
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and isinstance(quant.get("quant_method"), str):
        yield {"name": QUANTIZATION, "value": quant["quant_method"]}
    for quantization in facts.get("gguf", {}).get("quantizations", []):
        yield {"name": QUANTIZATION, "value": quantization}
    for language in _strings(card.get("language")):
        yield {"name": "cdx:ai-ml:model:language", "value": language}
    for key, prop in (("library_name", P.CARD_LIBRARY_NAME),
                      ("base_model_relation", P.CARD_BASE_MODEL_RELATION)):
        if isinstance(card.get(key), str):
            yield P.emit(prop, card[key])


def _add_dataset_data(components: list[dict[str, Any]]) -> None:
    for component in components:
        if component.get("type") == "data":
            name = component["name"]
            component["data"] = [{
                "type": "dataset", "name": name,
                "contents": {"url": f"{HUB_URL}/datasets/{_quote(name)}"},
            }]


# --- facts → fields ------------------------------------------------------------------------------


def _publisher(facts: dict[str, Any]) -> str | None:
    publisher = facts.get("origin", {}).get("publisher")
    return publisher if isinstance(publisher, str) and publisher else None


def _commit(model: ModelReport, facts: dict[str, Any]) -> str | None:
    for candidate in (model.revision, facts.get("hub", {}).get("sha")):
        if isinstance(candidate, str) and P.COMMIT.match(candidate):
            return candidate.lower()
    return None


def _purl(name: str, commit: str | None) -> Any:
    """`pkg:huggingface/org/name@commit`: only when both the organisation and commit are known."""
    if commit is None or name.count("/") != 1:
        return None
    from packageurl import PackageURL

    namespace, short = name.split("/")
    return PackageURL(type="huggingface", namespace=namespace, name=short, version=commit)


def _licences(model: ModelReport, facts: dict[str, Any]) -> list[Any]:
    """The card's licences; without any, those the GGUF files declare."""
    from cyclonedx.model import XsUri
    from cyclonedx.model.license import DisjunctiveLicense

    declared = sorted({f.facts["license"] for f in model.files
                       if f.format == FormatId.GGUF and isinstance(f.facts.get("license"), str)})
    stated = licenses.from_card(facts.get("card", {})) or licenses.from_card(
        {"license": declared}
    )
    return [
        DisjunctiveLicense(id=lic.spdx_id, name=None if lic.spdx_id else lic.name,
                           url=XsUri(lic.url) if lic.url else None)
        for lic in stated
    ]


def _model_links(model: ModelReport, commit: str | None, card: dict[str, Any]) -> list[Any]:
    """Hub pages of models whose name is an org/name repository id."""
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri

    if model.name.count("/") != 1:
        return []
    page = f"{HUB_URL}/{_quote(model.name)}"
    links = [ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(page))]
    if commit:
        links.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                       url=XsUri(f"{page}/tree/{commit}")))
        if card:
            links.append(ExternalReference(type=ExternalReferenceType.MODEL_CARD,
                                           url=XsUri(f"{page}/blob/{commit}/README.md")))
    return links


def _datasets(facts: dict[str, Any]) -> list[str]:
    return sorted(set(_strings(facts.get("card", {}).get("datasets"))))


def _strings(value: Any) -> list[str]:
    """A card field that is a string or a list of strings, as a list (anything else: empty).

    Card facts may come from the Hub's card data as well as from our own
    parser, so the shape is checked here again.
    """
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [v.strip() for v in items if isinstance(v, str) and v.strip()]


def _model_upstream(model: ModelReport) -> str:
    """`false` if any file differs from upstream, `true` if every file was matched."""
    matches = [(f.facts.get("upstream") or {}).get("match") for f in model.files]
    if any(m is False for m in matches):
        return "false"
    return "true" if matches and all(m is True for m in matches) else "unknown"


def _evidence(finding: Finding) -> str:
    where = " ".join(p for p in (finding.file, str(finding.location)) if p)
    if not where:  # a finding about the model as a whole
        return finding.detail
    return f"{finding.detail} [{where}]" if finding.detail else f"[{where}]"


def _finding_key(finding: Finding) -> tuple[Any, ...]:
    loc = finding.location
    return (finding.file, loc.member or "", -1 if loc.offset is None else loc.offset,
            finding.rule, finding.detail)


def _properties(pairs: Iterable[tuple[P.Property, str]]) -> list[Any]:
    """Library properties from (table entry, value) pairs, each value checked by the table."""
    from cyclonedx.model import Property

    return [Property(**P.emit(prop, value)) for prop, value in pairs]


def _model_ref(model: ModelReport) -> str:
    return f"model:{model.name}"


def _file_ref(path: str) -> str:
    return f"file:{path}"


def _dataset_ref(name: str) -> str:
    return f"dataset:{name}"


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/-_.~")


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__")) or "model"


def _source_date_epoch() -> int | None:
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds") from None
    if value < 0:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is negative")
    return value


def _canonical(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _ordered(doc: dict[str, Any], serial: str) -> dict[str, Any]:
    """Conventional top-level key order; nested order is the library's (deterministic)."""
    first = {"$schema": doc.get("$schema"), "bomFormat": doc["bomFormat"],
             "specVersion": doc["specVersion"], "serialNumber": serial, "version": doc["version"],
             "metadata": doc["metadata"]}
    rest = {k: v for k, v in doc.items() if k not in first}
    return {k: v for k, v in {**first, **rest}.items() if v is not None}


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
