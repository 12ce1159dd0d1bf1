"""The Dask executor: per-file scans on a local cluster give what local threads give."""

from __future__ import annotations

import json

import pytest

from tests.builders import write_tiny_model
from tests.hubfixtures import C1, C2, tiny_files
from tests.test_hub_cache import make_cache

distributed = pytest.importorskip("distributed")

PICKLE_RCE = (b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93"
              b"\x8c\x02id\x85R.")


@pytest.fixture(scope="module")
def scheduler():
    """A scheduler and two in-process workers on 127.0.0.1: `dask://host:port`."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")


def comparable(summary: dict) -> dict:
    """What a run found, without when and how fast."""
    s = dict(summary["summary"], elapsed_s=None)
    return {"summary": s, "models": summary["models"], "verdict": summary["verdict"]}


def test_dask_executor_gives_the_same_results_as_local_threads(run_cli, tmp_path, scheduler):
    root = tmp_path / "hub"
    make_cache(root, "org/tiny", C1, tiny_files(), refs={"main": C1})
    make_cache(root, "org/tiny", C2, tiny_files(), refs={"main": C2}, trees=False)
    folder = make_cache(root, "org/bad", C2, tiny_files(), trees=False)
    (folder / "snapshots" / C2 / "extra.pkl").write_bytes(PICKLE_RCE)
    runs = {}
    for name, extra in (("local", ()), ("dask", ("--executor", scheduler))):
        state = tmp_path / name / "mirror.db"
        result = run_cli("mirror", "scan", root, "--state", state, "--format", "json", *extra)
        assert result.code == 1, result.err  # the pickle fails both
        runs[name] = json.loads(result.out)
    assert comparable(runs["dask"]) == comparable(runs["local"])
    assert runs["dask"]["summary"]["files_read"] > 0
    sboms = {name: {p.name: p.read_bytes() for p in (tmp_path / name / "sboms").iterdir()}
             for name in runs}
    assert sboms["dask"] == sboms["local"] and len(sboms["dask"]) == 3


def test_dask_rescan_reads_nothing_and_local_state_is_shared(run_cli, tmp_path, scheduler):
    root = tmp_path / "mirror"
    write_tiny_model(root / "org" / "a")
    state = tmp_path / "mirror.db"
    assert run_cli("mirror", "scan", root, "--state", state, "--executor", scheduler).code == 0
    result = run_cli("mirror", "scan", root, "--state", state, "--format", "json")
    assert json.loads(result.out)["summary"]["files_read"] == 0


@pytest.mark.parametrize(("executor", "code", "message"), [
    ("dask://127.0.0.1:9", 3, "cannot reach the Dask scheduler"),
    ("ray://127.0.0.1:1", 2, "expected dask://HOST:PORT"),
])
def test_bad_executor_is_a_one_line_error(run_cli, tmp_path, executor, code, message):
    root = tmp_path / "mirror"
    write_tiny_model(root / "org" / "a")
    result = run_cli("mirror", "scan", root, "--state", tmp_path / "m.db", "--executor", executor)
    assert result.code == code and message in result.err
    assert len(result.err.strip().splitlines()) == 1
