"""Checks that need more than one file: run once a model's files are all scanned.

A format module sees one stream; some facts only make sense against the rest
of the folder (an ONNX model's external-data files, the modules a config's
`auto_map` names). Each check is a function over the model's reports by path
that may replace reports (dataclasses are frozen) with added findings or a
refined format. The list is data: a new cross-file check is one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from auditor.formats.code import python as python_code
from auditor.formats.weights import onnx, tf_savedmodel
from auditor.model import FileReport

Check = Callable[[dict[str, FileReport]], None]

CHECKS: tuple[Check, ...] = (
    onnx.link_external_data,
    python_code.check_auto_map_modules,
    tf_savedmodel.link_variables,
)


def link(files: list[FileReport]) -> list[FileReport]:
    """Run every cross-file check; return the reports, still sorted by path."""
    by_path = {f.path: f for f in files}
    for check in CHECKS:
        check(by_path)
    return sorted(by_path.values(), key=lambda r: r.path)
