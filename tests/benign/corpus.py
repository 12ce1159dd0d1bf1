"""Every writer of the benign corpus, one line per module."""

from __future__ import annotations

from tests.benign import Writer

WRITERS: tuple[Writer, ...] = ()
