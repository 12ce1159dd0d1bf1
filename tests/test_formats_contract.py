"""The format plug-in contract holds: each format declared once, fully, and named by FormatId."""

from __future__ import annotations

import ast
import io
import pickle
import re
from pathlib import Path

from auditor.formats.contract import (
    UNPARSED,
    UNPARSED_ARCHIVES,
    FormatOptions,
    ScanContext,
)
from auditor.formats.registry import SPECS
from auditor.model import FormatId
from auditor.scanning import sniff
from auditor.scanning.engine import dispatch
from tests.builders import safetensors_bytes

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED = set(re.findall(r"^\| (AUD-[A-Z]+-\d{3}) \|", (ROOT / "docs/rules.md").read_text(),
                            re.MULTILINE))


def test_every_spec_rule_is_documented_in_rules_md():
    for spec in SPECS:
        missing = {rule.id for rule in spec.rules} - DOCUMENTED
        assert not missing, f"{spec.id}: rules missing from docs/rules.md: {sorted(missing)}"


def test_every_format_id_is_reachable_and_each_spec_declared_once():
    ids = [spec.id for spec in SPECS]
    assert len(ids) == len(set(ids)), "a format id is declared by two specs"
    refined = {f for spec in SPECS for f in spec.refines}
    # Set by the engine and the pipeline when no spec ran on the bytes.
    not_scanned = {FormatId.NESTED, FormatId.SPECIAL, FormatId.UNREADABLE, FormatId.NOT_FETCHED}
    reachable = set(ids) | refined | UNPARSED | not_scanned
    assert set(FormatId) == reachable, f"unreachable: {sorted(set(FormatId) - reachable)}"
    assert not (set(ids) | refined) & (UNPARSED | not_scanned), "a parsed format is unparsed"


def test_more_specific_sniffers_come_first():
    order = [spec.id for spec in SPECS]
    assert order.index(FormatId.PYTORCH_ZIP) < order.index(FormatId.ZIP)
    assert order.index(FormatId.PYTORCH_LEGACY) < order.index(FormatId.PICKLE)
    assert order[-1] == FormatId.JSON  # the catch-all text format


def test_what_no_spec_claims_is_named_by_an_unparsed_class():
    heads = [b"", b"plain words\n", b"\x89PNG\r\n\x1a\n....", b"7z\xbc\xaf\x27\x1c\x00\x04",
             b"\x00\x01\x02\xff" * 8, b"RIFF\x00\x00\x00\x00WEBPVP8 "]
    for head in heads:
        assert sniff.classify_unparsed(head) in UNPARSED, head
    assert all(sniff.is_unparsed_archive(fmt) for fmt in UNPARSED_ARCHIVES)


def test_extension_table_names_only_format_ids():
    for extension, formats in sniff.EXPECTED_BY_EXTENSION.items():
        assert all(isinstance(fmt, FormatId) for fmt in formats), extension


def _scan(name: str, data: bytes):
    ctx = ScanContext(file=name, name=name, size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    return dispatch(io.BytesIO(data), ctx)


def test_a_scan_sets_only_the_facts_its_spec_declares():
    samples = {
        "model.safetensors": safetensors_bytes({"w": ("F32", [2, 2])}),
        "weights.pkl": pickle.dumps({"a": [1, 2, 3]}, protocol=4),
        "config.json": b'{"model_type": "llama", "architectures": ["X"], "chat_template": "hi"}',
        "README.md": b"---\nlicense: mit\ntags: [a]\n---\n# card\n",
        "setup.yaml": b"a: 1\n",
        "chat_template.jinja": b"{{ messages }}",
        "modeling.py": b"import os\n",
    }
    specs = {spec.id: spec for spec in SPECS}
    for name, data in samples.items():
        result = _scan(name, data)
        spec = specs[FormatId(result.format)]
        assert result.facts, name
        undeclared = set(result.facts) - set(spec.facts)
        assert not undeclared, f"{name} ({result.format}) sets undeclared facts {undeclared}"


def _format_literals(tree: ast.AST, names: tuple[str, ...], content_room: bool
                     ) -> list[tuple[int, str]]:
    """String literals used as a format name.

    Everywhere: compared with or assigned to a format (`.format`, `format=`,
    `names`), or the format argument of `FileReport(...)` given by position. In
    the rooms that handle content (formats, scanning), also any dict key,
    `==`/`in` operand or positional call argument spelled like a format: there
    such a literal names one.
    """
    values = {f.value for f in FormatId}

    def is_format(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "format") or (
            isinstance(node, ast.Name) and node.id in names)

    def literals(node: ast.AST | None) -> list[ast.Constant]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node]
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return [n for elt in node.elts for n in literals(elt)]
        return []

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and (
            content_room or is_format(node.left) or any(is_format(c) for c in node.comparators)
        ):
            sides = [node.left, *node.comparators]
        elif (isinstance(node, ast.Assign) and any(is_format(t) for t in node.targets)) or (
            isinstance(node, ast.keyword) and node.arg == "format"
        ):
            sides = [node.value]
        elif isinstance(node, ast.Call) and content_room:
            sides = [a for a in node.args if isinstance(a, ast.Constant)]  # not sets of names
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
            node.func.id == "FileReport" and len(node.args) > 3
        ):
            sides = [node.args[3]]
        elif isinstance(node, ast.Dict) and content_room:
            sides = list(node.keys)  # type: ignore[arg-type]
        else:
            continue
        found += [(c.lineno, c.value) for side in sides for c in literals(side)
                  if c.value in values]
    return sorted(found)


def _offenders(root: Path) -> list[str]:
    offenders = []
    for path in sorted((root / "auditor").rglob("*.py")):
        rel = path.relative_to(root)
        content_room = rel.parts[1] in ("formats", "scanning")
        # Elsewhere `fmt` names an output format (text, json ...), not content.
        names = ("fmt", "kind") if content_room else ()
        for line, value in _format_literals(ast.parse(path.read_text()), names, content_room):
            offenders.append(f"{rel}:{line}: {value!r}")
    return offenders


def test_no_format_name_is_spelled_as_a_string_outside_the_enum():
    offenders = _offenders(ROOT)
    assert not offenders, "use FormatId instead of:\n" + "\n".join(offenders)


def test_the_spelling_check_catches_every_form(tmp_path):
    room = tmp_path / "auditor" / "formats"
    room.mkdir(parents=True)
    (room / "x.py").write_text(
        'TABLE = {"gzip": 1}\n'
        'ok = "joblib" in layouts\n'
        'same = kind == "zlib"\n'
        'r = FileReport("p", 1, {}, "pickle", c)\n'
        'result.format = "onnx"\n'
        'env.layouts.add("joblib")\n')
    (tmp_path / "auditor" / "elsewhere.py").write_text(
        'r = FileReport("p", 1, {}, "pickle", c)\n'
        'REPORTERS = {"text": 1, "json": 2}\n'
        'if fmt == "json": pass\n')
    assert _offenders(tmp_path) == [
        "auditor/elsewhere.py:1: 'pickle'",
        "auditor/formats/x.py:1: 'gzip'", "auditor/formats/x.py:2: 'joblib'",
        "auditor/formats/x.py:3: 'zlib'", "auditor/formats/x.py:4: 'pickle'",
        "auditor/formats/x.py:5: 'onnx'", "auditor/formats/x.py:6: 'joblib'",
    ]
