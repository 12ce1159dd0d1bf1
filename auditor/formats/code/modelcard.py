"""Model cards: the YAML front matter of a `README.md`, read as data with a safe loader.

The card is where a repository declares its licence, its base models and
their relation, its datasets and its task. Policies decide on those facts
(licence allowlists, lineage), so a card that cannot be read is a finding
rather than a card without facts. Nothing in it is executed: YAML is loaded
with the C safe loader, aliases are refused outright (an alias bomb is a few
lines that expand to gigabytes once the facts are serialised) and the front
matter is bounded in size.

A card is claimed by content *and* name: front matter is plain text that any
`.yaml` or `.txt` file may also start with, so only a `.md` file whose first
line is `---` is a model card.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

MALFORMED = Rule(
    "AUD-CARD-001", Severity.MEDIUM, "Model card front matter is malformed",
    "Loading the model runs no card code, so this is not an execution risk; but licence, base "
    "models and datasets are read from the front matter, and a card that cannot be read leaves "
    "policies deciding on unknown facts.",
    "Fix the YAML between the leading '---' lines (the Hub's metadata editor validates it); "
    "do not use YAML anchors or aliases.",
)
FIELD_TYPE = Rule(
    "AUD-CARD-002", Severity.LOW, "Model card field has an unexpected type (ignored)",
    "A field such as license or base_model with the wrong shape is read differently by "
    "different tools; it is left out of the facts, so policies see it as unknown.",
    "Give the field the type the Hub documents (a string, or a list of strings).",
)
RULES = (MALFORMED, FIELD_TYPE)

MAX_FRONT_MATTER = 512 * 1024  # real cards with evaluation tables stay far below this
MAX_BODY = 1024 * 1024  # the Markdown body, read for the considerations sections
MAX_SECTION = 2000  # characters kept from one considerations section

_FENCE = re.compile(rb"\A(?:\xef\xbb\xbf)?---[ \t]*\r?\n")
_CLOSE = re.compile(rb"^---[ \t]*\r?$", re.MULTILINE)

# Front-matter key -> the types it may have (a list must hold strings); others are not facts.
_STR = (str,)
_STR_OR_LIST = (str, list)
FIELDS: dict[str, tuple[type, ...]] = {
    "license": _STR_OR_LIST,
    "license_name": _STR,
    "license_link": _STR,
    "base_model": _STR_OR_LIST,
    "base_model_relation": _STR,
    "datasets": _STR_OR_LIST,
    "pipeline_tag": _STR,
    "language": _STR_OR_LIST,
    "tags": _STR_OR_LIST,
    "library_name": _STR,
    "model_name": _STR,
    "model_creator": _STR,
}

# Markdown heading (lower-cased, trimmed) -> CycloneDX modelCard.considerations field.
CONSIDERATION_HEADINGS: dict[str, str] = {
    "intended uses": "useCases",
    "intended use": "useCases",
    "uses": "useCases",
    "direct use": "useCases",
    "intended users": "users",
    "limitations": "technicalLimitations",
    "out-of-scope use": "technicalLimitations",
    "bias, risks, and limitations": "ethicalConsiderations",
    "ethical considerations": "ethicalConsiderations",
}
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def sniff(head: bytes, name: str) -> bool:
    return name.lower().endswith(".md") and _FENCE.match(head) is not None


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    data = f.read(MAX_FRONT_MATTER + MAX_BODY)
    fence = _FENCE.match(data)
    if fence is None:  # sniff saw it; a changed file is still not a card we can read
        raise FormatError("no front matter fence", 0, MALFORMED)
    close = _CLOSE.search(data, fence.end())
    if close is None:
        if len(data) - fence.end() > MAX_FRONT_MATTER:
            raise LimitExceeded(f"front matter longer than {MAX_FRONT_MATTER} bytes")
        raise FormatError("front matter has no closing '---' line", 0, MALFORMED)
    if close.start() - fence.end() > MAX_FRONT_MATTER:
        raise LimitExceeded(f"front matter longer than {MAX_FRONT_MATTER} bytes")
    try:
        text = data[fence.end():close.start()].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"front matter is not UTF-8 ({exc.reason})", fence.end() + exc.start,
                          MALFORMED) from None
    meta = load_front_matter(text)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FormatError(f"front matter is a {_kind(meta)}, not a mapping", fence.end(),
                          MALFORMED)
    ctx.result.facts.update(_facts(meta, ctx))
    body = data[close.end():close.end() + MAX_BODY].decode("utf-8", errors="replace")
    considerations = _considerations(body)
    if considerations:
        ctx.result.facts["considerations"] = considerations
    return ctx.result


def load_front_matter(text: str) -> Any:
    """YAML → data, with a safe loader; raises FormatError naming the card line.

    The text is composed into nodes first and refused when any node is
    reached twice (that is what an alias is), so nothing expands.
    """
    import yaml

    loader = yaml.CSafeLoader(text) if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_aliases(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 2}: " if mark is not None else ""  # +1 fence, +1 one-based
        raise FormatError(f"{where}{exc.problem or exc}", None, MALFORMED) from None
    except yaml.YAMLError as exc:
        raise FormatError(str(exc).splitlines()[0], None, MALFORMED) from None
    except RecursionError:
        raise FormatError("front matter nests too deeply", None, MALFORMED) from None
    finally:
        loader.dispose()


def _refuse_aliases(root: Any) -> None:
    import yaml

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise FormatError(f"line {node.start_mark.line + 2}: YAML aliases are not accepted",
                              None, MALFORMED)
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def _facts(meta: dict[str, Any], ctx: ScanContext) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for key, types in FIELDS.items():
        if key not in meta or meta[key] is None:
            continue
        value = meta[key]
        if isinstance(value, list) and list in types:
            strings = [v for v in value if isinstance(v, str)]
            if len(strings) < len(value):  # the strings still count: `base_model` decides origin
                ctx.add(FIELD_TYPE, f"{key}: {len(value) - len(strings)} of {len(value)} entries "
                        "are not strings (the strings are kept)")
            facts[key] = strings
            continue
        if not isinstance(value, types):
            expected = " or ".join("list of strings" if t is list else t.__name__ for t in types)
            ctx.add(FIELD_TYPE, f"{key}: expected {expected}, found {_kind(value)}")
            continue
        facts[key] = value
    return facts


def _considerations(body: str) -> dict[str, str]:
    """Text under the card's well-known headings (first occurrence of each field wins)."""
    found: dict[str, str] = {}
    headings = list(_HEADING.finditer(body))
    for i, heading in enumerate(headings):
        field = CONSIDERATION_HEADINGS.get(heading.group(1).strip().lower())
        if field is None or field in found:
            continue
        end = headings[i + 1].start() if i + 1 < len(headings) else len(body)
        text = body[heading.end():end].strip()
        if text:
            found[field] = text[:MAX_SECTION]
    return found


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string"}.get(type(value), type(value).__name__)


SPEC = FormatSpec(
    id=FormatId.MODELCARD, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=(*FIELDS, "considerations"),
)
