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

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

#: Roles an actor can play; ``to`` of a Send is one of these.
CLIENT = "client"
STS = "sts"
PROVIDER = "provider"
INTERMEDIARY = "intermediary"
KDC = "kdc"

#: The strategy names fixed by docs/architecture.md.
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
    "kerberos",
    "sct-spnego",
)

#: The attack names fixed by docs/architecture.md (``sim.protocol.adversary`` forges them).
ATTACK_NAMES = (
    "steal-token",
    "replay",
    "wrap",
    "tamper",
    "saml-injection",
    "comment-truncation",
    "reflection",
    "cross-node-replay",
    "replay-flood",
    "padding-oracle",
)

Ops = tuple[tuple[str, int], ...]


class MessageKind(StrEnum):
    """What a message is, for statistics, replay and the documents; its value is the label
    written in the outputs (a member equals its value: ``MessageKind.FAULT == "fault"``)."""

    APP_REQUEST = "app-request"
    APP_RESPONSE = "app-response"
    FAULT = "fault"
    #: a SAML token from an STS
    RST_ISSUE = "rst-issue"
    RSTR_ISSUE = "rstr-issue"
    #: a security context issued under an X.509 (or preset-certificate) bootstrap
    RST_SCT = "rst-sct"
    RSTR_SCT = "rstr-sct"
    RST_RENEW = "rst-renew"
    RSTR_RENEW = "rstr-renew"
    RST_CANCEL = "rst-cancel"
    RSTR_CANCEL = "rstr-cancel"
    #: the legs of a TLSNego handshake (the last one an RSTR collection)
    RST_TLSNEGO = "rst-tlsnego"
    RSTR_TLSNEGO = "rstr-tlsnego"
    RSTRC_TLSNEGO = "rstrc-tlsnego"
    #: Kerberos KDC exchanges (DER, RFC 4120) and their refusal
    KRB_AS_REQ = "krb-as-req"
    KRB_AS_REP = "krb-as-rep"
    KRB_TGS_REQ = "krb-tgs-req"
    KRB_TGS_REP = "krb-tgs-rep"
    KRB_ERROR = "krb-error"
    #: the legs of a SPNEGO negotiation (the last one an RSTR collection with the SCT)
    RST_SPNEGO = "rst-spnego"
    #: a middle leg (NTLM: the CHALLENGE from the provider, the AUTHENTICATE from the client)
    RSTR_SPNEGO = "rstr-spnego"
    RSTRC_SPNEGO = "rstrc-spnego"


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Put ``data`` on the wire towards role ``to``.

    ``kind`` labels the message for statistics and replay; ``fault`` is the fault code
    when the message is a SOAP fault; ``tls`` says the bytes travel inside a TLS connection
    (its record cost is in the ledger already, the engine adds framing bytes and the
    handshake on first use). ``token_service`` marks an exchange with the STS (or an SCT
    issuer) rather than an application message.
    """

    to: str
    data: bytes
    action: str
    kind: MessageKind
    reply: bool = False
    fault: str | None = None
    tls: bool = False
    token_service: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """What one call on an engine produced: events in order, and the ledger of its work."""

    events: tuple[Event, ...] = ()
    ops: Ops = field(default_factory=tuple)


@runtime_checkable
class KeyLog(Protocol):
    """Receives every secret an engine creates or learns, like SSLKEYLOGFILE.

    ``kind`` is one of ``sct-secret``, ``proof-key``, ``derived-key``, ``ut-key``,
    ``session-key``; ``key_id`` is the Id or URI by which messages refer to the key.
    """

    def log(self, kind: str, key_id: str, key: bytes) -> None: ...
