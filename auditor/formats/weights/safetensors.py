"""safetensors: the header is parsed strictly, the data area only hashed.

A loose header is how a file smuggles bytes past a loader (gaps, trailing
data, overlapping tensors) or crashes it (lengths beyond the file), so every
structural rule of the format is checked, each with its own rule id.
`__metadata__` strings may hold whole configs; their `_target_`s are judged
like any config's (`code.instantiate`). The rows the weight fingerprint
samples (`_lib.sampling`: the token embedding's and the first layer's query
projection's) are read in file order within the pass that hashes the file;
over a ranged remote reader only their byte ranges are fetched.
"""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib import rowplan
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats.code import instantiate
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

if TYPE_CHECKING:  # numpy is loaded only when a file has rows to sample
    from auditor.formats._lib.sampling import Matrix, Sampled

HEADER = Rule(
    "AUD-ST-001", Severity.HIGH, "safetensors header is invalid",
    "The loader refuses or misreads a header that is not a JSON object of well-formed tensor "
    "entries; a scanner that tolerates it may be looking at different data than the loader.",
    "Re-save the tensors with the safetensors library.",
)
HEADER_LENGTH = Rule(
    "AUD-ST-002", Severity.HIGH, "safetensors header length out of bounds",
    "A header length beyond the file or the 100 MB the reference loader accepts is a truncated "
    "file or an attempt to make a parser allocate or read out of bounds.",
    "Obtain the file again; re-save it with the safetensors library.",
)
DUPLICATE_KEY = Rule(
    "AUD-ST-003", Severity.HIGH, "Duplicate key in safetensors header",
    "JSON parsers disagree on which duplicate wins, so a scanner and a loader can see different "
    "tensors or metadata.",
    "Re-save the tensors with the safetensors library.",
)
DTYPE = Rule(
    "AUD-ST-004", Severity.HIGH, "Unknown safetensors dtype",
    "A dtype the format does not define cannot be sized or checked, and loaders reject it.",
    "Re-save the tensors with a supported dtype.",
)
SIZE = Rule(
    "AUD-ST-005", Severity.HIGH, "Tensor byte span does not match its shape and dtype",
    "A span larger than the tensor hides extra bytes inside the file; a smaller one makes a "
    "loader read neighbouring data.",
    "Re-save the tensors with the safetensors library.",
)
LAYOUT = Rule(
    "AUD-ST-006", Severity.HIGH, "Tensor data overlaps, leaves gaps or trailing bytes",
    "The data area must be covered exactly by the tensors, in order; gaps, overlaps and trailing "
    "bytes are room for content no tensor accounts for.",
    "Re-save the tensors with the safetensors library.",
)
METADATA = Rule(
    "AUD-ST-007", Severity.MEDIUM, "__metadata__ is not a string-to-string map",
    "The format allows only string values in __metadata__; anything else is non-conforming and "
    "may be interpreted differently by tools that read it.",
    "Store metadata values as strings.",
)
RULES = (HEADER, HEADER_LENGTH, DUPLICATE_KEY, DTYPE, SIZE, LAYOUT, METADATA, *instantiate.RULES)

MAX_HEADER = 100_000_000  # what the reference loader accepts

# dtype -> size in bits
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


_JSON_SPACE = b" \t\r\n"
# What may follow the header's first bracket: a JSON object opens a key or closes;
# an array (not a valid header, but still this format, to be reported as such) opens a value.
_AFTER_BRACKET = {b"{": frozenset(b'"}'), b"[": frozenset(b']{["-0123456789tfn')}


def sniff(head: bytes, name: str) -> bool:
    """An 8-byte little-endian length, then JSON that opens with a bracket.

    Any length a parser could honour has NUL high bytes, which JSON text never
    contains (a config whose ninth byte is `{` is not safetensors), and a GGUF
    tensor count can look like `{"`, so that magic is excluded outright.
    Leading JSON whitespace is allowed, as the reference loader allows it.
    """
    if len(head) < 10 or b"\x00" not in head[:8] or head.startswith(b"GGUF"):
        return False
    body = head[8:].lstrip(_JSON_SPACE)
    follow = _AFTER_BRACKET.get(body[:1])
    rest = body[1:].lstrip(_JSON_SPACE)
    return follow is not None and rest[:1] != b"" and rest[0] in follow


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    prefix = f.read(8)
    if len(prefix) < 8:
        raise FormatError("file shorter than the 8-byte header length", 0, HEADER_LENGTH)
    (length,) = struct.unpack("<Q", prefix)
    size = ctx.size
    limit = min(MAX_HEADER, ctx.limits.max_header_bytes)
    if size is not None and length > size - 8:
        raise FormatError(f"header length {length} exceeds file size {size}", 0, HEADER_LENGTH)
    if length > limit:
        raise FormatError(f"header length {length} exceeds the {limit}-byte limit", 0,
                          HEADER_LENGTH)
    raw = f.read(length)
    if len(raw) < length:
        raise FormatError(f"truncated header: {len(raw)} of {length} bytes", 8, HEADER_LENGTH)
    try:
        header, dups = loads_strict(raw, what="safetensors header")
    except LimitExceeded:
        raise
    except FormatError as exc:
        raise FormatError(str(exc), 8 + (exc.offset or 0), HEADER) from None
    for key in dups:
        ctx.add(DUPLICATE_KEY, f"key {key!r} appears more than once", offset=8)
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object", 8, HEADER)
    data_size = None if size is None else size - 8 - length
    _check(header, ctx, data_size)
    _sample_rows(f, header, 8 + length, data_size, ctx)
    return ctx.result


def _check(header: dict[str, Any], ctx: ScanContext, data_size: int | None) -> None:
    spans: list[tuple[int, int, str]] = []
    dtypes: set[str] = set()
    params = 0
    for name, entry in header.items():
        if name == "__metadata__":
            _check_metadata(entry, ctx)
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            ctx.add(HEADER, f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets",
                    offset=8)
            continue
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and all(_uint(d) for d in shape)):
            ctx.add(HEADER, f"tensor {name!r}: shape {shape!r} is not a list of sizes", offset=8)
            continue
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_uint, offsets))
                and offsets[0] <= offsets[1]):
            ctx.add(HEADER, f"tensor {name!r}: data_offsets {offsets!r} invalid", offset=8)
            continue
        begin, end = offsets
        spans.append((begin, end, name))
        count = math.prod(shape)
        params += count
        bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
        if bits is None:
            ctx.add(DTYPE, f"tensor {name!r}: dtype {dtype!r}", offset=8)
            continue
        dtypes.add(dtype)
        if count * bits % 8 or count * bits // 8 != end - begin:
            ctx.add(SIZE, f"tensor {name!r}: {dtype}{shape} needs {count * bits / 8:g} bytes, "
                    f"data_offsets span {end - begin}", offset=8)
    _check_layout(spans, ctx, data_size)
    ctx.result.facts.update({
        "tensors": len(spans),
        "parameters": params,
        "dtypes": sorted(dtypes),
        "tensor_pattern": _pattern(header),
    })
    ctx.result.facts.setdefault("metadata", {})


def _check_layout(
    spans: list[tuple[int, int, str]], ctx: ScanContext, data_size: int | None
) -> None:
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin > cursor:
            ctx.add(LAYOUT, f"{begin - cursor} unaccounted bytes before tensor {name!r} "
                    f"(data offset {cursor})")
        elif begin < cursor:
            ctx.add(LAYOUT, f"tensor {name!r} at data offset {begin} overlaps the previous tensor")
        cursor = max(cursor, end)
    if data_size is not None:
        if cursor > data_size:
            ctx.add(LAYOUT, f"tensors end at data offset {cursor}, past the data area "
                    f"({data_size} bytes)")
        elif cursor < data_size:
            ctx.add(LAYOUT, f"{data_size - cursor} trailing bytes after the last tensor")


def _check_metadata(meta: Any, ctx: ScanContext) -> None:
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        ctx.add(METADATA, f"__metadata__ is {type(meta).__name__} with non-string values",
                offset=8)
        return
    ctx.result.facts["metadata"] = dict(sorted(meta.items()))
    _check_targets(meta, ctx)


def _check_targets(meta: dict[str, str], ctx: ScanContext) -> None:
    """Configs kept in metadata strings: an instantiating loader reads them as JSON or YAML."""
    sites = list(instantiate.object_sites(meta, "__metadata__"))
    for key, text in meta.items():
        found, unparsed = instantiate.text_sites(text, f"__metadata__.{key}")
        sites += found
        if unparsed:
            ctx.add(instantiate.COMPUTED, f"__metadata__.{key} mentions _target_ but parses as "
                    "neither JSON nor YAML", offset=8)
    instantiate.report(sites, ctx)


# tensor_pattern bounds: real checkpoints have a few dozen distinct names once layer and expert
# numbers are folded, so these keep the fact small (it goes into the JSON report) for any header.
MAX_PATTERNS = 512
MAX_SHAPES = 4
MAX_PATTERN_NAME = 200
_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")
_BLOCK = re.compile(r"^(.*?(?:layers|layer|h|blocks|blk))\.(\d+)\.")


def _pattern(header: dict[str, Any]) -> dict[str, Any]:
    """Tensor names with their numbers folded to N, each with its distinct shapes, and how
    many numbered blocks each stack has: the shape a renamed model cannot hide.

    `blocks` is the highest index + 1 seen in this file; a sharded checkpoint's stack is the
    highest over its shards.
    """
    shapes: dict[str, list[list[int]]] = {}
    blocks: dict[str, int] = {}
    for name, entry in header.items():
        if name == "__metadata__" or len(name) > MAX_PATTERN_NAME or not isinstance(entry, dict):
            continue
        shape = entry.get("shape")
        if not (isinstance(shape, list) and all(_uint(d) for d in shape)):
            continue
        if m := _BLOCK.match(name):
            blocks[m[1]] = max(blocks.get(m[1], 0), int(m[2]) + 1)
        key = _INDEX.sub("N", name)
        if key in shapes:
            if shape not in shapes[key] and len(shapes[key]) < MAX_SHAPES:
                shapes[key].append(shape)
        elif len(shapes) < MAX_PATTERNS:
            shapes[key] = [shape]
    return {"shapes": dict(sorted(shapes.items())), "blocks": dict(sorted(blocks.items()))}


def _matrix(header: dict[str, Any], name: str, data_start: int,
            data_size: int | None) -> Matrix | None:
    """`name` as a `sampling.Matrix` when its entry is a well-formed 2-D tensor inside the data
    area (findings about a malformed one are `_check`'s); None otherwise."""
    from auditor.formats._lib import sampling

    entry = header.get(name)
    if not isinstance(entry, dict):
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(dtype, str) and dtype in sampling.LAYOUTS and isinstance(shape, list)
            and len(shape) == 2 and all(map(_uint, shape)) and isinstance(offsets, list)
            and len(offsets) == 2 and all(map(_uint, offsets))):
        return None
    begin, end = offsets
    matrix = sampling.Matrix(name, dtype, shape[0], shape[1], data_start + begin)
    if not matrix.readable() or end - begin != shape[0] * matrix.row_bytes or (
            data_size is not None and end > data_size):
        return None
    return matrix


def _sample_rows(f: BinaryIO, header: dict[str, Any], data_start: int,
                 data_size: int | None, ctx: ScanContext) -> None:
    """`embedding_sample` and `layer_sample`: the fingerprint rows of the token embedding (or
    of a tied `lm_head` holding it, `rowplan.TIED_NAMES`) and of the first layer's query
    projection, for whichever of them this file holds; `<fact>_skipped` names one whose dtype
    has no dequantiser.

    Only the sampled rows (and an FP8 weight's block scales) are read, both
    tensors' together in file order: locally the hashing pass reads them on its
    way through the file; remotely they are a few range requests. A reader that
    refuses them (the remote transfer budget) leaves the file unsampled, not
    unscanned.
    """
    if not f.seekable():
        return
    names = [n for n in header if n != "__metadata__"]
    wanted = []
    for fact, name, from_zero in (("embedding_sample", rowplan.embedding_name(names), False),
                                  ("layer_sample", rowplan.layer_name(names), True)):
        if name is None or not _rows_sampled(header[name], from_zero):
            continue
        dtype = header[name].get("dtype")
        if not isinstance(dtype, str):
            continue  # a finding of `_check`'s
        if dtype in rowplan.DEQUANTISED:
            wanted.append((fact, name, from_zero))
        elif dtype in DTYPE_BITS:  # said, so a report can tell why weights were not measured
            ctx.result.facts[f"{fact}_skipped"] = f"{name} is {dtype}"
    if not wanted:
        return  # no sampled row in this file: numpy is not even imported
    from auditor.formats._lib import sampling

    plans: list[tuple[str, Sampled, list[tuple[int, int]]]] = []
    for fact, name, from_zero in wanted:
        sampled = _sampled(header, name, from_zero, data_start, data_size)
        ranges = None if sampled is None else sampling.plan(sampled)
        if sampled is not None and ranges is not None:
            plans.append((fact, sampled, ranges))
    try:
        pieces = sampling.read_all(f, sorted(r for _, _, ranges in plans for r in ranges))
    except (LimitExceeded, EOFError):
        return
    for fact, sampled, _ in plans:
        ctx.result.facts[fact] = sampling.sample_facts(sampled, pieces)


def _rows_sampled(entry: Any, from_zero: bool) -> bool:
    shape = entry.get("shape") if isinstance(entry, dict) else None
    return (isinstance(shape, list) and bool(shape) and _uint(shape[0])
            and rowplan.sampled(shape[0], from_zero))


def _sampled(header: dict[str, Any], name: str, from_zero: bool, data_start: int,
             data_size: int | None) -> Sampled | None:
    """`name` (and its FP8 block scales) as a `sampling.Sampled`; None when it cannot be read
    as one: no sample rather than a wrong one."""
    from auditor.formats._lib import sampling

    matrix = _matrix(header, name, data_start, data_size)
    if matrix is None:
        return None
    scale = None
    scale_name = next((name + suffix for suffix in rowplan.SCALE_SUFFIXES
                       if name + suffix in header), None)
    if scale_name is not None and not _single_value(header[scale_name]):
        scale = _matrix(header, scale_name, data_start, data_size)
        if scale is None:
            return None  # block scales we cannot apply
    return sampling.Sampled(matrix, scale, from_zero)


def _single_value(entry: Any) -> bool:
    """A per-tensor scale: it changes no row's direction, so a cosine does not need it."""
    shape = entry.get("shape") if isinstance(entry, dict) else None
    return isinstance(shape, list) and all(d == 1 for d in shape)


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


SPEC = FormatSpec(
    id=FormatId.SAFETENSORS, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("tensors", "parameters", "dtypes", "metadata", "tensor_pattern", "embedding_sample",
           "layer_sample", "embedding_sample_skipped", "layer_sample_skipped"),
)
