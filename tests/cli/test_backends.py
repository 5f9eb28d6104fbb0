"""``wssim run`` and ``compare`` with replications on Dask (``--backend dask
[--scheduler ADDR]``) give the local pool's results, replication for replication."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import SCENARIOS, SHORT, assert_usage_error, wssim

COMMON = [SCENARIOS / "sct.toml", *SHORT, "--set", "workload.rate=20", "--replications", "2"]


def _results(out) -> tuple[dict, str]:
    """summary.json and messages.csv, which hold no wall-clock time."""
    return json.loads((out / "summary.json").read_text()), (out / "messages.csv").read_text()


@pytest.fixture(scope="module")
def scheduler():
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def test_run_with_replications_on_a_dask_scheduler_matches_the_local_pool(tmp_path, scheduler):
    local = wssim("run", *COMMON, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    remote = wssim(
        "run", *COMMON, "--out", tmp_path / "dask", "--backend", "dask", "--scheduler", scheduler
    )
    assert remote.returncode == 0, remote.stderr
    summary, messages = _results(tmp_path / "local")
    assert summary["replications"] == 2
    assert _results(tmp_path / "dask") == (summary, messages)


def test_compare_on_a_dask_cluster_of_its_own_prints_the_local_table(tmp_path):
    args = ["compare", *COMMON, "--set", 'strategies=["sct","bearer"]', "--workers", "1"]
    local = wssim(*args)
    assert local.returncode == 0, local.stderr
    own = wssim(*args, "--backend", "dask")
    assert own.returncode == 0, own.stderr
    assert own.stdout == local.stdout
    assert "bearer" in local.stdout


def test_a_scheduler_without_the_dask_backend_is_refused(tmp_path):
    result = wssim("run", *COMMON, "--out", tmp_path / "x", "--scheduler", "tcp://h:1")
    assert_usage_error(result, "--scheduler", "dask")
