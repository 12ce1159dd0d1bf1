"""CycloneDX XML → the JSON shape of the same document, so one reader serves both encodings.

Only what the JSON form spells differently is translated: attributes
(`bom-ref`, `type`, a property's `name`, a hash's `alg`) become keys, list
wrappers (`<components><component>`) become lists, `<dependency ref>` nesting
becomes `dependsOn`, `<target><ref>` stays `{ref}`; the spec version comes
from the namespace. Everything else maps element to key, text to string.

Nothing is dropped and nothing overwritten. A list wrapper given twice
(`<vulnerabilities>` … `<vulnerabilities>`) keeps the items of both, as the
schema's repeatable sequences mean; an element the schema lets repeat
(REPEATABLE) becomes a list of its values; any other element given twice
under one parent is refused with its path, since keeping either one would
hide the other. Elements of other namespaces are the schema's extension
points (`##other`), not CycloneDX data, and are not part of the JSON shape.

The XML comes from outside: it is parsed by expat with handlers that refuse a
document type declaration (where entity expansion and external entities
live) as soon as the parser meets it, whatever the encoding, and nesting
past MAX_DEPTH is refused while parsing.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from auditor.errors import UsageError

MAX_DEPTH = 100  # nesting levels; the deepest real SBOM we ship nests 11
NAMESPACE = re.compile(r"\{http://cyclonedx\.org/schema/bom/([^}]*)\}bom\Z")
# List wrapper element -> item element (`licenses` and `tools` are special-cased).
LISTS = {
    "components": "component", "services": "service", "properties": "property",
    "hashes": "hash", "externalReferences": "reference", "ancestors": "component",
    "descendants": "component", "variants": "component", "vulnerabilities": "vulnerability",
    "ratings": "rating", "affects": "target", "cwes": "cwe", "tags": "tag",
    "dependencies": "dependency", "authors": "author", "advisories": "advisory",
    "versions": "version", "references": "reference", "datasets": "dataset",
}
# Elements the CycloneDX 1.2-1.7 XSDs allow more than once under one parent (an unbounded
# element, sequence or choice); tests/test_sbom_reader.py derives the set from the bundled
# XSDs and compares.
REPEATABLE = frozenset({
    'accessMode', 'advisory', 'aggregate', 'algorithm', 'alias', 'aliases', 'altId',
    'annotation', 'assemblies', 'assembly', 'assessor', 'attachment', 'attestation', 'auth',
    'author', 'bom-ref', 'certificateExtension', 'certificateState', 'certificationLevel',
    'cipherSuite', 'citation', 'claim', 'classification', 'command', 'commit', 'component',
    'composition', 'condition', 'contact', 'counterClaim', 'counterEvidence',
    'cryptoFunction', 'cryptoRef', 'custodian', 'cwe', 'data', 'dataflow', 'dataset',
    'dependencies', 'dependency', 'description', 'details', 'email', 'encr', 'endpoint',
    'energyConsumption', 'energyConsumptions', 'energyProviders', 'environmentVar',
    'ethicalConsideration', 'evidence', 'expression', 'expression-detailed',
    'fairnessAssessment', 'featuredImage', 'formula', 'frame', 'graphic', 'group', 'hash',
    'identifier', 'identity', 'individual', 'input', 'integ', 'issue', 'ke', 'level',
    'license', 'licenseType', 'lifecycle', 'locale', 'managedDataType', 'manufacture',
    'map', 'method', 'mitigationStrategy', 'mountPath', 'name', 'note', 'notes',
    'occurrence', 'omniborId', 'openCre', 'organization', 'output', 'owner', 'parameter',
    'patch', 'patent', 'patentAssertion', 'patentAssignee', 'patentFamily',
    'performanceMetric', 'performanceTradeoff', 'phone', 'pointer', 'prf', 'properties',
    'property', 'provides', 'rating', 'ref', 'reference', 'relatedCryptographicAsset',
    'requirement', 'resolves', 'resourceReference', 'resourceReferences', 'response',
    'sensitiveData', 'service', 'signatory', 'signatureScheme', 'socialImage', 'standard',
    'step', 'steward', 'subject', 'supplier', 'swhid', 'tag', 'tags', 'target', 'task',
    'taskType', 'technicalLimitation', 'text', 'timestamp', 'title', 'tool', 'type', 'uid',
    'url', 'useCase', 'user', 'value', 'version', 'volume', 'volumeRequest',
    'vulnerabilities', 'vulnerability', 'workflow', 'workspace'
})
_XML_DECL = re.compile(r"\A\ufeff?<\?xml[^>]*\?>")


class _Refused(Exception):
    """Raised from inside the expat handlers to stop the parse."""


def looks_like_xml(data: bytes) -> bool:
    """XML in UTF-8 (with or without a byte order mark) or UTF-16."""
    head = data[:4]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
        return True
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def to_json_shape(data: bytes, where: str) -> dict[str, Any]:
    """The document as the dict its JSON encoding would give; UsageError when unreadable."""
    root, _ = _parse(data, where)
    match = NAMESPACE.match(root.tag)
    if match is None:
        raise UsageError(f"{where}: not a CycloneDX XML document (root {_local(root.tag)!r} "
                         "outside the http://cyclonedx.org/schema/bom/ namespace)")
    doc: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": match[1]}
    doc.update(_Convert(where, _namespace(root.tag)).element(root, "$"))
    if isinstance(doc.get("version"), str) and doc["version"].isdigit():
        doc["version"] = int(doc["version"])  # an xs:integer attribute; JSON has a number
    return doc


def xml_text(data: bytes, where: str) -> str:
    """The document as text without its XML declaration (for schema validation, which reads
    UTF-8); UsageError when unreadable."""
    _, encoding = _parse(data, where)
    for bom, codec in ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
                       (b"\xef\xbb\xbf", "utf-8-sig")):
        if data.startswith(bom):
            encoding = codec
    try:
        text = data.decode(codecs.lookup(encoding or "utf-8").name)
    except (LookupError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot decode the XML ({exc})") from None
    return _XML_DECL.sub("", text, count=1)


def _parse(data: bytes, where: str) -> tuple[ET.Element, str | None]:
    """The element tree and the declared encoding; refuses DTDs and deep nesting."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    state = {"depth": 0, "encoding": None}

    def refuse(*_: Any) -> None:
        raise _Refused("XML with a DOCTYPE or ENTITY declaration is refused "
                       "(CycloneDX needs neither)")

    def declaration(_version: str, encoding: str | None, _standalone: int) -> None:
        state["encoding"] = encoding

    def start(name: str, attrs: dict[str, str]) -> None:
        state["depth"] += 1
        if state["depth"] > MAX_DEPTH:
            raise _Refused(f"nested too deeply to be an SBOM (more than {MAX_DEPTH} levels)")
        builder.start(_clark(name), {_clark(k): v for k, v in attrs.items()})

    def end(name: str) -> None:
        state["depth"] -= 1
        builder.end(_clark(name))

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.XmlDeclHandler = declaration
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise UsageError(f"{where}: {exc}") from None
    except (expat.ExpatError, ValueError, LookupError) as exc:
        raise UsageError(f"{where}: not well-formed XML: {exc}") from None
    return builder.close(), state["encoding"]  # type: ignore[return-value]


class _Convert:
    """Element tree → JSON shape, refusing what would otherwise be lost (see module doc)."""

    def __init__(self, where: str, namespace: str) -> None:
        self.where = where
        self.namespace = namespace

    def children(self, el: ET.Element) -> list[ET.Element]:
        return [c for c in el if _namespace(c.tag) == self.namespace]

    def element(self, el: ET.Element, path: str) -> dict[str, Any]:
        out: dict[str, Any] = dict(el.attrib)
        many: set[str] = set()
        for child in self.children(el):
            key = _local(child.tag)
            at = f"{path}.{key}"
            value = self.value(key, child, at)
            if key not in out:
                out[key] = value
            elif key in many:
                out[key].append(value)
            elif isinstance(out[key], (list, dict)) and _wrapper(key):
                out[key] = self.merge(out[key], value, at)
            elif key in REPEATABLE and key not in el.attrib:
                out[key] = [out[key], value]
                many.add(key)
            else:
                raise UsageError(f"{self.where}: {at}: repeated (CycloneDX allows one here; "
                                 "reading either would hide the other)")
        return out

    def merge(self, old: Any, new: Any, path: str) -> Any:
        """Two occurrences of one list wrapper: the items of both."""
        if isinstance(old, list) and isinstance(new, list):
            return old + new
        if isinstance(old, dict) and isinstance(new, dict):  # 1.5+ tools: {components, ...}
            return {k: self.merge(old.get(k, []), new.get(k, []), path)
                    for k in {**old, **new}}
        raise UsageError(f"{self.where}: {path}: repeated in two different forms")

    def value(self, key: str, el: ET.Element, path: str) -> Any:
        items = self.children(el)
        if key == "licenses":
            return [{"expression": _text(c)} if _local(c.tag) == "expression"
                    else {"license": self.element(c, f"{path}[{i}].license")}
                    for i, c in enumerate(items)]
        if key == "tools":
            if items and all(_local(c.tag) == "tool" for c in items):  # 1.4 and older
                return [self.element(c, f"{path}[{i}]") for i, c in enumerate(items)]
            out: dict[str, list[Any]] = {}
            for c in items:
                name = _local(c.tag)
                out[name] = out.get(name, []) + [
                    self.element(i, f"{path}.{name}[{n}]")
                    for n, i in enumerate(self.children(c))]
            return out
        if key == "dependencies":
            return [self.dependency(c) for c in items]
        if key in LISTS:
            return [self.item(key, c, f"{path}[{i}]") for i, c in enumerate(items)]
        if not items and not el.attrib:
            return _text(el)
        return self.element(el, path)

    def item(self, key: str, el: ET.Element, path: str) -> Any:
        if key == "properties":
            return {**el.attrib, "value": _text(el)}
        if key == "hashes":
            return {**el.attrib, "content": _text(el)}
        if key == "cwes":
            text = _text(el)
            return int(text) if text.isdigit() else text
        if key == "tags" or (not self.children(el) and not el.attrib):
            return _text(el)
        return self.element(el, path)

    def dependency(self, el: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = dict(el.attrib)
        inner = [c.get("ref") for c in self.children(el) if _local(c.tag) == "dependency"]
        if inner:
            out["dependsOn"] = inner
        return out


def _wrapper(key: str) -> bool:
    return key in LISTS or key in ("licenses", "tools")


def _clark(name: str) -> str:
    """expat's `uri}local` as ElementTree's `{uri}local`."""
    return "{" + name if "}" in name else name


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()
