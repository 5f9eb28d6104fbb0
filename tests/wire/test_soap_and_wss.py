"""SOAP envelopes, WS-Addressing, faults, Timestamp, UsernameToken, BST and STR forms."""

from __future__ import annotations

import pytest
from lxml import etree

from sim import errors
from sim.errors import (
    FailedAuthentication,
    InvalidSecurity,
    InvalidSecurityToken,
    MessageExpired,
)
from sim.wire import ns, soap, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Ledger
from sim.wire.soap import SoapVersion
from sim.wire.xmlutil import format_time, fragment, parse_time
from tests.wire.helpers import add_timestamp


@pytest.mark.parametrize("version", list(SoapVersion))
def test_envelope_and_addressing_round_trip(version):
    env = soap.new_envelope(version)
    sent = soap.add_addressing(
        env, action="urn:a", to="https://p/", relates_to="urn:uuid:r", reply_to="https://c/"
    )
    received = soap.read_envelope(env.to_bytes())
    assert received.version is version
    assert soap.read_addressing(received) == sent


@pytest.mark.parametrize("version", list(SoapVersion))
@pytest.mark.parametrize("fault_class", list(errors.FAULTS_BY_CODE.values()))
def test_every_typed_fault_survives_the_wire(version, fault_class):
    data = soap.build_fault(fault_class("reason text"), version=version, relates_to="urn:uuid:1")
    fault = soap.read_fault(soap.read_envelope(data))
    assert type(fault) is fault_class and fault.reason == "reason text"


@pytest.mark.parametrize(
    "document",
    [
        b"<notsoap/>",
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>',
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/><s:Body/></s:Envelope>',
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/><s:Header/></s:Envelope>',
    ],
)
def test_malformed_envelopes_are_refused(document):
    with pytest.raises(InvalidSecurity):
        soap.read_envelope(document)


def test_time_format_is_fixed_width_and_round_trips():
    for now in (0.0, 0.0004, 59.9996, 86400 * 365.25 * 3 + 0.123):
        text = format_time(now)
        assert len(text) == 24 and text.endswith("Z")
        assert abs(parse_time(text, "t") - now) < 0.0006


def _security(now=100.0):
    env = soap.new_envelope()
    security = wss.add_security_header(env)
    add_timestamp(security, now, ttl=300)
    return env, wss.read_timestamp(wss.find_security_header(soap.read_envelope(env.to_bytes())))


def test_fresh_timestamp_is_accepted_and_stale_or_future_ones_refused():
    _, ts = _security(100.0)
    wss.check_freshness(ts, 150.0)
    with pytest.raises(MessageExpired, match="expired"):
        wss.check_freshness(ts, 100.0 + 300 + 301, skew=300)
    with pytest.raises(MessageExpired, match="future"):
        wss.check_freshness(ts, 100.0 - 301, skew=300)
    with pytest.raises(InvalidSecurity):
        wss.check_freshness(None, 0.0)


def test_two_security_headers_are_refused():
    env = soap.new_envelope()
    wss.add_security_header(env)
    wss.add_security_header(env)
    with pytest.raises(InvalidSecurity, match="appears 2 times"):
        wss.find_security_header(soap.read_envelope(env.to_bytes()))


@pytest.mark.parametrize("digest", [False, True])
def test_username_token_passwords_authenticate(digest):
    token = wss.read_username_token(
        wss.build_username_token("alice", password="s3cret", digest=digest, now=5.0)
    )
    wss.authenticate_username_token(token, {"alice": "s3cret"}, now=6.0, replay=ReplayCache())
    with pytest.raises(FailedAuthentication):
        wss.authenticate_username_token(token, {"alice": "other"}, now=6.0, replay=ReplayCache())
    assert (b"s3cret" in etree.tostring(token.element)) is not digest


def _digest_token(created: float = 5.0):
    return wss.read_username_token(
        wss.build_username_token("alice", password="s3cret", digest=True, now=created)
    )


def test_a_password_digest_is_accepted_once():
    """WSS4J caches the Nonce: the same digest sent again (to any node sharing the store) is
    a replay, whatever else the message carries."""
    token, store, ledger = _digest_token(), ReplayCache(), Ledger()
    wss.authenticate_username_token(
        token, {"alice": "s3cret"}, now=6.0, replay=store, ledger=ledger
    )
    with pytest.raises(InvalidSecurity, match="replayed"):
        wss.authenticate_username_token(token, {"alice": "s3cret"}, now=500.0, replay=store)
    assert ledger.entries == [("replay_lookup", 0)]


@pytest.mark.parametrize(
    ("created", "now"), [(5.0, 5.0 + 600.001), (5.0 + 300.001, 5.0), (0.0, 10_000.0)]
)
def test_a_password_digest_must_be_fresh(created, now):
    with pytest.raises(MessageExpired):
        wss.authenticate_username_token(
            _digest_token(created), {"alice": "s3cret"}, now=now, replay=ReplayCache()
        )


def test_a_password_digest_needs_a_receiver_that_checks_it():
    with pytest.raises(FailedAuthentication, match="Created and Nonce"):
        wss.authenticate_username_token(_digest_token(), {"alice": "s3cret"})


def test_a_wrong_digest_leaves_no_nonce_in_the_store():
    store = ReplayCache()
    with pytest.raises(FailedAuthentication):
        wss.authenticate_username_token(_digest_token(), {"alice": "x"}, now=6.0, replay=store)
    assert len(store) == 0


@pytest.mark.parametrize("iteration", ["1000001", "²", "١٠٠٠", "+5", "0", "", "9" * 5000])
def test_iteration_counts_outside_the_limit_are_typed_faults(iteration):
    token = wss.build_username_token("alice", salt=b"\x01" + bytes(15), iteration=1000)
    token.find(f"{{{ns.WSSE11}}}Iteration").text = iteration
    with pytest.raises(InvalidSecurityToken, match="Iteration"):
        wss.read_username_token(token)


def test_the_receivers_own_iteration_limit_is_enforced_while_reading():
    token = wss.build_username_token("alice", salt=b"\x01" + bytes(15), iteration=100_001)
    with pytest.raises(InvalidSecurityToken, match="Iteration"):
        wss.read_username_token(token, max_iteration=100_000)
    assert wss.read_username_token(token).iteration == 100_001


def test_username_token_key_derivation_form():
    salt = b"\x01" + bytes(15)
    token = wss.read_username_token(wss.build_username_token("alice", salt=salt, iteration=1000))
    assert token.salt == salt and token.iteration == 1000 and token.password is None


def test_binary_security_token_and_every_str_form(keystore):
    client = keystore.identity("client-0")
    assert (
        wss.read_binary_security_token(fragment(wss.binary_security_token_text(client)[0]))
        == client.der
    )
    assert wss.read_str(fragment(wss.str_reference_text("#x", "vt"))).uri == "#x"
    thumb = wss.read_str(
        fragment(
            wss.str_key_identifier_text(client.thumbprint_sha1, ns.ValueType.THUMBPRINT_SHA1.value)
        )
    )
    assert thumb.key_identifier == client.thumbprint_sha1
    saml_ref = wss.read_str(
        fragment(
            wss.str_key_identifier_text(
                "_abc", ns.ValueType.SAML_ASSERTION_ID.value, token_type=ns.TokenType.SAML20.value
            )
        )
    )
    assert saml_ref.key_identifier == "_abc"
    serial = wss.read_str(wss.str_issuer_serial(client))
    assert serial.issuer_serial == (client.issuer_name, client.serial_number)


def test_signature_confirmation_round_trip():
    env = soap.new_envelope()
    security = wss.add_security_header(env)
    wss.add_signature_confirmation(security, b"sigvalue")
    wss.add_signature_confirmation(security, None)
    assert wss.read_signature_confirmations(security) == [b"sigvalue", None]


def _with_comment(text: bytes, value: bytes) -> bytes:
    """``text`` with a comment put inside ``value`` (exclusive C14N would not see it)."""
    assert text.count(value) == 1
    middle = len(value) // 2
    return text.replace(value, value[:middle] + b"<!---->" + value[middle:])


def test_addressing_values_holding_a_comment_are_refused():
    env = soap.new_envelope()
    soap.add_addressing(
        env,
        action="urn:wssim:app:ProcessResponse",
        to="https://p/",
        relates_to="urn:uuid:r",
        reply_to="https://c/",
    )
    data = env.to_bytes()
    for value, what in (
        (b"urn:wssim:app:ProcessResponse", "wsa:Action"),
        (b"urn:uuid:r", "wsa:RelatesTo"),
        (b"https://p/", "wsa:To"),
        (b"https://c/", "wsa:ReplyTo/wsa:Address"),
    ):
        with pytest.raises(InvalidSecurity, match=f"{what} holds a comment"):
            soap.read_addressing(soap.read_envelope(_with_comment(data, value)))


def test_a_fault_code_holding_a_comment_is_refused():
    data = soap.build_fault(errors.BadContextToken("gone"))
    with pytest.raises(InvalidSecurity, match="fault code holds a comment"):
        soap.read_fault(soap.read_envelope(_with_comment(data, b"BadContextToken")))


def test_timestamp_times_holding_a_comment_are_refused():
    env = soap.new_envelope()
    add_timestamp(wss.add_security_header(env), 100.0)
    data = env.to_bytes()
    created = format_time(100.0).encode()
    with pytest.raises(InvalidSecurity, match="wsu:Created holds a comment"):
        wss.read_timestamp(
            wss.find_security_header(soap.read_envelope(_with_comment(data, created)))
        )


@pytest.mark.parametrize("part", ["Username", "Nonce", "Created", "Password"])
def test_username_token_values_holding_a_comment_are_refused(part):
    token = wss.build_username_token("alice", password="s3cret", digest=True, now=5.0)
    el = next(c for c in token if etree.QName(c).localname == part)
    el.text, comment = el.text[:3], etree.Comment("")
    el.append(comment)
    comment.tail = "rest"
    with pytest.raises(InvalidSecurity, match="holds a comment"):
        wss.read_username_token(token)


@pytest.mark.parametrize("digits", ["²", "٣", "-1", "1" * 60, ""])
def test_an_issuer_serial_that_is_not_a_number_is_a_typed_fault(keystore, digits):
    ref = wss.str_issuer_serial(keystore.identity("client-0"))
    ref.find(f".//{{{ns.DS}}}X509SerialNumber").text = digits
    with pytest.raises(InvalidSecurityToken, match="X509SerialNumber"):
        wss.read_str(ref)


def test_a_binary_security_token_holding_a_comment_is_refused(keystore):
    bst = fragment(wss.binary_security_token_text(keystore.identity("client-0"))[0])
    bst.text, rest = bst.text[:40], bst.text[40:]
    bst.append(etree.Comment(""))
    bst[0].tail = rest
    with pytest.raises(InvalidSecurity, match="BinarySecurityToken holds a comment"):
        wss.read_binary_security_token(bst)


@pytest.mark.parametrize(
    "reference",
    [
        lambda: wss.str_reference_text("#EK-1", ns.ValueType.ENCRYPTED_KEY.value),
        lambda: wss.str_key_identifier_text(b"s" * 20, ns.ValueType.ENCRYPTED_KEY_SHA1.value),
    ],
    ids=["by-id", "by-sha1"],
)
def test_a_reference_to_an_encrypted_key_carries_its_token_type(reference):
    """WS-I BSP 1.1 R3069: an STR naming an EncryptedKey says wsse11:TokenType #EncryptedKey;
    the writer adds it from the ValueType, and the reader still reads the reference."""
    element = fragment(reference())
    assert element.get(ns.qname(ns.WSSE11, "TokenType")) == ns.TokenType.ENCRYPTED_KEY.value
    read = wss.read_str(element)
    assert read.uri == "#EK-1" or read.key_identifier == b"s" * 20


def test_a_reference_to_another_token_carries_no_token_type_unless_named():
    plain = fragment(wss.str_reference_text("#DK-1", ns.ValueType.DKT.value))
    assert plain.get(ns.qname(ns.WSSE11, "TokenType")) is None
    named = fragment(wss.str_reference_text("#x", token_type=ns.TokenType.SCT.value))
    assert named.get(ns.qname(ns.WSSE11, "TokenType")) == ns.TokenType.SCT.value
