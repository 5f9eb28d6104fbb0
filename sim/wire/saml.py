"""SAML 1.1 and 2.0 assertions issued and signed by an STS, and their strict validation.

Subject confirmation: bearer, holder-of-key with a symmetric proof key (an EncryptedKey for
the provider inside the subject's KeyInfo), holder-of-key with a public key (KeyValue of the
client's key), and sender-vouches. The STS signs each assertion with an enveloped signature;
validation insists that the verified element is the assertion being used (no wrapping), and
reads every statement, subject, condition and key only at its schema position in that
element, refusing anything else there (``sim/wire/saml_schema.py``; see
:func:`validate_assertion`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from sim.errors import ExpiredData, FailedCheck, InvalidSecurityToken
from sim.wire import dsig, ns, xenc
from sim.wire.keys import Identity
from sim.wire.ledger import Ledger
from sim.wire.ns import Confirmation, DigestAlg, SignatureAlg
from sim.wire.saml_schema import ASSERTION1, ASSERTION2, SAML1, SAML2, SamlVersion, read
from sim.wire.wss import (
    TokenReference,
    read_str,
    str_issuer_serial,
    str_key_identifier_text,
    str_reference_text,
)
from sim.wire.xmlutil import (
    b64,
    faults_as,
    format_time,
    fragment,
    fresh_bytes,
    new_id,
    one_child,
    sub,
    unb64,
    whole_text,
)

ENCRYPTED_ASSERTION2 = ns.qname(SAML2, "EncryptedAssertion")
_DS_KEYINFO = ns.qname(ns.DS, "KeyInfo")


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
            fragment(
                xenc.encrypted_key_text(
                    subject_key.symmetric_key,
                    subject_key.recipient.public_key,
                    key_info=etree.tostring(str_issuer_serial(subject_key.recipient)).decode(),
                    ledger=ledger,
                )[0]
            )
        )
    elif subject_key.public_key is not None:
        key_info.append(key_value(subject_key.public_key))
    else:
        raise ValueError("holder-of-key needs a symmetric key or a public key")
    return key_info


def key_value(public_key: rsa.RSAPublicKey) -> etree._Element:
    """A ds:KeyValue holding ``public_key`` (a holder-of-key subject's key, a UseKey)."""
    numbers = public_key.public_numbers()
    value = etree.Element(ns.qname(ns.DS, "KeyValue"), nsmap={"ds": ns.DS})
    rsa_el = sub(value, ns.qname(ns.DS, "RSAKeyValue"))
    for name, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
        sub(
            rsa_el,
            ns.qname(ns.DS, name),
            text=b64(number.to_bytes((number.bit_length() + 7) // 8, "big")),
        )
    return value


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
    build = _assertion2 if version is SamlVersion.V20 else _assertion1
    return build(
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


#: the wsse11:TokenType and the KeyIdentifier ValueType of each version's assertion
TOKEN_TYPES = {
    SamlVersion.V20: ns.TokenType.SAML20.value,
    SamlVersion.V11: ns.TokenType.SAML11.value,
}
VALUE_TYPES = {
    SamlVersion.V20: ns.ValueType.SAML2_ID.value,
    SamlVersion.V11: ns.ValueType.SAML_ASSERTION_ID.value,
}


def assertion_version(assertion: etree._Element) -> SamlVersion:
    """The SAML version of an assertion element (2.0 or else 1.1)."""
    return SamlVersion.V20 if assertion.tag == ASSERTION2 else SamlVersion.V11


def assertion_uri(issuer: str, identifier: str) -> str:
    """Where ``issuer`` returns the assertion ``identifier`` (SAML 2.0 bindings §3.7, the URI
    binding, with its ``ID`` parameter): how a message names an assertion it does not
    carry."""
    return f"{issuer}?ID={quote(identifier, safe='')}"


def assertion_reference(identifier: str, version: SamlVersion) -> etree._Element:
    """The STR by which a message's key names the assertion ``identifier`` the message
    carries: a Reference to its ID (WS-I BSP 1.1 R6610), with the TokenType of its version
    (R6611, R6617); a SAML 2.0 Reference has no ValueType (R6614), a 1.1 one the
    SAMLAssertionID ValueType (R3059, as WSS4J writes it)."""
    value_type = None if version is SamlVersion.V20 else VALUE_TYPES[version]
    return fragment(
        str_reference_text(f"#{identifier}", value_type, token_type=TOKEN_TYPES[version])
    )


def external_assertion_reference(
    identifier: str, version: SamlVersion, issuer: str
) -> etree._Element:
    """The STR by which a message's key names the assertion ``identifier`` it does not
    carry (a response naming the request's token): a SAML 2.0 assertion by a Reference to
    its URI at ``issuer`` (:func:`assertion_uri`; BSP 1.1 R6613), a 1.1 assertion by its
    KeyIdentifier (the one reference the SAML Token Profile gives it outside the message);
    either with the TokenType of its version."""
    if version is SamlVersion.V20:
        text = str_reference_text(
            assertion_uri(issuer, identifier), token_type=TOKEN_TYPES[version]
        )
    else:
        text = str_key_identifier_text(
            identifier, VALUE_TYPES[version], token_type=TOKEN_TYPES[version]
        )
    return fragment(text)


def is_reference(reference: TokenReference, expected: etree._Element) -> bool:
    """Whether ``reference``, read from a message, is exactly the STR ``expected`` (one of
    the two above, as our senders write it): the receivers accept no other form."""
    return reference == read_str(expected)


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
    ek = fragment(
        xenc.encrypted_key_text(
            key,
            recipient.public_key,
            key_info=etree.tostring(str_issuer_serial(recipient)).decode(),
            ledger=ledger,
        )[0]
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
    reading = read(assertion)
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


@faults_as(InvalidSecurityToken)
def _proof_key(
    holder: etree._Element, recipient: Identity | None, ledger: Ledger | None
) -> tuple[bytes | None, rsa.RSAPublicKey | None]:
    """The proof key in ``holder`` (``saml_schema.Reading.proof``): decrypted with the
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
