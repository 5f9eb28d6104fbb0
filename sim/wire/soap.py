"""SOAP 1.1 / 1.2 envelopes, WS-Addressing headers and SOAP faults."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lxml import etree

from sim.errors import FAULTS_BY_CODE, InvalidSecurity, SecurityFault
from sim.wire import ns
from sim.wire.ledger import Ledger
from sim.wire.xmlparse import DEFAULT_LIMITS, ParseLimits, parse, serialize
from sim.wire.xmlutil import (
    children_by_tag,
    escape,
    fragment,
    new_id,
    new_uuid_urn,
    one_child,
    sub,
)


class SoapVersion(Enum):
    SOAP11 = ns.SOAP11
    SOAP12 = ns.SOAP12

    @property
    def prefix(self) -> str:
        return "s11" if self is SoapVersion.SOAP11 else "s"


@dataclass
class Envelope:
    """A SOAP envelope being built or read: the root and its Header and Body elements."""

    root: etree._Element
    header: etree._Element
    body: etree._Element
    version: SoapVersion

    def to_bytes(self, ledger: Ledger | None = None) -> bytes:
        return serialize(self.root, ledger)


def new_envelope(version: SoapVersion = SoapVersion.SOAP12, *, body_id: bool = True) -> Envelope:
    """An empty envelope with a Header and a Body (given a wsu:Id to be signed)."""
    prefix = version.prefix
    body_attributes = f' u:Id="{new_id()}"' if body_id else ""
    root = fragment(
        f'<{prefix}:Envelope xmlns:{prefix}="{version.value}" xmlns:a="{ns.WSA}" '
        f'xmlns:u="{ns.WSU}"><{prefix}:Header/><{prefix}:Body{body_attributes}/>'
        f"</{prefix}:Envelope>"
    )
    return Envelope(root, root[0], root[1], version)


def read_envelope(
    data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, ledger: Ledger | None = None
) -> Envelope:
    """Parse a message securely and locate its Header and Body (exactly one of each)."""
    root = parse(data, limits=limits, ledger=ledger)
    for version in SoapVersion:
        if root.tag == ns.qname(version.value, "Envelope"):
            break
    else:
        raise InvalidSecurity(f"not a SOAP envelope: {root.tag}")
    env_ns = version.value
    names = [child.tag for child in root if isinstance(child.tag, str)]
    if names not in (
        [ns.qname(env_ns, "Header"), ns.qname(env_ns, "Body")],
        [ns.qname(env_ns, "Body")],
    ):
        raise InvalidSecurity("a SOAP envelope holds one optional Header then one Body")
    header = one_child(root, ns.qname(env_ns, "Header"), "soap:Header", required=False)
    if header is None:
        header = etree.Element(ns.qname(env_ns, "Header"))
        root.insert(0, header)
    body = one_child(root, ns.qname(env_ns, "Body"), "soap:Body")
    return Envelope(root, header, body, version)


@dataclass(frozen=True)
class Addressing:
    action: str
    message_id: str
    to: str | None = None
    relates_to: str | None = None
    reply_to: str | None = None


def add_addressing(
    envelope: Envelope,
    *,
    action: str,
    to: str | None = None,
    relates_to: str | None = None,
    reply_to: str | None = None,
    message_id: str | None = None,
) -> Addressing:
    """Add WS-Addressing Action, MessageID, To, RelatesTo, ReplyTo (each with a wsu:Id)."""
    message_id = message_id or new_uuid_urn()
    version = envelope.version
    must = f'{version.prefix}:mustUnderstand="{"1" if version is SoapVersion.SOAP11 else "true"}"'
    parts = [
        f'<{version.prefix}:Header xmlns:{version.prefix}="{version.value}" xmlns:a="{ns.WSA}" '
        f'xmlns:u="{ns.WSU}"><a:Action {must} u:Id="{new_id()}">{escape(action)}</a:Action>'
        f'<a:MessageID u:Id="{new_id()}">{escape(message_id)}</a:MessageID>'
    ]
    if relates_to:
        parts.append(f'<a:RelatesTo u:Id="{new_id()}">{escape(relates_to)}</a:RelatesTo>')
    if reply_to:
        parts.append(
            f'<a:ReplyTo u:Id="{new_id()}"><a:Address>{escape(reply_to)}</a:Address></a:ReplyTo>'
        )
    if to:
        parts.append(f'<a:To {must} u:Id="{new_id()}">{escape(to)}</a:To>')
    parts.append(f"</{version.prefix}:Header>")
    envelope.header.extend(list(fragment("".join(parts))))
    return Addressing(action, message_id, to, relates_to, reply_to)


def read_addressing(envelope: Envelope) -> Addressing:
    """The WS-Addressing headers (Action required; each header at most once)."""
    found = children_by_tag(envelope.header, _ADDRESSING_HEADERS)

    def value(local: str) -> str | None:
        el = found.get(ns.qname(ns.WSA, local))
        return None if el is None else (el.text or "").strip()

    reply = found.get(ns.qname(ns.WSA, "ReplyTo"))
    reply_to = None
    if reply is not None:
        address = one_child(reply, ns.qname(ns.WSA, "Address"), "wsa:Address")
        reply_to = (address.text or "").strip()
    if ns.qname(ns.WSA, "Action") not in found:
        raise InvalidSecurity("wsa:Action is missing")
    return Addressing(
        action=value("Action") or "",
        message_id=value("MessageID") or "",
        to=value("To"),
        relates_to=value("RelatesTo"),
        reply_to=reply_to,
    )


_ADDRESSING_HEADERS = {
    ns.qname(ns.WSA, local): f"wsa:{local}"
    for local in ("Action", "MessageID", "To", "RelatesTo", "ReplyTo")
}


def build_fault(
    fault: SecurityFault,
    *,
    version: SoapVersion = SoapVersion.SOAP12,
    relates_to: str | None = None,
    ledger: Ledger | None = None,
) -> bytes:
    """A SOAP fault message carrying ``fault``'s standard code as the (sub)code."""
    envelope = new_envelope(version, body_id=False)
    add_addressing(envelope, action=ns.Action.FAULT.value, relates_to=relates_to)
    env = version.value
    fault_el = sub(envelope.body, ns.qname(env, "Fault"), nsmap={fault.prefix: fault.namespace})
    code_value = f"{fault.prefix}:{fault.local}"
    reason = fault.reason[:200]
    if version is SoapVersion.SOAP11:
        sub(fault_el, "faultcode", text=code_value)
        sub(fault_el, "faultstring", text=reason)
    else:
        code = sub(fault_el, ns.qname(env, "Code"))
        sub(code, ns.qname(env, "Value"), text=f"{version.prefix}:Sender")
        subcode = sub(code, ns.qname(env, "Subcode"))
        sub(subcode, ns.qname(env, "Value"), text=code_value)
        text = sub(sub(fault_el, ns.qname(env, "Reason")), ns.qname(env, "Text"), text=reason)
        text.set(ns.qname(ns.XML, "lang"), "en")
    return envelope.to_bytes(ledger)


def read_fault(envelope: Envelope) -> SecurityFault | None:
    """The typed fault carried by ``envelope``, or None when it is not a fault."""
    env = envelope.version.value
    fault_el = one_child(envelope.body, ns.qname(env, "Fault"), "soap:Fault", required=False)
    if fault_el is None:
        return None
    if envelope.version is SoapVersion.SOAP11:
        code_el = one_child(fault_el, "faultcode", "faultcode")
        reason = (fault_el.findtext("faultstring") or "").strip()
    else:
        code_el = fault_el.find(f"{{{env}}}Code/{{{env}}}Subcode/{{{env}}}Value")
        if code_el is None:
            code_el = one_child(
                one_child(fault_el, ns.qname(env, "Code"), "Code"),
                ns.qname(env, "Value"),
                "Code/Value",
            )
        reason = (fault_el.findtext(f"{{{env}}}Reason/{{{env}}}Text") or "").strip()
    qname_text = (code_el.text or "").strip()
    prefix, _, local = qname_text.rpartition(":")
    namespace = code_el.nsmap.get(prefix or None)
    for cls in FAULTS_BY_CODE.values():
        if cls.local == local and cls.namespace == namespace:
            return cls(reason)
    return InvalidSecurity(f"peer answered with fault {qname_text}: {reason}")
