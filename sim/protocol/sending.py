"""How a handler sends: :func:`send` (its one message, whose kind says whether it is an
exchange with a token service), :func:`app_response` (the provider's answer) and
:func:`record_tls` (the TLS record work of a message sent or received over TLS)."""

from __future__ import annotations

from sim.protocol.api import Event, MessageKind, Send
from sim.protocol.setup import APP_RESPONSE_ACTION
from sim.wire.ledger import Ledger, Op

#: the kinds of application messages and faults; every other kind is a token service's
_NOT_TOKEN_SERVICE = frozenset(
    {MessageKind.APP_REQUEST, MessageKind.APP_RESPONSE, MessageKind.FAULT}
)


def send(
    to: str,
    data: bytes,
    *,
    action: str,
    kind: MessageKind,
    reply: bool = False,
    tls: bool = False,
) -> list[Event]:
    """A handler's one message: ``data`` towards role ``to`` (a reply: to that node), an
    exchange with a token service unless ``kind`` is an application message."""
    return [
        Send(
            to=to,
            data=data,
            action=str(action),
            kind=kind,
            reply=reply,
            tls=tls,
            token_service=kind not in _NOT_TOKEN_SERVICE,
        )
    ]


def app_response(to: str, data: bytes, *, tls: bool = False) -> list[Event]:
    """The provider's answer to an application request: one reply Send of ``data``."""
    return send(
        to, data, action=APP_RESPONSE_ACTION, kind=MessageKind.APP_RESPONSE, reply=True, tls=tls
    )


def record_tls(ledger: Ledger, data: bytes) -> None:
    """The record-layer work of sending or receiving ``data`` over TLS."""
    ledger.record(Op.TLS_RECORD, len(data))
