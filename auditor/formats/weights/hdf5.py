"""HDF5 (legacy Keras `.h5`, `model.weights.h5`, pandas/PyTables stores), read in pure Python.

Three parts of an HDF5 file make its loader do more than read tensors:

- a full legacy Keras model keeps its architecture as JSON in the root
  group's `model_config` attribute (with any Lambda bytecode inside),
  reviewed like a `.keras` config; loading it ignores Keras' safe_mode;
- datasets with external storage, external links and virtual datasets make
  the HDF5 library read another file, named inside this one: an absolute or
  '..' name reads any file of the host;
- PyTables unpickles object data (`ObjectAtom` rows, which pandas uses for
  object columns) and every string attribute that ends like a pickle, so
  those bytes go through the pickle analysis; so do byte, string (fixed and
  variable length) and opaque values of other datasets and attributes that
  would import something when unpickled, since custom loaders unpickle them.

The whole object tree is walked (`hdf5_reader`); weights are hashed, not
parsed. Nothing is read with h5py: the C library is what hostile files crash.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats.code import python as python_code
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.pickle import plain as pickle_plain
from auditor.formats.weights import hdf5_data, keras
from auditor.formats.weights.hdf5_reader import Attribute, Message, Reader, superblock_offset, uint
from auditor.model import FormatId, FormatResult, Rule, Severity

MALFORMED = Rule(
    "AUD-KERAS-009", Severity.HIGH, "HDF5 file structure is invalid",
    "An HDF5 file whose superblock, object headers or attributes point outside the file or "
    "break the format crashes or confuses the C library that loaders use.",
    "Obtain the file again, or re-save it with h5py / Keras.",
)
UNPARSED = Rule(
    "AUD-KERAS-010", Severity.HIGH, "HDF5 content stored in a form not parsed",
    "Fractal heaps of dense links or attributes this scanner does not walk (filtered, huge "
    "objects, nested indirect blocks), shared messages, newer chunk indexes or compression "
    "filters it does not decode hide what is there: a model_config, a link to another file or "
    "pickled object data was not reviewed.",
    "Re-save the file with h5py's default (earliest) format without exotic filters, or review "
    "it by hand.",
)
OTHER_FILE = Rule(
    "AUD-KERAS-011", Severity.HIGH, "HDF5 object reads data from another file",
    "External storage, external links and virtual datasets make the HDF5 library open the "
    "file they name when the object is read: an absolute or '..' name reads any file of the "
    "host into the model (a relative name inside the folder is reported as low).",
    "Re-save the file with the data inside it (h5py copy without external storage/links).",
)
RULES = (MALFORMED, UNPARSED, OTHER_FILE)

WANTED = ("model_config", "keras_version", "backend", "training_config")
MAX_OBJECTS = 1_000_000
_DATASPACE, _LINK_INFO, _DATATYPE, _LINK, _EXTERNAL = 0x0001, 0x0002, 0x0003, 0x0006, 0x0007
_LAYOUT, _FILTERS, _ATTRIBUTE, _SYMBOLS, _ATTRIBUTE_INFO = 0x0008, 0x000B, 0x000C, 0x0011, 0x0015
_FIXED, _STRING, _OPAQUE, _VLEN = 0, 3, 5, 9


@dataclass
class _Object:
    """What the walk keeps of one object header: its messages by type and decoded attributes."""

    path: str
    messages: dict[int, list[Message]] = field(default_factory=dict)
    attrs: dict[str, Attribute] = field(default_factory=dict)

    def first(self, mtype: int) -> Message | None:
        found = self.messages.get(mtype)
        return found[0] if found else None


def sniff(head: bytes, name: str) -> bool:
    return superblock_offset(head) is not None


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    if ctx.size is None or not f.seekable():
        raise FormatError("HDF5 needs a seekable stream of known size", 0, MALFORMED)
    reader = Reader(f, ctx.size, MALFORMED)
    start = superblock_offset(reader.read(0, min(ctx.size, 64 * 1024)))
    if start is None:
        raise FormatError("no HDF5 signature", 0, MALFORMED)
    walk = _Walk(reader, ctx)
    root = walk.run(reader.root(start))
    attrs = {name: _string(reader, a, ctx) for name, a in root.attrs.items() if name in WANTED}
    facts: dict[str, Any] = {"hdf5_superblock": reader.superblock_version,
                             "root_attributes": sorted(root.attrs), "objects": walk.objects,
                             "pickled_values": walk.pickles}
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


class _Walk:
    """Every object reachable from the root, each header read once (hard links may loop)."""

    def __init__(self, reader: Reader, ctx: ScanContext) -> None:
        self.reader = reader
        self.ctx = ctx
        self.objects = 0
        self.pickles = 0
        self.pickle_bytes = 0

    def run(self, root_header: int) -> _Object:
        seen = {root_header}
        queue: deque[tuple[str, int]] = deque([("/", root_header)])
        root: _Object | None = None
        while queue:
            path, header = queue.popleft()
            self.objects += 1
            if self.objects > MAX_OBJECTS:
                raise LimitExceeded(f"more than {MAX_OBJECTS} HDF5 objects", header)
            obj = self._read(path, header)
            root = root or obj
            for child, child_header in self._children(obj):
                if child_header not in seen:
                    seen.add(child_header)
                    queue.append((child, child_header))
            self._dataset(obj)
        assert root is not None
        return root

    def _read(self, path: str, header: int) -> _Object:
        obj = _Object(path)
        for msg in self.reader.messages(header):
            if msg.type == _ATTRIBUTE:
                if msg.flags & 0x02:  # the whole message is shared: stored elsewhere
                    self._unparsed(f"{path}: shared attribute message", msg.addr)
                    continue
                attr = self.reader.attribute(msg)
                obj.attrs[attr.name] = attr
                self._pickled_attribute(obj, attr, msg.addr)
            else:
                obj.messages.setdefault(msg.type, []).append(msg)
        for info in obj.messages.get(_ATTRIBUTE_INFO, []):
            for msg in self._dense_attributes(obj, info):
                attr = self.reader.attribute(msg)
                obj.attrs[attr.name] = attr
                self._pickled_attribute(obj, attr, msg.addr)
        return obj

    def _heap_objects(self, obj: _Object, msg: Message, what: str, sizer: Any) -> list[Message]:
        """The messages kept in the fractal heap an info message points at (dense storage).

        Objects are packed from the start of each direct block; `sizer` gives
        one object's length from its bytes (0: not an object). Fewer objects
        than the heap counts means some were not read, which is reported.
        """
        if len(msg.raw) < 2:
            raise self.reader.fail(f"truncated {what} info message", msg.addr)
        flags = msg.raw[1]
        heap_at = 2 + ((8 if what == "links" else 2) if flags & 1 else 0)
        if not self._dense(msg, heap_at):
            return []
        raw = msg.raw[heap_at : heap_at + self.reader.offsets]
        walked = self.reader.heap_blocks(self.reader.base + uint(raw, 0, self.reader.offsets))
        found: list[Message] = []
        for start, block in walked[0] if walked else []:
            pos, view = 0, memoryview(block)  # objects are sized in place, not copied
            while pos < len(block) and (size := sizer(view[pos:])):
                found.append(Message(0, start + pos, size, 0, block[pos : pos + size]))
                pos += size
        if walked is None or len(found) != walked[1]:
            self._unparsed(f"{obj.path}: {what} in dense storage (fractal heap) not all read",
                           msg.addr)
        return found

    def _dense_attributes(self, obj: _Object, msg: Message) -> list[Message]:
        return self._heap_objects(obj, msg, "attributes", self._attribute_size)

    def _attribute_size(self, raw: memoryview) -> int:
        if len(raw) < 8 or raw[0] not in (2, 3):
            return 0
        name, dtype, space = uint(raw, 2, 2), uint(raw, 4, 2), uint(raw, 6, 2)
        head = (9 if raw[0] == 3 else 8) + name + dtype + space
        if head > len(raw) or dtype < 8:
            return 0
        spec = raw[head - space : head]
        return head + self.reader.elements(spec, None) * uint(raw, head - space - dtype + 4, 4)

    def _unparsed(self, detail: str, at: int | None) -> None:
        self.ctx.add(UNPARSED, detail, offset=at)
        self.ctx.limit_hit()

    def _dense(self, msg: Message, heap_at: int) -> bool:
        raw = msg.raw
        heap = raw[heap_at : heap_at + self.reader.offsets]
        if len(heap) < self.reader.offsets:
            raise self.reader.fail("truncated link or attribute info message", msg.addr)
        return not self.reader.undefined(uint(heap, 0, self.reader.offsets))

    def _children(self, obj: _Object) -> Iterator[tuple[str, int]]:
        prefix = obj.path.rstrip("/") + "/"
        for msg in obj.messages.get(_SYMBOLS, []):
            raw = msg.raw
            btree = self.reader.base + uint(raw, 0, self.reader.offsets)
            heap = self.reader.base + uint(raw, self.reader.offsets, self.reader.offsets)
            for entry in self.reader.group_entries(btree, heap):
                if entry.header is not None:
                    yield prefix + entry.name, entry.header
        links = [self._link(m.raw, m.addr)
                 for m in obj.messages.get(_LINK, [])]
        for msg in obj.messages.get(_LINK_INFO, []):
            links.extend(self._dense_links(obj, msg))
        for name, kind, value, at in links:
            if kind == 0:
                yield prefix + name, self.reader.base + uint(value, 0, self.reader.offsets)
            elif kind == 64:
                target, _, inner = value[1:].partition(b"\x00")
                linked = inner.split(b"\x00", 1)[0].decode("utf-8", "replace")
                self._other_file(f"{prefix}{name}: external link to {linked!r} in",
                                 target.decode("utf-8", "replace"), at)

    def _dense_links(self, obj: _Object, msg: Message) -> list[tuple[str, int, bytes, int]]:
        """The link messages a new-style group keeps in its fractal heap (dense storage)."""
        found = self._heap_objects(obj, msg, "links", self._link_size)
        return [(*self._link(m.raw, m.addr)[:3], m.addr)
                for m in found]

    def _link_size(self, raw: memoryview) -> int:
        return self._link(raw, None)[3] if raw[:1] == b"\x01" else 0

    def _link(self, raw: bytes | memoryview, at: int | None) -> tuple[str, int, bytes, int]:
        """(name, link type, target bytes, message length) of a link message."""
        if len(raw) < 3 or raw[0] != 1:
            raise self.reader.fail("link message of an unknown version", at)
        flags, pos = raw[1], 2
        kind = raw[pos] if flags & 0x08 else 0
        pos += (1 if flags & 0x08 else 0) + (8 if flags & 0x04 else 0) + (1 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        length = uint(raw, pos, width)
        name = bytes(raw[pos + width : pos + width + length]).decode("utf-8", "replace")
        pos += width + length
        if kind == 0:
            value, end = bytes(raw[pos : pos + self.reader.offsets]), pos + self.reader.offsets
        else:
            end = pos + 2 + uint(raw, pos, 2)
            value = bytes(raw[pos + 2 : end])
        if end > len(raw):
            raise self.reader.fail("link message fields overrun the message", at)
        return name, kind, value, end

    def _other_file(self, what: str, target: str, at: int) -> None:
        outside = python_code.path_outside(target) or "://" in target
        self.ctx.add(OTHER_FILE, f"{what} {target!r}", offset=at,
                     severity=None if outside else Severity.LOW)

    def _dataset(self, obj: _Object) -> None:
        for msg in obj.messages.get(_EXTERNAL, []):
            self._external(obj, msg)
        layout = obj.first(_LAYOUT)
        if layout is None:
            return
        raw = layout.raw
        if raw[:2] == b"\x04\x03":
            self._virtual(obj, raw, layout.addr)
            return
        dtype = obj.first(_DATATYPE)
        space = obj.first(_DATASPACE)
        if dtype is None or space is None:
            return
        kind = dtype.raw
        if len(kind) < 8:
            raise self.reader.fail("truncated datatype message", dtype.addr)
        cls, size = kind[0] & 0x0F, uint(kind, 4, 4)
        pseudo = obj.attrs.get("PSEUDOATOM")
        objects = pseudo is not None and _string(self.reader, pseudo, self.ctx) == b"object"
        if cls == _VLEN and _vlen_bytes(kind):
            count = self.reader.elements(space.raw, space.addr)
            data = self._data(obj, raw, layout.addr, count * (8 + self.reader.offsets))
            for i, blob in enumerate(self._vlen_values(data or b"", count, layout.addr)):
                self._pickle(f"{obj.path}[{i}]", blob, objects)
        elif cls in (_FIXED, _STRING, _OPAQUE) and size == 1:
            head = self._data(obj, raw, layout.addr, 2, quiet=True)
            if head is not None and _pickle_head(head):
                count = self.reader.elements(space.raw, space.addr)
                data = self._data(obj, raw, layout.addr, self._budget(count * size, layout.addr))
                if data is not None:
                    self._pickle(obj.path, data, False)
        elif cls in (_STRING, _OPAQUE):  # one value per element, any of them
            count = self.reader.elements(space.raw, space.addr)
            data = self._data(obj, raw, layout.addr, self._budget(count * size, layout.addr),
                              quiet=True)
            for where, blob in _elements(obj.path, data or b"", count, size):
                self._pickle(where, blob, False)

    def _budget(self, length: int, at: int) -> int:
        self.pickle_bytes += length
        cap = self.ctx.limits.max_string_bytes
        if length > cap or self.pickle_bytes > 4 * cap:
            raise LimitExceeded(f"{self.pickle_bytes} bytes of byte datasets to review", at)
        return length

    def _pickled_attribute(self, obj: _Object, attr: Attribute, at: int) -> None:
        """Byte, string and opaque attribute values that are pickles go to the pickle analysis.

        PyTables unpickles any scalar fixed-string attribute whose value ends
        with '.' when it is read; a custom loader may unpickle any other value,
        so those are analysed when they would call an import.
        """
        if attr.shared:
            return
        cls, size = attr.dtype[0] & 0x0F, uint(attr.dtype, 4, 4)
        count = self.reader.elements(attr.space, at)
        where = f"{obj.path}@{attr.name}"
        if cls == _VLEN and _vlen_bytes(attr.dtype):
            blobs = self._vlen_values(attr.data, count, at)
            for i, blob in enumerate(blobs):
                self._pickle(f"{where}[{i}]" if count > 1 else where, blob, False)
            return
        if cls == _FIXED and size == 1:
            values = [(where, attr.data[:count])]
        elif cls in (_STRING, _OPAQUE):
            values = _elements(where, attr.data, count, size)
        else:
            return
        if count * size > len(attr.data):
            raise self.reader.fail(f"attribute {attr.name!r} larger than its message", at)
        for name, value in values:
            loaded = cls == _STRING and count == 1 and value.endswith(b".")
            self._pickle(name, value, loaded)

    def _vlen_values(self, data: bytes, count: int, at: int) -> Iterator[bytes]:
        """The bytes of each variable-length element (sequence of bytes or string), budgeted."""
        step = 8 + self.reader.offsets
        for i in range(min(count, len(data) // step)):
            length, heap, index = self.reader.vlen_ref(data[i * step :], at)
            if not length or self.reader.undefined(heap - self.reader.base):
                yield b""
                continue
            yield self.reader.heap_object(heap, index, at, self._budget(length, at))

    def _pickle(self, where: str, blob: bytes, loaded: bool) -> None:
        """Object rows and pickle-like string attributes are unpickled by PyTables; other
        bytes only by a custom loader, so only those that would call an import count."""
        if (loaded and pickle_plain.plausible(blob[: pickle_plain.SNIFF_BYTES])) or (
                _may_import(blob) and pickle_plain.runs_payload(blob)):
            self._scan_pickle(where, blob)

    def _scan_pickle(self, where: str, data: bytes) -> None:
        self.pickles += 1
        result = self.ctx.scan_member(where.lstrip("/"), io.BytesIO(data), len(data))
        self.ctx.merge_member(result)

    def _data(self, obj: _Object, layout: bytes, at: int, want: int,
              quiet: bool = False) -> bytes | None:
        """Up to `want` bytes of a dataset's raw data; None (reported unless quiet) if unread."""
        cap = self.ctx.limits.max_string_bytes
        if want > cap:
            raise LimitExceeded(f"{obj.path}: {want} bytes of byte or reference data", at)
        filters = obj.first(_FILTERS)
        space = obj.first(_DATASPACE)
        extent = self.reader.elements(space.raw, space.addr) if space else 0
        try:
            return hdf5_data.raw_data(self.reader, layout, filters.raw if filters else None,
                                      extent, want, cap)
        except hdf5_data.Unread as exc:
            if not quiet:
                self._unparsed(f"{obj.path}: {exc}", at)
            return None

    def _external(self, obj: _Object, msg: Message) -> None:
        raw = msg.raw
        offsets, lengths = self.reader.offsets, self.reader.lengths
        if len(raw) < 8 + offsets:
            raise self.reader.fail("truncated external data files message", msg.addr)
        used = uint(raw, 6, 2)
        heap = self.reader.local_heap(self.reader.base + uint(raw, 8, offsets))
        slot = 3 * lengths
        if len(raw) < 8 + offsets + used * slot:
            raise self.reader.fail("external file slots overrun the message", msg.addr)
        for i in range(used):
            name_at = uint(raw, 8 + offsets + i * slot, lengths)
            name = self.reader.heap_string(heap, name_at, msg.addr)
            self._other_file(f"{obj.path}: dataset stored in external file", name, msg.addr)

    def _virtual(self, obj: _Object, layout: bytes, at: int) -> None:
        heap = self.reader.base + uint(layout, 2, self.reader.offsets)
        index = uint(layout, 2 + self.reader.offsets, 4)
        if self.reader.undefined(heap - self.reader.base):
            return
        blob = self.reader.heap_object(heap, index, at, self.ctx.limits.max_json_bytes)
        if len(blob) < 1 + self.reader.lengths:
            raise self.reader.fail("truncated virtual dataset mapping", at)
        version, count = blob[0], uint(blob, 1, self.reader.lengths)
        pos = 1 + self.reader.lengths
        names: list[tuple[str, str]] = []
        for _ in range(count):
            if pos >= len(blob):
                raise self.reader.fail("virtual dataset mappings overrun their heap object", at)
            flags = blob[pos] if version == 1 else 0
            pos += version == 1
            source, pos = self._vds_name(blob, pos, flags & 0x01, names, 0, flags & 0x04)
            dataset, pos = self._vds_name(blob, pos, flags & 0x02, names, 1, 0)
            names.append((source, dataset))
            if source != ".":
                self._other_file(f"{obj.path}: virtual dataset maps {dataset!r} of", source, at)
            skipped = _skip_selections(blob, pos, 2)
            if skipped is None:
                self._unparsed(f"{obj.path}: virtual dataset selection not parsed", at)
                return
            pos = skipped


    def _vds_name(self, blob: bytes, pos: int, shared: int, names: list[tuple[str, str]],
                  which: int, same: int) -> tuple[str, int]:
        """One name of a mapping: inline, '.' (same file) or shared with an earlier mapping."""
        if same:
            return ".", pos
        if shared:
            origin = uint(blob, pos, self.reader.lengths)
            if origin >= len(names):
                raise self.reader.fail("virtual dataset mapping shares a later name", None)
            return names[origin][which], pos + self.reader.lengths
        raw, _, _ = blob[pos:].partition(b"\x00")
        return raw.decode("utf-8", "replace"), pos + len(raw) + 1


def _pickle_head(data: bytes) -> bool:
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _may_import(data: bytes) -> bool:
    """Could unpickling these bytes import anything? Imports need a PROTO-headed stream's
    opcodes, a newline-ended GLOBAL/INST name or a STACK_GLOBAL byte: plain text has none."""
    return _pickle_head(data) or b"\n" in data or b"\x93" in data


def _vlen_bytes(dtype: bytes) -> bool:
    """A variable-length string, or a sequence of one-byte elements (bytes rows)."""
    kind = dtype[1] & 0x0F
    return kind == 1 or (kind == 0 and len(dtype) >= 16 and uint(dtype, 12, 4) == 1)


def _elements(where: str, data: bytes, count: int, size: int) -> list[tuple[str, bytes]]:
    """Each fixed-size element (string or opaque), named by index when there are several."""
    return [(f"{where}[{i}]" if count > 1 else where,
             data[i * size : (i + 1) * size].rstrip(b"\x00"))
            for i in range(min(count, len(data) // size if size else 0))]


def _skip_selections(blob: bytes, pos: int, count: int) -> int | None:
    """Position after `count` serialized dataspace selections, or None for a form not read."""
    for _ in range(count):
        if pos + 14 > len(blob):
            return None
        kind, version = uint(blob, pos, 4), uint(blob, pos + 4, 4)
        if kind in (0, 3):  # none, all: version, reserved, length
            pos += 16
        elif kind == 2 and version == 3:  # hyperslab: flags, encoding size, rank
            flags, enc, rank = blob[pos + 8], blob[pos + 9], uint(blob, pos + 10, 4)
            pos += 14
            if flags & 1:  # regular: start, stride, count, block per dimension
                pos += 4 * rank * enc
            else:
                pos += enc + 2 * rank * enc * uint(blob, pos, enc)
        elif kind == 2 and version == 1:
            rank, blocks = uint(blob, pos + 16, 4), uint(blob, pos + 20, 4)
            pos += 24 + 8 * rank * blocks
        else:
            return None
        if pos > len(blob):
            return None
    return pos


def _string(reader: Reader, attr: Attribute, ctx: ScanContext) -> bytes | None:
    """The value of a scalar string attribute (fixed or variable length), else None."""
    if attr.shared:
        ctx.add(UNPARSED, f"attribute {attr.name!r} uses a shared datatype or dataspace")
        ctx.limit_hit()
        return None
    cls, size = attr.dtype[0] & 0x0F, uint(attr.dtype, 4, 4)
    if reader.elements(attr.space, None) != 1:
        return None
    if cls == _STRING:
        if size > len(attr.data):
            raise reader.fail("string attribute larger than its message", None)
        return attr.data[:size].rstrip(b"\x00 ")
    if cls == _VLEN and attr.dtype[1] & 0x0F == 1:
        length, heap, index = reader.vlen_ref(attr.data, None)
        if length > ctx.limits.max_json_bytes:
            raise LimitExceeded(f"{length}-byte string attribute")
        return reader.heap_object(heap, index, None, length)
    return None


SPEC = FormatSpec(
    id=FormatId.HDF5, sniff=sniff, scan=scan, container=True, rules=RULES,
    facts=("hdf5_superblock", "root_attributes", "objects", "pickled_values", "keras_version",
           "backend", "model_class", "classes", "modules"),
    refines=(FormatId.KERAS_H5,),
)
