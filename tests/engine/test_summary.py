"""Summaries of replications: their combination (means, totals, 95 % confidence
half-widths) and what each replication adds to the result."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim.engine.summary import Outcome, SimulationResult, combine, half_width, t95


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
    assert combined["faults"] == {"wssim:Timeout": 0.5}  # a key one lacks counts as 0
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
