"""Config files set defaults; flags override; a bad file is a usage error naming it."""

from __future__ import annotations

import json

import pytest

from auditor.config import Config, load_config
from auditor.model import Severity
from tests.builders import write_tiny_model


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory holding a model with one high finding (an unknown binary)."""
    model = write_tiny_model(tmp_path / "model")
    (model / "blob.bin").write_bytes(b"\x13\x37\x00\x00" * 8)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_config_file_means_defaults(project):
    assert load_config() == Config()


def test_auditor_toml_sets_fail_on(project, run_cli):
    assert run_cli("scan", "model").code == 1
    (project / "auditor.toml").write_text('fail-on = "critical"\n')
    assert run_cli("scan", "model").code == 0


def test_pyproject_tool_auditor_table_is_read(project, run_cli):
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.auditor]\nfail-on = "critical"\nexclude = ["*.md"]\n'
    )
    run = run_cli("scan", "model", "--format", "json")
    assert run.code == 0
    paths = {f["path"] for f in json.loads(run.out)["models"][0]["files"]}
    assert "README.md" not in paths


def test_pyproject_without_a_tool_auditor_table_means_defaults(project):
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config() == Config()


def test_auditor_toml_wins_over_pyproject(project):
    (project / "pyproject.toml").write_text('[tool.auditor]\nfail-on = "low"\n')
    (project / "auditor.toml").write_text('fail-on = "medium"\n')
    assert load_config().fail_on == Severity.MEDIUM


def test_command_line_flags_override_the_config(project, run_cli):
    (project / "auditor.toml").write_text('fail-on = "critical"\njobs = 1\n')
    assert run_cli("scan", "model", "--fail-on", "high").code == 1


def test_config_and_command_line_excludes_add_up(project, run_cli):
    (project / "auditor.toml").write_text('exclude = ["*.md"]\n')
    run = run_cli("scan", "model", "--format", "json", "--exclude", "*.bin")
    paths = {f["path"] for f in json.loads(run.out)["models"][0]["files"]}
    assert paths == {"config.json", "generation_config.json", "model.safetensors"}
    assert run.code == 0


def test_explicit_config_path_is_used(project, run_cli):
    (project / "strict.toml").write_text('fail-on = "high"\n')
    (project / "auditor.toml").write_text('fail-on = "critical"\n')
    assert run_cli("scan", "model", "--config", "strict.toml").code == 1


def test_missing_explicit_config_is_a_usage_error(project, run_cli):
    run = run_cli("scan", "model", "--config", "nope.toml")
    assert run.code == 2
    assert "nope.toml" in run.err


def test_all_keys_are_read(project):
    (project / "auditor.toml").write_text(
        'fail-on = "low"\nexclude = ["a", "b/*"]\njobs = 3\n'
        'safe-imports = ["mypkg.Layer"]\nknown-ml-imports = ["otherpkg.*"]\n'
    )
    config = load_config()
    assert config == Config(
        path=str(project / "auditor.toml"), fail_on=Severity.LOW, exclude=("a", "b/*"), jobs=3,
        safe_imports=("mypkg.Layer",), known_ml_imports=("otherpkg.*",),
    )


def test_unknown_key_is_a_usage_error_naming_file_and_key(project, run_cli):
    (project / "auditor.toml").write_text('fail_on = "critical"\n')  # misspelt
    run = run_cli("scan", "model")
    assert run.code == 2
    assert "auditor.toml" in run.err
    assert "'fail_on'" in run.err
    assert run.err.count("\n") == 1
    assert run.out == ""


def test_unknown_key_in_pyproject_names_the_table(project, run_cli):
    (project / "pyproject.toml").write_text('[tool.auditor]\nfailon = "low"\n')
    run = run_cli("scan", "model")
    assert run.code == 2
    assert "pyproject.toml [tool.auditor]" in run.err


def test_invalid_toml_is_a_usage_error_with_the_line(project, run_cli):
    (project / "auditor.toml").write_text('exclude = ["*.md"]\nfail-on = critical\n')
    run = run_cli("scan", "model")
    assert run.code == 2
    assert "auditor.toml" in run.err
    assert "line 2" in run.err


def test_config_that_is_not_utf8_is_a_usage_error_with_the_line(project, run_cli):
    (project / "auditor.toml").write_bytes(b'jobs = 1\n# caf\xe9\n')
    run = run_cli("scan", "model")
    assert run.code == 2
    assert "line 2" in run.err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('fail-on = "severe"', "fail-on", id="bad-severity"),
        pytest.param("fail-on = 3", "fail-on", id="severity-not-string"),
        pytest.param('exclude = "*.md"', "exclude must be a list", id="exclude-not-list"),
        pytest.param("exclude = [1]", "exclude must be a list", id="exclude-not-strings"),
        pytest.param("jobs = 0", "jobs must be a positive integer", id="jobs-zero"),
        pytest.param("jobs = true", "jobs must be a positive integer", id="jobs-bool"),
        pytest.param('jobs = "2"', "jobs must be a positive integer", id="jobs-string"),
    ],
)
def test_wrong_values_are_usage_errors(project, run_cli, text, message):
    (project / "auditor.toml").write_text(text + "\n")
    run = run_cli("scan", "model")
    assert run.code == 2
    assert message in run.err
    assert "auditor.toml" in run.err
