"""The tokenizer fingerprint: one digest for one vocabulary, whatever format carries it.

The same vocabulary is written as tokenizer.json (small and streamed),
GGUF (the `gguf` package's writer), SentencePiece tokenizer.model (protobuf by
hand) and tiktoken; every reader must give the same digest, and the sketch
must tell a fine-tune's vocabulary from an unrelated one.
"""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path

import pytest

from auditor.errors import FormatError
from auditor.fingerprint.tokenizer import TokenizerPrint, similarity
from auditor.formats._lib import vocab
from auditor.formats._lib.jsonstream import scan_json
from auditor.formats.code import json_config
from auditor.formats.contract import FormatOptions, ScanContext
from auditor.model import FormatId
from auditor.scanning.engine import dispatch
from tests.test_tokenizer_files import piece, sentencepiece_model


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's bytes_to_unicode, written out here independently of the code under test."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
          *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


ALPHABET = _byte_alphabet()


def byte_level(token: bytes) -> str:
    return "".join(ALPHABET[b] for b in token)


def random_tokens(n: int, seed: int, alphabet: bytes = b"abcdefghijklmnopqrstuvwxyz ") -> list[
        bytes]:
    """256 single bytes, then n-256 distinct multi-byte tokens (some non-ASCII)."""
    rng = random.Random(seed)
    out = [bytes([b]) for b in range(256)]
    seen = set(out)
    while len(out) < n:
        word = bytes(rng.choice(alphabet) for _ in range(rng.randint(2, 9)))
        if rng.random() < 0.1:
            word += "é中".encode()[: rng.randint(2, 5)]
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def scan(name: str, data: bytes) -> dict:
    ctx = ScanContext(file=name, name=name, size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    result = dispatch(io.BytesIO(data), ctx)
    assert result.coverage == "scanned", (name, result.findings)
    return result.facts


def tokenizer_json(tokens: list[bytes], added: tuple[str, ...] = (), *, indent: int | None = None,
                   merges: int = 10) -> bytes:
    vocab_map = {byte_level(t): i for i, t in enumerate(tokens)}
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": len(tokens) + i, "content": a, "special": True}
                         for i, a in enumerate(added)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\s+"}}, {"type": "ByteLevel"}]},
        "post_processor": {"type": "ByteLevel", "trim_offsets": False},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab_map,
                  "merges": [["a", "b"]] * merges},
    }
    return json.dumps(doc, indent=indent, ensure_ascii=False).encode()


def gguf_bytes(tmp_path: Path, tokens: list[str], model: str, bos: int | None = None) -> bytes:
    import gguf
    import numpy as np

    path = tmp_path / f"{model}.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model(model)
    w.add_token_list(tokens)
    if bos is not None:
        w.add_bos_token_id(bos)
    w.add_tensor("output_norm.weight", np.ones((8,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def tiktoken_file(tokens: list[bytes]) -> bytes:
    return b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(tokens))


# -- the same vocabulary in every format ----------------------------------------------------------

def test_byte_level_vocabulary_has_one_digest_in_tokenizer_json_gguf_and_tiktoken(tmp_path):
    tokens = random_tokens(3000, seed=1)
    added = ("<|endoftext|>", "<|im start|>")  # one with a space: added tokens are plain text
    small = scan("tokenizer.json", tokenizer_json(tokens, added))["vocab"]
    as_gguf = scan("model.gguf", gguf_bytes(
        tmp_path, [byte_level(t) for t in tokens] + list(added) + ["[PAD3002]", "[PAD3003]"],
        "gpt2", bos=3000))["vocab"]
    assert small["kind"] == as_gguf["kind"] == "bpe"
    assert small["size"] == as_gguf["size"] == 3002
    assert small["digest"] == as_gguf["digest"]  # the converter's [PADn] filler is not a token
    assert as_gguf["specials"]["bos"] == "<|endoftext|>"
    assert as_gguf["specials"]["bos_id"] == 3000
    bare = scan("tokenizer.json", tokenizer_json(tokens))["vocab"]
    ranks = scan("cl100k_base.tiktoken", tiktoken_file(tokens))
    assert ranks["vocab"]["kind"] == "tiktoken"
    assert ranks["vocab"]["digest"] == bare["digest"]
    a, b = TokenizerPrint.from_facts(small), TokenizerPrint.from_facts(bare)
    assert a is not None and b is not None
    assert similarity(a, TokenizerPrint.from_facts(as_gguf)) == 1.0  # type: ignore[arg-type]
    assert 0.99 < similarity(a, b) < 1.0


def test_streamed_tokenizer_json_gives_the_same_facts_as_the_parsed_one():
    tokens = random_tokens(3000, seed=2)
    small = tokenizer_json(tokens, ("<s>",))
    # the same document padded past the streaming threshold with merges
    big = tokenizer_json(tokens, ("<s>",), indent=1,
                         merges=json_config.FULL_PARSE_BYTES // 20)
    assert len(big) > json_config.FULL_PARSE_BYTES
    assert scan("tokenizer.json", small)["vocab"] == scan("tokenizer.json", big)["vocab"]


def test_sentencepiece_vocabulary_has_one_digest_in_tokenizer_model_json_and_gguf(tmp_path):
    words = [t.decode("utf-8", "replace").replace(" ", "▁") for t in random_tokens(2000, 3)[256:]]
    pieces = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *words]
    model = sentencepiece_model([piece(p, -float(i)) for i, p in enumerate(pieces)])
    from_model = scan("tokenizer.model", model)["vocab"]
    doc = {"added_tokens": [{"id": 1, "content": "<s>", "special": True}],
           "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"},
           "post_processor": {"type": "TemplateProcessing", "single": [
               {"SpecialToken": {"id": "<s>", "type_id": 0}},
               {"Sequence": {"id": "A", "type_id": 0}}]},
           "decoder": {"type": "Sequence", "decoders": [
               {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
               {"type": "ByteFallback"}, {"type": "Fuse"}]},
           "model": {"type": "BPE", "byte_fallback": True,
                     "vocab": {p: i for i, p in enumerate(pieces)}, "merges": []}}
    from_json = scan("tokenizer.json", json.dumps(doc).encode())["vocab"]
    from_gguf = scan("model.gguf", gguf_bytes(tmp_path, pieces, "llama", bos=1))["vocab"]
    assert from_model["kind"] == from_json["kind"] == from_gguf["kind"] == "spm"
    assert from_model["digest"] == from_json["digest"] == from_gguf["digest"]
    assert from_json["specials"] == {"bos": "<s>", "eos": None, "bos_id": 1, "eos_id": None}
    assert from_gguf["specials"]["bos"] == "<s>"


def test_tokenizer_config_names_its_special_tokens():
    doc = {"bos_token": "<|begin_of_text|>",
           "eos_token": {"__type": "AddedToken", "content": "<|eot_id|>", "special": True}}
    facts = scan("tokenizer_config.json", json.dumps(doc).encode())
    assert facts["specials"] == {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"}


def test_facts_are_for_tokenizer_files_only():
    facts = scan("vocab_copy.json", tokenizer_json(random_tokens(300, 4)))
    assert "vocab" not in facts


# -- similarity --------------------------------------------------------------------------------

def _print(tokens: list[bytes]) -> TokenizerPrint:
    builder = vocab.VocabBuilder()
    builder.add_bytes(range(len(tokens)), tokens)
    found = TokenizerPrint.from_facts(builder.finish(vocab.TIKTOKEN) or {})
    assert found is not None
    return found


def test_a_fine_tunes_vocabulary_is_close_and_an_unrelated_one_is_far():
    base = random_tokens(50_000, seed=5)
    rng = random.Random(6)
    changed = list(base)
    for i in rng.sample(range(256, len(base)), len(base) // 50):
        changed[i] = b"changed-%d" % i
    appended = base + [b"<extra_%d>" % i for i in range(len(base) // 50)]
    unrelated = random_tokens(50_000, seed=7, alphabet=b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    p = _print(base)
    assert similarity(p, _print(list(base))) == 1.0
    assert 0.9 < similarity(p, _print(changed)) < 1.0
    assert 0.9 < similarity(p, _print(appended)) < 1.0
    assert similarity(p, _print(unrelated)) < 0.2


def test_a_150k_vocabulary_fed_in_batches_is_one_fingerprint():
    """Speed is measured in bench/ (bench_fingerprint.py), not here: this checks the result."""
    tokens = random_tokens(150_000, seed=8)
    texts = [byte_level(t) for t in tokens]
    builder = vocab.VocabBuilder()
    for i in range(0, len(texts), 8192):
        builder.add_text(range(i, min(i + 8192, len(texts))), texts[i:i + 8192])
    whole = vocab.VocabBuilder()
    whole.add_text(range(len(texts)), texts)
    found = builder.finish(vocab.BYTE_LEVEL)
    assert found is not None and found["size"] == 150_000
    assert found == whole.finish(vocab.BYTE_LEVEL)


def test_id_order_does_not_change_the_digest_and_duplicates_count_once():
    tokens = random_tokens(2000, seed=9)
    ids = list(range(len(tokens)))
    shuffled = ids[:]
    random.Random(10).shuffle(shuffled)
    a, b = vocab.VocabBuilder(), vocab.VocabBuilder()
    a.add_bytes(ids, tokens)
    b.add_bytes(shuffled, [tokens[i] for i in shuffled])
    b.add_bytes(ids[:10], tokens[:10])  # the same (id, token) again: added_tokens repeat vocab
    assert a.finish(vocab.TIKTOKEN) == b.finish(vocab.TIKTOKEN)


# -- hostile vocabularies ----------------------------------------------------------------------

def test_hostile_vocabularies_are_bounded_and_never_crash(tmp_path):
    builder = vocab.VocabBuilder()
    builder.add_text([0, 1, 1, -5, 2**70, "x", 3], ["a", "b", "c", "d", "e", "f", 7])
    found = builder.finish(vocab.BYTE_LEVEL)
    assert found is not None and found["size"] == 3 and builder.dropped == 4
    huge = vocab.VocabBuilder()
    huge.add_text([0], ["x" * (vocab.MAX_BYTES + 1)])
    assert huge.finish(vocab.PLAIN) is None  # past the cap: no fingerprint, not a wrong one
    bad = vocab.VocabBuilder()
    bad.add_utf8(0, [b"\xff\xfe", b"ok", b"\xc3", b"\xa9"])
    assert bad.finish(vocab.BYTE_LEVEL)["size"] == 4  # type: ignore[index]
    million = vocab.VocabBuilder()
    million.add_bytes(range(10**6), [b"%d" % i for i in range(10**6)])
    assert million.finish(vocab.TIKTOKEN)["size"] == 10**6  # type: ignore[index]
    # a tokenizer.json whose vocabulary is not a map of ints, with a non-UTF-8-able escape
    doc = b'{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {"\\ud800": 0, "a": "x", ' \
          b'"b": 1.5, "c": [1], "d": 2}}, "added_tokens": [{"id": 2, "content": "dd"}, 5]}'
    facts = scan("tokenizer.json", doc)
    assert facts["vocab"]["size"] == 3


def test_streamed_scan_of_a_big_tokenizer_json_hands_over_every_vocab_entry():
    tokens = random_tokens(20_000, seed=11)
    data = tokenizer_json(tokens, merges=200_000)
    got: list[int] = []
    scanned = scan_json(io.BytesIO(data).read, 1 << 30, frozenset(),
                        {("model", "vocab"): lambda keys, values: got.extend(values)})
    assert scanned.is_object and got == list(range(len(tokens)))


def test_the_streamer_validates_the_same_with_or_without_visits():
    data = tokenizer_json(random_tokens(500, seed=12))[:-5] + b"}"
    with pytest.raises(FormatError) as plain:
        scan_json(io.BytesIO(data).read, 1 << 30, frozenset())
    with pytest.raises(FormatError) as visited:
        scan_json(io.BytesIO(data).read, 1 << 30, frozenset(),
                  {("model", "vocab"): lambda keys, values: None})
    assert str(plain.value) == str(visited.value)


def test_a_tiktoken_file_that_breaks_after_its_head_is_malformed():
    data = tiktoken_file(random_tokens(20_000, seed=13)) + b"not a rank line\n"
    ctx = ScanContext(file="x.tiktoken", name="x.tiktoken", size=len(data),
                      options=FormatOptions(), dispatch=dispatch)
    result = dispatch(io.BytesIO(data), ctx)
    assert result.format == FormatId.TIKTOKEN and result.coverage == "error"
    assert [f.rule for f in result.findings] == ["AUD-SCAN-001"]
    assert "vocab" not in result.facts
