"""The tokenizer fingerprint: a vocabulary's digest and MinHash sketch, compared.

The format modules reduce every vocabulary they read (tokenizer.json,
SentencePiece, GGUF, tiktoken) to raw token bytes and put `facts["vocab"]`
on the file (`auditor.formats._lib.vocab`); this reads those facts. An equal
digest is the same (id, token) table, whatever format carried it; otherwise
the sketches estimate the Jaccard similarity of the two token sets, which a
fine-tune that adds a few tokens barely moves and an unrelated tokenizer
leaves near zero.

What the sketch cannot resist: anyone who knows the hash can add a few
hundred tokens chosen to fill the sketch and pull the estimate down; the
weight fingerprint, not this one, is the measurement such a model cannot
shed (the added tokens change nothing in the embeddings of the others).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenizerPrint:
    size: int
    digest: str
    minhash: tuple[int, ...]
    kind: str
    bos: str | None = None
    eos: str | None = None

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> TokenizerPrint | None:
        """From a file's facts (the `vocab` entry) or the `vocab` entry itself; None when absent
        or malformed (facts come from JSON reports too)."""
        found = facts.get("vocab", facts)
        if not isinstance(found, Mapping):
            return None
        size, digest, minhash = found.get("size"), found.get("digest"), found.get("minhash")
        if (type(size) is not int or size <= 0 or not isinstance(digest, str)
                or not isinstance(minhash, list | tuple)
                or not all(type(v) is int and 0 <= v < 1 << 32 for v in minhash)):
            return None
        specials = found.get("specials")
        specials = specials if isinstance(specials, Mapping) else {}
        bos, eos = specials.get("bos"), specials.get("eos")
        return cls(size, digest, tuple(sorted(minhash)), str(found.get("kind", "")),
                   bos if isinstance(bos, str) else None, eos if isinstance(eos, str) else None)


def similarity(a: TokenizerPrint, b: TokenizerPrint) -> float:
    """1.0 for the same table; else the estimated Jaccard similarity of the token sets.

    Different digests never score 1.0, and never above the size ratio (a set
    of n tokens shares at most n with a bigger one).
    """
    if a.digest == b.digest:
        return 1.0
    from auditor.formats._lib import vocab  # numpy: only when two prints are compared

    estimate = vocab.jaccard(a.minhash, b.minhash)
    bound = min(a.size, b.size) / max(a.size, b.size)
    return min(estimate, bound, 1.0 - 1.0 / (max(a.size, b.size) + 1))
