"""TensorFlow file and Python operators whose argument arrives through other nodes.

Graphs are protobufs written byte by byte (TensorFlow is not installed); the
path a ReadFile, WriteFile or checkpoint operator receives is followed back
through Identity, StringJoin, StringFormat, Concat, base64 and function
arguments to the constants it is built from.
"""

from __future__ import annotations

import base64

import pytest

from tests.test_savedmodel import CHECKPOINT, _write, const_string, m, node, s, saved_model


def const_strings(name: str, *values: str) -> bytes:
    tensor = m(8, m(1, b"\x08\x07"), *(s(8, v) for v in values))
    return node(name, "Const", attrs={"value": tensor})


def function(name: str, args: tuple[str, ...], *nodes: bytes) -> bytes:
    signature = m(1, s(1, name), *(m(2, s(1, a)) for a in args))
    return m(1, signature, *nodes)


def call(name: str, fn: str, *inputs: str) -> bytes:
    parts = [s(1, name), s(2, "StatefulPartitionedCall"), *(s(3, x) for x in inputs),
             m(5, s(1, "f"), m(2, m(10, s(1, fn))))]
    return m(1, *parts)


def _details(tmp_path, *nodes: bytes, functions: bytes = b"") -> list[tuple[str, str]]:
    report = _write(tmp_path, saved_model(*CHECKPOINT, *nodes, functions=functions))
    return [(f.rule, f.detail) for f in report.findings]


GRAPH_SPELLINGS = {
    "string_join": (
        [const_string("dir", "/etc"), const_string("file", "passwd"),
         node("j", "StringJoin", "dir", "file", attrs={"separator": s(2, b"/")}),
         node("r", "ReadFile", "j")],
        "AUD-TF-002",
        "graph: ReadFile node 'r' reads '/etc/passwd' (Const 'dir' → Const 'file' → "
        "StringJoin 'j')"),
    "identity_chain": (
        [const_string("a", "x"), const_string("b", "/root/.ssh/id_rsa"),
         node("i", "Identity", "b"), node("n", "IdentityN", "a", "i"),
         node("r", "ReadFile", "n:1", "^a")],
        "AUD-TF-002",
        "graph: ReadFile node 'r' reads '/root/.ssh/id_rsa' (Const 'b' → Identity 'i' → "
        "IdentityN 'n')"),
    "string_format": (
        [const_string("name", "job"),
         node("f", "StringFormat", "name", attrs={"template": s(2, b"/etc/cron.d/{}"),
                                                  "placeholder": s(2, b"{}")}),
         const_string("body", "* * * * * root sh"), node("w", "WriteFile", "f", "body")],
        "AUD-TF-003",
        "graph: WriteFile node 'w' writes '/etc/cron.d/job' (Const 'name' → StringFormat 'f')"),
    "concat_and_reduce_join": (
        [const_strings("head", "", "home"), const_strings("tail", "*", ".aws"),
         node("axis", "Const"), node("c", "ConcatV2", "head", "tail", "axis"),
         node("rj", "ReduceJoin", "c", attrs={"separator": s(2, b"/")}),
         node("g", "MatchingFiles", "rj")],
        "AUD-TF-002",
        "graph: MatchingFiles node 'g' reads '/home/*/.aws' (Const 'head' → Const 'tail' → "
        "ConcatV2 'c' → ReduceJoin 'rj')"),
    "base64": (
        [const_string("e", base64.urlsafe_b64encode(b"/etc/shadow").decode().rstrip("=")),
         node("d", "DecodeBase64", "e"), node("r", "ReadFile", "d")],
        "AUD-TF-002",
        "graph: ReadFile node 'r' reads '/etc/shadow' (Const 'e' → DecodeBase64 'd')"),
    "string_add": (
        [const_string("a", "/proc/self/"), const_string("b", "environ"),
         node("p", "AddV2", "a", "b"), node("r", "ReadFile", "p")],
        "AUD-TF-002",
        "graph: ReadFile node 'r' reads '/proc/self/environ' (Const 'a' → Const 'b' → "
        "AddV2 'p')"),
    "checkpoint_through_join": (
        [const_string("base", "/tmp/exfil"), const_string("suffix", "ckpt"),
         node("prefix", "StringJoin", "base", "suffix", attrs={"separator": s(2, b"/")}),
         node("names", "Placeholder"), node("save2", "SaveV2", "prefix", "names")],
        "AUD-TF-004",
        "graph: SaveV2 node 'save2' uses '/tmp/exfil/ckpt' (Const 'base' → Const 'suffix' → "
        "StringJoin 'prefix')"),
    "remap_matrix_up": (
        [const_string("up", "../../other/model.ckpt"), node("i", "Snapshot", "up"),
         node("lr", "LoadAndRemapMatrix", "i", "x")],
        "AUD-TF-004",
        "graph: LoadAndRemapMatrix node 'lr' uses '../../other/model.ckpt' (Const 'up' → "
        "Snapshot 'i')"),
    "immutable_const": (
        [node("k", "ImmutableConst", attrs={"memory_region_name": s(2, b"/etc/passwd")})],
        "AUD-TF-002", "graph: ImmutableConst node 'k' reads '/etc/passwd'"),
    "pyfunc_token": (
        [node("p", "PyFunc", "x", attrs={"token": s(2, b"pyfunc_3")})],
        "AUD-TF-001", "graph: PyFunc node 'p' calls 'pyfunc_3'"),
    "placeholder": (
        [node("r", "ReadFile", "x")],
        "AUD-TF-002", "graph: ReadFile node 'r' (value from an input of the graph)"),
}


@pytest.mark.parametrize("spelling", sorted(GRAPH_SPELLINGS))
def test_path_is_followed_back_to_its_constants(tmp_path, spelling):
    nodes, rule, detail = GRAPH_SPELLINGS[spelling]
    assert _details(tmp_path, *nodes) == [(rule, detail)]


def test_function_argument_is_resolved_at_its_call_site(tmp_path):
    fn = function("__inference_read_3", ("path",),
                  node("r", "ReadFile", "path", field=3))
    found = _details(tmp_path, const_string("p", "/etc/shadow"),
                     call("call", "__inference_read_3", "p"), functions=fn)
    assert found == [("AUD-TF-002", "function __inference_read_3: ReadFile node 'r' reads "
                      "'/etc/shadow' (Const 'p' → function __inference_read_3 argument 'path')")]


def test_function_called_by_its_name_and_nested_calls_are_followed(tmp_path):
    inner = function("inner", ("q",), node("w", "WriteFile", "q", "q", field=3))
    outer = function("outer", ("p",),
                     node("j", "StringJoin", "p", "tail:output:0", field=3),
                     node("tail", "Const", field=3, attrs={"value": m(8, s(8, "/.bashrc"))}),
                     node("c", "inner", "j:output:0", field=3))
    found = _details(tmp_path, const_string("home", "/root"), node("o", "outer", "home"),
                     functions=inner + outer)
    assert found == [("AUD-TF-003", "function inner: WriteFile node 'w' writes '/root/.bashrc' "
                      "(Const 'home' → function outer argument 'p' → Const 'tail' → "
                      "StringJoin 'j' → function inner argument 'q')")]


def test_function_constant_inside_the_body(tmp_path):
    fn = function("f", (), node("c", "Const", field=3, attrs={"value": m(8, s(8, "/etc/hosts"))}),
                  node("i", "Identity", "c:output:0", field=3),
                  node("r", "ReadFile", "i:output:0", field=3))
    assert _details(tmp_path, functions=fn) == [
        ("AUD-TF-002", "function f: ReadFile node 'r' reads '/etc/hosts' (Const 'c' → "
         "Identity 'i')")]


def test_uncalled_function_argument_is_named(tmp_path):
    fn = function("f", ("path",), node("r", "ReadFile", "path", field=3))
    assert _details(tmp_path, functions=fn) == [
        ("AUD-TF-002", "function f: ReadFile node 'r' (value from argument 'path' of function f)")]


@pytest.mark.parametrize("prefix", [
    [node("tmp", "Placeholder"), const_string("part", "_temp/part"),
     node("prefix", "StringJoin", "tmp", "part")],
    [const_string("a", "variables"), const_string("b", "variables"),
     node("prefix", "StringJoin", "a", "b", attrs={"separator": s(2, b"/")})],
])
def test_checkpoint_paths_inside_the_model_stay_clean(tmp_path, prefix):
    names = const_string("names", "dense/kernel")
    assert _details(tmp_path, *prefix, names, node("s2", "SaveV2", "prefix", "names")) == []


def test_cycles_and_long_chains_end(tmp_path):
    loop = [node("a", "Identity", "b"), node("b", "Identity", "a"), node("r", "ReadFile", "a")]
    chain = [const_string("c0", "/etc/passwd"),
             *(node(f"c{i}", "Identity", f"c{i - 1}") for i in range(1, 80)),
             node("r2", "ReadFile", "c79")]
    found = _details(tmp_path, *loop, *chain)
    assert [d for _, d in found] == [
        "graph: ReadFile node 'r' (value from a chain too long to follow)",
        "graph: ReadFile node 'r2' (value from a chain too long to follow)"]


def _func_attr(key: str, *names: str, listed: bool = False) -> bytes:
    """An attr entry naming functions: `func` (field 10) or a list of them (list.func)."""
    funcs = b"".join(m(9 if listed else 10, s(1, n)) for n in names)
    return m(5, s(1, key), m(2, m(1, funcs) if listed else funcs))


@pytest.mark.parametrize(("op", "attrs", "inputs"), [
    ("If", _func_attr("then_branch", "leak") + _func_attr("else_branch", "other"),
     ("cond", "p")),
    ("StatelessWhile", _func_attr("cond", "other") + _func_attr("body", "leak"), ("p",)),
    ("Case", _func_attr("branches", "other", "leak", listed=True), ("index", "p")),
])
def test_control_flow_branches_and_bodies_get_their_arguments(tmp_path, op, attrs, inputs):
    leak = function("leak", ("path",), node("r", "ReadFile", "path", field=3))
    other = function("other", ("path",), node("n", "NoOp", field=3))
    caller = m(1, s(1, "c"), s(2, op), *(s(3, x) for x in inputs), attrs)
    found = _details(tmp_path, const_string("p", "/etc/passwd"), node("cond", "Placeholder"),
                     node("index", "Placeholder"), caller, functions=leak + other)
    assert found == [("AUD-TF-002", "function leak: ReadFile node 'r' reads '/etc/passwd' "
                      "(Const 'p' → function leak argument 'path')")]
