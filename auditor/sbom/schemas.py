"""CycloneDX versions and the official schemas (bundled with cyclonedx-python-lib, offline).

Shared by the writer (which validates what it makes), the XML renderer and
`auditor sbom validate`; kept apart from them so that none imports another
just to reach a schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from auditor.errors import AuditorError

WRITE_SPECS = ("1.5", "1.6")  # what `--spec` offers: the ML parts we write exist in both
READ_SPECS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")  # what the reader accepts
VALIDATE_SLICE = 100  # list items per schema validation pass (see `json_error`)
ERROR_CHARS = 240  # longest schema message shown
_LIST_ITEM = re.compile(r"^(\$\.(?:components|dependencies|vulnerabilities))\[(\d+)\]")


class SbomError(AuditorError):
    """The SBOM we generated is not valid CycloneDX: a bug, never the user's input."""


def schema_version(spec: str) -> Any:
    """The library's SchemaVersion for "1.x"; KeyError when the library has none."""
    from cyclonedx.schema import SchemaVersion

    return {f"{v.value[0]}.{v.value[1]}": v for v in SchemaVersion}[spec]


def newest_known(spec: str) -> str | None:
    """The version to validate `spec` against: itself when the library has its schema, else
    the newest the library has (for a newer 1.x the library does not know yet), else None."""
    from cyclonedx.schema import SchemaVersion

    known = sorted((v.value for v in SchemaVersion), reverse=True)
    try:
        schema_version(spec)
        return spec
    except KeyError:
        pass
    parts = spec.split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts) and parts[0] == "1" and (
            (1, int(parts[1])) > known[0]):
        return f"{known[0][0]}.{known[0][1]}"
    return None


def json_error(doc: dict[str, Any], spec: str) -> str | None:
    """None when `doc` validates against `spec`'s strict JSON schema, else one line: the
    schema's message (cut at ERROR_CHARS) and the JSON path of the offending value.

    The schema's `uniqueItems` makes the validator compare every pair of
    components (seconds for a thousand files), so long lists are validated in
    slices of VALIDATE_SLICE: every item is still validated, and uniqueness
    follows from unique bom-refs (checked separately).
    """
    from cyclonedx.validation.json import JsonStrictValidator

    validator = JsonStrictValidator(schema_version(spec))
    for start, part in _slices(doc):
        error = validator.validate_str(json.dumps(part))
        if error is not None:
            found = error.data
            item = _LIST_ITEM.match(found.json_path)
            path = found.json_path if item is None else (
                f"{item[1]}[{int(item[2]) + start}]{found.json_path[item.end():]}")
            return f"{path}: {_cut(found.message)}"
    return None


def xml_error(text: str, spec: str) -> str | None:
    """None when `text` validates against `spec`'s XSD, else one line: line number and the
    schema's message (cut at ERROR_CHARS)."""
    from cyclonedx.schema import OutputFormat
    from cyclonedx.validation import make_schemabased_validator

    error = make_schemabased_validator(OutputFormat.XML, schema_version(spec)).validate_str(text)
    if error is None:
        return None
    return f"line {error.data.line}: {_cut(error.data.message)}"


def _cut(message: str) -> str:
    """One line of at most ERROR_CHARS: a schema message can quote a whole component."""
    line = " ".join(message.split())
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 1] + "…"


def _slices(doc: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    lists = {k: doc[k] for k in ("components", "dependencies", "vulnerabilities")
             if isinstance(doc.get(k), list) and doc[k]}
    count = max((len(v) for v in lists.values()), default=0)
    for start in range(0, max(count, 1), VALIDATE_SLICE):
        part = {k: v for k, v in doc.items() if k not in lists}
        for key, items in lists.items():
            if items[start:start + VALIDATE_SLICE]:
                part[key] = items[start:start + VALIDATE_SLICE]
        yield start, part
