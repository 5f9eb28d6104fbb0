"""WS-Trust 1.3 messages, the ADFS RSTR of seed 001, and the TLSNego authenticator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

import pytest
from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidRequest
from sim.wire import ns, sc, soap, trust, wss
from sim.wire.ns import KeyType, RequestType
from sim.wire.xmlutil import fragment, parse_time

SEED_001 = Path(__file__).parent.parent / "data" / "wire" / "tokens" / "adfs_rstr_seed001.xml"


def test_seed_001_adfs_rstr_is_parsed():
    env = soap.read_envelope(SEED_001.read_bytes())
    assert soap.read_addressing(env).action == ns.Action.RSTRC_ISSUE_FINAL.value
    [response] = trust.read_rstr_collection(env.body[0])
    assert response.lifetime == (
        parse_time("2016-12-14T18:09:37.156Z", "t"),
        parse_time("2016-12-14T19:09:37.156Z", "t"),
    )
    assert response.lifetime[1] - response.lifetime[0] == 3600.0
    assert response.applies_to == "https://crmdemo.demo.local:444/"
    assert response.proof_secret == base64.b64decode("Y5nHZ23McFNLVYKi4yUy1PB1IZ4FH1osfnFX0mhusqg=")
    assert len(response.proof_secret) == 32
    assert response.token_type == ns.TokenType.SAML10_ASSERTION.value
    assert response.key_type is KeyType.SYMMETRIC
    assert response.request_type is RequestType.ISSUE
    for reference in (response.attached_reference, response.unattached_reference):
        assert reference.value_type == ns.ValueType.SAML_ASSERTION_ID.value
        assert reference.key_identifier == "_aef152ff-f14b-4df5-bda8-bea51ad77d28"
    assert etree.QName(response.requested_token).localname == "EncryptedData"  # opaque


def test_rst_round_trip_with_every_field(keystore):
    client = keystore.identity("client-0")
    request = trust.RequestSecurityToken(
        request_type=RequestType.ISSUE,
        token_type=ns.TokenType.SAML20.value,
        applies_to="https://provider/",
        key_type=KeyType.SYMMETRIC,
        key_size=256,
        entropy=os.urandom(32),
        computed_key_algorithm=ns.ComputedKeyAlg.PSHA1.value,
        use_key=fragment(wss.binary_security_token_text(client)[0]),
        lifetime=(0.0, 3600.0),
        on_behalf_of=wss.build_username_token("alice", password="pw"),
        act_as=wss.build_username_token("bob", password="pw"),
        binary_exchange=(b"\x16\x03\x01", ns.TLSNEGO_VALUE_TYPE),
        context="ctx-1",
    )
    parsed = trust.read_rst(etree.fromstring(etree.tostring(trust.build_rst(request))))
    for field in (
        "request_type",
        "token_type",
        "applies_to",
        "key_type",
        "key_size",
        "entropy",
        "computed_key_algorithm",
        "lifetime",
        "binary_exchange",
        "context",
    ):
        assert getattr(parsed, field) == getattr(request, field), field
    assert etree.QName(parsed.on_behalf_of).localname == "UsernameToken"
    assert etree.QName(parsed.use_key).localname == "BinarySecurityToken"


@pytest.mark.parametrize(
    "request_type", [RequestType.RENEW, RequestType.CANCEL, RequestType.VALIDATE]
)
def test_renew_cancel_validate_carry_their_target(request_type):
    target = fragment(wss.str_reference_text("urn:uuid:ctx", ns.ValueType.SCT.value))
    rst = trust.build_rst(trust.RequestSecurityToken(request_type=request_type), target=target)
    parsed = trust.read_rst(etree.fromstring(etree.tostring(rst)))
    assert parsed.target.uri == "urn:uuid:ctx"


def test_rstr_collection_round_trip():
    token = sc.build_sct()
    first = trust.build_rstr(
        token_type=ns.TokenType.SCT.value,
        request_type=RequestType.ISSUE,
        requested_token=token,
        proof_computed_key=ns.ComputedKeyAlg.PSHA1.value,
        entropy=b"e" * 32,
        lifetime=(0.0, 600.0),
        applies_to="https://provider/",
        key_size=256,
        attached_reference=fragment(
            wss.str_reference_text("#" + token.get(ns.qname(ns.WSU, "Id")))
        ),
        unattached_reference=fragment(wss.str_reference_text("urn:uuid:x", ns.ValueType.SCT.value)),
    )
    second = trust.build_rstr(authenticator=b"a" * 32, context="c")
    third = trust.build_rstr(cancelled=True, binary_exchange=(b"blob", ns.TLSNEGO_VALUE_TYPE))
    collection = trust.build_rstr_collection([first, second, third])
    one, two, three = trust.read_rstr_collection(etree.fromstring(etree.tostring(collection)))
    assert one.proof_computed_key == ns.ComputedKeyAlg.PSHA1.value and one.entropy == b"e" * 32
    assert sc.read_sct(one.requested_token).identifier.startswith("urn:uuid:")
    assert two.authenticator == b"a" * 32 and two.context == "c"
    assert three.cancelled and three.binary_exchange == (b"blob", ns.TLSNEGO_VALUE_TYPE)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda r: r.find(f"{{{ns.WST}}}RequestType").__setattr__("text", "urn:nonsense"),
        lambda r: r.remove(r.find(f"{{{ns.WST}}}RequestType")),
        lambda r: r.find(f"{{{ns.WST}}}KeySize").__setattr__("text", "-5"),
    ],
)
def test_malformed_rst_is_invalid_request(mutation):
    rst = trust.build_rst(trust.RequestSecurityToken(request_type=RequestType.ISSUE, key_size=256))
    mutation(rst)
    with pytest.raises(InvalidRequest):
        trust.read_rst(rst)


def test_combined_hash_matches_an_independent_computation():
    key = os.urandom(32)
    messages = [etree.fromstring(b"<a xmlns='urn:x'><b/></a>"), etree.fromstring(b"<c/>")]
    canonical = b'<a xmlns="urn:x"><b></b></a><c></c>'
    seed = b"AUTH-HASH" + hashlib.sha1(canonical).digest()
    out, a = b"", seed
    while len(out) < 32:
        a = hmac.new(key, a, hashlib.sha1).digest()
        out += hmac.new(key, a + seed, hashlib.sha1).digest()
    assert trust.combined_hash(key, messages) == out[:32]


def test_computed_key_from_both_entropies():
    requestor, issuer = os.urandom(32), os.urandom(32)
    assert crypto.computed_key(requestor, issuer, 256) == crypto.p_sha1(requestor, issuer, 32)


def _issue_request() -> etree._Element:
    return trust.build_rst(
        trust.RequestSecurityToken(
            request_type=RequestType.ISSUE,
            token_type=ns.TokenType.SCT.value,
            applies_to="https://provider/service",
            key_type=KeyType.SYMMETRIC,
            key_size=256,
            entropy=b"e" * 32,
            computed_key_algorithm=ns.ComputedKeyAlg.PSHA1.value,
            lifetime=(0.0, 600.0),
            binary_exchange=(b"\x16\x03\x01" * 8, ns.TLSNEGO_VALUE_TYPE),
        )
    )


_VALUE_PATHS = {
    "RequestType": f"{{{ns.WST}}}RequestType",
    "TokenType": f"{{{ns.WST}}}TokenType",
    "KeyType": f"{{{ns.WST}}}KeyType",
    "KeySize": f"{{{ns.WST}}}KeySize",
    "ComputedKeyAlgorithm": f"{{{ns.WST}}}ComputedKeyAlgorithm",
    "AppliesTo": f".//{{{ns.WSA}}}Address",
    "Entropy": f"{{{ns.WST}}}Entropy/{{{ns.WST}}}BinarySecret",
    "Lifetime/Created": f"{{{ns.WST}}}Lifetime/{{{ns.WSU}}}Created",
    "Lifetime/Expires": f"{{{ns.WST}}}Lifetime/{{{ns.WSU}}}Expires",
    "BinaryExchange": f"{{{ns.WST}}}BinaryExchange",
}


@pytest.mark.parametrize("name", list(_VALUE_PATHS))
def test_a_comment_inside_any_rst_value_is_refused(name):
    """``.../service<!---->-billing`` read as ``.../service`` (and its like for every value)."""
    rst = _issue_request()
    el = rst.find(_VALUE_PATHS[name])
    head, tail = el.text[: len(el.text) // 2], el.text[len(el.text) // 2 :]
    el.text = head
    el.append(etree.Comment(""))
    el[0].tail = tail
    with pytest.raises(InvalidRequest, match="holds a comment"):
        trust.read_rst(etree.fromstring(etree.tostring(rst)))


@pytest.mark.parametrize("value", ["²", "٤٠٩٦", "4097", "0", "256 bits", ""])
def test_key_sizes_that_are_not_numbers_in_range_are_invalid_requests(value):
    rst = _issue_request()
    rst.find(f"{{{ns.WST}}}KeySize").text = value
    with pytest.raises(InvalidRequest, match="KeySize"):
        trust.read_rst(rst)
    rstr = trust.build_rstr(key_size=256)
    rstr.find(f"{{{ns.WST}}}KeySize").text = value
    with pytest.raises(InvalidRequest, match="KeySize"):
        trust.read_rstr(rstr)


@pytest.mark.parametrize("content", ["<!--c-->", "<!--c--><x/>", "<x/><y/>", "text<x/>"])
def test_a_holder_of_one_element_holds_exactly_that(content):
    rst = etree.fromstring(
        f'<t:RequestSecurityToken xmlns:t="{ns.WST}"><t:RequestType>{RequestType.ISSUE.value}'
        f"</t:RequestType><t:OnBehalfOf>{content}</t:OnBehalfOf></t:RequestSecurityToken>"
    )
    with pytest.raises(InvalidRequest, match="exactly one element"):
        trust.read_rst(rst)


def test_a_second_applies_to_address_is_refused():
    rst = _issue_request()
    epr = rst.find(f".//{{{ns.WSA}}}EndpointReference")
    etree.SubElement(epr, f"{{{ns.WSA}}}Address").text = "https://attacker/"
    with pytest.raises(InvalidRequest, match="Address appears 2 times"):
        trust.read_rst(rst)


def test_rstr_values_holding_a_comment_are_refused():
    rstr = trust.build_rstr(
        proof_secret=b"k" * 32, authenticator=b"a" * 32, token_type=ns.TokenType.SCT.value
    )
    for path in (
        f"{{{ns.WST}}}RequestedProofToken/{{{ns.WST}}}BinarySecret",
        f"{{{ns.WST}}}Authenticator/{{{ns.WST}}}CombinedHash",
        f"{{{ns.WST}}}TokenType",
    ):
        copy = etree.fromstring(etree.tostring(rstr))
        el = copy.find(path)
        el.insert(0, etree.Comment(""))
        el[0].tail, el.text = el.text, None
        with pytest.raises(InvalidRequest, match="holds a comment"):
            trust.read_rstr(copy)
