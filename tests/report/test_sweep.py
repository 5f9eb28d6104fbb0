"""Sweep grids and capacity planning (search logic on a known monotone model)."""

from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.sweep import grid, parse_param, parse_target, plan, summary_rows


def test_parse_param_splits_on_commas_outside_brackets_and_quotes():
    key, values = parse_param('strategies=["x509","sct"],["bearer"], "a,b"')
    assert key == "strategies"
    assert values == ['["x509","sct"]', '["bearer"]', '"a,b"']
    assert parse_param("workload.rate=10,20,40") == ("workload.rate", ["10", "20", "40"])


@pytest.mark.parametrize("text", ["workload.rate", "=1,2", "workload.rate=", "a=1,1"])
def test_parse_param_rejects_malformed_input(text):
    with pytest.raises(ScenarioError):
        parse_param(text)


def test_grid_is_the_product_of_the_values_in_order():
    points = grid([("a", ["1", "2"]), ("b", ["x", "y", "z"])])
    assert len(points) == 6
    assert points[0] == {"a": "1", "b": "x"} and points[-1] == {"a": "2", "b": "z"}


def test_parse_target():
    metric, compare, threshold, symbol = parse_target("p99_ms <= 200")
    assert (metric, threshold, symbol) == ("p99_ms", 200.0, "<=")
    assert compare(200.0, threshold) and not compare(200.1, threshold)
    assert parse_target("throughput_per_s>=5e2")[2] == 500.0


@pytest.mark.parametrize("text", ["p99<=200", "p99_ms=200", "p99_ms<=fast", ""])
def test_parse_target_names_the_flag_on_bad_input(text):
    with pytest.raises(ScenarioError) as info:
        parse_target(text)
    assert info.value.key == "--target"


def model(answer: int, calls: list[int]):
    """A monotone model: p99 falls as nodes grow and meets 200 ms from ``answer`` on."""

    def run_point(data, assignments, fidelity):
        nodes = int(assignments["topology.sts.nodes"])
        calls.append(nodes)
        p99 = 150.0 if nodes >= answer else 1000.0 / nodes + 250.0
        return [{"strategy": "sct", "p99_ms": p99, "completed": 10, "throughput_per_s": 5.0}]

    return run_point


@pytest.mark.parametrize("answer", [1, 2, 3, 5, 8, 11, 64, 100])
def test_plan_finds_the_smallest_passing_value_with_logarithmic_runs(answer):
    calls: list[int] = []
    result = plan({}, "p99_ms<=200", "topology.sts.nodes", high=256, run_point=model(answer, calls))
    assert result["answer"] == answer
    assert len(calls) == len(set(calls)) == result["runs"]  # no value run twice
    assert result["runs"] <= 2 * (answer.bit_length()) + 1
    tried = {row["topology.sts.nodes"]: row["meets"] for row in result["evidence"]}
    assert tried[answer] is True
    if answer > 1:
        assert tried[answer - 1] is False  # the evidence shows the value below fails
    assert "monotonic" in result["assumption"]


def test_plan_reports_no_answer_up_to_the_maximum():
    calls: list[int] = []
    result = plan({}, "p99_ms<=200", "topology.sts.nodes", high=20, run_point=model(50, calls))
    assert result["answer"] is None
    assert calls == [1, 2, 4, 8, 16, 20]
    assert "20" in result["note"]


def test_summary_rows_are_tidy_one_row_per_strategy():
    stats = {
        "app_messages": 10,
        "completed": 9,
        "failed": 1,
        "throughput_per_s": 3.0,
        "throughput_per_s_ci95": 0.5,
        "latency_ms": {"mean": 1, "p50": 1, "p95": 2, "p99": 3, "max": 4, "ci95": {"p99": 0.2}},
        "bytes_per_app_message": {"request": 1.0, "response": 2.0, "token_service": 3.0},
        "sts_requests": 2,
        "roles": {"sts": {"utilization": 0.5}},
    }
    summary = {"replications": 3, "strategies": {"sct": stats, "x509": stats}}
    rows = summary_rows(summary, {"workload.rate": "20", "run.fidelity": "full"})
    assert [r["strategy"] for r in rows] == ["sct", "x509"]
    assert rows[0]["workload.rate"] == 20 and rows[0]["run.fidelity"] == "full"
    assert rows[0]["p99_ms_ci95"] == 0.2 and rows[0]["utilization_sts"] == 0.5


def test_summary_rows_mark_the_strategies_a_warning_is_about():
    stats = {
        "app_messages": 10,
        "completed": 10,
        "failed": 0,
        "throughput_per_s": 3.0,
        "latency_ms": {"mean": 1, "p50": 1, "p95": 2, "p99": 3, "max": 4},
        "bytes_per_app_message": {"request": 1.0, "response": 2.0, "token_service": 3.0},
        "sts_requests": 2,
        "roles": {},
    }
    summary = {
        "replications": 1,
        "strategies": {"sct": stats, "x509": stats, "bearer": stats},
        "warnings": ["x509: the provider farm's cores are saturated ...", "sct+bearer: 9 sessions"],
    }
    rows = {r["strategy"]: r["overloaded"] for r in summary_rows(summary, {})}
    assert rows == {"sct": True, "x509": True, "bearer": True}
    summary["warnings"] = ["x509: the client-provider link is saturated"]
    rows = {r["strategy"]: r["overloaded"] for r in summary_rows(summary, {})}
    assert rows == {"sct": False, "x509": True, "bearer": False}


def test_plan_does_not_accept_an_overloaded_point():
    """A short overloaded run can show a low p99; its figures grow with the run's length."""
    calls: list[int] = []

    def run_point(data, assignments, fidelity):
        nodes = int(assignments["topology.sts.nodes"])
        calls.append(nodes)
        return [{"strategy": "sct", "p99_ms": 100.0, "completed": 10, "overloaded": nodes < 3}]

    result = plan({}, "p99_ms<=200", "topology.sts.nodes", high=16, run_point=run_point)
    assert result["answer"] == 3
    assert {r["topology.sts.nodes"]: r["meets"] for r in result["evidence"]}[2] is False
