"""Progress on stderr: a bar on a terminal, plain lines at a steady interval in a CI log.

The bar is built only when stderr is a TTY and the output is for humans; without a TTY a
long scan still says how far it is, one line at a time, so a log never looks hung. Stdout
(the report) is never touched. `rich` is imported here, lazily.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


class TerminalProgress:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]scan[/bold]"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = None
        self._lock = threading.Lock()

    def start(self, total_bytes: int, total_files: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("scan", total=total_bytes, current="")

    def file_started(self, name: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, current=name)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            with self._lock:
                self._progress.advance(self._task, nbytes)

    def finish(self) -> None:
        self._progress.stop()


# How often a plain progress line may be printed, in seconds: often enough that a CI job
# never looks hung, rarely enough that a log stays readable. Tests set it to 0.
INTERVAL_S = 10.0


def for_stderr(fmt: str, quiet: bool) -> TerminalProgress | PlainProgress | None:
    """The progress display this run gets: none when `--quiet`, the bar on a terminal (text
    output only, as before), otherwise plain lines a CI log can keep."""
    if quiet:
        return None
    if sys.stderr.isatty():
        return TerminalProgress() if fmt == "text" else None
    return PlainProgress(sys.stderr, INTERVAL_S)


class PlainProgress:
    """Progress for a log: one plain line on `stream` at most every `interval` seconds.

    A scan that ends before the first interval prints nothing, so short runs stay as quiet as
    before; one that printed gets a closing line. Files count when they start being read (the
    engine reports starts, not ends), so `file 3/10` means the third file is underway.
    """

    def __init__(self, stream: TextIO, interval: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._state = _Counts()

    def start(self, total_bytes: int, total_files: int) -> None:
        now = self._clock()
        with self._lock:
            self._state = _Counts(total_bytes=total_bytes, total_files=total_files,
                                  started=now, last_line=now)

    def file_started(self, name: str) -> None:
        with self._lock:
            self._state.files += 1
            self._maybe_print()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._state.done_bytes += nbytes
            self._maybe_print()

    def finish(self) -> None:
        with self._lock:
            state = self._state
            if state.lines:
                self._write(done_line(state.files, state.done_bytes,
                                      self._clock() - state.started))

    def _maybe_print(self) -> None:
        """Called with the lock held: print when the interval has passed since the last line."""
        state = self._state
        now = self._clock()
        if now - state.last_line < self._interval:
            return
        state.last_line = now
        state.lines += 1
        self._write(progress_line(state.files, state.total_files, state.done_bytes,
                                  state.total_bytes, now - state.started))

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


@dataclass
class _Counts:
    """One scan's running totals (reset by each `start`: a target may hold several models)."""

    total_bytes: int = 0
    total_files: int = 0
    files: int = 0
    done_bytes: int = 0
    started: float = 0.0
    last_line: float = 0.0
    lines: int = 0


def progress_line(files: int, total_files: int, done_bytes: int, total_bytes: int,
                  elapsed: float) -> str:
    """`scan: file 3/10, 1.2 GiB/4.0 GiB (30%), 85.3 MiB/s, ETA 36s` (ETA `?` before any byte)."""
    rate = done_bytes / elapsed if elapsed > 0 else 0.0
    share = f" ({100 * done_bytes // total_bytes}%)" if total_bytes else ""
    remaining = max(total_bytes - done_bytes, 0)
    eta = human_duration(remaining / rate) if rate > 0 else "?"
    return (f"scan: file {files}/{total_files}, {human_bytes(done_bytes)}/"
            f"{human_bytes(total_bytes)}{share}, {human_bytes(int(rate))}/s, ETA {eta}")


def done_line(files: int, done_bytes: int, elapsed: float) -> str:
    """`scan: done, 10 files, 4.0 GiB in 47s (85.3 MiB/s)`."""
    rate = done_bytes / elapsed if elapsed > 0 else 0.0
    return (f"scan: done, {files} file{'' if files == 1 else 's'}, {human_bytes(done_bytes)} in "
            f"{human_duration(elapsed)} ({human_bytes(int(rate))}/s)")


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: int) -> str:
    """Binary units, one decimal above bytes: `512 B`, `1.5 KiB`, `4.0 GiB`."""
    if n < 1024:
        return f"{n} B"
    value, index = float(n), 0
    while value >= 1024 and index < len(_UNITS) - 1:  # the last unit takes whatever is left
        value /= 1024
        index += 1
    return f"{value:.1f} {_UNITS[index]}"


def human_duration(seconds: float) -> str:
    """Whole seconds, coarsest units first: `36s`, `4m05s`, `1h02m`."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
