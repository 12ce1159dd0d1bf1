"""Scanning never executes a payload: every malicious fixture is scanned, the canary never appears.

The payloads are live (the control test proves one really creates the
canary when unpickled in a child process), so a scanner that loaded any of
them would leave the file behind.
"""

from __future__ import annotations

import subprocess
import sys

from tests import pickle_corpus as corpus


def test_scanning_every_malicious_fixture_never_creates_the_canary(tmp_path, run_cli):
    canary = tmp_path / "CANARY"
    cases = corpus.malicious(str(canary))
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, case in enumerate(cases):
        sub = folder / f"{i:03d}-{case.name}"
        sub.mkdir()
        (sub / case.filename).write_bytes(case.data)
    result = run_cli("scan", folder, "--format", "json")
    assert result.code == 1, result.err
    assert not canary.exists()
    assert sum(c.runs_canary for c in cases) >= 20


def test_control_the_payloads_are_live(tmp_path):
    """Each payload marked live does create the canary when really unpickled (in a child)."""
    canary = tmp_path / "CANARY"
    # A real model loader runs inside a framework (torch, numpy, ...) that has already
    # imported collections.abc, so `collections.abc` resolves as an attribute of `collections`.
    # A bare interpreter has not, and the ShadowPickle payload would die before it ran.
    loader = ("import collections.abc, io, pickle, sys\n"
              "f = io.BytesIO(sys.stdin.buffer.read())\n"
              "while True: pickle.load(f)")
    for case in (c for c in corpus.malicious(str(canary)) if c.runs_canary):
        canary.unlink(missing_ok=True)
        child = subprocess.run([sys.executable, "-c", loader], input=case.data,
                               capture_output=True, timeout=60)
        assert canary.exists(), f"{case.name}: {child.stderr.decode(errors='replace')[-400:]}"
