"""Clock skew between nodes: real engines refuse what their clock calls stale or future,
and replay fidelity reproduces it message for message (the skew is part of the memo key)."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate


def skewed(strategy: str, faults: list[dict]):
    return load_scenario(
        {
            "strategies": [strategy],
            "workload": {"rate": 4.0, "messages_per_session": 7, "payload_bytes": 600},
            "run": {"duration_s": 9.0, "warmup_s": 1.0},
            "topology": {"provider": {"nodes": 2, "balancer": "sticky"}},
            "faults": faults,
        }
    )


def run_both(scenario, key_dir):
    full = simulate(scenario, fidelity="full", key_dir=key_dir)
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir)
    return full, replay


CASES = [
    # a provider 400 s ahead for three seconds: Timestamps look 100 s beyond the tolerance
    (
        "sct",
        [
            {"kind": "clock_skew", "at_s": 3.0, "node": "provider", "skew_s": 400.0},
            {"kind": "clock_skew", "at_s": 6.0, "node": "provider", "skew_s": 0.0},
        ],
    ),
    # an STS running late issues tokens the provider finds expired, for the whole session
    ("bearer", [{"kind": "clock_skew", "at_s": 3.0, "node": "sts", "skew_s": -700.0}]),
    # the intermediary's clock ahead; then one provider's far ahead while the client's
    # clock moves under messages in flight
    (
        "sender-vouches",
        [
            {"kind": "clock_skew", "at_s": 2.5, "node": "client", "skew_s": -350.0},
            {"kind": "clock_skew", "at_s": 5.0, "node": "provider-1", "skew_s": 4000.0},
        ],
    ),
]


@pytest.mark.parametrize(("strategy", "faults"), CASES, ids=[c[0] for c in CASES])
def test_skew_beyond_the_tolerance_refuses_messages_in_both_fidelities(strategy, faults, key_dir):
    full, replay = run_both(skewed(strategy, faults), key_dir)
    f, r = full.summary["strategies"][strategy], replay.summary["strategies"][strategy]
    assert f["faults"].get("wsse:MessageExpired", 0) > 10
    assert f["completed"] > 10
    assert f["completed"] + f["failed"] == f["app_messages"]
    assert f == r
    outcome = {(m["session"], m["seq"]): (m["ok"], m["fault"]) for m in full.messages}
    assert outcome == {(m["session"], m["seq"]): (m["ok"], m["fault"]) for m in replay.messages}


def test_skew_within_the_tolerance_changes_nothing(key_dir):
    calm = simulate(skewed("x509", []), fidelity="replay", key_dir=key_dir).summary
    small = [{"kind": "clock_skew", "at_s": 3.0, "node": "provider", "skew_s": 120.0}]
    full, replay = run_both(skewed("x509", small), key_dir)
    assert full.summary["strategies"] == replay.summary["strategies"]
    assert full.summary["strategies"]["x509"]["faults"] == {}
    assert (
        full.summary["strategies"]["x509"]["completed"] == (calm["strategies"]["x509"]["completed"])
    )
