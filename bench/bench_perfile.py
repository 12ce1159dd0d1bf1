"""Per-file scan time over the pickle corpus and the benign corpus of real writers.

    python bench/bench_perfile.py write DIR          # the files, one folder per case
    python bench/bench_perfile.py time DIR [--runs 3]

`write` needs the test extra (the real writers); `time` scans every file of
DIR in-process as its own target (`auditor.pipeline.scan`, one thread) and
prints the median and 90th percentile of the best-of-`runs` wall time per
file. To compare two versions of the scanner on the same files, run `time`
with each on the import path (e.g. `PYTHONPATH=/path/to/old/checkout`).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["write", "time"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.action == "write":
        print(f"{write(args.folder)} files under {args.folder}")
        return
    times = timed(args.folder, args.runs)
    p90 = statistics.quantiles(times, n=10)[-1]
    print(f"{len(times)} files: median {statistics.median(times) * 1000:.2f} ms, "
          f"p90 {p90 * 1000:.2f} ms, total {sum(times):.2f} s (best of {args.runs})")


if __name__ == "__main__":
    main()
