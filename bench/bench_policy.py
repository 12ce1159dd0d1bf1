"""Policy evaluation speed: 50 rules over an SBOM of 1,000 files (issue 5).

Builds the SBOM as data (no scan), writes 50 rules spread over the four
scopes (10 model, 5 lineage, 30 file, 5 finding), then times, separately:
importing the CEL library, loading (lint + compile every expression once),
turning the SBOM into facts, and evaluating. Prints one Markdown table row per run.

    python bench/bench_policy.py [--files 1000] [--rules 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.policy.engine import evaluate, load_policies  # noqa: E402
from auditor.sbom.facts import models_from_sbom  # noqa: E402
from tests.sbom_factory import file_component, finding, model_sbom  # noqa: E402

# Expression templates per scope; `{n}` makes each rule distinct.
TEMPLATES = {
    "model": 'model.files > {n} && !model.pinned || model.license == "x{n}"',
    "lineage": 'ancestor.tier == "restricted" && ancestor.depth > {n}',
    "file": 'file.weights == "true" && !(file.format in ["safetensors", "gguf"]) '
            '|| file.size == {n}',
    "finding": 'finding.severity in ["critical", "high"] && finding.rule != "X-{n}"',
}
SHARE = {"model": 0.2, "lineage": 0.1, "file": 0.6, "finding": 0.1}


def write_policy(folder: Path, rules: int) -> Path:
    lines = ["policy: bench", "data:", f"  publishers: {ROOT}/policies/data/publishers.yaml",
             f"  jurisdictions: {ROOT}/policies/data/jurisdictions.yaml", "rules:"]
    n = 0
    for scope, share in SHARE.items():
        for _ in range(round(rules * share)):
            n += 1
            expr = TEMPLATES[scope].format(n=n).replace("'", "''")
            lines += [f"  - id: B-{n:03}", f"    scope: {scope}", "    severity: high",
                      f"    deny: '{expr}'", f"    message: 'rule {n} on {{model.name}}'"]
    path = folder / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sbom(files: int) -> dict:
    comps = [file_component(f"model-{i:05}-of-{files:05}.safetensors") for i in range(files)]
    for comp in comps[::100]:  # a few pickles, so that rules trip and messages are rendered
        comp["properties"] = [p if p["name"] != "auditor:format" else
                              {"name": "auditor:format", "value": "pytorch-zip"}
                              for p in comp["properties"]]
    step = max(1, files // 50)
    findings = [finding("AUD-BENCH-001", "medium", c["name"]) for c in comps[::step]]
    return model_sbom("acme/bench", files=comps, findings=findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    doc = sbom(args.files)
    t0 = time.perf_counter()
    import cel  # noqa: F401  (timed apart: a one-off per process, not per policy)

    import_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = write_policy(Path(tmp), args.rules)
        t0 = time.perf_counter()
        policies = load_policies([path])
        load_s = time.perf_counter() - t0
    assert len(policies.rules) == args.rules
    facts_s, eval_s = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        models = models_from_sbom(doc, "bench")
        t1 = time.perf_counter()
        verdict = evaluate(policies, models, sbom="bench", today=datetime.date.today())
        t2 = time.perf_counter()
        facts_s.append(t1 - t0)
        eval_s.append(t2 - t1)
    per_file = sum(1 for r in policies.rules if r.spec.scope == "file")
    evaluations = (per_file * args.files
                   + sum(1 for r in policies.rules if r.spec.scope == "finding")
                   * len(models[0].findings)
                   + sum(1 for r in policies.rules if r.spec.scope == "lineage")
                   * len(verdict.models[0].lineage)
                   + sum(1 for r in policies.rules if r.spec.scope == "model"))
    print("| rules | files | rule evaluations | import cel | load + compile | SBOM → facts | "
          f"evaluate (median of {args.repeat}) | violations |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.rules} | {args.files} | {evaluations:,} | {import_s * 1000:.0f} ms | "
          f"{load_s * 1000:.0f} ms | "
          f"{statistics.median(facts_s) * 1000:.0f} ms | {statistics.median(eval_s) * 1000:.0f} ms"
          f" | {len(verdict.violations)} |")


if __name__ == "__main__":
    main()
