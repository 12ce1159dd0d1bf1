""".npy and .npz: headers parsed as literals only, sizes checked, object arrays scanned."""

from __future__ import annotations

import struct

import pytest

from tests.builders import damaged
from tests.test_archive_zip import at, rules, scan
from tests.zip_builders import ZMember, build_zip, canary_pickle

np = pytest.importorskip("numpy")


def npy(header: str, body: bytes, version: int = 1) -> bytes:
    raw = header.encode("latin-1")
    raw += b" " * (-(len(raw) + 11) % 64) + b"\n"
    width = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(width, len(raw)) + raw + body


NUMERIC = {
    "float32": lambda: np.arange(12, dtype=np.float32).reshape(3, 4),
    "fortran": lambda: np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
    "bool": lambda: np.array([True, False]),
    "unicode": lambda: np.array(["ab", "cde"]),
    "bytes": lambda: np.array([b"ab", b"c"]),
    "datetime": lambda: np.array(["2024-01-01"], dtype="datetime64[ns]"),
    "structured": lambda: np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")]),
    "aligned": lambda: np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<i4")], align=True)),
    "empty": lambda: np.zeros((0, 5), dtype=np.float16),
    "scalar": lambda: np.float64(3.5),
}


@pytest.mark.parametrize("kind", sorted(NUMERIC))
def test_numeric_npy_files_are_clean(tmp_path, run_cli, kind):
    path = tmp_path / "a.npy"
    np.save(path, NUMERIC[kind]())
    report = scan(path)
    assert report.format == "numpy"
    assert report.findings == ()
    assert report.coverage.value == "scanned"
    assert run_cli("scan", path).code == 0


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_archives_are_clean(tmp_path, run_cli, compressed):
    path = tmp_path / "a.npz"
    save = np.savez_compressed if compressed else np.savez
    save(path, w=np.ones((10, 10)), b=np.arange(5), names=np.array(["x", "y"]))
    report = scan(path)
    assert report.format == "npz"
    assert report.findings == ()
    assert report.facts["members"] == 3
    assert run_cli("scan", path).code == 0


def test_object_array_hands_its_pickle_to_the_engine(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([{"a": 1}, [2, 3]], dtype=object), allow_pickle=True)
    report = scan(path)
    assert at(report, "AUD-NPY-003")[0].severity.label == "medium"
    assert report.facts["dtype"] == "|O"


def test_malicious_object_array_is_flagged(tmp_path, canary):
    path = tmp_path / "o.npy"
    path.write_bytes(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                         canary_pickle(canary, protocol=3)))
    report = scan(path)
    assert "AUD-NPY-003" in rules(report)
    assert any(f.severity.label == "critical" and f.location.member == "object-array.pkl"
               for f in report.findings)


def test_object_field_in_a_structured_dtype_counts_as_object(tmp_path, canary):
    path = tmp_path / "o.npy"
    path.write_bytes(npy("{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, "
                         "'shape': (1,), }", canary_pickle(canary, protocol=3)))
    assert "AUD-NPY-003" in rules(scan(path))


def test_npz_with_malicious_object_member_is_flagged(tmp_path, canary):
    member = npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                 canary_pickle(canary, protocol=3))
    path = tmp_path / "a.npz"
    path.write_bytes(build_zip([ZMember("x.npy", member, 8)]))
    report = scan(path)
    assert report.format == "npz"
    assert at(report, "AUD-NPY-003")[0].location.member == "x.npy"
    assert any(f.severity.label == "critical" and
               f.location.member == "x.npy/object-array.pkl" for f in report.findings)


@pytest.mark.parametrize(("extra", "what"), [(b"\x00" * 40, "trailing"), (None, "missing")])
def test_data_size_must_match_shape_and_dtype(tmp_path, extra, what):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(10, dtype=np.float32))
    data = path.read_bytes()
    path.write_bytes(data + extra if extra else data[:-8])
    (finding,) = at(scan(path), "AUD-NPY-002")
    assert what in finding.detail


def test_header_that_is_code_is_never_run(tmp_path, canary):
    path = tmp_path / "a.npy"
    path.write_bytes(npy(f"{{'descr': __import__('os').system('touch {canary}'), "
                         "'fortran_order': False, 'shape': (1,), }", b"\x00" * 8))
    report = scan(path)
    assert "AUD-NPY-001" in rules(report)
    assert report.coverage.value == "error"


@pytest.mark.parametrize("header", [
    "{'descr': '<f4', 'shape': (1,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<q9', 'fortran_order': False, 'shape': (1,), }",
    "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",
    "[1, 2, 3]",
    "(" * 400 + ")" * 400,
])
def test_invalid_headers_are_findings(tmp_path, header):
    path = tmp_path / "a.npy"
    path.write_bytes(npy(header, b"\x00" * 4))
    assert "AUD-NPY-001" in rules(scan(path))


def test_oversized_header_is_flagged(tmp_path):
    path = tmp_path / "a.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + " " * 20_000
    path.write_bytes(npy(header, b"\x00" * 4, version=2))
    report = scan(path)
    assert "AUD-NPY-004" in rules(report)
    assert "AUD-NPY-002" not in rules(report)


def test_unknown_version_is_a_finding(tmp_path):
    path = tmp_path / "a.npy"
    path.write_bytes(b"\x93NUMPY\x09\x00" + b"\x00" * 30)
    assert "AUD-NPY-001" in rules(scan(path))


def test_corrupted_npy_and_npz_never_crash_the_scanner(tmp_path):
    import io
    import random

    arrays = io.BytesIO()
    np.save(arrays, np.zeros((3, 4), dtype=[("a", "<f4"), ("b", "S2")]))
    packed = tmp_path / "p.npz"
    np.savez_compressed(packed, a=np.arange(50), b=np.ones(3))
    rng = random.Random(5)
    for base, name in ((arrays.getvalue(), "a.npy"), (packed.read_bytes(), "a.npz")):
        path = tmp_path / name
        for data in damaged(base, rng, 100, flips=6):
            path.write_bytes(data)
            assert "AUD-SCAN-007" not in rules(scan(path))
