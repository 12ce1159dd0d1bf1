"""Lineage: the base models a model card declares, resolved to their publisher and commit.

Only metadata is fetched (model info, never files), depth first, to a
fixed depth; a declaration that loops back is a cycle finding, not an
endless walk. Offline, or for a base that cannot be looked up, the entry
records what the card declares with `resolved: false`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.integrity.provenance import LINEAGE_CYCLE
from auditor.model import Finding


@dataclass(frozen=True)
class BaseInfo:
    """What the Hub says about one base model."""

    author: str | None
    commit: str | None
    card: Mapping[str, Any] = field(default_factory=dict)


Lookup = Callable[[str], BaseInfo | None]


def declared_bases(card: Mapping[str, Any] | None) -> list[str]:
    """`base_model` as a list of repo ids (a card may give one string or a list)."""
    value = (card or {}).get("base_model")
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [n.strip() for n in names if isinstance(n, str) and n.strip()]


def _relation(card: Mapping[str, Any] | None) -> str:
    value = (card or {}).get("base_model_relation")
    return value if isinstance(value, str) and value else "unknown"


def _entry(
    name: str, relation: str, depth: int, info: BaseInfo | None, child: str | None
) -> dict[str, Any]:
    return {
        "name": name,
        "child": child,  # the model this one is a base of
        "publisher": info.author if info else None,
        "commit": info.commit if info else None,
        "relation": relation,
        "resolved": info is not None,
        "depth": depth,
    }


def declared(card: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The first generation as the card states it, unresolved (offline sources)."""
    return [_entry(n, _relation(card), 1, None, None) for n in declared_bases(card)]


def resolve(
    model: str, card: Mapping[str, Any] | None, lookup: Lookup, max_depth: int
) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Walk base models depth first (pre-order, so each entry follows its child) to `max_depth`."""
    entries: list[dict[str, Any]] = []
    findings: list[Finding] = []
    seen = {model}

    def walk(name: str, relation: str, depth: int, path: tuple[str, ...]) -> None:
        if name in path:
            chain = " -> ".join((*path, name))
            findings.append(LINEAGE_CYCLE.finding("", f"base_model chain loops: {chain}"))
            return
        if name in seen:
            return
        seen.add(name)
        info = lookup(name)
        entries.append(_entry(name, relation, depth, info, path[-1]))
        if info is not None and depth < max_depth:
            for base in declared_bases(info.card):
                walk(base, _relation(info.card), depth + 1, (*path, name))

    for base in declared_bases(card):
        walk(base, _relation(card), 1, (model,))
    return entries, findings
