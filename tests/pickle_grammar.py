"""A seeded grammar of pickles: mostly well-formed streams that exercise every opcode family.

Each generated pickle pushes values through the many spellings the C loader
accepts (text and binary strings and numbers, memo keys set by PUT, BINPUT,
LONG_BINPUT and MEMOIZE, GLOBAL / STACK_GLOBAL / INST / EXT imports, REDUCE /
NEWOBJ / NEWOBJ_EX / OBJ calls, BUILD and SETITEM writes, persistent ids),
optionally framed (correctly or across opcode boundaries), several per
stream, and a share of them corrupted byte-wise afterwards. The differential
test feeds them to the real loader and to the analyser; the same seed always
gives the same bytes.
"""

from __future__ import annotations

import random
import struct

from tests import oracle

NAMES = (
    ("os", "system"), ("builtins", "eval"), ("builtins", "getattr"), ("__builtin__", "exec"),
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
    ("numpy.core.multiarray", "_reconstruct"), ("copy_reg", "_reconstructor"),
    ("pathlib", "os.system"), ("os ", "system"), ("o\u0455", "system"), ("", "x"),
    ("subprocess", "Popen"), ("functools", "partial"), ("mod\u00e9", "n\u00e4me"),
    ("a.b.c", "d.e"), ("builtins", "set"), ("copyreg", "__newobj__"),
)


class Grammar:
    """One pickle's worth of state: protocol, memo keys known to hold strings, depth."""

    def __init__(self, rng: random.Random, proto: int):
        self.rng = rng
        self.proto = proto
        self.memo_size = 0  # distinct keys, which is what MEMOIZE numbers by
        self.strings: dict[int, str] = {}  # memo keys holding a string
        self.keys: list[int] = []  # every key set so far

    # -- leaves ---------------------------------------------------------------------------

    def string(self, text: str) -> bytes:
        raw = text.encode("utf-8", "surrogatepass")
        choice = self.rng.randrange(7)
        if choice == 0 and "\n" not in text and "\\" not in text:
            return b"V" + text.encode("raw-unicode-escape") + b"\n"
        if choice == 1 and text.isascii() and "'" not in text and "\\" not in text:
            return b"S'" + raw + b"'\n"
        if choice == 2 and text.isascii():
            return b"U" + bytes([len(raw)]) + raw if len(raw) < 256 else b"T" + _i4(len(raw)) + raw
        if choice == 3 and text.isascii():
            return b"T" + _i4(len(raw)) + raw
        if choice == 4:
            return b"X" + struct.pack("<I", len(raw)) + raw
        if choice == 5:
            return b"\x8d" + struct.pack("<Q", len(raw)) + raw
        return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + _u4(len(raw)) + raw

    def number(self) -> bytes:
        n = self.rng.choice((0, 1, 7, 255, 256, 65535, -1, 2**31 - 1, -(2**31), 10**20))
        choice = self.rng.randrange(5)
        if choice == 0:
            return b"I" + str(n).encode() + b"\n"
        if choice == 1:
            return b"L" + str(n).encode() + b"L\n"
        if choice == 2:
            raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            return b"\x8a" + bytes([len(raw)]) + raw
        if choice == 3 and 0 <= n < 256:
            return b"K" + bytes([n])
        if choice == 3 and 0 <= n < 65536:
            return b"M" + struct.pack("<H", n)
        if -(2**31) <= n < 2**31:
            return b"J" + _i4(n)
        return b"F" + str(float(n)).encode() + b"\n"

    def leaf(self) -> bytes:
        r = self.rng.randrange(8)
        if r == 0:
            return self.number()
        if r == 1:
            return self.rng.choice((b"N", b"\x88", b"\x89", b"G" + struct.pack(">d", 0.5)))
        if r == 2:
            return self.rng.choice((b"C\x02ab", b"B" + _u4(3) + b"xyz", b"\x8e" + _u8(1) + b"z"))
        if r == 3 and self.proto >= 5:
            return b"\x96" + _u8(2) + b"ab"
        return self.string(self.rng.choice(("weights", "a", "", "\u00e9t\u00e9", "x" * 300)))

    # -- memo -----------------------------------------------------------------------------

    def memoize(self, body: bytes, text: str | None = None) -> bytes:
        """Store the value `body` pushes under a fresh or reused key (it stays on the stack)."""
        r = self.rng.randrange(5)
        if r == 0 or (r == 1 and self.proto < 4):
            key = self.rng.choice((self.memo_size, self.memo_size + 3, 0, 255))
            op = b"p" + str(key).encode() + b"\n" if r == 0 else b"q" + bytes([key % 256])
            key = key if r == 0 else key % 256
        elif r == 1:
            key, op = self.memo_size, b"\x94"
        elif r == 2:
            key = self.rng.choice((self.memo_size, 70000))
            op = b"r" + _u4(key)
        else:
            key = self.memo_size % 256
            op = b"q" + bytes([key])
        if key not in self.keys:
            self.keys.append(key)
            self.memo_size += 1
        if text is None:
            self.strings.pop(key, None)
        else:
            self.strings[key] = text
        return body + op

    def get(self, key: int) -> bytes:
        r = self.rng.randrange(3)
        if r == 0:
            return b"g" + str(key).encode() + b"\n"
        if r == 1 and key < 256:
            return b"h" + bytes([key])
        return b"j" + _u4(key)

    def name_string(self, text: str) -> bytes:
        """A string for STACK_GLOBAL: pushed directly, or stored and read back from the memo."""
        if self.rng.random() < 0.4:
            body = self.memoize(self.string(text), text)
            key = next(k for k, v in reversed(self.strings.items()) if v == text)
            return body + b"0" + self.get(key)  # POP, then GET the same string back
        return self.string(text)

    # -- imports and calls ----------------------------------------------------------------

    def importing(self) -> bytes:
        module, name = self.rng.choice(NAMES)
        r = self.rng.randrange(6)
        if r == 0 and "\n" not in module + name:
            return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        if r == 1:
            code = self.rng.choice((*oracle.EXT_CODES, 9))
            if code < 256:
                return b"\x82" + bytes([code])
            if code < 65536:
                return b"\x83" + struct.pack("<H", code)
            return b"\x84" + _i4(code)
        return self.name_string(module) + self.name_string(name) + b"\x93"

    def args(self, depth: int) -> bytes:
        items = [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        if len(items) <= 3 and self.rng.random() < 0.5:
            return b"".join(items) + (b")", b"\x85", b"\x86", b"\x87")[len(items)]
        return b"(" + b"".join(items) + b"t"

    def call(self, depth: int) -> bytes:
        r = self.rng.randrange(6)
        if r == 0:
            return self.importing() + self.args(depth) + b"\x81"
        if r == 1:
            return self.importing() + self.args(depth) + b"}" + b"\x92"
        if r == 2:
            return b"(" + self.importing() + self.value(depth + 1) + b"o"
        if r == 3:
            module, name = self.rng.choice(NAMES[:8])
            return b"(" + self.value(depth + 1) + b"i" + module.encode() + b"\n" \
                + name.encode() + b"\n"
        if r == 4:  # call the result of a call
            return self.call(depth + 1) + self.args(depth) + b"R"
        return self.importing() + self.args(depth) + b"R"

    def write(self, depth: int) -> bytes:
        """BUILD, SETITEM or APPEND into an import or a call result."""
        target = self.importing() if self.rng.random() < 0.5 else self.call(depth + 1)
        r = self.rng.randrange(3)
        if r == 0:
            return target + b"}" + self.string("attr") + self.value(depth + 1) + b"s" + b"b"
        if r == 1:
            return target + self.string("key") + self.value(depth + 1) + b"s"
        return target + b"(" + self.value(depth + 1) + b"e"

    # -- structure ------------------------------------------------------------------------

    def container(self, depth: int) -> bytes:
        items = [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        r = self.rng.randrange(6)
        if r == 0:
            return b"]" + (b"(" + b"".join(items) + b"e" if items else b"")
        if r == 1:
            return b"(" + b"".join(items) + b"l"
        if r == 2:
            pairs = b"".join(self.string(f"k{i}") + v for i, v in enumerate(items))
            return b"}" + (b"(" + pairs + b"u" if pairs else b"")
        if r == 3 and self.proto >= 4:
            return b"\x8f" + (b"(" + b"".join(items) + b"\x90" if items else b"")
        if r == 4 and self.proto >= 4:
            return b"(" + b"".join(items) + b"\x91"
        return b"(" + b"".join(items) + b"t"

    def value(self, depth: int = 0) -> bytes:
        """Bytes that push exactly one value."""
        if depth > 4:
            return self.leaf()
        r = self.rng.random()
        if r < 0.25:
            body = self.leaf()
        elif r < 0.45:
            body = self.call(depth)
        elif r < 0.55:
            body = self.importing()
        elif r < 0.65:
            body = self.write(depth)
        elif r < 0.85:
            body = self.container(depth)
        elif r < 0.9 and self.keys:
            return self.get(self.rng.choice(self.keys))
        elif r < 0.95:
            body = self.value(depth + 1) + b"Q"  # BINPERSID
        else:
            body = self.value(depth + 1) + b"2" + b"0"  # DUP, POP
        return self.memoize(body) if self.rng.random() < 0.3 else body


def pickle_bytes(rng: random.Random) -> bytes:
    """One pickle: optional PROTO, a value (and maybe a discarded one), STOP, maybe framed."""
    proto = rng.randrange(6)
    g = Grammar(rng, proto)
    body = g.value()
    if rng.random() < 0.2:
        body = g.value() + b"0" + body
    if rng.random() < 0.1:
        body = b"(" + g.value() + b"1" + body  # POP_MARK discards a marked value
    body += b"."
    head = b"\x80" + bytes([proto]) if proto >= 2 or rng.random() < 0.3 else b""
    if proto >= 4 and rng.random() < 0.6:
        return head + _frames(rng, body)
    return head + body


def _frames(rng: random.Random, body: bytes) -> bytes:
    """FRAMEs over the body: at random cut points, so some opcodes cross a frame end."""
    out, at = b"", 0
    while at < len(body):
        n = min(len(body) - at, rng.randrange(1, 64))
        out += b"\x95" + _u8(n) + body[at : at + n]
        at += n
    return out


def stream(rng: random.Random) -> bytes:
    """One to three pickles, sometimes with trailing bytes, sometimes corrupted."""
    data = b"".join(pickle_bytes(rng) for _ in range(rng.choice((1, 1, 1, 2, 3))))
    if rng.random() < 0.05:
        data += rng.choice((b"\x00garbage", b"\xff", b"cos\nsystem\n"))
    if rng.random() < 0.25:
        data = _corrupt(rng, data)
    return data


def _corrupt(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not buf:
            break
        i = rng.randrange(len(buf))
        r = rng.randrange(3)
        if r == 0:
            buf[i] = rng.randrange(256)
        elif r == 1:
            del buf[i]
        else:
            buf.insert(i, rng.choice(b"(0012Rbsuea.\x94\x93\x95hq"))
    return bytes(buf)


def corpus(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [stream(rng) for _ in range(count)]


def _i4(n: int) -> bytes:
    return struct.pack("<i", n)


def _u4(n: int) -> bytes:
    return struct.pack("<I", n)


def _u8(n: int) -> bytes:
    return struct.pack("<Q", n)
