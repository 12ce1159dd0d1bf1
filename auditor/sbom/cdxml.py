"""CycloneDX XML → the JSON shape of the same document, so one reader serves both encodings.

Only what the JSON form spells differently is translated: attributes
(`bom-ref`, `type`, a property's `name`, a hash's `alg`) become keys, list
wrappers (`<components><component>`) become lists, `<dependency ref>` nesting
becomes `dependsOn`, `<target><ref>` stays `{ref}`; the spec version comes
from the namespace. Everything else maps element to key, text to string.

The XML comes from outside: a document type declaration (where entity
expansion and external entities live) is refused outright, before parsing.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from auditor.errors import UsageError

NAMESPACE = re.compile(r"\{http://cyclonedx\.org/schema/bom/([^}]*)\}bom\Z")
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# List wrapper element -> item element (`licenses` and `tools` are special-cased).
LISTS = {
    "components": "component", "services": "service", "properties": "property",
    "hashes": "hash", "externalReferences": "reference", "ancestors": "component",
    "descendants": "component", "variants": "component", "vulnerabilities": "vulnerability",
    "ratings": "rating", "affects": "target", "cwes": "cwe", "tags": "tag",
    "dependencies": "dependency", "authors": "author", "advisories": "advisory",
    "versions": "version", "references": "reference", "datasets": "dataset",
}


def looks_like_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def to_json_shape(data: bytes, where: str) -> dict[str, Any]:
    """The document as the dict its JSON encoding would give; UsageError when unreadable."""
    if _DTD.search(data):
        raise UsageError(f"{where}: XML with a DOCTYPE or ENTITY declaration is refused "
                         "(CycloneDX needs neither)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise UsageError(f"{where}: not well-formed XML: {exc}") from None
    match = NAMESPACE.match(root.tag)
    if match is None:
        raise UsageError(f"{where}: not a CycloneDX XML document (root {_local(root.tag)!r} "
                         "outside the http://cyclonedx.org/schema/bom/ namespace)")
    doc: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": match[1]}
    doc.update(_element(root))
    return doc


def _element(el: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = dict(el.attrib)
    for child in el:
        key = _local(child.tag)
        out[key] = _value(key, child)
    return out


def _value(key: str, el: ET.Element) -> Any:
    if key == "licenses":
        return [{"expression": _text(c)} if _local(c.tag) == "expression"
                else {"license": _element(c)} for c in el]
    if key == "tools":
        items = list(el)
        if items and all(_local(c.tag) == "tool" for c in items):  # 1.4 and older
            return [_element(c) for c in items]
        return {_local(c.tag): [_element(i) for i in c] for c in items}
    if key == "dependencies":
        return [_dependency(c) for c in el]
    if key in LISTS:
        return [_item(key, c) for c in el]
    if len(el) == 0 and not el.attrib:
        return _text(el)
    return _element(el)


def _item(key: str, el: ET.Element) -> Any:
    if key == "properties":
        return {**el.attrib, "value": _text(el)}
    if key == "hashes":
        return {**el.attrib, "content": _text(el)}
    if key == "cwes":
        text = _text(el)
        return int(text) if text.isdigit() else text
    if key == "tags" or (len(el) == 0 and not el.attrib):
        return _text(el)
    return _element(el)


def _dependency(el: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = dict(el.attrib)
    inner = [c.get("ref") for c in el if _local(c.tag) == "dependency"]
    if inner:
        out["dependsOn"] = inner
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()
