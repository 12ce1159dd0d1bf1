"""The other files real repositories carry: SentencePiece tokenizer.model and Flax .msgpack.

A normal Llama/Mistral/Gemma repository must scan without an unknown-binary
finding; each malformed or hostile variant raises its own rule.
"""

from __future__ import annotations

import json
import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.scanning.options import ScanOptions
from tests.builders import safetensors_bytes, varint, write_tiny_model
from tests.test_gguf import dispatch_bytes, mutations

msgpack = pytest.importorskip("msgpack")


# -- a hand-written protobuf encoder for SentencePiece ModelProto ----------------------------

def field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)  # type: ignore[arg-type]
    if wire == 2:
        return key + varint(len(payload)) + payload  # type: ignore[arg-type]
    return key + payload  # type: ignore[operator]


def piece(text: bytes | str, score: float = 0.0, kind: int | None = None) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    body = field(1, 2, raw) + field(2, 5, struct.pack("<f", score))
    if kind is not None:
        body += field(3, 0, kind)
    return field(1, 2, body)


def sentencepiece_model(pieces: list[bytes] | None = None, extra: bytes = b"") -> bytes:
    if pieces is None:
        pieces = [piece("<unk>", 0, 2), piece("<s>", 0, 3), piece("</s>", 0, 3)]
        pieces += [piece(f"<0x{i:02X}>", 0, 6) for i in range(4)]
        pieces += [piece(t, -float(i)) for i, t in enumerate(["▁the", "▁a", "s", "é"])]
    trainer = field(3, 0, 2) + field(4, 0, len(pieces)) + field(35, 0, 1)
    normalizer = field(1, 2, b"identity") + field(3, 0, 1)
    return (b"".join(pieces) + field(2, 2, trainer) + field(3, 2, normalizer)
            + field(5, 2, normalizer) + extra)


def flax_checkpoint(**tensors: tuple[str, tuple[int, ...], bytes]) -> bytes:
    """What flax.serialization.to_bytes writes: nested maps, ndarrays as ext type 1."""
    def ext(dtype: str, shape: tuple[int, ...], buf: bytes) -> object:
        return msgpack.ExtType(1, msgpack.packb((shape, dtype, buf), use_bin_type=True))

    params = {name: ext(*spec) for name, spec in tensors.items()}
    return msgpack.packb({"params": {"dense": params}, "step": 3}, use_bin_type=True)


def scan_one(tmp_path: Path, name: str, data: bytes, **limits: int) -> object:
    path = tmp_path / name
    path.write_bytes(data)
    return pipeline.scan(path, ScanOptions(jobs=1)).models[0].files[0]


def rules_of(report: object) -> set[str]:
    return {f.rule for f in report.findings}  # type: ignore[attr-defined]


# -- SentencePiece -------------------------------------------------------------------------------

def test_sentencepiece_model_is_recognised_clean_with_facts(tmp_path):
    report = scan_one(tmp_path, "tokenizer.model", sentencepiece_model())
    assert report.format == "sentencepiece"
    assert report.findings == ()
    assert report.facts["pieces"] == 11
    assert report.facts["model_type"] == "bpe"
    assert report.facts["vocab_size"] == 11
    assert report.facts["byte_fallback"] is True
    assert report.facts["normalizer"] == "identity"
    assert report.facts["piece_types"] == {"byte": 4, "control": 2, "normal": 4, "unknown": 1}


def test_tiktoken_text_vocabulary_named_tokenizer_model_is_not_a_lie(tmp_path):
    report = scan_one(tmp_path, "tokenizer.model", b"IQ== 0\nIg== 1\nIw== 2\n")
    assert report.format == "tiktoken"
    assert rules_of(report) == set()
    assert report.facts["ranks"] == 3 and report.facts["vocab"]["size"] == 3


SP_VARIANTS = {
    "truncated": (sentencepiece_model()[:-5], "AUD-TOK-002"),
    "length_past_end": (sentencepiece_model(extra=b"\x12\xff\xff\xff\xff\x0f"), "AUD-TOK-002"),
    "group_wire_type": (sentencepiece_model(extra=b"\x13"), "AUD-TOK-001"),
    "empty_piece": (sentencepiece_model([piece("<unk>", 0, 2), piece(b"")]), "AUD-TOK-001"),
    "duplicate_piece": (sentencepiece_model([piece("a"), piece("a")]), "AUD-TOK-001"),
    "piece_not_utf8": (sentencepiece_model([piece("a"), piece(b"\xff\xfe")]), "AUD-TOK-001"),
    "unknown_piece_type": (sentencepiece_model([piece("a"), piece("b", 0, 9)]), "AUD-TOK-001"),
    "unknown_top_field": (sentencepiece_model(extra=field(99, 2, b"\x00" * 64)), "AUD-TOK-003"),
}


@pytest.mark.parametrize("variant", sorted(SP_VARIANTS))
def test_sentencepiece_variant_raises_its_own_rule(tmp_path, variant):
    data, rule = SP_VARIANTS[variant]
    report = scan_one(tmp_path, "tokenizer.model", data)
    assert report.format == "sentencepiece"
    assert rule in rules_of(report), report.findings


def test_large_vocabulary_scans_quickly(tmp_path):
    pieces = [piece("<unk>", 0, 2)] + [piece(f"tok{i}", -i / 1000) for i in range(260_000)]
    started = time.perf_counter()
    report = scan_one(tmp_path, "tokenizer.model", sentencepiece_model(pieces))
    assert report.findings == () and report.facts["pieces"] == 260_001
    assert time.perf_counter() - started < 10


# -- Flax msgpack --------------------------------------------------------------------------------

def test_flax_checkpoint_is_clean_with_facts(tmp_path):
    data = flax_checkpoint(kernel=("float32", (4, 8), bytes(128)),
                           bias=("bfloat16", (8,), bytes(16)))
    report = scan_one(tmp_path, "flax_model.msgpack", data)
    assert report.format == "msgpack"
    assert report.findings == ()
    assert report.facts == {"tensors": 2, "parameters": 40, "dtypes": ["bfloat16", "float32"]}


def test_pickle_is_not_mistaken_for_msgpack(tmp_path):
    import pickle

    report = scan_one(tmp_path, "data.bin", pickle.dumps({"a": 1}, protocol=4))
    assert report.format != "msgpack"


def _ext(code: int, payload: bytes) -> bytes:
    return msgpack.packb({"w": msgpack.ExtType(code, payload)}, use_bin_type=True)


MSGP_VARIANTS = {
    "invalid_marker": (b"\x81\xa1w\xc1", "AUD-MSGP-001"),
    "trailing_bytes": (flax_checkpoint(k=("uint8", (2,), b"ab")) + b"\x00hidden", "AUD-MSGP-001"),
    "key_not_utf8": (b"\x81\xa2\xff\xfe\x01", "AUD-MSGP-001"),
    "str_past_end": (b"\x81\xa1w\xdb\xff\xff\xff\xff", "AUD-MSGP-002"),
    "array_count_huge": (b"\x81\xa1w\xdd\x3b\x9a\xca\x00" + b"\x00" * 32, "AUD-MSGP-002"),
    "bin_2_32": (b"\x81\xa1w\xc6\xff\xff\xff\xff" + b"\x00" * 8, "AUD-MSGP-002"),
    "deep_nesting": (b"\x81\xa1w" + b"\x91" * 200 + b"\x00", "AUD-MSGP-002"),
    "unknown_ext": (_ext(42, b"payload"), "AUD-MSGP-003"),
    "size_mismatch": (flax_checkpoint(k=("float32", (4, 8), bytes(100))), "AUD-MSGP-004"),
    "object_dtype": (flax_checkpoint(k=("object", (2,), bytes(16))), "AUD-MSGP-004"),
    "ext_length_lies": (_ext(1, msgpack.packb(((2,), "uint8", b"ab"), use_bin_type=True)
                             + b"\x00"), "AUD-MSGP-001"),
}


@pytest.mark.parametrize("variant", sorted(MSGP_VARIANTS))
def test_msgpack_variant_raises_its_own_rule(tmp_path, variant):
    data, rule = MSGP_VARIANTS[variant]
    report = scan_one(tmp_path, "flax_model.msgpack", data)
    assert report.format == "msgpack"
    assert rule in rules_of(report), report.findings


@pytest.mark.parametrize("variant", ["str_past_end", "array_count_huge", "bin_2_32"])
def test_hostile_msgpack_sizes_are_refused_without_allocating(tmp_path, variant):
    path = tmp_path / "flax_model.msgpack"
    path.write_bytes(MSGP_VARIANTS[variant][0])
    tracemalloc.start()
    try:
        report = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert report.coverage.value == "error"


# -- a whole repository ------------------------------------------------------------------------

def test_llama_style_repository_has_no_unknown_binaries(tmp_path, run_cli):
    folder = write_tiny_model(tmp_path / "repo")
    (folder / "tokenizer.model").write_bytes(sentencepiece_model())
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": "<s>", "chat_template": template}))
    (folder / "chat_template.jinja").write_text("{{ bos_token }}{{ messages[-1]['content'] }}")
    (folder / "flax_model.msgpack").write_bytes(flax_checkpoint(k=("float32", (2, 2), bytes(16))))
    (folder / "model-00001-of-00001.bin").write_bytes(
        safetensors_bytes({"w": ("F32", [2, 2])}))
    run = run_cli("scan", folder, "--format", "json")
    assert run.code == 0, run.out
    files = {f["path"]: f for f in json.loads(run.out)["models"][0]["files"]}
    assert files["tokenizer.model"]["format"] == "sentencepiece"
    assert files["flax_model.msgpack"]["format"] == "msgpack"
    assert files["chat_template.jinja"]["format"] == "jinja"
    assert files["model-00001-of-00001.bin"]["format"] == "safetensors"
    for f in files.values():
        assert all(x["rule"] != "AUD-SCAN-003" for x in f["findings"]), f["path"]


@pytest.mark.parametrize("name", ["tokenizer.model", "flax_model.msgpack"])
def test_corrupted_files_never_crash_the_parser(name):
    seed = (sentencepiece_model() if name == "tokenizer.model"
            else flax_checkpoint(k=("float32", (2, 2), bytes(16))))
    for data in mutations(seed, seed=3, count=400):
        result = dispatch_bytes(name, data)
        assert "AUD-SCAN-007" not in {f.rule for f in result.findings}, data.hex()


def test_msgpack_value_budget_is_a_limit(tmp_path, monkeypatch):
    from auditor.formats.weights import msgpack as mod

    monkeypatch.setattr(mod, "MAX_VALUES", 100)
    data = msgpack.packb({"params": list(range(200))}, use_bin_type=True)
    report = scan_one(tmp_path, "flax_model.msgpack", data)
    assert rules_of(report) == {"AUD-SCAN-002"} and report.coverage.value == "partial"
