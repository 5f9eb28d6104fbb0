"""``wssim run``, ``compare`` and ``sweep`` on Dask (``--backend dask [--scheduler ADDR]``)
give the local pool's results, replication for replication, point for point. The tests given
a running scheduler share one (``scheduler``; the module is one xdist group). The commands
on Dask run in this process (``wssim_here``: Dask is imported once, not once a command), the
local pool's in a child process (``wssim``: a pool forked from this process would copy the
threads of the running scheduler)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import SCENARIOS, SHORT, assert_usage_error, wssim

#: the dashboard of a cluster wssim starts takes another port when 8787 is taken (by another
#: run on the machine), and says so
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")

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


def test_run_with_replications_on_a_dask_scheduler_matches_the_local_pool(
    wssim_here, tmp_path, scheduler
):
    local = wssim("run", *COMMON, "--out", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    remote = wssim_here(
        "run", *COMMON, "--out", tmp_path / "dask", "--backend", "dask", "--scheduler", scheduler
    )
    assert remote.returncode == 0, remote.stderr
    summary, messages = _results(tmp_path / "local")
    assert summary["replications"] == 2
    assert _results(tmp_path / "dask") == (summary, messages)


def test_sweep_on_a_running_dask_scheduler_matches_the_local_process_pool(
    wssim_here, tmp_path, scheduler
):
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
    remote = wssim_here(
        "sweep", *common, "--out", tmp_path / "dask", "--backend", "dask", "--scheduler", scheduler
    )
    assert remote.returncode == 0, remote.stderr
    # without --scheduler, wssim starts a cluster of its own
    own = wssim_here("sweep", *common, "--out", tmp_path / "own", "--backend", "dask")
    assert own.returncode == 0, own.stderr
    expected = (tmp_path / "local" / "sweep.csv").read_text()
    assert (tmp_path / "dask" / "sweep.csv").read_text() == expected
    assert (tmp_path / "own" / "sweep.csv").read_text() == expected
    assert_usage_error(
        wssim_here("sweep", *common, "--out", tmp_path / "x", "--scheduler", "tcp://h:1"),
        "--scheduler",
        "dask",
    )


def test_compare_on_a_dask_cluster_of_its_own_prints_the_local_table(wssim_here, tmp_path):
    args = ["compare", *COMMON, "--set", 'strategies=["sct","bearer"]', "--workers", "1"]
    local = wssim(*args)
    assert local.returncode == 0, local.stderr
    own = wssim_here(*args, "--backend", "dask")
    assert own.returncode == 0, own.stderr
    assert own.stdout == local.stdout
    assert "bearer" in local.stdout


def test_a_scheduler_without_the_dask_backend_is_refused(wssim_here, tmp_path):
    result = wssim_here("run", *COMMON, "--out", tmp_path / "x", "--scheduler", "tcp://h:1")
    assert_usage_error(result, "--scheduler", "dask")
