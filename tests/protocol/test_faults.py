"""Tampering, replays, expired tokens and lost contexts: the right fault, and recovery where
the protocol allows it."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from sim.errors import SecurityFault
from sim.protocol import STRATEGY_NAMES
from sim.protocol.api import role_of
from sim.protocol.harness import Harness

TAMPERABLE = {
    # strategy: a byte pattern inside a protected part of the application request
    "x509": b"CipherValue>",
    "sct": b"CipherValue>",
    "ut-derived": b"CipherValue>",
    "hok-symmetric": b"CipherValue>",
    "hok-public": b"Payload>",
    "bearer": b"NameID",
    "bearer-per-message": b"NameID",
    "sender-vouches": b"CipherValue>",
    "sct-tlsnego": b"CipherValue>",
    "kerberos": b"CipherValue>",
    "sct-spnego": b"CipherValue>",
}


def _flip_after(data: bytes, marker: bytes) -> bytes:
    index = data.index(marker) + len(marker) + 3
    flipped = bytes([data[index] ^ 0x01])
    if not flipped.isalnum():
        flipped = b"A" if data[index : index + 1] != b"A" else b"B"
    return data[:index] + flipped + data[index + 1 :]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_tampering_with_the_request_is_refused_with_a_fault(make, name):
    def tamper(delivery):
        is_app = delivery.send.kind == "app-request"
        to_provider = role_of(delivery.receiver) == "provider"
        if is_app and to_provider and TAMPERABLE[name] in delivery.send.data:
            return _flip_after(delivery.send.data, TAMPERABLE[name])
        return None

    outcome = Harness(make(name), tamper=tamper).request(b"payload", 0.0)
    [result] = outcome.results
    assert not result.ok
    assert result.fault.split(":")[0] in ("wsse", "wst", "wsc")


@pytest.mark.parametrize("name", ["x509", "sct", "ut-derived", "hok-symmetric", "bearer"])
def test_a_replayed_request_is_refused(make, name):
    harness = Harness(make(name))
    first = harness.request(b"once", 0.0)
    captured = next(d for d in first.deliveries if d.send.kind == "app-request")
    provider = harness.servers[captured.receiver]
    step = provider.receive(captured.send.data, sender="client-9", now=1.0)
    [reply] = step.events
    assert reply.fault == "wsse:InvalidSecurity"
    assert b"replayed" in reply.data


@pytest.mark.parametrize("name", ["bearer", "hok-symmetric", "hok-public"])
def test_an_expired_token_is_replaced_by_the_client_itself(make, name):
    # renew point past expiry: the client keeps a token the provider then refuses as expired
    strategy = make(name, {"token_lifetime_s": 60.0, "renew_at": 0.99})
    harness = Harness(strategy)
    assert harness.request(b"a", 0.0).results[-1].ok
    client = harness.client
    client.renew_due = 10_000.0  # a client that does not renew in time
    outcome = harness.request(b"b", 400.0)
    result = outcome.results[-1]
    assert result.ok and result.recoveries == 1
    faults = [d.send.fault for d in outcome.deliveries if d.send.fault]
    assert faults == ["wst:ExpiredData"]


@pytest.mark.parametrize("name", ["sct", "sct-tlsnego"])
def test_a_lost_context_answers_bad_context_token_and_the_client_reestablishes(make, name):
    harness = Harness(make(name))
    assert harness.request(b"a", 0.0).results[-1].ok
    harness.servers["provider-0"].contexts.clear()  # provider restarted
    outcome = harness.request(b"b", 1.0)
    result = outcome.results[-1]
    assert result.ok and result.recoveries == 1 and result.payload == b"b"
    assert [d.send.fault for d in outcome.deliveries if d.send.fault] == ["wsc:BadContextToken"]


def test_context_cache_capacity_evicts_least_recently_used(make):
    strategy = make("sct", {"cache_capacity": 1})
    shared = strategy.shared_state("provider")
    first, second = Harness(strategy), Harness(strategy, "client-1")
    for harness in (first, second):
        harness.servers["provider-0"] = strategy.server("provider", "provider-0", shared=shared)
    assert first.request(b"1", 0.0).results[-1].ok
    assert second.request(b"2", 0.0).results[-1].ok  # evicts the first client's context
    outcome = first.request(b"3", 1.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 1


def test_sct_renews_before_expiry_and_cancels_at_the_end(make):
    harness = Harness(make("sct", {"sct_lifetime_s": 100.0, "renew_at": 0.5}))
    kinds = []
    for t in (0.0, 10.0, 60.0, 70.0):
        kinds += [d.send.kind for d in harness.request(b"x", t).deliveries]
    kinds += [d.send.kind for d in harness.close(80.0).deliveries]
    assert kinds.count("rst-sct") == 1 and kinds.count("rst-renew") == 1
    assert kinds[-2:] == ["rst-cancel", "rstr-cancel"]
    assert len(harness.servers["provider-0"].contexts) == 0


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not xml",
        b"<a/>",
        b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/></s:Envelope>',
    ],
)
def test_garbage_never_crashes_a_receiver(make, name, garbage):
    strategy = make(name)
    for role in strategy.roles:
        step = strategy.server(role, f"{role}-0").receive(garbage, sender="client-0", now=0.0)
        [reply] = step.events
        assert reply.fault and reply.reply
    client = strategy.client("client-0")
    client.request(b"x", now=0.0)
    step = client.receive(garbage, sender="provider-0", now=0.0)
    assert not step.events[-1].ok


def test_faults_are_soap_faults_with_standard_codes(make):
    step = make("sct").server("provider", "provider-0").receive(b"<a/>", sender="client-0", now=0.0)
    root = etree.fromstring(step.events[0].data)
    assert b"wsse:InvalidSecurity" in etree.tostring(root)
    assert base64


MESSAGE_PROTECTED = ["x509", "sct", "ut-derived", "hok-symmetric", "sender-vouches", "sct-tlsnego"]


def _protected_values(data: bytes) -> list[int]:
    """Offsets inside CipherValue / SignatureValue / DigestValue texts of a message."""
    offsets = []
    for marker in (b"CipherValue>", b"SignatureValue>", b"DigestValue>"):
        start = 0
        while (index := data.find(marker, start)) >= 0:
            opening = data.rfind(b"<", 0, index)
            if data[opening + 1 : opening + 2] != b"/":  # an opening tag: its text follows
                offsets.append(index + len(marker) + 2)
            start = index + 1
    return offsets


@pytest.mark.parametrize("name", MESSAGE_PROTECTED)
def test_tampering_with_any_protected_part_of_any_message_is_detected(make, name):
    """Flip a byte in each protected value of each message of a session, one at a time: the
    receiver refuses it with a fault, and the application never gets a wrong payload."""
    clean = Harness(make(name)).request(b"payload", 0.0)
    targets = [
        (d.seq, offset) for d in clean.deliveries for offset in _protected_values(d.send.data)[:3]
    ]
    assert targets
    for seq, offset in targets:

        def tamper(delivery, seq=seq, offset=offset):
            if delivery.seq != seq:
                return None
            data = bytearray(delivery.send.data)
            data[offset] = ord("A") if data[offset] != ord("A") else ord("B")
            return bytes(data)

        outcome = Harness(make(name), tamper=tamper).request(b"payload", 0.0)
        [result] = outcome.results
        faults = [d.send.fault for d in outcome.deliveries if d.send.fault]
        if result.ok:  # only after the protocol recovered from a detected fault
            assert result.payload == b"payload" and faults, (seq, offset)
        else:
            assert result.fault, (seq, offset)


def test_every_error_survives_pickling_with_its_fields():
    """Worker processes (``simulate(workers=N)``) send errors back pickled."""
    import pickle

    from sim import errors

    scenario = pickle.loads(pickle.dumps(errors.ScenarioError("run.seed", "must be >= 0")))
    assert (scenario.key, scenario.message, str(scenario)) == (
        "run.seed",
        "must be >= 0",
        "run.seed: must be >= 0",
    )
    faults = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, SecurityFault)
    ]
    assert len(faults) > 5
    for cls in faults:
        fault = pickle.loads(pickle.dumps(cls("why", check="replay")))
        assert type(fault) is cls and (fault.reason, fault.check) == ("why", "replay")
