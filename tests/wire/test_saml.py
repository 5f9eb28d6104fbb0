"""SAML assertions: STS signature checked by xmlsec1, strict validation, XSW variants."""

from __future__ import annotations

import copy
import os

import pytest
import xmlsec
from lxml import etree

from sim.errors import (
    ExpiredData,
    FailedCheck,
    InvalidSecurity,
    InvalidSecurityToken,
    UnsupportedAlgorithm,
)
from sim.wire import dsig, ns, saml, soap
from sim.wire.ns import Confirmation, DigestAlg, SignatureAlg
from sim.wire.saml import SamlVersion, SubjectKey
from tests.wire.helpers import xmlsec1_verify

AUDIENCE = "https://provider.example/service"


def _assertion(
    keystore,
    version=SamlVersion.V20,
    confirmation=Confirmation.BEARER,
    *,
    algorithm=SignatureAlg.RSA_SHA1,
    digest=DigestAlg.SHA1,
    **kwargs,
):
    sts = keystore.identity("sts")
    a = saml.build_assertion(
        issuer="https://sts.example/",
        subject="alice",
        audience=AUDIENCE,
        now=100.0,
        lifetime=3600.0,
        confirmation=confirmation,
        version=version,
        attributes={"role": "buyer"},
        **kwargs,
    )
    return saml.sign_assertion(a, sts, algorithm=algorithm, digest=digest)


def _id_attr(version):
    if version is SamlVersion.V20:
        return [("ID", f"{ns.SAML2}:Assertion")]
    return [("AssertionID", f"{ns.SAML1}:Assertion")]


@pytest.mark.parametrize("version", list(SamlVersion))
def test_sts_signature_verifies_with_xmlsec1(keystore, xmlsec1, tmp_path, version):
    a = _assertion(keystore, version)
    (tmp_path / "sts.pem").write_bytes(keystore.identity("sts").pem)
    code, err = xmlsec1_verify(
        xmlsec1,
        tmp_path,
        etree.tostring(a),
        "--pubkey-cert-pem",
        str(tmp_path / "sts.pem"),
        id_attrs=_id_attr(version),
    )
    assert code == 0, err


def _validate(keystore, a, now=200.0, **kwargs):
    return saml.validate_assertion(
        a,
        sts_key=keystore.identity("sts").public_key,
        audience=AUDIENCE,
        now=now,
        recipient=keystore.identity("provider"),
        **kwargs,
    )


@pytest.mark.parametrize("version", list(SamlVersion))
def test_holder_of_key_symmetric_yields_the_proof_key(keystore, version):
    key = os.urandom(32)
    a = _assertion(
        keystore,
        version,
        Confirmation.HOLDER_OF_KEY,
        subject_key=SubjectKey(symmetric_key=key, recipient=keystore.identity("provider")),
    )
    received = etree.fromstring(etree.tostring(a))
    checked = _validate(keystore, received)
    assert checked.symmetric_key == key and checked.subject == "alice"


def test_holder_of_key_public_yields_the_client_key(keystore):
    client = keystore.identity("client-0")
    a = _assertion(
        keystore,
        confirmation=Confirmation.HOLDER_OF_KEY,
        subject_key=SubjectKey(public_key=client.public_key),
    )
    checked = _validate(keystore, etree.fromstring(etree.tostring(a)))
    assert checked.public_key.public_numbers() == client.public_key.public_numbers()


@pytest.mark.parametrize("version", list(SamlVersion))
def test_encrypted_assertion_round_trip_and_python_xmlsec_decrypts_it(keystore, tmp_path, version):
    provider = keystore.identity("provider")
    holder = etree.Element("holder")
    holder.append(_assertion(keystore, version))
    saml.encrypt_assertion(holder[0], provider)
    data = etree.tostring(holder)
    assert b"alice" not in data
    from cryptography.hazmat.primitives import serialization

    pem = tmp_path / "p.key"
    pem.write_bytes(
        provider.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(pem), xmlsec.constants.KeyDataFormatPem))
    independent = etree.fromstring(data)
    decrypted = xmlsec.EncryptionContext(manager).decrypt(
        independent.find(f".//{{{ns.XENC}}}EncryptedData")
    )
    assert etree.QName(decrypted).localname == "Assertion"
    ours = etree.fromstring(data)
    assertion = saml.decrypt_assertion(ours[0], provider)
    assert _validate(keystore, assertion).subject == "alice"


def test_expired_and_not_yet_valid_assertions_are_refused(keystore):
    a = etree.fromstring(etree.tostring(_assertion(keystore)))
    with pytest.raises(ExpiredData):
        _validate(keystore, a, now=100.0 + 3600.0 + 301.0)
    with pytest.raises(InvalidSecurityToken, match="not yet valid"):
        _validate(keystore, a, now=100.0 - 301.0)


def test_wrong_audience_is_refused(keystore):
    a = etree.fromstring(etree.tostring(_assertion(keystore)))
    with pytest.raises(FailedCheck, match="audience"):
        saml.validate_assertion(
            a, sts_key=keystore.identity("sts").public_key, audience="https://other/", now=200.0
        )


def test_unexpected_confirmation_method_is_refused(keystore):
    a = etree.fromstring(etree.tostring(_assertion(keystore)))
    with pytest.raises(InvalidSecurityToken, match="confirmation"):
        _validate(keystore, a, expected=frozenset({Confirmation.HOLDER_OF_KEY}))


def test_assertion_signed_by_another_key_is_refused(keystore):
    a = etree.fromstring(etree.tostring(_assertion(keystore)))
    with pytest.raises(FailedCheck):
        saml.validate_assertion(
            a, sts_key=keystore.identity("client-0").public_key, audience=AUDIENCE, now=200.0
        )


def _in_envelope(assertion):
    env = soap.new_envelope()
    env.header.append(assertion)
    return env


def _xsw(keystore, build, version):
    """Apply an attack to a signed assertion in a message; return the assertion consumed."""
    env = _in_envelope(_assertion(keystore, version))
    build(env).set("{urn:test}consumed", "1")  # the evil assertion an application would read
    root = etree.fromstring(etree.tostring(env.root))
    return root.xpath("//*[@t:consumed]", namespaces={"t": "urn:test"})[0]


def _evil(original):
    evil = copy.deepcopy(original)
    subject = evil.find(f".//{{{ns.SAML2}}}NameID")
    if subject is None:  # SAML 1.1
        subject = evil.find(f".//{{{ns.SAML1}}}NameIdentifier")
    subject.text = "admin"
    evil.remove(evil.find(ns.qname(ns.DS, "Signature")))
    return evil


def _set_evil_id(evil):
    name = "ID" if evil.get("ID") is not None else "AssertionID"
    evil.set(name, "_evil00000000000000000000000000000000")


XSW_ATTACKS = {
    # XSW1/2: evil assertion placed first, original moved under it / beside it with a new id
    "xsw1-original-inside-evil": lambda env: _wrap(env, inside=True, new_id=True),
    "xsw2-original-after-evil": lambda env: _wrap(env, inside=False, new_id=True),
    # XSW3/4: evil assertion with the SAME id as the original (duplicate ids)
    "xsw3-evil-same-id-before": lambda env: _wrap(env, inside=False, new_id=False),
    "xsw4-original-inside-evil-same-id": lambda env: _wrap(env, inside=True, new_id=False),
    # XSW5: the signature of the original moved into the evil assertion
    "xsw5-signature-moved-to-evil": lambda env: _move_signature(env),
    # XSW6: evil copy nested inside the original's signature
    "xsw6-evil-inside-signature": lambda env: _inside_signature(env),
    # XSW7: original wrapped in an Extensions-like element, evil in its place
    "xsw7-original-in-extensions": lambda env: _extensions(env),
    # XSW8: original inside the evil assertion's Signature/Object
    "xsw8-original-in-object": lambda env: _in_object(env),
}


def _wrap(env, *, inside: bool, new_id: bool):
    original = env.header[-1]
    evil = _evil(original)
    if new_id:
        _set_evil_id(evil)
    original.addprevious(evil)
    if inside:
        evil.append(original)
    return evil


def _move_signature(env):
    original = env.header[-1]
    evil = _evil(original)
    evil.insert(1, copy.deepcopy(original.find(ns.qname(ns.DS, "Signature"))))
    env.header.replace(original, evil)
    holder = etree.SubElement(env.header, f"{{{ns.APP}}}Holder")
    holder.append(original)
    return evil


def _inside_signature(env):
    original = env.header[-1]
    evil = _evil(original)
    _set_evil_id(evil)
    obj = etree.SubElement(original.find(ns.qname(ns.DS, "Signature")), ns.qname(ns.DS, "Object"))
    obj.append(evil)
    return evil


def _extensions(env):
    original = env.header[-1]
    evil = _evil(original)
    holder = etree.Element(f"{{{ns.SAML2}}}Extensions")
    env.header.replace(original, evil)
    holder.append(original)
    env.header.append(holder)
    return evil


def _in_object(env):
    original = env.header[-1]
    evil = _evil(original)
    signature = copy.deepcopy(original.find(ns.qname(ns.DS, "Signature")))
    evil.insert(1, signature)
    obj = etree.SubElement(signature, ns.qname(ns.DS, "Object"))
    env.header.replace(original, evil)
    obj.append(original)
    return evil


@pytest.mark.parametrize("version", list(SamlVersion))
@pytest.mark.parametrize("attack", sorted(XSW_ATTACKS))
def test_signature_wrapping_variants_are_refused(keystore, attack, version):
    consumed = _xsw(keystore, XSW_ATTACKS[attack], version)
    assert consumed.tag == (saml.ASSERTION2 if version is SamlVersion.V20 else saml.ASSERTION1)
    with pytest.raises((FailedCheck, InvalidSecurity, InvalidSecurityToken)):
        _validate(keystore, consumed)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_the_untouched_assertion_in_a_message_validates(keystore, version):
    """The control for the wrapping tests: without the attack, the same path accepts."""
    env = _in_envelope(_assertion(keystore, version))
    root = etree.fromstring(etree.tostring(env.root))
    assertion = root.find(
        f".//{saml.ASSERTION2 if version is SamlVersion.V20 else saml.ASSERTION1}"
    )
    assert _validate(keystore, assertion).subject == "alice"


@pytest.mark.parametrize("version", list(SamlVersion))
def test_rsa_sha256_signed_assertion_verifies_with_xmlsec1_and_validates(
    keystore, xmlsec1, tmp_path, version
):
    sts = keystore.identity("sts")
    a = _assertion(keystore, version, algorithm=SignatureAlg.RSA_SHA256, digest=DigestAlg.SHA256)
    data = etree.tostring(a)
    assert SignatureAlg.RSA_SHA256.value.encode() in data
    (tmp_path / "sts.pem").write_bytes(sts.pem)
    code, err = xmlsec1_verify(
        xmlsec1,
        tmp_path,
        data,
        "--pubkey-cert-pem",
        str(tmp_path / "sts.pem"),
        id_attrs=_id_attr(version),
    )
    assert code == 0, err
    policy = dsig.SignaturePolicy(
        signature_algorithms=frozenset({SignatureAlg.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlg.SHA256}),
        allow_enveloped=True,
    )
    assert _validate(keystore, etree.fromstring(data), policy=policy).subject == "alice"
    with pytest.raises(UnsupportedAlgorithm):  # a provider that accepts RSA-SHA1 only
        _validate(keystore, etree.fromstring(data), policy=dsig.SignaturePolicy())


@pytest.mark.parametrize("version", list(SamlVersion))
def test_sender_vouches_assertion_validates_only_where_expected(keystore, version):
    a = etree.fromstring(
        etree.tostring(_assertion(keystore, version, confirmation=Confirmation.SENDER_VOUCHES))
    )
    method = (
        Confirmation.SENDER_VOUCHES.value
        if version is SamlVersion.V20
        else (ns.SAML1_CONFIRMATION[Confirmation.SENDER_VOUCHES])
    )
    assert method.encode() in etree.tostring(a)
    checked = _validate(keystore, a, expected=frozenset({Confirmation.SENDER_VOUCHES}))
    assert checked.confirmation is Confirmation.SENDER_VOUCHES
    with pytest.raises(InvalidSecurityToken):
        _validate(keystore, a, expected=frozenset({Confirmation.BEARER}))


def test_comment_inside_name_id_is_refused(keystore):
    a = _assertion(keystore)
    name_id = a.find(f".//{{{ns.SAML2}}}NameID")
    name_id.text = "admin"
    name_id.append(etree.Comment("x"))
    name_id[0].tail = "@evil.example"
    saml_resigned = saml.sign_assertion(_strip_signature(a), keystore.identity("sts"))
    with pytest.raises(InvalidSecurityToken, match="comment"):
        _validate(keystore, etree.fromstring(etree.tostring(saml_resigned)))


def _strip_signature(a):
    a.remove(a.find(ns.qname(ns.DS, "Signature")))
    return a


# --- the strict reader: schema positions only, nothing unexpected, whole text -------------


def _q(version, local):
    return ns.qname(ns.SAML2 if version is SamlVersion.V20 else ns.SAML1, local)


def _signed(keystore, version, edit=None, *, confirmation=Confirmation.BEARER, **kwargs):
    """An assertion ``edit``-ed and then signed by the STS (what a careless or hostile STS
    could issue), read back from its bytes."""
    sts = keystore.identity("sts")
    a = saml.build_assertion(
        issuer="https://sts.example/",
        subject="alice",
        audience=AUDIENCE,
        now=100.0,
        lifetime=3600.0,
        confirmation=confirmation,
        version=version,
        attributes={"role": "buyer"},
        **kwargs,
    )
    if edit is not None:
        edit(a)
    saml.sign_assertion(a, sts)
    return etree.fromstring(etree.tostring(a))


def _subject_of(a):
    if a.tag == saml.ASSERTION2:
        return a.find(ns.qname(ns.SAML2, "Subject"))
    return a.find(
        f"{ns.qname(ns.SAML1, 'AuthenticationStatement')}/{ns.qname(ns.SAML1, 'Subject')}"
    )


def _confirmation_of(a):
    return _subject_of(a).find(_q(_version(a), "SubjectConfirmation"))


def _version(a):
    return SamlVersion.V20 if a.tag == saml.ASSERTION2 else SamlVersion.V11


def _append(parent_of, tag_of):
    def edit(a):
        etree.SubElement(parent_of(a), tag_of(_version(a)))

    return edit


UNEXPECTED = {
    "advice-in-assertion": _append(lambda a: a, lambda v: _q(v, "Advice")),
    "second-subject": lambda a: (
        a.insert(2, copy.deepcopy(_subject_of(a)))
        if a.tag == saml.ASSERTION2
        else _subject_of(a).getparent().append(copy.deepcopy(_subject_of(a)))
    ),
    "foreign-child-of-subject": _append(_subject_of, lambda v: f"{{{ns.APP}}}Extra"),
    "second-confirmation": _append(_subject_of, lambda v: _q(v, "SubjectConfirmation")),
    "name-in-confirmation": _append(
        _confirmation_of, lambda v: _q(v, "NameID" if v is SamlVersion.V20 else "NameIdentifier")
    ),
    "confirmation-data-for-bearer": _append(
        _confirmation_of, lambda v: _q(v, "SubjectConfirmationData")
    ),
    "unknown-condition": _append(
        lambda a: a.find(_q(_version(a), "Conditions")),
        lambda v: _q(v, "OneTimeUse" if v is SamlVersion.V20 else "DoNotCacheCondition"),
    ),
    "empty-audience-restriction": _append(
        lambda a: a.find(_q(_version(a), "Conditions")),
        lambda v: _q(
            v, "AudienceRestriction" if v is SamlVersion.V20 else "AudienceRestrictionCondition"
        ),
    ),
    "conditions-after-statements": lambda a: a.append(a.find(_q(_version(a), "Conditions"))),
    "comment-between-elements": lambda a: _subject_of(a).insert(0, etree.Comment("x")),
    "text-in-element-content": lambda a: setattr(_subject_of(a), "text", "admin"),
    "second-attribute-value-name": lambda a: (
        next(a.iter(_q(_version(a), "Attribute")))
        .getparent()
        .append(copy.deepcopy(next(a.iter(_q(_version(a), "Attribute")))))
    ),
}


@pytest.mark.parametrize("version", list(SamlVersion))
@pytest.mark.parametrize("case", sorted(UNEXPECTED))
def test_what_the_schema_does_not_put_there_is_refused_even_when_signed(keystore, version, case):
    a = _signed(keystore, version, UNEXPECTED[case])
    with pytest.raises(InvalidSecurityToken):
        _validate(keystore, a)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_the_strict_reader_accepts_what_the_sts_writes(keystore, version):
    """The control of the refusals above."""
    checked = _validate(keystore, _signed(keystore, version))
    assert checked.subject == "alice" and checked.attributes == {"role": ("buyer",)}
    assert checked.issuer == "https://sts.example/"


def _signature_edit(edit):
    """Change the assertion's own ds:Signature after signing: the enveloped-signature
    transform keeps all of it out of the digest, so the signature still verifies."""

    def apply(a):
        edit(a, a.find(ns.qname(ns.DS, "Signature")))
        return a

    return apply


IN_SIGNATURE = {
    "object": lambda a, s: etree.SubElement(s, ns.qname(ns.DS, "Object")),
    "subject": lambda a, s: s.append(copy.deepcopy(_subject_of(a))),
    "key-info-extra": lambda a, s: etree.SubElement(
        s.find(ns.qname(ns.DS, "KeyInfo")), ns.qname(ns.DS, "KeyName")
    ),
    "str-extra": lambda a, s: etree.SubElement(
        s.find(ns.qname(ns.DS, "KeyInfo"))[0], ns.qname(ns.DS, "X509Data")
    ),
    "issuer-serial-extra": lambda a, s: etree.SubElement(
        next(s.iter(ns.qname(ns.DS, "X509IssuerSerial"))), ns.qname(ns.DS, "X509SKI")
    ),
    "signature-value-comment": lambda a, s: s.find(ns.qname(ns.DS, "SignatureValue")).append(
        etree.Comment("x")
    ),
    "moved-first": lambda a, s: a.insert(0, s),
    "moved-after-subject": lambda a, s: (
        _subject_of(a).addnext(s) if a.tag == saml.ASSERTION2 else a.insert(0, s)
    ),
}


@pytest.mark.parametrize("version", list(SamlVersion))
@pytest.mark.parametrize("case", sorted(IN_SIGNATURE))
def test_the_assertions_own_signature_holds_only_what_dsig_expects(keystore, version, case):
    a = _assertion(keystore, version)
    _signature_edit(IN_SIGNATURE[case])(a)
    with pytest.raises(InvalidSecurityToken, match=r"ds:|saml"):
        _validate(keystore, etree.fromstring(etree.tostring(a)))


@pytest.mark.parametrize("version", list(SamlVersion))
def test_a_proof_key_outside_its_schema_position_is_not_read(keystore, version):
    """A holder-of-key assertion whose KeyInfo also holds a second key (signed by the STS):
    refused, not the first or the last one taken."""
    client = keystore.identity("client-0")

    def edit(a):  # in every statement's subject (SAML 1.1 repeats it)
        for key_info in list(a.iter(ns.qname(ns.DS, "KeyInfo"))):
            key_info.append(copy.deepcopy(key_info[0]))

    a = _signed(
        keystore,
        version,
        edit,
        confirmation=Confirmation.HOLDER_OF_KEY,
        subject_key=SubjectKey(public_key=client.public_key),
    )
    with pytest.raises(InvalidSecurityToken, match="KeyInfo"):
        _validate(keystore, a)


def test_saml11_statements_naming_different_subjects_are_refused(keystore):
    def edit(a):
        other = a.find(
            f"{_q(SamlVersion.V11, 'AttributeStatement')}/{_q(SamlVersion.V11, 'Subject')}"
        )
        other.find(_q(SamlVersion.V11, "NameIdentifier")).text = "admin"

    a = _signed(keystore, SamlVersion.V11, edit)
    with pytest.raises(InvalidSecurityToken, match="different subjects"):
        _validate(keystore, a)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_saml11_and_20_holder_of_key_subjects_repeat_one_proof_key(keystore, version):
    key = os.urandom(32)
    a = _signed(
        keystore,
        version,
        confirmation=Confirmation.HOLDER_OF_KEY,
        subject_key=SubjectKey(symmetric_key=key, recipient=keystore.identity("provider")),
    )
    assert len(list(a.iter(ns.qname(ns.XENC, "EncryptedKey")))) == (
        2 if version is SamlVersion.V11 else 1
    )
    assert _validate(keystore, a).symmetric_key == key


def _restrictions(audiences):
    def edit(a):
        version = _version(a)
        tag = (
            "AudienceRestriction" if version is SamlVersion.V20 else "AudienceRestrictionCondition"
        )
        conditions = a.find(_q(version, "Conditions"))
        for old in list(conditions):
            conditions.remove(old)
        for values in audiences:
            holder = etree.SubElement(conditions, _q(version, tag))
            for value in values:
                etree.SubElement(holder, _q(version, "Audience")).text = value

    return edit


@pytest.mark.parametrize("version", list(SamlVersion))
@pytest.mark.parametrize(
    ("audiences", "accepted"),
    [
        ([[AUDIENCE]], True),
        ([["https://other/", AUDIENCE]], True),  # any audience of one restriction
        ([[AUDIENCE], [AUDIENCE, "https://other/"]], True),
        ([["https://other/"], [AUDIENCE]], False),  # every restriction must hold
        ([[AUDIENCE], ["https://other/"]], False),
    ],
)
def test_every_audience_restriction_holds_and_any_audience_within_one(
    keystore, version, audiences, accepted
):
    a = _signed(keystore, version, _restrictions(audiences))
    if accepted:
        assert _validate(keystore, a).audience == AUDIENCE
    else:
        with pytest.raises(FailedCheck, match="audience"):
            _validate(keystore, a)


def _split(el, at):
    text = el.text
    el.text = text[:at]
    comment = etree.Comment("")
    comment.tail = text[at:]
    el.insert(0, comment)


@pytest.mark.parametrize("version", list(SamlVersion))
@pytest.mark.parametrize("local", ["Audience", "NameID", "Issuer", "ConfirmationMethod"])
def test_a_comment_in_any_value_read_is_refused(keystore, version, local):
    """Added after signing: C14N drops comments, so the STS signature still verifies."""
    if version is SamlVersion.V11 and local in ("NameID", "Issuer"):
        local = {"NameID": "NameIdentifier", "Issuer": "AttributeValue"}[local]
    if version is SamlVersion.V20 and local == "ConfirmationMethod":
        local = "AuthnContextClassRef"
    a = _assertion(keystore, version)
    _split(next(a.iter(_q(version, local))), 5)
    with pytest.raises(InvalidSecurityToken, match="comment"):
        _validate(keystore, etree.fromstring(etree.tostring(a)))


def test_an_audience_with_a_comment_does_not_match_its_prefix(keystore):
    """Issued for .../service-billing: .../service<!---->-billing is not .../service."""
    a = _signed(keystore, SamlVersion.V20, _restrictions([[AUDIENCE + "-billing"]]))
    _split(next(a.iter(_q(SamlVersion.V20, "Audience"))), len(AUDIENCE))
    with pytest.raises(InvalidSecurityToken, match="comment"):
        _validate(keystore, a)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_the_issuer_must_be_the_trusted_sts(keystore, version):
    a = etree.fromstring(etree.tostring(_assertion(keystore, version)))
    assert _validate(keystore, a, issuer="https://sts.example/").issuer == "https://sts.example/"
    with pytest.raises(FailedCheck, match="issuer"):
        _validate(keystore, a, issuer="https://other-sts.example/")


@pytest.mark.parametrize("version", list(SamlVersion))
def test_a_lifetime_that_ends_before_it_starts_is_refused(keystore, version):
    def edit(a):
        conditions = a.find(_q(version, "Conditions"))
        conditions.set("NotOnOrAfter", conditions.get("NotBefore"))

    with pytest.raises(InvalidSecurityToken, match="NotBefore"):
        _validate(keystore, _signed(keystore, version, edit))
