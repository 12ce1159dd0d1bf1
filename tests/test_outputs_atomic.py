"""Nothing lost: every file auditor writes is written whole, through `atomicio.write_atomic`.

Two complementary checks. Statically, the source of `auditor/` is parsed and
every call able to write a file (write-mode `open`, `Path.write_*`, `os.open`
with write flags, copies, renames, temporary files, SQLite) must be in the
table of justified exceptions below, and every exception must still exist.
Dynamically, each CLI command that writes a file is run with `os.replace`
recorded: its output must arrive by rename (temp + rename), leaving no
temporary file behind. The kill-mid-write test lives in
test_nothing_lost_nothing_leaked.py; token leaks are test_hub_token.py's.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from tests.builders import write_tiny_model
from tests.hubfixtures import C1, tiny_files
from tests.pki import ec_key, write_private, write_public
from tests.test_hub_cache import make_cache

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "auditor"

# (file relative to auditor/, what) -> why that write may bypass write_atomic.
JUSTIFIED = {
    ("atomicio.py", "tempfile.mkstemp"): "the temporary file of write_atomic itself",
    ("atomicio.py", "os.fdopen(w)"): "writes the temporary file write_atomic renames",
    ("atomicio.py", "os.replace"): "the rename that makes write_atomic atomic",
    ("mirror/state.py", "open(a)"): "the mirror's lock file: held, never written",
    ("mirror/state.py", "sqlite3.connect"): "SQLite's journal makes each transaction atomic",
    ("formats/archives/zip.py", "tempfile.SpooledTemporaryFile"): "an anonymous spool, not an "
                                                                  "output",
    ("admission/server.py", "open(a)"): "the webhook's audit log: one JSON line appended per "
                                        "decision (a log, not a document)",
    ("sources/oci.py", "open(w)"): "a layer member spooled to a temporary file for the engine "
                                   "and deleted after its scan, or kept with --pull-to (the "
                                   "kept folder is emptied when a layer's digest fails)",
}

WRITE_MODES = set("wax+")
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"}
DOTTED = {"os.replace", "os.rename", "shutil.copy", "shutil.copy2", "shutil.copyfile",
          "shutil.move", "shutil.copytree", "tempfile.mkstemp", "tempfile.NamedTemporaryFile",
          "tempfile.TemporaryFile", "tempfile.SpooledTemporaryFile", "sqlite3.connect",
          "os.link", "os.symlink", "os.truncate"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _mode(call: ast.Call, position: int) -> str | None:
    args = [*call.args[position : position + 1],
            *(k.value for k in call.keywords if k.arg == "mode")]
    for arg in args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


def writes_in(source: str) -> list[str]:
    """Every call in `source` that can create or write a file, as a short description."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        attr = name.rsplit(".", 1)[-1]
        if name in DOTTED:
            found.append(name)
        elif name in ("open", "io.open", "os.fdopen") or (attr == "open" and name != "os.open"):
            mode = _mode(node, 1 if name in ("open", "io.open", "os.fdopen") else 0)
            if mode and WRITE_MODES & set(mode):
                found.append(f"{'os.fdopen' if name == 'os.fdopen' else 'open'}({mode[0]})")
        elif name == "os.open":
            flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if flags & WRITE_FLAGS:
                found.append("os.open(write)")
        elif attr in ("write_text", "write_bytes", "touch", "mkfifo"):
            found.append(f"Path.{attr}")
    return found


def test_the_write_detector_sees_each_kind_of_write():
    source = ("open(p, 'w')\nopen(p, mode='ab')\nopen(p)\np.open('wb')\np.write_text('x')\n"
              "os.open(p, os.O_WRONLY | os.O_CREAT)\nos.open(p, os.O_RDONLY)\nshutil.move(a, b)\n"
              "x = 'write_text'\n")
    assert writes_in(source) == ["open(w)", "open(a)", "open(w)", "Path.write_text",
                                 "os.open(write)", "shutil.move"]


def test_every_write_in_auditor_goes_through_write_atomic_or_is_justified():
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        found |= {(rel, what) for what in writes_in(path.read_text(encoding="utf-8"))}
    unexplained = sorted(found - set(JUSTIFIED))
    assert unexplained == [], f"write these through auditor.atomicio.write_atomic: {unexplained}"
    stale = sorted(set(JUSTIFIED) - found)
    assert stale == [], f"justified exceptions that no longer exist: {stale}"


@pytest.fixture
def renames(monkeypatch):
    """Targets of every os.replace during the test (write_atomic's final step)."""
    done: list[Path] = []
    real = os.replace

    def record(src, dst, *args, **kwargs):
        real(src, dst, *args, **kwargs)
        done.append(Path(dst).resolve())

    monkeypatch.setattr(os, "replace", record)
    return done


def assert_renamed_into_place(paths: list[Path], renames: list[Path]) -> None:
    for path in paths:
        assert path.is_file(), path
        assert path.resolve() in renames, f"{path} was not written by temp + rename"
        leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        assert leftovers == [], leftovers


def test_every_cli_output_is_written_by_rename(run_cli, renames, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    out = tmp_path / "out"
    out.mkdir()
    priv = write_private(key := ec_key(), tmp_path / "key.pem")
    write_public(key, tmp_path / "pub.pem")
    baseline = ROOT / "policies" / "baseline.yaml"
    outputs = {
        ("scan", model, "-o", out / "report.txt"): [out / "report.txt"],
        ("scan", model, "--format", "json", "--sbom", out / "bom.json", "-o",
         out / "report.json"): [out / "bom.json", out / "report.json"],
        ("gate", model, "--policy", baseline, "--sbom", out / "gate-bom.json", "-o",
         out / "verdict.txt"): [out / "gate-bom.json", out / "verdict.txt"],
        ("policy", "check", out / "bom.json", "--policy", baseline, "-o", out / "check.json",
         "--format", "json"): [out / "check.json"],
        ("rules", "-o", out / "rules.txt"): [out / "rules.txt"],
        ("sign", model, "--key", priv, "-o", out / "model.sig"): [out / "model.sig"],
        ("attest", out / "bom.json", "--key", priv, "-o", out / "bom.intoto.json"):
            [out / "bom.intoto.json"],
    }
    for args, paths in outputs.items():
        run = run_cli(*args)
        assert run.code in (0, 1), (args, run.err)
        assert_renamed_into_place(paths, renames)
    assert json.loads((out / "bom.json").read_text())["bomFormat"] == "CycloneDX"


def test_mirror_outputs_are_written_by_rename(run_cli, renames, tmp_path):
    root = tmp_path / "hub"
    make_cache(root, "org/tiny", C1, tiny_files(), refs={"main": C1}, trees=False)
    sboms, summary = tmp_path / "sboms", tmp_path / "summary.json"
    run = run_cli("mirror", "scan", root, "--state", tmp_path / "state.db", "--sboms", sboms,
                  "--format", "json", "-o", summary, "-j", "1")
    assert run.code in (0, 1), run.err
    written = sorted(sboms.rglob("*.json"))
    assert written
    assert_renamed_into_place([summary, *written], renames)
