"""Summaries of replications: their combination (means, totals, 95 % confidence
half-widths) and what each replication adds to the result."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim.engine.chain import MessageRecord
from sim.engine.stats import MessageStats
from sim.engine.summary import (
    Outcome,
    SimulationResult,
    batch_intervals,
    combine,
    half_width,
    t95,
)


def _summary(mean: float, throughput: float, completed: int, faults: dict) -> dict:
    latency = {"mean": mean, "p50": mean, "p95": 2 * mean, "p99": 3 * mean, "max": 4 * mean}
    return {
        "latency_ms": latency,
        "throughput_per_s": throughput,
        "app_messages": completed + 1,
        "completed": completed,
        "failed": 1,
        "sts_requests": 0,
        "faults": faults,
    }


# Two-sided 95 % quantiles of Student's t, as printed in the standard tables.
PUBLISHED_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160,
    14: 2.145, 15: 2.131, 20: 2.086, 29: 2.045, 30: 2.042, 31: 2.040, 40: 2.021, 60: 2.000,
    120: 1.980, 200: 1.972,
}  # fmt: skip


def test_the_t_quantile_is_exact_for_every_degree_of_freedom():
    for n, published in PUBLISHED_T95.items():
        assert t95(n) == pytest.approx(published, abs=5e-4)
    quantiles = [t95(n) for n in range(1, 201)]
    assert all(a > b > 1.96 for a, b in itertools.pairwise(quantiles))


def test_a_half_width_is_the_student_t_interval_of_the_metric():
    reps = [{"latency_ms": {"p99": v}} for v in (10.0, 12.0, 14.0)]
    expected = 4.303 * np.std([10.0, 12.0, 14.0], ddof=1) / math.sqrt(3)
    assert half_width(reps, "latency_ms.p99") == pytest.approx(expected, rel=1e-4)


def test_one_replication_is_its_own_summary():
    only = _summary(5.0, 10.0, 40, {})
    assert combine([only]) is only


def test_replications_combine_into_means_totals_and_half_widths():
    reps = [
        _summary(10.0, 100.0, 40, {"wssim:Timeout": 1}),
        _summary(14.0, 120.0, 50, {}),
    ]
    combined = combine(reps)
    assert combined["latency_ms"]["mean"] == 12.0 and combined["throughput_per_s"] == 110.0
    assert combined["faults"] == {"wssim:Timeout": 1}  # a total; a key one lacks counts as 0
    assert combined["faults_per_replication"] == {"wssim:Timeout": 0.5}
    # the counts are totals over the replications
    assert combined["completed"] == 90 and combined["app_messages"] == 92
    assert combined["failed"] == 2
    assert combined["latency_ms"]["ci95"]["mean"] == pytest.approx(
        12.706 * np.std([10, 14], ddof=1) / math.sqrt(2), rel=1e-4
    )
    assert set(combined["latency_ms"]["ci95"]) == {"mean", "p50", "p95", "p99", "max"}
    assert combined["throughput_per_s_ci95"] == pytest.approx(
        12.706 * np.std([100, 120], ddof=1) / math.sqrt(2), rel=1e-4
    )


def test_a_result_takes_each_replications_rows_and_each_warning_once():
    result = SimulationResult({"warnings": ["sct: old"]})
    for index in range(2):
        part = SimulationResult({})
        part.nodes.append({"replication": index})
        part.messages.append({"replication": index, "strategy": "sct"})
        result.add(Outcome({}, part, ["sct: old", "sct: saturated"]))
    assert result.summary["warnings"] == ["sct: old", "sct: saturated"]
    assert [row["replication"] for row in result.nodes] == [0, 1]
    assert len(result.messages) == 2


def _counted(failed: int, timeouts: int, accepted: int, in_flight: int) -> dict:
    summary = _summary(10.0, 100.0, 40, {"wssim:Timeout": timeouts})
    summary.update(
        failed=failed,
        in_flight_at_end=in_flight,
        completed_in_window=38,
        attacks={
            "replay": {"attempts": 4, "accepted": accepted, "refused": {"replay": 4 - accepted}}
        },
        roles={
            "sts": {"nodes": 2, "cores": 4, "utilization": 0.5, "requests": 100, "hsm_units": 2}
        },
        capacity={
            "bottleneck": "sts.hsm",
            "max_messages_per_s": 500.0,
            "demand_ms": {"sts": {"cores": 1.0, "hsm": 4.0}},
        },
    )
    summary["latency_ms"].update(count=40, unstable=False)
    return summary


def test_every_count_is_a_total_over_replications_with_per_replication_means_named_so():
    """Two replications: failed, faults, attacks, jobs, messages in flight all summed; the
    means per replication of faults and attacks under their own names."""
    combined = combine([_counted(3, 2, 1, 5), _counted(2, 3, 0, 7)])
    assert combined["failed"] == 5
    assert combined["faults"] == {"wssim:Timeout": 5}
    assert combined["faults_per_replication"] == {"wssim:Timeout": 2.5}
    assert combined["attacks"]["replay"] == {"attempts": 8, "accepted": 1, "refused": {"replay": 7}}
    assert combined["attacks_per_replication"]["replay"]["attempts"] == 4.0
    assert combined["in_flight_at_end"] == 12 and combined["completed_in_window"] == 76
    assert combined["latency_ms"]["count"] == 80
    assert combined["app_messages"] == 82 and combined["completed"] == 80
    # the farm's size and its utilization are not counts: the same, and a mean
    assert combined["roles"]["sts"]["requests"] == 200
    assert combined["roles"]["sts"]["cores"] == 4 and combined["roles"]["sts"]["utilization"] == 0.5
    assert combined["capacity"] == {
        "bottleneck": "sts.hsm",
        "max_messages_per_s": pytest.approx(500.0),
        "demand_ms": {"sts": {"cores": 1.0, "hsm": 4.0}},
    }
    assert combined["latency_ms"]["unstable"] is False


def test_an_unstable_replication_marks_the_combined_latencies():
    unstable = _counted(1, 0, 0, 9)
    unstable["latency_ms"]["unstable"] = True
    assert combine([_counted(1, 0, 0, 0), unstable])["latency_ms"]["unstable"] is True


def _mm1_latencies(rng: np.random.Generator, n: int, arrival: float, service: float):
    """Arrival and departure times of ``n`` customers of an M/M/1 queue (Lindley)."""
    gaps = rng.exponential(1 / arrival, n)
    works = rng.exponential(1 / service, n)
    arrivals = np.cumsum(gaps)
    ends = np.empty(n)
    free = 0.0
    for i in range(n):
        free = max(free, arrivals[i]) + works[i]
        ends[i] = free
    return arrivals, ends


def test_batch_means_of_an_m_m_1_run_cover_its_known_mean_sojourn():
    """M/M/1 at 50 % load, mean sojourn 1 / (mu - lambda) = 200 ms: the batch-means interval
    of one long run (20 batches) covers it in about 95 % of independent runs."""
    arrival, service = 5.0, 10.0
    expected_ms = 1000 / (service - arrival)
    covered = 0
    runs = 40
    for seed in range(runs):
        arrivals, ends = _mm1_latencies(np.random.default_rng(seed), 12_000, arrival, service)
        stats = MessageStats(warmup=100.0, end=2300.0, batches=20)
        for i in range(len(arrivals)):
            record = MessageRecord(session=i, seq=0, start=float(arrivals[i]))
            stats.start(record)
            record.end, record.ok = float(ends[i]), True
            stats.finish(record)
        summary = stats.summary(measured=2200.0)
        width = batch_intervals(summary["batch_means"])["latency_ms.mean"]
        mean = summary["latency_ms"]["mean"]
        covered += abs(mean - expected_ms) <= width
        rate_width = batch_intervals(summary["batch_means"])["throughput_per_s"]
        assert abs(summary["throughput_per_s"] - arrival) <= 3 * rate_width
    assert covered >= 0.85 * runs


def test_an_automatic_warmup_drops_the_transient_of_an_outage_at_the_start(key_dir):
    """The client-provider link is down for the first 3 s: messages then wait for their
    retransmissions (2 s timeouts) and finish seconds late. MSER-5 starts the statistics
    after that transient; a fixed warm-up of 0 keeps it."""
    from sim.engine import load_scenario, simulate

    def run(method: str) -> dict:
        data = {
            "strategies": ["bearer-per-message"],
            "workload": {"rate": 50.0},
            "run": {"duration_s": 30.0, "warmup_s": 0.0, "warmup": method},
            "profile": {"variability": "exponential"},
            "faults": [
                {"kind": "link_outage", "link": "client-provider", "at_s": 0.0, "duration_s": 3.0}
            ],
        }
        result = simulate(load_scenario(data), key_dir=key_dir)
        return result.summary["strategies"]["bearer-per-message"]

    fixed, automatic = run("fixed"), run("mser5")
    assert "warmup" not in fixed and fixed["latency_ms"]["p99"] > 2000
    truncation = automatic["warmup"]["truncation_s"]
    assert automatic["warmup"]["method"] == "mser5"
    assert 3.0 < truncation < 8.0
    assert automatic["latency_ms"]["p99"] < 50
    # every statistic starts there: the messages started after it, at 50 a second
    assert automatic["app_messages"] == pytest.approx(50 * (30 - truncation), rel=0.1)
    assert automatic["throughput_per_s"] == pytest.approx(50, rel=0.1)


def test_a_replication_without_measured_demand_combines_with_one_that_has_it():
    empty = _counted(1, 0, 0, 0)
    empty["capacity"] = {"bottleneck": None, "max_messages_per_s": None, "demand_ms": {}}
    combined = combine([empty, _counted(1, 0, 0, 0)])
    # no measurement is not a demand of zero: the one measured stands
    assert combined["capacity"]["demand_ms"] == {"sts": {"cores": 1.0, "hsm": 4.0}}
    assert combined["capacity"]["max_messages_per_s"] == pytest.approx(500.0)
