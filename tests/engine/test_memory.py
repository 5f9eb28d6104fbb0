"""Memory stays bounded however long the run: the statistics stream, and the rows kept for
messages.csv (``run.record_messages``) are compact. Measured with tracemalloc on runs of N
and 4N messages, not timed."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from sim.engine import load_scenario, simulate
from sim.engine import stats as stats_module
from sim.engine.chain import MessageRecord
from sim.engine.stats import OP_STEP_KINDS, MessageStats

# tracemalloc slows the runs several times: these go first (tests/conftest.py)
pytestmark = pytest.mark.slow


def _scenario(messages: int, record: int, fidelity: str = "replay"):
    return load_scenario(
        {
            "strategies": ["sct"],
            "workload": {"rate": 100.0, "messages_per_session": 10},
            "run": {
                "duration_s": 1000.0,
                "warmup_s": 1.0 if fidelity == "replay" else 0.0,
                "max_messages": messages,
                "record_messages": record,
                "fidelity": fidelity,
            },
        }
    )


def _traced(
    messages: int, record: int, key_dir, fidelity: str = "replay"
) -> tuple[int, int, object]:
    """(memory still held with the result alive, peak during the run, the result)"""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = simulate(_scenario(messages, record, fidelity), key_dir=key_dir)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - before, peak - before, result


@pytest.fixture(scope="module")
def warm(key_dir):
    """Keys on disk, modules imported, caches filled: what a first run leaves behind."""
    simulate(_scenario(2000, 100), key_dir=key_dir)
    return key_dir


def test_a_kept_row_of_messages_csv_takes_about_a_hundred_bytes(warm):
    small_held, _, small = _traced(3_500, 500, warm)
    large_held, _, large = _traced(3_500, 3_000, warm)
    assert len(small.messages) == 500 and len(large.messages) == 3_000
    per_row = (large_held - small_held) / 2_500
    assert per_row < 150, per_row  # a dict a row took over 600


def test_a_run_of_four_times_the_messages_peaks_at_about_the_same_memory(warm, monkeypatch):
    # the exact latencies are bounded by EXACT_LATENCIES (8 MB at its default): make the
    # bound small so that any growth per message shows
    monkeypatch.setattr(stats_module, "EXACT_LATENCIES", 1000)
    _, small_peak, small = _traced(2_500, 100, warm)
    _, large_peak, large = _traced(10_000, 100, warm)
    assert small.summary["strategies"]["sct"]["app_messages"] > 1_400
    assert large.summary["strategies"]["sct"]["app_messages"] > 8_500
    growth = (large_peak - small_peak) / 7_500
    assert growth < 8, (small_peak, large_peak, growth)  # bytes per extra message


def test_full_fidelity_lets_each_message_go_once_it_is_delivered(warm):
    """Every full-fidelity step is a new object holding its message (6 kB here): the model
    must not keep them (it once memoized 50,000 steps, some 300 MB)."""
    simulate(_scenario(200, 10, "full"), key_dir=warm)  # the full engines' own first-run state
    _, small_peak, small = _traced(300, 10, warm, "full")
    _, large_peak, large = _traced(1_200, 10, warm, "full")
    assert small.summary["strategies"]["sct"]["app_messages"] >= 290
    assert large.summary["strategies"]["sct"]["app_messages"] >= 1_190
    growth = (large_peak - small_peak) / 900
    assert growth < 1_000, (small_peak, large_peak, growth)  # bytes per extra message


def test_op_counts_of_full_fidelity_stay_bounded():
    """Full fidelity makes new ledgers, hence new op-count tuples, at every step: the
    statistics fold them into totals instead of keeping one entry per step."""
    stats = MessageStats(warmup=0.0, end=100.0)
    messages = 3 * OP_STEP_KINDS
    for i in range(messages):
        record = MessageRecord(session=i, seq=0, start=1.0, end=1.01, ok=True)
        ops = [("rsa_sign", 1), ("sha1_digest", 2 + i % 3)]
        record.op_steps = [tuple(ops), tuple(ops[1:])]  # fresh tuples, as full fidelity makes
        stats.start(record)
        stats.finish(record)
    assert len(stats._op_steps) <= OP_STEP_KINDS
    assert stats.ops == {
        "rsa_sign": messages,
        "sha1_digest": 2 * sum(2 + i % 3 for i in range(messages)),
    }


def _population(users: int):
    """A closed workload of ``users`` on their own client machines, the session rate the
    same whatever the population (50 a second: think time users / 50 s)."""
    return load_scenario(
        {
            "strategies": ["sct"],
            "workload": {
                "users": users,
                "think_time_s": users / 50.0,
                "first_session": "after_think",
                "messages_per_session": 5,
            },
            "topology": {"client": {"nodes": users}},
            "run": {"duration_s": 5.0, "warmup_s": 1.0, "record_messages": 1000},
        }
    )


def test_a_closed_workload_holds_a_few_bytes_per_user_not_a_node_or_process(warm):
    """Users and client machines are light state: a thinking user holds no process, a
    client machine no node object, so four times the population peaks at about the
    same memory (a SimPy process and a Node each took well over a kilobyte)."""
    gc.collect()
    peaks = []
    for users in (100_000, 400_000):
        tracemalloc.start()
        try:
            result = simulate(_population(users), key_dir=warm)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert result.summary["strategies"]["sct"]["app_messages"] > 500
    per_user = (peaks[1] - peaks[0]) / 300_000
    assert per_user < 64, (peaks, per_user)
