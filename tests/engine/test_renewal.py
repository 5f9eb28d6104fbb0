"""Tokens and security contexts renewed inside long sessions: the renewals happen where the
client's clock says (full fidelity) and replay reproduces them (the client's horizon is part
of the memo key)."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate


def long_sessions(strategy: str, option: str, faults=()):
    return load_scenario(
        {
            "strategies": [strategy],
            "strategy_options": {strategy: {option: 4.0}},
            "workload": {
                "rate": 2.0,
                "messages_per_session": 10,
                "message_gap_s": 0.7,  # a session lasts about 6.5 s: renewals at 3.2 s
                "payload_bytes": 600,
            },
            "run": {"duration_s": 16.0, "warmup_s": 1.0},
            "topology": {"provider": {"nodes": 2, "balancer": "sticky"}},
            "faults": list(faults),
        }
    )


@pytest.mark.parametrize(
    ("strategy", "option"),
    [("sct", "sct_lifetime_s"), ("bearer", "token_lifetime_s"), ("hok-public", "token_lifetime_s")],
)
def test_renewals_inside_sessions_match_in_both_fidelities(key_dir, strategy, option):
    scenario = long_sessions(strategy, option)
    full = simulate(scenario, fidelity="full", key_dir=key_dir)
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir)
    f = full.summary["strategies"][strategy]
    assert f == replay.summary["strategies"][strategy]
    sessions = len({m["session"] for m in full.messages})
    assert f["sts_requests"] > 1.5 * sessions  # the establishment, then renewals
    assert f["completed"] == f["app_messages"]
    exchanges = [(m["session"], m["seq"], m["sts_exchanges"]) for m in full.messages]
    assert exchanges == [(m["session"], m["seq"], m["sts_exchanges"]) for m in replay.messages]
    assert any(seq > 0 and n > 0 for _, seq, n in exchanges)  # a renewal mid-session


def test_renewals_with_a_restart_and_skew_match_in_both_fidelities(key_dir):
    faults = [
        {"kind": "provider_restart", "at_s": 5.0, "duration_s": 0.5},
        {"kind": "clock_skew", "at_s": 8.0, "node": "provider", "skew_s": 500.0},
        {"kind": "clock_skew", "at_s": 11.0, "node": "provider", "skew_s": 0.0},
    ]
    scenario = long_sessions("sct", "sct_lifetime_s", faults)
    full = simulate(scenario, fidelity="full", key_dir=key_dir).summary
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    assert full["strategies"]["sct"]["faults"].get("wsse:MessageExpired", 0) > 0


@pytest.mark.parametrize("strategy", ["sct", "sct-tlsnego"])
def test_a_context_evicted_between_two_messages_is_recovered_in_both_fidelities(key_dir, strategy):
    """Messages 3 s apart, a provider cache that forgets a context unused for 2 s: every
    later message meets wsc:BadContextToken and the client establishes anew."""
    scenario = load_scenario(
        {
            "strategies": [strategy],
            "strategy_options": {strategy: {"cache_idle_timeout_s": 2.0}},
            "workload": {
                "rate": 1.0,
                "messages_per_session": 4,
                "message_gap_s": 3.0,
                "payload_bytes": 600,
            },
            "run": {"duration_s": 16.0, "warmup_s": 1.0},
            "topology": {"provider": {"nodes": 2, "balancer": "sticky"}},
        }
    )
    full = simulate(scenario, fidelity="full", key_dir=key_dir).summary["strategies"][strategy]
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir).summary
    assert full == replay["strategies"][strategy]
    assert full["faults"]["recovered"] > full["app_messages"] / 2
    assert full["completed"] == full["app_messages"]
