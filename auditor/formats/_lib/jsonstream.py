"""Strict JSON validation in bounded memory, for files too big to parse into objects.

`json.loads` turns a 30 MB `tokenizer.json` into some 250 MB of Python
objects, yet the scanner only needs to know that the file is valid JSON,
which object keys repeat, and the values of a few top-level keys (`auto_map`,
`chat_template` ...). This walks the tokens with a small state machine over a
sliding text window and keeps only the stack of open containers, one key
fingerprint set per open object, and the text of the kept values. It accepts
exactly what `json.loads` accepts (including NaN and Infinity) and reports
errors the same way: message, line, column and byte offset.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.errors import FormatError, LimitExceeded

READ_CHUNK = 1 << 16
# Longest stretch a fast-path regex takes at once: its backtracking state grows with it.
RUN_CHARS = 1 << 16
MAX_DEPTH = 1000  # what the C parser manages before a RecursionError
MAX_TOKEN_CHARS = 16 * 1024 * 1024  # one string (or one kept value) held in the window
_BOM = b"\xef\xbb\xbf"

# A JSON string, as an unrolled loop (a run of plain characters, then escapes each
# followed by a run), which the regex engine scans far faster than an alternation.
_STR = r'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_WS = r"[ \t\n\r]*"
_SPACE = re.compile(_WS)
_TOKEN = re.compile(
    rf"(?P<s>{_STR})|(?P<p>[{{}}\[\]:,])|(?P<n>{_NUM}|-?Infinity)|(?P<l>true|false|null|NaN)"
)
# Runs of scalar members or elements, matched whole: the bulk of big JSON files.
_SCALAR = rf"(?:{_STR}|{_NUM}|true|false|null)"
_MEMBER = rf"({_STR}){_WS}:{_WS}{_SCALAR}{_WS},{_WS}"
_MEMBER_KEYS = re.compile(_MEMBER)  # findall over a run gives its keys
_MEMBER_PAIRS = re.compile(rf"({_STR}){_WS}:{_WS}({_SCALAR}){_WS},{_WS}")  # ... keys and values
_MEMBER_RUN = re.compile(rf"(?:{_MEMBER})+")
_ELEMENTS = re.compile(rf"(?:{_SCALAR}{_WS},{_WS})+")

# What the parser expects next.
VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, COLON, COMMA_OR_CLOSE, END = range(7)
_EXPECTING = {
    VALUE: "Expecting value",
    VALUE_OR_CLOSE: "Expecting value",
    KEY: "Expecting property name enclosed in double quotes",
    KEY_OR_CLOSE: "Expecting property name enclosed in double quotes",
    COLON: "Expecting ':' delimiter",
    COMMA_OR_CLOSE: "Expecting ',' delimiter",
    END: "Extra data",
}


# Receives a visited container's children in batches: member keys (None for array
# elements) and their values, parsed as json.loads would.
Sink = Callable[[list[str | None], list[Any]], None]
VISIT_CHARS = 1 << 20  # a visited container's child longer than this is not handed over


@dataclass
class Scanned:
    """What a streamed JSON document told us."""

    is_object: bool = False
    kept: dict[str, Any] = field(default_factory=dict)  # values of the requested top-level keys
    duplicates: list[str] = field(default_factory=list)


@dataclass
class _Window:
    """Decoded text not yet consumed, and where its first character sits in the file."""

    read: Callable[[int], bytes]
    limit: int
    text: str = ""
    chars: int = 0  # absolute index of text[0]
    bytes: int = 0  # byte offset of text[0]
    line: int = 1  # line of text[0]
    line_start: int = 0  # absolute char index where that line starts
    total: int = 0  # bytes read so far
    eof: bool = False
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("strict")
    )

    def refill(self, keep_from: int) -> None:
        """Drop text before `keep_from` and append the next chunk (decoded)."""
        dropped = self.text[:keep_from]
        newlines = dropped.count("\n")
        if newlines:
            self.line += newlines
            self.line_start = self.chars + dropped.rindex("\n") + 1
        self.chars += keep_from
        self.bytes += len(dropped) if dropped.isascii() else len(dropped.encode("utf-8"))
        data = self.read(READ_CHUNK)
        if self.total == 0 and data.startswith(_BOM):
            data = data[3:]
            self.bytes += 3
            self.total += 3
        pending = len(self.decoder.getstate()[0])
        try:
            more = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            offset = self.total - pending + exc.start
            raise FormatError(f"JSON is not valid UTF-8 ({exc.reason})", offset) from None
        self.total += len(data)
        if self.total > self.limit:
            raise LimitExceeded(f"JSON larger than {self.limit} bytes")
        self.eof = not data
        self.text = self.text[keep_from:] + more

    def error(self, message: str, pos: int) -> FormatError:
        line = self.line + self.text.count("\n", 0, pos)
        newline = self.text.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self.chars + pos - self.line_start + 1
        offset = self.bytes + len(self.text[:pos].encode("utf-8"))
        return FormatError(f"invalid JSON: {message} at line {line} column {column}", offset)


def _key(token: str) -> str:
    return json.loads(token) if "\\" in token else token[1:-1]


def _add_keys(keys: set[int], names: list[str], duplicates: list[str]) -> None:
    """Record an object's keys (as fingerprints), noting any seen before."""
    fresh = set(map(hash, names))
    if len(fresh) < len(names) or not keys.isdisjoint(fresh):
        for name in names:  # rare: find which repeat
            if hash(name) in keys:
                duplicates.append(name)
            keys.add(hash(name))
    else:
        keys |= fresh


def visit_parsed(value: Any, visit: Mapping[tuple[str, ...], Sink],
                 path: tuple[str, ...] = ()) -> None:
    """What `scan_json(..., visit=visit)` hands over, for a document already parsed.

    At each visited path an object hands its scalar members, an array all its
    elements; paths are object keys only. Both readers share these rules, so
    a file gives the same facts whichever one its size picks.
    """
    sink = visit.get(path)
    if isinstance(value, dict):
        if sink is not None:
            pairs = [(k, v) for k, v in value.items() if not isinstance(v, dict | list)]
            if pairs:
                sink([k for k, _ in pairs], [v for _, v in pairs])
        for k, v in value.items():
            if isinstance(v, dict | list) and any(p[:len(path) + 1] == (*path, k) for p in visit):
                visit_parsed(v, visit, (*path, k))
    elif isinstance(value, list) and sink is not None and value:
        sink([None] * len(value), value)


def scan_json(read: Callable[[int], bytes], limit: int, keep: frozenset[str],
              visit: Mapping[tuple[str, ...], Sink] | None = None) -> Scanned:
    """Validate the JSON that `read(n)` yields; keep the top-level values named in `keep`.

    `visit` maps paths (object keys from the top) to sinks that receive the
    children of the container there as they stream past (see `visit_parsed`),
    so a 150,000-entry vocabulary is read without being kept. A child being
    captured for a sink that grows past VISIT_CHARS is dropped, not an error:
    what is visited never changes what is validated.

    Raises FormatError (invalid UTF-8 or JSON, with position) or LimitExceeded
    (more than `limit` bytes, nesting deeper than MAX_DEPTH, a string or kept
    value longer than MAX_TOKEN_CHARS).
    """
    w = _Window(read, limit)
    out = Scanned()
    stack: list[set[int] | None] = []  # per open container: key fingerprints, None for arrays
    expect = VALUE
    pos = 0
    keep_key: str | None = None  # top-level key whose value is being captured
    capture = -1  # window index where the captured value starts
    # Visits: per open container its path (None once inside an array or off every visited
    # path) and its sink; the last key read; the sink and depth of a child being captured.
    visit = visit or {}
    prefixes = {p[:i] for p in visit for i in range(len(p) + 1)}
    paths: list[tuple[str, ...] | None] = []
    sinks: list[Sink | None] = []
    key: str | None = None
    capture_sink: Sink | None = None
    capture_depth = 0
    while True:
        pos = _SPACE.match(w.text, pos).end()
        if pos == len(w.text):
            if w.eof:
                if expect != END:
                    raise w.error(_EXPECTING[expect], pos)
                return out
            keep_from = pos if capture < 0 else capture
            pos -= keep_from
            capture = capture - keep_from if capture >= 0 else -1
            w.refill(keep_from)
            continue
        # Fast paths for the bulk of big files (vocabularies, merge lists): runs of scalar
        # members or elements, each complete since a comma follows it. Not at the top
        # level, where kept keys are captured, nor while capturing.
        if (expect == KEY and len(stack) > 1 and capture < 0
                and (m := _MEMBER_RUN.match(w.text, pos, pos + RUN_CHARS)) is not None):
            if sinks and (sink := sinks[-1]) is not None:
                raw_keys, raw_values = zip(*_MEMBER_PAIRS.findall(w.text, pos, m.end()),
                                           strict=True)
                names = json.loads(f"[{','.join(raw_keys)}]")
                sink(names, json.loads(f"[{','.join(raw_values)}]"))
            else:
                names = [_key(raw) for raw in _MEMBER_KEYS.findall(w.text, pos, m.end())]
            _add_keys(stack[-1], names, out.duplicates)  # type: ignore[arg-type]
            pos = m.end()
        elif (expect == VALUE and stack and stack[-1] is None and capture < 0
              and not (sinks and sinks[-1] is not None)
              and (m := _ELEMENTS.match(w.text, pos, pos + RUN_CHARS)) is not None):
            pos = m.end()
        pos = _SPACE.match(w.text, pos).end()  # a run may stop inside whitespace
        if pos == len(w.text):
            continue
        m = _TOKEN.match(w.text, pos)
        # Strings and punctuation end themselves; a number or literal near the window's
        # end may go on ("1" of "1e5"), so it waits for more text.
        if not w.eof and (m is None or m.end() > len(w.text) - (32 if m.lastgroup in "nl" else 1)):
            if m is None and w.text[pos] != '"' and len(w.text) - pos >= 32:
                raise w.error(_EXPECTING[expect], pos)
            if capture_sink is not None and len(w.text) - capture > VISIT_CHARS:
                capture, capture_sink = -1, None  # too long to hand over: validated only
            if len(w.text) - (pos if capture < 0 else capture) > MAX_TOKEN_CHARS:
                raise LimitExceeded(f"JSON string or value longer than {MAX_TOKEN_CHARS} chars")
            keep_from = pos if capture < 0 else capture
            pos -= keep_from
            capture = capture - keep_from if capture >= 0 else -1
            w.refill(keep_from)
            continue
        if m is None:
            raise w.error(_EXPECTING[expect], pos)
        kind, token, start, pos = m.lastgroup, m.group(), m.start(), m.end()
        closed = False  # a value just ended
        if expect in (VALUE, VALUE_OR_CLOSE):
            if token in ("{", "["):
                if len(stack) >= MAX_DEPTH:
                    raise LimitExceeded(f"JSON nests deeper than {MAX_DEPTH} levels")
                if not stack:
                    out.is_object = token == "{"
                if visit:
                    parent = paths[-1] if paths else ()
                    if stack and capture < 0 and sinks[-1] is not None and stack[-1] is None:
                        capture, capture_sink, capture_depth = start, sinks[-1], len(stack)
                    path = (() if not stack else None if parent is None or stack[-1] is None
                            else (*parent, key))
                    path = path if path in prefixes else None
                    paths.append(path)
                    sinks.append(visit.get(path) if path is not None else None)  # type: ignore[arg-type]
                stack.append(set() if token == "{" else None)
                expect = KEY_OR_CLOSE if token == "{" else VALUE_OR_CLOSE
            elif token == "]" and expect == VALUE_OR_CLOSE:
                stack.pop()
                if visit:
                    paths.pop()
                    sinks.pop()
                closed = True
            elif kind != "p":
                closed = True
                # (at the top a capture is the kept copy of this very value)
                if sinks and (sink := sinks[-1]) is not None and (capture < 0 or len(stack) == 1):
                    sink([key if stack[-1] is not None else None], [json.loads(token)])
            else:
                raise w.error(_EXPECTING[expect], start)
        elif expect in (KEY, KEY_OR_CLOSE):
            if kind == "s":
                key = _key(token)
                _add_keys(stack[-1], [key], out.duplicates)  # type: ignore[arg-type]
                if len(stack) == 1 and key in keep:
                    keep_key = key
                expect = COLON
            elif token == "}" and expect == KEY_OR_CLOSE:
                stack.pop()
                if visit:
                    paths.pop()
                    sinks.pop()
                closed = True
            else:
                raise w.error(_EXPECTING[expect], start)
        elif expect == COLON:
            if token != ":":
                raise w.error(_EXPECTING[expect], start)
            expect = VALUE
            if keep_key is not None and len(stack) == 1:
                capture = _SPACE.match(w.text, pos).end()
        elif expect == COMMA_OR_CLOSE:
            top_is_object = stack[-1] is not None
            if token == ",":
                expect = KEY if top_is_object else VALUE
            elif token == ("}" if top_is_object else "]"):
                stack.pop()
                if visit:
                    paths.pop()
                    sinks.pop()
                closed = True
            else:
                message = "Expecting ',' delimiter"
                raise w.error(message, start)
        else:
            raise w.error(_EXPECTING[END], start)
        if closed:
            expect = COMMA_OR_CLOSE if stack else END
            if keep_key is not None and len(stack) == 1:
                out.kept[keep_key] = json.loads(w.text[capture:pos])
                keep_key, capture = None, -1
            elif capture_sink is not None and len(stack) == capture_depth:
                capture_sink([None], [json.loads(w.text[capture:pos])])
                capture, capture_sink = -1, None
