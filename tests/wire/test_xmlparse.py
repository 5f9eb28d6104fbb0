"""Secure parsing refuses what a SOAP peer has no business sending, quickly."""

from __future__ import annotations

import tracemalloc

import pytest

from sim.errors import MalformedMessage
from sim.wire.ledger import Ledger
from sim.wire.xmlparse import ParseLimits, parse

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<lolz>&lol9;</lolz>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_bombs_and_external_entities_are_refused_with_bounded_memory(document):
    tracemalloc.start()
    with pytest.raises(MalformedMessage, match="document type"):
        parse(document)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize(
    ("document", "limits", "reason"),
    [
        (b"<a>" * 70 + b"</a>" * 70, ParseLimits(), "deeper"),
        (b"<a>" + b"<b/>" * 50 + b"</a>", ParseLimits(max_elements=20), "more than 20"),
        (
            b"<a " + b" ".join(b'x%d="1"' % i for i in range(40)) + b"/>",
            ParseLimits(),
            "attributes",
        ),
        (b"<a>" + b"x" * 5000 + b"</a>", ParseLimits(max_bytes=1000), "exceeds"),
        (b"<a><b></a>", ParseLimits(), "well-formed"),
        (b"", ParseLimits(), "well-formed"),
        (b"\xff\xfe<\x00a\x00/\x00>\x00", ParseLimits(), "UTF-8"),
    ],
)
def test_documents_beyond_the_limits_are_refused(document, limits, reason):
    with pytest.raises(MalformedMessage, match=reason):
        parse(document, limits=limits)


def test_non_bytes_input_is_refused():
    with pytest.raises(MalformedMessage, match="bytes"):
        parse("<a/>")


def test_parse_records_its_size_in_the_ledger():
    ledger = Ledger()
    parse(b"<a><b/></a>", ledger=ledger)
    assert ledger.entries == [("xml_parse", 11)]
