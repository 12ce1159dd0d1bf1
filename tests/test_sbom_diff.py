"""`auditor sbom diff`: release review over real pairs of SBOMs made by `auditor scan --sbom`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import safetensors_bytes, write_tiny_model


@pytest.fixture
def model(tmp_path) -> Path:
    return write_tiny_model(tmp_path / "tiny-model")


@pytest.fixture
def sbom(run_cli, tmp_path):
    counter = iter(range(1000))

    def make(folder: Path) -> Path:
        out = tmp_path / f"sbom-{next(counter)}.cdx.json"
        run = run_cli("scan", folder, "--format", "json", "--sbom", out, "--reproducible")
        assert run.code in (0, 1), run.err
        return out

    return make


def _diff(run_cli, old: Path, new: Path) -> tuple[int, dict]:
    run = run_cli("sbom", "diff", old, new, "--format", "json")
    return run.code, json.loads(run.out) if run.out else {}


def _kinds(doc: dict) -> list[tuple[str, str]]:
    return [(c["kind"], c["subject"]) for c in doc["changes"]]


def test_identical_sboms_exit_0(run_cli, model, sbom):
    first, second = sbom(model), sbom(model)
    run = run_cli("sbom", "diff", first, second)
    assert run.code == 0, run.err
    assert "no changes" in run.out


def test_rehashed_file_is_reported_with_both_digests(run_cli, model, sbom):
    old = sbom(model)
    (model / "model.safetensors").write_bytes(
        safetensors_bytes({"model.embed_tokens.weight": ("F32", [32, 16])}, {"format": "pt"})
    )
    new = sbom(model)
    code, doc = _diff(run_cli, old, new)
    assert code == 1
    assert _kinds(doc) == [("file-rehashed", "model.safetensors")]
    change = doc["changes"][0]
    assert change["old"].startswith("SHA-256:") and change["new"].startswith("SHA-256:")
    assert change["old"] != change["new"]


def test_added_file_with_a_finding(run_cli, model, sbom):
    old = sbom(model)
    (model / "extra.safetensors").write_bytes(
        safetensors_bytes({"w": ("F32", [2])}, trailing=b"\x00" * 8)
    )
    new = sbom(model)
    code, doc = _diff(run_cli, old, new)
    assert code == 1
    kinds = _kinds(doc)
    assert ("file-added", "extra.safetensors") in kinds
    assert ("finding-new", "extra.safetensors") in kinds
    finding = next(c for c in doc["changes"] if c["kind"] == "finding-new")
    assert finding["new"].startswith("AUD-ST-006 high extra.safetensors")
    # and back: the finding and the file are gone
    code, back = _diff(run_cli, new, old)
    assert ("file-removed", "extra.safetensors") in _kinds(back)
    assert ("finding-gone", "extra.safetensors") in _kinds(back)


def test_licence_change_is_reported(run_cli, model, sbom):
    old = sbom(model)
    card = (model / "README.md").read_text().replace("license: apache-2.0", "license: mit")
    (model / "README.md").write_text(card)
    new = sbom(model)
    code, doc = _diff(run_cli, old, new)
    assert code == 1
    licence = next(c for c in doc["changes"] if c["kind"] == "licence")
    assert (licence["old"], licence["new"]) == ("Apache-2.0", "MIT")
    assert ("file-rehashed", "README.md") in _kinds(doc)


def test_lineage_and_revision_changes_are_reported(run_cli, model, sbom, tmp_path):
    old = sbom(model)
    card = (model / "README.md").read_text().replace("example-org/tiny-base", "other/base")
    (model / "README.md").write_text(card)
    out = tmp_path / "pinned.cdx.json"
    run = run_cli("scan", model, "--sbom", out, "--reproducible", "--revision", "c" * 40)
    assert run.code == 0, run.err
    code, doc = _diff(run_cli, old, out)
    assert code == 1
    by_kind = {c["kind"]: c for c in doc["changes"]}
    assert "example-org/tiny-base" in by_kind["lineage"]["old"]
    assert "other/base" in by_kind["lineage"]["new"]
    assert (by_kind["revision"]["old"], by_kind["revision"]["new"]) == (None, "c" * 40)


def test_text_output_lists_each_change(run_cli, model, sbom):
    old = sbom(model)
    (model / "config.json").write_text("{}\n")
    new = sbom(model)
    run = run_cli("sbom", "diff", old, new)
    assert run.code == 1
    assert "1 change" in run.out
    assert "~ file     config.json  SHA-256:" in run.out


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    ("{not json", "not JSON"),
    ('{"hello": "world"}', "not a CycloneDX document"),
])
def test_unreadable_input_exits_2_naming_the_file(run_cli, model, sbom, tmp_path, content,
                                                  message):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    run = run_cli("sbom", "diff", sbom(model), bad)
    assert run.code == 2
    assert str(bad) in run.err and message in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_a_weaker_grade_of_provenance_is_a_change_marked_weaker(run_cli, tmp_path):
    """The same bytes proven by the Hub, then only by a cache's record: the review must see it."""
    from tests.sbom_factory import file_component, model_sbom

    def doc(grade: str) -> dict:
        weights = file_component("model.safetensors", upstream_match="true")
        weights["properties"].append({"name": "auditor:upstream:grade", "value": grade})
        return model_sbom("acme/m", files=[weights], upstream_match="true", upstream_grade=grade)

    paths = []
    for name, grade in (("hub.json", "hub-verified"), ("cache.json", "recorded")):
        (tmp_path / name).write_text(json.dumps(doc(grade)))
        paths.append(tmp_path / name)
    run = run_cli("sbom", "diff", *paths)
    assert run.code == 1, run.err
    assert "~ provenance publisher hub-verified; bytes hub-verified → publisher hub-verified; " \
           "bytes recorded" in run.out
    assert "~ grade    model.safetensors  hub-verified → recorded (weaker)" in run.out
    back = run_cli("sbom", "diff", *reversed(paths))
    assert "recorded → hub-verified" in back.out and "(weaker)" not in back.out
