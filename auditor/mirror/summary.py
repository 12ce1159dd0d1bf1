"""The run summary and `mirror status` as text; JSON is the dicts themselves."""

from __future__ import annotations

from typing import Any


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _model_lines(o: dict[str, Any], prefix: str = "") -> list[str]:
    head = (f"{prefix}{o['status'].upper():4} {o['key']}  [{o['change']}] verdict {o['verdict']}"
            + (f", policy {o['policy']}" if o.get("policy") else ""))
    lines = [head]
    events = [e for e in o["events"] if e != "added"]  # already in the head line
    if events:
        lines.append(f"       {'; '.join(events)}")
    for f in o["drift"]:
        lines.append(f"       DRIFT {f['rule']} {f['severity']} {f['detail']}")  # names the file
    for f in o["new_findings"]:
        if f["rule"] not in {d["rule"] for d in o["drift"]}:
            lines.append(f"       new {f['rule']} {f['severity']} {f['file']}: {f['title']}")
    for v in o["new_violations"]:
        where = f" {v['file']}" if v["file"] else ""
        lines.append(f"       new policy violation {v['rule']} {v['severity']}{where}: "
                     f"{v['message']}")
    return lines


def render_run(summary: dict[str, Any]) -> str:
    s = summary["summary"]
    lines = [
        f"mirror scan of {summary['root']} (run {summary['run']}, rules "
        f"{summary['rules_version']}): {s['models']} model(s): {s['added']} added, "
        f"{s['changed']} changed, {s['unchanged']} unchanged, {s['removed']} removed; "
        f"{s['failing']} failing",
        f"files: {s['files']}, read {s['files_read']} ({_size(s['bytes_read'])}, "
        f"{s['bytes_read']} bytes); SBOMs written: {s['sboms_written']}; {s['elapsed_s']} s",
    ]
    for o in summary["models"]:
        if o["change"] != "unchanged" or o["fails"]:
            lines += _model_lines(o)
    for r in summary["removed"]:
        lines.append(f"GONE {r['key']}  [removed]")
    resumed = summary["resumed"]
    if resumed["runs"]:
        lines.append(f"resumed interrupted run(s) {', '.join(map(str, resumed['runs']))}; "
                     "deltas they recorded:")
        for o in resumed["outcomes"]:
            lines += _model_lines(o, prefix=f"  run {o['run']}: ")
    failing = sum(1 for o in summary["models"] + resumed["outcomes"] if o["fails"])
    lines.append(f"verdict: {summary['verdict']}" + (
        f" ({failing} model(s) with new violations or drift, fail-on {summary['fail_on']})"
        if failing else f" (no new violations at or above {summary['fail_on']}, no drift)"))
    return "\n".join(lines) + "\n"


def render_status(status: dict[str, Any]) -> str:
    lines = [f"mirror state {status['state']}: {len(status['models'])} model(s)"]
    last = status["runs"][0] if status["runs"] else None
    if last is not None:
        lines.append(f"last run {last['run']} started {last['started']} ({last['status']})")
    for m in status["models"]:
        where = "removed" if m["removed_run"] else f"seen in run {m['last_run']}"
        policy = f", policy {m['policy']}" if m["policy"] else ""
        lines.append(f"{m['status'].upper():4} {m['key']}  verdict {m['verdict']}{policy}; "
                     f"{where}; SBOM {m['sbom']}")
        for h in m["history"]:
            events = "; ".join(h["events"]) or "rescanned"
            lines.append(f"       run {h['run']} {h['started']}: {h['status']}, verdict "
                         f"{h['verdict']}: {events}")
    return "\n".join(lines) + "\n"
