"""WS-SecureConversation 1.3 tokens: SCT and DerivedKeyToken."""

from __future__ import annotations

import os

import pytest
from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidSecurityToken
from sim.wire import ns, sc, wss
from sim.wire.ledger import Ledger
from sim.wire.xmlutil import fragment


def _new_dkt(reference: str, *, nonce: bytes | None = None, **fields):
    """A DerivedKeyToken as the senders write it (over the STR text ``reference``), parsed,
    and its nonce."""
    nonce = os.urandom(16) if nonce is None else nonce
    text, _ = sc.dkt_text(reference, nonce=nonce, **fields)
    return fragment(text), nonce


def test_sct_round_trip():
    token = sc.build_sct(instance="1")
    parsed = sc.read_sct(etree.fromstring(etree.tostring(token)))
    assert parsed.identifier.startswith("urn:uuid:") and parsed.instance == "1"
    assert len(parsed.identifier) == len("urn:uuid:") + 36


@pytest.mark.parametrize(("offset", "generation"), [(0, None), (32, None), (None, 3)])
def test_dkt_round_trip_and_derivation(offset, generation):
    secret = os.urandom(32)
    reference = wss.str_reference_text("urn:uuid:ctx", ns.ValueType.SCT.value)
    element, nonce = _new_dkt(reference, length=24, offset=offset, generation=generation)
    parsed = sc.read_dkt(etree.fromstring(etree.tostring(element)))
    assert parsed.reference.uri == "urn:uuid:ctx" and parsed.nonce == nonce
    ledger = Ledger()
    key = sc.derive(parsed, secret, ledger)
    start = offset if offset is not None else generation * 24
    full = crypto.p_sha1(secret, ns.DKT_LABEL + nonce, start + 24)
    assert key == full[start:] and ledger.counts() == {"p_sha1": 1}


def test_dkt_with_custom_label():
    element, nonce = _new_dkt(wss.str_reference_text("#x"), label=b"WS-SecureConversation")
    parsed = sc.read_dkt(element)
    assert sc.derive(parsed, b"k" * 32) == crypto.derive_key(
        b"k" * 32, nonce=nonce, label=b"WS-SecureConversation"
    )


@pytest.mark.parametrize(
    ("local", "value"), [("Length", "5000"), ("Length", "x"), ("Offset", "-1"), ("Nonce", "!!")]
)
def test_malformed_dkt_is_refused(local, value):
    element, _ = _new_dkt(wss.str_reference_text("#x"))
    el = element.find(f"{{{ns.WSC}}}{local}")
    el.text = value
    with pytest.raises(InvalidSecurityToken):
        sc.read_dkt(element)


def test_offset_and_generation_together_are_refused():
    element, _ = _new_dkt(wss.str_reference_text("#x"))
    etree.SubElement(element, f"{{{ns.WSC}}}Generation").text = "1"
    with pytest.raises(InvalidSecurityToken, match="exclusive"):
        sc.read_dkt(element)


def _dkt(**fields):
    element, _ = _new_dkt(wss.str_reference_text("#x"), length=24)
    for local, value in fields.items():
        el = element.find(f"{{{ns.WSC}}}{local}")
        if el is None:
            el = etree.SubElement(element, f"{{{ns.WSC}}}{local}")
            element.insert(2, el)
        el.text = value
    return element


@pytest.mark.parametrize(
    ("local", "value", "text"),
    [
        ("Offset", str(sc.MAX_DKT_OFFSET + 1), "starts past byte"),
        ("Offset", "999999999", "starts past byte"),
        ("Offset", "1" * 5000, "at most 9 digits"),  # never handed to int()
        ("Offset", "\uff11\uff12", "non-negative integer"),  # fullwidth digits: str.isdigit()
        ("Offset", "\u00b2", "non-negative integer"),  # superscript two: int() raises
        ("Offset", "+1", "non-negative integer"),
        ("Offset", "1_0", "non-negative integer"),
        ("Length", "0", "Length must be"),
        ("Length", str(sc.MAX_DKT_LENGTH + 1), "Length must be"),
        ("Nonce", "", "Nonce"),
        ("Label", "L" * (sc.MAX_DKT_LABEL + 1), "Label must hold"),
    ],
)
def test_dkt_numbers_and_sizes_are_bounded_and_typed(local, value, text):
    with pytest.raises(InvalidSecurityToken, match=text):
        sc.read_dkt(_dkt(**{local: value}))


def test_a_generation_past_the_offset_bound_is_refused():
    element, _ = _new_dkt(wss.str_reference_text("#x"), length=24, offset=None, generation=43)
    with pytest.raises(InvalidSecurityToken, match="starts past byte") as raised:
        sc.read_dkt(element)
    assert raised.value.check == "derived-key"
    element, _ = _new_dkt(wss.str_reference_text("#x"), length=24, offset=None, generation=42)
    assert sc.read_dkt(element).generation == 42  # 42 * 24 = 1008 bytes in: within


@pytest.mark.parametrize("local", ["Offset", "Length", "Nonce", "Label"])
def test_a_dkt_value_holding_a_comment_is_refused(local):
    element = _dkt(Label="WS-SecureConversation")
    el = element.find(f"{{{ns.WSC}}}{local}")
    el.append(etree.Comment("c"))
    el[0].tail = "0"
    with pytest.raises(InvalidSecurityToken, match="comment"):
        sc.read_dkt(element)


def test_an_unknown_child_or_algorithm_of_a_dkt_is_refused():
    element = _dkt()
    etree.SubElement(element, f"{{{ns.WSC}}}Properties")
    with pytest.raises(InvalidSecurityToken, match="unexpected"):
        sc.read_dkt(element)
    element = _dkt()
    element.set("Algorithm", "urn:other")
    with pytest.raises(InvalidSecurityToken, match="not supported"):
        sc.read_dkt(element)
    element.set("Algorithm", sc.DK_P_SHA1)
    assert sc.read_dkt(element).length == 24


def test_keys_are_directional():
    """A request's DerivedKeyTokens carry one label, a reply's another: the keys differ, and
    a receiver refuses a token of the direction it does not read (or with no label)."""
    secret, nonce = os.urandom(32), os.urandom(16)
    request, reply = (sc.LABELS[d] for d in (sc.Direction.REQUEST, sc.Direction.REPLY))
    assert request != reply != ns.DKT_LABEL
    assert sc.derive_key(secret, nonce=nonce, length=32, label=request) != sc.derive_key(
        secret, nonce=nonce, length=32, label=reply
    )
    element, _ = _new_dkt(wss.str_reference_text("#x"), nonce=nonce, label=reply)
    token = sc.read_dkt(element)
    sc.check_direction(token.label, sc.Direction.REPLY)
    for direction, label in ((sc.Direction.REQUEST, token.label), (sc.Direction.REPLY, None)):
        with pytest.raises(InvalidSecurityToken) as raised:
            sc.check_direction(label, direction)
        assert raised.value.check == "key-direction"


@pytest.mark.parametrize(
    ("offset", "generation", "charged"), [(0, None, 24), (32, None, 56), (None, 3, 96)]
)
def test_the_ledger_charges_the_p_sha1_output_computed(offset, generation, charged):
    """The bytes before the key are computed too: a token's offset costs its receiver."""
    element, _ = _new_dkt(
        wss.str_reference_text("#x"), length=24, offset=offset, generation=generation
    )
    ledger = Ledger()
    sc.derive(sc.read_dkt(element), os.urandom(32), ledger)
    assert ledger.entries == [("p_sha1", charged)]


def test_a_request_may_derive_with_the_default_label_a_reply_may_not():
    """WS-SC's default label (no wsc:Label, as WSS4J writes every DerivedKeyToken) is taken in
    a request; a reply must carry its own direction's label (our senders always write one,
    so none of our replies can be reflected as a default-label request)."""
    element, _ = _new_dkt(wss.str_reference_text("#x"))
    token = sc.read_dkt(element)
    assert token.label is None
    sc.check_direction(token.label, sc.Direction.REQUEST)
    with pytest.raises(InvalidSecurityToken) as raised:
        sc.check_direction(token.label, sc.Direction.REPLY)
    assert raised.value.check == "key-direction"
