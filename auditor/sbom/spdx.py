"""CycloneDX ML-BOM → SPDX 3.0.1 JSON-LD (Core, Software, AI, Dataset, SimpleLicensing).

The SPDX document is a second rendering of the CycloneDX BOM auditor just
built, never a second reading of the scan: the model's name, revision,
publisher, files and their digests, findings and lineage come from the typed
facts policies see (facts.py), and what those do not carry (licence spelling,
further digests, Hub links, the model card's parameters, the datasets) from the
same document's standard fields. So the two outputs cannot disagree about a
fact. The `auditor:*` properties have no SPDX home and stay CycloneDX-only;
docs/sbom.md says what is mapped where.

Element ids are IRIs under a namespace made from the BOM's serial number, and
each id below it is derived from what the element names, so a reproducible BOM
(fixed timestamp, content-derived serial) gives a byte-identical SPDX document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from auditor.sbom.document import ModelLayout, layout
from auditor.sbom.factkinds import LineageEntry, ModelFacts
from auditor.sbom.facts import models_from_sbom
from auditor.sbom.properties import UNKNOWN
from auditor.version import __version__

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
SPEC_VERSION = "3.0.1"
# Documents without a home of their own are named under spdx.org/spdxdocs, as SPDX suggests.
NAMESPACE = "https://spdx.org/spdxdocs/auditor/"
CREATION_INFO = "_:creationinfo"
# CycloneDX hash algorithm → SPDX 3 HashAlgorithm (auditor writes SHA-256, SHA-512 on request).
HASH_ALGORITHMS = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512",
                   "SHA3-256": "sha3_256", "SHA3-384": "sha3_384", "SHA3-512": "sha3_512"}
PROFILES = ("core", "software", "ai", "dataset", "simpleLicensing")
QUANTIZATION = "cdx:ai-ml:model:hyperparameter:quantization"
# What a licence name may keep in a LicenseRef- id (SPDX idstring: letters, digits, '.', '-').
_NOT_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass
class _Graph:
    """The elements being written, in order, each id once."""

    ns: str
    elements: list[dict[str, Any]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def id(self, kind: str, key: str) -> str:
        return f"{self.ns}{kind}/{quote(key, safe='-_.~@')}"

    def add(self, kind: str, spdx_id: str, **props: Any) -> str:
        """Add an element unless its id is already present; its id either way."""
        if spdx_id not in self.ids:
            self.ids.add(spdx_id)
            values = {k: v for k, v in props.items() if v not in (None, [])}
            self.elements.append({"type": kind, "spdxId": spdx_id,
                                  "creationInfo": CREATION_INFO, **values})
        return spdx_id

    def relate(self, source: str, kind: str, targets: list[str], comment: str = "") -> None:
        """One Relationship from `source` to `targets`, its id derived from its content."""
        if not targets:
            return
        key = "\n".join((source, kind, *targets))
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.add("Relationship", self.id("relationship", digest), **{
            "from": source, "relationshipType": kind, "to": targets,
            "comment": comment or None})


def to_spdx(doc: dict[str, Any], where: str = "SBOM") -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document of a CycloneDX document auditor wrote."""
    facts = models_from_sbom(doc, where)
    layouts = layout(doc, where)
    serial = str(doc.get("serialNumber") or "").removeprefix("urn:uuid:")
    graph = _Graph(f"{NAMESPACE}{serial}/")
    agent = graph.add("SoftwareAgent", graph.id("agent", "auditor"), name="auditor")
    tool = graph.add("Tool", graph.id("tool", "auditor"), name=f"auditor {__version__}")
    by_ref = {c["bom-ref"]: c for c in doc.get("components") or [] if "bom-ref" in c}
    roots = [_model(graph, found, model, by_ref)
             for found, model in zip(layouts, facts, strict=True)]
    document = {
        "type": "SpdxDocument", "spdxId": graph.id("document", serial),
        "creationInfo": CREATION_INFO,
        "name": "SBOM of " + ", ".join(m.model.name for m in facts),
        "profileConformance": list(PROFILES),
        "rootElement": roots,
        "element": [e["spdxId"] for e in graph.elements],
    }
    creation = {
        "type": "CreationInfo", "@id": CREATION_INFO, "specVersion": SPEC_VERSION,
        "created": (doc.get("metadata") or {}).get("timestamp"),
        "createdBy": [agent], "createdUsing": [tool],
    }
    return {"@context": CONTEXT, "@graph": [creation, document, *graph.elements]}


def to_json(doc: dict[str, Any]) -> str:
    """The SPDX document as text (keys in the order built: the output is deterministic)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _model(graph: _Graph, found: ModelLayout, facts: ModelFacts,
           by_ref: dict[str, dict[str, Any]]) -> str:
    comp = found.component
    info = facts.model
    links = {r.get("type"): r.get("url") for r in comp.get("externalReferences") or []}
    card = comp.get("modelCard") or {}
    params = card.get("modelParameters") or {}
    # Two revisions of one model in one document are two packages: the id names both.
    key = info.name if info.revision == UNKNOWN else f"{info.name}@{info.revision}"
    model = graph.add(
        "ai_AIPackage", graph.id("model", key),
        name=info.name,
        software_packageVersion=_known(info.revision),
        suppliedBy=_organization(graph, info.publisher),
        software_downloadLocation=links.get("distribution"),
        software_homePage=links.get("website"),
        software_packageUrl=_known(info.purl),
        externalIdentifier=_purl_identifier(info.purl),
        software_primaryPurpose="model",
        ai_typeOfModel=[params["architectureFamily"]]
        if isinstance(params.get("architectureFamily"), str) else None,
        ai_domain=[params["task"]] if isinstance(params.get("task"), str) else None,
        ai_limitation=_first_text((card.get("considerations") or {}).get("technicalLimitations")),
        ai_hyperparameter=[{"type": "DictionaryEntry", "key": "quantization",
                            "value": p["value"]} for p in card.get("properties") or []
                           if p.get("name") == QUANTIZATION] or None,
        comment=_summary(facts),
    )
    weights = {f.path for f in facts.files if f.weights == "true"}
    files = [_file(graph, key, part, weights) for part in found.files]
    graph.relate(model, "contains", files)
    _licences(graph, model, comp)
    _datasets(graph, model, params, by_ref)
    _lineage(graph, model, facts.lineage, list(_pedigree(comp)))
    _findings(graph, model, key, facts,
              dict(zip((f.path for f in facts.files), files, strict=True)))
    return model


def _file(graph: _Graph, model_key: str, comp: dict[str, Any], weights: set[str]) -> str:
    """A file of one model: its id is scoped by the model, as two models may both hold a
    `config.json` with different bytes."""
    path = str(comp.get("name") or UNKNOWN)
    hashes = [{"type": "Hash", "algorithm": HASH_ALGORITHMS[h["alg"]], "hashValue": h["content"]}
              for h in comp.get("hashes") or [] if h.get("alg") in HASH_ALGORITHMS]
    return graph.add("software_File", graph.id("file", f"{model_key}/{path}"), name=path,
                     software_fileKind="file", verifiedUsing=hashes,
                     software_primaryPurpose="model" if path in weights else None)


def _organization(graph: _Graph, name: str) -> str | None:
    if name == UNKNOWN:
        return None
    return graph.add("Organization", graph.id("organization", name), name=name)


def _purl_identifier(purl: str) -> list[dict[str, str]] | None:
    if purl == UNKNOWN:
        return None
    return [{"type": "ExternalIdentifier", "externalIdentifierType": "packageUrl",
             "identifier": purl}]


def _licences(graph: _Graph, model: str, comp: dict[str, Any]) -> None:
    """The declared licences as one expression (CycloneDX lists them; the facts join with AND).

    A licence SPDX has no id for becomes `LicenseRef-<name>`; only the
    declared licence is stated, since auditor concludes none of its own.
    """
    terms: list[str] = []
    for entry in comp.get("licenses") or []:
        if isinstance(entry.get("expression"), str):
            terms.append(f"({entry['expression']})")
            continue
        lic = entry.get("license") or {}
        if isinstance(lic.get("id"), str):
            terms.append(lic["id"])
        elif isinstance(lic.get("name"), str) and _NOT_IDSTRING.sub("-", lic["name"]).strip("-"):
            terms.append("LicenseRef-" + _NOT_IDSTRING.sub("-", lic["name"]).strip("-"))
    if not terms:
        return
    expression = " AND ".join(dict.fromkeys(terms))
    licence = graph.add("simplelicensing_LicenseExpression", graph.id("license", expression),
                        simplelicensing_licenseExpression=expression)
    graph.relate(model, "hasDeclaredLicense", [licence])


def _datasets(graph: _Graph, model: str, params: dict[str, Any],
              by_ref: dict[str, dict[str, Any]]) -> None:
    """The card's datasets (modelParameters.datasets): the data a Hub model card names is
    what the model was trained on. Their kind is not known: `noAssertion`."""
    datasets = []
    for item in params.get("datasets") or []:
        if not isinstance(item, dict):
            continue
        target = by_ref.get(str(item.get("ref")))
        data = target["data"][0] if target and target.get("data") else item
        name = (target or item).get("name")
        if not isinstance(name, str):
            continue
        url = (data.get("contents") or {}).get("url")
        datasets.append(graph.add(
            "dataset_DatasetPackage", graph.id("dataset", name), name=name,
            software_primaryPurpose="data",
            software_downloadLocation=url if isinstance(url, str) else None,
            dataset_datasetType=["noAssertion"]))
    graph.relate(model, "trainedOn", datasets)


def _pedigree(comp: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Pedigree ancestors depth-first: the order of the facts' lineage after the model."""
    for parent in (comp.get("pedigree") or {}).get("ancestors") or []:
        yield parent
        yield from _pedigree(parent)


def _lineage(graph: _Graph, model: str, lineage: tuple[LineageEntry, ...],
             components: list[dict[str, Any]]) -> None:
    """Each entry `descendantOf` its bases: a base at depth d+1 belongs to the nearest
    entry of depth d before it (the lineage is depth-first)."""
    chain: dict[int, str] = {0: model}
    bases: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    for entry, comp in zip(lineage[1:], components, strict=True):
        key = entry.name if entry.version == UNKNOWN else f"{entry.name}@{entry.version}"
        ancestor = graph.add(
            "ai_AIPackage", graph.id("ancestor", key), name=entry.name,
            software_packageVersion=_known(entry.version),
            suppliedBy=_organization(graph, entry.publisher),
            software_packageUrl=comp.get("purl"),
            externalIdentifier=_purl_identifier(str(comp.get("purl") or UNKNOWN)),
            software_primaryPurpose="model")
        child = chain.get(entry.depth - 1, model)
        chain[entry.depth] = ancestor
        if ancestor not in bases.setdefault(child, []):
            bases[child].append(ancestor)
        notes.setdefault(child, []).append(f"{entry.name}: {entry.relation} ({entry.grade})")
    for child, parents in bases.items():
        graph.relate(child, "descendantOf", parents,
                     "auditor lineage: " + "; ".join(notes[child]))


def _findings(graph: _Graph, model: str, model_key: str, facts: ModelFacts,
              files: dict[str, str]) -> None:
    """Each finding as a review annotation on the file it is about (else the model)."""
    for n, finding in enumerate(facts.findings, 1):
        where = f" [{finding.member}]" if finding.member else ""
        statement = f"{finding.rule} ({finding.severity}){where}: {finding.title}"
        if finding.detail:
            statement += f" — {finding.detail}"
        graph.add("Annotation", graph.id("finding", f"{model_key}/{n}"),
                  annotationType="review", subject=files.get(finding.file, model),
                  statement=statement)


def _summary(facts: ModelFacts) -> str:
    """The scan's outcome in one line: SPDX has no field for a scanner's verdict."""
    info = facts.model
    counts = ", ".join(f"{k} {v}" for k, v in info.findings.items() if v)
    coverage = ", ".join(f"{k} {v}" for k, v in info.coverage.items() if v)
    return (f"auditor scan verdict: {info.verdict}; findings: {counts or 'none'}; "
            f"files: {info.files} ({coverage or 'none'}); signature: {facts.signature.status}")


def _known(value: str) -> str | None:
    return None if value == UNKNOWN else value


def _first_text(value: Any) -> str | None:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None
