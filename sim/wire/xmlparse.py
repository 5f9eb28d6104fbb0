"""Secure parsing of messages from peers: UTF-8 only, no DTD, no entities, no network, and
bounds on size and shape enforced before libxml2 builds a tree."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

import sim.crypto as crypto
from sim.errors import MalformedMessage
from sim.wire.ledger import Ledger, Op


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what a receiver accepts before looking at the content.

    ``max_elements`` bounds the nodes of the tree (elements, comments, processing
    instructions, CDATA sections) and ``max_total_attributes`` the attributes and namespace
    declarations of the whole message: both are checked on the bytes, before a tree is built,
    so that no message makes the parser allocate more than these bounds allow (a 4 MB message
    of empty elements would otherwise be a million nodes, some 120 MiB).
    """

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 20_000
    max_attributes: int = 32
    max_total_attributes: int = 20_000


DEFAULT_LIMITS = ParseLimits()

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    collect_ids=False,
    # Whatever a document declares, libxml2 reads UTF-8 (the checks below refuse the rest).
    encoding="utf-8",
)

_UTF8_BOM = b"\xef\xbb\xbf"
#: Byte order marks of the encodings refused, longest first (UTF-32 LE starts as UTF-16 LE).
_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
    (b"\x2b\x2f\x76", "UTF-7"),
    (b"\xdd\x73\x66\x73", "UTF-EBCDIC"),
    (b"\x0e\xfe\xff", "SCSU"),
    (b"\xfb\xee\x28", "BOCU-1"),
    (b"\x84\x31\x95\x33", "GB-18030"),
)
_BOM_STARTS = frozenset(bom[:1] for bom, _ in _BOMS)
#: The XML declaration (only ever at the very start) and an encoding declared in it.
_DECLARATION = re.compile(rb"<\?xml[ \t\r\n]")
_ENCODING = re.compile(rb"""encoding[ \t\r\n]*=[ \t\r\n]*(["'])([^"'?]*)\1""")


def parse(
    data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, ledger: Ledger | None = None
) -> etree._Element:
    """Parse ``data`` into the root element, refusing anything a SOAP peer has no business sending.

    Refused with :class:`MalformedMessage` (check ``parser``), in this order and before any
    parsing: more than ``max_bytes``; any encoding but UTF-8 (a byte order mark of another
    encoding, an XML declaration naming another encoding, bytes that are not UTF-8, a NUL
    byte — so that no scan below can be evaded by another spelling); any DOCTYPE (so no
    entity declarations: billion laughs and external entities never reach the parser); more
    than ``max_elements`` nodes or ``max_total_attributes`` attributes, bounded on the bytes.
    Then, parsing once: text that is not well-formed XML, nesting deeper than ``max_depth``,
    more than ``max_attributes`` attributes on one element.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise MalformedMessage(
            f"a message must be bytes, not {type(data).__name__}", check="parser"
        )
    if len(data) > limits.max_bytes:
        raise MalformedMessage(
            f"message of {len(data)} bytes exceeds {limits.max_bytes}", check="parser"
        )
    data = bytes(data)
    _check_encoding(data)
    # "!" is rare in messages (base64 has none), so one memchr usually settles it; a
    # two-byte search for "<!" would stop at every "<".
    bang = b"!" in data
    if bang and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        raise MalformedMessage("document type declarations are not allowed", check="parser")
    _check_counts(data, limits)
    if ledger is not None:
        ledger.record(Op.XML_PARSE, len(data))
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}", check="parser") from None
    if root is None:
        raise MalformedMessage("empty document", check="parser")
    # Without a "!" there is no "<!DOCTYPE" (in any spelling the scan above missed).
    if bang and root.getroottree().docinfo.doctype:
        raise MalformedMessage("document type declarations are not allowed", check="parser")
    _check_shape(root, limits)
    return root


def _check_encoding(data: bytes) -> None:
    """Refuse every encoding but UTF-8, declared or detected, before libxml2 sees the bytes
    (it would otherwise switch to ISO-8859-1, Shift_JIS or UTF-7 as the declaration says,
    and a DOCTYPE spelled in UTF-7 passes a byte scan for ``<!DOCTYPE``)."""
    if data[:1] in _BOM_STARTS:
        for bom, name in _BOMS:
            if data.startswith(bom):
                raise MalformedMessage(
                    f"a {name} byte order mark: only UTF-8 messages are accepted",
                    check="parser",
                )
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    if data.startswith(b"<?xml", start) and _DECLARATION.match(data, start):
        head = data[start : start + 256]
        end = head.find(b"?>")
        declaration = head if end < 0 else head[:end]
        declared = _ENCODING.search(declaration)
        if declared is not None and declared.group(2).lower() != b"utf-8":
            name = declared.group(2)[:40].decode("ascii", "replace")
            raise MalformedMessage(
                f"declared encoding {name!r}: only UTF-8 messages are accepted", check="parser"
            )
    if b"\x00" in data:
        raise MalformedMessage(
            "a NUL byte (UTF-16 or UTF-32?): only UTF-8 messages are accepted", check="parser"
        )
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(
                f"bytes that are not UTF-8 at offset {exc.start}: only UTF-8 messages are accepted",
                check="parser",
            ) from None


def _check_counts(data: bytes, limits: ParseLimits) -> None:
    """Bound the tree libxml2 would build, on the bytes: every node but text starts with a
    ``<`` (an end tag with ``</``) and takes three bytes at least (``<a>``), every attribute
    and namespace declaration has an ``=`` and takes five (`` a=""``). A message too short
    to break a bound is not scanned for it (most are)."""
    if len(data) > 3 * limits.max_elements:
        markup = data.count(b"<")
        if markup > limits.max_elements:
            markup -= data.count(b"</")
            if markup > limits.max_elements:
                raise MalformedMessage(
                    f"more than {limits.max_elements} elements (or comments, processing "
                    "instructions)",
                    check="parser",
                )
    if len(data) > 5 * limits.max_total_attributes and (
        data.count(b"=") > limits.max_total_attributes
    ):
        raise MalformedMessage(
            f"more than {limits.max_total_attributes} attributes in the message "
            "(counting every '=')",
            check="parser",
        )


def _check_shape(root: etree._Element, limits: ParseLimits) -> None:
    problem = crypto.shape_violation(
        root,
        max_depth=limits.max_depth,
        max_elements=limits.max_elements,
        max_attributes=limits.max_attributes,
    )
    if problem is None:
        return
    kind, value, el = problem
    if kind == "depth":
        raise MalformedMessage(f"nesting deeper than {value} elements", check="parser")
    if kind == "elements":
        raise MalformedMessage(f"more than {value} elements", check="parser")
    raise MalformedMessage(
        f"element {el.tag} has {value} attributes (limit {limits.max_attributes})",
        check="parser",
    )


def serialize(root: etree._Element, ledger: Ledger | None = None) -> bytes:
    """The bytes of a message, as sent."""
    data = etree.tostring(root, encoding="utf-8", xml_declaration=False)
    if ledger is not None:
        ledger.record(Op.XML_SERIALIZE, len(data))
    return data
