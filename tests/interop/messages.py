"""What a message holds, read with lxml only (no wssim code): its Security header, the
tokens its keys come from, and tampered copies for the negative controls."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from lxml import etree

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
#: the ValueTypes of a KeyIdentifier naming an assertion (SAML Token Profile 1.1 §3.4.1)
SAML_TOKEN_PROFILE = "oasis-wss-saml-token-profile-1."


def security_header(root: etree._Element) -> etree._Element | None:
    return next(root.iter(f"{{{WSSE}}}Security"), None)


def assertions(root: etree._Element) -> list[etree._Element]:
    return [*root.iter(f"{{{SAML2}}}Assertion"), *root.iter(f"{{{SAML1}}}Assertion")]


def keyed_by_assertion(root: etree._Element) -> bool:
    """Whether a key of the message's own protection is named by a SAML assertion: a
    SecurityTokenReference of the Security header, outside the assertions, naming one by ID
    (an assertion of the message, or one sent earlier: by a SAML KeyIdentifier, or by a
    Reference whose STR has a SAML TokenType). A reference in the Body (an RSTR's
    RequestedAttachedReference) is content, not a key."""
    header = security_header(root)
    if header is None:
        return False
    ids = {a.get("ID") or a.get("AssertionID") for a in assertions(root)}
    inside = {e for a in assertions(root) for e in a.iter()}
    for reference in header.iter(f"{{{WSSE}}}SecurityTokenReference"):
        if reference in inside:
            continue
        identifiers = list(reference.iter(f"{{{WSSE}}}KeyIdentifier"))
        if any(SAML_TOKEN_PROFILE in (k.get("ValueType") or "") for k in identifiers):
            return True
        if SAML_TOKEN_PROFILE in (reference.get(f"{{{WSSE11}}}TokenType") or ""):
            return True  # a Reference to an assertion, carried or not (its URI)
        named = {(k.text or "").strip() for k in identifiers}
        named |= {(r.get("URI") or "").lstrip("#") for r in reference.iter(f"{{{WSSE}}}Reference")}
        if named & ids:
            return True
    return False


def is_signed(root: etree._Element) -> bool:
    header = security_header(root)
    return header is not None and header.find(f"{{{DS}}}Signature") is not None


def encrypted_parts(root: etree._Element) -> int:
    """EncryptedData elements outside SAML assertions (an assertion's own encrypted key
    material is the assertion's, not the message's)."""
    inside = {e for a in assertions(root) for e in a.iter()}
    return sum(1 for e in root.iter(f"{{{XENC}}}EncryptedData") if e not in inside)


def with_later_expiry(data: bytes, minutes: int = 10) -> bytes:
    """The message with its wsu:Timestamp's Expires moved ``minutes`` later (same width):
    a signed element changed, as an attacker extending a message's life would."""
    pattern = re.compile(rb"(<(?:\w+:)?Expires>)(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
    match = pattern.search(data)
    assert match, "the message has no Timestamp Expires"
    later = datetime.fromisoformat(match.group(2).decode()) + timedelta(minutes=minutes)
    text = later.strftime("%Y-%m-%dT%H:%M:%S").encode()
    return data[: match.start(2)] + text + data[match.end(2) :]


def expires_s(data: bytes, epoch: datetime) -> float:
    """The Timestamp's Expires as simulated seconds after ``epoch``."""
    match = re.search(rb"<(?:\w+:)?Expires>([^<]+)<", data)
    assert match, "the message has no Timestamp Expires"
    instant = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00"))
    return (instant - epoch).total_seconds()
