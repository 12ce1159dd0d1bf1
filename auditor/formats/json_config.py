"""JSON files: configs, tokenizer configs, indexes. Parsed strictly, facts kept.

`config.json` and `tokenizer_config.json` decide what a loader does
(`auto_map` makes `trust_remote_code` import code), so their key facts are
recorded for the SBOM and later checks.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats import python_code, templates
from auditor.formats.jsonutil import loads_strict
from auditor.model import FormatResult, Rule, Severity
from auditor.scan.context import ScanContext

NAME = "json"

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
RULES = (INVALID, DUPLICATE_KEY)

_BOM = b"\xef\xbb\xbf"
_CONFIG_KEYS = ("model_type", "architectures", "torch_dtype", "quantization_config", "auto_map",
                "_name_or_path", "transformers_version")


def sniff(head: bytes, name: str) -> bool:
    body = head.removeprefix(_BOM).lstrip(b" \t\r\n")
    return body[:1] in (b"{", b"[") and b"\x00" not in head


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    limit = ctx.limits.max_json_bytes
    data = f.read(limit + 1)
    if len(data) > limit:
        raise LimitExceeded(f"JSON larger than {limit} bytes")
    try:
        value, dups = loads_strict(data)
    except LimitExceeded:
        raise
    except FormatError as exc:
        raise FormatError(str(exc), exc.offset, INVALID) from None
    for key in sorted(set(dups)):
        ctx.add(DUPLICATE_KEY, f"key {key!r} appears more than once")
    if isinstance(value, dict):
        ctx.result.facts.update(_facts(value))
        if "auto_map" in value:  # what trust_remote_code=True would import
            python_code.check_auto_map(value["auto_map"], ctx)
        if "chat_template" in value:  # tokenizer_config.json, chat_template.json
            names = templates.review_config_value(ctx, value["chat_template"], "chat_template")
            ctx.result.facts["chat_templates"] = names
            ctx.result.facts["has_chat_template"] = bool(names)
    return ctx.result


def _facts(doc: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {k: doc[k] for k in _CONFIG_KEYS if k in doc}
    if "chat_template" in doc:
        facts["has_chat_template"] = True
    return facts
