"""Where a TensorFlow operator's string inputs come from: constant folding over the parsed graph.

A file or Python operator rarely takes its path straight from a `Const`: it
arrives through Identity, StringJoin, StringFormat, Concat, a function's
argument... Reporting "ReadFile reads '/etc/passwd' (Const 'a' → StringJoin
'b')" needs the value followed through those nodes, in the main graph and in
function bodies (whose arguments come from every call site). Only operators
whose string result is a pure function of their inputs are folded, by the
table below; anything else ends the trail as "computed by <op>". Graphs come
as the dicts `protowire.read_message` builds; nothing is executed.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_VALUES = 16  # strings kept per tensor
MAX_DEPTH = 64  # nodes followed back from one input
# Operators whose output (for strings) is their first data input.
PASS_THROUGH = frozenset({
    "Identity", "RefIdentity", "Snapshot", "StopGradient", "PreventGradient", "EnsureShape",
    "PlaceholderWithDefault", "Reshape", "ExpandDims", "Squeeze", "Enter", "RefEnter", "Exit",
    "RefExit", "NextIteration", "Switch", "RefSwitch", "Print", "CheckNumerics",
    "DebugGradientIdentity", "StringStrip", "Unique", "ReverseV2",
})
JOINS = frozenset({"StringJoin", "Add", "AddV2"})  # element-wise concatenation (with separator)
LISTS = {"Pack": slice(None), "ConcatV2": slice(None, -1), "Concat": slice(1, None)}
# Operators that call library functions: the attributes naming them, and the first of their
# inputs that becomes the function's first argument (If/Case take a condition/index first).
CALLS: dict[str, tuple[tuple[str, ...], int]] = {
    "PartitionedCall": (("f",), 0), "StatefulPartitionedCall": (("f",), 0),
    "While": (("body", "cond"), 0), "StatelessWhile": (("body", "cond"), 0),
    "If": (("then_branch", "else_branch"), 1), "StatelessIf": (("then_branch", "else_branch"), 1),
    "Case": (("branches",), 1), "StatelessCase": (("branches",), 1),
}


@dataclass(frozen=True)
class Flow:
    """What one tensor can hold: constant strings (None if not constant) and the trail to them."""

    values: tuple[str, ...] | None
    trail: tuple[str, ...] = ()
    origin: str = ""  # for a non-constant: where the trail stopped


@dataclass
class Scope:
    """One graph or function body: nodes by name, argument names, and its callers."""

    label: str
    nodes: dict[str, dict[str, Any]]
    args: list[str] = field(default_factory=list)
    function: bool = False
    calls: list[tuple[Scope, dict[str, Any], int]] = field(default_factory=list)


def scopes(graph: dict[str, Any]) -> list[Scope]:
    """The main graph and each library function, with call sites linked to their callee."""
    found = [Scope("graph", _by_name(graph.get("node", [])))]
    named: dict[str, Scope] = {}
    for fn in graph.get("library", {}).get("function", []):
        signature = fn.get("signature", {})
        name = signature.get("name", "?")
        scope = Scope(f"function {name}", _by_name(fn.get("node_def", [])),
                      [a.get("name", "") for a in signature.get("input_arg", [])], True)
        named[name] = scope
        found.append(scope)
    for scope in found:
        for node in scope.nodes.values():
            names, skip = _callees(node)
            for name in names:
                if name in named:
                    named[name].calls.append((scope, node, skip))
    return found


def resolve(scope: Scope, ref: str, depth: int = 0) -> Flow:
    """The strings input `ref` of a node in `scope` can carry."""
    name, index = _split(ref)
    if depth > MAX_DEPTH:
        return Flow(None, origin="a chain too long to follow")
    if scope.function and name in scope.args:
        return _argument(scope, scope.args.index(name), name, depth)
    node = scope.nodes.get(name)
    if node is None:
        return Flow(None, origin=f"unknown node {name!r}")
    op = node.get("op", "")
    step = f"{op} {name!r}"
    inputs = data_inputs(node)
    if op == "Const":
        return Flow(tuple(const_strings(node)), (step,))
    if op in PASS_THROUGH and inputs:
        return _then(resolve(scope, inputs[0], depth + 1), step)
    if op == "IdentityN" and index < len(inputs):
        return _then(resolve(scope, inputs[index], depth + 1), step)
    if op == "Merge":
        return _then(_union(resolve(scope, i, depth + 1) for i in inputs), step)
    if op in LISTS:
        return _then(_union(resolve(scope, i, depth + 1) for i in inputs[LISTS[op]]), step)
    if op in JOINS:
        sep = attr_string(node, "separator")
        return _then(_join([resolve(scope, i, depth + 1) for i in inputs], sep), step)
    if op == "ReduceJoin" and inputs:
        flow = resolve(scope, inputs[0], depth + 1)
        if flow.values is not None:
            flow = Flow((attr_string(node, "separator").join(flow.values),), flow.trail)
        return _then(flow, step)
    if op == "StringFormat":
        return _then(_format(node, [resolve(scope, i, depth + 1) for i in inputs]), step)
    if op == "DecodeBase64" and inputs:
        return _then(_decode(resolve(scope, inputs[0], depth + 1)), step)
    origin = "an input of the graph" if op == "Placeholder" else "the graph's computation"
    return Flow(None, (step,), origin)


def data_inputs(node: dict[str, Any]) -> list[str]:
    return [i for i in node.get("input", []) if not i.startswith("^")]


def const_strings(node: dict[str, Any]) -> list[str]:
    for entry in node.get("attr", []):
        if entry.get("key") == "value":
            values = entry.get("value", {}).get("tensor", {}).get("string_val", [])
            return [v.decode("utf-8", "replace") for v in values[:MAX_VALUES]]
    return []


def attr_string(node: dict[str, Any], key: str) -> str:
    for entry in node.get("attr", []):
        if entry.get("key") == key:
            return entry.get("value", {}).get("s", b"").decode("utf-8", "replace")
    return ""


def _by_name(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n.get("name", ""): n for n in nodes}


def _callees(node: dict[str, Any]) -> tuple[list[str], int]:
    """Functions a node calls (by call operator or by the function's own name), input offset."""
    op = node.get("op", "")
    if op not in CALLS:
        return [op], 0
    keys, skip = CALLS[op]
    names = []
    for entry in node.get("attr", []):
        if entry.get("key") in keys:
            value = entry.get("value", {})
            funcs = [value.get("func", {}), *value.get("list", {}).get("func", [])]
            names.extend(f["name"] for f in funcs if f.get("name"))
    return names, skip


def _split(ref: str) -> tuple[str, int]:
    """Node name and output index: `n:1` in graphs, `n:output:1` in function bodies."""
    parts = ref.split(":")
    index = int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 0
    return parts[0], index


def _argument(scope: Scope, position: int, name: str, depth: int) -> Flow:
    flows = []
    for caller, node, skip in scope.calls:
        inputs = data_inputs(node)[skip:]
        if position < len(inputs):
            flows.append(_then(resolve(caller, inputs[position], depth + 1),
                               f"{scope.label} argument {name!r}"))
    if not flows:
        return Flow(None, (f"argument {name!r}",), f"argument {name!r} of {scope.label}")
    return _union(flows)


def _then(flow: Flow, step: str) -> Flow:
    return Flow(flow.values, (*flow.trail, step), flow.origin)


def _union(flows: Iterable[Flow]) -> Flow:
    values: list[str] = []
    trail: list[str] = []
    for flow in flows:
        if flow.values is None:
            return flow
        values.extend(flow.values)
        trail.extend(s for s in flow.trail if s not in trail)
    return Flow(tuple(values[:MAX_VALUES]), tuple(trail))


def _join(flows: list[Flow], sep: str) -> Flow:
    """Element-wise join with broadcasting of single values, as StringJoin and Add do."""
    for flow in flows:
        if flow.values is None:
            return flow
    lengths = {len(f.values or ()) for f in flows} - {1}
    if len(lengths) > 1 or not flows:
        return Flow(None, origin="a join of tensors of different sizes")
    n = lengths.pop() if lengths else 1
    columns = [itertools.islice(itertools.cycle(f.values or ("",)), n) for f in flows]
    joined = tuple(sep.join(row) for row in zip(*columns, strict=True))
    trail = tuple(dict.fromkeys(s for f in flows for s in f.trail))
    return Flow(joined[:MAX_VALUES], trail)


def _format(node: dict[str, Any], flows: list[Flow]) -> Flow:
    template = attr_string(node, "template") or "%s"  # TensorFlow's defaults
    holder = attr_string(node, "placeholder") or "%s"
    pieces = template.split(holder)
    if len(pieces) != len(flows) + 1:
        return Flow(None, origin="a format whose placeholders do not match its inputs")
    out = pieces[0]
    for flow, piece in zip(flows, pieces[1:], strict=True):
        if flow.values is None or len(flow.values) != 1:
            return flow if flow.values is None else Flow(None, origin="a formatted tensor")
        out += flow.values[0] + piece
    return Flow((out,), tuple(dict.fromkeys(s for f in flows for s in f.trail)))


def _decode(flow: Flow) -> Flow:
    if flow.values is None:
        return flow
    try:
        values = tuple(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)).decode("utf-8", "replace")
                       for v in flow.values)
    except (binascii.Error, ValueError):
        return Flow(None, flow.trail, "invalid base64")
    return Flow(values, flow.trail)
