"""A symbolic pickle machine: runs the opcode stream on stand-in values, never on objects.

It follows CPython's C unpickler (what `pickle.load` and `torch.load` use):
the stack with its mark fence, the memo exactly as `*PUT`/`MEMOIZE`/`*GET`
fill and read it (MEMOIZE keys by the number of entries; values are whatever
is on the stack, strings or not), frames (crossing one is accepted by the C
loader, refused by `pickletools`: reported), protocols 0-5. Imports are
graded through `imports.classify`; calls, mutations of imported objects and
computed names are reported. Values are small symbolic records, so work and
memory per opcode are bounded whatever the stream repeats or nests.
"""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, BinaryIO

from auditor.errors import LimitExceeded
from auditor.formats._lib.limits import Limits
from auditor.formats.pickle import names
from auditor.formats.pickle import rules as R
from auditor.formats.pickle.imports import (
    Protocol,
    Tier,
    Tiers,
    Verdict,
    classify,
    classify_module,
)
from auditor.formats.pickle.names import Built, Getter, MethodCaller, Namespace
from auditor.formats.pickle.ops import BY_CODE, HIGHEST_PROTOCOL, Arg, Op
from auditor.model import FormatId, Rule, Severity

CHUNK = 1 << 20
KEEP = 4096  # longest string or bytes value kept (names are far shorter)
MAX_REPORTS_PER_RULE = 20
MAX_IMPORT_FINDINGS = 100  # per tier; the rest are summarised in one finding
MAX_DISTINCT_IMPORTS = 100_000
_MISSING = object()
_OCTAL = re.compile(r"([+-]?)0([0-7]+)")


class PickleError(Exception):
    """The loader would stop here (bad opcode, stack underflow, missing memo key...)."""

    def __init__(self, message: str, offset: int, rule: Rule | None = None):
        super().__init__(message)
        self.offset = offset
        self.rule = rule  # a layout's own rule, instead of the generic malformed one


class Truncated(PickleError):
    """The stream ended inside an opcode or before STOP."""


# ---- symbolic values -------------------------------------------------------------------

class Ref:
    """An object obtained by import (GLOBAL, STACK_GLOBAL, INST)."""

    __slots__ = ("verdict",)

    def __init__(self, verdict: Verdict):
        self.verdict = verdict


class Unresolved:
    """An import whose target cannot be known statically (computed names, EXT codes)."""

    __slots__ = ("why",)

    def __init__(self, why: str):
        self.why = why


class Call:
    """The result of calling something (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST)."""

    __slots__ = ("args", "at", "func", "state")

    def __init__(self, func: Any, args: Any, at: int):
        self.func = func
        self.args = args
        self.at = at
        self.state: Any = None


class Seq:
    """A list, dict (flat: key, value, key, value...), set or frozenset built by the pickle.

    Only the first items are kept, and the memo keeps none (it stores a stand-in), so a
    pickle of millions of containers costs memory for its memo slots only.
    """

    __slots__ = ("items", "kind")

    def __init__(self, kind: str, items: list[Any] | None = None):
        self.kind = kind
        self.items = items if items is not None else []


class Opaque:
    """A value too large to keep, or one only the loader's environment provides."""

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind


class Persistent:
    """What `persistent_load(pid)` returns; only a container's loader gives it meaning."""

    __slots__ = ("at", "pid")

    def __init__(self, pid: Any, at: int):
        self.pid = pid
        self.at = at


LONG_STR = Opaque("long string")
LONG_BYTES = Opaque("long bytes")
BIG_INT = Opaque("big integer")
BUFFER = Opaque("out-of-band buffer")
_CONTAINER = Opaque("container (the memo keeps no contents)")


def describe(value: Any, depth: int = 0) -> str:
    """A short, bounded description of a symbolic value for finding details."""
    if isinstance(value, Ref):
        return value.verdict.path
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Call):
        return f"the result of calling {describe(value.func, depth + 1)}" if depth < 3 else "a call"
    if isinstance(value, Unresolved):
        return "an unresolved import"
    if isinstance(value, Persistent):
        return "a persistent-id object"
    if isinstance(value, Seq):
        return f"a {value.kind}"
    if isinstance(value, Opaque):
        return f"a {value.kind}"
    if isinstance(value, tuple):
        return "a tuple"
    return type(value).__name__


# ---- the import log --------------------------------------------------------------------

@dataclass
class Use:
    verdict: Verdict
    opcode: str
    at: int
    count: int = 0
    calls: int = 0
    call_op: str = ""
    call_at: int | None = None
    off_protocol: str = ""  # how a `rebuilt` import left its reduce protocol, first time


@dataclass
class ImportLog:
    """Every import seen in a stream, graded once, reported once with its first use and call."""

    uses: dict[str, Use] = field(default_factory=dict)

    def record(self, verdict: Verdict, opcode: str, at: int) -> None:
        use = self.uses.get(verdict.path)
        if use is None:
            if len(self.uses) >= MAX_DISTINCT_IMPORTS:
                raise LimitExceeded(f"more than {MAX_DISTINCT_IMPORTS} distinct imports", at)
            use = self.uses[verdict.path] = Use(verdict, opcode, at)
        use.count += 1

    def called(self, path: str, opcode: str, at: int) -> None:
        use = self.uses[path]
        use.calls += 1
        if use.call_at is None:
            use.call_op, use.call_at = opcode, at

    def strayed(self, path: str, how: str) -> None:
        """A `rebuilt` import used other than its protocol allows: graded as known-ml."""
        use = self.uses[path]
        if not use.off_protocol:
            use.off_protocol = how

    def flush(self, report: Report) -> None:
        """Turn the log into findings (once per stream, also when parsing stopped early)."""
        shown: dict[Tier, int] = {}
        for path, use in sorted(self.uses.items(), key=lambda kv: (kv[1].at, kv[0])):
            tier = use.verdict.tier
            if tier is Tier.REBUILT and use.off_protocol:
                tier = Tier.KNOWN_ML
            rule = R.REEXPORT if use.verdict.reexport else R.TIER_RULES.get(tier)
            shown[tier] = shown.get(tier, 0) + 1
            if rule is not None and shown[tier] <= MAX_IMPORT_FINDINGS:
                report(rule, _use_detail(path, use), use.at, tier.severity)
            if use.verdict.odd_name and shown[tier] <= MAX_IMPORT_FINDINGS:
                sev = max(Severity.HIGH, tier.severity or Severity.HIGH)
                report(R.ODD_NAME, f"{use.opcode} @{use.at} names {path!r} with whitespace, NULs, "
                       "look-alike or non-identifier characters", use.at, sev)
        for tier, count in shown.items():
            rule = R.TIER_RULES.get(tier)
            if rule is not None and count > MAX_IMPORT_FINDINGS:
                report(rule, f"{count - MAX_IMPORT_FINDINGS} more {tier.value} imports not listed "
                       "one by one", None, tier.severity)
        self.uses.clear()


def _use_detail(path: str, use: Use) -> str:
    what = {
        Tier.DANGEROUS: f"{use.verdict.reason}",
        Tier.UNKNOWN: "not in the safe or known-ML lists: unaudited code runs on load",
        Tier.KNOWN_ML: "an ML library class: its constructor runs on load",
        Tier.REBUILT: f"allowed only by the reduce protocol, but {use.off_protocol}",
    }.get(use.verdict.tier, "")
    called = (f"called by {use.call_op} @{use.call_at}" if use.call_at is not None
              else "imported, not called (importing still runs module code)")
    times = f"; {use.count} uses, {use.calls} calls" if use.count > 1 else ""
    return f"{use.opcode} @{use.at} imports {path} ({what}); {called}{times}"


Report = Callable[[Rule, str, int | None, Severity | None], None]
Hook = Callable[["Machine", Call, int], None]


@dataclass
class Env:
    """What one stream's analysis shares across its pickles (and nested ones)."""

    tiers: Tiers
    limits: Limits
    report: Report
    container: str | None = None
    hooks: dict[str, Hook] = field(default_factory=dict)  # BUILD hooks by class path
    call_hooks: dict[str, Hook] = field(default_factory=dict)  # checks of calls, by path
    keep_items: int = 32  # values kept per list (keys and values per dict); layouts need few
    collect_persistent: bool = False
    persistent_load: bool = True  # False: `pickle.load` of a whole file, PERSID stops it
    persistent: list[Persistent] = field(default_factory=list)
    imports: ImportLog = field(default_factory=ImportLog)
    shadowed: set[str] = field(default_factory=set)  # names this stream redefined
    ops: int = 0
    layouts: set[FormatId] = field(default_factory=set)  # raw-data layouts met (joblib)
    _reports: dict[str, int] = field(default_factory=dict)
    _cache: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    def finding(self, rule: Rule, detail: str, at: int | None,
                severity: Severity | None = None) -> None:
        """Report, at most MAX_REPORTS_PER_RULE times per rule (the first ones say where)."""
        seen = self._reports.get(rule.id, 0)
        self._reports[rule.id] = seen + 1
        if seen < MAX_REPORTS_PER_RULE:
            self.report(rule, detail, at, severity)

    def reported(self, rule: Rule) -> int:
        """How often `rule` was reported in this stream (also past the cap)."""
        return self._reports.get(rule.id, 0)

    def classify(self, module: str, name: str) -> Verdict:
        key = (module, name)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = classify(module, name, self.tiers, self.container)
            if len(self._cache) < 65_536:
                self._cache[key] = verdict
        return verdict


# ---- input -----------------------------------------------------------------------------

class Input:
    """Buffered forward reader: big chunks in, opcodes parsed from a local buffer.

    With `frames_exact`, reads follow the C loader reading a file without
    peek() (`torch.load`'s BytesIO, frames of 128 KiB and more): it holds one
    frame at a time, and an argument or line that does not fit in what is
    left of it is read from after the frame, the frame's rest dropped.
    `pickle.loads` reads the same bytes as one buffer (the default here).
    """

    __slots__ = ("base", "buf", "eof", "exact_end", "f", "pos")

    def __init__(self, f: BinaryIO, offset: int = 0, frames_exact: bool = False):
        self.f = f
        self.buf = b""
        self.pos = 0
        self.base = offset  # stream offset of buf[0]
        self.eof = False
        self.exact_end = offset if frames_exact else None  # end of the loader's buffer

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, n: int) -> bool:
        have = len(self.buf) - self.pos
        if have >= n:
            return True
        parts = [self.buf[self.pos:]]
        while have < n and not self.eof:
            chunk = self.f.read(max(CHUNK, n - have))
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.base += self.pos
        self.buf = b"".join(parts)
        self.pos = 0
        return have >= n

    def at_eof(self) -> bool:
        return not self._fill(1)

    def byte(self) -> int:
        pos = self.pos
        if pos >= len(self.buf) and not self._fill(1):
            return -1
        pos = self.pos
        self.pos = pos + 1
        return self.buf[pos]

    def _exact(self, n: int, at: int) -> None:
        """Frame-exact reading: drop the rest of a frame that cannot hold the next n bytes."""
        end, offset = self.exact_end, self.offset
        if end is not None and offset < end < offset + n:
            self._skip(end - offset, at, "a frame")

    def _exact_done(self) -> None:
        if self.exact_end is not None and self.offset > self.exact_end:
            self.exact_end = self.offset  # read from the file: the loader's buffer ends here

    def enter_frame(self, n: int, at: int) -> None:
        """FRAME in frame-exact reading: a frame not inside the buffer is read afresh."""
        end = self.exact_end
        if end is not None and self.offset + n > end:
            self._exact(n, at)
            self.exact_end = self.offset + n

    def take(self, n: int, at: int, what: str) -> bytes:
        if self.exact_end is not None:
            self._exact(n, at)
            data = self._take(n, at, what)
            self._exact_done()
            return data
        return self._take(n, at, what)

    def _take(self, n: int, at: int, what: str) -> bytes:
        pos = self.pos
        end = pos + n
        if end > len(self.buf):
            if not self._fill(n):
                raise Truncated(f"stream ends inside {what}", at)
            pos, end = 0, n
        self.pos = end
        return self.buf[pos:end]

    def skip(self, n: int, at: int, what: str) -> None:
        self._exact(n, at)
        self._skip(n, at, what)
        self._exact_done()

    def _skip(self, n: int, at: int, what: str) -> None:
        have = len(self.buf) - self.pos
        if n <= have:
            self.pos += n
            return
        n -= have
        self.base += len(self.buf)
        self.buf, self.pos = b"", 0
        while n > 0:
            chunk = self.f.read(min(n, CHUNK))
            if not chunk:
                self.eof = True
                raise Truncated(f"stream ends inside {what}", at)
            self.base += len(chunk)
            n -= len(chunk)

    def line(self, at: int, what: str,
             dead: Callable[[bytes], bool] | None = None) -> tuple[bytes, bool]:
        """The next newline-terminated line: its first KEEP bytes, and whether that is all.

        `dead` says of a line's first bytes that its opcode cannot parse them:
        the loader fails once it has the line, so nothing later in the stream
        runs, and a line not ended in the bytes at hand is not read on.
        """
        end = self.exact_end
        if end is not None and self.offset < end:
            left = end - self.offset  # a line not ending inside the frame is read after it
            if left <= CHUNK and self._fill(left) and self.buf.find(
                    b"\n", self.pos, self.pos + left) < 0:
                self._skip(left, at, "a frame")
        text = self._line(at, what, dead)
        self._exact_done()
        return text

    def _line(self, at: int, what: str,
              dead: Callable[[bytes], bool] | None) -> tuple[bytes, bool]:
        out = b""
        total = 0
        while True:
            i = self.buf.find(b"\n", self.pos)
            seg = self.buf[self.pos : i if i >= 0 else len(self.buf)]
            total += len(seg)
            if len(out) < KEEP:
                out += seg[: KEEP - len(out)]
            if i >= 0:
                self.pos = i + 1
                return out, total <= KEEP
            if dead is not None and dead(out):
                raise PickleError(f"{what} argument {out[:40]!r}... cannot parse: the loader "
                                  "stops at this line", at)
            self.base += len(self.buf)
            self.buf, self.pos = b"", 0
            chunk = self.f.read(CHUNK) if not self.eof else b""
            if not chunk:
                self.eof = True
                raise Truncated(f"stream ends inside {what} (no newline)", at)
            self.buf = chunk


# ---- the machine -----------------------------------------------------------------------

_U2 = struct.Struct("<H")
_I4 = struct.Struct("<i")
_U4 = struct.Struct("<I")
_U8 = struct.Struct("<Q")
_F8 = struct.Struct(">d")


class Machine:
    """Runs one pickle (up to its STOP) from `inp`; `run()` returns the value STOP pops."""

    def __init__(self, inp: Input, env: Env):
        self.inp = inp
        self.env = env
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: list[Any] = []  # keys 0..n-1, as every standard pickler writes them
        self.memo_extra: dict[int, Any] = {}  # any other key
        self.proto = 0
        self.frame_end: int | None = None
        self.table = _dispatch_table()

    def run(self) -> Any:
        """Run to STOP. The common opcodes of big pickles take an inlined fast path when
        their bytes are buffered and their preconditions hold; everything else (and
        every error) goes through `_step`, the table-driven reader."""
        if self.inp.exact_end is not None:
            return self._run_exact()
        inp, env, stack, marks, memo = self.inp, self.env, self.stack, self.marks, self.memo
        keep = env.keep_items
        buf, pos = inp.buf, inp.pos
        ops = env.ops
        next_check = (ops | 0xFFFF) + 1
        frame_rel = self._frame_rel()
        extra = self.memo_extra
        limit = len(buf) - 16
        try:
            while True:
                if pos > limit:
                    inp.pos = pos
                    inp._fill(16)
                    buf, pos = inp.buf, inp.pos
                    frame_rel = self._frame_rel()
                    limit = len(buf) - 16
                    if pos > limit:  # the last bytes: always the careful path
                        done, buf, pos, frame_rel = self._slow(pos)
                        limit = len(buf) - 16
                        ops += 1
                        if done is not None:
                            return done[0]
                        continue
                start = pos
                code = buf[pos]
                if code == 0x68 and buf[pos + 1] < len(memo):  # BINGET
                    stack.append(memo[buf[pos + 1]])
                    pos += 2
                elif code == 0x94 and not extra \
                        and len(stack) > (marks[-1] if marks else 0):  # MEMOIZE
                    value = stack[-1]
                    memo.append(_CONTAINER if type(value) is Seq else value)
                    pos += 1
                elif code == 0x71 and buf[pos + 1] == len(memo) and not extra \
                        and len(stack) > (marks[-1] if marks else 0):  # BINPUT of the next key
                    value = stack[-1]
                    memo.append(_CONTAINER if type(value) is Seq else value)
                    pos += 2
                elif code == 0x28:  # MARK
                    marks.append(len(stack))
                    pos += 1
                elif code == 0x8C and pos + 2 + buf[pos + 1] <= len(buf):  # SHORT_BINUNICODE
                    n = buf[pos + 1]
                    try:
                        stack.append(buf[pos + 2 : pos + 2 + n].decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError:
                        done, buf, pos, frame_rel = self._slow(pos)
                        limit = len(buf) - 16
                        continue
                    pos += 2 + n
                elif code == 0x4B:  # BININT1
                    stack.append(buf[pos + 1])
                    pos += 2
                elif code == 0x4A:  # BININT
                    stack.append(_I4.unpack_from(buf, pos + 1)[0])
                    pos += 5
                elif code == 0x5D:  # EMPTY_LIST
                    stack.append(Seq("list"))
                    pos += 1
                elif code == 0x7D:  # EMPTY_DICT
                    stack.append(Seq("dict"))
                    pos += 1
                elif code == 0x4E:  # NONE
                    stack.append(None)
                    pos += 1
                elif 0x85 <= code <= 0x87 \
                        and len(stack) - (marks[-1] if marks else 0) >= code - 0x84:  # TUPLE1-3
                    n = code - 0x84
                    items = tuple(stack[-n:])
                    del stack[-n:]
                    stack.append(items)
                    pos += 1
                elif code in (0x75, 0x65) and marks and 0 < marks[-1] <= len(stack) \
                        and type(stack[marks[-1] - 1]) is Seq \
                        and (len(marks) == 1 or marks[-2] < marks[-1]):  # SETITEMS, APPENDS
                    k = marks.pop()
                    target = stack[k - 1]
                    if code == 0x75 and (len(stack) - k) % 2:
                        marks.append(k)
                        done, buf, pos, frame_rel = self._slow(pos)
                        limit = len(buf) - 16
                        continue
                    room = keep - len(target.items)
                    if room > 0:
                        target.items.extend(stack[k : k + room - (code == 0x75) * (room % 2)])
                    del stack[k:]
                    pos += 1
                elif code == 0x47:  # BINFLOAT
                    stack.append(_F8.unpack_from(buf, pos + 1)[0])
                    pos += 9
                elif code == 0x6A and _U4.unpack_from(buf, pos + 1)[0] < len(memo):  # LONG_BINGET
                    stack.append(memo[_U4.unpack_from(buf, pos + 1)[0]])
                    pos += 5
                elif code == 0x72 and _U4.unpack_from(buf, pos + 1)[0] == len(memo) \
                        and len(stack) > (marks[-1] if marks else 0) and not extra:  # LONG_BINPUT
                    value = stack[-1]
                    memo.append(_CONTAINER if type(value) is Seq else value)
                    pos += 5
                elif code == 0x29:  # EMPTY_TUPLE
                    stack.append(())
                    pos += 1
                elif code == 0x4D:  # BININT2
                    stack.append(buf[pos + 1] | buf[pos + 2] << 8)
                    pos += 3
                elif code == 0x88 or code == 0x89:  # NEWTRUE, NEWFALSE
                    stack.append(code == 0x88)
                    pos += 1
                else:
                    env.ops = ops
                    done, buf, pos, frame_rel = self._slow(pos)
                    limit = len(buf) - 16
                    ops = env.ops + 1  # a layout hook may have run a nested pickle
                    if done is not None:
                        return done[0]
                    if ops >= next_check:
                        env.ops = ops
                        next_check += 0x10000
                        self._check_limits(inp.base + pos)
                    continue
                ops += 1
                if pos >= frame_rel:
                    inp.pos = pos
                    self._frame_passed(inp.base + start, inp.base + pos)
                    frame_rel = self._frame_rel()
                if ops >= next_check:
                    env.ops = ops
                    next_check += 0x10000
                    self._check_limits(inp.base + pos)
        finally:
            env.ops = ops

    def _run_exact(self) -> Any:
        """Frame-exact reading: every opcode through `_step`, whose reads honour frames."""
        env = self.env
        while True:
            done = self._step()
            env.ops += 1
            if not env.ops & 0xFFFF:
                self._check_limits(self.inp.offset)
            if done is not None:
                return done[0]

    def _frame_rel(self) -> int:
        """The current frame's end as an index into the input buffer (huge when none)."""
        if self.frame_end is None:
            return 1 << 62
        return self.frame_end - self.inp.base

    def _slow(self, pos: int) -> tuple[tuple[Any] | None, bytes, int, int]:
        """One opcode through `_step`; returns its result and the refreshed buffer view."""
        inp = self.inp
        inp.pos = pos
        done = self._step()
        return done, inp.buf, inp.pos, self._frame_rel()

    def _step(self) -> tuple[Any] | None:
        """Read and run one opcode, with every check; a 1-tuple when it was STOP."""
        inp = self.inp
        at = inp.base + inp.pos
        code = inp.byte()
        if code < 0:
            raise Truncated("stream ends before the STOP opcode", at)
        entry = self.table[code]
        if entry is None:
            raise PickleError(f"invalid opcode 0x{code:02x}", at)
        op, reader, handler = entry
        arg = reader(self, op, at)
        if self.frame_end is not None and inp.base + inp.pos >= self.frame_end:
            self._frame_passed(at, inp.base + inp.pos)
        return handler(self, arg, at)

    # -- bookkeeping ---------------------------------------------------------------------

    def _check_limits(self, at: int) -> None:
        lim = self.env.limits
        if self.env.ops > lim.max_pickle_ops:
            raise LimitExceeded(f"more than {lim.max_pickle_ops} pickle opcodes", at)
        if len(self.memo) + len(self.memo_extra) > lim.max_pickle_memo:
            raise LimitExceeded(f"more than {lim.max_pickle_memo} memo entries", at)
        if len(self.stack) + len(self.marks) > lim.max_pickle_stack:
            raise LimitExceeded(f"pickle stack deeper than {lim.max_pickle_stack}", at)

    def _frame_passed(self, at: int, op_end: int) -> None:
        """The current frame is done; an opcode that ends beyond it crossed the boundary."""
        end = self.frame_end
        self.frame_end = None
        if end is not None and op_end > end:
            self.env.finding(R.FRAME, f"opcode @{at} reads past the end of its frame "
                             f"(frame ends @{end}); the C loader accepts it, other parsers "
                             "stop there", at)

    def _fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def _pop(self, at: int) -> Any:
        if len(self.stack) <= self._fence():
            raise PickleError("stack underflow", at)
        return self.stack.pop()

    def _top(self, at: int) -> Any:
        if len(self.stack) <= self._fence():
            raise PickleError("stack underflow", at)
        return self.stack[-1]

    def _pop_mark(self, at: int) -> list[Any]:
        if not self.marks:
            raise PickleError("MARK expected but not found", at)
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def _target(self, at: int) -> Any:
        """The object a mark-ranged operation (APPENDS, SETITEMS, ADDITEMS) writes into."""
        if not self.stack or len(self.stack) <= self._fence():
            raise PickleError("stack underflow", at)
        return self.stack[-1]

    # -- argument readers ----------------------------------------------------------------

    def _arg_none(self, op: Op, at: int) -> None:
        return None

    def _arg_u1(self, op: Op, at: int) -> int:
        b = self.inp.byte()
        if b < 0:
            raise Truncated(f"stream ends inside {op.name}", at)
        return b

    def _arg_u2(self, op: Op, at: int) -> int:
        return _U2.unpack(self.inp.take(2, at, op.name))[0]

    def _arg_u4(self, op: Op, at: int) -> int:
        return _U4.unpack(self.inp.take(4, at, op.name))[0]

    def _arg_i4(self, op: Op, at: int) -> int:
        return _I4.unpack(self.inp.take(4, at, op.name))[0]

    def _arg_u8(self, op: Op, at: int) -> int:
        return _U8.unpack(self.inp.take(8, at, op.name))[0]

    def _arg_f8(self, op: Op, at: int) -> float:
        return _F8.unpack(self.inp.take(8, at, op.name))[0]

    def _arg_line(self, op: Op, at: int) -> bytes | None:
        self._line_runs(op, at)
        text, whole = self.inp.line(at, op.name, _DEAD_LINE.get(op.name))
        return text if whole else None

    def _line_runs(self, op: Op, at: int) -> None:
        """Line opcodes the loader fails whatever their line holds (PUT checks the stack
        first, GET looks in the memo): stop before reading the line."""
        name = op.name
        if name == "PERSID" and not self.env.persistent_load:
            raise PickleError("PERSID without a persistent_load function", at)
        if name == "PUT" and len(self.stack) <= self._fence():
            raise PickleError("stack underflow", at)
        if name == "GET" and not self.memo and not self.memo_extra:
            raise PickleError("GET with an empty memo", at)

    def _arg_lines2(self, op: Op, at: int) -> tuple[bytes | None, bytes | None]:
        return self._arg_line(op, at), self._arg_line(op, at)

    def _bytes(self, n: int, op: Op, at: int) -> bytes | None:
        if n > self.env.limits.max_string_bytes:
            raise LimitExceeded(f"{op.name} @{at} declares {n} bytes, over the "
                                f"{self.env.limits.max_string_bytes}-byte limit", at)
        if n <= KEEP:
            return self.inp.take(n, at, op.name)
        self.inp.skip(n, at, op.name)
        return None

    def _arg_len1(self, op: Op, at: int) -> bytes | None:
        return self._bytes(self._arg_u1(op, at), op, at)

    def _arg_len4(self, op: Op, at: int) -> bytes | None:
        return self._bytes(self._arg_u4(op, at), op, at)

    def _arg_len4s(self, op: Op, at: int) -> bytes | None:
        n = self._arg_i4(op, at)
        if n < 0:
            raise PickleError(f"{op.name} has a negative length", at)
        return self._bytes(n, op, at)

    def _arg_len8(self, op: Op, at: int) -> bytes | None:
        return self._bytes(self._arg_u8(op, at), op, at)

    # -- values --------------------------------------------------------------------------

    def _push(self, value: Any) -> None:
        self.stack.append(value)

    def _op_mark(self, arg: None, at: int) -> None:
        self.marks.append(len(self.stack))

    def _op_stop(self, arg: None, at: int) -> tuple[Any]:
        return (self._pop(at),)

    def _op_pop(self, arg: None, at: int) -> None:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()  # the C loader lets POP discard a mark
        else:
            self._pop(at)

    def _op_pop_mark(self, arg: None, at: int) -> None:
        self._pop_mark(at)

    def _op_dup(self, arg: None, at: int) -> None:
        self.stack.append(self._top(at))

    def _number(self, text: bytes | None, at: int, parse: Callable[[str], Any]) -> Any:
        if text is None:
            return BIG_INT
        try:
            return parse(_c_string(text).decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            raise PickleError(f"invalid number literal {text[:40]!r}", at) from None

    def _op_float(self, arg: bytes | None, at: int) -> None:
        self._push(self._number(arg, at, float))

    def _op_int(self, arg: bytes | None, at: int) -> None:
        if arg in (b"00", b"01"):
            self._push(arg == b"01")
        elif arg is not None and arg[:1] == b"\0":
            self._push(0)  # strtol of the empty C string
        else:
            self._push(self._number(arg, at, _c_int))

    def _op_long(self, arg: bytes | None, at: int) -> None:
        self._push(self._number(arg, at, lambda s: int(s.removesuffix("L"), 0)))

    def _op_binint(self, arg: int, at: int) -> None:
        self.stack.append(arg)

    _op_binint1 = _op_binint
    _op_binint2 = _op_binint

    def _op_binfloat(self, arg: float, at: int) -> None:
        self.stack.append(arg)

    def _op_none(self, arg: None, at: int) -> None:
        self.stack.append(None)

    def _op_newtrue(self, arg: None, at: int) -> None:
        self.stack.append(True)

    def _op_newfalse(self, arg: None, at: int) -> None:
        self.stack.append(False)

    def _long_bytes(self, arg: bytes | None) -> Any:
        if arg is None or len(arg) > 64:
            return BIG_INT
        return int.from_bytes(arg, "little", signed=True)

    def _op_long1(self, arg: bytes | None, at: int) -> None:
        self._push(self._long_bytes(arg))

    _op_long4 = _op_long1

    def _op_string(self, arg: bytes | None, at: int) -> None:
        if arg is None:
            self._push(LONG_STR)
            return
        body = arg
        if len(body) < 2 or body[:1] not in (b"'", b'"') or body[-1:] != body[:1]:
            raise PickleError("the STRING opcode argument must be quoted", at)
        try:
            raw = codecs.escape_decode(body[1:-1])[0]
        except ValueError:
            raise PickleError("invalid escape in STRING argument", at) from None
        self._push(raw.decode("latin-1"))

    def _op_binstring(self, arg: bytes | None, at: int) -> None:
        self._push(LONG_STR if arg is None else arg.decode("latin-1"))

    _op_short_binstring = _op_binstring

    def _op_unicode(self, arg: bytes | None, at: int) -> None:
        if arg is None:
            self._push(LONG_STR)
            return
        try:
            self._push(arg.decode("raw-unicode-escape"))
        except UnicodeDecodeError:
            raise PickleError("invalid UNICODE argument", at) from None

    def _op_binunicode(self, arg: bytes | None, at: int) -> None:
        if arg is None:
            self.stack.append(LONG_STR)
            return
        try:
            self.stack.append(arg.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            raise PickleError("invalid UTF-8 in a unicode string", at) from None

    _op_short_binunicode = _op_binunicode
    _op_binunicode8 = _op_binunicode

    def _op_binbytes(self, arg: bytes | None, at: int) -> None:
        self.stack.append(LONG_BYTES if arg is None else arg)

    _op_short_binbytes = _op_binbytes
    _op_binbytes8 = _op_binbytes

    def _op_bytearray8(self, arg: bytes | None, at: int) -> None:
        self.stack.append(LONG_BYTES if arg is None else Opaque("bytearray"))

    def _op_next_buffer(self, arg: None, at: int) -> None:
        self._push(BUFFER)

    def _op_readonly_buffer(self, arg: None, at: int) -> None:
        self._top(at)

    def _op_empty_tuple(self, arg: None, at: int) -> None:
        self.stack.append(())

    def _op_tuple(self, arg: None, at: int) -> None:
        self.stack.append(tuple(self._pop_mark(at)))

    def _op_tuple1(self, arg: None, at: int) -> None:
        self.stack.append((self._pop(at),))

    def _op_tuple2(self, arg: None, at: int) -> None:
        b = self._pop(at)
        self.stack.append((self._pop(at), b))

    def _op_tuple3(self, arg: None, at: int) -> None:
        c = self._pop(at)
        b = self._pop(at)
        self.stack.append((self._pop(at), b, c))

    def _op_empty_list(self, arg: None, at: int) -> None:
        self.stack.append(Seq("list"))

    def _op_empty_dict(self, arg: None, at: int) -> None:
        self.stack.append(Seq("dict"))

    def _op_empty_set(self, arg: None, at: int) -> None:
        self.stack.append(Seq("set"))

    def _op_list(self, arg: None, at: int) -> None:
        self._push(Seq("list", self._pop_mark(at)[: self.env.keep_items]))

    def _op_frozenset(self, arg: None, at: int) -> None:
        self._push(Seq("frozenset", self._pop_mark(at)[: self.env.keep_items]))

    def _op_dict(self, arg: None, at: int) -> None:
        items = self._pop_mark(at)
        if len(items) % 2:
            raise PickleError("odd number of items for DICT", at)
        self._push(Seq("dict", items[: self.env.keep_items]))

    # -- memo ----------------------------------------------------------------------------

    def _put(self, index: int, at: int) -> None:
        if index < 0:
            raise PickleError("negative PUT argument", at)
        value = self._top(at)
        value = _CONTAINER if type(value) is Seq else value
        memo = self.memo
        if index < len(memo):
            memo[index] = value
        elif index == len(memo):
            memo.append(value)
            self.memo_extra.pop(index, None)
        else:
            self.memo_extra[index] = value

    def _op_put(self, arg: bytes | None, at: int) -> None:
        self._put(self._number(arg, at, int) if arg is not None else -1, at)

    def _op_binput(self, arg: int, at: int) -> None:
        self._put(arg, at)

    _op_long_binput = _op_binput

    def _op_memoize(self, arg: None, at: int) -> None:
        """MEMOIZE keys by the number of entries, however earlier PUTs numbered them."""
        self._put(len(self.memo) + len(self.memo_extra), at)

    def _get(self, index: int, at: int) -> None:
        if 0 <= index < len(self.memo):
            self.stack.append(self.memo[index])
            return
        value = self.memo_extra.get(index, _MISSING)
        if value is _MISSING:
            raise PickleError(f"memo key {index} not found", at)
        self.stack.append(value)

    def _op_get(self, arg: bytes | None, at: int) -> None:
        index = self._number(arg, at, int)
        self._get(index if isinstance(index, int) else -1, at)

    def _op_binget(self, arg: int, at: int) -> None:
        self._get(arg, at)

    _op_long_binget = _op_binget

    # -- containers and mutation ---------------------------------------------------------

    def _op_append(self, arg: None, at: int) -> None:
        value = self._pop(at)
        self._extend(self._target(at), [value], "APPEND", at)

    def _op_appends(self, arg: None, at: int) -> None:
        items = self._pop_mark(at)
        self._extend(self._target(at), items, "APPENDS", at)

    def _op_additems(self, arg: None, at: int) -> None:
        items = self._pop_mark(at)
        self._extend(self._target(at), items, "ADDITEMS", at)

    def _extend(self, target: Any, items: list[Any], opcode: str, at: int) -> None:
        if not items:
            return  # the loader does not touch the target
        if isinstance(target, Seq):
            room = self.env.keep_items - len(target.items)
            if room > 0:
                target.items.extend(items[:room])
        else:
            self._mutation(target, opcode, at, ())

    def _op_setitem(self, arg: None, at: int) -> None:
        value = self._pop(at)
        key = self._pop(at)
        self._setitems(self._target(at), [key, value], "SETITEM", at)

    def _op_setitems(self, arg: None, at: int) -> None:
        items = self._pop_mark(at)
        if len(items) % 2:
            raise PickleError("odd number of items for SETITEMS", at)
        self._setitems(self._target(at), items, "SETITEMS", at)

    def _setitems(self, target: Any, items: list[Any], opcode: str, at: int) -> None:
        if not items:
            return  # the loader does not touch the target
        if isinstance(target, Seq):
            room = self.env.keep_items - len(target.items)
            if room > 0:
                target.items.extend(items[: room - room % 2])
        else:
            self._mutation(target, opcode, at, items[0::2])

    def _op_build(self, arg: None, at: int) -> None:
        state = self._pop(at)
        inst = self._top(at)
        if isinstance(inst, Call):
            func = inst.func
            if isinstance(func, Ref) and func.verdict.tier is Tier.REBUILT \
                    and not _plain_state(state, func.verdict.protocol):
                self.env.imports.strayed(func.verdict.path, f"BUILD @{at} gives it "
                                         f"{describe(state)} as state")
            if isinstance(func, Ref) and func.verdict.tier is Tier.SAFE:
                inst.state = state  # layouts read it (dtypes, array wrappers); others need not
                hook = self.env.hooks.get(func.verdict.path)
                if hook is not None:
                    hook(self, inst, at)
            return
        self._mutation(inst, "BUILD", at, _state_keys(state))

    def _mutation(self, target: Any, opcode: str, at: int, keys: Any) -> None:
        """Writes into an imported object redefine it for the rest of the load."""
        if not isinstance(target, (Ref, Unresolved)):
            return
        path = target.verdict.path if isinstance(target, Ref) else "an unresolved import"
        names = [k for k in keys if isinstance(k, str)][:8]
        if isinstance(target, Ref):
            self.env.shadowed.update(f"{path}.{k}" for k in names)
        shown = f" ({', '.join(names)})" if names else ""
        self.env.finding(R.MUTATION, f"{opcode} @{at} writes into {path}{shown}: redefines an "
                         "imported object, the way allowlisted names are hijacked", at)

    # -- imports and calls ---------------------------------------------------------------

    def _resolve(self, module: str, name: str, opcode: str, at: int) -> Ref:
        verdict = self.env.classify(module, name)
        self.env.imports.record(verdict, opcode, at)
        if verdict.path in self.env.shadowed or module in self.env.shadowed:
            self.env.finding(R.MUTATION, f"{opcode} @{at} reaches {verdict.path}, which this "
                             "pickle redefined earlier", at)
        return Ref(verdict)

    def _unresolved(self, why: str, opcode: str, at: int) -> Unresolved:
        self.env.finding(R.UNRESOLVED, f"{opcode} @{at}: {why}", at)
        return Unresolved(why)

    def _op_global(self, arg: tuple[bytes | None, bytes | None], at: int) -> None:
        self._push(self._global_from_lines(arg, "GLOBAL", at))

    def _global_from_lines(self, lines: tuple[bytes | None, bytes | None], opcode: str,
                           at: int) -> Ref | Unresolved:
        module, name = lines
        if module is None or name is None:
            return self._unresolved(f"import name longer than {KEEP} bytes", opcode, at)
        try:
            return self._resolve(module.decode("utf-8"), name.decode("utf-8"), opcode, at)
        except UnicodeDecodeError:
            raise PickleError(f"{opcode} name is not UTF-8", at) from None

    def _op_stack_global(self, arg: None, at: int) -> None:
        name = self._pop(at)
        module = self._pop(at)
        if isinstance(module, str) and isinstance(name, str):
            ref = self._resolve(module, name, "STACK_GLOBAL", at)
            how = " and ".join(h for h in (names.how(module), names.how(name)) if h)
            if how:
                self._built_target(ref, how, "STACK_GLOBAL", at)
            self._push(ref)
        elif any(v is LONG_STR for v in (module, name)):
            self._push(self._unresolved(f"import name longer than {KEEP} bytes",
                                        "STACK_GLOBAL", at))
        elif all(isinstance(v, (str, Call, Persistent, Unresolved, Ref)) for v in (module, name)):
            self._push(self._unresolved(
                f"module {describe(module)} and name {describe(name)} are computed while "
                "loading, so the import cannot be known before it runs", "STACK_GLOBAL", at))
        else:
            raise PickleError(f"STACK_GLOBAL needs two strings, got {describe(module)} and "
                              f"{describe(name)}", at)

    def _op_inst(self, arg: tuple[bytes | None, bytes | None], at: int) -> None:
        cls = self._global_from_lines(arg, "INST", at)
        args = tuple(self._pop_mark(at))
        self._push(self._call(cls, args, "INST", at))

    def _op_obj(self, arg: None, at: int) -> None:
        items = self._pop_mark(at)
        if not items:
            raise PickleError("stack underflow", at)
        self._push(self._call(items[0], tuple(items[1:]), "OBJ", at))

    def _op_reduce(self, arg: None, at: int) -> None:
        args = self._pop(at)
        func = self._pop(at)
        self._push(self._call(func, args, "REDUCE", at))

    def _op_newobj(self, arg: None, at: int) -> None:
        args = self._pop(at)
        cls = self._pop(at)
        self._push(self._call(cls, args, "NEWOBJ", at))

    def _op_newobj_ex(self, arg: None, at: int) -> None:
        self._pop(at)  # keyword arguments
        args = self._pop(at)
        cls = self._pop(at)
        self._push(self._call(cls, args, "NEWOBJ_EX", at))

    def _call(self, func: Any, args: Any, opcode: str, at: int) -> Call:
        """Record the call; a result later discarded by POP was still a call."""
        call = Call(func, args, at)
        if isinstance(func, Ref):
            self.env.imports.called(func.verdict.path, opcode, at)
            if func.verdict.tier is Tier.REBUILT:
                how = _off_protocol(func.verdict.protocol, opcode, args)
                if how:
                    self.env.imports.strayed(func.verdict.path, f"{opcode} @{at} {how}")
                elif func.verdict.protocol is Protocol.RECONSTRUCTOR:
                    return self._call(args[0], (), "NEWOBJ", at)  # object.__new__(cls)
            hook = self.env.call_hooks.get(func.verdict.path)
            if hook is not None:
                hook(self, call, at)
            if opcode == "REDUCE" and isinstance(args, tuple):
                built = self._evaluate(func.verdict.path, args, at)
                if built is not None:
                    return built
        elif isinstance(func, (Getter, MethodCaller)) and isinstance(args, tuple) \
                and len(args) == 1:
            what = f"{type(func).__name__.lower()}({func.name!r})({describe(args[0])})"
            target = self._reach(args[0], func.name, what, opcode, at)
            if isinstance(func, Getter):
                return target
            if isinstance(target, Ref):
                self.env.imports.called(target.verdict.path, opcode, at)
            return Call(target, (), at)
        elif not isinstance(func, Unresolved):
            self.env.finding(R.COMPUTED_CALL, f"{opcode} @{at} calls {describe(func)}, not an "
                             "import the scanner could grade", at)
        return call

    # -- names built while loading (getattr, attrgetter, decoders, namespace lookups) ----

    def _evaluate(self, path: str, args: tuple[Any, ...], at: int) -> Any:
        """What a name-building call returns, when the scanner can tell; else None."""
        if path not in _NAME_BUILDERS:
            return None
        first = args[0] if args else None
        if path in _LOOKUPS and len(args) >= 2:
            space = _namespace(first)
            if space is not None:
                return self._reach(space, args[1], f"{path}({describe(first)}, "
                                   f"{describe(args[1])})", "REDUCE", at)
        reflect = _REFLECT.get(path)
        if reflect == "getattr" and len(args) >= 2:
            return self._reach(first, args[1], f"getattr({describe(first)}, "
                               f"{describe(args[1])})", "REDUCE", at)
        if reflect in ("attrgetter", "methodcaller") and args and isinstance(first, str):
            return Getter(first) if reflect == "attrgetter" else MethodCaller(first)
        if reflect == "vars":
            return _namespace(first) if args else Namespace(None)
        if reflect == "import" and isinstance(first, str):
            ref = Ref(classify_module(first, self.env.tiers))
            self.env.imports.record(ref.verdict, "REDUCE", at)
            self._built_target(ref, f"{path}({describe(first)})", "REDUCE", at)
            return ref
        plain = tuple(_plain(a) for a in args)
        value = names.evaluate(path, plain)
        if isinstance(value, str):
            shown = ", ".join(describe(a) for a in args[:3])
            return Built(value, names.how(first) or f"{path}({shown})")
        return value

    def _reach(self, obj: Any, name: Any, how: str, opcode: str, at: int) -> Any:
        """`obj.name` (or `obj[name]` in a namespace), graded as the import it really is."""
        space = obj if isinstance(obj, Namespace) else None
        path = space.path if space is not None else (
            obj.verdict.path if isinstance(obj, Ref) else None)
        if path is None or not isinstance(name, str):
            return self._unresolved(f"{how} computes its target while loading, so what it "
                                    "reaches cannot be known before it runs", opcode, at)
        ref = self._resolve(path, name, opcode, at)
        self._built_target(ref, how, opcode, at)
        return ref

    def _built_target(self, ref: Ref, how: str, opcode: str, at: int) -> None:
        dangerous = ref.verdict.tier is Tier.DANGEROUS
        self.env.finding(
            R.BUILT_TARGET, f"{opcode} @{at} reaches {ref.verdict.path} through {how}"
            + (f": {ref.verdict.reason}" if dangerous else ""), at,
            Severity.CRITICAL if dangerous else Severity.HIGH)

    def _op_ext1(self, arg: int, at: int) -> None:
        if arg <= 0:
            raise PickleError("EXT specifies code <= 0", at)
        self._push(self._unresolved(f"extension code {arg} refers to the loader's copyreg "
                                    "registry, which a static scan cannot see", "EXT", at))

    _op_ext2 = _op_ext1
    _op_ext4 = _op_ext1

    def _op_persid(self, arg: bytes | None, at: int) -> None:
        if arg is None:
            raise PickleError("persistent id longer than the scanner keeps", at)
        try:
            self._persistent(arg.decode("ascii"), at)
        except UnicodeDecodeError:
            raise PickleError("persistent id is not ASCII", at) from None

    def _op_binpersid(self, arg: None, at: int) -> None:
        if not self.env.persistent_load:
            raise PickleError("BINPERSID without a persistent_load function", at)
        self._persistent(self._pop(at), at)

    def _persistent(self, pid: Any, at: int) -> None:
        value = Persistent(pid, at)
        if self.env.collect_persistent:
            self.env.persistent.append(value)
        if isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module" \
                and isinstance(pid[1], (Ref, Unresolved)):
            # legacy torch.load answers ('module', cls, source file, source) with cls itself
            self._push(pid[1])
            return
        self._push(value)

    # -- protocol and framing ------------------------------------------------------------

    def _op_proto(self, arg: int, at: int) -> None:
        if arg > HIGHEST_PROTOCOL:
            raise PickleError(f"unsupported pickle protocol {arg}", at)
        self.proto = arg

    def _op_frame(self, arg: int, at: int) -> None:
        if arg > self.env.limits.max_string_bytes:  # the loader reads a frame whole
            raise LimitExceeded(f"FRAME @{at} declares {arg} bytes, over the "
                                f"{self.env.limits.max_string_bytes}-byte limit", at)
        if self.frame_end is not None and at < self.frame_end:
            self.env.finding(R.FRAME, f"FRAME @{at} starts inside the frame ending "
                             f"@{self.frame_end}", at)
        self.inp.enter_frame(arg, at)
        self.frame_end = self.inp.offset + arg


_READERS = {
    Arg.NONE: "_arg_none", Arg.U1: "_arg_u1", Arg.U2: "_arg_u2", Arg.U4: "_arg_u4",
    Arg.I4: "_arg_i4", Arg.U8: "_arg_u8", Arg.F8: "_arg_f8", Arg.LINE: "_arg_line",
    Arg.LINES2: "_arg_lines2", Arg.LEN1: "_arg_len1", Arg.LEN4: "_arg_len4",
    Arg.LEN4S: "_arg_len4s", Arg.LEN8: "_arg_len8",
}


@cache
def _dispatch_table() -> tuple[tuple[Op, Callable[..., Any], Callable[..., Any]] | None, ...]:
    """Opcode byte -> (op, argument reader, handler), built once from the opcode table."""
    table: list[tuple[Op, Callable[..., Any], Callable[..., Any]] | None] = [None] * 256
    for op in BY_CODE.values():
        table[op.code] = (op, getattr(Machine, _READERS[op.arg]),
                          getattr(Machine, "_op_" + op.name.lower()))
    return tuple(table)


def _c_string(text: bytes) -> bytes:
    """A line as the C loader's number parsers see it: a C string, ended by the first NUL."""
    return text.split(b"\0", 1)[0]


# What C strtol / PyLong_FromString / PyOS_string_to_double may accept before a NUL ends
# the C string (a superset: a line called dead must be one the loader rejects).
_NUMBER_DEAD = re.compile(rb"[^\t\n\x0b\x0c\r +\-.0-9A-Za-z_]")
# Module and attribute names the import machinery can find: identifier text and dots.
_NAME_DEAD = re.compile(rb"[^.0-9A-Za-z_\x80-\xff]")


def _number_dead(empty_parses: bool) -> Callable[[bytes], bool]:
    def dead(head: bytes) -> bool:
        text = _c_string(head)
        return (not text and not empty_parses and len(text) < len(head)) \
            or _NUMBER_DEAD.search(text) is not None
    return dead


_DEAD_LINE: dict[str, Callable[[bytes], bool]] = {
    "INT": _number_dead(empty_parses=True),  # strtol of "" is 0, ended by the NUL
    **{op: _number_dead(empty_parses=False) for op in ("LONG", "FLOAT", "GET", "PUT")},
    "STRING": lambda head: head[:1] not in (b"", b"'", b'"'),
    "PERSID": lambda head: max(head, default=0) > 0x7F,  # decoded as ASCII
    "GLOBAL": lambda head: _NAME_DEAD.search(head) is not None,
    "INST": lambda head: _NAME_DEAD.search(head) is not None,
}


def _c_int(text: str) -> int:
    """INT's argument as the C loader reads it: strtol base 0 first (so `010` is octal 8)."""
    try:
        return int(text, 0)
    except ValueError:
        octal = _OCTAL.fullmatch(text)
        if octal is None:
            raise
        return int(octal.group(1) + octal.group(2), 8)


_CONSTANT = (str, int, float, bool, bytes, type(None))
# Functions that reach an attribute or namespace entry by a name given as data.
_REFLECT = {
    "builtins.getattr": "getattr", "inspect.getattr_static": "getattr",
    **{f"{m}.{n}": n for m in ("operator", "_operator") for n in ("attrgetter", "methodcaller")},
    **{f"{m}.itemgetter": "attrgetter" for m in ("operator", "_operator")},  # on namespaces
    "pydoc.locate": "import",
    "builtins.vars": "vars", "builtins.globals": "vars", "builtins.locals": "vars",
    "builtins.__import__": "import", "importlib.import_module": "import",
    "importlib.__import__": "import",
}
_LOOKUPS = frozenset({
    "builtins.dict.get", "builtins.dict.__getitem__", "operator.getitem", "_operator.getitem",
})

_NAME_BUILDERS = frozenset({*_REFLECT, *_LOOKUPS, *names.STRING_FUNCTIONS})


def _namespace(value: Any) -> Namespace | None:
    """The attribute dict a value stands for: `vars(x)`, `x.__dict__`, the loader's globals."""
    if isinstance(value, Namespace):
        return value
    if isinstance(value, Ref):
        path = value.verdict.path
        return Namespace(path[: -len(".__dict__")] if path.endswith(".__dict__") else path)
    return None


def _plain(value: Any) -> Any:
    """A list or tuple of constants as Python values, for the string functions."""
    if isinstance(value, Seq) and value.kind == "list":
        return list(value.items)
    return value


def _off_protocol(protocol: Protocol | None, opcode: str, args: Any) -> str:
    """How a call of a `rebuilt` import leaves its protocol, or "" when it keeps to it."""
    if protocol is Protocol.STATE:
        if opcode in ("NEWOBJ", "NEWOBJ_EX") and args == ():
            return ""
        return "calls it with arguments (its __init__ or __new__ would run)"
    if protocol is Protocol.RECONSTRUCTOR:
        if opcode == "REDUCE" and isinstance(args, tuple) and len(args) == 3 \
                and isinstance(args[0], Ref) and isinstance(args[1], Ref) \
                and args[1].verdict.path == "builtins.object" and args[2] is None:
            return ""
        return "calls it with a base other than object (base.__init__ would run)"
    if protocol is Protocol.CONSTANTS:
        if opcode in ("REDUCE", "NEWOBJ") and isinstance(args, tuple) \
                and all(isinstance(a, _CONSTANT) for a in args):
            return ""
        return "calls it with arguments that are not constants"
    return "calls it (it is allowed only as a value)"


def _plain_state(state: Any, protocol: Protocol | None) -> bool:
    """BUILD state the default setstate copies into __dict__: a dict, or (dict | None, dict)."""
    if protocol is not Protocol.STATE:
        return False
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    dicts = [p for p in parts if p is not None]
    return bool(dicts) and all(isinstance(p, Seq) and p.kind == "dict" for p in dicts)


def _state_keys(state: Any) -> list[Any]:
    """Attribute names a BUILD state would set: a dict, or (dict, slot dict)."""
    parts = state if isinstance(state, tuple) else (state,)
    keys: list[Any] = []
    for part in parts[:2]:
        if isinstance(part, Seq) and part.kind == "dict":
            keys.extend(part.items[0::2])
    return keys
