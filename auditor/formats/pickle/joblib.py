"""joblib's layout: raw array buffers written inside the pickle stream.

`joblib.dump` pickles a `NumpyArrayWrapper` for each array and, right after
its BUILD, writes the array bytes (after a one-byte padding length and that
many 0xff bytes when the wrapper asks for alignment) — or, for object
arrays, a nested pickle. The pickle machine calls `after_build` at that
point; the array bytes are skipped by size (never parsed as opcodes), the
nested pickle is analysed like any other. Anything that does not add up is
a finding, because the loader would read those bytes differently.
"""

from __future__ import annotations

import re
from typing import Any

from auditor.formats.pickle.machine import (
    Call,
    Machine,
    Opaque,
    PickleError,
    Ref,
    Seq,
)
from auditor.model import FormatId, Rule, Severity

WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"

LAYOUT = Rule(
    "AUD-JOB-001", Severity.HIGH, "joblib array layout is inconsistent",
    "joblib reads raw array bytes after each array wrapper by the shape and dtype it declares; "
    "a wrapper whose size cannot be computed, or bad padding, means the scanner and the loader "
    "would read different bytes as pickle opcodes.",
    "Re-create the file with joblib.dump from trusted data.",
)
RULES = (LAYOUT,)

_TYPESTR = re.compile(r"[<>|=]?([biufcmMSUVO])(\d*)(\[[A-Za-z0-9]+\])?\Z")
ARRAY = Opaque("joblib array")


def after_build(machine: Machine, wrapper: Call, at: int) -> None:
    """Consume the array data that follows a wrapper's BUILD; leave the array on the stack."""
    machine.env.layouts.add(FormatId.JOBLIB)
    state = _dict(wrapper.state)
    if state is None:
        raise PickleError("NumpyArrayWrapper state is not a dict", at, LAYOUT)
    dtype = _dtype(state.get("dtype"), at)
    if dtype is None:  # object array: a nested pickle follows
        Machine(machine.inp, machine.env).run()
    else:
        count = _count(state.get("shape"), at)
        align = state.get("numpy_array_alignment_bytes")
        if align is not None:
            _padding(machine, align, at)
        machine.inp.skip(count * dtype, at, f"joblib array data ({count} x {dtype} bytes)")
    machine.stack[-1] = ARRAY


def _dict(value: Any) -> dict[str, Any] | None:
    if not (isinstance(value, Seq) and value.kind == "dict"):
        return None
    items = value.items
    return {k: v for k, v in zip(items[0::2], items[1::2], strict=False) if isinstance(k, str)}


def _dtype(dtype: Any, at: int) -> int | None:
    """Item size of a pickled `numpy.dtype`, or None for object dtype (nested pickle)."""
    if not (isinstance(dtype, Call) and isinstance(dtype.func, Ref)
            and dtype.func.verdict.path == "numpy.dtype"
            and isinstance(dtype.args, tuple) and dtype.args and isinstance(dtype.args[0], str)):
        raise PickleError("NumpyArrayWrapper dtype is not a numpy.dtype", at, LAYOUT)
    match = _TYPESTR.match(dtype.args[0])
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    if match is None:
        raise PickleError(f"unsupported array dtype {dtype.args[0]!r} in a joblib wrapper", at,
                          LAYOUT)
    kind, digits = match.group(1), match.group(2)
    structured = len(state) > 3 and state[3] is not None
    if structured:  # numpy's dtype state: (version, order, subarray, names, fields, elsize,
        # alignment, flags); flag bit 0 marks fields that hold Python objects
        flags = state[7] if len(state) > 7 else None
        if not isinstance(flags, int):
            raise PickleError("structured dtype without flags in a joblib wrapper", at, LAYOUT)
        if flags & 1:
            return None
    if kind == "O":
        return None
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) and state[5] > 0 else None
    if elsize is None:
        if not digits:
            raise PickleError(f"array dtype {dtype.args[0]!r} has no size", at, LAYOUT)
        elsize = int(digits) * (4 if kind == "U" else 1)
    return elsize


def _count(shape: Any, at: int) -> int:
    if not (isinstance(shape, tuple)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise PickleError("NumpyArrayWrapper shape is not a tuple of sizes", at, LAYOUT)
    count = 1
    for d in shape:
        count *= d
    return count


def _padding(machine: Machine, align: Any, at: int) -> None:
    if not isinstance(align, int) or not 0 < align <= 255:
        raise PickleError(f"NumpyArrayWrapper alignment {align!r} is invalid", at, LAYOUT)
    length = machine.inp.take(1, at, "joblib padding length")[0]
    pad = machine.inp.take(length, at, "joblib padding")
    if length > align or pad.strip(b"\xff"):
        raise PickleError(f"joblib padding of {length} bytes is not {align}-byte alignment "
                          "filler", at, LAYOUT)


HOOKS = {WRAPPER: after_build}
