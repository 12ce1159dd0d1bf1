"""Is this head text? Sniffers of text formats (Python, YAML, Jinja, pbtxt) and the engine ask."""

from __future__ import annotations


def is_text(head: bytes) -> bool:
    """UTF-8 without NULs or control bytes other than whitespace (a truncated last char is fine)."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return all(c >= " " or c in "\t\n\r\f\v" for c in text)
