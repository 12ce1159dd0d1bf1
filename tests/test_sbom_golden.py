"""The reference SBOMs in `sboms/` are exactly what `auditor scan --sbom --reproducible` writes.

A failure here means the SBOM changed: if that was intended, regenerate with
`python -m tests.sbom_models` and review the diff like any other change.
"""

from __future__ import annotations

import json

import pytest
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator
from cyclonedx.validation.json import JsonStrictValidator

from tests.sbom_models import GOLDEN, GOLDEN_MODELS, generate, golden_name


@pytest.mark.parametrize("stem", sorted(GOLDEN_MODELS))
def test_golden_sbom_regenerates_byte_for_byte(stem, tmp_path):
    out = tmp_path / golden_name(stem)
    generate(stem, tmp_path, out)
    expected = (GOLDEN / golden_name(stem)).read_bytes()
    assert out.read_bytes() == expected, (
        f"sboms/{golden_name(stem)} is out of date: run `python -m tests.sbom_models`"
    )


@pytest.mark.parametrize("stem", sorted(GOLDEN_MODELS))
def test_golden_sbom_is_valid_cyclonedx(stem):
    path = GOLDEN / golden_name(stem)
    text = path.read_text()
    if path.suffix == ".xml":
        version = SchemaVersion.V1_6
        assert make_schemabased_validator(OutputFormat.XML, version).validate_str(text) is None
    else:
        version = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}[
            json.loads(text)["specVersion"]
        ]
        assert JsonStrictValidator(version).validate_str(text) is None
