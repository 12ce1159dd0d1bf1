"""Hard limits every parser respects; hitting one is a finding, never a crash.

Values are chosen so that real checkpoints never reach them while a hostile
length or count field is refused before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_depth: int = 6  # container nesting (zip in tar in gzip ...)
    max_header_bytes: int = 100 * 1024 * 1024  # safetensors / GGUF / JSON headers
    max_json_bytes: int = 64 * 1024 * 1024  # a JSON file parsed whole
    max_members: int = 65_536  # archive members
    max_decompressed_bytes: int = 64 * 1024**3  # total expansion of one compressed stream
    max_compression_ratio: int = 200  # expanded / compressed, checked past 10 MiB
    max_pickle_ops: int = 50_000_000
    max_pickle_memo: int = 10_000_000
    max_pickle_stack: int = 100_000  # picklers recurse ~1000 deep: real stacks stay far below
    max_string_bytes: int = 256 * 1024 * 1024  # one string/bytes value inside a format
    max_elements: int = 100_000_000  # one count field (tensors, metadata entries)
