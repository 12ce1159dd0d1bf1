"""Measured lineage on a generated evaluation set: precision and recall of "same base".

Five base models (random weights, each tokenizer in a real file format, two
bases sharing one tokenizer and one shape) go into a reference store with
`auditor fingerprint add`; then `auditor fingerprint show` judges what was
made of them — fine-tunes (some with new tokens), BF16/F16 copies, GGUF Q8_0
and Q4_K, FP8 with block scales, renamed and re-carded copies, a distillation
keeping its student's tokenizer — and unrelated models of the same shape and
tokenizer. A prediction is a measured entry with relation `same-base`; every
(variant, base) pair is counted at the shipped threshold. `-s` shows the table.
"""

from __future__ import annotations

import json

import pytest

from auditor.fingerprint.measure import SAME_BASE
from tests.fingerprint_models import KINDS, SMALL, confusion, evaluation_set, precision_recall

pytest.importorskip("gguf")
pytest.importorskip("ml_dtypes")
pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return root, *evaluation_set(root, SMALL)


def test_same_base_precision_and_recall_at_the_shipped_threshold(run_cli, generated):
    root, bases, cases = generated
    store = root / "store"
    for name, folder in bases.items():
        added = run_cli("fingerprint", "add", folder, "--store", store, "--name", name)
        assert added.code == 0, added.err
    predicted: dict[str, set[str]] = {}
    rows: list[str] = []
    for case in cases:
        shown = run_cli("fingerprint", "show", case.folder, "--name", case.name,
                        "--fingerprints", store, "--format", "json")
        assert shown.code == 0, shown.err
        (model,) = json.loads(shown.out)["models"]
        same = {e["name"]: e["score"] for e in model["measured"] if e["relation"] == "same-base"}
        assert all(score >= SAME_BASE for score in same.values())
        # every file format's vocabulary and embedding was read, not just the weights'
        assert model["fingerprint"]["tokenizer"]["size"] >= 32768, (case, model["fingerprint"])
        assert model["fingerprint"]["weights"]["rows"] == 256, case
        predicted[case.name] = set(same)
        said = ", ".join(f"{n} {s:.3f}" for n, s in same.items()) or "-"
        rows.append(f"{case.kind:<17} {case.name:<36} {case.truth or '(unrelated)':<20} {said}")

    counts = confusion(cases, list(bases), predicted)
    precision, recall = precision_recall(counts)
    print(f"\n{len(cases)} variants x {len(bases)} bases, same base at >= {SAME_BASE}")
    print("\n".join(rows))
    print(f"               said same  said other\n"
          f"same base      {counts['tp']:>9}  {counts['fn']:>10}\n"
          f"other base     {counts['fp']:>9}  {counts['tn']:>10}\n"
          f"precision {precision:.3f}  recall {recall:.3f}")
    assert {c.kind for c in cases} == set(KINDS)
    assert counts["tp"] + counts["fn"] == sum(c.truth is not None for c in cases)
    assert precision >= 0.95 and recall >= 0.95
