"""Per-file scan time over the pickle corpus and the benign corpus of real writers.

    python bench/bench_perfile.py write DIR          # the files, one folder per case
    python bench/bench_perfile.py time DIR [--runs 3]
    python bench/bench_perfile.py small DIR [--files 10000] [--runs 3]

`write` needs the test extra (the real writers); `time` scans every file of
DIR in-process as its own target (`auditor.pipeline.scan`, one thread) and
prints the median and 90th percentile of the best-of-`runs` wall time per
file. To compare two versions of the scanner on the same files, run `time`
with each on the import path (e.g. `PYTHONPATH=/path/to/old/checkout`).

`small` writes (once) a folder of `--files` small files (pickles, JSON, text,
tiny safetensors, empty and random files, all under the engine's read-ahead)
and scans it as one model (one thread, best of `runs`); it prints the wall
time per file, the time per file of just reading and hashing the same files
(sha256), the difference (the per-file overhead beyond hashing) and the bytes
read from disk against the folder's size: every file is read once when the
two are equal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write(folder: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from tests import pickle_corpus as corpus
    from tests.benign.corpus import WRITERS

    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    cases = list(corpus.malicious(str(work / "CANARY"))) + corpus.benign_plain()
    cases += corpus.benign_torch_legacy() + corpus.benign_joblib(str(work))
    cases.append(corpus.sklearn_estimator(str(work)))
    for i, case in enumerate(cases):
        sub = folder / f"pickle-{i:03d}"
        sub.mkdir()
        (sub / case.filename).write_bytes(case.data)
    for writer in WRITERS:
        sub = folder / f"benign-{writer.name}"
        sub.mkdir()
        writer.make(sub)
    return sum(1 for p in folder.rglob("*") if p.is_file())


def timed(folder: Path, runs: int) -> list[float]:
    from auditor import pipeline
    from auditor.scanning.options import ScanOptions

    options = ScanOptions(jobs=1)
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        best = float("inf")
        for _ in range(runs):
            started = time.perf_counter()
            pipeline.scan(path, options)
            best = min(best, time.perf_counter() - started)
        out.append(best)
    return out


def small_folder(folder: Path, files: int) -> int:
    """`files` small files of the kinds a model folder is full of; their total size."""
    sys.path.insert(0, str(ROOT))
    from tests.builders import safetensors_bytes

    kinds = [
        lambda i: ("pkl", pickle.dumps({"step": i, "lr": [0.1] * (i % 50)}, protocol=4)),
        lambda i: ("json", json.dumps({"id": i, "vocab": list(range(i % 300))}).encode()),
        lambda i: ("txt", b"token %d\n" % i * (1 + i % 200)),
        lambda i: ("safetensors", safetensors_bytes({"w": ("F32", [1 + i % 16, 4])})),
        lambda i: ("bin", b""),
        lambda i: ("bin", os.urandom(1 + i % 4000)),
    ]
    if not folder.exists() or sum(1 for _ in folder.iterdir()) != files:
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            ext, data = kinds[i % len(kinds)](i)
            (folder / f"f{i:05d}.{ext}").write_bytes(data)
    return sum(p.stat().st_size for p in folder.iterdir())


def small(folder: Path, files: int, runs: int) -> None:
    from auditor import pipeline
    from auditor.scanning.options import ScanOptions

    size = small_folder(folder, files)
    paths = sorted(folder.iterdir())
    scan_s = hash_s = float("inf")
    read = 0
    for _ in range(runs):
        started = time.perf_counter()
        result = pipeline.scan(folder, ScanOptions(jobs=1))
        scan_s = min(scan_s, time.perf_counter() - started)
        read = result.bytes_read
        started = time.perf_counter()
        for path in paths:
            with open(path, "rb", buffering=0) as f:
                hashlib.sha256(f.read()).hexdigest()
        hash_s = min(hash_s, time.perf_counter() - started)
    n = len(paths)
    print(f"{n} files, {size:,} bytes: scan {scan_s / n * 1000:.3f} ms/file, "
          f"read+sha256 {hash_s / n * 1000:.3f} ms/file, "
          f"beyond hashing {(scan_s - hash_s) / n * 1000:.3f} ms/file; "
          f"bytes read {read:,} ({read / size:.3f}x the folder; best of {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["write", "time", "small"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    if args.action == "small":
        small(args.folder, args.files, args.runs)
        return
    if args.action == "write":
        print(f"{write(args.folder)} files under {args.folder}")
        return
    times = timed(args.folder, args.runs)
    p90 = statistics.quantiles(times, n=10)[-1]
    print(f"{len(times)} files: median {statistics.median(times) * 1000:.2f} ms, "
          f"p90 {p90 * 1000:.2f} ms, total {sum(times):.2f} s (best of {args.runs})")


if __name__ == "__main__":
    main()
