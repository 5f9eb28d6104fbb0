"""Replay keeps what a failed recovery leaves the client: when a message reaches a node new
to the session (a restarted provider) and the client's recovery then fails (its NTLM
negotiation's legs land on two token-service nodes, and the second knows nothing of it), the
client has lost its security context, and its next message negotiates again in ``full``;
replay must not go on as if the session had got through."""

from __future__ import annotations

from sim.engine import load_scenario, simulate


def _restart_during_ntlm_sessions(seed: int):
    return load_scenario(
        {
            "name": "failed-recovery",
            "strategies": ["sct-spnego"],
            "workload": {"rate": 4.0, "messages_per_session": 4, "payload_bytes": 600},
            "run": {"duration_s": 7.0, "warmup_s": 2.0, "seed": seed},
            "topology": {
                "provider": {"nodes": 2, "balancer": "round_robin"},
                "sts": {"nodes": 2, "balancer": "random"},
            },
            "links": {"default": {"loss": 0.02, "timeout_s": 0.3}},
            "faults": [
                {"kind": "provider_restart", "at_s": 4.0, "duration_s": 0.2},
                {"kind": "sts_crash", "at_s": 5.0, "duration_s": 0.5, "node": "sts-1"},
            ],
        }
    )


def test_after_a_failed_recovery_replay_negotiates_again_as_full_does(key_dir):
    scenario = _restart_during_ntlm_sessions(seed=1)
    full = simulate(scenario, fidelity="full", key_dir=key_dir)
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir)
    recovered_and_failed = [
        m
        for m in full.messages
        if m["recoveries"] and not m["ok"] and m["fault"] != "wssim:NodeDown"
    ]
    assert recovered_and_failed, "the scenario no longer makes a recovery fail"
    assert list(replay.messages) == list(full.messages)
    full.summary.pop("fidelity")
    replay.summary.pop("fidelity")
    assert replay.summary == full.summary
