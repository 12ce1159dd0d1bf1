"""Bounded reading of the HDF5 structures the scan needs, in pure Python.

HDF5 is normally parsed by a C library that hostile files can crash, so the
scanner reads only what it judges: the superblock (versions 0-3), object
headers (v1 or v2, continuation blocks followed), attributes, the groups'
symbol tables (v1 B-trees, local heaps), compact links and the fractal heap
of dense links (direct blocks, walked object by object), the global heap,
and the chunk B-tree of datasets whose bytes must be read. Every address and
size is checked against the file before it is read; counts are bounded. A
structure this module does not read is reported by the caller, never skipped
silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.model import Rule

SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_MESSAGES = 100_000
MAX_CHUNKS = 10_000
MAX_NODES = 1_000_000  # B-tree nodes, symbol table nodes and chunks of one file
MAX_LOCAL_HEAP = 16 << 20  # one group's member names: real ones are kilobytes
CONTINUATION = 0x0010


@dataclass(frozen=True)
class Message:
    """One object header message: its type, where its data starts, its size, flags and data."""

    type: int
    addr: int
    size: int
    flags: int
    raw: bytes  # the message's data, read with its header block


@dataclass(frozen=True)
class Attribute:
    """An attribute's name and raw datatype, dataspace and data (decoded by the caller)."""

    name: str
    dtype: bytes
    space: bytes
    data: bytes
    shared: bool  # datatype or dataspace stored elsewhere: not decodable here


@dataclass(frozen=True)
class Entry:
    """A group member from a symbol table: its name and header, or a soft link's target."""

    name: str
    header: int | None
    soft: str | None


def superblock_offset(head: bytes) -> int | None:
    """The superblock is at 0 or after a user block of 512 * 2^n bytes."""
    offset = 0
    while offset + 8 <= len(head):
        if head[offset : offset + 8] == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def uint(data: bytes, at: int, width: int) -> int:
    return int.from_bytes(data[at : at + width], "little")


class Reader:
    """Bounded random access to the file and the HDF5 structures above."""

    def __init__(self, f: BinaryIO, size: int, malformed: Rule) -> None:
        self.f = f
        self.size = size
        self.malformed = malformed
        self.offsets = 8
        self.lengths = 8
        self.base = 0
        self.superblock_version = -1
        self.nodes = 0
        self.collections: dict[int, dict[int, tuple[int, int]]] = {}
        self.heaps: dict[int, bytes] = {}

    def fail(self, message: str, at: int | None) -> FormatError:
        return FormatError(message, at, self.malformed)

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise self.fail(f"structure at {addr} (+{n} bytes) lies outside the "
                            f"{self.size}-byte file", addr)
        self.f.seek(addr)
        data = self.f.read(n)
        if len(data) < n:
            raise self.fail("file shorter than its size", addr)
        return data

    def undefined(self, addr: int) -> bool:
        return addr == (1 << (8 * self.offsets)) - 1

    def count_node(self, at: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise LimitExceeded(f"more than {MAX_NODES} B-tree, heap or chunk nodes", at)

    def root(self, start: int) -> int:
        """Read the superblock at `start`; return the root group's object header address."""
        sb = self.read(start, min(96, self.size - start))
        if len(sb) < 16:  # signature, versions and the two size fields
            raise self.fail("truncated superblock", start)
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
            raise self.fail(f"unknown superblock version {version}", start + 8)
        if self.offsets not in (2, 4, 8) or self.lengths not in (2, 4, 8):
            raise self.fail(f"invalid sizes of offsets/lengths {self.offsets}/{self.lengths}",
                            start + 9)
        if root + self.offsets > len(sb):
            raise self.fail("truncated superblock", start)
        self.base = uint(sb, addresses, self.offsets)
        return self.base + uint(sb, root, self.offsets)

    def messages(self, header: int) -> Iterator[Message]:
        """Every message of an object header, continuation blocks included."""
        first = self.read(header, min(16, self.size - header))
        chunks: list[tuple[int, int]] = []
        if first[:4] == b"OHDR":
            flags = first[5]
            pos = header + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 3)
            chunk = uint(self.read(pos, width), 0, width)
            chunks.append((pos + width, pos + width + chunk))
            v2, tracked = True, bool(flags & 0x04)
        elif first[:1] == b"\x01" and len(first) >= 16:
            size = uint(first, 8, 4)
            chunks.append((header + 16, header + 16 + size))
            v2, tracked = False, False
        else:
            raise self.fail("object header has an unknown version", header)
        count = done = 0
        while chunks:
            done += 1
            if done > MAX_CHUNKS:
                raise LimitExceeded(f"more than {MAX_CHUNKS} object header blocks", header)
            start, end = chunks.pop(0)
            if end > self.size or end < start:
                raise self.fail("object header block runs past the end of the file", start)
            block = self.read(start, end - start)  # one read per block, messages parsed from it
            prefix = (4 + (2 if tracked else 0)) if v2 else 8
            pos = start
            while pos + prefix <= end:
                raw = block[pos - start : pos - start + prefix]
                if v2:
                    mtype, size, flags = raw[0], uint(raw, 1, 2), raw[3]
                else:
                    mtype, size, flags = uint(raw, 0, 2), uint(raw, 2, 2), raw[4]
                data = pos + prefix
                if data + size > end:
                    raise self.fail(f"header message of {size} bytes overruns its block", pos)
                count += 1
                if count > MAX_MESSAGES:
                    raise LimitExceeded(f"more than {MAX_MESSAGES} header messages", pos)
                if mtype == CONTINUATION:
                    cont = block[data - start : data - start + self.offsets + self.lengths]
                    addr = self.base + uint(cont, 0, self.offsets)
                    length = uint(cont, self.offsets, self.lengths)
                    if v2:
                        if self.read(addr, 4) != b"OCHK":
                            raise self.fail("continuation block without OCHK signature", addr)
                        chunks.append((addr + 4, addr + length - 4))
                    else:
                        chunks.append((addr, addr + length))
                else:
                    yield Message(mtype, data, size, flags,
                                  block[data - start : data - start + size])
                pos = data + size

    def attribute(self, msg: Message) -> Attribute:
        raw = msg.raw
        if len(raw) < 8:
            raise self.fail("truncated attribute message", msg.addr)
        version = raw[0]
        if version not in (1, 2, 3):
            raise self.fail(f"attribute message version {version}", msg.addr)
        name_size, type_size, space_size = (uint(raw, i, 2) for i in (2, 4, 6))
        pad = (lambda n: -(-n // 8) * 8) if version == 1 else (lambda n: n)
        pos = 9 if version == 3 else 8
        name_raw = raw[pos : pos + name_size]
        pos += pad(name_size)
        dtype = raw[pos : pos + type_size]
        pos += pad(type_size)
        space = raw[pos : pos + space_size]
        pos += pad(space_size)
        if pos > len(raw) or len(dtype) < 8:
            raise self.fail("attribute message fields overrun the message", msg.addr)
        name = name_raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
        shared = version > 1 and bool(raw[1] & 0x03)
        return Attribute(name, dtype, space, raw[pos:], shared)

    def elements(self, space: bytes, at: int) -> int:
        """Number of elements of a dataspace message (0 for a null dataspace)."""
        if len(space) < 4:
            raise self.fail("truncated dataspace", at)
        version, rank = space[0], space[1]
        if version == 2 and space[3] == 2:
            return 0
        dims_at = 8 if version == 1 else 4
        if len(space) < dims_at + rank * self.lengths:
            raise self.fail("truncated dataspace dimensions", at)
        count = 1
        for i in range(rank):
            count *= uint(space, dims_at + i * self.lengths, self.lengths)
        return count

    def vlen_ref(self, data: bytes, at: int) -> tuple[int, int, int]:
        """(length, heap collection, object index) of one variable-length reference."""
        if len(data) < 8 + self.offsets:
            raise self.fail("variable-length reference truncated", at)
        return (uint(data, 0, 4), self.base + uint(data, 4, self.offsets),
                uint(data, 4 + self.offsets, 4))

    def heap_object(self, collection: int, index: int, at: int | None, length: int) -> bytes:
        """Up to `length` bytes of object `index` of a global heap collection."""
        found = self._collection(collection).get(index)
        if found is None:
            raise self.fail(f"global heap object {index} not found", at)
        return self.read(found[0], min(found[1], length))

    def _collection(self, collection: int) -> dict[int, tuple[int, int]]:
        """Object number -> (address, size) of a global heap collection, read once."""
        cached = self.collections.get(collection)
        if cached is not None:
            return cached
        self.count_node(collection)
        header = self.read(collection, 8 + self.lengths)
        if header[:4] != b"GCOL":
            raise self.fail("global heap reference without GCOL signature", collection)
        end = collection + uint(header, 8, self.lengths)
        pos = collection + 8 + self.lengths
        objects: dict[int, tuple[int, int]] = {}
        for _ in range(MAX_MESSAGES):
            if pos + 8 + self.lengths > min(end, self.size):
                break
            obj = self.read(pos, 8 + self.lengths)
            number, size = uint(obj, 0, 2), uint(obj, 8, self.lengths)
            if number == 0:
                break
            objects[number] = (pos + 8 + self.lengths, size)
            pos += 8 + self.lengths + -(-size // 8) * 8
        self.collections[collection] = objects
        return objects

    def local_heap(self, addr: int) -> bytes:
        """The data segment of a local heap (group member and external file names), read once."""
        cached = self.heaps.get(addr)
        if cached is not None:
            return cached
        raw = self.read(addr, 8 + 2 * self.lengths + self.offsets)
        if raw[:4] != b"HEAP":
            raise self.fail("local heap without HEAP signature", addr)
        size = uint(raw, 8, self.lengths)
        if size > MAX_LOCAL_HEAP:
            raise LimitExceeded(f"{size}-byte local heap of names", addr)
        data = self.read(self.base + uint(raw, 8 + 2 * self.lengths, self.offsets), size)
        self.heaps[addr] = data
        return data

    def heap_string(self, heap: bytes, offset: int, at: int) -> str:
        if offset >= len(heap):
            raise self.fail(f"name offset {offset} outside its {len(heap)}-byte local heap", at)
        end = heap.find(b"\x00", offset)
        return heap[offset : end if end >= 0 else len(heap)].decode("utf-8", "replace")

    def _btree(self, addr: int, kind: int, key_size: int) -> Iterator[tuple[bytes, int]]:
        """(key before, child address) of every leaf entry of a v1 B-tree of `kind`."""
        stack = [addr]
        while stack:
            node = stack.pop()
            self.count_node(node)
            head = self.read(node, 8 + 2 * self.offsets)
            if head[:4] != b"TREE" or head[4] != kind:
                raise self.fail("B-tree node without TREE signature", node)
            level, used = head[5], uint(head, 6, 2)
            step = key_size + self.offsets
            body = self.read(node + len(head), used * step + key_size)
            for i in range(used):
                key = body[i * step : i * step + key_size]
                child = self.base + uint(body, i * step + key_size, self.offsets)
                if level:
                    stack.append(child)
                else:
                    yield key, child

    def group_entries(self, btree: int, heap_addr: int) -> Iterator[Entry]:
        """Members of an old-style group: its B-tree's symbol nodes, names from its local heap."""
        heap = self.local_heap(heap_addr)
        entry_size = 2 * self.offsets + 24
        for _, snod in self._btree(btree, 0, self.lengths):
            self.count_node(snod)
            head = self.read(snod, 8)
            if head[:4] != b"SNOD":
                raise self.fail("symbol table node without SNOD signature", snod)
            count = uint(head, 6, 2)
            body = self.read(snod + 8, count * entry_size)
            for i in range(count):
                at = i * entry_size
                name = self.heap_string(heap, uint(body, at, self.offsets), snod)
                header = self.base + uint(body, at + self.offsets, self.offsets)
                cache = uint(body, at + 2 * self.offsets, 4)
                if cache == 2:  # soft link: the target's name is in the heap
                    target = uint(body, at + 2 * self.offsets + 8, 4)
                    yield Entry(name, None, self.heap_string(heap, target, snod))
                else:
                    yield Entry(name, header, None)

    def chunks(self, btree: int, rank: int) -> Iterator[tuple[int, int, int, int]]:
        """(first offset, address, size, filter mask) of every chunk of a v1 chunk B-tree."""
        key_size = 8 + 8 * rank
        for key, child in self._btree(btree, 1, key_size):
            self.count_node(child)
            yield uint(key, 8, 8), child, uint(key, 0, 4), uint(key, 4, 4)

    def heap_blocks(self, heap: int) -> tuple[list[tuple[int, bytes]], int] | None:
        """(file address, object bytes) of every direct block of a fractal heap, and its
        managed object count.

        None when the heap keeps objects this reader does not walk: filtered
        (compressed) blocks, huge or tiny objects, or indirect blocks below the root.
        """
        o, n = self.offsets, self.lengths
        raw = self.read(heap, 22 + 12 * n + 3 * o)
        if raw[:4] != b"FRHP":
            raise self.fail("fractal heap without FRHP signature", heap)
        filters, flags = uint(raw, 7, 2), raw[9]
        pos = 14 + 5 * n + 2 * o  # past next huge id .. direct block iterator
        managed = uint(raw, pos, n)
        huge, tiny = uint(raw, pos + 2 * n, n), uint(raw, pos + 4 * n, n)
        pos += 5 * n
        width, start = uint(raw, pos, 2), uint(raw, pos + 2, n)
        biggest, max_bits = uint(raw, pos + 2 + n, n), uint(raw, pos + 2 + 2 * n, 2)
        root = self.base + uint(raw, pos + 6 + 2 * n, o)
        rows = uint(raw, pos + 6 + 2 * n + o, 2)
        if filters or huge or tiny or not width or start < 1 or biggest < start:
            return None
        off_bytes = -(-max_bits // 8)
        header = 5 + o + off_bytes + (4 if flags & 0x02 else 0)
        blocks: list[tuple[int, int]] = []
        if rows == 0:
            blocks.append((root, start))
        else:
            direct_rows = (biggest // start).bit_length() + 1
            if rows > direct_rows:
                return None  # indirect blocks below the root
            self.count_node(root)
            table = self.read(root, 5 + o + off_bytes + rows * width * o)
            if table[:4] != b"FHIB":
                raise self.fail("fractal heap indirect block without FHIB signature", root)
            for i in range(rows * width):
                child = uint(table, 5 + o + off_bytes + i * o, o)
                if not self.undefined(child):
                    row = i // width
                    blocks.append((self.base + child,
                                   start if row < 2 else start << (row - 1)))
        out: list[tuple[int, bytes]] = []
        for addr, size in blocks:
            self.count_node(addr)
            block = self.read(addr, size)
            if block[:4] != b"FHDB":
                raise self.fail("fractal heap direct block without FHDB signature", addr)
            out.append((addr + header, block[header:]))
        return out, managed
