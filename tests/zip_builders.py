"""Hand-made zips: every header field under the test's control.

`zipfile` cannot write a zip whose local header disagrees with its central
directory, whose CRC is wrong or that hides a member from the directory, so
the bytes are assembled here field by field. Also a few payload helpers
shared by the container tests: pickles that would create a canary file if
anything ever executed them.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field


@dataclass
class ZMember:
    name: str
    data: bytes
    method: int = 0  # 0 stored, 8 deflate, anything else written as given (data stored)
    flags: int = 0
    local_flags: int | None = None  # defaults to `flags`
    local_name: str | None = None  # defaults to `name`
    crc: int | None = None  # defaults to the real CRC-32
    in_central: bool = True
    mode: int | None = None  # unix mode: written as made-by unix + external attributes
    descriptor: bool = False  # sizes and CRC in a data descriptor, zeros in the local header
    wide_descriptor: bool = False  # 8-byte sizes in the descriptor, as zip64 writers do
    extra: bytes = b""
    offset_override: int | None = None  # central directory's local-header offset
    compressed: bytes | None = field(default=None, repr=False)


def _payload(m: ZMember) -> bytes:
    if m.compressed is not None:
        return m.compressed
    if m.method == 8:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(m.data) + c.flush()
    return m.data


def build_zip(
    members: list[ZMember], *, prefix: bytes = b"", between: bytes = b"", trailing: bytes = b"",
    comment: bytes = b"",
) -> bytes:
    """Local headers and data in order, then the central directory of `in_central` members."""
    out = bytearray(prefix)
    central = bytearray()
    count = 0
    for m in members:
        payload = _payload(m)
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        flags = m.flags | (0x8 if m.descriptor else 0)
        local_flags = (m.local_flags if m.local_flags is not None else m.flags) | (
            0x8 if m.descriptor else 0)
        local_name = (m.local_name if m.local_name is not None else m.name).encode()
        offset = len(out)
        sizes = (0, 0, 0) if m.descriptor else (crc, len(payload), len(m.data))
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, local_flags, m.method, 0, 0x21,
                           *sizes, len(local_name), len(m.extra))
        out += local_name + m.extra + payload
        if m.descriptor:
            fmt = "<4sLQQ" if m.wide_descriptor else "<4s3L"
            out += struct.pack(fmt, b"PK\x07\x08", crc, len(payload), len(m.data))
        out += between
        if not m.in_central:
            continue
        name = m.name.encode()
        made_by = (3 << 8 | 20) if m.mode is not None else 20
        attr = (m.mode << 16) if m.mode is not None else 0
        at = offset if m.offset_override is None else m.offset_override
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", made_by, 20, flags, m.method, 0,
                               0x21, crc, len(payload), len(m.data), len(name), 0, 0, 0, 0,
                               attr, at)
        central += name
        count += 1
    cd_offset = len(out)
    out += central
    small = count
    if count > 0xFFFF:  # zip64 end record and locator, as writers do for big archives
        end64 = len(out)
        out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                           len(central), cd_offset)
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, end64, 1)
        small = 0xFFFF
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, small, small, len(central), cd_offset,
                       len(comment))
    return bytes(out + comment + trailing)


# --- payloads -------------------------------------------------------------------------------

def canary_pickle(canary: os.PathLike[str] | str, protocol: int = 2) -> bytes:
    """A pickle that would create `canary` if it were ever unpickled (it never is)."""
    cmd = f"touch {os.fspath(canary)}".encode()
    if protocol == 0:
        return b"cposix\nsystem\n(V" + cmd + b"\ntR."
    head = b"\x80" + bytes([protocol])
    return head + b"cposix\nsystem\n" + b"X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."


def benign_pickle(protocol: int = 2) -> bytes:
    import pickle

    return pickle.dumps({"weights": [1.0, 2.0, 3.0], "name": "ok"}, protocol=protocol)

