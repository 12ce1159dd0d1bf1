"""Which rows the weight fingerprint samples, and of which tensors: no numpy.

Two tensors are sampled with one plan: the token embedding (rows are token
ids) and the first decoder layer's attention query projection (rows are its
output features). The layer is there because the embedding is the easiest
part of a model to disguise: permuting its rows (re-numbering the tokens),
re-initialising it or swapping the tokenizer changes it, while the
transformer layers keep the base's weights.

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
# The first decoder layer's attention query projection ([out features, hidden]).
LAYER_NAMES = (
    "model.layers.0.self_attn.q_proj.weight",
    "model.language_model.layers.0.self_attn.q_proj.weight",
    "language_model.model.layers.0.self_attn.q_proj.weight",
    "model.text_model.layers.0.self_attn.q_proj.weight",
)
LAYER_SUFFIXES = (".layers.0.self_attn.q_proj.weight",)
GGUF_LAYER = "blk.0.attn_q.weight"
# GGUF architectures whose converter (llama.cpp convert_hf_to_gguf.py, `LlamaModel.permute`)
# interleaves the two rotary halves of each query head: their rows are put back in
# Hugging Face order before they are compared.
GGUF_PERMUTED_Q = frozenset({"llama"})
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


def layer_name(names: list[str]) -> str | None:
    """The first layer's query projection among a checkpoint's tensor names, if there is one."""
    present = set(names)
    for name in LAYER_NAMES:
        if name in present:
            return name
    found = sorted(n for n in names if n.endswith(LAYER_SUFFIXES))
    return found[0] if found else None


def runs(rows: int, from_zero: bool = False) -> list[tuple[int, int]]:
    """(first row, count) of each sampled run that a matrix of `rows` rows reaches.

    `from_zero`: a matrix with no row at the first run start (a small model's
    query projection: hidden 896) has the runs moved down to start at row 0,
    so it is sampled all the same. Not for embeddings: a vocabulary that small
    is a toy's, and its sample could match nothing.
    """
    shift = RUN_STARTS[0] if from_zero and rows <= RUN_STARTS[0] else 0
    return [(first - shift, min(RUN, rows - first + shift))
            for first in RUN_STARTS if first - shift < rows]


def sampled(rows: int, from_zero: bool = False) -> bool:
    """Whether a matrix of `rows` rows yields a sample worth comparing (see `runs`)."""
    return sum(count for _, count in runs(rows, from_zero)) >= (RUN if from_zero else 1)
