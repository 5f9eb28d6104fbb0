"""The holder-of-key receivers accept the one form of reference to the assertion our senders
write (WS-I BSP 1.1: a Reference to the assertion the request carries, R6610; a Reference to
the URI of the request's SAML 2.0 assertion in the response, R6613) and refuse the SAML
KeyIdentifier form WCF writes: the key references are not signed, so each is rewritten on
the wire here and the message otherwise stays as sent."""

from __future__ import annotations

import pytest
from lxml import etree

from sim.protocol.api import MessageKind
from sim.protocol.harness import Harness
from sim.wire import ns, saml, wss
from sim.wire.saml import SamlVersion

STR = ns.qname(ns.WSSE, "SecurityTokenReference")
TOKEN_TYPE = f"{{{ns.WSSE11}}}TokenType"


def _as_key_identifier(data: bytes) -> bytes:
    """Every STR of the message naming an assertion, rewritten to its SAML KeyIdentifier."""
    root = etree.fromstring(data)
    rewritten = 0
    for reference in root.iter(STR):
        token_type = reference.get(TOKEN_TYPE)
        if token_type not in saml.TOKEN_TYPES.values():
            continue
        [child] = reference
        identifier = child.get("URI").lstrip("#").rsplit("?ID=", 1)[-1]
        version = next(v for v, t in saml.TOKEN_TYPES.items() if t == token_type)
        key_identifier = etree.fromstring(
            wss.str_key_identifier_text(identifier, saml.VALUE_TYPES[version], token_type)
        )
        reference.getparent().replace(reference, key_identifier)
        rewritten += 1
    assert rewritten
    return etree.tostring(root)


def _session(make, name: str, version: str, rewrite: MessageKind):
    def tamper(delivery):
        if delivery.send.kind == rewrite:
            return _as_key_identifier(delivery.send.data)
        return None

    harness = Harness(make(name, {"saml_version": version}), tamper=tamper)
    outcome = harness.request(b"hello", 0.0)
    return harness, outcome


@pytest.mark.parametrize("version", [v.value for v in SamlVersion])
@pytest.mark.parametrize("name", ["hok-symmetric", "hok-public"])
def test_the_provider_refuses_an_assertion_of_the_request_named_by_key_identifier(
    make, name, version
):
    harness, outcome = _session(make, name, version, MessageKind.APP_REQUEST)
    [done] = outcome.results
    assert not done.ok
    assert harness.servers["provider-0"].last_refusal == "token-policy"


def test_the_client_refuses_a_response_naming_the_saml2_assertion_by_key_identifier(make):
    harness, outcome = _session(make, "hok-symmetric", "2.0", MessageKind.APP_RESPONSE)
    [done] = outcome.results
    assert not done.ok
    assert harness.client.last_refusal == "key"


@pytest.mark.parametrize("version", [v.value for v in SamlVersion])
@pytest.mark.parametrize("name", ["hok-symmetric", "hok-public"])
def test_the_untouched_session_is_accepted(make, name, version):
    harness = Harness(make(name, {"saml_version": version}))
    [done] = harness.request(b"hello", 0.0).results
    assert done.ok and done.payload == b"hello"
