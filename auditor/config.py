"""Defaults from `auditor.toml` or `[tool.auditor]` in `pyproject.toml`; flags override.

The file is looked for in the current directory (or given with `--config`).
Unknown keys are errors, not ignored: a misspelt `fail-on` must not silently
leave the gate at its default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import ConfigError
from auditor.model import Severity

if TYPE_CHECKING:
    from auditor.scanning.options import ScanOptions


@dataclass(frozen=True)
class Config:
    path: str | None = None
    fail_on: Severity = Severity.HIGH
    exclude: tuple[str, ...] = ()
    jobs: int | None = None
    safe_imports: tuple[str, ...] = ()
    known_ml_imports: tuple[str, ...] = ()
    hub_endpoint: str | None = None

    def scan_options(self, jobs: int | None, exclude: tuple[str, ...], **more: Any) -> ScanOptions:
        """The ScanOptions of a run: flags over this config over defaults.

        One place for every command that scans, so scan, gate and mirror scan cannot drift.
        """
        import os

        from auditor.scanning.options import ScanOptions

        return ScanOptions(
            jobs=jobs or self.jobs or os.cpu_count() or 2, exclude=self.exclude + exclude,
            safe_imports=self.safe_imports, known_ml_imports=self.known_ml_imports, **more,
        )


_KEYS = {"fail-on", "exclude", "jobs", "safe-imports", "known-ml-imports", "hub-endpoint"}


def load_config(
    explicit: Path | None = None, cwd: Path | None = None, scanned: str | None = None
) -> Config:
    """Read the config file if there is one; a missing default file means defaults.

    A file found implicitly inside the folder being scanned (`scanned`, or the
    folder of a scanned file) is refused: a model that ships its own
    `auditor.toml` (safe-imports, exclude, fail-on) would configure its own audit.
    """
    if explicit is not None:
        return _parse(explicit, _read(explicit), None)
    cwd = cwd or Path.cwd()
    own = cwd / "auditor.toml"
    if own.is_file():
        _refuse_inside(own, scanned)
        return _parse(own, _read(own), None)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        table = _read(pyproject).get("tool", {}).get("auditor")
        if table is not None:
            _refuse_inside(pyproject, scanned)
            return _parse(pyproject, table, "tool.auditor")
    return Config()


def _refuse_inside(found: Path, scanned: str | None) -> None:
    if scanned is None or "://" in scanned:
        return
    target = Path(scanned).resolve()
    folder = target if target.is_dir() else target.parent
    if found.resolve().is_relative_to(folder):
        raise ConfigError(
            f"{found}: config file inside the scanned folder {folder} (a model could configure "
            "its own audit); pass --config explicitly to use it"
        )


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 (at line {line})") from None


def _parse(path: Path, table: dict[str, Any], section: str | None) -> Config:
    where = f"{path}" + (f" [{section}]" if section else "")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )

    def strings(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of strings")
        return tuple(value)

    try:
        fail_on = Severity.parse(table.get("fail-on", "high"))
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: fail-on: {exc}") from None
    jobs = table.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ConfigError(f"{where}: jobs must be a positive integer")
    endpoint = table.get("hub-endpoint")
    if endpoint is not None and not (isinstance(endpoint, str) and endpoint.startswith(
            ("http://", "https://"))):
        raise ConfigError(f"{where}: hub-endpoint must be an http(s) URL")
    return Config(
        path=str(path), fail_on=fail_on, exclude=strings("exclude"), jobs=jobs,
        hub_endpoint=endpoint,
        safe_imports=strings("safe-imports"), known_ml_imports=strings("known-ml-imports"),
    )
