"""SAML assertions: STS signature checked by xmlsec1, validation, XSW variants (the strict\nreader of their schema positions: ``test_saml_schema.py``)."""

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
from tests.wire.helpers import xmlsec1_verify, xmlsec_private_keys
from tests.wire.saml_helpers import AUDIENCE, signed_assertion, validate


def _id_attr(version):
    if version is SamlVersion.V20:
        return [("ID", f"{ns.SAML2}:Assertion")]
    return [("AssertionID", f"{ns.SAML1}:Assertion")]


@pytest.mark.parametrize("version", list(SamlVersion))
def test_sts_signature_verifies_with_xmlsec1(keystore, xmlsec1, tmp_path, version):
    a = signed_assertion(keystore, version)
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


@pytest.mark.parametrize("version", list(SamlVersion))
def test_holder_of_key_symmetric_yields_the_proof_key(keystore, version):
    key = os.urandom(32)
    a = signed_assertion(
        keystore,
        version,
        Confirmation.HOLDER_OF_KEY,
        subject_key=SubjectKey(symmetric_key=key, recipient=keystore.identity("provider")),
    )
    received = etree.fromstring(etree.tostring(a))
    checked = validate(keystore, received)
    assert checked.symmetric_key == key and checked.subject == "alice"


def test_holder_of_key_public_yields_the_client_key(keystore):
    client = keystore.identity("client-0")
    a = signed_assertion(
        keystore,
        confirmation=Confirmation.HOLDER_OF_KEY,
        subject_key=SubjectKey(public_key=client.public_key),
    )
    checked = validate(keystore, etree.fromstring(etree.tostring(a)))
    assert checked.public_key.public_numbers() == client.public_key.public_numbers()


@pytest.mark.parametrize("version", list(SamlVersion))
def test_encrypted_assertion_round_trip_and_python_xmlsec_decrypts_it(keystore, tmp_path, version):
    provider = keystore.identity("provider")
    holder = etree.Element("holder")
    holder.append(signed_assertion(keystore, version))
    saml.encrypt_assertion(holder[0], provider)
    data = etree.tostring(holder)
    assert b"alice" not in data
    manager = xmlsec_private_keys(provider, tmp_path)
    independent = etree.fromstring(data)
    decrypted = xmlsec.EncryptionContext(manager).decrypt(
        independent.find(f".//{{{ns.XENC}}}EncryptedData")
    )
    assert etree.QName(decrypted).localname == "Assertion"
    ours = etree.fromstring(data)
    assertion = saml.decrypt_assertion(ours[0], provider)
    assert validate(keystore, assertion).subject == "alice"


def test_expired_and_not_yet_valid_assertions_are_refused(keystore):
    a = etree.fromstring(etree.tostring(signed_assertion(keystore)))
    with pytest.raises(ExpiredData):
        validate(keystore, a, now=100.0 + 3600.0 + 301.0)
    with pytest.raises(InvalidSecurityToken, match="not yet valid"):
        validate(keystore, a, now=100.0 - 301.0)


def test_wrong_audience_is_refused(keystore):
    a = etree.fromstring(etree.tostring(signed_assertion(keystore)))
    with pytest.raises(FailedCheck, match="audience"):
        saml.validate_assertion(
            a, sts_key=keystore.identity("sts").public_key, audience="https://other/", now=200.0
        )


def test_unexpected_confirmation_method_is_refused(keystore):
    a = etree.fromstring(etree.tostring(signed_assertion(keystore)))
    with pytest.raises(InvalidSecurityToken, match="confirmation"):
        validate(keystore, a, expected=frozenset({Confirmation.HOLDER_OF_KEY}))


def test_assertion_signed_by_another_key_is_refused(keystore):
    a = etree.fromstring(etree.tostring(signed_assertion(keystore)))
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
    env = _in_envelope(signed_assertion(keystore, version))
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
        validate(keystore, consumed)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_the_untouched_assertion_in_a_message_validates(keystore, version):
    """The control for the wrapping tests: without the attack, the same path accepts."""
    env = _in_envelope(signed_assertion(keystore, version))
    root = etree.fromstring(etree.tostring(env.root))
    assertion = root.find(
        f".//{saml.ASSERTION2 if version is SamlVersion.V20 else saml.ASSERTION1}"
    )
    assert validate(keystore, assertion).subject == "alice"


@pytest.mark.parametrize("version", list(SamlVersion))
def test_rsa_sha256_signed_assertion_verifies_with_xmlsec1_and_validates(
    keystore, xmlsec1, tmp_path, version
):
    sts = keystore.identity("sts")
    a = signed_assertion(
        keystore, version, algorithm=SignatureAlg.RSA_SHA256, digest=DigestAlg.SHA256
    )
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
    assert validate(keystore, etree.fromstring(data), policy=policy).subject == "alice"
    with pytest.raises(UnsupportedAlgorithm):  # a provider that accepts RSA-SHA1 only
        validate(keystore, etree.fromstring(data), policy=dsig.SignaturePolicy())


@pytest.mark.parametrize("version", list(SamlVersion))
def test_sender_vouches_assertion_validates_only_where_expected(keystore, version):
    a = etree.fromstring(
        etree.tostring(
            signed_assertion(keystore, version, confirmation=Confirmation.SENDER_VOUCHES)
        )
    )
    method = (
        Confirmation.SENDER_VOUCHES.value
        if version is SamlVersion.V20
        else (ns.SAML1_CONFIRMATION[Confirmation.SENDER_VOUCHES])
    )
    assert method.encode() in etree.tostring(a)
    checked = validate(keystore, a, expected=frozenset({Confirmation.SENDER_VOUCHES}))
    assert checked.confirmation is Confirmation.SENDER_VOUCHES
    with pytest.raises(InvalidSecurityToken):
        validate(keystore, a, expected=frozenset({Confirmation.BEARER}))


def test_comment_inside_name_id_is_refused(keystore):
    a = signed_assertion(keystore)
    name_id = a.find(f".//{{{ns.SAML2}}}NameID")
    name_id.text = "admin"
    name_id.append(etree.Comment("x"))
    name_id[0].tail = "@evil.example"
    saml_resigned = saml.sign_assertion(_strip_signature(a), keystore.identity("sts"))
    with pytest.raises(InvalidSecurityToken, match="comment"):
        validate(keystore, etree.fromstring(etree.tostring(saml_resigned)))


def _strip_signature(a):
    a.remove(a.find(ns.qname(ns.DS, "Signature")))
    return a
