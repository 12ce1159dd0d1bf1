"""Import tiers as data: `rebuilt` classes keep to the reduce protocol, re-exports keep no trust.

The `rebuilt` entries are checked against the installed classes (what makes
them run no code under their protocol must still hold), and pickles that use
them any other way fall back to known-ml. Re-exports found by introspection
(`tests/pickle_tables.py`) are graded as the sensitive object they are.
"""

from __future__ import annotations

import enum
import importlib
import io
import pathlib
import pickle
from pathlib import PurePosixPath

import pytest

from auditor.formats.contract import FormatOptions, ScanContext
from auditor.formats.pickle import imports
from auditor.formats.pickle.introspected import REEXPORTS
from auditor.model import Severity
from auditor.scanning.engine import dispatch
from tests.pickle_corpus import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    NEWOBJ,
    NONE,
    REDUCE,
    SETITEM,
    STOP,
    call,
    glob,
    proto,
    u,
)


def _object(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _scan(data: bytes):
    ctx = ScanContext(file="x.pkl", name="x.pkl", size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    return dispatch(io.BytesIO(data), ctx)


def _worst(data: bytes) -> Severity | None:
    return max((f.severity for f in _scan(data).findings), default=None)


@pytest.mark.parametrize("group", imports.REBUILT, ids=lambda g: g.why[:30])
def test_every_rebuilt_entry_still_runs_no_code_under_its_protocol(group):
    import numpy as np

    for path in group.paths:
        obj = _object(path)
        if group.protocol is imports.Protocol.STATE:
            assert obj.__new__ is object.__new__, path
            assert getattr(obj, "__setstate__", None) is None, path
            assert obj.__setattr__ is object.__setattr__, path
            assert obj.__reduce_ex__ is object.__reduce_ex__, path
        elif group.protocol is imports.Protocol.CONSTANTS:
            assert issubclass(obj, (enum.Enum, pathlib.PurePath)), path
        elif group.protocol is imports.Protocol.RECONSTRUCTOR:
            assert obj is __import__("copyreg")._reconstructor, path
        else:
            assert isinstance(obj, np.ufunc) or obj is __import__("typing").Any, path


def _state(module: str, name: str, *, args: bytes = EMPTY_TUPLE, state: bytes = EMPTY_DICT,
           op: bytes = NEWOBJ) -> bytes:
    return (proto(2) + glob(module, name) + args + op + state + u("lr") + u("1e-3") + SETITEM
            + BUILD + STOP)


@pytest.mark.parametrize("protocol", [0, 1])
def test_protocol_0_and_1_reconstructor_is_the_reduce_protocol(protocol):
    import argparse

    assert _scan(pickle.dumps(argparse.Namespace(a=1, p=PurePosixPath("/x")),
                              protocol=protocol)).findings == []
    other_base = (proto(2) + call(glob("copy_reg", "_reconstructor"), glob("argparse", "Namespace"),
                                  glob("__builtin__", "list"), NONE) + STOP)
    found = {f.rule: f for f in _scan(other_base).findings}
    assert found["AUD-PKL-003"].severity == Severity.MEDIUM
    assert "base other than object" in found["AUD-PKL-003"].detail


def test_dataclass_rebuilt_by_newobj_and_plain_state_is_clean():
    assert _scan(_state("transformers.training_args", "TrainingArguments")).findings == []
    assert _scan(pickle.dumps(PurePosixPath("/data/x"), protocol=2)).findings == []


@pytest.mark.parametrize("data", [
    _state("argparse", "Namespace", args=u("x") + b"\x85"),  # NEWOBJ with arguments
    _state("argparse", "Namespace", op=REDUCE),  # REDUCE runs __init__
    proto(2) + glob("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ + u("state") + BUILD + STOP,
    proto(2) + call(glob("transformers.trainer_utils", "IntervalStrategy"),
                    call(glob("builtins", "list"))) + STOP,  # a non-constant enum value
    proto(2) + call(glob("numpy", "log1p"), u("1")) + STOP,  # a ufunc allowed as a value only
], ids=["newobj-args", "reduce", "non-dict-state", "enum-computed", "ufunc-called"])
def test_rebuilt_classes_used_outside_their_protocol_are_known_ml(data):
    found = {f.rule: f for f in _scan(data).findings}
    assert found["AUD-PKL-003"].severity == Severity.MEDIUM
    assert "reduce protocol" in found["AUD-PKL-003"].detail


def test_reexport_table_is_data_of_allowlisted_paths_to_sensitive_objects():
    tiers = imports.build_tiers()
    assert len(REEXPORTS) > 50
    for path, defined in REEXPORTS.items():
        assert not imports._dangerous(path.split("."), len(path.split(".")) - 1, tiers.dangerous)
        verdict = imports.classify(*path.rsplit(".", 1), tiers)
        assert imports._reexported(path.split(".")) == defined
        assert verdict.tier in (imports.Tier.DANGEROUS, imports.Tier.UNKNOWN), path


@pytest.mark.parametrize("module,name,defined", [
    ("sklearn.callback._transport", "Listener", "multiprocessing.connection.Listener"),
    ("sklearn.callback._transport", "Client", "multiprocessing.connection.Client"),
    ("lightgbm.basic", "NamedTemporaryFile", "tempfile.NamedTemporaryFile"),
    ("lightgbm.libpath", "system", "platform.system"),
    ("torch.distributed.distributed_c10d", "_unpickler", "_pickle.Unpickler"),
    ("sklearn.callback._progressbar", "Thread", "threading.Thread"),
    ("joblib.externals.loky.backend.context", "mp.Process", "multiprocessing.Process"),
    ("sklearn.callback", "_transport.Listener", "multiprocessing.connection.Listener"),
])
def test_reexports_through_allowlisted_modules_keep_no_trust(module, name, defined):
    assert imports._reexported(f"{module}.{name}".split(".")) == defined
    for data in (proto(2) + call(glob(module, name), u("x")) + STOP,
                 proto(4) + u(module) + u(name) + b"\x93" + STOP):
        (finding,) = [f for f in _scan(data).findings if f.rule == "AUD-PKL-014"]
        assert finding.severity == Severity.CRITICAL
        assert f"re-export of {defined}" in finding.detail


@pytest.mark.parametrize("module,name", [
    ("numpy", "os.system"), ("torch.serialization", "os.system"), ("sklearn.base", "np.load"),
    ("numpy.lib.npyio", "os.popen"), ("transformers.utils", "subprocess.Popen"),
    ("accelerate.checkpointing", "np.load"),
])
def test_sensitive_names_are_dangerous_whatever_library_path_reaches_them(module, name):
    assert imports.classify(module, name, imports.build_tiers()).tier is imports.Tier.DANGEROUS


@pytest.mark.parametrize("module,name,reach", [
    ("pandas.core.frame", "os.system", "os"), ("pandas", "core.frame.os.system", "os"),
    ("pandas._libs.lib", "np.load", "numpy.load"), ("pandas._testing", "pd.read_pickle", ""),
    ("pandas", "read_pickle", ""), ("pandas", "HDFStore", "pandas.io.pytables.HDFStore"),
    ("pandas", "read_hdf", "pandas.io.pytables.read_hdf"), ("pandas", "eval", ""),
    ("pandas.core.computation.scope", "Scope", ""), ("pandas.io.pytables", "HDFStore", ""),
])
def test_pandas_paths_to_dangerous_objects_stay_critical(module, name, reach):
    tiers = imports.build_tiers()
    assert imports.classify(module, name, tiers).tier is imports.Tier.DANGEROUS
    if reach.startswith("pandas.io"):
        assert imports._reexported(f"{module}.{name}".split(".")) == reach
    data = proto(2) + call(glob(module, name), u("id")) + STOP
    assert max(f.severity for f in _scan(data).findings) == Severity.CRITICAL


@pytest.mark.parametrize("module,name", [
    ("pandas", "DataFrame"), ("pandas.core.internals.managers", "BlockManager"),
    ("pandas._libs.internals", "_unpickle_block"), ("pandas.core.indexes.base", "_new_Index"),
    ("pandas", "StringDtype"), ("pandas", "Categorical"),
])
def test_pandas_reconstruction_is_known_ml(module, name):
    assert imports.classify(module, name, imports.build_tiers()).tier is imports.Tier.KNOWN_ML
