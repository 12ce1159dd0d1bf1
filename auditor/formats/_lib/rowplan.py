"""Which rows of a token embedding the weight fingerprint samples, and where it is: no numpy.

Kept apart from `sampling` (which needs numpy) so a format module decides
whether a file has anything to sample before paying for numpy's import: a
tiny model whose vocabulary ends before the first sampled row never loads it.
"""

from __future__ import annotations

RUN = 32
RUN_STARTS = tuple(1024 + 2048 * k for k in range(8))  # 1024, 3072, ... 15360
DIMS = 64
MAX_SAMPLE_BYTES = 16 * 1024 * 1024  # per file; rows wider than this stay unsampled
COALESCE_GAP = 64 * 1024  # ranges this close are read as one (scale rows)
READ_ALIGN = 64 * 1024  # reads are whole buffer lengths: one range request each, remotely

# Token-embedding tensor names, most specific first (safetensors checkpoints).
EMBEDDING_NAMES = (
    "model.embed_tokens.weight", "model.language_model.embed_tokens.weight",
    "language_model.model.embed_tokens.weight", "model.text_model.embed_tokens.weight",
    "transformer.wte.weight", "tok_embeddings.weight", "model.tok_embeddings.weight",
    "transformer.word_embeddings.weight", "transformer.embedding.word_embeddings.weight",
    "gpt_neox.embed_in.weight", "model.decoder.embed_tokens.weight",
    "backbone.embeddings.weight", "transformer.embd.wte.weight", "embed_tokens.weight",
)
# Any other name ending so (a multimodal wrapper's text model) when none of the above is there.
EMBEDDING_SUFFIXES = (".embed_tokens.weight", ".tok_embeddings.weight", ".wte.weight",
                      ".word_embeddings.weight", ".embed_in.weight")
GGUF_EMBEDDING = "token_embd.weight"
# Block-scale tensors next to an FP8 weight `<name>`: DeepSeek's `weight_scale_inv`, others'.
SCALE_SUFFIXES = ("_scale_inv", "_scale")


def embedding_name(names: list[str]) -> str | None:
    """The token-embedding tensor among a checkpoint's tensor names, if there is one."""
    present = set(names)
    for name in EMBEDDING_NAMES:
        if name in present:
            return name
    found = sorted(n for n in names if n.endswith(EMBEDDING_SUFFIXES))
    return found[0] if found else None


def sampled(rows: int) -> bool:
    """Whether an embedding of `rows` tokens holds any sampled row."""
    return rows > RUN_STARTS[0]
