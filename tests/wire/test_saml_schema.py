"""SAML assertions: STS signature checked by xmlsec1, validation, XSW variants (the strict\nreader of their schema positions: ``test_saml_schema.py``)."""

from __future__ import annotations

import copy
import os

import pytest
from lxml import etree

from sim.errors import (
    FailedCheck,
    InvalidSecurityToken,
)
from sim.wire import ns, saml
from sim.wire.ns import Confirmation
from sim.wire.saml import SamlVersion, SubjectKey
from tests.wire.saml_helpers import AUDIENCE, signed_assertion, unsigned_assertion, validate

# --- the strict reader: schema positions only, nothing unexpected, whole text -------------


def _q(version, local):
    return ns.qname(ns.SAML2 if version is SamlVersion.V20 else ns.SAML1, local)


def _signed(keystore, version, edit=None, *, confirmation=Confirmation.BEARER, **kwargs):
    """An assertion ``edit``-ed and then signed by the STS (what a careless or hostile STS
    could issue), read back from its bytes."""
    a = unsigned_assertion(version, confirmation, **kwargs)
    if edit is not None:
        edit(a)
    saml.sign_assertion(a, keystore.identity("sts"))
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
        validate(keystore, a)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_the_strict_reader_accepts_what_the_sts_writes(keystore, version):
    """The control of the refusals above."""
    checked = validate(keystore, _signed(keystore, version))
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
    a = signed_assertion(keystore, version)
    _signature_edit(IN_SIGNATURE[case])(a)
    with pytest.raises(InvalidSecurityToken, match=r"ds:|saml"):
        validate(keystore, etree.fromstring(etree.tostring(a)))


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
        validate(keystore, a)


def test_saml11_statements_naming_different_subjects_are_refused(keystore):
    def edit(a):
        other = a.find(
            f"{_q(SamlVersion.V11, 'AttributeStatement')}/{_q(SamlVersion.V11, 'Subject')}"
        )
        other.find(_q(SamlVersion.V11, "NameIdentifier")).text = "admin"

    a = _signed(keystore, SamlVersion.V11, edit)
    with pytest.raises(InvalidSecurityToken, match="different subjects"):
        validate(keystore, a)


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
    assert validate(keystore, a).symmetric_key == key


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
        assert validate(keystore, a).audience == AUDIENCE
    else:
        with pytest.raises(FailedCheck, match="audience"):
            validate(keystore, a)


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
    a = signed_assertion(keystore, version)
    _split(next(a.iter(_q(version, local))), 5)
    with pytest.raises(InvalidSecurityToken, match="comment"):
        validate(keystore, etree.fromstring(etree.tostring(a)))


def test_an_audience_with_a_comment_does_not_match_its_prefix(keystore):
    """Issued for .../service-billing: .../service<!---->-billing is not .../service."""
    a = _signed(keystore, SamlVersion.V20, _restrictions([[AUDIENCE + "-billing"]]))
    _split(next(a.iter(_q(SamlVersion.V20, "Audience"))), len(AUDIENCE))
    with pytest.raises(InvalidSecurityToken, match="comment"):
        validate(keystore, a)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_the_issuer_must_be_the_trusted_sts(keystore, version):
    a = etree.fromstring(etree.tostring(signed_assertion(keystore, version)))
    assert validate(keystore, a, issuer="https://sts.example/").issuer == "https://sts.example/"
    with pytest.raises(FailedCheck, match="issuer"):
        validate(keystore, a, issuer="https://other-sts.example/")


@pytest.mark.parametrize("version", list(SamlVersion))
def test_a_lifetime_that_ends_before_it_starts_is_refused(keystore, version):
    def edit(a):
        conditions = a.find(_q(version, "Conditions"))
        conditions.set("NotOnOrAfter", conditions.get("NotBefore"))

    with pytest.raises(InvalidSecurityToken, match="NotBefore"):
        validate(keystore, _signed(keystore, version, edit))
