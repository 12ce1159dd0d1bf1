"""Architecture fingerprint: the shape of a model, whatever it is called.

A name and a card are free text; the hidden size, the head counts, the
intermediate size, the vocabulary and the expert layout are what the weights
were trained with, and a copy that is renamed, re-carded or converted to GGUF
keeps them. The print is built from the facts the format modules already put
on each file: `config.json` keys (`formats.code.json_config`), GGUF
`<arch>.*` hyperparameters (`hparams`, `formats.weights.gguf`) and the
safetensors header's tensor names and shapes (`tensor_pattern`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import PurePosixPath
from typing import Any, Protocol

# Config keys that only some families have: their presence says more than a shared shape.
# Each maps to the trait it shows, so a GGUF file (other key names) shows the same trait.
# `sliding_window` is not one: Qwen2 configs set it with `use_sliding_window: false`.
TRAIT_OF_KEY: dict[str, str] = {
    "n_routed_experts": "moe", "num_experts": "moe", "num_local_experts": "moe",
    "kv_lora_rank": "mla", "q_lora_rank": "mla",
    "logit_scale": "logit_scale",
    "query_pre_attn_scalar": "query_pre_attn_scalar",
    "rope_ratio": "rope_ratio", "multi_query_group_num": "multi_query_group_num",
    "padded_vocab_size": "padded_vocab_size",
    "rotary_dim": "rotary_dim", "layernorm_full_attention_alpha": "lightning_attention",
}
# Weights of the compared fields. Per-layer shapes outweigh the layer count, which pruning
# and upscaling change; rope_theta is edited less often than rope_scaling (not compared).
WEIGHTS: dict[str, float] = {
    "kind": 1.0, "hidden": 3.0, "intermediate": 2.0, "heads": 2.0, "kv_heads": 1.5,
    "vocab": 2.0, "rope_theta": 1.0, "layers": 1.0, "experts": 2.0, "experts_per_tok": 1.0,
    "expert_intermediate": 1.5, "kv_lora_rank": 1.0, "traits": 1.5, "pattern": 1.0,
}
# Vocabularies that differ by a few appended tokens (fine-tunes pad 1 to a few hundred) are
# the same vocabulary; the similarity falls to 0 at this distance.
VOCAB_SLACK = 512
CONFIG_NAME = "config.json"


class HasFacts(Protocol):
    """A scanned file as the fingerprint room sees it (a `model.FileReport`)."""

    path: str
    facts: dict[str, Any]


@dataclass(frozen=True)
class ArchPrint:
    """The shape of a model. Every field is optional: each source knows only part of it."""

    kind: str | None = None  # config model_type, or the GGUF general.architecture
    hidden: int | None = None
    layers: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    intermediate: int | None = None
    vocab: int | None = None
    rope_theta: float | None = None
    experts: int | None = None
    experts_per_tok: int | None = None
    expert_intermediate: int | None = None
    kv_lora_rank: int | None = None
    traits: frozenset[str] = frozenset()
    pattern: str | None = None  # sha256 of the folded tensor-name/shape pattern

    @classmethod
    def from_config(cls, doc: Mapping[str, Any]) -> ArchPrint:
        """From a `config.json` mapping (or its facts). A multimodal config's `text_config`
        is the language model, the part a base model's lineage is about."""
        text = doc.get("text_config")
        if isinstance(text, Mapping) and _int(text.get("hidden_size")) is not None:
            doc = {**{k: v for k, v in doc.items() if k != "text_config"}, **text}
        heads = _int(doc.get("num_attention_heads"))
        kv = _int(doc.get("num_key_value_heads")) or _int(doc.get("multi_query_group_num"))
        return cls(
            kind=_str(doc.get("model_type")),
            hidden=_int(doc.get("hidden_size")),
            layers=_int(doc.get("num_hidden_layers")) or _int(doc.get("num_layers")),
            heads=heads,
            kv_heads=kv or heads,  # no KV key: every head has its own keys and values
            intermediate=_int(doc.get("intermediate_size")) or _int(doc.get("ffn_hidden_size")),
            vocab=_int(doc.get("vocab_size")) or _int(doc.get("padded_vocab_size")),
            rope_theta=_float(doc.get("rope_theta")),
            experts=(_int(doc.get("n_routed_experts")) or _int(doc.get("num_experts"))
                     or _int(doc.get("num_local_experts"))),
            experts_per_tok=_int(doc.get("num_experts_per_tok")),
            expert_intermediate=_int(doc.get("moe_intermediate_size")),
            kv_lora_rank=_int(doc.get("kv_lora_rank")),
            traits=frozenset(trait for key, trait in TRAIT_OF_KEY.items()
                             if _present(doc.get(key))),
        )

    @classmethod
    def from_gguf(cls, facts: Mapping[str, Any]) -> ArchPrint:
        """From a GGUF file's facts: `architecture` and the `hparams` the format module kept.

        llama.cpp writes a model without KV heads with `head_count_kv` = `head_count`, and
        the vocabulary size, when the architecture has no `vocab_size` key, is the length of
        the token list (the converter pads it to the config's `vocab_size`).
        """
        hp = facts.get("hparams")
        hp = hp if isinstance(hp, Mapping) else {}
        vocab = facts.get("vocab")
        token_count = _int(vocab.get("size")) if isinstance(vocab, Mapping) else None
        heads = _int(hp.get("attention.head_count"))
        experts = _int(hp.get("expert_count"))
        kv_lora = _int(hp.get("attention.kv_lora_rank"))
        traits = {"moe"} if experts else set()
        if kv_lora:
            traits.add("mla")
        return cls(
            kind=_str(facts.get("architecture")),
            hidden=_int(hp.get("embedding_length")),
            layers=_int(hp.get("block_count")),
            heads=heads,
            kv_heads=_int(hp.get("attention.head_count_kv")) or heads,
            intermediate=_int(hp.get("feed_forward_length")),
            vocab=_int(hp.get("vocab_size")) or token_count,
            rope_theta=_float(hp.get("rope.freq_base")),
            experts=experts,
            experts_per_tok=_int(hp.get("expert_used_count")),
            expert_intermediate=_int(hp.get("expert_feed_forward_length")),
            kv_lora_rank=kv_lora,
            traits=frozenset(traits),
        )

    @classmethod
    def from_pattern(cls, patterns: Iterable[Mapping[str, Any]]) -> ArchPrint:
        """From the `tensor_pattern` facts of a checkpoint's safetensors shards.

        The embedding matrix gives the vocabulary and hidden size, the numbered block stack
        its depth (the highest index over all shards); the digest covers the folded names
        and shapes, so two checkpoints with the same layout have the same digest.
        """
        shapes: dict[str, list[Any]] = {}
        blocks: dict[str, int] = {}
        for pattern in patterns:
            for name, found in _mapping(pattern.get("shapes")).items():
                known = shapes.setdefault(name, [])
                known.extend(s for s in found if isinstance(s, list) and s not in known)
            for stack, count in _mapping(pattern.get("blocks")).items():
                if (n := _int(count)) is not None:
                    blocks[stack] = max(blocks.get(stack, 0), n)
        if not shapes:
            return cls()
        embed = next((found[0] for name, found in sorted(shapes.items())
                      if name.endswith(("embed_tokens.weight", "wte.weight",
                                        "word_embeddings.weight"))
                      and found and len(found[0]) == 2), None)
        stacks = [n for stack, n in blocks.items() if not ("vision" in stack or "visual" in stack)]
        canonical = json.dumps({k: sorted(v) for k, v in sorted(shapes.items())},
                               separators=(",", ":"))
        return cls(
            vocab=_int(embed[0]) if embed else None,
            hidden=_int(embed[1]) if embed else None,
            layers=max(stacks) if stacks else None,
            pattern=hashlib.sha256(canonical.encode()).hexdigest(),
        )

    @classmethod
    def from_files(cls, files: Iterable[HasFacts]) -> ArchPrint | None:
        """One print from a model's scanned files: `config.json` first, then GGUF metadata,
        then the safetensors headers, each filling what the one before did not know.
        None when no file says anything about the shape."""
        configs, ggufs, patterns = [], [], []
        for f in files:
            facts = f.facts if isinstance(f.facts, Mapping) else {}
            if PurePosixPath(f.path).name == CONFIG_NAME:
                configs.append(cls.from_config(facts))
            if "hparams" in facts and "architecture" in facts:
                ggufs.append(cls.from_gguf(facts))
            if isinstance(facts.get("tensor_pattern"), Mapping):
                patterns.append(facts["tensor_pattern"])
        merged = cls()
        for part in (*configs, *ggufs, cls.from_pattern(patterns)):
            merged = merged.filled_from(part)
        return None if merged.empty else merged

    def filled_from(self, other: ArchPrint) -> ArchPrint:
        """This print with its unknown fields taken from `other`."""
        values = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            values[f.name] = getattr(other, f.name) if mine in (None, frozenset()) else mine
        return ArchPrint(**values)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) in (None, frozenset()) for f in fields(self))


def similarity(a: ArchPrint, b: ArchPrint) -> float:
    """How alike two shapes are, in [0, 1]: the weighted share of the fields both know that
    agree. A few padded vocabulary tokens and a changed layer count (pruning, upscaling)
    cost little; a different hidden size or head layout costs a lot. 0.0 when the two
    share no known field."""
    total = score = 0.0
    mla = "mla" in a.traits or "mla" in b.traits  # llama.cpp writes MLA KV heads as 1
    for name, weight in WEIGHTS.items():
        if name == "kv_heads" and mla:
            continue
        x, y = getattr(a, name), getattr(b, name)
        if name == "traits":
            if not (x or y):
                continue
            s = len(x & y) / len(x | y)
        elif x is None or y is None:
            continue
        elif name == "vocab":
            s = max(0.0, 1.0 - abs(x - y) / VOCAB_SLACK)
        elif name == "layers":
            s = min(x, y) / max(x, y)
        elif name == "rope_theta":
            s = float(math.isclose(x, y, rel_tol=1e-6))
        else:
            s = float(x == y)
        total += weight
        score += weight * s
    return score / total if total else 0.0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _present(value: Any) -> bool:
    """A distinctive key counts when it is set: `sliding_window: null` is no sliding window."""
    return value is not None and value is not False and value != 0


def _int(value: Any) -> int | None:
    """A positive integer; per-layer lists (GGUF head counts) give their largest value."""
    if isinstance(value, list):
        ints = [v for v in (_int(item) for item in value) if v is not None]
        return max(ints) if ints else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if value > 0 else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
