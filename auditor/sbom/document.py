"""A CycloneDX document checked for what the facts reader relies on, and its models laid out.

Any valid CycloneDX 1.2–1.7 is accepted whatever its layout: the model in
`metadata.component` or in `components`, files nested under the model or
flat and linked to it through `dependencies` (lib4sbom, cdxgen), findings in
`vulnerabilities` pointing at files or the model. A `metadata.component` that
is not a model (Syft's scanned directory, a lib4sbom bundle) is the subject
of the BOM, not a file. A file no model claims (Syft lists files flat, with no
link to the package found in them) belongs to the model in
`metadata.component`, else to every model: unclaimed must not mean unjudged.

References may be BOM-Links (`urn:cdx:<serial>/<version>#<bom-ref>`). A link
into this very document (its serialNumber and version) is resolved to the
component it names; a link to another BOM names something this reader cannot
see, so a finding about it bears on every model here (fail closed).

A document that is not well formed is refused with one UsageError (exit 2)
naming the file and the JSON path, e.g. `sbom.json: $.components[3].bom-ref:
duplicate 'file-a'`: a wrong type, a missing or duplicate bom-ref, a reference
to nothing, an unknown spec version. Anything read leniently here could
otherwise turn into a finding nobody sees, and a policy check would pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from auditor.errors import UsageError
from auditor.sbom.schemas import READ_SPECS

MODEL_TYPE = "machine-learning-model"
FILE_TYPE = "file"
BOM_LINK = "urn:cdx:"  # a BOM-Link: into this document, or into another BOM
_LINK = re.compile(r"urn:cdx:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                   r"/([1-9][0-9]*)(?:#(.+))?\Z")
_SERIAL = re.compile(r"urn:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z")


@dataclass
class Component:
    """A component object of the document and where it sits."""

    data: dict[str, Any]
    path: str
    ref: str | None
    type: str
    parent_model: Component | None  # nearest enclosing model component (by nesting)
    nested: list[Component] = field(default_factory=list)

    @property
    def is_model(self) -> bool:
        return self.type == MODEL_TYPE


@dataclass(frozen=True)
class Finding:
    """A vulnerability as it bears on one model: `file` is the path, "" for the model itself."""

    data: dict[str, Any]
    file: str


@dataclass(frozen=True)
class ModelLayout:
    """One model component with the file components and findings that belong to it."""

    component: dict[str, Any]
    files: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...]


def layout(doc: Any, where: str) -> list[ModelLayout]:
    """Every model of the document with its files and findings; UsageError when malformed."""
    check = _Check(where)
    top = check.object(doc, "$")
    if top.get("bomFormat") != "CycloneDX":
        raise UsageError(f"{where}: not a CycloneDX document (no \"bomFormat\": \"CycloneDX\")")
    spec = top.get("specVersion")
    if spec is None:
        check.fail("$.specVersion", "missing")
    if not isinstance(spec, str) or spec not in READ_SPECS:
        check.fail("$.specVersion", f"unsupported CycloneDX version {_show(spec)} "
                   f"(expected {READ_SPECS[0]} to {READ_SPECS[-1]})")
    refs = check.bom_refs(top)
    check.identity(top)
    metadata = check.optional_object(top, "metadata", "$")
    check.tools(metadata)
    components: list[Component] = []
    root = None
    if "component" in metadata:
        root = check.component(metadata["component"], "$.metadata.component", None, components)
    for i, item in enumerate(check.optional_list(top, "components", "$")):
        check.component(item, f"$.components[{i}]", None, components)
    graph = check.dependencies(top, refs)
    vulns = check.vulnerabilities(top, refs)
    models = [c for c in components if c.is_model]
    if not models:
        raise UsageError(f"{where}: the SBOM describes no machine-learning-model component")
    by_ref = {c.ref: c for c in components if c.ref is not None}
    files = {id(m): _files_of(m, by_ref, graph) for m in models}
    held = {id(f) for fs in files.values() for f in fs}
    loose = [c for c in components
             if c.type == FILE_TYPE and id(c) not in held and c is not root]
    owners = [root] if root is not None and root.is_model else models
    for owner in owners:
        files[id(owner)] += loose
    return [
        ModelLayout(m.data, tuple(f.data for f in files[id(m)]),
                    tuple(_findings(m, files, models, vulns, by_ref, graph)))
        for m in models
    ]


def _files_of(
    model: Component, by_ref: dict[str, Component], graph: dict[str, list[str]]
) -> list[Component]:
    """Files nested under the model, then those it reaches through dependencies (not through
    another model: a base model's files are not this model's)."""
    found: dict[int, Component] = {}
    for comp in _reach(model, by_ref, graph):
        if comp.type == FILE_TYPE:
            found.setdefault(id(comp), comp)
    return list(found.values())


def _reach(
    model: Component, by_ref: dict[str, Component], graph: dict[str, list[str]]
) -> Iterator[Component]:
    """Every component that is part of `model`: nested in it, or a dependency of it or of its
    parts, stopping at other models."""
    seen = {id(model)}
    queue = [model]
    while queue:
        comp = queue.pop(0)
        linked = [by_ref[r] for r in graph.get(comp.ref or "", []) if r in by_ref]
        for part in comp.nested + linked:
            if id(part) in seen or part.is_model:
                continue
            seen.add(id(part))
            yield part
            queue.append(part)


def _findings(
    model: Component, files: dict[int, list[Component]], models: list[Component],
    vulns: list[tuple[dict[str, Any], list[str | None]]], by_ref: dict[str, Component],
    graph: dict[str, list[str]],
) -> Iterator[Finding]:
    """The findings that bear on `model`. A finding on something no model holds, on another
    BOM (target None), or naming nothing at all, bears on every model: unattributed must not
    mean unseen."""
    mine = {id(f): f for f in files[id(model)]}
    parts = {id(c) for c in _reach(model, by_ref, graph)}
    anywhere = {id(f) for fs in files.values() for f in fs} | {
        id(c) for m in models for c in _reach(m, by_ref, graph)} | {id(m) for m in models}
    for vuln, targets in vulns:
        # None: another BOM, a service, an ancestor, a model card ...
        hits = [by_ref.get(t) if t is not None else None for t in targets]
        paths = list(dict.fromkeys(_name(c) for c in hits if c is not None and id(c) in mine))
        if paths:
            yield from (Finding(vuln, p) for p in paths)
        elif not hits or any(c is None or c is model or id(c) in parts or id(c) not in anywhere
                             for c in hits):
            yield Finding(vuln, "")


def _name(comp: Component) -> str:
    name = comp.data.get("name")
    return name.strip() if isinstance(name, str) and name.strip() else "unknown"


class _Check:
    """Typed access to the document: every wrong shape is one UsageError naming its path."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.own: tuple[str, int] | None = None  # (serial uuid, version) of this document

    def fail(self, path: str, message: str) -> Any:
        raise UsageError(f"{self.where}: {path}: {message}")

    def object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def optional_object(self, parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        value = parent.get(key)
        return {} if value is None else self.object(value, _at(path, key))

    def optional_list(self, parent: dict[str, Any], key: str, path: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(_at(path, key), f"expected a list, got {_kind(value)}")
        return value

    def string(self, parent: dict[str, Any], key: str, path: str, required: bool = False) -> None:
        value = parent.get(key)
        if value is None and not required:
            return
        if value is None:
            self.fail(_at(path, key), "missing")
        if not isinstance(value, str):
            self.fail(_at(path, key), f"expected a string, got {_kind(value)}")

    def strings(self, parent: dict[str, Any], key: str, path: str) -> list[str]:
        items = self.optional_list(parent, key, path)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.fail(f"{_at(path, key)}[{i}]", f"expected a string, got {_kind(item)}")
        return items

    def bom_refs(self, doc: dict[str, Any]) -> set[str]:
        """Every bom-ref in the document (components, services, vulnerabilities, model cards
        ...): each a string, none twice."""
        seen: set[str] = set()
        for path, value in _bom_refs(doc, "$"):
            if not isinstance(value, str):
                self.fail(path, f"expected a string, got {_kind(value)}")
            if value in seen:
                self.fail(path, f"duplicate {value!r}")
            seen.add(value)
        return seen

    def identity(self, doc: dict[str, Any]) -> None:
        """serialNumber and version, which a BOM-Link into this document must match."""
        self.string(doc, "serialNumber", "$")
        version = doc.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            self.fail("$.version", f"expected an integer, got {_kind(version)}")
        serial = _SERIAL.match(doc.get("serialNumber") or "")
        self.own = (serial[1], version) if serial else None

    def tools(self, metadata: dict[str, Any]) -> None:
        tools = metadata.get("tools")
        if isinstance(tools, dict):  # 1.5+: {components: [...], services: [...]}
            for key in ("components", "services"):
                for i, item in enumerate(self.optional_list(tools, key, "$.metadata.tools")):
                    self.object(item, f"$.metadata.tools.{key}[{i}]")
                    self.string(item, "name", f"$.metadata.tools.{key}[{i}]")
        else:
            for i, item in enumerate(self.optional_list(metadata, "tools", "$.metadata")):
                self.object(item, f"$.metadata.tools[{i}]")
                self.string(item, "name", f"$.metadata.tools[{i}]")

    def properties(self, parent: dict[str, Any], path: str) -> None:
        for i, item in enumerate(self.optional_list(parent, "properties", path)):
            at = f"{_at(path, 'properties')}[{i}]"
            self.object(item, at)
            self.string(item, "name", at, required=True)
            self.string(item, "value", at)

    def component(
        self, value: Any, path: str, parent_model: Component | None, out: list[Component]
    ) -> Component:
        """Check a component and its nested ones; add every one of them to `out`."""
        data = self.object(value, path)
        self.string(data, "type", path, required=True)
        self.string(data, "name", path, required=True)
        for key in ("version", "publisher", "purl", "group"):
            self.string(data, key, path)
        self.optional_object(data, "supplier", path)
        self.string(data.get("supplier") or {}, "name", _at(path, "supplier"))
        self.properties(data, path)
        card = self.optional_object(data, "modelCard", path)
        self.properties(card, _at(path, "modelCard"))
        for i, item in enumerate(self.optional_list(data, "hashes", path)):
            at = f"{_at(path, 'hashes')}[{i}]"
            self.object(item, at)
            self.string(item, "alg", at, required=True)
            self.string(item, "content", at, required=True)
        for i, item in enumerate(self.optional_list(data, "licenses", path)):
            at = f"{_at(path, 'licenses')}[{i}]"
            self.object(item, at)
            self.string(item, "expression", at)
            lic = self.optional_object(item, "license", at)
            for key in ("id", "name"):
                self.string(lic, key, _at(at, "license"))
        pedigree = self.optional_object(data, "pedigree", path)
        for i, item in enumerate(self.optional_list(pedigree, "ancestors", _at(path, "pedigree"))):
            self._ancestor(item, f"{_at(path, 'pedigree.ancestors')}[{i}]")
        comp = Component(data, path, data.get("bom-ref"), data["type"], parent_model)
        out.append(comp)
        inner_model = comp if comp.is_model else parent_model
        for i, item in enumerate(self.optional_list(data, "components", path)):
            child = self.component(item, f"{_at(path, 'components')}[{i}]", inner_model, out)
            if not child.is_model:
                comp.nested.append(child)
        return comp

    def _ancestor(self, value: Any, path: str) -> None:
        data = self.object(value, path)
        self.string(data, "name", path, required=True)
        for key in ("version", "publisher", "purl"):
            self.string(data, key, path)
        self.optional_object(data, "supplier", path)
        self.string(data.get("supplier") or {}, "name", _at(path, "supplier"))
        self.properties(data, path)
        pedigree = self.optional_object(data, "pedigree", path)
        for i, item in enumerate(self.optional_list(pedigree, "ancestors", _at(path, "pedigree"))):
            self._ancestor(item, f"{_at(path, 'pedigree.ancestors')}[{i}]")

    def dependencies(self, doc: dict[str, Any], refs: set[str]) -> dict[str, list[str]]:
        graph: dict[str, list[str]] = {}
        for i, item in enumerate(self.optional_list(doc, "dependencies", "$")):
            at = f"$.dependencies[{i}]"
            self.object(item, at)
            self.string(item, "ref", at, required=True)
            ref = self.target(item["ref"], f"{at}.ref", refs)
            targets = [self.target(t, f"{at}.dependsOn[{j}]", refs)
                       for j, t in enumerate(self.strings(item, "dependsOn", at))]
            if ref is not None:
                graph.setdefault(ref, []).extend(t for t in targets if t is not None)
        return graph

    def vulnerabilities(
        self, doc: dict[str, Any], refs: set[str]
    ) -> list[tuple[dict[str, Any], list[str | None]]]:
        out = []
        for i, item in enumerate(self.optional_list(doc, "vulnerabilities", "$")):
            at = f"$.vulnerabilities[{i}]"
            self.object(item, at)
            for key in ("id", "description", "detail", "recommendation"):
                self.string(item, key, at)
            self.string(self.optional_object(item, "source", at), "name", f"{at}.source")
            for j, rating in enumerate(self.optional_list(item, "ratings", at)):
                self.object(rating, f"{at}.ratings[{j}]")
                self.string(rating, "severity", f"{at}.ratings[{j}]")
            self.properties(item, at)
            targets: list[str | None] = []
            for j, affect in enumerate(self.optional_list(item, "affects", at)):
                where = f"{at}.affects[{j}]"
                self.object(affect, where)
                self.string(affect, "ref", where, required=True)
                targets.append(self.target(affect["ref"], f"{where}.ref", refs))
            out.append((item, targets))
        return out

    def target(self, ref: str, path: str, refs: set[str]) -> str | None:
        """The bom-ref `ref` names in this document; None for another BOM (or this whole
        one). A reference to nothing is refused."""
        if not ref.startswith(BOM_LINK):
            if ref not in refs:
                self.fail(path, f"{ref!r} names no component (no such bom-ref)")
            return ref
        link = _LINK.match(ref)
        if link is None:
            self.fail(path, f"{ref!r} is not a BOM-Link (urn:cdx:<serial>/<version>#<bom-ref>)")
        if self.own != (link[1], int(link[2])) or link[3] is None:
            return None
        local = unquote(link[3])
        if local not in refs:
            self.fail(path, f"{ref!r} links into this BOM but names no component "
                      "(no such bom-ref)")
        return local


def _bom_refs(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "bom-ref":
                yield _at(path, key), item
            else:
                yield from _bom_refs(item, _at(path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _bom_refs(item, f"{path}[{i}]")


def _at(path: str, key: str) -> str:
    return f"{path}.{key}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _kind(value)
