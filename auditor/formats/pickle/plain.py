"""Pickle streams (protocols 0-5), claimed by content: the symbolic machine grades every import.

A stream is claimed when it starts with PROTO, or when its first opcodes run
on the symbolic machine without error (protocol 0/1 pickles have no magic,
and a bare pickle named `.bin` must not escape: CVE-2025-10155). The scan
keeps going after STOP: further pickles are analysed, other trailing bytes
are a finding. joblib's raw array buffers inside the stream are parsed as
that layout (see `joblib`).
"""

from __future__ import annotations

import contextlib
import io
from typing import BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.limits import Limits
from auditor.formats.contract import HEAD_BYTES, FormatSpec, ScanContext
from auditor.formats.pickle import joblib
from auditor.formats.pickle import rules as pickle_rules
from auditor.formats.pickle import torch_views as pickle_torch
from auditor.formats.pickle.imports import Tier, tiers_for
from auditor.formats.pickle.machine import Env, Input, Machine, PickleError, Truncated
from auditor.formats.pickle.ops import HIGHEST_PROTOCOL
from auditor.model import FormatId, FormatResult, Rule, Severity

RULES = pickle_rules.RULES + joblib.RULES + pickle_torch.RULES

SNIFF_BYTES = 4096
MAX_FACT_IMPORTS = 200


def sniff(head: bytes, name: str) -> bool:
    return plausible(head)


def plausible(head: bytes) -> bool:
    """PROTO with a known protocol, or a head whose first opcodes are a valid pickle.

    A protocol 0/1 stream that breaks after its payload, or whose first opcode
    is longer than the sniffing window, still runs in the loader: a call or a
    dangerous import before the error claims it, and a window too short to
    decide is widened to the whole head (an opcode longer than that is no text).
    """
    if head[:1] == b"\x80":
        return len(head) > 1 and head[1] <= HIGHEST_PROTOCOL
    for window in (head[:SNIFF_BYTES], head):
        env = Env(tiers=tiers_for(), limits=Limits(), report=ignore)
        try:
            Machine(Input(io.BytesIO(window)), env).run()
        except Truncated:
            if env.ops >= 3 or _ran_payload(env):
                return True
            if len(window) == len(head):
                return len(head) >= HEAD_BYTES  # cut by the engine's head, not the file's end
        except (PickleError, LimitExceeded):
            return _ran_payload(env)
        except Exception:  # a stream that crashes the sniffer is scanned, never skipped
            return True
        else:
            return True
    return False


def runs_payload(head: bytes) -> bool | None:
    """Would `pickle.load` of these bytes call an import (or import a dangerous one) before
    the head ends? Decides whether content another format claimed is also a live pickle:
    None when the reading is still going where the head ends (inside a BINBYTES8 skip, or a
    line whose argument can still parse), so only the rest of the stream can tell."""
    env = _load_env()
    try:
        Machine(Input(io.BytesIO(head)), env).run()
    except Truncated:
        return True if _ran_payload(env) else None
    except (PickleError, LimitExceeded):
        pass
    return _ran_payload(env)


def runs_payload_in(f: BinaryIO) -> bool | None:
    """`runs_payload` over a whole stream, for a head whose pickle reading was still going
    when the head ended; None when a limit stopped the reading before it ran or broke."""
    env = _load_env()
    try:
        Machine(Input(f), env).run()
    except LimitExceeded:
        return True if _ran_payload(env) else None
    except PickleError:
        pass
    return _ran_payload(env)


def _load_env() -> Env:
    """`pickle.load` of a file (and torch.load's legacy first load): no persistent_load."""
    return Env(tiers=tiers_for(), limits=Limits(), report=ignore, persistent_load=False)


def _ran_payload(env: Env) -> bool:
    """The loader would already have called an import, or imported a dangerous one."""
    return any(not u.verdict.odd_name and (u.calls or u.verdict.tier is Tier.DANGEROUS)
               for u in env.imports.uses.values())


def ignore(rule: Rule, detail: str, at: int | None, severity: Severity | None) -> None:
    """Sniffing reports nothing."""


def new_env(ctx: ScanContext, **kwargs: object) -> Env:
    """An analysis environment reporting into `ctx`, with the user's tiers and our layouts."""
    opts = ctx.options

    def report(rule: Rule, detail: str, at: int | None, severity: Severity | None) -> None:
        ctx.add(rule, detail, offset=at, severity=severity)

    return Env(
        tiers=tiers_for(opts.safe_imports, opts.known_ml_imports), limits=ctx.limits,
        report=report, container=ctx.container, hooks=dict(joblib.HOOKS),
        call_hooks=dict(pickle_torch.HOOKS), **kwargs,  # type: ignore[arg-type]
    )


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    env = new_env(ctx)
    try:
        count = analyse_both_ways(f, env)
    finally:
        finish(env, ctx)
    ctx.result.facts["pickles"] = count
    if count > 1:
        ctx.add(pickle_rules.MULTIPLE, f"{count} pickles in one stream, all analysed")
    return ctx.result


def analyse_both_ways(f: BinaryIO, env: Env) -> int:
    """Analyse as `pickle.loads` reads; after a frame violation, also as a file load reads.

    The C loader reading a file frame by frame (`torch.load`) takes an opcode
    that crosses a frame end from after the frame, `pickle.loads` from the
    bytes that follow: two different streams, and both are graded (the
    second needs a seekable stream; the frame finding stands either way).
    """
    try:
        return analyse(Input(f), env)
    finally:
        if env.reported(pickle_rules.FRAME) and f.seekable():
            f.seek(0)
            with contextlib.suppress(FormatError, LimitExceeded):  # the first reading's
                analyse(Input(f, frames_exact=True), env)  # outcome is the one reported


def analyse(inp: Input, env: Env) -> int:
    """Run every pickle in the stream; trailing bytes that are not one are a finding."""
    count = 0
    while True:
        start = inp.offset
        try:
            Machine(inp, env).run()
        except PickleError as exc:
            if count == 0:
                rule = exc.rule or pickle_rules.MALFORMED
                raise FormatError(str(exc), exc.offset, rule) from None
            env.finding(pickle_rules.TRAILING, f"bytes from @{start} after the pickle are not a "
                        f"valid pickle ({exc} @{exc.offset})", start)
            return count
        count += 1
        if inp.at_eof():
            return count


def finish(env: Env, ctx: ScanContext) -> None:
    """Report the imports (also when parsing stopped early) and record the facts."""
    imports = sorted((u.verdict.path, u.verdict.tier.value) for u in env.imports.uses.values())
    env.imports.flush(env.report)
    ctx.result.facts["imports"] = [f"{p} ({t})" for p, t in imports[:MAX_FACT_IMPORTS]]
    ctx.result.facts["opcodes"] = env.ops
    if FormatId.JOBLIB in env.layouts:
        ctx.result.format = FormatId.JOBLIB


SPEC = FormatSpec(
    id=FormatId.PICKLE, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("pickles", "imports", "opcodes"),
    refines=(FormatId.JOBLIB,),
)
