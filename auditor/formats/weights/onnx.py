"""ONNX: the model protobuf read without loading external data or running anything.

A graph is data, but two things in it reach outside the file: operators from
non-standard domains (a runtime needs a native library registered for them)
and tensors whose bytes live in external files named by a path (which a
loader opens relative to the model). Every graph is walked: the main graph,
subgraphs in `If`/`Loop`/`Scan` attributes, training graphs and model-local
functions. The protobuf is streamed by `protowire` so that embedded weights
are skipped, not held in memory.

External-data files belong to the model that names them: `link_external_data`
runs once all files are scanned, checks each reference against the file it
points to, and marks those files as ONNX tensor data instead of unknown binaries.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Any, BinaryIO

from auditor.errors import FormatError
from auditor.formats import scan_rules
from auditor.formats._lib.protowire import (
    LEN,
    VARINT,
    Field,
    Schema,
    read_head_fields,
    read_message,
)
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import Coverage, FileReport, FormatId, FormatResult, Rule, Severity

MALFORMED = Rule(
    "AUD-ONNX-001", Severity.HIGH, "ONNX model is malformed",
    "A protobuf the scanner cannot parse, or a model without ir_version or graph, is not what "
    "the runtime will load; a lenient loader may read something else.",
    "Re-export the model with the onnx package and check it with onnx.checker.",
)
CUSTOM_DOMAIN = Rule(
    "AUD-ONNX-002", Severity.HIGH, "Operator from a non-standard domain (custom op, native code)",
    "Operators outside the standard ONNX domains only run when the user registers a native "
    "library implementing them (onnxruntime register_custom_ops_library): loading the model "
    "means loading someone's compiled code.",
    "Use standard operators, or review and pin the custom-op library the model needs.",
)
VENDOR_DOMAIN = Rule(
    "AUD-ONNX-003", Severity.LOW, "Operator from the com.microsoft domain (onnxruntime contrib)",
    "These kernels ship inside onnxruntime itself, so no third-party code is loaded, but the "
    "model only runs on that runtime and its less-scrutinised contrib kernels.",
    "Nothing to do unless your policy requires standard operators only.",
)
EXTERNAL_PATH = Rule(
    "AUD-ONNX-004", Severity.HIGH, "External-data location escapes the model folder",
    "The runtime opens an external-data location relative to the model; an absolute path or "
    "'..' makes loading the model read any file of the host into a tensor (and out again "
    "through the model's outputs).",
    "Keep external-data files next to the model and name them by relative paths.",
)
EXTERNAL_ENTRY = Rule(
    "AUD-ONNX-005", Severity.HIGH, "External-data entry is invalid",
    "An external-data entry without a location, with a non-numeric offset or length, or with "
    "unknown keys is rejected or misread by loaders.",
    "Re-save the model with onnx.save_model(..., save_as_external_data=True).",
)
TOO_LARGE = Rule(
    "AUD-ONNX-006", Severity.HIGH, "ONNX protobuf larger than 2 GB",
    "Protobuf parsers refuse messages over 2 GB, so loaders fail or read a prefix: the bytes "
    "past the limit are content no loader accounts for.",
    "Save large weights as external data (save_as_external_data=True).",
)
EXTERNAL_MISSING = Rule(
    "AUD-ONNX-007", Severity.HIGH, "External-data file missing from the model folder",
    "The model reads tensor bytes from a file that is not in the scanned folder: whatever is "
    "at that path at load time was not audited.",
    "Ship the external-data file with the model, or re-save with embedded weights.",
)
EXTERNAL_BOUNDS = Rule(
    "AUD-ONNX-008", Severity.HIGH, "External-data reference out of the file's bounds",
    "An offset or length beyond the external-data file is a truncated download or a crafted "
    "reference that makes the runtime read past the file.",
    "Obtain the external-data file again, or re-save the model.",
)
RULES = (MALFORMED, CUSTOM_DOMAIN, VENDOR_DOMAIN, EXTERNAL_PATH, EXTERNAL_ENTRY, TOO_LARGE,
         EXTERNAL_MISSING, EXTERNAL_BOUNDS)

# Domains whose operators are defined by the ONNX standard ("" is ai.onnx).
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
VENDOR_DOMAINS = frozenset({"com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc"})
MAX_PROTOBUF = 2**31 - 1
EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})

# The parts of onnx.proto the checks need (field numbers from onnx.proto3).
_STR_MAP: Schema = {1: Field("key", "str"), 2: Field("value", "str")}
SCHEMAS: dict[str, Schema] = {
    "ModelProto": {
        1: Field("ir_version", "int"), 2: Field("producer_name", "str"),
        3: Field("producer_version", "str"), 4: Field("domain", "str"),
        5: Field("model_version", "int"), 7: Field("graph", "GraphProto"),
        8: Field("opset_import", "OperatorSetIdProto", True),
        20: Field("training_info", "TrainingInfoProto", True),
        25: Field("functions", "FunctionProto", True),
    },
    "OperatorSetIdProto": {1: Field("domain", "str"), 2: Field("version", "int")},
    "GraphProto": {
        1: Field("node", "NodeProto", True), 2: Field("name", "str"),
        5: Field("initializer", "TensorProto", True),
        15: Field("sparse_initializer", "SparseTensorProto", True),
    },
    "NodeProto": {
        3: Field("name", "str"), 4: Field("op_type", "str"), 7: Field("domain", "str"),
        5: Field("attribute", "AttributeProto", True),
    },
    "AttributeProto": {
        1: Field("name", "str"), 5: Field("t", "TensorProto"), 6: Field("g", "GraphProto"),
        10: Field("tensors", "TensorProto", True), 11: Field("graphs", "GraphProto", True),
        22: Field("sparse_tensor", "SparseTensorProto"),
        23: Field("sparse_tensors", "SparseTensorProto", True),
    },
    "TensorProto": {
        8: Field("name", "str"), 13: Field("external_data", "StringStringEntryProto", True),
        14: Field("data_location", "int"),
    },
    "SparseTensorProto": {1: Field("values", "TensorProto"), 2: Field("indices", "TensorProto")},
    "StringStringEntryProto": _STR_MAP,
    "TrainingInfoProto": {
        1: Field("initialization", "GraphProto"), 2: Field("algorithm", "GraphProto"),
    },
    "FunctionProto": {
        1: Field("name", "str"), 7: Field("node", "NodeProto", True),
        9: Field("opset_import", "OperatorSetIdProto", True), 10: Field("domain", "str"),
    },
}
# ModelProto top-level fields and their wire types, for sniffing (no magic number exists).
_MODEL_FIELDS = {
    1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN, 8: LEN, 14: LEN, 20: LEN,
    25: LEN,
}
_TEXT_FIELDS = (2, 3, 4, 6)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def sniff(head: bytes, name: str) -> bool:
    """Claim a protobuf whose first fields are a plausible ModelProto head.

    Protobuf has no magic number: require `ir_version` first (as every writer
    emits fields in number order), only ModelProto fields with their wire
    types, printable UTF-8 in the string fields, and `graph` or
    `opset_import` reached within the head.
    """
    fields = read_head_fields(head)
    if not fields or fields[0][:2] != (1, VARINT) or not 1 <= fields[0][2] <= 100:
        return False
    for number, wire, value, at in fields:
        if _MODEL_FIELDS.get(number) != wire:
            return False
        text_in_head = number in _TEXT_FIELDS and at + value <= len(head)
        if text_in_head and not _printable(head[at : at + value]):
            return False
        if number in (7, 8):
            return True
    return False


def _printable(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= " " or c in "\t\n\r" for c in text)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    size = ctx.size
    if size is None:
        raise FormatError("ONNX member of unknown size cannot be bounded", 0, MALFORMED)
    if size > MAX_PROTOBUF:
        ctx.add(TOO_LARGE, f"{size} bytes")
    try:
        model = read_message(f, size, SCHEMAS, "ModelProto")
    except FormatError as exc:
        if exc.rule is None and type(exc) is FormatError:
            exc.rule = MALFORMED
        raise
    if not model.get("ir_version"):
        raise FormatError("no ir_version", 0, MALFORMED)
    if "graph" not in model:
        raise FormatError("no graph", 0, MALFORMED)
    _check(model, ctx)
    return ctx.result


def _check(model: dict[str, Any], ctx: ScanContext) -> None:
    local_functions = {(fn.get("domain", ""), fn.get("name", ""))
                       for fn in model.get("functions", [])}
    graphs = _all_graphs(model)
    domains: set[str] = set()
    operators = 0
    for graph, where in graphs:
        for index, node in enumerate(graph.get("node", [])):
            operators += 1
            domain, op = node.get("domain", ""), node.get("op_type", "")
            domains.add(domain)
            if (domain, op) in local_functions or domain in STANDARD_DOMAINS:
                continue
            rule = VENDOR_DOMAIN if domain in VENDOR_DOMAINS else CUSTOM_DOMAIN
            label = repr(node["name"]) if node.get("name") else f"#{index}"
            ctx.add(rule, f"{domain}::{op} (node {label} in {where})")
    external = []
    for tensor, where in _all_tensors(graphs):
        ref = _external_ref(tensor, where, ctx)
        if ref is not None:
            external.append(ref)
    opsets = {o.get("domain", "") or "ai.onnx": o.get("version", 0)
              for o in model.get("opset_import", [])}
    ctx.result.facts.update({
        "ir_version": model["ir_version"],
        "producer": " ".join(filter(None, (model.get("producer_name"),
                                           model.get("producer_version")))),
        "opsets": dict(sorted(opsets.items())),
        "domains": sorted(d or "ai.onnx" for d in domains),
        "operators": operators,
        "graphs": len(graphs),
        "functions": len(local_functions),
    })
    if external:
        ctx.result.facts["external_data"] = external


def _all_graphs(model: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every graph in the model with a readable path: main, training, functions, subgraphs."""
    todo: list[tuple[dict[str, Any], str]] = [(model["graph"], "graph")]
    for i, info in enumerate(model.get("training_info", [])):
        for key in ("initialization", "algorithm"):
            if key in info:
                todo.append((info[key], f"training_info[{i}].{key}"))
    for fn in model.get("functions", []):
        todo.append(({"node": fn.get("node", [])}, f"function {fn.get('name', '')!r}"))
    out = []
    while todo:
        graph, where = todo.pop()
        out.append((graph, where))
        for node in graph.get("node", []):
            for attr in node.get("attribute", []):
                sub = [attr["g"]] if "g" in attr else []
                for k, g in enumerate(sub + attr.get("graphs", [])):
                    todo.append((g, f"{where} > {node.get('op_type', '')}"
                                    f".{attr.get('name', '')}[{k}]"))
    return out


def _all_tensors(graphs: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
    out = []
    for graph, where in graphs:
        sparse = graph.get("sparse_initializer", [])
        for t in graph.get("initializer", []):
            out.append((t, where))
        for node in graph.get("node", []):
            for attr in node.get("attribute", []):
                tensors = ([attr["t"]] if "t" in attr else []) + attr.get("tensors", [])
                out += [(t, where) for t in tensors]
                sparse = sparse + ([attr["sparse_tensor"]] if "sparse_tensor" in attr else [])
                sparse = sparse + attr.get("sparse_tensors", [])
        for s in sparse:
            out += [(s[k], where) for k in ("values", "indices") if k in s]
    return out


def _external_ref(tensor: dict[str, Any], where: str, ctx: ScanContext) -> dict[str, Any] | None:
    entries = tensor.get("external_data", [])
    if tensor.get("data_location", 0) != 1 and not entries:
        return None
    name = tensor.get("name", "")
    info = {e.get("key", ""): e.get("value", "") for e in entries}
    unknown = sorted(set(info) - EXTERNAL_KEYS)
    location = info.get("location", "")
    problems = [f"unknown key {k!r}" for k in unknown]
    if not location:
        problems.append("no location")
    numbers: dict[str, int] = {}
    for key in ("offset", "length"):
        if key in info:
            if info[key].isdigit():
                numbers[key] = int(info[key])
            else:
                problems.append(f"{key} {info[key]!r} is not a number")
    if problems:
        ctx.add(EXTERNAL_ENTRY, f"tensor {name!r} in {where}: {'; '.join(problems)}")
    if not location:
        return None
    if escapes(location):
        ctx.add(EXTERNAL_PATH, f"tensor {name!r} in {where}: location {location!r}")
    return {"tensor": name, "location": location, **numbers}


def escapes(location: str) -> bool:
    """True for a path that is absolute or leaves the folder it is relative to."""
    path = location.replace("\\", "/")
    if path.startswith("/") or _WINDOWS_DRIVE.match(path) or "\x00" in path:
        return True
    return posixpath.normpath(path).split("/")[0] == ".."


def link_external_data(files: dict[str, FileReport]) -> None:
    """Check every ONNX external-data reference against the file it names (model-level pass).

    Referenced files that no format claimed become `onnx-external-data`
    (their unknown-binary finding dropped); a missing file or a reference
    past the end of its file is a finding on the ONNX model.
    """
    for path, report in list(files.items()):
        refs = report.facts.get("external_data") if report.format == FormatId.ONNX else None
        if not refs:
            continue
        folder = posixpath.dirname(path)
        added = []
        for ref in refs:
            if escapes(ref["location"]):
                continue  # already a finding; never resolved outside the folder
            target = posixpath.normpath(posixpath.join(folder, ref["location"].replace("\\", "/")))
            data = files.get(target)
            where = f"tensor {ref['tensor']!r} -> {target}"
            if data is None:
                added.append(EXTERNAL_MISSING.finding(path, where))
                continue
            offset = ref.get("offset", 0)
            end = offset + ref["length"] if "length" in ref else data.size
            if offset > data.size or end > data.size:
                added.append(EXTERNAL_BOUNDS.finding(
                    path, f"{where}: bytes {offset}..{end} of a {data.size}-byte file"))
            files[target] = _as_external_data(files[target], path)
        if added:
            files[path] = dataclasses.replace(report, findings=report.findings + tuple(added))


def _as_external_data(report: FileReport, model: str) -> FileReport:
    if report.format not in (FormatId.UNKNOWN, FormatId.EMPTY, FormatId.ONNX_EXTERNAL_DATA):
        return report  # content some format claimed (a pickle, say) keeps its own verdict
    owners = sorted({*report.facts.get("onnx_model", []), model})
    return dataclasses.replace(
        report,
        format=FormatId.ONNX_EXTERNAL_DATA,
        coverage=Coverage.SCANNED,
        findings=tuple(f for f in report.findings if f.rule != scan_rules.UNKNOWN_BINARY.id),
        facts={**report.facts, "onnx_model": owners},
    )


SPEC = FormatSpec(
    id=FormatId.ONNX, sniff=sniff, scan=scan, container=False, rules=RULES,
    refines=(FormatId.ONNX_EXTERNAL_DATA,),
    facts=("ir_version", "producer", "opsets", "domains", "operators", "graphs", "functions",
           "external_data"),
)
