"""A dataset's raw bytes, for the few datasets the HDF5 scan must read (pickle candidates).

Compact and contiguous layouts are read in place; chunked ones through their
index (layout v3: a v1 B-tree; v4/v5: a single chunk, an implicit run, a
fixed array, or an extensible array's index block and the data blocks it
points at directly) for one-dimensional datasets, with the deflate, shuffle
and Fletcher-32 filters undone. Anything else raises `Unread` naming it, so
the caller reports what it could not review. All reads go through the
bounded `Reader`; inflated chunks are capped.
"""

from __future__ import annotations

import zlib

from auditor.errors import LimitExceeded
from auditor.formats.weights.hdf5_reader import Reader, uint

DEFLATE, SHUFFLE, FLETCHER = 1, 2, 3
Chunk = tuple[int, int, int, int]  # first element, address, stored size, filter mask


class Unread(Exception):
    """A layout, chunk index or filter this module does not read; the message says which."""


def raw_data(reader: Reader, layout: bytes, filters: bytes | None, extent: int, want: int,
             cap: int) -> bytes:
    """Up to `want` bytes of the data a layout message describes (`extent`: element count)."""
    # Version 5 (HDF5 2.0) encodes chunked layouts like version 4.
    version, cls = layout[0], layout[1] if len(layout) > 1 and layout[0] in (3, 4, 5) else -1
    if cls == 0:
        return layout[4 : 4 + min(uint(layout, 2, 2), want)]
    if cls == 1:
        addr = uint(layout, 2, reader.offsets)
        size = uint(layout, 2 + reader.offsets, reader.lengths)
        if reader.undefined(addr):
            return b""
        return reader.read(reader.base + addr, min(size, want))
    if cls != 2:
        raise Unread(f"data layout version {version} not read")
    ids = filter_ids(filters) if filters is not None else []
    (chunk, elem), chunks = chunk_index(reader, layout, extent)
    out = bytearray()
    for first, addr, size, mask in sorted(chunks):
        start = first * elem
        if start >= want:
            break
        data = _unfilter(reader, reader.read(addr, size), ids, mask, elem, min(chunk * elem, cap))
        out[start : start + len(data)] = data
    return bytes(out[:want])


def chunk_index(reader: Reader, layout: bytes, extent: int) -> tuple[tuple[int, int], list[Chunk]]:
    """((chunk length, element size), chunks) of a one-dimensional chunked dataset."""
    o, n = reader.offsets, reader.lengths
    if len(layout) < 8 or len(layout) < (3 + o + 4 * layout[2] if layout[0] == 3
                                         else 6 + layout[3] * layout[4]):
        raise reader.fail("truncated chunked data layout message", None)
    if layout[0] == 3:
        rank, btree = layout[2], uint(layout, 3, o)
        dims = [uint(layout, 3 + o + 4 * i, 4) for i in range(rank)]
        if len(dims) != 2 or not dims[0]:  # one data dimension and the element size
            raise Unread(f"chunked data of rank {rank - 1} not read")
        if reader.undefined(btree):
            return (dims[0], dims[1]), []
        return (dims[0], dims[1]), list(reader.chunks(reader.base + btree, rank))
    flags, rank, enc = layout[2], layout[3], layout[4]
    dims = [uint(layout, 5 + i * enc, enc) for i in range(rank)]
    pos = 5 + rank * enc
    kind, pos = layout[pos], pos + 1
    if len(dims) != 2 or not dims[0]:
        raise Unread(f"chunked data of rank {rank - 1} not read")
    chunk, elem = dims
    whole = chunk * elem
    if kind == 1:  # single chunk, filtered size and mask first when filtered
        size, mask = (uint(layout, pos, n), uint(layout, pos + n, 4)) if flags & 2 else (whole, 0)
        addr = uint(layout, pos + (n + 4 if flags & 2 else 0), o)
        return (chunk, elem), [] if reader.undefined(addr) else [
            (0, reader.base + addr, size, mask)]
    if kind == 2:  # implicit: every chunk allocated, one after the other
        addr = uint(layout, pos, o)
        return (chunk, elem), [(i * chunk, reader.base + addr + i * whole, whole, 0)
                               for i in range(-(-extent // chunk))]
    if kind == 3:
        found = _fixed_array(reader, uint(layout, pos + 1, o))
    elif kind == 4:
        found = _extensible_array(reader, uint(layout, pos + 5, o))
    else:
        raise Unread(f"chunk index type {kind} (layout version {layout[0]}) not read")
    return (chunk, elem), [(i * chunk, a, size or whole, mask) for i, a, size, mask in found]


def _entries(reader: Reader, raw: list[bytes], entry: int) -> list[Chunk]:
    """(chunk number, address, filtered size or 0, mask) of array entries, unallocated skipped."""
    o = reader.offsets
    chunks = []
    for i, item in enumerate(raw):
        child = uint(item, 0, o)
        if item and not reader.undefined(child):
            filtered = entry > o
            size = uint(item, o, entry - o - 4) if filtered else 0
            mask = uint(item, entry - 4, 4) if filtered else 0
            chunks.append((i, reader.base + child, size, mask))
    return chunks


def _fixed_array(reader: Reader, addr: int) -> list[Chunk]:
    o, n = reader.offsets, reader.lengths
    if reader.undefined(addr):
        return []
    head = reader.read(reader.base + addr, 8 + n + o)
    if head[:4] != b"FAHD":
        raise reader.fail("fixed array without FAHD signature", addr)
    entry, page_bits, count = head[6], head[7], uint(head, 8, n)
    block = reader.base + uint(head, 8 + n, o)
    if count > (1 << page_bits) or entry < o:
        raise LimitExceeded("paged fixed array chunk index", addr)
    body = reader.read(block, 6 + o + count * entry)
    if body[:4] != b"FADB":
        raise reader.fail("fixed array data block without FADB signature", block)
    at = 6 + o
    return _entries(reader, [body[at + i * entry : at + (i + 1) * entry] for i in range(count)],
                    entry)


def _extensible_array(reader: Reader, addr: int) -> list[Chunk]:
    """The index block's entries and those of the data blocks it points at directly;
    secondary blocks and paged data blocks are not read."""
    o, n = reader.offsets, reader.lengths
    if reader.undefined(addr):
        return []
    head = reader.read(reader.base + addr, 12 + 6 * n + o)
    if head[:4] != b"EAHD":
        raise reader.fail("extensible array without EAHD signature", addr)
    entry, max_bits, in_index, min_elems, min_ptrs, page_bits = head[6:12]
    realized = uint(head, 12 + 5 * n, n)
    index = reader.base + uint(head, 12 + 6 * n, o)
    if entry < o or min_elems < 1 or min_ptrs < 1:
        raise reader.fail("extensible array parameters out of range", addr)
    direct = 2 * (min_ptrs - 1)  # data blocks of the first super blocks, in the index block
    sizes = [min_elems << ((u + 1) // 2) for u in range(2 * (min_ptrs.bit_length() - 1))
             for _ in range(1 << (u // 2))]
    if realized > in_index + sum(sizes[:direct]) or any(
            s > (1 << page_bits) for s in sizes[:direct]):
        raise Unread("extensible array chunk index past its index block not read")
    block = reader.read(index, 6 + o + in_index * entry + direct * o)
    if block[:4] != b"EAIB":
        raise reader.fail("extensible array index block without EAIB signature", index)
    raw = [block[6 + o + i * entry : 6 + o + (i + 1) * entry] for i in range(in_index)]
    header = 6 + o + -(-max_bits // 8)
    for d in range(direct):
        child = uint(block, 6 + o + in_index * entry + d * o, o)
        if reader.undefined(child):
            raw.extend([b""] * sizes[d])
            continue
        reader.count_node(child)
        data = reader.read(reader.base + child, header + sizes[d] * entry)
        if data[:4] != b"EADB":
            raise reader.fail("extensible array data block without EADB signature", child)
        raw.extend(data[header + i * entry : header + (i + 1) * entry] for i in range(sizes[d]))
    return _entries(reader, raw[:realized], entry)


def filter_ids(raw: bytes) -> list[int]:
    """Filter ids of a filter pipeline message (versions 1 and 2)."""
    if len(raw) < 2:
        raise Unread("truncated filter pipeline message")
    version, count = raw[0], raw[1]
    pos = 8 if version == 1 else 2
    ids = []
    for _ in range(count):
        fid = uint(raw, pos, 2)
        named = version == 1 or fid >= 256
        name_len = uint(raw, pos + 2, 2) if named else 0
        pos += 2 + (2 if named else 0)
        values = uint(raw, pos + 2, 2)
        pos += 4 + (-(-name_len // 8) * 8 if version == 1 else name_len)
        pos += 4 * values + (4 if version == 1 and values % 2 else 0)
        if fid not in (DEFLATE, SHUFFLE, FLETCHER):
            raise Unread(f"chunks compressed by filter {fid}, not decoded")
        ids.append(fid)
    return ids


def _unfilter(reader: Reader, data: bytes, filters: list[int], mask: int, elem: int,
              full: int) -> bytes:
    """Undo the pipeline in reverse (bit i of `mask` set: filter i was skipped)."""
    for i in reversed(range(len(filters))):
        if mask & (1 << i):
            continue
        if filters[i] == DEFLATE:
            try:
                data = zlib.decompressobj().decompress(data, full)
            except zlib.error as exc:
                raise reader.fail(f"deflated chunk: {exc}", None) from None
        elif filters[i] == FLETCHER:
            data = data[:-4]
        elif elem > 1:
            n = len(data) // elem
            data = bytes(data[j * n + k] for k in range(n) for j in range(elem))
    return data
