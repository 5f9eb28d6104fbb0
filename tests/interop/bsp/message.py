"""The message model and rule registry of the BSP checks: namespaces and values from the
profile's text, a :class:`Message` with the indexes the rules share, ``RULES``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

from lxml import etree

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
WSC = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

BASE64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
UT_VALUE_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#UsernameToken"
)
SOAP_MESSAGE_SECURITY_11 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1"
ENCRYPTED_KEY_TYPE = SOAP_MESSAGE_SECURITY_11 + "#EncryptedKey"
THUMBPRINT = SOAP_MESSAGE_SECURITY_11 + "#ThumbprintSHA1"
ENCRYPTED_KEY_SHA1 = SOAP_MESSAGE_SECURITY_11 + "#EncryptedKeySHA1"
SKI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
SAML11_TOKEN_TYPE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
SAML20_TOKEN_TYPE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
SAML11_KI = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"
SAML20_KI = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
STR_TRANSFORM = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#STR-Transform"
ALLOWED_TRANSFORMS = {
    EXC_C14N,
    STR_TRANSFORM,
    "http://www.w3.org/2002/06/xmldsig-filter2",
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
}
DATA_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
}
KEY_TRANSPORT = {
    "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
}
KEY_WRAP = {
    "http://www.w3.org/2001/04/xmlenc#kw-tripledes",
    "http://www.w3.org/2001/04/xmlenc#kw-aes128",
    "http://www.w3.org/2001/04/xmlenc#kw-aes256",
}
#: the ValueType an STR_REFERENCE names each internal token by (R3058, R5218, R4214)
VALUE_TYPES = {
    f"{{{WSSE}}}BinarySecurityToken": X509V3,
    f"{{{WSSE}}}UsernameToken": UT_VALUE_TYPE,
    f"{{{WSC}}}DerivedKeyToken": f"{WSC}/dk",
    f"{{{WSC}}}SecurityContextToken": f"{WSC}/sct",
    # SAML Token Profile 1.1 §3.4: a 1.1 assertion's ValueType (a 2.0 one has none, R6614)
    f"{{{SAML1}}}Assertion": SAML11_KI,
}
ASSERTIONS = (f"{{{SAML2}}}Assertion", f"{{{SAML1}}}Assertion")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:(\d\d):(\d\d)(?:\.(\d+))?Z$")


def q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


@dataclass
class Message:
    """A message and the indexes the rules share."""

    root: etree._Element

    @cached_property
    def security(self) -> etree._Element | None:
        return next(self.root.iter(q(WSSE, "Security")), None)

    @cached_property
    def in_assertions(self) -> set:
        return {e for a in self.root.iter(*ASSERTIONS) for e in a.iter()}

    @cached_property
    def order(self) -> dict:
        return {e: i for i, e in enumerate(self.root.iter())}

    @cached_property
    def ids(self) -> dict[str, etree._Element]:
        found = {}
        for e in self.root.iter():
            for attribute in (q(WSU, "Id"), "Id", "ID", "AssertionID"):
                if e.get(attribute):
                    found[e.get(attribute)] = e
        return found

    def outside_assertions(self, *tags: str) -> Iterator[etree._Element]:
        return (e for e in self.root.iter(*tags) if e not in self.in_assertions)

    @property
    def strs(self) -> Iterator[etree._Element]:
        """The STRs of the message's own security: in the Security header and the KeyInfo of
        its EncryptedData (an RSTR's Requested*Reference in the Body is content)."""
        tag = q(WSSE, "SecurityTokenReference")
        found = [] if self.security is None else list(self.security.iter(tag))
        for data in self.outside_assertions(q(XENC, "EncryptedData")):
            info = data.find(q(DS, "KeyInfo"))
            if info is not None:
                found += info.iter(tag)
        return (s for s in dict.fromkeys(found) if s not in self.in_assertions)

    def target(self, str_: etree._Element) -> etree._Element | None:
        """The token an STR names in this message (by Reference URI or KeyIdentifier)."""
        reference = str_.find(q(WSSE, "Reference"))
        if reference is not None and (reference.get("URI") or "").startswith("#"):
            return self.ids.get(reference.get("URI")[1:])
        identifier = str_.find(q(WSSE, "KeyIdentifier"))
        if identifier is not None and (identifier.get("ValueType") or "") in (SAML11_KI, SAML20_KI):
            return self.ids.get((identifier.text or "").strip())
        return None

    @property
    def signatures(self) -> list[etree._Element]:
        return [] if self.security is None else self.security.findall(q(DS, "Signature"))


Rule = Callable[[Message], list[str]]
RULES: dict[str, tuple[str, Rule]] = {}


def rule(number: str, text: str):
    def register(check: Rule) -> Rule:
        RULES[number] = (text, check)
        return check

    return register


def _where(e: etree._Element) -> str:
    return f"{etree.QName(e).localname} {e.get(q(WSU, 'Id')) or e.get('Id') or ''}".strip()
