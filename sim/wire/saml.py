"""SAML 1.1 and 2.0 assertions issued and signed by an STS, and their strict validation.

Subject confirmation: bearer, holder-of-key with a symmetric proof key (an EncryptedKey for
the provider inside the subject's KeyInfo), holder-of-key with a public key (KeyValue of the
client's key), and sender-vouches. The STS signs each assertion with an enveloped signature;
validation insists that the verified element is the assertion being used (no wrapping), and
reads every statement, subject, condition and key only at its schema position in that
element, refusing anything else there (see :func:`validate_assertion`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from sim.errors import ExpiredData, FailedCheck, InvalidSecurityToken
from sim.wire import dsig, ns, xenc
from sim.wire.keys import Identity
from sim.wire.ledger import Ledger
from sim.wire.ns import Confirmation, DigestAlg, SignatureAlg
from sim.wire.wss import str_issuer_serial
from sim.wire.xmlutil import (
    b64,
    faults_as,
    format_time,
    fresh_bytes,
    new_id,
    one_child,
    parse_time,
    sub,
    unb64,
    whole_text,
)

SAML1, SAML2 = ns.SAML1, ns.SAML2
ASSERTION1 = ns.qname(SAML1, "Assertion")
ASSERTION2 = ns.qname(SAML2, "Assertion")
ENCRYPTED_ASSERTION2 = ns.qname(SAML2, "EncryptedAssertion")
_DS_KEYINFO = ns.qname(ns.DS, "KeyInfo")


class SamlVersion(Enum):
    V11 = "1.1"
    V20 = "2.0"


@dataclass(frozen=True)
class SubjectKey:
    """How the subject proves possession: a symmetric key (encrypted for the provider) or
    the client's RSA public key."""

    symmetric_key: bytes | None = None
    recipient: Identity | None = None
    public_key: rsa.RSAPublicKey | None = None


def _key_info(subject_key: SubjectKey, ledger: Ledger | None) -> etree._Element:
    key_info = etree.Element(_DS_KEYINFO, nsmap={"ds": ns.DS})
    if subject_key.symmetric_key is not None:
        if subject_key.recipient is None:
            raise ValueError("a symmetric holder-of-key needs the recipient (provider) identity")
        key_info.append(
            xenc.build_encrypted_key(
                subject_key.symmetric_key,
                subject_key.recipient.public_key,
                key_info=str_issuer_serial(subject_key.recipient),
                ledger=ledger,
            )
        )
    elif subject_key.public_key is not None:
        numbers = subject_key.public_key.public_numbers()
        value = sub(key_info, ns.qname(ns.DS, "KeyValue"))
        rsa_el = sub(value, ns.qname(ns.DS, "RSAKeyValue"))
        sub(rsa_el, ns.qname(ns.DS, "Modulus"), text=b64(_int_bytes(numbers.n)))
        sub(rsa_el, ns.qname(ns.DS, "Exponent"), text=b64(_int_bytes(numbers.e)))
    else:
        raise ValueError("holder-of-key needs a symmetric key or a public key")
    return key_info


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def build_assertion(
    *,
    issuer: str,
    subject: str,
    audience: str,
    now: float,
    lifetime: float,
    confirmation: Confirmation,
    version: SamlVersion = SamlVersion.V20,
    subject_key: SubjectKey | None = None,
    attributes: dict[str, str] | None = None,
    ledger: Ledger | None = None,
) -> etree._Element:
    """An unsigned assertion; sign it with :func:`sign_assertion`."""
    confirmation = Confirmation(confirmation)
    if confirmation is Confirmation.HOLDER_OF_KEY and subject_key is None:
        raise ValueError("holder-of-key needs a subject_key")
    if version is SamlVersion.V20:
        return _assertion2(
            issuer,
            subject,
            audience,
            now,
            lifetime,
            confirmation,
            subject_key,
            attributes or {},
            ledger,
        )
    return _assertion1(
        issuer,
        subject,
        audience,
        now,
        lifetime,
        confirmation,
        subject_key,
        attributes or {},
        ledger,
    )


def _assertion2(
    issuer, subject, audience, now, lifetime, confirmation, subject_key, attributes, ledger
):
    q = lambda local: ns.qname(SAML2, local)  # noqa: E731
    a = etree.Element(
        q("Assertion"),
        {"ID": new_id("_"), "Version": "2.0", "IssueInstant": format_time(now)},
        nsmap={"saml2": SAML2},
    )
    sub(a, q("Issuer"), text=issuer)
    subj = sub(a, q("Subject"))
    sub(
        subj,
        q("NameID"),
        {"Format": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"},
        text=subject,
    )
    sc = sub(subj, q("SubjectConfirmation"), {"Method": confirmation.value})
    if subject_key is not None:
        data = sub(sc, q("SubjectConfirmationData"))
        data.append(_key_info(subject_key, ledger))
    cond = sub(
        a,
        q("Conditions"),
        {"NotBefore": format_time(now), "NotOnOrAfter": format_time(now + lifetime)},
    )
    sub(sub(cond, q("AudienceRestriction")), q("Audience"), text=audience)
    authn = sub(a, q("AuthnStatement"), {"AuthnInstant": format_time(now)})
    sub(
        sub(authn, q("AuthnContext")),
        q("AuthnContextClassRef"),
        text="urn:oasis:names:tc:SAML:2.0:ac:classes:X509",
    )
    if attributes:
        statement = sub(a, q("AttributeStatement"))
        for name, value in sorted(attributes.items()):
            sub(sub(statement, q("Attribute"), {"Name": name}), q("AttributeValue"), text=value)
    return a


def _assertion1(
    issuer, subject, audience, now, lifetime, confirmation, subject_key, attributes, ledger
):
    q = lambda local: ns.qname(SAML1, local)  # noqa: E731
    a = etree.Element(
        q("Assertion"),
        {
            "AssertionID": new_id("_"),
            "MajorVersion": "1",
            "MinorVersion": "1",
            "Issuer": issuer,
            "IssueInstant": format_time(now),
        },
        nsmap={"saml": SAML1},
    )
    cond = sub(
        a,
        q("Conditions"),
        {"NotBefore": format_time(now), "NotOnOrAfter": format_time(now + lifetime)},
    )
    sub(sub(cond, q("AudienceRestrictionCondition")), q("Audience"), text=audience)

    statement = sub(
        a,
        q("AuthenticationStatement"),
        {
            "AuthenticationMethod": "urn:oasis:names:tc:SAML:1.0:am:X509-PKI",
            "AuthenticationInstant": format_time(now),
        },
    )
    subject_el = sub(statement, q("Subject"))
    sub(subject_el, q("NameIdentifier"), text=subject)
    sc = sub(subject_el, q("SubjectConfirmation"))
    sub(sc, q("ConfirmationMethod"), text=ns.SAML1_CONFIRMATION[confirmation])
    if subject_key is not None:
        sc.append(_key_info(subject_key, ledger))
    if attributes:
        # Every statement names the same subject, the same proof key included: a copy. The
        # EncryptedKey's Id (which no reference names) goes, or the copy would repeat it.
        for encrypted_key in sc.iterfind(f"{_DS_KEYINFO}/{xenc.ENCRYPTED_KEY}"):
            del encrypted_key.attrib["Id"]
        attr_statement = sub(a, q("AttributeStatement"))
        attr_statement.append(copy.deepcopy(subject_el))
        for name, value in sorted(attributes.items()):
            attr = sub(
                attr_statement,
                q("Attribute"),
                {"AttributeName": name, "AttributeNamespace": "urn:wssim"},
            )
            sub(attr, q("AttributeValue"), text=value)
    return a


def assertion_id(assertion: etree._Element) -> str:
    value = assertion.get("ID") if assertion.tag == ASSERTION2 else assertion.get("AssertionID")
    if not value:
        raise InvalidSecurityToken("assertion without ID")
    return value


def sign_assertion(
    assertion: etree._Element,
    sts: Identity,
    *,
    algorithm: SignatureAlg = SignatureAlg.RSA_SHA1,
    digest: DigestAlg = DigestAlg.SHA1,
    ledger: Ledger | None = None,
) -> etree._Element:
    """Sign ``assertion`` in place with the STS key (enveloped signature after the Issuer)."""
    signature = dsig.sign(
        [assertion],
        sts.private_key,
        algorithm=algorithm,
        digest=digest,
        enveloped=True,
        key_info=str_issuer_serial(sts),
        ledger=ledger,
    )
    if assertion.tag == ASSERTION2:
        assertion.insert(1, signature)  # after saml2:Issuer, as the schema orders it
    else:
        assertion.append(signature)
    return assertion


def encrypt_assertion(
    assertion: etree._Element, recipient: Identity, *, ledger: Ledger | None = None
) -> etree._Element:
    """Encrypt ``assertion`` (already placed in a tree) for ``recipient``, as seed 001 shows:
    EncryptedData Element with the EncryptedKey inside its KeyInfo (SAML 2.0 wraps it in
    saml2:EncryptedAssertion)."""
    key = fresh_bytes(32)
    ek = xenc.build_encrypted_key(
        key, recipient.public_key, key_info=str_issuer_serial(recipient), ledger=ledger
    )
    wrapper = None
    if assertion.tag == ASSERTION2:
        wrapper = etree.Element(ENCRYPTED_ASSERTION2, nsmap={"saml2": SAML2})
        assertion.addprevious(wrapper)
        wrapper.append(assertion)
    data = xenc.encrypt_element(assertion, key, key_info=ek, ledger=ledger)
    return wrapper if wrapper is not None else data


def decrypt_assertion(
    encrypted: etree._Element, recipient: Identity, *, ledger: Ledger | None = None
) -> etree._Element:
    """The assertion inside an EncryptedData / saml2:EncryptedAssertion, decrypted in place."""
    policy = xenc.EncryptionPolicy()
    data = encrypted
    if encrypted.tag == ENCRYPTED_ASSERTION2:
        data = one_child(encrypted, xenc.ENCRYPTED_DATA, "xenc:EncryptedData")
    info = xenc.read_encrypted_data(data, policy)
    if info.key_info is None or info.key_info.tag != xenc.ENCRYPTED_KEY:
        raise InvalidSecurityToken("encrypted assertion without an EncryptedKey")
    key = xenc.decrypt_key(
        xenc.read_encrypted_key(info.key_info, policy),
        recipient.private_key,
        expected_bytes=xenc.KEY_BYTES[info.algorithm],
        ledger=ledger,
    )
    restored = xenc.decrypt_element(info, key, ledger=ledger)
    if restored.tag not in (ASSERTION1, ASSERTION2):
        raise InvalidSecurityToken("encrypted token is not a SAML assertion")
    return restored


@dataclass(frozen=True)
class ValidatedAssertion:
    """What a provider may rely on, read only where the schema puts it in the element the
    STS signature covers."""

    assertion: etree._Element
    id: str
    version: SamlVersion
    issuer: str
    subject: str
    confirmation: Confirmation
    not_before: float
    not_on_or_after: float
    audience: str
    symmetric_key: bytes | None = None
    public_key: rsa.RSAPublicKey | None = None
    #: attribute name -> its values, from the assertion's AttributeStatements
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def validate_assertion(
    assertion: etree._Element,
    *,
    sts_key: rsa.RSAPublicKey,
    audience: str,
    now: float,
    skew: float = 300.0,
    expected: frozenset[Confirmation] | None = None,
    recipient: Identity | None = None,
    issuer: str | None = None,
    policy: dsig.SignaturePolicy | None = None,
    ledger: Ledger | None = None,
) -> ValidatedAssertion:
    """Check an assertion as a provider must, in this order: its layout is the schema's
    (every statement, subject, condition and key at its schema position, nothing else
    there, values whole text); the STS signature covers this very element; the issuer is
    ``issuer`` (when given); the lifetime holds at ``now`` (with ``skew``); every
    AudienceRestriction names ``audience``; the confirmation method is one we accept. For
    holder-of-key, return the proof key."""
    if assertion.tag not in (ASSERTION1, ASSERTION2):
        raise InvalidSecurityToken(f"not a SAML assertion: {assertion.tag}")
    identifier = assertion_id(assertion)
    reading = _read(assertion)
    policy = policy or dsig.SignaturePolicy(allow_enveloped=True)
    if not policy.allow_enveloped:
        policy = dsig.SignaturePolicy(**{**policy.__dict__, "allow_enveloped": True})
    ids = dsig.index_ids(assertion.getroottree().getroot())
    verified = dsig.verify(reading.signature, key=sts_key, policy=policy, ids=ids, ledger=ledger)
    if len(verified.references) != 1 or not verified.covers(assertion):
        raise FailedCheck("the STS signature does not cover this assertion", check="wrapping")
    if ids.get(identifier) is not assertion:
        raise FailedCheck("assertion id resolves to another element", check="wrapping")
    if issuer is not None and reading.issuer != issuer:
        raise FailedCheck("the assertion's issuer is not the trusted STS", check="issuer")
    if now + skew < reading.not_before:
        raise InvalidSecurityToken("assertion not yet valid", check="lifetime")
    if now - skew >= reading.not_on_or_after:
        raise ExpiredData("assertion expired", check="lifetime")
    # SAML 2.0 core 2.5.1.4 (1.1 core 2.3.2.1.3): every restriction must hold; within one,
    # any of its audiences will do.
    if not all(audience in restriction for restriction in reading.restrictions):
        raise FailedCheck("assertion audience is not this service", check="audience")
    if expected is not None and reading.confirmation not in expected:
        raise InvalidSecurityToken(
            f"confirmation method {reading.confirmation.name} not accepted", check="confirmation"
        )
    symmetric_key = public_key = None
    if reading.proof is not None:
        symmetric_key, public_key = _proof_key(reading.proof, recipient, ledger)
    return ValidatedAssertion(
        assertion,
        identifier,
        reading.version,
        reading.issuer,
        reading.subject,
        reading.confirmation,
        reading.not_before,
        reading.not_on_or_after,
        audience,
        symmetric_key,
        public_key,
        reading.attributes,
    )


# --- the strict reader ----------------------------------------------------------------------
#
# Exclusive C14N and the enveloped-signature transform leave parts of a signed assertion out
# of its digest: comments, and everything inside the assertion's own ds:Signature. A reader
# that searched descendants, took the first text node or skipped what it did not know could
# be handed such unsigned content as if the STS had signed it. This one walks the schema's
# child chain from the assertion down, refuses any element, comment or text the schema does
# not put there, and reads every value as the element's whole text.


@dataclass(frozen=True)
class _Reading:
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
def _read(assertion: etree._Element) -> _Reading:
    if assertion.tag == ASSERTION2:
        return _read2(assertion)
    return _read1(assertion)


def _read2(assertion: etree._Element) -> _Reading:
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
    not_before, not_after = _lifetime(conditions, "saml2:Conditions")
    restrictions = tuple(
        _audiences(restriction, "saml2:AudienceRestriction", _AUDIENCES2, _S2["Audience"])
        for restriction in _layout(conditions, "saml2:Conditions", _CONDITIONS2)[
            _S2["AudienceRestriction"]
        ]
    )
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
    return _Reading(
        SamlVersion.V20,
        signature,
        issuer,
        name,
        confirmation,
        _proof_holder(confirmation, key_info),
        not_before,
        not_after,
        restrictions,
        attributes,
    )


def _read1(assertion: etree._Element) -> _Reading:
    parts = _layout(assertion, "saml:Assertion", _ASSERTION1)
    if assertion.get("MajorVersion") != "1" or assertion.get("MinorVersion") != "1":
        raise _schema_fault("saml:Assertion is not of version 1.1")
    issuer = _attribute(assertion, "Issuer", "saml:Assertion/@Issuer")
    parse_time(assertion.get("IssueInstant"), "saml:Assertion/@IssueInstant")
    signature = parts[_D["Signature"]][0]
    _check_signature(signature)
    conditions = parts[_S1["Conditions"]][0]
    not_before, not_after = _lifetime(conditions, "saml:Conditions")
    restrictions = tuple(
        _audiences(restriction, "saml:AudienceRestrictionCondition", _AUDIENCES1, _S1["Audience"])
        for restriction in _layout(conditions, "saml:Conditions", _CONDITIONS1)[
            _S1["AudienceRestrictionCondition"]
        ]
    )
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
    return _Reading(
        SamlVersion.V11,
        signature,
        issuer,
        name,
        confirmation,
        _proof_holder(confirmation, key_info),
        not_before,
        not_after,
        restrictions,
        attributes,
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


def _audiences(restriction: etree._Element, what: str, layout: Layout, tag: str) -> tuple[str, ...]:
    return tuple(_text(a, _display(tag)) for a in _layout(restriction, what, layout)[tag])


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


@faults_as(InvalidSecurityToken)
def _proof_key(
    holder: etree._Element, recipient: Identity | None, ledger: Ledger | None
) -> tuple[bytes | None, rsa.RSAPublicKey | None]:
    """The proof key in ``holder`` (see :func:`_proof_holder`): decrypted with the
    recipient's key, or the client's RSA public key."""
    if holder.tag == xenc.ENCRYPTED_KEY:
        if recipient is None:
            raise InvalidSecurityToken("symmetric proof key but no recipient key to decrypt it")
        info = xenc.read_encrypted_key(holder, xenc.EncryptionPolicy())
        return xenc.decrypt_key(info, recipient.private_key, ledger=ledger), None
    modulus = unb64(whole_text(holder[0], "ds:Modulus"), "ds:Modulus")
    exponent = unb64(whole_text(holder[1], "ds:Exponent"), "ds:Exponent")
    try:
        key = rsa.RSAPublicNumbers(
            int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big")
        ).public_key()
    except ValueError:
        raise InvalidSecurityToken("holder-of-key RSA key is invalid") from None
    return None, key
