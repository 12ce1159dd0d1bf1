"""SentencePiece `tokenizer.model` (Llama, Mistral, Gemma, T5 ...): a protobuf `ModelProto`.

It is data (pieces, scores, trainer and normaliser settings), so it is safe
to load, but it is binary: without a parser a normal repository would trip
the unknown-binary rule. A tiny bounded wire reader checks the top-level
structure and every piece, and records the facts a reviewer wants. The file is
read whole, up to a limit far above any real vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from auditor.errors import FormatError
from auditor.formats._lib.protowire import I32, I64, LEN, VARINT
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

MALFORMED = Rule(
    "AUD-TOK-001", Severity.HIGH, "SentencePiece model is malformed",
    "A tokenizer.model that is not a valid ModelProto (bad wire data, empty, duplicate or "
    "non-UTF-8 pieces, unknown piece types) is refused by the loader, or read differently "
    "than the scanner read it.",
    "Obtain the tokenizer from the publisher again, or re-export it with sentencepiece.",
)
BOUNDS = Rule(
    "AUD-TOK-002", Severity.HIGH, "SentencePiece length or size beyond the file or limits",
    "A length past its enclosing message, or a model far larger than any real vocabulary, is "
    "a truncated file or an attempt to exhaust the parser.",
    "Obtain the tokenizer from the publisher again.",
)
UNKNOWN_FIELD = Rule(
    "AUD-TOK-003", Severity.MEDIUM, "SentencePiece model carries fields no loader reads",
    "Top-level fields outside the ModelProto schema are ignored by sentencepiece, which makes "
    "them a place to ship bytes nobody inspects.",
    "Re-export the tokenizer with sentencepiece.",
)
RULES = (MALFORMED, BOUNDS, UNKNOWN_FIELD)

MAX_BYTES = 64 * 1024 * 1024
MAX_PIECES = 1_000_000  # the largest real vocabularies are ~260k pieces

# ModelProto top-level field -> (name, wire type)
TOP_FIELDS: dict[int, tuple[str, int]] = {
    1: ("pieces", LEN), 2: ("trainer_spec", LEN), 3: ("normalizer_spec", LEN),
    4: ("self_test_data", LEN), 5: ("denormalizer_spec", LEN),
}
PIECE_FIELDS: dict[int, tuple[str, int]] = {1: ("piece", LEN), 2: ("score", I32),
                                            3: ("type", VARINT)}
PIECE_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused",
               6: "byte"}
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
TRAINER_MODEL_TYPE, TRAINER_VOCAB_SIZE, TRAINER_BYTE_FALLBACK = 3, 4, 35
NORMALIZER_NAME = 1


def sniff(head: bytes, name: str) -> bool:
    """A ModelProto starts with its first piece: field 1 holding a message whose field 1 is text.

    The first piece must parse in full, with only piece fields, inside the head.
    """
    try:
        fields = _fields(head[:4096], 0, partial=True)
        number, wire, value, _ = next(fields)
        if number != 1 or wire != LEN or not isinstance(value, bytes) or not value:
            return False
        inner = list(_fields(value, 0))
    except (FormatError, StopIteration):
        return False
    return bool(inner) and inner[0][0] == 1 and all(n in PIECE_FIELDS for n, *_ in inner)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        ctx.add(BOUNDS, f"larger than the {MAX_BYTES}-byte limit for a tokenizer model")
        ctx.limit_hit()
        return ctx.result
    try:
        facts = _model(data, ctx)
    except FormatError as exc:
        raise FormatError(str(exc), exc.offset, exc.rule or MALFORMED) from None
    ctx.result.facts.update(facts)
    return ctx.result


def _model(data: bytes, ctx: ScanContext) -> dict[str, Any]:
    from auditor.formats._lib.vocab import SENTENCEPIECE, VocabBuilder

    pieces = 0
    vocab = VocabBuilder()  # the pieces, for the tokenizer fingerprint; ids are positions
    batch: list[bytes] = []
    seen: set[bytes] = set()
    types: dict[str, int] = {}
    facts: dict[str, Any] = {}
    for number, wire, value, at in _fields(data, 0):
        spec = TOP_FIELDS.get(number)
        if spec is None:
            ctx.add(UNKNOWN_FIELD, f"top-level field {number} (wire type {wire})", offset=at)
            continue
        if wire != spec[1]:
            raise FormatError(f"{spec[0]}: wire type {wire}, expected {spec[1]}", at)
        if number == 1:
            pieces += 1
            if pieces > MAX_PIECES:
                ctx.add(BOUNDS, f"more than {MAX_PIECES} pieces", offset=at)
                ctx.limit_hit()
                break
            kind = _piece(value, at, seen, ctx, batch)
            types[kind] = types.get(kind, 0) + 1
            if len(batch) >= 8192:
                vocab.add_utf8(pieces - len(batch), batch)
                batch = []
        elif number == 2:
            facts.update(_trainer(value, at))
        elif number == 3:
            facts.update(_normalizer(value, at))
        else:
            list(_fields(value, at))  # structure only
    if pieces == 0:
        raise FormatError("no pieces: not a usable SentencePiece model", 0)
    vocab.add_utf8(pieces - len(batch), batch)
    if pieces <= MAX_PIECES and (found := vocab.finish(SENTENCEPIECE)) is not None:
        facts["vocab"] = found
    facts["pieces"] = pieces
    facts["piece_types"] = dict(sorted(types.items()))
    return facts


def _piece(raw: bytes, at: int, seen: set[bytes], ctx: ScanContext, texts: list[bytes]) -> str:
    text: bytes | None = None
    kind = 1
    for number, wire, value, where in _fields(raw, at):
        spec = PIECE_FIELDS.get(number)
        if spec is None or wire != spec[1]:
            raise FormatError(f"piece field {number} with wire type {wire}", where)
        if number == 1:
            text = value
        elif number == 3:
            kind = value
    texts.append(text or b"")
    if not text:
        ctx.add(MALFORMED, "empty piece", offset=at)
    else:
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            ctx.add(MALFORMED, f"piece {text[:32]!r} is not valid UTF-8", offset=at)
        if text in seen:
            ctx.add(MALFORMED, f"piece {text[:32]!r} is defined twice", offset=at)
        seen.add(text)
    if kind not in PIECE_TYPES:
        ctx.add(MALFORMED, f"piece type {kind} is not a SentencePiece type", offset=at)
        return "invalid"
    return PIECE_TYPES[kind]


def _trainer(raw: bytes, at: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, wire, value, _ in _fields(raw, at):
        if wire != VARINT:
            continue
        if number == TRAINER_MODEL_TYPE:
            out["model_type"] = MODEL_TYPES.get(value, f"unknown({value})")
        elif number == TRAINER_VOCAB_SIZE:
            out["vocab_size"] = value
        elif number == TRAINER_BYTE_FALLBACK:
            out["byte_fallback"] = bool(value)
    return out


def _normalizer(raw: bytes, at: int) -> dict[str, Any]:
    for number, wire, value, _ in _fields(raw, at):
        if number == NORMALIZER_NAME and wire == LEN:
            return {"normalizer": value.decode("utf-8", "replace")[:128]}
    return {}


def _fields(buf: bytes, base: int, *, partial: bool = False) -> Iterator[tuple[int, int, Any, int]]:
    """(number, wire type, value, file offset) of each field in `buf`, every length checked.

    `partial` stops quietly where `buf` ends inside a field (sniffing a head).
    """
    i, end = 0, len(buf)
    while i < end:
        at = base + i
        try:
            key, i = _varint(buf, i, base)
            number, wire = key >> 3, key & 7
            if number == 0 or wire not in (VARINT, I64, LEN, I32):
                raise FormatError(f"invalid field key {key}", at, MALFORMED)
            if wire == VARINT:
                value, i = _varint(buf, i, base)
            elif wire == LEN:
                length, i = _varint(buf, i, base)
                if length > end - i:
                    raise FormatError(f"field {number}: length {length} runs past its enclosing "
                                      f"message ({end - i} bytes left)", at, BOUNDS)
                value, i = buf[i:i + length], i + length
            else:
                width = 8 if wire == I64 else 4
                if width > end - i:
                    raise FormatError(f"field {number} runs past its enclosing message", at,
                                      BOUNDS)
                value, i = int.from_bytes(buf[i:i + width], "little"), i + width
        except FormatError:
            if partial:
                return
            raise
        yield number, wire, value, at


def _varint(buf: bytes, i: int, base: int) -> tuple[int, int]:
    if i < len(buf) and buf[i] < 0x80:  # the common one-byte case, kept fast
        return buf[i], i + 1
    value = shift = 0
    start = i
    while True:
        if i >= len(buf):
            raise FormatError("truncated varint", base + start, BOUNDS)
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift >= 70:
            raise FormatError("varint longer than 10 bytes", base + start, MALFORMED)


SPEC = FormatSpec(
    id=FormatId.SENTENCEPIECE, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("model_type", "vocab_size", "byte_fallback", "normalizer", "pieces", "piece_types",
           "vocab"),
)
