"""Every message of every trace meets the WS-I Basic Security Profile 1.1 requirements that
can be read off it (tests/interop/bsp/, one test a rule); docs/conformance.md names, for
each, where our senders meet it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from tests.interop.bsp import RULES, Message

CONFORMANCE = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


@pytest.fixture(scope="module")
def messages(traces) -> list[tuple[str, Message]]:
    return [
        (
            f"{label}/{entry['file']}",
            Message(etree.fromstring((t.out / entry["file"]).read_bytes())),
        )
        for label, t in traces.items()
        for entry in t.entries
    ]


@pytest.mark.parametrize("number", list(RULES))
def test_every_message_meets_the_rule(messages, number):
    text, check = RULES[number]
    violations = [f"{where}: {v}" for where, message in messages for v in check(message)]
    assert not violations, f"{number} ({text}):\n" + "\n".join(violations[:20])


def test_the_rules_reach_the_parts_they_check(messages):
    """The rules are not met vacuously: the traces hold signatures, encrypted keys and data,
    key-derivation UsernameTokens, references to assertions."""

    def count(tag: str) -> int:
        return sum(1 for _, m in messages for _ in m.root.iter(tag))

    ns = {
        "ds": "http://www.w3.org/2000/09/xmldsig#",
        "xenc": "http://www.w3.org/2001/04/xmlenc#",
        "wsse11": "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd",
    }
    assert count(f"{{{ns['ds']}}}Signature") > 40
    assert count(f"{{{ns['xenc']}}}EncryptedKey") > 5
    assert count(f"{{{ns['xenc']}}}EncryptedData") > 40
    assert count(f"{{{ns['wsse11']}}}Iteration") > 3
    assert sum(1 for _, m in messages for s in m.strs if m.target(s) is not None) > 60


def test_conformance_doc_names_every_rule_checked():
    text = CONFORMANCE.read_text()
    missing = [n for n in RULES if n.split("/")[0] not in text]
    assert not missing, f"docs/conformance.md does not list {missing}"


def _message(traces, label: str, seq: int) -> etree._Element:
    trace = traces[label]
    entry = next(e for e in trace.entries if e["seq"] == seq)
    return etree.fromstring((trace.out / entry["file"]).read_bytes())


def test_the_rules_catch_what_they_forbid(traces):
    """Controls: the same checks flag a DerivedKeyToken moved after its users (R5205), an
    EncryptedKey reference stripped of its TokenType (R3069), a second Timestamp (R3227)."""
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    wsc = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"

    moved = _message(traces, "sct", 3)  # an application request
    security = next(moved.iter(f"{{{wsse}}}Security"))
    security.append(security.find(f"{{{wsc}}}DerivedKeyToken"))
    assert RULES["R5205"][1](Message(moved))

    stripped = _message(traces, "sct-tlsnego-plain", 1)  # the RST, keyed by an EncryptedKey
    for reference in stripped.iter(f"{{{wsse}}}SecurityTokenReference"):
        reference.attrib.pop(
            "{http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd}TokenType", None
        )
    assert RULES["R3069"][1](Message(stripped))

    doubled = _message(traces, "x509", 1)
    security = next(doubled.iter(f"{{{wsse}}}Security"))
    security.append(copy.deepcopy(security.find(f"{{{wsu}}}Timestamp")))
    assert RULES["R3227"][1](Message(doubled))


WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"


def _saml_reference(root: etree._Element) -> etree._Element:
    """The first STR of the message naming an assertion (by its TokenType)."""
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    return next(
        s
        for s in root.iter(f"{{{wsse}}}SecurityTokenReference")
        if "saml-token-profile" in (s.get(f"{{{WSSE11}}}TokenType") or "")
    )


def _as_key_identifier(reference: etree._Element, identifier: str) -> None:
    """Replace the STR's Reference by the SAML 2.0 KeyIdentifier of ``identifier``."""
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    reference.clear()
    reference.set(
        f"{{{WSSE11}}}TokenType",
        "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
    )
    key = etree.SubElement(reference, f"{{{wsse}}}KeyIdentifier")
    key.set("ValueType", "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID")
    key.text = identifier


def test_the_saml_rules_catch_a_key_identifier_where_a_reference_is_due(traces):
    """Controls: a holder-of-key request naming the assertion it carries by KeyIdentifier
    (R6610), with a ValueType on its Reference (R6614), and a response naming the request's
    SAML 2.0 assertion by KeyIdentifier (R6613) are flagged."""
    saml2 = "urn:oasis:names:tc:SAML:2.0:assertion"
    for label in ("hok-public", "hok-symmetric"):
        request = _message(traces, label, 3)  # the first application request
        assert not RULES["R6610/R6614"][1](Message(request))
        reference = _saml_reference(request)
        [wsse_reference] = reference
        wsse_reference.set("ValueType", "urn:anything")
        assert RULES["R6610/R6614"][1](Message(request)), label
        assertion_id = next(request.iter(f"{{{saml2}}}Assertion")).get("ID")
        _as_key_identifier(reference, assertion_id)
        assert RULES["R6610/R6614"][1](Message(request)), label

    response = _message(traces, "hok-symmetric", 4)
    assert not RULES["R6613"][1](Message(response))
    reference = _saml_reference(response)
    [wsse_reference] = reference
    assert not wsse_reference.get("URI").startswith("#")  # names an assertion not carried
    _as_key_identifier(reference, wsse_reference.get("URI").rsplit("=", 1)[-1])
    assert RULES["R6613"][1](Message(response))
