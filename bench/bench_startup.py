"""Start-up time of the CLI: wall time of whole `auditor` processes, and where the imports go.

    python bench/bench_startup.py time [--runs 15] [--baseline OLD_CHECKOUT]
    python bench/bench_startup.py imports [--top 15] [--tree CHECKOUT] [-- ARGS...]

`time` runs `auditor --version`, `auditor scan examples/tiny-model` and
`auditor gate examples/tiny-model --policy policies/baseline.yaml`, each
`runs` times as a fresh process (the interleaved order spreads other jobs'
load over all three), and prints the median and 90th percentile wall time of
each (and the median CPU time, user + system, which other jobs inflate least),
with the load average before and after: on a shared machine the load is part of
the figure. Bytecode is cached as in an installed package (the warm-up
writes missing `.pyc` files even under PYTHONDONTWRITEBYTECODE). `imports` runs
`python -X importtime -m auditor ARGS` (default: the example scan) and prints the
`top` imports by cumulative time. Both measure the checkout the script is in, or
`--tree`; `--baseline` times another checkout (e.g. `git worktree add /tmp/old
<commit>`) in the same rounds, run for run, so both see the same load.
Run by hand; never by pytest.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _env(tree: Path) -> dict[str, str]:
    """As an installed package runs: bytecode cached (`pip install` compiles it), so the
    warm-up writes any missing `.pyc` even where PYTHONDONTWRITEBYTECODE is set; and the
    `auditor` of `tree`, found before the installed one."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    return env


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], tree: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one process: CPU time is what other jobs' load inflates least."""
    start, cpu = time.perf_counter(), _cpu()
    subprocess.run(argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=_env(tree), check=False)
    return time.perf_counter() - start, _cpu() - cpu


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def time_commands(runs: int, trees: dict[str, Path]) -> None:
    base = _auditor()
    for tree in trees.values():
        for args in COMMANDS.values():  # warm the page cache and the bytecode
            _run(base + args, tree)
    load_before = os.getloadavg()
    times: dict[tuple[str, str], list[tuple[float, float]]] = {
        (label, name): [] for label in trees for name in COMMANDS}
    for _ in range(runs):
        for name, args in COMMANDS.items():
            for label, tree in trees.items():
                times[label, name].append(_run(base + args, tree))
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} cores; {runs} runs each")
    print(f"{'tree':<9} {'command':<10} {'median s':>9} {'p90 s':>7} {'min s':>7} "
          f"{'CPU median s':>13}")
    for (label, name), pairs in times.items():
        wall = [w for w, _ in pairs]
        print(f"{label:<9} {name:<10} {statistics.median(wall):>9.3f} {_p90(wall):>7.3f} "
              f"{min(wall):>7.3f} {statistics.median(c for _, c in pairs):>13.3f}")


def top_imports(args: list[str], top: int, tree: Path) -> None:
    _run(_auditor() + args, tree)  # the warm-up: bytecode written, files in the page cache
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "auditor", *args],
                          cwd=tree, capture_output=True, text=True, env=_env(tree), check=False)
    rows: list[tuple[int, int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    # No total: imports made by the engine's worker threads (format modules met in a file)
    # overlap the main thread's, and importtime's self times are not kept per thread.
    print(f"{len(rows)} modules imported")
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
    timing.add_argument("--baseline", type=Path, help="another checkout, timed in the same rounds")
    imports = sub.add_parser("imports")
    imports.add_argument("--top", type=int, default=15)
    imports.add_argument("--tree", type=Path, default=ROOT)
    imports.add_argument("args", nargs="*", default=["scan", EXAMPLE])
    options = parser.parse_args()
    if options.cmd == "time":
        trees = {"this": ROOT} | ({"baseline": options.baseline.resolve()} if options.baseline
                                 else {})
        time_commands(options.runs, trees)
    else:
        top_imports(options.args, options.top, options.tree.resolve())


if __name__ == "__main__":
    main()
