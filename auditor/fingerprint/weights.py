"""The weight fingerprint: sampled rows of two matrices, compared by direction, not by bytes.

A format module records `embedding_sample` (the token embedding) and
`layer_sample` (the first layer's query projection; see
`auditor.formats._lib.sampling`): fixed row ids, each row dequantised and
projected to 64 dims with a matrix seeded by the column count. A model has one
`WeightPrint` per sampled matrix; the layer's is there because an embedding
can be permuted, re-initialised or swapped with its tokenizer while the layers
keep the base's weights. Two checkpoints of one base share ids and hidden
size, so their rows can be compared one by one; cosines survive a dtype change,
quantisation (noise on each value) and fine-tuning (small updates), and are
near 0 between independently trained matrices. A different hidden size, or
too few shared ids, is no measurement at all (None), never a low score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.formats._lib import sampling

MIN_SHARED = 32  # one run: fewer shared rows measure nothing


@dataclass(frozen=True, eq=False)
class WeightPrint:
    tensor: str
    vocab: int
    hidden: int
    dtype: str
    ids: tuple[int, ...]
    sketch: np.ndarray  # float32 [len(ids), 64]; unit rows, zero rows for all-zero embeddings

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any],
                   fact: str = "embedding_sample") -> WeightPrint | None:
        """From a file's facts (`fact`: `embedding_sample` or `layer_sample`); None when it
        holds no (well-formed) sample."""
        sample = facts.get(fact)
        return cls.from_sample(sample) if isinstance(sample, Mapping) else None

    @classmethod
    def from_sample(cls, sample: Mapping[str, Any]) -> WeightPrint | None:
        """From an `embedding_sample` or `layer_sample` fact (a report or a reference store
        may hold one); a malformed one is no fingerprint rather than a wrong one.
        `vocab` is the matrix's row count, `hidden` its column count."""
        ids, text = sample.get("ids"), sample.get("sketch")
        vocab, hidden = sample.get("vocab"), sample.get("hidden")
        if not (isinstance(ids, list) and all(_count(i) for i in ids) and isinstance(text, str)
                and _count(vocab) and _count(hidden) and len(set(ids)) == len(ids)):
            return None
        sketch = sampling.decode_sketch(text, len(ids))
        if sketch is None or not np.isfinite(sketch).all():
            return None
        return cls(str(sample.get("tensor", "")), vocab, hidden, str(sample.get("dtype", "")),
                   tuple(ids), sketch)


def similarity(a: WeightPrint, b: WeightPrint) -> float | None:
    """Mean cosine of the rows both sampled (in [-1, 1]); None when not comparable.

    Rows that are zero in either print (unused tokens) carry no direction and
    are left out; fewer than `MIN_SHARED` rows left, or a different hidden
    size, is no measurement.
    """
    if a.hidden != b.hidden:
        return None
    where_b = {i: k for k, i in enumerate(b.ids)}
    pairs = [(k, where_b[i]) for k, i in enumerate(a.ids) if i in where_b]
    if len(pairs) < MIN_SHARED:
        return None
    rows_a = a.sketch[[k for k, _ in pairs]].astype(np.float64)
    rows_b = b.sketch[[k for _, k in pairs]].astype(np.float64)
    norms = np.linalg.norm(rows_a, axis=1) * np.linalg.norm(rows_b, axis=1)
    live = norms > 0
    if int(live.sum()) < MIN_SHARED:
        return None
    cosines = (rows_a[live] * rows_b[live]).sum(axis=1) / norms[live]
    return float(np.clip(cosines.mean(), -1.0, 1.0))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
