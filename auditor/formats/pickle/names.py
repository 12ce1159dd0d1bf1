"""Names a pickle builds while loading: constant strings decoded or joined, callables looked up.

No real pickler computes the name of what it imports or calls; a payload
does, to slip past lists of names (`getattr(builtins, decode('rot13'))`,
`attrgetter('system')(os)`, `vars(builtins)['exec']`). The machine evaluates
these pure string functions on constant arguments, here, with Python's own
implementations (bounded in size, text codecs only), so the name they build
is graded like any import. What cannot be evaluated stays computed.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Callable
from typing import Any

KEEP = 4096  # longest built string kept, as for literal strings

# Codecs that only transform text or bytes in memory (no compression bombs, no lookups of
# arbitrary codec modules).
_CODECS = frozenset({
    "rot13", "rot_13", "latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "utf-8",
    "utf8", "utf_8", "ascii", "us-ascii", "hex", "hex_codec", "base64", "base64_codec",
    "unicode_escape", "raw_unicode_escape", "utf-16", "utf_16", "utf-32", "utf_32",
})


def _codec(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(data: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
        if not isinstance(encoding, str) or encoding.lower() not in _CODECS:
            raise ValueError("codec not evaluated")
        return fn(data, encoding, errors)

    return run


def _str(obj: Any = "", encoding: Any = None, errors: str = "strict") -> str:
    if encoding is None:
        if not isinstance(obj, (str, int, float)):
            raise ValueError("only constants are converted")
        return str(obj)
    return _codec(lambda d, e, r: str(d, e, r))(obj, encoding, errors)


def _bytes(obj: Any = b"", encoding: Any = None, errors: str = "strict") -> bytes:
    if encoding is None:
        if not isinstance(obj, (bytes, list)):
            raise ValueError("only constants are converted")
        return bytes(obj)
    return _codec(lambda d, e, r: bytes(d, e, r))(obj, encoding, errors)


# path (after the unpickler's Python 2 mapping) -> the pure function a pickle would call
STRING_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{f"{m}.{n}": _codec(getattr(codecs, n)) for m in ("codecs", "_codecs")
       for n in ("encode", "decode")},
    **{f"base64.{n}": getattr(base64, n) for n in (
        "b64decode", "standard_b64decode", "urlsafe_b64decode", "b32decode", "b32hexdecode",
        "b16decode", "b85decode", "a85decode", "decodebytes")},
    **{f"binascii.{n}": getattr(binascii, n) for n in ("a2b_base64", "a2b_hex", "unhexlify")},
    "builtins.bytes.fromhex": bytes.fromhex,
    "builtins.bytearray.fromhex": bytes.fromhex,
    "builtins.bytes.decode": _codec(bytes.decode),
    "builtins.str.encode": _codec(str.encode),
    "builtins.str": _str,
    "builtins.bytes": _bytes,
    **{f"builtins.str.{n}": getattr(str, n) for n in (
        "join", "replace", "lower", "upper", "strip", "lstrip", "rstrip", "swapcase", "title",
        "capitalize", "casefold", "removeprefix", "removesuffix", "__add__", "__getitem__")},
    **{f"builtins.bytes.{n}": getattr(bytes, n) for n in (
        "join", "replace", "lower", "upper", "strip", "__add__", "__getitem__")},
    **{f"{m}.{n}": f for m in ("operator", "_operator") for n, f in (
        ("add", lambda a, b: a + b), ("concat", lambda a, b: a + b),
        ("getitem", lambda a, b: a[b]))},
    "builtins.reversed": lambda s: "".join(reversed(s)),  # only for strings (checked below)
}


class Built(str):
    """A string the pickle built while loading (not a literal), with how it was built."""

    how: str

    def __new__(cls, text: str, how: str) -> Built:
        value = super().__new__(cls, text)
        value.how = how
        return value


class Getter:
    """`operator.attrgetter(name)`: calling it with an object reaches `object.name`."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class MethodCaller:
    """`operator.methodcaller(name, *args)`: calling it with an object calls `object.name`."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class Namespace:
    """A module's or class's attribute dict (`vars(x)`, `x.__dict__`); None: the loader's."""

    __slots__ = ("path",)

    def __init__(self, path: str | None):
        self.path = path


def evaluate(path: str, args: tuple[Any, ...]) -> str | bytes | None:
    """The string `path(*args)` returns, when `path` is a pure string function and every
    argument is a constant; None when it cannot be evaluated here."""
    fn = STRING_FUNCTIONS.get(path)
    if fn is None or not all(_constant(a) for a in args):
        return None
    if path == "builtins.reversed" and not (len(args) == 1 and isinstance(args[0], str)):
        return None
    if sum(len(a) for a in _strings(args)) > KEEP:
        return None  # also bounds what replace and join can make (no format, no repetition)
    try:
        value = fn(*args)
    except Exception:  # the loader would raise here too; the name stays unknown
        return None
    if isinstance(value, (str, bytes)) and len(value) <= KEEP:
        return value
    return None


def _strings(values: Any) -> list[str | bytes]:
    out: list[str | bytes] = []
    for v in values:
        if isinstance(v, (str, bytes)):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(_strings(v))
    return out


def _constant(value: Any) -> bool:
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_constant(v) for v in value)
    return False


def how(value: Any) -> str:
    """How a name was built, or "" for a literal."""
    return value.how if isinstance(value, Built) else ""
