"""The testbed's arithmetic on given figures: measured metrics from a load generator's
result, the saturation search's stopping rule, relative errors, the flat metric names."""

from __future__ import annotations

import math

import pytest

from sim.testbed import validation
from sim.testbed.measure import Load, exploded, measured_metrics, saturation


def _result() -> dict:
    rows = []
    for index in range(10):
        start = 1.0 + index * 0.4  # 1.0 ... 4.6: the window [1, 5) holds all ten
        rows.append({"start_s": start, "latency_ms": 10.0 + index, "ok": index != 9, "fault": "f"})
    rows.append({"start_s": 0.2, "latency_ms": 500.0, "ok": True, "fault": ""})  # warm-up
    return {
        "rows": rows,
        "opening": {
            "t": 1.0,
            "servers": {"provider-0": {"cpu_s": 2.0, "wait_s": 1.0}, "sts-0": {"cpu_s": 1.0}},
            "loadgen_cpu_s": 3.0,
            "loadgen_wait_s": 0.5,
        },
        "closing": {
            "t": 5.0,
            "servers": {"provider-0": {"cpu_s": 2.09, "wait_s": 1.045}, "sts-0": {"cpu_s": 1.018}},
            "loadgen_cpu_s": 3.18,
            "loadgen_wait_s": 0.59,
        },
        "overloaded": False,
    }


def test_measured_metrics_count_the_messages_started_in_the_window():
    metrics = measured_metrics(
        _result(), {"provider": ["provider-0"], "sts": ["sts-0"]}, Load(rate=1.0)
    )
    assert metrics["app_messages"] == 10
    assert metrics["completed"] == 9
    assert metrics["failed"] == 1
    assert metrics["faults"] == {"f": 1}
    assert metrics["throughput_per_s"] == pytest.approx(9 / 4)
    # CPU over the window, per completed message
    assert metrics["cpu_ms_per_message"]["provider"] == pytest.approx(90 / 9)
    assert metrics["cpu_ms_per_message"]["sts"] == pytest.approx(18 / 9)
    assert metrics["utilization"]["provider"] == pytest.approx(0.09 / 4)
    assert metrics["loadgen"]["cpu_ms_per_message"] == pytest.approx(180 / 9)
    # the time ready to run but without a core, per message
    assert metrics["run_queue_ms_per_message"]["provider"] == pytest.approx(45 / 9)
    assert metrics["loadgen"]["run_queue_ms_per_message"] == pytest.approx(90 / 9)
    assert metrics["p50_ms"] == pytest.approx(14.0)  # the completed ones: 10 ... 18


def _step(throughput: float, p99: float = 10.0, failed: int = 0) -> dict:
    return {"throughput_per_s": throughput, "p99_ms": p99, "failed": failed, "app_messages": 100}


def test_saturation_stops_when_the_throughput_stops_growing_two_steps_in_a_row():
    figures = {1: _step(10), 2: _step(19), 4: _step(30), 8: _step(30.5), 16: _step(31)}
    figures[32] = _step(99)
    best, steps = saturation(lambda users: figures[users], (1, 2, 4, 8, 16, 32))
    assert best == 31
    assert [s["users"] for s in steps] == [1, 2, 4, 8, 16]


def test_saturation_looks_past_one_step_that_dipped():
    figures = {1: _step(161), 2: _step(111), 4: _step(200), 8: _step(205), 16: _step(204)}
    best, steps = saturation(lambda users: figures[users], (1, 2, 4, 8, 16))
    assert best == 205
    assert [s["users"] for s in steps] == [1, 2, 4, 8, 16]


def test_saturation_leaves_out_a_step_whose_p99_exploded_or_that_failed():
    figures = {1: _step(10), 2: _step(19), 4: _step(40, p99=101.0)}
    assert saturation(lambda users: figures[users], (1, 2, 4))[0] == 19
    figures = {1: _step(10), 2: _step(19), 4: _step(40, failed=2)}
    assert saturation(lambda users: figures[users], (1, 2, 4))[0] == 19
    assert exploded(_step(5, p99=1000), _step(5))
    assert not exploded(_step(5, p99=99), _step(5))


def test_relative_error_is_predicted_minus_measured_over_measured():
    errors = validation.relative_errors({"a": 12.0, "b": 1.0, "c": 3.0}, {"a": 10.0, "b": 0.0})
    assert errors["a"] == pytest.approx(0.2)
    assert errors["b"] is None
    assert "c" not in errors


def test_flatten_names_every_compared_metric():
    metrics = {
        "cpu_ms_per_message": {"provider": 3.0, "sts": 1.0},
        "utilization": {"provider": 0.3, "sts": 0.1},
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "throughput_per_s": 50.0,
    }
    flat = validation.flatten(metrics, 120.0)
    assert flat == {
        "cpu_ms_per_message.provider": 3.0,
        "cpu_ms_per_message.sts": 1.0,
        "utilization.provider": 0.3,
        "utilization.sts": 0.1,
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "throughput_per_s": 50.0,
        "saturation_per_s": 120.0,
        "server_capacity_per_s": 250.0,
    }
    assert "saturation_per_s" not in validation.flatten(metrics, None)


def test_the_plot_draws_one_point_per_strategy_and_metric(tmp_path):
    entry = validation.entry({"p50_ms": 11.0, "x": 2.0}, {"p50_ms": 10.0, "x": 2.5})
    validation.plot({"a": entry, "b": entry}, tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000
    assert math.isclose(entry["relative_error"]["x"], -0.2)
