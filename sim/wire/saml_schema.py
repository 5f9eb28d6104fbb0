"""The strict reader of SAML 1.1 and 2.0 assertions: every statement, subject, condition
and key read at its schema position, before any cryptography (:func:`read`).

Exclusive C14N and the enveloped-signature transform leave parts of a signed assertion out
of its digest: comments, and everything inside the assertion's own ds:Signature. A reader
that searched descendants, took the first text node or skipped what it did not know could
be handed such unsigned content as if the STS had signed it. This one walks the schema's
child chain from the assertion down, refuses any element, comment or text the schema does
not put there, and reads every value as the element's whole text. ``sim/wire/saml.py``
writes assertions and validates them with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lxml import etree

from sim.errors import InvalidSecurityToken
from sim.wire import dsig, ns, xenc
from sim.wire.ns import Confirmation
from sim.wire.xmlutil import faults_as, parse_time, whole_text

SAML1, SAML2 = ns.SAML1, ns.SAML2
ASSERTION1 = ns.qname(SAML1, "Assertion")
ASSERTION2 = ns.qname(SAML2, "Assertion")


class SamlVersion(Enum):
    V11 = "1.1"
    V20 = "2.0"


@dataclass(frozen=True)
class Reading:
    """An assertion read at its schema positions, before any cryptography."""

    version: SamlVersion
    signature: etree._Element
    issuer: str
    subject: str
    confirmation: Confirmation
    #: the proof key's holder (xenc:EncryptedKey or ds:RSAKeyValue) for holder-of-key
    proof: etree._Element | None
    not_before: float
    not_on_or_after: float
    restrictions: tuple[tuple[str, ...], ...]
    attributes: dict[str, tuple[str, ...]]


#: a bound where the schema has none (statements, restrictions, audiences, attributes)
_MANY = 64
_PREFIXES = {SAML1: "saml", SAML2: "saml2", ns.DS: "ds", ns.XENC: "xenc", ns.WSSE: "wsse"}
_XSI_TYPE = ns.qname(ns.XSI, "type")
_S1 = {
    local: ns.qname(SAML1, local)
    for local in (
        "Conditions",
        "AudienceRestrictionCondition",
        "Audience",
        "AuthenticationStatement",
        "AttributeStatement",
        "Attribute",
        "AttributeValue",
        "Subject",
        "NameIdentifier",
        "SubjectConfirmation",
        "ConfirmationMethod",
    )
}
_S2 = {
    local: ns.qname(SAML2, local)
    for local in (
        "Issuer",
        "Subject",
        "NameID",
        "SubjectConfirmation",
        "SubjectConfirmationData",
        "Conditions",
        "AudienceRestriction",
        "Audience",
        "AuthnStatement",
        "AuthnContext",
        "AuthnContextClassRef",
        "AttributeStatement",
        "Attribute",
        "AttributeValue",
    )
}
_D = {
    local: ns.qname(ns.DS, local)
    for local in (
        "Signature",
        "SignedInfo",
        "SignatureValue",
        "KeyInfo",
        "KeyValue",
        "RSAKeyValue",
        "Modulus",
        "Exponent",
        "X509Data",
        "X509IssuerSerial",
        "X509IssuerName",
        "X509SerialNumber",
        "X509SKI",
        "X509Certificate",
    )
}
_X = {
    local: ns.qname(ns.XENC, local) for local in ("EncryptionMethod", "CipherData", "CipherValue")
}
_STR = ns.qname(ns.WSSE, "SecurityTokenReference")
_STR_KINDS = tuple(ns.qname(ns.WSSE, local) for local in ("Reference", "KeyIdentifier"))

#: a layout is the schema's sequence: (tags allowed at this point, least, most)
Layout = tuple[tuple[tuple[str, ...], int, int], ...]

_ASSERTION2: Layout = (
    ((_S2["Issuer"],), 1, 1),
    ((_D["Signature"],), 1, 1),
    ((_S2["Subject"],), 1, 1),
    ((_S2["Conditions"],), 1, 1),
    ((_S2["AuthnStatement"], _S2["AttributeStatement"]), 0, _MANY),
)
_SUBJECT2: Layout = (((_S2["NameID"],), 1, 1), ((_S2["SubjectConfirmation"],), 1, 1))
_CONFIRMATION2: Layout = (((_S2["SubjectConfirmationData"],), 0, 1),)
# A condition the reader does not understand makes the assertion Indeterminate (SAML 2.0
# core 2.5.1.1), so OneTimeUse, ProxyRestriction and <Condition> are refused.
_CONDITIONS2: Layout = (((_S2["AudienceRestriction"],), 1, _MANY),)
_AUDIENCES2: Layout = (((_S2["Audience"],), 1, _MANY),)
_AUTHN2: Layout = (((_S2["AuthnContext"],), 1, 1),)
_AUTHN_CONTEXT2: Layout = (((_S2["AuthnContextClassRef"],), 1, 1),)
_ATTRIBUTES2: Layout = (((_S2["Attribute"],), 1, _MANY),)
_VALUES2: Layout = (((_S2["AttributeValue"],), 0, _MANY),)

_STATEMENTS1 = (_S1["AuthenticationStatement"], _S1["AttributeStatement"])
_ASSERTION1: Layout = (
    ((_S1["Conditions"],), 1, 1),
    (_STATEMENTS1, 1, _MANY),
    ((_D["Signature"],), 1, 1),
)
_CONDITIONS1: Layout = (((_S1["AudienceRestrictionCondition"],), 1, _MANY),)
_AUDIENCES1: Layout = (((_S1["Audience"],), 1, _MANY),)
_AUTHN1: Layout = (((_S1["Subject"],), 1, 1),)
_ATTRIBUTES1: Layout = (((_S1["Subject"],), 1, 1), ((_S1["Attribute"],), 1, _MANY))
_VALUES1: Layout = (((_S1["AttributeValue"],), 1, _MANY),)
_SUBJECT1: Layout = (((_S1["NameIdentifier"],), 1, 1), ((_S1["SubjectConfirmation"],), 1, 1))
_CONFIRMATION1: Layout = (((_S1["ConfirmationMethod"],), 1, 1), ((_D["KeyInfo"],), 0, 1))

_KEY_INFO_ONLY: Layout = (((_D["KeyInfo"],), 1, 1),)
_PROOF_KEY: Layout = (((xenc.ENCRYPTED_KEY, _D["KeyValue"]), 1, 1),)
_ENCRYPTED_KEY: Layout = (
    ((_X["EncryptionMethod"],), 1, 1),
    ((_D["KeyInfo"],), 0, 1),
    ((_X["CipherData"],), 1, 1),
)
_CIPHER_DATA: Layout = (((_X["CipherValue"],), 1, 1),)
_KEY_VALUE: Layout = (((_D["RSAKeyValue"],), 1, 1),)
_RSA_KEY_VALUE: Layout = (((_D["Modulus"],), 1, 1), ((_D["Exponent"],), 1, 1))

_SIGNATURE_LAYOUT: Layout = (
    ((_D["SignedInfo"],), 1, 1),
    ((_D["SignatureValue"],), 1, 1),
    ((_D["KeyInfo"],), 0, 1),
)
_STS_KEY_INFO: Layout = (((_STR, _D["X509Data"]), 1, 1),)
_STR_LAYOUT: Layout = (((_D["X509Data"], *_STR_KINDS), 1, 1),)
_X509_DATA: Layout = (((_D["X509IssuerSerial"], _D["X509SKI"], _D["X509Certificate"]), 1, 1),)
_ISSUER_SERIAL: Layout = (((_D["X509IssuerName"],), 1, 1), ((_D["X509SerialNumber"],), 1, 1))
_EMPTY: Layout = ()


def _schema_fault(reason: str) -> InvalidSecurityToken:
    return InvalidSecurityToken(reason, check="saml-schema")


def _display(tag) -> str:
    if not isinstance(tag, str):
        return "a comment or processing instruction"
    name = etree.QName(tag)
    prefix = _PREFIXES.get(name.namespace)
    return f"{prefix}:{name.localname}" if prefix else tag


def _layout(el: etree._Element, what: str, layout: Layout) -> dict[str, list[etree._Element]]:
    """The children of ``el`` (element-only content), by tag, checked against ``layout`` in
    schema order: a missing, repeated, misplaced or unknown element, a comment, a
    processing instruction or text other than whitespace is refused."""
    if el.text is not None and el.text.strip():
        raise _schema_fault(f"{what} holds text where elements belong")
    children = list(el)
    for child in children:
        if not isinstance(child.tag, str):
            raise _schema_fault(f"{what} holds a comment or processing instruction")
        if child.tail is not None and child.tail.strip():
            raise _schema_fault(f"{what} holds text where elements belong")
    found: dict[str, list[etree._Element]] = {}
    position = 0
    for tags, least, most in layout:
        count = 0
        while position < len(children) and count < most and children[position].tag in tags:
            found.setdefault(children[position].tag, []).append(children[position])
            position += 1
            count += 1
        if count < least:
            expected = " or ".join(sorted(_display(tag) for tag in tags))
            if position == len(children):
                raise _schema_fault(f"{expected} is missing from {what}")
            raise _schema_fault(
                f"{_display(children[position].tag)} in {what} where {expected} belongs"
            )
    if position < len(children):
        raise _schema_fault(
            f"unexpected {_display(children[position].tag)} in {what} "
            "(unknown, repeated or out of schema order)"
        )
    return found


def _only(found: dict[str, list[etree._Element]]) -> etree._Element:
    """The one element a layout of one slot, exactly one element there, found."""
    [[element]] = found.values()
    return element


def _text(el: etree._Element, what: str, *, required: bool = True) -> str:
    value = whole_text(el, what)
    if required and not value:
        raise _schema_fault(f"{what} is empty")
    return value


def _attribute(el: etree._Element, name: str, what: str) -> str:
    value = (el.get(name) or "").strip()
    if not value:
        raise _schema_fault(f"{what} is missing")
    return value


@faults_as(InvalidSecurityToken)
def read(assertion: etree._Element) -> Reading:
    """``assertion`` read at its schema positions; anything else is a typed fault."""
    if assertion.tag == ASSERTION2:
        return _read2(assertion)
    return _read1(assertion)


def _read2(assertion: etree._Element) -> Reading:
    parts = _layout(assertion, "saml2:Assertion", _ASSERTION2)
    if assertion.get("Version") != "2.0":
        raise _schema_fault("saml2:Assertion/@Version is not 2.0")
    parse_time(assertion.get("IssueInstant"), "saml2:Assertion/@IssueInstant")
    signature = parts[_D["Signature"]][0]
    _check_signature(signature)
    issuer = _text(parts[_S2["Issuer"]][0], "saml2:Issuer")
    subject = _layout(parts[_S2["Subject"]][0], "saml2:Subject", _SUBJECT2)
    name = _text(subject[_S2["NameID"]][0], "saml2:NameID")
    confirmation_el = subject[_S2["SubjectConfirmation"]][0]
    method = _attribute(confirmation_el, "Method", "saml2:SubjectConfirmation/@Method")
    confirmation = _confirmation(method, {c.value: c for c in Confirmation})
    key_info = None
    data = _layout(confirmation_el, "saml2:SubjectConfirmation", _CONFIRMATION2)
    for holder in data.get(_S2["SubjectConfirmationData"], ()):
        # NotOnOrAfter, Recipient, InResponseTo, Address restrict the confirmation: this
        # reader does not enforce them, so it accepts none (rather than ignoring them).
        unknown = sorted(set(holder.attrib) - {_XSI_TYPE})
        if unknown:
            raise _schema_fault(f"saml2:SubjectConfirmationData/@{unknown[0]} is not supported")
        layout = _layout(holder, "saml2:SubjectConfirmationData", _KEY_INFO_ONLY)
        key_info = layout[_D["KeyInfo"]][0]
    conditions = parts[_S2["Conditions"]][0]
    lifetime, restrictions = _conditions(conditions, "saml2:Conditions", _CONDITIONS2, _AUDIENCES2)
    attributes: dict[str, tuple[str, ...]] = {}
    for authn in parts.get(_S2["AuthnStatement"], ()):
        parse_time(authn.get("AuthnInstant"), "saml2:AuthnStatement/@AuthnInstant")
        context = _layout(authn, "saml2:AuthnStatement", _AUTHN2)[_S2["AuthnContext"]][0]
        reference = _layout(context, "saml2:AuthnContext", _AUTHN_CONTEXT2)
        _text(reference[_S2["AuthnContextClassRef"]][0], "saml2:AuthnContextClassRef")
    for statement in parts.get(_S2["AttributeStatement"], ()):
        for attribute in _layout(statement, "saml2:AttributeStatement", _ATTRIBUTES2)[
            _S2["Attribute"]
        ]:
            values = _layout(attribute, "saml2:Attribute", _VALUES2).get(_S2["AttributeValue"], ())
            _add_attribute(
                attributes,
                _attribute(attribute, "Name", "saml2:Attribute/@Name"),
                tuple(_text(v, "saml2:AttributeValue", required=False) for v in values),
            )
    subject = (name, confirmation, key_info)
    return _reading(SamlVersion.V20, signature, issuer, subject, lifetime, restrictions, attributes)


def _read1(assertion: etree._Element) -> Reading:
    parts = _layout(assertion, "saml:Assertion", _ASSERTION1)
    if assertion.get("MajorVersion") != "1" or assertion.get("MinorVersion") != "1":
        raise _schema_fault("saml:Assertion is not of version 1.1")
    issuer = _attribute(assertion, "Issuer", "saml:Assertion/@Issuer")
    parse_time(assertion.get("IssueInstant"), "saml:Assertion/@IssueInstant")
    signature = parts[_D["Signature"]][0]
    _check_signature(signature)
    conditions = parts[_S1["Conditions"]][0]
    lifetime, restrictions = _conditions(conditions, "saml:Conditions", _CONDITIONS1, _AUDIENCES1)
    subjects = []
    attributes: dict[str, tuple[str, ...]] = {}
    for statement in (child for child in assertion if child.tag in _STATEMENTS1):
        if statement.tag == _S1["AuthenticationStatement"]:
            _attribute(
                statement,
                "AuthenticationMethod",
                "saml:AuthenticationStatement/@AuthenticationMethod",
            )
            parse_time(
                statement.get("AuthenticationInstant"),
                "saml:AuthenticationStatement/@AuthenticationInstant",
            )
            layout = _layout(statement, "saml:AuthenticationStatement", _AUTHN1)
        else:
            layout = _layout(statement, "saml:AttributeStatement", _ATTRIBUTES1)
            for attribute in layout[_S1["Attribute"]]:
                name = _attribute(attribute, "AttributeName", "saml:Attribute/@AttributeName")
                _attribute(attribute, "AttributeNamespace", "saml:Attribute/@AttributeNamespace")
                values = _layout(attribute, "saml:Attribute", _VALUES1)[_S1["AttributeValue"]]
                _add_attribute(
                    attributes,
                    name,
                    tuple(_text(v, "saml:AttributeValue", required=False) for v in values),
                )
        subjects.append(_subject1(layout[_S1["Subject"]][0]))
    name, confirmation, key_info = subjects[0]
    for other in subjects[1:]:
        # Every statement of one assertion speaks of one subject (and proof key).
        if other[:2] != (name, confirmation) or not _same_key(other[2], key_info):
            raise _schema_fault("the statements of the assertion name different subjects")
    return _reading(
        SamlVersion.V11, signature, issuer, subjects[0], lifetime, restrictions, attributes
    )


def _reading(
    version: SamlVersion,
    signature: etree._Element,
    issuer: str,
    subject: tuple[str, Confirmation, etree._Element | None],
    lifetime: tuple[float, float],
    restrictions: tuple[tuple[str, ...], ...],
    attributes: dict[str, tuple[str, ...]],
) -> Reading:
    """The reading of an assertion of either version: its subject's name, confirmation
    and proof key (its layout checked here), and the rest as read."""
    name, confirmation, key_info = subject
    proof = _proof_holder(confirmation, key_info)
    return Reading(
        version, signature, issuer, name, confirmation, proof, *lifetime, restrictions, attributes
    )


def _subject1(subject: etree._Element) -> tuple[str, Confirmation, etree._Element | None]:
    parts = _layout(subject, "saml:Subject", _SUBJECT1)
    name = _text(parts[_S1["NameIdentifier"]][0], "saml:NameIdentifier")
    confirmation = _layout(
        parts[_S1["SubjectConfirmation"]][0], "saml:SubjectConfirmation", _CONFIRMATION1
    )
    method = _text(confirmation[_S1["ConfirmationMethod"]][0], "saml:ConfirmationMethod")
    inverse = {uri: c for c, uri in ns.SAML1_CONFIRMATION.items()}
    key_info = confirmation.get(_D["KeyInfo"])
    return name, _confirmation(method, inverse), key_info[0] if key_info else None


def _same_key(one: etree._Element | None, other: etree._Element | None) -> bool:
    if one is None or other is None:
        return one is other
    return dsig.canonical(one) == dsig.canonical(other)  # a typed fault if none exists


def _add_attribute(found: dict[str, tuple[str, ...]], name: str, values: tuple[str, ...]) -> None:
    if name in found:
        raise _schema_fault(f"attribute {name!r} appears twice")
    found[name] = values


def _lifetime(conditions: etree._Element, what: str) -> tuple[float, float]:
    not_before = parse_time(conditions.get("NotBefore"), f"{what}/@NotBefore")
    not_after = parse_time(conditions.get("NotOnOrAfter"), f"{what}/@NotOnOrAfter")
    if not_before >= not_after:
        raise _schema_fault(f"{what}: NotBefore is not before NotOnOrAfter")
    return not_before, not_after


def _conditions(
    conditions: etree._Element, what: str, layout: Layout, audiences: Layout
) -> tuple[tuple[float, float], tuple[tuple[str, ...], ...]]:
    """The lifetime of saml(2):Conditions, then the audiences of each of its restrictions
    (``layout`` holds the restriction's one slot, ``audiences`` the audience's)."""
    lifetime = _lifetime(conditions, what)
    restriction, audience = layout[0][0][0], audiences[0][0][0]
    restrictions = tuple(
        tuple(
            _text(value, _display(audience))
            for value in _layout(element, _display(restriction), audiences)[audience]
        )
        for element in _layout(conditions, what, layout)[restriction]
    )
    return lifetime, restrictions


def _confirmation(method: str | None, table: dict) -> Confirmation:
    try:
        return table[method]
    except KeyError:
        raise InvalidSecurityToken(f"unknown confirmation method {method!r}") from None


def _proof_holder(
    confirmation: Confirmation, key_info: etree._Element | None
) -> etree._Element | None:
    """The element holding the subject's proof key: an xenc:EncryptedKey (a symmetric key for
    the provider) or a ds:RSAKeyValue; its layout checked, nothing decrypted yet."""
    if confirmation is not Confirmation.HOLDER_OF_KEY:
        if key_info is not None:
            raise _schema_fault(f"a key in a {confirmation.name} subject confirmation")
        return None
    if key_info is None:
        raise InvalidSecurityToken("holder-of-key assertion without a key")
    holder = _only(_layout(key_info, "the subject's ds:KeyInfo", _PROOF_KEY))
    if holder.tag == xenc.ENCRYPTED_KEY:
        parts = _layout(holder, "xenc:EncryptedKey", _ENCRYPTED_KEY)
        cipher = _layout(parts[_X["CipherData"]][0], "xenc:CipherData", _CIPHER_DATA)
        _text(cipher[_X["CipherValue"]][0], "xenc:CipherValue")
        return holder
    value = _layout(holder, "ds:KeyValue", _KEY_VALUE)[_D["RSAKeyValue"]][0]
    rsa_parts = _layout(value, "ds:RSAKeyValue", _RSA_KEY_VALUE)
    _text(rsa_parts[_D["Modulus"]][0], "ds:Modulus")
    _text(rsa_parts[_D["Exponent"]][0], "ds:Exponent")
    return value


def _check_signature(signature: etree._Element) -> None:
    """The assertion's own ds:Signature holds SignedInfo, SignatureValue and a KeyInfo naming
    the STS certificate, nothing else: the enveloped-signature transform keeps all of it out
    of the digest, so anything more there is unsigned."""
    what = "the assertion's ds:Signature"
    parts = _layout(signature, what, _SIGNATURE_LAYOUT)
    _text(parts[_D["SignatureValue"]][0], "ds:SignatureValue")
    for key_info in parts.get(_D["KeyInfo"], ()):
        reference = _only(_layout(key_info, f"{what}/ds:KeyInfo", _STS_KEY_INFO))
        if reference.tag == _STR:
            reference = _only(_layout(reference, "wsse:SecurityTokenReference", _STR_LAYOUT))
        if reference.tag == _D["X509Data"]:
            reference = _only(_layout(reference, "ds:X509Data", _X509_DATA))
        if reference.tag == _D["X509IssuerSerial"]:
            for (part,) in _layout(reference, "ds:X509IssuerSerial", _ISSUER_SERIAL).values():
                _text(part, _display(part.tag))
        elif reference.tag == _STR_KINDS[0]:  # wsse:Reference: its URI says it all
            _layout(reference, "wsse:Reference", _EMPTY)
        else:  # wsse:KeyIdentifier, ds:X509SKI, ds:X509Certificate
            _text(reference, _display(reference.tag))
