"""HDF5 beyond the Keras config: other files it makes the library read, and pickles kept inside.

Fixtures are written by h5py, PyTables and pandas (writers only: the scanner
reads HDF5 in pure Python). Payload pickles are written byte by byte or
pickled from a stand-in object; nothing here is ever unpickled.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tables

from auditor.scanning.engine import scan_bytes
from auditor.scanning.options import ScanOptions
from tests.builders import damaged
from tests.scan_helpers import scan_files

# os.system('echo pwned') by hand: protocol 0 (GLOBAL + REDUCE) and protocol 2 (PROTO first).
P0 = b"cos\nsystem\n(S'echo pwned'\ntR."
P2 = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03."


class Spawn:
    """Pickles as a call of os.system; written by pandas/PyTables, never loaded."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


# os.system('true'): protocol 2 and protocol 0, for the string and attribute spellings.
TRUE2 = b"\x80\x02cos\nsystem\n(S'true'\ntR."
TRUE0 = b"cos\nsystem\n(S'true'\ntR."


def _bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="u1")


def _rows(*blobs: bytes) -> np.ndarray:
    rows = np.empty(len(blobs), dtype=object)
    for i, blob in enumerate(blobs):
        rows[i] = _bytes(blob)
    return rows


def _other_files(f: h5py.File) -> None:
    f.create_dataset("abs", shape=(4,), dtype="f4", external=[("/etc/passwd", 0, 16)])
    f.create_dataset("up", shape=(4,), dtype="f4", external=[("../secrets.bin", 0, 16)])
    f.create_dataset("rel", shape=(4,), dtype="f4", external=[("data.bin", 0, 16)])
    deep = f.create_group("a/b")
    deep["abs_link"] = h5py.ExternalLink("/etc/shadow.h5", "/x")
    deep["up_link"] = h5py.ExternalLink("../../other.h5", "/x")
    deep["rel_link"] = h5py.ExternalLink("sibling.h5", "/x")
    deep["soft"] = h5py.SoftLink("/abs")
    layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
    layout[0:2] = h5py.VirtualSource("/srv/data.h5", "x", shape=(2,))
    layout[2:4] = h5py.VirtualSource("/srv/data.h5", "y", shape=(2,))  # shared name (new format)
    layout[4:6] = h5py.VirtualSource("parts/p.h5", "x", shape=(2,))
    layout[6:8] = h5py.VirtualSource(".", "rel", shape=(2,))
    f.create_virtual_dataset("virt", layout)
    layout = h5py.VirtualLayout(shape=(2,), dtype="f4")
    layout[:] = h5py.VirtualSource("../up.h5", "x", shape=(2,))
    f.create_virtual_dataset("virt_up", layout)


def _pickles(f: h5py.File, *, chunked: bool) -> None:
    rows = f.create_dataset("obj_rows", data=_rows(P0), dtype=h5py.vlen_dtype(np.uint8))
    rows.attrs["CLASS"] = np.bytes_("VLARRAY")
    rows.attrs["PSEUDOATOM"] = np.bytes_("object")
    f.create_dataset("u8", data=_bytes(P2))
    f.create_dataset("opaque", data=np.void(P2))
    f.attrs["info"] = np.bytes_(P0)  # PyTables unpickles string attributes ending in '.'
    f.create_group("g").attrs["meta"] = np.bytes_(P0)
    if chunked:
        f.create_dataset("gz_rows", data=_rows(b"\x00" * 40, P2), dtype=h5py.vlen_dtype(np.uint8),
                         compression="gzip", shuffle=True, chunks=(1,), maxshape=(None,))
        f.create_dataset("u8_chunks", data=_bytes(P2), chunks=(8,), compression="gzip",
                         fletcher32=True)


def _strings(f: h5py.File) -> None:
    """Pickles in string datasets and in opaque, string and byte attributes."""
    vlen = h5py.string_dtype("ascii")
    f.create_dataset("vlen", data=np.array([TRUE2], dtype=object), dtype=vlen)
    f.create_dataset("vlen_many", data=np.array([b"a", b"b", TRUE0], dtype=object), dtype=vlen)
    f.create_dataset("fixed", data=np.array([b"name", TRUE2], dtype="S64"))
    f.create_dataset("fixed0", data=np.array(TRUE0, dtype="S64"))
    f.attrs["blob"] = np.void(TRUE2)
    g = f.create_group("g")
    g.attrs["bytes"] = np.bytes_(TRUE2)
    g.attrs["vlen"] = TRUE0.decode()
    g.attrs["list"] = np.array([b"x", TRUE2], dtype="S40")
    d = f.create_dataset("w", data=np.arange(3.0))
    d.attrs["u8"] = _bytes(TRUE2)
    d.attrs["vlen_bytes"] = np.array([TRUE2], dtype=h5py.string_dtype("ascii", None))
    f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}},
                                         indent=2)
    f.attrs["CLASS"], f.attrs["VERSION"], f.attrs["TITLE"] = b"GROUP", b"1.0", b""
    f.attrs["epochs"], f["w"].attrs["scale"] = 3, np.arange(4, dtype="u1")
    f.create_dataset("names", data=["alpha\nbeta", "gamma."], dtype=h5py.string_dtype())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hdf5")
    warnings.simplefilter("ignore")
    with h5py.File(folder / "links.h5", "w") as f:
        _other_files(f)
    with h5py.File(folder / "links_latest.h5", "w", libver="latest") as f:
        _other_files(f)
    with h5py.File(folder / "pickles.h5", "w") as f:
        _pickles(f, chunked=True)
    with h5py.File(folder / "pickles_latest.h5", "w", libver="latest") as f:
        _pickles(f, chunked=False)
    with h5py.File(folder / "strings.h5", "w") as f:
        _strings(f)
    with h5py.File(folder / "strings_latest.h5", "w", libver="latest") as f:
        _strings(f)
    pd.DataFrame({"a": [1, 2], "b": [Spawn(), "x"]}).to_hdf(folder / "frame.h5", key="df")
    with tables.open_file(folder / "vlarray.h5", "w") as f:
        f.create_vlarray("/", "objs", tables.ObjectAtom()).append(Spawn())
    with tables.open_file(folder / "attr.h5", "w") as f:
        f.root._v_attrs.payload = Spawn()
    pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"]}).to_hdf(folder / "plain.h5", key="df")
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_hdf(folder / "table.h5", key="df",
                                                        format="table", complevel=5)
    with h5py.File(folder / "quantized.h5", "w") as f:
        f.create_dataset("w", data=np.array([0x80, 0x02, 7, 9] * 8, dtype="u1"))
    for count in (20, 300):  # past 8 links a new-style group moves them to a fractal heap
        with h5py.File(folder / f"dense{count}.h5", "w", libver="latest") as f:
            for i in range(count):
                f.create_group(f"g{i}")
            f[f"g{count - 1}/ext"] = h5py.ExternalLink("/etc/passwd.h5", "/")
    with h5py.File(folder / "tracked.h5", "w", track_order=True) as f:
        for i in range(30):
            f.create_dataset(f"d{i}", data=np.arange(3))
        f["last"] = h5py.ExternalLink("../up.h5", "/")
    with h5py.File(folder / "dense_attrs.h5", "w", libver="latest") as f:
        for i in range(20):  # past 8 attributes a new-style object keeps them in a fractal heap
            f.attrs[f"a{i}"] = i
            f.require_group("g").attrs[f"s{i}"] = np.bytes_(f"text {i}")
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {
            "layers": [{"class_name": "Lambda", "config": {"function": "4wEAAAAA",
                                                           "function_type": "lambda"}}]}})
        f["g"].attrs["evil"] = np.bytes_(P0)
    with h5py.File(folder / "chunk_indexes.h5", "w", libver="latest") as f:
        vlen = h5py.vlen_dtype(np.uint8)
        f.create_dataset("single", data=_rows(P2, b"x"), dtype=vlen, chunks=(2,))
        f.create_dataset("single_gz", data=_rows(P2, b"x"), dtype=vlen, chunks=(2,),
                         compression="gzip")
        f.create_dataset("fixed", data=_rows(b"a", b"b", b"c", P2), dtype=vlen, chunks=(2,))
        f.create_dataset("fixed_gz", data=_rows(b"a", b"b", b"c", P2), dtype=vlen, chunks=(2,),
                         compression="gzip", shuffle=True)
        f.create_dataset("u8", data=_bytes(P2), chunks=(8,))
        many = _rows(*[b"a"] * 150, P2)  # past the index block: in its direct data blocks
        f.create_dataset("ext", data=_rows(P2), dtype=vlen, chunks=(2,), maxshape=(None,))
        f.create_dataset("ext_many", data=many, dtype=vlen, chunks=(2,), maxshape=(None,))
        f.create_dataset("ext_gz", data=many, dtype=vlen, chunks=(2,), maxshape=(None,),
                         compression="gzip")
    with h5py.File(folder / "latest_chunked.h5", "w", libver="latest") as f:
        f.create_dataset("rows", data=_rows(*[b"a"] * 1000, P2), dtype=h5py.vlen_dtype(np.uint8),
                         chunks=(2,), maxshape=(None,))
    return folder


@pytest.fixture(scope="module")
def reports(folder) -> dict:
    return scan_files(folder)


def _found(report, rule: str) -> dict[str, str]:
    """Finding detail -> severity label for one rule."""
    return {f.detail: f.severity.label for f in report.findings if f.rule == rule}


@pytest.mark.parametrize("name", ["links.h5", "links_latest.h5"])
def test_other_files_are_reported_with_their_target(reports, name):
    found = _found(reports[name], "AUD-KERAS-011")
    assert found == {
        "/abs: dataset stored in external file '/etc/passwd'": "high",
        "/up: dataset stored in external file '../secrets.bin'": "high",
        "/rel: dataset stored in external file 'data.bin'": "low",
        "/a/b/abs_link: external link to '/x' in '/etc/shadow.h5'": "high",
        "/a/b/up_link: external link to '/x' in '../../other.h5'": "high",
        "/a/b/rel_link: external link to '/x' in 'sibling.h5'": "low",
        "/virt: virtual dataset maps 'x' of '/srv/data.h5'": "high",
        "/virt: virtual dataset maps 'y' of '/srv/data.h5'": "high",
        "/virt: virtual dataset maps 'x' of 'parts/p.h5'": "low",
        "/virt_up: virtual dataset maps 'x' of '../up.h5'": "high",
    }
    assert reports[name].coverage == "scanned"


@pytest.mark.parametrize("name", ["pickles.h5", "pickles_latest.h5"])
def test_pickles_in_datasets_and_attributes_go_through_the_pickle_analysis(reports, name):
    members = {f.location.member for f in reports[name].findings
               if f.rule == "AUD-PKL-001" and f.severity.label == "critical"}
    expected = {"obj_rows[0]", "u8", "opaque", "@info", "g@meta"}
    if name == "pickles.h5":
        expected |= {"gz_rows[1]", "u8_chunks"}
    assert members == expected


@pytest.mark.parametrize("name", ["strings.h5", "strings_latest.h5"])
def test_pickles_in_string_datasets_and_attributes_are_analysed(reports, name):
    found = {f.location.member: f.severity.label for f in reports[name].findings
             if f.rule == "AUD-PKL-001"}
    assert found == dict.fromkeys(
        ["vlen[0]", "vlen_many[2]", "fixed[1]", "fixed0", "@blob", "g@bytes", "g@vlen",
         "g@list[1]", "w@u8", "w@vlen_bytes"], "critical")
    assert all("system" in f.detail for f in reports[name].findings if f.rule == "AUD-PKL-001")
    # benign values (model_config JSON, PyTables names, numbers, text) add nothing else
    assert {f.rule for f in reports[name].findings} == {"AUD-PKL-001", "AUD-KERAS-007"}
    assert reports[name].coverage == "scanned"


@pytest.mark.parametrize(("name", "member"), [
    ("frame.h5", "df/block1_values[0]"), ("vlarray.h5", "objs[0]"), ("attr.h5", "@payload"),
])
def test_pytables_and_pandas_object_data_is_analysed(reports, name, member):
    found = [f for f in reports[name].findings if f.rule == "AUD-PKL-001"]
    assert [(f.location.member, f.severity.label) for f in found] == [(member, "critical")]
    assert "system" in found[0].detail


@pytest.mark.parametrize("name", ["plain.h5", "table.h5", "quantized.h5"])
def test_benign_stores_and_byte_weights_are_clean(reports, name):
    assert reports[name].findings == ()
    assert reports[name].coverage == "scanned"


def test_pandas_object_columns_are_counted_as_pickled_values(reports):
    assert reports["plain.h5"].facts["pickled_values"] >= 1


@pytest.mark.parametrize(("name", "link"), [
    ("dense20.h5", "/g19/ext: external link to '/' in '/etc/passwd.h5'"),
    ("dense300.h5", "/g299/ext: external link to '/' in '/etc/passwd.h5'"),
    ("tracked.h5", "/last: external link to '/' in '../up.h5'"),
])
def test_links_in_dense_storage_are_read(reports, name, link):
    assert _found(reports[name], "AUD-KERAS-011") == {link: "high"}
    assert reports[name].coverage == "scanned"


def test_attributes_in_dense_storage_are_read(reports):
    report = reports["dense_attrs.h5"]
    assert report.format == "keras-h5" and report.coverage == "scanned"
    assert {(f.rule, f.location.member) for f in report.findings if f.severity.label ==
            "critical"} == {("AUD-KERAS-001", None), ("AUD-PKL-001", "g@evil")}


def test_new_chunk_indexes_are_read(reports):
    report = reports["chunk_indexes.h5"]
    assert {f.location.member for f in report.findings if f.rule == "AUD-PKL-001"} == {
        "single[0]", "single_gz[0]", "fixed[3]", "fixed_gz[3]", "u8", "ext[0]", "ext_many[150]",
        "ext_gz[150]"}
    assert report.coverage == "scanned"


def test_storage_not_read_is_reported_not_skipped(reports):
    found = _found(reports["latest_chunked.h5"], "AUD-KERAS-010")
    assert found == {"/rows: extensible array chunk index past its index block not read": "high"}
    assert reports["latest_chunked.h5"].coverage == "partial"


def test_hdf5_scan_never_imports_h5py_on_scanned_content():
    source = (Path(__file__).parents[1] / "auditor/formats/weights/hdf5.py").read_text()
    assert "import h5py" not in source and "import tables" not in source


@pytest.mark.parametrize("name", ["links_latest.h5", "pickles.h5", "chunk_indexes.h5",
                                  "dense300.h5"])
def test_damaged_files_give_findings_never_an_internal_error(folder, name):
    base = (folder / name).read_bytes()
    options = ScanOptions(jobs=1)
    for data in damaged(base, random.Random(name), 150, 20):
        report = scan_bytes(name, data, options)
        assert "AUD-SCAN-007" not in {f.rule for f in report.findings}, report.findings
