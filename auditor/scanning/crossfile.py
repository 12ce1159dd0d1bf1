"""Checks that need more than one file: run once a model's files are all scanned.

A format module sees one stream; some facts only make sense against the rest
of the folder (an ONNX model's external-data files, the modules a config's
`auto_map` names). Each check is a function over the model's reports by path
that may replace reports (dataclasses are frozen) with added findings or a
refined format. The list is data: a new cross-file check is one line here.

A part of a model scanned alone (one shard, an ONNX external-data file, a
.onnx whose data sits beside it) is judged with its siblings in view: the
source lists them as context, the files that can claim another file (ONNX
models, shard indexes) are read, the rest are known by path and size only,
and none of them is part of the result.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from auditor.formats.code import python as python_code
from auditor.formats.weights import onnx, tf_savedmodel
from auditor.model import Artifact, Coverage, FileReport, FormatId
from auditor.scanning import engine
from auditor.scanning.options import ScanOptions

Check = Callable[[dict[str, FileReport]], None]

CHECKS: tuple[Check, ...] = (
    onnx.link_external_data,
    python_code.check_auto_map_modules,
    tf_savedmodel.link_variables,
)
# Context files read because they name other files of their model.
CLAIMERS = ("*.onnx", "*.index.json")


def link(
    files: list[FileReport], context: Sequence[Artifact] = (), options: ScanOptions | None = None
) -> list[FileReport]:
    """Run every cross-file check; return the reports (not the context's), sorted by path."""
    by_path = {r.path: r for r in _context(context, options or ScanOptions())}
    by_path.update({f.path: f for f in files})
    for check in CHECKS:
        check(by_path)
    own = {f.path for f in files}
    return sorted((r for p, r in by_path.items() if p in own), key=lambda r: r.path)


def _context(context: Sequence[Artifact], options: ScanOptions) -> list[FileReport]:
    """Claimers read with the engine, every other sibling listed by path and size."""
    claimers = [a for a in context if _claims(a.relpath)]
    read = engine.scan_entries(tuple(claimers), options, engine.NoProgress())[0] if claimers else []
    return read + [FileReport(a.relpath, a.size, {}, FormatId.NOT_FETCHED, Coverage.UNSUPPORTED)
                   for a in context if not _claims(a.relpath)]


def _claims(relpath: str) -> bool:
    return any(fnmatch.fnmatchcase(relpath, pattern) for pattern in CLAIMERS)
