"""`auditor scan` as a user sees it: verdicts, exit codes, reports, progress, outputs."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.version import __version__
from tests.builders import safetensors_bytes, write_tiny_model

TOP_KEYS = {"schema", "auditor", "target", "verdict", "fail_on", "worst", "summary", "models"}
SUMMARY_KEYS = {"models", "files", "bytes", "bytes_read", "elapsed_s", "coverage", "excluded",
                "findings"}
MODEL_KEYS = {"name", "root", "source", "revision", "verdict", "coverage", "findings", "facts",
              "files"}
FILE_KEYS = {"path", "size", "sha256", "digests", "format", "coverage", "verdict", "findings",
             "facts"}
FINDING_KEYS = {"rule", "severity", "title", "detail", "file", "member", "offset", "why", "fix"}


@pytest.fixture
def clean_model(tmp_path):
    return write_tiny_model(tmp_path / "model")


@pytest.fixture
def mixed_model(tmp_path):
    """One file per coverage: scanned, partial (nesting limit), unsupported, error."""
    model = write_tiny_model(tmp_path / "mixed")
    (model / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (model / "blob.bin").write_bytes(b"\x13\x37\x00\x00" * 8)
    (model / "broken.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [2])})[:12])
    (model / "bad.safetensors").write_bytes(b"\x10" + bytes(7) + b'{"a": [}' + b" " * 8)
    return model


def scan_json(run_cli, *args):
    run = run_cli("scan", *args, "--format", "json")
    return run, json.loads(run.out)


# -- verdicts and exit codes ------------------------------------------------------------


def test_clean_model_passes_with_exit_0(run_cli, clean_model):
    run = run_cli("scan", clean_model)
    assert run.code == 0, run.err
    assert "verdict: PASS" in run.out
    assert "every file fully scanned" in run.out
    assert run.err == ""


def test_high_finding_fails_with_exit_1_and_says_where_why_and_fix(run_cli, clean_model):
    (clean_model / "extra.safetensors").write_bytes(b"\x00\x01" * 100)
    run = run_cli("scan", clean_model)
    assert run.code == 1
    assert "verdict: FAIL — 2 finding(s) at or above high" in run.out
    assert "AUD-FILE-001" in run.out and "AUD-SCAN-003" in run.out
    assert "extra.safetensors" in run.out
    assert "why: " in run.out and "fix: " in run.out


def test_fail_on_critical_lets_a_high_finding_pass(run_cli, clean_model):
    (clean_model / "blob.bin").write_bytes(b"\x00\x01" * 100)
    assert run_cli("scan", clean_model).code == 1
    run, doc = scan_json(run_cli, clean_model, "--fail-on", "critical")
    assert run.code == 0
    assert (doc["verdict"], doc["worst"], doc["fail_on"]) == ("pass", "high", "critical")


def test_fail_on_info_fails_on_an_info_finding(run_cli, clean_model):
    (clean_model / "LICENSE").write_text("Apache License 2.0\n")
    assert run_cli("scan", clean_model).code == 0
    assert run_cli("scan", clean_model, "--fail-on", "info").code == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["scan", "{model}", "--fail-on", "severe"], id="bad-choice"),
        pytest.param(["scan"], id="missing-target"),
        pytest.param(["scan", "{model}", "--no-such-flag"], id="unknown-option"),
        pytest.param(["scna", "{model}"], id="unknown-command"),
        pytest.param(["scan", "{model}", "--jobs", "0"], id="jobs-zero"),
    ],
)
def test_usage_errors_exit_2_with_one_line(run_cli, clean_model, args):
    run = run_cli(*[a.format(model=clean_model) for a in args])
    assert run.code == 2
    assert run.err.startswith("auditor: error: ")
    assert run.err.count("\n") == 1
    assert run.out == ""


def test_nonexistent_path_exits_2_naming_it(run_cli, tmp_path):
    run = run_cli("scan", tmp_path / "nope")
    assert run.code == 2
    assert f"{tmp_path / 'nope'}: no such file or folder" in run.err
    assert run.out == ""


def test_empty_folder_exits_2_and_never_says_clean(run_cli, tmp_path):
    run = run_cli("scan", tmp_path)
    assert run.code == 2
    assert "nothing to scan" in run.err
    assert "PASS" not in run.out and "clean" not in run.out


def test_everything_excluded_exits_2(run_cli, clean_model):
    run = run_cli("scan", clean_model, "--exclude", "*")
    assert run.code == 2
    assert "everything excluded" in run.err


def test_internal_error_exits_3(run_cli, clean_model, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("engine bug")

    monkeypatch.setattr("auditor.report.text.to_text", boom)
    run = run_cli("scan", clean_model)
    assert run.code == 3
    assert "internal error: RuntimeError: engine bug" in run.err


def test_version(run_cli):
    run = run_cli("--version")
    assert run.code == 0
    assert run.out.strip() == f"auditor, version {__version__}"


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "auditor", "--version"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert __version__ in proc.stdout


# -- coverage is stated in every report -------------------------------------------------


def test_coverage_counts_in_the_text_report(run_cli, mixed_model):
    run = run_cli("scan", mixed_model)
    assert run.code == 1
    assert ("coverage: 8 files — 4 scanned, 1 partial (limit hit), "
            "1 unsupported (hashed only), 2 error") in run.out
    assert "verdict: FAIL" in run.out


def test_coverage_counts_in_the_json_report(run_cli, mixed_model):
    _, doc = scan_json(run_cli, mixed_model)
    expected = {"scanned": 4, "partial": 1, "unsupported": 1, "error": 2}
    assert doc["summary"]["coverage"] == expected
    assert doc["models"][0]["coverage"] == expected
    files = {f["path"]: f["coverage"] for f in doc["models"][0]["files"]}
    assert files["deep.json"] == "partial"
    assert files["blob.bin"] == "unsupported"
    assert files["broken.safetensors"] == files["bad.safetensors"] == "error"


def test_pass_over_unscanned_files_says_so(run_cli, clean_model):
    (clean_model / "blob.bin").write_bytes(b"\x00\x01" * 100)
    run = run_cli("scan", clean_model, "--fail-on", "critical")
    assert run.code == 0
    assert "1 file(s) not fully scanned" in run.out
    assert "every file fully scanned" not in run.out


# -- the JSON report ------------------------------------------------------------------


def test_json_report_has_the_documented_shape(run_cli, mixed_model):
    _, doc = scan_json(run_cli, mixed_model)
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == 1
    assert set(doc["auditor"]) == {"version", "rules_version"}
    assert set(doc["summary"]) == SUMMARY_KEYS
    assert set(doc["summary"]["findings"]) == {"critical", "high", "medium", "low", "info"}
    assert doc["summary"]["files"] == 8
    model = doc["models"][0]
    assert set(model) == MODEL_KEYS
    assert model["name"] == "mixed"
    for file in model["files"]:
        assert set(file) == FILE_KEYS
        assert len(file["sha256"]) == 64 or file["coverage"] == "error"
        for finding in file["findings"]:
            assert set(finding) == FINDING_KEYS
            assert finding["file"] == file["path"]
    assert doc["summary"]["bytes"] == sum(f["size"] for f in model["files"])
    bad = next(f for f in model["files"] if f["path"] == "bad.safetensors")["findings"][0]
    assert (bad["rule"], bad["severity"], bad["offset"]) == ("AUD-ST-001", "high", 8 + 7)
    assert bad["why"] and bad["fix"]


def test_jobs_1_and_jobs_2_give_identical_reports(run_cli, mixed_model):
    for i in range(5):
        (mixed_model / f"shard-{i}.safetensors").write_bytes(
            safetensors_bytes({"w": ("F32", [32, 32 + i])}))
    docs = []
    for jobs in ("1", "2"):
        _, doc = scan_json(run_cli, mixed_model, "--jobs", jobs)
        del doc["summary"]["elapsed_s"]
        docs.append(doc)
    assert docs[0] == docs[1]


# -- progress -------------------------------------------------------------------------


class FakeProgress:
    built = 0

    def __init__(self):
        FakeProgress.built += 1

    def start(self, total_bytes, total_files):
        pass

    def file_started(self, name):
        pass

    def advance(self, nbytes):
        pass

    def finish(self):
        pass


def test_progress_is_silent_without_a_tty(run_cli, clean_model):
    run = run_cli("scan", clean_model)
    assert run.err == ""


@pytest.mark.parametrize(("fmt", "built"), [("text", 1), ("json", 0)])
def test_progress_on_a_tty_only_for_text_output(run_cli, clean_model, monkeypatch, fmt, built):
    monkeypatch.setattr(FakeProgress, "built", 0)
    monkeypatch.setattr("auditor.progress.TerminalProgress", FakeProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run = run_cli("scan", clean_model, "--format", fmt)
    assert run.code == 0
    assert FakeProgress.built == built


def test_terminal_progress_survives_a_parallel_scan_and_keeps_stdout_clean(clean_model, capsys):
    from auditor import pipeline
    from auditor.progress import TerminalProgress
    from auditor.scanning.options import ScanOptions

    pipeline.scan(clean_model, ScanOptions(jobs=2), TerminalProgress())
    captured = capsys.readouterr()
    assert captured.out == ""


# -- -o writes atomically ---------------------------------------------------------------


def test_output_file_is_written_and_stdout_stays_empty(run_cli, clean_model, tmp_path):
    out = tmp_path / "report.json"
    run = run_cli("scan", clean_model, "--format", "json", "-o", out)
    assert run.code == 0
    assert run.out == ""
    assert json.loads(out.read_text())["verdict"] == "pass"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "report.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    run_cli, clean_model, tmp_path, monkeypatch
):
    out = tmp_path / "report.txt"
    out.write_text("previous report\n")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    run = run_cli("scan", clean_model, "-o", out)
    assert run.code == 3
    assert str(out) in run.err and "No space left on device" in run.err
    assert out.read_text() == "previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "report.txt"]


def test_output_into_a_missing_folder_is_an_io_error(run_cli, clean_model, tmp_path):
    run = run_cli("scan", clean_model, "-o", tmp_path / "no" / "report.txt")
    assert run.code == 3
    assert "report.txt" in run.err


# -- auditor rules -------------------------------------------------------------------------


def test_rules_lists_every_rule(run_cli):
    from auditor.rules import catalogue

    run = run_cli("rules")
    assert run.code == 0
    ids = [line.split()[0] for line in run.out.splitlines()]
    assert ids == list(catalogue())
    assert "AUD-ST-001" in ids and "AUD-SCAN-001" in ids


def test_rules_markdown_to_a_file(run_cli, tmp_path):
    from auditor.rules import markdown

    out = tmp_path / "rules.md"
    assert run_cli("rules", "--format", "markdown", "-o", out).code == 0
    assert out.read_text() == markdown()
    assert Path(out).read_text().startswith("# Rules")


# -- start-up stays light --------------------------------------------------------------------

HEAVY = ("rich", "cyclonedx", "huggingface_hub", "onnx", "jinja2", "numpy", "torch", "h5py")
PROBE = """
import sys
from auditor.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("imported:", *[m for m in {heavy!r} if m in sys.modules], file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--version"], ["scan", "{example}", "--format", "json"]])
def test_heavy_libraries_are_not_imported_when_not_needed(args):
    example = Path(__file__).resolve().parent.parent / "examples" / "tiny-model"
    argv = [a.format(example=example) for a in args]
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, check=False)
    assert proc.stderr.splitlines()[-1] == "imported:"


def test_a_gate_loads_the_cel_evaluator_without_the_cel_command_line():
    """The `cel` package's own CLI (typer, prompt_toolkit) cost most of a gate's start-up."""
    example = Path(__file__).resolve().parent.parent / "examples" / "tiny-model"
    heavy = ("typer", "prompt_toolkit", "cel.cli")
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=heavy), "gate", str(example),
                           "--policy", "baseline"], capture_output=True, text=True, check=False)
    assert proc.stderr.splitlines()[-1] == "imported:"
    assert "verdict: PASS" in proc.stdout  # the rules were evaluated by the native module
