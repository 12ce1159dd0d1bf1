"""A tokenizer vocabulary reduced to its raw bytes: one digest and one sketch for every format.

The same vocabulary is spelt three ways on disk: byte-level BPE writes each
byte as a printable character (GPT-2's `bytes_to_unicode`: `Ġ` is a space),
SentencePiece writes a space as `▁` and bytes as `<0xNN>` pieces, tiktoken
writes the bytes themselves in base64. Normalised to raw bytes, the
(id, token) table hashes equal whatever file it came from, so a tokenizer
copied into another format, or renamed, is still recognised.

`VocabBuilder` takes the tokens as a reader meets them, in batches, and keeps
only a compact table (the token bytes, their lengths and ids: about 8 bytes
per token beyond the text itself, never one Python object per token), capped
far above any real vocabulary. `finish(kind)` normalises, hashes and sketches
the table with numpy in a few vectorised passes. The sketch is a bottom-K
MinHash over the set of token byte strings: two sketches estimate the
Jaccard similarity of two vocabularies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

K = 128  # MinHash sketch size: ~0.02 standard error on a Jaccard near 1
MAX_TOKENS = 1 << 21  # real vocabularies stop near 262,144
MAX_BYTES = 32 * 1024 * 1024  # token text kept for one vocabulary
MAX_ID = (1 << 32) - 1
_HASH_CHUNK = 1 << 14  # bytes hashed per numpy pass: bounds the temporaries
PENDING = 4096  # tokens gathered before a batch is stored
SMALL_BATCH = 64  # batches smaller than this are gathered first

# What `kind` says about a token's spelling, i.e. how it is turned into bytes.
BYTE_LEVEL = "bpe"  # GPT-2 alphabet: every byte as one printable character
SENTENCEPIECE = "spm"  # `▁` for a space, `<0xNN>` pieces for single bytes
TIKTOKEN = "tiktoken"  # the bytes themselves
PLAIN = "plain"  # UTF-8 text as written (WordPiece, word-level)
KINDS = (BYTE_LEVEL, SENTENCEPIECE, TIKTOKEN, PLAIN)

_DIGEST_TAG = b"auditor-vocab-v1\x00"
_BASE = np.uint64(0x100000001B3)  # odd, so invertible modulo 2^64
_BASE_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))


def _byte_level_table() -> np.ndarray:
    """Code point (< 0x144) -> the byte it spells in GPT-2's alphabet, -1 outside it."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = np.full(0x144, -1, dtype=np.int16)
    table[printable] = printable
    spare = 0x100
    for b in range(256):
        if b not in printable:
            table[spare] = b
            spare += 1
    return table


_BYTE_LEVEL = _byte_level_table()
_BAD, _CONT, _LEAD = -1, -2, -3  # a character outside the alphabet; a continuation; C2..C5
_ONE_BYTE = np.where(_BYTE_LEVEL[:256] >= 0, _BYTE_LEVEL[:256], _BAD).astype(np.int16)
_ONE_BYTE[0x80:0x100] = _BAD
_ONE_BYTE[0x80:0xC0] = _CONT
_ONE_BYTE[0xC2:0xC6] = _LEAD
_BYTE_LEVEL[_BYTE_LEVEL < 0] = _BAD


@dataclass
class VocabBuilder:
    """The (id, token) table of one vocabulary, fed in batches, normalised at `finish`.

    Ids outside 0..2^32-1 and tokens past the caps are dropped and counted;
    a builder past a cap reports `truncated`, and `finish` then returns None
    (a partial vocabulary would fingerprint as a different one).
    """

    _ids: list[np.ndarray] = field(default_factory=list)
    _lens: list[np.ndarray] = field(default_factory=list)
    _data: bytearray = field(default_factory=bytearray)
    count: int = 0
    dropped: int = 0
    truncated: bool = False
    # Small batches (a reader handing tokens one by one) wait here to be stored together.
    _pending_ids: list[Any] = field(default_factory=list)
    _pending: list[Any] = field(default_factory=list)

    def add_text(self, ids: Sequence[Any], tokens: Sequence[Any]) -> None:
        """Tokens as text (tokenizer.json, decoded SentencePiece pieces); non-str tokens and
        non-int ids are dropped."""
        if len(ids) != len(tokens):
            raise ValueError("ids and tokens differ in length")
        if len(tokens) < SMALL_BATCH:
            self._pending_ids.extend(ids)
            self._pending.extend(tokens)
            if len(self._pending) >= PENDING:
                self._flush()
            return
        self._flush()
        self._add_text(ids, tokens)

    def _flush(self) -> None:
        if self._pending:
            ids, tokens = self._pending_ids, self._pending
            self._pending_ids, self._pending = [], []
            self._add_text(ids, tokens)

    def _add_text(self, ids: Sequence[Any], tokens: Sequence[Any]) -> None:
        if not {*map(type, ids)} <= {int} or not {*map(type, tokens)} <= {str}:
            keep = [(i, t) for i, t in zip(ids, tokens, strict=True)
                    if type(i) is int and type(t) is str]
            self.dropped += len(tokens) - len(keep)
            ids, tokens = [i for i, _ in keep], [t for _, t in keep]
        if not tokens:
            return
        try:
            id_array = np.array(ids, dtype=np.int64)
        except OverflowError:  # an id past 2^63: drop the ones past the range instead
            id_array = np.array([i if 0 <= i <= MAX_ID else -1 for i in ids], dtype=np.int64)
        joined = "".join(tokens)
        data = joined.encode("utf-8", "surrogatepass")
        chars = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        if len(data) == len(joined):
            lens = chars
        else:  # per-token UTF-8 length from the code points
            codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
            width = 1 + (codes >= 0x80).view(np.uint8) + (codes >= 0x800) + (codes >= 0x10000)
            ends = np.concatenate(([0], np.cumsum(width, dtype=np.int64)))[np.cumsum(chars)]
            lens = np.diff(ends, prepend=0)
        self._store(id_array, lens, data)

    def add_utf8(self, first_id: int, tokens: Sequence[bytes]) -> None:
        """Consecutive tokens stored as UTF-8 (GGUF); text that is not UTF-8 is replaced."""
        self._flush()
        joined = b"".join(tokens)
        try:
            joined.decode("utf-8")
            starts = np.cumsum([0, *map(len, tokens)])[:-1]
            raw = np.frombuffer(joined, dtype=np.uint8)
            lens_ok = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
            at = starts[lens_ok > 0]
            if len(at) and ((raw[at] & 0xC0) == 0x80).any():
                raise UnicodeDecodeError("utf-8", joined, 0, 1, "token splits a character")
        except UnicodeDecodeError:
            self.add_text(range(first_id, first_id + len(tokens)),
                          [t.decode("utf-8", "replace") for t in tokens])
            return
        self._store(np.arange(first_id, first_id + len(tokens), dtype=np.int64), lens_ok, joined)

    def add_bytes(self, ids: Sequence[int], tokens: Sequence[bytes]) -> None:
        """Tokens that are bytes already (tiktoken ranks)."""
        self._flush()
        lens = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        self._store(np.fromiter(ids, dtype=np.int64, count=len(ids)), lens, b"".join(tokens))

    def _store(self, ids: np.ndarray, lens: np.ndarray, data: bytes) -> None:
        if self.truncated:
            return
        ok = (ids >= 0) & (ids <= MAX_ID)
        if not ok.all():
            self.dropped += int((~ok).sum())
            ends = np.cumsum(lens)
            data = b"".join(data[e - n:e] for e, n, good in zip(ends, lens, ok, strict=True)
                            if good)
            ids, lens = ids[ok], lens[ok]
        if self.count + len(ids) > MAX_TOKENS or len(self._data) + len(data) > MAX_BYTES:
            self.truncated = True
            return
        self._ids.append(ids.astype(np.uint32))  # in range: checked above
        self._lens.append(lens.astype(np.uint32))
        self._data += data
        self.count += len(ids)

    def lookup(self, token_id: int) -> bytes | None:
        """The stored (not normalised) bytes of the first token with this id."""
        self._flush()
        offset = 0
        for ids, lens in zip(self._ids, self._lens, strict=True):
            hit = np.flatnonzero(ids == token_id)
            if len(hit):
                start = offset + int(lens[: hit[0]].sum(dtype=np.int64))
                return bytes(self._data[start:start + int(lens[hit[0]])])
            offset += int(lens.sum(dtype=np.int64))
        return None

    def finish(self, kind: str, specials: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The `vocab` facts: size, digest, minhash, kind, specials; None when empty or capped."""
        self._flush()
        if self.truncated or not self.count:
            return None
        self._ids, self._lens = [np.concatenate(self._ids)], [np.concatenate(self._lens)]
        ids, lens = self._ids[0].astype(np.int64), self._lens[0].astype(np.int64)
        raw = np.frombuffer(self._data, dtype=np.uint8)  # no copy: nothing is added after this
        data, lens = normalise(raw, lens, kind)
        ids, lens, data = _drop_fillers(ids, lens, data)
        if not len(ids):
            return None
        hashes = token_hashes(data, lens)
        ids, lens, data, hashes = _canonical(ids, lens, data, hashes)
        digest = hashlib.sha256(_DIGEST_TAG)
        digest.update(len(ids).to_bytes(8, "little"))
        digest.update(ids.astype("<u4").tobytes())
        digest.update(lens.astype("<u4").tobytes())
        digest.update(np.ascontiguousarray(data))
        return {
            "size": len(ids),
            "digest": digest.hexdigest(),
            "minhash": sketch(hashes),
            "kind": kind,
            "specials": specials or {"bos": None, "eos": None, "bos_id": None, "eos_id": None},
        }


def normalise(raw: np.ndarray, lens: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Token bytes as spelt in `kind` -> raw token bytes (and the new lengths)."""
    if kind == BYTE_LEVEL:
        return _from_byte_level(raw, lens)
    if kind == SENTENCEPIECE:
        return _from_sentencepiece(raw, lens)
    return raw, lens


def _token_of_byte(lens: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.repeat(values, lens)


def _per_token_sum(mask: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """How many of each token's bytes are set in `mask` (no per-byte temporaries)."""
    padded = np.concatenate((mask.view(np.uint8), np.zeros(1, dtype=np.uint8)))
    sums = np.add.reduceat(padded, np.cumsum(lens) - lens, dtype=np.int64)
    sums[lens == 0] = 0  # reduceat gives an empty slice the element at its start
    return sums


def _from_byte_level(raw: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Invert GPT-2's alphabet; a token with any character outside it (an added token with a
    space, CJK text) is text already and stays UTF-8."""
    value = _ONE_BYTE[raw]
    two = np.flatnonzero(value == _LEAD)
    if len(two):
        nxt = raw[np.minimum(two + 1, len(raw) - 1)].astype(np.int16)
        code = ((raw[two].astype(np.int16) & 0x1F) << 6) | (nxt & 0x3F)
        ok = (nxt & 0xC0) == 0x80
        value[two] = np.where(ok, _BYTE_LEVEL[np.minimum(code, 0x143)], _BAD)
    bad_token = _per_token_sum(value == _BAD, lens) > 0
    if not bad_token.any():
        keep = value != _CONT
        return value[keep].astype(np.uint8), _per_token_sum(keep, lens)
    bad_byte = _token_of_byte(lens, bad_token)
    keep = bad_byte | (value != _CONT)
    out = np.where(bad_byte, raw, value)[keep].astype(np.uint8)
    return out, _per_token_sum(keep, lens)


def _from_sentencepiece(raw: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`▁` (E2 96 81) -> space; a whole piece `<0xNN>` -> that byte."""
    n = len(raw)
    keep = np.ones(n, dtype=bool)
    out = raw.copy()
    if n >= 3:
        meta = (raw[:-2] == 0xE2) & (raw[1:-1] == 0x96) & (raw[2:] == 0x81)
        at = np.flatnonzero(meta)
        out[at] = 0x20
        keep[at + 1] = False
        keep[at + 2] = False
    starts = np.cumsum(lens) - lens
    six = starts[lens == 6]
    if len(six):
        window = raw[six[:, None] + np.arange(6)]
        hexd = window[:, 3:5]
        is_hex = ((hexd >= 0x30) & (hexd <= 0x39)) | ((hexd >= 0x41) & (hexd <= 0x46))
        piece = ((window[:, 0] == 0x3C) & (window[:, 1] == 0x30) & (window[:, 2] == 0x78)
                 & (window[:, 5] == 0x3E) & is_hex.all(axis=1))
        at = six[piece]
        if len(at):
            digits = hexd[piece].astype(np.int64)
            digits = np.where(digits >= 0x41, digits - 0x37, digits - 0x30)
            out[at] = (digits[:, 0] * 16 + digits[:, 1]).astype(np.uint8)
            for k in range(1, 6):
                keep[at + k] = False
    return out[keep], _per_token_sum(keep, lens)


def _drop_fillers(ids: np.ndarray, lens: np.ndarray, data: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop `[PAD<id>]`: the filler llama.cpp's converter appends up to the embedding's rows."""
    starts = np.cumsum(lens) - lens
    cand = np.flatnonzero((lens >= 6) & (lens <= 15))
    cand = cand[data[starts[cand]] == 0x5B] if len(cand) else cand
    filler = [i for i in cand.tolist()
              if data[starts[i]:starts[i] + lens[i]].tobytes() == b"[PAD%d]" % ids[i]]
    if not filler:
        return ids, lens, data
    keep_tok = np.ones(len(ids), dtype=bool)
    keep_tok[filler] = False
    return ids[keep_tok], lens[keep_tok], data[_token_of_byte(lens, keep_tok)]


def token_hashes(data: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each token's bytes: a polynomial over prefix sums, then mixed.

    Vectorised (a Python hash call per token costs ~0.6 µs); not collision
    resistant, which only the sketch relies on: the digest hashes the bytes.
    """
    out = np.empty(len(lens), dtype=np.uint64)
    ends = np.cumsum(lens)
    starts = ends - lens
    first = 0
    with np.errstate(over="ignore"):
        while first < len(lens):
            base = int(starts[first])
            last = int(np.searchsorted(ends, base + _HASH_CHUNK, side="right"))
            last = max(last, first + 1)
            stop = int(ends[last - 1])
            chunk = data[base:stop].astype(np.uint64) + np.uint64(1)
            powers = np.concatenate((np.ones(1, dtype=np.uint64), np.cumprod(
                np.full(max(len(chunk) - 1, 0), _BASE, dtype=np.uint64), dtype=np.uint64)))
            prefix = np.concatenate((np.zeros(1, dtype=np.uint64),
                                     np.cumsum(chunk * powers, dtype=np.uint64)))
            inverse = np.concatenate((np.ones(1, dtype=np.uint64), np.cumprod(
                np.full(max(len(chunk) - 1, 0), _BASE_INV, dtype=np.uint64), dtype=np.uint64)))
            s = starts[first:last] - base
            h = prefix[ends[first:last] - base] - prefix[s]
            h *= inverse[np.minimum(s, len(chunk) - 1)]
            out[first:last] = _mix(h ^ (lens[first:last].astype(np.uint64) * np.uint64(
                0x9E3779B97F4A7C15)))
            first = last
    return out


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _canonical(ids: np.ndarray, lens: np.ndarray, data: np.ndarray, hashes: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The table in id order, each (id, token) once: the order the digest is defined over.

    Readers meet tokens in id order (GGUF, SentencePiece, tiktoken and the
    tokenizers library all write them so); anything else is sorted here.
    """
    if len(ids) < 2 or bool((np.diff(ids) > 0).all()):
        return ids, lens, data, hashes
    starts = np.cumsum(lens) - lens
    order = np.lexsort((lens, hashes, ids))
    ids, lens, hashes, starts = ids[order], lens[order], hashes[order], starts[order]
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = ~((ids[1:] == ids[:-1]) & (hashes[1:] == hashes[:-1]) & (lens[1:] == lens[:-1]))
    ids, lens, hashes, starts = ids[keep], lens[keep], hashes[keep], starts[keep]
    out = np.empty(int(lens.sum()), dtype=np.uint8)
    at = 0
    for first in range(0, len(ids), PENDING):  # gathered in chunks: the index is 8 bytes a byte
        n, s = lens[first:first + PENDING], starts[first:first + PENDING]
        total = int(n.sum())
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        out[at:at + total] = data[np.repeat(s, n) + offsets]
        at += total
    return ids, lens, out, hashes


def sketch(hashes: np.ndarray) -> list[int]:
    """The K smallest distinct 32-bit token hashes, ascending."""
    values = (hashes >> np.uint64(32)).astype(np.uint32)
    if len(values) > 8 * K:  # the K smallest distinct values are among the 8K smallest
        values = np.partition(values, 8 * K)[: 8 * K]
        if len(np.unique(values)) < K:  # many equal tokens: look at them all
            values = (hashes >> np.uint64(32)).astype(np.uint32)
    values = np.sort(values)
    distinct = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return [int(v) for v in distinct[:K]]


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two vocabularies from their bottom-K sketches."""
    if not a or not b:
        return 0.0
    union = sorted(set(a) | set(b))[:K]
    both = set(a) & set(b)
    return sum(1 for v in union if v in both) / len(union)
