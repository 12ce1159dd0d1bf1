"""Lineage: declared base models resolved to publisher and commit, depth-limited, cycle-safe."""

from __future__ import annotations

import json

from auditor.model import Grade, LineageEdge
from auditor.sources import lineage
from tests.hubfixtures import C2, commit, findings, serve  # noqa: F401


def test_lineage_through_two_base_models(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result = run_cli("scan", "hf://org/tiny", "--remote-only", "--format", "json",
                     "--cache-dir", tmp_path)
    assert result.code == 0, result.err
    chain = json.loads(result.out)["models"][0]["facts"]["lineage"]
    card = f"the Hub's card data at {C2}"
    assert chain == [
        {"name": "base-org/mid", "child": "org/tiny", "publisher": "Mid Labs",
         "publisher_grade": "hub-verified", "commit": commit("base-org/mid"),
         "relation": "finetune", "resolved": True, "depth": 1, "grade": "hub-verified",
         "evidence": ["README.md base_model", card]},
        {"name": "root-org/root", "child": "base-org/mid", "publisher": "Root Labs",
         "publisher_grade": "hub-verified", "commit": commit("root-org/root"),
         "relation": "unknown", "resolved": True, "depth": 2, "grade": "hub-verified",
         "evidence": ["the Hub's card of base-org/mid"]},
    ]


def test_lineage_cycle_is_a_finding_not_a_loop(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result = run_cli("scan", "hf://cyc/a", "--remote-only", "--format", "json",
                     "--cache-dir", tmp_path)
    report = json.loads(result.out)
    assert [e["name"] for e in report["models"][0]["facts"]["lineage"]] == ["cyc/b"]
    cycle = findings(report, "AUD-PROV-010")
    assert len(cycle) == 1
    assert "cyc/a -> cyc/b -> cyc/a" in cycle[0]["detail"]


def test_unknown_base_is_recorded_unresolved():
    entries, found = lineage.resolve(
        "me/model", "f" * 40, [],
        {"base_model": ["gone/base", "x/y"], "base_model_relation": "merge"},
        lambda name: None if name == "gone/base" else lineage.BaseInfo("X", "a" * 40), 3)
    assert [(e.name, e.resolved, e.relation, e.publisher, e.grade) for e in entries] == [
        ("gone/base", False, "merge", "gone", Grade.HUB_VERIFIED),
        ("x/y", True, "merge", "X", Grade.HUB_VERIFIED)]
    assert found == []


def test_a_base_only_the_copy_declares_stays_declared():
    """A card edited after download names a base the Hub's record of the commit does not."""
    declared = [LineageEdge("evil/base", "finetune", Grade.DECLARED, ("README.md base_model",),
                            "evil", Grade.DECLARED)]
    entries, _ = lineage.resolve("me/model", "f" * 40, declared, {"base_model": "real/base"},
                                 lambda name: None, 3)
    assert [(e.name, e.grade) for e in entries] == [
        ("evil/base", Grade.DECLARED), ("real/base", Grade.HUB_VERIFIED)]


def test_depth_limit_stops_the_walk():
    def lookup(name: str) -> lineage.BaseInfo:
        depth = int(name.split("/")[1])
        return lineage.BaseInfo("p", "c" * 40, {"base_model": f"o/{depth + 1}"})

    entries, _ = lineage.resolve("o/0", "f" * 40, [], {"base_model": "o/1"}, lookup, max_depth=3)
    assert [e.name for e in entries] == ["o/1", "o/2", "o/3"]
