"""The session strategies (sct, sct-tlsnego, ut-derived, x509) attacked from outside:
replies reflected or rebound to another request (class 3).

How the attack tests work: ``tests/attacks/__init__.py``.
"""

from __future__ import annotations

import pytest

from sim.protocol import protect
from sim.protocol.harness import Harness
from sim.wire import soap, wss
from tests.attacks.session_tools import (
    CLIENT,
    COSTLY,
    PROVIDER,
    SECURITY,
    SESSION_STRATEGIES,
    VARIANTS,
    WSA_RELATES_TO,
    fault_of,
    live_session,
    message_id_of,
    ops_of,
    parse_tree,
    result_of,
    sent_of,
    serialized,
    split_action_with_comment,
    variant_id,
    with_relates_to,
)

# --- class 3: reflection ----------------------------------------------------------------------


def _plan(name):
    """A session touching every kind of reply: (request times, close time, options)."""
    if name.startswith("sct"):  # Issue (or TLSNego), app, Renew, Cancel
        return (0.0, 10.0, 60.0), 70.0, {"sct_lifetime_s": 100.0, "renew_at": 0.5}
    return (0.0, 10.0), 20.0, {}


def _clean_replies(make, name, options):
    times, close, extra = _plan(name)
    harness = Harness(make(name, {**options, **extra}))
    deliveries = []
    for t in times:
        deliveries += harness.request(b"payload", t).deliveries
    deliveries += harness.close(close).deliveries
    return [d.send.kind for d in deliveries if d.receiver == CLIENT]


def _replies_in_session(variant) -> int:
    """Replies a client receives in ``_plan``'s session: TLSNego's handshake has one leg
    more than the preset certificate's Issue."""
    name, options = variant
    if name == "sct-tlsnego":
        return 7 if options.get("tlsnego", True) else 6
    return {"sct": 6, "ut-derived": 2, "x509": 2}[name]


REPLY_CASES = [
    (variant, index) for variant in VARIANTS for index in range(_replies_in_session(variant))
]


@pytest.mark.parametrize(("variant", "index"), REPLY_CASES, ids=lambda v: str(v))
def test_a_client_refuses_its_own_request_fed_back_as_the_reply(make, variant, index):
    """The attacker answers the client's request with the request itself: the client's keys
    verify it (the same context, the same UsernameToken key), so only the binding of the
    reply (RelatesTo, reply Action) tells it apart."""
    name, options = variant
    times, close, extra = _plan(name)
    replies = _clean_replies(make, name, options)
    assert len(replies) == _replies_in_session(variant)  # every reply of the session is tried
    state = {"seen": 0, "last": None, "reflected": False}

    def reflect(delivery):
        if delivery.sender == CLIENT:
            state["last"] = delivery.send.data
            return None
        if delivery.receiver == CLIENT:
            state["seen"] += 1
            if state["seen"] == index + 1:
                state["reflected"] = delivery
                return state["last"]
        return None

    harness = Harness(make(name, {**options, **extra}), tamper=reflect)
    calls = [lambda t=t: harness.request(b"payload", t) for t in times]
    calls.append(lambda: harness.close(close))
    for call in calls:
        outcome = call()
        if state["reflected"]:
            break
    assert state["reflected"]
    assert harness.client.last_refusal in ("relates-to", "action"), replies[index]
    assert not ops_of(state["reflected"].handled) & COSTLY  # refused before any crypto
    if outcome.results:
        assert not outcome.results[-1].ok


def _server_replies(make, name, options):
    """A live session (not closed) and every reply its provider sent, with the request each
    answers."""
    times, _, extra = _plan(name)
    harness = Harness(make(name, {**options, **extra}))
    pairs = []
    for t in times:
        outcome = harness.request(b"payload", t)
        last_request = None
        for delivery in outcome.deliveries:
            if delivery.sender == CLIENT:
                last_request = delivery
            elif delivery.receiver == CLIENT:
                pairs.append((last_request, delivery))
    return harness, pairs


def _copy_username_token(request: bytes, reply: bytes) -> bytes:
    """The campaign's ut-derived reflection: the request's UsernameToken (the source of the
    reply's keys too) copied into the reply's Security header."""
    token = parse_tree(request).find(f".//{wss.USERNAME_TOKEN}")
    root = parse_tree(reply)
    root.find(f".//{SECURITY}").insert(1, token)
    return serialized(root)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
@pytest.mark.parametrize("split", [False, True], ids=["as-sent", "action-split-by-comment"])
def test_a_provider_refuses_its_own_reply_fed_back_as_a_request(make, variant, split):
    name, options = variant
    harness, pairs = _server_replies(make, name, options)
    provider = harness.servers[PROVIDER]
    tried = 0
    for request, reply in pairs:
        data = reply.send.data
        if name == "ut-derived":
            data = _copy_username_token(request.send.data, data)
        if split:
            if reply.send.kind != "app-response":
                continue
            # ".../Process<!---->Response": the first text node is the request Action
            data = split_action_with_comment(data, len("urn:wssim:app:Process"))
        step = provider.receive(data, sender=CLIENT, now=reply.t + 1.0)
        fault = fault_of(step)
        assert fault.fault in ("wst:InvalidRequest", "wsse:InvalidSecurity"), reply.send.kind
        assert not ops_of(step) & COSTLY, (reply.send.kind, ops_of(step))
        tried += 1
    assert tried


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_reply_to_an_earlier_request_is_refused(make, name):
    """Request 1's reply is held back and delivered as the answer to request 2."""
    harness = live_session(make, name)
    client, provider = harness.client, harness.servers[PROVIDER]
    first = sent_of(client.request(b"first", now=1.0))
    held = sent_of(provider.receive(first.data, sender=CLIENT, now=1.0))
    second = sent_of(client.request(b"second", now=2.0))
    provider.receive(second.data, sender=CLIENT, now=2.0)  # its reply is lost
    result = result_of(client.receive(held.data, sender=PROVIDER, now=2.0))
    assert not result.ok and result.payload is None
    assert client.last_refusal == "relates-to"


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_reply_whose_relates_to_is_rewritten_to_the_pending_request_is_refused(make, name):
    """The same held-back reply, its wsa:RelatesTo rewritten to request 2's MessageID: the
    signature covers RelatesTo, so the rewrite breaks it."""
    harness = live_session(make, name)
    client, provider = harness.client, harness.servers[PROVIDER]
    first = sent_of(client.request(b"first", now=1.0))
    held = sent_of(provider.receive(first.data, sender=CLIENT, now=1.0))
    second = sent_of(client.request(b"second", now=2.0))
    provider.receive(second.data, sender=CLIENT, now=2.0)
    forged = with_relates_to(held.data, message_id_of(second.data))
    result = result_of(client.receive(forged, sender=PROVIDER, now=2.0))
    assert not result.ok and result.payload is None
    assert client.last_refusal is not None


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_reply_whose_relates_to_is_not_signed_is_refused(make, name, monkeypatch):
    """A provider that signed only Body, Timestamp and Action: the client refuses its reply,
    as RelatesTo could have been rewritten."""
    harness = live_session(make, name)
    real = protect._signed_parts

    def without_relates_to(envelope, timestamp, extra):
        return [el for el in real(envelope, timestamp, extra) if el.tag != WSA_RELATES_TO]

    monkeypatch.setattr(protect, "_signed_parts", without_relates_to)
    original = soap.add_addressing

    def add_addressing(envelope, **kwargs):
        if kwargs.get("relates_to"):
            envelope.to_tree()  # so that the tree path (without RelatesTo) signs it
        return original(envelope, **kwargs)

    monkeypatch.setattr(soap, "add_addressing", add_addressing)
    outcome = harness.request(b"again", 5.0)
    assert not outcome.results[-1].ok
    assert harness.client.last_refusal == "wrapping"


def test_a_server_never_accepts_a_reply_action_even_unsigned(make):
    """A TLSNego leg #2 (the provider's own RSTR, unsigned) sent back to it is refused
    before the pending handshake is touched."""
    strategy = make("sct-tlsnego")
    client, provider = strategy.client(CLIENT), strategy.server("provider", PROVIDER)
    leg1 = sent_of(client.request(b"x", now=0.0))
    leg2 = sent_of(provider.receive(leg1.data, sender=CLIENT, now=0.0))
    step = provider.receive(leg2.data, sender=CLIENT, now=0.0)
    assert fault_of(step).fault == "wst:InvalidRequest" and provider.last_refusal == "action"
    # the handshake goes on
    leg3 = sent_of(client.receive(leg2.data, sender=PROVIDER, now=0.0))
    leg4 = sent_of(provider.receive(leg3.data, sender=CLIENT, now=0.0))
    app = sent_of(client.receive(leg4.data, sender=PROVIDER, now=0.0))
    reply = sent_of(provider.receive(app.data, sender=CLIENT, now=0.0))
    assert result_of(client.receive(reply.data, sender=PROVIDER, now=0.0)).payload == b"x"
