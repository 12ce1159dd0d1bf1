"""The scan engine: sniffing by content, coverage, sources, fail-closed file handling."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.errors import UsageError
from auditor.model import Artifact, Coverage, FileReport, ScanResult, Severity
from auditor.scanning import engine
from auditor.scanning.engine import NoProgress, scan_file
from auditor.scanning.options import ScanOptions
from tests.builders import safetensors_bytes, write_tiny_model

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
WEIGHTS = safetensors_bytes({"w": ("F32", [4, 4])})


def scan(target: Path, **options) -> ScanResult:
    return pipeline.scan(target, ScanOptions(**{"jobs": 1, **options}))


def files_of(result: ScanResult) -> dict[str, FileReport]:
    return {f.path: f for f in result.models[0].files}


def rules_of(report: FileReport) -> list[str]:
    return sorted(f.rule for f in report.findings)


def pickle_canary(canary: Path) -> bytes:
    """Protocol-2 pickle bytes that would run `touch canary` if anything unpickled them."""
    cmd = f"touch {canary}".encode()
    return (b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R.")


# -- sniffing by content, extensions that lie -------------------------------------------


def test_safetensors_name_on_pickle_bytes_is_a_mismatch_and_nothing_runs(tmp_path):
    canary = tmp_path / "canary"
    (tmp_path / "model.safetensors").write_bytes(pickle_canary(canary))
    report = files_of(scan(tmp_path))["model.safetensors"]
    assert "AUD-FILE-001" in rules_of(report)
    assert report.format != "safetensors"
    assert report.worst >= Severity.HIGH
    assert not canary.exists()


def test_safetensors_name_on_a_zip_is_a_mismatch(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    (tmp_path / "model.safetensors").write_bytes(buf.getvalue())
    report = files_of(scan(tmp_path))["model.safetensors"]
    assert "AUD-FILE-001" in rules_of(report)
    assert report.worst >= Severity.HIGH


def test_txt_that_is_binary_is_a_mismatch_and_an_unsupported_binary(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"\x00\x01\x02binary\xff" * 10)
    report = files_of(scan(tmp_path))["notes.txt"]
    assert rules_of(report) == ["AUD-FILE-001", "AUD-SCAN-003"]
    assert report.coverage == Coverage.UNSUPPORTED


def test_extension_is_not_trusted_safetensors_content_under_another_name(tmp_path):
    (tmp_path / "weights.bin").write_bytes(WEIGHTS)  # .bin may hold safetensors
    (tmp_path / "weights.data").write_bytes(WEIGHTS)  # unknown extension: content decides
    files = files_of(scan(tmp_path))
    for name in ("weights.bin", "weights.data"):
        assert files[name].format == "safetensors"
        assert files[name].findings == ()
        assert files[name].coverage == Coverage.SCANNED


def test_plain_text_and_images_are_unsupported_at_info(tmp_path):
    (tmp_path / "LICENSE").write_text("Apache License\nVersion 2.0\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    result = scan(tmp_path)
    for report in files_of(result).values():
        assert report.coverage == Coverage.UNSUPPORTED
        assert rules_of(report) == ["AUD-SCAN-005"]
        assert report.worst == Severity.INFO
    assert not result.fails(Severity.LOW)


@pytest.mark.parametrize(
    ("magic", "rule"),
    [
        pytest.param(b"7z\xbc\xaf\x27\x1c", "AUD-SCAN-004", id="7z"),
        pytest.param(b"Rar!\x1a\x07\x00", "AUD-SCAN-004", id="rar"),
        pytest.param(b"\x13\x37\x00\x00weights", "AUD-SCAN-003", id="unknown-binary"),
    ],
)
def test_weight_like_content_we_cannot_parse_is_unsupported_and_high(tmp_path, magic, rule):
    (tmp_path / "blob").write_bytes(magic + bytes(100))
    report = files_of(scan(tmp_path))["blob"]
    assert report.coverage == Coverage.UNSUPPORTED
    assert rules_of(report) == [rule]
    assert report.worst == Severity.HIGH


def test_zero_byte_file_is_hashed_and_clean(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    report = files_of(scan(tmp_path))["empty.txt"]
    assert report.size == 0
    assert report.sha256 == EMPTY_SHA256
    assert report.format == "empty"
    assert report.findings == ()


def test_zero_byte_safetensors_is_a_high_finding(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    report = files_of(scan(tmp_path))["model.safetensors"]
    assert rules_of(report) == ["AUD-FILE-001"]
    assert report.worst == Severity.HIGH


# -- hashing in the same pass --------------------------------------------------------------


def test_digest_and_size_are_the_files_and_the_bulk_is_read_once(tmp_path):
    big = safetensors_bytes({"w": ("F32", [1024, 1024])})  # 4 MiB data area
    (tmp_path / "model.safetensors").write_bytes(big)
    result = scan(tmp_path)
    report = files_of(result)["model.safetensors"]
    assert report.sha256 == hashlib.sha256(big).hexdigest()
    assert report.size == len(big)
    assert result.bytes_read == len(big)  # the header is parsed from the sniff buffer


# -- sources: folders, links, .git, special files ------------------------------------------


def test_symlink_leaving_the_root_is_a_finding_and_its_target_is_never_read(
    tmp_path, monkeypatch
):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.bin"
    secret.write_bytes(b"TOP-SECRET-CONTENT")
    (outside / "dir").mkdir()
    (outside / "dir" / "other.safetensors").write_bytes(WEIGHTS)
    model = write_tiny_model(tmp_path / "model")
    (model / "evil.safetensors").symlink_to(secret)
    (model / "relative.bin").symlink_to(Path("..") / "outside" / "secret.bin")
    (model / "linked_dir").symlink_to(outside / "dir")

    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def recording_open(file, *args, **kwargs):
        opened.append(os.path.realpath(file) if isinstance(file, (str, Path)) else str(file))
        return real_open(file, *args, **kwargs)

    def recording_os_open(path, *args, **kwargs):
        opened.append(os.path.realpath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(os, "open", recording_os_open)
    result = scan(model)
    monkeypatch.undo()

    escapes = {f.file: f for f in result.models[0].findings if f.rule == "AUD-SRC-001"}
    assert set(escapes) == {"evil.safetensors", "relative.bin", "linked_dir"}
    assert all(f.severity == Severity.HIGH for f in escapes.values())
    assert "evil.safetensors" not in files_of(result)
    assert "linked_dir/other.safetensors" not in files_of(result)
    assert str(model / "model.safetensors") in opened  # the recording works
    assert str(secret) not in opened
    assert not any(p.startswith(str(outside)) for p in opened)
    assert result.fails(Severity.HIGH)


def test_symlinks_inside_the_root_are_followed(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "alias.json").symlink_to("config.json")
    files = files_of(scan(model))
    assert files["alias.json"].sha256 == files["config.json"].sha256
    assert files["alias.json"].format == "json"


def test_broken_symlink_is_a_medium_finding(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "gone.safetensors").symlink_to(model / "missing.safetensors")
    result = scan(model)
    (finding,) = [f for f in result.models[0].findings if f.file == "gone.safetensors"]
    assert finding.rule == "AUD-SRC-003"
    assert finding.severity == Severity.MEDIUM


def build_hf_cache(root: Path, repo: str = "org/name") -> tuple[Path, str]:
    """`models--org--name/{blobs,snapshots/<commit>,refs/main}` as huggingface_hub lays it out."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    (repo_dir / "blobs").mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, content in (("model.safetensors", WEIGHTS), ("config.json", b'{"model_type": "x"}')):
        blob = hashlib.sha256(content).hexdigest()
        (repo_dir / "blobs" / blob).write_bytes(content)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob)
    return snapshot, commit


def test_hf_cache_snapshot_links_into_its_own_blobs_are_followed(tmp_path):
    snapshot, commit = build_hf_cache(tmp_path / "hub")
    result = scan(snapshot)
    model = result.models[0]
    assert model.findings == ()
    assert (model.name, model.revision) == ("org/name", commit)
    files = files_of(result)
    assert files["model.safetensors"].sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert files["model.safetensors"].coverage == Coverage.SCANNED
    assert not result.fails(Severity.LOW)


def test_hf_cache_snapshot_link_into_another_repos_blobs_escapes(tmp_path):
    snapshot, _ = build_hf_cache(tmp_path / "hub")
    other, _ = build_hf_cache(tmp_path / "hub", "other/model")
    other_blob = os.path.realpath(other / "model.safetensors")
    (snapshot / "stolen.safetensors").symlink_to(other_blob)
    result = scan(snapshot)
    assert [f.rule for f in result.models[0].findings] == ["AUD-SRC-001"]
    assert "stolen.safetensors" not in files_of(result)


def test_folder_that_cannot_be_listed_is_a_finding_not_silence(tmp_path, monkeypatch):
    model = write_tiny_model(tmp_path / "model")
    (model / "shards").mkdir()
    (model / "shards" / "part-1.safetensors").write_bytes(WEIGHTS)
    real_scandir = os.scandir

    def failing_scandir(path="."):
        if os.fspath(path).endswith("shards"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing_scandir)
    result = scan(model)
    monkeypatch.undo()
    (finding,) = result.models[0].findings
    assert (finding.rule, finding.file) == ("AUD-SRC-004", "shards")
    assert finding.severity == Severity.HIGH
    assert "Permission denied" in finding.detail
    assert "config.json" in files_of(result)
    assert result.fails(Severity.HIGH)


def test_git_folder_is_skipped_and_gives_the_revision(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    commit = "89abcdef" * 5
    (model / ".git" / "refs" / "heads").mkdir(parents=True)
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model / ".git" / "refs" / "heads" / "main").write_text(commit + "\n")
    (model / ".git" / "objects").mkdir()
    (model / ".git" / "objects" / "pack.bin").write_bytes(b"\x00\xff" * 50)
    result = scan(model)
    assert not any(p.startswith(".git") for p in files_of(result))
    assert result.models[0].revision == commit


def test_injected_read_error_is_an_error_finding_and_other_files_still_scan(
    tmp_path, monkeypatch
):
    model = write_tiny_model(tmp_path / "model")
    real_open = engine._open_regular

    class FailingFile(io.FileIO):
        def readinto(self, b):
            raise OSError(errno.EIO, "Input/output error")

    def open_failing(path):
        raw = real_open(path)
        if path.name != "model.safetensors":
            return raw
        fd = os.dup(raw.fileno())
        raw.close()
        return FailingFile(fd, "rb")

    monkeypatch.setattr(engine, "_open_regular", open_failing)
    result = scan(model)
    monkeypatch.undo()
    files = files_of(result)
    broken = files["model.safetensors"]
    assert broken.coverage == Coverage.ERROR
    assert rules_of(broken) == ["AUD-SCAN-006"]
    assert "Input/output error" in broken.findings[0].detail
    assert files["config.json"].coverage == Coverage.SCANNED
    assert result.fails(Severity.HIGH)


def test_open_failure_is_an_error_finding(tmp_path, monkeypatch):
    model = write_tiny_model(tmp_path / "model")
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if str(path).endswith("config.json"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    result = scan(model)
    monkeypatch.undo()
    report = files_of(result)["config.json"]
    assert report.coverage == Coverage.ERROR
    assert rules_of(report) == ["AUD-SCAN-006"]
    assert report.sha256 == ""


def run_with_timeout(fn, seconds: float = 20.0):
    """Run `fn` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "scan blocked"
    return box["value"]


def test_fifo_in_a_folder_is_a_finding_and_never_opened(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    os.mkfifo(model / "pipe.safetensors")
    result = run_with_timeout(lambda: scan(model))
    report = files_of(result)["pipe.safetensors"]
    assert report.coverage == Coverage.ERROR
    assert rules_of(report) == ["AUD-SRC-002"]
    assert "FIFO" in report.findings[0].detail


def test_fifo_named_directly_is_a_finding_and_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    result = run_with_timeout(lambda: scan(tmp_path / "pipe"))
    assert rules_of(files_of(result)["pipe"]) == ["AUD-SRC-002"]


def test_fifo_swapped_in_after_the_listing_does_not_hang(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    entry = Artifact("model.safetensors", fifo, 100)  # listed while it was a regular file
    report, read = run_with_timeout(lambda: scan_file(entry, ScanOptions(), NoProgress()))
    assert rules_of(report) == ["AUD-SCAN-006"]
    assert "not a regular file" in report.findings[0].detail
    assert report.coverage == Coverage.ERROR
    assert read == 0


def test_symlink_swapped_in_after_the_listing_is_not_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"TOP-SECRET")
    link = tmp_path / "model" / "config.json"
    link.parent.mkdir()
    link.symlink_to(secret)
    report, read = scan_file(Artifact("config.json", link, 10), ScanOptions(), NoProgress())
    assert rules_of(report) == ["AUD-SCAN-006"]
    assert report.sha256 == ""
    assert read == 0


# -- what is scanned ------------------------------------------------------------------------


def test_empty_folder_is_a_usage_error_not_clean(tmp_path):
    with pytest.raises(UsageError, match="nothing to scan"):
        scan(tmp_path)


def test_folder_with_only_git_is_a_usage_error(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    with pytest.raises(UsageError, match="nothing to scan"):
        scan(tmp_path)


def test_exclude_matches_names_and_paths(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    (model / "sub").mkdir()
    (model / "sub" / "extra.bin").write_bytes(b"\x00\x01" * 10)
    (model / "top.bin").write_bytes(b"\x00\x01" * 10)
    assert set(files_of(scan(model, exclude=("*.bin",)))) == {
        "README.md", "config.json", "generation_config.json", "model.safetensors"}
    assert "sub/extra.bin" not in files_of(scan(model, exclude=("sub/*",)))
    assert "top.bin" in files_of(scan(model, exclude=("sub/*",)))


def test_everything_excluded_is_a_usage_error(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    with pytest.raises(UsageError, match="everything excluded"):
        scan(model, exclude=("*",))


def test_parallel_and_serial_scans_give_identical_reports(tmp_path):
    model = write_tiny_model(tmp_path / "model")
    for i in range(6):
        (model / f"shard-{i}.safetensors").write_bytes(
            safetensors_bytes({"w": ("F32", [64, 64 + i])}))
    (model / "odd.txt").write_bytes(b"\x00binary")
    serial, parallel = scan(model, jobs=1), scan(model, jobs=2)
    assert serial.models == parallel.models
    assert serial.bytes_read == parallel.bytes_read


def test_interrupt_stops_the_scan_without_scanning_the_remaining_files(tmp_path, monkeypatch):
    entries = tuple(Artifact(f"f{i}", tmp_path / f"f{i}", 100 - i) for i in range(40))
    started: list[str] = []

    def slow_scan(entry, options, progress):
        started.append(entry.relpath)
        if entry.relpath == "f0":
            raise KeyboardInterrupt
        threading.Event().wait(0.02)
        return scan_file(entry, options, progress)

    monkeypatch.setattr(engine, "scan_file", slow_scan)
    with pytest.raises(KeyboardInterrupt):
        engine.scan_entries(entries, ScanOptions(jobs=2), NoProgress())
    assert len(started) < 10
