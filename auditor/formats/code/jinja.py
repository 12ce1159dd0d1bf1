"""`*.jinja` files (`chat_template.jinja`, `additional_chat_templates/*.jinja`): chat templates.

Jinja source is also plain text, so content alone cannot tell a template from
a README. This is the one module where the name decides: a text file whose
name ends in `.jinja` is what transformers loads as a chat template, so it is
claimed and reviewed. It is claimed even without a `{{`/`{%` in the first
64 KiB: padding the start with blank lines must not turn a template into
unreviewed text.
"""

from __future__ import annotations

from typing import BinaryIO

from auditor.errors import FormatError
from auditor.formats._lib.streams import read_capped
from auditor.formats._lib.text import is_text
from auditor.formats.code import templates
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult

RULES = templates.RULES  # the chat-template rules; GGUF and JSON configs raise them too


def sniff(head: bytes, name: str) -> bool:
    return name.lower().endswith(".jinja") and bool(head) and is_text(head)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    # at most 4 UTF-8 bytes a character: the longest template the reviewer accepts
    data = read_capped(f, templates.MAX_TEMPLATE_CHARS * 4, "template")
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid UTF-8 at byte {exc.start}", exc.start,
                          templates.UNPARSEABLE) from None
    templates.review_into(ctx, source, where="template")
    ctx.result.facts["has_chat_template"] = True
    return ctx.result


SPEC = FormatSpec(
    id=FormatId.JINJA, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("has_chat_template",),
)
