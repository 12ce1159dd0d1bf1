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
# An output head tied to the token embedding holds the same token rows, so a checkpoint that
# stores its tied embedding only under the head's name (`tie_word_embeddings: true` and no
# `embed_tokens`) is sampled there; only when the file has no embedding tensor, because an
# untied head's rows are other weights.
TIED_NAMES = ("lm_head.weight", "model.lm_head.weight", "language_model.lm_head.weight")
TIED_SUFFIXES = (".lm_head.weight",)
GGUF_TIED = "output.weight"
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
# The dtypes `sampling.LAYOUTS` dequantises (safetensors and ggml names), so a format module
# can tell a tensor it cannot read (a GGUF IQ2_XS embedding) without loading numpy.
DEQUANTISED = frozenset({
    "F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2",
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
})
# Block-scale tensors next to an FP8 weight `<name>`: DeepSeek's `weight_scale_inv`, others'.
SCALE_SUFFIXES = ("_scale_inv", "_scale")


def embedding_name(names: list[str]) -> str | None:
    """The token-embedding tensor among a checkpoint's tensor names, if there is one; else a
    tied output head (`TIED_NAMES`), if there is one."""
    return (_named(names, EMBEDDING_NAMES, EMBEDDING_SUFFIXES)
            or _named(names, TIED_NAMES, TIED_SUFFIXES))


def gguf_embedding_name(names: list[str]) -> str | None:
    """`token_embd.weight`, else a tied `output.weight`, if the GGUF has either."""
    present = set(names)
    return next((n for n in (GGUF_EMBEDDING, GGUF_TIED) if n in present), None)


def tied(name: str) -> bool:
    """Whether a sampled tensor is an output head standing in for the embedding: its sample
    says so (`"tied": true`), so a model with a real embedding elsewhere (an untied head in
    another shard) is measured by that one first."""
    return name in TIED_NAMES or name.endswith(TIED_SUFFIXES) or name == GGUF_TIED


def _named(names: list[str], exact: tuple[str, ...], suffixes: tuple[str, ...]) -> str | None:
    present = set(names)
    for name in exact:
        if name in present:
            return name
    found = sorted(n for n in names if n.endswith(suffixes))
    return found[0] if found else None


def layer_name(names: list[str]) -> str | None:
    """The first layer's query projection among a checkpoint's tensor names, if there is one."""
    return _named(names, LAYER_NAMES, LAYER_SUFFIXES)


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
