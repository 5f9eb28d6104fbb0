"""SOAP 1.1 / 1.2 envelopes, WS-Addressing headers and SOAP faults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from lxml import etree

from sim.errors import FAULTS_BY_CODE, InvalidSecurity, SecurityFault
from sim.wire import ns
from sim.wire.ledger import Ledger, Op
from sim.wire.xmlparse import DEFAULT_LIMITS, ParseLimits, parse, serialize
from sim.wire.xmlutil import (
    children_by_tag,
    escape,
    fragment,
    new_id,
    new_uuid_urn,
    one_child,
    sub,
    whole_text,
)


class SoapVersion(Enum):
    SOAP11 = ns.SOAP11
    SOAP12 = ns.SOAP12

    # A member equals only itself: hashed by identity, in C (Enum's own hash is the name's,
    # in Python, and every message looks its version's strings up).
    __hash__ = object.__hash__

    @property
    def prefix(self) -> str:
        return "s11" if self is SoapVersion.SOAP11 else "s"


_PREFIXES = {version: version.prefix for version in SoapVersion}
#: each version's namespace (a member's ``.value`` is a Python-level property: slow per message)
_URIS = {version: version.value for version in SoapVersion}


class Envelope:
    """A SOAP envelope being built or read: the root and its Header and Body elements.

    One made by :func:`new_envelope` starts as generated text (header blocks and Body content
    spelled exactly as they will be sent) and becomes a tree the first time ``root``,
    ``header`` or ``body`` is touched. Until then a sender may emit it without building a tree
    (:func:`sim.protocol.protection.protect_symmetric` does); both ways give the same bytes.
    """

    __slots__ = ("_body", "_draft", "_header", "_root", "version")

    def __init__(
        self,
        root: etree._Element | None,
        header: etree._Element | None,
        body: etree._Element | None,
        version: SoapVersion,
        draft: Draft | None = None,
    ) -> None:
        self.version = version
        self._root, self._header, self._body = root, header, body
        self._draft = draft

    @property
    def draft(self) -> Draft | None:
        """The envelope's text while it has no tree yet."""
        return self._draft

    @property
    def root(self) -> etree._Element:
        return self._root if self._draft is None else self._tree()[0]

    @property
    def header(self) -> etree._Element:
        return self._header if self._draft is None else self._tree()[1]

    @property
    def body(self) -> etree._Element:
        return self._body if self._draft is None else self._tree()[2]

    def _tree(self) -> tuple[etree._Element, etree._Element, etree._Element]:
        self.to_tree()
        return self._root, self._header, self._body

    def to_tree(self) -> None:
        """Build the tree now (nothing to do for an envelope that has one)."""
        if self._draft is None:
            return
        root = fragment(self._draft.text())
        self._root, self._header, self._body = root, root[0], root[1]
        self._draft = None

    def add_header_text(self, text: str) -> None:
        """Append header blocks spelled by ``text`` (generated, prefixes as in the Envelope)."""
        if self._draft is not None:
            self._draft.headers.append(text)
            return
        prefix = self.version.prefix
        header = f"<{prefix}:Header {_declarations(self.version)}>{text}</{prefix}:Header>"
        self.header.extend(list(fragment(header)))

    def add_body_element(self, element: etree._Element) -> None:
        """Append ``element`` (built on its own, not in a document yet) to the Body; an
        envelope still in text keeps it as text (its serialization and exclusive canonical
        form, both as they read inside this Envelope)."""
        draft = self._draft
        if draft is None or draft.canonical is None:
            self.body.append(element)
            return
        wire = etree.tostring(element).decode()
        bindings = dict(_bindings(self.version))
        if any(bindings.get(p, uri) != uri for p, uri in _DECLARATION.findall(wire)):
            # The element binds one of the Envelope's prefixes to another namespace: which
            # declarations lxml keeps then depends on nesting; let a tree decide.
            self.body.append(element)
            return
        canonical = etree.tostring(element, method="c14n", exclusive=True).decode()
        for prefix, uri in bindings.items():
            declaration = f' xmlns:{prefix}="{uri}"'
            wire = wire.replace(declaration, "")  # lxml drops what the Envelope declares
            if prefix != "a":  # the canonical Body renders the other two itself
                canonical = canonical.replace(declaration, "")
        draft.content.append(wire)
        draft.canonical.append(canonical)

    def add_body_text(self, text: str) -> None:
        """Append to the Body the element ``text`` spells. It must be generated text that is
        at once its exclusive canonical form and what lxml would serialize: declaring on its
        start tag the prefixes it uses (none the Envelope declares) and no other attribute, no
        empty element, no ``"`` or carriage return in text (an application payload is)."""
        draft = self._draft
        if draft is None or draft.canonical is None:
            self.body.append(fragment(text))
        else:
            draft.content.append(text)
            draft.canonical.append(text)

    def to_bytes(self, ledger: Ledger | None = None) -> bytes:
        if self._draft is None:
            return serialize(self._root, ledger)
        data = self._draft.text().encode()
        if ledger is not None:
            ledger.record(Op.XML_SERIALIZE, len(data))
        return data


def _bindings(version: SoapVersion) -> tuple[tuple[str, str], ...]:
    """The prefixes every Envelope declares: SOAP's, WS-Addressing's ``a``, wsu's ``u``."""
    return _BINDINGS[version]


def _declarations(version: SoapVersion) -> str:
    return _DECLARATIONS[version]


# written once per version: every message's text spells them
_BINDINGS = {
    version: ((_PREFIXES[version], _URIS[version]), ("a", ns.WSA), ("u", ns.WSU))
    for version in SoapVersion
}
_DECLARATIONS = {
    version: " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _BINDINGS[version])
    for version in SoapVersion
}


@dataclass
class Draft:
    """An envelope as text: header blocks as they appear under the Header (the Envelope
    declares the SOAP, WS-Addressing and wsu prefixes), the Body's wsu:Id and content."""

    version: SoapVersion
    body_id: str | None
    headers: list[str] = field(default_factory=list)
    #: the Body's children as serialized inside the Envelope
    content: list[str] = field(default_factory=list)
    #: the same in exclusive canonical form, inside the canonical Body (None once replaced)
    canonical: list[str] | None = field(default_factory=list)
    #: wsa:Action's (wsu:Id, exclusive canonical text), once added
    action: tuple[str, str] | None = None
    #: wsa:RelatesTo's (wsu:Id, exclusive canonical text) in a reply (signed with Action)
    relates_to: tuple[str, str] | None = None

    def text(self) -> str:
        """The whole envelope."""
        prefix = self.version.prefix
        body_id = "" if self.body_id is None else f' u:Id="{self.body_id}"'
        # lxml writes an empty element as <x/>
        headers = "".join(self.headers)
        header = (
            f"<{prefix}:Header>{headers}</{prefix}:Header>" if headers else f"<{prefix}:Header/>"
        )
        content = "".join(self.content)
        body = (
            f"<{prefix}:Body{body_id}>{content}</{prefix}:Body>"
            if content
            else f"<{prefix}:Body{body_id}/>"
        )
        return (
            f"<{prefix}:Envelope {_declarations(self.version)}>{header}{body}</{prefix}:Envelope>"
        )

    def serialized_content(self) -> str:
        """The Body's content as lxml serializes each child element on its own (the
        Envelope's namespace declarations repeated after the child's own), which is what
        :func:`sim.wire.xenc.encrypt_element` encrypts."""
        inherited = _bindings(self.version)
        parts = []
        for text in self.content:
            head = _OWN_DECLARATIONS.match(text)
            own = set(_DECLARED_PREFIX.findall(head.group(1)))
            added = "".join(f' xmlns:{p}="{uri}"' for p, uri in inherited if p not in own)
            parts.append(text[: head.end()] + added + text[head.end() :])
        return "".join(parts)

    @property
    def signable(self) -> bool:
        """Whether the Body can be signed from this text (it has an id and its canonical
        form is known)."""
        return self.body_id is not None and self.canonical is not None

    def replace_content(self, text: str) -> None:
        """Put ``text`` (serialized, e.g. an EncryptedData) in place of the Body's content;
        its canonical form is not kept (nothing signs the Body after that)."""
        self.content[:] = [text]
        self.canonical = None

    def canonical_body(self) -> str:
        """The exclusive canonical form of the Body (what its signature digest covers)."""
        prefix = self.version.prefix
        return (
            f'<{prefix}:Body xmlns:{prefix}="{_URIS[self.version]}" xmlns:u="{ns.WSU}" '
            f'u:Id="{self.body_id}">{"".join(self.canonical)}</{prefix}:Body>'
        )


#: A start tag's name and its namespace declarations (libxml2 writes them before attributes)
_OWN_DECLARATIONS = re.compile(r'<[^\s/>]+((?:\s+xmlns(?::[^\s=]+)?="[^"]*")*)')
_DECLARED_PREFIX = re.compile(r"xmlns:([^\s=]+)=")
_DECLARATION = re.compile(r'xmlns:([^\s=]+)="([^"]*)"')


def new_envelope(version: SoapVersion = SoapVersion.SOAP12, *, body_id: bool = True) -> Envelope:
    """An empty envelope with a Header and a Body (given a wsu:Id to be signed)."""
    return Envelope(None, None, None, version, Draft(version, new_id() if body_id else None))


#: Envelope tag -> (version, Header tag, Body tag)
_ENVELOPE_NAMES = {
    ns.qname(v.value, "Envelope"): (v, ns.qname(v.value, "Header"), ns.qname(v.value, "Body"))
    for v in SoapVersion
}


def read_envelope(
    data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, ledger: Ledger | None = None
) -> Envelope:
    """Parse a message securely and locate its Header and Body (exactly one of each)."""
    root = parse(data, limits=limits, ledger=ledger)
    names = _ENVELOPE_NAMES.get(root.tag)
    if names is None:
        raise InvalidSecurity(f"not a SOAP envelope: {root.tag}")
    version, header_tag, body_tag = names
    children = [child for child in root if isinstance(child.tag, str)]
    tags = [child.tag for child in children]
    if tags == [header_tag, body_tag]:
        header, body = children
    elif tags == [body_tag]:
        header = etree.Element(header_tag)
        root.insert(0, header)
        body = children[0]
    else:
        raise InvalidSecurity("a SOAP envelope holds one optional Header then one Body")
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
    prefix = version.prefix
    must_value = "1" if version is SoapVersion.SOAP11 else "true"
    must = f'{prefix}:mustUnderstand="{must_value}"'
    action_id = new_id()
    action_text = escape(action)
    parts = [
        f'<a:Action {must} u:Id="{action_id}">{action_text}</a:Action>'
        f'<a:MessageID u:Id="{new_id()}">{escape(message_id)}</a:MessageID>'
    ]
    relates_id = new_id() if relates_to else None
    if relates_to:
        parts.append(f'<a:RelatesTo u:Id="{relates_id}">{escape(relates_to)}</a:RelatesTo>')
    if reply_to:
        parts.append(
            f'<a:ReplyTo u:Id="{new_id()}"><a:Address>{escape(reply_to)}</a:Address></a:ReplyTo>'
        )
    if to:
        parts.append(f'<a:To {must} u:Id="{new_id()}">{escape(to)}</a:To>')
    draft = envelope.draft
    if draft is not None and any('"' in v or "\r" in v for v in (action, relates_to or "")):
        envelope.to_tree()  # C14N spells such text otherwise than escape(): let a tree do it
        draft = None
    envelope.add_header_text("".join(parts))
    if draft is not None:
        draft.action = (
            action_id,
            f'<a:Action xmlns:a="{ns.WSA}" xmlns:{prefix}="{_URIS[version]}" xmlns:u="{ns.WSU}" '
            f'u:Id="{action_id}" {must}>{action_text}</a:Action>',
        )
        if relates_to:
            draft.relates_to = (
                relates_id,
                f'<a:RelatesTo xmlns:a="{ns.WSA}" xmlns:u="{ns.WSU}" u:Id="{relates_id}">'
                f"{escape(relates_to)}</a:RelatesTo>",
            )
    return Addressing(action, message_id, to, relates_to, reply_to)


def read_addressing(envelope: Envelope) -> Addressing:
    """The WS-Addressing headers (Action required; each header at most once)."""
    found = children_by_tag(envelope.header, _ADDRESSING_HEADERS)

    def value(local: str) -> str | None:
        el = found.get(_WSA_TAGS[local])
        return None if el is None else whole_text(el, f"wsa:{local}")

    reply = found.get(_WSA_TAGS["ReplyTo"])
    reply_to = None
    if reply is not None:
        address = one_child(reply, _WSA_TAGS["Address"], "wsa:ReplyTo/wsa:Address")
        reply_to = whole_text(address, "wsa:ReplyTo/wsa:Address")
    if _WSA_TAGS["Action"] not in found:
        raise InvalidSecurity("wsa:Action is missing")
    return Addressing(
        action=value("Action") or "",
        message_id=value("MessageID") or "",
        to=value("To"),
        relates_to=value("RelatesTo"),
        reply_to=reply_to,
    )


_WSA_TAGS = {
    local: ns.qname(ns.WSA, local)
    for local in ("Action", "MessageID", "To", "RelatesTo", "ReplyTo", "Address")
}
_ADDRESSING_HEADERS = {
    _WSA_TAGS[local]: f"wsa:{local}" for local in _WSA_TAGS if local != "Address"
}


#: The namespace of each fault code prefix of ``sim.errors`` (a fault code is a QName).
FAULT_NAMESPACES = {"wsse": ns.WSSE, "wst": ns.WST, "wsc": ns.WSC}


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
    namespace = FAULT_NAMESPACES[fault.prefix]
    fault_el = sub(envelope.body, ns.qname(env, "Fault"), nsmap={fault.prefix: namespace})
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
    env = _URIS[envelope.version]
    fault_el = one_child(envelope.body, ns.qname(env, "Fault"), "soap:Fault", required=False)
    if fault_el is None:
        return None
    if envelope.version is SoapVersion.SOAP11:
        code_el = one_child(fault_el, "faultcode", "faultcode")
        reason_el = one_child(fault_el, "faultstring", "faultstring", required=False)
    else:
        code = one_child(fault_el, ns.qname(env, "Code"), "Code")
        subcode = one_child(code, ns.qname(env, "Subcode"), "Code/Subcode", required=False)
        if subcode is not None:
            code_el = one_child(subcode, ns.qname(env, "Value"), "Code/Subcode/Value")
        else:
            code_el = one_child(code, ns.qname(env, "Value"), "Code/Value")
        reasons = one_child(fault_el, ns.qname(env, "Reason"), "Reason", required=False)
        texts = () if reasons is None else reasons.iterchildren(ns.qname(env, "Text"))
        reason_el = next(iter(texts), None)
    reason = "" if reason_el is None else whole_text(reason_el, "the fault's reason")[:200]
    qname_text = whole_text(code_el, "the fault code")[:200]
    prefix, _, local = qname_text.rpartition(":")
    namespace = code_el.nsmap.get(prefix or None)
    for cls in FAULTS_BY_CODE.values():
        if cls.local == local and FAULT_NAMESPACES[cls.prefix] == namespace:
            return cls(reason)
    return InvalidSecurity(f"peer answered with fault {qname_text}: {reason}")
