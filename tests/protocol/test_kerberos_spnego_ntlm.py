"""``sct-spnego`` without a KDC: NTLM inside SPNEGO (WCF's fallback), four legs tunneled in
WS-Trust, the provider keeping the negotiation pending, then the context as ``sct``."""

from __future__ import annotations

from collections import Counter

from sim.engine.scenario import load_scenario, read_scenario_file
from sim.protocol.harness import Harness
from tests.tampering import flip_base64_char

LEGS = ["rst-spnego", "rstr-spnego", "rstr-spnego", "rstrc-spnego"]
APP = ["app-request", "app-response"]
NTLM = {"mechanism": "ntlm"}


def kinds(outcome):
    return [str(d.send.kind) for d in outcome.deliveries]


def test_ntlm_negotiates_in_four_legs_without_a_kdc_then_uses_derived_keys(make):
    strategy = make("sct-spnego", NTLM)
    assert strategy.roles == ("provider",)
    harness = Harness(strategy)
    first, second = harness.request(b"a", 0.0), harness.request(b"b", 1.0)
    assert kinds(first) == LEGS + APP and kinds(second) == APP
    assert first.results[0].ok and second.results[0].ok
    ops = Counter(op for d in first.deliveries for op, _ in d.handled_ops)
    assert ops["ntlm_hmac_md5"] > 0 and ops["ntlm_rc4"] > 0 and ops["krb_decrypt"] == 0
    legs = [d.send.data for d in first.deliveries[:4]]
    assert all(b"trust/spnego" in leg for leg in legs)
    assert b"Authenticator" in legs[3] and not harness.servers["provider-0"].pending.entries
    assert kinds(harness.close(2.0)) == ["rst-cancel", "rstr-cancel"]


def test_kerberos_keeps_the_kdc_role(make):
    assert make("sct-spnego").roles == ("kdc", "provider")


def _third_leg(make):
    harness = Harness(make("sct-spnego", NTLM))
    outcome = harness.request(b"a", 0.0)
    return harness, [d for d in outcome.deliveries if d.send.kind == "rstr-spnego"]


def test_a_replayed_authenticate_is_refused_the_challenge_answered_once(make):
    harness, (_, third) = _third_leg(make)
    provider = harness.servers["provider-0"]
    step = provider.receive(third.send.data, sender="client-0", now=1.0)
    assert provider.last_refusal == "negotiation"
    assert step.events[0].fault == "wst:InvalidRequest"


def test_a_reflected_challenge_is_refused_and_leaves_the_negotiation_pending(make):
    harness = Harness(make("sct-spnego", NTLM))
    client = harness.client
    step = client.request(b"a", now=0.0)
    provider = harness.servers["provider-0"]
    challenge = provider.receive(step.events[0].data, sender="client-0", now=0.0).events[0]
    provider.receive(challenge.data, sender="client-0", now=0.1)
    assert provider.last_refusal in ("negotiation", "action")
    assert len(provider.pending.entries) == 1


def test_a_tampered_authenticate_is_refused_with_a_typed_fault(make):
    def tamper(delivery):
        if delivery.send.kind == "rstr-spnego" and delivery.sender.startswith("client"):
            data = delivery.send.data
            start = data.index(b"BinaryExchange") + 300
            return flip_base64_char(data, start)
        return None

    harness = Harness(make("sct-spnego", NTLM), tamper=tamper)
    outcome = harness.request(b"a", 0.0)
    assert not outcome.results[0].ok
    assert harness.servers["provider-0"].last_refusal in ("ntlm", "ntlm-mic", "spnego")


def test_a_scenario_without_a_kdc_role_negotiates_ntlm():
    data = read_scenario_file("scenarios/sct-spnego.toml")
    assert load_scenario(data).strategy_options["sct-spnego"]["mechanism"] == "kerberos"
    del data["topology"]["kdc"]
    assert load_scenario(data).strategy_options["sct-spnego"]["mechanism"] == "ntlm"
    data["strategy_options"]["sct-spnego"]["mechanism"] = "kerberos"
    assert load_scenario(data).strategy_options["sct-spnego"]["mechanism"] == "kerberos"


def test_an_ntlm_run_has_no_kdc_and_full_and_replay_fidelity_agree(key_dir):
    from sim.engine import simulate

    data = {
        "name": "ntlm",
        "strategies": ["sct-spnego"],
        "workload": {"rate": 3.0, "messages_per_session": 2, "payload_bytes": 600},
        "run": {"duration_s": 6.0, "warmup_s": 1.0},
        "topology": {"provider": {"nodes": 1, "balancer": "sticky"}},
    }
    scenario = load_scenario(data)
    full = simulate(scenario, fidelity="full", key_dir=key_dir).summary
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    assert full["strategies"]["sct-spnego"]["completed"] > 5
    assert set(full["strategies"]["sct-spnego"]["roles"]) == {"provider"}
