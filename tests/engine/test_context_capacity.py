"""A context cache full to its capacity evicts the contexts of running sessions: full
fidelity shows the BadContextToken recoveries, replay fidelity (which does not model them)
says so in the summary's warnings instead of reporting figures without them."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate


def scenario(capacity: int, *, users: int = 0, cancel: bool = True, shared: bool = False):
    # sessions of about 2 s: some 40 run at once, or ``users`` one after the other each
    arrivals = {"users": users, "think_time_s": 0.1} if users else {"rate": 20.0}
    return load_scenario(
        {
            "strategies": ["sct"],
            "strategy_options": {"sct": {"cache_capacity": capacity, "cancel": cancel}},
            "workload": {**arrivals, "messages_per_session": 5, "message_gap_s": 0.5},
            "run": {"duration_s": 10.0, "warmup_s": 2.0},
            "topology": {"provider": {"nodes": 2, "balancer": "sticky", "shared_cache": shared}},
        }
    )


def _capacity_warnings(result) -> list[str]:
    return [w for w in result.summary["warnings"] if "context cache" in w]


@pytest.mark.slow
def test_a_cache_too_small_for_the_running_sessions_makes_full_fidelity_recover(key_dir):
    full = simulate(scenario(8), fidelity="full", key_dir=key_dir)
    assert full.summary["strategies"]["sct"]["faults"].get("recovered", 0) > 50
    assert not _capacity_warnings(full)  # full fidelity shows the evictions themselves


def test_replay_fidelity_warns_where_full_fidelity_would_recover(key_dir):
    warnings = _capacity_warnings(simulate(scenario(8), fidelity="replay", key_dir=key_dir))
    assert len(warnings) == 2  # one per provider node's cache
    assert all("cache_capacity 8" in w and "run with fidelity full" in w for w in warnings)


def test_a_shared_cache_is_watched_once_for_the_farm(key_dir):
    result = simulate(scenario(8, shared=True), fidelity="replay", key_dir=key_dir)
    (warning,) = _capacity_warnings(result)
    assert warning.startswith("sct: provider's sct context cache")


def test_no_warning_when_the_cache_holds_every_running_session(key_dir):
    for fidelity in ("replay", "full"):
        result = simulate(scenario(10_000), fidelity=fidelity, key_dir=key_dir)
        assert not _capacity_warnings(result)
        assert "recovered" not in result.summary["strategies"]["sct"]["faults"]


@pytest.mark.parametrize("cancel", [True, False])
def test_contexts_of_ended_sessions_may_go_without_harm(key_dir, cancel):
    """One user, so one session at a time, and room for one context: a Cancel frees it, and
    without Cancel the context left behind by the ended session is the one evicted."""
    one_at_a_time = scenario(1, users=1, cancel=cancel)
    full = simulate(one_at_a_time, fidelity="full", key_dir=key_dir)
    replay = simulate(one_at_a_time, fidelity="replay", key_dir=key_dir)
    assert full.summary["strategies"]["sct"]["app_messages"] > 5
    assert "recovered" not in full.summary["strategies"]["sct"]["faults"]
    assert not _capacity_warnings(replay)
