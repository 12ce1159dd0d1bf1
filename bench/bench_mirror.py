"""Mirror scans: first scan vs unchanged rescan of a generated mirror (run by hand, not a test).

Builds a plain `org/name/` mirror of `--small` tiny models (safetensors
weights, config.json, model card) plus `--big` models each holding one
sparse safetensors file of `--big-gib` GiB (a real header, a zero data area
that takes no disk space), so the mirror totals over 8 GiB by default. Then
times, as subprocesses (interpreter start-up included):

1. `auditor mirror scan ROOT --state S --format json` on a fresh state;
2. the same again with nothing changed (must read 0 bytes);
3. the same after one small file changed (only it is read again).

Prints the figures as a markdown table and deletes the mirror unless `--keep`.

    python bench/bench_mirror.py                  # 200 small + 4 x 2.25 GiB
    python bench/bench_mirror.py --big 1 --big-gib 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1 << 30
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16}
CARD = "---\nlicense: apache-2.0\n---\n\n# {name}\n\nA generated model for the mirror bench.\n"


def safetensors_header(nbytes: int, seed: int) -> bytes:
    """The header of a safetensors file with one U8 tensor of `nbytes` (unique per seed)."""
    header = {"__metadata__": {"seed": str(seed)},
              "weight": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def write_model(folder: Path, name: str, weights: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    head = safetensors_header(weights, seed)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(head)
        if weights <= 1 << 20:
            f.write(bytes((seed + i) % 251 for i in range(weights)))
        else:
            f.truncate(len(head) + weights)  # sparse: the data area reads as zeros
    (folder / "config.json").write_text(json.dumps(CONFIG | {"name": name}, indent=2) + "\n")
    (folder / "README.md").write_text(CARD.format(name=name))


def build(root: Path, small: int, big: int, big_bytes: int) -> int:
    for i in range(small):
        write_model(root / f"org{i // 20:02}" / f"small-{i:03}", f"small-{i:03}", 4096, i)
    for i in range(big):
        write_model(root / "big" / f"large-{i}", f"large-{i}", big_bytes, 1000 + i)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed_scan(root: Path, state: Path, jobs: int) -> tuple[float, dict, int]:
    cmd = [sys.executable, "-m", "auditor", "mirror", "scan", str(root), "--state", str(state),
           "--format", "json", "-j", str(jobs)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"auditor failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, json.loads(proc.stdout), proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--big", type=int, default=4)
    parser.add_argument("--big-gib", type=float, default=2.25)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="where to build [a temp dir]")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-mirror-", dir=args.dir))
    try:
        root = work / "mirror"
        total = build(root, args.small, args.big, int(args.big_gib * GIB))
        state = work / "state" / "mirror.db"
        print(f"mirror: {args.small} small + {args.big} big models, {total / GIB:.2f} GiB "
              f"(apparent size), {args.jobs} jobs")
        rows = []
        first, summary, _ = timed_scan(root, state, args.jobs)
        rows.append(("first scan", first, summary))
        again, summary, _ = timed_scan(root, state, args.jobs)
        rows.append(("unchanged rescan", again, summary))
        config = root / "org00" / "small-000" / "config.json"
        config.write_text(config.read_text().replace("llama", "mistral"))
        one, summary, _ = timed_scan(root, state, args.jobs)
        rows.append(("one file changed", one, summary))
        print("\n| run | wall time | vs first | files read | bytes read | SBOMs written |")
        print("|---|---|---|---|---|---|")
        for label, seconds, s in rows:
            s = s["summary"]
            print(f"| {label} | {seconds:.2f} s | {seconds / first:.1%} | {s['files_read']:,} "
                  f"| {s['bytes_read']:,} | {s['sboms_written']} |")
        ratio = again / first
        print(f"\nunchanged rescan / first scan = {ratio:.1%} (target <= 10%)")
        if rows[1][2]["summary"]["bytes_read"] != 0:
            sys.exit("FAIL: the unchanged rescan read file content")
        if ratio > 0.10:
            sys.exit("FAIL: the unchanged rescan costs more than 10% of the first scan")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
