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
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from auditor.model import Artifact, Coverage, FileReport, FormatId
from auditor.scanning import engine
from auditor.scanning.options import ScanOptions


@dataclass(frozen=True)
class Check:
    """A format module's model-level pass, imported and run only for a model it can bear on.

    `bears_on(report)` is true for every report the check reads as its subject
    (an ONNX model, a config naming code): without one, the check changes nothing.
    """

    module: str
    function: str
    bears_on: Callable[[FileReport], bool]

    def run(self, files: dict[str, FileReport]) -> None:
        if any(self.bears_on(report) for report in files.values()):
            getattr(importlib.import_module(self.module), self.function)(files)


CHECKS: tuple[Check, ...] = (
    Check("auditor.formats.weights.onnx", "link_external_data",
          lambda report: report.format == FormatId.ONNX),
    Check("auditor.formats.code.python", "check_auto_map_modules",
          lambda report: "auto_map" in report.facts or "custom_pipelines" in report.facts),
    Check("auditor.formats.weights.tf_savedmodel", "link_variables",
          lambda report: report.format == FormatId.TF_SAVEDMODEL),
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
        check.run(by_path)
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
