"""Streaming statistics: exact while small, bounded and accurate beyond."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import stats as stats_module
from sim.engine.chain import MessageRecord
from sim.engine.stats import MessageStats, mser5


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


def _message(start: float, end: float | None, ok: bool = True) -> MessageRecord:
    record = MessageRecord(session=0, seq=0, start=start)
    if end is not None:
        record.end, record.ok = end, ok
    return record


def test_throughput_counts_the_messages_completed_inside_the_window():
    stats = MessageStats(warmup=10.0, end=20.0)
    messages = [
        _message(9.0, 10.5),  # started in the warm-up, completed inside: counts
        _message(12.0, 13.0),  # inside: counts
        _message(14.0, 15.0, ok=False),  # failed: not carried
        _message(18.0, 25.0),  # completed during the drain: in flight at the end
        _message(19.0, None),  # never completed: in flight at the end
        _message(8.0, 9.5),  # before the window: nothing
    ]
    for record in messages:
        stats.start(record)
    for record in messages:
        if record.end:
            stats.finish(record)
    summary = stats.summary(measured=10.0)
    assert summary["completed_in_window"] == 2
    assert summary["throughput_per_s"] == pytest.approx(0.2)
    assert summary["offered_per_s"] == pytest.approx(0.4)  # four started inside
    assert summary["in_flight_at_end"] == 2
    # latencies are those of the completed messages started in the window, counted
    assert summary["latency_ms"]["count"] == summary["completed"] == 2
    assert summary["latency_ms"]["max"] == pytest.approx(7000.0)


def test_batch_means_split_the_window_into_equal_time_batches():
    stats = MessageStats(warmup=0.0, end=4.0, batches=4)
    for k, latency_s in enumerate([0.1, 0.2, 0.3, 0.4]):
        record = _message(k + 0.5, k + 0.5 + latency_s)
        stats.start(record)
        stats.finish(record)
    batches = stats.summary(measured=4.0)["batch_means"]
    assert batches["batches"] == 4
    assert batches["latency_ms.mean"] == pytest.approx([100.0, 200.0, 300.0, 400.0])
    assert batches["throughput_per_s"] == pytest.approx([1.0, 1.0, 1.0, 1.0])
    # a batch without a completed message gives no interval
    empty = MessageStats(warmup=0.0, end=4.0, batches=8)
    record = _message(0.5, 0.6)
    empty.start(record)
    empty.finish(record)
    assert "batch_means" not in empty.summary(measured=4.0)


def test_mser5_truncates_a_series_at_the_end_of_its_transient():
    rng = np.random.default_rng(3)
    transient = 8.0 * np.exp(-np.arange(1000) / 200.0) + 5.0  # decays towards the level
    series = np.concatenate([transient, np.full(9000, 5.0)]) + rng.normal(0.0, 1.0, 10_000)
    dropped = mser5(series)
    assert dropped % 5 == 0
    # the transient is 8 e^(-i/200): below the noise's standard error from about i = 600
    assert 500 <= dropped <= 1100
    # a level shift is found to within a batch
    step = np.concatenate([np.full(1000, 6.0), np.zeros(9000)]) + rng.normal(0.0, 1.0, 10_000)
    assert abs(mser5(step) - 1000) <= 5
    assert mser5(rng.normal(0.0, 1.0, 10_000)) < 500  # a stationary series loses little
    assert mser5([1.0, 2.0, 3.0]) == 0  # too short to tell


def test_statistics_can_be_summarized_again_from_a_later_warmup():
    stats = MessageStats(warmup=0.0, end=10.0, keep=True)
    for k in range(10):
        record = _message(float(k), k + 0.5)
        record.op_steps = [(("rsa_sign", 1),)]
        stats.start(record)
        stats.finish(record)
        record.op_steps = []  # as the replication does once counted
    later = stats.truncated(4.0).summary(measured=6.0)
    assert later["app_messages"] == 6 and later["completed_in_window"] == 6
    assert later["crypto_ops_per_app_message"] == {"rsa_sign": 1.0}
