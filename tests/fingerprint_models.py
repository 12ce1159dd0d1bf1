"""A generated evaluation set for measured lineage: base models and what is made of them.

Every model is a folder a person could publish: `config.json`, weights written
by the `safetensors` or `gguf` package (FP8 block scales and Q4_K blocks built
with numpy, as `tests/test_fingerprint_weights.py` builds them), a tokenizer in
a real file format (tokenizer.json by the `tokenizers` package, SentencePiece
tokenizer.model as protobuf, the vocabulary embedded in GGUF, a `.tiktoken`
rank file) and a model card. Weights are random; what derives from a base is
the base plus small changes, what does not is other random weights, even with
the same shapes and the same tokenizer.

`evaluation_set(root, bases)` writes the whole set and says, for each variant,
which base it really derives from (`Case.truth`), whatever its name and card
claim. `tests/test_fingerprint_eval.py` judges it at small shapes and
`bench/bench_fingerprint.py` at real ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.test_fingerprint_tokenizer import byte_level, random_tokens, tiktoken_file
from tests.test_fingerprint_weights import fp8_with_block_scales, quantize_q4_k
from tests.test_tokenizer_files import piece, sentencepiece_model

EMBED = "model.embed_tokens.weight"
SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>")
# What a distillation renames its specials to (DeepSeek's distills use full-width bars).
DISTILL_SPECIALS = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>")
WEIGHT_STD = 0.02  # every tensor's scale; fine-tune noise is a fraction of it


@dataclass(frozen=True)
class Base:
    """A base model to generate: its name, shape, tokenizer format and seeds.

    `tokenizer` is how the base ships its vocabulary: "bpe" (tokenizer.json,
    byte-level), "spm" (tokenizer.model), "gguf" (in the GGUF file itself) or
    "tiktoken" (tokenizer.tiktoken). Bases with the same `token_seed` and
    tokenizer share one vocabulary (two labs on one tokenizer).
    """

    name: str
    vocab: int
    hidden: int
    tokenizer: str
    seed: int
    token_seed: int


@dataclass(frozen=True)
class Case:
    """One generated model folder and the base it really derives from (None: unrelated)."""

    name: str
    folder: Path
    kind: str
    truth: str | None


# -- weights -----------------------------------------------------------------------------------

def embedding(seed: int, vocab: int, hidden: int) -> np.ndarray:
    """Random float32 [vocab, hidden] weights, std WEIGHT_STD: one seed, one matrix."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((vocab, hidden), dtype=np.float32) * np.float32(WEIGHT_STD)


def tune(weights: np.ndarray, noise: float, seed: int, added: int = 0) -> np.ndarray:
    """A fine-tune: `weights` plus Gaussian updates of `noise` x their std, and `added` new
    rows (new tokens) at the end."""
    rng = np.random.default_rng(seed)
    out = weights + rng.standard_normal(weights.shape, dtype=np.float32) * np.float32(
        noise * WEIGHT_STD)
    if added:
        out = np.concatenate([out, embedding(seed + 1, added, weights.shape[1])])
    return out


# -- tokenizers --------------------------------------------------------------------------------

def vocabulary(base: Base) -> list[bytes]:
    """The base's ordinary tokens as raw bytes (its specials come on top, at the end)."""
    return list(_tokens(base.vocab - len(SPECIALS), base.token_seed))


@functools.lru_cache(maxsize=8)
def _tokens(n: int, seed: int) -> tuple[bytes, ...]:
    return tuple(random_tokens(n, seed=seed))


def spm_pieces(tokens: list[bytes]) -> list[str]:
    """SentencePiece pieces for `tokens`: bytes as `<0xNN>`, spaces as `▁`."""
    out = [f"<0x{t[0]:02X}>" if len(t) == 1 else t.decode("utf-8", "replace").replace(" ", "▁")
           for t in tokens]
    seen: set[str] = set()
    for i, p in enumerate(out):  # a lossy decode may repeat a piece: keep pieces unique
        if p in seen:
            out[i] = f"{p}#{i}"
        seen.add(out[i])
    return out


def write_tokenizer(folder: Path, kind: str, tokens: list[bytes],
                    specials: tuple[str, ...] = SPECIALS) -> None:
    """The vocabulary in `kind`'s file format ("gguf": none here, the GGUF file holds it; a
    safetensors copy of a GGUF-native base carries tokenizer.json).

    Written once per vocabulary into a folder beside the models, then copied: a model set
    repeats its base's tokenizer files byte for byte.
    """
    key = hashlib.sha256(repr((kind, specials, len(tokens), tokens[-50:])).encode()).hexdigest()
    done = folder.parent / ".tokenizers" / key[:16]
    if not done.is_dir():
        draft = done.with_suffix(".draft")
        draft.mkdir(parents=True, exist_ok=True)
        _write_tokenizer(draft, kind, tokens, specials)
        draft.rename(done)
    for path in done.iterdir():
        shutil.copyfile(path, folder / path.name)


def _write_tokenizer(folder: Path, kind: str, tokens: list[bytes],
                     specials: tuple[str, ...]) -> None:
    if kind in ("bpe", "gguf"):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        tok = Tokenizer(models.BPE({byte_level(t): i for i, t in enumerate(tokens)}, []))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens(list(specials))
        tok.save(str(folder / "tokenizer.json"))
    elif kind == "spm":
        pieces = [piece(p, -float(i), 6 if p.startswith("<0x") else None)
                  for i, p in enumerate(spm_pieces(tokens))]
        pieces += [piece(s, 0.0, 3) for s in specials]
        (folder / "tokenizer.model").write_bytes(sentencepiece_model(pieces))
    elif kind == "tiktoken":
        (folder / "tokenizer.tiktoken").write_bytes(tiktoken_file(tokens))
    else:
        raise ValueError(kind)
    config = {"bos_token": specials[0], "eos_token": specials[1],
              "model_max_length": 8192}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def gguf_tokens(kind: str, tokens: list[bytes], specials: tuple[str, ...]) -> tuple[str, list[str]]:
    """(tokenizer.ggml.model, token strings) as llama.cpp's converter writes them."""
    if kind == "spm":
        return "llama", [*spm_pieces(tokens), *specials]
    return "gpt2", [*(byte_level(t) for t in tokens), *specials]


# -- model folders -----------------------------------------------------------------------------

def config(base: Base, vocab: int, *, name: str, dtype: str = "bfloat16") -> dict:
    """A Llama-style config.json for `base`'s shape."""
    heads = base.hidden // 64
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "_name_or_path": name,
            "hidden_size": base.hidden, "intermediate_size": base.hidden * 4,
            "num_hidden_layers": 2, "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 2), "vocab_size": vocab,
            "rope_theta": 500000.0, "max_position_embeddings": 8192,
            "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "torch_dtype": dtype}


def card(name: str, base_model: str | None, relation: str = "finetune") -> str:
    """A model card whose front matter claims `base_model` (None: presents itself as original)."""
    head = ["---", "license: apache-2.0", "library_name: transformers"]
    if base_model:
        head += [f"base_model: {base_model}", f"base_model_relation: {relation}"]
    return "\n".join([*head, "---", f"# {name}", "", "A model.", ""])


def layers(hidden: int, seed: int) -> dict[str, np.ndarray]:
    """A few small tensors beside the embedding, so the file has a model's tensor pattern."""
    rng = np.random.default_rng(seed)
    return {"model.norm.weight": np.ones(hidden, np.float32),
            "model.layers.0.input_layernorm.weight": np.ones(hidden, np.float32),
            "model.layers.0.self_attn.q_proj.weight":
                (rng.standard_normal((hidden, hidden), dtype=np.float32) * WEIGHT_STD)}


def safetensors_model(folder: Path, base: Base, weights: np.ndarray, *, name: str,
                      tokens: list[bytes], specials: tuple[str, ...] = SPECIALS,
                      dtype: str = "BF16", claims: str | None = None,
                      tokenizer: str | None = None, layer_seed: int | None = None) -> Path:
    """A Hugging Face style folder: safetensors weights in `dtype` (F32, F16, BF16 or F8_E4M3
    with 128x128 `weight_scale_inv` blocks), config, tokenizer and card. The layers are the
    base's unless `layer_seed` makes other ones."""
    import ml_dtypes
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    tensors = layers(base.hidden, base.seed + 7 if layer_seed is None else layer_seed)
    if dtype == "F8_E4M3":
        q, scale_inv = fp8_with_block_scales(weights)
        tensors |= {EMBED: q, EMBED + "_scale_inv": scale_inv}
    else:
        kind = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}[dtype]
        tensors = {k: v.astype(kind) for k, v in tensors.items()} | {EMBED: weights.astype(kind)}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config(base, len(weights), name=name)))
    write_tokenizer(folder, tokenizer or base.tokenizer, tokens, specials)
    (folder / "README.md").write_text(card(name, claims))
    return folder


def gguf_model(folder: Path, base: Base, weights: np.ndarray, *, name: str,
               tokens: list[bytes], qtype: str, claims: str | None = None) -> Path:
    """A llama.cpp style folder: one GGUF with `token_embd.weight` in `qtype` (F16, Q8_0 or
    Q4_K) and the vocabulary in `tokenizer.ggml.*`."""
    import gguf

    folder.mkdir(parents=True)
    kind = gguf.GGMLQuantizationType[qtype]
    if qtype == "Q4_K":
        data = quantize_q4_k(weights)
    elif qtype == "F16":
        data = weights.astype(np.float16)
    else:
        data = gguf.quants.quantize(weights, kind)
    writer = gguf.GGUFWriter(str(folder / "model.gguf"), "llama")
    hparams(writer, base, len(weights), name)
    model, strings = gguf_tokens(base.tokenizer, tokens, SPECIALS)
    writer.add_tokenizer_model(model)
    writer.add_token_list(strings)
    writer.add_bos_token_id(len(tokens))
    writer.add_eos_token_id(len(tokens) + 1)
    writer.add_tensor("token_embd.weight", data, raw_dtype=kind)
    writer.add_tensor("output_norm.weight", np.ones(base.hidden, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (folder / "README.md").write_text(card(name, claims, "quantized"))
    return folder


def hparams(writer, base: Base, vocab: int, name: str) -> None:
    """The `llama.*` metadata llama.cpp's converter writes for `base`'s shape."""
    heads = base.hidden // 64
    writer.add_name(name.split("/")[-1])
    writer.add_context_length(8192)
    writer.add_embedding_length(base.hidden)
    writer.add_block_count(2)
    writer.add_feed_forward_length(base.hidden * 4)
    writer.add_head_count(heads)
    writer.add_head_count_kv(max(1, heads // 2))
    writer.add_rope_freq_base(500000.0)
    writer.add_vocab_size(vocab)


# -- the evaluation set ------------------------------------------------------------------------

NEW_TOKENS = [b"<tool_call>", b"</tool_call>", b"<think>"]  # what a fine-tune adds
KINDS = ("fine-tune", "fine-tune-tokens", "bf16", "f16", "gguf-q8_0", "gguf-q4_k",
         "fine-tune-q4_k", "fp8-e4m3", "renamed", "distill", "unrelated")


def base_model(root: Path, base: Base, weights: np.ndarray, tokens: list[bytes]) -> Path:
    """The base itself as its publisher ships it (GGUF-native bases as an F16 GGUF)."""
    folder = root / "bases" / base.name.replace("/", "--")
    if base.tokenizer == "gguf":
        return gguf_model(folder, base, weights, name=base.name, tokens=tokens, qtype="F16")
    return safetensors_model(folder, base, weights, name=base.name, tokens=tokens)


def variants(root: Path, base: Base, other: Base, weights: np.ndarray,
             tokens: list[bytes], kinds: tuple[str, ...] = KINDS) -> list[Case]:
    """What is made of `base` (and one unrelated model like it). `other` is the base a
    re-carded copy claims and a distillation names as its teacher."""
    short = base.name.split("/")[1]
    out: list[Case] = []

    def make(kind: str, truth: str | None, build: Callable[[Path, str], Path],
             name: str | None = None) -> None:
        name = name or f"community/{short}-{kind}"
        out.append(Case(name, build(root / "variants" / name.replace("/", "--"), name),
                        kind, truth))

    seed = base.seed * 100
    st = {"tokens": tokens, "tokenizer": "bpe" if base.tokenizer == "gguf" else None}
    for kind in kinds:
        if kind == "fine-tune":
            make(kind, base.name, lambda f, n: safetensors_model(
                f, base, tune(weights, 0.05, seed + 1), name=n, claims=base.name, **st))
        elif kind == "fine-tune-tokens":
            make(kind, base.name, lambda f, n, extra=NEW_TOKENS: safetensors_model(
                f, base, tune(weights, 0.2, seed + 2, added=len(extra)), name=n,
                claims=base.name, **(st | {"tokens": tokens + extra})))
        elif kind in ("bf16", "f16"):
            make(kind, base.name, lambda f, n, k=kind: safetensors_model(
                f, base, weights, name=n, dtype=k.upper(), claims=base.name, **st))
        elif kind in ("gguf-q8_0", "gguf-q4_k"):
            make(kind, base.name, lambda f, n, k=kind: gguf_model(
                f, base, weights, name=n, tokens=tokens, qtype=k[5:].upper(), claims=base.name))
        elif kind == "fine-tune-q4_k":
            make(kind, base.name, lambda f, n: gguf_model(
                f, base, tune(weights, 0.1, seed + 3), name=n, tokens=tokens, qtype="Q4_K"))
        elif kind == "fp8-e4m3":
            make(kind, base.name, lambda f, n: safetensors_model(
                f, base, weights, name=n, dtype="F8_E4M3", claims=base.name, **st))
        elif kind == "renamed":  # another lab's name, a card claiming another base
            make(kind, base.name, lambda f, n: safetensors_model(
                f, base, weights, name=n, claims=other.name, **st),
                name=f"{other.name.split('/')[0]}/{short}-renamed")
        elif kind == "distill":  # base is the student; the card names the teacher
            make(kind, base.name, lambda f, n: safetensors_model(
                f, base, tune(weights, 0.15, seed + 4), name=n, specials=DISTILL_SPECIALS,
                claims=other.name, **st))
        elif kind == "unrelated":  # same shape, same tokenizer, other weights (layers too)
            make(kind, None, lambda f, n: safetensors_model(
                f, base, embedding(seed + 5, base.vocab, base.hidden), name=n,
                layer_seed=seed + 6, **st))
        else:
            raise ValueError(kind)
    return out


def evaluation_set(root: Path, bases: tuple[Base, ...],
                   kinds: tuple[str, ...] = KINDS) -> tuple[dict[str, Path], list[Case]]:
    """Write every base and its variants under `root`: ({base name: folder}, variants)."""
    folders: dict[str, Path] = {}
    cases: list[Case] = []
    for i, base in enumerate(bases):
        weights = embedding(base.seed, base.vocab, base.hidden)
        tokens = vocabulary(base)
        folders[base.name] = base_model(root, base, weights, tokens)
        cases += variants(root, base, bases[(i + 1) % len(bases)], weights, tokens, kinds)
    return folders, cases


# Small shapes for the test suite: V 32768-65536, H 256 or 512 (Q4_K packs rows of 256), one
# tokenizer format each, and two bases (northwind, lowfield) on one tokenizer and one shape:
# only the weights differ.
SMALL = (
    Base("northwind/nw-base", 32768, 256, "bpe", seed=11, token_seed=1),
    Base("southgale/sg-base", 36000, 256, "spm", seed=12, token_seed=2),
    Base("eastridge/er-base", 32768, 512, "gguf", seed=13, token_seed=3),
    Base("westbrook/wb-base", 65536, 256, "tiktoken", seed=14, token_seed=4),
    Base("lowfield/lf-base", 32768, 256, "bpe", seed=15, token_seed=1),
)


def confusion(cases: list[Case], bases: list[str],
              predicted: dict[str, set[str]]) -> dict[str, int]:
    """tp/fp/fn/tn over every (variant, base) pair: `predicted[variant]` is the bases the
    measurement calls the same base."""
    out = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for case in cases:
        for base in bases:
            said, true = base in predicted.get(case.name, set()), base == case.truth
            out[("t" if said == true else "f") + ("p" if said else "n")] += 1
    return out


def precision_recall(counts: dict[str, int]) -> tuple[float, float]:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)
