"""TensorFlow SavedModel (`saved_model.pb`) and its companions, read without TensorFlow.

A SavedModel is a graph: loading it does not run Python, but running it runs
its operators, and some operators reach outside the tensor world: they read
or write files, or call Python functions registered in the process. The
graph protobuf (SavedModel -> MetaGraphDef -> GraphDef -> NodeDef, plus the
function library) is streamed by `protowire` and every operator is looked up
in the table below. Checkpoint operators (SaveV2, RestoreV2, ...) are in every
SavedModel and only flagged when a constant path sends them outside the model.
Paths rarely come straight from a Const: `tf_flow` follows each operator's
inputs back through string operators and function arguments, so a finding
names the path and the nodes that built it.

A frozen GraphDef (`*.pb` holding a bare graph, format `tf-graphdef`) is
checked the same way. Companions in a SavedModel folder: `keras_metadata.pb`
(TF-Keras layer configs as JSON, which can carry Lambda bytecode: reviewed
like a `.keras` config), `fingerprint.pb` (hashes only) and `variables/`
(tensor data, recognised by `link_variables` once all files are scanned).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats import scan_rules
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats._lib.protowire import (
    LEN,
    VARINT,
    Field,
    Schema,
    read_head_fields,
    read_message,
)
from auditor.formats._lib.streams import ReplayReader
from auditor.formats.code import python as python_code
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.weights import keras, tf_flow
from auditor.model import Coverage, FileReport, FormatId, FormatResult, Rule, Severity

PYTHON_OP = Rule(
    "AUD-TF-001", Severity.HIGH, "TensorFlow graph calls Python functions (PyFunc)",
    "PyFunc, PyFuncStateless and EagerPyFunc run a Python callable of the loading process: "
    "the graph hands control to code that is not in the model.",
    "Refuse the model, or re-export it without tf.py_function / tf.numpy_function.",
)
FILE_READ_OP = Rule(
    "AUD-TF-002", Severity.HIGH, "TensorFlow graph reads files",
    "ReadFile, MatchingFiles, file readers and file datasets let a served model read (and "
    "return) files of the host.",
    "Refuse the model unless file access is expected; inspect the paths it uses.",
)
FILE_WRITE_OP = Rule(
    "AUD-TF-003", Severity.HIGH, "TensorFlow graph writes files",
    "WriteFile, summary writers, dataset savers and debug dump operators let running the "
    "model create or overwrite files of the host.",
    "Refuse the model unless file output is expected; inspect the paths it uses.",
)
ODD_PATH = Rule(
    "AUD-TF-004", Severity.HIGH, "TensorFlow file operator uses a path outside the model",
    "Checkpoint and lookup-table operators are normal, but a constant absolute or '..' path "
    "makes them read or write outside the model folder.",
    "Re-export the model with tf.saved_model.save so paths come from the loader.",
)
MALFORMED = Rule(
    "AUD-TF-005", Severity.HIGH, "TensorFlow SavedModel protobuf is malformed",
    "A graph the scanner cannot parse is not what TensorFlow will load; lenient parsing "
    "differences are a way to hide operators.",
    "Re-export the model with tf.saved_model.save.",
)
ASSET_PATH = Rule(
    "AUD-TF-006", Severity.HIGH, "SavedModel asset path escapes the assets folder",
    "Asset file names are joined to the model's assets/ folder by the loader; an absolute or "
    "'..' name makes it read any file of the host.",
    "Keep assets inside assets/ and name them by relative paths.",
)
RULES = (PYTHON_OP, FILE_READ_OP, FILE_WRITE_OP, ODD_PATH, MALFORMED, ASSET_PATH)

# Operator -> rule. Data, not code: a new dangerous operator is one line.
OPS: dict[str, Rule] = {
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), PYTHON_OP),
    **dict.fromkeys((
        "ReadFile", "MatchingFiles", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset",
        "ImmutableConst", "WholeFileReader", "WholeFileReaderV2", "TextLineReader",
        "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
        "TFRecordReader", "TFRecordReaderV2", "LMDBReader", "TextLineDataset",
        "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "TFRecordDataset",
        "TFRecordDatasetV2", "LMDBDataset", "ExperimentalLMDBDataset", "CSVDataset",
        "CSVDatasetV2", "ExperimentalCSVDataset", "SqlDataset", "ExperimentalSqlDataset",
        "LoadDataset", "SnapshotDataset", "SnapshotDatasetV2", "DecodeProtoV2",
    ), FILE_READ_OP),
    **dict.fromkeys((
        "WriteFile", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset",
        "SaveDatasetV2", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary",
        "WriteRawProtoSummary", "WriteScalarSummary", "WriteHistogramSummary",
        "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary", "ImportEvent",
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
        "DebugNumericSummary", "DebugNumericSummaryV2",
    ), FILE_WRITE_OP),
}
# Normal operators that take a path: flagged only when a constant path leaves the model.
PATH_OPS = frozenset({
    "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
    "MergeV2Checkpoints", "ShardedFilename", "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2", "LoadAndRemapMatrix", "GenerateVocabRemapping",
})
# PrintV2 prints to a stream named by an attribute; only a file is a finding.
PRINT_OP = "PrintV2"
# The inputs that carry the path, where an operator also takes other strings (default: all).
PATH_INPUTS: dict[str, tuple[int, ...]] = {
    "WriteFile": (0,), "Save": (0,), "SaveV2": (0,), "SaveSlices": (0,), "Restore": (0,),
    "RestoreV2": (0,), "RestoreSlice": (0,), "InitializeTableFromTextFile": (1,),
    "InitializeTableFromTextFileV2": (1,), "LoadAndRemapMatrix": (0,),
}
# Attributes that name what the operator reaches: a registered Python function, a mapped file.
ARGUMENT_ATTRS = {"PyFunc": "token", "PyFuncStateless": "token", "EagerPyFunc": "token",
                  "ImmutableConst": "memory_region_name"}
VERBS = {PYTHON_OP.id: "calls", FILE_READ_OP.id: "reads", FILE_WRITE_OP.id: "writes"}

_NODE: Schema = {
    1: Field("name", "str"), 2: Field("op", "str"), 3: Field("input", "str", True),
    5: Field("attr", "AttrEntry", True),
}
SCHEMAS: dict[str, Schema] = {
    "SavedModel": {1: Field("schema_version", "int"),
                   2: Field("meta_graphs", "MetaGraphDef", True)},
    "MetaGraphDef": {1: Field("meta_info_def", "MetaInfoDef"), 2: Field("graph_def", "GraphDef"),
                     6: Field("asset_file_def", "AssetFileDef", True)},
    "MetaInfoDef": {4: Field("tags", "str", True), 5: Field("tensorflow_version", "str")},
    "AssetFileDef": {2: Field("filename", "str")},
    "GraphDef": {1: Field("node", "NodeDef", True), 2: Field("library", "FunctionDefLibrary"),
                 4: Field("versions", "VersionDef")},
    "VersionDef": {1: Field("producer", "int")},
    "NodeDef": _NODE,
    "AttrEntry": {1: Field("key", "str"), 2: Field("value", "AttrValue")},
    "AttrValue": {1: Field("list", "ListValue"), 2: Field("s", "bytes"),
                  8: Field("tensor", "TensorProto"), 10: Field("func", "NameAttrList")},
    "ListValue": {9: Field("func", "NameAttrList", True)},
    "NameAttrList": {1: Field("name", "str")},
    "TensorProto": {8: Field("string_val", "bytes", True)},
    "FunctionDefLibrary": {1: Field("function", "FunctionDef", True)},
    "FunctionDef": {1: Field("signature", "OpDef"), 3: Field("node_def", "NodeDef", True)},
    "OpDef": {1: Field("name", "str"), 2: Field("input_arg", "ArgDef", True)},
    "ArgDef": {1: Field("name", "str")},
    "KerasMetadata": {1: Field("nodes", "SavedObject", True)},
    "SavedObject": {3: Field("node_path", "str"), 4: Field("identifier", "str"),
                    5: Field("metadata", "str")},
}
_META_GRAPH_KEYS = frozenset({0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A})
_FINGERPRINT_FIELDS = frozenset({*((n, VARINT) for n in range(1, 6)), (6, LEN)})
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_VARIABLES = re.compile(r"^variables\.(index|data-\d{5}-of-\d{5})$")


def sniff(head: bytes, name: str) -> bool:
    base = name.lower()
    if base == "keras_metadata.pb":
        return head[:1] == b"\x0a"
    if base == "fingerprint.pb":
        fields = read_head_fields(head)
        return bool(fields) and all((n, w) in _FINGERPRINT_FIELDS for n, w, _, _ in fields)
    fields = read_head_fields(head, 2)
    if base.endswith(".pb") and fields and fields[0][:2] == (1, LEN):
        _, _, length, at = fields[0]  # a frozen GraphDef: node { name: ... op: ... }
        node = read_head_fields(head[at : at + length], 2)
        return [(n, w) for n, w, _, _ in node] == [(1, LEN), (2, LEN)]
    if len(fields) < 2 or fields[0][:2] != (1, VARINT) or fields[0][2] > 10:
        return False
    number, wire, _, at = fields[1]
    return (number, wire) == (2, LEN) and (at >= len(head) or head[at] in _META_GRAPH_KEYS)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    if ctx.size is None:
        raise FormatError("protobuf member of unknown size cannot be bounded", 0, MALFORMED)
    base = ctx.name.lower()
    if base == "fingerprint.pb":
        ctx.result.format = FormatId.TF_FINGERPRINT
        return ctx.result
    first = f.read(1)
    if f.seekable():
        f.seek(0)
    else:
        f = ReplayReader(first, f)  # type: ignore[assignment]
    root = ("KerasMetadata" if base == "keras_metadata.pb"
            else "GraphDef" if first == b"\x0a" else "SavedModel")
    try:
        doc = read_message(f, ctx.size, SCHEMAS, root)
    except LimitExceeded:
        raise
    except FormatError as exc:
        raise FormatError(str(exc), exc.offset, MALFORMED) from None
    if root == "KerasMetadata":
        ctx.result.format = FormatId.TF_KERAS_METADATA
        _keras_metadata(doc, ctx)
    elif root == "GraphDef":
        ctx.result.format = FormatId.TF_GRAPHDEF
        count, ops = check_graph(doc, ctx)
        ctx.result.facts.update({"operators": count, "op_types": sorted(ops)})
    else:
        review_saved_model(doc, ctx)
    return ctx.result


def _keras_metadata(doc: dict[str, Any], ctx: ScanContext) -> None:
    classes: set[str] = set()
    for node in doc.get("nodes", []):
        text = node.get("metadata")
        if not text:
            continue
        try:
            config, _ = loads_strict(text.encode(), what="keras_metadata node")
        except LimitExceeded:
            raise
        except FormatError as exc:
            raise FormatError(f"node {node.get('node_path', '?')}: {exc}", None,
                              MALFORMED) from None
        facts = keras.review_config(config, ctx, node.get("node_path", "node"))
        classes.update(facts["classes"])
    ctx.result.facts.update({"layers": len(doc.get("nodes", [])), "classes": sorted(classes)})


def review_saved_model(doc: dict[str, Any], ctx: ScanContext) -> None:
    graphs = doc.get("meta_graphs", [])
    if not graphs:
        raise FormatError("no meta graph", 0, MALFORMED)
    ops: set[str] = set()
    tags: set[str] = set()
    count = 0
    for meta in graphs:
        info = meta.get("meta_info_def", {})
        tags.update(info.get("tags", []))
        for asset in meta.get("asset_file_def", []):
            name = asset.get("filename", "")
            if python_code.path_outside(name) or _URL.match(name):
                ctx.add(ASSET_PATH, repr(name))
        graph_count, graph_ops = check_graph(meta.get("graph_def", {}), ctx)
        count += graph_count
        ops |= graph_ops
    version = graphs[0].get("meta_info_def", {}).get("tensorflow_version")
    ctx.result.facts.update({
        "schema_version": doc.get("schema_version", 0),
        "tensorflow_version": version,
        "tags": sorted(tags),
        "operators": count,
        "op_types": sorted(ops),
    })


def check_graph(graph: dict[str, Any], ctx: ScanContext) -> tuple[int, set[str]]:
    """Check the graph's nodes and every function of its library; return (nodes, op types)."""
    count, ops = 0, set()
    for scope in tf_flow.scopes(graph):
        count += len(scope.nodes)
        ops.update(n.get("op", "") for n in scope.nodes.values())
        for node in scope.nodes.values():
            _check_node(scope, node, ctx)
    return count, ops


def _check_node(scope: tf_flow.Scope, node: dict[str, Any], ctx: ScanContext) -> None:
    op = node.get("op", "")
    where = f"{scope.label}: {op} node {node.get('name', '')!r}"
    rule = OPS.get(op)
    if rule is None and op not in PATH_OPS:
        stream = tf_flow.attr_string(node, "output_stream") if op == PRINT_OP else ""
        if stream.startswith("file://"):
            ctx.add(FILE_WRITE_OP, f"{where} prints to {stream!r}")
        return
    inputs = tf_flow.data_inputs(node)
    chosen = [inputs[i] for i in PATH_INPUTS.get(op, range(len(inputs))) if i < len(inputs)]
    flows = [tf_flow.resolve(scope, ref) for ref in chosen]
    paths = [v for f in flows for v in f.values or ()]
    if rule is None:
        odd = [p for p in paths if python_code.path_outside(p) or _URL.match(p)]
        if odd:
            ctx.add(ODD_PATH, f"{where} uses {_shown(odd)}{_trail(flows)}")
        return
    argument = tf_flow.attr_string(node, ARGUMENT_ATTRS.get(op, ""))
    verb = VERBS[rule.id]
    if argument:
        ctx.add(rule, f"{where} {verb} {argument!r}")
    elif paths:
        ctx.add(rule, f"{where} {verb} {_shown(paths)}{_trail(flows)}")
    else:
        origins = sorted({f.origin for f in flows if f.origin})
        ctx.add(rule, where + (f" (value from {', '.join(origins)})" if origins else ""))


def _shown(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values[:3]) + (" ..." if len(values) > 3 else "")


def _trail(flows: list[tf_flow.Flow]) -> str:
    """The longest trail among the inputs, when it is more than a direct constant."""
    trail = max((f.trail for f in flows if f.values), key=len, default=())
    return f" ({' → '.join(trail)})" if len(trail) > 1 else ""


def link_variables(files: dict[str, FileReport]) -> None:
    """Model-level pass: `variables/variables.*` next to a SavedModel are its tensor data."""
    models = {posixpath.dirname(p) for p, r in files.items() if r.format == FormatId.TF_SAVEDMODEL}
    for path, report in list(files.items()):
        folder, base = posixpath.split(path)
        if (posixpath.basename(folder) == "variables" and _VARIABLES.match(base)
                and posixpath.dirname(folder) in models and report.format == FormatId.UNKNOWN):
            files[path] = dataclasses.replace(
                report, format=FormatId.TF_VARIABLES, coverage=Coverage.SCANNED,
                findings=tuple(f for f in report.findings
                               if f.rule != scan_rules.UNKNOWN_BINARY.id))


SPEC = FormatSpec(
    id=FormatId.TF_SAVEDMODEL, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("schema_version", "tensorflow_version", "tags", "operators", "op_types", "layers",
           "classes"),
    refines=(FormatId.TF_GRAPHDEF, FormatId.TF_KERAS_METADATA, FormatId.TF_FINGERPRINT,
             FormatId.TF_VARIABLES),
)
