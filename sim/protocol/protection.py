"""Message protection shared by the strategies: the application payload, and (re-exported
here, where the strategies use them) the sending side of ``sim.protocol.protect`` —
asymmetric (X.509 sign + EncryptedKey) and symmetric (DerivedKeyTokens, HMAC, AES) — and
the strict receiving side of ``sim.protocol.unprotect``.

Everything here does the real work through the wire layer and records it in a ledger.
"""

from __future__ import annotations

from lxml import etree

from sim.errors import InvalidSecurity, InvalidSecurityToken
from sim.protocol.protect import (
    DEFAULT_SUITE,
    CertificateRecipient,
    protect_asymmetric,
    protect_symmetric,
    security_header,
)
from sim.protocol.unprotect import Unprotected, unprotect_asymmetric, unprotect_symmetric
from sim.wire import ns
from sim.wire.ns import EncryptionAlg, SignatureAlg
from sim.wire.soap import Envelope
from sim.wire.xmlutil import b64, unb64, whole_text

PAYLOAD = ns.qname(ns.APP, "Payload")


def put_payload(envelope: Envelope, payload: bytes, local: str = "Request") -> None:
    """The application payload, base64 in an app element of the Body."""
    envelope.add_body_text(
        f'<app:{local} xmlns:app="{ns.APP}"><app:Payload>{b64(payload)}</app:Payload></app:{local}>'
    )


def get_payload(envelope: Envelope) -> bytes:
    """The application payload :func:`put_payload` wrote, read strictly: the Body holds one
    element of the application's namespace holding one app:Payload, whose whole text
    (:func:`~sim.wire.xmlutil.whole_text`: a comment C14N would drop is refused) is the
    payload in base64. Anything else there is refused, not skipped."""
    holders = list(envelope.body)
    if (
        len(holders) != 1
        or not isinstance(holders[0].tag, str)
        or etree.QName(holders[0]).namespace != ns.APP
    ):
        raise InvalidSecurity("the Body carries no application payload", check="payload")
    children = list(holders[0])
    if (
        len(children) != 1
        or children[0].tag != PAYLOAD
        or (holders[0].text or "").strip()
        or (children[0].tail or "").strip()
    ):
        raise InvalidSecurity(
            "the Body's application element is not one app:Payload", check="payload"
        )
    return unb64(whole_text(children[0], "app:Payload"), "app:Payload")


__all__ = [
    "DEFAULT_SUITE",
    "PAYLOAD",
    "CertificateRecipient",
    "EncryptionAlg",
    "InvalidSecurityToken",
    "SignatureAlg",
    "Unprotected",
    "b64",
    "get_payload",
    "protect_asymmetric",
    "protect_symmetric",
    "put_payload",
    "security_header",
    "unb64",
    "unprotect_asymmetric",
    "unprotect_symmetric",
]
