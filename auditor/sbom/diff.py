"""What changed between two SBOMs of a model: for release review.

Compares what a reviewer must sign off again: files added, removed or
re-hashed; findings new and gone; the model's licence, revision, publisher
and lineage; its signature status; and how strongly its provenance is proven
(the grades of its name, revision, publisher, bytes, each file and each
ancestor), a weaker grade marked as such. Works on any CycloneDX JSON (the model is
`metadata.component`, files are `file` components), not only on ours.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from auditor.sbom import properties as P

# Model-level aspects compared (read from metadata.component), in report order.
MODEL_FIELDS = ("name", "licence", "revision", "publisher", "purl", "lineage", "signature",
                "provenance")
# The model's graded facts summarised in the `provenance` aspect, in this order.
_GRADED = (("name", P.IDENTITY_NAME_GRADE), ("revision", P.REVISION_GRADE),
           ("publisher", P.ORIGIN_PUBLISHER_GRADE), ("bytes", P.UPSTREAM_GRADE))


@dataclass(frozen=True)
class Change:
    """One difference; `old`/`new` are None when the aspect is absent on that side."""

    # file-added | file-removed | file-rehashed | file-regraded | finding-new | finding-gone |
    # a MODEL_FIELDS name
    kind: str
    subject: str
    old: str | None = None
    new: str | None = None


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    before, after = _model(old), _model(new)
    for field in MODEL_FIELDS:
        if before[field] != after[field]:
            changes.append(Change(field, after["name"] or before["name"] or "model",
                                  before[field], after[field]))
    old_files, new_files = _files(old), _files(new)
    for name in sorted(new_files.keys() - old_files.keys()):
        changes.append(Change("file-added", name, None, _digest(new_files[name])))
    for name in sorted(old_files.keys() - new_files.keys()):
        changes.append(Change("file-removed", name, _digest(old_files[name]), None))
    for name in sorted(old_files.keys() & new_files.keys()):
        a, b = old_files[name], new_files[name]
        common = sorted(a.keys() & b.keys())
        if any(a[alg] != b[alg] for alg in common):
            alg = "SHA-256" if "SHA-256" in common else common[0]
            changes.append(Change("file-rehashed", name, f"{alg}:{a[alg]}", f"{alg}:{b[alg]}"))
    old_grades, new_grades = _file_grades(old), _file_grades(new)
    for name in sorted(old_grades.keys() & new_grades.keys()):
        if old_grades[name] != new_grades[name]:
            changes.append(Change("file-regraded", name, old_grades[name], new_grades[name]))
    old_findings, new_findings = _findings(old), _findings(new)
    for key, n in sorted((new_findings - old_findings).items()):
        changes.extend(Change("finding-new", key[1], None, _finding_text(key)) for _ in range(n))
    for key, n in sorted((old_findings - new_findings).items()):
        changes.extend(Change("finding-gone", key[1], _finding_text(key), None) for _ in range(n))
    return changes


def render_text(changes: list[Change], old: str, new: str) -> str:
    if not changes:
        return f"{old} and {new}: no changes\n"
    lines = [f"{old} → {new}: {len(changes)} change{'s' if len(changes) != 1 else ''}"]
    for c in changes:
        if c.kind == "file-added":
            lines.append(f"  + file     {c.subject}  {c.new or ''}".rstrip())
        elif c.kind == "file-removed":
            lines.append(f"  - file     {c.subject}")
        elif c.kind == "file-rehashed":
            lines.append(f"  ~ file     {c.subject}  {c.old} → {c.new}")
        elif c.kind == "file-regraded":
            lines.append(f"  ~ grade    {c.subject}  {c.old} → {c.new}{_weaker(c.old, c.new)}")
        elif c.kind == "finding-new":
            lines.append(f"  + finding  {c.new}")
        elif c.kind == "finding-gone":
            lines.append(f"  - finding  {c.old}")
        else:
            lines.append(f"  ~ {c.kind:8} {_show(c.old)} → {_show(c.new)}")
    return "\n".join(lines) + "\n"


def render_json(changes: list[Change], old: str, new: str) -> str:
    doc = {"old": old, "new": new, "changed": bool(changes),
           "changes": [asdict(c) for c in changes]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _model(doc: dict[str, Any]) -> dict[str, str | None]:
    component = _dict(_dict(doc.get("metadata")).get("component"))
    props = _properties(component)
    return {
        "name": _str(component.get("name")),
        "licence": _join(sorted(_licence(x) for x in _list(component.get("licenses")))),
        "revision": _str(component.get("version")) or props.get(P.REVISION_COMMIT.name),
        "publisher": _str(component.get("publisher")) or props.get(P.ORIGIN_PUBLISHER.name),
        "purl": _str(component.get("purl")),
        "lineage": _join(_lineage(component, 1)),
        "signature": props.get(P.SIGNATURE_STATUS.name),
        "provenance": _join([f"{label} {props[prop.name]}" for label, prop in _GRADED
                             if prop.name in props]),
    }


def _file_grades(doc: dict[str, Any]) -> dict[str, str]:
    """How strongly each file's bytes are proven (`auditor:upstream:grade`), where recorded."""
    out: dict[str, str] = {}
    for component in map(_dict, _list(doc.get("components"))):
        grade = _properties(component).get(P.UPSTREAM_GRADE.name)
        if component.get("type") == "file" and isinstance(component.get("name"), str) and grade:
            out[component["name"]] = grade
    return out


def _weaker(old: str | None, new: str | None) -> str:
    """` (weaker)` when `new` proves less than `old` (unknown proves nothing)."""
    rank = {g: i for i, g in enumerate(P.GRADES)}
    return " (weaker)" if rank.get(old or "", -1) > rank.get(new or "", -1) else ""


def _lineage(component: dict[str, Any], depth: int) -> list[str]:
    out: list[str] = []
    for ancestor in _list(_dict(component.get("pedigree")).get("ancestors")):
        ancestor = _dict(ancestor)
        props = _properties(ancestor)
        relation = props.get(P.LINEAGE_RELATION.name, P.UNKNOWN)
        grade = props.get(P.LINEAGE_GRADE.name)
        said = f", {grade}" if grade else ""
        version = f"@{ancestor['version']}" if ancestor.get("version") else ""
        out.append(f"{'>' * depth} {ancestor.get('name')}{version} ({relation}{said})")
        out.extend(_lineage(ancestor, depth + 1))
    return out


def _files(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    files: dict[str, dict[str, str]] = {}
    for component in _list(doc.get("components")):
        component = _dict(component)
        if component.get("type") == "file" and isinstance(component.get("name"), str):
            files[component["name"]] = {
                str(h.get("alg")): str(h.get("content")).lower()
                for h in map(_dict, _list(component.get("hashes")))
            }
    return files


def _findings(doc: dict[str, Any]) -> Counter[tuple[str, str, str, str]]:
    """(id, affected component names, severity, detail) of every vulnerability, counted."""
    names: dict[str, str] = {}
    for key, value in _refs(doc):
        names.setdefault(key, value)
    found: Counter[tuple[str, str, str, str]] = Counter()
    for vuln in map(_dict, _list(doc.get("vulnerabilities"))):
        targets = sorted(names.get(str(_dict(a).get("ref")), str(_dict(a).get("ref")))
                         for a in _list(vuln.get("affects")))
        ratings = [_dict(r).get("severity") for r in _list(vuln.get("ratings"))]
        severity = next((str(s) for s in ratings if s), "unknown")
        detail = _str(vuln.get("detail")) or ""
        found[(str(vuln.get("id")), ", ".join(targets), severity, detail)] += 1
    return found


def _refs(value: Any) -> list[tuple[str, str]]:
    """(bom-ref, name) of every component in the document, wherever it sits."""
    out: list[tuple[str, str]] = []
    if isinstance(value, dict):
        if isinstance(value.get("bom-ref"), str) and isinstance(value.get("name"), str):
            out.append((value["bom-ref"], value["name"]))
        for item in value.values():
            out.extend(_refs(item))
    elif isinstance(value, list):
        for item in value:
            out.extend(_refs(item))
    return out


def _finding_text(key: tuple[str, str, str, str]) -> str:
    rule, target, severity, detail = key
    return f"{rule} {severity} {target}: {detail}" if detail else f"{rule} {severity} {target}"


def _licence(entry: Any) -> str:
    entry = _dict(entry)
    if "expression" in entry:
        return str(entry["expression"])
    lic = _dict(entry.get("license"))
    return str(lic.get("id") or lic.get("name") or "unknown")


def _digest(hashes: dict[str, str]) -> str | None:
    alg = "SHA-256" if "SHA-256" in hashes else next(iter(sorted(hashes)), None)
    return f"{alg}:{hashes[alg]}" if alg else None


def _properties(component: dict[str, Any]) -> dict[str, str]:
    props: dict[str, str] = {}
    for prop in map(_dict, _list(component.get("properties"))):
        if isinstance(prop.get("name"), str):
            props.setdefault(prop["name"], str(prop.get("value", "")))
    return props


def _show(value: str | None) -> str:
    return "(none)" if value is None else value.replace("\n", "; ")


def _join(items: list[str]) -> str | None:
    return "\n".join(items) if items else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
