"""GGUF (llama.cpp, Ollama): header, metadata and tensor infos parsed by hand, data area hashed.

The parser reads the stream once, front to back, and never trusts a count or
length: each is checked against the bytes left in the file and against the
limits before anything is read or allocated, so a hostile 2^63 length or a
10^9 count is a finding in microseconds. Metadata values are skipped unless a
fact needs them; the chat template is handed to the template analyser
(loaders such as llama-cpp-python render it with Jinja). The rows of
`token_embd.weight` and `blk.0.attn_q.weight` that the weight fingerprint
samples (`_lib.sampling`) are read in file order with the padding, within the
pass that hashes the file.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib import rowplan
from auditor.formats._lib.bounded import ForwardReader
from auditor.formats.code import templates
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

if TYPE_CHECKING:  # numpy is loaded only when a file has rows to sample
    from auditor.formats._lib.sampling import Sampled
    from auditor.formats._lib.vocab import VocabBuilder

HEADER = Rule(
    "AUD-GGUF-001", Severity.HIGH, "GGUF header is invalid",
    "A file that claims to be GGUF but has an unknown version or byte order is refused or "
    "misread by loaders; the scanner cannot vouch for what a lenient reader would do with it.",
    "Re-convert the model with llama.cpp's converter (convert_hf_to_gguf.py).",
)
BOUNDS = Rule(
    "AUD-GGUF-002", Severity.HIGH, "GGUF count or length runs past the end of the file",
    "A count or length larger than the file is a truncated download or a hostile value meant "
    "to make a reader allocate gigabytes or read out of bounds.",
    "Obtain the file again; if it persists, do not load it.",
)
LIMIT = Rule(
    "AUD-GGUF-003", Severity.HIGH, "GGUF header exceeds the scanner's limits",
    "Counts, string lengths, header size or array nesting beyond any real model are how a "
    "file exhausts a parser; what lies beyond the limit was not inspected.",
    "Inspect the file by hand; raise the limits in auditor.toml only if it is legitimate.",
)
VALUE = Rule(
    "AUD-GGUF-004", Severity.HIGH, "Invalid GGUF metadata value",
    "An unknown value type, a boolean that is neither 0 nor 1 or text that is not UTF-8 is "
    "read differently (or not at all) by different GGUF readers.",
    "Re-convert the model with llama.cpp's converter.",
)
DUPLICATE = Rule(
    "AUD-GGUF-005", Severity.HIGH, "Duplicate GGUF metadata key or tensor name",
    "Readers disagree on which duplicate wins, so the scanner and the loader may see a "
    "different chat template, architecture or tensor.",
    "Re-convert the model with llama.cpp's converter.",
)
TENSOR = Rule(
    "AUD-GGUF-006", Severity.HIGH, "Invalid GGUF tensor info",
    "An unknown ggml type, more than 4 dimensions, an overlong name or a row that is not a "
    "whole number of quantisation blocks cannot be sized, so its bytes cannot be accounted for.",
    "Re-convert the model with llama.cpp's converter.",
)
LAYOUT = Rule(
    "AUD-GGUF-007", Severity.HIGH, "GGUF tensor data misaligned, overlapping or not covering the "
    "data area",
    "Tensor data must be aligned and lie inside the data area; overlaps, gaps and trailing "
    "bytes are room for content no tensor accounts for, or make loaders read past the file.",
    "Re-convert the model with llama.cpp's converter.",
)
ALIGNMENT = Rule(
    "AUD-GGUF-008", Severity.HIGH, "Invalid general.alignment",
    "The alignment decides where every tensor's data starts; a value that is not a power-of-two "
    "uint32 is rejected by llama.cpp and makes readers disagree about the data area.",
    "Re-convert the model with llama.cpp's converter.",
)
RULES = (HEADER, BOUNDS, LIMIT, VALUE, DUPLICATE, TENSOR, LAYOUT, ALIGNMENT)

MAGIC = b"GGUF"
VERSIONS = (1, 2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 63  # GGML_MAX_NAME - 1: llama.cpp refuses longer tensor names
MAX_NESTING = 4  # arrays of arrays; real files use none
MAX_KEPT_ITEMS = 64  # array values kept for facts (base-model lists, template names)
# Tensor infos and keys are kept for the layout and duplicate checks; real files have a few
# thousand tensors and under a hundred keys, so these bound memory far above real use.
MAX_TENSORS = 250_000
MAX_METADATA = 100_000

# ggml tensor type id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# general.file_type -> the quantisation name llama.cpp prints
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}

# metadata value type id -> struct code of the fixed-size scalars
SCALARS: dict[int, str] = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B", 10: "Q", 11: "q", 12: "d",
}
BOOL, STRING, ARRAY, UINT32 = 7, 8, 9, 4

# Metadata whose values become facts (or go to the template analyser); the rest is skipped.
FACT_KEYS = frozenset({
    "general.architecture", "general.name", "general.file_type", "general.license",
    "general.organization", "general.alignment", "general.base_model.count",
    "tokenizer.chat_templates", "general.source.repo_url", "general.source.huggingface.repository",
    "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
})
FACT_PREFIXES = ("general.base_model.", "tokenizer.chat_template")
# `<arch>.<suffix>` hyperparameters: the shape the architecture fingerprint compares. Kept for
# any prefix (the architecture key may come later in the file), reported for the file's own.
HPARAM_SUFFIXES = (
    "embedding_length", "block_count", "attention.head_count", "attention.head_count_kv",
    "feed_forward_length", "rope.freq_base", "expert_count", "expert_used_count",
    "attention.kv_lora_rank", "vocab_size", "context_length", "expert_feed_forward_length",
)
TEMPLATE_KEY = "tokenizer.chat_template"
KEEP_STRING = 1 << 16  # a token longer than this is no real token: the vocabulary is not printed
TOKENS_KEY = "tokenizer.ggml.tokens"  # the vocabulary, streamed into the tokenizer fingerprint
# tokenizer.ggml.model -> how its tokens are spelt (auditor.formats._lib.vocab kinds)
TOKENIZER_KINDS = {"gpt2": "bpe", "llama": "spm", "t5": "spm"}


class _Limit(LimitExceeded):
    """A GGUF limit: reported under this module's own rule."""


@dataclass
class _Reader(ForwardReader):
    """Bounded little- or big-endian reader that knows how many bytes the file has left."""

    bounds_rule = BOUNDS
    f: BinaryIO
    size: int | None
    header_limit: int
    wide: bool = True  # v2+: 64-bit lengths and counts; v1: 32-bit
    order: str = "<"
    pos: int = 0

    def room(self, n: int, what: str) -> None:
        if self.size is not None and n > self.size - self.pos:
            raise FormatError(f"{what}: {n} bytes at offset {self.pos} run past the end of the "
                              f"file ({self.size} bytes)", self.pos, BOUNDS)
        if self.pos + n > self.header_limit:
            raise _Limit(f"{what}: header larger than the {self.header_limit}-byte limit",
                         self.pos)

    def skip_strings(self, n: int, what: str, limit: int,
                     sink: Callable[[list[bytes | None]], None] | None = None) -> None:
        """Skip `n` length-prefixed strings: vocabularies hold 100k+ of them.

        Whole strings are walked inside the stream's read buffer (`peek`, which
        every top-level file has) and consumed in one read; a string that does
        not fit there, or breaks a limit, goes through `string()`, which checks
        and reports it. `sink` receives the strings, in order, in batches (None
        for one longer than `KEEP_STRING`, which is skipped, never held).
        """
        width = 8 if self.wide else 4
        length_at = struct.Struct(self.order + ("Q" if self.wide else "I")).unpack_from
        peek = getattr(self.f, "peek", None)
        left = n
        batch: list[bytes | None] = []  # handed to `sink` some thousands at a time
        while left:
            view = peek(1 << 16) if peek is not None else b""
            used = done = 0
            while done < left and len(view) - used >= width:
                (length,) = length_at(view, used)
                if length > limit or len(view) - used - width < length:
                    break
                used += width + length
                done += 1
            if done:
                taken = self.take(used, what)
                if sink is not None:
                    batch += _split_strings(taken, done, width, length_at)
                left -= done
            else:
                if sink is None:
                    self.string(what, limit, keep=False)
                else:  # as string(), but a long one is skipped, not held
                    at = self.pos
                    length = self.length(f"{what} length")
                    self.room(length, what)
                    if length > limit:
                        raise _Limit(f"{what} of {length} bytes at offset {at} exceeds the "
                                     f"{limit}-byte limit", at)
                    if length <= KEEP_STRING:
                        batch.append(self.take(length, what))
                    else:
                        self.skip(length, what)
                        batch.append(None)
                left -= 1
            if sink is not None and (len(batch) >= 8192 or not left):
                sink(batch)
                batch = []

    def unpack(self, code: str, what: str) -> Any:
        fmt = self.order + code
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def u32(self, what: str) -> int:
        return self.unpack("I", what)

    def length(self, what: str) -> int:
        return self.unpack("Q" if self.wide else "I", what)

    def count(self, what: str, min_item: int, limit: int) -> int:
        """A count field, refused before use when its items cannot fit or exceed `limit`."""
        at = self.pos
        n = self.length(what)
        if self.size is not None and n * min_item > self.size - self.pos:
            raise FormatError(f"{what} {n} at offset {at}: that many items cannot fit in the "
                              f"{self.size - self.pos} bytes left", at, BOUNDS)
        if n > limit:
            raise _Limit(f"{what} {n} at offset {at} exceeds the limit of {limit}", at)
        return n

    def string(self, what: str, limit: int, keep: bool) -> bytes | None:
        at = self.pos
        n = self.length(f"{what} length")
        self.room(n, what)
        if n > limit:
            raise _Limit(f"{what} of {n} bytes at offset {at} exceeds the {limit}-byte limit", at)
        if keep:
            return self.take(n, what)
        self.skip(n, what)
        return None


def _split_strings(buf: bytes, n: int, width: int,
                   length_at: Callable[[bytes, int], tuple[int]]) -> list[bytes]:
    """The `n` length-prefixed strings `skip_strings` just consumed as one block."""
    out, at = [], 0
    for _ in range(n):
        (length,) = length_at(buf, at)
        at += width
        out.append(buf[at:at + length])
        at += length
    return out


@dataclass
class _Tensor:
    name: str
    type_name: str | None
    elements: int
    nbytes: int | None
    offset: int
    at: int  # file offset of the tensor info, for findings
    dims: tuple[int, ...] = ()  # ggml order: dims[0] is the length of a row


@dataclass
class _Header:
    version: int
    meta: dict[str, Any] = field(default_factory=dict)  # only FACT_KEYS / FACT_PREFIXES
    meta_at: dict[str, int] = field(default_factory=dict)
    meta_type: dict[str, int] = field(default_factory=dict)
    kv_count: int = 0
    tensors: list[_Tensor] = field(default_factory=list)
    vocab: VocabBuilder | None = None  # tokenizer.ggml.tokens, for the tokenizer fingerprint


def sniff(head: bytes, name: str) -> bool:
    return head[:4] == MAGIC


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    reader = _Reader(f, ctx.size, ctx.limits.max_header_bytes)
    try:
        header = _read_header(reader, ctx)
    except _Limit as exc:
        ctx.add(LIMIT, str(exc), offset=exc.offset)
        ctx.limit_hit()
        return ctx.result
    align = _alignment(header, ctx)
    _check_layout(header, reader.pos, align, ctx)
    samples = _samples(header, reader, align, ctx)
    pieces = _read_padding_and_rows(f, header, reader.pos, align, ctx,
                                    [r for _, _, ranges in samples for r in ranges])
    if samples and pieces is not None:
        from auditor.formats._lib import sampling

        for fact, sampled, _ in samples:
            ctx.result.facts[fact] = sampling.sample_facts(sampled, pieces)
    _facts(header, ctx)
    _review_templates(header, ctx)
    return ctx.result


def _read_header(r: _Reader, ctx: ScanContext) -> _Header:
    r.take(4, "magic")
    raw = r.take(4, "version")
    version = struct.unpack("<I", raw)[0]
    if version not in VERSIONS:
        swapped = struct.unpack(">I", raw)[0]
        if swapped not in VERSIONS:
            raise FormatError(f"unsupported GGUF version {version}", 4, HEADER)
        r.order, version = ">", swapped
    r.wide = version >= 2
    header = _Header(version)
    limit = ctx.limits.max_elements
    tensor_count = r.count("tensor count", 24 if r.wide else 16, min(limit, MAX_TENSORS))
    header.kv_count = r.count("metadata entry count", 13 if r.wide else 9,
                              min(limit, MAX_METADATA))
    for _ in range(header.kv_count):
        _read_entry(r, header, ctx)
    names: set[str] = set()
    for _ in range(tensor_count):
        tensor = _read_tensor(r, ctx)
        if tensor.name in names:
            ctx.add(DUPLICATE, f"tensor {tensor.name!r} appears more than once", offset=tensor.at)
        names.add(tensor.name)
        header.tensors.append(tensor)
    return header


def _read_entry(r: _Reader, header: _Header, ctx: ScanContext) -> None:
    at = r.pos
    raw_key = r.string("metadata key", ctx.limits.max_string_bytes, keep=True) or b""
    key = _text(raw_key, f"metadata key at offset {at}", at, ctx)
    vtype = r.u32(f"type of {key!r}")
    keep = key in FACT_KEYS or key.startswith(FACT_PREFIXES) or _hparam(key) is not None
    vocab = None
    if key == TOKENS_KEY and header.vocab is None:
        from auditor.formats._lib.vocab import VocabBuilder

        vocab = header.vocab = VocabBuilder()
    value = _read_value(r, vtype, key, ctx, keep, depth=0, vocab=vocab)
    if key in header.meta_at:
        ctx.add(DUPLICATE, f"metadata key {key!r} appears more than once", offset=at)
    if keep:
        header.meta[key] = value
        header.meta_type[key] = vtype
    header.meta_at[key] = at


def _read_value(r: _Reader, vtype: int, key: str, ctx: ScanContext, keep: bool,
                depth: int, vocab: VocabBuilder | None = None) -> Any:
    at = r.pos
    if vtype in SCALARS:
        value = r.unpack(SCALARS[vtype], key)
        if vtype == BOOL:
            if value > 1:
                ctx.add(VALUE, f"{key!r}: boolean byte {value} is neither 0 nor 1", offset=at)
            return bool(value)
        return value
    if vtype == STRING:
        raw = r.string(f"string value of {key!r}", ctx.limits.max_string_bytes, keep)
        return None if raw is None else _text(raw, f"value of {key!r}", at, ctx)
    if vtype == ARRAY:
        if depth >= MAX_NESTING:
            raise _Limit(f"{key!r}: arrays nested deeper than {MAX_NESTING}", at)
        etype = r.u32(f"element type of {key!r}")
        if etype in SCALARS:
            size = struct.calcsize(SCALARS[etype])
            n = r.count(f"{key!r} array length", size, ctx.limits.max_elements)
            if not (keep and n <= MAX_KEPT_ITEMS):
                r.skip(n * size, f"{key!r} array")
                return None
            return [_read_value(r, etype, key, ctx, True, depth + 1) for _ in range(n)]
        if etype not in (STRING, ARRAY):
            raise FormatError(f"{key!r}: unknown array element type {etype}", at, VALUE)
        min_item = (8 if r.wide else 4) if etype == STRING else 4 + (8 if r.wide else 4)
        n = r.count(f"{key!r} array length", min_item, ctx.limits.max_elements)
        keep = keep and n <= MAX_KEPT_ITEMS
        if etype == STRING and not keep:
            sink = None
            if vocab is not None:
                sink = _token_sink(vocab)
            r.skip_strings(n, f"string in {key!r}", ctx.limits.max_string_bytes, sink)
            return None
        items = [_read_value(r, etype, key, ctx, keep, depth + 1) for _ in range(n)]
        return items if keep else None
    raise FormatError(f"{key!r}: unknown value type {vtype}", at, VALUE)


def _token_sink(vocab: VocabBuilder) -> Callable[[list[bytes | None]], None]:
    """Feeds the token strings to `vocab`; a token's id is its position in the array."""
    count = 0

    def sink(tokens: list[bytes | None]) -> None:
        nonlocal count
        if None in tokens:
            vocab.truncated = True
        else:
            vocab.add_utf8(count, tokens)  # type: ignore[arg-type]
        count += len(tokens)

    return sink


def _vocab_facts(header: _Header) -> dict[str, Any] | None:
    if header.vocab is None:
        return None
    meta = header.meta
    model = meta.get("tokenizer.ggml.model")
    kind = TOKENIZER_KINDS.get(model, "plain") if isinstance(model, str) else "plain"
    specials: dict[str, Any] = {}
    for which in ("bos", "eos"):
        token_id = meta.get(f"tokenizer.ggml.{which}_token_id")
        token_id = token_id if type(token_id) is int else None
        raw = header.vocab.lookup(token_id) if token_id is not None else None
        specials[which] = None if raw is None else raw.decode("utf-8", "replace")
        specials[f"{which}_id"] = token_id
    return header.vocab.finish(kind, {k: specials[k] for k in ("bos", "eos", "bos_id",
                                                                "eos_id")})


def _read_tensor(r: _Reader, ctx: ScanContext) -> _Tensor:
    at = r.pos
    raw = r.string("tensor name", ctx.limits.max_string_bytes, keep=True) or b""
    name = _text(raw, f"tensor name at offset {at}", at, ctx)
    if len(raw) > MAX_NAME:
        ctx.add(TENSOR, f"tensor name of {len(raw)} bytes (llama.cpp allows {MAX_NAME})",
                offset=at)
    n_dims = r.u32(f"dimension count of {name!r}")
    if n_dims > MAX_DIMS:
        raise FormatError(f"tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})", at,
                          TENSOR)
    dims = [r.length(f"dimension of {name!r}") for _ in range(n_dims)]
    type_id = r.u32(f"type of {name!r}")
    offset = r.unpack("Q", f"data offset of {name!r}")
    elements = math.prod(dims)
    ggml = GGML_TYPES.get(type_id)
    if any(d >= 1 << 63 for d in dims) or elements >= 1 << 63:
        ctx.add(TENSOR, f"tensor {name!r}: dimensions {dims} overflow", offset=at)
        return _Tensor(name, None, 0, None, offset, at)
    if ggml is None:
        ctx.add(TENSOR, f"tensor {name!r}: unknown ggml type {type_id}", offset=at)
        return _Tensor(name, None, elements, None, offset, at)
    type_name, block, block_bytes = ggml
    if dims and dims[0] % block:
        ctx.add(TENSOR, f"tensor {name!r}: row of {dims[0]} elements is not a whole number of "
                f"{type_name} blocks ({block})", offset=at)
        return _Tensor(name, type_name, elements, None, offset, at)
    return _Tensor(name, type_name, elements, elements // block * block_bytes, offset, at,
                   tuple(dims))


def _text(raw: bytes, what: str, at: int, ctx: ScanContext) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        ctx.add(VALUE, f"{what} is not valid UTF-8", offset=at)
        return raw.decode("utf-8", "replace")


def _alignment(header: _Header, ctx: ScanContext) -> int:
    key = "general.alignment"
    if key not in header.meta_type:
        return DEFAULT_ALIGNMENT
    value = header.meta[key]
    if header.meta_type[key] != UINT32 or value <= 0 or value & (value - 1):
        ctx.add(ALIGNMENT, f"general.alignment {value!r} is not a power-of-two uint32",
                offset=header.meta_at[key])
        return DEFAULT_ALIGNMENT
    return value


def _check_layout(header: _Header, header_end: int, align: int, ctx: ScanContext) -> None:
    data_start = -(-header_end // align) * align
    size = ctx.size
    if not header.tensors:
        if size is not None and size - header_end >= align:
            ctx.add(LAYOUT, f"{size - header_end} bytes after a header that declares no tensors",
                    offset=header_end)
        return
    data_size = None if size is None else size - data_start
    if data_size is not None and data_size < 0:
        ctx.add(LAYOUT, f"data area would start at {data_start}, past the end of the file",
                offset=header_end)
        return
    cursor = 0
    for t in sorted(header.tensors, key=lambda t: t.offset):
        if t.offset % align:
            ctx.add(LAYOUT, f"tensor {t.name!r}: data offset {t.offset} is not a multiple of "
                    f"{align}", offset=t.at)
        if t.nbytes is None:
            continue
        end = t.offset + t.nbytes
        if data_size is not None and end > data_size:
            ctx.add(LAYOUT, f"tensor {t.name!r}: data [{t.offset}, {end}) runs past the data "
                    f"area ({data_size} bytes)", offset=t.at)
        if t.offset < cursor:
            ctx.add(LAYOUT, f"tensor {t.name!r} at data offset {t.offset} overlaps the previous "
                    "tensor", offset=t.at)
        elif t.offset - cursor >= align:
            ctx.add(LAYOUT, f"{t.offset - cursor} unaccounted bytes before tensor {t.name!r}",
                    offset=data_start + cursor)
        cursor = max(cursor, -(-end // align) * align)
    if data_size is not None and data_size > cursor and all(
        t.nbytes is not None for t in header.tensors
    ):
        ctx.add(LAYOUT, f"{data_size - cursor} trailing bytes after the last tensor",
                offset=data_start + cursor)


def _padding(header: _Header, header_end: int, align: int, size: int) -> list[tuple[int, int]]:
    """File ranges that only alignment padding may fill: after the header and after each tensor."""
    data_start = -(-header_end // align) * align
    known = sorted((t for t in header.tensors if t.nbytes is not None), key=lambda t: t.offset)
    if not header.tensors:
        return []
    regions = [(header_end, min(data_start, size))]
    for i, t in enumerate(known):
        end = t.offset + t.nbytes  # type: ignore[operator]
        stop = -(-end // align) * align
        if i + 1 < len(known):
            stop = min(stop, known[i + 1].offset)
        regions.append((data_start + end, min(data_start + stop, size)))
    return [(a, b) for a, b in regions if a < b]


def _samples(header: _Header, r: _Reader, align: int,
             ctx: ScanContext) -> list[tuple[str, Sampled, list[tuple[int, int]]]]:
    """(fact, sampled tensor, file ranges of its sampled rows) for `token_embd.weight` (or a
    tied `output.weight` in its place) and `blk.0.attn_q.weight` (one row per token, per
    output feature: [cols, rows] in ggml order), each when it is a well-formed tensor inside
    the file. A tensor of a type with no dequantiser (IQ*) is named in `<fact>_skipped`, so
    a report can say why its weights were not measured."""
    wanted = []
    embedding = rowplan.gguf_embedding_name([t.name for t in header.tensors])
    for fact, name, from_zero in (("embedding_sample", embedding, False),
                                  ("layer_sample", rowplan.GGUF_LAYER, True)):
        tensor = next((t for t in header.tensors if t.name == name), None)
        if tensor is None or tensor.nbytes is None or len(tensor.dims) != 2 or (
                tensor.offset % align):
            continue
        start = -(-r.pos // align) * align + tensor.offset
        if (ctx.size is None or start + tensor.nbytes <= ctx.size) and rowplan.sampled(
                tensor.dims[1], from_zero):
            if tensor.type_name in rowplan.DEQUANTISED:
                wanted.append((fact, tensor, start, from_zero))
            else:
                ctx.result.facts[f"{fact}_skipped"] = f"{tensor.name} is {tensor.type_name}"
    if not wanted:
        return []  # no sampled row in this file: numpy is not even imported
    from auditor.formats._lib import sampling

    out = []
    for fact, tensor, start, from_zero in wanted:
        cols, rows = tensor.dims
        matrix = sampling.Matrix(tensor.name, tensor.type_name or "", rows, cols, start, r.order)
        head_dim = _head_dim(header, rows) if fact == "layer_sample" else 0
        if head_dim is None:
            continue  # interleaved rows whose heads are not known: no sample, not a wrong one
        sampled = sampling.Sampled(matrix, from_zero=from_zero, head_dim=head_dim)
        ranges = sampling.plan(sampled)
        if ranges is not None:
            out.append((fact, sampled, ranges))
    return out


def _head_dim(header: _Header, rows: int) -> int | None:
    """The query head size when this architecture's converter interleaved the rotary halves of
    each head (`rowplan.GGUF_PERMUTED_Q`), 0 when it did not, None when it cannot be known."""
    arch = header.meta.get("general.architecture")
    if arch not in rowplan.GGUF_PERMUTED_Q:
        return 0
    heads = header.meta.get(f"{arch}.attention.head_count")
    if isinstance(heads, list) and heads:
        heads = heads[0]
    if type(heads) is not int or heads <= 0 or rows % heads or (rows // heads) % 2:
        return None
    return rows // heads


def _read_padding_and_rows(
    f: BinaryIO, header: _Header, header_end: int, align: int, ctx: ScanContext,
    rows: list[tuple[int, int]],
) -> dict[int, bytes] | None:
    """Padding must be zeros, as llama.cpp writes it: other bytes are data no tensor owns.
    The sampled rows' `rows` ranges are read in the same walk; their bytes are returned.

    Both are read in file order, so the hashing pass still reads the file once.
    A reader that refuses the rows (a remote transfer budget) leaves the file
    unsampled, not unscanned.
    """
    if not f.seekable():
        return None
    from_padding = [] if ctx.size is None else _padding(header, header_end, align, ctx.size)
    pieces: dict[int, bytes] | None = {} if rows else None
    dirty = []
    for start, stop, is_rows in sorted([(a, b, False) for a, b in from_padding]
                                       + [(a, b, True) for a, b in rows]):
        if not is_rows:
            if _dirty(f, start, stop):
                dirty.append(start)
        elif pieces is not None:
            from auditor.formats._lib.sampling import read_range

            try:
                pieces[start] = read_range(f, start, stop)
            except (LimitExceeded, EOFError):
                pieces = None
    if dirty:
        ctx.add(LAYOUT, f"non-zero alignment padding in {len(dirty)} place(s), first at file "
                f"offset {dirty[0]}", offset=dirty[0])
    return pieces


def _dirty(f: BinaryIO, start: int, stop: int) -> bool:
    f.seek(start)
    left = stop - start
    while left:
        chunk = f.read(min(left, 1 << 16))
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            return True
        left -= len(chunk)
    return False


def _facts(header: _Header, ctx: ScanContext) -> None:
    meta = header.meta
    facts: dict[str, Any] = {
        "gguf_version": header.version,
        "metadata_entries": header.kv_count,
        "tensors": len(header.tensors),
        "parameters": sum(t.elements for t in header.tensors),
        "dtypes": sorted({t.type_name for t in header.tensors if t.type_name}),
    }
    for key, fact in (("general.architecture", "architecture"), ("general.name", "name"),
                      ("general.license", "license"), ("general.organization", "organization"),
                      # the model the file was converted from (current and first spellings)
                      ("general.source.repo_url", "source_repo_url"),
                      ("general.source.huggingface.repository", "source_repository")):
        if isinstance(meta.get(key), str):
            facts[fact] = meta[key]
    file_type = meta.get("general.file_type")
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        facts["file_type"] = file_type
        facts["quantization"] = FILE_TYPES.get(file_type, f"unknown({file_type})")
    bases = _base_models(meta)
    if bases:
        facts["base_models"] = bases
    arch = meta.get("general.architecture")
    hparams = {suffix: value for key, value in meta.items()
               if (suffix := _hparam(key)) and key == f"{arch}.{suffix}"
               and _number_or_numbers(value)}
    if hparams:
        facts["hparams"] = dict(sorted(hparams.items()))
    if (found := _vocab_facts(header)) is not None:
        facts["vocab"] = found
    names = [name for name, _, _ in _templates(header)]
    facts["has_chat_template"] = bool(names)
    if names:
        facts["chat_templates"] = names
    ctx.result.facts.update(facts)


def _hparam(key: str) -> str | None:
    """The suffix of an `<arch>.<suffix>` hyperparameter key, or None."""
    arch, _, suffix = key.partition(".")
    if arch in ("", "general", "tokenizer") or suffix not in HPARAM_SUFFIXES:
        return None
    return suffix


def _number_or_numbers(value: Any) -> bool:
    """A hyperparameter is a number or (per-layer head counts) a short list of numbers."""
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, int | float) and not isinstance(v, bool)
                               for v in items)


def _base_models(meta: dict[str, Any]) -> list[dict[str, str]]:
    """`general.base_model.N.{name,organization,repo_url,version}` as a list, in N order."""
    count = meta.get("general.base_model.count")
    if not isinstance(count, int) or isinstance(count, bool):
        return []
    out = []
    for i in range(min(count, MAX_KEPT_ITEMS)):
        entry = {}
        for part in ("name", "organization", "repo_url", "version"):
            value = meta.get(f"general.base_model.{i}.{part}")
            if isinstance(value, str):
                entry[part] = value
        if entry:
            out.append(entry)
    return out


def _templates(header: _Header) -> list[tuple[str, str, int]]:
    """(name, source, offset) of every chat template: the default and the named ones."""
    out = []
    for key, value in header.meta.items():
        if isinstance(value, str) and (key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")):
            name = "default" if key == TEMPLATE_KEY else key[len(TEMPLATE_KEY) + 1:]
            out.append((name, value, header.meta_at[key]))
    return out


def _review_templates(header: _Header, ctx: ScanContext) -> None:
    found = _templates(header)
    if len(found) > templates.MAX_TEMPLATES:
        ctx.add(templates.TOO_LARGE, f"{len(found)} chat templates in GGUF metadata; the first "
                f"{templates.MAX_TEMPLATES} were reviewed")
        ctx.limit_hit()
    for name, source, at in found[:templates.MAX_TEMPLATES]:
        key = TEMPLATE_KEY if name == "default" else f"{TEMPLATE_KEY}.{name}"
        templates.review_into(ctx, source, where=f"GGUF metadata {key}", offset=at)


SPEC = FormatSpec(
    id=FormatId.GGUF, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("gguf_version", "metadata_entries", "tensors", "parameters", "dtypes", "architecture",
           "name", "license", "organization", "source_repo_url", "source_repository", "file_type",
           "quantization", "base_models", "hparams",
           "has_chat_template", "chat_templates", "embedding_sample", "layer_sample", "vocab",
           "embedding_sample_skipped", "layer_sample_skipped"),
)
