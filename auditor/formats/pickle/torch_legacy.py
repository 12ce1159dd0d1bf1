"""Legacy (non-zip) `torch.save` files: five pickles, then raw storage bytes.

The layout is: magic number, protocol version, system info, the object
(storages as persistent ids), the list of storage keys — then, for each
key in that order, an 8-byte element count and the storage's bytes. Every
pickle is analysed; the raw section is parsed by that layout (never read as
opcodes) and checked against the persistent ids. The magic number must be
a literal: `torch.load` unpickles it before checking it, so a magic number
produced by a REDUCE has already run its code (GHSA-97f8-7cmv-76j2). A file
whose first pickle is anything else is not claimed here and falls to the
generic pickle scan, which flags whatever it calls.
"""

from __future__ import annotations

import io
import struct
from typing import Any, BinaryIO

from auditor.errors import FormatError
from auditor.formats._lib.limits import Limits
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.pickle import plain as pickle_format
from auditor.formats.pickle import rules as pickle_rules
from auditor.formats.pickle.imports import tiers_for
from auditor.formats.pickle.machine import (
    Env,
    Input,
    Machine,
    Persistent,
    PickleError,
    Ref,
    Seq,
)
from auditor.model import FormatId, FormatResult, Rule, Severity

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

LAYOUT = Rule(
    "AUD-PT-101", Severity.HIGH, "Legacy PyTorch file layout is inconsistent",
    "torch.load reads storages by the keys and sizes the pickles declare; a wrong magic or "
    "protocol value, a storage missing from the object, a size mismatch or an unknown storage "
    "type means the loader reads these bytes differently from the scanner.",
    "Re-save the checkpoint with torch.save (zip format) or as safetensors.",
)
TRAILING = Rule(
    "AUD-PT-102", Severity.HIGH, "Data after the last storage of a legacy PyTorch file",
    "torch.load stops after the last storage; bytes after it are not part of the checkpoint "
    "and can carry content for another loader.",
    "Re-save the checkpoint; remove the trailing data.",
)
RULES = (LAYOUT, TRAILING)

# Storage class -> bytes per element.
ELEMENT_SIZE: dict[str, int] = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "QInt8Storage": 1,
    "QUInt8Storage": 1, "QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}
_COUNT = struct.Struct("<q")


def sniff(head: bytes, name: str) -> bool:
    """The first pickle is the literal magic number, and nothing is imported on the way."""
    if head[:1] != b"\x80":
        return False
    env = Env(tiers=tiers_for(), limits=Limits(), report=pickle_format.ignore)
    try:
        value = Machine(Input(io.BytesIO(head[:64])), env).run()
    except Exception:
        return False
    return _is_int(value, MAGIC) and not env.imports.uses


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    env = pickle_format.new_env(ctx, collect_persistent=True)
    inp = Input(f)
    try:
        _parse(inp, env, ctx)
    finally:
        pickle_format.finish(env, ctx)
    return ctx.result


def _parse(inp: Input, env: Env, ctx: ScanContext) -> None:
    magic = _one(inp, env)
    if not _is_int(magic, MAGIC) or env.imports.uses:
        ctx.add(LAYOUT, "the magic number is not a literal integer", offset=0)
    version = _one(inp, env)
    if not _is_int(version, PROTOCOL_VERSION):
        ctx.add(LAYOUT, f"protocol version is {version!r}, expected {PROTOCOL_VERSION}")
    _one(inp, env)  # system info
    _one(inp, env)  # the object
    env.keep_items = ctx.limits.max_elements
    at = inp.offset
    keys = _one(inp, env)
    if not (isinstance(keys, Seq) and keys.kind == "list"
            and all(isinstance(k, str) for k in keys.items)):
        raise FormatError("the storage key list is not a list of strings", at, LAYOUT)
    storages = _storages(env.persistent, ctx)
    for key in keys.items:
        at = inp.offset
        size = _element_size(storages.get(key), key, at)
        count = _COUNT.unpack(_take(inp, 8, at, key))[0]
        declared = storages[key][1]
        if count < 0 or (isinstance(declared, int) and declared != count):
            raise FormatError(f"storage {key!r} holds {count} elements, its persistent id "
                              f"declares {declared!r}", at, LAYOUT)
        try:
            inp.skip(count * size, at, f"storage {key!r}")
        except PickleError as exc:
            raise FormatError(str(exc), exc.offset, LAYOUT) from None
    ctx.result.facts["storages"] = len(keys.items)
    if not inp.at_eof():
        ctx.add(TRAILING, f"data after the last storage, from @{inp.offset}", offset=inp.offset)


def _one(inp: Input, env: Env) -> Any:
    try:
        return Machine(inp, env).run()
    except PickleError as exc:
        raise FormatError(str(exc), exc.offset, exc.rule or pickle_rules.MALFORMED) from None


def _take(inp: Input, n: int, at: int, key: str) -> bytes:
    try:
        return inp.take(n, at, f"the size of storage {key!r}")
    except PickleError as exc:
        raise FormatError(str(exc), exc.offset, LAYOUT) from None


def _storages(pids: list[Persistent], ctx: ScanContext) -> dict[str, tuple[Any, Any]]:
    """key -> (storage type, element count) from ('storage', type, key, location, count, ...)."""
    out: dict[str, tuple[Any, Any]] = {}
    for p in pids:
        pid = p.pid
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" \
                and isinstance(pid[2], str):
            out.setdefault(pid[2], (pid[1], pid[4]))
        elif not (isinstance(pid, tuple) and pid[:1] == ("module",)):
            ctx.add(LAYOUT, "a persistent id is not a storage reference", offset=p.at)
    return out


def _element_size(entry: tuple[Any, Any] | None, key: str, at: int) -> int:
    if entry is None:
        raise FormatError(f"storage key {key!r} is not referenced by the object", at, LAYOUT)
    kind = entry[0]
    path = kind.verdict.path if isinstance(kind, Ref) else ""
    name = path.rsplit(".", 1)[-1] if path.startswith("torch.") else None
    size = ELEMENT_SIZE.get(name or "")
    if size is None:
        raise FormatError(f"storage {key!r} has unknown storage type "
                          f"{name or type(kind).__name__}", at, LAYOUT)
    return size


def _is_int(value: Any, expected: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == expected


SPEC = FormatSpec(
    id=FormatId.PYTORCH_LEGACY, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("imports", "opcodes", "storages"),
)
