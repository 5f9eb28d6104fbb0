"""The engine base classes every strategy builds on: ``Actor`` (a ledger, X.509 and
derived-key protection with the actor's keys), ``Server`` (the fault boundary), ``Provider``
and ``Client`` (the state machine of ``states.py``, reply binding, self-recovery).

The setup and the well-known addresses live in ``setup.py``, the binding checks in
``binding.py``, the providers' ``ContextCache`` in ``caches.py``, how a handler sends
(``send``) in ``sending.py``; all are importable from here too, as strategies import them."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import ClassVar

from sim.errors import FailedCheck, SecurityFault
from sim.protocol.api import (
    CLIENT,
    PROVIDER,
    AppDone,
    Event,
    MessageKind,
    Send,
    SessionClosed,
    Step,
)
from sim.protocol.binding import (
    MAX_ECHOED_ID,
    PendingReply,
    UncheckedMessage,
    body_element,
    check_reply_to,
    check_request_action,
    require_reply_signed,
)
from sim.protocol.caches import ContextCache
from sim.protocol.sending import app_response, record_tls, send
from sim.protocol.setup import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    CLIENT_IDENTITIES,
    PROVIDER_ADDRESS,
    STS_ADDRESS,
    Setup,
    make_setup,
    option,
)
from sim.protocol.states import Input, Machine, State, Transition, starts
from sim.wire import ns, sc, soap
from sim.wire.checks import ReplayCache
from sim.wire.dsig import VerifiedSignature
from sim.wire.ledger import Ledger

__all__ = [
    "APP_ACTION",
    "APP_RESPONSE_ACTION",
    "CLIENT_IDENTITIES",
    "MAX_ECHOED_ID",
    "PROVIDER_ADDRESS",
    "STS_ADDRESS",
    "Actor",
    "Client",
    "ContextCache",
    "PendingReply",
    "Provider",
    "Server",
    "Setup",
    "UncheckedMessage",
    "app_response",
    "body_element",
    "check_reply_to",
    "check_request_action",
    "make_setup",
    "option",
    "record_tls",
    "require_reply_signed",
    "send",
]


class Actor:
    """An engine with a ledger; ``_step`` hands its events and drained ops to the engine."""

    role: str
    replay: ReplayCache

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.ledger = Ledger()

    def _step(self, events: list[Event]) -> Step:
        return Step(events=tuple(events), ops=self.ledger.drain())

    # Asymmetric (X.509) protection with this actor's identity, trust store and replay cache.
    def open_asymmetric(self, envelope, now: float, *, signer: str | None = None, **extra):
        """Decrypt and verify a message signed with a certificate; ``signer`` is the common
        name the signing certificate must carry."""
        from sim.protocol import protection

        checked = protection.unprotect_asymmetric(
            envelope,
            receiver=extra.pop("receiver", self.identity),
            trust=self.setup.keystore,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
            **extra,
        )
        if (
            signer is not None
            and protection.CertificateRecipient(checked.certificate).common_name != signer
        ):
            raise FailedCheck(f"the message is not signed by the {signer}", check="signer")
        return checked

    def seal_asymmetric(self, envelope, now: float, recipient, **extra) -> bytes:
        """Sign with this actor's certificate and encrypt for ``recipient`` (None: sign only)."""
        from sim.protocol import protection

        return protection.protect_asymmetric(
            envelope,
            sender=self.identity,
            recipient=recipient,
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            keylog=self.setup.log_key,
            **extra,
        )

    def seal_symmetric(
        self, envelope, now: float, secret: bytes, source_reference: Callable, **extra
    ) -> bytes:
        """Sign and encrypt with keys from the shared ``secret``, which the message names by
        ``source_reference()`` (an STR element or its text)."""
        from sim.protocol import protection

        return protection.protect_symmetric(
            envelope,
            secret=secret,
            source_reference=source_reference,
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            keylog=self.setup.log_key,
            **extra,
        )

    def open_symmetric(self, envelope, now: float, secret_for: Callable):
        """Decrypt and verify a message protected with keys from a shared secret
        (``secret_for`` maps the source reference to it, or raises the protocol's fault)."""
        from sim.protocol import protection

        return protection.unprotect_symmetric(
            envelope,
            secret_for=secret_for,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
            # derived keys are directional: a client reads replies, a server requests
            direction=sc.Direction.REPLY if self.role == CLIENT else sc.Direction.REQUEST,
        )


class Server(Actor):
    """Server side: ``handle`` does the work; a SecurityFault becomes a SOAP fault reply.

    ``handle`` reads the request through ``read_request`` (or ``accept_action`` on an
    envelope it parsed), which refuses, before any crypto, a message whose wsa:Action is
    not in ``request_actions`` or that carries wsa:RelatesTo; a server that answers without
    that check raises :class:`UncheckedMessage`. A server that also receives replies (an
    intermediary) checks them with ``accept_reply``. Any exception other than a
    SecurityFault is a bug and propagates."""

    #: the check that refused the last message received, None when it was accepted
    last_refusal: str | None = None
    #: the wsa:Action values this server accepts as requests (never a reply Action)
    request_actions: frozenset[str] = frozenset()
    #: of the message being handled: its MessageID once read, whether it was checked
    _request_id: str | None = None
    _checked: bool = False

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        self.last_refusal = None
        self._request_id = None
        self._checked = False
        try:
            events = self.handle(data, sender, now)
        except SecurityFault as fault:
            self.last_refusal = fault.check
            events = [self._fault(fault, sender, self._request_id)]
        else:
            if not self._checked:
                raise UncheckedMessage(
                    f"{type(self).__name__} answered a message it did not check with "
                    "read_request, accept_action or accept_reply (sim/protocol/base.py)"
                )
        return self._step(events)

    def handle(self, data: bytes, sender: str, now: float) -> list[Event]:
        raise NotImplementedError

    def read_request(
        self, data: bytes, actions: Collection[str] | None = None
    ) -> tuple[soap.Envelope, soap.Addressing]:
        """Parse a request and :meth:`accept_action` it."""
        envelope = soap.read_envelope(data, ledger=self.ledger)
        return envelope, self.accept_action(envelope, actions)

    def accept_action(
        self, envelope: soap.Envelope, actions: Collection[str] | None = None
    ) -> soap.Addressing:
        """The request's addressing, once its Action is one of ``actions`` (by default
        ``request_actions``) and it is no reply (:func:`check_request_action`). Its
        MessageID becomes the RelatesTo of a fault refusing it."""
        addressing = soap.read_addressing(envelope)
        # echoed in a fault only when short: a refusal must not amplify what it refuses
        message_id = addressing.message_id
        self._request_id = message_id if 0 < len(message_id) <= MAX_ECHOED_ID else None
        check_request_action(addressing, self.request_actions if actions is None else actions)
        self._checked = True
        return addressing

    def accept_reply(
        self, envelope: soap.Envelope, *, message_id: str, action: str
    ) -> soap.Addressing:
        """For a server that is itself a client of another (an intermediary): a reply to
        its request ``message_id`` with the reply Action ``action`` (:func:`check_reply_to`;
        then :func:`require_reply_signed` once its signature is verified, if it has one)."""
        addressing = soap.read_addressing(envelope)
        check_reply_to(addressing, message_id=message_id, action=action)
        self._checked = True
        return addressing

    def _fault(self, fault: SecurityFault, sender: str, relates_to: str | None = None) -> Send:
        data = soap.build_fault(fault, relates_to=relates_to, ledger=self.ledger)
        return Send(
            to=sender,
            data=data,
            action=ns.Action.FAULT.value,
            kind=MessageKind.FAULT,
            reply=True,
            fault=fault.code,
        )


class Provider(Server):
    """The service provider: application requests (by default), its own identity, and the
    replay cache of its node (or its farm's)."""

    role = PROVIDER
    request_actions = frozenset({APP_ACTION})

    def __init__(self, setup: Setup, node_id: str, shared: object | None = None) -> None:
        super().__init__(setup)
        self.identity = setup.identity("provider")
        self.replay = setup.replay_cache(self.role, node_id)


class Client(Actor):
    """Client side: one application message at a time, with self-recovery on the faults the
    protocol allows (expired token, unknown security context).

    Reply binding, for every strategy (the names the SAML strategies call too):
      * ``address_request(envelope, action, reply_action, to=..., signed=True)`` adds a
        request's WS-Addressing headers and ``expect_reply``-s its answer;
      * ``expect_reply(message_id, reply_action, signed=True)``: the request now pending,
        the reply Action it expects, whether the reply must be signed (False over TLS or
        for the unsigned TLSNego legs);
      * ``receive`` then calls ``check_reply(envelope)`` before ``on_reply`` (no crypto):
        wsa:RelatesTo is the pending MessageID and wsa:Action the expected one (a SOAP
        fault: Action fault, RelatesTo absent or the pending MessageID); anything else, or
        a reply when nothing is pending, is refused;
      * ``bind_reply(envelope, verified)``, right after a signed reply is verified and
        before acting on it, checks that the signature covers both headers;
        ``open_asymmetric``/``open_symmetric`` call it. A signed reply acted on without it
        raises :class:`UncheckedMessage` (a bug).
    Only a fault the peer sent (and that relates to the pending request) lets the client
    recover (``forget``); a reply the client refuses ends the message, its state intact.
    Server side: ``Server.read_request``/``accept_action``, ``Server.accept_reply``.

    What the client does in each :class:`~sim.protocol.states.State` is its class's
    ``machine`` (``sim/protocol/states.py``): this class looks the handler up and moves to
    the state it leads to; a strategy never sets its state itself."""

    role = CLIENT
    max_recoveries = 2
    #: one application request, its reply; the close sends nothing
    machine: ClassVar[Machine] = Machine(
        [
            starts(State.APP),
            Transition(state=State.APP, on=Input.REPLY, handler="on_reply"),
            Transition(state=State.IDLE, on=Input.CLOSE, handler="close_session"),
        ]
    )

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup)
        self.client_id = client_id
        self.payload: bytes | None = None
        self.recoveries = 0
        self.state = State.IDLE
        #: the exchange under way ends the session (a fault then closes it)
        self.closing = False
        self.pending: PendingReply | None = None
        #: the check that refused the last reply received, None when it was accepted
        self.last_refusal: str | None = None
        self._bound = False

    # The strategy implements these, and the handlers its ``machine`` names.
    def start(self, now: float) -> list[Event]:
        """Begin (or restart) the current application message."""
        raise NotImplementedError

    def on_reply(self, envelope: soap.Envelope, sender: str, now: float) -> list[Event]:
        """Handle the reply to an application request (its RelatesTo and Action already
        checked by ``check_reply``); verify it, ``bind_reply`` it, then act on it."""
        raise NotImplementedError

    def forget(self, fault: SecurityFault) -> bool:
        """Drop the state a recoverable fault invalidates; True if a retry can succeed."""
        return False

    def horizon(self) -> float:
        """The time from which this client would act differently with no new input (a
        cached token's or context's renewal falls due); ``math.inf`` when never."""
        return math.inf

    def close_session(self, now: float) -> list[Event]:
        return [SessionClosed()]

    # Reply binding.
    def address_request(
        self,
        envelope: soap.Envelope,
        action: str,
        reply_action: str,
        *,
        to: str | None = None,
        signed: bool = True,
    ) -> soap.Addressing:
        """Add the request's WS-Addressing headers and expect its reply."""
        sent = soap.add_addressing(envelope, action=action, to=to)
        self.expect_reply(sent.message_id, reply_action, signed=signed)
        return sent

    def expect_reply(self, message_id: str, reply_action: str, *, signed: bool = True) -> None:
        """The request ``message_id`` is now the one pending; its reply has ``reply_action``."""
        self.pending = PendingReply(message_id=message_id, action=reply_action, signed=signed)

    def check_reply(self, envelope: soap.Envelope, *, fault: bool = False) -> soap.Addressing:
        """Refuse a reply (``fault``: a SOAP fault) that does not answer the pending request."""
        addressing = soap.read_addressing(envelope)
        pending = self.pending
        if pending is None:
            raise FailedCheck("a reply when no request is pending", check="relates-to")
        if not fault:
            check_reply_to(addressing, message_id=pending.message_id, action=pending.action)
        elif addressing.relates_to not in (None, pending.message_id):
            # A server refusing a request it could not read names none: faults are unsigned,
            # so binding them could not be checked anyway; one naming another is refused.
            raise FailedCheck("the fault relates to another request", check="relates-to")
        elif addressing.action != ns.Action.FAULT.value:
            raise FailedCheck("a SOAP fault without the fault Action", check="action")
        return addressing

    def bind_reply(self, envelope: soap.Envelope, verified: VerifiedSignature) -> None:
        """The verified signature of the reply covers its wsa:RelatesTo and wsa:Action."""
        require_reply_signed(envelope, verified)
        self._bound = True

    def open_asymmetric(self, envelope, now: float, *, signer: str | None = None, **extra):
        checked = super().open_asymmetric(envelope, now, signer=signer, **extra)
        self.bind_reply(envelope, checked.verified)
        return checked

    def open_symmetric(self, envelope, now: float, secret_for: Callable):
        checked = super().open_symmetric(envelope, now, secret_for)
        self.bind_reply(envelope, checked.verified)
        return checked

    # The engine calls these.
    def request(self, payload: bytes, *, now: float) -> Step:
        # A new message starts from idle: the engine may have abandoned the last one
        # (a timeout), whose reply, if it ever comes, no longer relates to anything pending.
        self.payload = payload
        self.recoveries = 0
        self.pending = None
        self.closing = False
        self.state = State.IDLE
        return self._step(self._guarded(Input.REQUEST, now))

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        self.last_refusal = None
        try:
            events = self._on_reply_data(data, sender, now)
        except SecurityFault as fault:  # this client refuses the reply
            self.last_refusal = fault.check
            events = self._end(fault)
        return self._step(events)

    def close(self, *, now: float) -> Step:
        self.closing = True
        self.pending = None
        self.state = State.IDLE
        return self._step(self._guarded(Input.CLOSE, now))

    def recover(self, fault: SecurityFault, now: float) -> list[Event]:
        """The handler of a fault the peer sent: the request again when the fault allows a
        retry and the client could drop what it invalidated; else the exchange fails."""
        if (
            not self.closing
            and fault.recoverable
            and self.recoveries < self.max_recoveries
            and self.forget(fault)
        ):
            self.recoveries += 1
            return self.start(now)
        return self._end(fault)

    def _fire(self, on: Input, *args) -> list[Event]:
        """Run the handler the machine names for the current state and ``on``; move on."""
        transition = self.machine.get(self.state, on)
        if transition is None:
            raise FailedCheck(f"nothing expected in state {self.state}", check="relates-to")
        events = getattr(self, transition.handler)(*args)
        self.state = self.machine.enter(transition, events)
        return events

    def _on_reply_data(self, data: bytes, sender: str, now: float) -> list[Event]:
        envelope = soap.read_envelope(data, ledger=self.ledger)
        peer_fault = soap.read_fault(envelope)
        self.check_reply(envelope, fault=peer_fault is not None)
        pending, self.pending = self.pending, None
        if peer_fault is not None:
            return self._fire(Input.FAULT, peer_fault, now)
        self._bound = False
        events = self._fire(Input.REPLY, envelope, sender, now)
        if pending.signed and not self._bound:
            raise UncheckedMessage(
                f"{type(self).__name__} acted on a signed reply without bind_reply "
                "(expect_reply(..., signed=False) for an unsigned one; sim/protocol/base.py)"
            )
        return events

    def _guarded(self, on: Input, now: float) -> list[Event]:
        try:
            return self._fire(on, now)
        except SecurityFault as fault:
            return self._end(fault)

    def _end(self, fault: SecurityFault) -> list[Event]:
        """The exchange under way fails (a close still closes the session)."""
        self.pending = None
        self.state = State.IDLE
        if self.closing:
            self.closing = False
            return [SessionClosed()]
        return [AppDone(ok=False, fault=fault.code, recoveries=self.recoveries)]

    def done(self, payload: bytes) -> AppDone:
        """The application message succeeded with the response ``payload``."""
        return AppDone(ok=True, payload=payload, recoveries=self.recoveries)
