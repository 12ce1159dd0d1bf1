"""Strict JSON parsing shared by the formats that embed or are JSON.

Duplicate keys are reported rather than silently resolved: parsers disagree on
which duplicate wins, which lets a file show one value to a scanner and
another to a loader.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.errors import FormatError, LimitExceeded

_BOM = b"\xef\xbb\xbf"


class DuplicateKeys(list[str]):
    """Collects `path.key` of every duplicated object key seen while parsing."""


def loads_strict(data: bytes, *, what: str = "JSON") -> tuple[Any, DuplicateKeys]:
    """Parse UTF-8 JSON; return the value (last duplicate wins, as in Python) and duplicates.

    Raises FormatError for invalid UTF-8 or JSON, LimitExceeded for nesting
    deeper than the interpreter's recursion limit (the C parser refuses it).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what} is not valid UTF-8 ({exc.reason})", exc.start) from None
    dups = DuplicateKeys()

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                dups.append(key)
            seen[key] = value
        return seen

    try:
        value = json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        # exc.pos counts characters of the decoded text; findings give byte offsets.
        offset = len(text[: exc.pos].encode("utf-8")) + (3 if data.startswith(_BOM) else 0)
        raise FormatError(
            f"invalid {what}: {exc.msg} at line {exc.lineno} column {exc.colno}", offset
        ) from None
    except RecursionError:
        raise LimitExceeded(f"{what} nests deeper than the parser allows") from None
    except ValueError as exc:
        raise FormatError(f"invalid {what}: {exc}") from None
    return value, dups

