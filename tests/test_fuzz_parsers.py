"""Property tests for every parser: any input is a result or a finding, never an escaped exception.

Byte formats are scanned through the engine (`scan_stream`, the path files
and members take), where an exception escaping a format module would become
an AUD-SCAN-007 internal-error finding: the properties assert there is none.
Inputs are mutated seeds (`tests.fuzz_seeds`) and structure-aware
generators (pickle opcodes from the opcode table, safetensors headers, GGUF
metadata, zip and tar members, Jinja templates, protobuf fields). Policies,
OMS bundles and CycloneDX documents are fed to their loaders, which may only
raise the project's own errors. The Hypothesis profile (tests/conftest.py)
bounds the examples; `HYPOTHESIS_PROFILE=fuzz` runs many more.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.errors import AuditorError, ConfigError
from auditor.formats.pickle.ops import BY_CODE, Arg
from auditor.integrity import dsse, oms
from auditor.model import Coverage, FormatResult
from auditor.policy.engine import evaluate, load_policies
from auditor.sbom.facts import models_from_sbom
from auditor.scanning.engine import scan_stream
from auditor.scanning.options import ScanOptions
from tests.builders import varint
from tests.fuzz_seeds import TARGETS

INTERNAL = "AUD-SCAN-007"
OPTIONS = ScanOptions(jobs=1)
ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def scan(name: str, data: bytes) -> FormatResult:
    result = scan_stream(name, io.BytesIO(data), len(data), OPTIONS)
    internal = [f.detail for f in result.findings if f.rule == INTERNAL]
    assert internal == [], f"{name}: {internal}"
    assert isinstance(result.coverage, Coverage)
    return result


# ---- mutated seeds, every byte format ---------------------------------------------------

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**63, 2**64 - 1)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            data[at] = draw(st.integers(0, 255))
        elif kind == 1:
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == 2:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == 3:
            width = draw(st.sampled_from((2, 4, 8)))
            value = draw(st.sampled_from(INTERESTING)) % (1 << (8 * width))
            data[at : at + width] = value.to_bytes(width, "little")
        elif kind == 4:
            del data[at:]  # truncation
        else:
            chunk = data[at : at + draw(st.integers(1, 64))]
            data[at:at] = chunk * draw(st.integers(1, 4))  # repetition
    return bytes(data)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutated_inputs_never_crash_a_parser(target):
    spec = TARGETS[target]
    if target == "npy":
        pytest.importorskip("numpy")
    if target == "onnx":
        pytest.importorskip("onnx")
    seeds = spec.seeds()

    @FUZZ
    @given(mutated(seeds))
    def check(data: bytes) -> None:
        scan(spec.name, data)

    check()


@pytest.mark.parametrize("name", ["model.onnx", "model.h5"])
def test_a_truncated_hdf5_superblock_is_malformed_not_a_crash(name):
    """Found by atheris (bench/fuzz, onnx target): the superblock was indexed past its end."""
    result = scan(name, bytes.fromhex("894844460d0a1a0a000000ff4f07"))
    assert result.coverage == Coverage.ERROR
    assert any("truncated superblock" in f.detail for f in result.findings)


@FUZZ
@given(st.binary(max_size=512), st.sampled_from(sorted({t.name for t in TARGETS.values()})))
def test_arbitrary_bytes_under_any_name_never_crash(data, name):
    scan(name, data)


# ---- pickle opcodes from the opcode table -----------------------------------------------

def _arg(kind: Arg) -> st.SearchStrategy[bytes]:
    small = st.binary(max_size=12)
    text = st.text(st.characters(codec="ascii", exclude_characters="\n"), max_size=12)
    line = text.map(lambda s: s.encode() + b"\n")
    return {
        Arg.NONE: st.just(b""),
        Arg.U1: st.binary(min_size=1, max_size=1),
        Arg.U2: st.binary(min_size=2, max_size=2),
        Arg.U4: st.sampled_from((0, 1, 5, 2**31, 2**32 - 1)).map(lambda n: struct.pack("<I", n)),
        Arg.I4: st.sampled_from((0, 1, -1, 2**31 - 1)).map(lambda n: struct.pack("<i", n)),
        Arg.U8: st.sampled_from((0, 3, 2**63)).map(lambda n: struct.pack("<Q", n)),
        Arg.F8: st.binary(min_size=8, max_size=8),
        Arg.LINE: line | st.sampled_from((b"'os'\n", b"0\n", b"01\n", b"1L\n", b"\n")),
        Arg.LINES2: st.tuples(line, line).map(b"".join) | st.just(b"os\nsystem\n"),
        Arg.LEN1: small.map(lambda b: bytes([len(b)]) + b),
        Arg.LEN4: small.map(lambda b: struct.pack("<I", len(b)) + b),
        Arg.LEN4S: small.map(lambda b: struct.pack("<i", len(b)) + b),
        Arg.LEN8: small.map(lambda b: struct.pack("<Q", len(b)) + b),
    }[kind]


OPCODE = st.sampled_from(sorted(BY_CODE)).flatmap(
    lambda code: _arg(BY_CODE[code].arg).map(lambda arg: bytes([code]) + arg))


@FUZZ
@given(st.sampled_from((b"", b"\x80\x02", b"\x80\x04", b"\x80\x05")),
       st.lists(OPCODE, max_size=40), st.booleans())
def test_generated_opcode_streams_never_crash_the_pickle_machine(head, ops, stop):
    result = scan("model.pkl", head + b"".join(ops) + (b"." if stop else b""))
    if result.format == "pickle":
        assert result.coverage != Coverage.SCANNED or "opcodes" in result.facts


# ---- structured headers ------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)
TENSOR = st.fixed_dictionaries({
    "dtype": st.sampled_from(("F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "X", 3)),
    "shape": st.lists(st.integers(-2, 2**40) | st.text(max_size=2), max_size=4),
    "data_offsets": st.lists(st.integers(-5, 2**64), min_size=0, max_size=3),
})


@FUZZ
@given(st.dictionaries(st.text(max_size=10), TENSOR | JSON, max_size=5),
       st.binary(max_size=64), st.integers(0, 3))
def test_generated_safetensors_headers_never_crash(header, body, pad):
    raw = json.dumps(header).encode() + b" " * pad
    scan("model.safetensors", struct.pack("<Q", len(raw)) + raw + body)


def _gguf_value(draw: st.DrawFn, gtype: int, depth: int = 0) -> bytes:
    fixed = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
             11: "<q", 12: "<d"}
    if gtype in fixed:
        return draw(st.binary(min_size=struct.calcsize(fixed[gtype]),
                              max_size=struct.calcsize(fixed[gtype])))
    if gtype == 8:
        raw = draw(st.text(max_size=16)).encode()
        return struct.pack("<Q", len(raw)) + raw
    if gtype == 9 and depth < 2:
        inner = draw(st.integers(0, 13))
        n = draw(st.integers(0, 4))
        items = b"".join(_gguf_value(draw, inner, depth + 1) for _ in range(n))
        return struct.pack("<IQ", inner, draw(st.sampled_from((n, n, n + 1, 2**62)))) + items
    return draw(st.binary(max_size=8))


@st.composite
def gguf_files(draw: st.DrawFn) -> bytes:
    keys = ("general.architecture", "general.name", "tokenizer.chat_template",
            "tokenizer.ggml.tokens", "general.file_type", "general.base_model.0.name", "x")
    kvs = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(keys)).encode()
        gtype = draw(st.integers(0, 14))
        kvs.append(struct.pack("<Q", len(key)) + key + struct.pack("<I", gtype)
                   + _gguf_value(draw, gtype))
    tensors = draw(st.integers(0, 3))
    infos = b"".join(
        struct.pack("<Q", 1) + b"t" + struct.pack("<I", 1) + struct.pack("<Q", draw(
            st.sampled_from((1, 4, 2**40)))) + struct.pack("<I", draw(st.integers(0, 40)))
        + struct.pack("<Q", draw(st.sampled_from((0, 32, 2**63)))) for _ in range(tensors))
    version = draw(st.sampled_from((1, 2, 3, 4)))
    head = b"GGUF" + struct.pack("<IQQ", version, tensors, len(kvs)) + b"".join(kvs) + infos
    return head + bytes(draw(st.integers(0, 64)))


@FUZZ
@given(gguf_files())
def test_generated_gguf_metadata_never_crashes(data):
    scan("model.gguf", data)


# ---- archive members ---------------------------------------------------------------------

MEMBER_NAMES = st.sampled_from((
    "archive/data.pkl", "archive/version", "archive/data/0", "../escape", "/abs", "a/./b",
    "model.safetensors", "inner.zip", "code/__torch__/m.py", "", "dir/", "x" * 300,
    "config.json", "archive/data.pkl",  # duplicates on purpose
)) | st.text(max_size=20)
MEMBER_DATA = st.sampled_from((b"", b"\x80\x02cos\nsystem\n.", b"3\n", b"PK\x03\x04",
                               b'{"a": [1, 2]}', bytes(64))) | st.binary(max_size=64)


@FUZZ
@given(st.lists(st.tuples(MEMBER_NAMES, MEMBER_DATA, st.booleans()), max_size=6))
def test_generated_zip_members_never_crash(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, deflate in members:
            info = zipfile.ZipInfo(name or "_")
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            zf.writestr(info, data)
    scan("model.pt", buf.getvalue())


@FUZZ
@given(st.lists(st.tuples(MEMBER_NAMES, MEMBER_DATA,
                          st.sampled_from((tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                           tarfile.DIRTYPE, tarfile.FIFOTYPE))), max_size=6))
def test_generated_tar_members_never_crash(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, kind in members:
            info = tarfile.TarInfo(name or "_")
            info.type = kind
            info.linkname = "../../etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) \
                else ""
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    scan("model.tar", buf.getvalue())


# ---- Jinja templates ---------------------------------------------------------------------

TEMPLATE_TOKENS = st.sampled_from((
    "{{", "}}", "{%", "%}", "{#", "#}", " for m in messages ", " endfor ", " if ", " endif ",
    " set x = ", "messages", ".__class__", ".__init__.__globals__", "|attr('__class__')",
    "['__subclasses__']()", "cycler", "lipsum", "range(10**9)", "'a' * 99", "(", ")", "[", "]",
    "raw", "endraw", " macro f() ", " endmacro ", "namespace(", "\n", "'", '"', "\\", "x",
))


@FUZZ
@given(st.lists(TEMPLATE_TOKENS, max_size=30).map("".join))
def test_generated_templates_never_crash(text):
    scan("chat_template.jinja", text.encode())
    config = json.dumps({"chat_template": text, "model_type": "llama"}).encode()
    scan("tokenizer_config.json", config)


# ---- protobuf (ONNX, SavedModel) ---------------------------------------------------------

@st.composite
def protobuf(draw: st.DrawFn, depth: int = 0) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        field = draw(st.integers(1, 20))
        wire = draw(st.sampled_from((0, 1, 2, 5, 3, 6)))
        key = varint(field << 3 | wire)
        if wire == 0:
            parts.append(key + varint(draw(st.integers(0, 2**64 - 1))))
        elif wire == 1:
            parts.append(key + draw(st.binary(min_size=8, max_size=8)))
        elif wire == 5:
            parts.append(key + draw(st.binary(min_size=4, max_size=4)))
        elif wire == 2:
            body = draw(protobuf(depth + 1)) if depth < 3 and draw(st.booleans()) else draw(
                st.binary(max_size=12))
            length = draw(st.sampled_from((len(body), len(body), len(body) + 5, 2**40)))
            parts.append(key + varint(length) + body)
        else:
            parts.append(key)
    return b"".join(parts)


@FUZZ
@given(protobuf(), st.sampled_from(("model.onnx", "saved_model.pb", "graph.pbtxt")))
def test_generated_protobuf_never_crashes(data, name):
    scan(name, data)


# ---- policies (YAML + CEL) ---------------------------------------------------------------

CEL_TOKENS = st.sampled_from((
    "model.", "file.", "finding.", "severity", "coverage", "name", " == ", " != ", " && ",
    " || ", "!", " in ", "[", "]", "(", ")", '"high"', "1", "size(", "exists(x, ", "x", ".",
    "has(", "matches(", "'[a-'", "true", "}", "{", ":", ",", "-", "1/0", "9" * 30,
))
YAML_EXTRA = st.sampled_from((
    "", "\n  - *a", "\nrules: !!python/object/apply:os.system ['x']", "\n- [", "\n\t", "\n:",
    "\nwaivers:\n  - rule: BASE-001\n    expires: 2020-13-45", "\n&a x: *a",
))


@FUZZ
@given(st.lists(CEL_TOKENS, max_size=14).map("".join),
       st.sampled_from(("deny", "require", "allow")), st.sampled_from(("model", "file",
                                                                       "finding", "x")),
       YAML_EXTRA)
def test_generated_policies_load_or_fail_with_a_config_error(tmp_path_factory, expr, verb,
                                                              scope, extra):
    path = tmp_path_factory.mktemp("policy") / "p.yaml"
    path.write_text(f"policy: fuzz\nrules:\n  - id: F-001\n    scope: {scope}\n"
                    f"    severity: high\n    {verb}: {json.dumps(expr)}\n"
                    f"    message: m{extra}\n")
    try:
        policies = load_policies([path])
    except AuditorError:
        return
    sbom = json.loads((ROOT / "sboms" / "with-findings.cdx.json").read_text())
    evaluate(policies, models_from_sbom(sbom, "bom"), sbom="bom",
             today=datetime.date(2026, 1, 1))


@pytest.mark.parametrize("value", ["2020-13-45", "2020-02-30", "99999-01-01"])
def test_an_impossible_date_in_a_policy_is_a_config_error_naming_the_line(tmp_path, value):
    """Found by the property above: PyYAML's date constructor raised ValueError."""
    path = tmp_path / "p.yaml"
    path.write_text("policy: x\nrules:\n  - id: F-001\n    scope: model\n    severity: high\n"
                    "    deny: 'false'\n    message: m\nwaivers:\n  - rule: F-001\n"
                    f"    model: a\n    reason: r\n    approver: b\n    expires: {value}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:13:\d+: expires must be a date"):
        load_policies([path])


# ---- OMS bundles -------------------------------------------------------------------------

def _bundle_doc(draw: st.DrawFn) -> object:
    payload = json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": draw(st.lists(st.fixed_dictionaries({
            "name": st.text(max_size=8) | st.none(),
            "digest": st.dictionaries(st.sampled_from(("sha256", "x")), st.text(max_size=8),
                                      max_size=2)}), max_size=3)),
        "predicateType": draw(st.sampled_from(("https://model_signing/signature/v1.0", "x"))),
        "predicate": draw(JSON),
    }).encode()
    import base64

    return {
        "mediaType": draw(st.sampled_from((
            "application/vnd.dev.sigstore.bundle.v0.3+json", "x"))),
        "verificationMaterial": draw(st.sampled_from((
            {"publicKey": {"hint": "k"}}, {"certificate": {"rawBytes": "AAAA"}},
            {"x509CertificateChain": {"certificates": []}}, {}, None))),
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode() if draw(st.booleans()) else "!",
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "AAAA"}] if draw(st.booleans()) else [],
        },
    }


@FUZZ
@given(st.data())
def test_generated_oms_bundles_parse_or_fail_with_their_own_errors(data):
    doc = _bundle_doc(data.draw)
    raw = json.dumps(doc).encode()
    if data.draw(st.booleans()):
        raw = data.draw(mutated([raw]))
    try:
        bundle = dsse.parse_bundle(raw)
    except dsse.BundleError:
        return
    with contextlib.suppress(oms.StatementError):
        oms.parse_statement(bundle.payload)


# ---- CycloneDX input to `policy check` ---------------------------------------------------

def _mutate_json(draw: st.DrawFn, value: object, depth: int = 0) -> object:
    """Replace, drop or retype parts of a real SBOM."""
    if depth > 6 or draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if draw(st.integers(0, 7)) == 0:
                continue
            out[k] = _mutate_json(draw, v, depth + 1) if draw(st.booleans()) else v
        return out
    if isinstance(value, list):
        return [_mutate_json(draw, v, depth + 1) for v in value[:4]]
    return value


@FUZZ
@given(st.data(), st.sampled_from(("tiny-model.cdx.json", "with-findings.cdx.json",
                                   "merged-model.cdx.json")))
def test_mutated_cyclonedx_documents_are_judged_or_refused(data, name):
    doc = _mutate_json(data.draw, json.loads((ROOT / "sboms" / name).read_text()))
    policies = load_policies([ROOT / "policies" / "baseline.yaml"])
    try:
        models = models_from_sbom(doc, "bom")
    except AuditorError:
        return
    evaluate(policies, models, sbom="bom", today=datetime.date(2026, 1, 1))
