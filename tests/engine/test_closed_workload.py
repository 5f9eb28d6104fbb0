"""A closed workload: users alternate sessions and exponential think times."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate


def _closed(users: int, think: float, first: str, duration: float = 60.0, warmup: float = 10.0):
    return load_scenario(
        {
            "strategies": ["bearer"],
            "workload": {
                "users": users,
                "think_time_s": think,
                "first_session": first,
                "messages_per_session": 1,
            },
            "run": {"duration_s": duration, "warmup_s": warmup},
        }
    )


@pytest.mark.parametrize("first", ["at_start", "after_think"])
def test_a_closed_workload_follows_the_response_time_law(first):
    """X = N / (R + Z): 300 users thinking 2 s on average, sessions of one message."""
    summary = simulate(_closed(300, 2.0, first), fidelity="replay").summary
    stats = summary["strategies"]["bearer"]
    measured = stats["app_messages"] / summary["measured_s"]
    session_s = stats["latency_ms"]["mean"] / 1000  # the session is its one message
    expected = 300 / (session_s + 2.0)
    assert measured == pytest.approx(expected, rel=0.05), (measured, expected)


def test_users_starting_after_a_think_time_do_not_all_start_at_once():
    together = simulate(_closed(2000, 20.0, "at_start", 2.0, 0.0), fidelity="replay")
    gradual = simulate(_closed(2000, 20.0, "after_think", 2.0, 0.0), fidelity="replay")
    started = [r.summary["strategies"]["bearer"]["app_messages"] for r in (together, gradual)]
    # at_start: every user's first session at 0 s; after_think: about users / think =
    # 100 a second
    assert started[0] >= 2000
    assert 120 < started[1] < 300
