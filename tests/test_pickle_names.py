"""Pickled call chains that build the callable: the name is resolved, then graded.

getattr/attrgetter/methodcaller, vars()/globals()/__dict__ lookups, and
decoders or joins of constant strings (codecs, base64, str.join,
bytes.decode) are evaluated symbolically on constants: a chain that reaches
a dangerous callable is critical (AUD-PKL-013 and the import itself), one
whose name is computed from something else is at least high. Each payload
would run `touch <canary>`; the controls prove pickle.loads runs them.
"""

from __future__ import annotations

import base64
import codecs
import io
import pickle
import subprocess
import sys

import pytest

from auditor.formats.contract import FormatOptions, ScanContext
from auditor.model import Severity
from auditor.scanning.engine import dispatch
from tests.pickle_corpus import (
    APPENDS,
    EMPTY_LIST,
    MARK,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    binbytes,
    call,
    glob,
    proto,
    u,
)


def _scan(data: bytes):
    ctx = ScanContext(file="x.pkl", name="x.pkl", size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    return dispatch(io.BytesIO(data), ctx)


def _list(*items: bytes) -> bytes:
    return EMPTY_LIST + MARK + b"".join(items) + APPENDS


def _tuple(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def _rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


def spellings(cmd: str) -> dict[str, bytes]:
    """Each pushes a callable that is os.system (or exec) built from data, then calls it."""
    os_mod = call(glob("builtins", "__import__"), u("os"))
    bi = glob("builtins", "__dict__")
    return {
        "getattr-constant": call(glob("builtins", "getattr"), os_mod, u("system")),
        "getattr-rot13": call(glob("builtins", "getattr"), os_mod,
                              call(glob("_codecs", "encode"), u(_rot13("system")), u("rot13"))),
        "stack-global-rot13": u("os") + call(glob("_codecs", "encode"), u(_rot13("system")),
                                             u("rot_13")) + STACK_GLOBAL,
        "stack-global-base64": u("os") + call(glob("builtins", "bytes.decode"), call(
            glob("base64", "b64decode"), u(base64.b64encode(b"system").decode()))) + STACK_GLOBAL,
        "stack-global-join": call(glob("builtins", "str.join"), u(""),
                                  _list(u("o"), u("s"))) + u("system") + STACK_GLOBAL,
        "stack-global-str-bytes": call(glob("builtins", "str"), binbytes(b"os"), u("ascii"))
        + u("system") + STACK_GLOBAL,
        "attrgetter": call(call(glob("operator", "attrgetter"), u("system")), os_mod),
        "import-module-hex": call(glob("builtins", "getattr"), call(
            glob("importlib", "import_module"),
            call(glob("builtins", "bytes.decode"), call(glob("binascii", "unhexlify"),
                                                        u(b"os".hex())))), u("system")),
        "vars-lookup": call(glob("builtins", "dict.get"), call(glob("builtins", "vars"), os_mod),
                            u("system")),
        "dunder-dict-getitem": call(glob("operator", "getitem"), bi, u("exec")),
        "itemgetter-vars": call(call(glob("_operator", "itemgetter"), u("system")),
                                call(glob("builtins", "vars"), os_mod)),
        "getattr-static-locate": call(glob("inspect", "getattr_static"),
                                      call(glob("pydoc", "locate"), u("os")), u("system")),
        "getattr-str-join": call(call(glob("builtins", "getattr"), glob("builtins", "str"),
                                      u("join")), u(""), _list(u("o"), u("s")))
        + u("system") + STACK_GLOBAL,
    }


def _payload(body: bytes, cmd: str, exec_style: bool) -> bytes:
    arg = u(f"__import__('os').system({cmd!r})") if exec_style else u(cmd)
    return proto(4) + call(body, arg) + STOP  # protocol 4: GLOBAL walks dotted names


@pytest.mark.parametrize("name", list(spellings("")))
def test_built_callables_resolve_to_what_they_are_and_are_critical(name):
    body = spellings("true")[name]
    found = _scan(_payload(body, "true", name.startswith("dunder")))
    built = [f for f in found.findings if f.rule == "AUD-PKL-013"]
    assert built and max(f.severity for f in built) == Severity.CRITICAL, found.findings
    target = "builtins.exec" if name.startswith("dunder") else "os.system"
    assert any(target in f.detail for f in built), [f.detail for f in built]


@pytest.mark.parametrize("name", list(spellings("")))
def test_control_the_loader_runs_the_built_callable(tmp_path, name):
    canary = tmp_path / "ran"
    data = _payload(spellings("")[name], f"touch {canary}", name.startswith("dunder"))
    code = f"import pickle,sys; pickle.loads(bytes.fromhex({data.hex()!r}))"
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert canary.exists()


def test_a_name_built_from_something_computed_is_high_not_clean():
    unknown = call(glob("mylib", "name_of"), u("x"))
    data = proto(2) + call(call(glob("builtins", "getattr"), glob("collections", "OrderedDict"),
                                unknown), u("x")) + STOP
    worst = max(f.severity for f in _scan(data).findings)
    assert worst >= Severity.HIGH
    assert any(f.rule == "AUD-PKL-004" for f in _scan(data).findings)


def test_a_decoded_name_of_a_harmless_callable_is_still_high():
    data = proto(2) + u("collections") + call(glob("_codecs", "encode"), u(_rot13("OrderedDict")),
                                              u("rot13")) + STACK_GLOBAL + _tuple() + b"R" + STOP
    (finding,) = [f for f in _scan(data).findings if f.rule == "AUD-PKL-013"]
    assert finding.severity == Severity.HIGH and "collections.OrderedDict" in finding.detail


def test_protocol_2_bytes_spelled_by_codecs_stay_clean():
    assert _scan(pickle.dumps([b"abc", bytearray(b"x")], protocol=2)).findings == []


def test_unknown_codecs_are_not_evaluated():
    data = proto(2) + u("os") + call(glob("_codecs", "decode"), binbytes(b"x"), u("zlib")) \
        + STACK_GLOBAL + STOP
    assert any(f.rule == "AUD-PKL-004" for f in _scan(data).findings)


def test_methodcaller_on_a_located_module_calls_what_it_names(tmp_path):
    """CVE-2025-71320: pydoc.locate('os') + operator.methodcaller('system', cmd)."""
    def payload(cmd: str) -> bytes:
        caller = call(glob("operator", "methodcaller"), u("system"), u(cmd))
        return proto(4) + call(caller, call(glob("pydoc", "locate"), u("os"))) + STOP

    found = _scan(payload("true")).findings
    built = [f for f in found if f.rule == "AUD-PKL-013"]
    assert any(f.severity == Severity.CRITICAL and "os.system" in f.detail for f in built)
    canary = tmp_path / "ran"
    code = f"import pickle; pickle.loads(bytes.fromhex({payload(f'touch {canary}').hex()!r}))"
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert canary.exists()
