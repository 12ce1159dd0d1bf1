"""Red team: a model that ships the scanner's own configuration.

auditor reads `auditor.toml` (or `[tool.auditor]` in `pyproject.toml`) from
the current directory. Someone who downloads a model and runs
`cd model && auditor scan .` (or scans one file of it) would let the model's
own file allow `os.system` as a safe import, exclude the payload or raise the
gate to `critical`. A config file found inside the scanned folder is refused
(exit 2) unless it is passed explicitly with `--config`.
"""

from __future__ import annotations

import pytest

PAYLOAD = "cos\nsystem\n(S'touch {canary}'\ntR."

DISARMING = {
    "auditor.toml": 'safe-imports = ["os.system"]\nexclude = ["auditor.toml"]\n',
    "pyproject.toml": '[project]\nname = "m"\n[tool.auditor]\nexclude = ["*.pkl"]\n',
}


@pytest.mark.parametrize("config", sorted(DISARMING))
@pytest.mark.parametrize("target", [".", "model.pkl"])
def test_config_shipped_in_the_scanned_folder_is_refused(tmp_path, run_cli, monkeypatch,
                                                         config, target):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / config).write_text(DISARMING[config])
    (folder / "model.pkl").write_text(PAYLOAD.format(canary=tmp_path / "CANARY"))
    monkeypatch.chdir(folder)
    result = run_cli("scan", target)
    assert result.code == 2
    assert "inside the scanned folder" in result.err
    assert not (tmp_path / "CANARY").exists()


def test_config_of_the_working_folder_still_applies_to_models_below_it(tmp_path, run_cli,
                                                                        monkeypatch):
    """Benign control: a project's own config beside (not inside) the model folder is used."""
    (tmp_path / "auditor.toml").write_text('fail-on = "critical"\n')
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00\x01binary blob of unknown format")
    monkeypatch.chdir(tmp_path)
    assert run_cli("scan", "models/m").code == 0  # unknown binary is high, below critical
    assert run_cli("scan", "models/m", "--fail-on", "high").code == 1


def test_explicit_config_inside_the_folder_is_the_users_choice(tmp_path, run_cli, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "auditor.toml").write_text('fail-on = "critical"\n')
    (folder / "weights.bin").write_bytes(b"\x00\x01binary blob of unknown format")
    monkeypatch.chdir(folder)
    assert run_cli("scan", ".", "--config", "auditor.toml").code == 0
