"""Generated and reference docs stay in step with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from auditor import config, rules
from auditor.formats.registry import SPECS
from tests.builders import write_tiny_model

DOCS = Path(__file__).resolve().parent.parent / "docs"
RULE_ID = re.compile(r"AUD-[A-Z]+-\d{3}")


def test_rules_md_is_generated_from_the_catalogue():
    assert (DOCS / "rules.md").read_text() == rules.markdown(), (
        "regenerate with: auditor rules --format markdown -o docs/rules.md"
    )


def test_every_rule_id_is_well_formed_and_declared_once():
    owners = [("a room", room) for room in rules.ROOM_RULES]
    owners += [(f"format {spec.id}", spec.rules) for spec in SPECS]
    declared: dict[str, object] = {}
    for owner, owned in owners:
        for rule in owned:
            assert RULE_ID.fullmatch(rule.id), f"{owner}: bad rule id {rule.id!r}"
            prior = declared.setdefault(rule.id, rule)
            assert prior == rule, f"{rule.id} declared twice, differently ({owner})"
    assert set(declared) == set(rules.catalogue())


def test_every_rule_says_why_and_how_to_fix():
    for rule in rules.catalogue().values():
        assert rule.title and rule.why and rule.fix, rule.id


def _keys(value, skip=("facts", "digests")):
    """Every object key in a JSON document, except inside open-ended maps."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            if key not in skip:
                yield from _keys(child, skip)
    elif isinstance(value, list):
        for child in value:
            yield from _keys(child, skip)


def test_every_json_report_key_is_documented(tmp_path, run_cli):
    model = write_tiny_model(tmp_path / "model")
    (model / "extra.safetensors").write_bytes(b"\x13\x37\x00\x00binary")
    doc = json.loads(run_cli("scan", model, "--format", "json").out)
    text = (DOCS / "report-json.md").read_text()
    missing = sorted({k for k in _keys(doc) if f"`{k}`" not in text})
    assert missing == []


def test_every_config_key_is_documented():
    text = (DOCS / "config.md").read_text()
    assert sorted(k for k in config._KEYS if f"`{k}`" not in text) == []


# Module paths and names the renovation retired; a doc naming one sends a reader nowhere.
RETIRED = re.compile(
    r"auditor\.scan\.|(?<![\w.])scan\.engine|(?<![\w/])scan/(?:engine|context|sniff)|policy\.gate"
    r"|policy/gate|mirror\.drift|mirror/drift|sources\.provenance|sources/provenance|scan_local"
    r"|FORMAT_MODULES|RULE_MODULES|\bregistry\(\)|\.NAME\b|NOT_SCANNED|on_disk")


def test_docs_name_no_retired_module():
    pages = [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]
    stale = [f"{p.name}:{n}: {m.group(0)}" for p in pages
             for n, line in enumerate(p.read_text().splitlines(), 1)
             for m in [RETIRED.search(line)] if m]
    assert not stale, "\n".join(stale)
