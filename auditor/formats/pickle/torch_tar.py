"""The `storages` and `tensors` members of a legacy tar checkpoint: pickles with raw bytes between.

Old `torch.save` wrote a tar whose `storages` member is a pickled count, then
for each storage a pickled `(key, location, storage_type)` followed by an
8-byte element count and the raw elements, then a pickled list of views; its
`tensors` member is a pickled count, then for each tensor a pickled
`(key, storage_id, type)` followed by ndim, sizes, strides and an offset as
raw integers. Handed whole to the pickle analysis, the raw parts would read as
garbage after the first pickle, so this layout is walked here: every pickle
goes through the pickle module's machine (imports graded as everywhere
else), raw parts are skipped by the sizes the layout gives, and anything
after the layout's end is a finding.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats import scan_rules
from auditor.formats.archives.members import member_path
from auditor.formats.contract import ScanContext
from auditor.formats.pickle import plain as pickle_format
from auditor.formats.pickle import torch_legacy
from auditor.formats.pickle.machine import Env, Input, Machine, PickleError, Ref
from auditor.model import Coverage, FormatId

_INT64 = struct.Struct("<q")
_MAX_NDIM = 64


def scan_records(ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
    """Walk `storages` or `tensors` in a child context located at the member."""
    child = ScanContext(
        file=ctx.file, name=name, size=size, options=ctx.options, dispatch=ctx.dispatch,
        member=member_path(ctx, name), depth=ctx.depth + 1, container=ctx.result.format,
    )
    child.result.format = FormatId.PICKLE
    walk: Callable[[Input, Env], int] = _storages if name == "storages" else _tensors
    env = pickle_format.new_env(child)
    inp = Input(stream)
    try:
        child.result.facts["records"] = walk(inp, env)
        if not inp.at_eof():
            child.add(torch_legacy.TRAILING, f"data after the last record, from @{inp.offset}",
                      offset=inp.offset)
    except LimitExceeded as exc:
        child.add(scan_rules.LIMIT, str(exc), offset=exc.offset)
        child.limit_hit()
    except FormatError as exc:
        child.add(exc.rule or torch_legacy.LAYOUT, str(exc), offset=exc.offset)
        child.result.coverage = Coverage.ERROR
    except PickleError as exc:
        child.add(exc.rule or torch_legacy.LAYOUT, str(exc), offset=exc.offset)
        child.result.coverage = Coverage.ERROR
    finally:
        pickle_format.finish(env, child)
    ctx.merge_member(child.result)


def _pickle(inp: Input, env: Env) -> Any:
    return Machine(inp, env).run()


def _count(inp: Input, env: Env, limit: int) -> int:
    at = inp.offset
    count = _pickle(inp, env)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= limit:
        raise FormatError(f"record count {count!r} is not a count", at, torch_legacy.LAYOUT)
    return count


def _storages(inp: Input, env: Env) -> int:
    count = _count(inp, env, env.limits.max_elements)
    for _ in range(count):
        at = inp.offset
        record = _pickle(inp, env)
        if not (isinstance(record, tuple) and len(record) == 3):
            raise FormatError("storage record is not (key, location, type)", at,
                              torch_legacy.LAYOUT)
        kind = record[2]
        path = kind.verdict.path if isinstance(kind, Ref) else ""
        element = torch_legacy.ELEMENT_SIZE.get(path.rsplit(".", 1)[-1]) \
            if path.startswith("torch.") else None
        if element is None:
            raise FormatError(f"unknown storage type {path or type(kind).__name__}", at,
                              torch_legacy.LAYOUT)
        (elements,) = _INT64.unpack(inp.take(8, inp.offset, "a storage size"))
        if elements < 0:
            raise FormatError(f"negative storage size {elements}", at, torch_legacy.LAYOUT)
        inp.skip(elements * element, inp.offset, "storage data")
    _pickle(inp, env)  # the storage views
    return count


def _tensors(inp: Input, env: Env) -> int:
    count = _count(inp, env, env.limits.max_elements)
    for _ in range(count):
        _pickle(inp, env)  # (key, storage id, tensor type)
        at = inp.offset
        (ndim,) = struct.unpack("<i", inp.take(4, at, "a tensor's ndim"))
        if not 0 <= ndim <= _MAX_NDIM:
            raise FormatError(f"tensor with {ndim} dimensions", at, torch_legacy.LAYOUT)
        inp.skip(4 + 16 * ndim + 8, at, "a tensor's shape")
    return count
