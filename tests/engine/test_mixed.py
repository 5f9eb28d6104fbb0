"""Client classes that carry their own strategies: one run, one topology, several
strategies contending for the same farms."""

from __future__ import annotations

import copy

import pytest

from sim.engine import load_scenario, simulate
from sim.errors import ScenarioError

MIXED = {
    "name": "mixed",
    "strategies": ["sct", "x509"],
    "workload": {
        "rate": 12.0,
        "payload_bytes": 600,
        "classes": {
            "partner": {"strategy": "sct", "share": 1, "messages_per_session": 6},
            "mobile": {"strategy": "x509", "share": 2, "messages_per_session": 2},
        },
    },
    "topology": {"provider": {"nodes": 2, "cores": 2, "balancer": "sticky"}},
    "run": {"duration_s": 10.0, "warmup_s": 1.0},
}


def test_each_class_runs_its_own_strategy_in_one_run(key_dir):
    result = simulate(load_scenario(MIXED), key_dir=key_dir)
    summary = result.summary
    assert summary["mixed"] is True
    assert summary["classes"] == {
        "mobile": {"strategy": "x509", "share": 2.0},
        "partner": {"strategy": "sct", "share": 1.0},
    }
    sct, x509 = summary["strategies"]["sct"], summary["strategies"]["x509"]
    # Sessions split 1:2, messages 6 vs 2 per session: about 3 sct messages for 2 x509 ones.
    assert 1.1 < sct["app_messages"] / x509["app_messages"] < 2.1
    assert {(m["class"], m["strategy"]) for m in result.messages} == {
        ("partner", "sct"),
        ("mobile", "x509"),
    }
    # One topology: both entries describe the same shared provider farm.
    assert sct["roles"]["provider"] == x509["roles"]["provider"]
    assert sct["sts_requests"] > 0 and "sts" not in x509["roles"]
    assert sct["completed"] == sct["app_messages"] and x509["completed"] == x509["app_messages"]


def test_full_and_replay_agree_on_a_mixed_run(key_dir):
    s = load_scenario(MIXED)
    full = simulate(s, fidelity="full", key_dir=key_dir).summary
    replay = simulate(s, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay


def test_classes_contend_for_the_shared_farm(key_dir):
    """The x509 class waits longer for the one provider core when the SCT class it shares
    the farm with sends 30 messages a session rather than 1 (same arrivals, same class draws:
    only the neighbour's load changes)."""

    def x509_with_partner_sessions_of(messages: int) -> dict:
        data = copy.deepcopy(MIXED)
        data["topology"] = {"provider": {"nodes": 1, "cores": 1}, "sts": {"nodes": 1}}
        data["workload"]["classes"]["partner"]["messages_per_session"] = messages
        data["workload"]["rate"] = 25.0
        data["profile"] = {"scale": 6.0}  # a slow CPU: the provider core is 30-80% busy
        return simulate(load_scenario(data), key_dir=key_dir).summary["strategies"]["x509"]

    light, heavy = x509_with_partner_sessions_of(1), x509_with_partner_sessions_of(30)
    assert heavy["app_messages"] == light["app_messages"]
    assert heavy["roles"]["provider"]["utilization"] > 2 * light["roles"]["provider"]["utilization"]
    assert heavy["latency_ms"]["mean"] > 1.3 * light["latency_ms"]["mean"]
    assert heavy["latency_ms"]["p99"] > light["latency_ms"]["p99"]


def test_a_restart_rebuilds_every_strategys_engine_and_loses_nothing(key_dir):
    data = copy.deepcopy(MIXED)
    data["faults"] = [{"kind": "provider_restart", "at_s": 4.0, "duration_s": 0.5}]
    s = load_scenario(data)
    full = simulate(s, fidelity="full", key_dir=key_dir).summary
    replay = simulate(s, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    for entry in full["strategies"].values():
        assert entry["completed"] + entry["failed"] == entry["app_messages"] > 0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["workload"]["classes"]["mobile"].pop("strategy"), "workload.classes.mobile"),
        (lambda d: d.__setitem__("strategies", ["sct"]), "strategies"),
        (lambda d: d.__setitem__("strategies", ["sct", "x509", "bearer"]), "strategies"),
        (lambda d: d["workload"]["classes"]["mobile"].update(strategy="nope"), "workload.classes"),
        (lambda d: d.__setitem__("adversary", {}), "adversary"),
    ],
)
def test_inconsistent_mixed_scenarios_are_refused_naming_the_key(change, key):
    data = copy.deepcopy(MIXED)
    change(data)
    with pytest.raises(ScenarioError) as refused:
        load_scenario(data)
    assert refused.value.key.startswith(key)
