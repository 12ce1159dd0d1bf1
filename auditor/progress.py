"""Progress on a terminal: bytes done / total and the current file, on stderr.

Only built when stderr is a TTY and the output is for humans; CI logs and
machine-readable output stay clean. `rich` is imported here, lazily.
"""

from __future__ import annotations

import threading


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
