"""replications.csv: the per-replication values (and one run's batch means) from which
summary.json's confidence intervals are computed, so that anyone can recompute them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests.report.conftest import SCENARIOS, checked

ARGS = ["--set", "run.duration_s=4", "--set", "run.warmup_s=1", "--workers", "1"]


def _interval(values: list[float]) -> float:
    """The 95 % Student t half-width of ``values``, from scratch."""
    n = len(values)
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def _rows(out: Path) -> list[dict]:
    with (out / "replications.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_intervals_recomputed_from_replications_csv_equal_the_summarys(tmp_path):
    out = tmp_path / "reps"
    checked("run", SCENARIOS / "sct.toml", *ARGS, "--replications", "3", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    rows = _rows(out)
    for name, entry in summary["strategies"].items():
        mine = [r for r in rows if r["strategy"] == name and r["batch"] == ""]
        assert [r["replication"] for r in mine] == ["0", "1", "2"]
        for metric in ("mean", "p50", "p99"):
            values = [float(r[f"latency_ms.{metric}"]) for r in mine]
            assert entry["latency_ms"]["ci95"][metric] == pytest.approx(_interval(values))
            assert entry["latency_ms"][metric] == pytest.approx(np.mean(values))
        rates = [float(r["throughput_per_s"]) for r in mine]
        assert entry["throughput_per_s_ci95"] == pytest.approx(_interval(rates))
        # counts are totals over the replications
        assert entry["completed"] == sum(int(r["completed"]) for r in mine)
        assert entry["ci_method"] == "replications (3)"


def test_one_runs_batch_means_are_in_replications_csv_and_give_its_interval(tmp_path):
    out = tmp_path / "one"
    checked("run", SCENARIOS / "sct.toml", *ARGS, "--set", "run.batches=10", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    rows = _rows(out)
    for name, entry in summary["strategies"].items():
        batches = [r for r in rows if r["strategy"] == name and r["batch"] != ""]
        assert [int(r["batch"]) for r in batches] == list(range(10))
        means = [float(r["latency_ms.mean"]) for r in batches]
        rates = [float(r["throughput_per_s"]) for r in batches]
        assert entry["latency_ms"]["ci95"]["mean"] == pytest.approx(_interval(means))
        assert entry["throughput_per_s_ci95"] == pytest.approx(_interval(rates))
        assert entry["ci_method"] == "batch means (10 batches)"
        assert np.mean(rates) == pytest.approx(entry["throughput_per_s"])
