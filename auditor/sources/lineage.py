"""Lineage on the Hub: the declared base models, confirmed and followed through the Hub's records.

The first generation is what the model's own files declare (its card, adapter
config, GGUF metadata, merge config: `auditor.scanning.declared`). A base the
Hub's card data for the pinned commit also names is `hub-verified`: the
publisher declared it at that commit, not someone editing a copy. Each base is
then looked up (model info only, never files), depth first, to a fixed depth:
its publisher and commit come from the Hub, and its own card's bases become
the next generation. A declaration that loops back is a cycle finding, not an
endless walk; a base that cannot be looked up keeps what was declared, with
`resolved` false.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.integrity.provenance import LINEAGE_CYCLE
from auditor.model import Finding, Grade, LineageEdge

HUB_RELATIONS = frozenset({"adapter", "merge", "quantized", "finetune"})


@dataclass(frozen=True)
class BaseInfo:
    """What the Hub says about one base model."""

    author: str | None
    commit: str | None
    card: Mapping[str, Any] = field(default_factory=dict)


Lookup = Callable[[str], BaseInfo | None]


def card_bases(card: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(repo id, relation) for each `base_model` of a card as the Hub records it."""
    card = card or {}
    value = card.get("base_model")
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    relation = card.get("base_model_relation")
    relation = relation if isinstance(relation, str) and relation in HUB_RELATIONS else "unknown"
    out: list[tuple[str, str]] = []
    for name in names[:64]:
        if isinstance(name, str) and name.strip() and len(name) <= 200:
            out.append((name.strip(), relation))
    return out


def resolve(
    model: str, commit: str, declared: list[LineageEdge], hub_card: Mapping[str, Any] | None,
    lookup: Lookup, max_depth: int,
) -> tuple[list[LineageEdge], list[Finding]]:
    """The declared first generation confirmed against the Hub's card data, then walked depth
    first (pre-order, so each entry follows its child) to `max_depth`."""
    recorded = f"the Hub's card data at {commit}"
    on_hub = {name.lower(): relation for name, relation in card_bases(hub_card)}
    first: list[LineageEdge] = []
    for edge in declared:
        if edge.name.lower() in on_hub:
            edge = dataclasses.replace(edge, grade=Grade.HUB_VERIFIED,
                                       evidence=(*edge.evidence, recorded))
        first.append(edge)
    named = {e.name.lower() for e in first}
    first += [
        LineageEdge(name, relation, Grade.HUB_VERIFIED, (recorded,),
                    name.split("/")[0] if "/" in name else None, Grade.HUB_VERIFIED)
        for name, relation in card_bases(hub_card) if name.lower() not in named
    ]

    entries: list[LineageEdge] = []
    findings: list[Finding] = []
    seen = {model.lower()}

    def walk(edge: LineageEdge, path: tuple[str, ...]) -> None:
        if edge.name.lower() in (p.lower() for p in path):
            chain = " -> ".join((*path, edge.name))
            findings.append(LINEAGE_CYCLE.finding("", f"base_model chain loops: {chain}"))
            return
        if edge.name.lower() in seen:
            return
        seen.add(edge.name.lower())
        info = lookup(edge.name) if edge.name.count("/") == 1 else None
        if info is not None:
            edge = dataclasses.replace(
                edge, publisher=info.author or edge.publisher,
                publisher_grade=Grade.HUB_VERIFIED if info.author else edge.publisher_grade,
                commit=info.commit, resolved=True)
        entries.append(edge)
        if info is None or edge.depth >= max_depth:
            return
        for name, relation in card_bases(info.card):
            said = (f"the Hub's card of {edge.name}",)
            walk(LineageEdge(name, relation, Grade.HUB_VERIFIED, said,
                             name.split("/")[0] if "/" in name else None, Grade.DECLARED,
                             child=edge.name, depth=edge.depth + 1), (*path, edge.name))

    for edge in first:
        walk(edge, (model,))
    return entries, findings
