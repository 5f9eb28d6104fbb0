"""WS-SecureConversation 1.3: SecurityContextToken and DerivedKeyToken."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidSecurityToken
from sim.wire import ns
from sim.wire.ledger import Ledger, Op
from sim.wire.wss import STR, TokenReference, read_str
from sim.wire.xmlutil import (
    b64,
    children_by_tag,
    ensure_id,
    escape,
    faults_as,
    fragment,
    fresh_bytes,
    new_id,
    new_uuid_urn,
    required,
    sub,
    text_of,
    unb64,
)

SCT = ns.qname(ns.WSC, "SecurityContextToken")
DKT = ns.qname(ns.WSC, "DerivedKeyToken")
MAX_DKT_LENGTH = 1024


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
    """The text of a wsc:DerivedKeyToken (for :func:`~sim.wire.xmlutil.fragment`) whose
    source is the serialized STR ``reference``, and its wsu:Id. Give ``offset`` or
    ``generation`` (not both)."""
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


def build_dkt(
    reference: etree._Element,
    *,
    length: int = 32,
    nonce: bytes | None = None,
    offset: int | None = 0,
    generation: int | None = None,
    label: bytes | None = None,
) -> tuple[etree._Element, bytes]:
    """A wsc:DerivedKeyToken referring (by the STR ``reference``) to its derivation source.

    Returns the element and the nonce. Give ``offset`` or ``generation`` (not both).
    """
    nonce = nonce if nonce is not None else fresh_bytes(16)
    text, _ = dkt_text(
        etree.tostring(reference).decode(),
        length=length,
        nonce=nonce,
        offset=offset,
        generation=generation,
        label=label,
    )
    return fragment(text), nonce


_FIELDS = {
    ns.qname(ns.WSC, local): local for local in ("Offset", "Generation", "Length", "Label", "Nonce")
}
_DKT_PARTS = {STR: "wsse:SecurityTokenReference", **{t: f"wsc:{n}" for t, n in _FIELDS.items()}}


def _int(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidSecurityToken(f"{what} must be a non-negative integer")
    return int(value)


@faults_as(InvalidSecurityToken)
def read_dkt(dkt: etree._Element) -> DerivedKeyToken:
    if dkt.tag != DKT:
        raise InvalidSecurityToken(f"expected wsc:DerivedKeyToken, got {dkt.tag}")
    parts = children_by_tag(dkt, _DKT_PARTS)
    reference = read_str(required(parts, STR, "wsse:SecurityTokenReference"))
    fields = {_FIELDS[tag]: (el.text or "").strip() for tag, el in parts.items() if tag != STR}
    offset = _int(fields.get("Offset"), "wsc:Offset")
    generation = _int(fields.get("Generation"), "wsc:Generation")
    if offset is not None and generation is not None:
        raise InvalidSecurityToken("wsc:Offset and wsc:Generation are exclusive")
    length = _int(fields.get("Length"), "wsc:Length")
    length = 32 if length is None else length
    if not 1 <= length <= MAX_DKT_LENGTH:
        raise InvalidSecurityToken(f"wsc:Length must be 1..{MAX_DKT_LENGTH}")
    if "Nonce" not in fields:
        raise InvalidSecurityToken("wsc:Nonce is missing")
    nonce = unb64(fields["Nonce"], "wsc:Nonce")
    if not 1 <= len(nonce) <= 128:
        raise InvalidSecurityToken("wsc:Nonce must hold 1 to 128 bytes")
    label = fields.get("Label")
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
    reading its own token back)."""
    if ledger is not None:
        ledger.record(Op.P_SHA1, length)
    return crypto.derive_key(
        secret,
        nonce=nonce,
        length=length,
        offset=offset,
        generation=generation,
        label=label if label is not None else ns.DKT_LABEL,
    )
