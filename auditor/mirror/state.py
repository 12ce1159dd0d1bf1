"""The mirror's memory: SQLite (WAL), written one transaction per model.

Tables:
- `stats`: a file's identity on disk `(device, inode)` with the `size`,
  `mtime_ns` and `ctime_ns` it had when read, and the sha256 read then. A
  file whose stat is unchanged is not read again. (ctime is kept besides
  mtime because whoever can write a file can also set its mtime back; ctime
  cannot be set.)
- `results`: a scanned file's report (JSON, see `codec`) by `(sha256, path,
  scan_key)`: content, the name it is scanned under (format modules look at
  names) and the rules version with the options that change results.
- `models`: each model's latest verdict, findings, policy outcome, SBOM and
  fingerprint; `model_files`: its files' digests, the first ones seen under a
  pinned revision kept as the baseline drift is measured against.
- `runs` and `history`: every run, and per model what changed in which run.

A run killed half-way keeps every model it committed; the next run redoes
the rest (the committed ones cost a stat per file) and reports the deltas
the killed run recorded but never printed.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from auditor.errors import SourceError, UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS stats (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (dev, ino));
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL, path TEXT NOT NULL, scan_key TEXT NOT NULL, report TEXT NOT NULL,
    PRIMARY KEY (sha256, path, scan_key));
CREATE TABLE IF NOT EXISTS models (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, revision TEXT,
    first_run INTEGER NOT NULL, last_run INTEGER NOT NULL, removed_run INTEGER,
    status TEXT NOT NULL, verdict TEXT NOT NULL, findings TEXT NOT NULL,
    policy TEXT, fingerprint TEXT NOT NULL, policy_key TEXT,
    sbom TEXT NOT NULL, sbom_sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS model_files (
    model TEXT NOT NULL, path TEXT NOT NULL, baseline TEXT NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (model, path));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, root TEXT NOT NULL, scan_key TEXT NOT NULL,
    started TEXT NOT NULL, finished TEXT, status TEXT NOT NULL, summary TEXT,
    resumed_by INTEGER);
CREATE TABLE IF NOT EXISTS history (
    run INTEGER NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, verdict TEXT NOT NULL,
    policy TEXT, outcome TEXT NOT NULL, PRIMARY KEY (run, model));
"""

StatKey = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns


def stat_key(path: Path) -> StatKey:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class ModelRow:
    """What the state remembers of a model from its latest scan."""

    key: str
    name: str
    kind: str
    revision: str | None
    first_run: int
    last_run: int
    removed_run: int | None
    status: str  # pass / fail
    verdict: str  # clean or the worst severity
    findings: tuple[str, ...]  # codec.finding_key of each finding
    policy: dict[str, Any] | None  # {"status", "violations": [...]} when policies were given
    fingerprint: str
    policy_key: str | None
    sbom: str
    sbom_sha256: str


@contextlib.contextmanager
def exclusive(state: Path) -> Iterator[None]:
    """Hold `STATE.lock` for the run; a second scan on the same state is refused at once."""
    lock = state.with_name(state.name + ".lock")
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = open(lock, "a")  # noqa: SIM115 - held for the whole run
    except OSError as exc:
        raise UsageError(f"{lock}: cannot create the lock file: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{state}: another 'auditor mirror scan' is running on this state "
                             f"(lock {lock} is held); try again when it has finished") from None
        yield
    finally:
        handle.close()


class State:
    """The state database; the coordinator alone opens it (workers only scan files)."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        if not create and not path.is_file():
            raise UsageError(f"{path}: no mirror state here (run 'auditor mirror scan' first)")
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise SourceError(f"{path}: cannot open the mirror state: {exc}") from None
        self.path = path

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- files -----------------------------------------------------------------------------

    def digest_of(self, key: StatKey) -> str | None:
        row = self.db.execute(
            "SELECT sha256 FROM stats WHERE dev=? AND ino=? AND size=? AND mtime_ns=? "
            "AND ctime_ns=?", key).fetchone()
        return row[0] if row else None

    def result(self, sha256: str, path: str, scan_key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT report FROM results WHERE sha256=? AND path=? AND "
                              "scan_key=?", (sha256, path, scan_key)).fetchone()
        return json.loads(row[0]) if row else None

    def record_file(self, key: StatKey | None, report: dict[str, Any], scan_key: str) -> None:
        sha256 = report["digests"].get("sha256")
        if not sha256:
            return  # unreadable: nothing to remember, it is tried again next time
        if key is not None:
            self.db.execute("INSERT OR REPLACE INTO stats VALUES (?,?,?,?,?,?)", (*key, sha256))
        self.db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?)",
                        (sha256, report["path"], scan_key, json.dumps(report)))

    # --- models ----------------------------------------------------------------------------

    def model(self, key: str) -> ModelRow | None:
        row = self.db.execute("SELECT * FROM models WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        values = list(row)
        values[9] = tuple(json.loads(values[9]))
        values[10] = json.loads(values[10]) if values[10] else None
        return ModelRow(*values)

    def models(self) -> list[ModelRow]:
        keys = [r[0] for r in self.db.execute("SELECT key FROM models ORDER BY key")]
        return [row for k in keys if (row := self.model(k)) is not None]

    def baseline(self, model: str) -> dict[str, tuple[str, str]]:
        """path -> (baseline sha256, latest sha256)."""
        return {p: (b, s) for p, b, s in self.db.execute(
            "SELECT path, baseline, sha256 FROM model_files WHERE model=?", (model,))}

    def save_model(self, row: ModelRow, files: dict[str, tuple[str, str]]) -> None:
        values = list(row.__dict__.values())
        values[9] = json.dumps(list(row.findings))
        values[10] = json.dumps(row.policy) if row.policy is not None else None
        self.db.execute(f"INSERT OR REPLACE INTO models VALUES ({','.join('?' * len(values))})",
                        values)
        self.db.execute("DELETE FROM model_files WHERE model=?", (row.key,))
        self.db.executemany("INSERT INTO model_files VALUES (?,?,?,?)",
                            [(row.key, p, b, s) for p, (b, s) in files.items()])

    def touch_model(self, key: str, run: int) -> None:
        """An unchanged model: only its last-seen run moves."""
        self.db.execute("UPDATE models SET last_run=? WHERE key=?", (run, key))

    def mark_removed(self, present: set[str], run: int) -> list[ModelRow]:
        gone = [m for m in self.models() if m.removed_run is None and m.key not in present]
        self.db.executemany("UPDATE models SET removed_run=? WHERE key=?",
                            [(run, m.key) for m in gone])
        return gone

    def add_history(self, run: int, row: ModelRow, outcome: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO history VALUES (?,?,?,?,?,?)",
                        (run, row.key, row.status, row.verdict,
                         row.policy["status"] if row.policy else None, json.dumps(outcome)))

    def history(self, model: str, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT h.run, r.started, h.status, h.verdict, h.policy, h.outcome FROM history h "
            "JOIN runs r ON r.id = h.run WHERE h.model=? ORDER BY h.run DESC LIMIT ?",
            (model, limit))
        return [{"run": run, "started": started, "status": status, "verdict": verdict,
                 "policy": policy, "events": json.loads(outcome).get("events", [])}
                for run, started, status, verdict, policy, outcome in rows]

    # --- runs ------------------------------------------------------------------------------

    def begin_run(self, root: str, scan_key: str) -> int:
        cur = self.db.execute("INSERT INTO runs (root, scan_key, started, status) "
                              "VALUES (?,?,?,?)", (root, scan_key, _now(), "running"))
        return int(cur.lastrowid or 0)

    def unfinished_runs(self, current: int) -> list[int]:
        """Runs killed before they finished (we hold the lock: none of them is running)."""
        return [r[0] for r in self.db.execute(
            "SELECT id FROM runs WHERE status='running' AND resumed_by IS NULL AND id<? "
            "ORDER BY id", (current,))]

    def outcomes_of(self, runs: list[int]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for run in runs:
            out += [json.loads(o) | {"run": run} for (o,) in self.db.execute(
                "SELECT outcome FROM history WHERE run=? ORDER BY model", (run,))]
        return out

    def finish_run(self, run: int, summary: dict[str, Any], resumed: list[int]) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET finished=?, status='complete', summary=? WHERE id=?",
                            (_now(), json.dumps(summary), run))
            self.db.executemany("UPDATE runs SET status='interrupted', resumed_by=? WHERE id=?",
                                [(run, r) for r in resumed])

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, started, finished, status, summary FROM runs "
                               "ORDER BY id DESC LIMIT ?", (limit,))
        return [{"run": i, "started": s, "finished": f, "status": st,
                 "summary": json.loads(sm) if sm else None} for i, s, f, st, sm in rows]

    def prune(self, scan_key: str) -> None:
        """Forget content no present model holds, and results of other rules versions."""
        with self.transaction():
            self.db.execute("DELETE FROM results WHERE scan_key != ?", (scan_key,))
            self.db.execute("DELETE FROM results WHERE sha256 NOT IN "
                            "(SELECT sha256 FROM model_files)")
            self.db.execute("DELETE FROM stats WHERE sha256 NOT IN "
                            "(SELECT sha256 FROM model_files)")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(path: Path, history: int = 5) -> dict[str, Any]:
    """Each model's latest verdict and recent history, and the latest runs (read only)."""
    state = State(path, create=False)
    try:
        models = [{
            "key": m.key, "name": m.name, "kind": m.kind, "revision": m.revision,
            "status": m.status, "verdict": m.verdict,
            "policy": m.policy["status"] if m.policy else None, "first_run": m.first_run,
            "last_run": m.last_run, "removed_run": m.removed_run, "sbom": m.sbom,
            "history": state.history(m.key, history),
        } for m in state.models()]
        return {"schema": 1, "state": str(path), "runs": state.runs(5), "models": models}
    finally:
        state.close()
