"""Constant folding of Python string expressions: what name a computed spelling builds.

Obfuscated remote code hides `exec` or `os.system` behind a name it builds at
run time: `codecs.decode('riny', 'rot13')`, `''.join(['sy', 'stem'])`,
`bytes.fromhex('...').decode()`, `'metsys'[::-1]`, `chr(101) + ...`,
f-strings, `str.format` and `%` of constants, `base64.b64decode(...)`. This
module computes such values from the syntax tree with a small evaluator over
a whitelist of pure string operations, implemented here on plain `str`,
`bytes`, `int` and lists: nothing from the file is ever evaluated, imported
or called, and every result is bounded (`MAX_FOLDED`), so a hostile literal
cannot make the review allocate. Anything outside the whitelist is UNKNOWN.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_FOLDED = 4096  # characters, bytes or items: longer values are left unknown
MAX_DEPTH = 64  # nested expressions followed before giving up
MAX_STEPS = 20_000  # expressions folded for one top-level expression (comprehensions multiply)
MAX_INT = 1 << 32
UNKNOWN: Any = object()

# Codec names a fold may use, by normalised spelling -> the codec's canonical name. Codecs are
# looked up by our own table so a name from the file never reaches the codec search (which
# imports modules).
CODECS: dict[str, str] = {
    **dict.fromkeys(("rot13", "rot_13"), "rot_13"),
    **dict.fromkeys(("hex", "hex_codec"), "hex_codec"),
    **dict.fromkeys(("base64", "base_64", "base64_codec"), "base64_codec"),
    **dict.fromkeys(("utf8", "utf_8", "u8", "utf"), "utf-8"),
    **dict.fromkeys(("ascii", "us_ascii", "646"), "ascii"),
    **dict.fromkeys(("latin1", "latin_1", "iso8859_1", "iso_8859_1", "l1"), "latin-1"),
    **dict.fromkeys(("unicode_escape",), "unicode_escape"),
}
# Decoders of the standard library, each a pure bytes -> bytes function.
DECODERS: dict[str, Callable[[Any], bytes]] = {
    "base64.b64decode": base64.b64decode, "base64.standard_b64decode": base64.b64decode,
    "base64.urlsafe_b64decode": base64.urlsafe_b64decode, "base64.b32decode": base64.b32decode,
    "base64.b16decode": base64.b16decode, "base64.b85decode": base64.b85decode,
    "base64.a85decode": base64.a85decode, "base64.decodebytes": base64.decodebytes,
    "binascii.unhexlify": binascii.unhexlify, "binascii.a2b_hex": binascii.a2b_hex,
    "binascii.a2b_base64": binascii.a2b_base64,
}
STR_METHODS = frozenset({"lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize",
                         "swapcase", "casefold", "removeprefix", "removesuffix"})
SEQUENCES = (str, bytes, list, tuple)
_PERCENT_SAFE = re.compile(r"%[sdircx%]")  # no widths or precisions: they allocate


@dataclass
class Folder:
    """Folds expressions of one file.

    `callee` names a call target through the file's imports (`d` of
    `from codecs import decode as d` is `codecs.decode`); `constants` maps the
    names the file binds exactly once to the expression bound.
    """

    callee: Callable[[ast.AST], str | None]
    constants: Mapping[str, ast.AST]
    _depth: int = 0
    _budget: int = 0
    _built: bool = False
    _resolving: set[str] = field(default_factory=set)

    def text(self, node: ast.AST) -> tuple[str | None, bool]:
        """The string an expression evaluates to (None when it cannot be computed statically),
        and whether computing it took an operation (a decode, join, slice, concatenation ...)
        rather than reading a literal or a name bound to one."""
        outer, self._built = self._built, False  # callee() may fold while we fold
        value = self.fold(node)
        built, self._built = self._built, outer or self._built
        return (value, built) if isinstance(value, str) else (None, False)

    def fold(self, node: ast.AST, local: Mapping[str, Any] | None = None) -> Any:
        if self._depth == 0:
            self._budget = MAX_STEPS
        if self._depth > MAX_DEPTH or self._budget <= 0:
            return UNKNOWN
        self._depth += 1
        self._budget -= 1
        try:
            value = self._fold(node, local or {})
        except (ValueError, TypeError, OverflowError, UnicodeError, IndexError):
            return UNKNOWN  # a decode or format that would fail at run time too
        finally:
            self._depth -= 1
        return value if _small(value) else UNKNOWN

    def _fold(self, node: ast.AST, local: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            value = node.value
            return value if type(value) in (str, bytes, int) else UNKNOWN
        if isinstance(node, ast.List | ast.Tuple):
            items = _known([self.fold(x, local) for x in node.elts])
            return tuple(items) if isinstance(node, ast.Tuple) and items is not UNKNOWN else items
        if isinstance(node, ast.Name):
            return local[node.id] if node.id in local else self._constant(node.id)
        if isinstance(node, ast.Dict):
            return self._dict(node, local)
        self._built = True
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node, local)
        if isinstance(node, ast.BinOp):
            return _binop(node.op, self.fold(node.left, local), self.fold(node.right, local))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.fold(node.operand, local)
            return UNKNOWN if type(value) is not int else (
                -value if isinstance(node.op, ast.USub) else value)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, local)
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            return self._comprehension(node, local)
        if isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args):
            return self._call(node, local)
        return UNKNOWN

    def _constant(self, name: str) -> Any:
        value = self.constants.get(name)
        if value is None or name in self._resolving:
            return UNKNOWN
        self._resolving.add(name)
        try:
            return self.fold(value)
        finally:
            self._resolving.discard(name)

    def _dict(self, node: ast.Dict, local: Mapping[str, Any]) -> Any:
        """A lookup table of constants: `{'a': 'sys', 'b': 'tem'}`."""
        if any(k is None for k in node.keys) or len(node.keys) > MAX_FOLDED:
            return UNKNOWN
        keys = [self.fold(k, local) for k in node.keys if k is not None]
        values = [self.fold(v, local) for v in node.values]
        if any(type(k) not in (str, int) for k in keys) or UNKNOWN in values:
            return UNKNOWN
        return dict(zip(keys, values, strict=True))

    def _fstring(self, node: ast.JoinedStr, local: Mapping[str, Any]) -> Any:
        parts = []
        for item in node.values:
            if isinstance(item, ast.FormattedValue):
                if item.format_spec is not None:
                    return UNKNOWN
                value = self.fold(item.value, local)
                if type(value) not in (str, bytes, int):
                    return UNKNOWN
                convert = {-1: str, 115: str, 114: repr, 97: ascii}.get(item.conversion, str)
                parts.append(convert(value))
            else:
                parts.append(self.fold(item, local))
            if not _fits(parts):
                return UNKNOWN
        return "".join(parts) if all(isinstance(p, str) for p in parts) else UNKNOWN

    def _subscript(self, node: ast.Subscript, local: Mapping[str, Any]) -> Any:
        base = self.fold(node.value, local)
        if isinstance(base, dict) and not isinstance(node.slice, ast.Slice):
            return base.get(self.fold(node.slice, local), UNKNOWN)
        if not isinstance(base, SEQUENCES):
            return UNKNOWN
        if isinstance(node.slice, ast.Slice):
            bounds = [None if x is None else self.fold(x, local)
                      for x in (node.slice.lower, node.slice.upper, node.slice.step)]
            if any(b is not None and type(b) is not int for b in bounds):
                return UNKNOWN
            return base[slice(*bounds)]
        index = self.fold(node.slice, local)
        return base[index] if type(index) is int else UNKNOWN

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp,
                       local: Mapping[str, Any]) -> Any:
        """`[chr(c) for c in (115, 121)]`: one loop over a constant, no conditions."""
        if len(node.generators) != 1:
            return UNKNOWN
        loop = node.generators[0]
        items = self.fold(loop.iter, local)
        if loop.ifs or loop.is_async or not isinstance(loop.target, ast.Name) \
                or not isinstance(items, SEQUENCES):
            return UNKNOWN
        return _known([self.fold(node.elt, {**local, loop.target.id: item}) for item in items])

    def _call(self, node: ast.Call, local: Mapping[str, Any]) -> Any:
        args = [self.fold(a, local) for a in node.args]
        kwargs = {k.arg: self.fold(k.value, local) for k in node.keywords if k.arg}
        if len(kwargs) != len(node.keywords):
            return UNKNOWN
        name = self.callee(node.func)
        if name == "map" and len(node.args) == 2:
            func = self.callee(node.args[0])
            items = args[1]
            if not isinstance(items, SEQUENCES) or func not in FUNCTIONS:
                return UNKNOWN
            return _known([FUNCTIONS[func]([item], {}) for item in items])
        if any(v is UNKNOWN for v in (*args, *kwargs.values())):
            return UNKNOWN
        if name in FUNCTIONS:
            return FUNCTIONS[name](args, kwargs)
        if name in DECODERS and len(args) == 1 and not kwargs \
                and isinstance(args[0], str | bytes):
            return DECODERS[name](args[0])
        if isinstance(node.func, ast.Attribute) and name is None:
            return _method(node.func.attr, self.fold(node.func.value, local), args, kwargs)
        return UNKNOWN


def _known(items: list[Any]) -> Any:
    return UNKNOWN if any(x is UNKNOWN for x in items) else items


def _small(value: Any) -> bool:
    if isinstance(value, (*SEQUENCES, dict)):
        return len(value) <= MAX_FOLDED
    return type(value) is not int or abs(value) < MAX_INT


def _fits(*values: Any) -> bool:
    """Would text built from these values stay within MAX_FOLDED (checked before building)?"""
    total = 0
    for value in values:
        items = value if isinstance(value, list | tuple) else (value,)
        total += sum(len(v) if isinstance(v, str | bytes) else 24 if type(v) is int
                     else MAX_FOLDED + 1 for v in items)
    return total <= MAX_FOLDED


def _binop(op: ast.operator, a: Any, b: Any) -> Any:
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if isinstance(op, ast.Add) and type(a) is type(b) and isinstance(a, SEQUENCES):
        return a + b
    if isinstance(op, ast.Mult):
        for seq, times in ((a, b), (b, a)):
            if isinstance(seq, SEQUENCES) and type(times) is int \
                    and len(seq) * max(times, 0) <= MAX_FOLDED:
                return seq * times
        return UNKNOWN
    if isinstance(op, ast.Mod) and isinstance(a, str | bytes):
        return _percent(a, b)
    if type(a) is int and type(b) is int:
        ops: dict[type, Callable[[int, int], int]] = {
            ast.Add: int.__add__, ast.Sub: int.__sub__, ast.BitXor: int.__xor__,
            ast.BitAnd: int.__and__, ast.BitOr: int.__or__}
        return ops[type(op)](a, b) if type(op) in ops else UNKNOWN
    return UNKNOWN


def _percent(fmt: str | bytes, values: Any) -> Any:
    """`fmt % values` when every directive is a bare %s/%d/%i/%r/%c/%x/%%."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    if re.sub(_PERCENT_SAFE, "", text).count("%") or not _fits(fmt, values):
        return UNKNOWN
    return fmt % (values if isinstance(values, tuple) else (values,))


def _format(fmt: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """str.format with bare fields only (no attribute or index access, no format spec)."""
    for _, name, spec, _ in string.Formatter().parse(fmt):
        if name is not None and (spec or not re.fullmatch(r"\d*|[A-Za-z_]\w*", name)):
            return UNKNOWN
    return fmt.format(*args, **kwargs) if _fits(fmt, args, list(kwargs.values())) else UNKNOWN


def _codec(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    return CODECS.get(name.strip().lower().replace("-", "_"))


def _transcode(encode: bool, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """codecs.encode / codecs.decode with a whitelisted codec."""
    if kwargs or len(args) not in (1, 2):
        return UNKNOWN
    codec = _codec(args[1] if len(args) == 2 else "utf-8")
    if codec is None or not isinstance(args[0], str | bytes):
        return UNKNOWN
    return codecs.encode(args[0], codec) if encode else codecs.decode(args[0], codec)


def _method(name: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """The pure str and bytes methods (and a table's get), on folded values."""
    if isinstance(value, dict) and name == "get" and len(args) == 1 and not kwargs:
        return value.get(args[0], UNKNOWN)
    if not isinstance(value, str | bytes):
        return UNKNOWN
    if name == "join" and len(args) == 1 and isinstance(args[0], SEQUENCES):
        fits = _fits(args[0]) and len(value) * len(args[0]) <= MAX_FOLDED
        return value.join(args[0]) if fits else UNKNOWN
    if name == "replace" and len(args) == 2 and not kwargs:
        if len(args[1]) > len(args[0]) and value.count(args[0]) * len(args[1]) > MAX_FOLDED:
            return UNKNOWN
        if args[0] == value[:0] and len(value) * len(args[1]) > MAX_FOLDED:
            return UNKNOWN
        return value.replace(args[0], args[1])
    if name in STR_METHODS and len(args) <= 1 and not kwargs:
        return getattr(value, name)(*args)
    if name == "split" and len(args) <= 1 and not kwargs:
        return value.split(*args)
    if name == "format" and isinstance(value, str):
        return _format(value, args, kwargs)
    if name == "decode" and isinstance(value, bytes) and not kwargs and len(args) <= 1:
        codec = _codec(args[0] if args else "utf-8")
        return UNKNOWN if codec is None else value.decode(codec)
    if name == "encode" and isinstance(value, str) and not kwargs and len(args) <= 1:
        codec = _codec(args[0] if args else "utf-8")
        return UNKNOWN if codec is None else value.encode(codec)
    return UNKNOWN


def _chr(args: list[Any], kwargs: dict[str, Any]) -> Any:
    ok = len(args) == 1 and not kwargs and type(args[0]) is int
    return chr(args[0]) if ok and 0 <= args[0] < 0x110000 else UNKNOWN


def _ord(args: list[Any], kwargs: dict[str, Any]) -> Any:
    ok = len(args) == 1 and not kwargs and isinstance(args[0], str | bytes)
    return ord(args[0]) if ok and len(args[0]) == 1 else UNKNOWN


def _str(args: list[Any], kwargs: dict[str, Any]) -> Any:
    if kwargs or len(args) > 2:
        return UNKNOWN
    if len(args) == 2:  # str(b'..', 'utf-8')
        codec = _codec(args[1])
        return args[0].decode(codec) if codec and isinstance(args[0], bytes) else UNKNOWN
    return str(args[0]) if args and type(args[0]) in (str, int) else "" if not args else UNKNOWN


def _bytes(args: list[Any], kwargs: dict[str, Any]) -> Any:
    if kwargs or not args or len(args) > 2:
        return UNKNOWN
    if len(args) == 2:  # bytes('..', 'utf-8')
        codec = _codec(args[1])
        return args[0].encode(codec) if codec and isinstance(args[0], str) else UNKNOWN
    items = args[0]
    if isinstance(items, bytes):
        return items
    if isinstance(items, list | tuple) and all(type(i) is int and 0 <= i < 256 for i in items):
        return bytes(items)
    return UNKNOWN


def _sequence(convert: Callable[[Any], Any]) -> Callable[[list[Any], dict[str, Any]], Any]:
    def apply(args: list[Any], kwargs: dict[str, Any]) -> Any:
        ok = len(args) == 1 and not kwargs and isinstance(args[0], SEQUENCES)
        return convert(args[0]) if ok else UNKNOWN
    return apply


def _fromhex(args: list[Any], kwargs: dict[str, Any]) -> Any:
    ok = len(args) == 1 and not kwargs and isinstance(args[0], str)
    return bytes.fromhex(args[0]) if ok else UNKNOWN


# Builtins and standard-library functions by resolved name -> their pure twin here.
FUNCTIONS: dict[str, Callable[[list[Any], dict[str, Any]], Any]] = {
    "chr": _chr, "ord": _ord, "str": _str, "bytes": _bytes, "bytearray": _bytes,
    "bytes.fromhex": _fromhex, "bytearray.fromhex": _fromhex,
    "list": _sequence(list), "tuple": _sequence(tuple),
    "reversed": _sequence(lambda s: list(reversed(s))),
    "str.join": lambda a, k: _method("join", a[0], a[1:], k) if a else UNKNOWN,
    "codecs.decode": lambda a, k: _transcode(False, a, k),
    "codecs.encode": lambda a, k: _transcode(True, a, k),
}
