"""WS-SecureConversation 1.3 tokens: SCT and DerivedKeyToken."""

from __future__ import annotations

import os

import pytest
from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidSecurityToken
from sim.wire import ns, sc, wss
from sim.wire.ledger import Ledger


def test_sct_round_trip():
    token = sc.build_sct(instance="1")
    parsed = sc.read_sct(etree.fromstring(etree.tostring(token)))
    assert parsed.identifier.startswith("urn:uuid:") and parsed.instance == "1"
    assert len(parsed.identifier) == len("urn:uuid:") + 36


@pytest.mark.parametrize(("offset", "generation"), [(0, None), (32, None), (None, 3)])
def test_dkt_round_trip_and_derivation(offset, generation):
    secret = os.urandom(32)
    reference = wss.str_reference("urn:uuid:ctx", ns.ValueType.SCT.value)
    element, nonce = sc.build_dkt(reference, length=24, offset=offset, generation=generation)
    parsed = sc.read_dkt(etree.fromstring(etree.tostring(element)))
    assert parsed.reference.uri == "urn:uuid:ctx" and parsed.nonce == nonce
    ledger = Ledger()
    key = sc.derive(parsed, secret, ledger)
    start = offset if offset is not None else generation * 24
    full = crypto.p_sha1(secret, ns.DKT_LABEL + nonce, start + 24)
    assert key == full[start:] and ledger.counts() == {"p_sha1": 1}


def test_dkt_with_custom_label():
    element, nonce = sc.build_dkt(wss.str_reference("#x"), label=b"WS-SecureConversation")
    parsed = sc.read_dkt(element)
    assert sc.derive(parsed, b"k" * 32) == crypto.derive_key(
        b"k" * 32, nonce=nonce, label=b"WS-SecureConversation"
    )


@pytest.mark.parametrize(
    ("local", "value"), [("Length", "5000"), ("Length", "x"), ("Offset", "-1"), ("Nonce", "!!")]
)
def test_malformed_dkt_is_refused(local, value):
    element, _ = sc.build_dkt(wss.str_reference("#x"))
    el = element.find(f"{{{ns.WSC}}}{local}")
    el.text = value
    with pytest.raises(InvalidSecurityToken):
        sc.read_dkt(element)


def test_offset_and_generation_together_are_refused():
    element, _ = sc.build_dkt(wss.str_reference("#x"))
    etree.SubElement(element, f"{{{ns.WSC}}}Generation").text = "1"
    with pytest.raises(InvalidSecurityToken, match="exclusive"):
        sc.read_dkt(element)
