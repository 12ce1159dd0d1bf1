"""Policies by name from the installed package (`--policy baseline` outside a clone).

The wheel is built from a copy of the repository with setuptools itself (no network, no build
isolation), unpacked, and run from a folder that is not the clone: what a `pip install` user
has, with the repository nowhere on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", "tests", "bench", "sboms"))
    out = work / "dist"
    out.mkdir()
    built = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
         "print(build_meta.build_wheel(sys.argv[1]))", str(out)],
        cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = out.glob("*.whl")
    target = work / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return target


def run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_carries_every_policy_and_its_data(unpacked_wheel):
    shipped = {p.relative_to(unpacked_wheel / "auditor" / "policies").as_posix()
               for p in (unpacked_wheel / "auditor" / "policies").rglob("*.yaml")}
    source = {p.relative_to(ROOT / "policies").as_posix()
              for p in (ROOT / "policies").glob("*.yaml")} | {
        p.relative_to(ROOT / "policies").as_posix() for p in (ROOT / "policies/data").glob("*")}
    assert shipped == source


def test_a_policy_by_name_works_outside_a_clone(unpacked_wheel, tmp_path):
    model = tmp_path / "tiny-model"
    shutil.copytree(ROOT / "examples" / "tiny-model", model)
    ok = run(unpacked_wheel, tmp_path, "gate", "tiny-model", "--policy", "baseline")
    assert ok.returncode == 0, ok.stderr
    assert "verdict: PASS" in ok.stdout
    geo = run(unpacked_wheel, tmp_path, "gate", "tiny-model", "--policy", "baseline",
              "--policy", "geopolitical-risk", "--format", "json")
    assert geo.returncode == 1, geo.stderr  # unknown publisher: GEO-002 (data files were found)
    assert "GEO-002" in {v["rule"] for v in json.loads(geo.stdout)["models"][0]["violations"]}


def test_policy_list_names_each_installed_policy_with_its_purpose_and_rules(unpacked_wheel,
                                                                            tmp_path):
    listed = run(unpacked_wheel, tmp_path, "policy", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    assert set(by_name) == {"baseline", "production", "geopolitical-risk"}
    assert by_name["baseline"]["rules"] == 5 and by_name["geopolitical-risk"]["rules"] == 7
    assert all(p["purpose"] and "\n" not in p["purpose"] for p in by_name.values())
    text = run(unpacked_wheel, tmp_path, "policy", "list")
    assert text.stdout.splitlines()[0].startswith("baseline")


def test_a_path_still_wins_and_an_unknown_name_is_a_clear_error(run_cli, tmp_path):
    own = tmp_path / "baseline"  # a file named like a shipped policy is the file
    own.write_text((ROOT / "policies" / "production.yaml").read_text().replace(
        "data/", str(ROOT / "policies" / "data") + "/"))
    ran = run_cli("gate", ROOT / "examples" / "tiny-model", "--policy", own, "--format", "json")
    assert {v["rule"] for v in json.loads(ran.out)["models"][0]["violations"]} >= {"PROD-002"}
    missing = run_cli("gate", ROOT / "examples" / "tiny-model", "--policy", "basline")
    assert missing.code == 2
    assert "no installed policy of that name (installed: baseline, geopolitical-risk, " \
           "production" in missing.err
