"""Engine speed, as ratios against bare SimPy measured in the same run.

Run: ``python -m pytest benchmarks/bench_engine.py --benchmark-only``. Figures reported per
run: replay fidelity application messages per wall-clock second for ``sct`` on one core
(target 30,000) against the customers per second of a bare SimPy M/M/c model (target at
least a quarter), and full fidelity application round trips per second for ``sct`` (target
2,000, with the machine's cores running replications; one process is reported too).
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.engine import load_scenario, simulate

CUSTOMERS = 20_000


def bare_mmc() -> int:
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=4)
    rng = np.random.default_rng(1)

    def customer():
        with servers.request() as request:
            yield request
            yield env.timeout(rng.exponential(1.0))

    def arrivals():
        for _ in range(CUSTOMERS):
            yield env.timeout(rng.exponential(1 / 3.0))
            env.process(customer())

    env.process(arrivals())
    env.run()
    return CUSTOMERS


def sct_scenario(duration: float):
    """SCT sessions of 20 messages on a sticky provider farm, as deployed (and as
    ``scenarios/sct.toml`` has it): contexts live on the node that issued them. No warm-up,
    so that every simulated message is counted."""
    return load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 100.0, "messages_per_session": 20},
            "run": {"duration_s": duration, "warmup_s": 0.0},
            "topology": {"provider": {"nodes": 2, "cores": 8, "balancer": "sticky"}},
        }
    )


def _per_item(benchmark, items: int) -> None:
    for stat in ("min", "max", "mean", "median"):
        setattr(benchmark.stats.stats, stat, getattr(benchmark.stats.stats, stat) / items)


def _rate(benchmark, unit: str, target: int | None = None) -> None:
    """Report items per wall-clock second (from the per-item median), and the target."""
    benchmark.extra_info["rate"] = 1 / benchmark.stats.stats.median
    benchmark.extra_info["rate_unit"] = unit
    if target is not None:
        benchmark.extra_info["rate_target"] = target


@pytest.mark.benchmark(group="engine: time per simulated message")
def test_bare_simpy_mmc_customer(benchmark):
    benchmark.name = "bare SimPy M/M/c customer[baseline]"
    benchmark.pedantic(bare_mmc, rounds=3, iterations=1)
    _per_item(benchmark, CUSTOMERS)


@pytest.mark.benchmark(group="engine: time per simulated message")
def test_replay_sct_application_message(benchmark):
    scenario = sct_scenario(10.0)
    messages = simulate(scenario, fidelity="replay").summary["strategies"]["sct"]["app_messages"]
    benchmark.name = "replay sct app message"
    benchmark.extra_info["target_ratio"] = 0.25
    benchmark.pedantic(lambda: simulate(scenario, fidelity="replay"), rounds=3, iterations=1)
    _per_item(benchmark, messages)
    _rate(benchmark, "app messages/s", target=30_000)


@pytest.mark.benchmark(group="engine: full fidelity sct")
def test_full_sct_round_trip(benchmark):
    scenario = sct_scenario(2.0)
    messages = simulate(scenario, fidelity="full").summary["strategies"]["sct"]["app_messages"]
    benchmark.name = "full sct app round trip"
    benchmark.pedantic(lambda: simulate(scenario, fidelity="full"), rounds=2, iterations=1)
    _per_item(benchmark, messages)
    _rate(benchmark, "round trips/s")


@pytest.mark.benchmark(group="engine: full fidelity sct, both cores")
def test_full_sct_round_trip_two_workers(benchmark):
    """Two replications on two worker processes (``simulate(workers=2)``): what a run with
    replications gets from this machine's two cores."""
    scenario = sct_scenario(2.0)
    result = simulate(scenario, fidelity="full", replications=2, workers=2)
    messages = result.summary["strategies"]["sct"]["app_messages"]
    benchmark.name = "full sct app round trip, 2 replications on 2 workers"
    benchmark.pedantic(
        lambda: simulate(scenario, fidelity="full", replications=2, workers=2),
        rounds=2,
        iterations=1,
    )
    _per_item(benchmark, messages)
    _rate(benchmark, "round trips/s", target=2_000)


def farm_scenario(nodes: int, per_node: bool):
    """``bearer`` (an STS farm and a sticky provider farm of ``nodes`` each), 5 messages a
    session. ``per_node``: the same load per node (3 sessions/s a node) and the same number
    of sessions (24,000) whatever the farm, as the issue measured; otherwise the same load
    (60 sessions/s for 100 s) spread over the farm, which leaves the event queue as it is
    and shows what the farm's size itself costs."""
    rate = 3.0 * nodes if per_node else 60.0
    return load_scenario(
        {
            "strategies": ["bearer"],
            "workload": {"rate": rate, "messages_per_session": 5},
            "run": {"duration_s": 24_000 / rate if per_node else 100.0, "warmup_s": 0.0},
            "topology": {
                "sts": {"nodes": nodes, "cores": 4},
                "provider": {"nodes": nodes, "cores": 4, "balancer": "sticky"},
            },
        }
    )


@pytest.mark.benchmark(group="engine: farm size, the same load over the farm")
@pytest.mark.parametrize("nodes", [2, 1000])
def test_farm_size_same_load(benchmark, nodes):
    """From 2 to 1,000 nodes per role the simulated messages per wall second fall by at
    most 15 % (target ratio 0.85 against the farm of two)."""
    scenario = farm_scenario(nodes, per_node=False)
    messages = simulate(scenario, fidelity="replay").summary["strategies"]["bearer"]
    benchmark.name = f"bearer, {nodes} nodes a role" + ("[baseline]" if nodes == 2 else "")
    benchmark.extra_info["target_ratio"] = 0.85
    benchmark.pedantic(lambda: simulate(scenario, fidelity="replay"), rounds=2, iterations=1)
    _per_item(benchmark, messages["app_messages"])
    _rate(benchmark, "app messages/s")


@pytest.mark.benchmark(group="engine: farm size, the same load per node")
@pytest.mark.parametrize("nodes", [2, 1000])
def test_farm_size_same_load_per_node(benchmark, nodes):
    """The issue's measure (0.46 at 200 nodes a role before): 500 times the sessions run at
    once on the big farm, so SimPy's event queue is that much longer (O(log n) an event)."""
    scenario = farm_scenario(nodes, per_node=True)
    messages = simulate(scenario, fidelity="replay").summary["strategies"]["bearer"]
    benchmark.name = f"bearer, {nodes} nodes a role" + ("[baseline]" if nodes == 2 else "")
    benchmark.pedantic(lambda: simulate(scenario, fidelity="replay"), rounds=1, iterations=1)
    _per_item(benchmark, messages["app_messages"])
    _rate(benchmark, "app messages/s")


@pytest.mark.benchmark(group="engine: a million users")
def test_a_million_users_closed_workload(benchmark):
    """A closed workload of 1,000,000 users on 1,000,000 client machines (think time
    20,000 s: 50 sessions a second): the peak memory of the run, by tracemalloc and the
    process's peak RSS, goes into the report (``extra_info``)."""
    import gc
    import resource
    import tracemalloc

    scenario = load_scenario(
        {
            "strategies": ["sct"],
            "workload": {
                "users": 1_000_000,
                "think_time_s": 20_000.0,
                "first_session": "after_think",
                "messages_per_session": 5,
            },
            "topology": {"client": {"nodes": 1_000_000}},
            "run": {"duration_s": 20.0, "warmup_s": 2.0},
        }
    )
    gc.collect()
    tracemalloc.start()
    try:
        result = simulate(scenario, fidelity="replay")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    benchmark.name = "1,000,000 users, closed workload"
    benchmark.extra_info["app_messages"] = result.summary["strategies"]["sct"]["app_messages"]
    benchmark.extra_info["peak_traced_mib"] = round(peak / 2**20, 1)
    benchmark.extra_info["peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    benchmark.extra_info["figures"] = (
        f"{benchmark.extra_info['app_messages']:,} app messages, peak "
        f"{benchmark.extra_info['peak_traced_mib']} MiB traced, process peak RSS "
        f"{benchmark.extra_info['peak_rss_mib']} MiB"
    )
    benchmark.pedantic(lambda: simulate(scenario, fidelity="replay"), rounds=1, iterations=1)
