"""Replay's one-generator session (``replay_session``) against the general one
(``Replication._general_session`` + ``Chain.run``): the same summary and the same rows of
every output, on scenarios that take each of its branches."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate
from sim.engine import replication as replication_module
from sim.engine.replication import Replication


def _scenario(strategies, faults=(), links=None, topology=None, workload=None, options=None):
    data = {
        "name": "replay-session",
        "strategies": strategies,
        "workload": {
            "rate": 8.0,
            "messages_per_session": 5,
            "payload_bytes": 600,
            **(workload or {}),
        },
        "run": {"duration_s": 10.0, "warmup_s": 1.0, "batches": 4},
        "topology": topology or {"sts": {"nodes": 2}, "provider": {"nodes": 2}},
        "faults": list(faults),
    }
    if links:
        data["links"] = links
    if options:
        data["strategy_options"] = options
    return load_scenario(data)


CASES = {
    # crashes and restarts (transport failures, retries on new sessions), lossy links and
    # an outage (frames lost, retransmitted), least-connections farms
    "faults, loss and an outage": _scenario(
        ["sct", "bearer"],
        faults=[
            {"kind": "sts_crash", "at_s": 3.0, "duration_s": 2.0, "node": "sts-0"},
            {"kind": "sts_crash", "at_s": 4.0, "duration_s": 0.5, "node": "sts"},  # all of them
            {"kind": "provider_restart", "at_s": 5.0, "duration_s": 0.3, "node": "provider-1"},
            {"kind": "link_outage", "link": "client-provider", "at_s": 7.0, "duration_s": 0.5},
            # every provider at once, often: some die with a message on them
            *(
                {"kind": "provider_restart", "at_s": t, "duration_s": 0.01, "node": "provider"}
                for t in (5.5, 6.01, 6.52, 8.03, 8.54, 9.05)
            ),
        ],
        links={"default": {"loss": 0.03, "timeout_s": 0.4, "retries": 1}},
        workload={"rate": 20.0},
        topology={
            "sts": {"nodes": 2, "balancer": "least_connections"},
            "provider": {"nodes": 2, "balancer": "sticky"},
        },
    ),
    # clock skew of servers and of the client (script variants mid-message), renewals
    # (the client's horizon), message gaps
    "clock skew and renewals": _scenario(
        ["sct"],
        faults=[
            {"kind": "clock_skew", "at_s": 2.0, "node": "provider", "skew_s": 400.0},
            {"kind": "clock_skew", "at_s": 4.0, "node": "client", "skew_s": -350.0},
            {"kind": "clock_skew", "at_s": 6.0, "node": "provider", "skew_s": 0.0},
        ],
        workload={"message_gap_s": 0.3, "rate": 4.0},
        options={"sct": {"sct_lifetime_s": 2.0}},
        topology={"provider": {"nodes": 2, "balancer": "sticky"}},
    ),
    # per-node caches behind round robin (fresh nodes, recoveries), context caches full to
    # capacity (the shadows), TLS connections opened, HSMs, drawn sizes and lengths
    "fresh nodes, shadows, TLS and HSMs": _scenario(
        ["sct", "bearer"],
        workload={"payload_bytes": {"200": 2, "6000": 1}, "messages_per_session": {"1": 1, "4": 2}},
        options={"sct": {"cache_capacity": 4}},
        topology={
            "sts": {"nodes": 2, "hsm_units": 1},
            "provider": {"nodes": 3, "balancer": "round_robin"},
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_replay_session_gives_the_general_sessions_every_row_and_figure(key_dir, monkeypatch, case):
    scenario = CASES[case]
    fast_sessions = []
    one_generator = replication_module.replay_session

    def counted(rep, key):
        fast_sessions.append(key)
        return one_generator(rep, key)

    monkeypatch.setattr(replication_module, "replay_session", counted)
    fast = simulate(scenario, fidelity="replay", key_dir=key_dir)
    assert len(fast_sessions) > 30
    monkeypatch.setattr(Replication, "_session", Replication._general_session)
    general = simulate(scenario, fidelity="replay", key_dir=key_dir)
    assert fast.summary == general.summary
    assert list(fast.messages.tuples()) == list(general.messages.tuples())
    assert (fast.nodes, fast.links, fast.timeseries) == (
        general.nodes,
        general.links,
        general.timeseries,
    )
    faults = {f for s in fast.summary["strategies"].values() for f in s["faults"]}
    assert faults  # the cases reach the rare branches: failures, recoveries, refusals


def test_a_traced_or_automatically_warmed_run_takes_the_general_session(key_dir):
    """A tracer sees each delivery, MSER-5 keeps every message's record: those runs take
    ``Replication._general_session`` (the same figures either way, tested above)."""
    scenario = CASES["clock skew and renewals"]
    mser5 = scenario.model_copy(update={"run": scenario.run.model_copy(update={"warmup": "mser5"})})
    assert not _replication(mser5, key_dir).fast
    assert _replication(scenario, key_dir).fast


def _replication(scenario, key_dir) -> Replication:
    import numpy as np

    from sim.engine.costs import load_profile
    from sim.engine.fidelity import Fidelity
    from sim.protocol import build_strategy

    strategies = {n: build_strategy(n, key_dir=key_dir) for n in scenario.strategies}
    return Replication(
        scenario, strategies, load_profile(), np.random.SeedSequence(1), Fidelity.REPLAY
    )
