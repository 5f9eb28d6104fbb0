"""Client engines carry out their state tables (``sim/protocol/states.py``): every move a
client makes is a row of its table, and a move the table does not list is a bug."""

from __future__ import annotations

import pytest

from sim.protocol import STRATEGY_NAMES
from sim.protocol.api import AppDone, MessageKind, Send
from sim.protocol.harness import Harness
from sim.protocol.registry import strategy_entry
from sim.protocol.states import AWAITS, IllegalTransition, Input, Machine, State, Transition
from sim.protocol.strategies.x509 import X509Client


def _client_states(harness: Harness) -> list[tuple[str, str, State]]:
    """Per delivery: who sent it, its kind, and the client's state as it travels."""
    seen: list[tuple[str, str, State]] = []

    def watch(delivery):
        seen.append((delivery.sender, delivery.send.kind, harness.client.state))

    harness.tamper = watch
    return seen


def test_an_sct_client_waits_in_the_state_its_last_request_leads_to(make):
    harness = Harness(make("sct", {"sct_lifetime_s": 100.0, "renew_at": 0.5}))
    seen = _client_states(harness)
    harness.request(b"a", 0.0)
    assert harness.client.state is State.IDLE
    harness.request(b"b", 60.0)  # past the renewal point
    harness.close(61.0)
    assert [(kind, state) for _, kind, state in seen] == [
        ("rst-sct", State.ISSUE),
        ("rstr-sct", State.ISSUE),
        ("app-request", State.APP),
        ("app-response", State.APP),
        ("rst-renew", State.RENEW),
        ("rstr-renew", State.RENEW),
        ("app-request", State.APP),
        ("app-response", State.APP),
        ("rst-cancel", State.CANCEL),
        ("rstr-cancel", State.CANCEL),
    ]
    assert harness.client.state is State.IDLE


def test_a_tlsnego_client_walks_the_handshake_states(make):
    harness = Harness(make("sct-tlsnego"))
    seen = _client_states(harness)
    harness.request(b"a", 0.0)
    assert [(kind, state) for sender, kind, state in seen if sender == "client-0"] == [
        ("rst-tlsnego", State.TLS_SERVER_FLIGHT),
        ("rstr-tlsnego", State.TLS_FINAL),
        ("app-request", State.APP),
    ]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_waiting_state_of_a_table_is_one_a_request_kind_leads_to(name):
    machine = strategy_entry(name).client.machine
    waiting = {row.state for row in machine.transitions} - {State.IDLE}
    assert waiting <= set(AWAITS.values())
    for state in waiting:
        assert machine.get(state, Input.REPLY) is not None
        assert machine.get(state, Input.FAULT) is not None
    assert machine.get(State.IDLE, Input.REQUEST) and machine.get(State.IDLE, Input.CLOSE)


class _WanderingClient(X509Client):
    """Sends an application request where its table says the close sends nothing."""

    machine = Machine(
        [
            Transition(state=State.IDLE, on=Input.REQUEST, handler="start", to=(State.APP,)),
            Transition(state=State.APP, on=Input.REPLY, handler="on_reply"),
            Transition(state=State.IDLE, on=Input.CLOSE, handler="start"),
        ]
    )


def test_a_handler_going_where_its_row_does_not_allow_is_a_bug_not_a_fault(make):
    strategy = make("x509")
    client = _WanderingClient(strategy.setup, "client-0")
    client.payload = b"x"
    with pytest.raises(IllegalTransition, match="close"):
        client.close(now=0.0)


def test_a_step_that_neither_ends_the_exchange_nor_sends_one_request_is_a_bug():
    send = Send(to="provider", data=b"", action="urn:a", kind=MessageKind.APP_RESPONSE)
    with pytest.raises(IllegalTransition, match="app-response"):
        Machine.outcome([send])
    assert Machine.outcome([AppDone(ok=True)]) is State.IDLE


def test_a_table_with_two_rows_for_one_state_and_input_is_refused():
    start = Transition(state=State.IDLE, on=Input.REQUEST, handler="start")
    close = Transition(state=State.IDLE, on=Input.CLOSE, handler="close_session")
    with pytest.raises(ValueError, match="two transitions"):
        Machine([start, close, start])


def test_a_table_waiting_in_a_state_that_takes_no_reply_is_refused():
    rows = [
        Transition(state=State.IDLE, on=Input.REQUEST, handler="start", to=(State.RENEW,)),
        Transition(state=State.IDLE, on=Input.CLOSE, handler="close_session"),
    ]
    with pytest.raises(ValueError, match="renew"):
        Machine(rows)


def test_a_request_after_an_abandoned_exchange_starts_from_idle(make):
    harness = Harness(make("x509"))
    harness.client.request(b"lost", now=0.0)  # the engine gave up on it (a timeout)
    assert harness.client.state is State.APP
    outcome = harness.request(b"next", 1.0)
    assert [r.payload for r in outcome.results] == [b"next"]
    assert harness.client.state is State.IDLE
