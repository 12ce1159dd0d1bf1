"""The analyser against the real loader: every import and call the C unpickler performs is seen.

`tests/oracle.py` runs CPython's C unpickler, disarmed, in a contained child
process; here its record is compared with the static analysis for every
corpus pickle, a few thousand grammar-generated ones and the regression
corpus (`tests/regressions/pickle/`, where generated cases that once
disagreed are kept). A disagreement names the blob and what was missed.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.model import Severity
from auditor.scanning.options import ScanOptions
from tests import oracle, pickle_grammar
from tests import pickle_corpus as corpus

CANARY = "/nonexistent/auditor-canary"
REGRESSIONS = Path(__file__).parent / "regressions" / "pickle"
GENERATED_SEED = 20261129
GENERATED_COUNT = 3000


def disagreements(blobs: list[bytes], names: list[str]) -> list[str]:
    runs = oracle.run_loader(blobs)
    out = []
    for name, blob, run in zip(names, blobs, runs, strict=True):
        missed = oracle.compare(run, oracle.analyse_static(blob))
        if missed:
            out.append(f"{name} ({blob[:120]!r}): {missed}")
    return out


def test_the_oracle_records_what_the_real_loader_does():
    """A control: the oracle sees imports, calls, writes, EXT lookups and amplification."""
    cases = {c.name: c.data for c in corpus.malicious(CANARY)}
    ext_code = oracle.EXT_CODES[0]
    blobs = [cases["pip-main"], cases["modelscan-85-build-setattr"], cases["billion-laughs"],
             b"\x80\x02\x82" + bytes([ext_code]) + b")R.", cases["second-pickle-payload"]]
    pip_main, build_setattr, laughs, ext, second = oracle.run_loader(blobs)
    assert pip_main.imports == [("pip", "main")] and pip_main.calls == [("pip", "main")]
    assert ("numpy", "prod") in build_setattr.imports and build_setattr.mutations
    assert laughs.killed and laughs.imports == [("laughs", "expand")]
    assert ext.imports == [(oracle.EXT_MODULE, f"code{ext_code}")]
    assert second.pickles == 2 and ("os", "system") in second.imports


def test_a_missed_import_is_a_disagreement():
    """The comparison fails when the analysis misses what the loader imported."""
    run = oracle.LoaderRun(imports=[("os", "system")], calls=[("os", "system")])
    static = oracle.analyse_static(b"N.")
    assert oracle.compare(run, static) == ["import os.system not reported",
                                           "call of os.system not reported"]


def test_every_corpus_pickle_agrees_with_the_real_loader(tmp_path):
    cases = corpus.malicious(CANARY) + corpus.benign_plain()
    pytest.importorskip("torch")
    cases += corpus.benign_torch_legacy()
    found = disagreements([c.data for c in cases], [c.name for c in cases])
    assert found == []


def test_generated_pickles_agree_with_the_real_loader():
    blobs = pickle_grammar.corpus(GENERATED_SEED, GENERATED_COUNT)
    runs = oracle.run_loader(blobs)
    # The grammar must reach the loader's interesting paths, or agreement means little.
    assert sum(bool(r.imports) for r in runs) > GENERATED_COUNT // 2
    assert sum(bool(r.calls) for r in runs) > GENERATED_COUNT // 3
    assert sum(bool(r.mutations) for r in runs) > GENERATED_COUNT // 10
    assert sum(r.pickles > 1 for r in runs) > GENERATED_COUNT // 10
    assert any(m == oracle.EXT_MODULE for r in runs for m, _ in r.imports)
    assert sum(b"\x95" in b for b in blobs) > GENERATED_COUNT // 5  # framed streams
    missed = [
        f"#{i} {blob[:120]!r}: {m}"
        for i, (blob, run) in enumerate(zip(blobs, runs, strict=True))
        if (m := oracle.compare(run, oracle.analyse_static(blob)))
    ]
    assert missed == [], f"{len(missed)} disagreements; add them to {REGRESSIONS}"


def test_the_grammar_is_deterministic():
    assert pickle_grammar.corpus(7, 50) == pickle_grammar.corpus(7, 50)


def test_regression_corpus_agrees_with_the_real_loader():
    files = sorted(REGRESSIONS.glob("*.pkl"))
    assert files, "the regression corpus is empty"
    found = disagreements([f.read_bytes() for f in files], [f.name for f in files])
    assert found == []


def frame_hides(real: str, decoy: str) -> bytes:
    """A frame ending inside a UNICODE line: `pickle.loads` reads `decoy + real` as the
    name, a file load (frame-exact) drops the frame's rest and reads `real`."""
    body = b"\x8c\x02os" + b"V" + decoy.encode()
    tail = real.encode() + b"\n\x93(\x8c\x04echotR."
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body + tail


def test_an_import_only_a_file_load_performs_is_graded(tmp_path):
    blob = frame_hides("system", "decoy")
    (run,) = oracle.run_loader([blob])
    assert ("os", "system") in run.imports and ("os", "decoysystem") in run.imports
    path = tmp_path / "model.pkl"
    path.write_bytes(blob)
    (report,) = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files
    assert report.worst == Severity.CRITICAL
    assert any(f.rule == "AUD-PKL-001" and "os.system" in f.detail for f in report.findings)


def test_a_file_load_import_inside_a_torch_zip_is_graded(tmp_path):
    """torch.load reads data.pkl from a BytesIO: frame-exact, like the oracle's first pass."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", frame_hides("system", "decoy"))
        zf.writestr("archive/version", b"3\n")
    path = tmp_path / "model.pt"
    path.write_bytes(buf.getvalue())
    (report,) = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files
    assert any(f.rule == "AUD-PKL-001" and "os.system" in f.detail for f in report.findings), [
        (f.rule, f.detail) for f in report.findings]


def central_directory_view(data: bytes) -> dict[str, bytes]:
    """Member bytes as PyTorch's reader takes them: names, sizes and offsets from the
    central directory, the local header only skipped over (its own lengths)."""
    end = data.rfind(b"PK\x05\x06")
    count, _, cd_offset = struct.unpack_from("<HII", data, end + 10)
    out, at = {}, cd_offset
    for _ in range(count):
        size, = struct.unpack_from("<I", data, at + 20)
        n, m, k = struct.unpack_from("<HHH", data, at + 28)
        local, = struct.unpack_from("<I", data, at + 42)
        name = data[at + 46 : at + 46 + n].decode()
        ln, lm = struct.unpack_from("<HH", data, local + 26)
        start = local + 30 + ln + lm
        out[name] = data[start : start + size]
        at += 46 + n + m + k
    return out


def zipfile_view(data: bytes) -> dict[str, bytes] | str:
    """What Python's strict zipfile reads, or why it refuses."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {name: zf.read(name) for name in zf.namelist()}
    except Exception as exc:  # BadZipFile, RuntimeError (encrypted), ...
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("name", ["zip-local-name-mismatch", "zip-flipped-flags", "zip-bad-crc"])
def test_torch_zip_tricks_are_graded_as_the_loader_reads_them_and_flagged(tmp_path, name):
    """zipfile refuses the renamed and the bad-CRC member and reads the flipped flags from the
    clean central entry; the loader reads all three. The scanner grades the loader's bytes
    (every import the loader performs is in a finding) and flags the tampering."""
    (case,) = [c for c in corpus.malicious(CANARY) if c.name == name]
    loader_view = central_directory_view(case.data)
    assert (zipfile_view(case.data) == loader_view) == (name == "zip-flipped-flags")
    (run,) = oracle.run_loader([loader_view["archive/data.pkl"]])
    assert run.imports == [("os", "system")]
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    (report,) = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files
    details = " ".join(f.detail for f in report.findings)
    assert "os.system" in details
    assert any(f.rule.startswith("AUD-ARC-") for f in report.findings)


def test_a_real_torch_save_reads_the_same_through_zipfile_and_the_loader_view(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, path)
    data = path.read_bytes()
    loader_view = central_directory_view(data)
    assert zipfile_view(data) == loader_view
    (pkl,) = [v for k, v in loader_view.items() if k.endswith("/data.pkl")]
    (run,) = oracle.run_loader([pkl])
    assert ("torch._utils", "_rebuild_tensor_v2") in run.imports
    assert oracle.compare(run, oracle.analyse_static(pkl)) == []
    (report,) = pipeline.scan(path, ScanOptions(jobs=1)).models[0].files
    assert report.findings == ()
