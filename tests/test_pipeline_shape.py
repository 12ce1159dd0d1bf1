"""The pipeline alone composes: sources say what they hold, the mirror only calls the pipeline."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from auditor import pipeline
from auditor.integrity.hashing import GIT_SHA1
from auditor.model import Rule, Severity
from auditor.scanning.options import ScanOptions
from auditor.sources.contract import Source
from auditor.sources.hfcache import CacheSnapshot
from auditor.sources.hub import HubRepo
from auditor.sources.local import LocalFolder
from auditor.sources.resolve import model_folder
from tests.hubfixtures import C1, tiny_files
from tests.test_hub_cache import make_cache

ROOT = Path(__file__).resolve().parent.parent
EXTRA = Rule("AUD-TEST-001", Severity.HIGH, "extra", "why", "fix")


def test_sources_offer_nothing_beyond_the_protocol():
    """A caller may rely only on `Source`; a method outside it is composition leaking out."""
    protocol = {n for n in vars(Source) if not n.startswith("_")}
    for cls in (LocalFolder, CacheSnapshot, HubRepo):
        methods = {n for n, v in vars(cls).items()
                   if not n.startswith("_") and inspect.isfunction(v)}
        assert methods <= protocol, f"{cls.__name__}: {sorted(methods - protocol)}"


def test_the_mirror_neither_opens_sources_nor_scans_nor_builds_reports():
    """mirror/scan.py calls the pipeline: no source class, no engine call, no report patching."""
    tree = ast.parse((ROOT / "auditor/mirror/scan.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not names & {"CacheSnapshot", "LocalFolder", "list_files", "scan_file",
                        "needs_blob_id", "GIT_SHA1", "scan_entries"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            assert func != "ModelReport", "a ModelReport is built only in the pipeline"
            assert not (func == "replace" and any(k.arg == "findings" for k in node.keywords)), \
                "findings are passed into the assembly, not patched on afterwards"


def test_findings_passed_in_come_last_among_the_models_own(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    source = LocalFolder(tmp_path / "m")
    artifacts = source.artifacts(())
    files, _ = pipeline.engine.scan_entries(artifacts.listing.entries, ScanOptions(),
                                            pipeline.engine.NoProgress())
    extra = EXTRA.finding("config.json", "moved")
    report = pipeline.model_from_files(source, artifacts, files, ScanOptions(), also=[extra])
    assert report.findings[-1] == extra
    assert all(extra not in f.findings for f in report.files)


def test_a_mirror_folder_maps_to_its_source(tmp_path):
    folder = make_cache(tmp_path / "hub", "org/tiny", C1, tiny_files())
    snapshot = model_folder(folder / "snapshots" / C1, "org/tiny")
    assert isinstance(snapshot, CacheSnapshot)
    assert (snapshot.identity.kind, snapshot.identity.revision) == ("hf-cache", C1)
    (tmp_path / "tree" / "org" / "empty").mkdir(parents=True)
    local = model_folder(tmp_path / "tree" / "org" / "empty", "org/empty")
    assert local.identity.name == "org/empty"
    assert local.artifacts(()).listing.entries == ()  # an emptied model, not a usage error


def test_one_hashing_choice_for_scan_and_mirror(tmp_path):
    """The git blob id is hashed where a claim names the file by it, and only there."""
    folder = make_cache(tmp_path, "org/tiny", C1, tiny_files())
    source = CacheSnapshot(folder, C1)
    artifacts = source.artifacts(())
    reading = pipeline.hashing(ScanOptions(), artifacts.listing.entries, source.claims())
    listing = source.claims().listing
    assert listing is not None
    by_blob_id = {p for p, up in listing.files.items() if not up.sha256}
    assert reading.git_blob_paths == by_blob_id and by_blob_id
    for entry in artifacts.listing.entries:
        expected = ("sha256", GIT_SHA1) if entry.relpath in by_blob_id else ("sha256",)
        assert reading.algorithms_for(entry.relpath) == expected


def test_the_trust_a_scan_checks_signatures_with_is_typed():
    """`ScanOptions.trust` is the signing room's `Trust`, so the pipeline needs no type escape."""
    from dataclasses import fields

    assert {f.name: f.type for f in fields(ScanOptions)}["trust"] == "Trust | None"
    assert "type: ignore" not in (ROOT / "auditor/pipeline.py").read_text()
