"""Time and memory of each hostile input of tests/test_hostile_budget.py, at the default limits.

    python bench/bench_hostile.py [--no-peak]
    python bench/bench_hostile.py --archives [--runs 3]

Each input is built in memory, written to a temporary folder and scanned as
a local file (`pipeline.scan`, one job): wall time without tracing, then the
`tracemalloc` peak in a second, traced scan (tracing slows allocation-heavy
scans several times, so it is not timed). Targets: under 1 s and 50 MB.
"""

from __future__ import annotations

import argparse
import gzip
import io
import resource
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor import pipeline
from auditor.scanning.options import ScanOptions
from tests import test_hostile_budget as h

INPUTS = {
    "safetensors header length 2^63": ("model.safetensors", lambda: h.q(2**63) + b"{}"),
    "GGUF tensor count 2^63": ("model.gguf", lambda: h.gguf(2**63, 0)),
    "pickle BINBYTES8 length 2^63": ("model.pkl", lambda: b"\x80\x04\x8e" + h.q(2**63)),
    "pickle FRAME length 2^63": ("model.pkl", lambda: b"\x80\x04\x95" + h.q(2**63) + b"N."),
    "GGUF metadata count 10^9": ("model.gguf", lambda: h.gguf(0, 10**9)),
    "GGUF array length 10^9": ("model.gguf", lambda: h.gguf(0, 1, h.gguf_key(
        "tokenizer.ggml.tokens", 9) + struct.pack("<I", 8) + h.q(10**9))),
    "GGUF string length 1 GiB": ("model.gguf", lambda: h.gguf(0, 1, h.gguf_key(
        "general.name", 8) + h.q(1 << 30) + b"x" * 64)),
    "pickle BINUNICODE length 1 GiB": ("model.pkl", lambda: b"\x80\x02X" + struct.pack(
        "<I", 1 << 30) + b"abc"),
    "pickle 10^6 MARKs": ("model.pkl", lambda: b"\x80\x02" + b"(" * 10**6 + b"N."),
    "pickle 10^6 nested lists": ("model.pkl", lambda: b"\x80\x02" + b"]" * 10**6
                                 + b"a" * (10**6 - 1) + b"."),
    "JSON 10^6 deep": ("config.json", lambda: b"[" * 10**6 + b"]" * 10**6),
    "zip in zip, 12 deep": ("model.zip", lambda: h.nested_zip(12)),
    "zip bomb 1000:1 (64 MiB pickle)": ("model.pt", lambda: h.zip_bomb(64 << 20)),
    "gzip bomb 1000:1 (64 MiB)": ("weights.gz", lambda: gzip.compress(bytes(64 << 20), 9)),
    "pickle billion laughs (DUP/GET)": ("model.pkl", h.laughs),
    "pickle 10^6 DUPs": ("model.pkl", lambda: b"\x80\x02N" + b"2" * 10**6 + b"."),
    "pickle 10^6 GETs": ("model.pkl", lambda: b"\x80\x02]q\x00" + b"h\x00" * 10**6 + b"."),
    "zip, 100,000 members": ("model.zip", lambda: h.zip_of_empty_members(100_000, 0xFFFF)),
    "tar, 100,000 members": ("model.tar", lambda: h.tar_of_empty_members(100_000)),
}


MEMBERS = 100_000


def _zip(names: list[str], data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for i in range(MEMBERS):
            info = tarfile.TarInfo(f"m{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _torch_zip(data: bytes) -> bytes:
    """archive/data.pkl (an empty dict) and 99,999 storages archive/data/<n>."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        for i in range(MEMBERS - 1):
            zf.writestr(f"archive/data/{i}", data)
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


ARCHIVES = {
    "zip, 100,000 empty members": ("model.zip", lambda: h.zip_of_empty_members(MEMBERS, 0xFFFF)),
    "zip, 100,000 1-byte members": ("model.zip", lambda: _zip(
        [f"m{i}" for i in range(MEMBERS)], b"x")),
    "tar, 100,000 empty members": ("model.tar", lambda: _tar(b"")),
    "tar, 100,000 1-byte members": ("model.tar", lambda: _tar(b"x")),
    "PyTorch zip, 100,000 empty storages": ("model.pt", lambda: _torch_zip(b"")),
    "PyTorch zip, 100,000 1-byte storages": ("model.pt", lambda: _torch_zip(b"x")),
}


def _timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run: CPU time is what a loaded machine
    (other jobs on the two cores) distorts least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _median(args: list[str], runs: int) -> tuple[float, float]:
    timings = [_timed(args) for _ in range(runs)]
    return (statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings))


def archives(runs: int, only: str) -> None:
    auditor = [str(Path(sys.executable).with_name("auditor"))]
    startup, startup_cpu = _median([*auditor, "--version"], runs)
    print(f"start-up (`auditor --version`, median of {runs}): {startup:.3f} s, "
          f"CPU {startup_cpu:.3f} s")
    print("| input | size | scan | beyond start-up | CPU beyond start-up | members/s | finding |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, build) in ARCHIVES.items():
            if only not in label:
                continue
            path = Path(tmp) / name
            data = build()
            path.write_bytes(data)
            out = Path(tmp) / "out.json"
            wall, cpu = _median([*auditor, "scan", str(path), "--format", "json", "-o",
                                 str(out)], runs)
            rules = ", ".join(sorted({f.rule for f in pipeline.scan(
                path, ScanOptions(jobs=1)).models[0].files[0].findings}))
            beyond = wall - startup
            print(f"| {label} | {len(data):,} B | {wall:.3f} s | {beyond:.3f} s | "
                  f"{cpu - startup_cpu:.3f} s | {MEMBERS / beyond:,.0f} | {rules} |", flush=True)
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-peak", action="store_true", help="skip the traced second scan")
    parser.add_argument("--archives", action="store_true",
                        help="time `auditor scan` on 100,000-member archives instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="archive cases whose label holds this text")
    args = parser.parse_args()
    if args.archives:
        archives(args.runs, args.only)
        return
    print("| input | size | time | peak (tracemalloc) | finding |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, build) in INPUTS.items():
            path = Path(tmp) / name
            data = build()
            path.write_bytes(data)
            start = time.perf_counter()
            result = pipeline.scan(path, ScanOptions(jobs=1))
            elapsed = time.perf_counter() - start
            peak = "-"
            if not args.no_peak:
                tracemalloc.start()
                pipeline.scan(path, ScanOptions(jobs=1))
                peak = f"{tracemalloc.get_traced_memory()[1] / 1e6:.1f} MB"
                tracemalloc.stop()
            (report,) = result.models[0].files
            rules = ", ".join(sorted({f.rule for f in report.findings}))
            print(f"| {label} | {len(data):,} B | {elapsed:.3f} s | {peak} | {rules} |",
                  flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
