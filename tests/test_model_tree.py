"""A folder of model folders is several models, each judged on its own lineage; nothing dropped.

`auditor gate models/` over several repositories must not judge one model
named `models`: a restricted origin one level down would be hidden. A single
repository (files at its top, parts in sub-folders) stays one model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import auditor
from auditor.errors import UsageError
from auditor.scanning.options import ScanOptions
from auditor.sources.tree import mirror_models, scanned_models
from tests.builders import write_tiny_model

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "policies" / "baseline.yaml"
GEO = ROOT / "policies" / "geopolitical-risk.yaml"
RESTRICTED_BASE = "deepseek-ai/DeepSeek-V3"
NAMES = ["google/tiny-a", "meta-llama/tiny-b", "tiny-distill"]


def with_base(model: Path, base: str) -> Path:
    card = model / "README.md"
    card.write_text(card.read_text().replace("example-org/tiny-base", base))
    return model


@pytest.fixture
def parent(tmp_path) -> Path:
    """Three repositories: two as org/name of standard lineage, one flat with a restricted base."""
    root = tmp_path / "models"
    with_base(write_tiny_model(root / "google" / "tiny-a"), "google/gemma-2-2b")
    with_base(write_tiny_model(root / "meta-llama" / "tiny-b"), "meta-llama/Llama-3.2-1B")
    with_base(write_tiny_model(root / "tiny-distill"), RESTRICTED_BASE)
    return root


def files_under(root: Path) -> set[Path]:
    """Every file a scan of `root` reads (`.git` is never read)."""
    return {Path(d) / f for d, _, fs in os.walk(root)
            if ".git" not in Path(d).relative_to(root).parts for f in fs}


def files_of_models(root: Path) -> set[Path]:
    """The files the models found in `root` cover (the whole folder when it is one model)."""
    models = scanned_models(root) or []
    folders = [m.path for m in models] or [root]
    return {f for folder in folders for f in files_under(folder)}


def test_a_parent_folder_of_three_repositories_is_three_models_each_with_its_own_files(parent):
    result = auditor.scan(parent)
    assert sorted(m.name for m in result.models) == NAMES
    for model in result.models:
        own = {f.path for f in model.files}
        assert own == {p.relative_to(parent / model.name).as_posix()
                       for p in files_under(parent / model.name)}


def test_gate_fails_only_the_model_with_the_restricted_base(parent):
    judged = auditor.gate(parent, [GEO])
    assert len(judged.documents) == 3
    assert {v.model for v in judged.verdict.violations} == {"tiny-distill"}
    restricted = [v for v in judged.verdict.violations if v.rule == "GEO-001"]
    assert restricted
    assert all(v.ancestor == RESTRICTED_BASE and RESTRICTED_BASE in v.message
               for v in restricted)


def test_the_cli_lists_every_model_and_writes_one_sbom_each(parent, run_cli, tmp_path):
    run = run_cli("gate", parent, "--policy", GEO, "--format", "json")
    assert run.code == 1
    doc = json.loads(run.out)
    assert sorted(m["name"] for m in doc["models"]) == NAMES
    sboms = tmp_path / "sboms"
    sboms.mkdir()
    assert run_cli("scan", parent, "--sbom", sboms, "--format", "json").code == 0
    assert len(list(sboms.iterdir())) == 3
    assert run_cli("gate", parent, "--policy", BASELINE).code == 0


def test_one_revision_cannot_pin_several_repositories(parent, run_cli):
    with pytest.raises(UsageError, match="3 models"):
        auditor.scan(parent, ScanOptions(revision="a" * 40))
    run = run_cli("scan", parent, "--revision", "a" * 40)
    assert run.code == 2 and "--revision" in run.err


def test_a_repository_with_files_at_its_top_and_parts_below_is_one_model(tmp_path):
    repo = write_tiny_model(tmp_path / "sd-like")
    write_tiny_model(repo / "unet")
    write_tiny_model(repo / "text_encoder")
    assert scanned_models(repo) == []
    (model,) = auditor.scan(repo).models
    assert model.name == "sd-like"
    assert "unet/model.safetensors" in {f.path for f in model.files}


def test_a_folder_whose_sub_folders_hold_no_model_marker_is_one_model(tmp_path):
    folder = tmp_path / "notes"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "todo.txt").write_text("x\n")
    (folder / "b").mkdir()
    (folder / "b" / "log.txt").write_text("y\n")
    assert scanned_models(folder) == []


def test_a_stray_folder_next_to_models_is_a_model_of_its_own(parent):
    (parent / "scratch" / "deep").mkdir(parents=True)
    (parent / "scratch" / "deep" / "payload.txt").write_text("hi\n")
    (parent / "tiny-distill" / "sub" / "deeper").mkdir(parents=True)
    (parent / "tiny-distill" / "sub" / "deeper" / "x.txt").write_text("x\n")
    names = [m.name for m in scanned_models(parent)]
    assert "scratch" in names
    assert files_of_models(parent) == files_under(parent)


def test_hidden_and_symlinked_folders_are_never_models(parent, tmp_path):
    (parent / ".git").mkdir()
    (parent / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (parent / "alias").symlink_to(parent / "tiny-distill", target_is_directory=True)
    names = [m.name for m in scanned_models(parent)]
    assert names == NAMES
    outside = write_tiny_model(tmp_path / "outside")
    (parent / "google" / "link").symlink_to(outside, target_is_directory=True)
    # an organisation holding a link out of the folder is scanned whole: the link is a finding
    assert [m.name for m in scanned_models(parent)] == ["google", "meta-llama/tiny-b",
                                                         "tiny-distill"]
    assert [m.name for m in mirror_models(parent)] == NAMES


def test_what_no_model_would_cover_keeps_the_folder_whole(parent, tmp_path):
    hidden = parent / ".stash"
    hidden.mkdir()
    (hidden / "evil.pkl").write_bytes(b"\x80\x04N.")
    assert scanned_models(parent) == []
    hidden.joinpath("evil.pkl").unlink()
    hidden.rmdir()
    (parent / "escape").symlink_to(write_tiny_model(tmp_path / "elsewhere"),
                                   target_is_directory=True)
    assert scanned_models(parent) == []
    (model,) = auditor.scan(parent).models
    assert "AUD-SRC-001" in {f.rule for f in model.all_findings()}


@pytest.mark.parametrize("extra", [
    "scratch/deep/payload.txt", "google/.hidden/w.bin", "google/README.md", ".DS_Store",
    "tiny-distill/onnx/model.onnx", "google/loose/x/y/z.txt", "notes.txt",
])
def test_no_file_under_the_scanned_folder_ends_up_in_no_model(parent, extra):
    path = parent / extra
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"data\n")
    assert files_of_models(parent) == files_under(parent)


_SEGMENT = st.sampled_from(["a", "b", ".h", ".git", "org"])
_LEAF = st.sampled_from(["config.json", "README.md", "w.safetensors", "notes.txt", ".x"])


@given(st.lists(st.tuples(st.lists(_SEGMENT, max_size=4), _LEAF), min_size=1, max_size=12))
def test_any_layout_keeps_every_file_in_some_model(tmp_path_factory, layout):
    root = tmp_path_factory.mktemp("layout")
    for folders, leaf in layout:
        folder = root.joinpath(*folders)
        if folder.is_file() or any(p.is_file() for p in [folder, *folder.parents]
                                   if root in p.parents):
            continue  # a file already sits where this folder would
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / leaf).is_dir():
            (folder / leaf).write_text("x\n")
    models = scanned_models(root)
    assert not any(a.path in b.path.parents for a in models for b in models)  # disjoint
    assert files_of_models(root) == files_under(root)
