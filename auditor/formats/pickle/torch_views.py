"""Tensor rebuild calls checked against the storages a checkpoint declares.

`torch.load` rebuilds each tensor as a view (offset, sizes, strides) of a
storage whose element count is in its persistent id. A view that reaches
past the storage reads or writes memory the tensor does not own: the class
of weights-only unpickler memory-corruption bugs (CVE-2026-24747) that makes
`weights_only=True` no boundary on older torch. Only concrete values are
judged; computed ones come from calls that are graded on their own.
"""

from __future__ import annotations

from typing import Any

from auditor.formats.pickle.machine import Call, Machine, Persistent
from auditor.model import Rule, Severity

VIEW = Rule(
    "AUD-PKL-012", Severity.HIGH, "Tensor view reaches outside its storage",
    "A tensor rebuilt with a negative offset, size or stride, or one whose last element lies "
    "past the end of its storage, makes the loader read or write memory it does not own — "
    "the way weights-only unpickler memory-corruption bugs are exploited.",
    "Do not load this file; re-save the checkpoint from a trusted source.",
)
RULES = (VIEW,)


def check_view(machine: Machine, call: Call, at: int) -> None:
    """`_rebuild_tensor*(storage, offset, size, stride, ...)`: the view must fit the storage."""
    args = call.args
    if not (isinstance(args, tuple) and len(args) >= 4):
        return
    storage, offset, size, stride = args[:4]
    numel = _numel(storage)
    if numel is None or not (_int(offset) and _ints(size) and _ints(stride)):
        return
    problem = _problem(offset, size, stride, numel)
    if problem:
        machine.env.finding(VIEW, f"REDUCE @{at} rebuilds a tensor whose {problem}", at)


def _problem(offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> str:
    if len(size) != len(stride):
        return f"sizes {size} and strides {stride} differ in length"
    if offset < 0 or min((*size, *stride), default=0) < 0:
        return f"offset {offset}, sizes {size} or strides {stride} are negative"
    if 0 in size:
        return ""
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= numel:
        return f"last element is at {last} but its storage holds {numel} elements"
    return ""


def _numel(storage: Any) -> int | None:
    """The element count a ('storage', type, key, location, numel, ...) persistent id declares."""
    if not isinstance(storage, Persistent):
        return None
    pid = storage.pid
    if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and _int(pid[4]):
        return pid[4]
    return None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value: Any) -> bool:
    return isinstance(value, tuple) and all(_int(v) for v in value)


HOOKS = {
    path: check_view
    for path in ("torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
                 "torch._utils._rebuild_qtensor")
}
