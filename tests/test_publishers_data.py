"""The shipped publisher data (`policies/data/publishers.yaml`): every entry sourced and dated.

The file is hand-curated and decides the origin (and so the geopolitical tier)
of every model a policy judges, so its shape is checked like code: a missing
source, a malformed country or a namespace listed twice would silently change
verdicts.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import yaml

PUBLISHERS = Path(__file__).resolve().parent.parent / "policies" / "data" / "publishers.yaml"
NAMED_IN_THE_ISSUE = {
    "unsloth", "bartowski", "TheBloke", "lmstudio-community", "onnx-community", "mlx-community",
    "NousResearch",
}
CONVERTERS = {
    "unsloth", "bartowski", "TheBloke", "lmstudio-community", "onnx-community", "mlx-community",
}


def _entries() -> dict[str, dict]:
    return yaml.safe_load(PUBLISHERS.read_text())["publishers"]


def _namespaces_as_written() -> list[str]:
    """Every key of the `publishers:` mapping, duplicates kept.

    `yaml.safe_load` keeps the last of two equal keys without a word, so the
    keys are read from the composed node tree instead of the loaded dict.
    """
    root = yaml.compose(PUBLISHERS.read_text())
    (publishers,) = [v for k, v in root.value if k.value == "publishers"]
    return [k.value for k, _ in publishers.value]


def test_every_entry_names_its_organisation_source_and_review_date():
    for name, entry in _entries().items():
        assert isinstance(entry.get("organisation"), str) and entry["organisation"], name
        assert isinstance(entry.get("source"), str), name
        assert re.fullmatch(r"https://\S+", entry["source"]), name
        assert isinstance(entry.get("reviewed"), datetime.date), name


def test_every_original_publisher_has_an_iso_country_code():
    for name, entry in _entries().items():
        if entry.get("role") == "converter":
            continue
        assert isinstance(entry.get("country"), str), name
        assert re.fullmatch(r"[A-Z]{2}", entry["country"]), name


def test_role_when_present_is_converter_and_keys_are_known():
    for name, entry in _entries().items():
        assert set(entry) <= {"organisation", "country", "role", "source", "reviewed"}, name
        assert entry.get("role", "converter") == "converter", name


def test_no_namespace_is_listed_twice_case_insensitively():
    written = _namespaces_as_written()
    folded = [n.lower() for n in written]
    assert sorted({n for n in folded if folded.count(n) > 1}) == []


def test_no_two_namespaces_share_the_engines_lookup_key():
    """The engine compares letters and digits only (`Deepseek AI` is `deepseek-ai`)."""
    keys = ["".join(c for c in n.lower() if c.isalnum()) for n in _namespaces_as_written()]
    assert sorted({k for k in keys if keys.count(k) > 1}) == []


def test_the_namespaces_the_issue_names_are_present():
    assert set(_entries()) >= NAMED_IN_THE_ISSUE


def test_the_big_quantizers_are_converters():
    entries = _entries()
    assert {n for n in CONVERTERS if entries[n].get("role") != "converter"} == set()
