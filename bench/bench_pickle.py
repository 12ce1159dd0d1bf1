"""Pickle analysis speed: a ~100 MB object-heavy pickle, auditor vs picklescan on the same file.

    python bench/bench_pickle.py [--rows 2000000] [--venv /tmp/auditor-peers]

The pickle is a list of small dicts holding tuples, lists, floats and
strings, with many memo references (repeated keys), written by the standard
pickler at protocol 4 — millions of opcodes, the worst case for an
opcode-level analyser. Both tools run as subprocesses under `/usr/bin/time`
(wall time and peak RSS, interpreter start-up included); picklescan comes
from the venv `bench/scorecard.py` creates.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path


def build(path: Path, rows: int) -> None:
    keys = [f"key{i}" for i in range(50)]
    data = [
        {keys[i % 50]: i, "name": f"n{i}", "v": (i * 0.5, i, None), "tags": [keys[i * 7 % 50], "x"]}
        for i in range(rows)
    ]
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)


def timed(argv: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], capture_output=True,
                          text=True)
    wall, rss = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) // 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/auditor-peers"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pickle-") as tmp:
        path = Path(tmp) / "objects.pkl"
        build(path, args.rows)
        size = path.stat().st_size
        print(f"{path.name}: {size / 1e6:.1f} MB, {args.rows} rows\n")
        runs = {
            "auditor": [sys.executable, "-m", "auditor", "scan", str(path)],
            "picklescan": [str(args.venv / "bin" / "picklescan"), "-p", str(path)],
        }
        results = {name: timed(argv) for name, argv in runs.items()}
        print("| tool | wall time | MB/s | peak RSS | exit code |")
        print("|---|---|---|---|---|")
        for name, (wall, rss, code) in results.items():
            print(f"| {name} | {wall:.1f} s | {size / 1e6 / wall:.1f} | {rss} MB | {code} |")
        ratio = results["picklescan"][0] / results["auditor"][0]
        print(f"\nauditor is {ratio:.2f}x picklescan's speed on the same file")


if __name__ == "__main__":
    main()
