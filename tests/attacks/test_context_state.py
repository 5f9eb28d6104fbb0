"""The session strategies (sct, sct-tlsnego, ut-derived, x509) attacked from outside:
a refused message leaves contexts, negotiations and key derivation as they were (class 8).

How the attack tests work: ``tests/attacks/__init__.py``.
"""

from __future__ import annotations

import pytest
from lxml import etree

from sim.errors import BadContextToken, ScenarioError
from sim.protocol import protection as p
from sim.protocol.api import AppDone, Send
from sim.protocol.harness import Harness
from sim.protocol.strategies import sct
from sim.wire import ns, soap, trust, wss
from sim.wire.ledger import Ledger
from sim.wire.ns import Action, RequestType
from tests.attacks.session_tools import (
    CLIENT,
    PROVIDER,
    SESSION_STRATEGIES,
    WSA_RELATES_TO,
    fault_of,
    header_of,
    live_session,
    message_id_of,
    ops_of,
    parse_tree,
    result_of,
    sent_of,
    serialized,
)
from tests.tampering import flip_base64_char

# --- class 8: no refused message changes a context's state ------------------------------------


def _flip_signature(data: bytes) -> bytes:
    marker = b"SignatureValue>"
    index = data.index(marker) + len(marker) + 2
    return flip_base64_char(data, index)


def _accomplice(strategy, harness):
    """A client engine holding the live session's context, to write the context's Renew and
    Cancel as its owner would."""
    accomplice = strategy.client(CLIENT)
    accomplice.context = harness.client.context
    return accomplice


def _renew(strategy, harness, now: float) -> bytes:
    accomplice = _accomplice(strategy, harness)
    accomplice.renew_due = now  # its renewal is due
    send = sent_of(accomplice.request(b"x", now=now))
    assert send.kind == "rst-renew"
    return send.data


def _cancel(strategy, harness, now: float) -> bytes:
    send = sent_of(_accomplice(strategy, harness).close(now=now))
    assert send.kind == "rst-cancel"
    return send.data


FORGERIES = ("app-replayed", "app-tampered", "renew-tampered", "cancel-tampered")


@pytest.mark.parametrize("name", ["sct", "sct-tlsnego"])
@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_refused_message_does_not_keep_an_idle_context_alive(make, name, forgery):
    strategy = make(name, {"cache_idle_timeout_s": 100.0})
    harness = Harness(strategy)
    outcome = harness.request(b"first", 0.0)
    captured = next(d.send.data for d in outcome.deliveries if d.send.kind == "app-request")
    forged = {
        "app-replayed": lambda: captured,
        "app-tampered": lambda: _flip_signature(captured),
        "renew-tampered": lambda: _flip_signature(_renew(strategy, harness, 80.0)),
        "cancel-tampered": lambda: _flip_signature(_cancel(strategy, harness, 80.0)),
    }[forgery]()
    provider = harness.servers[PROVIDER]
    fault_of(provider.receive(forged, sender="mallory-0", now=80.0))
    # 150 s after the context's last accepted use: idle too long, whatever came at 80 s
    outcome = harness.request(b"second", 150.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 1
    assert [d.send.fault for d in outcome.deliveries if d.send.fault] == ["wsc:BadContextToken"]


@pytest.mark.parametrize("name", ["sct", "sct-tlsnego"])
@pytest.mark.parametrize("forgery", ["renew-tampered", "renew-replayed", "cancel-tampered"])
def test_a_refused_renew_or_cancel_leaves_the_context_as_it_was(make, name, forgery):
    strategy = make(name)
    harness = Harness(strategy)
    assert harness.request(b"first", 0.0).results[-1].ok
    provider = harness.servers[PROVIDER]
    if forgery == "renew-replayed":  # the owner renews at 5 s; the attacker replays it
        renewal = _renew(strategy, harness, 5.0)
        assert not sent_of(provider.receive(renewal, sender=CLIENT, now=5.0)).fault
        forged = renewal
    elif forgery == "renew-tampered":
        forged = _flip_signature(_renew(strategy, harness, 5.0))
    else:
        forged = _flip_signature(_cancel(strategy, harness, 5.0))
    [(key, (context, _))] = provider.contexts._entries.items()
    expires = context.expires
    fault_of(provider.receive(forged, sender="mallory-0", now=50.0))
    assert list(provider.contexts._entries) == [key] and context.expires == expires
    outcome = harness.request(b"second", 60.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 0


def _negotiate(client, provider, sender=CLIENT, now=0.0):
    """Legs #1 and #2 of a TLSNego handshake: (leg 1 Send, the provider's step)."""
    leg1 = sent_of(client.request(b"x", now=now))
    return leg1, provider.receive(leg1.data, sender=sender, now=now)


def _finish(client, provider, leg2: Send, now=0.0) -> AppDone:
    leg3 = sent_of(client.receive(leg2.data, sender=PROVIDER, now=now))
    leg4 = sent_of(provider.receive(leg3.data, sender=CLIENT, now=now))
    app = sent_of(client.receive(leg4.data, sender=PROVIDER, now=now))
    reply = sent_of(provider.receive(app.data, sender=CLIENT, now=now))
    return result_of(client.receive(reply.data, sender=PROVIDER, now=now))


def _without_relates_to(data: bytes) -> bytes:
    root = parse_tree(data)
    root[0].remove(header_of(root, WSA_RELATES_TO))
    return serialized(root)


def _leg3_with_blob(leg2: bytes, blob: bytes) -> bytes:
    """A client leg #3 (RSTR/Issue, no RelatesTo) for leg 2's Context carrying ``blob``."""
    context = trust.read_rstr_collection(soap.read_envelope(leg2).body[0])[0].context
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=Action.RSTR_ISSUE.value, to="https://p")
    envelope.add_body_element(
        trust.build_rstr(binary_exchange=(blob, ns.TLSNEGO_VALUE_TYPE), context=context)
    )
    return envelope.to_bytes()


LEG_FORGERIES = ("leg1-replayed", "leg2-reflected", "leg3-garbage", "leg3-server-flight")


@pytest.mark.parametrize("forgery", LEG_FORGERIES)
@pytest.mark.parametrize("attacker", ["client-1", "mallory-0"])
def test_a_forged_negotiation_leg_leaves_another_clients_handshake_intact(make, forgery, attacker):
    strategy = make("sct-tlsnego")
    client, provider = strategy.client(CLIENT), strategy.server("provider", PROVIDER)
    leg1, step = _negotiate(client, provider)
    leg2 = sent_of(step)
    flight = trust.read_rstr_collection(soap.read_envelope(leg2.data).body[0])[0]
    forged = {
        "leg1-replayed": leg1.data,  # the same Context from another node
        "leg2-reflected": _without_relates_to(leg2.data),
        "leg3-garbage": _leg3_with_blob(leg2.data, b"\x16\x03\x03\x00\x05hello"),
        "leg3-server-flight": _leg3_with_blob(leg2.data, flight.binary_exchange[0]),
    }[forgery]
    provider.receive(forged, sender=attacker, now=0.0)  # refused, or a separate negotiation
    result = _finish(client, provider, leg2)
    assert result.ok and result.payload == b"x"


def test_pending_negotiations_are_bounded_and_a_flood_does_not_evict_them(make):
    strategy = make("sct-tlsnego", {"max_pending_negotiations": 3, "negotiation_timeout_s": 30.0})
    provider = strategy.server("provider", PROVIDER)
    victim = strategy.client(CLIENT)
    _, step = _negotiate(victim, provider)
    victim_leg2 = sent_of(step)
    refused = []
    for i in range(6):
        _, step = _negotiate(strategy.client(f"client-{i + 1}"), provider, sender=f"client-{i + 1}")
        if step.events[0].fault:
            refused.append(provider.last_refusal)
    assert len(provider.negotiations.entries) == 3
    assert refused == ["negotiations"] * 4
    assert _finish(victim, provider, victim_leg2).ok
    # once the pending ones time out, a new negotiation is taken again
    _, step = _negotiate(strategy.client("client-9"), provider, sender="client-9", now=31.0)
    assert not step.events[0].fault and len(provider.negotiations.entries) == 1


def test_negotiation_bounds_are_options_checked_when_the_strategy_is_built(make):
    strategy = make("sct-tlsnego", {"max_pending_negotiations": 5, "negotiation_timeout_s": 9})
    provider = strategy.server("provider", PROVIDER)
    assert (provider.negotiations.capacity, provider.negotiations.timeout) == (5, 9.0)
    with pytest.raises(ScenarioError) as error:
        make("sct-tlsnego", {"max_pending_negotiations": 0})
    assert error.value.key == "strategy_options.sct-tlsnego.max_pending_negotiations"
    assert "between" in error.value.message


# --- class 8: UsernameToken key derivation bound ------------------------------------------------


def _ut_request(strategy, iterations: int) -> bytes:
    client = strategy.client(CLIENT)
    client.iterations = iterations  # a client (or attacker) asking for this many
    return sent_of(client.request(b"x", now=0.0)).data


def test_ut_derived_refuses_an_iteration_count_above_its_bound_before_deriving(make):
    strategy = make("ut-derived")
    provider = strategy.server("provider", PROVIDER)
    step = provider.receive(_ut_request(strategy, 200_000), sender=CLIENT, now=0.0)
    assert fault_of(step).fault == "wsse:InvalidSecurityToken"
    assert provider.last_refusal == "iterations" and "ut_derive" not in ops_of(step)


def test_ut_derived_refuses_a_forged_huge_iteration_count_before_deriving(make):
    strategy = make("ut-derived")
    provider = strategy.server("provider", PROVIDER)
    root = parse_tree(_ut_request(strategy, 1000))
    root.find(f".//{{{ns.WSSE11}}}Iteration").text = "1000000"
    step = provider.receive(serialized(root), sender=CLIENT, now=0.0)
    assert fault_of(step).fault == "wsse:InvalidSecurityToken"
    assert "ut_derive" not in ops_of(step)


def test_ut_derived_iteration_bound_is_an_option(make):
    strategy = make("ut-derived", {"max_iterations": 300_000, "iterations": 1000})
    provider = strategy.server("provider", PROVIDER)
    step = provider.receive(_ut_request(strategy, 200_000), sender=CLIENT, now=0.0)
    assert not step.events[0].fault
    with pytest.raises(ScenarioError) as error:
        make("ut-derived", {"iterations": 6000})  # above the default bound of 5000
    assert error.value.key == "strategy_options.ut-derived.iterations"


def test_ut_derived_refuses_a_second_username_token(make):
    strategy = make("ut-derived")
    provider = strategy.server("provider", PROVIDER)
    root = parse_tree(_ut_request(strategy, 1000))
    token = root.find(f".//{wss.USERNAME_TOKEN}")
    twin = etree.fromstring(etree.tostring(token))
    twin.set(ns.qname(ns.WSU, "Id"), "UT-twin")
    token.addnext(twin)
    step = provider.receive(serialized(root), sender=CLIENT, now=0.0)
    assert fault_of(step).fault == "wsse:InvalidSecurityToken"
    assert "ut_derive" not in ops_of(step)


# --- class 7: one replay store for a farm -------------------------------------------------------


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_request_replayed_to_another_node_of_the_farm_is_refused(make, name):
    strategy = make(name)
    strategy.share_replay_cache("provider")
    harness = Harness(strategy)
    outcome = harness.request(b"once", 0.0)
    assert outcome.results[-1].ok
    captured = next(d.send.data for d in outcome.deliveries if d.send.kind == "app-request")
    shared = getattr(harness.servers[PROVIDER], "contexts", None)  # the farm's SCT cache
    other = strategy.server("provider", "provider-1", shared=shared)
    step = other.receive(captured, sender="mallory-0", now=1.0)
    assert fault_of(step).fault == "wsse:InvalidSecurity" and other.last_refusal == "replay"


def test_without_a_shared_store_each_node_keeps_its_own(make):
    strategy = make("x509")
    first = strategy.server("provider", "provider-0")
    second = strategy.server("provider", "provider-1")
    assert first.replay is not second.replay
    strategy.share_replay_cache("provider")
    third, fourth = (strategy.server("provider", f"provider-{i}") for i in (2, 3))
    assert third.replay is fourth.replay


# --- class 10: typed faults, no catch-all ------------------------------------------------------


def _context_message(harness, strategy, action: str, body: etree._Element | None) -> bytes:
    """A request protected with the live context's keys (what its legitimate owner can send),
    with ``body`` (or an empty Body)."""
    context = harness.client.context
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=action, to="https://p")
    if body is not None:
        envelope.add_body_element(body)
    return p.protect_symmetric(
        envelope,
        secret=context.secret,
        source_reference=lambda: sct.context_reference_text(context.identifier),
        now=1.0,
        ledger=Ledger(),
        suite_=strategy.setup.suite,
    )


@pytest.mark.parametrize("action", [Action.SCT_RENEW.value, Action.SCT_CANCEL.value])
def test_an_sct_renew_or_cancel_with_an_empty_body_is_a_typed_refusal(make, action):
    strategy = make("sct")
    harness = Harness(strategy)
    assert harness.request(b"x", 0.0).results[-1].ok
    provider = harness.servers[PROVIDER]
    step = provider.receive(
        _context_message(harness, strategy, action, None), sender=CLIENT, now=1.0
    )
    assert fault_of(step).fault == "wst:InvalidRequest"
    assert len(provider.contexts) == 1


def test_an_sct_renew_whose_request_type_is_cancel_is_refused(make):
    strategy = make("sct")
    harness = Harness(strategy)
    assert harness.request(b"x", 0.0).results[-1].ok
    provider = harness.servers[PROVIDER]
    rst = trust.build_rst(
        trust.RequestSecurityToken(request_type=RequestType.CANCEL),
        target=etree.fromstring(sct.context_reference_text(harness.client.context.identifier)),
    )
    data = _context_message(harness, strategy, Action.SCT_RENEW.value, rst)
    step = provider.receive(data, sender=CLIENT, now=1.0)
    assert fault_of(step).fault == "wst:InvalidRequest"
    assert len(provider.contexts) == 1


def test_a_tlsnego_issue_without_binary_exchange_is_a_typed_refusal(make):
    strategy = make("sct-tlsnego")
    provider = strategy.server("provider", PROVIDER)
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=Action.SCT_ISSUE.value, to="https://p")
    envelope.add_body_element(
        trust.build_rst(
            trust.RequestSecurityToken(
                request_type=RequestType.ISSUE, token_type=ns.TokenType.SCT.value, context="c"
            )
        )
    )
    step = provider.receive(envelope.to_bytes(), sender=CLIENT, now=0.0)
    assert fault_of(step).fault == "wst:InvalidRequest"


def test_a_bug_in_a_server_is_raised_not_turned_into_a_fault(make, monkeypatch):
    strategy = make("sct")
    harness = Harness(strategy)
    outcome = harness.request(b"x", 0.0)
    captured = next(d.send.data for d in outcome.deliveries if d.send.kind == "app-request")
    provider = strategy.server("provider", "provider-1", shared=harness.servers[PROVIDER].contexts)

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(p, "get_payload", broken)
    with pytest.raises(KeyError):
        provider.receive(captured, sender=CLIENT, now=1.0)


def test_a_bug_in_a_client_is_raised_not_turned_into_a_failed_message(make):
    harness = Harness(make("x509"))
    harness.client.done = lambda payload: {}["a bug"]  # fails once the reply is verified
    with pytest.raises(KeyError):
        harness.request(b"x", 0.0)


def test_a_server_that_skips_the_action_check_is_a_bug(make):
    from sim.protocol.base import UncheckedMessage

    strategy = make("x509")
    provider = strategy.server("provider", PROVIDER)
    client = strategy.client(CLIENT)
    request = sent_of(client.request(b"x", now=0.0))
    provider.read_request = lambda data, actions=None: (  # a strategy forgetting the check
        soap.read_envelope(data),
        soap.read_addressing(soap.read_envelope(data)),
    )
    with pytest.raises(UncheckedMessage):
        provider.receive(request.data, sender=CLIENT, now=0.0)


# --- class 8 (client side): a refused reply changes nothing ------------------------------------


@pytest.mark.parametrize("name", ["sct", "sct-tlsnego"])
def test_a_forged_fault_for_another_request_does_not_make_the_client_drop_its_context(make, name):
    harness = live_session(make, name)
    client = harness.client
    context = client.context
    sent_of(client.request(b"second", now=1.0))
    forged = soap.build_fault(
        BadContextToken("unknown security context"), relates_to="urn:uuid:another-request"
    )
    result = result_of(client.receive(forged, sender=PROVIDER, now=1.0))
    assert not result.ok and client.last_refusal == "relates-to"
    assert client.context is context
    outcome = harness.request(b"third", 2.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 0


@pytest.mark.parametrize("name", ["sct", "sct-tlsnego"])
def test_a_reply_under_another_context_does_not_make_the_client_drop_its_own(make, name):
    """Another client of the provider (it has a context of its own) answers the victim's
    request: RelatesTo and Action as expected, keys from its own context. The victim refuses
    it without forgetting its context (no self-recovery on a reply it refused)."""
    strategy = make(name)
    victim, mallory = Harness(strategy), Harness(strategy, "client-1")
    for harness in (victim, mallory):
        assert harness.request(b"warm-up", 0.0).results[-1].ok
    context = victim.client.context
    request = sent_of(victim.client.request(b"second", now=1.0))
    response = soap.new_envelope()
    soap.add_addressing(
        response, action="urn:wssim:app:ProcessResponse", relates_to=message_id_of(request.data)
    )
    p.put_payload(response, b"from mallory", "Response")
    own = mallory.client.context
    forged = p.protect_symmetric(
        response,
        secret=own.secret,
        source_reference=lambda: sct.context_reference_text(own.identifier),
        now=1.0,
        ledger=Ledger(),
        suite_=strategy.setup.suite,
    )
    result = result_of(victim.client.receive(forged, sender=PROVIDER, now=1.0))
    assert not result.ok and result.payload is None
    assert victim.client.context is context
    outcome = victim.request(b"third", 2.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 0
