"""How a message's key names a SAML assertion (WS-I BSP 1.1 R6610, R6613, R6614 and the
TokenTypes of R6611/R6617): a Reference to the ID of an assertion the message carries, a
Reference to the URI of a SAML 2.0 assertion it does not; and ``saml.is_reference``, the
receivers' strict comparison, accepting that form only."""

from __future__ import annotations

import pytest

from sim.wire import ns, saml, wss
from sim.wire.saml import SamlVersion
from sim.wire.xmlutil import fragment

STS = "https://sts.example/trust"
TOKEN_TYPE = f"{{{ns.WSSE11}}}TokenType"
REFERENCE = ns.qname(ns.WSSE, "Reference")
KEY_IDENTIFIER = ns.qname(ns.WSSE, "KeyIdentifier")


@pytest.mark.parametrize("version", list(SamlVersion))
def test_an_assertion_of_the_message_is_named_by_a_reference_to_its_id(version):
    reference = saml.assertion_reference("_a1", version)
    assert reference.get(TOKEN_TYPE) == saml.TOKEN_TYPES[version]
    [child] = reference
    assert child.tag == REFERENCE and child.get("URI") == "#_a1"
    # R6614: no ValueType for SAML 2.0; R3059: the 1.1 assertion's, as WSS4J writes it
    expected = None if version is SamlVersion.V20 else ns.ValueType.SAML_ASSERTION_ID.value
    assert child.get("ValueType") == expected


def test_a_saml2_assertion_not_in_the_message_is_named_by_its_uri_at_the_issuer():
    reference = saml.external_assertion_reference("_a1", SamlVersion.V20, STS)
    assert reference.get(TOKEN_TYPE) == ns.TokenType.SAML20.value
    [child] = reference
    assert child.tag == REFERENCE and child.get("ValueType") is None
    assert child.get("URI") == f"{STS}?ID=_a1" == saml.assertion_uri(STS, "_a1")


def test_a_saml11_assertion_not_in_the_message_is_named_by_its_key_identifier():
    reference = saml.external_assertion_reference("_a1", SamlVersion.V11, STS)
    assert reference.get(TOKEN_TYPE) == ns.TokenType.SAML11.value
    [child] = reference
    assert child.tag == KEY_IDENTIFIER and child.text == "_a1"
    assert child.get("ValueType") == ns.ValueType.SAML_ASSERTION_ID.value
    assert child.get("EncodingType") is None  # R6604


def test_the_assertion_uri_escapes_the_id():
    assert saml.assertion_uri(STS, "_a&b c") == f"{STS}?ID=_a%26b%20c"


def _read(text: str) -> wss.TokenReference:
    return wss.read_str(fragment(text))


@pytest.mark.parametrize("version", list(SamlVersion))
def test_is_reference_accepts_what_the_writers_write(version):
    for expected in (
        saml.assertion_reference("_a1", version),
        saml.external_assertion_reference("_a1", version, STS),
    ):
        assert saml.is_reference(wss.read_str(expected), expected)


@pytest.mark.parametrize("version", list(SamlVersion))
def test_is_reference_refuses_every_other_form(version):
    internal = saml.assertion_reference("_a1", version)
    value_type = saml.VALUE_TYPES[version]
    others = [
        # the KeyIdentifier form (WCF's), for an assertion of the message (R6610)
        wss.str_key_identifier_text("_a1", value_type),
        wss.str_reference_text("#_a2", None if version is SamlVersion.V20 else value_type),
        wss.str_reference_text("#_a1", "urn:another-value-type"),
        wss.str_reference_text(f"{STS}?ID=_a1"),  # the external form, for a carried one
    ]
    if version is SamlVersion.V20:
        others.append(wss.str_reference_text("#_a1", value_type))  # R6614
    for text in others:
        assert not saml.is_reference(_read(text), internal), text

    external = saml.external_assertion_reference("_a1", version, STS)
    for text in (
        wss.str_reference_text("#_a1"),
        wss.str_reference_text("https://elsewhere.example/trust?ID=_a1"),
        wss.str_reference_text(f"{STS}?ID=_a2"),
        wss.str_key_identifier_text("_a2", value_type),
    ):
        assert not saml.is_reference(_read(text), external), text
