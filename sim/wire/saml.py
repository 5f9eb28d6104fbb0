"""SAML 1.1 and 2.0 assertions issued and signed by an STS, and their strict validation.

Subject confirmation: bearer, holder-of-key with a symmetric proof key (an EncryptedKey for
the provider inside the subject's KeyInfo), holder-of-key with a public key (KeyValue of the
client's key), and sender-vouches. The STS signs each assertion with an enveloped signature;
validation insists that the verified element is the assertion being used (no wrapping).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    format_time,
    fresh_bytes,
    new_id,
    one_child,
    parse_time,
    sub,
    text_of,
    unb64,
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

    def subject_el(parent):
        s = sub(parent, q("Subject"))
        sub(s, q("NameIdentifier"), text=subject)
        sc = sub(s, q("SubjectConfirmation"))
        sub(sc, q("ConfirmationMethod"), text=ns.SAML1_CONFIRMATION[confirmation])
        if subject_key is not None:
            sc.append(_key_info(subject_key, ledger))

    statement = sub(
        a,
        q("AuthenticationStatement"),
        {
            "AuthenticationMethod": "urn:oasis:names:tc:SAML:1.0:am:X509-PKI",
            "AuthenticationInstant": format_time(now),
        },
    )
    subject_el(statement)
    if attributes:
        attr_statement = sub(a, q("AttributeStatement"))
        subject_el(attr_statement)
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


def validate_assertion(
    assertion: etree._Element,
    *,
    sts_key: rsa.RSAPublicKey,
    audience: str,
    now: float,
    skew: float = 300.0,
    expected: frozenset[Confirmation] | None = None,
    recipient: Identity | None = None,
    policy: dsig.SignaturePolicy | None = None,
    ledger: Ledger | None = None,
) -> ValidatedAssertion:
    """Check an assertion as a provider must: the STS signature covers this very element,
    the lifetime holds at ``now`` (with ``skew``), the audience is ours, the confirmation
    method is one we accept; for holder-of-key return the proof key."""
    if assertion.tag not in (ASSERTION1, ASSERTION2):
        raise InvalidSecurityToken(f"not a SAML assertion: {assertion.tag}")
    version = SamlVersion.V20 if assertion.tag == ASSERTION2 else SamlVersion.V11
    identifier = assertion_id(assertion)
    signature = one_child(assertion, ns.qname(ns.DS, "Signature"), "assertion ds:Signature")
    policy = policy or dsig.SignaturePolicy(allow_enveloped=True)
    if not policy.allow_enveloped:
        policy = dsig.SignaturePolicy(**{**policy.__dict__, "allow_enveloped": True})
    ids = dsig.index_ids(assertion.getroottree().getroot())
    verified = dsig.verify(signature, key=sts_key, policy=policy, ids=ids, ledger=ledger)
    if len(verified.references) != 1 or not verified.covers(assertion):
        raise FailedCheck("the STS signature does not cover this assertion", check="wrapping")
    if ids.get(identifier) is not assertion:
        raise FailedCheck("assertion id resolves to another element", check="wrapping")
    if version is SamlVersion.V20:
        q = lambda local: ns.qname(SAML2, local)  # noqa: E731
        issuer = text_of(assertion, q("Issuer"), "saml2:Issuer") or ""
        subject_el = one_child(assertion, q("Subject"), "saml2:Subject")
        name_id = one_child(subject_el, q("NameID"), "saml2:NameID")
        confirmations = [c for c in subject_el if c.tag == q("SubjectConfirmation")]
        if len(confirmations) != 1:
            raise InvalidSecurityToken("exactly one SubjectConfirmation is accepted")
        method = confirmations[0].get("Method")
        key_holder = confirmations[0].find(f"{q('SubjectConfirmationData')}/{_DS_KEYINFO}")
        conditions = one_child(assertion, q("Conditions"), "saml2:Conditions")
        audiences = conditions.findall(f"{q('AudienceRestriction')}/{q('Audience')}")
        confirmation = _confirmation(method, {c.value: c for c in Confirmation})
    else:
        q = lambda local: ns.qname(SAML1, local)  # noqa: E731
        issuer = assertion.get("Issuer") or ""
        statements = [s for s in assertion if s.find(q("Subject")) is not None]
        if not statements:
            raise InvalidSecurityToken("SAML 1.1 assertion without a subject")
        subject_el = statements[0].find(q("Subject"))
        name_id = one_child(subject_el, q("NameIdentifier"), "saml:NameIdentifier")
        sc = one_child(subject_el, q("SubjectConfirmation"), "saml:SubjectConfirmation")
        methods = [m.text for m in sc if m.tag == q("ConfirmationMethod")]
        if len(methods) != 1:
            raise InvalidSecurityToken("exactly one ConfirmationMethod is accepted")
        key_holder = sc.find(_DS_KEYINFO)
        conditions = one_child(assertion, q("Conditions"), "saml:Conditions")
        audiences = conditions.findall(f"{q('AudienceRestrictionCondition')}/{q('Audience')}")
        inverse = {uri: c for c, uri in ns.SAML1_CONFIRMATION.items()}
        confirmation = _confirmation((methods[0] or "").strip(), inverse)
    # NameID text must be a single text node: a comment inside could truncate it elsewhere.
    if len(name_id) or any(isinstance(n, etree._Comment) for n in name_id.iter()):
        raise InvalidSecurityToken("NameID must be plain text", check="wrapping")
    not_before = parse_time(conditions.get("NotBefore"), "Conditions/@NotBefore")
    not_after = parse_time(conditions.get("NotOnOrAfter"), "Conditions/@NotOnOrAfter")
    if now + skew < not_before:
        raise InvalidSecurityToken("assertion not yet valid", check="lifetime")
    if now - skew >= not_after:
        raise ExpiredData("assertion expired", check="lifetime")
    audience_values = [(a.text or "").strip() for a in audiences]
    if audience not in audience_values:
        raise FailedCheck("assertion audience is not this service", check="audience")
    if expected is not None and confirmation not in expected:
        raise InvalidSecurityToken(
            f"confirmation method {confirmation.name} not accepted", check="confirmation"
        )
    symmetric_key = public_key = None
    if confirmation is Confirmation.HOLDER_OF_KEY:
        if key_holder is None:
            raise InvalidSecurityToken("holder-of-key assertion without a key")
        symmetric_key, public_key = _subject_key(key_holder, recipient, ledger)
    return ValidatedAssertion(
        assertion,
        identifier,
        version,
        issuer,
        (name_id.text or "").strip(),
        confirmation,
        not_before,
        not_after,
        audience,
        symmetric_key,
        public_key,
    )


def _confirmation(method: str | None, table: dict) -> Confirmation:
    try:
        return table[method]
    except KeyError:
        raise InvalidSecurityToken(f"unknown confirmation method {method!r}") from None


def _subject_key(key_info: etree._Element, recipient: Identity | None, ledger):
    ek = one_child(key_info, xenc.ENCRYPTED_KEY, "xenc:EncryptedKey", required=False)
    if ek is not None:
        if recipient is None:
            raise InvalidSecurityToken("symmetric proof key but no recipient key to decrypt it")
        info = xenc.read_encrypted_key(ek, xenc.EncryptionPolicy())
        return xenc.decrypt_key(info, recipient.private_key, ledger=ledger), None
    value = key_info.find(f"{ns.qname(ns.DS, 'KeyValue')}/{ns.qname(ns.DS, 'RSAKeyValue')}")
    if value is None:
        raise InvalidSecurityToken("holder-of-key KeyInfo holds no supported key")
    modulus = int.from_bytes(unb64(value.findtext(ns.qname(ns.DS, "Modulus")), "ds:Modulus"), "big")
    exponent = int.from_bytes(
        unb64(value.findtext(ns.qname(ns.DS, "Exponent")), "ds:Exponent"), "big"
    )
    try:
        return None, rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except ValueError:
        raise InvalidSecurityToken("holder-of-key RSA key is invalid") from None
