"""The session strategies (sct, sct-tlsnego, ut-derived, x509) attacked from outside.

Each test runs real engines in a live session (the in-memory harness, or the engines driven
by hand), takes the bytes of real messages, forges them as an attacker on the wire would,
feeds them to a live receiver and checks the refusal: a SOAP fault with a typed code from a
server, a failed application message and a named check from a client. Where the refusal
must come before costly work, the receiver's ledger for the forged message is checked too.
"""

from __future__ import annotations

import pytest
from lxml import etree

from sim.errors import BadContextToken, ScenarioError
from sim.protocol import build_strategy
from sim.protocol import protection as p
from sim.protocol.api import AppDone, Send
from sim.protocol.harness import Harness
from sim.protocol.strategies import sct
from sim.wire import ns, soap, trust, wss
from sim.wire.ledger import Ledger
from sim.wire.ns import Action, RequestType

CLIENT, PROVIDER = "client-0", "provider-0"
SESSION_STRATEGIES = ("sct", "sct-tlsnego", "ut-derived", "x509")
#: Variants whose messages differ in the parts these attacks touch.
VARIANTS = [
    ("sct", {}),
    ("sct", {"derived_keys": False}),
    ("sct-tlsnego", {}),
    ("sct-tlsnego", {"tlsnego": False}),
    ("ut-derived", {}),
    ("x509", {}),
]
#: Ledger entries of work a receiver must not do before the message proved anything.
COSTLY = {
    "rsa_sign",
    "rsa_verify",
    "rsa_encrypt",
    "rsa_decrypt",
    "rsa_keygen",
    "hmac",
    "digest",
    "c14n",
    "p_sha1",
    "ut_derive",
    "aes_decrypt",
    "aes_encrypt",
    "tls_handshake",
}
WSA_RELATES_TO = ns.qname(ns.WSA, "RelatesTo")
WSA_ACTION = ns.qname(ns.WSA, "Action")
WSA_MESSAGE_ID = ns.qname(ns.WSA, "MessageID")
SECURITY = ns.qname(ns.WSSE, "Security")


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("session-attack-keys")


@pytest.fixture
def make(key_dir):
    def factory(name, options=None):
        return build_strategy(name, options, key_dir=key_dir)

    return factory


def _ids(variant) -> str:
    name, options = variant
    return name + "".join(f"-{k}={v}" for k, v in options.items())


# --- the attacker's tools -------------------------------------------------------------------


def _tree(data: bytes):
    return etree.fromstring(data)


def _bytes(root) -> bytes:
    return etree.tostring(root)


def _header(root, tag):
    return next(child for child in root[0] if child.tag == tag)


def _message_id(data: bytes) -> str:
    return _header(_tree(data), WSA_MESSAGE_ID).text


def _with_relates_to(data: bytes, message_id: str) -> bytes:
    root = _tree(data)
    _header(root, WSA_RELATES_TO).text = message_id
    return _bytes(root)


def _split_action_with_comment(data: bytes, at: int) -> bytes:
    """wsa:Action's text cut by an empty comment at ``at``: exclusive C14N drops it, so the
    signature over the Action still verifies, and a reader taking the first text node sees
    only the part before it."""
    root = _tree(data)
    action = _header(root, WSA_ACTION)
    text = action.text
    action.text = text[:at]
    comment = etree.Comment("")
    comment.tail = text[at:]
    action.append(comment)
    return _bytes(root)


def _ops(step) -> set[str]:
    return {op for op, _ in step.ops}


def _fault_of(step) -> Send:
    [reply] = step.events
    assert isinstance(reply, Send) and reply.fault, step.events
    return reply


def _live(make, name, options=None, times=(0.0,)):
    """A harness whose session has sent an application message at each of ``times``."""
    harness = Harness(make(name, options))
    for t in times:
        assert harness.request(b"warm-up", t).results[-1].ok
    return harness


def _sent(step) -> Send:
    [send] = [e for e in step.events if isinstance(e, Send)]
    return send


def _result(step) -> AppDone:
    [result] = [e for e in step.events if isinstance(e, AppDone)]
    return result


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
    assert not _ops(state["reflected"].handled) & COSTLY  # refused before any crypto
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
    token = _tree(request).find(f".//{wss.USERNAME_TOKEN}")
    root = _tree(reply)
    root.find(f".//{SECURITY}").insert(1, token)
    return _bytes(root)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
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
            data = _split_action_with_comment(data, len("urn:wssim:app:Process"))
        step = provider.receive(data, sender=CLIENT, now=reply.t + 1.0)
        fault = _fault_of(step)
        assert fault.fault in ("wst:InvalidRequest", "wsse:InvalidSecurity"), reply.send.kind
        assert not _ops(step) & COSTLY, (reply.send.kind, _ops(step))
        tried += 1
    assert tried


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_reply_to_an_earlier_request_is_refused(make, name):
    """Request 1's reply is held back and delivered as the answer to request 2."""
    harness = _live(make, name)
    client, provider = harness.client, harness.servers[PROVIDER]
    first = _sent(client.request(b"first", now=1.0))
    held = _sent(provider.receive(first.data, sender=CLIENT, now=1.0))
    second = _sent(client.request(b"second", now=2.0))
    provider.receive(second.data, sender=CLIENT, now=2.0)  # its reply is lost
    result = _result(client.receive(held.data, sender=PROVIDER, now=2.0))
    assert not result.ok and result.payload is None
    assert client.last_refusal == "relates-to"


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_reply_whose_relates_to_is_rewritten_to_the_pending_request_is_refused(make, name):
    """The same held-back reply, its wsa:RelatesTo rewritten to request 2's MessageID: the
    signature covers RelatesTo, so the rewrite breaks it."""
    harness = _live(make, name)
    client, provider = harness.client, harness.servers[PROVIDER]
    first = _sent(client.request(b"first", now=1.0))
    held = _sent(provider.receive(first.data, sender=CLIENT, now=1.0))
    second = _sent(client.request(b"second", now=2.0))
    provider.receive(second.data, sender=CLIENT, now=2.0)
    forged = _with_relates_to(held.data, _message_id(second.data))
    result = _result(client.receive(forged, sender=PROVIDER, now=2.0))
    assert not result.ok and result.payload is None
    assert client.last_refusal is not None


@pytest.mark.parametrize("name", SESSION_STRATEGIES)
def test_a_reply_whose_relates_to_is_not_signed_is_refused(make, name, monkeypatch):
    """A provider that signed only Body, Timestamp and Action: the client refuses its reply,
    as RelatesTo could have been rewritten."""
    harness = _live(make, name)
    real = p._signed_parts

    def without_relates_to(envelope, timestamp, extra):
        return [el for el in real(envelope, timestamp, extra) if el.tag != WSA_RELATES_TO]

    monkeypatch.setattr(p, "_signed_parts", without_relates_to)
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
    leg1 = _sent(client.request(b"x", now=0.0))
    leg2 = _sent(provider.receive(leg1.data, sender=CLIENT, now=0.0))
    step = provider.receive(leg2.data, sender=CLIENT, now=0.0)
    assert _fault_of(step).fault == "wst:InvalidRequest" and provider.last_refusal == "action"
    # the handshake goes on
    leg3 = _sent(client.receive(leg2.data, sender=PROVIDER, now=0.0))
    leg4 = _sent(provider.receive(leg3.data, sender=CLIENT, now=0.0))
    app = _sent(client.receive(leg4.data, sender=PROVIDER, now=0.0))
    reply = _sent(provider.receive(app.data, sender=CLIENT, now=0.0))
    assert _result(client.receive(reply.data, sender=PROVIDER, now=0.0)).payload == b"x"


# --- class 8: no refused message changes a context's state ------------------------------------


def _flip_signature(data: bytes) -> bytes:
    marker = b"SignatureValue>"
    index = data.index(marker) + len(marker) + 2
    flipped = b"A" if data[index : index + 1] != b"A" else b"B"
    return data[:index] + flipped + data[index + 1 :]


def _accomplice(strategy, harness):
    """A client engine holding the live session's context, to write the context's Renew and
    Cancel as its owner would."""
    accomplice = strategy.client(CLIENT)
    accomplice.context = harness.client.context
    return accomplice


def _renew(strategy, harness, now: float) -> bytes:
    accomplice = _accomplice(strategy, harness)
    accomplice.renew_due = now  # its renewal is due
    send = _sent(accomplice.request(b"x", now=now))
    assert send.kind == "rst-renew"
    return send.data


def _cancel(strategy, harness, now: float) -> bytes:
    send = _sent(_accomplice(strategy, harness).close(now=now))
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
    _fault_of(provider.receive(forged, sender="mallory-0", now=80.0))
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
        assert not _sent(provider.receive(renewal, sender=CLIENT, now=5.0)).fault
        forged = renewal
    elif forgery == "renew-tampered":
        forged = _flip_signature(_renew(strategy, harness, 5.0))
    else:
        forged = _flip_signature(_cancel(strategy, harness, 5.0))
    [(key, (context, _))] = provider.contexts._entries.items()
    expires = context.expires
    _fault_of(provider.receive(forged, sender="mallory-0", now=50.0))
    assert list(provider.contexts._entries) == [key] and context.expires == expires
    outcome = harness.request(b"second", 60.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 0


def _negotiate(client, provider, sender=CLIENT, now=0.0):
    """Legs #1 and #2 of a TLSNego handshake: (leg 1 Send, the provider's step)."""
    leg1 = _sent(client.request(b"x", now=now))
    return leg1, provider.receive(leg1.data, sender=sender, now=now)


def _finish(client, provider, leg2: Send, now=0.0) -> AppDone:
    leg3 = _sent(client.receive(leg2.data, sender=PROVIDER, now=now))
    leg4 = _sent(provider.receive(leg3.data, sender=CLIENT, now=now))
    app = _sent(client.receive(leg4.data, sender=PROVIDER, now=now))
    reply = _sent(provider.receive(app.data, sender=CLIENT, now=now))
    return _result(client.receive(reply.data, sender=PROVIDER, now=now))


def _without_relates_to(data: bytes) -> bytes:
    root = _tree(data)
    root[0].remove(_header(root, WSA_RELATES_TO))
    return _bytes(root)


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
    leg2 = _sent(step)
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
    victim_leg2 = _sent(step)
    refused = []
    for i in range(6):
        _, step = _negotiate(strategy.client(f"client-{i + 1}"), provider, sender=f"client-{i + 1}")
        if step.events[0].fault:
            refused.append(provider.last_refusal)
    assert len(provider.negotiations) == 3
    assert refused == ["negotiations"] * 4
    assert _finish(victim, provider, victim_leg2).ok
    # once the pending ones time out, a new negotiation is taken again
    _, step = _negotiate(strategy.client("client-9"), provider, sender="client-9", now=31.0)
    assert not step.events[0].fault and len(provider.negotiations) == 1


def test_negotiation_bounds_are_options_checked_when_the_strategy_is_built(make):
    strategy = make("sct-tlsnego", {"max_pending_negotiations": 5, "negotiation_timeout_s": 9})
    provider = strategy.server("provider", PROVIDER)
    assert (provider.max_negotiations, provider.negotiation_timeout) == (5, 9.0)
    with pytest.raises(ScenarioError) as error:
        make("sct-tlsnego", {"max_pending_negotiations": 0})
    assert error.value.key == "strategy_options.sct-tlsnego.max_pending_negotiations"
    assert "between" in error.value.message


# --- class 8: UsernameToken key derivation bound ------------------------------------------------


def _ut_request(strategy, iterations: int) -> bytes:
    client = strategy.client(CLIENT)
    client.iterations = iterations  # a client (or attacker) asking for this many
    return _sent(client.request(b"x", now=0.0)).data


def test_ut_derived_refuses_an_iteration_count_above_its_bound_before_deriving(make):
    strategy = make("ut-derived")
    provider = strategy.server("provider", PROVIDER)
    step = provider.receive(_ut_request(strategy, 200_000), sender=CLIENT, now=0.0)
    assert _fault_of(step).fault == "wsse:InvalidSecurityToken"
    assert provider.last_refusal == "iterations" and "ut_derive" not in _ops(step)


def test_ut_derived_refuses_a_forged_huge_iteration_count_before_deriving(make):
    strategy = make("ut-derived")
    provider = strategy.server("provider", PROVIDER)
    root = _tree(_ut_request(strategy, 1000))
    root.find(f".//{{{ns.WSSE11}}}Iteration").text = "1000000"
    step = provider.receive(_bytes(root), sender=CLIENT, now=0.0)
    assert _fault_of(step).fault == "wsse:InvalidSecurityToken"
    assert "ut_derive" not in _ops(step)


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
    root = _tree(_ut_request(strategy, 1000))
    token = root.find(f".//{wss.USERNAME_TOKEN}")
    twin = etree.fromstring(etree.tostring(token))
    twin.set(ns.qname(ns.WSU, "Id"), "UT-twin")
    token.addnext(twin)
    step = provider.receive(_bytes(root), sender=CLIENT, now=0.0)
    assert _fault_of(step).fault == "wsse:InvalidSecurityToken"
    assert "ut_derive" not in _ops(step)


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
    assert _fault_of(step).fault == "wsse:InvalidSecurity" and other.last_refusal == "replay"


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
    assert _fault_of(step).fault == "wst:InvalidRequest"
    assert len(provider.contexts) == 1


def test_an_sct_renew_whose_request_type_is_cancel_is_refused(make):
    strategy = make("sct")
    harness = Harness(strategy)
    assert harness.request(b"x", 0.0).results[-1].ok
    provider = harness.servers[PROVIDER]
    rst = trust.build_rst(
        trust.RequestSecurityToken(request_type=RequestType.CANCEL),
        target=sct.context_reference(harness.client.context.identifier),
    )
    data = _context_message(harness, strategy, Action.SCT_RENEW.value, rst)
    step = provider.receive(data, sender=CLIENT, now=1.0)
    assert _fault_of(step).fault == "wst:InvalidRequest"
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
    assert _fault_of(step).fault == "wst:InvalidRequest"


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
    request = _sent(client.request(b"x", now=0.0))
    provider.read_request = lambda data, actions=None: (  # a strategy forgetting the check
        soap.read_envelope(data),
        soap.read_addressing(soap.read_envelope(data)),
    )
    with pytest.raises(UncheckedMessage):
        provider.receive(request.data, sender=CLIENT, now=0.0)


# --- class 8 (client side): a refused reply changes nothing ------------------------------------


@pytest.mark.parametrize("name", ["sct", "sct-tlsnego"])
def test_a_forged_fault_for_another_request_does_not_make_the_client_drop_its_context(make, name):
    harness = _live(make, name)
    client = harness.client
    context = client.context
    _sent(client.request(b"second", now=1.0))
    forged = soap.build_fault(
        BadContextToken("unknown security context"), relates_to="urn:uuid:another-request"
    )
    result = _result(client.receive(forged, sender=PROVIDER, now=1.0))
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
    request = _sent(victim.client.request(b"second", now=1.0))
    response = soap.new_envelope()
    soap.add_addressing(
        response, action="urn:wssim:app:ProcessResponse", relates_to=_message_id(request.data)
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
    result = _result(victim.client.receive(forged, sender=PROVIDER, now=1.0))
    assert not result.ok and result.payload is None
    assert victim.client.context is context
    outcome = victim.request(b"third", 2.0)
    assert outcome.results[-1].ok and outcome.results[-1].recoveries == 0
