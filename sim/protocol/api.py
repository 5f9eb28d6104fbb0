"""The sans-I/O contract between protocol engines and the simulation engine.

Every actor of a strategy (client, STS, provider, intermediary) is a plain object that takes
bytes and returns a :class:`Step`: the events it produces (messages to send, application
results) and the operation ledger of the real work it just did. Nothing here knows about
time except the ``now`` it is given (simulated seconds, plus the node's clock skew), and
nothing sleeps, blocks or touches a socket; the engine moves the bytes and charges the
ledger (h11's style).

Routing: engines are told the *node name* of each message's sender (``client-3``,
``intermediary-0``; a node's role is the part before the last ``-``). A :class:`Send` with
``reply=True`` goes to the node named in ``to`` (the sender of the message being answered,
or of an earlier one, as an intermediary answers its client once the provider has
answered); otherwise ``to`` is a role and the engine picks a node of that role (load
balancer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

#: Roles an actor can play; ``to`` of a Send is one of these.
CLIENT = "client"
STS = "sts"
PROVIDER = "provider"
INTERMEDIARY = "intermediary"
ROLES = (CLIENT, INTERMEDIARY, STS, PROVIDER)

#: The strategy names fixed by DESIGN.md.
STRATEGY_NAMES = (
    "x509",
    "bearer",
    "bearer-per-message",
    "hok-symmetric",
    "hok-public",
    "sender-vouches",
    "sct",
    "sct-tlsnego",
    "ut-derived",
)

Ops = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Send:
    """Put ``data`` on the wire towards role ``to``.

    ``kind`` labels the message for statistics and replay (``app-request``, ``rst-sct``,
    ``rstr-sct``, ``fault``...); ``fault`` is the fault code when the message is a SOAP
    fault; ``tls`` says the bytes travel inside a TLS connection (its record cost is in the
    ledger already, the engine adds framing bytes and the handshake on first use).
    ``token_service`` marks an exchange with the STS (or an SCT issuer) rather than an
    application message.
    """

    to: str
    data: bytes
    action: str
    kind: str
    reply: bool = False
    fault: str | None = None
    tls: bool = False
    token_service: bool = False


@dataclass(frozen=True, slots=True)
class AppDone:
    """Client side: one application message is finished, verified or failed."""

    ok: bool
    payload: bytes | None = None
    fault: str | None = None
    #: how many times the client recovered by itself (new token / context) for it
    recoveries: int = 0


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """Client side: ``close()`` has finished (e.g. the SCT Cancel was answered)."""


def role_of(node: str) -> str:
    """The role of a node name (``sts-2`` -> ``sts``); a bare role is its own role."""
    head, sep, tail = node.rpartition("-")
    return head if sep and tail.isdigit() else node


Event = Send | AppDone | SessionClosed


@dataclass(frozen=True, slots=True)
class Step:
    """What one call on an engine produced: events in order, and the ledger of its work."""

    events: tuple[Event, ...] = ()
    ops: Ops = field(default_factory=tuple)


@runtime_checkable
class ActorEngine(Protocol):
    """A server-side actor (STS node, provider node, intermediary node)."""

    role: str

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        """Handle one incoming message from the node named ``sender``."""
        ...


@runtime_checkable
class ClientEngine(Protocol):
    """The client side of a strategy, one per simulated client identity."""

    role: str

    def request(self, payload: bytes, *, now: float) -> Step:
        """Start one application message carrying ``payload`` (may first talk to an STS)."""
        ...

    def receive(self, data: bytes, *, sender: str, now: float) -> Step:
        """Handle a response; ends with :class:`AppDone` once the application message is done."""
        ...

    def close(self, *, now: float) -> Step:
        """End the session (SCT Cancel where the strategy has one); ends with SessionClosed."""
        ...

    def horizon(self) -> float:
        """The time from which the client would act differently with no new input (a cached
        token's renewal falls due), ``math.inf`` when never: replay fidelity records a new
        situation for a message that starts past it."""
        ...


@runtime_checkable
class Strategy(Protocol):
    """A session strategy: a factory of its actors, sharing one key/trust setup."""

    name: str
    #: the server roles that take part, e.g. ("sts", "provider")
    roles: tuple[str, ...]

    def client(self, client_id: str) -> ClientEngine: ...

    def server(self, role: str, node_id: str, *, shared: object | None = None) -> ActorEngine:
        """A server actor; ``shared`` is state shared across a farm (e.g. one SCT cache)."""
        ...

    def shared_state(self, role: str) -> object | None:
        """A new farm-wide shared state for ``role`` (shared SCT cache), or None."""
        ...

    def share_replay_cache(self, role: str, store: object | None = None) -> object:
        """Give every ``role`` server made from now on one farm-wide replay store (``store``,
        or a new one); returns it. Without it each server node keeps its own."""
        ...

    def idle_timeout(self, role: str) -> float:
        """How long a ``role`` node keeps a session's state unused (``math.inf``: forever)."""
        ...

    def context_capacity(self, role: str) -> int | None:
        """How many sessions' security contexts a ``role`` node (or a farm-wide shared
        cache) holds at most; None when the role keeps none."""
        ...


StrategyOptions = Mapping[str, object]


@runtime_checkable
class KeyLog(Protocol):
    """Receives every secret an engine creates or learns, like SSLKEYLOGFILE.

    ``kind`` is one of ``sct-secret``, ``proof-key``, ``derived-key``, ``ut-key``,
    ``session-key``; ``key_id`` is the Id or URI by which messages refer to the key.
    """

    def log(self, kind: str, key_id: str, key: bytes) -> None: ...


KEY_KINDS = ("sct-secret", "proof-key", "derived-key", "ut-key", "session-key")
