"""CycloneDX XML of a finished JSON document: the library's XML plus the ML parts it lacks.

The library writes everything it models (in the XSD's element order); the
`modelCard` and component `data` that `cyclonedx.py` added to the JSON are
converted here and inserted where the XSD sequence puts them. The result is
validated against the XSD (offline, bundled with the library).
"""

from __future__ import annotations

import copy
from typing import Any

from auditor.sbom.schemas import SbomError, schema_version, xml_error

# JSON list key -> XML element name of each item (a wrapper element named after the key).
LIST_ITEMS = {
    "users": "user",
    "useCases": "useCase",
    "technicalLimitations": "technicalLimitation",
    "performanceTradeoffs": "performanceTradeoff",
    "ethicalConsiderations": "ethicalConsideration",
}
# Component children that come after `modelCard` / `data` in the XSD sequence.
AFTER_MODEL_CARD = ("data", "cryptoProperties", "tags", "signature")
AFTER_DATA = ("cryptoProperties", "tags", "signature")


def to_xml(doc: dict[str, Any]) -> str:
    from cyclonedx.model.bom import Bom
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat
    from lxml import etree

    plain = copy.deepcopy(doc)
    model_card = plain["metadata"]["component"].pop("modelCard", None)
    data = {c["bom-ref"]: c.pop("data") for c in plain.get("components", []) if "data" in c}
    bom = Bom.from_json(plain)  # type: ignore[attr-defined]
    schema = schema_version(doc["specVersion"])
    text = make_outputter(bom, OutputFormat.XML, schema).output_as_string()
    root = etree.fromstring(text.encode("utf-8"))
    ns = etree.QName(root).namespace

    def element(tag: str, value: Any) -> Any:
        el = etree.Element(f"{{{ns}}}{tag}")
        if not isinstance(value, dict):
            el.text = str(value)
            return el
        for key, item in value.items():
            if key == "bom-ref":
                el.set("bom-ref", item)
            elif key == "properties":
                props = etree.SubElement(el, f"{{{ns}}}properties")
                for prop in item:
                    etree.SubElement(props, f"{{{ns}}}property", name=prop["name"]).text = \
                        prop["value"]
            elif key == "datasets":  # a choice of <ref> / <dataset> items, no item wrapper
                wrapper = etree.SubElement(el, f"{{{ns}}}datasets")
                for choice in item:
                    wrapper.extend(element(k, v) for k, v in choice.items())
            elif isinstance(item, list):
                wrapper = etree.SubElement(el, f"{{{ns}}}{key}")
                wrapper.extend(element(LIST_ITEMS[key], v) for v in item)
            else:
                el.append(element(key, item))
        return el

    def insert(parent: Any, child: Any, before: tuple[str, ...]) -> None:
        for i, existing in enumerate(parent):
            if etree.QName(existing).localname in before:
                parent.insert(i, child)
                return
        parent.append(child)

    if model_card is not None:
        component = root.find(f"{{{ns}}}metadata/{{{ns}}}component")
        insert(component, element("modelCard", model_card), AFTER_MODEL_CARD)
    for component in root.iterfind(f"{{{ns}}}components/{{{ns}}}component"):
        for item in data.get(component.get("bom-ref"), []):
            insert(component, element("data", item), AFTER_DATA)
    etree.indent(root, space="  ")
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8") + "\n"
    error = xml_error(out, doc["specVersion"])
    if error is not None:
        raise SbomError(f"generated XML SBOM is not valid CycloneDX {doc['specVersion']}: {error}")
    return out
