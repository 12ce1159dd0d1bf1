"""Issue 18 item 12: a file that fits in the engine's read-ahead is read from disk once.

Sniffing then parsing used to read small pickles, JSON, safetensors and zips
twice (the buffer could not serve the seek back to 0 once the parser had
consumed it); now the whole small file is read and hashed once and parsed
from memory. Bytes read from disk is the engine's own count (`bytes_read`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

from auditor import pipeline
from auditor.model import FormatId
from auditor.scanning import engine
from auditor.scanning.options import ScanOptions
from tests.builders import safetensors_bytes


def small_files() -> dict[str, bytes]:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps([1, 2, 3], protocol=2))
    return {
        "a.pkl": pickle.dumps({"x": list(range(100))}, protocol=4),
        "b.json": json.dumps({"a": 1}).encode(),
        "c.txt": b"hello\n" * 100,
        "d.safetensors": safetensors_bytes({"w": ("F32", [4, 4])}),
        "e.bin": b"",
        "f.bin": os.urandom(5000),
        "g.pt": archive.getvalue(),
        "h.pkl": pickle.dumps(list(range(30000)), protocol=4),  # past the sniffed head
        "i.bin": os.urandom(engine.READ_AHEAD),  # exactly the read-ahead
    }


def test_a_folder_of_small_files_is_read_once(tmp_path: Path) -> None:
    files = small_files()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = pipeline.scan(tmp_path, ScanOptions(jobs=1))
    assert result.bytes_read == sum(len(d) for d in files.values())
    reports = {f.path: f for f in result.models[0].files}
    for name, data in files.items():  # hashed once, and still right
        assert reports[name].sha256 == hashlib.sha256(data).hexdigest(), name
        assert reports[name].size == len(data)
    assert reports["a.pkl"].format == FormatId.PICKLE
    assert reports["d.safetensors"].format == FormatId.SAFETENSORS


def test_each_small_file_alone_is_read_once(tmp_path: Path) -> None:
    for name, data in small_files().items():
        (tmp_path / name).write_bytes(data)
        assert pipeline.scan(tmp_path / name, ScanOptions(jobs=1)).bytes_read == len(data), name


def test_a_file_that_grew_since_the_listing_is_hashed_whole(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    entry = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files[0]
    grown = pickle.dumps({"x": list(range(50000))}, protocol=4)  # now past the read-ahead
    path.write_bytes(grown)
    artifact = engine.Artifact(path=path, relpath="model.pkl", size=entry.size)
    report, read = engine.scan_file(artifact, ScanOptions(jobs=1), engine.NoProgress())
    assert report.sha256 == hashlib.sha256(grown).hexdigest()
    assert report.size == len(grown)
    assert report.format == FormatId.PICKLE
    assert read >= len(grown)
