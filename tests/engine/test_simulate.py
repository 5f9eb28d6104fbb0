"""simulate() on real strategies: full == replay, determinism, accounting, recoveries,
the crossover practitioners report, and the utilization law."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate
from sim.errors import ScenarioError
from sim.protocol.api import STRATEGY_NAMES


def scenario(
    strategies,
    *,
    messages=2,
    rate=5.0,
    duration=12.0,
    workload_extra=False,
    run_extra=None,
    **sections,
):
    data = {
        "name": "test",
        "strategies": strategies,
        "workload": {"rate": rate, "messages_per_session": messages, "payload_bytes": 600},
        "run": {"duration_s": duration, "warmup_s": 2.0, **(run_extra or {})},
    }
    if workload_extra:
        data["workload"]["session_length"] = "geometric"
    data.update(sections)
    return load_scenario(data)


def test_full_and_replay_fidelity_give_the_same_summary(key_dir):
    s = scenario(["sct", "x509", "hok-symmetric"], rate=4.0, duration=8.0)
    full = simulate(s, fidelity="full", key_dir=key_dir).summary
    replay = simulate(s, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    assert full["strategies"]["sct"]["completed"] > 20


@pytest.mark.parametrize(
    "situation",
    [
        "round_robin over per-node caches",
        "crashes, restarts, loss and an outage",
        "drawn session lengths and payload sizes",
    ],
)
def test_full_and_replay_agree_when_nodes_lose_or_lack_session_state(key_dir, situation):
    """Replay switches to the script recorded with a fresh node exactly where full fidelity
    meets a provider that does not know the context, and restarts a session after a
    transport failure as the real client does."""
    if situation.startswith("round_robin"):
        s = scenario(
            ["sct", "x509"],
            messages=4,
            topology={"provider": {"nodes": 3, "balancer": "round_robin"}, "sts": {"nodes": 2}},
        )
    elif situation.startswith("drawn"):
        s = scenario(["sct", "x509"], rate=6.0, messages={"1": 1, "5": 1})
        s = s.model_copy(
            update={
                "workload": s.workload.model_copy(
                    update={
                        "payload_bytes": {"200": 2, "6000": 1, "20000": 1},
                        "classes": load_scenario(
                            {
                                "strategies": ["sct"],
                                "workload": {
                                    "rate": 1.0,
                                    "classes": {
                                        "batch": {"share": 1, "messages_per_session": 8},
                                        "web": {"share": 3},
                                    },
                                },
                            }
                        ).workload.classes,
                    }
                )
            }
        )
    else:
        s = scenario(
            ["sct", "bearer"],
            rate=10.0,
            messages=3,
            duration=16.0,
            topology={"sts": {"nodes": 2}, "provider": {"nodes": 2, "balancer": "sticky"}},
            links={"default": {"loss": 0.03, "timeout_s": 0.5, "retries": 1}},
            faults=[
                {"kind": "sts_crash", "at_s": 4.0, "duration_s": 3.0, "node": "sts-0"},
                {"kind": "provider_restart", "at_s": 8.0, "duration_s": 0.3, "node": "provider-1"},
                {"kind": "link_outage", "link": "client-provider", "at_s": 12.0, "duration_s": 0.8},
            ],
        )
    full_result = simulate(s, fidelity="full", key_dir=key_dir)
    replay_result = simulate(s, fidelity="replay", key_dir=key_dir)
    full, replay = full_result.summary, replay_result.summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    assert full_result.messages == replay_result.messages
    sct = full["strategies"]["sct"]
    if situation.startswith("round_robin"):
        assert sct["faults"]["recovered"] > 20
    elif situation.startswith("drawn"):
        sizes = {m["request_bytes"] for m in full_result.messages}
        lengths = {}
        for m in full_result.messages:
            lengths[m["session"]] = max(lengths.get(m["session"], 0), m["seq"] + 1)
        assert len(sizes) >= 6 and set(lengths.values()) == {1, 5, 8}
        classes = {m["session"]: m["class"] for m in full_result.messages}
        assert {lengths[k] for k, c in classes.items() if c == "batch"} == {8}
        share = sum(c == "web" for c in classes.values()) / len(classes)
        assert 0.6 < share < 0.9  # 3 of 4 sessions
    else:
        assert sct["faults"].get("recovered", 0) > 0  # sessions that outlived the restart
        assert any(m["retries"] for m in full_result.messages if m["strategy"] == "bearer")


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_full_and_replay_agree_for_every_strategy_under_faults(key_dir, strategy):
    s = scenario(
        [strategy],
        rate=4.0,
        messages=4,
        duration=7.0,
        topology={
            "provider": {"nodes": 2, "balancer": "round_robin"},
            "sts": {"nodes": 2, "balancer": "random"},
            "intermediary": {"nodes": 2},
            "kdc": {"nodes": 1},  # sct-spnego: Kerberos (without a kdc role it runs NTLM)
        },
        links={"default": {"loss": 0.02, "timeout_s": 0.3}},
        faults=[
            {"kind": "provider_restart", "at_s": 4.0, "duration_s": 0.2},
            {"kind": "sts_crash", "at_s": 5.0, "duration_s": 0.5, "node": "sts-1"},
        ],
    )
    full = simulate(s, fidelity="full", key_dir=key_dir).summary
    replay = simulate(s, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    assert full["strategies"][strategy]["failed"] > 0


def test_a_message_failed_by_a_crash_is_retried_on_another_node(key_dir):
    s = scenario(
        ["bearer"],
        rate=40.0,  # both nodes take requests: enough on sts-0 to be caught by its crashes
        messages=1,
        topology={"sts": {"nodes": 2, "balancer": "least_connections"}},
        faults=[
            {"kind": "sts_crash", "at_s": at, "duration_s": 0.5, "node": "sts-0"}
            for at in (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
        ],
        profile={"scale": 40.0},  # slow machines: requests are in flight at the crashes
    )
    messages = simulate(s, fidelity="full", key_dir=key_dir).messages
    retried = [m for m in messages if m["retries"]]
    assert retried and all(m["ok"] for m in retried)
    assert all(m["ok"] for m in messages)


def test_same_seed_same_summary_and_another_seed_differs(key_dir):
    s = scenario(["sct"], rate=20.0)
    first = simulate(s, key_dir=key_dir).summary
    assert simulate(s, key_dir=key_dir).summary == first
    assert simulate(s, seed=2, key_dir=key_dir).summary != first


def test_every_application_message_is_accounted_for_under_faults(key_dir):
    s = scenario(
        ["sct", "bearer"],
        rate=10.0,
        duration=20.0,
        topology={"sts": {"nodes": 2}, "provider": {"nodes": 2, "balancer": "sticky"}},
        links={"default": {"loss": 0.05, "timeout_s": 0.5, "retries": 1}},
        faults=[
            {"kind": "sts_crash", "at_s": 5.0, "duration_s": 3.0, "node": "sts-0"},
            {"kind": "provider_restart", "at_s": 10.0, "duration_s": 0.5},
        ],
    )
    result = simulate(s, fidelity="full", key_dir=key_dir)
    for name, stats in result.summary["strategies"].items():
        assert stats["app_messages"] == stats["completed"] + stats["failed"], name
        assert stats["failed"] > 0 and stats["faults"], name
    assert all(m["ok"] or m["fault"] for m in result.messages)


def test_non_sticky_balancer_over_per_node_caches_forces_context_recoveries(key_dir):
    common = dict(rate=5.0, messages=4)
    spread = scenario(
        ["sct"], topology={"provider": {"nodes": 2, "balancer": "round_robin"}}, **common
    )
    stats = simulate(spread, fidelity="full", key_dir=key_dir).summary["strategies"]["sct"]
    assert stats["faults"].get("recovered", 0) > 0
    assert stats["failed"] == 0
    shared = scenario(
        ["sct"],
        topology={"provider": {"nodes": 2, "balancer": "round_robin", "shared_cache": True}},
        **common,
    )
    stats = simulate(shared, fidelity="full", key_dir=key_dir).summary["strategies"]["sct"]
    assert stats["faults"].get("recovered", 0) == 0


def _per_message(summary, name):
    stats = summary["strategies"][name]
    cpu = sum(role["utilization"] * role["cores"] for role in stats["roles"].values())
    return stats["latency_ms"]["mean"], cpu / stats["throughput_per_s"] * 1000


def test_sct_crossover_slower_for_one_call_cheaper_for_twenty(key_dir):
    one = simulate(
        scenario(["sct", "x509", "bearer-per-message"], messages=1, rate=10.0), key_dir=key_dir
    ).summary
    twenty = simulate(
        scenario(["sct", "x509", "bearer-per-message"], messages=20, rate=1.0, duration=30.0),
        key_dir=key_dir,
    ).summary
    sct_one, x509_one = _per_message(one, "sct"), _per_message(one, "x509")
    sct_twenty, x509_twenty = _per_message(twenty, "sct"), _per_message(twenty, "x509")
    per_msg_twenty = _per_message(twenty, "bearer-per-message")
    assert sct_one[0] > x509_one[0]  # one call: the extra round trip costs latency
    assert sct_twenty[0] < x509_twenty[0]  # many calls: faster
    assert sct_twenty[1] * 3 < x509_twenty[1]  # and several times cheaper in server CPU
    assert sct_twenty[1] * 2 < per_msg_twenty[1]  # an STS signature per message costs more


def test_utilization_law_holds_on_a_protocol_run(key_dir):
    result = simulate(scenario(["x509"], rate=30.0, duration=20.0), key_dir=key_dir)
    provider = result.summary["strategies"]["x509"]["roles"]["provider"]
    measured = result.summary["measured_s"]
    expected = (
        provider["requests"] / measured * provider["mean_service_ms"] / 1000 / provider["cores"]
    )
    assert provider["utilization"] == pytest.approx(expected, rel=0.02)


def test_replications_report_confidence_intervals(key_dir):
    stats = simulate(scenario(["sct"], rate=20.0), replications=3, key_dir=key_dir).summary[
        "strategies"
    ]["sct"]
    assert set(stats["latency_ms"]["ci95"]) == {"mean", "p50", "p95", "p99", "max"}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"strategies": ["nope"]}, "strategies"),
        ({"workload": {"rate": -3}}, "workload.rate"),
        ({"run": {"fidelity": "exact"}}, "run.fidelity"),
        ({"topology": {"sts": {"nodes": 0}}}, "topology.sts.nodes"),
        ({"links": {"moon-earth": {}}}, "links"),
        ({"extra": 1}, "extra"),
        (
            {"workload": {"rate": 1.0, "messages_per_session": "many"}},
            "workload.messages_per_session",
        ),
        ({"workload": {"rate": 1.0, "payload_bytes": {"10": -1}}}, "workload.payload_bytes"),
        ({"workload": {"rate": 1.0, "payload_bytes": {"big": 1}}}, "workload.payload_bytes"),
        ({"links": {"client-sts": {"bit_error_rate": 0.5}}}, "links.client-sts.bit_error_rate"),
        ({"run": {"warmup_s": 100.0, "duration_s": 10.0}}, "run"),
    ],
)
def test_invalid_scenarios_name_the_key(change, key):
    data = {"strategies": ["sct"], "workload": {"rate": 1.0}}
    data.update(change)
    with pytest.raises(ScenarioError) as error:
        load_scenario(data)
    assert error.value.key == key


def test_a_fidelity_argument_other_than_full_or_replay_names_the_key(key_dir):
    with pytest.raises(ScenarioError) as error:
        simulate(scenario(["x509"]), fidelity="exact", key_dir=key_dir)
    assert error.value.key == "run.fidelity"


def test_the_summary_names_the_fidelity_as_the_scenario_spells_it(key_dir):
    from sim.engine.fidelity import Fidelity

    s = scenario(["x509"], duration=3.0)
    assert simulate(s, fidelity=Fidelity.FULL, key_dir=key_dir).summary["fidelity"] == "full"
    assert simulate(s, key_dir=key_dir).summary["fidelity"] == "replay"


def test_an_hsm_takes_the_private_key_operations_off_the_cpu(key_dir):
    plain = scenario(["x509"], rate=20.0)
    with_hsm = scenario(
        ["x509"], rate=20.0, topology={"provider": {"hsm_units": 1, "hsm_op_ms": 5.0}}
    )
    cpu_only = simulate(plain, key_dir=key_dir).summary["strategies"]["x509"]
    offloaded = simulate(with_hsm, key_dir=key_dir).summary["strategies"]["x509"]
    provider = offloaded["roles"]["provider"]
    assert provider["utilization"] < cpu_only["roles"]["provider"]["utilization"]
    # two private-key operations (unwrap the request key, sign the response) of 5 ms each
    busy_per_message = 2 * 5.0 / 1000
    assert provider["hsm_utilization"] == pytest.approx(
        offloaded["throughput_per_s"] * busy_per_message, rel=0.1
    )
    assert offloaded["latency_ms"]["mean"] > cpu_only["latency_ms"]["mean"] + 9.0


def test_geometric_session_lengths_vary_with_the_requested_mean(key_dir):
    result = simulate(
        scenario(["sct"], messages=4, rate=10.0, duration=30.0, workload_extra=True),
        key_dir=key_dir,
    )
    sessions = {}
    for m in result.messages:
        sessions[m["session"]] = sessions.get(m["session"], 0) + 1
    lengths = list(sessions.values())
    assert len(set(lengths)) > 3
    assert 3.0 < sum(lengths) / len(lengths) < 5.0


def test_replications_are_added_until_the_ci_target_is_met(key_dir):
    s = scenario(["sct"], rate=20.0, run_extra={"target_ci95_ms": 0.5, "max_replications": 6})
    result = simulate(s, key_dir=key_dir)
    stats = result.summary["strategies"]["sct"]
    assert 3 <= result.summary["replications"] <= 6
    assert stats["latency_ms"]["ci95"]["mean"] <= 0.5 or result.summary["replications"] == 6


def test_replications_stop_on_the_ci_of_the_chosen_metric(key_dir):
    s = scenario(
        ["sct"],
        rate=20.0,
        run_extra={
            "target_ci95_ms": 3.0,
            "ci_metric": "throughput_per_s",
            "max_replications": 8,
        },
    )
    result = simulate(s, key_dir=key_dir)
    stats = result.summary["strategies"]["sct"]
    assert 3 <= result.summary["replications"] <= 8
    assert stats["throughput_per_s_ci95"] <= 3.0 or result.summary["replications"] == 8


@pytest.mark.slow
def test_littles_law_holds_on_a_full_protocol_run(key_dir):
    """Time-average number of application messages in flight, sampled independently,
    equals throughput times mean time in system (L = lambda W)."""
    import numpy as np

    from sim.engine.costs import load_profile
    from sim.engine.fidelity import Fidelity
    from sim.engine.replication import Replication
    from sim.protocol import build_strategy

    s = scenario(["x509"], rate=25.0, messages=3, duration=12.0)
    rep = Replication(
        s,
        {"x509": build_strategy("x509", key_dir=key_dir)},
        load_profile(),
        np.random.SeedSequence(5),
        Fidelity.FULL,
    )
    samples = []

    def monitor():
        while rep.env.now < s.run.duration_s:
            yield rep.env.timeout(0.01)
            if rep.env.now >= s.run.warmup_s:
                samples.append(rep.log.times()[1].count(0.0))  # the rows still running

    rep.env.process(monitor())
    rep.run()
    starts, ends = rep.log.times()
    window = [
        (a, b) for a, b in zip(starts, ends, strict=True) if s.run.warmup_s <= a < s.run.duration_s
    ]
    measured = s.run.duration_s - s.run.warmup_s
    arrival_rate = len(window) / measured
    mean_time = sum(b - a for a, b in window) / len(window)
    assert np.mean(samples) == pytest.approx(arrival_rate * mean_time, rel=0.08)


def test_a_role_reports_its_farms_cores_and_each_nodes(key_dir):
    farm = scenario(
        ["x509"], rate=5.0, duration=6.0, topology={"provider": {"nodes": 3, "cores": 4}}
    )
    provider = simulate(farm, key_dir=key_dir).summary["strategies"]["x509"]["roles"]["provider"]
    assert (provider["nodes"], provider["cores_per_node"], provider["cores"]) == (3, 4, 12)
