"""Hand-built CycloneDX documents, foreign and malformed, for the SBOM reader's table test.

Foreign layouts follow what other generators write (by shape, not copied):
lib4sbom and Syft put files flat in `components` and link them to the model
through `dependencies`; cdxgen puts the model in `metadata.component`;
AIsbom nests files under the model component. Each builder returns a fresh
dict, so a row may mutate it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent.parent / "sboms"
SHA_A = "a" * 64
SHA_B = "b" * 64


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / name).read_text())


def model(ref: str = "model-1", name: str = "acme/model", **extra: Any) -> dict[str, Any]:
    return {"type": "machine-learning-model", "bom-ref": ref, "name": name, **extra}


def file(ref: str, name: str, digest: str = SHA_A) -> dict[str, Any]:
    return {"type": "file", "bom-ref": ref, "name": name,
            "hashes": [{"alg": "SHA-256", "content": digest}]}


def vuln(ref: str | None, severity: str = "high", rule: str = "CVE-X") -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule, "ratings": [{"severity": severity}],
                           "description": "a finding"}
    if ref is not None:
        out["affects"] = [{"ref": ref}]
    return out


def bom(spec: str = "1.6", **parts: Any) -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": spec, "version": 1, **parts}


def lib4sbom() -> dict[str, Any]:
    """Model and files side by side in `components`, linked only by `dependencies`."""
    return bom(
        "1.6",
        metadata={"tools": {"components": [{"type": "application", "name": "lib4sbom"}]},
                  "component": {"type": "application", "bom-ref": "app", "name": "bundle"}},
        components=[model(), file("f-1", "model.bin", SHA_A), file("f-2", "config.json", SHA_B)],
        dependencies=[{"ref": "app", "dependsOn": ["model-1"]},
                      {"ref": "model-1", "dependsOn": ["f-1", "f-2"]}],
        vulnerabilities=[vuln("f-1", "critical", "PICKLE-1")],
    )


def cdxgen() -> dict[str, Any]:
    """The model in `metadata.component`, files flat and linked through `dependencies`."""
    return bom(
        "1.5",
        metadata={"tools": {"components": [{"type": "application", "name": "cdxgen"}]},
                  "component": model("pkg:huggingface/acme/model")},
        components=[file("f-1", "weights.safetensors")],
        dependencies=[{"ref": "pkg:huggingface/acme/model", "dependsOn": ["f-1"]}],
    )


def syft() -> dict[str, Any]:
    """Spec 1.4 (tools as a list), model in `components`, files linked by dependencies."""
    return bom(
        "1.4",
        metadata={"tools": [{"vendor": "anchore", "name": "syft"}]},
        components=[model("m"), file("file-1", "model.onnx")],
        dependencies=[{"ref": "m", "dependsOn": ["file-1"]}],
        vulnerabilities=[vuln("file-1", "medium")],
    )


def aisbom() -> dict[str, Any]:
    """Files nested under the model component; a finding on one of them."""
    return bom("1.6", components=[
        model("m", components=[file("f-1", "pytorch_model.bin")]),
    ], vulnerabilities=[vuln("f-1", "high", "AISBOM-PICKLE")])


def nested_in_metadata() -> dict[str, Any]:
    """Valid CycloneDX: the model's files nested inside `metadata.component`."""
    doc = golden("with-findings.cdx.json")
    root = doc["metadata"]["component"]
    root["components"] = doc.pop("components")
    return doc


def two_models() -> dict[str, Any]:
    return bom("1.6", components=[
        model("m-1", "org/one", components=[file("f-1", "a.bin")]),
        model("m-2", "org/two", components=[file("f-2", "b.bin", SHA_B)]),
    ], vulnerabilities=[vuln("f-2", "critical")])


def spec_1_2() -> dict[str, Any]:
    return bom("1.2", metadata={"tools": [{"name": "old-tool"}]},
               components=[model("m", components=[file("f", "w.bin")])])


def spec_1_7() -> dict[str, Any]:
    return bom("1.7", components=[model("m", components=[file("f", "w.bin")])])


def unaffected_finding() -> dict[str, Any]:
    return bom("1.6", components=[model("m")], vulnerabilities=[vuln(None, "high")])


def foreign_xml() -> bytes:
    return b"""<?xml version="1.0" encoding="UTF-8"?>
<bom xmlns="http://cyclonedx.org/schema/bom/1.5" version="1">
  <metadata><tools><components><component type="application"><name>xml-tool</name>
  </component></components></tools></metadata>
  <components>
    <component type="machine-learning-model" bom-ref="m">
      <name>acme/xml-model</name>
      <components>
        <component type="file" bom-ref="f-1">
          <name>model.pkl</name>
          <hashes><hash alg="SHA-256">""" + SHA_A.encode() + b"""</hash></hashes>
          <properties><property name="auditor:scan:coverage">scanned</property></properties>
        </component>
      </components>
    </component>
  </components>
  <dependencies><dependency ref="m"><dependency ref="f-1"/></dependency></dependencies>
  <vulnerabilities><vulnerability bom-ref="v-1"><id>X-1</id>
    <ratings><rating><severity>critical</severity></rating></ratings>
    <affects><target><ref>f-1</ref></target></affects>
  </vulnerability></vulnerabilities>
</bom>
"""


def doctype_xml() -> bytes:
    return (b'<?xml version="1.0"?>\n<!DOCTYPE bom [<!ENTITY x "boom">]>\n'
            b'<bom xmlns="http://cyclonedx.org/schema/bom/1.6"><components/></bom>\n')


def deep_json(levels: int) -> str:
    """JSON text of components nested `levels` deep: past what a recursive reader follows."""
    head = '{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": '
    item = '[{"type": "library", "name": "l", "components": '
    return head + item * levels + "[]" + "}]" * levels + "}"


def deep_xml(levels: int) -> bytes:
    return (b'<bom xmlns="http://cyclonedx.org/schema/bom/1.6">' + b"<a>" * levels
            + b"</a>" * levels + b"</bom>")


def mutate(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of `doc` with the item at `path` replaced (None deletes it; one past the end of
    a list appends)."""
    out = copy.deepcopy(doc)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    elif isinstance(parent, list) and path[-1] == len(parent):
        parent.append(value)
    else:
        parent[path[-1]] = value
    return out
