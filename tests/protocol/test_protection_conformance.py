"""What our senders write, checked on real messages of every strategy against the WS-I Basic
Security Profile 1.1 rules the writer owns: the Security header's order (R5205, WSS 1.1
section 5: every token precedes each reference to it) and the wsse11:TokenType of a reference
to an EncryptedKey (R3069)."""

from __future__ import annotations

import pytest
from lxml import etree

from sim.protocol import STRATEGY_NAMES
from sim.protocol.harness import Harness
from sim.wire import layout, ns
from sim.wire.ns import TokenType, ValueType
from sim.wire.xmlutil import get_id

VARIANTS = [(name, {}) for name in STRATEGY_NAMES] + [
    ("sct-tlsnego", {"tlsnego": False}),
    ("hok-symmetric", {"proof": "computed-key"}),
    ("sct", {"derived_keys": False}),
]
SECURITY = ns.qname(ns.WSSE, "Security")
STR = ns.qname(ns.WSSE, "SecurityTokenReference")
REFERENCE = ns.qname(ns.WSSE, "Reference")
KEY_IDENTIFIER = ns.qname(ns.WSSE, "KeyIdentifier")
TOKEN_TYPE = ns.qname(ns.WSSE11, "TokenType")
ENCRYPTED_KEY = ns.qname(ns.XENC, "EncryptedKey")
ENCRYPTED_DATA = ns.qname(ns.XENC, "EncryptedData")
DATA_REFERENCE = ns.qname(ns.XENC, "DataReference")
#: the ValueTypes of a reference to an EncryptedKey (by its Id, by its SHA-1)
EK_VALUE_TYPES = {ValueType.ENCRYPTED_KEY.value, ValueType.ENCRYPTED_KEY_SHA1.value}


def _messages(make, name: str, options: dict) -> list[etree._Element]:
    outcome = Harness(make(name, options)).session([b"one", b"two", b"three"])
    assert not any(d.send.fault for d in outcome.deliveries)
    # a Kerberos exchange with the KDC is no SOAP message
    return [etree.fromstring(d.send.data) for d in outcome.deliveries if d.send.data[:1] == b"<"]


def _security(root: etree._Element) -> etree._Element | None:
    return next(root.iter(SECURITY), None)


def order_violations(root: etree._Element) -> list[str]:
    """Each reference in a Security header child to a token the same header holds at or
    after it (BSP R5205), and each encrypted header block before the ReferenceList naming
    it (a receiver walking the header in order would meet it undecryptable)."""
    security = _security(root)
    if security is None:
        return []
    position = {get_id(child): index for index, child in enumerate(security)}
    position.pop(None, None)
    found = []
    for index, child in enumerate(security):
        for reference in child.iter(REFERENCE, DATA_REFERENCE):
            uri = reference.get("URI") or ""
            target = position.get(uri[1:]) if uri.startswith("#") else None
            if target is None:
                continue
            if reference.tag == REFERENCE and target >= index:
                found.append(f"{etree.QName(child).localname} refers to a later {uri}")
            if reference.tag == DATA_REFERENCE and target <= index:
                found.append(f"{uri} precedes the ReferenceList that names it")
    return found


def ek_references(root: etree._Element) -> list[etree._Element]:
    """Every STR of the message naming an EncryptedKey (by ValueType or by its Id)."""
    ids = {get_id(el) for el in root.iter(ENCRYPTED_KEY)} - {None}
    out = []
    for ref in root.iter(STR):
        for child in ref.iter(REFERENCE, KEY_IDENTIFIER):
            uri = child.get("URI") or ""
            if child.get("ValueType") in EK_VALUE_TYPES or uri[1:] in ids:
                out.append(ref)
    return out


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v))
def test_every_token_precedes_each_reference_to_it_in_every_message(make, name, options):
    messages = _messages(make, name, options)
    checked = 0
    for root in messages:
        assert order_violations(root) == []
        security = _security(root)
        checked += 0 if security is None else sum(1 for _ in security.iter(STR))
    if name not in ("bearer", "bearer-per-message"):  # TLS alone: no token references
        assert checked > 0


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v))
def test_every_reference_to_an_encrypted_key_says_its_token_type(make, name, options):
    for root in _messages(make, name, options):
        for ref in ek_references(root):
            assert ref.get(TOKEN_TYPE) == TokenType.ENCRYPTED_KEY.value


def test_the_encrypted_key_bootstrap_names_its_key_by_token_type_both_ways(make):
    """sct-tlsnego without TLSNego: the request's DerivedKeyTokens name the EncryptedKey by
    its Id, the reply's by its SHA-1; both are checked, not skipped."""
    messages = _messages(make, "sct-tlsnego", {"tlsnego": False})
    kinds = {
        child.get("ValueType") for root in messages for ref in ek_references(root) for child in ref
    }
    assert kinds == EK_VALUE_TYPES


def test_an_encrypted_username_token_follows_the_keys_and_the_reference_list(make):
    """sct-tlsnego sends its UsernameToken encrypted in the header: after the DerivedKeyToken
    whose key encrypts it and the ReferenceList naming it, before the Signature."""
    roots = _messages(make, "sct-tlsnego", {})
    securities = [security for security in map(_security, roots) if security is not None]
    headers = [
        [etree.QName(child).localname for child in security]
        for security in securities
        if any(child.tag == ENCRYPTED_DATA for child in security)
    ]
    assert headers
    for names in headers:
        assert names[-3:] == ["ReferenceList", "EncryptedData", "Signature"]
        assert names.index("DerivedKeyToken") < names.index("EncryptedData")


def test_the_header_order_the_writer_follows_is_the_fast_readers_layout():
    """One order: the fast reader's pattern is the writer's order without the parts a plain
    derived-key message does not carry."""
    plain = [layout.Part.TIMESTAMP, layout.Part.SIGNING_KEY, layout.Part.ENCRYPTING_KEY]
    plain += [layout.Part.REFERENCE_LIST, layout.Part.SIGNATURE]
    assert [p for p in layout.HEADER_ORDER if p in plain] == plain
    assert len(layout.SECURITY.children) == len(plain)
    parts = {part: f"<{index}/>" for index, part in enumerate(reversed(layout.HEADER_ORDER))}
    written = layout.header_children(parts)
    assert written == "".join(parts[part] for part in layout.HEADER_ORDER)


def test_the_order_check_finds_a_token_after_its_reference():
    """The check itself: a DerivedKeyToken placed after the EncryptedData its key decrypts
    (the order sct-tlsnego wrote before) is found."""
    wsse, wsc, xenc_ns, ds = ns.WSSE, ns.WSC, ns.XENC, ns.DS
    root = etree.fromstring(
        f'<o:Security xmlns:o="{wsse}" xmlns:u="{ns.WSU}" xmlns:sc="{wsc}" '
        f'xmlns:xenc="{xenc_ns}" xmlns:ds="{ds}">'
        '<xenc:EncryptedData Id="ED-1"><ds:KeyInfo><o:SecurityTokenReference>'
        '<o:Reference URI="#DK-1"/></o:SecurityTokenReference></ds:KeyInfo></xenc:EncryptedData>'
        '<sc:DerivedKeyToken u:Id="DK-1"/>'
        '<xenc:ReferenceList><xenc:DataReference URI="#ED-1"/></xenc:ReferenceList>'
        "</o:Security>"
    )
    assert order_violations(root) == [
        "EncryptedData refers to a later #DK-1",
        "#ED-1 precedes the ReferenceList that names it",
    ]
