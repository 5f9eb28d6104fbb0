"""What every strategy's engines share: the setup (keys, suite, users), the server-side
fault boundary, the client-side recovery loop, and the caches."""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from sim.errors import (
    BadContextToken,
    InvalidSecurity,
    ScenarioError,
    SecurityFault,
)
from sim.protocol.api import CLIENT, AppDone, Event, KeyLog, Send, SessionClosed, Step
from sim.wire import ns, soap
from sim.wire.keys import DEFAULT_BITS, Identity, KeyStore
from sim.wire.ledger import Ledger, Op
from sim.wire.suites import AlgorithmSuite, suite

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
    common = {"suite", "rsa_bits", "response_bytes"}
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
    bits = option(options, "rsa_bits", DEFAULT_BITS, int, choices=(1024, 2048, 3072, 4096))
    return Setup(name, KeyStore(key_dir), chosen, options, keylog, bits)


#: Exceptions a malformed peer message can raise below the typed checks (lxml, base64...).
MALFORMED = (ValueError, TypeError, KeyError, IndexError, etree.LxmlError)


class Actor:
    """An engine with a ledger; ``_step`` hands its events and drained ops to the engine."""

    role: str

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.ledger = Ledger()

    def _step(self, events: list[Event]) -> Step:
        return Step(tuple(events), self.ledger.drain())

    # Asymmetric (X.509) protection with this actor's identity, trust store and replay cache.
    def open_asymmetric(self, envelope, now: float, *, signer: str | None = None, **extra):
        """Decrypt and verify a message signed with a certificate; ``signer`` is the common
        name the signing certificate must carry."""
        from sim.errors import FailedCheck
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


class Server(Actor):
    """Server side: ``handle`` does the work; any fault becomes a SOAP fault reply."""

    #: the check that refused the last message received, None when it was accepted
    last_refusal: str | None = None

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        self.last_refusal = None
        try:
            events = self.handle(data, sender, now)
        except SecurityFault as fault:
            self.last_refusal = fault.check
            events = [self._fault(fault, sender, data)]
        except MALFORMED as exc:
            # A malformed message that slipped past a check: refuse it, never crash.
            refusal = InvalidSecurity(f"malformed message: {exc!r}"[:200], check="malformed")
            self.last_refusal = refusal.check
            events = [self._fault(refusal, sender, data)]
        return self._step(events)

    def handle(self, data: bytes, sender: str, now: float) -> list[Event]:
        raise NotImplementedError

    def _fault(self, fault: SecurityFault, sender: str, request: bytes | None = None) -> Send:
        data = soap.build_fault(fault, relates_to=_message_id(request), ledger=self.ledger)
        return Send(
            to=sender,
            data=data,
            action=ns.Action.FAULT.value,
            kind="fault",
            reply=True,
            fault=fault.code,
        )


def _message_id(request: bytes | None) -> str | None:
    """The MessageID of a refused request, when it can be read, for the fault's RelatesTo."""
    if not request:
        return None
    try:
        return soap.read_addressing(soap.read_envelope(request)).message_id or None
    except (SecurityFault, ValueError):
        return None


def read_reply(data: bytes, ledger: Ledger) -> soap.Envelope:
    """Parse a reply; a SOAP fault is raised as its typed exception."""
    envelope = soap.read_envelope(data, ledger=ledger)
    fault = soap.read_fault(envelope)
    if fault is not None:
        raise fault
    return envelope


class Client(Actor):
    """Client side: one application message at a time, with self-recovery on the faults the
    protocol allows (expired token, unknown security context)."""

    role = CLIENT
    max_recoveries = 2

    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup)
        self.client_id = client_id
        self.payload: bytes | None = None
        self.recoveries = 0
        self.awaiting: str | None = None
        self.closing = False

    # The strategy implements these three.
    def start(self, now: float) -> list[Event]:
        """Begin (or restart) the current application message."""
        raise NotImplementedError

    def on_reply(self, envelope: soap.Envelope, sender: str, now: float) -> list[Event]:
        """Handle a verified-good reply to what ``self.awaiting`` names."""
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

    # The engine calls these.
    def request(self, payload: bytes, *, now: float) -> Step:
        self.payload = payload
        self.recoveries = 0
        return self._guarded(lambda: self.start(now), now)

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        def handle():
            envelope = read_reply(data, self.ledger)
            return self.on_reply(envelope, sender, now)

        return self._guarded(handle, now)

    def close(self, *, now: float) -> Step:
        self.closing = True
        return self._guarded(lambda: self.close_session(now), now)

    def _guarded(self, action, now: float) -> Step:
        try:
            events = action()
        except SecurityFault as fault:
            events = self._on_fault(fault, now)
        except MALFORMED as exc:
            events = self._on_fault(InvalidSecurity(f"malformed reply: {exc!r}"[:200]), now)
        return self._step(events)

    def _on_fault(self, fault: SecurityFault, now: float) -> list[Event]:
        if self.closing:
            self.closing = False
            self.awaiting = None
            return [SessionClosed()]
        if fault.recoverable and self.recoveries < self.max_recoveries and self.forget(fault):
            self.recoveries += 1
            return self.start(now)
        self.awaiting = None
        return [AppDone(ok=False, fault=fault.code, recoveries=self.recoveries)]

    def done(self, payload: bytes) -> AppDone:
        self.awaiting = None
        return AppDone(ok=True, payload=payload, recoveries=self.recoveries)


def record_tls(ledger: Ledger, data: bytes) -> None:
    """The record-layer work of sending or receiving ``data`` over TLS."""
    ledger.record(Op.TLS_RECORD, len(data))


class ContextCache:
    """Security contexts a provider knows, by identifier: bounded (LRU) and with an idle
    timeout, as production stacks keep them. Lookups are recorded as ``cache_lookup``."""

    def __init__(self, capacity: int = 10_000, idle_timeout: float = 600.0) -> None:
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self._entries: OrderedDict[str, tuple[object, float]] = OrderedDict()
        self.evictions = 0

    def put(self, key: str, value: object, now: float) -> None:
        self._entries[key] = (value, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evictions += 1

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
        self._entries[key] = (value, now)
        self._entries.move_to_end(key)
        return value

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
