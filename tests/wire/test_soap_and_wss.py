"""SOAP envelopes, WS-Addressing, faults, Timestamp, UsernameToken, BST and STR forms."""

from __future__ import annotations

import pytest
from lxml import etree

from sim import errors
from sim.errors import FailedAuthentication, InvalidSecurity, MessageExpired
from sim.wire import ns, soap, wss
from sim.wire.soap import SoapVersion
from sim.wire.xmlutil import format_time, parse_time


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
    wss.add_timestamp(security, now, ttl=300)
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
    wss.authenticate_username_token(token, {"alice": "s3cret"})
    with pytest.raises(FailedAuthentication):
        wss.authenticate_username_token(token, {"alice": "other"})
    assert (b"s3cret" in etree.tostring(token.element)) is not digest


def test_username_token_key_derivation_form():
    salt = b"\x01" + bytes(15)
    token = wss.read_username_token(wss.build_username_token("alice", salt=salt, iteration=1000))
    assert token.salt == salt and token.iteration == 1000 and token.password is None


def test_binary_security_token_and_every_str_form(keystore):
    client = keystore.identity("client-0")
    assert wss.read_binary_security_token(wss.build_binary_security_token(client)) == client.der
    assert wss.read_str(wss.str_reference("#x", "vt")).uri == "#x"
    thumb = wss.read_str(
        wss.str_key_identifier(client.thumbprint_sha1, ns.ValueType.THUMBPRINT_SHA1.value)
    )
    assert thumb.key_identifier == client.thumbprint_sha1
    saml_ref = wss.read_str(
        wss.str_key_identifier(
            "_abc", ns.ValueType.SAML_ASSERTION_ID.value, token_type=ns.TokenType.SAML20.value
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
