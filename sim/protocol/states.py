"""Client engines as state machines, written as data (in the style of h11's ``_state.py``).

A client is in one :class:`State` at a time: idle, or waiting for the reply to the one
request it has in flight. Each strategy's client class holds a :class:`Machine`: a table
from (state, :class:`Input`) to the handler that does the work and the states that work may
leave the client in. ``sim/protocol/base.py`` only carries the table out: it looks the
handler up, runs it, and moves to the state the handler's outcome names:

* an ``AppDone`` or ``SessionClosed`` among its events: back to idle (an exchange may end,
  done or failed, from any transition);
* otherwise the state that waits for the reply to the request it sent
  (:data:`AWAITS`, by the request's :class:`~sim.protocol.api.MessageKind`).

A move the table does not list is a bug in the strategy (:class:`IllegalTransition`), never
a refusal of a peer's message. ``python -m sim.protocol.document`` prints every table into
``docs/strategies.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sim.protocol.api import AppDone, Event, MessageKind, Send, SessionClosed


class State(StrEnum):
    """Where a client is: idle, or waiting for the reply to one request."""

    IDLE = "idle"
    #: waits for a token or a security context issued (RSTR)
    ISSUE = "issue"
    #: waits for the server's TLS flight of a TLSNego handshake (leg #2)
    TLS_SERVER_FLIGHT = "tls-server-flight"
    #: waits for the end of a TLSNego handshake: token and Authenticator (leg #4)
    TLS_FINAL = "tls-final"
    #: waits for a TGT from the KDC (AS-REP)
    KDC_AS = "kdc-as"
    #: waits for a service ticket from the KDC (TGS-REP)
    KDC_TGS = "kdc-tgs"
    #: waits for the next leg of a SPNEGO negotiation (the last one carries the context)
    SPNEGO = "spnego"
    #: waits for the end of an NTLM negotiation in SPNEGO: token and Authenticator (leg #4)
    SPNEGO_FINAL = "spnego-final"
    #: waits for the response to an application request
    APP = "app"
    #: waits for a renewed security context
    RENEW = "renew"
    #: waits for the cancellation of the security context
    CANCEL = "cancel"


class Input(StrEnum):
    """What happens to a client."""

    #: the engine starts an application message (``request``)
    REQUEST = "request"
    #: the engine ends the session (``close``)
    CLOSE = "close"
    #: a reply to the pending request (its RelatesTo and Action already checked)
    REPLY = "reply"
    #: a SOAP fault answering the pending request: recover if the fault allows, or fail
    FAULT = "fault"


#: The state a client enters by sending a request of each kind: it waits for the reply.
AWAITS: dict[MessageKind, State] = {
    MessageKind.APP_REQUEST: State.APP,
    MessageKind.RST_ISSUE: State.ISSUE,
    MessageKind.RST_SCT: State.ISSUE,
    MessageKind.RST_TLSNEGO: State.TLS_SERVER_FLIGHT,
    MessageKind.RSTR_TLSNEGO: State.TLS_FINAL,
    MessageKind.RST_RENEW: State.RENEW,
    MessageKind.RST_CANCEL: State.CANCEL,
    MessageKind.KRB_AS_REQ: State.KDC_AS,
    MessageKind.KRB_TGS_REQ: State.KDC_TGS,
    MessageKind.RST_SPNEGO: State.SPNEGO,
    MessageKind.RSTR_SPNEGO: State.SPNEGO_FINAL,
}

#: The handler every machine runs on a fault (``Client.recover``).
RECOVER = "recover"


class IllegalTransition(RuntimeError):
    """A client handler left the client in a state its table does not allow (a bug in the
    strategy, never a refusal: it must fail the tests, not become a SOAP fault)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """In ``state``, on ``on``, the client runs its method ``handler``; the exchange then
    ends (idle) or waits in one of ``to``."""

    state: State
    on: Input
    handler: str
    to: tuple[State, ...] = ()
    #: when the handler goes to which state, for the documentation
    note: str = ""


def starts(*to: State, note: str = "") -> Transition:
    """The row every client's table begins with: in idle, a request runs ``start``, which
    ends the exchange or waits in one of ``to``."""
    return Transition(state=State.IDLE, on=Input.REQUEST, handler="start", to=to, note=note)


class Machine:
    """A client's transition table. On a fault, every waiting state recovers by running the
    request handler again (or fails): those rows are added here, as the base client
    handles faults the same way for every strategy."""

    def __init__(self, transitions: Iterable[Transition]) -> None:
        rows: dict[tuple[State, Input], Transition] = {}
        for row in transitions:
            key = (row.state, row.on)
            if key in rows:
                raise ValueError(f"two transitions for {row.state} on {row.on}")
            if row.on is Input.FAULT:
                raise ValueError("fault transitions are the machine's own")
            rows[key] = row
        start = rows.get((State.IDLE, Input.REQUEST))
        if start is None or (State.IDLE, Input.CLOSE) not in rows:
            raise ValueError("a client machine starts requests and closes from idle")
        for state in self._waiting(rows.values()):
            rows[(state, Input.FAULT)] = Transition(
                state=state,
                on=Input.FAULT,
                handler=RECOVER,
                to=start.to,
                note="recoverable fault: the request again; otherwise the exchange fails",
            )
        for row in rows.values():
            for state in row.to:
                if state is not State.IDLE and (state, Input.REPLY) not in rows:
                    raise ValueError(f"{row.handler} may wait in {state}, which takes no reply")
        self._rows = rows

    @staticmethod
    def _waiting(rows: Iterable[Transition]) -> list[State]:
        """Every state some transition waits in, in the order the table names them."""
        seen: dict[State, None] = {}
        for row in rows:
            for state in row.to:
                if state is not State.IDLE:
                    seen.setdefault(state, None)
        return list(seen)

    def get(self, state: State, on: Input) -> Transition | None:
        """The transition of ``state`` on ``on``, or None when the table has none."""
        return self._rows.get((state, on))

    @property
    def transitions(self) -> Sequence[Transition]:
        """Every transition, the table's rows in order, then the fault rows."""
        return tuple(self._rows.values())

    @staticmethod
    def outcome(events: Sequence[Event]) -> State:
        """The state a handler's ``events`` leave the client in."""
        for event in events:
            if isinstance(event, (AppDone, SessionClosed)):
                return State.IDLE
        sends = [event for event in events if isinstance(event, Send)]
        if len(sends) != 1 or sends[0].kind not in AWAITS:
            raise IllegalTransition(
                "a client step must end the exchange or send one request, got "
                + ", ".join(getattr(e, "kind", type(e).__name__) for e in events)
            )
        return AWAITS[sends[0].kind]

    def enter(self, transition: Transition, events: Sequence[Event]) -> State:
        """The state after ``transition`` produced ``events``, checked against the table."""
        state = self.outcome(events)
        if state is not State.IDLE and state not in transition.to:
            raise IllegalTransition(
                f"{transition.handler} went from {transition.state} on {transition.on} to "
                f"{state}; the table allows idle or {', '.join(transition.to) or 'nothing'}"
            )
        return state
