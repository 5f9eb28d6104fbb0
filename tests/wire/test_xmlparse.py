"""Secure parsing refuses what a SOAP peer has no business sending, quickly."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc

import pytest

from sim.errors import MalformedMessage
from sim.wire import xmlparse
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


def _encoded(text: str, encoding: str, declare: bool = True) -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if declare else ""
    return (declaration + text).encode(encoding)


# Each of these reached libxml2 and was parsed in its own encoding; a UTF-7 document carries
# its DOCTYPE past a byte scan for "<!DOCTYPE".
UTF7_DOCTYPE = (
    b'<?xml version="1.0" encoding="UTF-7"?>+ADwAIQ-DOCTYPE a +AFs-+ADwAIQ-ENTITY x '
    b"+ACI-y+ACI-+AD4-+AF0-+AD4-+ADw-a+AD4-+ACY-x+ADs-+ADw-/a+AD4-"
)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (_encoded("<a>café</a>", "ISO-8859-1"), "not UTF-8|ISO-8859-1"),
        (_encoded("<a>cafe</a>", "ISO-8859-1"), "declared encoding 'ISO-8859-1'"),
        (_encoded("<a>cafe</a>", "latin1"), "declared encoding 'latin1'"),
        (_encoded("<a>日本</a>", "Shift_JIS"), "not UTF-8|Shift_JIS"),
        (_encoded("<a>abc</a>", "Shift_JIS"), "declared encoding 'Shift_JIS'"),
        (UTF7_DOCTYPE, "declared encoding 'UTF-7'"),
        (b"<?xml version='1.0' encoding = 'UTF-16'?><a/>", "declared encoding 'UTF-16'"),
        (b'<?xml version="1.0" encoding="UTF8"?><a/>', "declared encoding 'UTF8'"),
        (_encoded("<a/>", "utf-16", declare=False), "UTF-16 byte order mark"),
        (_encoded("<a/>", "utf-16-be", declare=False), "NUL"),
        (_encoded("<a/>", "utf-16-le", declare=False), "NUL"),
        (_encoded("<a/>", "utf-32", declare=False), "UTF-32 byte order mark"),
        (b"\x00\x00\xfe\xff" + "<a/>".encode("utf-32-be"), "UTF-32 byte order mark"),
        (_encoded("<a/>", "cp037", declare=False), "not UTF-8"),  # EBCDIC
        (b"<a>\xc3\x28</a>", "not UTF-8"),  # a broken sequence
        (b"<a>\xc0\xaf</a>", "not UTF-8"),  # an overlong "/"
        (b"<a>\xed\xa0\x80</a>", "not UTF-8"),  # a UTF-16 surrogate
        (b"<a>\xff</a>", "not UTF-8"),
    ],
)
def test_every_encoding_but_utf8_is_refused_before_parsing(document, reason, monkeypatch):
    parsed = []
    monkeypatch.setattr(xmlparse.etree, "fromstring", lambda *a: parsed.append(a))
    ledger = Ledger()
    with pytest.raises(MalformedMessage, match=reason) as refused:
        parse(document, ledger=ledger)
    assert refused.value.check == "parser"
    assert parsed == [] and ledger.entries == []  # libxml2 never saw the bytes


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0" encoding="UTF-8"?><a>caf\xc3\xa9</a>',
        b"<?xml version='1.0' encoding='utf-8'?><a/>",
        b'<?xml version="1.0"?><a/>',
        b"\xef\xbb\xbf<a>\xe6\x97\xa5</a>",
    ],
)
def test_utf8_with_or_without_declaration_or_bom_is_read(document):
    assert parse(document).tag == "a"


def _empty_elements(size: int) -> bytes:
    return b"<r>" + b"<a/>" * ((size - 7) // 4) + b"</r>"


def _attributes(size: int) -> bytes:
    parts, total, i = [], 0, 0
    while total < size - 10:
        part = b" a%x=''" % i
        parts.append(part)
        total, i = total + len(part), i + 1
    return b"<r" + b"".join(parts) + b"/>"


@pytest.mark.parametrize(
    ("make", "reason"),
    [(_empty_elements, "more than 20000 elements"), (_attributes, "attributes")],
    ids=["empty-elements", "attributes"],
)
def test_four_megabytes_of_markup_are_refused_before_a_tree_is_built(make, reason, monkeypatch):
    """A 4 MB message of empty elements is a million nodes (about 120 MiB in libxml2, which
    tracemalloc does not see): it must be refused on its bytes, quickly, with nothing
    allocated in proportion."""
    document = make(4 * 1024 * 1024 - 16)
    parsed = []
    monkeypatch.setattr(xmlparse.etree, "fromstring", lambda *a: parsed.append(a))
    tracemalloc.start()
    # CPU time, not wall time: the tests run in parallel on a shared machine
    started = time.process_time()
    with pytest.raises(MalformedMessage, match=reason):
        parse(document)
    elapsed = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert parsed == []
    assert peak < 100_000 and elapsed < 0.2


def test_a_refused_four_megabyte_message_costs_no_memory_in_libxml2():
    """The same, measured where libxml2 allocates: the peak RSS of a fresh process."""
    script = (
        "import resource\n"
        "from sim.errors import MalformedMessage\n"
        "from sim.wire.xmlparse import parse\n"
        f"data = b'<r>' + b'<a/>' * {(4 * 1024 * 1024 - 7) // 4} + b'</r>'\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    parse(data)\n"
        "except MalformedMessage:\n"
        "    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    grown_kib = int(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    assert grown_kib < 8 * 1024


def test_elements_and_attributes_under_the_limits_are_counted_on_the_bytes_exactly_enough():
    """Comments count as nodes; end tags do not; '=' counts every attribute."""
    limits = ParseLimits(max_elements=10, max_total_attributes=5)
    parse(b"<r>" + b"<a></a>" * 9 + b"</r>", limits=limits)  # ten elements, nineteen "<"
    with pytest.raises(MalformedMessage, match="more than 10 elements"):
        parse(b"<r>" + b"<a/>" * 9 + b"<!---->" + b"</r>", limits=limits)
    parse(b'<r a="1" b="2"><c d="3" e="4" f="5"/></r>', limits=limits)
    with pytest.raises(MalformedMessage, match="more than 5 attributes"):
        parse(b'<r a="1" b="2"><c d="3" e="4" f="5" xmlns:g="urn:g"/></r>', limits=limits)


def test_a_message_is_parsed_once(monkeypatch):
    calls = []
    real = xmlparse.etree.fromstring
    monkeypatch.setattr(xmlparse.etree, "fromstring", lambda *a: calls.append(1) or real(*a))
    parse(b"<a><b/></a>")
    with pytest.raises(MalformedMessage, match="deeper"):
        parse(b"<a>" * 70 + b"</a>" * 70)
    assert len(calls) == 2
