"""The Hub token never appears in any output: reports, SBOMs, errors, logs, the cache."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace

from auditor.sources import hubclient
from tests.hubfixtures import TOKEN, serve  # noqa: F401


def test_token_never_in_any_output(run_cli, serve, tmp_path, monkeypatch, caplog):  # noqa: F811
    hub = serve()
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "cache"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(hubclient, "time", SimpleNamespace(sleep=lambda s: None))
    runs = [
        run_cli("scan", "hf://org/gated", "--token", TOKEN, "--cache-dir", cache),
        run_cli("scan", "hf://org/gated", "--token", TOKEN, "--cache-dir", cache,
                "--format", "json", "-o", tmp_path / "report.json",
                "--sbom", tmp_path / "bom.json"),
        run_cli("scan", "hf://org/gated", "--token", TOKEN, "--remote-only", "--format", "json"),
        run_cli("scan", "hf://org/nope", "--token", TOKEN, "--cache-dir", cache),
        run_cli("scan", "hf://org/gated@nope", "--token", TOKEN, "--cache-dir", cache),
        run_cli("scan", "hf://org/gated", "--token", TOKEN, "--endpoint", dead),
    ]
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    runs.append(run_cli("scan", "hf://org/gated", "--remote-only", "-o", tmp_path / "r.txt"))
    assert [r.code for r in runs] == [0, 0, 0, 2, 2, 3, 0]
    assert any(auth == f"Bearer {TOKEN}" for _, _, auth in hub.requests)  # it was used...
    texts = [r.out + r.err for r in runs] + [caplog.text]
    texts += [p.read_bytes().decode("utf-8", "replace")
              for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert (tmp_path / "report.json").is_file() and (tmp_path / "bom.json").exists()
    assert not [t for t in texts if TOKEN in t]  # ...and never written anywhere


def test_client_telemetry_is_switched_off_by_auditor(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_TELEMETRY", "DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    code = ("from auditor.sources.hubclient import client; client(); "
            "from huggingface_hub import constants; print(constants.HF_HUB_DISABLE_TELEMETRY)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "True"
