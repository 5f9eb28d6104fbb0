"""Streaming statistics: exact while small, bounded and accurate beyond."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import stats as stats_module
from sim.engine.chain import MessageRecord
from sim.engine.stats import MessageStats


def _feed(stats: MessageStats, latencies_ms) -> None:
    for i, latency in enumerate(latencies_ms):
        record = MessageRecord(session=i, seq=0, start=10.0)
        stats.start(record)
        record.end = record.start + latency / 1000
        record.ok = True
        stats.finish(record)


def test_quantiles_are_exact_while_the_run_is_small():
    latencies = np.random.default_rng(1).lognormal(3.0, 1.0, 5000)
    stats = MessageStats(warmup=5.0, end=100.0)
    _feed(stats, latencies)
    for q in (50, 95, 99):
        assert stats.quantile(q) == pytest.approx(np.percentile(latencies, q), rel=1e-12)


def test_beyond_the_exact_limit_quantiles_stay_within_a_tenth_of_a_percent(monkeypatch):
    monkeypatch.setattr(stats_module, "EXACT_LATENCIES", 1000)
    latencies = np.random.default_rng(2).lognormal(3.0, 1.0, 50_000)
    stats = MessageStats(warmup=5.0, end=100.0)
    _feed(stats, latencies)
    assert len(stats.latencies) == 1000  # bounded memory
    for q in (50, 95, 99):
        assert stats.quantile(q) == pytest.approx(np.percentile(latencies, q), rel=2e-3)
    summary = stats.summary(measured=95.0)
    assert summary["latency_ms"]["mean"] == pytest.approx(latencies.mean())
    assert summary["latency_ms"]["max"] == pytest.approx(latencies.max())


def test_unfinished_messages_are_counted_as_failed():
    stats = MessageStats(warmup=0.0, end=10.0)
    record = MessageRecord(session=0, seq=0, start=1.0)
    stats.start(record)  # never finishes
    summary = stats.summary(measured=10.0)
    assert summary["app_messages"] == 1 and summary["failed"] == 1
    assert summary["faults"] == {"wssim:Unfinished": 1}
