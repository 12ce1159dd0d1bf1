"""Scan throughput and memory vs `openssl dgst -sha256` (run by hand, not a test).

Generates one big safetensors-shaped file and a folder of smaller ones (a valid
header + a large data area, written in chunks so this script's memory stays
flat), then times, as subprocesses with wall time including start-up:

- `openssl dgst -sha256 big`              vs `auditor scan big`
- `openssl dgst -sha256 part1 .. partN`   vs `auditor scan folder` (files in parallel)

Every command is run once to warm the page cache, then `--runs` more rounds
alternating openssl and auditor; the best wall time is reported with its CPU
time and the peak RSS (`/usr/bin/time`). The SHA-256
auditor reports is checked against openssl's, and the generated files are
removed afterwards unless `--keep`.

    python bench/bench_scan.py                 # 4 GiB file + 4 x 1 GiB folder
    python bench/bench_scan.py --big-gib 1 --part-gib 0.25 --runs 1   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30
CHUNK = 16 << 20
TARGETS = {"single": 1.15, "folder": 0.70, "rss_mb": 150}
# Bytecode may be cached, as after `pip install`: the warm-up run writes it, so start-up
# is not measured compiling auditor's sources on every run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def write_safetensors(path: Path, data_bytes: int) -> None:
    """A valid safetensors file holding one U8 tensor of `data_bytes` bytes."""
    header = {
        "__metadata__": {"format": "pt"},
        "weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]},
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    block = bytes(range(256)) * (CHUNK // 256)
    # Vary each chunk so that no layer (page cache, storage) can dedupe the file.
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        left, i = data_bytes, 0
        while left:
            n = min(left, CHUNK)
            f.write((i.to_bytes(8, "little") + block[8:])[:n])
            left -= n
            i += 1


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, including start-up
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set
    out: str


def run_measured(cmd: list[str]) -> Run:
    """One subprocess under `/usr/bin/time`.

    RSS comes from there because its child is forked from a small process,
    whereas a child forked from this script would inherit our own peak RSS.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as stats:
        started = time.perf_counter()
        code = subprocess.call(["/usr/bin/time", "-f", "%M %U %S", "-o", stats.name, *cmd],
                               stdout=out, stderr=subprocess.DEVNULL, env=ENV)
        wall = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {code}")
        out.seek(0)
        rss_kb, user, system = stats.read().split()[-3:]
        return Run(wall, float(user) + float(system), int(rss_kb) / 1024, out.read().decode())


def best_of(cmds: list[list[str]], runs: int) -> list[Run]:
    """Warm-up once, then `runs` rounds alternating the commands; best wall time each.

    Alternating gives every tool the same page cache and the same share of
    whatever else the machine is doing.
    """
    for cmd in cmds:
        run_measured(cmd)
    rounds = [[run_measured(cmd) for cmd in cmds] for _ in range(runs)]
    best = []
    for i in range(len(cmds)):
        results = [r[i] for r in rounds]
        fastest = min(results, key=lambda r: r.wall)
        best.append(Run(fastest.wall, fastest.cpu, max(r.rss_mb for r in results), fastest.out))
    return best


def auditor_cmd(target: Path, jobs: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "auditor", "scan", str(target), "--format", "json"]
    return cmd + (["--jobs", str(jobs)] if jobs else [])


def check_digests(report: str, openssl_out: str) -> None:
    """auditor's sha256 of each file must equal openssl's."""
    expected = {}
    for line in openssl_out.splitlines():  # "SHA2-256(path)= hex"
        name, _, digest = line.rpartition("= ")
        expected[Path(name[name.index("(") + 1 : -1]).name] = digest.strip()
    doc = json.loads(report)
    got = {Path(f["path"]).name: f["sha256"] for m in doc["models"] for f in m["files"]}
    if got != expected:
        raise SystemExit(f"digest mismatch: auditor {got} vs openssl {expected}")
    if doc["verdict"] != "pass":
        raise SystemExit(f"bench files did not scan clean: {doc['summary']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to write the files [a temp dir]")
    parser.add_argument("--big-gib", type=float, default=4.0)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--part-gib", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the warm-up")
    parser.add_argument("--jobs", type=int, help="auditor --jobs [its default: CPUs]")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="auditor-bench-", dir=args.dir))
    try:
        big = base / "big.safetensors"
        folder = base / "parts"
        folder.mkdir()
        parts = [folder / f"model-{i + 1:05d}-of-{args.parts:05d}.safetensors"
                 for i in range(args.parts)]
        t = time.perf_counter()
        write_safetensors(big, int(args.big_gib * GIB))
        for p in parts:
            write_safetensors(p, int(args.part_gib * GIB))
        print(f"generated in {time.perf_counter() - t:.1f} s under {base}", file=sys.stderr)

        rows = []
        for label, ossl_cmd, target in (
            ("single", ["openssl", "dgst", "-sha256", str(big)], big),
            ("folder", ["openssl", "dgst", "-sha256", *map(str, parts)], folder),
        ):
            ossl, aud = best_of([ossl_cmd, auditor_cmd(target, args.jobs)], args.runs)
            check_digests(aud.out, ossl.out)
            rows.append((label, ossl, aud))

        example = Path(__file__).resolve().parent.parent / "examples" / "tiny-model"
        startup = [
            ("auditor --version", [sys.executable, "-m", "auditor", "--version"]),
            ("auditor scan examples/tiny-model", auditor_cmd(example, None)),
        ]
        starts = zip([n for n, _ in startup], best_of([c for _, c in startup], 5), strict=True)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(f"machine: {os.cpu_count()} CPUs; load average at the end {os.getloadavg()[0]:.1f}; "
          f"auditor jobs: {args.jobs or 'default'}; best of {args.runs} warm runs")
    print()
    print("| case | openssl wall s (cpu) | auditor wall s (cpu) | ratio | target "
          "| auditor peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for label, ossl, aud in rows:
        size = (f"{args.big_gib:g} GiB file" if label == "single"
                else f"{args.parts} x {args.part_gib:g} GiB folder")
        ratio, target = aud.wall / ossl.wall, TARGETS[label]
        ok = "ok" if ratio <= target and aud.rss_mb < TARGETS["rss_mb"] else "MISSED"
        print(f"| {size} | {ossl.wall:.2f} ({ossl.cpu:.2f}) | {aud.wall:.2f} ({aud.cpu:.2f}) "
              f"| {ratio:.2f} | <= {target} ({ok}) | {aud.rss_mb:.0f} |")
    print()
    print("| start-up (best of 5) | wall s | peak RSS MB |")
    print("|---|---|---|")
    for name, run in starts:
        print(f"| `{name}` | {run.wall:.3f} | {run.rss_mb:.0f} |")


if __name__ == "__main__":
    main()
