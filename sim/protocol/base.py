"""What every strategy's engines share: the setup (keys, suite, users), the server-side
fault boundary, the client-side recovery loop, and the caches."""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from lxml import etree

from sim.errors import (
    BadContextToken,
    FailedCheck,
    InvalidRequest,
    ScenarioError,
    SecurityFault,
)
from sim.protocol.api import (
    CLIENT,
    AppDone,
    Event,
    KeyLog,
    MessageKind,
    Send,
    SessionClosed,
    Step,
)
from sim.protocol.states import Input, Machine, State, Transition
from sim.wire import ns, sc, soap, suites
from sim.wire.checks import ReplayCache, require_signed
from sim.wire.dsig import VerifiedSignature
from sim.wire.keys import DEFAULT_BITS, Identity, KeyStore
from sim.wire.ledger import Ledger, Op
from sim.wire.suites import AlgorithmSuite, suite
from sim.wire.xmlutil import children_by_tag

PROVIDER_ADDRESS = "https://provider.example/service"
STS_ADDRESS = "https://sts.example/trust"
APP_ACTION = "urn:wssim:app:Process"
APP_RESPONSE_ACTION = "urn:wssim:app:ProcessResponse"
CLIENT_IDENTITIES = 4


@dataclass
class Setup:
    """Keys, algorithm suite, users and options shared by all actors of one strategy."""

    name: str
    keystore: KeyStore
    suite: AlgorithmSuite
    options: dict
    keylog: KeyLog | None = None
    rsa_bits: int = DEFAULT_BITS
    passwords: dict[str, str] = field(default_factory=dict)
    #: objects built once per strategy and shared by its actors (TLS contexts)
    shared: dict[str, object] = field(default_factory=dict)
    #: farm-wide replay stores by role (``Strategy.share_replay_cache``); a role without
    #: one gives each of its nodes its own cache
    replay_stores: dict[str, ReplayCache] = field(default_factory=dict)
    #: ``strategy_options.data_encryption``: "aes-cbc" (the suite's) or "aes-gcm" (XML
    #: Encryption 1.1 AES-GCM in its place: ``suite.encryption`` is then the GCM algorithm)
    data_encryption: str = "aes-cbc"

    def identity(self, actor: str) -> Identity:
        return self.keystore.identity(actor, self.rsa_bits)

    def client_identity(self, client_id: str) -> tuple[str, Identity]:
        """Clients share a small pool of certificates (key generation is costly)."""
        name = f"client-{zlib.crc32(client_id.encode()) % CLIENT_IDENTITIES}"
        return name, self.identity(name)

    def username(self, client_id: str) -> tuple[str, str]:
        user = f"user-{zlib.crc32(client_id.encode()) % 1000:03d}"
        password = f"password-of-{user}"
        self.passwords[user] = password
        return user, password

    def log_key(self, kind: str, key_id: str, key: bytes) -> None:
        if self.keylog is not None:
            self.keylog.log(kind, key_id, key)

    def certificates(self) -> dict[str, bytes]:
        names = ["sts", "provider", "intermediary"] + [
            f"client-{i}" for i in range(CLIENT_IDENTITIES)
        ]
        return {name: self.identity(name).pem for name in names}

    def replay_cache(self, role: str, node_id: str) -> ReplayCache:
        """The replay cache of server node ``node_id`` of ``role``: its farm's shared store,
        or a cache of its own."""
        store = self.replay_stores.get(role)
        return store if store is not None else ReplayCache()


def option(options: Mapping, name: str, default, kind, *, choices=None, low=None, high=None):
    """Read one strategy option, checked; a bad value is a ScenarioError naming it."""
    value = options.get(name, default)
    key = f"strategy_options.{name}"
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ScenarioError(key, f"must be {kind.__name__}, got {value!r}")
    if choices is not None and value not in choices:
        raise ScenarioError(key, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ScenarioError(key, f"must be between {low} and {high}, got {value!r}")
    return value


def make_setup(name: str, options: Mapping | None, keylog, key_dir, known: set[str]) -> Setup:
    options = dict(options or {})
    common = {"suite", "rsa_bits", "response_bytes", "data_encryption"}
    unknown = sorted(set(options) - known - common)
    if unknown:
        allowed = ", ".join(sorted(known | common))
        raise ScenarioError(
            f"strategy_options.{unknown[0]}", f"unknown option for {name}; allowed: {allowed}"
        )
    suite_name = option(options, "suite", "Basic256", str)
    try:
        chosen = suite(suite_name)
    except ValueError as exc:
        raise ScenarioError("strategy_options.suite", str(exc)) from None
    data_encryption = option(
        options, "data_encryption", "aes-cbc", str, choices=suites.DATA_ENCRYPTIONS
    )
    try:  # the suite every actor encrypts with, and the one algorithm its receivers accept
        chosen = suites.with_data_encryption(chosen, data_encryption)
    except ValueError as exc:
        raise ScenarioError("strategy_options.data_encryption", str(exc)) from None
    bits = option(options, "rsa_bits", DEFAULT_BITS, int, choices=(1024, 2048, 3072, 4096))
    return Setup(
        name, KeyStore(key_dir), chosen, options, keylog, bits, data_encryption=data_encryption
    )


_ACTION = ns.qname(ns.WSA, "Action")
_RELATES_TO = ns.qname(ns.WSA, "RelatesTo")
_BOUND_HEADERS = {_ACTION: "wsa:Action", _RELATES_TO: "wsa:RelatesTo"}
#: the longest request MessageID a fault repeats as its RelatesTo
MAX_ECHOED_ID = 256


def body_element(envelope: soap.Envelope, what: str) -> etree._Element:
    """The one element the Body of a WS-Trust message holds (``what`` names it), or
    wst:InvalidRequest."""
    children = [child for child in envelope.body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise InvalidRequest(f"the Body must hold one {what}, found {len(children)} elements")
    return children[0]


class UncheckedMessage(RuntimeError):
    """A strategy acted on a message without the binding checks of this module (a bug in
    the strategy, never a refusal: it must fail the tests, not become a SOAP fault)."""


def check_request_action(addressing: soap.Addressing, actions: Collection[str]) -> None:
    """Refuse, before any crypto, a message that is not a request this server serves: its
    wsa:Action is not one of ``actions``, or it carries wsa:RelatesTo (it is a reply, e.g. a
    response reflected back to its sender)."""
    if addressing.relates_to is not None:
        raise InvalidRequest("a reply (it carries wsa:RelatesTo) sent as a request", check="action")
    if addressing.action not in actions:
        raise InvalidRequest(f"unsupported action {addressing.action[:100]}", check="action")


def check_reply_to(addressing: soap.Addressing, *, message_id: str, action: str) -> None:
    """Refuse, before any crypto, a reply whose wsa:RelatesTo is not ``message_id`` (the
    request it answers) or whose wsa:Action is not ``action`` (the reply Action expected)."""
    if addressing.relates_to != message_id:
        raise FailedCheck("the reply relates to no request pending here", check="relates-to")
    if addressing.action != action:
        raise FailedCheck(f"unexpected reply action {addressing.action[:100]}", check="action")


def require_reply_signed(envelope: soap.Envelope, verified: VerifiedSignature) -> None:
    """The reply's wsa:RelatesTo and wsa:Action (the headers :func:`check_reply_to` read)
    are themselves covered by its verified signature."""
    found = children_by_tag(envelope.header, _BOUND_HEADERS)
    for tag, what in _BOUND_HEADERS.items():
        element = found.get(tag)
        if element is None:
            raise FailedCheck(f"the reply has no {what}", check="relates-to")
        require_signed(verified, element, what)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingReply:
    """The one request a client waits on: its MessageID, the reply Action it expects, and
    whether that reply must be signed over wsa:RelatesTo and wsa:Action."""

    message_id: str
    action: str
    signed: bool = True


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
            Transition(state=State.IDLE, on=Input.REQUEST, handler="start", to=(State.APP,)),
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


def app_response(to: str, data: bytes, *, tls: bool = False) -> list[Event]:
    """The provider's answer to an application request: one reply Send of ``data``."""
    return [
        Send(
            to=to,
            data=data,
            action=APP_RESPONSE_ACTION,
            kind=MessageKind.APP_RESPONSE,
            reply=True,
            tls=tls,
        )
    ]


def record_tls(ledger: Ledger, data: bytes) -> None:
    """The record-layer work of sending or receiving ``data`` over TLS."""
    ledger.record(Op.TLS_RECORD, len(data))


class ContextCache:
    """Security contexts a provider knows, by identifier: bounded (LRU) and with an idle
    timeout, as production stacks keep them. Lookups are recorded as ``cache_lookup``.

    ``get`` only looks a context up; ``touch`` marks it used once the message that named it
    has passed every check, so a refused message changes neither its idle timer nor its
    place in the LRU order."""

    def __init__(self, capacity: int = 10_000, idle_timeout: float = 600.0) -> None:
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self._entries: OrderedDict[str, tuple[object, float]] = OrderedDict()

    def put(self, key: str, value: object, now: float) -> None:
        self._entries[key] = (value, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def get(self, key: str, now: float, ledger: Ledger) -> object:
        """The context, or wsc:BadContextToken when unknown, evicted or idle too long."""
        ledger.record(Op.CACHE_LOOKUP, 0)
        # One answer for unknown, evicted and idle contexts, as a peer cannot tell them apart
        # (and replay fidelity models an idle eviction as a node new to the session).
        entry = self._entries.get(key)
        if entry is None:
            raise BadContextToken("unknown security context", check="context")
        value, last_used = entry
        if now - last_used > self.idle_timeout:
            del self._entries[key]
            raise BadContextToken("unknown security context", check="context")
        return value

    def touch(self, key: str, now: float) -> None:
        """Context ``key`` was used by an accepted message at ``now``."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], now)
            self._entries.move_to_end(key)

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
