"""Capacity by the utilization law: the service demand of an application message on every
resource, measured per session, the bound c / D, the bottleneck; and throughput that is
goodput, so that an overloaded farm reports what it carries, not what it is offered."""

from __future__ import annotations

import pytest

from sim.engine import apply_overrides, load_scenario, simulate
from sim.engine.capacity import (
    METERED_SESSIONS,
    SessionSample,
    bounds,
    capacity,
    demand_ms,
    servers,
)
from sim.engine.scenario import read_scenario_file

from .test_soak import SOAK

STRATEGY = "bearer-per-message"


def sts_farm(*sets: str):
    """scenarios/sts-farm.toml (one STS node signing on one HSM at 4 ms: 250 tokens/s,
    offered 600 sessions/s of one message each), shortened."""
    data = read_scenario_file(SOAK.parent / "sts-farm.toml")
    base = ["run.duration_s=12", "run.warmup_s=2", "topology.client.nodes=50"]
    if sets and sets[0] == "short":
        base, sets = ["run.duration_s=10", *base[1:]], sets[1:]
    return load_scenario(apply_overrides(data, [*base, *sets]))


def test_a_saturated_farm_carries_its_capacity_and_reports_the_rest(key_dir):
    entry = simulate(sts_farm(), key_dir=key_dir).summary["strategies"][STRATEGY]
    # offered 600 messages a second; one HSM at 4 ms a signature carries 250
    assert entry["offered_per_s"] == pytest.approx(600, rel=0.05)
    assert entry["throughput_per_s"] == pytest.approx(250, rel=0.05)
    assert entry["throughput_per_s"] <= 250 * 1.001
    assert entry["capacity"]["bottleneck"] == "sts.hsm"
    assert entry["capacity"]["max_messages_per_s"] == pytest.approx(250, rel=1e-6)
    assert entry["capacity"]["demand_ms"]["sts"]["hsm"] == pytest.approx(4.0, rel=1e-6)
    # the backlog: saturated from the start, the farm leaves what was offered and not
    # carried in flight at the window's end, since t = 0
    backlog = (entry["offered_per_s"] - entry["throughput_per_s"]) * 12.0
    assert entry["in_flight_at_end"] == pytest.approx(backlog, rel=0.1)
    latency = entry["latency_ms"]
    assert latency["unstable"] is True
    assert latency["count"] == entry["completed"]


def _knee_point(rate: float, key_dir) -> dict:
    """The STS of sts-farm with two HSM units (M/D/2 at 4 ms: 500 tokens/s) at ``rate``."""
    scenario = sts_farm("short", "topology.sts.hsm_units=2", f"workload.rate={rate}")
    return simulate(scenario, key_dir=key_dir).summary["strategies"][STRATEGY]


def test_the_capacity_bound_is_the_knee_of_an_m_d_c_farm(key_dir):
    """Deterministic service of D = 4 ms on c = 2 units: throughput follows the offered load
    up to c / D = 500 messages a second, then stays there; the bound is c / D at every load,
    the demands measured in overload equal those measured at light load."""
    knee = 2 / 0.004
    points = {rate: _knee_point(rate, key_dir) for rate in (250.0, 450.0, 800.0)}
    light = points[250.0]["capacity"]["demand_ms"]
    for rate, entry in points.items():
        assert entry["capacity"]["bottleneck"] == "sts.hsm", rate
        assert entry["capacity"]["max_messages_per_s"] == pytest.approx(knee, rel=1e-6)
        assert entry["throughput_per_s"] == pytest.approx(min(rate, knee), rel=0.05), rate
        assert entry["latency_ms"]["unstable"] is (rate > knee), rate
        for role, resources in entry["capacity"]["demand_ms"].items():
            for resource, ms in resources.items():
                assert ms == pytest.approx(light[role][resource], rel=0.02), (rate, role, resource)


def test_the_bound_of_a_resource_is_its_servers_over_its_demand():
    demand = {"sts": {"cores": 0.5, "hsm": 4.0}, "provider": {"cores": 1.0}, "links": {"a-b": 0.1}}
    count = {("sts", "cores"): 2, ("sts", "hsm"): 3, ("provider", "cores"): 8}
    assert bounds(demand, count) == pytest.approx(
        {"sts.cores": 4000.0, "sts.hsm": 750.0, "provider.cores": 8000.0, "links.a-b": 10_000.0}
    )
    found = capacity(demand, count)
    assert set(found) == {"bottleneck", "max_messages_per_s", "demand_ms"}
    assert found["bottleneck"] == "sts.hsm" and found["max_messages_per_s"] == pytest.approx(750)
    assert capacity({}, count) == {"bottleneck": None, "max_messages_per_s": None, "demand_ms": {}}


def test_demand_is_the_metered_total_per_application_message():
    metered = {("sts", "hsm"): 0.4, ("links", "client-sts"): 0.01}
    table = demand_ms(metered, 100)
    assert table == {
        "links": {"client-sts": pytest.approx(0.1)},
        "sts": {"hsm": pytest.approx(4.0)},
    }
    assert demand_ms(metered, 0) == {}


def test_servers_follow_the_topology():
    scenario = sts_farm("topology.sts.nodes=3", "topology.sts.hsm_units=2")
    assert servers(scenario, ["sts", "provider", "links"]) == {
        ("sts", "cores"): 6,
        ("sts", "hsm"): 6,
        ("provider", "cores"): 8,
    }


def test_a_long_run_meters_a_sample_of_sessions_spread_over_the_window():
    long = SessionSample(sts_farm("run.duration_s=1002"))  # 600 x 1000 s expected sessions
    keys = range(600_000)
    metered = [key for key in keys if long(key, 500.0)]
    assert len(metered) == pytest.approx(METERED_SESSIONS, rel=0.1)
    # spread: as many in each tenth of the keys (of the window)
    tenths = [sum(1 for key in metered if key * 10 // len(keys) == k) for k in range(10)]
    assert min(tenths) > 0.7 * METERED_SESSIONS / 10
    # and over the nodes a session's key picks (key modulo the farm's size)
    assert {key % 4 for key in metered} == {0, 1, 2, 3}
    assert not long(0, 1.0)  # the warm-up is never metered
    short = SessionSample(sts_farm())  # 6,000 expected: a third of them
    assert sum(short(key, 5.0) for key in range(6000)) == pytest.approx(2000, rel=0.1)
    assert all(SessionSample(sts_farm("workload.rate=100"))(key, 5.0) for key in range(1000))
