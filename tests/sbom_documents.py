"""Hand-built CycloneDX documents, foreign and malformed, for the SBOM reader's table test.

Foreign layouts follow what other generators write (by shape, read from their
encoders, not copied): lib4sbom puts an `application` bundle in
`metadata.component` and model and files flat in `components`, linked through
`dependencies`; cdxgen puts the model in `metadata.component`; Syft puts the
scanned directory in `metadata.component` as a `file`, packages and files
flat in `components` and links packages only; AIsbom writes one
`machine-learning-model` component per model file, its verdict in the
`aisbom:risk` property and no `vulnerabilities`. Each builder returns a fresh
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
        serialNumber="urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        metadata={"tools": {"components": [{"type": "application", "name": "lib4sbom",
                                            "version": "0.8.1"}]},
                  "component": {"type": "application", "bom-ref": "CDXRef-DOCUMENT",
                                "name": "bundle"}},
        components=[model(), file("f-1", "model.bin", SHA_A), file("f-2", "config.json", SHA_B)],
        dependencies=[{"ref": "CDXRef-DOCUMENT", "dependsOn": ["model-1"]},
                      {"ref": "model-1", "dependsOn": ["f-1", "f-2"]}],
        vulnerabilities=[vuln("f-1", "critical", "PICKLE-1")],
    )


def cdxgen() -> dict[str, Any]:
    """The model in `metadata.component`, files flat and linked through `dependencies`."""
    return bom(
        "1.5",
        metadata={"tools": {"components": [{"group": "@cyclonedx", "name": "cdxgen",
                                            "version": "10.9.0", "type": "application"}]},
                  "component": model("pkg:huggingface/acme/model")},
        components=[file("f-1", "weights.safetensors")],
        dependencies=[{"ref": "pkg:huggingface/acme/model", "dependsOn": ["f-1"]}],
    )


def syft(*packages: str) -> dict[str, Any]:
    """`syft dir:./models -o cyclonedx-json`: the directory as a `file` in metadata, each
    model package and each file flat in `components`, dependencies between packages only
    (none here); a scanner that adds findings names the file."""
    names = packages or ("qwen",)
    return bom(
        "1.6",
        serialNumber="urn:uuid:0e671687-395b-41f5-a30f-a58921a69b70",
        metadata={"timestamp": "2025-01-01T00:00:00Z",
                  "tools": {"components": [{"type": "application", "author": "anchore",
                                            "name": "syft", "version": "1.36.0"}]},
                  "component": {"bom-ref": "af63bd4c8601b7f1", "type": "file",
                                "name": "./models"}},
        components=[
            *(model(f"pkg:generic/{n}@unknown?package-id={i}", n, version="unknown",
                    properties=[{"name": "syft:package:type", "value": "model"}])
              for i, n in enumerate(names)),
            {**file("4c5e8a2f0b1d3e6a", "/models/qwen.gguf", SHA_A),
             "hashes": [{"alg": "SHA-1", "content": "1" * 40},
                        {"alg": "SHA-256", "content": SHA_A}]},
            file("9b0f7c6d5e4a3b21", "/models/evil.pkl", SHA_B),
        ],
        vulnerabilities=[vuln("9b0f7c6d5e4a3b21", "high", "GRYPE-1")],
    )


def syft_1_4() -> dict[str, Any]:
    """Older Syft: spec 1.4 (tools as a list), files linked to the model by dependencies."""
    return bom(
        "1.4",
        metadata={"tools": [{"vendor": "anchore", "name": "syft"}]},
        components=[model("m"), file("file-1", "model.onnx")],
        dependencies=[{"ref": "m", "dependsOn": ["file-1"]}],
        vulnerabilities=[vuln("file-1", "medium")],
    )


def aisbom() -> dict[str, Any]:
    """`aisbom scan`: a model component per model file (with its hash), the verdict in
    `aisbom:risk` and the description, a library component per requirement, no findings."""
    def artifact(i: int, name: str, risk: str, framework: str, fmt: str) -> dict[str, Any]:
        return {"type": "machine-learning-model", "bom-ref": f"artifact-{i}", "name": name,
                "description": f"Risk: {risk} | Framework: {framework} | Legal: UNKNOWN | "
                               "License: None",
                "hashes": [{"alg": "SHA-256", "content": SHA_A}],
                "properties": [{"name": "aisbom:risk", "value": risk},
                               {"name": "aisbom:legal", "value": "UNKNOWN"},
                               {"name": "aisbom:format", "value": fmt}]}
    return bom(
        "1.6",
        serialNumber="urn:uuid:1e671687-395b-41f5-a30f-a58921a69b70",
        metadata={"tools": {"components": [{"type": "application", "name": "aisbom-cli",
                                            "bom-ref": "aisbom-cli", "version": "0.7.0"}]}},
        components=[
            artifact(0, "bert_finetune.pt", "CRITICAL (RCE Detected: posix.system)", "PyTorch",
                     "pickle"),
            artifact(1, "model.safetensors", "LOW", "SafeTensors", "safetensors"),
            {"type": "library", "name": "torch", "version": "2.1.0", "bom-ref": "lib-torch"},
        ])


def nested_files() -> dict[str, Any]:
    """Files nested under the model component; a finding on one of them."""
    return bom("1.6", components=[
        model("m", components=[file("f-1", "pytorch_model.bin")]),
    ], vulnerabilities=[vuln("f-1", "high", "NESTED-PICKLE")])


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


def rated(*severities: str | None) -> dict[str, Any]:
    """lib4sbom with its one finding rated by several raters (None: a rating without one)."""
    doc = lib4sbom()
    doc["vulnerabilities"][0]["ratings"] = [
        {"method": "other"} if s is None else {"severity": s} for s in severities]
    return doc


def self_link(ref: str, serial: str = "3e671687-395b-41f5-a30f-a58921a69b79",
              version: int = 1) -> dict[str, Any]:
    """lib4sbom with its finding's `affects` a BOM-Link (to itself by default)."""
    doc = lib4sbom()
    doc["vulnerabilities"][0]["affects"] = [{"ref": f"urn:cdx:{serial}/{version}#{ref}"}]
    return doc


def duplicate_key(where: str) -> str:
    """lib4sbom's JSON text with a key given twice: `vulnerabilities` (a critical finding, then
    none), or the name of its model component."""
    text = json.dumps(lib4sbom())
    if where == "vulnerabilities":
        return text[:-1] + ', "vulnerabilities": []}'
    return text.replace('"name": "acme/model"', '"name": "acme/model", "name": "other"', 1)


def xml_with(vulnerabilities: str, extra: str = "") -> bytes:
    """foreign_xml with its findings replaced by `vulnerabilities` (XML text) and `extra`
    appended inside <bom>."""
    text = foreign_xml().decode()
    start = text.index("  <vulnerabilities>")
    return (text[:start] + vulnerabilities + extra + "</bom>\n").encode()


def vuln_xml(severities: tuple[str, ...], ref: str = "v-1") -> str:
    ratings = "".join(f"<rating><severity>{s}</severity></rating>" for s in severities)
    return (f'<vulnerabilities><vulnerability bom-ref="{ref}"><id>{ref}</id>'
            f"<ratings>{ratings}</ratings><affects><target><ref>f-1</ref></target></affects>"
            "</vulnerability></vulnerabilities>")


LAUGHS = ('<!DOCTYPE bom [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
          '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
XXE = '<!DOCTYPE bom [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def hostile_xml(dtd: str, encoding: str) -> bytes:
    """A CycloneDX XML using entities declared in `dtd`, encoded in `encoding`."""
    entity = "&c;" if "ENTITY c" in dtd else "&x;"
    body = (f'<?xml version="1.0" encoding="{encoding}"?>\n{dtd}\n'
            '<bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1"><components>'
            f'<component type="machine-learning-model"><name>{entity}</name></component>'
            "</components></bom>\n")
    if encoding == "cp037":  # the declaration is read before the encoding is known
        head, rest = body.split("\n", 1)
        return head.encode() + b"\n" + rest.encode("cp037")
    return body.encode("utf-16" if encoding == "UTF-16" else encoding)


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
