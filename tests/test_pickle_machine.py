"""The symbolic machine, trick by trick: what a loader would do is what gets reported."""

from __future__ import annotations

import io
import os
import pickle
import time

import pytest

from auditor.formats._lib.limits import Limits
from auditor.formats.contract import FormatOptions, ScanContext
from auditor.formats.pickle import imports
from auditor.formats.pickle import plain as pickle_format
from auditor.model import Coverage, Severity
from auditor.scanning.engine import dispatch
from tests.pickle_corpus import (
    APPENDS,
    BUILD,
    DUP,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    MARK,
    MEMOIZE,
    NEWOBJ_EX,
    NONE,
    OBJ,
    POP,
    REDUCE,
    SETITEM,
    SETITEMS,
    STACK_GLOBAL,
    STOP,
    TUPLE2,
    call,
    ext1,
    frame,
    get,
    glob,
    inst,
    integer,
    proto,
    put,
    sglobal,
    u,
)


def scan(data: bytes, name: str = "model.pkl", container: str | None = None, **options):
    ctx = ScanContext(file=name, name=name, size=len(data), options=FormatOptions(**options),
                      dispatch=dispatch, container=container)
    return dispatch(io.BytesIO(data), ctx)


def rules(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def p4(body: bytes) -> bytes:
    return proto(4) + body + STOP


class Payload:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("protocol", range(6))
def test_reduce_of_os_system_is_critical_in_every_protocol(protocol):
    result = scan(pickle.dumps([1, Payload()], protocol=protocol))
    (finding,) = rules(result)["AUD-PKL-001"]
    assert finding.severity == Severity.CRITICAL
    assert "system" in finding.detail and "called by REDUCE" in finding.detail
    assert finding.location.offset is not None and finding.location.offset > 0


@pytest.mark.parametrize("protocol", range(6))
def test_plain_data_is_clean_in_every_protocol(protocol):
    result = scan(pickle.dumps({"a": [1, 2.0, "x", b"y", (None, True)]}, protocol=protocol))
    assert result.findings == [] and result.format == "pickle"


def test_stack_global_with_memoized_names_is_resolved():
    body = u("os") + put(0) + POP + u("system") + put(1) + POP + get(0) + get(1) + STACK_GLOBAL
    (finding,) = rules(scan(p4(call(body, u("x")))))["AUD-PKL-001"]
    assert "os.system" in finding.detail


def test_memoize_keys_by_number_of_entries_after_put():
    body = (u("decoy") + put(5) + POP + u("os") + MEMOIZE + POP + u("system") + MEMOIZE + POP
            + get(1) + get(2) + STACK_GLOBAL)
    found = rules(scan(p4(call(body, u("x")))))
    assert "os.system" in found["AUD-PKL-001"][0].detail


def test_memoize_after_pop_stores_the_real_stack_top():
    body = u("os") + u("system") + NONE + POP + MEMOIZE + POP + MEMOIZE + POP + get(1) + get(0)
    found = rules(scan(p4(call(body + STACK_GLOBAL, u("x")))))
    assert "os.system" in found["AUD-PKL-001"][0].detail


def test_missing_memo_key_is_a_malformed_finding_with_offset():
    result = scan(p4(u("a") + get(7)))
    (finding,) = rules(result)["AUD-PKL-008"]
    assert "memo key 7" in finding.detail and finding.location.offset == 5
    assert result.coverage == Coverage.ERROR


def test_stack_global_of_computed_name_is_unresolvable():
    body = call(sglobal("mylib", "name_of"), u("os")) + u("system") + STACK_GLOBAL
    found = rules(scan(p4(call(body, u("x")))))
    assert found["AUD-PKL-004"][0].severity == Severity.HIGH


def test_stack_global_of_non_strings_is_malformed():
    found = rules(scan(p4(integer(1) + integer(2) + STACK_GLOBAL)))
    assert "STACK_GLOBAL needs two strings" in found["AUD-PKL-008"][0].detail


def test_ext_code_is_unresolvable():
    found = rules(scan(p4(ext1(7) + EMPTY_TUPLE + REDUCE)))
    assert "extension code 7" in found["AUD-PKL-004"][0].detail


def test_inst_obj_and_newobj_ex_calls_are_recorded():
    data = (proto(2) + MARK + u("x") + inst("subprocess", "Popen") + POP
            + MARK + glob("shutil", "rmtree") + u("/x") + OBJ + POP
            + glob("smtplib", "SMTP") + EMPTY_TUPLE + EMPTY_DICT + NEWOBJ_EX + STOP)
    details = " ".join(f.detail for f in rules(scan(data))["AUD-PKL-001"])
    assert "called by INST" in details and "called by OBJ" in details
    assert "called by NEWOBJ_EX" in details


def test_call_discarded_by_pop_is_still_a_call():
    found = rules(scan(p4(call(sglobal("socketserver", "TCPServer"), u("x")) + POP + NONE)))
    assert "called by REDUCE" in found["AUD-PKL-001"][0].detail


@pytest.mark.parametrize("write", [
    NONE + EMPTY_DICT + u("a") + u("b") + SETITEM + TUPLE2 + BUILD,
    MARK + u("a") + u("b") + SETITEMS,
    u("a") + u("b") + SETITEM,
    MARK + u("a") + APPENDS,
])
def test_writes_into_an_imported_object_are_critical(write):
    found = rules(scan(p4(sglobal("numpy", "prod") + write)))
    assert found["AUD-PKL-006"][0].severity == Severity.CRITICAL


def test_reaching_a_name_redefined_earlier_is_reported():
    body = (sglobal("collections", "abc") + NONE + EMPTY_DICT + u("Mapping") + NONE + SETITEM
            + TUPLE2 + BUILD + POP + sglobal("collections.abc", "Mapping"))
    details = [f.detail for f in rules(scan(p4(body)))["AUD-PKL-006"]]
    assert any("redefined earlier" in d for d in details)


@pytest.mark.parametrize("module,name", [
    ("pickle", "loads"), ("_pickle", "load"), ("torch", "load"), ("numpy", "load"),
    ("joblib", "load"), ("marshal", "loads"), ("dill", "loads"), ("cloudpickle", "loads"),
])
def test_nested_loaders_are_dangerous(module, name):
    (finding,) = rules(scan(p4(call(sglobal(module, name), u("x")))))["AUD-PKL-001"]
    assert finding.severity == Severity.CRITICAL and f"{module}.{name}" in finding.detail


def test_a_second_pickle_after_stop_is_analysed():
    data = pickle.dumps([1], protocol=2) + pickle.dumps(Payload(), protocol=2)
    found = rules(scan(data))
    assert "AUD-PKL-001" in found and found["AUD-PKL-011"][0].severity == Severity.MEDIUM


def test_trailing_bytes_that_are_not_a_pickle_are_flagged():
    result = scan(pickle.dumps([1], protocol=2) + b"\xff\xfe\xfd")
    assert rules(result)["AUD-PKL-010"][0].location.offset == len(pickle.dumps([1], protocol=2))


def test_truncated_stream_after_payload_reports_both():
    data = pickle.dumps(Payload(), protocol=2)[:-1]
    result = scan(data)
    found = rules(result)
    assert "AUD-PKL-001" in found and "AUD-PKL-008" in found
    assert result.coverage == Coverage.ERROR


def test_opcode_limit_is_a_partial_scan_not_a_crash():
    data = p4(EMPTY_LIST + MARK + integer(1) * 150_000 + APPENDS)
    result = scan(data, limits=Limits(max_pickle_ops=100_000))
    assert result.coverage == Coverage.PARTIAL
    assert rules(result)["AUD-SCAN-002"][0].location.offset is not None


def test_memo_limit_is_a_partial_scan():
    body = b"".join(u("k") + b"r" + i.to_bytes(4, "little") + POP for i in range(70_000))
    result = scan(p4(body + NONE), limits=Limits(max_pickle_memo=1000))
    assert result.coverage == Coverage.PARTIAL


def test_billion_laughs_expansion_is_bounded_work():
    body = u("lol") + put(0)
    for i in range(1, 200):
        body += get((i - 1) % 256) + DUP + TUPLE2 + put(i % 256)
    data = p4(call(sglobal("laughs", "expand"), get(199 % 256)) + POP + NONE)
    started = time.monotonic()
    result = scan(data)
    assert time.monotonic() - started < 2
    assert "AUD-PKL-002" in rules(result)


def test_opcode_crossing_its_frame_is_flagged():
    data = proto(4) + frame(5) + u("os") + u("system") + STACK_GLOBAL + POP + NONE + STOP
    found = rules(scan(data))
    assert found["AUD-PKL-009"][0].location.offset == 15


def test_frame_inside_a_frame_is_flagged():
    data = proto(4) + frame(20) + NONE + frame(1) + POP + NONE + STOP
    assert "AUD-PKL-009" in rules(scan(data))


def test_well_framed_protocol_5_pickle_is_clean():
    assert scan(pickle.dumps(list(range(100_000)), protocol=5)).findings == []


@pytest.mark.parametrize("module,name", [
    ("os ", "system"), ("os", "sys\x00tem"), ("o\u0455", "system"), ("os", "<locals>.f"),
])
def test_disguised_names_are_flagged(module, name):
    found = rules(scan(proto(2) + call(glob(module, name), u("x")) + STOP))
    assert found["AUD-PKL-005"][0].severity >= Severity.HIGH


def test_names_match_exactly_after_normalisation():
    tiers = imports.tiers_for()
    assert imports.classify("builtins", "eval", tiers).tier == imports.Tier.DANGEROUS
    assert imports.classify("builtins", "evaluate", tiers).tier == imports.Tier.UNKNOWN
    assert imports.classify("os.path", "join", tiers).path == "os.path.join"
    assert imports.classify("__builtin__", "eval", tiers).path == "builtins.eval"


@pytest.mark.parametrize("module,name", [
    ("_operator", "methodcaller"), ("_io", "FileIO"), ("_posixsubprocess", "fork_exec"),
    ("asyncio.unix_events", "_UnixSubprocessTransport._start"), ("pathlib", "os.system"),
    ("numpy", "os.system"), ("collections", "__builtins__"), ("torch._C._nn", "os"),
    ("subprocess", "Popen"), ("logging.handlers", "SMTPHandler"),
])
def test_twins_submodules_and_attribute_walks_are_dangerous(module, name):
    verdict = imports.classify(module, name, imports.tiers_for())
    assert verdict.tier == imports.Tier.DANGEROUS


def test_known_ml_wildcards_admit_classes_only():
    tiers = imports.tiers_for()
    ok = imports.classify("sklearn.linear_model._base", "LinearRegression", tiers)
    assert ok.tier == imports.Tier.KNOWN_ML
    assert imports.classify("sklearn.datasets", "fetch_openml", tiers).tier == imports.Tier.UNKNOWN
    assert imports.classify("sklearn.base", "np.fft", tiers).tier == imports.Tier.UNKNOWN
    # np is numpy (the introspected alias table), so np.load is numpy.load: a nested loader
    assert imports.classify("sklearn.base", "np.load", tiers).tier == imports.Tier.DANGEROUS


def test_numpy_reconstruction_is_safe_under_core_and__core():
    tiers = imports.tiers_for()
    for core in ("numpy.core", "numpy._core"):
        verdict = imports.classify(f"{core}.multiarray", "_reconstruct", tiers)
        assert verdict.tier == imports.Tier.SAFE


def test_torchscript_names_are_safe_only_inside_torchscript():
    data = p4(call(sglobal("__torch__.model", "Net")) + POP
              + call(sglobal("torch.jit._pickle", "build_intlist"), EMPTY_LIST))
    assert scan(data, name="data.pkl", container="torchscript").findings == []
    assert "AUD-PKL-002" in rules(scan(data, name="data.pkl", container="pytorch-zip"))


def test_config_tiers_extend_safe_and_known_ml_but_wildcards_never_admit_dangerous():
    data = p4(call(sglobal("mylib.layers", "Dense")) + POP + call(sglobal("os", "system"), u("x")))
    result = scan(data, safe_imports=("mylib.*", "os.*"), known_ml_imports=())
    found = rules(result)
    assert "AUD-PKL-002" not in found and "AUD-PKL-001" in found
    result = scan(data, known_ml_imports=("mylib.layers.Dense",))
    assert rules(result)["AUD-PKL-003"][0].severity == Severity.MEDIUM


def test_curated_safe_and_known_ml_entries_are_not_dangerous():
    tiers = imports.tiers_for()
    for entry in (*imports.SAFE, *imports.KNOWN_ML):
        if not entry.endswith(".*"):
            module, _, name = entry.rpartition(".")
            assert imports.classify(module, name, tiers).tier != imports.Tier.DANGEROUS, entry


def test_sniff_claims_protocol_0_pickles_by_content_whatever_the_name():
    result = scan(pickle.dumps({"a": 1}, protocol=0), name="pytorch_model.bin")
    assert result.format == "pickle"
    assert pickle_format.plausible(pickle.dumps([1, 2], protocol=1))


@pytest.mark.parametrize("head", [
    b"hello world\n", b"# Model card\n", b"import os\n", b'{"a": 1}', b"\x80\x06junk",
    b"---\nlicense: mit\n",
])
def test_sniff_rejects_text_and_unknown_protocols(head):
    assert not pickle_format.plausible(head)


def test_big_strings_are_skipped_not_materialised():
    data = proto(4) + b"\x8d" + (50_000_000).to_bytes(8, "little") + b"a" * 50_000_000 + STOP
    assert scan(data).findings == []


def test_imports_are_recorded_as_facts():
    result = scan(pickle.dumps(__import__("collections").OrderedDict(a=1), protocol=2))
    assert result.facts["imports"] == ["collections.OrderedDict (safe)"]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_objects_never_exceed_known_ml(protocol):
    np = pytest.importorskip("numpy")
    values = [np.arange(6.0).reshape(2, 3), np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
              np.float32(3), np.datetime64("2024-01-01"), np.array([1, "a"], dtype=object),
              np.random.default_rng(0), np.random.RandomState(0), np.ma.array([1, 2], mask=[0, 1])]
    result = scan(pickle.dumps(values, protocol=protocol))
    assert all(f.severity <= Severity.MEDIUM for f in result.findings), [
        (f.rule, f.detail) for f in result.findings]


def test_int_argument_is_read_like_the_c_loader():
    """`I010` is octal 8 for the C loader's strtol: parsing goes on to the payload."""
    data = b"I010\n0" + glob("os", "system") + b"(Vx\ntR."
    found = rules(scan(data))
    assert "AUD-PKL-008" not in found and "AUD-PKL-001" in found


def test_empty_appends_on_an_import_writes_nothing():
    assert "AUD-PKL-006" not in rules(scan(p4(sglobal("numpy", "prod") + MARK + APPENDS)))


def _tensor(offset: int, size: tuple, stride: tuple, numel: int = 4) -> bytes:
    tup = lambda items: MARK + b"".join(integer(i) for i in items) + b"t"  # noqa: E731
    storage = (MARK + u("storage") + glob("torch", "FloatStorage") + u("0") + u("cpu")
               + integer(numel) + b"tQ")
    return (proto(2) + glob("torch._utils", "_rebuild_tensor_v2") + MARK + storage
            + integer(offset) + tup(size) + tup(stride) + b"\x89" + EMPTY_DICT + b"tR" + STOP)


@pytest.mark.parametrize("offset,size,stride", [(2, (3,), (1,)), (0, (2, 2), (2, 2)),
                                                 (0, (2,), (-1,)), (0, (2, 2), (1,))])
def test_tensor_view_outside_its_storage_is_flagged(offset, size, stride):
    found = rules(scan(_tensor(offset, size, stride), name="data.pkl", container="pytorch-zip"))
    assert found["AUD-PKL-012"][0].severity == Severity.HIGH


@pytest.mark.parametrize("offset,size,stride", [(1, (3,), (1,)), (0, (2, 2), (2, 1)),
                                                 (3, (5,), (0,)), (9, (0, 3), (3, 1))])
def test_tensor_view_inside_its_storage_is_clean(offset, size, stride):
    assert scan(_tensor(offset, size, stride), name="data.pkl", container="pytorch-zip"
                ).findings == []


def test_real_torch_zip_checkpoint_views_are_clean(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24.0)
    obj = {"a": base[3:9].view(2, 3), "b": base.view(4, 6).t(), "c": torch.zeros(0, 5),
           "d": torch.ones(1).expand(7), "e": torch.nn.Linear(3, 2).state_dict()}
    path = tmp_path / "model.pt"
    torch.save(obj, path)
    ctx = ScanContext(file="model.pt", name="model.pt", size=path.stat().st_size,
                      options=FormatOptions(), dispatch=dispatch)
    with open(path, "rb") as f:
        result = dispatch(f, ctx)
    assert result.findings == [], [(f.rule, f.detail) for f in result.findings]


def test_many_distinct_unknown_imports_are_summarised():
    body = b"".join(sglobal(f"mod{i}", "Cls") + POP for i in range(150))
    found = rules(scan(p4(body + NONE)))
    assert len(found["AUD-PKL-002"]) == 101
    assert "50 more unknown imports" in found["AUD-PKL-002"][-1].detail


def test_many_small_pickles_in_one_stream_stay_cheap():
    data = b"".join(pickle.dumps(i, protocol=2) for i in range(50_000))
    started = time.monotonic()
    result = scan(data)
    assert time.monotonic() - started < 5
    assert "50000 pickles" in rules(result)["AUD-PKL-011"][0].detail
