"""Outputs are never torn, and a local scan never touches the network."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.builders import write_tiny_model

WRITER = textwrap.dedent("""
    import sys
    from auditor.atomicio import write_atomic
    target, size = sys.argv[1], int(sys.argv[2])
    i = 0
    while True:
        i += 1
        write_atomic(target, bytes([i % 256]) * size)
        print(i, flush=True)
""")


def test_killing_a_writer_mid_write_leaves_the_old_or_the_new_file_never_a_torn_one(tmp_path):
    target = tmp_path / "report.json"
    size = 8 << 20
    target.write_bytes(b"\x00" * size)
    for delay in (0.05, 0.11, 0.17, 0.23, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(size)],
                                stdout=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = target.read_bytes()
        assert len(data) == size
        assert data == bytes([data[0]]) * size  # one whole write, not a mix


@pytest.fixture
def no_network(monkeypatch):
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_local_scan_gate_and_sbom_never_open_a_connection(run_cli, no_network, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    assert run_cli("scan", model, "--format", "json").code == 0
    assert run_cli("scan", model, "--sbom", tmp_path / "bom.json").code == 0
    baseline = Path(__file__).resolve().parent.parent / "policies" / "baseline.yaml"
    assert run_cli("gate", model, "--policy", baseline).code == 0
    assert no_network == []


def test_hub_environment_alone_does_not_make_a_local_scan_go_online(
    run_cli, no_network, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = write_tiny_model(tmp_path / "tiny")
    assert run_cli("scan", model).code == 0
    assert no_network == []


def test_output_to_an_unwritable_place_is_one_line_exit_3(run_cli, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    run = run_cli("scan", model, "-o", tmp_path / "missing-dir" / "report.txt")
    assert run.code == 3
    assert len(run.err.strip().splitlines()) == 1 and "report.txt" in run.err


def test_written_files_get_normal_permissions_not_mkstemps_0600(tmp_path):
    from auditor.atomicio import write_atomic

    target = tmp_path / "report.txt"
    write_atomic(target, "x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()
    target.chmod(0o640)
    write_atomic(target, "y")
    assert target.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current
