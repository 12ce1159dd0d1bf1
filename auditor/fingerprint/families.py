"""The shipped family table and the nearest family of a measured model.

`families.yaml` holds the sourced tokenizer and architecture facts of the major
open-weight families. A model is compared with each family on the signals
that discriminate, strongest first (the reference's order): special-token
strings with their ids, which mark even a distilled student's teacher
(`<｜begin▁of▁sentence｜>` at 151646 is R1-Distill-Qwen, at 128000
R1-Distill-Llama, at 0 DeepSeek itself); then the config keys only some
families have; then the model type, vocabulary and shapes, which many families
share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from auditor.errors import ConfigError
from auditor.fingerprint.architecture import TRAIT_OF_KEY, ArchPrint, similarity

TABLE = Path(__file__).with_name("families.yaml")
SHAPE_FIELDS = ("hidden", "layers", "heads", "kv_heads", "intermediate", "rope_theta", "experts",
                "experts_per_tok", "expert_intermediate", "kv_lora_rank")
SPECIAL_STRINGS = ("bos", "eos")
SPECIAL_IDS = ("bos_id", "eos_id", "pad_id")
# How much one agreeing (or contradicting) special token counts: a string is a deliberate
# choice, an id is often shared (1 and 2 are every SentencePiece vocabulary's BOS and EOS).
STRING_WEIGHT, ID_WEIGHT = 2.0, 1.0
# Evidence weights of the combined score; specials first, as they are the most discriminative.
EVIDENCE = {"specials": 4.0, "traits": 2.0, "shape": 2.0, "vocab": 1.5, "kind": 1.0}
_ENTRY_KEYS = frozenset({"key", "label", "publishers", "model_types", "gguf_architectures",
                         "architectures", "vocab_sizes", "specials", "keys", "shapes",
                         "tokenizer", "distill_of", "sources"})


@dataclass(frozen=True)
class Family:
    """One row of the table (see the field list at the top of `families.yaml`)."""

    key: str
    label: str
    publishers: tuple[str, ...]
    sources: tuple[str, ...]
    model_types: tuple[str, ...] = ()
    gguf_architectures: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    vocab_sizes: tuple[int, ...] = ()
    specials: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    shapes: tuple[ArchPrint, ...] = ()
    tokenizer: Mapping[str, Any] = field(default_factory=dict)
    distill_of: str | None = None

    @property
    def kinds(self) -> frozenset[str]:
        """Every name the model type goes by: config `model_type` and GGUF architecture."""
        return frozenset(self.model_types) | frozenset(self.gguf_architectures)

    @property
    def traits(self) -> frozenset[str]:
        return frozenset(TRAIT_OF_KEY[k] for k in self.keys if k in TRAIT_OF_KEY)


@cache
def table() -> tuple[Family, ...]:
    """The shipped table, parsed and validated once."""
    return load(TABLE)


def load(path: Path) -> tuple[Family, ...]:
    """Read and validate a family table (safe YAML: no tags, no objects).

    Fails closed: a malformed entry is a `ConfigError`, not a silently thinner table.
    """
    try:
        # auditor's own table, never an artifact; still only the safe constructor, with
        # libyaml's parser when PyYAML has it (a quarter of the pure-Python one's time here).
        text = path.read_text(encoding="utf-8")
        safe = yaml.CSafeLoader(text) if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader(text)
        try:
            doc = safe.get_single_data()
        finally:
            safe.dispose()
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the family table: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("families"), list):
        raise ConfigError(f"{path}: expected a mapping with a `families` list")
    refs = doc.get("references") or {}
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        raise ConfigError(f"{path}: `references` must map keys to descriptions")
    families = tuple(_family(entry, refs, f"{path}: families[{i}]")
                     for i, entry in enumerate(doc["families"]))
    keys = [f.key for f in families]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{path}: duplicate family keys")
    for f in families:
        if f.distill_of is not None and f.distill_of not in keys:
            raise ConfigError(f"{path}: {f.key}: distill_of names unknown family {f.distill_of!r}")
    return families


def nearest(arch: ArchPrint | None, specials: Mapping[str, Any] | None = None,
            families: tuple[Family, ...] | None = None) -> list[tuple[Family, float]]:
    """Every family with its score in [0, 1], best first.

    `specials` is the tokenizer's `{"bos", "eos", "bos_id", "eos_id", "pad_id"}` (any may be
    missing). Each kind of evidence is scored only when both sides know it, and the scores
    are averaged by weight. A distilled family (`distill_of`) keeps its base's tokenizer and
    shapes, so without its teacher's special tokens it never outranks the base.
    """
    arch = arch or ArchPrint()
    ranked = []
    for family in table() if families is None else families:
        parts: dict[str, float] = {}
        spec = _specials_score(family, specials or {})
        if spec is not None:
            parts["specials"] = spec
        if arch.traits or family.traits:
            parts["traits"] = len(arch.traits & family.traits) / len(arch.traits | family.traits)
        if arch.kind and family.kinds:
            parts["kind"] = float(arch.kind in family.kinds)
        if arch.vocab and family.vocab_sizes:
            parts["vocab"] = max(similarity(ArchPrint(vocab=arch.vocab), ArchPrint(vocab=v))
                                 for v in family.vocab_sizes)
        if family.shapes and not arch.empty:
            parts["shape"] = max(similarity(_shape_only(arch), shape) for shape in family.shapes)
        weight = sum(EVIDENCE[k] for k in parts)
        score = sum(EVIDENCE[k] * v for k, v in parts.items()) / weight if weight else 0.0
        if family.distill_of is not None:
            score *= math.sqrt(spec if spec is not None else 0.5)
        ranked.append((family, round(score, 6)))
    ranked.sort(key=lambda pair: (-pair[1], pair[0].key))
    return ranked


def _specials_score(family: Family, specials: Mapping[str, Any]) -> float | None:
    """Agreement of the special tokens, in [0, 1]; None when nothing can be compared.

    Agreeing and contradicting tokens are summed (strings count double), so one shared id
    (Qwen's EOS is also R1-Distill-Qwen's) weighs less than a matching BOS string and id.
    """
    balance, compared = 0.0, False
    for name in (*SPECIAL_STRINGS, *SPECIAL_IDS):
        want, have = family.specials.get(name), specials.get(name)
        if want is None or have is None:
            continue
        compared = True
        weight = STRING_WEIGHT if name in SPECIAL_STRINGS else ID_WEIGHT
        balance += weight if _ids(want) & _ids(have) else -weight
    return 0.5 + 0.5 * math.tanh(balance / 2) if compared else None


def _ids(value: Any) -> set[Any]:
    return set(value) if isinstance(value, list | tuple | set | frozenset) else {value}


def _shape_only(arch: ArchPrint) -> ArchPrint:
    """The per-model shape fields of a print: kind, vocabulary and traits are scored apart."""
    return ArchPrint(**{name: getattr(arch, name) for name in SHAPE_FIELDS})


def _family(entry: Any, refs: Mapping[str, str], where: str) -> Family:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}")
    key = entry.get("key")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: `key` must be a non-empty string")
    where = f"{where} ({key})"
    sources = _strings(entry, "sources", where)
    if not sources:
        raise ConfigError(f"{where}: every family needs its sources")
    for source in sources:
        if not source.startswith("https://") and source not in refs:
            raise ConfigError(f"{where}: source {source!r} is neither a URL nor a reference")
    specials = entry.get("specials") or {}
    if not isinstance(specials, dict) or not all(
        (isinstance(v, str) if k in SPECIAL_STRINGS else _id_or_ids(v))
        for k, v in specials.items() if k in (*SPECIAL_STRINGS, *SPECIAL_IDS)
    ) or set(specials) - {*SPECIAL_STRINGS, *SPECIAL_IDS}:
        raise ConfigError(f"{where}: `specials` takes bos/eos strings and bos_id/eos_id/pad_id")
    vocab = entry.get("vocab_sizes") or []
    if not isinstance(vocab, list) or not all(_id_or_ids(v) and isinstance(v, int) for v in vocab):
        raise ConfigError(f"{where}: `vocab_sizes` must be a list of integers")
    keys = _strings(entry, "keys", where)
    label = entry.get("label")
    distill = entry.get("distill_of")
    tokenizer = entry.get("tokenizer") or {}
    if not isinstance(label, str) or not (distill is None or isinstance(distill, str)) \
            or not isinstance(tokenizer, dict):
        raise ConfigError(f"{where}: `label`, `distill_of` and `tokenizer` are malformed")
    publishers = _strings(entry, "publishers", where)
    if not publishers:
        raise ConfigError(f"{where}: `publishers` names no Hub organisation")
    return Family(
        key=key, label=label, publishers=publishers, sources=sources,
        model_types=_strings(entry, "model_types", where),
        gguf_architectures=_strings(entry, "gguf_architectures", where),
        architectures=_strings(entry, "architectures", where),
        vocab_sizes=tuple(vocab), specials=dict(specials), keys=keys,
        shapes=tuple(_shape(s, where) for s in entry.get("shapes") or []),
        tokenizer=dict(tokenizer), distill_of=distill,
    )


def _shape(value: Any, where: str) -> ArchPrint:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{where}: each shape is a mapping with a name")
    numbers = {k: v for k, v in value.items() if k != "name"}
    if set(numbers) - set(SHAPE_FIELDS) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in numbers.values()
    ):
        raise ConfigError(f"{where}: shape {value['name']!r}: positive numbers of {SHAPE_FIELDS}")
    return ArchPrint(**{k: (float(v) if k == "rope_theta" else int(v)) for k, v in numbers.items()})


def _strings(entry: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = entry.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: `{name}` must be a list of strings")
    return tuple(value)


def _id_or_ids(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                               for v in items)
