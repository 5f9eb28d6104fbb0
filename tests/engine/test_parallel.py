"""Replications run side by side in worker processes give the very result of a sequential
run: the same summaries, rows, load series and warnings, in the same order."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate


def same(a, b) -> None:
    assert a.summary == b.summary
    assert list(a.messages) == list(b.messages)
    assert a.nodes == b.nodes and a.links == b.links and a.timeseries == b.timeseries


@pytest.mark.slow
@pytest.mark.parametrize("fidelity", ["replay", "full"])
def test_parallel_replications_equal_sequential_ones(fidelity, key_dir):
    scenario = load_scenario(
        {
            "strategies": ["sct", "x509"],
            "workload": {"rate": 8.0, "messages_per_session": 3},
            "profile": {"variability": "exponential"},
            "run": {"duration_s": 4.0, "warmup_s": 1.0, "replications": 3},
        }
    )
    sequential = simulate(scenario, fidelity=fidelity, key_dir=key_dir)
    parallel = simulate(scenario, fidelity=fidelity, key_dir=key_dir, workers=2)
    same(sequential, parallel)
    assert sequential.summary["replications"] == 3
    assert {m["replication"] for m in parallel.messages} == {0, 1, 2}


def test_a_confidence_target_stops_at_the_same_replication_in_parallel(key_dir):
    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 20.0, "messages_per_session": 5},
            "profile": {"variability": "exponential"},
            "run": {
                "duration_s": 5.0,
                "warmup_s": 1.0,
                "target_ci95_ms": 0.05,
                "max_replications": 12,
            },
        }
    )
    sequential = simulate(scenario, key_dir=key_dir)
    parallel = simulate(scenario, key_dir=key_dir, workers=3)
    same(sequential, parallel)
    assert 3 <= sequential.summary["replications"] < 12


def test_progress_ticks_once_a_replication_in_parallel(key_dir):
    scenario = load_scenario(
        {
            "strategies": ["x509"],
            "workload": {"rate": 5.0},
            "run": {"duration_s": 3.0, "warmup_s": 1.0, "replications": 3},
        }
    )
    ticks = []
    simulate(scenario, key_dir=key_dir, workers=2, progress=ticks.append)
    assert [t.replication for t in ticks] == [1, 2, 3]
    assert all(t.sim_time_s == t.end_time_s == 3.0 for t in ticks)


def test_strategies_compared_side_by_side_also_run_side_by_side(key_dir):
    scenario = load_scenario(
        {
            "strategies": ["sct", "x509", "bearer"],
            "workload": {"rate": 8.0, "messages_per_session": 3},
            "run": {"duration_s": 4.0, "warmup_s": 1.0},  # one replication each
        }
    )
    sequential = simulate(scenario, fidelity="full", key_dir=key_dir)
    same(sequential, simulate(scenario, fidelity="full", key_dir=key_dir, workers=2))
    assert list(sequential.summary["strategies"]) == ["sct", "x509", "bearer"]


def test_an_error_that_cannot_travel_back_from_a_worker_comes_back_as_its_text(monkeypatch):
    from sim.engine import parallel

    class Odd(Exception):
        def __init__(self, a, b):  # pickle cannot rebuild it from its args
            super().__init__(f"{a}/{b}")

    def fail(job):
        raise Odd(1, 2)

    monkeypatch.setattr(parallel, "_run_here", fail)
    with pytest.raises(RuntimeError, match="Odd: 1/2"):
        parallel.run_job(None)


def test_workers_inherit_the_strategies_prepared_once_before_the_fork(
    monkeypatch, tmp_path, key_dir
):
    """Replay scripts are recorded from real executions: once per configuration in the
    parent, not again in every worker."""
    import multiprocessing
    import os

    from sim.engine import parallel

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip(
            "this platform starts workers without fork, so each worker prepares its own "
            "strategies by design: there is nothing inherited to check"
        )
    log = tmp_path / "prepared-by"
    prepare = parallel.prepare

    def logged(*args, **kwargs):
        with log.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return prepare(*args, **kwargs)

    monkeypatch.setattr(parallel, "prepare", logged)
    monkeypatch.setattr(parallel, "_PREPARED", {})
    scenario = load_scenario(
        {
            "strategies": ["sct", "x509"],
            "workload": {"rate": 8.0, "messages_per_session": 3},
            "run": {"duration_s": 2.0, "warmup_s": 0.5, "replications": 2},
        }
    )
    result = simulate(scenario, fidelity="replay", key_dir=key_dir, workers=2)
    assert result.summary["replications"] == 2
    assert log.read_text().split() == [str(os.getpid())] * 2  # one per strategy, here
