"""GGUF: writer-made files are clean; every malformed or hostile variant raises its own rule."""

from __future__ import annotations

import json
import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.formats._lib.limits import Limits
from auditor.formats.weights import gguf as mod
from auditor.scanning.options import ScanOptions

U8, BOOL, U32, STRING, ARRAY, U64 = 0, 7, 4, 8, 9, 10
F32, Q8_0 = 0, 8


# -- a hand-written GGUF writer, so that every field can be made wrong -----------------------

class Gguf:
    """Build GGUF bytes field by field (version, byte order, counts, values, tensors)."""

    def __init__(self, version: int = 3, order: str = "<", alignment: int = 32) -> None:
        self.version, self.order, self.alignment = version, order, alignment
        self.kvs: list[bytes] = []
        self.infos: list[bytes] = []
        self.data = b""
        self.kv_count: int | None = None
        self.tensor_count: int | None = None

    def p(self, code: str, *values: object) -> bytes:
        return struct.pack(self.order + code, *values)

    def length(self, n: int) -> bytes:
        return self.p("Q" if self.version >= 2 else "I", n)

    def string(self, text: str | bytes) -> bytes:
        raw = text.encode() if isinstance(text, str) else text
        return self.length(len(raw)) + raw

    def value(self, vtype: int, value: object) -> bytes:
        if vtype == STRING:
            return self.string(value)  # type: ignore[arg-type]
        if vtype == ARRAY:
            etype, items = value  # type: ignore[misc]
            return self.p("I", etype) + self.length(len(items)) + b"".join(
                self.value(etype, i) for i in items)
        return self.p(mod.SCALARS[vtype], value)

    def kv(self, key: str | bytes, vtype: int, value: object) -> Gguf:
        self.kvs.append(self.string(key) + self.p("I", vtype) + self.value(vtype, value))
        return self

    def raw_kv(self, raw: bytes) -> Gguf:
        self.kvs.append(raw)
        return self

    def tensor(self, name: str, dims: list[int], ggml: int = F32, offset: int | None = None,
               nbytes: int | None = None) -> Gguf:
        if nbytes is None:
            _, block, size = mod.GGML_TYPES[ggml]
            count = 1
            for d in dims:
                count *= d
            nbytes = count // block * size
        if offset is None:
            offset = len(self.data)
        dim = "Q" if self.version >= 2 else "I"
        self.infos.append(self.string(name) + self.p("I", len(dims))
                          + b"".join(self.p(dim, d) for d in dims)
                          + self.p("I", ggml) + self.p("Q", offset))
        end = offset + nbytes
        if end > len(self.data):
            self.data += bytes(end - len(self.data))
        self.data += bytes(-len(self.data) % self.alignment)
        return self

    def build(self, trailing: bytes = b"") -> bytes:
        counts = (self.tensor_count if self.tensor_count is not None else len(self.infos),
                  self.kv_count if self.kv_count is not None else len(self.kvs))
        head = b"GGUF" + self.p("I", self.version) + b"".join(self.length(c) for c in counts)
        head += b"".join(self.kvs) + b"".join(self.infos)
        if self.infos:
            head += bytes(-len(head) % self.alignment)
        return head + self.data + trailing


def scan_bytes(tmp_path: Path, data: bytes, name: str = "model.gguf", **limits: int) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    options = ScanOptions(jobs=1, limits=Limits(**limits))
    report = pipeline.scan(path, options).models[0].files[0]
    return {"format": report.format, "coverage": report.coverage.value,
            "rules": sorted({f.rule for f in report.findings}), "findings": report.findings,
            "facts": report.facts}


def writer_file(path: Path, **kw: object) -> Path:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_organization("example-org")
    w.add_license("apache-2.0")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_base_model_count(1)
    w.add_base_model_name(0, "Tiny Base")
    w.add_base_model_organization(0, "example-org")
    w.add_base_model_repo_url(0, "https://huggingface.co/example-org/tiny-base")
    w.add_chat_template(kw.get("template", "{% for m in messages %}<|{{ m['role'] }}|>"
                                           "{{ m['content'] | trim }}{% endfor %}"))
    w.add_token_list(["<unk>", "<s>", "</s>", "a", "b"])
    w.add_array("example.nested", [[1, 2], [3]])
    if "alignment" in kw:
        w.add_custom_alignment(kw["alignment"])  # type: ignore[arg-type]
    w.add_tensor("token_embd.weight", np.ones((5, 8), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones((8,), dtype=np.float16))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((2, 34), dtype=np.uint8),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# -- clean files -------------------------------------------------------------------------------

def test_writer_made_file_is_clean_with_facts(tmp_path):
    result = scan_bytes(tmp_path, writer_file(tmp_path / "w.gguf").read_bytes())
    assert result["format"] == "gguf"
    assert result["coverage"] == "scanned"
    assert result["rules"] == []
    facts = result["facts"]
    assert facts["architecture"] == "llama"
    assert facts["name"] == "tiny-llama"
    assert facts["organization"] == "example-org"
    assert facts["license"] == "apache-2.0"
    assert facts["quantization"] == "Q8_0" and facts["file_type"] == 7
    assert facts["tensors"] == 3
    assert facts["parameters"] == 5 * 8 + 8 + 2 * 32
    assert facts["dtypes"] == ["F16", "F32", "Q8_0"]
    assert facts["base_models"] == [{"name": "Tiny Base", "organization": "example-org",
                                     "repo_url": "https://huggingface.co/example-org/tiny-base"}]
    assert facts["has_chat_template"] is True and facts["chat_templates"] == ["default"]


def test_writer_made_file_with_custom_alignment_and_named_templates_is_clean(tmp_path):
    named = [{"name": "default", "template": "{{ messages[0]['content'] }}"},
             {"name": "tool_use", "template": "{{ tools | tojson }}"}]
    path = writer_file(tmp_path / "w.gguf", alignment=64, template=named)
    result = scan_bytes(tmp_path, path.read_bytes())
    assert result["rules"] == []
    assert sorted(result["facts"]["chat_templates"]) == ["default", "tool_use"]


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("order", ["<", ">"])
def test_hand_built_versions_and_byte_orders_are_clean(tmp_path, version, order):
    g = Gguf(version=version, order=order)
    g.kv("general.architecture", STRING, "llama").kv("flag", BOOL, 1)
    g.kv("tokens", ARRAY, (STRING, ["a", "bb"])).kv("nested", ARRAY, (ARRAY, [(U8, [1, 2])]))
    g.tensor("a", [32, 2], Q8_0).tensor("b", [4])
    result = scan_bytes(tmp_path, g.build())
    assert result["rules"] == [], result["findings"]
    assert result["facts"]["gguf_version"] == version
    assert result["facts"]["parameters"] == 68


def test_bin_file_holding_gguf_is_recognised_without_extension_finding(tmp_path):
    result = scan_bytes(tmp_path, writer_file(tmp_path / "w.gguf").read_bytes(), "model.bin")
    assert result["format"] == "gguf" and result["rules"] == []


def test_tables_match_the_reference_writer():
    from gguf.constants import GGML_QUANT_SIZES, LlamaFileType

    assert {t.value: (t.name, *sizes) for t, sizes in GGML_QUANT_SIZES.items()} == mod.GGML_TYPES
    expected = {t.value: t.name.removeprefix("MOSTLY_").removeprefix("ALL_")
                for t in LlamaFileType if t.name != "GUESSED"}
    assert expected == mod.FILE_TYPES


# -- malformed and hostile variants: one rule each -----------------------------------------

def _base() -> Gguf:
    return Gguf().kv("general.architecture", STRING, "llama")


def _hostile_count() -> bytes:
    g = _base()
    g.tensor_count = 10**9
    return g.build()


def _raw_header(*fields: bytes) -> bytes:
    return b"GGUF" + struct.pack("<I", 3) + b"".join(fields)


VARIANTS = {
    "bad_version": (b"GGUF" + struct.pack("<IQQ", 7, 0, 0), "AUD-GGUF-001"),
    "truncated": (_base().build()[:-3], "AUD-GGUF-002"),
    "tensor_count_1e9": (_hostile_count(), "AUD-GGUF-002"),
    "string_len_2_63": (_raw_header(struct.pack("<QQQ", 0, 1, 2**63)) + b"x" * 64,
                        "AUD-GGUF-002"),
    "string_len_1gb": (_raw_header(struct.pack("<QQQ", 0, 1, 2**30)) + b"x" * 64, "AUD-GGUF-002"),
    "array_len_1e9": (_base().raw_kv(Gguf().string("a") + struct.pack("<IIQ", ARRAY, U32, 10**9))
                      .build(), "AUD-GGUF-002"),
    "nesting": (_base().kv("deep", ARRAY, (ARRAY, [(ARRAY, [(ARRAY, [(ARRAY, [(ARRAY, [
        (U8, [1])])])])])])).build(), "AUD-GGUF-003"),
    "unknown_value_type": (_base().raw_kv(Gguf().string("k") + struct.pack("<IQ", 13, 0))
                           .build(), "AUD-GGUF-004"),
    "bool_not_0_or_1": (_base().kv("flag", BOOL, 2).build(), "AUD-GGUF-004"),
    "key_not_utf8": (_base().kv(b"bad\xff", U8, 1).build(), "AUD-GGUF-004"),
    "duplicate_key": (_base().kv("general.architecture", STRING, "gpt2").build(), "AUD-GGUF-005"),
    "duplicate_tensor": (_base().tensor("t", [4]).tensor("t", [4]).build(), "AUD-GGUF-005"),
    "unknown_ggml_type": (_base().tensor("t", [4], ggml=4, nbytes=16).build(), "AUD-GGUF-006"),
    "five_dims": (_base().tensor("t", [1, 1, 1, 1, 1]).build(), "AUD-GGUF-006"),
    "partial_block": (_base().tensor("t", [33, 1], ggml=Q8_0, nbytes=68).build(),
                      "AUD-GGUF-006"),
    "long_name": (_base().tensor("n" * 80, [4]).build(), "AUD-GGUF-006"),
    "misaligned": (_base().tensor("t", [4], offset=4).build(), "AUD-GGUF-007"),
    "past_the_end": (_base().tensor("t", [4]).tensor("u", [4], offset=4096, nbytes=0).build(),
                     "AUD-GGUF-007"),
    "overlap": (_base().tensor("t", [16]).tensor("u", [4], offset=32).build(), "AUD-GGUF-007"),
    "gap": (_base().tensor("t", [4]).tensor("u", [4], offset=128).build(), "AUD-GGUF-007"),
    "trailing": (_base().tensor("t", [4]).build(trailing=b"\x90" * 64), "AUD-GGUF-007"),
    "non_zero_padding": (_base().tensor("t", [4]).build()[:-16] + b"hidden-payload!!",
                         "AUD-GGUF-007"),
    "alignment_zero": (_base().kv("general.alignment", U32, 0).tensor("t", [8]).build(),
                       "AUD-GGUF-008"),
    "alignment_not_power_of_two": (_base().kv("general.alignment", U32, 48).tensor("t", [8])
                                   .build(), "AUD-GGUF-008"),
    "alignment_wrong_type": (_base().kv("general.alignment", U64, 32).tensor("t", [8]).build(),
                             "AUD-GGUF-008"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_malformed_variant_raises_its_own_rule(tmp_path, variant):
    data, rule = VARIANTS[variant]
    result = scan_bytes(tmp_path, data)
    assert result["format"] == "gguf"
    assert rule in result["rules"], result["findings"]
    assert all(f.file == "model.gguf" for f in result["findings"])


def test_limits_on_counts_and_strings_are_findings_of_their_own(tmp_path):
    g = _base().kv("tokens", ARRAY, (STRING, ["t"] * 50))
    result = scan_bytes(tmp_path, g.build(), max_elements=10)
    assert result["rules"] == ["AUD-GGUF-003"] and result["coverage"] == "partial"
    result = scan_bytes(tmp_path, _base().kv("s", STRING, "x" * 100).build(),
                        max_string_bytes=64)
    assert result["rules"] == ["AUD-GGUF-003"]
    result = scan_bytes(tmp_path, _base().kv("s", STRING, "x" * 100).build(),
                        max_header_bytes=80)
    assert result["rules"] == ["AUD-GGUF-003"]


@pytest.mark.parametrize("variant", ["tensor_count_1e9", "string_len_2_63", "string_len_1gb",
                                     "array_len_1e9"])
def test_hostile_sizes_are_refused_fast_without_allocating(tmp_path, variant):
    data, _ = VARIANTS[variant]
    path = tmp_path / "hostile.gguf"
    path.write_bytes(data)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        report = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2
    assert peak < 4 * 1024 * 1024, peak
    assert report.findings[0].rule == "AUD-GGUF-002"
    assert report.coverage.value == "error"


# -- chat templates inside GGUF ----------------------------------------------------------------

def test_injected_chat_template_is_reported_at_the_gguf_file_and_never_run(tmp_path, run_cli):
    canary = tmp_path / "canary"
    payload = ("{{ cycler.__init__.__globals__.os.popen('touch " + str(canary) + "').read() }}")
    g = _base().kv("tokenizer.chat_template", STRING, payload)
    g.kv("tokenizer.chat_template.rag", STRING, "{{ x['__cl' ~ 'ass__'] }}")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.gguf").write_bytes(g.build())
    run = run_cli("scan", tmp_path / "m", "--format", "json")
    assert run.code == 1
    doc = json.loads(run.out)
    findings = doc["models"][0]["files"][0]["findings"]
    rules = {f["rule"] for f in findings}
    assert {"AUD-TPL-001", "AUD-TPL-002"} <= rules
    assert any("tokenizer.chat_template.rag" in f["detail"] for f in findings)
    assert not canary.exists()


def test_model_facts_gather_gguf_quantizations_and_chat_templates(tmp_path):
    import gguf

    folder = tmp_path / "repo"
    folder.mkdir()
    writer_file(folder / "tiny-Q8_0.gguf")
    g = _base().kv("general.file_type", U32, int(gguf.LlamaFileType.MOSTLY_Q4_K_M))
    (folder / "tiny-Q4_K_M.gguf").write_bytes(g.build())
    model = pipeline.scan(folder, ScanOptions(jobs=1)).models[0]
    assert model.facts["gguf"] == {
        "architectures": ["llama"], "quantizations": ["Q4_K_M", "Q8_0"],
        "base_models": [{"name": "Tiny Base", "organization": "example-org",
                         "repo_url": "https://huggingface.co/example-org/tiny-base"}]}
    assert model.facts["chat_templates"] == ["tiny-Q8_0.gguf"]
    assert model.facts["formats"] == ["gguf"]


def mutations(data: bytes, seed: int, count: int):
    """Deterministic corruptions of `data`: flipped bytes, truncations, insertions."""
    import random

    rng = random.Random(seed)
    for _ in range(count):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if not b:
                break
            op = rng.random()
            if op < 0.6:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif op < 0.8:
                del b[rng.randrange(len(b)):]
            else:
                pos = rng.randrange(len(b))
                b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
        yield bytes(b)


def dispatch_bytes(name: str, data: bytes):
    import io

    from auditor.formats.contract import FormatOptions, ScanContext
    from auditor.scanning.engine import dispatch

    ctx = ScanContext(file=name, name=name, size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    return dispatch(io.BytesIO(data), ctx)


def test_corrupted_files_never_crash_the_parser():
    g = _base().kv("tokenizer.chat_template", STRING, "{{ messages[0]['content'] }}")
    g.kv("tokens", ARRAY, (STRING, ["a", "b"])).tensor("a", [32, 2], Q8_0).tensor("b", [4])
    for data in mutations(g.build(), seed=1, count=400):
        result = dispatch_bytes("model.gguf", data)
        assert "AUD-SCAN-007" not in {f.rule for f in result.findings}, data.hex()


def test_tensor_and_key_counts_beyond_any_real_model_are_limits(tmp_path):
    g = _base()
    g.tensor_count = mod.MAX_TENSORS + 1
    result = scan_bytes(tmp_path, g.build() + bytes(24 * (mod.MAX_TENSORS + 1)))
    assert result["rules"] == ["AUD-GGUF-003"] and result["coverage"] == "partial"


def test_large_file_is_read_about_once_and_the_digest_is_the_files(tmp_path):
    import hashlib

    path = tmp_path / "big.gguf"
    path.write_bytes(_base().kv("tokens", ARRAY, (STRING, ["t"] * 10_000))
                     .tensor("w", [4, 1 << 20]).build())
    result = pipeline.scan(path, ScanOptions(jobs=1))
    report = result.models[0].files[0]
    assert report.findings == ()
    # the header is re-read once after sniffing; the 16 MiB data area only once
    assert result.bytes_read < path.stat().st_size + (1 << 20)
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
