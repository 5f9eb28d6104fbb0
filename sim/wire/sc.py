"""WS-SecureConversation 1.3: SecurityContextToken and DerivedKeyToken.

Derived keys are directional (as WCF keeps them): the DerivedKeyTokens of a request carry
the wsc:Label of the client-to-service direction, those of a reply the service-to-client
one, so a message reflected back to its sender derives other keys there and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidSecurity, InvalidSecurityToken
from sim.wire import ns, rules
from sim.wire.ledger import Ledger, Op
from sim.wire.wss import STR, TokenReference, read_str
from sim.wire.xmlutil import (
    b64,
    children_by_tag,
    ensure_id,
    escape,
    faults_as,
    new_id,
    new_uuid_urn,
    required,
    sub,
    text_of,
    unb64,
    whole_text,
)

SCT = ns.qname(ns.WSC, "SecurityContextToken")
DKT = ns.qname(ns.WSC, "DerivedKeyToken")
#: the one derivation algorithm (WS-SC 1.3 section 7), also the default of the attribute
DK_P_SHA1 = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/dk/p_sha1"
#: Bounds on what a peer's DerivedKeyToken may ask a receiver to compute (bytes of P_SHA-1
#: output before and of the key; characters of the label; bytes of the nonce): the token is
#: read before anything is authenticated, and without them it cost up to a MiB of P_SHA-1.
MAX_DKT_LENGTH = 128
MAX_DKT_OFFSET = 1024
MAX_DKT_LABEL = 128
MAX_DKT_NONCE = 128


class Direction(Enum):
    """Which way a message protected with derived keys travels."""

    REQUEST = "request"  # client to service
    REPLY = "reply"  # service to client

    # A member equals only itself: hashed by identity, in C (Enum's own hash is the name's,
    # in Python; every message looks its direction's label up).
    __hash__ = object.__hash__


#: The wsc:Label each direction's DerivedKeyTokens carry and derive with.
LABELS: dict[Direction, bytes] = {
    Direction.REQUEST: b"WS-SecureConversation:client-to-service",
    Direction.REPLY: b"WS-SecureConversation:service-to-client",
}


@dataclass(frozen=True)
class SecurityContextToken:
    identifier: str
    instance: str | None
    element: etree._Element


def build_sct(identifier: str | None = None, instance: str | None = None) -> etree._Element:
    """A wsc:SecurityContextToken with a wsu:Id and an Identifier URI."""
    sct = etree.Element(SCT, nsmap={"sc": ns.WSC, "u": ns.WSU})
    ensure_id(sct, prefix="SCT-")
    sub(sct, ns.qname(ns.WSC, "Identifier"), text=identifier or new_uuid_urn())
    if instance is not None:
        sub(sct, ns.qname(ns.WSC, "Instance"), text=instance)
    return sct


@faults_as(InvalidSecurityToken)
def read_sct(sct: etree._Element) -> SecurityContextToken:
    if sct.tag != SCT:
        raise InvalidSecurityToken(f"expected wsc:SecurityContextToken, got {sct.tag}")
    identifier = text_of(sct, ns.qname(ns.WSC, "Identifier"), "wsc:Identifier")
    if not identifier:
        raise InvalidSecurityToken("wsc:Identifier is empty")
    instance = text_of(sct, ns.qname(ns.WSC, "Instance"), "wsc:Instance", required=False)
    return SecurityContextToken(identifier, instance, sct)


@dataclass(frozen=True)
class DerivedKeyToken:
    reference: TokenReference
    nonce: bytes
    length: int
    offset: int | None
    generation: int | None
    label: bytes | None
    element: etree._Element

    @property
    def id(self) -> str | None:
        return self.element.get(ns.qname(ns.WSU, "Id"))


def dkt_text(
    reference: str,
    *,
    length: int = 32,
    nonce: bytes,
    offset: int | None = 0,
    generation: int | None = None,
    label: bytes | None = None,
    dkt_id: str | None = None,
) -> tuple[str, str]:
    """A wsc:DerivedKeyToken whose source is the STR ``reference`` (its text), and its
    wsu:Id. Give ``offset`` or ``generation`` (not both). The caller knows the key without
    reading the token back (:func:`derive_key` with the same fields)."""
    if (offset is None) == (generation is None):
        raise ValueError("give exactly one of offset and generation")
    if generation is not None:
        position = f"<sc:Generation>{generation}</sc:Generation>"
    else:
        position = f"<sc:Offset>{offset}</sc:Offset>"
    label_el = "" if label is None else f"<sc:Label>{escape(label.decode('utf-8'))}</sc:Label>"
    dkt_id = dkt_id or new_id("DK-")
    text = (
        f'<sc:DerivedKeyToken xmlns:sc="{ns.WSC}" xmlns:u="{ns.WSU}" u:Id="{escape(dkt_id)}">'
        f"{reference}{position}<sc:Length>{length}</sc:Length>{label_el}"
        f"<sc:Nonce>{b64(nonce)}</sc:Nonce></sc:DerivedKeyToken>"
    )
    return text, dkt_id


_FIELDS = {
    ns.qname(ns.WSC, local): local for local in ("Offset", "Generation", "Length", "Label", "Nonce")
}
_DKT_PARTS = {STR: "wsse:SecurityTokenReference", **{t: f"wsc:{n}" for t, n in _FIELDS.items()}}


def check_length(length: int) -> int:
    """A DerivedKeyToken's wsc:Length, within the bounds a receiver computes."""
    if not 1 <= length <= MAX_DKT_LENGTH:
        raise InvalidSecurityToken(f"wsc:Length must be 1..{MAX_DKT_LENGTH}", check="derived-key")
    return length


def key_offset(offset: int | None, generation: int | None, length: int) -> int:
    """The position of the key in the P_SHA-1 output (wsc:Offset, or wsc:Generation times
    wsc:Length), within the bound a receiver computes."""
    if offset is not None and generation is not None:
        raise InvalidSecurityToken(
            "wsc:Offset and wsc:Generation are exclusive", check="derived-key"
        )
    start = (offset or 0) if generation is None else generation * length
    if start > MAX_DKT_OFFSET:
        raise InvalidSecurityToken(
            f"the derived key starts past byte {MAX_DKT_OFFSET} of its P_SHA-1 output",
            check="derived-key",
        )
    return start


def check_nonce(nonce: bytes) -> bytes:
    if not 1 <= len(nonce) <= MAX_DKT_NONCE:
        raise InvalidSecurityToken(
            f"wsc:Nonce must hold 1 to {MAX_DKT_NONCE} bytes", check="derived-key"
        )
    return nonce


def check_direction(label: bytes | None, direction: Direction) -> None:
    """Refuse a DerivedKeyToken whose wsc:Label is not the one of ``direction`` (the other
    direction's: a reflected message). A request may also carry none (WS-SC's default
    label, which WSS4J derives with and writes no Label for): our own senders always write
    a directional one, so no reply of ours can be reflected as such a request."""
    if label == LABELS[direction] or (label is None and direction is Direction.REQUEST):
        return
    raise InvalidSecurityToken(
        f"the DerivedKeyToken is not one of a {direction.value} (wsc:Label)",
        check="key-direction",
    )


@faults_as(InvalidSecurityToken)
def read_dkt(dkt: etree._Element) -> DerivedKeyToken:
    """A DerivedKeyToken read strictly: only the schema's children (a repeated or unknown
    one is refused), each value whole (:func:`~sim.wire.xmlutil.whole_text`), numbers and
    sizes within the bounds above, the P_SHA-1 algorithm."""
    if dkt.tag != DKT:
        raise InvalidSecurityToken(f"expected wsc:DerivedKeyToken, got {dkt.tag}")
    algorithm = dkt.get("Algorithm")
    if algorithm is not None and algorithm != DK_P_SHA1:
        raise InvalidSecurityToken(
            f"derivation algorithm {algorithm[:100]!r} is not supported", check="algorithm"
        )
    parts = children_by_tag(dkt, _DKT_PARTS)
    for child in dkt:
        if child.tag not in _DKT_PARTS:
            raise InvalidSecurity(f"unexpected {child.tag!s:.100} in wsc:DerivedKeyToken")
    reference = read_str(required(parts, STR, "wsse:SecurityTokenReference"))
    fields = {
        _FIELDS[tag]: whole_text(el, f"wsc:{_FIELDS[tag]}")
        for tag, el in parts.items()
        if tag != STR
    }
    length = rules.token_number(fields.get("Length"), "wsc:Length")
    length = check_length(32 if length is None else length)
    offset = rules.token_number(fields.get("Offset"), "wsc:Offset")
    generation = rules.token_number(fields.get("Generation"), "wsc:Generation")
    key_offset(offset, generation, length)
    if "Nonce" not in fields:
        raise InvalidSecurityToken("wsc:Nonce is missing")
    nonce = check_nonce(unb64(fields["Nonce"], "wsc:Nonce"))
    label = fields.get("Label")
    if label is not None and not 1 <= len(label) <= MAX_DKT_LABEL:
        raise InvalidSecurityToken(
            f"wsc:Label must hold 1 to {MAX_DKT_LABEL} characters", check="derived-key"
        )
    return DerivedKeyToken(
        reference,
        nonce,
        length,
        offset,
        generation,
        label.encode("utf-8") if label is not None else None,
        dkt,
    )


def derive(dkt: DerivedKeyToken, secret: bytes, ledger: Ledger | None = None) -> bytes:
    """The key a DerivedKeyToken names, from its source's ``secret``."""
    return derive_key(
        secret,
        nonce=dkt.nonce,
        length=dkt.length,
        offset=dkt.offset or 0,
        generation=dkt.generation,
        label=dkt.label,
        ledger=ledger,
    )


def derive_key(
    secret: bytes,
    *,
    nonce: bytes,
    length: int,
    offset: int = 0,
    generation: int | None = None,
    label: bytes | None = None,
    ledger: Ledger | None = None,
) -> bytes:
    """The key a DerivedKeyToken with these fields names (the sender knows them without
    reading its own token back). The ledger is charged the P_SHA-1 output computed: the
    bytes before the key (its offset) as well as the key's."""
    if ledger is not None:
        ledger.record(Op.P_SHA1, length + (offset if generation is None else generation * length))
    return crypto.derive_key(
        secret,
        nonce=nonce,
        length=length,
        offset=offset,
        generation=generation,
        label=label if label is not None else ns.DKT_LABEL,
    )
