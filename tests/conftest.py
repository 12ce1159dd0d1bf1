"""Shared test helpers: run the CLI in-process exactly as a user would."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from auditor.cli import main

_SBOM_PATCH = pytest.StashKey[pytest.MonkeyPatch]()

# Hypothesis: the default profile is the same inputs on every run and machine, bounded, and
# never slowed or failed by a busy machine; `HYPOTHESIS_PROFILE=fuzz` searches far longer,
# from a fresh seed each run, and keeps what it finds (in .hypothesis/, ignored by git) so a
# failure replays on the next run.
_SLOW_INPUTS_ARE_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=100, derandomize=True, deadline=None,
                          database=None, print_blob=True,
                          suppress_health_check=_SLOW_INPUTS_ARE_FINE)
settings.register_profile("fuzz", max_examples=5000, derandomize=False, deadline=None,
                          database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
                          suppress_health_check=_SLOW_INPUTS_ARE_FINE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """`run_cli("scan", path, "--format", "json")` -> Run(code, out, err)."""

    def run(*args: object) -> Run:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # main always exits
            code = -1
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def canary(tmp_path):
    """A path a payload would create if executed; the test fails if it ever appears."""
    path = tmp_path / "CANARY"
    yield path
    assert not path.exists(), "a scanned payload was executed"


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch, tmp_path_factory):
    """No test talks to the real Hub or reads the developer's config."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.getbasetemp() / "no-docker-config"))
    monkeypatch.delenv("AUDITOR_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("AUDITOR_REGISTRY_PASSWORD", raising=False)
    monkeypatch.delenv("AUDITOR_REGISTRY_HOST", raising=False)


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory):
    """`oci_registry("plain" | "tls" | "auth")` -> a running Distribution registry
    (tests/oci_registry.py), one per mode for the session, stopped at its end."""
    from tests.oci_registry import Registries

    registries = Registries(tmp_path_factory.mktemp("oci-registries"))
    yield registries
    registries.stop_all()


def _validating(write: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`write`, with every document it returns validated against the official schema."""
    from auditor.sbom import cyclonedx

    @functools.wraps(write)
    def checked(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = write(*args, **kwargs)
        cyclonedx.validate(doc)
        return doc

    return checked


def pytest_configure(config: pytest.Config) -> None:
    """Every SBOM the suite makes is validated against the official CycloneDX schema.

    The product skips schema validation at run time (its imports cost seconds
    per process); this is where its output is proven valid. Every document
    auditor produces comes out of `auditor.sbom.cyclonedx.to_cyclonedx`, so
    that one function is wrapped, once, before any test module is imported,
    and every name already bound to it (`from ... import to_cyclonedx` in a
    module loaded earlier) is rebound too: no import style can bypass it.
    """
    from auditor.sbom import cyclonedx

    original = cyclonedx.to_cyclonedx
    checked = _validating(original)
    patch = pytest.MonkeyPatch()
    config.stash[_SBOM_PATCH] = patch
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("auditor", "tests"):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                patch.setattr(module, attr, checked)


def pytest_unconfigure(config: pytest.Config) -> None:
    patch = config.stash.get(_SBOM_PATCH, None)
    if patch is not None:
        patch.undo()
