"""HDF5 (legacy Keras `.h5` models and `model.weights.h5`): the root group read in pure Python.

HDF5 is normally parsed by a C library that hostile files can crash, and
the only part that can carry code is small: a full legacy Keras model keeps
its architecture as JSON in the root group's `model_config` attribute (with
any Lambda bytecode inside). So instead of h5py this module reads just that:
the superblock (versions 0-3), the root object header (v1 or v2, following
continuation blocks) and its compact attributes, fixed or variable-length
strings (the latter from the global heap). Every address and size is checked
against the file before it is read; counts are bounded. The datasets
themselves are weights: hashed, not parsed.

A file with `model_config` is reported as `keras-h5` and its config reviewed
like a `.keras` config; loading it ignores Keras' safe_mode, which is a finding
of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.weights import keras
from auditor.model import FormatId, FormatResult, Rule, Severity

MALFORMED = Rule(
    "AUD-KERAS-009", Severity.HIGH, "HDF5 file structure is invalid",
    "An HDF5 file whose superblock, object headers or attributes point outside the file or "
    "break the format crashes or confuses the C library that loaders use.",
    "Obtain the file again, or re-save it with h5py / Keras.",
)
UNPARSED = Rule(
    "AUD-KERAS-010", Severity.HIGH, "HDF5 root attributes stored in a form not parsed",
    "Dense (fractal-heap) or shared attribute storage is not read by this scanner, so a "
    "model_config there was not reviewed.",
    "Re-save the file with h5py's default (earliest) format, or review it by hand.",
)
RULES = (MALFORMED, UNPARSED)

SIGNATURE = b"\x89HDF\r\n\x1a\n"
WANTED = ("model_config", "keras_version", "backend", "training_config")
MAX_MESSAGES = 100_000
MAX_CHUNKS = 10_000
_ATTRIBUTE, _ATTRIBUTE_INFO, _CONTINUATION = 0x000C, 0x0015, 0x0010
_STRING, _VLEN = 3, 9


def _superblock_offset(head: bytes) -> int | None:
    """The superblock is at 0 or after a user block of 512 * 2^n bytes."""
    offset = 0
    while offset + 8 <= len(head):
        if head[offset : offset + 8] == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def sniff(head: bytes, name: str) -> bool:
    return _superblock_offset(head) is not None


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    if ctx.size is None or not f.seekable():
        raise FormatError("HDF5 needs a seekable stream of known size", 0, MALFORMED)
    reader = _Reader(f, ctx.size)
    head = reader.read(0, min(ctx.size, 64 * 1024))
    start = _superblock_offset(head)
    if start is None:
        raise FormatError("no HDF5 signature", 0, MALFORMED)
    attrs = reader.root_attributes(start, ctx)
    facts: dict[str, Any] = {"hdf5_superblock": reader.superblock_version,
                             "root_attributes": sorted(attrs)}
    for key in ("keras_version", "backend"):
        if isinstance(attrs.get(key), bytes):
            facts[key] = attrs[key].decode("utf-8", "replace")
    config = attrs.get("model_config")
    if isinstance(config, bytes):
        ctx.result.format = FormatId.KERAS_H5
        try:
            doc, _ = loads_strict(config, what="model_config attribute")
        except LimitExceeded:
            raise
        except FormatError as exc:
            raise FormatError(str(exc), None, keras.MALFORMED) from None
        ctx.add(keras.LEGACY_H5, f"Keras {facts.get('keras_version', '?')} model_config")
        facts.update(keras.review_config(doc, ctx, "model_config"))
    ctx.result.facts.update(facts)
    return ctx.result


class _Reader:
    """Bounded random access to the file, plus the few HDF5 structures the scan needs."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.size = size
        self.offsets = 8
        self.lengths = 8
        self.base = 0
        self.superblock_version = -1

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FormatError(f"structure at {addr} (+{n} bytes) lies outside the "
                              f"{self.size}-byte file", addr, MALFORMED)
        self.f.seek(addr)
        data = self.f.read(n)
        if len(data) < n:
            raise FormatError("file shorter than its size", addr, MALFORMED)
        return data

    def root_attributes(self, start: int, ctx: ScanContext) -> dict[str, Any]:
        sb = self.read(start, min(96, self.size - start))
        if len(sb) < 16:  # signature, versions and the two size fields
            raise FormatError("truncated superblock", start, MALFORMED)
        version = sb[8]
        self.superblock_version = version
        if version in (0, 1):
            self.offsets, self.lengths = sb[13], sb[14]
            addresses = 24 if version == 0 else 28
            root = addresses + 5 * self.offsets  # 4 addresses, then the entry's name offset
        elif version in (2, 3):
            self.offsets, self.lengths = sb[9], sb[10]
            addresses = 12
            root = addresses + 3 * self.offsets
        else:
            raise FormatError(f"unknown superblock version {version}", start + 8, MALFORMED)
        if self.offsets not in (2, 4, 8) or self.lengths not in (2, 4, 8):
            raise FormatError(f"invalid sizes of offsets/lengths {self.offsets}/{self.lengths}",
                              start + 9, MALFORMED)
        if root + self.offsets > len(sb):
            raise FormatError("truncated superblock", start, MALFORMED)
        self.base = _uint(sb, addresses, self.offsets)
        header = self.base + _uint(sb, root, self.offsets)
        attrs: dict[str, Any] = {}
        for mtype, addr, size, flags in self._messages(header):
            if mtype == _ATTRIBUTE_INFO:
                self._check_dense(addr, size, ctx)
            elif mtype == _ATTRIBUTE:
                if flags & 0x02:  # the whole message is shared: stored elsewhere
                    ctx.add(UNPARSED, f"shared attribute message at {addr}", offset=addr)
                    ctx.limit_hit()
                    continue
                name, value = self._attribute(addr, size, ctx)
                attrs[name] = value
        return attrs

    def _messages(self, header: int) -> Iterator[tuple[int, int, int, int]]:
        """(type, data address, size, flags) of every message, continuation blocks included."""
        first = self.read(header, min(16, self.size - header))
        chunks: list[tuple[int, int]] = []
        if first[:4] == b"OHDR":
            flags = first[5]
            pos = header + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 3)
            chunk = _uint(self.read(pos, width), 0, width)
            chunks.append((pos + width, pos + width + chunk))
            v2, tracked = True, bool(flags & 0x04)
        elif first[:1] == b"\x01" and len(first) >= 16:
            size = _uint(first, 8, 4)
            chunks.append((header + 16, header + 16 + size))
            v2, tracked = False, False
        else:
            raise FormatError("root object header has an unknown version", header, MALFORMED)
        count = done = 0
        while chunks:
            done += 1
            if done > MAX_CHUNKS:
                raise LimitExceeded(f"more than {MAX_CHUNKS} object header blocks", header)
            pos, end = chunks.pop(0)
            if end > self.size:
                raise FormatError("object header block runs past the end of the file", pos,
                                  MALFORMED)
            prefix = (4 + (2 if tracked else 0)) if v2 else 8
            while pos + prefix <= end:
                raw = self.read(pos, prefix)
                if v2:
                    mtype, size, flags = raw[0], _uint(raw, 1, 2), raw[3]
                else:
                    mtype, size, flags = _uint(raw, 0, 2), _uint(raw, 2, 2), raw[4]
                data = pos + prefix
                if data + size > end:
                    raise FormatError(f"header message of {size} bytes overruns its block",
                                      pos, MALFORMED)
                count += 1
                if count > MAX_MESSAGES:
                    raise LimitExceeded(f"more than {MAX_MESSAGES} header messages", pos)
                if mtype == _CONTINUATION:
                    cont = self.read(data, self.offsets + self.lengths)
                    addr = self.base + _uint(cont, 0, self.offsets)
                    length = _uint(cont, self.offsets, self.lengths)
                    if v2:
                        if self.read(addr, 4) != b"OCHK":
                            raise FormatError("continuation block without OCHK signature", addr,
                                              MALFORMED)
                        chunks.append((addr + 4, addr + length - 4))
                    else:
                        chunks.append((addr, addr + length))
                else:
                    yield mtype, data, size, flags
                pos = data + size

    def _check_dense(self, addr: int, size: int, ctx: ScanContext) -> None:
        raw = self.read(addr, size)
        if len(raw) < 2 + self.offsets:
            raise FormatError("truncated attribute info message", addr, MALFORMED)
        heap_at = 2 + (2 if raw[1] & 0x01 else 0)
        heap = raw[heap_at : heap_at + self.offsets]
        if heap != b"\xff" * self.offsets:
            ctx.add(UNPARSED, "root group keeps attributes in dense storage (fractal heap)",
                    offset=addr)
            ctx.limit_hit()

    def _attribute(self, addr: int, size: int, ctx: ScanContext) -> tuple[str, Any]:
        raw = self.read(addr, size)
        if len(raw) < 8:
            raise FormatError("truncated attribute message", addr, MALFORMED)
        version = raw[0]
        name_size, type_size, space_size = (_uint(raw, i, 2) for i in (2, 4, 6))
        pad = (lambda n: -(-n // 8) * 8) if version == 1 else (lambda n: n)
        pos = 9 if version == 3 else 8
        if version not in (1, 2, 3):
            raise FormatError(f"attribute message version {version}", addr, MALFORMED)
        name_raw = raw[pos : pos + name_size]
        pos += pad(name_size)
        dtype = raw[pos : pos + type_size]
        pos += pad(type_size)
        space = raw[pos : pos + space_size]
        pos += pad(space_size)
        if pos > len(raw) or len(dtype) < 8:
            raise FormatError("attribute message fields overrun the message", addr, MALFORMED)
        name = name_raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
        if name not in WANTED:
            return name, None
        if version > 1 and raw[1] & 0x03:
            ctx.add(UNPARSED, f"attribute {name!r} uses a shared datatype or dataspace",
                    offset=addr)
            ctx.limit_hit()
            return name, None
        return name, self._string_value(raw[pos:], dtype, space, addr, ctx)

    def _string_value(self, data: bytes, dtype: bytes, space: bytes, addr: int,
                      ctx: ScanContext) -> bytes | None:
        cls, elem_size = dtype[0] & 0x0F, _uint(dtype, 4, 4)
        if self._elements(space, addr) != 1:
            return None
        if cls == _STRING:
            if elem_size > len(data):
                raise FormatError("string attribute larger than its message", addr, MALFORMED)
            return data[:elem_size].rstrip(b"\x00 ")
        if cls == _VLEN and dtype[1] & 0x0F == 1:
            need = 4 + self.offsets + 4
            if len(data) < need:
                raise FormatError("variable-length string reference truncated", addr, MALFORMED)
            length = _uint(data, 0, 4)
            if length > ctx.limits.max_json_bytes:
                raise LimitExceeded(f"{length}-byte string attribute", addr)
            heap = self.base + _uint(data, 4, self.offsets)
            index = _uint(data, 4 + self.offsets, 4)
            return self._heap_object(heap, index, addr, length)
        return None

    def _elements(self, space: bytes, addr: int) -> int:
        if len(space) < 4:
            raise FormatError("truncated dataspace", addr, MALFORMED)
        version, rank = space[0], space[1]
        if version == 2 and space[3] == 2:
            return 0  # null dataspace
        dims_at = 8 if version == 1 else 4
        if len(space) < dims_at + rank * self.lengths:
            raise FormatError("truncated dataspace dimensions", addr, MALFORMED)
        count = 1
        for i in range(rank):
            count *= _uint(space, dims_at + i * self.lengths, self.lengths)
        return count

    def _heap_object(self, collection: int, index: int, addr: int, length: int) -> bytes:
        header = self.read(collection, 8 + self.lengths)
        if header[:4] != b"GCOL":
            raise FormatError("global heap reference without GCOL signature", collection,
                              MALFORMED)
        end = collection + _uint(header, 8, self.lengths)
        pos = collection + 8 + self.lengths
        for _ in range(MAX_MESSAGES):
            if pos + 8 + self.lengths > end:
                break
            obj = self.read(pos, 8 + self.lengths)
            number, size = _uint(obj, 0, 2), _uint(obj, 8, self.lengths)
            if number == 0:
                break
            if number == index:
                return self.read(pos + 8 + self.lengths, min(size, length))
            pos += 8 + self.lengths + -(-size // 8) * 8
        raise FormatError(f"global heap object {index} not found", addr, MALFORMED)


def _uint(data: bytes, at: int, width: int) -> int:
    return int.from_bytes(data[at : at + width], "little")


SPEC = FormatSpec(
    id=FormatId.HDF5, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("hdf5_superblock", "root_attributes", "keras_version", "backend", "model_class",
           "classes", "modules"),
    refines=(FormatId.KERAS_H5,),
)
