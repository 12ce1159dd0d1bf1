"""Start-up time of the CLI: wall time of whole `auditor` processes, and where the imports go.

    python bench/bench_startup.py time [--runs 15]
    python bench/bench_startup.py imports [--top 15] [-- ARGS...]

`time` runs `auditor --version`, `auditor scan examples/tiny-model` and
`auditor gate examples/tiny-model --policy policies/baseline.yaml`, each
`runs` times as a fresh process (the interleaved order spreads other jobs'
load over all three), and prints the median and 90th percentile wall time of
each, with the load average before and after: on a shared machine the load is
part of the figure. `imports` runs `python -X importtime -m auditor ARGS`
(default: the example scan) and prints the `top` imports by cumulative time.
Run by hand; never by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/tiny-model"
COMMANDS: dict[str, list[str]] = {
    "--version": ["--version"],
    "scan": ["scan", EXAMPLE],
    "gate": ["gate", EXAMPLE, "--policy", "policies/baseline.yaml"],
}


def _auditor() -> list[str]:
    """The console script beside this Python, as a user runs it; `-m auditor` without one."""
    script = Path(sys.executable).with_name("auditor")
    if script.exists():
        return [str(script)]
    found = shutil.which("auditor")
    return [found] if found else [sys.executable, "-m", "auditor"]


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - start


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def time_commands(runs: int) -> None:
    base = _auditor()
    for args in COMMANDS.values():  # warm the page cache and the bytecode
        _run(base + args)
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, args in COMMANDS.items():
            times[name].append(_run(base + args))
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} cores; {runs} runs each")
    print(f"{'command':<12} {'median s':>9} {'p90 s':>7} {'min s':>7}")
    for name, values in times.items():
        print(f"{name:<12} {statistics.median(values):>9.3f} {_p90(values):>7.3f} "
              f"{min(values):>7.3f}")


def top_imports(args: list[str], top: int) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "auditor", *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    rows: list[tuple[int, int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    total = sum(self_us for _, self_us, _ in rows)
    print(f"all imports: {total / 1000:.0f} ms self time summed, {len(rows)} modules")
    print(f"| {'cumulative µs':>13} | {'self µs':>8} | module")
    print(f"|{'-' * 15}|{'-' * 10}|{'-' * 40}")
    for cumulative_us, self_us, name in sorted(rows, reverse=True)[:top]:
        print(f"| {cumulative_us:>13} | {self_us:>8} | `{name.strip()}` (depth {_depth(name)})")


def _depth(name: str) -> int:
    """importtime indents nested imports by two spaces per level."""
    return (len(name) - len(name.lstrip(" ")) - 1) // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    timing = sub.add_parser("time")
    timing.add_argument("--runs", type=int, default=15)
    imports = sub.add_parser("imports")
    imports.add_argument("--top", type=int, default=15)
    imports.add_argument("args", nargs="*", default=["scan", EXAMPLE])
    options = parser.parse_args()
    if options.cmd == "time":
        time_commands(options.runs)
    else:
        top_imports(options.args, options.top)


if __name__ == "__main__":
    main()
