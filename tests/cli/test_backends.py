"""``wssim run``, ``compare`` and ``sweep`` on Dask (``--backend dask [--scheduler ADDR]``)
give the local pool's results, replication for replication, point for point. The tests given
a running scheduler share one (``scheduler``; the module is one xdist group)."""

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


def test_sweep_on_a_running_dask_scheduler_matches_the_local_process_pool(tmp_path, scheduler):
    common = [
        SCENARIOS / "sts-farm.toml",
        *SHORT,
        "--set",
        "workload.rate=50",
        "--param",
        "topology.sts.nodes=1,2",
    ]
    local = wssim("sweep", *common, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    remote = wssim(
        "sweep", *common, "--out", tmp_path / "dask", "--backend", "dask", "--scheduler", scheduler
    )
    assert remote.returncode == 0, remote.stderr
    # without --scheduler, wssim starts a cluster of its own
    own = wssim("sweep", *common, "--out", tmp_path / "own", "--backend", "dask")
    assert own.returncode == 0, own.stderr
    expected = (tmp_path / "local" / "sweep.csv").read_text()
    assert (tmp_path / "dask" / "sweep.csv").read_text() == expected
    assert (tmp_path / "own" / "sweep.csv").read_text() == expected
    assert_usage_error(
        wssim("sweep", *common, "--out", tmp_path / "x", "--scheduler", "tcp://h:1"),
        "--scheduler",
        "dask",
    )


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
