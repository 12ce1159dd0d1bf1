"""The differential oracle: CPython's own C unpickler, disarmed, in a throwaway subprocess.

The scanner never unpickles; this test helper does, so that the scanner's
static reading can be checked against what the real loader actually asks
for. The child process runs `_pickle.Unpickler` with `find_class` replaced:
every (module, name) the loader asks for is recorded and answered with an
inert stub class, so REDUCE / NEWOBJ / OBJ / INST / BUILD / SETITEM on it
only record an event. `persistent_load` answers with a stub too, and a few
copyreg extension codes are registered to stub names, so EXT opcodes reach
`find_class` as they would in a process that registered them. Every blob is
loaded twice, as the C loader reads a file frame by frame (`torch.load`'s
BytesIO) and as it reads one whole buffer (`pickle.loads`, or a file whose
`peek()` shows everything): where frames are violated the two differ, and
the events of both count.

Containment: the child runs isolated (`python -I`, a temporary working
directory, no network namespace where `unshare -n` is allowed, sockets
refused in any case), with an address-space limit and a per-pickle CPU-time
limit. A pickle that exhausts its CPU budget (a DUP/GET amplification) kills
the child; the parent keeps the events streamed so far, marks that pickle
`killed` and starts a fresh child for the rest.

`compare()` states the contract the tests enforce: every import the loader
performed is an import the analysis reported (or one it reported as
unresolvable), every call of an import is a call the analysis saw, every
call of a computed value and every write into an imported object has its
finding.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.limits import Limits
from auditor.formats.pickle import rules as pickle_rules
from auditor.formats.pickle.imports import classify, tiers_for
from auditor.formats.pickle.machine import Env
from auditor.formats.pickle.plain import analyse_both_ways

EXT_MODULE = "oracle_ext"  # copyreg extension codes resolve to (EXT_MODULE, f"code{n}")
EXT_CODES = (1, 2, 3, 200, 255, 256, 257, 4660, 65535, 65536, 123456, 0x7FFFFFFF)
CPU_SECONDS_PER_PICKLE = 1
ADDRESS_SPACE = 2 << 30

CHILD = r'''
import copyreg, io, json, resource, socket, sys, _pickle

def refuse(*a, **k):
    raise OSError("network disabled in the oracle")
socket.socket = refuse
socket.create_connection = refuse

for code in CODES:
    copyreg.add_extension(EXT, "code%d" % code, code)

out = sys.stdout
def emit(*event):
    out.write(json.dumps(event) + "\n")
    out.flush()

MUTATORS = frozenset({"__setstate__", "extend", "append", "add"})

class Meta(type):
    """Stub classes: what find_class returns. Calls and writes on them are events."""
    def __call__(cls, *args, **kwargs):
        emit("call", cls._mod, cls._name)
        return Inst("result of " + cls._path)
    def __setitem__(cls, key, value):
        emit("mutate", cls._path, "setitem")
    def __getattr__(cls, name):
        if name in MUTATORS:
            return lambda *a, **k: emit("mutate", cls._path, name)
        raise AttributeError(name)

class Global(metaclass=Meta):
    _path = "?"
    def __new__(cls, *args, **kwargs):
        emit("call", cls._mod, cls._name)
        return Inst("instance of " + cls._path)

class Inst:
    """Whatever a call or persistent_load returns: calling it is a computed call."""
    def __init__(self, what):
        object.__setattr__(self, "_what", what)
    def __call__(self, *args, **kwargs):
        emit("computed-call", self._what)
        return Inst("result of calling " + self._what)
    def __setitem__(self, key, value):
        emit("instance-write", self._what)
    def __getattr__(self, name):
        if name in MUTATORS:
            return lambda *a, **k: emit("instance-write", self._what)
        raise AttributeError(name)

class Oracle(_pickle.Unpickler):
    def find_class(self, module, name):
        emit("import", module, name)
        attrs = {"_path": module + "." + name, "_mod": module, "_name": name}
        return Meta("Stub", (Global,), attrs)
    def persistent_load(self, pid):
        return Inst("persistent object")

class Peeking(io.BytesIO):
    """A file whose peek() shows everything left: the C loader then reads the stream as one
    buffer, as pickle.loads does, while a plain BytesIO makes it read each frame exactly."""
    def peek(self, n=0):
        return self.getvalue()[self.tell():]

blobs = open(sys.argv[1], "rb").read()
start = int(sys.argv[2])
offsets = json.loads(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
for i in range(start, len(offsets) - 1):
    data = blobs[offsets[i]:offsets[i + 1]]
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime) + 1 + CPU
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard < 0 else min(soft, hard), hard))
    emit("begin", i)
    loaded, error = 0, None
    for f in (io.BytesIO(data), Peeking(data)):
        count = 0
        while f.tell() < len(data):
            try:
                Oracle(f).load()
                count += 1
            except BaseException as exc:
                error = error or "%s: %s" % (type(exc).__name__, str(exc)[:200])
                break
        loaded = max(loaded, count)
    emit("end", i, loaded, error)
'''


@dataclass
class LoaderRun:
    """What the real loader did with one blob (all pickles in it, until the first error)."""

    imports: list[tuple[str, str]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # imported stubs called
    computed_calls: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)  # paths of imported stubs written to
    pickles: int = 0
    error: str | None = None
    killed: bool = False  # the CPU budget ran out (amplification)


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _isolation() -> list[str]:
    """`unshare -n` (a namespace without network) when this machine allows it."""
    tool = shutil.which("unshare")
    if tool and subprocess.run([tool, "-n", "true"], capture_output=True).returncode == 0:
        return [tool, "-n"]
    return []


def run_loader(blobs: list[bytes]) -> list[LoaderRun]:
    """Feed every blob to the disarmed C unpickler, in as few child processes as possible."""
    runs = [LoaderRun() for _ in blobs]
    offsets = [0]
    for blob in blobs:
        offsets.append(offsets[-1] + len(blob))
    prefix = _isolation()
    child = CHILD.replace("CODES", repr(EXT_CODES)).replace("EXT,", repr(EXT_MODULE) + ",")
    child = child.replace("+ CPU", f"+ {CPU_SECONDS_PER_PICKLE}")
    with tempfile.TemporaryDirectory(prefix="oracle-") as work:
        path = Path(work) / "blobs"
        path.write_bytes(b"".join(blobs))
        start = 0
        while start < len(blobs):
            proc = subprocess.run(
                [*prefix, sys.executable, "-I", "-c", child, str(path), str(start),
                 json.dumps(offsets)],
                cwd=work, env={"PATH": os.environ.get("PATH", "/usr/bin")},
                capture_output=True, preexec_fn=_limit_child, check=False,
            )
            current = _parse(proc.stdout, runs)
            if proc.returncode == 0:
                break
            if current is None:
                raise RuntimeError(f"oracle child failed: {proc.stderr[-2000:]!r}")
            runs[current].killed = True
            runs[current].error = f"killed by signal {-proc.returncode}"
            start = current + 1
    return runs


def _parse(stdout: bytes, runs: list[LoaderRun]) -> int | None:
    """Fold the event lines into `runs`; the index of a pickle begun but not ended, if any."""
    current: int | None = None
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            break  # the last line of a killed child may be cut
        kind = event[0]
        if kind == "begin":
            current = event[1]
        elif kind == "end":
            runs[event[1]].pickles, runs[event[1]].error = event[2], event[3]
            current = None
        elif current is not None:
            run = runs[current]
            seen = {"import": run.imports, "call": run.calls,
                    "computed-call": run.computed_calls, "mutate": run.mutations}.get(kind)
            value = tuple(event[1:3]) if kind in ("import", "call") else event[1]
            if seen is not None and value not in seen:  # both readings report most events
                seen.append(value)
    return current


# ---- the static side ---------------------------------------------------------------------

@dataclass
class StaticRun:
    """What the scanner's symbolic machine reported for one blob."""

    imported: set[str]  # analyser paths
    called: set[str]
    rules: set[str]
    stopped: str | None  # why the analysis stopped early, if it did


def analyse_static(data: bytes) -> StaticRun:
    """The pickle module's own analysis loop on `data`, imports read before they are flushed."""
    rules: set[str] = set()
    env = Env(tiers=tiers_for(), limits=Limits(),
              report=lambda rule, detail, at, severity: rules.add(rule.id))
    stopped = None
    try:
        analyse_both_ways(io.BytesIO(data), env)
    except (FormatError, LimitExceeded) as exc:
        stopped = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, LimitExceeded):
            rules.add("limit")
    uses = env.imports.uses
    return StaticRun(
        imported=set(uses), called={p for p, u in uses.items() if u.calls}, rules=rules,
        stopped=stopped,
    )


def analyser_path(module: str, name: str) -> str:
    """The path the analyser files the loader's find_class(module, name) under."""
    return classify(module, name, tiers_for()).path


def compare(loader: LoaderRun, static: StaticRun) -> list[str]:
    """Everything the loader did that the analysis missed (empty when they agree)."""
    unresolved = pickle_rules.UNRESOLVED.id in static.rules
    if "limit" in static.rules:
        return []  # a limit finding fails the file closed, whatever follows
    missed = []
    for module, name in loader.imports:
        path = analyser_path(module, name)
        if module == EXT_MODULE:
            if not unresolved:
                missed.append(f"EXT import {module}.{name} without an unresolved-import finding")
        elif path not in static.imported:
            missed.append(f"import {module}.{name} not reported")
    for module, name in loader.calls:
        if module != EXT_MODULE and analyser_path(module, name) not in static.called:
            missed.append(f"call of {module}.{name} not reported")
    if loader.computed_calls and not (static.rules & {
        pickle_rules.COMPUTED_CALL.id, pickle_rules.UNRESOLVED.id, pickle_rules.BUILT_TARGET.id,
    }):
        missed.append(f"computed call ({loader.computed_calls[0]}) without a finding")
    if loader.mutations and not (
        static.rules & {pickle_rules.MUTATION.id, pickle_rules.UNRESOLVED.id}
    ):
        missed.append(f"write into {loader.mutations[0]} without a finding")
    return missed

