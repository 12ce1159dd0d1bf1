"""Hub failures: one clear line each, exit 2 (the user can fix it) or 3, no partial files."""

from __future__ import annotations

import json
import shutil
import socket
from collections import namedtuple
from types import SimpleNamespace

from auditor.sources import hubclient
from tests.hubfixtures import C2, TOKEN, allow_network, serve  # noqa: F401


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_gated_repo_without_token_says_how_to_get_access(run_cli, serve, tmp_path):  # noqa: F811
    hub = serve()
    result = run_cli("scan", "hf://org/gated", "--cache-dir", tmp_path)
    assert result.code == 2
    line = one_line(result.err)
    assert "gated" in line
    assert f"request access at {hub.url}/org/gated" in line
    assert "--token" in line


def test_gated_repo_with_token_flag_or_env(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    hub = serve()
    flag = run_cli("scan", "hf://org/gated", "--cache-dir", tmp_path, "--token", TOKEN)
    assert flag.code == 0, flag.err
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    env = run_cli("scan", "hf://org/gated", "--cache-dir", tmp_path / "b", "--remote-only")
    assert env.code == 0, env.err
    assert any(auth == f"Bearer {TOKEN}" for _, path, auth in hub.requests
               if "/resolve/" in path)


def test_wrong_token_is_refused_with_one_line(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result = run_cli("scan", "hf://org/gated", "--cache-dir", tmp_path, "--token", "hf_wrong")
    assert result.code == 2
    assert "gated" in one_line(result.err)
    assert "hf_wrong" not in result.err


def test_unknown_repo_is_a_usage_error(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result = run_cli("scan", "hf://org/nope", "--cache-dir", tmp_path)
    assert result.code == 2
    assert "repository not found" in one_line(result.err)


def test_unknown_revision_is_a_usage_error(run_cli, serve, tmp_path):  # noqa: F811
    serve()
    result = run_cli("scan", "hf://org/tiny@no-such-branch", "--cache-dir", tmp_path)
    assert result.code == 2
    assert "revision not found" in one_line(result.err)


def test_malformed_hub_target_is_a_usage_error(run_cli):
    result = run_cli("scan", "hf://org/../etc")
    assert result.code == 2
    assert "hf://ORG/NAME" in one_line(result.err)


def test_dropped_connections_are_retried(run_cli, serve, tmp_path):  # noqa: F811
    hub = serve()
    hub.drop["/api/models/org/tiny"] = 1  # the metadata call: our retry with backoff
    hub.drop["/org/tiny/resolve/"] = 2  # file transfers: the client resumes
    result = run_cli("scan", f"hf://org/tiny@{C2}", "--cache-dir", tmp_path, "--format", "json")
    assert result.code == 0, result.err
    assert all(left == 0 for left in hub.drop.values())
    report = json.loads(result.out)
    assert all(f["facts"]["upstream"]["match"] for f in report["models"][0]["files"])


def test_network_down_is_exit_3_after_retries(run_cli, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    allow_network(monkeypatch)
    waits: list[float] = []
    monkeypatch.setattr(hubclient, "time", SimpleNamespace(sleep=waits.append))
    result = run_cli("scan", "hf://org/tiny", "--endpoint", f"http://127.0.0.1:{port}",
                     "--cache-dir", tmp_path)
    assert result.code == 3
    line = one_line(result.err)
    assert "cannot reach the Hub after 4 attempts" in line
    assert waits == [0.5, 1.0, 2.0]  # backoff doubles


def test_disk_full_is_exit_3_and_nothing_is_written(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    serve()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 100, 10))
    result = run_cli("scan", "hf://org/tiny", "--cache-dir", tmp_path)
    assert result.code == 3
    assert "disk full" in one_line(result.err)
    assert not (tmp_path / "models--org--tiny").exists()


def test_failed_download_leaves_no_partial_file(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    hub = serve()
    monkeypatch.setattr(hubclient, "time", SimpleNamespace(sleep=lambda s: None))
    hub.drop["/org/tiny/resolve/"] = 1000  # every transfer dies half-way
    result = run_cli("scan", f"hf://org/tiny@{C2}", "--cache-dir", tmp_path)
    assert result.code == 3
    one_line(result.err)
    blobs = tmp_path / "models--org--tiny" / "blobs"
    leftovers = [p.name for p in blobs.iterdir()] if blobs.exists() else []
    assert not [n for n in leftovers if "incomplete" in n]


def test_offline_never_touches_the_network(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    hub = serve()
    first = run_cli("scan", "hf://org/tiny@main", "--cache-dir", tmp_path)
    assert first.code == 0, first.err
    before = len(hub.requests)
    offline = run_cli("scan", "hf://org/tiny@main", "--cache-dir", tmp_path, "--offline",
                      "--format", "json")
    assert offline.code == 0, offline.err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env = run_cli("scan", "hf://org/tiny@main", "--cache-dir", tmp_path)
    assert env.code == 0, env.err
    assert len(hub.requests) == before
    model = json.loads(offline.out)["models"][0]
    assert (model["source"], model["revision"]) == ("hf-cache", C2)
    missing = run_cli("scan", "hf://org/other", "--cache-dir", tmp_path, "--offline")
    assert missing.code == 2
    assert "not in the Hugging Face cache" in one_line(missing.err)


def test_dropped_range_request_is_retried_in_remote_only(
    run_cli, serve, tmp_path, monkeypatch  # noqa: F811
):
    hub = serve()
    monkeypatch.setattr(hubclient, "time", SimpleNamespace(sleep=lambda s: None))
    hub.drop["/org/tiny/resolve/"] = 2
    result = run_cli("scan", f"hf://org/tiny@{C2}", "--remote-only", "--format", "json")
    assert result.code == 0, result.err
    assert hub.drop["/org/tiny/resolve/"] == 0
    files = json.loads(result.out)["models"][0]["files"]
    assert {f["format"] for f in files} == {"safetensors", "json", "modelcard"}


def test_private_repo_needs_a_token(run_cli, serve, tmp_path):  # noqa: F811
    from tests.hubfixtures import simple_repo

    serve([simple_repo("org/private", private=True)])
    without = run_cli("scan", "hf://org/private", "--cache-dir", tmp_path)
    assert without.code == 2
    assert "if private, pass a token" in one_line(without.err)
    wrong = run_cli("scan", "hf://org/private", "--cache-dir", tmp_path, "--token", "hf_bad")
    assert wrong.code == 2
    assert "the token has no access" in one_line(wrong.err)
    right = run_cli("scan", "hf://org/private", "--cache-dir", tmp_path, "--token", TOKEN,
                    "--format", "json")
    assert right.code == 0, right.err
    assert json.loads(right.out)["models"][0]["facts"]["hub"]["private"] is True
