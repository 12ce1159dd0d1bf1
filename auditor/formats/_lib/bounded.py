"""Forward reads whose lengths are approved before anything is read or allocated.

Shared by the hand-written parsers of formats with hostile length fields
(GGUF, msgpack): each decides in `room()` how many bytes a value may use;
`take`/`skip` then never read more, and a short stream is the format's own
bounds finding.
"""

from __future__ import annotations

from typing import BinaryIO

from auditor.errors import FormatError
from auditor.model import Rule

SKIP_CHUNK = 1 << 20


class ForwardReader:
    """Mixin: `take`/`skip` over `self.f` at `self.pos`, after `room()` approved the length."""

    f: BinaryIO
    pos: int
    bounds_rule: Rule

    def room(self, n: int, what: str) -> None:
        """Raise when `n` more bytes are not allowed here."""
        raise NotImplementedError

    def take(self, n: int, what: str) -> bytes:
        self.room(n, what)
        data = self.f.read(n)
        if len(data) < n:
            raise self._short(what, self.pos + len(data))
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        self.room(n, what)
        left = n
        while left:
            got = len(self.f.read(min(left, SKIP_CHUNK)))
            if not got:
                raise self._short(what, self.pos + n - left)
            left -= got
        self.pos += n

    def _short(self, what: str, at: int) -> FormatError:
        return FormatError(f"{what}: stream ends at offset {at}", self.pos, self.bounds_rule)
