"""Exceptions of our own; the CLI alone turns them into messages and exit codes.

Each carries the exit code the design fixes for its class of failure, so a
new error type never needs a new branch in the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditor.model import Rule

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class AuditorError(Exception):
    """Base class: a one-line message meant for a human, naming the file."""

    exit_code = EXIT_INTERNAL


class UsageError(AuditorError):
    """Bad command line or a target that does not exist."""

    exit_code = EXIT_USAGE


class ConfigError(AuditorError):
    """A configuration or policy file that cannot be used (file:line in the message)."""

    exit_code = EXIT_USAGE


class OutputError(AuditorError):
    """An output could not be written (disk full, read-only folder, ...)."""

    exit_code = EXIT_INTERNAL


class VerificationFailed(AuditorError):
    """A signature or attestation did not verify: a failed verdict, not a crash."""

    exit_code = EXIT_FAIL


class SourceError(AuditorError):
    """Bytes could not be obtained from a source (I/O, network)."""

    exit_code = EXIT_INTERNAL


class FormatError(Exception):
    """Raised inside a format module: the file is malformed (fail closed).

    Not an AuditorError: the engine turns it into a finding, never an exit.
    `offset` is the byte offset in the file (or member) where parsing failed;
    `rule` a format-specific rule to report instead of the generic one.
    """

    def __init__(self, message: str, offset: int | None = None, rule: Rule | None = None):
        super().__init__(message)
        self.offset = offset
        self.rule = rule


class LimitExceeded(FormatError):
    """A parser limit was hit; the file is only partly analysed (coverage `partial`)."""
