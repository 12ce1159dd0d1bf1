"""`auditor sbom validate`: a CycloneDX file against the official schema and the property table.

Any version the bundled library has a schema for (1.2 to 1.7) is validated
against that version's schema; a newer 1.x is validated against the newest
schema the library has, with a note saying so; anything else is invalid.
Our own `auditor:*` properties are checked against properties.py: an
unknown name, a value outside its allowed set, or a property where it does
not belong is invalid, so no writer (ours or another) can drift unseen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.sbom import properties as P
from auditor.sbom.cdxml import looks_like_xml, xml_text
from auditor.sbom.loading import parse, read_bytes
from auditor.sbom.schemas import json_error, newest_known, xml_error

_PLACE_BY_TYPE = {"machine-learning-model": P.MODEL, "file": P.FILE}


@dataclass(frozen=True)
class Validation:
    """What `validate_file` found: no problems means valid; `note` qualifies a pass."""

    problems: tuple[str, ...] = ()
    note: str = ""

    @property
    def valid(self) -> bool:
        return not self.problems


def validate_file(path: Path) -> Validation:
    """Validate one JSON or XML CycloneDX file; UsageError (exit 2) only when unreadable.

    Read with read_sbom's limits (loading.py): a document too large, nested too
    deeply, with a duplicate JSON key or an XML DTD is invalid, one line each.
    """
    data = read_bytes(path)
    where = str(path)
    try:
        doc = parse(data, where)
        if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
            return Validation(("not a CycloneDX document (no \"bomFormat\": \"CycloneDX\")",))
        spec = doc.get("specVersion")
        schema, note = _schema_for(spec)
        if schema is None:
            return Validation((f"unsupported CycloneDX version {spec!r}",))
        if looks_like_xml(data):
            text = xml_text(data, where)
            if schema != spec:
                text = text.replace(f"/schema/bom/{spec}", f"/schema/bom/{schema}")
            error = xml_error(text, schema)
        else:
            error = json_error(doc if schema == spec else {**doc, "specVersion": schema}, schema)
    except UsageError as exc:
        return Validation((str(exc).removeprefix(where).lstrip(": "),))
    except RecursionError:
        return Validation(("nested too deeply to be validated",))
    problems = (f"not valid CycloneDX {schema}: {error}",) if error else ()
    return Validation(problems + tuple(property_problems(doc)), note)


def _schema_for(spec: Any) -> tuple[str | None, str]:
    if not isinstance(spec, str):
        return None, ""
    schema = newest_known(spec)
    if schema is None or schema == spec:
        return schema, ""
    return schema, f"CycloneDX {spec} checked against the {schema} schema, the newest bundled"


def property_problems(doc: dict[str, Any]) -> Iterator[str]:
    """`$.path: problem` for each auditor property the table refuses, anywhere in `doc`."""
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    if isinstance(metadata.get("component"), dict):
        yield from _component(metadata["component"], "$.metadata.component", None)
    for i, comp in enumerate(_list(doc.get("components"))):
        yield from _component(comp, f"$.components[{i}]", None)
    for i, vuln in enumerate(_list(doc.get("vulnerabilities"))):
        yield from _properties(vuln, f"$.vulnerabilities[{i}]", P.FINDING)


def _component(comp: Any, path: str, place: str | None) -> Iterator[str]:
    if not isinstance(comp, dict):
        return
    kind = comp.get("type")
    here = place or _PLACE_BY_TYPE.get(kind if isinstance(kind, str) else "", f"{kind} component")
    yield from _properties(comp, path, here)
    card = comp.get("modelCard")
    if isinstance(card, dict):
        yield from _properties(card, f"{path}.modelCard", P.CARD)
    pedigree = comp.get("pedigree") if isinstance(comp.get("pedigree"), dict) else {}
    for i, parent in enumerate(_list(pedigree.get("ancestors"))):
        yield from _component(parent, f"{path}.pedigree.ancestors[{i}]", P.ANCESTOR)
    for i, child in enumerate(_list(comp.get("components"))):
        yield from _component(child, f"{path}.components[{i}]", None)


def _properties(parent: dict[str, Any], path: str, place: str) -> Iterator[str]:
    for i, problem in P.check(_list(parent.get("properties")), place):
        yield f"{path}.properties[{i}]: {problem}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
