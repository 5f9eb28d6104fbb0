"""``--plot-format``: the matplotlib plots as PNG, SVG or PDF, the vector ones reproducible."""

from __future__ import annotations

import pytest

from sim.report.plots import plan_plot, sweep_plots, write_plots
from tests.report.test_outputs import fake_result

MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_run_plots_are_written_in_the_format_asked_for(tmp_path, fmt):
    result = fake_result()
    written = write_plots(
        tmp_path, result.summary, result.messages, timeseries=result.timeseries, fmt=fmt
    )
    assert sorted(p.name for p in written) == sorted(
        f"{name}.{fmt}"
        for name in (
            "bytes_per_message",
            "crypto_ops",
            "latency_cdf",
            "load_over_time",
            "utilization",
        )
    )
    for path in written:
        assert path.read_bytes().startswith(MAGIC[fmt])


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_vector_plots_of_the_same_results_are_the_same_bytes(tmp_path, fmt):
    rows = [
        {"workload.rate": rate, "strategy": "sct", "throughput_per_s": rate, "p99_ms": 5.0 + rate}
        for rate in (10, 20)
    ]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = sweep_plots(tmp_path / "a", rows, ["workload.rate"], fmt=fmt)
    second = sweep_plots(tmp_path / "b", rows, ["workload.rate"], fmt=fmt)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    for path in first:  # no date that would make a later run's file differ
        assert b"CreationDate" not in path.read_bytes() and b"<dc:date>" not in path.read_bytes()
    plan = {"vary": "n", "target": "p99_ms<=20", "answer": 2, "runs": 2, "evidence": [
        {"n": n, "strategy": "sct", "p99_ms": 40.0 / n} for n in (1, 2)
    ]}  # fmt: skip
    plan_plot(tmp_path / f"plan.{fmt}", plan, "p99_ms")
    assert (tmp_path / f"plan.{fmt}").read_bytes().startswith(MAGIC[fmt])


def test_an_unknown_plot_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="plot format"):
        write_plots(tmp_path, fake_result().summary, [], fmt="gif")
