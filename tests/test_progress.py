"""Progress without a terminal: plain lines at a steady interval on stderr, never on stdout."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from auditor.progress import (
    PlainProgress,
    done_line,
    human_bytes,
    human_duration,
    progress_line,
)
from tests.builders import write_tiny_model

MIB = 1024 * 1024
LINE = re.compile(r"^scan: file \d+/\d+, \S+ \S+/\S+ \S+( \(\d+%\))?, \S+ \S+/s, ETA \S+$")
DONE = re.compile(r"^scan: done, \d+ files?, \S+ \S+ in \S+ \(\S+ \S+/s\)$")
POLICY = Path(__file__).resolve().parents[1] / "policies" / "baseline.yaml"


class FakeClock:
    """Time that moves only when the test says so: no test ever waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def plain(interval: float = 10.0) -> tuple[PlainProgress, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    return PlainProgress(stream, interval, clock), stream, clock


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# -- formatting -------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "shown"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (4 * 1024**3, "4.0 GiB"), (3 * 1024**6, "3072.0 PiB"),
])
def test_bytes_are_shown_in_binary_units(n, shown):
    assert human_bytes(n) == shown


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (36.9, "36s"), (245, "4m05s"), (3720, "1h02m"),
])
def test_durations_are_shown_coarsest_unit_first(seconds, shown):
    assert human_duration(seconds) == shown


def test_progress_line_has_files_bytes_share_rate_and_eta():
    line = progress_line(3, 10, 40 * MIB, 100 * MIB, 4.0)
    assert line == "scan: file 3/10, 40.0 MiB/100.0 MiB (40%), 10.0 MiB/s, ETA 6s"


def test_eta_is_unknown_before_any_byte_and_share_absent_for_empty_scans():
    assert progress_line(1, 2, 0, 5 * MIB, 3.0).endswith("0 B/s, ETA ?")
    assert progress_line(1, 1, 0, 0, 0.0) == "scan: file 1/1, 0 B/0 B, 0 B/s, ETA ?"


def test_done_line_sums_up_the_scan():
    assert done_line(10, 100 * MIB, 50.0) == "scan: done, 10 files, 100.0 MiB in 50s (2.0 MiB/s)"


# -- the interval, with a fake clock ------------------------------------------------------


def test_no_line_before_the_interval_and_one_per_interval_after():
    progress, stream, clock = plain(interval=10)
    progress.start(100 * MIB, 4)
    progress.file_started("a.safetensors")
    for _ in range(9):
        clock.now += 1
        progress.advance(MIB)
    assert lines(stream) == []  # 9 s in: still quiet

    clock.now += 1  # 10 s: the first line
    progress.advance(MIB)
    assert lines(stream) == ["scan: file 1/4, 10.0 MiB/100.0 MiB (10%), 1.0 MiB/s, ETA 1m30s"]

    for _ in range(9):  # many calls inside the next interval print nothing more
        clock.now += 1
        progress.advance(MIB)
        progress.file_started("b.bin")
    assert len(lines(stream)) == 1

    clock.now += 1
    progress.advance(MIB)
    assert len(lines(stream)) == 2
    assert all(LINE.match(line) for line in lines(stream))


def test_a_long_scan_ends_with_a_done_line():
    progress, stream, clock = plain(interval=10)
    progress.start(2 * MIB, 2)
    progress.file_started("a")
    clock.now += 15
    progress.advance(MIB)
    progress.file_started("b")
    progress.advance(MIB)
    clock.now += 5
    progress.finish()
    assert lines(stream) == [
        "scan: file 1/2, 1.0 MiB/2.0 MiB (50%), 68.3 KiB/s, ETA 15s",
        "scan: done, 2 files, 2.0 MiB in 20s (102.4 KiB/s)",
    ]
    assert DONE.match(lines(stream)[-1])


def test_a_scan_shorter_than_the_interval_prints_nothing_at_all():
    progress, stream, clock = plain(interval=10)
    progress.start(MIB, 1)
    progress.file_started("a")
    clock.now += 9.9
    progress.advance(MIB)
    progress.finish()
    assert stream.getvalue() == ""


def test_each_model_of_a_target_starts_its_own_count():
    progress, stream, clock = plain(interval=10)
    progress.start(MIB, 1)
    clock.now += 10
    progress.file_started("first")
    progress.finish()
    progress.start(4 * MIB, 3)
    clock.now += 1
    progress.file_started("second")
    progress.finish()  # the second model was quick: no line of its own
    assert lines(stream) == ["scan: file 1/1, 0 B/1.0 MiB (0%), 0 B/s, ETA ?",
                             "scan: done, 1 file, 0 B in 10s (0 B/s)"]


# -- the CLI: stderr is not a TTY under capsys ----------------------------------------------


@pytest.fixture
def model(tmp_path):
    return write_tiny_model(tmp_path / "model")


@pytest.fixture
def every_call(monkeypatch):
    """Force the interval to 0: every engine call prints, so a tiny scan shows its lines."""
    monkeypatch.setattr("auditor.progress.INTERVAL_S", 0.0)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_scan_without_a_tty_prints_progress_lines_on_stderr_only(run_cli, model, every_call,
                                                                 fmt):
    run = run_cli("scan", model, "--format", fmt)
    assert run.code == 0, run.err
    err = run.err.splitlines()
    assert err, "no progress line without a TTY"
    assert all(LINE.match(line) for line in err[:-1]), err
    assert DONE.match(err[-1]), err
    assert err[-1].startswith(f"scan: done, {len(list(model.iterdir()))} files,")
    assert "scan:" not in run.out
    if fmt != "text":
        json.loads(run.out)  # the report on stdout is still one JSON document


def test_gate_without_a_tty_prints_progress_lines_on_stderr(run_cli, model, every_call):
    run = run_cli("gate", model, "--policy", POLICY, "--format", "json")
    assert run.code in (0, 1), run.err
    assert DONE.match(run.err.splitlines()[-1]), run.err
    json.loads(run.out)


@pytest.mark.parametrize("command", [("scan",), ("gate", "--policy", str(POLICY))])
@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_silences_progress(run_cli, model, every_call, command, flag):
    run = run_cli(command[0], model, *command[1:], flag, "--format", "json")
    assert run.code in (0, 1)
    assert run.err == ""
    json.loads(run.out)


def test_quiet_silences_the_terminal_bar_too(run_cli, model, monkeypatch):
    built = []
    monkeypatch.setattr("auditor.progress.TerminalProgress", lambda: built.append(1))
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    run_cli("scan", model, "--quiet")
    assert built == []
    run_cli("scan", model)
    assert built == [1]


def test_the_default_interval_keeps_a_quick_scan_silent(run_cli, model):
    run = run_cli("scan", model, "--format", "json")
    assert run.err == ""
