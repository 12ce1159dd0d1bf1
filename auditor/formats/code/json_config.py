"""JSON files: configs, tokenizer configs, indexes. Parsed strictly, facts kept.

`config.json` and `tokenizer_config.json` decide what a loader does
(`auto_map` makes `trust_remote_code` import code), so their key facts are
recorded for the SBOM and later checks. Other loaders import classes named in
configs too (`loaders`: diffusers, PEFT, sentence-transformers), and Hydra
instantiates `_target_` mappings at any depth (`instantiate`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.jsonstream import scan_json, visit_parsed
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats.code import instantiate, loaders, templates, tokenizer_facts
from auditor.formats.code import python as python_code
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

INVALID = Rule(
    "AUD-JSON-001", Severity.HIGH, "Invalid JSON",
    "Loaders either fail on it or read it with a more lenient parser than the scanner; "
    "either way its meaning is not what was audited.",
    "Fix or regenerate the file.",
)
DUPLICATE_KEY = Rule(
    "AUD-JSON-002", Severity.MEDIUM, "Duplicate key in JSON",
    "Different JSON parsers keep different duplicates, so a scanner and a loader can read "
    "different values (a chat template, an auto_map entry).",
    "Remove the duplicate keys.",
)
SHARD_OUTSIDE = Rule(
    "AUD-JSON-003", Severity.HIGH, "Shard index names a file outside the model folder",
    "Loaders join each weight_map entry to the model folder and load it; an absolute or '..' "
    "name makes them unpickle or map a file the audit never saw (another model, a planted "
    "pickle).",
    "Name shards as plain files of the model folder; refuse the model until then.",
)
RULES = (INVALID, DUPLICATE_KEY, SHARD_OUTSIDE, *loaders.RULES, *instantiate.RULES)

_BOM = b"\xef\xbb\xbf"
_CONFIG_KEYS = ("model_type", "architectures", "torch_dtype", "quantization_config", "auto_map",
                "_name_or_path", "transformers_version",
                "base_model_name_or_path", "peft_type",  # adapter_config.json: the adapter's base
                # shape and tokens: the architecture fingerprint (auditor.fingerprint)
                "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "vocab_size", "rope_theta", "max_position_embeddings",
                "head_dim", "n_routed_experts", "num_experts", "num_local_experts",
                "num_experts_per_tok", "moe_intermediate_size", "kv_lora_rank", "q_lora_rank",
                "tie_word_embeddings", "sliding_window", "bos_token_id", "eos_token_id",
                "pad_token_id", "padded_vocab_size", "multi_query_group_num", "rope_ratio",
                "logit_scale", "query_pre_attn_scalar", "num_layers", "ffn_hidden_size",
                "seq_length", "rotary_dim", "layernorm_full_attention_alpha",
                "text_config")  # text_config: the language model of multimodal configs
# Top-level values the checks read.
_KEPT = frozenset(_CONFIG_KEYS) | {"chat_template", "custom_pipelines", "weight_map",
                                   "auto_mapping", *instantiate.TRACKED}
MAX_SHARD_FINDINGS = 20
# Parsed into objects up to this size (configs); bigger files are streamed: json.loads
# would need some ten times their size in memory.
FULL_PARSE_BYTES = 4 * 1024 * 1024
MAX_DUPLICATE_FINDINGS = 20  # one finding per key up to here, then one for the rest


_WS = b" \t\r\n"
# What may follow an opening `[`: a value's first character or the closing bracket.
_ARRAY_NEXT = frozenset(b'"-0123456789[{]')
_LITERALS = (b"true", b"false", b"null")
_LITERAL_END = frozenset((b"", b",", b"]", *(bytes([c]) for c in _WS)))


def sniff(head: bytes, name: str) -> bool:
    """Claim text only if it starts the way a JSON document must.

    A leading bracket alone is not enough: a BERT `vocab.txt` opens with
    `[PAD]`, a TOML file with `[model]` or `[[servers]]`, an INI file with
    `[section]`. After each opening bracket the next character has to start a
    JSON value or close it (`{` takes only a key or `}`), so those stay text
    while a damaged file that is shaped like JSON is still claimed and reported.
    """
    if b"\x00" in head:
        return False
    body = head.removeprefix(_BOM).lstrip(_WS)
    if body[:1] not in (b"{", b"["):
        return False
    while body[:1] == b"[":
        body = body[1:].lstrip(_WS)
    if body[:1] == b"{":
        return body[1:].lstrip(_WS)[:1] in (b'"', b"}")
    if not body or body[0] in _ARRAY_NEXT:  # the head may end inside a deep run of `[`
        return True
    # a literal must be whole and end where a value can end (`[null]`, not `[nullable]`)
    return any(body.startswith(word) and body[len(word):len(word) + 1] in _LITERAL_END
               for word in _LITERALS)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    limit = ctx.limits.max_json_bytes
    head = f.read(FULL_PARSE_BYTES + 1)
    if len(head) > limit:
        raise LimitExceeded(f"JSON larger than {limit} bytes")
    collector = tokenizer_facts.collector_for(ctx.name)  # vocabulary facts, by file name
    try:
        if len(head) <= FULL_PARSE_BYTES:
            value, dups = loads_strict(head)
            doc = value if isinstance(value, dict) else None
            if collector is not None:
                visit_parsed(value, collector.visit)
        else:  # a tokenizer.json or vocabulary: validated in bounded memory
            visit = collector.visit if collector is not None else None
            scanned = scan_json(_replay(head, f), limit, _KEPT, visit)
            doc = value = scanned.kept if scanned.is_object else None
            dups = scanned.duplicates
    except LimitExceeded:
        raise
    except FormatError as exc:
        raise FormatError(str(exc), exc.offset, INVALID) from None
    repeated = sorted(set(dups))
    for key in repeated[:MAX_DUPLICATE_FINDINGS]:
        ctx.add(DUPLICATE_KEY, f"key {key!r} appears more than once")
    if len(repeated) > MAX_DUPLICATE_FINDINGS:
        ctx.add(DUPLICATE_KEY, f"and {len(repeated) - MAX_DUPLICATE_FINDINGS} more duplicated keys")
    # Streamed files keep only top-level values: their nested targets are out of reach.
    loaders.check(value, ctx, complete=len(head) <= FULL_PARSE_BYTES)
    sites = instantiate.object_sites(value)
    if found := instantiate.report(sites, ctx, lambda path: instantiate.lookup(value, path)):
        ctx.result.facts["instantiation_targets"] = found
    if collector is not None:
        ctx.result.facts.update(collector.facts())
    if doc is not None:
        ctx.result.facts.update(_facts(doc))
        if "auto_map" in doc or "custom_pipelines" in doc:  # trust_remote_code imports these
            python_code.check_config(doc, ctx)
        if "weight_map" in doc:  # *.index.json of sharded checkpoints
            _check_weight_map(doc["weight_map"], ctx)
        if "chat_template" in doc:  # tokenizer_config.json, chat_template.json
            names = templates.review_config_value(ctx, doc["chat_template"], "chat_template")
            ctx.result.facts["chat_templates"] = names
            ctx.result.facts["has_chat_template"] = bool(names)
    return ctx.result


def _check_weight_map(weight_map: Any, ctx: ScanContext) -> None:
    """Shards must be plain relative names: the loader joins them to the model folder."""
    values = weight_map.values() if isinstance(weight_map, dict) else [weight_map]
    shards = sorted({v for v in values if isinstance(v, str)})
    bad = [repr(v) for v in values if not isinstance(v, str)]
    bad += [repr(v) for v in shards if python_code.path_outside(v)]
    for detail in bad[:MAX_SHARD_FINDINGS]:
        ctx.add(SHARD_OUTSIDE, f"weight_map entry {detail}")


def _replay(head: bytes, f: BinaryIO) -> Callable[[int], bytes]:
    """A `read(n)` over the bytes already read, then the rest of `f`, `n` at a time."""
    done = 0

    def read(n: int) -> bytes:
        nonlocal done
        if done < len(head):
            done += n
            return head[done - n : done]
        return f.read(n)

    return read


def _facts(doc: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {k: doc[k] for k in _CONFIG_KEYS if k in doc}
    if "chat_template" in doc:
        facts["has_chat_template"] = True
    return facts


SPEC = FormatSpec(
    id=FormatId.JSON, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=(*_CONFIG_KEYS, "has_chat_template", "chat_templates", "custom_pipelines",
           "instantiation_targets", "vocab", "specials"),
)
