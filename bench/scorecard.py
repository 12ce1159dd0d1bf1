"""Scorecard: auditor and peer pickle scanners on the regression corpus, side by side.

    python bench/scorecard.py [--venv /tmp/auditor-peers] [--cases] [--sets classic,new,benign]
                              [--tools auditor,picklescan,modelaudit]

Creates (once) a throwaway venv with picklescan, modelscan, fickling and
modelaudit from PyPI, writes the corpus of `tests/pickle_corpus.py`
(hand-assembled bypasses of the public advisories plus benign controls:
plain pickles, real legacy `torch.save` outputs, joblib dumps, a
scikit-learn estimator) to a temporary folder, runs every tool's CLI on
every case (one process per case and tool) and prints detection, errors,
false positives and wall time as a markdown table. `--cases` adds the
per-case matrix. Payloads are harmless (`touch <canary>`); nothing here
unpickles them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pickle_corpus as corpus  # noqa: E402

PEERS = ("picklescan", "modelscan", "fickling", "modelaudit")


@dataclass(frozen=True)
class Tool:
    """How to run one scanner on one file and read its exit code."""

    name: str
    argv: tuple[str, ...]  # the file path is appended
    flagged: frozenset[int]  # exit codes meaning "issues found"
    clean: frozenset[int]  # exit codes meaning "no issue" (or "nothing scanned")


def tools(venv: Path) -> list[Tool]:
    bin_ = venv / "bin"
    return [
        Tool("auditor", (sys.executable, "-m", "auditor", "scan"), frozenset({1}),
             frozenset({0})),
        Tool("picklescan", (str(bin_ / "picklescan"), "-p"), frozenset({1}), frozenset({0})),
        Tool("modelscan", (str(bin_ / "modelscan"), "-p"), frozenset({1}), frozenset({0, 3})),
        Tool("fickling", (str(bin_ / "fickling"), "--check-safety"), frozenset({1}),
             frozenset({0})),
        Tool("modelaudit", (str(bin_ / "modelaudit"), "scan"), frozenset({1}), frozenset({0})),
    ]


def ensure_venv(venv: Path) -> None:
    if (venv / "bin" / "modelaudit").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *PEERS], check=True)


def versions(venv: Path) -> dict[str, str]:
    out = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"],
                         capture_output=True, text=True).stdout
    pins = dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
    from auditor.version import __version__

    return {"auditor": __version__, **{p: pins.get(p, "?") for p in PEERS}}


def classic_cases(work: Path, canary: str) -> list[corpus.Case]:
    """The pickle regression corpus: public bypasses and benign controls."""
    cases = list(corpus.malicious(canary)) + corpus.benign_plain()
    cases += corpus.benign_torch_legacy()[::2]  # state dict, optimizer, nested, views; p2/p5
    cases += corpus.benign_joblib(str(work))
    cases.append(corpus.sklearn_estimator(str(work)))
    return cases


def new_cases(work: Path, canary: str) -> list[corpus.Case]:
    """Issue 15's attack classes, several spellings each (built as the tests build them)."""
    from tests.test_archive_links import ESCAPING_TAR_LINKS
    from tests.test_archive_tar import make_tar
    from tests.test_pickle_names import _payload, spellings
    from tests.test_redteam_polyglots import POLYGLOTS
    from tests.test_redteam_remote_code import INDIRECT
    from tests.test_redteam_targets import CMD, YAML_SPELLINGS

    cmd = CMD.format(canary=canary)
    cases = [corpus.Case(f"built-name-{n}", "pickle: callable built by the stream",
                         _payload(body, cmd, n.startswith("dunder")))
             for n, body in spellings(cmd).items()]
    cases += [corpus.Case(f"target-{n}", "instantiation target (_target_)",
                          text.format(cmd=cmd).encode(), "config.yaml")
              for n, text in YAML_SPELLINGS.items()]
    cases += [corpus.Case(f"code-{n}", "computed name in remote code", source.encode(),
                          "modeling_custom.py")
              for n, (source, rule) in INDIRECT.items() if rule == "AUD-CODE-016"]
    cases += [corpus.Case(f"tar-link-{n}", "archive link escaping the folder",
                          make_tar(members), "bundle.tar")
              for n, members in ESCAPING_TAR_LINKS.items()]
    cases += [corpus.Case(f"polyglot-{n}", "pickle hidden in another format",
                          build(Path(canary)), f"model.{ext}")
              for n, (build, ext) in POLYGLOTS.items()]
    return cases


def benign_folders(folder: Path) -> list[tuple[corpus.Case, Path]]:
    """Each model folder the real writers of tests/benign/ write, scanned whole (a shard or an
    ONNX data file is judged beside its siblings, as a user scans it): each must be clean."""
    from tests.benign.corpus import WRITERS

    placed = []
    for writer in WRITERS:
        target = folder / f"benign-{writer.name}"
        target.mkdir(parents=True)
        writer.make(target)
        placed.append((corpus.Case(writer.name, "benign", b"", ""), target))
    return placed


def write_corpus(folder: Path, canary: str, sets: list[str]) -> list[tuple[corpus.Case, Path]]:
    work = folder.parent / "build"
    work.mkdir(parents=True)
    cases: list[corpus.Case] = []
    if "classic" in sets:
        cases += classic_cases(work, canary)
    if "new" in sets:
        cases += new_cases(work, canary)
    placed = benign_folders(folder) if "benign" in sets else []
    for i, case in enumerate(cases):
        sub = folder / f"{i:03d}-{case.name.replace('/', '_')}"
        sub.mkdir(parents=True)
        (sub / case.filename).write_bytes(case.data)
        placed.append((case, sub / case.filename))
    return placed


def run(tool: Tool, path: Path, env: dict[str, str]) -> tuple[str, float]:
    started = time.monotonic()
    try:
        proc = subprocess.run([*tool.argv, str(path)], capture_output=True, env=env,
                              timeout=120, cwd=path.parent)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    elapsed = time.monotonic() - started
    if code in tool.flagged:
        return "flagged", elapsed
    if code in tool.clean:
        return "clean", elapsed
    return f"error({code})", elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/auditor-peers"))
    parser.add_argument("--cases", action="store_true", help="print the per-case matrix")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sets", default="classic",
                        help="comma-separated: classic (the pickle regression corpus), new "
                        "(issue 15's attack classes), benign (every file of tests/benign/)")
    parser.add_argument("--tools", default=",".join(("auditor", *PEERS)),
                        help="comma-separated subset of auditor," + ",".join(PEERS))
    args = parser.parse_args()
    ensure_venv(args.venv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1",
           "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory(prefix="scorecard-") as tmp:
        canary = str(Path(tmp) / "CANARY")
        placed = write_corpus(Path(tmp) / "corpus", canary, args.sets.split(","))
        chosen = args.tools.split(",")
        all_tools = [t for t in tools(args.venv) if t.name in chosen]
        jobs = [(t, c, p) for t in all_tools for c, p in placed]
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda j: run(j[0], j[2], env), jobs))
        outcome = {(t.name, c.name): r for (t, c, _), r in zip(jobs, results, strict=True)}
        report(all_tools, [c for c, _ in placed], outcome, versions(args.venv), args.cases)
        if Path(canary).exists():
            print("\nWARNING: the canary exists: a tool executed a payload")


def report(all_tools: list[Tool], cases: list[corpus.Case],
           outcome: dict[tuple[str, str], tuple[str, float]], vers: dict[str, str],
           per_case: bool) -> None:
    bad = [c for c in cases if c.attack != "benign"]
    good = [c for c in cases if c.attack == "benign"]
    print(f"{len(bad)} malicious cases, {len(good)} benign controls\n")
    print("| tool | version | malicious flagged | errors (no verdict) | missed "
          "| benign flagged (false positives) | total time |")
    print("|---|---|---|---|---|---|---|")
    for t in all_tools:
        res = [outcome[(t.name, c.name)] for c in bad]
        flagged = sum(r == "flagged" for r, _ in res)
        missed = sum(r == "clean" for r, _ in res)
        errors = len(res) - flagged - missed
        fps = sum(outcome[(t.name, c.name)][0] == "flagged" for c in good)
        total = sum(s for (name, _), (_, s) in outcome.items() if name == t.name)
        print(f"| {t.name} | {vers.get(t.name, '?')} | {flagged}/{len(bad)} | {errors} | "
              f"{missed} | {fps}/{len(good)} | {total:.0f} s |")
    if per_case:
        names = [t.name for t in all_tools]
        print("\n| case | class | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for c in cases:
            cells = [outcome[(n, c.name)][0] for n in names]
            print(f"| {c.name} | {c.attack} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
