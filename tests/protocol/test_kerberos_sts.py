"""``strategy_options.<name>.sts_authentication = "kerberos"``: the RST to the STS carries a
Kerberos Token Profile AP-REQ (a ticket for HTTP/sts.example) instead of a UsernameToken;
the STS issues to the ticket's client; the ``kdc`` joins the run only then."""

from __future__ import annotations

import pytest

from sim.engine import load_scenario, simulate
from sim.errors import ScenarioError
from sim.protocol import build_strategy
from sim.protocol.harness import Harness
from sim.wire import ns
from tests.tampering import flip_base64_char

STRATEGIES = ("bearer", "hok-symmetric", "hok-public")
KERBEROS = {"sts_authentication": "kerberos"}
KDC_LEGS = ["krb-as-req", "krb-as-rep", "krb-tgs-req", "krb-tgs-rep"]


def kinds(outcome):
    return [str(d.send.kind) for d in outcome.deliveries]


def _rst(outcome) -> bytes:
    return next(d for d in outcome.deliveries if d.send.kind == "rst-issue").send.data


@pytest.mark.parametrize("name", STRATEGIES)
def test_the_rst_carries_a_kerberos_token_and_the_sts_issues_to_the_tickets_client(make, name):
    strategy = make(name, KERBEROS)
    assert strategy.roles == ("kdc", "sts", "provider")
    harness = Harness(strategy)
    first, second = harness.request(b"a", 0.0), harness.request(b"b", 1.0)
    assert kinds(first)[:6] == [*KDC_LEGS, "rst-issue", "rstr-issue"]
    assert first.results[0].ok and second.results[0].ok
    assert "krb-as-req" not in kinds(second)  # the tickets and the assertion are cached
    rst = _rst(first)
    assert ns.KERBEROS_AP_REQ.encode() in rst and b"UsernameToken" not in rst
    issued = next(d for d in first.deliveries if d.send.kind == "rstr-issue").send.data
    # the subject: the ticket's client principal, the client's user
    assert f">{harness.client.user}</".encode() in issued


@pytest.mark.parametrize("name", STRATEGIES)
def test_by_default_the_rst_carries_a_username_token_and_there_is_no_kdc(make, name):
    strategy = make(name)
    assert strategy.roles == ("sts", "provider")
    outcome = Harness(strategy).request(b"a", 0.0)
    assert kinds(outcome)[:2] == ["rst-issue", "rstr-issue"] and outcome.results[0].ok
    rst = _rst(outcome)
    assert b"UsernameToken" in rst and ns.KERBEROS_AP_REQ.encode() not in rst


def _sts_and_rst(make):
    harness = Harness(make("bearer", KERBEROS))
    outcome = harness.request(b"a", 0.0)
    return harness.servers["sts-0"], _rst(outcome)


def test_a_replayed_rst_is_refused(make):
    sts, rst = _sts_and_rst(make)
    step = sts.receive(rst, sender="client-0", now=1.0)
    assert sts.last_refusal == "replay" and step.events[0].fault


def test_an_ap_req_moved_to_another_request_is_refused_by_its_binding(make):
    sts, rst = _sts_and_rst(make)
    start = rst.index(b"urn:uuid:", rst.index(b"MessageID")) + 12
    moved = rst[:start] + (b"0" if rst[start : start + 1] != b"0" else b"1") + rst[start + 1 :]
    step = sts.receive(moved, sender="client-0", now=1.0)
    assert sts.last_refusal == "kerberos-binding" and step.events[0].fault


def test_a_tampered_ap_req_is_refused_with_a_typed_fault(make):
    def tamper(delivery):
        if delivery.send.kind == "rst-issue":
            rst = delivery.send.data
            start = rst.index(b">", rst.index(ns.KERBEROS_AP_REQ.encode())) + 400
            return flip_base64_char(rst, start)
        return None

    harness = Harness(make("bearer", KERBEROS), tamper=tamper)
    outcome = harness.request(b"a", 0.0)
    assert not outcome.results[0].ok
    assert "fault" in kinds(outcome)
    assert harness.servers["sts-0"].last_refusal in ("kerberos", "service-principal")


def test_a_bad_sts_authentication_names_the_option(key_dir):
    with pytest.raises(ScenarioError) as refused:
        build_strategy("hok-public", {"sts_authentication": "ntlm"}, key_dir=key_dir)
    assert refused.value.key == "strategy_options.hok-public.sts_authentication"


@pytest.mark.parametrize("name", STRATEGIES)
def test_full_and_replay_fidelity_agree_with_kerberos_at_the_sts(key_dir, name):
    scenario = load_scenario(
        {
            "name": "sts-kerberos",
            "strategies": [name],
            "strategy_options": {name: KERBEROS},
            "workload": {"rate": 3.0, "messages_per_session": 2, "payload_bytes": 600},
            "run": {"duration_s": 6.0, "warmup_s": 1.0},
        }
    )
    full = simulate(scenario, fidelity="full", key_dir=key_dir).summary
    replay = simulate(scenario, fidelity="replay", key_dir=key_dir).summary
    full.pop("fidelity"), replay.pop("fidelity")
    assert full == replay
    figures = full["strategies"][name]
    assert figures["completed"] > 5 and set(figures["roles"]) == {"kdc", "sts", "provider"}
