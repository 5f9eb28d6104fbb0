"""XML Signature: independent verification by xmlsec1, and every refusal rule."""

from __future__ import annotations

import copy
import os

import pytest
from lxml import etree

from sim.errors import FailedCheck, InvalidSecurity, UnsupportedAlgorithm
from sim.wire import checks, dsig, ns, soap, wss
from sim.wire.ledger import Ledger
from sim.wire.ns import SignatureAlg
from tests.wire.helpers import signed_message, xmlsec1_verify


def test_rsa_signature_verifies_with_xmlsec1(keystore, xmlsec1, tmp_path):
    client = keystore.identity("client-0")
    env = signed_message(client)
    (tmp_path / "c.pem").write_bytes(client.pem)
    code, err = xmlsec1_verify(
        xmlsec1, tmp_path, env.to_bytes(), "--pubkey-cert-pem", str(tmp_path / "c.pem")
    )
    assert code == 0, err


@pytest.mark.parametrize("algorithm", [SignatureAlg.HMAC_SHA1, SignatureAlg.HMAC_SHA256])
def test_hmac_signature_with_a_derived_key_verifies_with_xmlsec1(xmlsec1, tmp_path, algorithm):
    import sim.crypto as crypto

    key = crypto.derive_key(os.urandom(32), nonce=os.urandom(16))
    env = soap.new_envelope()
    security = wss.add_security_header(env)
    ts = wss.add_timestamp(security, 0.0)
    etree.SubElement(env.body, f"{{{ns.APP}}}Ping").text = "x"
    security.append(
        dsig.sign(
            [env.body, ts],
            key,
            algorithm=algorithm,
            digest=ns.DigestAlg.SHA256,
            inclusive_prefixes=("s",),
        )
    )
    (tmp_path / "k.bin").write_bytes(key)
    code, err = xmlsec1_verify(
        xmlsec1, tmp_path, env.to_bytes(), "--hmackey", str(tmp_path / "k.bin")
    )
    assert code == 0, err


def _reparsed(env):
    return soap.read_envelope(env.to_bytes())


def _signature(env):
    return wss.find_security_header(env).find(ns.qname(ns.DS, "Signature"))


def test_verification_returns_the_signed_elements_and_records_the_ledger(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    ledger = Ledger()
    verified = dsig.verify(_signature(env), key=client.public_key, ledger=ledger)
    assert verified.covers(env.body)
    assert not verified.covers(copy.deepcopy(env.body))
    counts = ledger.counts()
    assert counts["rsa_verify"] == 1 and counts["digest"] == 2 and counts["c14n"] == 3


def _tamper(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_a_changed_byte_in_the_body_fails_the_digest(keystore):
    client = keystore.identity("client-0")
    data = _tamper(signed_message(client).to_bytes(), b"hello", b"jello")
    env = soap.read_envelope(data)
    with pytest.raises(FailedCheck, match="digest"):
        dsig.verify(_signature(env), key=client.public_key)


def test_a_changed_signature_value_fails(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    value = _signature(env).find(ns.qname(ns.DS, "SignatureValue"))
    raw = bytearray(__import__("base64").b64decode(value.text))
    raw[5] ^= 1
    value.text = __import__("base64").b64encode(bytes(raw)).decode()
    with pytest.raises(FailedCheck, match="signature"):
        dsig.verify(_signature(env), key=client.public_key)


def test_truncated_hmac_output_length_is_refused():
    env = soap.new_envelope()
    key = os.urandom(32)
    signature = dsig.sign([env.body], key, algorithm=SignatureAlg.HMAC_SHA1)
    env.header.append(signature)
    method = signature.find(f".//{ns.qname(ns.DS, 'SignatureMethod')}")
    etree.SubElement(method, ns.qname(ns.DS, "HMACOutputLength")).text = "80"
    with pytest.raises(InvalidSecurity, match="CVE-2009-0217"):
        dsig.verify(signature, key=key)


def test_algorithm_outside_the_policy_is_refused(keystore):
    client = keystore.identity("client-0")
    env = soap.new_envelope()
    signature = dsig.sign([env.body], client.private_key, algorithm=SignatureAlg.RSA_SHA256)
    env.header.append(signature)
    with pytest.raises(UnsupportedAlgorithm):
        dsig.verify(signature, key=client.public_key, policy=dsig.SignaturePolicy())
    sha256 = dsig.SignaturePolicy(signature_algorithms=frozenset({SignatureAlg.RSA_SHA256}))
    assert dsig.verify(signature, key=client.public_key, policy=sha256).covers(env.body)


def test_rsa_key_below_the_policy_minimum_is_refused(keystore):
    small = keystore.identity("weak-client", bits=1024)
    env = soap.new_envelope()
    signature = dsig.sign([env.body], small.private_key, algorithm=SignatureAlg.RSA_SHA1)
    env.header.append(signature)
    with pytest.raises(InvalidSecurity, match="outside"):
        dsig.verify(signature, key=small.public_key, policy=dsig.SignaturePolicy(min_rsa_bits=2048))


def test_duplicate_ids_are_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    env.header.append(copy.deepcopy(env.body))
    with pytest.raises(InvalidSecurity, match="duplicate id"):
        dsig.verify(_signature(env), key=client.public_key)


@pytest.mark.parametrize("uri", ["", "#missing", "http://evil/x", "#xpointer(/)"])
def test_references_that_do_not_name_one_element_are_refused(keystore, uri):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    _signature(env).find(f".//{ns.qname(ns.DS, 'Reference')}").set("URI", uri)
    with pytest.raises(InvalidSecurity):
        dsig.verify(_signature(env), key=client.public_key)


def test_xsw_body_moved_to_a_header_and_replaced_is_refused(keystore):
    """XSW: the signed Body moves into a header wrapper; a forged Body takes its place."""
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    original = env.body
    wrapper = etree.SubElement(env.header, f"{{{ns.APP}}}Wrapper")
    forged = etree.Element(original.tag)
    etree.SubElement(forged, f"{{{ns.APP}}}Echo").text = "transfer everything"
    env.root.replace(original, forged)
    wrapper.append(original)
    env = soap.read_envelope(etree.tostring(env.root))
    verified = dsig.verify(_signature(env), key=client.public_key)  # still verifies
    with pytest.raises(FailedCheck) as refused:
        checks.require_body_signed(env, verified)
    assert refused.value.check == "wrapping"


def test_xsw_signed_body_nested_inside_the_forged_body_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    original = env.body
    forged = etree.Element(original.tag)
    env.root.replace(original, forged)
    wrapper = etree.SubElement(forged, f"{{{ns.APP}}}Wrapper")
    wrapper.append(original)
    etree.SubElement(forged, f"{{{ns.APP}}}Echo").text = "forged"
    env = soap.read_envelope(etree.tostring(env.root))
    verified = dsig.verify(_signature(env), key=client.public_key)
    with pytest.raises(FailedCheck) as refused:
        checks.require_body_signed(env, verified)
    assert refused.value.check == "wrapping"


def test_xsw_timestamp_moved_out_of_the_security_header_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    security = wss.find_security_header(env)
    ts = security.find(wss.TIMESTAMP)
    holder = etree.SubElement(env.header, f"{{{ns.APP}}}Holder")
    holder.append(ts)
    security.insert(0, wss.add_timestamp(etree.Element("x"), 99999.0))  # fresh, unsigned
    env = soap.read_envelope(etree.tostring(env.root))
    verified = dsig.verify(_signature(env), key=client.public_key)
    consumed = wss.find_security_header(env).find(wss.TIMESTAMP)
    with pytest.raises(FailedCheck) as refused:
        checks.require_signed(verified, consumed, "the Timestamp")
    assert refused.value.check == "wrapping"
    moved = env.header.find(f"{{{ns.APP}}}Holder")[0]
    with pytest.raises(FailedCheck) as refused:
        checks.require_in_security_header(env, moved, "the Timestamp")
    assert refused.value.check == "wrapping"


def test_xsw_duplicate_body_with_the_same_id_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    twin = copy.deepcopy(env.body)
    twin[0].text = "forged"
    env.header.append(twin)
    with pytest.raises(InvalidSecurity, match="duplicate id"):
        dsig.verify(_signature(env), key=client.public_key, ids=None)


@pytest.mark.parametrize(
    "old, new",
    [
        (b"<u:Created>2026-01-01T00:00:10", b"<u:Created>2026-01-01T00:00:11"),
        (b"<u:Expires>2026-01-01T00:05:10", b"<u:Expires>2026-01-01T01:05:10"),
        (b"<ds:DigestValue>", b"<ds:DigestValue>AAAA"),
        (b'Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', b"/>"),
    ],
    ids=["timestamp-created", "timestamp-expires", "digest-value", "c14n-transform"],
)
def test_a_changed_byte_in_any_signed_part_is_a_typed_fault(keystore, old, new):
    from sim.errors import SecurityFault

    client = keystore.identity("client-0")
    data = signed_message(client).to_bytes()
    assert old in data, data
    try:
        env = soap.read_envelope(data.replace(old, new, 1))
        dsig.verify(_signature(env), key=client.public_key)
    except SecurityFault:
        return
    pytest.fail("tampered message verified")


def test_signed_message_size_does_not_depend_on_time_or_payload_ids(keystore):
    client = keystore.identity("client-0")
    sizes = {len(signed_message(client, now=now).to_bytes()) for now in (0.0, 1.5, 86399.999)}
    assert len(sizes) == 1


def test_xsw_second_timestamp_in_the_security_header_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    security = wss.find_security_header(env)
    wss.add_timestamp(security, 99999.0)  # an unsigned, fresh twin before the signed one
    env = soap.read_envelope(etree.tostring(env.root))
    with pytest.raises(InvalidSecurity):
        wss.read_timestamp(wss.find_security_header(env))


def test_xsw_token_moved_into_a_wrapper_header_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    bst = wss.find_security_header(env).find(ns.qname(ns.WSSE, "BinarySecurityToken"))
    etree.SubElement(env.header, f"{{{ns.APP}}}Wrapper").append(bst)
    env = soap.read_envelope(etree.tostring(env.root))
    moved = env.header.find(f"{{{ns.APP}}}Wrapper")[0]
    with pytest.raises(FailedCheck) as refused:
        checks.require_in_security_header(env, moved, "the signing token")
    assert refused.value.check == "wrapping"


def test_a_replayed_signed_message_is_refused_by_its_signature_value(keystore):
    client = keystore.identity("client-0")
    data = signed_message(client).to_bytes()
    cache = checks.ReplayCache(capacity=100, ttl=600.0)
    first = dsig.verify(_signature(soap.read_envelope(data)), key=client.public_key)
    cache.check_and_add(first.value, now=10.0)
    again = dsig.verify(_signature(soap.read_envelope(data)), key=client.public_key)
    with pytest.raises(InvalidSecurity) as refused:
        cache.check_and_add(again.value, now=11.0)
    assert refused.value.check == "replay"
