"""joblib dumps: raw array buffers are parsed as joblib lays them out, never as opcodes."""

from __future__ import annotations

import io
import os

import pytest

from auditor.formats.contract import FormatOptions, ScanContext
from auditor.model import Severity
from auditor.scanning.engine import dispatch

joblib = pytest.importorskip("joblib")
np = pytest.importorskip("numpy")


def dump(tmp_path, value, **kwargs) -> bytes:
    path = tmp_path / "x.joblib"
    joblib.dump(value, path, **kwargs)
    return path.read_bytes()


def scan(data: bytes, name: str = "model.joblib"):
    ctx = ScanContext(file=name, name=name, size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    return dispatch(io.BytesIO(data), ctx)


def test_numeric_arrays_of_many_dtypes_and_orders_are_clean(tmp_path):
    value = {
        "f32": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "f16": np.ones(7, np.float16),
        "i8": np.arange(-3, 3, dtype=np.int8), "u64": np.arange(5, dtype=np.uint64),
        "bool": np.array([True, False]), "c128": np.ones(3, np.complex128),
        "fortran": np.asfortranarray(np.ones((3, 2))), "zero-d": np.array(3.5),
        "empty": np.zeros((0, 4)), "text": np.array(["abc", "de"]),
        "bytes": np.array([b"ab", b"c"]), "dates": np.array(["2024-01-01"], "datetime64[D]"),
        "big-endian": np.arange(4, dtype=">i4"),
    }
    result = scan(dump(tmp_path, value))
    assert result.format == "joblib"
    assert result.findings == [], [(f.rule, f.detail) for f in result.findings]


def test_array_bytes_that_look_like_opcodes_are_not_read_as_opcodes(tmp_path):
    raw = np.frombuffer(b"cos\nsystem\n(S'touch x'\ntR." * 4, dtype=np.uint8)
    assert scan(dump(tmp_path, [raw, raw.copy()])).findings == []


def test_object_array_nested_pickle_is_analysed(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    clean = np.array([{"a": 1}, "x"], dtype=object)
    assert scan(dump(tmp_path, [clean, np.ones(3)])).findings == []
    evil = np.array([Payload(), 1], dtype=object)
    found = [f for f in scan(dump(tmp_path, [evil, np.ones(3)])).findings]
    assert any(f.rule == "AUD-PKL-001" and f.severity == Severity.CRITICAL for f in found)


def test_wrong_padding_is_a_layout_finding(tmp_path):
    data = bytearray(dump(tmp_path, np.arange(10.0)))
    start = data.index(np.arange(10.0).tobytes())
    assert data[start - 1] == 0xFF  # joblib always writes at least one filler byte
    data[start - 1] = 0x41
    result = scan(bytes(data))
    assert [f.rule for f in result.findings] == ["AUD-JOB-001"]


def test_truncated_array_data_is_malformed(tmp_path):
    data = dump(tmp_path, np.arange(1000.0))
    result = scan(data[:-100])
    assert any(f.rule == "AUD-PKL-008" and "joblib array data" in f.detail
               for f in result.findings)


def test_zlib_compressed_dump_is_scanned_inside(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    clean = scan(dump(tmp_path, {"w": np.ones((4, 4))}, compress=("zlib", 3)))
    assert not [f for f in clean.findings if f.severity >= Severity.HIGH]
    evil = scan(dump(tmp_path, {"w": np.ones(4), "p": Payload()}, compress=("zlib", 3)))
    assert any(f.rule == "AUD-PKL-001" for f in evil.findings)


def test_common_sklearn_estimators_stay_known_ml(tmp_path):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    rng = np.random.RandomState(0)
    x, y = rng.rand(40, 3), (rng.rand(40) > 0.5).astype(int)
    models = [HistGradientBoostingClassifier(max_iter=3).fit(x, y),
              KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
              KNeighborsClassifier(algorithm="ball_tree").fit(x, y), SVC().fit(x, y),
              TfidfVectorizer().fit(["apple banana", "banana cherry"])]
    result = scan(dump(tmp_path, models))
    assert sklearn and max(f.severity for f in result.findings) == Severity.MEDIUM, [
        (f.rule, f.detail) for f in result.findings if f.severity > Severity.MEDIUM]
