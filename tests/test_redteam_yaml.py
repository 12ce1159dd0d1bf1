"""Red team: YAML configs with Python tags (CVE-2020-14343, CVE-2021-37678 class).

Unsafe PyYAML loaders construct `!!python/object/apply:...` into a call. The
tag can be spelled directly, through a `%TAG` handle, as a verbatim `!<...>`
tag or with %-escapes; the parser resolves all of them the same way, and so
must the scan. The control proves the payload is live for `yaml.unsafe_load`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SPELLINGS = {
    "plain": 'a: !!python/object/apply:os.system ["{cmd}"]\n',
    "tag-handle": ('%TAG !p! tag:yaml.org,2002:python/\n---\n'
                   'a: !p!object/apply:os.system ["{cmd}"]\n'),
    "verbatim-escaped": 'a: !<tag:yaml.org,2002:%70ython/object/apply:os.system> ["{cmd}"]\n',
    "name-tag": "a: !!python/name:os.system\n",
    "nested-deep": ('train:\n  opt:\n    - lr: 1\n'
                    '    - hook: !!python/object/new:subprocess.Popen [["{cmd}"]]\n'),
}


def scan(run_cli, folder: Path) -> tuple[int, dict[str, str]]:
    result = run_cli("scan", folder, "--format", "json")
    doc = json.loads(result.out)
    found = {f["rule"]: f["severity"] for m in doc["models"] for fr in m["files"]
             for f in fr["findings"]}
    return result.code, found


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("name", ["config.yaml", "hparams.yml"])
def test_python_tag_in_yaml_config_is_critical(tmp_path, run_cli, spelling, name):
    canary = tmp_path / "CANARY"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / name).write_text(SPELLINGS[spelling].format(cmd=f"touch {canary}"))
    code, found = scan(run_cli, folder)
    assert code == 1
    assert found.get("AUD-YAML-001") == "critical", found
    assert not canary.exists()


def test_control_python_tag_runs_in_an_unsafe_loader(tmp_path):
    canary = tmp_path / "CANARY"
    text = SPELLINGS["verbatim-escaped"].format(cmd=f"touch {canary}")
    code = "import sys, yaml\nyaml.unsafe_load(sys.stdin.read())"
    subprocess.run([sys.executable, "-c", code], input=text.encode(), capture_output=True,
                   timeout=60)
    assert canary.exists()


def test_plain_yaml_configs_pass(tmp_path, run_cli):
    """Benign control: recipes with anchors, multiple documents and local tags pass."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.yaml").write_text(
        "defaults: &d\n  lr: 0.001\n  betas: [0.9, 0.999]\ntrain:\n  <<: *d\n  epochs: 3\n"
        "note: 'python/object is just text here'\n---\nsecond: doc\n")
    (folder / "recipe.yml").write_text("model: !custom tiny\nsteps: 10\n")
    code, found = scan(run_cli, folder)
    assert code == 0, found
    assert "AUD-YAML-001" not in found


def test_unparseable_yaml_is_a_finding_not_a_pass_through(tmp_path, run_cli):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.yaml").write_text("a: [1, 2\nb: }\n")
    _, found = scan(run_cli, folder)
    assert found.get("AUD-YAML-002") == "medium"
