"""Sampled rows of a weight matrix: the weight fingerprint's input, read by byte ranges.

Two checkpoints of the same base keep the same token ids, so the same rows of
their embedding matrices can be compared however the bytes are stored; they
keep the same layers too, so the same rows of the first layer's query
projection can be (`rowplan` names both tensors). The row ids are FIXED
(never chosen from the model), 8 runs of 32 consecutive ids in the first
16k — a range every modern vocabulary covers — so a run is one contiguous
byte range in every row-major layout and a 700 GB checkpoint, read in place,
costs 8 range requests per tensor. Each row is dequantised to float32 (dtype
and quantisation no longer matter), projected to 64 dimensions with a
Gaussian matrix seeded by the column count (random projections keep cosines),
normalised and stored as float16. Layouts (block sizes, field order) are the
published ones of safetensors, DeepSeek-style FP8 block scales and ggml.

Format modules build a `Matrix` and a `Sampled` per tensor from their header,
read `plan(...)`'s ranges in file order within the pass that hashes the file,
and hand the bytes to `sample_facts`. numpy is imported with this module, so
format modules import it only when a file has a tensor with a sampled row
(`rowplan.sampled`).
"""

from __future__ import annotations

import base64
import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from auditor.formats._lib.rowplan import (  # noqa: F401 (the plan, re-exported)
    COALESCE_GAP,
    DIMS,
    EMBEDDING_NAMES,
    EMBEDDING_SUFFIXES,
    GGUF_EMBEDDING,
    MAX_SAMPLE_BYTES,
    READ_ALIGN,
    RUN,
    RUN_STARTS,
    SCALE_SUFFIXES,
    embedding_name,
    runs,
    tied,
)

# -- dequantisers: raw bytes of whole rows -> float32 [rows, cols] --------------------------

Decode = Callable[[np.ndarray, int, str], np.ndarray]  # (uint8 [rows, row_bytes], cols, order)


def _floats(kind: str) -> Decode:
    def decode(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
        return raw.view(np.dtype(kind).newbyteorder(order)).astype(np.float32)
    return decode


def _bf16(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    high = raw.view(np.dtype("u2").newbyteorder(order)).astype(np.uint32) << 16
    return high.view(np.float32)


def _fp8_table(exp_bits: int, man_bits: int, finite_only: bool) -> np.ndarray:
    """All 256 values of an 8-bit float (OCP E4M3 "fn": no infinities; E5M2: IEEE-like)."""
    bias = (1 << (exp_bits - 1)) - 1
    top = (1 << exp_bits) - 1
    out = np.empty(256, np.float32)
    for b in range(256):
        e, m = (b >> man_bits) & top, b & ((1 << man_bits) - 1)
        if finite_only and e == top and m == (1 << man_bits) - 1:
            value = math.nan
        elif not finite_only and e == top:
            value = math.inf if m == 0 else math.nan
        elif e == 0:
            value = m / (1 << man_bits) * 2.0 ** (1 - bias)
        else:
            value = (1 + m / (1 << man_bits)) * 2.0 ** (e - bias)
        out[b] = -value if b & 0x80 else value
    return out


def _table(table: np.ndarray) -> Decode:
    def decode(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
        return table[raw]
    return decode


def _blocks(raw: np.ndarray, size: int) -> np.ndarray:
    return raw.reshape(-1, size)


def _f16(block: np.ndarray) -> np.ndarray:
    return block.copy().view("<f2").astype(np.float32)


def _q8_0(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q8_0, 34 bytes per 32 values: f16 scale d, then 32 int8 q; value = d * q."""
    b = _blocks(raw, 34)
    return (_f16(b[:, :2]) * b[:, 2:].view(np.int8)).reshape(raw.shape[0], cols)


def _nibbles(packed: np.ndarray) -> np.ndarray:
    """ggml's 32-value 4-bit groups: byte l holds value l (low nibble) and l + 16 (high)."""
    return np.concatenate([packed & 0x0F, packed >> 4], axis=1)


def _fifth_bits(packed: np.ndarray) -> np.ndarray:
    """A little-endian 32-bit mask [n, 4 bytes] as its bits [n, 32], bit j for value j."""
    return np.unpackbits(packed, axis=1, bitorder="little")


def _q4_0(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q4_0, 18 bytes per 32 values: f16 d, 16 bytes of 4-bit q; value = d * (q - 8)."""
    b = _blocks(raw, 18)
    q = _nibbles(b[:, 2:]).astype(np.float32) - 8
    return (_f16(b[:, :2]) * q).reshape(raw.shape[0], cols)


def _q4_1(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q4_1, 20 bytes per 32 values: f16 d, f16 m, 16 bytes of 4-bit q; value = d*q + m."""
    b = _blocks(raw, 20)
    q = _nibbles(b[:, 4:]).astype(np.float32)
    return (_f16(b[:, :2]) * q + _f16(b[:, 2:4])).reshape(raw.shape[0], cols)


def _q5_0(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q5_0, 22 bytes per 32 values: f16 d, a 32-bit mask of fifth bits, 16 bytes of low
    nibbles (as Q4_0); value = d * (q - 16)."""
    b = _blocks(raw, 22)
    q = (_nibbles(b[:, 6:]) | (_fifth_bits(b[:, 2:6]) << 4)).astype(np.float32) - 16
    return (_f16(b[:, :2]) * q).reshape(raw.shape[0], cols)


def _q5_1(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q5_1, 24 bytes per 32 values: f16 d, f16 m, a 32-bit mask of fifth bits, 16 bytes
    of low nibbles; value = d*q + m."""
    b = _blocks(raw, 24)
    q = (_nibbles(b[:, 8:]) | (_fifth_bits(b[:, 4:8]) << 4)).astype(np.float32)
    return (_f16(b[:, :2]) * q + _f16(b[:, 2:4])).reshape(raw.shape[0], cols)


_SHIFTS_2BIT = np.array([0, 2, 4, 6], np.uint8)
_BITS = np.arange(8, dtype=np.uint8)


def _crumbs(qs: np.ndarray) -> np.ndarray:
    """ggml's 2-bit k-quant packing, 64 bytes [n, 64] -> 256 values [n, 8, 32]: in each
    128-value half h, value 32*j + l is bits 2j..2j+1 of byte 32*h + l."""
    n = qs.shape[0]
    return ((qs.reshape(n, 2, 1, 32) >> _SHIFTS_2BIT.reshape(1, 1, 4, 1)) & 0x03).reshape(n, 8, 32)


def _high_bits(mask: np.ndarray) -> np.ndarray:
    """A k-quant's 32-byte high-bit mask [n, 32] -> [n, 8, 32]: value 32*k + l is bit k of
    byte l."""
    return (mask[:, None, :] >> _BITS.reshape(1, 8, 1)) & 0x01


def _k_scales(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K's 12 bytes packing eight 6-bit (scale, min) pairs -> ([n, 8], [n, 8])."""
    lo, mid, hi = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    scale = np.concatenate([lo & 0x3F, (hi & 0x0F) | ((lo >> 2) & 0x30)], axis=1)
    mins = np.concatenate([mid & 0x3F, (hi >> 4) | ((mid >> 2) & 0x30)], axis=1)
    return scale.astype(np.float32), mins.astype(np.float32)


def _q2_k(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q2_K, 84 bytes per 256 values: 16 bytes of 4-bit (scale, min) pairs, one per 16
    values (scale in the low nibble), 64 bytes of 2-bit q (`_crumbs`), f16 d, f16 dmin;
    value = d * scale_(i // 16) * q - dmin * min_(i // 16)."""
    b = _blocks(raw, 84)
    n = b.shape[0]
    scales = b[:, :16]
    q = _crumbs(b[:, 16:80]).reshape(n, 16, 16).astype(np.float32)
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    values = ((d * (scales & 0x0F))[:, :, None] * q - (dmin * (scales >> 4))[:, :, None])
    return values.reshape(raw.shape[0], cols)


def _q3_k(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q3_K, 110 bytes per 256 values: a 32-byte high-bit mask (`_high_bits`), 64 bytes
    of low 2 bits (`_crumbs`), 12 bytes packing sixteen 6-bit scales (low 4 bits: nibble
    i % 8 of byte i % 8, low nibble first; high 2 bits: bits 2*(i // 4) of byte 8 + i % 4),
    f16 d; q = low - 4 when the high bit is clear, value = d * (scale_(i // 16) - 32) * q."""
    b = _blocks(raw, 110)
    n = b.shape[0]
    low = _crumbs(b[:, 32:96]).astype(np.int8)
    q = (low - 4 * (1 - _high_bits(b[:, :32])).astype(np.int8)).astype(np.float32)
    packed = b[:, 96:108]
    first = np.concatenate([packed[:, :8] & 0x0F, packed[:, :8] >> 4], axis=1)
    top = ((packed[:, 8:12].reshape(n, 1, 4) >> _SHIFTS_2BIT.reshape(1, 4, 1)) & 0x03)
    scale = (first | (top.reshape(n, 16) << 4)).astype(np.float32) - 32
    values = q.reshape(n, 16, 16) * (_f16(b[:, 108:110]) * scale)[:, :, None]
    return values.reshape(raw.shape[0], cols)


def _q4_k(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q4_K, 144 bytes per 256 values: f16 d, f16 dmin, 12 bytes packing eight 6-bit
    (scale, min) pairs (`_k_scales`), 128 bytes of 4-bit q (32-byte groups: low nibbles are
    sub-block 2g, high nibbles 2g+1); value = d * scale_j * q - dmin * min_j."""
    b = _blocks(raw, 144)
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    scale, mins = _k_scales(b[:, 4:16])
    qs = b[:, 16:].reshape(n, 4, 32)
    q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(n, 8, 32).astype(np.float32)
    values = (d * scale)[:, :, None] * q - (dmin * mins)[:, :, None]
    return values.reshape(raw.shape[0], cols)


def _q5_k(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q5_K, 176 bytes per 256 values: Q4_K's d, dmin and packed (scale, min) pairs, then
    a 32-byte fifth-bit mask (`_high_bits`), then Q4_K's 128 bytes of low nibbles;
    value = d * scale_j * q - dmin * min_j."""
    b = _blocks(raw, 176)
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    scale, mins = _k_scales(b[:, 4:16])
    qs = b[:, 48:].reshape(n, 4, 32)
    low = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(n, 8, 32)
    q = (low | (_high_bits(b[:, 16:48]) << 4)).astype(np.float32)
    values = (d * scale)[:, :, None] * q - (dmin * mins)[:, :, None]
    return values.reshape(raw.shape[0], cols)


def _q6_k(raw: np.ndarray, cols: int, order: str) -> np.ndarray:
    """ggml Q6_K, 210 bytes per 256 values: 128 bytes of low 4 bits, 64 bytes of high 2 bits,
    16 int8 scales, f16 d; value = d * scale_(i // 16) * (q - 32). In each 128-value half,
    value 32*j + l takes its low nibble from ql[64*h + l + 32*(j & 1)] (high nibble when
    j >= 2) and its high bits from qh[32*h + l] >> (2*j)."""
    b = _blocks(raw, 210)
    n = b.shape[0]
    ql = b[:, :128].reshape(n, 2, 2, 32)  # half, j & 1, l
    qh = b[:, 128:192].reshape(n, 2, 1, 32)  # half, -, l
    low = np.concatenate([ql & 0x0F, ql >> 4], axis=2)  # half, j, l
    high = (qh >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 0x03
    q = (low | (high << 4)).astype(np.int8).astype(np.float32) - 32
    scales = b[:, 192:208].view(np.int8).astype(np.float32)
    d = _f16(b[:, 208:210])
    values = q.reshape(n, 16, 16) * (d * scales)[:, :, None]
    return values.reshape(raw.shape[0], cols)


@dataclass(frozen=True)
class Layout:
    """How a dtype stores a row: `block` values in `block_bytes` bytes."""

    block: int
    block_bytes: int
    decode: Decode
    any_order: bool = True  # False: little-endian only (quantised blocks)


LAYOUTS: dict[str, Layout] = {
    "F64": Layout(1, 8, _floats("f8")),
    "F32": Layout(1, 4, _floats("f4")),
    "F16": Layout(1, 2, _floats("f2")),
    "BF16": Layout(1, 2, _bf16),
    "F8_E4M3": Layout(1, 1, _table(_fp8_table(4, 3, finite_only=True))),
    "F8_E5M2": Layout(1, 1, _table(_fp8_table(5, 2, finite_only=False))),
    "Q4_0": Layout(32, 18, _q4_0, any_order=False),
    "Q4_1": Layout(32, 20, _q4_1, any_order=False),
    "Q5_0": Layout(32, 22, _q5_0, any_order=False),
    "Q5_1": Layout(32, 24, _q5_1, any_order=False),
    "Q8_0": Layout(32, 34, _q8_0, any_order=False),
    "Q2_K": Layout(256, 84, _q2_k, any_order=False),
    "Q3_K": Layout(256, 110, _q3_k, any_order=False),
    "Q4_K": Layout(256, 144, _q4_k, any_order=False),
    "Q5_K": Layout(256, 176, _q5_k, any_order=False),
    "Q6_K": Layout(256, 210, _q6_k, any_order=False),
}


@dataclass(frozen=True)
class Matrix:
    """A row-major [rows, cols] matrix of `dtype` whose row 0 starts at file offset `start`."""

    name: str
    dtype: str
    rows: int
    cols: int
    start: int
    order: str = "<"

    @property
    def row_bytes(self) -> int:
        layout = LAYOUTS[self.dtype]
        return self.cols // layout.block * layout.block_bytes

    def readable(self) -> bool:
        """A dtype we can dequantise, whole blocks per row, in a byte order we read."""
        layout = LAYOUTS.get(self.dtype)
        return (layout is not None and self.rows > 0 and self.cols > 0
                and self.cols % layout.block == 0 and (layout.any_order or self.order == "<"))

    def span(self, first: int, count: int) -> tuple[int, int]:
        return self.start + first * self.row_bytes, self.start + (first + count) * self.row_bytes


@dataclass(frozen=True)
class Sampled:
    """A matrix to sample, and for FP8 weights the block scales it is multiplied by.

    A [R, C] scale covers blocks of ceil(V/R) rows by ceil(H/C) columns (DeepSeek:
    128 x 128); a per-tensor or per-row scale changes no row's direction, so it
    is not needed for a cosine and is not given. `from_zero`: see `rowplan.runs`.
    `head_dim`: the rows are a GGUF query projection whose converter interleaved
    each head's two rotary halves (`rowplan.GGUF_PERMUTED_Q`); logical row
    h*d + s*d/2 + i is stored at h*d + 2*i + s, and is read from there.
    """

    matrix: Matrix
    scale: Matrix | None = None
    from_zero: bool = False
    head_dim: int = 0

    def runs(self) -> list[tuple[int, int]]:
        return runs(self.matrix.rows, self.from_zero)

    def stored(self, first: int, count: int) -> tuple[int, int, np.ndarray | None]:
        """Where logical rows [first, first+count) are stored: the first stored row, how many
        stored rows to read from it, and which of them to take in order (None: all)."""
        d = self.head_dim
        if not d:
            return first, count, None
        logical = np.arange(first, first + count)
        head, within = np.divmod(logical, d)
        half, i = np.divmod(within, d // 2)
        where = head * d + 2 * i + half
        low = int(where.min())
        return low, int(where.max()) - low + 1, where - low

    def usable(self) -> bool:
        m, s = self.matrix, self.scale
        if not m.readable() or not self.runs():
            return False
        if self.head_dim:
            d = self.head_dim
            return s is None and d % 2 == 0 and m.rows % d == 0
        if s is None:
            return True
        br, bc = -(-m.rows // s.rows), -(-m.cols // s.cols)
        return (s.readable() and LAYOUTS[s.dtype].block == 1
                and -(-m.rows // br) == s.rows and -(-m.cols // bc) == s.cols)

    def blocks(self) -> tuple[int, int]:
        s = self.scale
        assert s is not None
        return -(-self.matrix.rows // s.rows), -(-self.matrix.cols // s.cols)


def sample_ids(sampled: Sampled) -> list[int]:
    return [i for first, count in sampled.runs() for i in range(first, first + count)]


def _needed(emb: Sampled) -> list[tuple[int, int]]:
    spans = [emb.matrix.span(*emb.stored(first, count)[:2]) for first, count in emb.runs()]
    if emb.scale is not None:
        br, _ = emb.blocks()
        for first, count in emb.runs():
            top = first // br
            spans.append(emb.scale.span(top, (first + count - 1) // br - top + 1))
    return spans


def plan(emb: Sampled) -> list[tuple[int, int]] | None:
    """The file ranges to read, in file order, near ones merged; None when too large to sample."""
    if not emb.usable():
        return None
    merged: list[list[int]] = []
    for start, stop in sorted(_needed(emb)):
        if merged and start - merged[-1][1] <= COALESCE_GAP:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    if sum(stop - start for start, stop in merged) > MAX_SAMPLE_BYTES:
        return None
    return [(start, stop) for start, stop in merged]


def read_range(f: BinaryIO, start: int, stop: int) -> bytes:
    """Bytes [start, stop) of a seekable stream, asked for in whole `READ_ALIGN` lengths.

    A buffered reader hands a whole-buffer-length read straight to the raw
    stream, so over a ranged remote reader each range is one request; on a
    local file the extra bytes are ones the hashing pass reads anyway.
    """
    f.seek(start)
    data = f.read(-(-(stop - start) // READ_ALIGN) * READ_ALIGN)
    if len(data) < stop - start:
        raise EOFError(f"short read at offset {start}")
    return data[: stop - start]


def read_all(f: BinaryIO, ranges: list[tuple[int, int]]) -> dict[int, bytes]:
    return {start: read_range(f, start, stop) for start, stop in ranges}


class _Pieces:
    def __init__(self, pieces: dict[int, bytes]) -> None:
        self._starts = sorted(pieces)
        self._pieces = pieces

    def rows(self, m: Matrix, first: int, count: int) -> np.ndarray:
        """Rows [first, first+count) of `m`, dequantised to float32 [count, cols]."""
        start, stop = m.span(first, count)
        at = self._starts[bisect.bisect_right(self._starts, start) - 1]
        piece = self._pieces[at]
        if stop - at > len(piece):
            raise KeyError(f"rows of {m.name} at offset {start} were not read")
        raw = np.frombuffer(piece, np.uint8, stop - start, start - at).reshape(count, -1)
        return LAYOUTS[m.dtype].decode(raw, m.cols, m.order).astype(np.float32)


def projection(hidden: int) -> np.ndarray:
    """The fixed [hidden, 64] Gaussian projection: same hidden size, same matrix, everywhere.

    numpy's legacy `RandomState` is used because its stream is frozen (NEP 19): a
    reference store built today must still match sketches taken with a later numpy,
    which `default_rng` does not promise.
    """
    rng = np.random.RandomState(hidden)
    return rng.standard_normal((hidden, DIMS)) / math.sqrt(DIMS)


def sample_facts(emb: Sampled, pieces: dict[int, bytes]) -> dict[str, Any]:
    """The `embedding_sample` or `layer_sample` fact from the planned ranges' bytes (`plan`'s
    ranges of this tensor, or more: several tensors' pieces may be given together).

    `vocab` is the row count and `hidden` the column count, whichever the tensor;
    `tied` marks an output head sampled in the embedding's place (`rowplan.TIED_NAMES`).
    """
    m = emb.matrix
    got = _Pieces(pieces)
    parts = []
    for first, count in emb.runs():
        low, n, pick = emb.stored(first, count)
        rows = got.rows(m, low, n)
        if pick is not None:
            rows = rows[pick]
        if emb.scale is not None:
            rows = rows * _scale_rows(emb, got, first, count)
        parts.append(rows)
    rows = np.nan_to_num(np.concatenate(parts), nan=0.0, posinf=0.0, neginf=0.0)
    sketch = rows.astype(np.float64) @ projection(m.cols)
    norms = np.linalg.norm(sketch, axis=1, keepdims=True)
    sketch = np.divide(sketch, norms, out=np.zeros_like(sketch), where=norms > 0)
    facts: dict[str, Any] = {
        "tensor": m.name, "vocab": m.rows, "hidden": m.cols, "dtype": m.dtype,
        "ids": sample_ids(emb), "sketch": encode_sketch(sketch),
    }
    if emb.head_dim:
        facts["head_dim"] = emb.head_dim
    if tied(m.name):
        facts["tied"] = True
    if emb.scale is not None:
        facts["scale"] = emb.scale.name
    return facts


def _scale_rows(emb: Sampled, got: _Pieces, first: int, count: int) -> np.ndarray:
    """The block scale of every value of rows [first, first+count), as a [count, cols] array."""
    s = emb.scale
    assert s is not None
    br, bc = emb.blocks()
    top = first // br
    blocks = got.rows(s, top, (first + count - 1) // br - top + 1)
    per_row = blocks[np.arange(first, first + count) // br - top]
    return np.repeat(per_row, bc, axis=1)[:, : emb.matrix.cols]


def encode_sketch(sketch: np.ndarray) -> str:
    return base64.b64encode(sketch.astype("<f2").tobytes()).decode("ascii")


def decode_sketch(text: str, rows: int) -> np.ndarray | None:
    """A stored sketch as float32 [rows, 64], or None when it is not one."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) != rows * DIMS * 2:
        return None
    return np.frombuffer(raw, "<f2").astype(np.float32).reshape(rows, DIMS)
