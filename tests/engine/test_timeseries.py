"""The load over time (timeseries.csv): per time bin, each farm's and node's utilization
and waiting line, consistent with the window totals and showing a crash where it happens."""

from __future__ import annotations

import math

import pytest

from sim.engine import load_scenario, simulate
from sim.engine.resources import _spread


def test_intervals_spread_over_the_bins_they_cover():
    series = [0.0] * 10
    _spread(series, 0.5, 0.7, 1.0)  # inside one bin
    _spread(series, 0.9, 3.2, 1.0)  # across four
    _spread(series, 9.5, 12.0, 1.0)  # past the last bin: cut
    _spread(series, 11.0, 13.0, 1.0)  # after the run: ignored
    assert series == pytest.approx([0.3, 1.0, 1.0, 0.2, 0, 0, 0, 0, 0, 0.5])


def test_the_series_averages_to_the_window_utilization_and_waiting_line():
    scenario = load_scenario(
        {
            "strategies": ["x509"],
            "workload": {"rate": 60.0, "messages_per_session": 2},
            "topology": {"provider": {"nodes": 2, "cores": 1}},
            "profile": {"variability": "exponential", "scale": 8.0},  # a slow CPU: ~50 % busy
            "run": {"duration_s": 10.0, "warmup_s": 1.0},  # bins of 0.1 s: 1 s is a boundary
        }
    )
    result = simulate(scenario)
    farm = [r for r in result.timeseries if r["node"] == "provider-*"]
    assert len(farm) == 100
    measured = [r for r in farm if r["t_start_s"] >= 1.0 - 1e-9]
    summary = result.summary["strategies"]["x509"]["roles"]["provider"]
    mean = sum(r["utilization"] for r in measured) / len(measured)
    assert mean == pytest.approx(summary["utilization"], rel=1e-9)
    assert 0.2 < mean < 0.95
    waiting = sum(r["mean_queue_len"] for r in measured) / len(measured)
    expected = sum(n["mean_queue_len"] for n in result.nodes if n["role"] == "provider")
    assert waiting == pytest.approx(expected, rel=1e-9) and waiting > 0
    for node in ("provider-0", "provider-1"):
        rows = [r for r in result.timeseries if r["node"] == node]
        assert len(rows) == 100 and all(0 <= r["utilization"] <= 1 + 1e-9 for r in rows)


def test_a_crashed_sts_node_idles_while_its_peer_takes_the_load():
    scenario = load_scenario(
        {
            "strategies": ["bearer-per-message"],
            "workload": {"rate": 40.0, "messages_per_session": 2},
            "topology": {"sts": {"nodes": 2, "cores": 2}},
            "faults": [{"kind": "sts_crash", "node": "sts-1", "at_s": 4.0, "duration_s": 3.0}],
            "profile": {"scale": 10.0},
            "run": {"duration_s": 10.0, "warmup_s": 1.0},
        }
    )
    series = simulate(scenario).timeseries

    def mean(node: str, start: float, end: float) -> float:
        rows = [
            r["utilization"]
            for r in series
            if r["node"] == node and start <= r["t_start_s"] and r["t_end_s"] <= end
        ]
        return sum(rows) / len(rows)

    assert mean("sts-1", 4.2, 7.0) == 0.0  # down (in-flight work ends within 0.2 s)
    assert mean("sts-1", 1.0, 4.0) > 0.05
    assert mean("sts-0", 4.2, 7.0) > 1.5 * mean("sts-0", 1.0, 4.0)
    assert not any(math.isnan(r["utilization"]) for r in series)
