"""One pass per file: stream → sha256 + sniff → format module; files in parallel.

The engine owns fail-closed behaviour: whatever a format module raises becomes
a finding and a coverage value here, never an exception that escapes and
never a silent pass. Threads suffice for parallelism: hashlib and file reads
release the GIL, and the pure-Python parsers only see headers.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Protocol

from auditor.errors import FormatError, LimitExceeded
from auditor.formats import scan_rules as rules
from auditor.formats._lib.streams import ReplayReader
from auditor.formats.contract import HEAD_BYTES, FormatSpec, ScanContext
from auditor.formats.pickle import plain as pickle_format
from auditor.formats.registry import claim
from auditor.integrity.hashing import HashingReader, new_hasher
from auditor.model import Artifact, Coverage, FileReport, FormatId, FormatResult, Rule
from auditor.scanning import sniff
from auditor.scanning.options import ScanOptions
from auditor.version import __version__

# Bumped whenever a rule is added or changes what it finds: the mirror keys its incremental
# scans on it, so a new rule set rescans every model once (rules.2: OCI, strict certificates).
RULES_VERSION = f"{__version__}+rules.2"

# Larger than the sniffed head, so sniffing then seeking to 0 stays in the buffer;
# files up to this size are read whole into memory (`_one_pass_stream`).
READ_AHEAD = 2 * HEAD_BYTES


class Progress(Protocol):
    """What the engine tells a progress display; every call may come from any thread."""

    def start(self, total_bytes: int, total_files: int) -> None: ...
    def file_started(self, name: str) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, total_bytes: int, total_files: int) -> None:
        pass

    def file_started(self, name: str) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


def dispatch(stream: BinaryIO, ctx: ScanContext) -> FormatResult:
    """Sniff `stream` and run the format module that owns it (files and members alike)."""
    if ctx.depth > ctx.limits.max_depth:
        ctx.add(rules.LIMIT, f"nesting deeper than {ctx.limits.max_depth} containers")
        ctx.result.coverage = Coverage.PARTIAL
        ctx.result.format = FormatId.NESTED
        return ctx.result
    try:
        head = stream.read(HEAD_BYTES)
        if stream.seekable():
            stream.seek(0)
        else:
            stream = ReplayReader(head, stream)  # type: ignore[assignment]
    except OSError as exc:
        return _fail(ctx, rules.UNREADABLE, f"read failed: {exc}", Coverage.ERROR)
    if not head:  # nothing for a format module to claim (archives hold many empty members)
        _unparsed(head, ctx)
    else:
        spec = claim(head, ctx.name)
        if spec is None:
            _unparsed(head, ctx)
        else:
            ctx.result.format = spec.id
            _run(spec, stream, ctx)
        _polyglot_pickle(head, stream, ctx)
    mismatch = sniff.extension_mismatch(ctx.name, ctx.result.format)
    if mismatch is not None:
        ctx.add(
            rules.EXTENSION_MISMATCH,
            f"named {sniff.extension_of(ctx.name)!r} (expected {', '.join(sorted(mismatch))}) "
            f"but the content is {ctx.result.format}",
        )
    return ctx.result


def _polyglot_pickle(head: bytes, stream: BinaryIO, ctx: ScanContext) -> None:
    """Bytes another format claimed that `pickle.load` also runs (a tar whose first name is a
    pickle, a msgpack map hiding one) are analysed as a pickle too: any file can be unpickled.

    The head decides for almost every file: its pickle reading breaks within a few
    bytes, or at a line whose argument cannot parse (a safetensors header length
    read as PERSID, INT, GLOBAL...: the loader stops there). When it is still going
    where the head ends (a BINBYTES8 skip over the cover format, its payload further
    on), the reading is followed through the whole stream; if a limit stops it
    first, the file is not called clean.
    """
    if ctx.result.format in sniff.PICKLE_FAMILY or not stream.seekable():
        return
    runs = pickle_format.runs_payload(head)
    if runs is None and len(head) >= HEAD_BYTES:
        stream.seek(0)
        runs = pickle_format.runs_payload_in(stream)
        if runs is None:
            ctx.add(rules.POLYGLOT_UNFOLLOWED, "the pickle reading of this file passed "
                    f"{HEAD_BYTES} bytes and stopped at a limit")
            ctx.limit_hit()
    if runs:
        stream.seek(0)
        _run(pickle_format.SPEC, stream, ctx)


def _run(spec: FormatSpec, stream: BinaryIO, ctx: ScanContext) -> None:
    try:
        spec.scan(stream, ctx)
    except LimitExceeded as exc:
        _fail(ctx, rules.LIMIT, str(exc), Coverage.PARTIAL, exc.offset)
    except FormatError as exc:
        _fail(ctx, exc.rule or rules.MALFORMED, f"{spec.id}: {exc}", Coverage.ERROR, exc.offset)
    except OSError as exc:
        _fail(ctx, rules.UNREADABLE, f"read failed: {exc}", Coverage.ERROR)
    except Exception as exc:  # fail closed on our own bugs too
        _fail(ctx, rules.INTERNAL, f"{spec.id} parser: {type(exc).__name__}: {exc}",
              Coverage.ERROR)


def _fail(
    ctx: ScanContext, rule: Rule, detail: str, coverage: Coverage, offset: int | None = None
) -> FormatResult:
    ctx.add(rule, detail, offset=offset)
    if coverage == Coverage.ERROR or ctx.result.coverage != Coverage.ERROR:
        ctx.result.coverage = coverage
    return ctx.result


def _unparsed(head: bytes, ctx: ScanContext) -> None:
    fmt = sniff.classify_unparsed(head)
    ctx.result.format = fmt
    if fmt == FormatId.EMPTY:
        return  # nothing inside to hide anything; extension checks still apply
    ctx.result.coverage = Coverage.UNSUPPORTED
    if fmt in (FormatId.TEXT, FormatId.IMAGE):
        ctx.add(rules.NOT_PARSED, f"{fmt} content")
    elif sniff.is_unparsed_archive(fmt):
        ctx.add(rules.UNSUPPORTED_ARCHIVE, f"{fmt} archive")
    else:
        ctx.add(rules.UNKNOWN_BINARY, f"first bytes: {head[:16].hex()}")


def scan_file(entry: Artifact, options: ScanOptions, progress: Progress) -> tuple[FileReport, int]:
    """Scan one top-level file; return its report and the bytes read from disk."""
    progress.file_started(entry.relpath)
    ctx = ScanContext(
        file=entry.relpath, name=entry.relpath.rsplit("/", 1)[-1], size=entry.size,
        options=options.formats, dispatch=dispatch,
    )
    if entry.problem is not None:
        ctx.result.findings.append(entry.problem)
        ctx.result.coverage = Coverage.ERROR
        return _report(entry, ctx.result, {}, 0, FormatId.SPECIAL), 0
    try:
        with _open_regular(entry.path) as raw:
            reader = HashingReader(raw, options.algorithms_for(entry.relpath), progress.advance)
            dispatch(_one_pass_stream(reader, entry.size), ctx)
            digests, size = reader.finish()
            read = reader.bytes_read
    except OSError as exc:
        if not any(f.rule == rules.UNREADABLE.id for f in ctx.result.findings):
            ctx.add(rules.UNREADABLE, f"{exc.strerror or exc}")  # once, however often it failed
        ctx.result.coverage = Coverage.ERROR
        fmt = ctx.result.format or FormatId.UNREADABLE
        return _report(entry, ctx.result, {}, entry.size, fmt), 0
    return _report(entry, ctx.result, digests, size, ctx.result.format), read


def _one_pass_stream(reader: HashingReader, listed_size: int) -> BinaryIO:
    """The stream a file is dispatched on, such that its bytes come from disk once.

    A file that fits in the read-ahead is read (and hashed) whole, up front,
    and parsed from memory: through the buffer, sniffing then seeking back to 0
    after the parser consumed the whole buffer would read it from disk again
    (the buffer only serves a seek while unread bytes remain in it). Asking for
    one byte more than listed tells a file that grew since the listing; it is
    then read through the buffer like a large file. A larger file's head is
    parsed from the buffer and its bulk is hashed as it streams past.
    """
    if listed_size <= READ_AHEAD:
        data = reader.read(listed_size + 1)  # a short read is the end of the file
        if len(data) <= listed_size:
            return io.BytesIO(data)
        reader.seek(0)
    return io.BufferedReader(reader, READ_AHEAD)  # type: ignore[return-value]


def scan_stream(
    relpath: str, stream: BinaryIO, size: int | None, options: ScanOptions
) -> FormatResult:
    """Scan bytes that are not a local file (a Hub range reader, a fetched buffer).

    The same format modules run as for files; hashing is the caller's business
    (remote digests are upstream-reported, fetched buffers are hashed whole).
    """
    ctx = ScanContext(
        file=relpath, name=relpath.rsplit("/", 1)[-1], size=size, options=options.formats,
        dispatch=dispatch,
    )
    return dispatch(stream, ctx)


def scan_bytes(
    relpath: str, data: bytes, options: ScanOptions, extra_algorithms: tuple[str, ...] = ()
) -> FileReport:
    """A file fetched whole into memory: hashed and scanned as a file on disk would be."""
    hashers = {name: new_hasher(name, len(data))
               for name in dict.fromkeys((*options.hash_algorithms, *extra_algorithms))}
    for h in hashers.values():
        h.update(data)
    result = scan_stream(relpath, io.BytesIO(data), len(data), options)
    return FileReport(relpath, len(data), {k: h.hexdigest() for k, h in hashers.items()},
                      result.format, result.coverage, tuple(result.findings), result.facts)


def scan_reader(relpath: str, stream: BinaryIO, size: int, options: ScanOptions) -> FileReport:
    """Bytes parsed in place but not hashed here (a ranged reader): the report has no digest,
    since none was computed (a claimed digest is the caller's to record as a claim).

    A reader may refuse to deliver more (a transfer budget) before any format
    module ran: that is a limit finding on a file of unknown format.
    """
    try:
        result = scan_stream(relpath, stream, size, options)
    except LimitExceeded as exc:
        limit = rules.LIMIT.finding(relpath, str(exc), offset=exc.offset)
        return FileReport(relpath, size, {}, FormatId.UNKNOWN, Coverage.PARTIAL, (limit,), {})
    return FileReport(relpath, size, {}, result.format, result.coverage,
                      tuple(result.findings), result.facts)


def _open_regular(path: Path) -> io.FileIO:
    """Open a listed file for reading, refusing whatever replaced it since the listing.

    The listing already refused FIFOs and links that leave the root, but the
    folder can change before the open: O_NONBLOCK keeps a FIFO from hanging the
    scan, O_NOFOLLOW refuses a symlink swapped in (listed paths are resolved),
    and fstat checks what was actually opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (it changed since the listing)")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _report(
    entry: Artifact, result: FormatResult, digests: dict[str, str], size: int, fmt: str
) -> FileReport:
    return FileReport(
        path=entry.relpath, size=size, digests=digests, format=fmt, coverage=result.coverage,
        findings=tuple(result.findings), facts=result.facts,
    )


def scan_entries(
    entries: tuple[Artifact, ...], options: ScanOptions, progress: Progress
) -> tuple[list[FileReport], int]:
    """Scan files in parallel, biggest first so that the last one finishing is small."""
    progress.start(sum(e.size for e in entries), len(entries))
    order = sorted(entries, key=lambda e: -e.size)
    try:
        if options.jobs <= 1 or len(order) <= 1:
            done = [scan_file(e, options, progress) for e in order]
        else:
            pool = ThreadPoolExecutor(max_workers=options.jobs)
            try:
                done = list(pool.map(lambda e: scan_file(e, options, progress), order))
            finally:  # on Ctrl-C, drop the files not started instead of scanning them all
                pool.shutdown(wait=False, cancel_futures=True)
    finally:
        progress.finish()
    return sorted((r for r, _ in done), key=lambda r: r.path), sum(n for _, n in done)
