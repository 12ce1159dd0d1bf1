"""Rules shared by every format and the engine: coverage, fail-closed errors, lying extensions.

They live with the formats because formats raise some of them (a limit hit inside
a member, a malformed stream) and the engine raises the rest on a format's behalf
(`FormatError` becomes MALFORMED, a crash INTERNAL) or for content no format claims.
"""

from __future__ import annotations

from auditor.model import Rule, Severity

MALFORMED = Rule(
    "AUD-SCAN-001", Severity.HIGH, "Malformed or unparseable file",
    "A file the scanner cannot parse cannot be shown safe, and loaders are often more lenient "
    "than parsers: malformed input is a classic way to hide a payload from a scanner.",
    "Re-export the artifact with its official writer, or obtain it again from the publisher.",
)
LIMIT = Rule(
    "AUD-SCAN-002", Severity.HIGH, "Scan limit reached: file only partly analysed",
    "Hostile files use huge counts, lengths, nesting or compression ratios to exhaust a "
    "scanner; what lies beyond the limit was not inspected.",
    "Inspect the file by hand; if it is legitimate, raise the limit in auditor.toml.",
)
UNKNOWN_BINARY = Rule(
    "AUD-SCAN-003", Severity.HIGH, "Unsupported binary content (not inspected)",
    "Binary content in an unknown format may be weights in a format that executes code on "
    "load; an unaudited file cannot be shown safe.",
    "Convert the weights to safetensors or GGUF, or remove the file from the model folder.",
)
UNSUPPORTED_ARCHIVE = Rule(
    "AUD-SCAN-004", Severity.HIGH, "Archive format not supported (not inspected)",
    "Repacking a checkpoint into an archive the scanner skips (7z, rar, zstd) hides pickles "
    "from it while loaders or users unpack them.",
    "Unpack the archive and scan its contents, or ship the weights unarchived.",
)
NOT_PARSED = Rule(
    "AUD-SCAN-005", Severity.INFO, "Text or image file: hashed, not parsed",
    "Plain text and images do not run code when a model is loaded; they are recorded so that "
    "coverage is complete.",
    "Nothing to do.",
)
UNREADABLE = Rule(
    "AUD-SCAN-006", Severity.HIGH, "File could not be read",
    "An unreadable file is unaudited; the loader might still read it later.",
    "Check permissions and the storage; rerun the scan.",
)
INTERNAL = Rule(
    "AUD-SCAN-007", Severity.HIGH, "Scanner failed on this file (internal error)",
    "The scanner hit a bug on this file; it fails closed rather than pass what it did not finish.",
    "Report the file to the auditor maintainers; inspect it by hand meanwhile.",
)
POLYGLOT_UNFOLLOWED = Rule(
    "AUD-SCAN-008", Severity.HIGH, "File also reads as a pickle that could not be followed",
    "The file's first bytes are a pickle stream still running when the scan's head ended "
    "(a long BINBYTES/BINUNICODE skip over the claimed format); reading on stopped at a limit, "
    "so a payload after the skip was not ruled out. pickle.load runs whatever follows.",
    "Inspect the file by hand; never unpickle it. Re-save it with its framework's writer.",
)
EXTENSION_MISMATCH = Rule(
    "AUD-FILE-001", Severity.HIGH, "File extension does not match its content",
    "Loaders pick a parser by content while people and some scanners trust the extension: a "
    "'.safetensors' that is really a pickle bypasses both.",
    "Rename the file to match its content, or replace it with the format its name promises.",
)

RULES = (
    MALFORMED, LIMIT, UNKNOWN_BINARY, UNSUPPORTED_ARCHIVE, NOT_PARSED, UNREADABLE, INTERNAL,
    POLYGLOT_UNFOLLOWED, EXTENSION_MISMATCH,
)
