"""An offered load beyond the capacity is reported, not silently averaged: saturated farms
whose waiting line keeps growing, saturated links, and sessions piling up (whose arrivals
then stop, so that memory stays bounded)."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate


def scenario(**changes):
    data = {
        "strategies": ["bearer-per-message"],
        "workload": {"rate": 50.0, "messages_per_session": 1},
        "topology": {"sts": {"nodes": 1, "cores": 2}},
        "run": {"duration_s": 12.0, "warmup_s": 2.0},
        "profile": {},
        "links": {},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        data[section][name.replace("_", "-") if section == "links" else name] = value
    return load_scenario(data)


def test_a_run_within_capacity_has_no_warning():
    assert simulate(scenario()).summary["warnings"] == []


def test_a_saturated_hsm_with_a_growing_line_is_reported():
    s = scenario(topology__sts={"nodes": 1, "cores": 2, "hsm_units": 1, "hsm_op_ms": 25.0})
    warnings = simulate(s).summary["warnings"]
    assert len(warnings) == 1
    assert "the sts farm's HSMs are saturated (100% busy)" in warnings[0]
    assert "waiting line grew" in warnings[0]


def test_saturated_cores_are_reported_and_a_saturated_link_too():
    cores = scenario(
        topology__sts={"nodes": 1, "cores": 1}, workload__rate=800.0, profile__scale=3.0
    )
    assert any("sts farm's cores are saturated" in w for w in simulate(cores).summary["warnings"])
    link = scenario(
        workload__payload_bytes=200_000, links__client_provider={"bandwidth_mbps": 20.0}
    )
    warnings = simulate(link).summary["warnings"]
    assert any("client-provider link is saturated" in w for w in warnings)


def test_sessions_piling_up_stop_the_arrivals_and_are_reported():
    s = scenario(
        topology__sts={"nodes": 1, "cores": 1},
        workload__rate=2000.0,
        run__max_in_flight_sessions=300,
    )
    result = simulate(s)
    warnings = result.summary["warnings"]
    assert any("300 sessions in flight" in w for w in warnings)
    entry = result.summary["strategies"]["bearer-per-message"]
    assert entry["app_messages"] < 2000 * 10 / 4  # arrivals stopped early
    assert entry["completed"] + entry["failed"] == entry["app_messages"]
    assert result.partial is False


def test_an_overloaded_run_marks_its_latencies_unstable_and_reports_its_backlog():
    """One HSM at 25 ms a signature carries 40 tokens a second; 50 are offered."""
    s = scenario(topology__sts={"nodes": 1, "cores": 2, "hsm_units": 1, "hsm_op_ms": 25.0})
    entry = simulate(s).summary["strategies"]["bearer-per-message"]
    assert entry["latency_ms"]["unstable"] is True
    assert entry["latency_ms"]["count"] == entry["completed"]
    assert entry["throughput_per_s"] <= 40.0 * 1.001 < entry["offered_per_s"]
    assert entry["in_flight_at_end"] > 0
    assert entry["capacity"]["bottleneck"] == "sts.hsm"
    within = simulate(scenario()).summary["strategies"]["bearer-per-message"]
    assert within["latency_ms"]["unstable"] is False
    assert within["throughput_per_s"] == pytest.approx(within["offered_per_s"], rel=0.05)
