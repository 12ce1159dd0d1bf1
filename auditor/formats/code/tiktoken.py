"""tiktoken vocabularies (`*.tiktoken`, Llama 3's `original/tokenizer.model`): "base64 rank" lines.

Data only, but text no other format reads: each line is a token's bytes in
base64 and its rank (its id), which `tiktoken.load_tiktoken_bpe` splits on
whitespace and decodes. Claimed by content (every line of the head has that
shape), read in one streaming pass, validated line by line, and reduced to the
tokenizer fingerprint's `vocab` facts; a line of any other shape is a
malformed file (a loader fails on it).
"""

from __future__ import annotations

import binascii
import re
from typing import BinaryIO

from auditor.errors import FormatError
from auditor.formats._lib.text import is_text
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult

READ_CHUNK = 1 << 16
MAX_LINE = 1 << 16  # a token's base64 and rank; real lines are under 100 bytes
_TOKEN = rb"([A-Za-z0-9+/]*={0,2}) ([0-9]{1,10})\r?\n"
_LINE = re.compile(_TOKEN)
_BLOCK = re.compile(rb"(?:" + _TOKEN + rb"|\r?\n)*")  # whole lines, blank ones allowed
_HEAD_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2} [0-9]{1,10}\r?\n")


def sniff(head: bytes, name: str) -> bool:
    """Every complete line of the head is "base64 rank" (a partial last line is left out)."""
    if not is_text(head):
        return False
    body = head[: head.rfind(b"\n") + 1]
    return bool(body) and _BLOCK.fullmatch(body) is not None and _HEAD_LINE.match(body) is not None


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    from auditor.formats._lib.vocab import TIKTOKEN, VocabBuilder  # numpy: only when read

    builder = VocabBuilder()
    pending = b""
    offset = 0  # file offset of `pending`
    lines = 0
    while True:
        chunk = f.read(READ_CHUNK)
        data = pending + chunk
        if not chunk and data and not data.endswith(b"\n"):
            data += b"\n"  # the last line needs no newline
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) > MAX_LINE:
            raise FormatError(f"line longer than {MAX_LINE} bytes", offset)
        block, pending = data[:cut], data[cut:]
        end = _BLOCK.match(block).end()  # type: ignore[union-attr]
        if end != len(block):
            raise FormatError("line is not \"base64-token rank\"", offset + end)
        pairs = _LINE.findall(block)
        try:
            tokens = [binascii.a2b_base64(token, strict_mode=True) for token, _ in pairs]
        except binascii.Error as exc:
            raise FormatError(f"token is not valid base64 ({exc})", offset) from None
        builder.add_bytes([int(rank) for _, rank in pairs], tokens)
        lines += len(pairs)
        offset += cut
        if not chunk:
            break
    ctx.result.facts["ranks"] = lines
    if (found := builder.finish(TIKTOKEN)) is not None:
        ctx.result.facts["vocab"] = found
    return ctx.result


SPEC = FormatSpec(
    id=FormatId.TIKTOKEN, sniff=sniff, scan=scan, container=False, rules=(),
    facts=("ranks", "vocab"),
)
