"""Mirror scans and the Hub at their edges: kills, unpinned drift, vanished files, a broken Hub."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from auditor.integrity import drift
from auditor.sources import hubclient
from tests.builders import write_tiny_model
from tests.hubfixtures import serve  # noqa: F401


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_hub_http_500_is_a_protocol_fault_with_its_status(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    hub = serve()
    hub.answer["/api/models/org/tiny"] = (500, b"<html>Internal Server Error</html>")
    monkeypatch.setattr(hubclient, "time", SimpleNamespace(sleep=lambda s: None))
    result = run_cli("scan", "hf://org/tiny", "--cache-dir", tmp_path)
    assert result.code == 3
    line = one_line(result.err)
    assert "the Hub answered HTTP 500" in line
    assert "cannot reach" not in line


def test_hub_answer_that_is_not_json_is_a_protocol_fault(run_cli, serve, tmp_path):  # noqa: F811
    hub = serve()
    hub.answer["/api/models/org/tiny"] = (200, b"<html>captive portal</html>")
    result = run_cli("scan", "hf://org/tiny", "--cache-dir", tmp_path)
    assert result.code == 3
    line = one_line(result.err)
    assert "the Hub's answer is not JSON" in line
    assert "cannot reach" not in line



def test_a_temporary_sbom_left_by_a_killed_run_is_swept_by_the_next(run_cli, tmp_path):
    root = tmp_path / "mirror"
    write_tiny_model(root / "org" / "a")
    state = tmp_path / "mirror.db"
    assert run_cli("mirror", "scan", root, "--state", state).code == 0
    sboms = tmp_path / "sboms"
    # What write_atomic leaves when SIGKILL lands between mkstemp and the rename.
    stale = sboms / ".org__a.cdx.json.k3x_9q2a.tmp"
    stale.write_text('{"bomFormat": "Cyclo')
    theirs = [sboms / "notes.tmp", sboms / ".keep"]
    for path in theirs:
        path.write_text("not ours")
    result = run_cli("mirror", "scan", root, "--state", state)
    assert result.code == 0, result.err
    assert not stale.exists()
    assert all(path.exists() for path in theirs)
    assert sorted(p.name for p in sboms.iterdir()) == [".keep", "notes.tmp", "org__a.cdx.json"]


def test_drift_rules_that_fail_a_run_are_the_ones_the_doc_names():
    """docs/mirror.md's exit-code list names the drift rules that exit 1 whatever --fail-on."""
    doc = (Path(__file__).parent.parent / "docs" / "mirror.md").read_text()
    section = doc.split("## Deltas and exit code", 1)[1].split("\n## ", 1)[0]
    exit_1 = section.split("- `1`", 1)[1].split("\n- `", 1)[0]
    tampering = exit_1.split("any tampering finding", 1)[1].split(";", 1)[0]
    assert set(re.findall(r"AUD-MIR-\d{3}", tampering)) == drift.TAMPERING
    assert "AUD-MIR-004" in exit_1 and "exits 0" in exit_1


def test_unpinned_drift_is_reported_once_and_fails_only_under_its_fail_on(run_cli, tmp_path):
    root = tmp_path / "mirror"
    write_tiny_model(root / "org" / "a")
    state = tmp_path / "mirror.db"
    run_cli("mirror", "scan", root, "--state", state)
    config = root / "org" / "a" / "config.json"
    config.write_text(config.read_text().replace('"llama"', '"mistral"'))
    default = run_cli("mirror", "scan", root, "--state", state)
    assert default.code == 0, default.out  # medium, below the default fail-on high
    assert "new AUD-MIR-004 medium config.json" in default.out
    again = run_cli("mirror", "scan", root, "--state", state, "--fail-on", "medium")
    assert again.code == 0, again.out  # reported once: the change is the new baseline
    config.write_text(config.read_text().replace('"mistral"', '"qwen2"'))
    strict = run_cli("mirror", "scan", root, "--state", state, "--fail-on", "medium")
    assert strict.code == 1, strict.out  # the same file changed again is news again
    assert "new AUD-MIR-004 medium config.json" in strict.out


def test_every_drift_detail_names_its_file():
    pinned = drift.compare({"a.bin": "1" * 64, "new.py": "2" * 64},
                           {"a.bin": ("0" * 64, "0" * 64), "gone.json": ("3" * 64, "3" * 64)},
                           pinned=True)
    details = {f.rule: f.detail for f in pinned.findings}
    assert details["AUD-MIR-003"].startswith("gone.json: ")
    assert details["AUD-MIR-002"].startswith("new.py: ")
    assert details["AUD-MIR-001"].startswith("a.bin: ")
    unpinned = drift.compare({}, {"gone.json": ("3" * 64, "3" * 64)}, pinned=False)
    assert [f.detail.split(":")[0] for f in unpinned.findings] == ["gone.json"]


def test_a_file_the_hub_answers_500_for_is_retried_by_one_layer_only(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    """huggingface_hub already retries a file's HEAD on 5xx with backoff: the error is its
    status in one line (not a network fault, not a warning per attempt), with no retry on top."""
    import huggingface_hub.utils._http as hf_http

    hub = serve()
    hub.answer["/org/tiny/resolve/"] = (500, b"<html>Internal Server Error</html>")
    monkeypatch.setattr(hubclient, "time", SimpleNamespace(sleep=lambda s: None))
    monkeypatch.setattr(hf_http, "time", SimpleNamespace(sleep=lambda s: None,
                                                         time=hf_http.time.time))
    result = run_cli("scan", "hf://org/tiny", "--cache-dir", tmp_path)
    assert result.code == 3
    assert "HTTP 500" in one_line(result.err)
    heads = Counter(p for method, p, _ in hub.requests if method == "HEAD" and "/resolve/" in p)
    assert heads and max(heads.values()) <= 7, heads  # the client's own retries, none on top
