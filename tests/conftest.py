"""Shared test helpers: run the CLI in-process exactly as a user would."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from auditor.cli import main


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


@pytest.fixture(autouse=True)
def _every_sbom_validates(monkeypatch):
    """Every SBOM a test makes is validated against the official CycloneDX schema.

    The product skips schema validation at run time (its imports cost seconds
    per process); this is where its output is proven valid.
    """
    from auditor.sbom import cyclonedx

    original = cyclonedx.to_cyclonedx

    def checked(*args, **kwargs):
        doc = original(*args, **kwargs)
        cyclonedx.validate(doc)
        return doc

    monkeypatch.setattr(cyclonedx, "to_cyclonedx", checked)
